"""Why a document went where it went: a code and its parameters, and the one renderer of them.

A reason is kept as data (`reason_code` in the result, hence in the sidecar, `result_json` and
the outbox payload), for example `{"code": "no-such-patient", "last_name": "ZORRO",
"first_name": "Diego"}`. `render(reason, "full")` gives the sentence of the shell, the sidecar's
`reason`, the `reason` column and the audit line ("no patient named ZORRO Diego in the
directory"); `render(reason, "minimal")` gives a sentence with nothing read from the document
in it ("no patient with the name read is in the directory"), for a chat that may not carry a
patient's identity (DOCAGENT_PHI=minimal).

A failure's reason is its kind (`errors.py`) with its message (and the message's English
template and values, so it can be said in the staff's language): under minimal the message is
replaced by a fixed sentence for the kind, since a message may one day quote a file name or
what a file holds. A code this module does not know renders, under minimal, as the code alone.

Sentences are in the staff's language (`agent.i18n`); the one kept in a record, the database and
the audit line is the English one (`Reason.kept`), whatever the staff read.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from agent import errors, evidence
from agent.disclosure import FULL, minimal
from agent.errors import DocagentError, UsageError
from agent.i18n import N_, _, english, ngettext, translate

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
        """The sentence in the staff's language."""
        return render(self, phi)

    def kept(self) -> str:
        """The sentence kept in the record, the database, the log and the audit line: English,
        with every detail."""
        with english():
            return render(self, FULL)


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


def of_error(error: DocagentError) -> Reason:
    """A failure's reason as it is kept: its kind, its English message, and the message's
    template and values when it has values (to say it again in the staff's language)."""
    if not error.values:
        return failure(error.kind, error.message)
    return Reason.of(error.kind, message=error.message, template=error.template,
                     values=dict(error.values))


def _fields(params: Mapping[str, Any], key: str) -> list[str]:
    return [str(f) for f in params.get(key) or []]


def _differ(p: Mapping[str, Any]) -> str:
    fields = _fields(p, "fields")
    if not fields:
        return _("no record agrees on both names and birth date")
    return ngettext("no record agrees on both names and birth date (%(fields)s differs)",
                    "no record agrees on both names and birth date (%(fields)s differ)",
                    len(fields)) % {"fields": evidence.fields(fields)}


def _low(p: Mapping[str, Any]) -> str:
    return (_("the name was read by OCR with low confidence (%(confidence).0f < %(threshold).0f):"
              " a misread letter could be another person")
            % {"confidence": float(p["confidence"]), "threshold": float(p["threshold"])})


def _rematched(p: Mapping[str, Any], phi: str) -> str:
    inner = from_dict(p.get("match"))
    said = render(inner, phi) if inner is not None else _("one patient agrees")
    return _("%(reason)s (matched again after the directory changed)") % {"reason": said}


def _failure(p: Mapping[str, Any]) -> str:
    """A failure's message in the staff's language: from its template when it was kept, else
    the message itself (translated when it is one of the catalogue's)."""
    values = p.get("values")
    template = p.get("template")
    if isinstance(template, str) and isinstance(values, Mapping):
        try:
            return errors.said(template, values)
        except (KeyError, TypeError, ValueError):  # a record edited by hand
            pass
    return translate(str(p.get("message") or p.get("text") or ""))


# The staff's word for a role a person has on a document (`agent.stages.roles`).
_ROLES = {"clinician": N_("clinician"), "companion": N_("companion")}

