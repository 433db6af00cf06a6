"""The closed set of ways a document can fail to go through.

Two families, the line Postfix draws between *bounced* and *deferred*:

- `DocumentError`: the document itself is bad. It goes to `failed/` with a reason a
  receptionist can read and act on. Retrying the same bytes would fail the same way.
- `MachineError`: the fault is ours or the machine's (an engine missing, a full disk, a
  locked database). The document is kept queued and retried later; it is never quarantined
  for something it did not do.

Each kind has a stable `kind` string (used in JSON, the database and reason files), a message
for a person and what to do next. New kinds are added here and nowhere else.

A message is written in English, with `%(name)s` for its values (`Encrypted(N_("..."),
stage=...)`, `TooManyPages(N_("the PDF has %(pages)d pages ..."), pages=312, ...)`): `message`
is that English with the values, for the log, the database and the audit line; `said` and
`advice` are the message and the action in the staff's language (`agent.i18n`), for the reason
file, the chat and the shell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from agent.i18n import N_, Term, translate


class DocagentError(Exception):
    """Base of every foreseen failure."""

    kind: ClassVar[str] = "error"
    action: ClassVar[str] = ""  # English, marked N_; "%(install)s" stands for `install`
    # For a program that is not installed: the command that installs it, said by the error's
    # action and by `docagent health` alike.
    install: ClassVar[str] = ""

    def __init__(self, message: str, *, stage: str = "", detail: str = "",
                 **values: Any) -> None:
        self.template = message
        self.values: Mapping[str, Any] = values
        self.message = message % values if values else message
        super().__init__(self.message)
        self.stage = stage
        # `detail` is for the log and the reason file's technical field, never the headline.
        self.detail = detail

    @property
    def said(self) -> str:
        """The message in the staff's language."""
        return said(self.template, self.values)

    @property
    def advice(self) -> str:
        """What to do, in the staff's language."""
        return advice(type(self))

    @property
    def advice_in_english(self) -> str:
        """What to do, for the log."""
        return advice(type(self), english=True)

    def as_dict(self) -> dict[str, str]:
        """The reason file's fields: the message and the action in the staff's language."""
        return {
            "kind": self.kind,
            "stage": self.stage,
            "message": self.said,
            "action": self.advice,
            "detail": self.detail,
        }


def said(template: str, values: Mapping[str, Any]) -> str:
    """A message in the staff's language: its English template translated, then its values
    (a `Term` among them translated too)."""
    text = translate(template)
    if not values:
        return text
    return text % {k: translate(v) if isinstance(v, Term) else v for k, v in values.items()}


def advice(kind: type[DocagentError], *, english: bool = False) -> str:
    """What to do about an error of this class: in the staff's language, or in English."""
    if not kind.action:
        return ""
    return (kind.action if english else translate(kind.action)) % {"install": kind.install}


def kind_class(kind: str) -> type[DocagentError] | None:
    """The class of a kind kept in a record ("not-pdf"), None for a kind this version lacks."""
    todo: list[type[DocagentError]] = [DocagentError]
    while todo:
        cls = todo.pop()
        if cls.kind == kind:
            return cls
        todo.extend(cls.__subclasses__())
    return None


# --- faults of the document: quarantine in failed/ ------------------------------------------


class DocumentError(DocagentError):
    kind = "document"
    action = N_("Check the file and drop a good copy into the incoming folder.")


class EmptyFile(DocumentError):
    kind = "empty"
    action = N_("The scanner or the copy produced an empty file: scan the document again.")


class NotPdf(DocumentError):
    """Not a document docagent reads (neither a PDF nor an image it converts); the kind keeps
    the name it had when only PDFs were taken."""

    kind = "not-pdf"
    action = N_("Only PDF files and images (JPEG, PNG, TIFF, HEIC) are taken: save or scan the "
                "document as a PDF.")


class CorruptPdf(DocumentError):
    kind = "corrupt"
    action = N_("The file is damaged: export or scan the document again.")


class CorruptImage(DocumentError):
    """An image (JPEG, PNG, TIFF, HEIC) that cannot be decoded whole: cut short, a checksum
    that does not match, or a file named as an image that is not one."""

    kind = "corrupt-image"
    action = N_("The image is damaged or cut short: send the photo again, or scan the document "
                "again.")


