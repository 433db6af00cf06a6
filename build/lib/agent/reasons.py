"""Why a document went where it went: a code and its parameters, and the one renderer of them.

A reason is kept as data (`reason_code` in the result, hence in the sidecar, `result_json` and
the outbox payload), for example `{"code": "no-such-patient", "last_name": "ZORRO",
"first_name": "Diego"}`. `render(reason, "full")` gives the sentence of the shell, the sidecar's
`reason`, the `reason` column and the audit line ("no patient named ZORRO Diego in the
directory"); `render(reason, "minimal")` gives a sentence with nothing read from the document
in it ("no patient with the name read is in the directory"), for a chat that may not carry a
patient's identity (DOCAGENT_PHI=minimal).

A failure's reason is its kind (`errors.py`) with its message: under minimal the message is
replaced by a fixed sentence for the kind, since a message may one day quote a file name or
what a file holds. A code this module does not know renders, under minimal, as the code alone.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent.disclosure import FULL, minimal
from agent.errors import DocagentError, UsageError

LEGACY = "text"  # a reason stored as a sentence only, before reasons had codes
Sentence = Callable[[Mapping[str, Any]], str]


@dataclass(frozen=True)
class Reason:
    code: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, code: str, **params: Any) -> Reason:
        return cls(code, params)

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, **self.params}

    def text(self, phi: str = FULL) -> str:
        return render(self, phi)


def from_dict(raw: object) -> Reason | None:
    if not isinstance(raw, Mapping) or not isinstance(raw.get("code"), str):
        return None
    return Reason(raw["code"], {k: v for k, v in raw.items() if k != "code"})


def of_payload(payload: Mapping[str, Any]) -> Reason:
    """The reason of a result or outbox payload; one written before codes existed becomes a
    failure's kind and message, or the bare sentence (which minimal never shows)."""
    stored = from_dict(payload.get("reason_code"))
    if stored is not None:
        return stored
    if payload.get("outcome") == "failed" and payload.get("kind"):
        return Reason.of(str(payload["kind"]),
                         message=str(payload.get("message") or payload.get("reason") or ""))
    return Reason.of(LEGACY, text=str(payload.get("reason") or "?"))


def failure(kind: str, message: str) -> Reason:
    return Reason.of(kind, message=message)


def _fields(params: Mapping[str, Any], key: str) -> str:
    return ", ".join(str(f) for f in params.get(key) or [])


def _differ(p: Mapping[str, Any]) -> str:
    fields = _fields(p, "fields")
    return "no record agrees on both names and birth date" + (
        f" ({fields} differ)" if fields else "")


def _low(p: Mapping[str, Any]) -> str:
    return (f"the name was read by OCR with low confidence ({float(p['confidence']):.0f} < "
            f"{float(p['threshold']):.0f}): a misread letter could be another person")


def _rematched(p: Mapping[str, Any], phi: str) -> str:
    inner = from_dict(p.get("match"))
    said = render(inner, phi) if inner is not None else "one patient agrees"
    return f"{said} (matched again after the directory changed)"


# Sentences that carry nothing read from the document: the same under both settings.
_PLAIN: dict[str, Sentence] = {
    "no-name": lambda p: "no patient name was found on the document",
    "last-name-only": lambda p: "only a last name was read: that is not enough",
    "initial-only": lambda p: "the first name is only an initial",
    "low-confidence": _low,
    "fields-differ": _differ,
    "several-agree": lambda p: f"{int(p['count'])} patients agree with what was read",
    "swapped-unconfirmed": lambda p: ("the names match only in the other order, with no "
                                      "birth date to confirm"),
    "homonyms": lambda p: (f"{int(p['count'])} patients share this name and the birth date "
                           "does not tell them apart"),
    "several-patients": lambda p: (f"{int(p['count'])} different patients are named on the "
                                   "document as its patient"),
    "named-as-other": lambda p: (f"the name read as the patient's is also named as the "
                                 f"{p['role']} on the document"),
    "spotted-unconfirmed": lambda p: ("the name was found in the text with nothing saying it "
                                      "is the patient's, and no birth date confirms it"),
    "one-agrees": lambda p: f"one patient agrees on {_fields(p, 'fields')}",
    "filed-by": lambda p: f"filed by {p['who']}",
    "unassigned-by": lambda p: f"kept unassigned by {p['who']}",
}

# Sentences that name what was read, and what stands for them under minimal.
_FULL: dict[str, Sentence] = {
    "no-such-patient": lambda p: (f"no patient named {p.get('last_name', '')} "
                                  f"{p.get('first_name', '')} in the directory"),
}
_MINIMAL: dict[str, str] = {
    "no-such-patient": "no patient with the name read is in the directory",
    LEGACY: "the reason is on the server (docagent review list)",
    # Failures, by kind: what the file is, never what it says or what it is called.
    "empty": "the file is empty",
    "not-pdf": "the file is not a PDF",
    "corrupt": "the PDF is damaged and cannot be read",
    "incomplete": "the file never arrived whole",
    "encrypted": "the PDF is password-protected",
    "no-pages": "the PDF has no pages",
    "too-many-pages": "the PDF has more pages than the limit",
    "too-large": "the file is over the size limit",
    "ocr-timeout": "a page took longer to read than the limit",
    "page-too-large": "a page is too large to read",
    "unreadable": "no text could be read on any page",
    "crashed": "the file stopped the service several times",
    "no-access": "docagent may not read the file (its owner and mode)",
    "document": "the document could not be read",
    # Faults of the server, for a decision that could not be carried out.
    "machine": "a fault of the server",
    "disk-full": "the server's disk is full",
    "database-busy": "the database is busy",
    "tool-failed": "an external tool failed",
    "ocr-engine-missing": "the OCR engine is not installed",
    "poppler-missing": "poppler is not installed",
}


def render(reason: Reason, phi: str = FULL) -> str:
    """The sentence for a person: every detail under "full", nothing read under "minimal"."""
    code, params = reason.code, reason.params
    if code == "rematched":
        return _rematched(params, phi)
    if code in _PLAIN:
        return _PLAIN[code](params)
    if minimal(phi):
        return _MINIMAL.get(code, code)
    if code in _FULL:
        return _FULL[code](params)
    return str(params.get("message") or params.get("text") or code)


def error_text(error: DocagentError, phi: str) -> str:
    """A refusal's message for the chat. A usage error speaks of the ids a person typed; any
    other may carry a path (a file name) and is, under minimal, its kind only."""
    if not minimal(phi) or isinstance(error, UsageError):
        return error.message
    return f"{render(failure(error.kind, error.message), phi)} (details in the server's log)"
