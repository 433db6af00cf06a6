"""One IMAP mailbox, as docagent reads it: the one module that speaks IMAP (IMAPClient).

What it offers the mail channel (agent.ops.mail), in typed values:

- `Mailbox.open`: connect (IMAPS, or STARTTLS before anything else is said; the certificate
  and the host name are checked, with `DOCAGENT_MAIL_CA_FILE` trusted besides the system's
  authorities), log in, select the mailbox, make the taken folder if it is missing;
- `waiting`: the UIDs of the messages not yet taken; `summaries`: for each, its sender,
  subject, Message-ID and the leaves of its MIME tree (BODYSTRUCTURE: type, file name,
  encoded size, section), without downloading a byte of its attachments;
- `download`: one part's decoded bytes, fetched in 1 MiB pieces (`BODY.PEEK[2]<0.1048576>`),
  so that memory stays flat whatever the attachment's size and nothing is marked \\Seen;
- `mark_taken`: MOVE into the taken folder (COPY, \\Deleted and UID EXPUNGE where the server
  lacks MOVE), or the keyword `$DocagentTaken`;
- `wait`: IDLE (renewed every few minutes, so a connection cut silently is noticed), or a
  plain wait for the next poll; either returns early when `stop` is set.

Every failure is one of four exceptions, each with a sentence for the log and for `docagent
health`: `Unreachable` (the network, the server gone: reconnect), `TlsRefused`, `LoginRefused`
and `MailboxProblem` (settings or the server's answer: a person must act). Every call is
bounded by the socket's timeout: a cut network raises, it never hangs.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.errors
import email.header
import email.policy
import email.utils
import imaplib
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from types import TracebackType
from typing import Any

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, LoginError

from agent.config import MailSettings

TAKEN_KEYWORD = b"$DocagentTaken"
CHUNK = 1024 * 1024  # encoded bytes fetched at once
TIMEOUT = 60.0  # seconds any one IMAP call may take
IDLE_RENEW = 300.0  # seconds before IDLE is ended and started again (RFC 2177: under 29 min)
HEADER_FIELDS = b"BODY.PEEK[HEADER.FIELDS (FROM SUBJECT MESSAGE-ID)]"
SUMMARY_BATCH = 200  # messages summarised per FETCH


class MailError(Exception):
    """Why the mailbox cannot be read now; `str()` is a sentence for the log."""


class Unreachable(MailError):
    """The server cannot be reached, or the connection was cut: try again later."""


class TlsRefused(MailError):
    """No encrypted connection could be made (a certificate, a server without STARTTLS)."""


class LoginRefused(MailError):
    """The server refused the user name or the password."""


class MailboxProblem(MailError):
    """Logged in, but the mailbox or the taken folder cannot be used as set."""


@dataclass(frozen=True)
class Part:
    """One leaf of a message's MIME tree, as its BODYSTRUCTURE describes it."""

    section: str  # "1", "2", "1.2": what FETCH BODY[section] names
    content_type: str  # lower case, "application/pdf"
    filename: str | None
    size: int  # encoded octets
    encoding: str  # lower case: base64, quoted-printable, 7bit, 8bit, binary
    disposition: str | None  # attachment | inline | None
    embedded: bool  # inside a multipart/related: an image of an HTML body (a logo)


@dataclass(frozen=True)
class Summary:
    """A message as docagent judges it, before downloading anything."""

    uid: int
    sender: str  # the From address, lower case ("" when there is none)
    senders: tuple[str, ...]  # every From address
    subject: str
    message_id: str
    size: int
    parts: tuple[Part, ...]


