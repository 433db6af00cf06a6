"""Where a document came from: the channel that brought it, and what that channel knows of it.

One record for every channel, kept with the document (its row's `channel` and `origin`, each
arrival's receipt, the sidecar's `origin`, the reason file of a failure):

- `folder`: dropped into incoming/ or given to `docagent process` (nothing more to say);
- `mail`: an attachment of an e-mail (`sender`, `subject`, `message_id`, the `mailbox` it was
  read from);
- `telegram`: sent to the bot (`user_id`, `chat_id`, `message_id`).

Its JSON form is flat: `{"channel": "mail", "sender": "...", "subject": "...", ...}`; a record
written before channels existed reads as `folder`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

FOLDER, MAIL, TELEGRAM = "folder", "mail", "telegram"
CHANNELS = (FOLDER, MAIL, TELEGRAM)

Value = str | int


@dataclass(frozen=True)
class Origin:
    channel: str = FOLDER
    details: tuple[tuple[str, Value], ...] = ()  # the channel's own fields, in order

    @classmethod
    def mail(cls, *, sender: str, subject: str, message_id: str, mailbox: str) -> Origin:
        return cls(MAIL, (("sender", sender), ("subject", subject),
                          ("message_id", message_id), ("mailbox", mailbox)))

    @classmethod
    def telegram(cls, *, user_id: int, chat_id: int, message_id: int) -> Origin:
        return cls(TELEGRAM, (("user_id", user_id), ("chat_id", chat_id),
                              ("message_id", message_id)))

    def get(self, key: str) -> Value | None:
        return dict(self.details).get(key)

    def to_json(self) -> dict[str, Any]:
        return {"channel": self.channel, **dict(self.details)}

    def dumps(self) -> str | None:
        """The row's `origin` column: None for a folder, whose channel says everything."""
        return json.dumps(self.to_json(), ensure_ascii=False) if self.details else None

    @classmethod
    def from_json(cls, raw: Any) -> Origin:
        if isinstance(raw, str):
            try:
                raw = json.loads(raw)
            except ValueError:
                return cls()
        if not isinstance(raw, Mapping):
            return cls()
        channel = str(raw.get("channel") or FOLDER)
        details = tuple((str(k), v) for k, v in raw.items()
                        if k != "channel" and isinstance(v, str | int))
        return cls(channel if channel in CHANNELS else FOLDER, details)

    @classmethod
    def of_row(cls, channel: str | None, origin: str | None) -> Origin:
        """From a row's `channel` and `origin` columns."""
        found = cls.from_json(origin) if origin else cls()
        if channel and channel in CHANNELS and channel != found.channel:
            return cls(channel, found.details)
        return found

    def audit(self) -> dict[str, Any]:
        """What an audit line says of where a document came from (nothing for a folder: its
        lines stay as they always were)."""
        return {} if self.channel == FOLDER else {"origin": self.to_json()}
