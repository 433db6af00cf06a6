"""Files sent to the bot (issue 17, part 2): a PDF or a photo from an allowed user's phone is
downloaded into the spool by the same claim as a dropped file, answered with its document id,
and its outcome replies to it; a stranger's file is not downloaded; Telegram's 20 MB limit is
said clearly; a cut download is tried again; the same file twice is a duplicate.

The real `docagent run` against the loopback Bot API (tests/botapi.py), whose getFile and
file endpoint serve what `inject_document` / `inject_photo` put there.
"""

from __future__ import annotations

import io
import json
import signal
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tests import pdfgen
from tests.botapi import BotApi, Sent
from tests.conftest import Spool
from tests.telegram_helpers import (
    GROUP,
    STAFF,
    STRANGER,
    audit_lines,
    botapi,
    filed_pdf,
    telegram_env,
    tg,
)

pytestmark = pytest.mark.daemon
__all__ = ["botapi", "tg"]  # fixtures


def rows(spool: Spool) -> list[dict[str, Any]]:
    with sqlite3.connect(spool.home / "state.db") as db:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute("SELECT * FROM documents ORDER BY received_at")]


def replies_to(api: BotApi, message_id: int, start: str = "") -> list[Sent]:
    return [m for m in api.sent(GROUP)
            if m.reply_to == message_id and (m.text or "").startswith(start)]


def outcome_reply(api: BotApi, run: Any, message_id: int, start: str) -> Sent:
    [sent] = run.wait_for(lambda: replies_to(api, message_id, start), 90,
                          f"a reply to message {message_id} starting {start!r}")
    return sent


def photo_jpeg() -> bytes:
    """A phone's photo of a lab report, as Telegram hands a bot its largest size."""
    out = io.BytesIO()
    page = pdfgen.render_page(pdfgen.report("DUPONT", "Jean", "12/03/1961"))
    page.convert("RGB").save(out, format="JPEG", quality=88, dpi=(72, 72))
    return out.getvalue()


def test_a_pdf_sent_by_staff_is_filed_and_its_outcome_replies_to_it(
        spool: Spool, botapi: BotApi, tg, tmp_path: Path) -> None:
    run = tg()
    data = filed_pdf(tmp_path, "bilan.pdf").read_bytes()
    _, message, stored = botapi.inject_document(GROUP, STAFF, data, name="bilan.pdf")
    [doc] = run.wait_for(lambda: [r for r in rows(spool) if r["state"] == "filed"], 90,
                         "the document to be filed")
    assert botapi.downloads() == [stored.file_path]
    assert [c for c in botapi.calls if c[0] == "getFile"] == [("getFile", None, 200)]
    assert doc["channel"] == "telegram" and doc["original_name"] == "bilan.pdf"
    assert json.loads(doc["origin"]) == {"channel": "telegram", "user_id": STAFF,
                                         "chat_id": GROUP, "message_id": message}
    answer = outcome_reply(botapi, run, message, "Received bilan.pdf")
    assert doc["id"] in (answer.text or "")
    filed = outcome_reply(botapi, run, message, "Filed: bilan.pdf")
    assert "MARTIN Hélène" in (filed.text or "") and f"[{doc['id']}]" in (filed.text or "")
    [sidecar] = (spool.home / "done").rglob("*.json")
    assert json.loads(sidecar.read_text())["origin"]["message_id"] == message
    taken = [a for a in audit_lines(spool) if a["event"] == "taken"]
    assert taken[0]["origin"]["channel"] == "telegram", taken
    env = telegram_env(botapi)
    status = json.loads(spool.run("status", "--json", check=True, env=env).stdout)
    assert status["telegram"] == {"downloads_today": 1}
    assert "telegram    1 received today" in spool.run("status", check=True, env=env).stdout
    health = spool.health(**env)["telegram"]
    assert health["detail"].endswith("; 1 file received today"), health
    assert run.stop() == 0


def test_a_photo_is_taken_in_its_largest_size_and_filed(spool: Spool, botapi: BotApi,
                                                        tg) -> None:
    run = tg()
    _, message, largest = botapi.inject_photo(GROUP, STAFF, photo_jpeg())
    [doc] = run.wait_for(lambda: [r for r in rows(spool) if r["state"] == "filed"], 120,
                         "the photo to be filed")
    assert botapi.downloads() == [largest.file_path]
    assert doc["original_name"] == f"photo-{message}.jpg"
    filed = outcome_reply(botapi, run, message, "Filed: ")
    assert "DUPONT Jean" in (filed.text or "")
    assert run.stop() == 0


