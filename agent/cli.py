"""The `docagent` command line. Exit codes: 0 ok, 1 ran but something is wrong, 2 bad usage.

A foreseen error prints one line on stderr and never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from agent import config, i18n, modes, privileges
from agent.errors import DocagentError, UsageError
from agent.i18n import N_, _, ngettext, pgettext, translate
from agent.logs import escape, escape_json, is_journal, with_priority
from agent.logs import setup as setup_logging

if TYPE_CHECKING:
    from agent.ops import pipeline
    from agent.patients import Patient
    from agent.spool import Document
    from agent.store import Store

# What a command needs is imported in its handler: `status` and `costs` start in a fraction of
# the time the daemon's modules (asyncio, the watcher, Prometheus, every stage) take to load.
# tests/test_cli.py checks that importing this module loads none of them.
DAY_WORDS = "yesterday|today|YYYY-MM-DD"  # agent.ops.costs.DAY_WORDS, without importing it
EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2
# The channel a document came by (agent.spool.index.source_of), as `show` says it.
SOURCE_WORDS = {"folder": N_("by the incoming folder")}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, exit 2, like every usage error here
        self.exit(EXIT_USAGE, f"docagent: {message} (see docagent --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="docagent", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    sub.add_parser("run", help="the daemon: watch incoming/, process, notify")
    p = sub.add_parser("process", help="run the pipeline now on copies of these files")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--json", action="store_true", help="one JSON object per line and document")
    p = sub.add_parser("status", help="counts per outcome, backlog, last activity")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("health", help="check the daemon and what it depends on")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--notify", action="store_true",
                   help="message the staff when health changes (for the timer)")
    p = sub.add_parser("costs", help="what external calls and OCR cost, by service")
    when = p.add_mutually_exclusive_group()
    when.add_argument("--day", default="yesterday", metavar=DAY_WORDS)
    when.add_argument("--month", metavar="YYYY-MM")
    p.add_argument("--json", action="store_true")
    review = sub.add_parser("review", help="documents waiting for a person's decision")
    rsub = review.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = rsub.add_parser("list", help="the documents waiting, with what was read")
    p.add_argument("--json", action="store_true")
    p = rsub.add_parser("resolve", help="file a waiting document under a patient, or none")
    p.add_argument("document_id")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("patient_id", nargs="?")
    group.add_argument("--none", action="store_true", help="file it under done/unassigned/")
    failed = sub.add_parser("failed", help="the quarantine")
    fsub = failed.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = fsub.add_parser("list", help="failed documents and why")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("retry", help="put a failed document back in the queue")
    p.add_argument("document_id")
    p = sub.add_parser("find", help="a patient's documents, or documents by the words of "
                                    "their text, newest first")
    p.add_argument("query", nargs="*", metavar="PATIENT",
                   help="a name (accents, hyphens and particles as matching compares them), "
                        "a directory id or a birth date")
    p.add_argument("--text", metavar="WORDS", help="words of the text, all of them (accents "
                   "and case do not count; a word also finds the words it begins)")
    p.add_argument("--type", metavar="TYPE", help="a document type: lab-result, "
                   "imaging-report, referral-letter, prescription, insurance-form, other")
    p.add_argument("--from", dest="since", metavar="DATE", help="documents dated this day "
                   "or later (1961-03-12 or 12/03/1961)")
    p.add_argument("--to", dest="until", metavar="DATE", help="documents dated this day or "
                   "earlier")
    p.add_argument("--limit", type=int, default=20, help="at most this many (default 20)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p = sub.add_parser("show", help="a document: what was read, the evidence, where the file "
                                    "is, its history")
    p.add_argument("document_id")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="one JSON object")
    out.add_argument("--pdf", action="store_true",
                     help="write the PDF itself to stdout (docagent show ID --pdf > file.pdf)")
    audit = sub.add_parser("audit", help="the audit log of decisions and accesses")
    asub = audit.add_subparsers(dest="action", required=True, parser_class=_Parser)
    asub.add_parser("verify", help="check the hash chain of every audit file")
    p = asub.add_parser("access", help="who saw a patient's documents, and when")
    p.add_argument("--patient", required=True, metavar="ID", help="the directory id")
    p.add_argument("--json", action="store_true", help="one JSON list")
    patients = sub.add_parser("patients", help="the patient directory")
    psub = patients.add_subparsers(dest="action", required=True, parser_class=_Parser)
    p = psub.add_parser("import", help="load or update patients from a CSV file")
    p.add_argument("file", type=Path)
    p.add_argument("--columns", metavar="FIELD=COLUMN,...",
                   help="which column holds a field, where its header is not one docagent "
                        "knows: e.g. \"id=N° patient,birth_date=Né le\"")
    p = psub.add_parser("list", help="the patient directory, or the patients a query finds")
    p.add_argument("query", nargs="*", metavar="QUERY",
                   help="a name (accents, hyphens and particles as matching compares them), "
                        "a birth date or an id")
    p.add_argument("--json", action="store_true", help="one JSON list")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The command; a reader that stops early (`docagent review list | head -1`) ends it
    quietly with exit 0, as Unix tools do, not with a BrokenPipeError traceback."""
    try:
        code = _command(argv)
        sys.stdout.flush()  # here, where the broken pipe can still be caught
    except BrokenPipeError:
        # Python's own recipe: what is left in stdout's buffer would fail again at exit, so
        # stdout becomes /dev/null for that last flush.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return EXIT_OK
    return code


