"""A real IMAP server for the tests: Debian's Dovecot on loopback, in a folder of its own.

`Dovecot` writes its own configuration (passwd-file authentication with one test user, maildir
under the folder, a self-signed certificate made by openssl for IMAPS and STARTTLS, both on
free loopback ports), starts `dovecot -F -c CONF` as an unprivileged process tree (as `nobody`
when the tests run as root, else as the user running them), and can be stopped and started
again on the same ports and mail. Messages are delivered as a mail server would, whole MIME
messages written by Python's email package, by IMAP APPEND. `Relay` is a TCP relay in front of
it that can hold the server's answer at a chosen byte, so that a test stops the server in the
middle of a download. Nothing here is docagent's: bench/ uses it too.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any

from imapclient import IMAPClient

USER = "lab@practice.test"
PASSWORD = "s3cret-Imap!"
DOVECOT = "/usr/sbin/dovecot"
PDF_TYPES = {"pdf": ("application", "pdf"), "jpg": ("image", "jpeg"), "png": ("image", "png"),
             "tif": ("image", "tiff"), "heic": ("image", "heic")}


def why_not() -> str | None:
    """None when Dovecot and openssl are here, else the reason (for a skip)."""
    missing = [name for name, path in (("dovecot-imapd", DOVECOT), ("openssl", "openssl"))
               if shutil.which(path) is None]
    if missing or not Path("/usr/lib/dovecot/imap").exists():
        return f"{', '.join(missing) or 'dovecot-imapd'} not installed (./deploy/dev.sh test " \
               "installs it)"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _account() -> tuple[int, int, str]:
    """Who the server runs as: `nobody` for root, else ourselves."""
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        return nobody.pw_uid, nobody.pw_gid, nobody.pw_name
    me = pwd.getpwuid(os.geteuid())
    return me.pw_uid, me.pw_gid, me.pw_name


class Dovecot:
    def __init__(self, *, idle: bool = True, users: Sequence[tuple[str, str]] = ((USER,
                                                                                    PASSWORD),)
                 ) -> None:
        # Not under pytest's tmp_path: its parents are root's alone, and the server is not root.
        self.dir = Path(tempfile.mkdtemp(prefix="docagent-dovecot-"))
        self.uid, self.gid, self.user = _account()
        self.imaps_port = free_port()
        self.imap_port = free_port()
        self.idle = idle
        self.users = list(users)
        self.proc: subprocess.Popen[bytes] | None = None
        self._write_files()

    @property
    def cert(self) -> Path:
        return self.dir / "cert.pem"

    @property
    def log(self) -> Path:
        return self.dir / "dovecot.log"

    def _write_files(self) -> None:
        for sub in ("run", "state", "mail"):
            (self.dir / sub).mkdir()
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
             "-keyout", str(self.dir / "key.pem"), "-out", str(self.cert)],
            check=True, capture_output=True)
        (self.dir / "passwd").write_text(
            "".join(f"{name}:{{PLAIN}}{secret}::::::\n" for name, secret in self.users))
        # IDLE off: the capability list without it, as a server that never offered it.
        capability = "" if self.idle else (
            "imap_capability = IMAP4rev1 LITERAL+ SASL-IR LOGIN-REFERRALS ID ENABLE "
            "SORT SORT=DISPLAY THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND "
            "URL-PARTIAL CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 "
            "CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS BINARY "
            "MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE LITERAL+ NOTIFY "
            "SPECIAL-USE\n")
        (self.dir / "dovecot.conf").write_text(f"""\