def test_two_files_of_one_media_group_are_two_documents(spool: Spool, botapi: BotApi, tg,
                                                        tmp_path: Path) -> None:
    run = tg()
    sent = [botapi.inject_document(GROUP, STAFF,
                                   filed_pdf(tmp_path, f"p{i}.pdf", f"#{i}").read_bytes(),
                                   name=f"p{i}.pdf", media_group_id="album-1")
            for i in (1, 2)]
    run.wait_for(lambda: len([r for r in rows(spool) if r["state"] == "filed"]) == 2, 120,
                 "both to be filed")
    for i, (_, message, _stored) in enumerate(sent, 1):
        outcome_reply(botapi, run, message, f"Received p{i}.pdf")
        outcome_reply(botapi, run, message, f"Filed: p{i}.pdf")
    assert sorted(botapi.downloads()) == sorted(s[2].file_path for s in sent)
    assert run.stop() == 0


def test_a_strangers_file_is_not_downloaded_and_is_audited(spool: Spool, botapi: BotApi, tg,
                                                          tmp_path: Path) -> None:
    run = tg()
    data = filed_pdf(tmp_path, "x.pdf").read_bytes()
    botapi.inject_document(GROUP, STRANGER, data, name="x.pdf")
    botapi.inject_photo(GROUP, STRANGER, photo_jpeg())
    run.wait_for(lambda: len([a for a in audit_lines(spool) if a["event"] == "rejected"]) == 2,
                 30, "the attempts to be audited")
    rejected = [a for a in audit_lines(spool) if a["event"] == "rejected"]
    assert [a["actor"] for a in rejected] == [f"telegram:{STRANGER}"] * 2
    # Handled concurrently (the bot takes 4 updates at once): in either order.
    assert sorted(a["command"] for a in rejected) == ["upload of a document",
                                                      "upload of a photo"]
    assert botapi.downloads() == [] and [c for c in botapi.calls if c[0] == "getFile"] == []
    assert rows(spool) == [] and botapi.sent(GROUP) == []
    assert run.stop() == 0


@pytest.mark.parametrize(("size", "env", "said"), [
    (25 * 1024 * 1024, {}, "is over the 20 MB Telegram lets a bot download: drop it into the "
                           "folder or mail it"),
    (3 * 1024 * 1024, {"DOCAGENT_MAX_BYTES": "1M"}, "is larger than the 1.0 MiB docagent takes"),
], ids=["over-telegram", "over-max-bytes"])
def test_a_file_over_a_size_limit_is_a_failed_document_never_downloaded(
        spool: Spool, botapi: BotApi, tg, size: int, env: dict[str, str], said: str) -> None:
    """The same outcome as a mail attachment over the limit: a failed document with its
    reason, announced, listed, audited; its bytes stay where they came from."""
    run = tg(**env)
    _, message, _stored = botapi.inject_document(GROUP, STAFF, b"%PDF-1.4 big",
                                                 name="dossier.pdf", file_size=size)
    answer = outcome_reply(botapi, run, message, "Not downloaded: dossier.pdf")
    failed = outcome_reply(botapi, run, message, "Failed: dossier.pdf")
    [doc] = rows(spool)
    assert (doc["state"], doc["reason_kind"], doc["channel"]) == (
        "failed", "upload-too-large", "telegram")
    assert said in (answer.text or "") and f"failed document {doc['id']}" in (answer.text or "")
    assert f"[{doc['id']}]" in (failed.text or "")
    assert "still in the Telegram chat" in (doc["reason"] or "")
    assert json.loads(doc["origin"])["message_id"] == message
    assert botapi.downloads() == [] and [c for c in botapi.calls if c[0] == "getFile"] == []
    assert list((spool.home / "processing").iterdir()) == []
    [line] = [a for a in audit_lines(spool) if a["event"] == "failed"]
    assert line["kind"] == "upload-too-large" and line["origin"]["channel"] == "telegram"
    # Its reason in failed/, as a dropped file's, with nothing beside it: the bytes are in the chat.
    [reason_file] = (spool.home / "failed").iterdir()
    assert reason_file.name == "dossier.pdf.reason.json"
    reason = json.loads(reason_file.read_text())
    assert (reason["document_id"], reason["kind"], reason["origin"]["message_id"]) == (
        doc["id"], "upload-too-large", message)
    assert "Telegram chat" in reason["action"]
    listed = spool.run("failed", "list", check=True).stdout
    assert f"{doc['id']}  telegram user {STAFF} (failed/dossier.pdf.reason.json)" in listed
    retry = spool.run("retry", doc["id"])
    assert retry.returncode == 2 and "never downloaded" in retry.stderr, retry.stderr
    assert "still in the Telegram chat" in retry.stderr
    status = json.loads(spool.run("status", "--json", check=True,
                                  env=telegram_env(botapi, **env)).stdout)
    assert status["telegram"] == {"downloads_today": 0}  # nothing came down
    assert run.stop() == 0