def _command(argv: Sequence[str] | None) -> int:
    os.umask(modes.UMASK)  # a shell's 022 would leave the spool and the logs world-readable
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    try:
        return _main(args)
    except PermissionError as error:
        _refuse(f"docagent: {privileges.explain(error.filename, argv)}")
        return EXIT_USAGE
    except sqlite3.OperationalError as error:
        if not _READ_ONLY.search(str(error)):
            raise
        _refuse(f"docagent: {privileges.explain(getattr(args, 'db_path', None), argv)}")
        return EXIT_USAGE
    except UsageError as error:
        _refuse(f"docagent: {error.said}")
        return EXIT_USAGE
    except DocagentError as error:
        _refuse(f"docagent: {error.said}. {error.advice}")
        return EXIT_PROBLEM
    except KeyboardInterrupt:
        return 130
    finally:
        for opened in getattr(args, "opened", ()):
            os.close(opened.fd)


def _main(args: argparse.Namespace) -> int:
    # Input files are opened as the caller, before root becomes the service user.
    if args.command == "process":
        args.opened = [privileges.open_input(Path(p), follow_symlinks=False)
                       for p in args.paths]
    elif args.command == "patients" and args.action == "import":
        args.opened = [privileges.open_input(args.file)]
    secrets: dict[str, str] = {}
    user = privileges.service_user(os.environ)
    if user is not None:
        secrets = privileges.read_secrets(os.environ)
        privileges.become(user)
    settings = privileges.with_secrets(config.load(), secrets)
    i18n.use(settings.lang)
    args.db_path = settings.db_path  # for the message if SQLite may not write it
    if args.command == "run":
        from agent.daemon import run as run_daemon

        setup_logging(settings.log_dir, settings.log_level, stream=sys.stdout,
                      json_lines=settings.log_format == "json")
        return run_daemon(settings)
    from agent.spool import ensure_folders
    from agent.store import Store

    # Other commands keep stdout for their answer; the log gets the details.
    setup_logging(settings.log_dir, settings.log_level, stream=None,
                  json_lines=settings.log_format == "json")
    ensure_folders(settings)
    store = Store(settings.db_path)
    handler = _COMMANDS[(args.command, getattr(args, "action", None))]
    return handler(settings, store, args)


# SQLite's words for a database file it may not write or open.
_READ_ONLY = re.compile(r"readonly database|unable to open database", re.IGNORECASE)


def _refuse(line: str) -> None:
    """One line on stderr; under systemd at error priority, so `journalctl -p err` shows it."""
    prefix = "<3>" if is_journal(sys.stderr) else ""
    print(f"{prefix}{line}", file=sys.stderr, flush=True)