class Mailbox:
    """A logged-in connection to one mailbox; a context manager that logs out."""

    def __init__(self, settings: MailSettings, client: Any) -> None:
        self.settings = settings
        self._client = client
        self.uidvalidity = 0
        self.idle_offered = False
        self.moves = False

    # --- opening ------------------------------------------------------------------------

    @classmethod
    def open(cls, settings: MailSettings, *, timeout: float = TIMEOUT) -> Mailbox:
        """Connect, log in and select the mailbox; raises a MailError saying why not."""
        if not settings.password:
            raise LoginRefused("no password is set (DOCAGENT_MAIL_PASSWORD, or the credential "
                               "mail-password)")
        client = _connect(settings, timeout)
        box = cls(settings, client)
        try:
            box._login_and_select()
        except BaseException:
            box.close()
            raise
        return box

    def _login_and_select(self) -> None:
        settings = self.settings
        try:
            self._client.login(settings.user, settings.password or "")
        except LoginError as error:
            raise LoginRefused(f"login refused for {settings.user} by {settings.host}: "
                               f"{_answer(error)}") from None
        with _translated():
            capabilities = {bytes(c).upper() for c in self._client.capabilities()}
            self.idle_offered = b"IDLE" in capabilities
            self.moves = b"MOVE" in capabilities
            try:
                selected = self._client.select_folder(settings.mailbox)
            except imaplib.IMAP4.abort:
                raise
            except imaplib.IMAP4.error as error:
                raise MailboxProblem(f"the mailbox {settings.mailbox!r} cannot be opened: "
                                     f"{_answer(error)}") from None
            self.uidvalidity = int(selected.get(b"UIDVALIDITY", 0))
            self._news()  # the count SELECT reported is no news
            if settings.mark == "move":
                self._ensure_taken_folder()
            else:
                flags = {bytes(f) for f in selected.get(b"PERMANENTFLAGS", ())}
                if b"\\*" not in flags and TAKEN_KEYWORD not in flags:
                    raise MailboxProblem(f"{settings.host} keeps no flags of its own in "
                                         f"{settings.mailbox!r}: set DOCAGENT_MAIL_MARK=move")

    def _ensure_taken_folder(self) -> None:
        folder = self.settings.taken_folder
        try:
            if not self._client.folder_exists(folder):
                self._client.create_folder(folder)
                self._client.subscribe_folder(folder)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as error:
            raise MailboxProblem(f"the folder {folder!r} for taken mail cannot be made: "
                                 f"{_answer(error)} (set DOCAGENT_MAIL_TAKEN_FOLDER)") from None

    # --- reading ------------------------------------------------------------------------

    def waiting(self) -> list[int]:
        """UIDs of the messages in the mailbox not yet marked taken, oldest first."""
        criteria: list[Any] = ["NOT", "DELETED"]
        if self.settings.mark == "flag":
            criteria += ["UNKEYWORD", TAKEN_KEYWORD.decode()]
        with _translated():
            return sorted(int(uid) for uid in self._client.search(criteria))

    def summaries(self, uids: Sequence[int]) -> list[Summary]:
        """Sender, subject, Message-ID and MIME leaves of each message (vanished ones left
        out), in the order of `uids`."""
        found: dict[int, Summary] = {}
        for start in range(0, len(uids), SUMMARY_BATCH):
            batch = list(uids[start:start + SUMMARY_BATCH])
            with _translated():
                answer = self._client.fetch(batch, [b"BODYSTRUCTURE", b"RFC822.SIZE",
                                                    HEADER_FIELDS])
            for uid, data in answer.items():
                found[int(uid)] = _summary(int(uid), data)
        return [found[uid] for uid in uids if uid in found]

    def download(self, uid: int, part: Part, *, chunk: int = CHUNK) -> Iterator[bytes]:
        """The part's bytes, decoded from its transfer encoding, as they arrive. Raises
        Unreachable when the connection is cut, MailboxProblem when the message is gone."""
        decoder = _decoder(part.encoding)
        offset = 0
        while True:
            item = f"BODY.PEEK[{part.section}]<{offset}.{chunk}>".encode()
            with _translated():
                answer = self._client.fetch([uid], [item])
            if uid not in answer:
                raise MailboxProblem(f"message UID {uid} vanished from {self.settings.mailbox!r} "
                                     "while it was read")
            data = next((bytes(v or b"") for k, v in answer[uid].items()
                         if bytes(k).upper().startswith(b"BODY[")), b"")
            offset += len(data)
            last = len(data) < chunk
            decoded = decoder.feed(data, last=last)
            if decoded:
                yield decoded
            if last:
                return

    # --- marking ------------------------------------------------------------------------

    def mark_taken(self, uid: int) -> None:
        """Move the message into the taken folder, or give it the keyword."""
        with _translated():
            if self.settings.mark == "flag":
                self._client.add_flags([uid], [TAKEN_KEYWORD], silent=True)
                return
            folder = self.settings.taken_folder
            if self.moves:
                self._client.move([uid], folder)
                return
            # No MOVE: copy, then delete this one message (UID EXPUNGE where offered).
            self._client.copy([uid], folder)
            self._client.add_flags([uid], [b"\\Deleted"], silent=True)
            try:
                self._client.uid_expunge([uid])
            except CapabilityError:
                self._client.expunge()

    # --- waiting ------------------------------------------------------------------------

    def wait(self, seconds: float, stop: threading.Event) -> None:
        """Until the server says the mailbox changed (IDLE), `seconds` pass, or `stop` is set.
        Without IDLE (not offered, or DOCAGENT_MAIL_IDLE=no) it waits `seconds`, then asks the
        server for news (NOOP), which also proves the connection alive."""
        if self._news():
            return  # a message came while the last look was under way: look again now
        if not (self.idle_offered and self.settings.idle):
            stop.wait(seconds)
            if not stop.is_set():
                with _translated():
                    self._client.noop()
            return
        deadline = time.monotonic() + min(seconds, IDLE_RENEW)
        with _translated():
            self._client.idle()
            try:
                while not stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    asked = min(1.0, left)
                    began = time.monotonic()
                    answers = self._client.idle_check(timeout=asked)
                    if any(_is_news(a) for a in answers):
                        break
                    if not answers and time.monotonic() - began < asked / 2:
                        break  # the socket woke with nothing to read: closed; DONE will say
            finally:
                self._client.idle_done()

    def _news(self) -> bool:
        """Whether the server said, in answer to any command since the last call, that a
        message came (EXISTS, RECENT). imaplib keeps such unsolicited answers aside, and
        IMAPClient's FETCH and SEARCH do not return them: without this, a message delivered
        during a look would wait for the next IDLE renewal."""
        pending = self._client._imap.untagged_responses
        came = [pending.pop(name, None) for name in ("EXISTS", "RECENT")]
        return any(came)

    @property
    def uses_idle(self) -> bool:
        return self.idle_offered and self.settings.idle

    # --- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Log out, or drop the connection if the server cannot be told."""
        try:
            self._client.logout()
        except (imaplib.IMAP4.error, OSError):
            with contextlib.suppress(imaplib.IMAP4.error, OSError):
                self._client.shutdown()

    def __enter__(self) -> Mailbox:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()