@pytest.mark.parametrize("sent_again", [False, True], ids=["confirmed", "sent-again"])
def test_kill_9_in_the_middle_of_a_download_loses_nothing_and_answers_once(
        spool: Spool, botapi: BotApi, tg, tmp_path: Path, sent_again: bool) -> None:
    """Telegram is told an update came before its download ends: a kill then must not lose
    the file (it was written down first); and when Telegram sends it again as well, it is
    still one document, one answer."""
    run = tg()
    botapi.hold_downloads()
    data = filed_pdf(tmp_path, "lent.pdf").read_bytes()
    _, message, stored = botapi.inject_document(GROUP, STAFF, data, name="lent.pdf")
    run.wait_for(lambda: botapi.downloads() == [stored.file_path], 30,
                 "the download to start")
    run.wait_for(lambda: botapi.pending_updates() == 0, 30,
                 "Telegram to be told the update came")
    run.stop(signal.SIGKILL)
    botapi.release_downloads()
    assert [r for r in rows(spool) if r["state"] != "claiming"] == []
    if sent_again:
        botapi.unconfirm()

    again = tg()
    outcome_reply(botapi, again, message, "Filed: lent.pdf")
    [doc] = rows(spool)
    assert doc["state"] == "filed" and doc["size"] == len(data)
    assert botapi.downloads() == [stored.file_path] * 2  # the one cut by the kill, one whole
    assert len(replies_to(botapi, message, "Received lent.pdf")) == 1
    assert "taking again 1 file(s) sent to the bot" in again.own_output()
    assert list((spool.home / "processing").iterdir()) == []
    with sqlite3.connect(spool.home / "state.db") as db:
        assert db.execute("SELECT COUNT(*) FROM telegram_inbox WHERE done_at IS NULL "
                          "OR update_json IS NOT NULL").fetchone() == (0,)
    assert again.stop() == 0


def test_a_cut_download_is_tried_again_and_taken_once(spool: Spool, botapi: BotApi, tg,
                                                     tmp_path: Path) -> None:
    run = tg()
    botapi.cut_downloads(1, after=200)
    data = filed_pdf(tmp_path, "cut.pdf").read_bytes()
    assert len(data) > 200
    _, message, stored = botapi.inject_document(GROUP, STAFF, data, name="cut.pdf")
    outcome_reply(botapi, run, message, "Filed: cut.pdf")
    assert botapi.downloads() == [stored.file_path] * 2
    [doc] = rows(spool)
    assert doc["size"] == len(data) and doc["state"] == "filed"
    assert list((spool.home / "processing").iterdir()) == []  # no half copy left behind
    assert "download of 'cut.pdf' from Telegram cut" in run.output()
    assert run.stop() == 0


def test_the_same_file_sent_twice_is_a_duplicate(spool: Spool, botapi: BotApi, tg,
                                                 tmp_path: Path) -> None:
    run = tg()
    data = filed_pdf(tmp_path, "twice.pdf").read_bytes()
    _, first, stored = botapi.inject_document(GROUP, STAFF, data, name="twice.pdf")
    outcome_reply(botapi, run, first, "Filed: twice.pdf")
    _, second, _again = botapi.inject_document(GROUP, STAFF, data, name="twice.pdf",
                                               file_unique_id=stored.file_unique_id)
    notice = outcome_reply(botapi, run, second, "Duplicate: twice.pdf")
    [doc] = rows(spool)
    assert f"[{doc['id']}]" in (notice.text or "")
    outcome_reply(botapi, run, second, "Received twice.pdf: the same content as document")
    assert run.stop() == 0


def test_minimal_answers_carry_no_name(spool: Spool, botapi: BotApi, tg,
                                       tmp_path: Path) -> None:
    run = tg(DOCAGENT_PHI="minimal")
    data = filed_pdf(tmp_path, "MARTIN_Helene.pdf").read_bytes()
    _, message, _stored = botapi.inject_document(GROUP, STAFF, data, name="MARTIN_Helene.pdf")
    filed = outcome_reply(botapi, run, message, "Filed: ")
    answer = outcome_reply(botapi, run, message, "Received as document")
    for sent in (answer, filed):
        assert "MARTIN" not in (sent.text or "").upper(), sent.text
    assert run.stop() == 0
