"""DOCAGENT_PHI=minimal: no identity read from a document ever reaches the Bot API.

One real `docagent run` against the loopback Bot API gets documents that produce every reason a
document can be put to a person for, each failure the pipeline produces cheaply, a duplicate,
and every kind of message (filed, filed grouped, review, failed, duplicate, decisions after a
button press and after a shell resolve, a re-match after an import, /review, /failed, /status,
/health, the digest, a health alert), plus crafted Open presses. Then every request the
emulator received (raw body, parsed fields, uploaded files) is searched for each name and birth
date the documents carry, accent-folded and in any case.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import unicodedata
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from agent import config
from agent.ops import digest
from agent.store import Store
from tests import pdfgen
from tests.botapi import BotApi, Received, Sent
from tests.conftest import Spool
from tests.daemonproc import Running, drop, states
from tests.pdfgen import report
from tests.telegram_helpers import (
    STAFF,
    TOKEN,
    all_sent,
    ask_bot,
    audit_lines,
    doc_id,
    message_about,
    telegram_env,
    wait_for_bot,
)

pytestmark = [pytest.mark.daemon, pytest.mark.ocr]

# Messages go to the staff member's private chat: a group's notifications are paced at one
# every 4 s, a private chat's at one a second, and this test sends about forty.
CHAT = STAFF

# The practice's directory for this test: names that occur in no word docagent itself writes,
# so that finding one in a request can only mean it leaked.
DIRECTORY = """id,last_name,first_name,birth_date
Q001,QUINTANILLA,Honorine,1958-06-23
Q002,VERMANDOIS,Anatole,1944-12-01
Q003,OLLIVRAULT,Gwenaëlle,1991-02-17
Q004,TRÉGUIER,Lucienne,
Q005,TRÉGUIER,Lucienne,1950-01-01
Q006,KERBRAT,Ysoline,1966-04-08
Q007,KERBRAT,Ysoline,1972-10-29
Q008,BOISSIÈRE,Théodore,1939-05-14
Q009,EL AMRANI,Youssef,1990-07-21
Q010,BRISEBOIS,Odile,1957-09-25
"""
ZORRO = "Q011,ZORRO,Diego,1979-06-02\n"  # imported later: the waiting document re-files

# Every read name and birth date the documents below carry (what a parser could read).
NAMES = ["QUINTANILLA", "Honorine", "VERMANDOIS", "Anatole", "OLLIVRAULT", "Gwenaëlle",
         "TRÉGUIER", "Lucienne", "KERBRAT", "Ysoline", "BOISSIÈRE", "Théodore", "AMRANI",
         "Youssef", "BRISEBOIS", "Odile", "ZORRO", "Diego", "VALDOMIR", "QUESNOY"]
BIRTHS = ["1958-06-23", "1944-12-01", "1991-02-17", "1950-01-01", "1966-04-08", "1972-10-29",
          "1939-05-14", "1990-07-21", "1957-09-25", "1979-06-02", "1983-07-14", "1987-03-11",
          "1961-11-05", "1944-01-12", "1988-02-02"]


def _lines(name_line: str | None, birth: str | None) -> list[str]:
    """A lab report whose patient lines are exactly these (None: left out)."""
    out = []
    for line in pdfgen.lab_report_lines(last="X", first="Y", birth="Z", doc_date="05/11/2026",
                                        extra_names=False):
        if line.startswith("Nom :"):
            out += [name_line] if name_line else []
        elif line.startswith("Né(e)"):
            out += [f"Né(e) le : {birth}"] if birth else []
        else:
            out.append(line)
    return out


def _text(tmp: Path, name: str, lines: list[str], pages: int = 1) -> Path:
    return pdfgen.text_pdf([lines] * pages, tmp / name)


def reviews(tmp: Path) -> dict[str, tuple[Path, str]]:
    """Each document put to a person, with (a word of) the reason it must be put for."""
    return {
        "no-name": (_text(tmp, "sans-nom-14-07-1983.pdf", _lines(None, "14/07/1983")),
                    "no patient name was found"),
        "last-only": (_text(tmp, "valdomir.pdf", _lines("Nom : VALDOMIR", "11/03/1987")),
                      "only a last name"),
        "initial": (_text(tmp, "quesnoy-jp.pdf",
                          _lines("Nom : QUESNOY    Prénom : J.-P.", "05/11/1961")),
                    "only an initial"),
        "nobody": (_text(tmp, "zorro-diego.pdf", report("ZORRO", "Diego", "02/06/1979")),
                   "no patient named"),
        # The birth date read has day and month exchanged: evidence says so.
        "differs": (_text(tmp, "vermandois-naissance.pdf",
                          report("VERMANDOIS", "Anatole", "12/01/1944")),
                    "no record agrees on both names and birth date"),
        "several": (_text(tmp, "kerbrat-ysoline.pdf",
                          _lines("Nom : KERBRAT    Prénom : Ysoline", None)),
                    "patients agree with what was read"),
        "homonyms": (_text(tmp, "treguier-lucienne.pdf",
                           report("TRÉGUIER", "Lucienne", "02/02/1988")),
                     "share this name and the birth date does not tell them apart"),
        "swapped": (_text(tmp, "boissiere-theodore.pdf",
                          _lines("Nom : Théodore    Prénom : BOISSIÈRE", None)),
                    "only in the other order"),
        # The record is EL AMRANI: a particle apart, noted in the evidence.
        "particle": (_text(tmp, "amrani-youssef.pdf", report("AMRANI", "Youssef", "21/07/1990")),
                     "no patient named"),
        "low-confidence": (pdfgen.write_sample_scan(tmp / "brisebois-odile-scan.pdf",
                                                    last="BRISEBOIS", first="Odile",
                                                    birth="25/09/1957", seed=3),
                           "low confidence"),
    }


def failures(tmp: Path) -> dict[str, Path]:
    """Each failure kind the pipeline produces cheaply, each file named after its patient."""
    good = _text(tmp, "src.bin", report("ZORRO", "Diego", "02/06/1979"))
    notes = tmp / "zorro-diego-notes.pdf"
    notes.write_text("ZORRO Diego, né le 02/06/1979 : compte rendu\n" * 20, encoding="utf-8")
    empty = tmp / "zorro-diego-vide.pdf"
    empty.write_bytes(b"")
    huge = tmp / "zorro-diego-gros.pdf"
    huge.write_bytes(good.read_bytes() + b"%" + b"0" * (3 * 1024**2))
    poster = pdfgen._write_pdf([  # one blank page of 5 x 5 m: no text layer, too big to OCR
        b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 14400 14400] /Resources << >> >>"],
        tmp / "zorro-diego-affiche.pdf")
    return {
        "not-pdf": notes,
        "empty": empty,
        "too-large": huge,
        "encrypted": pdfgen.encrypted_pdf(good, tmp / "zorro-diego-verrou.pdf"),
        "too-many-pages": _text(tmp, "zorro-diego-long.pdf", report("ZORRO", "Diego",
                                                                    "02/06/1979"), pages=3),
        "unreadable": pdfgen.empty_pages_pdf(1, tmp / "zorro-diego-blanc.pdf"),
        "page-too-large": poster,
        "incomplete": pdfgen.truncated(good, tmp / "zorro-diego-coupe.pdf"),
    }


# --- searching what the emulator received ---------------------------------------------------


def fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def date_forms(iso: str) -> list[str]:
    """A birth date as documents and messages write it."""
    y, m, d = iso.split("-")
    return [iso, f"{y}/{m}/{d}", f"{d}/{m}/{y}", f"{d}.{m}.{y}", f"{d}-{m}-{y}",
            f"{d}/{m}/{y[2:]}", f"{d}{m}{y}"]


def needles(spool: Spool) -> set[str]:
    """The names and birth dates above, every one the database says was read, and those of
    every patient in the directory (a candidate is shown as initials, never by name)."""
    found = {n for name in NAMES for n in (name, *name.split()) if len(n) >= 3}
    births = set(BIRTHS)
    with sqlite3.connect(spool.home / "state.db") as db:
        for last, first, birth in db.execute("SELECT last_name, first_name, birth_date "
                                             "FROM patients"):
            # Four letters at least: "ALI" of BEN ALI is in words docagent writes ("valid").
            found |= {w for w in f"{last} {first}".split() if len(w) >= 4}
            births |= {birth} if birth else set()
        for (raw,) in db.execute("SELECT result_json FROM documents WHERE result_json "
                                 "IS NOT NULL"):
            fields = json.loads(raw).get("fields") or {}
            for key in ("last_name", "first_name", "birth_name"):
                value = (fields.get(key) or {}).get("value")
                found |= {w for w in str(value or "").replace("-", " ").split() if len(w) >= 3
                          and not w.endswith(".")}
            birth = (fields.get("birth_date") or {}).get("value")
            if birth:
                births.add(str(birth))
    return {fold(n) for n in found} | {f for b in births for f in date_forms(b)}


def views(request: Received) -> Iterator[str]:
    """Every way the bytes of a request can be read: raw, URL-decoded, parsed, uploads."""
    raw = request.body.decode("utf-8", "replace")
    yield raw
    yield unquote_plus(raw)
    yield json.dumps(request.params, ensure_ascii=False)
    for value in request.params.values():
        yield str(value)
        if isinstance(value, str) and value[:1] in ("[", "{"):
            with contextlib.suppress(ValueError):
                yield json.dumps(json.loads(value), ensure_ascii=False)
    for name, content in request.files.values():
        yield name
        yield content.decode("utf-8", "replace")
        yield content.decode("latin-1")


def leaks(api: BotApi, secrets: set[str]) -> list[str]:
    """One line per (request, secret) found, with where."""
    found: dict[tuple[int, str], str] = {}
    for number, request in enumerate(api.received):
        for view in views(request):
            folded = fold(view)
            for secret in secrets:
                at = folded.find(secret)
                if at >= 0 and (number, secret) not in found:
                    found[number, secret] = (f"request {number} ({request.method}): {secret!r} "
                                             f"in …{view[max(0, at - 60): at + 60]!r}…")
    return [found[key] for key in sorted(found)]


# --- driving the daemon -------------------------------------------------------------------


@pytest.fixture
def private_api() -> Iterator[BotApi]:
    api = BotApi(TOKEN, {CHAT: "Claire"}).serve()
    yield api
    api.close()


def press(api: BotApi, run: Running, message: Sent, data: str, *,
          forged: bool = False) -> dict[str, Any]:
    query = api.press(CHAT, message.message_id, data, STAFF, forged=forged)
    answer: dict[str, Any] = run.wait_for(lambda: api.answer_to(query), 30,
                                          f"the answer to {data}")
    return answer


def settle(spool: Spool, run: Running, names: list[str], timeout: float = 120) -> None:
    final = ("filed", "review", "failed")
    run.wait_for(lambda: all(states(spool).get(n) in final for n in names), timeout,
                 f"{names} to be processed")


# The daemon's settings, and the shell's (a command's messages wait for the daemon to send).
SETTINGS = {"DOCAGENT_PHI": "minimal", "DOCAGENT_MIN_NAME_CONFIDENCE": "100",
            "DOCAGENT_MAX_PAGES": "2", "DOCAGENT_MAX_BYTES": "2000000",
            "DOCAGENT_INCOMPLETE_SECONDS": "3", "TELEGRAM_BOT_TOKEN": TOKEN,
            "TELEGRAM_CHAT_IDS": str(CHAT)}


def test_minimal_phi_no_read_identity_reaches_the_bot_api(
        spool: Spool, private_api: BotApi, tmp_path: Path) -> None:
    api = private_api
    directory = spool.root / "directory.csv"
    directory.write_text(DIRECTORY, encoding="utf-8")
    spool.run("patients", "import", str(directory), check=True)
    shell = {**SETTINGS, "TELEGRAM_API_BASE_URL": api.base_url}
    run = Running(spool, **telegram_env(api, chat=CHAT, **shell))
    wait_for_bot(run)
    incoming = spool.home / "incoming"

    # Filed, alone: one message.
    single = _text(tmp_path, "quintanilla-honorine.pdf",
                   report("QUINTANILLA", "Honorine", "23/06/1958"))
    drop(single, incoming)
    settle(spool, run, [single.name])
    run.wait_for(lambda: all_sent(spool), 60, "the filed message")

    # Filed at once while Telegram is away: one grouped message when it is back.
    api.outage("502")
    tried = len(api.received)
    group = [_text(tmp_path, "vermandois-anatole.pdf", report("VERMANDOIS", "Anatole",
                                                               "01/12/1944")),
             _text(tmp_path, "ollivrault-gwenaelle.pdf", report("OLLIVRAULT", "Gwenaëlle",
                                                                 "17/02/1991"))]
    for pdf in group:
        drop(pdf, incoming)
    settle(spool, run, [p.name for p in group])
    # The sender met the outage after both were filed: its next try takes them together.
    run.wait_for(lambda: len([r for r in api.received[tried:] if r.method == "sendMessage"])
                 >= 2, 60, "the sender to try during the outage")
    api.outage(None)
    run.wait_for(lambda: all_sent(spool), 90, "the grouped message")
    assert any((m.text or "").startswith("2 documents filed:") for m in api.sent(CHAT))

    # Every reason for review, every cheap failure, a duplicate.
    asked, failing = reviews(tmp_path), failures(tmp_path)
    for pdf, _ in asked.values():
        drop(pdf, incoming)
    for pdf in failing.values():
        drop(pdf, incoming)
    drop(single, incoming, "quintanilla-honorine-copie.pdf")
    settle(spool, run, [p.name for p, _ in asked.values()] + [p.name for p in failing.values()],
           timeout=180)
    with sqlite3.connect(spool.home / "state.db") as db:
        rows = {name: (state, kind, reason) for name, state, kind, reason in db.execute(
            "SELECT original_name, state, reason_kind, reason FROM documents")}
    for label, (pdf, why) in asked.items():
        assert rows[pdf.name][0] == "review" and why in rows[pdf.name][2], (label, rows[pdf.name])
    assert {kind: rows[pdf.name][1] for kind, pdf in failing.items()} == {k: k for k in failing}
    run.wait_for(lambda: all_sent(spool), 120, "the review, failure and duplicate messages")

    # A decision by a button press (the first candidate), and one from the shell.
    several = doc_id(spool, asked["several"][0].name)
    [request] = message_about(api, several, CHAT)
    answer = press(api, run, request, request.buttons[0]["callback_data"])
    run.wait_for(lambda: states(spool)[asked["several"][0].name] == "filed", 30, "the press")
    assert answer["text"].startswith("Filed under Y.K.")
    run.wait_for(lambda: request.edits, 30, "the request edited with the decision")
    spool.run("review", "resolve", doc_id(spool, asked["homonyms"][0].name), "Q004",
              check=True, env=shell)

    # A patient who is not among the buttons, from the phone: a name and a birth date typed
    # are not searched (nor repeated), a directory id is; the pick edits the request.
    initial = doc_id(spool, asked["initial"][0].name)
    [asking] = message_about(api, initial, CHAT)
    for typed, answer in (("QUINTANILLA Honorine 23/06/1958", "No patient has that"),
                          ("Q001", "1 patient found")):
        api.inject_message(CHAT, STAFF, typed, reply_to=asking.message_id)
        [found] = run.wait_for(lambda a=answer: [m for m in api.sent(CHAT) if (
            m.text or "").startswith(a)], 30, "the search's answer")
    assert [b["text"] for b in found.buttons] == ["1. H.Q. 1958 #Q001"]
    press(api, run, found, found.buttons[0]["callback_data"])
    run.wait_for(lambda: states(spool)[asked["initial"][0].name] == "filed", 30, "the pick")
    run.wait_for(lambda: asking.edits, 30, "the request edited with the pick")

    # Open, forged: refused under minimal, for a filed document and for one in review.
    before = len(api.received)
    refused = []
    for name in (single.name, asked["nobody"][0].name):
        document = doc_id(spool, name)
        told = message_about(api, document, CHAT)[0]
        refused.append(press(api, run, told, f"o:{document}", forged=True))

    # The directory gains ZORRO Diego: his waiting document files itself.
    (spool.root / "zorro.csv").write_text(DIRECTORY.splitlines()[0] + "\n" + ZORRO,
                                          encoding="utf-8")
    spool.run("patients", "import", str(spool.root / "zorro.csv"), check=True, env=shell)
    assert states(spool)[asked["nobody"][0].name] == "filed"
    assert states(spool)[asked["low-confidence"][0].name] == "review"

    # The health alert (failures over a limit of none) and yesterday's digest (told today).
    spool.run("health", "--notify", env={**shell, "DOCAGENT_HEALTH_MAX_FAILED": "0"})
    settings = config.load({**spool.env, "DOCAGENT_DIGEST_HOUR": "7"}, cwd=spool.root)
    store = Store(settings.db_path)
    tomorrow = (datetime.now() + timedelta(days=1)).replace(hour=8).astimezone()
    assert digest.enqueue_if_due(settings, store, tomorrow)
    store.close()
    run.wait_for(lambda: all_sent(spool), 120, "the decisions, re-match, alert and digest")

    # The staff's commands: a list is a message per document.
    waiting = states(spool)
    for command, count in (("/review", list(waiting.values()).count("review")),
                           ("/failed", list(waiting.values()).count("failed")),
                           ("/status", 1), ("/health", 1), ("/help", 1)):
        ask_bot(api, run, command, count, chat=CHAT)
    run.wait_for(lambda: all_sent(spool), 60, "the last notifications")
    assert run.stop() == 0

    with sqlite3.connect(spool.home / "state.db") as db:
        kinds = {k for (k,) in db.execute("SELECT DISTINCT kind FROM outbox")}
    assert kinds == {"filed", "review", "failed", "duplicate", "resolved", "rematched",
                     "decided", "health", "digest"}, kinds
    texts = [m.text or "" for m in api.sent(CHAT)]
    assert any(t.startswith(f"Daily summary for {date.today().isoformat()}") for t in texts)
    assert [a for a in audit_lines(spool) if a["event"] == "rematched"]
    found = leaks(api, needles(spool))
    assert not found, "\n".join(found[:40])
    # Open was refused, with a reason, and nothing but texts went out.
    for answer in refused:
        assert answer["text"] == ("Not sent: with DOCAGENT_PHI=minimal the first page stays out "
                                  "of the chat (it shows who the patient is)."), answer
    assert not [r for r in api.received[before:] if r.method in ("sendPhoto", "sendDocument")]
    assert run.output().count("refused Open of document") == 2