base_dir = {self.dir}/run
state_dir = {self.dir}/state
log_path = {self.log}
protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <{self.cert}
ssl_key = <{self.dir}/key.pem
ssl_min_protocol = TLSv1.2
disable_plaintext_auth = yes
auth_mechanisms = plain login
default_login_user = {self.user}
default_internal_user = {self.user}
default_internal_group = {_group(self.gid)}
first_valid_uid = {self.uid}
last_valid_uid = {self.uid}
first_valid_gid = 0
mail_location = maildir:{self.dir}/mail/%u
mail_uid = {self.uid}
mail_gid = {self.gid}
{capability}
namespace inbox {{
  inbox = yes
  separator = /
}}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {self.dir}/passwd
}}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={self.dir}/mail/%u
}}
service imap-login {{
  chroot =
  user = {self.user}
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.imap_port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.imaps_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
}}
service auth {{
  user = {self.user}
}}
service stats {{
  user = {self.user}
}}
""")
        if os.geteuid() == 0:
            subprocess.run(["chown", "-R", f"{self.uid}:{self.gid}", str(self.dir)], check=True)

    # --- the process -------------------------------------------------------------------

    def start(self, timeout: float = 20.0) -> None:
        argv = [DOVECOT, "-F", "-c", str(self.dir / "dovecot.conf")]
        if os.geteuid() == 0:
            argv = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
                    "--", *argv]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dovecot exited {self.proc.returncode}: "
                                   f"{self.proc.stderr.read().decode() if self.proc.stderr else ''}"
                                   f"\n{self.log.read_text() if self.log.exists() else ''}")
            if _listening(self.imaps_port) and _listening(self.imap_port):
                return
            time.sleep(0.05)
        raise RuntimeError(f"dovecot did not listen within {timeout} s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop the whole tree (the master and every imap process): connections are cut."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=20)
        deadline = time.monotonic() + 10
        while (_listening(self.imaps_port) or _listening(self.imap_port)) \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        self.proc = None

    def pids(self) -> list[int]:
        """The server's processes (its session: the master and its children)."""
        if self.proc is None:
            return []
        sid = self.proc.pid
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError):
                    if os.getsid(int(entry.name)) == sid:
                        found.append(int(entry.name))
        return found

    def close(self) -> None:
        self.stop(signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- talking to it as the lab and the mail server would ----------------------------

    def client(self, user: str = USER, password: str = PASSWORD) -> Any:
        context = ssl.create_default_context(cafile=str(self.cert))
        box = IMAPClient("127.0.0.1", self.imaps_port, ssl=True, ssl_context=context,
                         timeout=30)
        box.login(user, password)
        return box

    def deliver(self, *messages: EmailMessage | bytes, folder: str = "INBOX") -> None:
        with self.client() as box:
            for message in messages:
                raw = message if isinstance(message, bytes) else message.as_bytes()
                box.append(folder, raw)

    def uids(self, folder: str = "INBOX") -> list[int]:
        with self.client() as box:
            if not box.folder_exists(folder):
                return []
            box.select_folder(folder, readonly=True)
            return sorted(int(u) for u in box.search(["NOT", "DELETED"]))

    def messages(self, folder: str = "INBOX") -> list[EmailMessage]:
        """Every message in `folder`, parsed, in UID order."""
        import email
        import email.policy

        with self.client() as box:
            if not box.folder_exists(folder):
                return []
            box.select_folder(folder, readonly=True)
            uids = sorted(box.search(["NOT", "DELETED"]))
            found = box.fetch(uids, [b"BODY.PEEK[]", b"FLAGS"]) if uids else {}
            out = []
            for uid in uids:
                message = email.message_from_bytes(found[uid][b"BODY[]"],
                                                   policy=email.policy.default)
                message["X-Test-Flags"] = " ".join(f.decode() for f in found[uid][b"FLAGS"])
                out.append(message)
            return out


def _group(gid: int) -> str:
    import grp

    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.2)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def running(**options: Any) -> Iterator[Dovecot]:
    server = Dovecot(**options)
    try:
        server.start()
        yield server
    finally:
        server.close()


# --- messages ---------------------------------------------------------------------------------


def message(sender: str = "resultats@labo-bio.test", *, subject: str = "Résultats",
            attachments: Sequence[tuple[str, bytes]] = (), body: str = "Veuillez trouver "
            "ci-joint les résultats.", to: str = USER, message_id: str | None = None,
            inline_images: Sequence[tuple[str, bytes]] = ()) -> EmailMessage:
    """A real MIME message: a text body, the attachments (their type from the name's
    extension, application/octet-stream for one it does not know), and optionally images
    embedded in an HTML body (multipart/related, as a signature's logo is)."""
    mail = EmailMessage()
    mail["From"] = sender
    mail["To"] = to
    mail["Subject"] = subject
    mail["Message-ID"] = message_id or make_msgid(domain="labo-bio.test")
    mail["Date"] = "Tue, 01 Dec 2026 09:00:00 +0100"
    mail.set_content(body)
    if inline_images:
        html = "<p>" + body + "</p>" + "".join(f'<img src="cid:logo{i}">'
                                               for i in range(len(inline_images)))
        mail.add_alternative(html, subtype="html")
        alternative = mail.get_payload()[1]
        for i, (name, data) in enumerate(inline_images):
            maintype, subtype = PDF_TYPES.get(name.rpartition(".")[2].lower(), ("image", "png"))
            alternative.add_related(data, maintype=maintype, subtype=subtype, cid=f"<logo{i}>",
                                    filename=name)
    for name, data in attachments:
        maintype, subtype = PDF_TYPES.get(name.rpartition(".")[2].lower(),
                                          ("application", "octet-stream"))
        if name.endswith(".docx"):
            maintype, subtype = ("application", "vnd.openxmlformats-officedocument."
                                                "wordprocessingml.document")
        mail.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    return mail


class Relay:
    """A TCP relay on loopback in front of `port`. `hold_after(n)`: once n more bytes went from
    the server to the client, stop passing them on and set `held`; the connection then stays
    as it is until the server ends it (a test stops the server meanwhile)."""

    def __init__(self, port: int) -> None:
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.held = threading.Event()
        self._budget: int | None = None
        self._lock = threading.Lock()
        self._closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def hold_after(self, count: int) -> None:
        with self._lock:
            self._budget = count
            self.held.clear()

    def release(self) -> None:
        with self._lock:
            self._budget = None

    def _accept(self) -> None:
        while not self._closing:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.upstream), timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            threading.Thread(target=self._pipe, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, True), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, downstream: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if downstream:
                    with self._lock:
                        if self._budget is not None:
                            if len(data) >= self._budget:
                                data = data[:self._budget]
                                self._budget = 0
                            else:
                                self._budget -= len(data)
                        hold = self._budget == 0
                    if data:
                        target.sendall(data)
                    if hold:
                        self.held.set()
                        # Pass nothing more on; wait for the server to go away.
                        while source.recv(65536):
                            pass
                        break
                    continue
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()

    def close(self) -> None:
        self._closing = True
        self.listener.close()
