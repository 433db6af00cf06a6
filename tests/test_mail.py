"""The mail channel against a real IMAP server: Dovecot on loopback (tests/imapserver.py), fed
real MIME messages, read by a real `docagent run`.

Each attachment of an allowed sender's message becomes a document through the claim a dropped
file takes, with the sender, subject and Message-ID in its row and sidecar; the message is
marked taken only once all are in the spool; anything else is left untouched and said once.
A server stopped in the middle of a download, a `kill -9` between the download and the mark:
nothing lost, nothing twice. A wrong password: health says so, the folder still works.
"""

from __future__ import annotations

import io
import json
import os
import signal
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import imapserver, pdfgen
from tests.conftest import Spool, recording_tools
from tests.daemonproc import Running, documents, drop
from tests.imapserver import Dovecot, Relay, message
from tests.watch import until

pytestmark = pytest.mark.daemon
LAB = "resultats@labo-bio.test"
FINAL = ("filed", "review", "failed")


@pytest.fixture
def dovecot() -> Iterator[Dovecot]:
    reason = imapserver.why_not()
    if reason is not None:
        pytest.skip(reason)
    with imapserver.running() as server:
        yield server


def mail_env(server: Dovecot, *, port: int | None = None, security: str = "imaps",
             **extra: str) -> dict[str, str]:
    return {"DOCAGENT_MAIL_HOST": "127.0.0.1",
            "DOCAGENT_MAIL_PORT": str(port or (server.imaps_port if security == "imaps"
                                               else server.imap_port)),
            "DOCAGENT_MAIL_SECURITY": security,
            "DOCAGENT_MAIL_USER": imapserver.USER,
            "DOCAGENT_MAIL_PASSWORD": imapserver.PASSWORD,
            "DOCAGENT_MAIL_CA_FILE": str(server.cert),
            "DOCAGENT_MAIL_ALLOWED_SENDERS": f"{LAB}, @chu-exemple.test",
            **extra}


def report_pdf(tmp_path: Path, last: str, first: str, birth: str, tag: str = "") -> bytes:
    path = tmp_path / f"{last}-{first}-{tag}.pdf"
    return pdfgen.text_pdf([pdfgen.report(last, first, birth, tag)], path).read_bytes()


def jpeg() -> bytes:
    """A phone's photo of a lab report about a patient in the directory."""
    out = io.BytesIO()
    pdfgen.render_page(pdfgen.report("DUPONT", "Jean", "12/03/1961", "photo")).convert(
        "RGB").save(out, "JPEG", quality=90)
    return out.getvalue()


