"""Inline keyboards under Telegram messages, and the callback data their buttons carry.

Callback data is at most 64 bytes and travels through Telegram's servers, so it carries no
name: an action letter, the document id (16 hex characters) and, for a candidate, its index in
the candidates the document was put to a person with ("f:0123456789abcdef:1", 20 bytes); for a
patient found by a search, its index in the patients that answer offered, which the bot kept
(`agent.notify.telegram.threads`) and checks the press against ("p:0123456789abcdef:0").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from agent import disclosure
from agent.i18n import _
from agent.stages.match import Candidate

MAX_DATA = 64
MAX_CANDIDATE_BUTTONS = 3  # the candidates the message text shows
FILE, NONE, OPEN, RETRY = "f", "n", "o", "r"
SEARCH, PICK = "s", "p"  # "Another patient…", and a patient a search found
GET = "g"  # Open under a /find answer: the document's PDF, the n-th that answer listed
_ACTIONS = (FILE, NONE, OPEN, RETRY, SEARCH, PICK, GET)
_INDEXED = (FILE, PICK, GET)  # the actions whose data carries an index


@dataclass(frozen=True)
class Press:
    action: str
    document_id: str
    candidate: int | None = None


def encode(action: str, document_id: str, candidate: int | None = None) -> str:
    if action not in _ACTIONS or not document_id.isalnum():
        raise ValueError(f"cannot encode {action!r} for {document_id!r}")
    data = f"{action}:{document_id}" + (f":{candidate:d}" if candidate is not None else "")
    if len(data.encode("utf-8")) > MAX_DATA:
        raise ValueError(f"callback data over {MAX_DATA} bytes: {data!r}")
    return data


def decode(data: str | None) -> Press | None:
    """The press a button's data stands for, or None for anything we did not write."""
    parts = (data or "").split(":")
    if len(parts) not in (2, 3) or parts[0] not in _ACTIONS or not parts[1].isalnum():
        return None
    if len(parts) == 3:
        if parts[0] not in _INDEXED or not parts[2].isdigit() or len(parts[2]) > 3:
            return None
        return Press(parts[0], parts[1], int(parts[2]))
    if parts[0] in _INDEXED:
        return None
    return Press(parts[0], parts[1])


def review_keyboard(payload: Mapping[str, Any], phi: str) -> InlineKeyboardMarkup:
    """One button per candidate (`agent.disclosure.button`), then "None of them", and "Open"
    where the setting lets the first page into the chat."""
    doc = str(payload["document_id"])
    candidates = (payload.get("match") or {}).get("candidates") or []
    rows = [[InlineKeyboardButton(disclosure.button(c, phi),
                                  callback_data=encode(FILE, doc, i))]
            for i, c in enumerate(candidates[:MAX_CANDIDATE_BUTTONS])]
    last = [InlineKeyboardButton(_("None of them"), callback_data=encode(NONE, doc))]
    if disclosure.shows_scan(phi):
        last.append(InlineKeyboardButton(_("Open"), callback_data=encode(OPEN, doc)))
    rows.append(last)
    rows.append([search_button(doc)])
    return InlineKeyboardMarkup(rows)


def search_button(document_id: str) -> InlineKeyboardButton:
    """Choose a patient who is not among the buttons: the bot asks for a name to search."""
    return InlineKeyboardButton(_("Another patient…"), callback_data=encode(SEARCH, document_id))


def search_keyboard(document_id: str, hits: tuple[Candidate, ...],
                    phi: str) -> InlineKeyboardMarkup:
    """One button per patient a search found, as a candidate's (`agent.disclosure.button`)."""
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(f"{number}. {disclosure.button(hit.as_dict(), phi)}",
                               callback_data=encode(PICK, document_id, number - 1))]
         for number, hit in enumerate(hits, 1)])


def find_keyboard(documents: Sequence[tuple[str, str]]) -> InlineKeyboardMarkup | None:
    """One Open button per document a /find answer lists, numbered as its lines are, with the
    words that tell them apart on the phone (the date and the type, never a name):
    `documents` holds each one's id and those words."""
    if not documents:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(f"{number}. {_('Open')} · {label}"[:60],
                               callback_data=encode(GET, document_id, number - 1))]
         for number, (document_id, label) in enumerate(documents, 1)])


def failed_keyboard(document_id: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(_("Retry"),
                                                       callback_data=encode(RETRY, document_id))]])


def keyboard_for(kind: str, payload: Mapping[str, Any], phi: str) -> InlineKeyboardMarkup | None:
    """The buttons a notification of this kind carries, if any."""
    if kind == "review" and payload.get("document_id"):
        return review_keyboard(payload, phi)
    if kind == "failed" and payload.get("document_id"):
        return failed_keyboard(str(payload["document_id"]))
    return None
