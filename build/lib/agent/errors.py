"""The closed set of ways a document can fail to go through.

Two families, the line Postfix draws between *bounced* and *deferred*:

- `DocumentError`: the document itself is bad. It goes to `failed/` with a reason a
  receptionist can read and act on. Retrying the same bytes would fail the same way.
- `MachineError`: the fault is ours or the machine's (an engine missing, a full disk, a
  locked database). The document is kept queued and retried later; it is never quarantined
  for something it did not do.

Each kind has a stable `kind` string (used in JSON, the database and reason files), a message
for a person and what to do next. New kinds are added here and nowhere else.
"""

from __future__ import annotations

from typing import ClassVar


class DocagentError(Exception):
    """Base of every foreseen failure."""

    kind: ClassVar[str] = "error"
    action: ClassVar[str] = ""

    def __init__(self, message: str, *, stage: str = "", detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.stage = stage
        # `detail` is for the log and the reason file's technical field, never the headline.
        self.detail = detail

    def as_dict(self) -> dict[str, str]:
        return {
            "kind": self.kind,
            "stage": self.stage,
            "message": self.message,
            "action": self.action,
            "detail": self.detail,
        }


# --- faults of the document: quarantine in failed/ ------------------------------------------


class DocumentError(DocagentError):
    kind = "document"
    action = "Check the file and drop a good copy into the incoming folder."


class EmptyFile(DocumentError):
    kind = "empty"
    action = "The scanner or the copy produced an empty file: scan the document again."


class NotPdf(DocumentError):
    kind = "not-pdf"
    action = "Only PDF files are taken: save or scan the document as a PDF."


class CorruptPdf(DocumentError):
    kind = "corrupt"
    action = "The file is damaged: export or scan the document again."


class Incomplete(DocumentError):
    kind = "incomplete"
    action = "The copy never finished: copy the file into the incoming folder again."


class Encrypted(DocumentError):
    kind = "encrypted"
    action = "Save the PDF again without a password, then drop it in again."


class NoPages(DocumentError):
    kind = "no-pages"
    action = "The PDF has no pages: export or scan the document again."


class TooManyPages(DocumentError):
    kind = "too-many-pages"
    action = "Split the document into smaller PDFs, or raise DOCAGENT_MAX_PAGES."


class TooLarge(DocumentError):
    kind = "too-large"
    action = "Scan at a lower resolution or split the file, or raise DOCAGENT_MAX_BYTES."


class OcrTimeout(DocumentError):
    kind = "ocr-timeout"
    action = "A page took too long to read: rescan it more cleanly, or raise DOCAGENT_OCR_TIMEOUT."


class PageTooLarge(DocumentError):
    kind = "page-too-large"
    action = ("A page is too large to read even scaled down: scan it at a normal paper size, "
              "or raise DOCAGENT_MAX_PIXELS.")


class Unreadable(DocumentError):
    kind = "unreadable"
    action = "No text could be read: the scan may be blank or too poor. Scan it again."


class NoAccess(DocumentError):
    kind = "no-access"
    action = ("Let docagent read the file: `chmod 644` it, or `chgrp docagent-drop` and "
              "`chmod 640` it, or drop it as a member of the docagent-drop group. It is taken "
              "by itself once it can be read.")


class PoisonPill(DocumentError):
    kind = "crashed"
    action = "This file stopped the service several times; it was set aside. Report it to support."


class TooComplex(DocumentError):
    kind = "too-complex"
    action = ("The file holds far more than a normal document and cannot be read within the "
              "memory and time allowed: print it to a new PDF or scan the paper copy, then drop "
              "that in. If such files are expected, raise DOCAGENT_CHILD_MEMORY.")


# --- faults of ours or of the machine: keep queued, retry later -----------------------------


class MachineError(DocagentError):
    kind = "machine"
    action = "Nothing to do for the document; it is retried by itself. Check `docagent health`."
    # For a program that is not installed: the command that installs it, said by the error's
    # action and by `docagent health` alike.
    install: ClassVar[str] = ""


class OcrEngineMissing(MachineError):
    kind = "ocr-engine-missing"
    install = "apt-get install tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng"
    action = f"Install tesseract with its languages ({install})."


class PopplerMissing(MachineError):
    kind = "poppler-missing"
    install = "apt-get install poppler-utils"
    action = f"Install poppler ({install})."


class DiskFull(MachineError):
    kind = "disk-full"
    action = "Free disk space on the server; queued documents go through by themselves after."


class DatabaseBusy(MachineError):
    kind = "database-busy"
    action = "Another program holds the database; it is retried by itself."


class ToolFailed(MachineError):
    kind = "tool-failed"
    action = "An external tool failed unexpectedly; it is retried by itself. See the log."


class LimiterMissing(MachineError):
    kind = "limiter-missing"
    install = "apt-get install util-linux"
    action = (f"Install util-linux ({install}): no external tool is run without its memory "
              "and CPU limits, which its prlimit sets.")


# --- usage and configuration: exit 2 ---------------------------------------------------------


class UsageError(DocagentError):
    kind = "usage"


class ConfigError(UsageError):
    kind = "config"


DOCUMENT_KINDS: frozenset[str] = frozenset(
    cls.kind for cls in DocumentError.__subclasses__()
) | {DocumentError.kind}