def rows(home: Path, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
    with sqlite3.connect(home / "state.db") as db:
        db.row_factory = sqlite3.Row
        return db.execute(sql, params).fetchall()


def audit(spool: Spool, event: str | None = None) -> list[dict[str, Any]]:
    path = spool.logs / "audit.jsonl"
    entries = [json.loads(line) for line in path.read_text().splitlines()] \
        if path.exists() else []
    return [e for e in entries if event is None or e["event"] == event]


def settled(spool: Spool, count: int) -> Callable[[], dict[str, Any]]:
    """True once `count` documents exist and every one reached a final state."""
    def check() -> dict[str, Any]:
        docs = documents(spool.home)
        if len(docs) >= count and all(d.state in FINAL for d in docs.values()):
            return docs
        return {}
    return check


# --- taken --------------------------------------------------------------------------------------


def test_each_attachment_becomes_a_document_with_its_mail_and_the_message_is_moved(
        spool: Spool, daemon: Callable[..., Running], dovecot: Dovecot, tmp_path: Path) -> None:
    hélène = report_pdf(tmp_path, "MARTIN", "Hélène", "03/04/1975")
    jean = report_pdf(tmp_path, "DUPONT", "Jean", "12/03/1961")
    nobody = report_pdf(tmp_path, "NOBODY", "Alice", "01/01/1990")
    one = message(LAB, subject="Résultats MARTIN", attachments=[("martin.pdf", hélène)],
                  message_id="<one@labo-bio.test>")
    several = message("Secretariat <secretariat@chu-exemple.test>", subject="Comptes rendus",
                      message_id="<several@chu-exemple.test>",
                      attachments=[("dupont.pdf", jean), ("inconnu.pdf", nobody),
                                   ("photo.jpg", jpeg())],
                      inline_images=[("logo.png", b"\x89PNG\r\n\x1a\n logo")])
    env = mail_env(dovecot)
    running = daemon(**env)
    dovecot.deliver(one, several)
    docs = running.wait_for(settled(spool, 4), 60, "the four attachments to be read")

    assert {name: d.state for name, d in docs.items()} == {
        "martin.pdf": "filed", "dupont.pdf": "filed", "inconnu.pdf": "review",
        # An image is taken like a PDF, converted and read.
        "photo.jpg": "filed"}
    assert "logo.png" not in docs  # an image of the HTML body is no attachment
    assert {d.channel for d in docs.values()} == {"mail"}
    origin = json.loads(docs["dupont.pdf"].origin_json or "{}")
    assert origin == {"channel": "mail", "sender": "secretariat@chu-exemple.test",
                      "subject": "Comptes rendus", "message_id": "<several@chu-exemple.test>",
                      "mailbox": "INBOX"}
    sidecar = json.loads((spool.home / str(docs["martin.pdf"].path)).with_suffix(".json")
                         .read_text())
    assert sidecar["origin"] == {"channel": "mail", "sender": LAB,
                                 "subject": "Résultats MARTIN",
                                 "message_id": "<one@labo-bio.test>", "mailbox": "INBOX"}
    photo = json.loads((spool.home / str(docs["photo.jpg"].path)).with_suffix(".json")
                       .read_text())
    assert photo["origin"]["message_id"] == "<several@chu-exemple.test>"
    assert photo["original"]["format"] == "JPEG"  # the photo itself, kept beside its PDF

    # Marked taken only now, moved whole (attachments and all) into the taken folder.
    until(lambda: dovecot.uids() == [], 10, "the messages to leave INBOX")
    moved = dovecot.messages("docagent-taken")
    assert sorted(m["Message-ID"] for m in moved) == ["<one@labo-bio.test>",
                                                      "<several@chu-exemple.test>"]
    assert all("\\Seen" not in m["X-Test-Flags"] for m in moved)  # read with PEEK
    taken = audit(spool, "mail-taken")
    assert [(e["message_id"], len(e["documents"])) for e in taken] == [
        ("<one@labo-bio.test>", 1), ("<several@chu-exemple.test>", 3)]
    assert all(e["origin"]["channel"] == "mail" for e in audit(spool, "taken"))

    status = json.loads(spool.run("status", "--json", check=True, env=env).stdout)["mail"]
    assert status["state"] == "connected" and status["idle"] is True
    assert status["last_taken"]["sender"] == "secretariat@chu-exemple.test"
    assert status["documents_today"] == 4
    health = spool.health(**env)["mail"]
    assert health["ok"], health
    assert "login accepted" in health["detail"] and "secretariat@chu-exemple.test" in \
        health["detail"]


def test_a_second_delivery_of_the_same_bytes_is_a_duplicate(
        spool: Spool, daemon: Callable[..., Running], dovecot: Dovecot, tmp_path: Path) -> None:
    pdf = report_pdf(tmp_path, "MARTIN", "Hélène", "03/04/1975")
    running = daemon(**mail_env(dovecot))
    dovecot.deliver(message(LAB, attachments=[("martin.pdf", pdf)]))
    running.wait_for(settled(spool, 1), 60, "the first copy to be filed")
    dovecot.deliver(message(LAB, subject="Renvoi", attachments=[("martin (2).pdf", pdf)]))
    running.wait_for(lambda: audit(spool, "duplicate"), 30, "the second copy to be judged")
    until(lambda: dovecot.uids() == [], 10, "both messages to be marked taken")
    assert len(documents(spool.home)) == 1
    kinds = [r["kind"] for r in rows(spool.home, "SELECT kind FROM receipts ORDER BY id")]
    assert kinds == ["new", "duplicate"]
    assert "Duplicate: martin (2).pdf" in running.output()


def test_flagged_rather_than_moved_the_message_stays_and_is_taken_once(
        spool: Spool, daemon: Callable[..., Running], dovecot: Dovecot, tmp_path: Path) -> None:
    env = mail_env(dovecot, DOCAGENT_MAIL_MARK="flag", DOCAGENT_MAIL_IDLE="no",
                   DOCAGENT_MAIL_POLL_SECONDS="1")
    running = daemon(**env)
    dovecot.deliver(message(LAB, attachments=[
        ("martin.pdf", report_pdf(tmp_path, "MARTIN", "Hélène", "03/04/1975"))]))
    running.wait_for(settled(spool, 1), 60, "the attachment to be filed")

    def checked() -> str:
        return str(json.loads(spool.run("status", "--json", env=env).stdout)["mail"]
                   ["checked_at"])
    first = checked()
    running.wait_for(lambda: checked() > first, 15, "another look at the mailbox")
    [kept] = dovecot.messages()
    assert "$DocagentTaken" in kept["X-Test-Flags"] and "\\Seen" not in kept["X-Test-Flags"]
    assert dovecot.uids("docagent-taken") == []  # no folder made or used
    assert len(rows(spool.home, "SELECT 1 FROM receipts")) == 1
    assert len(audit(spool, "mail-taken")) == 1


# --- left ---------------------------------------------------------------------------------------


def test_a_stranger_a_message_without_a_document_and_other_types_are_left_and_said_once(
        spool: Spool, daemon: Callable[..., Running], tmp_path: Path) -> None:
    if imapserver.why_not():
        pytest.skip(imapserver.why_not())
    # A server without IDLE, reached by STARTTLS: docagent polls.
    with imapserver.running(idle=False) as server:
        pdf = report_pdf(tmp_path, "MARTIN", "Hélène", "03/04/1975")
        server.deliver(message("someone@elsewhere.test", subject="Pub",
                               attachments=[("offre.pdf", pdf)]),
                       message(LAB, subject="Word", attachments=[("cr.docx", b"PK\x03\x04")]),
                       message(LAB, subject="Rien"))
        env = mail_env(server, security="starttls", DOCAGENT_MAIL_POLL_SECONDS="1")
        running = daemon(**env)

        def checked() -> str:
            return str(json.loads(spool.run("status", "--json", env=env).stdout)["mail"]
                       ["checked_at"])
        running.wait_for(lambda: len(audit(spool, "mail-left")) == 3, 30, "three verdicts")
        first = checked()
        running.wait_for(lambda: checked() > first, 15, "another look at the mailbox")
        assert "(a look every 1 s)" in running.own_output()
        assert len(server.uids()) == 3  # untouched: not moved, not flagged, not read
        assert all(m["X-Test-Flags"] == "" for m in server.messages())
        assert documents(spool.home) == {}
        said = [line for line in running.output().splitlines() if "left in INBOX" in line]
        assert len(said) == 3, said  # once each, not at every look
        assert any("someone@elsewhere.test" in line and "not in DOCAGENT_MAIL_ALLOWED_SENDERS"
                   in line for line in said)
        assert any("cr.docx" in line for line in said)
        assert any("nothing is attached" in line for line in said)
        assert sorted(e["reason"] for e in audit(spool, "mail-left")) == [
            "no-attachment", "no-document", "sender-not-allowed"]
        assert json.loads(spool.run("status", "--json", env=env).stdout)["mail"]["left"] == 3

        # A restart judges them again, and says nothing new.
        running.stop()
        again = daemon(**env)
        again.wait_for(lambda: "reading" in again.own_output(), 30, "the reader to start")
        later = checked()
        again.wait_for(lambda: checked() > later, 15, "a look")
        assert "left in INBOX" not in again.own_output()
        assert len(audit(spool, "mail-left")) == 3
        assert len(server.uids()) == 3


def test_an_oversized_attachment_fails_with_its_reason_and_is_never_downloaded(
        spool: Spool, daemon: Callable[..., Running], dovecot: Dovecot, tmp_path: Path) -> None:
    small = report_pdf(tmp_path, "MARTIN", "Hélène", "03/04/1975")
    big = small + b"%" + os.urandom(3 * 1024 * 1024)
    dovecot.deliver(message(LAB, subject="Gros", message_id="<big@labo-bio.test>",
                            attachments=[("gros.pdf", big), ("petit.pdf", small)]))
    running = daemon(**mail_env(dovecot), DOCAGENT_MAX_BYTES="1M")
    docs = running.wait_for(settled(spool, 2), 60, "both attachments to be judged")
    assert docs["petit.pdf"].state == "filed"
    failed = docs["gros.pdf"]
    assert (failed.state, failed.reason_kind) == ("failed", "attachment-too-large")
    assert "not downloaded" in (failed.reason or "") and "docagent-taken" in (failed.reason or "")
    assert json.loads(failed.origin_json or "{}")["message_id"] == "<big@labo-bio.test>"
    assert not list((spool.home / "processing").iterdir())  # not a byte of it kept
    until(lambda: dovecot.uids() == [], 10, "the message to be marked taken")
    kept = dovecot.messages("docagent-taken")
    assert [len(p.get_content()) for p in kept[0].iter_attachments()] == [len(big), len(small)]
    assert "Failed: gros.pdf" in running.output()
    [reason_file] = (spool.home / "failed").iterdir()  # its reason, as a dropped file's
    assert reason_file.name == "gros.pdf.reason.json"
    reason = json.loads(reason_file.read_text())
    assert (reason["document_id"], reason["kind"]) == (failed.id, "attachment-too-large")
    assert reason["origin"]["message_id"] == "<big@labo-bio.test>"
    listed = spool.run("failed", "list")
    assert f"{failed.id}  mail {LAB} (failed/gros.pdf.reason.json)" in listed.stdout
    retry = spool.run("retry", failed.id)
    assert retry.returncode == 2 and "never downloaded" in retry.stderr, retry.stderr


# --- faults -------------------------------------------------------------------------------------


def test_the_server_stopped_in_the_middle_of_a_download_loses_nothing_and_takes_nothing_twice(
        spool: Spool, daemon: Callable[..., Running], dovecot: Dovecot, tmp_path: Path) -> None:
    relay = Relay(dovecot.imaps_port)
    try:
        first = report_pdf(tmp_path, "MARTIN", "Hélène", "03/04/1975")
        second = report_pdf(tmp_path, "DUPONT", "Jean", "12/03/1961")
        big = second + b"%" + os.urandom(6 * 1024 * 1024)  # 8 MiB of base64 on the wire
        running = daemon(**mail_env(dovecot, port=relay.port))
        running.wait_for(lambda: "(IDLE)" in running.own_output(), 30, "the reader to idle")
        relay.hold_after(3 * 1024 * 1024)  # mid-way through the big attachment
        dovecot.deliver(message(LAB, subject="Deux", message_id="<two@labo-bio.test>",
                                attachments=[("martin.pdf", first), ("gros.pdf", big)]))
        assert relay.held.wait(60), running.output()[-3000:]
        dovecot.stop()  # the server goes away mid-download
        running.wait_for(lambda: "the connection was lost" in running.own_output()
                         or "cannot be reached" in running.own_output(), 60, "the cut")
        relay.release()
        time.sleep(3)  # the reader tries again meanwhile, and fails: the server is down
        assert running.own_output().count("mail: ") >= 3, running.own_output()
        dovecot.start()
        docs = running.wait_for(settled(spool, 2), 120, "both attachments after the restart")
        until(lambda: dovecot.uids() == [], 30, "the message to be marked taken")
    finally:
        relay.close()
    assert sorted(docs) == ["gros.pdf", "martin.pdf"]
    receipts = rows(spool.home, "SELECT document_id, kind FROM receipts")
    assert sorted(r["kind"] for r in receipts) == ["new", "new"]  # none twice, no duplicate
    assert [m["Message-ID"] for m in dovecot.messages("docagent-taken")] == [
        "<two@labo-bio.test>"]
    assert len(audit(spool, "mail-taken")) == 1
    assert not [p for p in (spool.home / "processing").iterdir()]  # no half download left
    assert running.proc.poll() is None


def test_kill_9_between_the_download_and_the_mark_loses_nothing_and_takes_nothing_twice(
        spool: Spool, daemon: Callable[..., Running], dovecot: Dovecot, tmp_path: Path) -> None:
    hold = tmp_path / "hold"
    hold.write_text("")
    attachments = [("martin.pdf", report_pdf(tmp_path, "MARTIN", "Hélène", "03/04/1975")),
                   ("dupont.pdf", report_pdf(tmp_path, "DUPONT", "Jean", "12/03/1961"))]
    dovecot.deliver(message(LAB, message_id="<kill@labo-bio.test>", attachments=attachments))
    env = mail_env(dovecot, DOCAGENT_TEST_MAIL_HOLD=str(hold))
    first = daemon(**env)
    first.wait_for(lambda: Path(f"{hold}.held").exists(), 60, "the message to be held")
    assert len(documents(spool.home)) == 2  # both downloaded and claimed...
    assert dovecot.uids() != []  # ...the message not yet marked
    first.stop(signal.SIGKILL)

    hold.unlink()
    second = daemon(**env)
    docs = second.wait_for(settled(spool, 2), 60, "both documents to be read")
    until(lambda: dovecot.uids() == [], 30, "the message to be marked taken")
    assert {name: d.state for name, d in docs.items()} == {"martin.pdf": "filed",
                                                           "dupont.pdf": "filed"}
    assert sorted(r["kind"] for r in rows(spool.home, "SELECT kind FROM receipts")) == [
        "new", "new"]
    assert audit(spool, "duplicate") == []
    assert len(audit(spool, "taken")) == 2 and len(audit(spool, "mail-taken")) == 1
    assert [m["Message-ID"] for m in dovecot.messages("docagent-taken")] == [
        "<kill@labo-bio.test>"]
    # One message queued per document, each sent; the log sender may have said one twice if
    # the kill fell between saying it and marking it sent (the outbox is at least once).
    queued = rows(spool.home, "SELECT document_id, sent_at FROM outbox WHERE kind = 'filed'")
    assert len(queued) == 2 and all(r["sent_at"] for r in queued)
    said = Counter(name for line in second.output().splitlines()
                   if "notification (filed)" in line
                   for name in ("martin.pdf", "dupont.pdf") if f"Filed: {name}" in line)
    assert set(said) == {"martin.pdf", "dupont.pdf"} and sum(said.values()) <= 3


def test_a_wrong_password_fails_health_with_its_reason_and_the_folder_still_works(
        spool: Spool, daemon: Callable[..., Running], dovecot: Dovecot, tmp_path: Path) -> None:
    wrong = "not-the-Password-42"
    env = mail_env(dovecot, DOCAGENT_MAIL_PASSWORD=wrong)
    running = daemon(**env)
    running.wait_for(lambda: "login refused" in running.own_output(), 30, "the refusal")
    pdf = pdfgen.text_pdf([pdfgen.report("MARTIN", "Hélène", "03/04/1975")],
                          tmp_path / "scan.pdf")
    drop(pdf, spool.home / "incoming")
    docs = running.wait_for(settled(spool, 1), 60, "the dropped file to be filed")
    assert docs["scan.pdf"].state == "filed" and docs["scan.pdf"].channel == "folder"

    done = spool.run("health", "--json", env=env)
    checks = {c["name"]: c for c in json.loads(done.stdout)["checks"]}
    assert done.returncode == 1 and not checks["mail"]["ok"]
    assert "login refused" in checks["mail"]["detail"]
    assert "correct DOCAGENT_MAIL_PASSWORD in the environment" in checks["mail"]["detail"]
    assert checks["daemon"]["ok"] and checks["incoming"]["ok"]
    status = json.loads(spool.run("status", "--json", env=env).stdout)["mail"]
    assert status["state"] == "refused" and "login refused" in status["detail"]
    assert running.own_output().count("login refused") == 1  # said once, not at every retry
    assert running.proc.poll() is None
    for path in [*spool.logs.iterdir(), spool.root / "daemon.out"]:
        assert wrong not in path.read_text(errors="replace"), path


def test_the_password_reaches_no_tool_the_daemon_runs(
        spool: Spool, daemon: Callable[..., Running], dovecot: Dovecot, tmp_path: Path) -> None:
    """A mail's document read by the real daemon, its password in the daemon's environment:
    pdfinfo and pdftotext are wrapped by scripts that write down the environment they got."""
    bindir, seen = recording_tools(tmp_path, "pdfinfo", "pdftotext")
    running = daemon(**mail_env(dovecot), PATH=f"{bindir}:{os.environ['PATH']}")
    dovecot.deliver(message(LAB, attachments=[
        ("martin.pdf", report_pdf(tmp_path, "MARTIN", "Hélène", "03/04/1975"))]))
    running.wait_for(settled(spool, 1), 60, "the attachment to be read")
    dumps = sorted(seen.iterdir())
    assert {d.name.split(".")[0] for d in dumps} == {"pdfinfo", "pdftotext"}, dumps
    for dump in dumps:
        text = dump.read_text()
        assert imapserver.PASSWORD not in text and "DOCAGENT_" not in text, dump


# --- settings -----------------------------------------------------------------------------------


def test_the_allowlist_takes_addresses_and_whole_domains_only(tmp_path: Path) -> None:
    from agent import config
    from agent.errors import ConfigError

    def load(senders: str) -> config.MailSettings:
        settings = config.load(env={"DOCAGENT_HOME": str(tmp_path), "DOCAGENT_MAIL_HOST":
                                    "imap.example.org", "DOCAGENT_MAIL_USER": "u",
                                    "DOCAGENT_MAIL_ALLOWED_SENDERS": senders}, cwd=tmp_path)
        assert settings.mail is not None
        return settings.mail

    box = load("Resultats@Labo.fr, @chu.fr")
    assert box.allows("resultats@labo.fr") and box.allows("RESULTATS@LABO.FR")
    assert box.allows("anyone@chu.fr") and not box.allows("x@mail.chu.fr")
    assert not box.allows("other@labo.fr") and not box.allows("chu.fr")
    assert box.port == 993 and box.password is None and box.mark == "move"
    with pytest.raises(ConfigError, match="neither an address"):
        load("labo.fr")
    with pytest.raises(ConfigError, match="imaps, starttls"):
        config.load(env={"DOCAGENT_MAIL_HOST": "h", "DOCAGENT_MAIL_USER": "u",
                         "DOCAGENT_MAIL_SECURITY": "none"}, cwd=tmp_path)