# --- connecting ------------------------------------------------------------------------------


def tls_context(settings: MailSettings) -> ssl.SSLContext:
    """The system's authorities (and the CA file if set); certificate and host name checked."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if settings.ca_file is not None:
        context.load_verify_locations(cafile=str(settings.ca_file))
    return context


def _connect(settings: MailSettings, timeout: float) -> Any:
    where = f"{settings.host}:{settings.port}"
    context = tls_context(settings)
    try:
        if settings.security == "imaps":
            return IMAPClient(settings.host, settings.port, ssl=True, ssl_context=context,
                              timeout=timeout)
        client = IMAPClient(settings.host, settings.port, ssl=False, timeout=timeout)
        try:
            client.starttls(context)
        except CapabilityError:
            client.shutdown()
            raise TlsRefused(f"{where} offers no STARTTLS: use DOCAGENT_MAIL_SECURITY=imaps "
                             "(port 993)") from None
        except BaseException:
            client.shutdown()
            raise
        return client
    except ssl.SSLCertVerificationError as error:
        raise TlsRefused(f"the certificate of {where} is not trusted: "
                         f"{error.verify_message or error} (DOCAGENT_MAIL_CA_FILE names a "
                         "certificate to trust for a server of your own)") from None
    except (ssl.SSLEOFError, ssl.SSLZeroReturnError) as error:
        # Cut during the handshake: the server (or something on the way) went away.
        raise Unreachable(f"{where} closed the connection before TLS was set up: "
                          f"{error.reason or error}") from None
    except ssl.SSLError as error:
        if "EOF" in str(error.reason or ""):
            raise Unreachable(f"{where} closed the connection before TLS was set up: "
                              f"{error.reason}") from None
        raise TlsRefused(f"no TLS connection with {where}: {error.reason or error} (is "
                         f"DOCAGENT_MAIL_SECURITY={settings.security} right for port "
                         f"{settings.port}?)") from None
    except socket.gaierror as error:
        raise Unreachable(f"{settings.host} cannot be found: {error.strerror or error}") from None
    except (OSError, imaplib.IMAP4.abort) as error:
        raise Unreachable(f"{where} cannot be reached: {_os_reason(error)}") from None
    except imaplib.IMAP4.error as error:
        raise Unreachable(f"{where} answered unexpectedly: {_answer(error)}") from None


class _translated:
    """Turns what the network and imaplib raise mid-session into Unreachable."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        if error is None or isinstance(error, MailError):
            return
        if isinstance(error, ssl.SSLError | OSError | imaplib.IMAP4.abort):
            raise Unreachable(f"the connection was lost: {_os_reason(error)}") from error
        if isinstance(error, imaplib.IMAP4.error):
            raise MailboxProblem(f"the server refused a command: {_answer(error)}") from error