class Incomplete(DocumentError):
    kind = "incomplete"
    action = N_("The copy never finished: copy the file into the incoming folder again.")


class Encrypted(DocumentError):
    kind = "encrypted"
    action = N_("Save the PDF again without a password, then drop it in again.")


class NoPages(DocumentError):
    kind = "no-pages"
    action = N_("The PDF has no pages: export or scan the document again.")


class TooManyPages(DocumentError):
    kind = "too-many-pages"
    action = N_("Split the document into smaller PDFs, or raise DOCAGENT_MAX_PAGES.")


class TooLarge(DocumentError):
    kind = "too-large"
    action = N_("Scan at a lower resolution or split the file, or raise DOCAGENT_MAX_BYTES.")


class AttachmentTooLarge(DocumentError):
    kind = "attachment-too-large"
    action = N_("The message stays in its mail folder, attachment included. Ask the sender for "
                "a smaller file, or raise DOCAGENT_MAX_BYTES and move the message back into the "
                "mailbox docagent reads: it is then taken by itself.")


class UploadTooLarge(DocumentError):
    kind = "upload-too-large"
    action = N_("The file is still in the Telegram chat. Over 20 MB, send it by mail or drop it "
                "into the folder; over DOCAGENT_MAX_BYTES, scan it lighter or split it (or raise "
                "the limit), then send it again.")


class OcrTimeout(DocumentError):
    kind = "ocr-timeout"
    action = N_("A page took too long to read: rescan it more cleanly, or raise "
                "DOCAGENT_OCR_TIMEOUT.")


class PageTooLarge(DocumentError):
    kind = "page-too-large"
    action = N_("A page is too large to read even scaled down: scan it at a normal paper size, "
                "or raise DOCAGENT_MAX_PIXELS.")


class Unreadable(DocumentError):
    kind = "unreadable"
    action = N_("No text could be read: the scan may be blank or too poor. Scan it again.")


class NoAccess(DocumentError):
    kind = "no-access"
    action = N_("Let docagent read the file: `chmod 644` it, or `chgrp docagent-drop` and "
                "`chmod 640` it, or drop it as a member of the docagent-drop group. It is taken "
                "by itself once it can be read.")


class PoisonPill(DocumentError):
    kind = "crashed"
    action = N_("This file stopped the service several times; it was set aside. Report it to "
                "support.")


class TooComplex(DocumentError):
    kind = "too-complex"
    action = N_("The file holds far more than a normal document and cannot be read within the "
                "memory and time allowed: print it to a new PDF or scan the paper copy, then drop "
                "that in. If such files are expected, raise DOCAGENT_CHILD_MEMORY.")


# --- faults of ours or of the machine: keep queued, retry later -----------------------------


class MachineError(DocagentError):
    kind = "machine"
    action = N_("Nothing to do for the document; it is retried by itself. Check `docagent "
                "health`.")


class OcrEngineMissing(MachineError):
    kind = "ocr-engine-missing"
    install = "apt-get install tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng"
    action = N_("Install tesseract with its languages (%(install)s).")


class PopplerMissing(MachineError):
    kind = "poppler-missing"
    install = "apt-get install poppler-utils"
    action = N_("Install poppler (%(install)s).")


class DiskFull(MachineError):
    kind = "disk-full"
    action = N_("Free disk space on the server; queued documents go through by themselves "
                "after.")


class DatabaseBusy(MachineError):
    kind = "database-busy"
    action = N_("Another program holds the database; it is retried by itself.")


class ToolFailed(MachineError):
    kind = "tool-failed"
    action = N_("An external tool failed unexpectedly; it is retried by itself. See the log.")


class LimiterMissing(MachineError):
    kind = "limiter-missing"
    install = "apt-get install util-linux"
    action = N_("Install util-linux (%(install)s): no external tool is run without its memory "
                "and CPU limits, which its prlimit sets.")


# --- usage and configuration: exit 2 ---------------------------------------------------------


class UsageError(DocagentError):
    kind = "usage"


class ConfigError(UsageError):
    kind = "config"


DOCUMENT_KINDS: frozenset[str] = frozenset(
    cls.kind for cls in DocumentError.__subclasses__()
) | {DocumentError.kind}
