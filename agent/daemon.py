"""`docagent run`: one asyncio loop that watches, takes, processes and notifies.

Tasks on the loop: intake (watcher events + periodic rescans -> claims, and the heartbeat:
systemd's watchdog is pinged from this loop's own iterations, see `liveness`), N workers (each
runs the synchronous pipeline in a thread; tesseract runs as a subprocess), the outbox sender
and, when a mailbox is set, the mail reader (agent.ops.mail, on a thread of its own). The
database is the queue: a worker asks it for the oldest due document, so a `docagent retry`
from a shell, a deferred document coming due or a mail attachment is picked up the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    wait_exponential,
    wait_exponential_jitter,
)

from agent import canary, i18n, logs, mailbox, metrics, spool
from agent.config import Settings
from agent.errors import DocagentError, Incomplete, MachineError, UsageError
from agent.i18n import N_
from agent.liveness import Liveness, hang_if_asked
from agent.lock import exclusive
from agent.logs import get_logger
from agent.notify.outbox import drain, log_sender
from agent.ops import digest, mail, pipeline
from agent.sdnotify import notify, watchdog_interval
from agent.stages.inspection import page_count
from agent.store import Store
from agent.tools import runner
from agent.watcher import Stabilizer, start_observer

if TYPE_CHECKING:
    from agent.notify.telegram.bot import TelegramBot  # imported for real only when a token is set

log = get_logger("daemon")
T = TypeVar("T")
TICK = 0.5
READY_BATCH = 16  # files judged whole per look at incoming/: claims start before all are probed
DIGEST_CHECK_SECONDS = 60.0
INDEX_PAUSE = 0.05  # seconds between two batches of the search index's first build
RUN_STATE = "daemon_run"  # meta: "running" from start-up until a clean stop, then "stopped"
# Reconnecting to the mailbox: after a network fault, 1 s doubling to a minute, with jitter;
# after a refusal a person must fix (password, certificate, folder), 30 s doubling to 5 min,
# so that a wrong password does not knock on the server often enough to get the account
# locked.
_MAIL_NETWORK_WAIT = wait_exponential_jitter(initial=1, max=60, jitter=1)
_MAIL_REFUSED_WAIT = wait_exponential(multiplier=15, min=30, max=300)


class _MailLost(Exception):
    """The mailbox was read, then the connection failed: reconnect at once, backoff anew."""

    def __init__(self, error: mailbox.MailError) -> None:
        super().__init__(str(error))
        self.error = error


class Daemon:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(settings.db_path)
        self.stabilizer = Stabilizer(settings.stable_seconds, settings.incomplete_seconds)
        self.stopping = asyncio.Event()
        self.work = asyncio.Event()
        self.outbox = asyncio.Event()
        self.noticed = asyncio.Event()  # a file event: look now rather than at the next tick
        self.busy = 0
        self.failed = False
        self.liveness = Liveness(settings)
        self.beat_interval = min(watchdog_interval() or 10.0, 10.0)
        self.next_beat = 0.0
        self.telegram: TelegramBot | None = None  # when a token is set
        self.mail_stop = threading.Event()  # the mail reader's thread sees the stop by this
        self._mail_said: str | None = None  # the last mail fault logged (each said once)

    # --- intake -------------------------------------------------------------------------

    def _on_event(self, path: Path, settled: bool) -> None:
        if canary.is_canary(path):
            canary.acknowledge(path)  # the health check's proof that events reach us
            return
        self.stabilizer.note(path, settled=settled)
        self.noticed.set()

    async def intake(self) -> None:
        next_scan = 0.0
        while not self.stopping.is_set():
            hang_if_asked()
            await self.beat()
            now = time.monotonic()
            if now >= next_scan:
                await asyncio.to_thread(self.stabilizer.scan, self.settings.incoming)
                next_scan = now + self.settings.rescan_seconds
                self.work.set()  # deferred documents may have come due
            batch = await asyncio.to_thread(self.stabilizer.ready, READY_BATCH)
            for path, verdict in batch:
                if self.stopping.is_set():
                    break
                await self._take(path, verdict)
            if len(batch) == READY_BATCH:
                continue  # more may be ready already: a backlog drains without ticking
            self.noticed.clear()
            await self._wait(self.noticed, TICK)

    async def _take(self, path: Path, verdict: str) -> None:
        try:
            # An incomplete file is held as it is claimed: were it queued, a worker could read it
            # first and fail it as corrupt instead of incomplete.
            claim = await asyncio.to_thread(spool.claim, self.settings, self.store, path,
                                            hold=verdict == "incomplete")
        except FileNotFoundError:
            return  # gone before we took it: someone moved it away
        except spool.StillChanging:
            self.stabilizer.note(path)  # its writer is not done: judged again once stable
            return
        except spool.NotRegular as error:
            self.stabilizer.skip(path, str(error))
            return
        except (MachineError, OSError) as error:
            log.error("could not take %r yet: %s", path.name, error)
            return  # the next rescan notices it again
        if claim.refused or claim.left is not None:
            self.stabilizer.pass_over(path)  # left in incoming/: not looked at until it changes
        if claim.again:
            return  # this very file was dealt with before: nothing new to say
        if claim.refused:
            metrics.document_done("failed")
            self.outbox.set()
            return
        if claim.duplicate_of is not None:
            metrics.document_done("duplicate")
            self.outbox.set()
            self.work.set()  # a deferred document may have been brought forward
            return
        if verdict == "incomplete":
            doc = await asyncio.to_thread(spool.get, self.store, claim.document_id)
            if doc is not None:
                reason = Incomplete(N_("the file stopped changing but never opened as a whole "
                                       "PDF: the copy was cut short, or the file is damaged"),
                                    stage="intake")
                await asyncio.to_thread(pipeline.quarantine, self.settings, self.store, doc,
                                        reason)
                metrics.document_done("failed")
                self.outbox.set()
            return
        self.work.set()

    # --- workers ------------------------------------------------------------------------

    async def worker(self, number: int) -> None:
        while not self.stopping.is_set():
            try:
                doc = await asyncio.to_thread(spool.start_next, self.store)
            except MachineError as error:
                log.warning("worker %d cannot read the queue: %s", number, error)
                await self._sleep(2.0)
                continue
            if doc is None:
                self.work.clear()
                await self._wait(self.work, 2.0)
                continue
            self.busy += 1
            pages = await asyncio.to_thread(page_count,
                                            spool.processing_path(self.settings, doc.id))
            self.liveness.took(number, pages)
            try:
                outcome = await asyncio.to_thread(pipeline.process, self.settings, self.store,
                                                  doc)
            finally:
                self.busy -= 1
                self.liveness.released(number)
            metrics.document_done(outcome.outcome)
            log.info("%s: %s in %d ms", outcome.document_id, outcome.outcome,
                     outcome.duration_ms, extra={"doc": outcome.document_id})
            self.outbox.set()

    # --- mail ---------------------------------------------------------------------------

    async def read_mail(self) -> None:
        """Read the mailbox until the daemon stops: a look at every message (agent.ops.mail),
        then IDLE, or a wait of DOCAGENT_MAIL_POLL_SECONDS, and again. IMAP calls block, so
        they run on a thread of the reader's own: a long download or an IDLE never stalls the
        loop (the watchdog's pings come from the intake) nor holds a thread the workers use.
        A fault reconnects with backoff (tenacity), and is logged once until it changes."""
        loop = asyncio.get_running_loop()
        executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="mail")

        async def run(function: Callable[..., T], *args: Any) -> T:
            return await loop.run_in_executor(executor, functools.partial(function, *args))

        def claimed(claim: spool.Claim) -> None:
            loop.call_soon_threadsafe(self._mail_claimed, claim)

        reader = mail.Reader(self.settings, self.store, on_claim=claimed)
        try:
            while not self.stopping.is_set():
                try:
                    async for attempt in AsyncRetrying(
                            retry=retry_if_exception(lambda e: isinstance(e, mailbox.MailError)),
                            wait=_mail_wait, sleep=self._sleep, before_sleep=self._mail_fault,
                            reraise=True):
                        with attempt:
                            await self._mail_session(run, reader)
                except _MailLost as lost:
                    self._mail_fault_said(lost.error, 0.0, lost=True)
                    await run(functools.partial(mail.note_state, self.store, "down",
                                                detail=str(lost.error)))
        finally:
            executor.shutdown(wait=True, cancel_futures=True)

    async def _mail_session(self, run: Callable[..., Any], reader: mail.Reader) -> None:
        settings = self.settings.mail
        if settings is None or self.stopping.is_set():
            return
        box: mailbox.Mailbox = await run(mailbox.Mailbox.open, settings)
        try:
            how = ("IDLE" if box.uses_idle else
                   f"a look every {settings.poll_seconds:g} s")
            if self._mail_said != f"up {how}":
                log.info("mail: reading %s (%s); taken mail %s", settings.where, how,
                         f"moved to {settings.taken_folder}" if settings.mark == "move"
                         else "flagged $DocagentTaken")
                if not settings.allowed_senders:
                    log.warning("DOCAGENT_MAIL_ALLOWED_SENDERS is empty: no message is taken; "
                                "each is logged with its sender, to be allowed")
            self._mail_said = f"up {how}"
            while not self.stopping.is_set():
                try:
                    await run(reader.sweep, box, self.mail_stop)
                    if self.stopping.is_set():
                        break
                    await run(box.wait, settings.poll_seconds, self.mail_stop)
                except mailbox.MailError as error:
                    raise _MailLost(error) from error
        finally:
            await run(box.close)

    def _mail_claimed(self, claim: spool.Claim) -> None:
        """On the loop: a mail attachment was claimed; wake whoever has work now."""
        if claim.refused:
            metrics.document_done("failed")
            self.outbox.set()
        elif claim.duplicate_of is not None:
            metrics.document_done("duplicate")
            self.outbox.set()
        self.work.set()

    async def _mail_fault(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        if not isinstance(error, mailbox.MailError):
            return
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        self._mail_fault_said(error, delay)
        refused = not isinstance(error, mailbox.Unreachable)
        with contextlib.suppress(DocagentError):
            await asyncio.to_thread(mail.note_state, self.store,
                                    "refused" if refused else "down", detail=str(error))

    def _mail_fault_said(self, error: mailbox.MailError, delay: float, *,
                         lost: bool = False) -> None:
        """Each fault logged once until it changes (a wrong password is not a line a minute)."""
        text = str(error)
        if text == self._mail_said:
            return
        self._mail_said = text
        if lost:
            log.warning("mail: %s; reconnecting", text)
        elif isinstance(error, mailbox.Unreachable):
            log.warning("mail: %s; trying again in %.0f s (and on, with backoff)", text, delay)
        else:
            where = ""
            if isinstance(error, mailbox.LoginRefused) and self.settings.mail is not None \
                    and self.settings.mail.password_source:
                where = f": correct {self.settings.mail.password_source}"
            log.error("mail: %s%s; trying again in %.0f s (and on, every 5 min at most)", text,
                      where, delay)

    # --- outbox and heartbeat -----------------------------------------------------------

    async def sender(self) -> None:
        while True:
            self.outbox.clear()
            try:
                if self.telegram is not None and self.settings.telegram_chat_ids:
                    await self.telegram.sender.drain(final=self.stopping.is_set())
                else:
                    await asyncio.to_thread(drain, self.store, log_sender,
                                            phi=self.settings.phi)
            except DocagentError as error:
                log.warning("outbox not drained: %s", error)
            if self.stopping.is_set():
                return
            await self._wait(self.outbox, 5.0)

    def wake(self) -> None:
        """A decision from Telegram queued a message or a document: look now."""
        self.outbox.set()
        self.work.set()

    async def beat(self) -> None:
        """Heartbeat and watchdog ping, called from the intake loop: no loop, no ping."""
        now = time.monotonic()
        if now < self.next_beat:
            return
        self.next_beat = now + self.beat_interval
        if not self.liveness.may_ping():
            return  # a worker is stuck: let systemd's watchdog restart us
        with contextlib.suppress(DocagentError):
            await asyncio.to_thread(self.store.set_meta, "heartbeat", str(time.time()))
        try:
            status = await asyncio.to_thread(self.status_line)
        except DocagentError as error:
            status = f"watching {self.settings.incoming} — database unreadable: {error}"
        notify("WATCHDOG=1\nSTATUS=" + status)

    def status_line(self) -> str:
        counts = spool.counts_by_state(self.store)
        failed_today = len(spool.failed_since(self.store, time.strftime("%Y-%m-%d",
                                                                         time.gmtime())))
        return (f"watching {self.settings.incoming} — {counts.get('queued', 0)} queued, "
                f"{self.busy} in progress, {counts.get('filed', 0)} filed, "
                f"{counts.get('review', 0)} in review, {failed_today} failed today")

    async def digest(self) -> None:
        """Once a day at the configured hour, yesterday's summary goes into the outbox."""
        while not self.stopping.is_set():
            try:
                queued = await asyncio.to_thread(digest.enqueue_if_due, self.settings,
                                                 self.store)
                log.debug("daily digest checked: %s", "queued" if queued else "nothing due")
                if queued:
                    self.outbox.set()
            except DocagentError as error:
                log.warning("daily digest not prepared yet: %s", error)
            await self._sleep(DIGEST_CHECK_SECONDS)

    async def build_index(self) -> None:
        """Documents filed before the search index existed are indexed in small batches, each
        one short transaction, the workers' own filings going between them; a stop leaves the
        rest for the next start (or for the first `docagent find`). Like every task of the
        loop it ends with the daemon, so that one returning early is always a fault."""
        await self._build_index()
        await self.stopping.wait()

    async def _build_index(self) -> None:
        from agent.spool import index

        try:
            if await asyncio.to_thread(index.complete, self.store):
                return
            log.info("indexing %d document(s) filed before the search index existed",
                     await asyncio.to_thread(index.waiting, self.store))
            after: str | None = ""
            total = 0
            while after is not None and not self.stopping.is_set():
                done, after = await asyncio.to_thread(index.backfill, self.settings,
                                                      self.store, after)
                total += done
                await self._sleep(INDEX_PAUSE)
            if after is None:
                await asyncio.to_thread(self.store.set_meta, index.BACKFILLED, index.COMPLETE)
                log.info("search index built: %d document(s) filed before it indexed", total)
        except Exception as error:  # the index waits; the daemon's work does not
            log.warning("search index not built yet (%s): tried again at the next start",
                        error, exc_info=not isinstance(error, DocagentError))

    def _metrics_server(self) -> Any:
        if self.settings.metrics_addr is None:
            return None
        try:
            server = metrics.serve(
                self.settings.metrics_addr,
                queue_depth=lambda: float(spool.queued_count(self.store)),
                outbox_depth=lambda: float(self.store.outbox_backlog()[0]))
        except OSError as error:
            raise UsageError(f"cannot serve metrics on DOCAGENT_METRICS_ADDR "
                             f"{self.settings.metrics_addr[0]}:{self.settings.metrics_addr[1]}:"
                             f" {error.strerror or error}") from None
        log.info("metrics on http://%s:%d/metrics", *self.settings.metrics_addr)
        return server

    # --- helpers ------------------------------------------------------------------------

    async def _sleep(self, seconds: float) -> None:
        await self._wait(self.stopping, seconds)

    @staticmethod
    async def _wait(event: asyncio.Event, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), seconds)

    def stop(self) -> None:
        if not self.stopping.is_set():
            log.info("stopping: finishing the documents in hand")
            notify(f"STOPPING=1\nSTATUS=stopping: finishing {self.busy} document(s) in hand")
            self.stopping.set()
            self.mail_stop.set()
            self.work.set()
            self.noticed.set()
            self.outbox.set()  # the sender's last drain, now rather than at its next tick

    async def main(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop)
        unclean = await asyncio.to_thread(self._mark_running)
        recovered = await asyncio.to_thread(spool.recover, self.settings, self.store)
        for line in recovered:
            log.warning("recovery: %s", line)
        if unclean:
            # A kill -9, an OOM kill, a watchdog kill or a crash leaves no line of its own.
            log.error("the previous run ended without a clean stop (killed or crashed); "
                      "recovery: %s", _summary(recovered))
        metrics_server = self._metrics_server()
        def from_watchdog_thread(path: Path, settled: bool) -> None:
            loop.call_soon_threadsafe(self._on_event, path, settled)

        observer = start_observer(self.settings.incoming, self.settings.watch,
                                  from_watchdog_thread)
        if self.settings.telegram_token:
            from agent.notify.telegram.bot import TelegramBot  # PTB loads slowly: only when used
            self.telegram = TelegramBot(self.settings, self.store, self.stopping, self.wake)
            if not self.settings.telegram_chat_ids:
                log.warning("TELEGRAM_CHAT_IDS is empty: notifications go to the log; the bot "
                            "still logs who writes to it, with the chat id")
        tasks = [asyncio.create_task(self.intake(), name="intake"),
                 asyncio.create_task(self.sender(), name="sender")]
        if self.telegram is not None:
            tasks.append(asyncio.create_task(self.telegram.run(), name="telegram"))
        tasks += [asyncio.create_task(self.worker(n), name=f"worker-{n}")
                  for n in range(self.settings.workers)]
        if self.settings.digest_hour is not None:
            tasks.append(asyncio.create_task(self.digest(), name="digest"))
        if self.settings.mail is not None:
            # The password never reaches a log, whatever a library or a traceback prints.
            logs.redact(self.settings.mail.password or "")
            logging.getLogger("imapclient").setLevel(logging.WARNING)
            tasks.append(asyncio.create_task(self.read_mail(), name="mail"))
        tasks.append(asyncio.create_task(self.build_index(), name="index"))
        log.info("watching %s (%s) with %d worker(s)", self.settings.incoming,
                 self.settings.watch, self.settings.workers)
        notify("READY=1\nSTATUS=" + self.status_line())
        stop_wait = asyncio.create_task(self.stopping.wait(), name="stop")
        try:
            done, _ = await asyncio.wait([*tasks, stop_wait],
                                         return_when=asyncio.FIRST_COMPLETED)
            broken = [t for t in done if t is not stop_wait and t.exception() is not None]
            if broken:
                # A task of ours died: say so and exit non-zero; systemd restarts us, and
                # recovery puts back whatever was in hand.
                for task in broken:
                    log.critical("task %s failed: %r", task.get_name(), task.exception())
                self.stopping.set()
                self.mail_stop.set()
                self.failed = True
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            stop_wait.cancel()
            for task in tasks:
                task.cancel()
            if self.telegram is not None:
                await self.telegram.stop()
            observer.stop()
            observer.join(timeout=5)
            if metrics_server is not None:
                metrics_server.shutdown()
            with contextlib.suppress(DocagentError):
                self.store.set_meta(RUN_STATE, "stopped")
            self.store.close()
        log.info("stopped")

    def _mark_running(self) -> bool:
        """Note that a run started; True if the previous one never noted its stop."""
        previous = self.store.get_meta(RUN_STATE)
        self.store.set_meta(RUN_STATE, "running")
        return previous == "running"


def _mail_wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome is not None else None
    if isinstance(error, mailbox.Unreachable):
        return float(_MAIL_NETWORK_WAIT(state))
    return float(_MAIL_REFUSED_WAIT(state))


def _summary(actions: list[str], limit: int = 10) -> str:
    if not actions:
        return "nothing was left half done"
    more = f"; and {len(actions) - limit} more" if len(actions) > limit else ""
    return "; ".join(actions[:limit]) + more


def run(settings: Settings) -> int:
    # What the daemon sends is rendered as it is sent (the outbox keeps figures, not words), so
    # it speaks the language of the settings it runs with, whoever started it.
    i18n.use(settings.lang)
    runner.configure(memory=settings.child_memory)
    spool.ensure_folders(settings)
    with exclusive(settings) as got_lock:
        if not got_lock:
            raise UsageError(f"another docagent is already running on {settings.home}: stop it "
                             "first (systemctl stop docagent), or leave that one running")
        daemon = Daemon(settings)
        asyncio.run(daemon.main())
    return 1 if daemon.failed else 0