def _os_reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


def _answer(error: BaseException) -> str:
    """What the server said, without imaplib's decorations."""
    text = str(error)
    text = re.sub(r"^(b['\"])(.*)(['\"])$", r"\2", text)
    return text.strip() or type(error).__name__


def _is_news(answer: Any) -> bool:
    """An IDLE answer saying the mailbox changed: a message came (EXISTS) or went."""
    return isinstance(answer, tuple) and len(answer) >= 2 \
        and isinstance(answer[1], bytes) and answer[1].upper() in (b"EXISTS", b"EXPUNGE",
                                                                    b"RECENT")


# --- a message's summary ---------------------------------------------------------------------


def _summary(uid: int, data: dict[bytes, Any]) -> Summary:
    header = b""
    for key, value in data.items():
        if bytes(key).upper().startswith(b"BODY[HEADER"):
            header = bytes(value or b"")
    senders, subject, message_id = _read_header(header)
    structure = data.get(b"BODYSTRUCTURE")
    parts = tuple(_leaves(structure, "", embedded=False)) if structure is not None else ()
    return Summary(uid=uid, sender=senders[0] if senders else "", senders=senders,
                   subject=subject, message_id=message_id,
                   size=int(data.get(b"RFC822.SIZE") or 0), parts=parts)


def _read_header(raw: bytes) -> tuple[tuple[str, ...], str, str]:
    message = BytesHeaderParser(policy=email.policy.compat32).parsebytes(raw)
    addresses = email.utils.getaddresses([str(v) for v in message.get_all("From", [])])
    senders = tuple(a.strip().lower() for _, a in addresses if "@" in a)
    subject = _decoded(message.get("Subject"))
    message_id = " ".join(str(message.get("Message-ID") or "").split())
    return senders, subject, message_id


def _decoded(value: Any) -> str:
    """An RFC 2047 header (`=?utf-8?q?R=C3=A9sultats?=`) as text; what cannot be decoded as is."""
    if value is None:
        return ""
    try:
        text = str(email.header.make_header(email.header.decode_header(str(value))))
    except (ValueError, LookupError, email.errors.HeaderParseError):
        text = str(value)
    return " ".join(text.split())


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _pairs(raw: Any) -> list[tuple[str, str]]:
    """A BODYSTRUCTURE parameter list, (NAME value NAME value ...), as (name, value) pairs."""
    if not isinstance(raw, tuple | list):
        return []
    items = [_text(v) for v in raw]
    return [(items[i].lower(), items[i + 1]) for i in range(0, len(items) - 1, 2)]


