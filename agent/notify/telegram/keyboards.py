"""Inline keyboards under Telegram messages, and the callback data their buttons carry.

Callback data is at most 64 bytes and travels through Telegram's servers, so it carries no
name: an action letter, the document id (16 hex characters) and, for a candidate, its index in
the candidates the document was put to a person with ("f:0123456789abcdef:1", 20 bytes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from agent import disclosure
from agent.i18n import _

MAX_DATA = 64
MAX_CANDIDATE_BUTTONS = 3  # the candidates the message text shows
FILE, NONE, OPEN, RETRY = "f", "n", "o", "r"
_ACTIONS = (FILE, NONE, OPEN, RETRY)


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
        if parts[0] != FILE or not parts[2].isdigit():
            return None
        return Press(FILE, parts[1], int(parts[2]))
    if parts[0] == FILE:
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
    return InlineKeyboardMarkup(rows)


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