# Sentences that carry nothing read from the document: the same under both settings.
_PLAIN: dict[str, Sentence] = {
    "no-name": lambda p: _("no patient name was found on the document"),
    "last-name-only": lambda p: _("only a last name was read: that is not enough"),
    "initial-only": lambda p: _("the first name is only an initial"),
    "low-confidence": _low,
    "fields-differ": _differ,
    "several-agree": lambda p: ngettext("%(count)d patient agrees with what was read",
                                        "%(count)d patients agree with what was read",
                                        int(p["count"])) % {"count": int(p["count"])},
    "swapped-unconfirmed": lambda p: _("the names match only in the other order, with no "
                                       "birth date to confirm"),
    "homonyms": lambda p: ngettext("%(count)d patient has this name and the birth date does "
                                   "not tell them apart",
                                   "%(count)d patients share this name and the birth date does "
                                   "not tell them apart",
                                   int(p["count"])) % {"count": int(p["count"])},
    "several-patients": lambda p: ngettext("%(count)d patient is named on the document as its "
                                           "patient",
                                           "%(count)d different patients are named on the "
                                           "document as its patient",
                                           int(p["count"])) % {"count": int(p["count"])},
    "named-as-other": lambda p: (_("the name read as the patient's is also named as the "
                                   "%(role)s on the document")
                                 % {"role": translate(_ROLES[p["role"]]) if p["role"] in _ROLES
                                    else p["role"]}),
    "spotted-unconfirmed": lambda p: _("the name was found in the text with nothing saying it "
                                       "is the patient's, and no birth date confirms it"),
    "one-agrees": lambda p: (_("one patient agrees on %(fields)s")
                             % {"fields": evidence.fields(_fields(p, "fields"))}),
    "filed-by": lambda p: _("filed by %(who)s") % {"who": p["who"]},
    "unassigned-by": lambda p: _("kept unassigned by %(who)s") % {"who": p["who"]},
}

# Sentences that name what was read, and what stands for them under minimal.
_FULL: dict[str, Sentence] = {
    "no-such-patient": lambda p: (_("no patient named %(last)s %(first)s in the directory")
                                  % {"last": p.get("last_name", ""),
                                     "first": p.get("first_name", "")}),
}
_MINIMAL: dict[str, str] = {
    "no-such-patient": N_("no patient with the name read is in the directory"),
    LEGACY: N_("the reason is on the server (/review shows the documents waiting)"),
    # Failures, by kind: what the file is, never what it says or what it is called.
    "empty": N_("the file is empty"),
    "not-pdf": N_("the file is not a document docagent reads"),
    "corrupt-image": N_("the image is damaged"),
    "corrupt": N_("the PDF is damaged and cannot be read"),
    "incomplete": N_("the file never arrived whole"),
    "encrypted": N_("the PDF is password-protected"),
    "no-pages": N_("the PDF has no pages"),
    "too-many-pages": N_("the PDF has more pages than the limit"),
    "too-large": N_("the file is over the size limit"),
    "attachment-too-large": N_("the attachment is over the size limit: it was not downloaded"),
    "upload-too-large": N_("the file sent to the bot is over the size limit: it was not "
                           "downloaded"),
    "ocr-timeout": N_("a page took longer to read than the limit"),
    "page-too-large": N_("a page is too large to read"),
    "unreadable": N_("no text could be read on any page"),
    "crashed": N_("the file stopped the service several times"),
    "no-access": N_("docagent may not read the file (its owner and mode)"),
    "too-complex": N_("the file is far more complex than a document"),
    "document": N_("the document could not be read"),
    # Faults of the server, for a decision that could not be carried out.
    "machine": N_("a fault of the server"),
    "disk-full": N_("the server's disk is full"),
    "database-busy": N_("the database is busy"),
    "tool-failed": N_("an external tool failed"),
    "ocr-engine-missing": N_("the OCR engine is not installed"),
    "poppler-missing": N_("poppler is not installed"),
    "limiter-missing": N_("util-linux is not installed"),
}


def render(reason: Reason, phi: str = FULL) -> str:
    """The sentence for a person: every detail under "full", nothing read under "minimal"."""
    code, params = reason.code, reason.params
    if code == "rematched":
        return _rematched(params, phi)
    if code in _PLAIN:
        return _PLAIN[code](params)
    if minimal(phi):
        return translate(_MINIMAL[code]) if code in _MINIMAL else code
    if code in _FULL:
        return _FULL[code](params)
    return _failure(params) or code


def error_text(error: DocagentError, phi: str) -> str:
    """A refusal's message for the chat. A usage error speaks of the ids a person typed; any
    other may carry a path (a file name) and is, under minimal, its kind only."""
    if not minimal(phi) or isinstance(error, UsageError):
        return error.said
    return _("%(reason)s (details in the server's log)") % {
        "reason": render(failure(error.kind, error.message), phi)}