def _param(pairs: list[tuple[str, str]], name: str) -> str | None:
    """A parameter, RFC 2231 (`filename*=utf-8''...`, continuations) and RFC 2047 decoded."""
    if not pairs:
        return None
    decoded = email.utils.decode_params([("x", ""), *pairs])[1:]
    for key, value in decoded:
        if key.lower() == name:
            text = email.utils.unquote(email.utils.collapse_rfc2231_value(value)) \
                if isinstance(value, tuple) else _decoded(email.utils.unquote(value))
            return text.strip() or None
    return None


def _leaves(body: Any, prefix: str, *, embedded: bool) -> Iterator[Part]:
    """Each leaf part of a BODYSTRUCTURE, with its section number."""
    if isinstance(body[0], list):  # multipart: (parts, subtype, ...)
        subtype = _text(body[1]).lower()
        for number, child in enumerate(body[0], 1):
            yield from _leaves(child, f"{prefix}.{number}" if prefix else str(number),
                               embedded=embedded or subtype == "related")
        return
    section = prefix or "1"
    kind = f"{_text(body[0]).lower()}/{_text(body[1]).lower()}"
    params = _pairs(body[2])
    encoding = _text(body[5]).lower() or "7bit"
    size = int(body[6] or 0)
    # Extension data after the basic fields: text/* adds its line count, message/rfc822 its
    # envelope, body and line count; then MD5, then the disposition.
    extra = 7 + (1 if kind.startswith("text/") else 3 if kind == "message/rfc822" else 0)
    disposition_raw = body[extra + 1] if len(body) > extra + 1 else None
    disposition = None
    disposition_params: list[tuple[str, str]] = []
    if isinstance(disposition_raw, tuple | list) and disposition_raw:
        disposition = _text(disposition_raw[0]).lower() or None
        disposition_params = _pairs(disposition_raw[1] if len(disposition_raw) > 1 else None)
    filename = _param(disposition_params, "filename") or _param(params, "name")
    yield Part(section=section, content_type=kind, filename=filename, size=size,
               encoding=encoding, disposition=disposition, embedded=embedded)


# --- transfer encodings, decoded as the pieces come -------------------------------------------


class _Decoder:
    def feed(self, data: bytes, *, last: bool) -> bytes:
        return data


class _Base64(_Decoder):
    _junk = re.compile(rb"[^A-Za-z0-9+/=]")

    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes, *, last: bool) -> bytes:
        text = self._rest + self._junk.sub(b"", data)
        whole = len(text) if last else len(text) - len(text) % 4
        self._rest = text[whole:]
        if last and whole % 4:
            text = text[:whole] + b"=" * (-whole % 4)
            whole = len(text)
        try:
            return base64.b64decode(text[:whole])
        except binascii.Error:
            return binascii.a2b_base64(text[:whole])


class _QuotedPrintable(_Decoder):
    def __init__(self) -> None:
        self._rest = b""

    def feed(self, data: bytes, *, last: bool) -> bytes:
        text = self._rest + data
        cut = len(text) if last else text.rfind(b"\n") + 1
        self._rest = text[cut:]
        return binascii.a2b_qp(text[:cut])


def _decoder(encoding: str) -> _Decoder:
    if encoding == "base64":
        return _Base64()
    if encoding == "quoted-printable":
        return _QuotedPrintable()
    return _Decoder()


def decoded_size_at_least(part: Part) -> int:
    """The fewest bytes a part can decode to: enough to refuse one over the size limit
    without downloading it (base64 lines of 76 characters and CRLF carry 57 bytes)."""
    if part.encoding == "base64":
        return part.size * 57 // 78
    if part.encoding == "quoted-printable":
        return part.size // 3
    return part.size
