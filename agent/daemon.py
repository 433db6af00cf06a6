"""`docagent run`: one asyncio loop that watches, takes, processes and notifies.

Tasks on the loop: intake (watcher events + periodic rescans -> claims, and the heartbeat:
systemd's watchdog is pinged from this loop's own iterations, see `liveness`), N workers (each
runs the synchronous pipeline in a thread; tesseract runs as a subprocess) and the outbox
sender. The database is the queue: a worker asks it for the oldest due document, so a
`docagent retry` from a shell or a deferred document coming due is picked up the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import canary, i18n, metrics, spool
from agent.config import Settings
from agent.errors import DocagentError, Incomplete, MachineError, UsageError
from agent.i18n import N_
from agent.liveness import Liveness, hang_if_asked
from agent.lock import exclusive
from agent.logs import get_logger
from agent.notify.outbox import drain, log_sender
from agent.ops import digest, pipeline
from agent.sdnotify import notify, watchdog_interval
from agent.stages.inspection import page_count
from agent.store import Store
from agent.tools import runner
from agent.watcher import Stabilizer, start_observer

if TYPE_CHECKING:
    from agent.notify.telegram.bot import TelegramBot  # imported for real only when a token is set

log = get_logger("daemon")
TICK = 0.5
READY_BATCH = 16  # files judged whole per look at incoming/: claims start before all are probed
DIGEST_CHECK_SECONDS = 60.0
INDEX_PAUSE = 0.05  # seconds between two batches of the search index's first build
RUN_STATE = "daemon_run"  # meta: "running" from start-up until a clean stop, then "stopped"


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