def _process(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent import spool
    from agent.lock import exclusive
    from agent.tools.runner import configure as configure_children

    configure_children(memory=settings.child_memory)
    code = EXIT_OK
    with exclusive(settings) as alone:
        if alone:
            spool.recover(settings, store)
        for opened in args.opened:
            # Beside a running daemon the copy is handed to it, as the watcher hands it a
            # dropped file: one reader of the spool, and its notifications are the daemon's.
            outcome = _process_one(settings, store, opened, to_daemon=not alone)
            if outcome.outcome in ("failed", "deferred"):
                code = EXIT_PROBLEM
            if args.json:
                print(_json(outcome.as_dict()), flush=True)
            else:
                print(_process_line(outcome), flush=True)
    _say_if_messages_wait(settings, store)
    return code


def _process_line(outcome: pipeline.Outcome) -> str:
    """One document as `process` tells a person: what became of it, where, and why."""
    where = f" -> {escape(outcome.path)}" if outcome.path else ""
    # A column's word: the outcome's own in English, short in French too.
    word = {"filed": pgettext("process line", "filed"),
            "review": pgettext("process line", "review"),
            "failed": pgettext("process line", "failed"),
            "duplicate": pgettext("process line", "duplicate"),
            "deferred": pgettext("process line", "deferred")}.get(outcome.outcome,
                                                                   outcome.outcome)
    why = outcome.said or outcome.reason or _("ok")
    return (f"{word:<9} {outcome.document_id}  {escape(outcome.file)}{where}  ("
            + _("%(why)s; %(ms)d ms") % {"why": escape(why), "ms": outcome.duration_ms} + ")")


def _process_one(settings: config.Settings, store: Store, opened: privileges.Opened, *,
                 to_daemon: bool) -> pipeline.Outcome:
    from agent import spool
    from agent.ops import pipeline

    started = time.monotonic()
    # The bytes come from the descriptor the caller opened, not from the path again.
    try:
        claim = spool.claim(settings, store, opened.path, keep_source=True, fd=opened.fd)
    except spool.NotTaken as error:
        raise UsageError(f"{opened.path}: {error}") from None
    if claim.duplicate_of is not None:
        earlier = claim.duplicate_of
        return pipeline.Outcome(
            file=claim.original_name, document_id=earlier.id, outcome="duplicate",
            reason=f"same content as {earlier.original_name}, taken in {earlier.received_at}",
            patient_id=earlier.patient_id, pages=earlier.pages, text_source=earlier.text_source,
            duration_ms=int((time.monotonic() - started) * 1000), path=earlier.path,
            said=_("same content as %(file)s, taken in %(when)s") % {
                "file": earlier.original_name, "when": earlier.received_at},
        )
    if to_daemon:
        _note(_("%(file)s: handed to the running daemon as document %(id)s; waiting for its "
                "verdict (Ctrl-C leaves the document with the daemon)")
              % {"file": escape(claim.original_name), "id": claim.document_id})
    else:
        doc = spool.start(store, claim.document_id)
        if doc is not None:
            return pipeline.process(settings, store, doc)
    return _verdict(settings, store, claim.document_id, claim.original_name, started)


def _verdict(settings: config.Settings, store: Store, document_id: str, file: str,
             started: float) -> pipeline.Outcome:
    """Wait for the daemon to decide a document handed to it, and say what it decided."""
    from agent import lock, reasons, spool
    from agent.ops import pipeline

    def outcome(doc: Document, state: str, reason: str | None, said: str) -> pipeline.Outcome:
        return pipeline.Outcome(
            file=file, document_id=doc.id, outcome=state, reason=reason,
            patient_id=doc.patient_id, pages=doc.pages, text_source=doc.text_source,
            duration_ms=int((time.monotonic() - started) * 1000), path=doc.path, said=said)

    asked_daemon = time.monotonic()
    while True:
        current = spool.get(store, document_id)
        if current is not None and current.state == spool.QUEUED and current.deferrals:
            return outcome(current, "deferred", f"{current.reason} (retried by itself)",
                           _("%(reason)s (retried by itself)")
                           % {"reason": translate(current.reason or "")})
        if current is not None and current.state in spool.FINAL_STATES:
            return outcome(current, current.outcome or current.state, current.reason,
                           reasons.of_payload(current.result).text())
        if current is not None and time.monotonic() - asked_daemon >= 1.0:
            asked_daemon = time.monotonic()
            if lock.daemon(settings.home) is None:
                return outcome(current, "deferred", "the daemon stopped before it read the "
                               "document: it waits in the queue for the daemon's next start",
                               _("the daemon stopped before it read the document: it waits "
                                 "in the queue for the daemon's next start"))
        time.sleep(0.2)


def _note(line: str) -> None:
    """A word beside the answer (stderr: stdout may be a pipe reading JSON)."""
    print(f"docagent: {line}", file=sys.stderr, flush=True)


def _say_if_messages_wait(settings: config.Settings, store: Store) -> None:
    """Only the daemon sends the outbox (to Telegram, or to its log without a token): a
    command leaves its messages there for it. With no daemon running, say so."""
    from agent import lock
    from agent.spool import DECIDED

    # New messages only: a decision's edit of messages already sent is not one more to read.
    waiting = store.outbox_backlog()[0] - store.outbox_backlog(DECIDED)[0]
    try:
        running = lock.daemon(settings.home) is not None
    except OSError:
        running = True  # cannot tell: say nothing rather than something wrong
    if waiting and not running:
        _note(ngettext("%(n)d message for the staff waits for the daemon, which is not "
                       "running: it is sent when the daemon starts (systemctl start docagent, "
                       "or docagent run)",
                       "%(n)d messages for the staff wait for the daemon, which is not "
                       "running: they are sent when the daemon starts (systemctl start "
                       "docagent, or docagent run)", waiting) % {"n": waiting})


def _status(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent.ops import status

    figures = status.gather(settings, store)
    print(json.dumps(figures) if args.json else status.render(figures))
    return EXIT_OK


def _costs(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent.ops import costs

    if args.month:
        try:
            period = costs.month(args.month)
        except ValueError:
            raise UsageError(N_("--month takes YYYY-MM (got %(got)r)"), got=args.month) from None
    else:
        day = costs.named_day(args.day)
        if day is None:
            raise UsageError(N_("--day takes yesterday, today or YYYY-MM-DD (got %(got)r)"),
                             got=args.day)
        period = costs.day(day)
    report = costs.report(settings.log_dir, period)
    print(json.dumps(report) if args.json else costs.render(report))
    return EXIT_OK


def _brief(doc: Document) -> dict[str, Any]:
    """A document waiting for a person, or failed, as `review list` and `failed list` give it."""
    from agent.stages.record import Record

    record = Record.from_json(doc.result)
    read = record.fields.as_dict() if record.fields else {}
    return {
        "document_id": doc.id, "file": doc.original_name, "path": doc.path,
        "reason": doc.reason, "reason_kind": doc.reason_kind,
        "received_at": doc.received_at,
        "read": {k: (v or {}).get("value") for k, v in read.items()
                 if isinstance(v, dict) or v is None},
        "document_type": record.document_type,
        "candidates": [c.as_dict() for c in record.candidates],
        "action": record.failure.action if record.failure else None,
    }


def _review_list(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent import disclosure, evidence, reasons
    from agent.ops import decisions
    from agent.stages.doctype import in_words
    from agent.stages.record import Record

    waiting = decisions.review_waiting(store)
    if args.json:
        for doc in waiting:
            print(_json(_brief(doc)))
        return EXIT_OK
    if not waiting:
        print(_("nothing waiting for review"))
    for doc in waiting:
        record = Record.from_json(doc.result)
        read = record.fields.as_dict() if record.fields else {}
        # Read from the document, named by whoever dropped it, typed into the directory:
        # every text is escaped, so a name cannot move the cursor or recolour the terminal.
        print(escape(f"{doc.id}  {doc.original_name}  ({in_words(record.document_type)})"))
        print(escape("    " + _("read: %(read)s   why: %(reason)s") % {
            "read": disclosure.name_read(read, disclosure.FULL),
            "reason": reasons.of_payload(doc.result).text()}))
        for candidate in record.candidates[:3]:
            said = evidence.in_words(candidate.evidence(), disclosure.FULL)
            print(escape("    " + _("candidate %(id)s: %(patient)s — %(evidence)s") % {
                "id": candidate.patient.id, "evidence": said or _("nothing agrees"),
                "patient": disclosure.person(candidate.patient.as_dict(), disclosure.FULL)}))
    if waiting:
        print(_("To decide: docagent review resolve DOC_ID PATIENT_ID (or --none)"))
    return EXIT_OK


def _review_resolve(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent.ops import decisions

    patient = None if args.none else args.patient_id
    who = f"shell:{_user()}"
    decision = decisions.resolve(settings, store, args.document_id, patient, who=who)
    print(_("filed %(id)s -> %(path)s") % {"id": decision.document_id,
                                            "path": escape(decision.path)})
    _say_if_messages_wait(settings, store)
    return EXIT_OK


def _not_downloaded_from(doc: Document) -> str:
    """Where a failed document that was never downloaded still is, and its reason file."""
    origin = doc.origin
    came = {"mail": f"mail {origin.get('sender') or ''}",
            "telegram": f"telegram user {origin.get('user_id') or ''}"}.get(origin.channel,
                                                                           origin.channel)
    reason_file = doc.result.get("reason_file")
    return came.strip() + (f" ({reason_file})" if reason_file else "")


def _failed_list(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent import errors, reasons
    from agent.ops import decisions

    failed = decisions.failed_documents(store)
    if args.json:
        for doc in failed:
            print(_json(_brief(doc)))
        return EXIT_OK
    if not failed:
        print(_("no failed documents"))
    for doc in failed:
        why = reasons.of_payload({"outcome": "failed", **doc.result}).text()
        where = doc.path or _not_downloaded_from(doc)
        print(escape(f"{doc.id}  {where}  [{doc.reason_kind}] {why}"))
        kind = errors.kind_class(doc.reason_kind or "")
        action = errors.advice(kind) if kind is not None else doc.result.get("action")
        if action:
            print(escape(f"    {action}"))
    return EXIT_OK


def _retry(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent.ops import decisions

    decision = decisions.retry(settings, store, args.document_id, who=f"shell:{_user()}")
    print(_("queued %(id)s again") % {"id": decision.document_id})
    return EXIT_OK


def _patients_import(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent.directory_file import ImportFileError, parse_columns
    from agent.lock import exclusive
    from agent.ops import rematch
    from agent.patients import import_csv

    try:
        columns = parse_columns(args.columns) if args.columns else {}
        with open(args.opened[0].fd, "rb", closefd=False) as handle:
            report = import_csv(store, handle, name=str(args.file), columns=columns)
    except ImportFileError as error:
        raise UsageError(str(error)) from None
    print(", ".join((
        ngettext("%(n)d added", "%(n)d added", report.added) % {"n": report.added},
        ngettext("%(n)d updated", "%(n)d updated", report.updated) % {"n": report.updated},
        ngettext("%(n)d unchanged", "%(n)d unchanged", report.unchanged)
        % {"n": report.unchanged},
        ngettext("%(n)d rejected", "%(n)d rejected", len(report.rejected))
        % {"n": len(report.rejected)})))
    for line, reason in report.rejected:
        print("  " + escape(_("line %(line)d: %(reason)s") % {"line": line, "reason": reason}))
    if report.rejected:
        print(_("The rejected lines were not imported (the others were): correct them in the "
                "file and import it again."))
    if report.changed:
        # A patient just added may be the one a waiting document was about.
        with exclusive(settings):
            refiled = rematch.rematch_review(settings, store)
        print(ngettext("%(filed)d of %(n)d document waiting in review re-filed",
                       "%(filed)d of %(n)d documents waiting in review re-filed",
                       refiled.examined) % {"filed": len(refiled.filed), "n": refiled.examined})
        for decision in refiled.filed:
            print("  " + _("filed %(id)s -> %(path)s") % {"id": decision.document_id,
                                                         "path": escape(decision.path)})
        if refiled.filed:
            _say_if_messages_wait(settings, store)
    return EXIT_PROBLEM if report.rejected else EXIT_OK


def _patients_list(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent.directory_file import DateProblem
    from agent.patients import search

    query = " ".join(args.query).strip()
    try:
        found = search(store, query)
    except DateProblem as problem:
        raise UsageError(problem.message) from None
    if args.json:
        print(escape_json(json.dumps([_patient_json(p) for p in found], ensure_ascii=False)))
        return EXIT_OK
    if found:
        print(_table(found))
    if query:
        print(ngettext("%(n)d patient matches %(query)s", "%(n)d patients match %(query)s",
                       len(found)) % {"n": len(found), "query": escape(repr(query))})
    elif found:
        print(ngettext("%(n)d patient", "%(n)d patients", len(found)) % {"n": len(found)})
    else:
        print(_("The directory is empty: import it with docagent patients import FILE.csv"))
    return EXIT_OK


def _patient_json(patient: Patient) -> dict[str, str | None]:
    """Every field, null where the directory has none: the same keys for each patient."""
    return {"id": patient.id, "last_name": patient.last_name,
            "first_name": patient.first_name, "birth_date": patient.birth_date,
            "birth_name": patient.birth_name, "usage_name": patient.usage_name}


def _table(patients: list[Patient]) -> str:
    """The patients as aligned columns under translated headers; a column of names nobody
    has (birth name, usage name) is left out."""
    columns = [(_("ID"), [p.id for p in patients]),
               (_("Last name"), [p.last_name for p in patients]),
               (_("First name"), [p.first_name for p in patients]),
               (_("Birth date"), [p.birth_date or "" for p in patients]),
               (_("Birth name"), [p.birth_name or "" for p in patients]),
               (_("Usage name"), [p.usage_name or "" for p in patients])]
    shown = [(title, [escape(v) for v in values]) for title, values in columns[:4]]
    shown += [(title, [escape(v) for v in values]) for title, values in columns[4:]
              if any(values)]
    widths = [max(len(title), *(len(v) for v in values)) for title, values in shown]
    rows = [[title for title, _values in shown],
            *([values[i] for _title, values in shown] for i in range(len(patients)))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
             for row in rows]
    return "\n".join(line.rstrip() for line in lines)


def _audit_verify(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent import audit

    result = audit.verify(settings.log_dir, settings.db_path)
    for line in result.problems:
        print(f"BROKEN  {line}")
    for line in result.warnings:
        print(f"warning {line}")
    head = result.head
    if head is None:
        print(f"warning no head recorded in {settings.db_path} yet (the next entry records "
              "it): only the chain was checked")
    else:
        print(f"head    seq {head.seq}, {head.file} line {head.lines}, recorded {head.at} "
              "(the journal keeps each head too: journalctl -t docagent-audit)")
    verdict = "intact" if result.ok else "BROKEN"
    print(f"audit log {verdict}: {result.entries} entries in {result.files} file(s)")
    return EXIT_OK if result.ok else EXIT_PROBLEM


# --- finding documents, and who saw them -----------------------------------------------------


def _day_arg(value: str | None, option: str) -> str | None:
    from agent.directory_file import DateProblem, read_date

    if value is None:
        return None
    try:
        return read_date(value).isoformat()
    except DateProblem as problem:
        raise UsageError(N_("%(option)s: the date %(problem)s"), option=option,
                         problem=problem.message) from None


def _ready_index(settings: config.Settings, store: Store) -> None:
    """Documents filed before the index existed are indexed first (the daemon does it at its
    start; without one, the first search does), saying so on stderr."""
    from agent.spool import index

    if index.complete(store):
        return
    waiting = index.waiting(store)
    if waiting:
        _note(ngettext("indexing %(n)d document filed before the search index existed (once)",
                       "indexing %(n)d documents filed before the search index existed (once)",
                       waiting) % {"n": waiting})
    index.backfill_all(settings, store)


def _find(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent import disclosure
    from agent.directory_file import DateProblem
    from agent.ops import finding

    if args.limit < 1:
        raise UsageError(N_("--limit takes a number of documents, 1 or more"))
    ask = finding.Ask(patient=" ".join(args.query).strip() or None, words=args.text or None,
                      document_type=args.type, since=_day_arg(args.since, "--from"),
                      until=_day_arg(args.until, "--to"), limit=args.limit)
    _ready_index(settings, store)
    try:
        answer = finding.find(store, ask)
    except DateProblem as problem:
        raise UsageError(problem.message) from None
    finding.record_search(settings, f"shell:{_user()}", answer, channel=finding.SHELL)
    if args.json:
        print(escape_json(json.dumps({
            "patients": [_patient_json(p) for p in answer.patients],
            "documents": [_hit_json(h) for h in answer.documents], "total": answer.total},
            ensure_ascii=False)))
        return EXIT_OK
    if ask.patient:
        if not answer.patients:
            print(escape(_("No patient in the directory matches %(query)s.")
                         % {"query": repr(ask.patient)}))
            return EXIT_OK
        print(ngettext("%(n)d patient:", "%(n)d patients:", len(answer.patients))
              % {"n": len(answer.patients)})
        for patient in answer.patients:
            print(escape("  " + disclosure.person(patient.as_dict(), disclosure.FULL)))
    if answer.documents:
        print(_documents_table(answer.documents))
    shown = len(answer.documents)
    if shown < answer.total:
        print(_("%(shown)d of %(total)d documents, newest first (--limit for more)")
              % {"shown": shown, "total": answer.total})
    elif shown:
        print(ngettext("%(n)d document", "%(n)d documents, newest first", shown)
              % {"n": shown})
    else:
        print(_("No document fits."))
    if shown:
        print(_("A document's file, evidence and history: docagent show DOCUMENT"))
    return EXIT_OK


def _hit_json(hit: Any) -> dict[str, Any]:
    entry = hit.entry
    return {"document_id": entry.document_id, "state": entry.state,
            "patient_id": entry.patient_id,
            "patient": _patient_json(hit.patient) if hit.patient else None,
            "document_type": entry.document_type, "document_date": entry.document_date,
            "received_at": entry.received_at, "pages": entry.pages,
            "source": {"channel": entry.source, "detail": entry.source_detail},
            "path": entry.path}


def _filed_under(entry: Any, patient: Patient | None) -> str:
    """Who a document is filed under, in a table's cell."""
    if entry.state == "review":
        return _("(waiting for a decision)")
    if entry.patient_id is None:
        return _("(unassigned)")
    if patient is None:
        return f"#{entry.patient_id}"
    return f"{patient.last_name.upper()} {patient.first_name} (#{patient.id})"


def _documents_table(hits: Sequence[Any]) -> str:
    from agent.stages.doctype import in_words

    columns = [(_("Date"), [h.entry.sort_date for h in hits]),
               (_("Type"), [in_words(h.entry.document_type) for h in hits]),
               (_("Pages"), [str(h.entry.pages or "") for h in hits]),
               (_("Patient"), [_filed_under(h.entry, h.patient) for h in hits]),
               (_("Document"), [h.entry.document_id for h in hits]),
               (_("Source"), [h.entry.source_detail or h.entry.source for h in hits])]
    shown = [(title, [escape(v) for v in values]) for title, values in columns]
    widths = [max(len(title), *(len(v) for v in values)) for title, values in shown]
    rows = [[title for title, _values in shown],
            *([values[i] for _title, values in shown] for i in range(len(hits)))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
                     .rstrip() for row in rows)


def _show(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent.ops import finding

    who = f"shell:{_user()}"
    shown = finding.show(settings, store, args.document_id)
    doc = shown.doc
    if args.pdf:
        pdf = settings.home / doc.path if doc.path else None
        if pdf is None or doc.state not in ("filed", "review") or not pdf.is_file():
            raise UsageError(N_("document %(id)s has no PDF to give (it is %(state)s)"),
                             id=doc.id, state=_state_term(doc.state))
        if sys.stdout.isatty():
            raise UsageError(N_("the PDF goes to a file or a program, not to the terminal: "
                                "docagent show %(id)s --pdf > document.pdf"), id=doc.id)
        data = pdf.read_bytes()
        finding.record_access(settings, finding.DOWNLOADED, who, doc, path=doc.path)
        sys.stdout.buffer.write(data)
        return EXIT_OK
    finding.record_access(settings, finding.SHOWN, who, doc, channel=finding.SHELL)
    if args.json:
        print(escape_json(json.dumps({
            "document_id": doc.id, "state": doc.state, "outcome": doc.outcome,
            "original_name": doc.original_name, "received_at": doc.received_at,
            "patient_id": doc.patient_id,
            "patient": _patient_json(shown.patient) if shown.patient else None,
            "source": {"channel": shown.entry.source, "detail": shown.entry.source_detail}
            if shown.entry else None,
            "files": [str(p) for p in shown.files], "record": doc.result,
            "history": list(shown.history)}, ensure_ascii=False)))
        return EXIT_OK
    print("\n".join(escape(line) for line in _show_lines(settings, shown)))
    return EXIT_OK


def _state_term(state: str) -> str:
    from agent.spool import state_word

    return state_word(state)


def _show_lines(settings: config.Settings, shown: Any) -> list[str]:
    from agent import disclosure, evidence, reasons
    from agent.stages.doctype import in_words
    from agent.stages.record import Record

    doc = shown.doc
    record = Record.from_json(doc.result)
    read = record.fields.as_dict() if record.fields else {}
    if doc.state == "filed" and doc.patient_id:
        where = _("filed under %(patient)s") % {"patient": disclosure.person(
            shown.patient.as_dict() if shown.patient else {"id": doc.patient_id,
                                                            "last_name": "?"},
            disclosure.FULL)}
    elif doc.state == "filed":
        where = _("filed under no patient (unassigned)")
    else:
        where = _state_term(doc.state)
    lines = [_("Document %(id)s — %(where)s") % {"id": doc.id, "where": where}]
    channel = shown.entry.source if shown.entry else "folder"
    source = translate(SOURCE_WORDS[channel]) if channel in SOURCE_WORDS else channel
    rows = [(_("file"), str(shown.files[0]) if shown.files else _("(not on disk)")),
            *((_("beside it"), str(p)) for p in shown.files[1:]),
            (_("received"), _("%(when)s as %(name)s (%(source)s)") % {
                "when": _local_time(doc.received_at), "name": doc.original_name,
                "source": source}),
            (_("type"), in_words(record.document_type) + (
                f" («{read['document_type_evidence']}»)" if read.get("document_type_evidence")
                else "")),
            (_("date"), record.document_date or _("none read")),
            (_("pages"), f"{record.pages or '?'} ({record.text_source or '?'})"),
            (_("read"), disclosure.name_read(read, disclosure.FULL)),
            (_("why"), reasons.of_payload(doc.result).text())]
    said = evidence.in_words(record.evidence(), disclosure.FULL)
    if said:
        rows.append((_("evidence"), evidence.sentence(said)))
    for candidate in record.candidates[:3] if doc.state == "review" else ():
        rows.append((_("candidate"), disclosure.person(candidate.patient.as_dict(),
                                                      disclosure.FULL) + " — "
                     + (evidence.in_words(candidate.evidence(), disclosure.FULL)
                        or _("nothing agrees"))))
    if record.decision is not None:
        rows.append((_("decided by"), f"{record.decision.by} ({record.decision.at[:19]})"))
    width = max(len(label) for label, _value in rows)
    lines += [f"  {label.ljust(width)}  {value}" for label, value in rows]
    lines.append(_("History (audit log):"))
    for entry in shown.history:
        what = entry.get("patient_id") or entry.get("name") or entry.get("reason") or ""
        lines.append(f"  {_local_time(entry.get('ts'))}  "
                     f"{entry.get('event', '')!s:<10} {entry.get('actor') or ''}"
                     + (f"  {what}" if what else ""))
    return lines


def _local_time(stamp: object) -> str:
    """An audit line's time (UTC) as the server's clock reads it: 2026-12-02 15:03:07."""
    from datetime import datetime

    try:
        return datetime.fromisoformat(str(stamp)).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(stamp)


def _audit_access(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    from agent.ops import finding

    found = finding.accesses(settings, store, args.patient)
    if args.json:
        print(escape_json(json.dumps(
            [{"ts": e.get("ts"), "event": e.get("event"), "actor": e.get("actor"),
              "channel": e.get("channel"), "chat_id": e.get("chat_id"),
              "query": e.get("query"), "documents": e["documents_of_patient"]}
             for e in found], ensure_ascii=False)))
        return EXIT_OK
    words = {finding.SEARCHED: N_("searched"), finding.SHOWN: N_("shown"),
             finding.OPENED: N_("opened"), finding.DOWNLOADED: N_("downloaded")}
    if not found:
        print(_("Nobody has searched, seen or been sent documents of %(id)s.")
              % {"id": args.patient})
        return EXIT_OK
    print(escape(_("Who saw documents of %(id)s, oldest first:") % {"id": args.patient}))
    for entry in found:
        when = _local_time(entry.get("ts"))
        what = translate(words.get(str(entry.get("event")), str(entry.get("event"))))
        query = entry.get("query") or {}
        asked = " ".join(str(v) for v in query.values()) if isinstance(query, dict) else ""
        docs = entry["documents_of_patient"]
        detail = (_("“%(query)s”") % {"query": asked} + " " if asked else "") + (ngettext(
            "%(n)d document: %(ids)s", "%(n)d documents: %(ids)s", len(docs))
            % {"n": len(docs), "ids": ", ".join(docs)} if docs else _("the patient only"))
        print(escape(f"{when}  {entry.get('actor') or '?'}  {what}  {detail}"))
    return EXIT_OK


def _json(record: dict[str, Any]) -> str:
    """One JSON line, readable accents, and nothing a terminal would obey."""
    return escape_json(json.dumps(record, ensure_ascii=False))


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _health(settings: config.Settings, store: Store, args: argparse.Namespace) -> int:
    import logging

    from agent.lock import exclusive
    from agent.ops import health

    checks = health.run_checks(settings, store)
    journal = is_journal(sys.stdout)
    print(health.as_json(checks) if args.json else health.render(checks, journal=journal),
          flush=True)
    if args.notify:
        health.remember_and_alert(store, checks)
        if settings.telegram_token and settings.telegram_chat_ids \
                and health.pending_alerts(store):
            from agent.notify.telegram import (
                sender as telegram,  # PTB loads slowly: only with an alert to send
            )

            # Only the daemon sends the outbox: if the lock is free, none runs and the alert
            # would wait for it. We send it ourselves, holding the lock (a daemon starting
            # meanwhile waits for us, then finds the alert sent).
            with exclusive(settings, hold=telegram.ALONE_HOLD) as alone:
                if alone:
                    sent, line = telegram.send_alone(settings, store, "health")
                    level = logging.WARNING if sent else logging.ERROR
                    print(with_priority(line, level) if journal else line,
                          file=sys.stderr if args.json else sys.stdout)
    return EXIT_OK if all(c.ok for c in checks) else EXIT_PROBLEM


_COMMANDS = {
    ("process", None): _process,
    ("status", None): _status,
    ("health", None): _health,
    ("costs", None): _costs,
    ("review", "list"): _review_list,
    ("review", "resolve"): _review_resolve,
    ("failed", "list"): _failed_list,
    ("retry", None): _retry,
    ("patients", "import"): _patients_import,
    ("patients", "list"): _patients_list,
    ("audit", "verify"): _audit_verify,
    ("audit", "access"): _audit_access,
    ("find", None): _find,
    ("show", None): _show,
}


if __name__ == "__main__":
    sys.exit(main())
