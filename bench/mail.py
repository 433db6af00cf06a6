"""The mail channel, measured: from a mail's delivery to its document filed, and memory while
mails wait.

A real Dovecot on loopback (tests/imapserver.py, Debian's dovecot-imapd) and a real `docagent
run` reading it over IMAPS, on a spool of its own in a temporary folder:

- latency: `--rounds` mails (20), one at a time, each with a different born-digital lab report
  (a patient of the directory: filed); the clock starts when the server has answered the
  APPEND (the mail is in the mailbox) and stops at the document's `finished_at` in state.db.
  Once with IDLE, once polling (`DOCAGENT_MAIL_IDLE=no`, a look every `--poll` seconds; the
  mails then come at random moments of the poll's cycle, as real ones do);
- memory: `--waiting` mails (200), each with a lab report attached, delivered while docagent
  is stopped; then docagent starts and takes them all. The peak resident memory of the
  daemon's process tree (tests/watch.py's meter, every 10 ms) while it does, beside the same
  daemon's peak with an empty mailbox.

    PYTHONPATH=$PWD .venv/bin/python -m bench.mail [--rounds 20] [--poll 5] [--waiting 200]
        [--pad-kib 512] [--only latency|memory]

Public tools only: Dovecot, openssl, the docagent command. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tests import imapserver, pdfgen
from tests.conftest import PATIENTS_CSV
from tests.watch import PeakMemory, until

DOCAGENT = str(Path(sys.executable).with_name("docagent"))
LAB = "resultats@labo-bio.test"
PATIENTS = [("MARTIN", "Hélène", "03/04/1975"), ("DUPONT", "Jean", "12/03/1961"),
            ("SMITH", "John", "09/01/1954")]


class Site:
    def __init__(self, root: Path, server: imapserver.Dovecot, **extra: str) -> None:
        self.root = root
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("DOCAGENT_", "TELEGRAM_", "NOTIFY_SOCKET"))}
        self.env.update({
            "DOCAGENT_HOME": str(root / "home"), "DOCAGENT_LOG_DIR": str(root / "logs"),
            "DOCAGENT_LANG": "en", "DOCAGENT_WORKERS": "2",
            "DOCAGENT_MAIL_HOST": "127.0.0.1", "DOCAGENT_MAIL_PORT": str(server.imaps_port),
            "DOCAGENT_MAIL_USER": imapserver.USER, "DOCAGENT_MAIL_PASSWORD": imapserver.PASSWORD,
            "DOCAGENT_MAIL_CA_FILE": str(server.cert), "DOCAGENT_MAIL_ALLOWED_SENDERS": LAB,
            **extra})
        root.mkdir(parents=True)
        (root / "patients.csv").write_text(PATIENTS_CSV, encoding="utf-8")
        subprocess.run([DOCAGENT, "patients", "import", str(root / "patients.csv")],
                       env=self.env, check=True, capture_output=True)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log = open(self.root / "daemon.out", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen([DOCAGENT, "run"], env=self.env, stdout=self.log,
                                     stderr=subprocess.STDOUT)
        until(lambda: "mail: reading" in (self.root / "daemon.out").read_text(), 60,
              "the daemon to read the mailbox", process=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=120)
            self.log.close()

    def finished(self) -> dict[str, float]:
        """original_name -> finished_at (epoch seconds) of every finished document."""
        db = sqlite3.connect(self.root / "home" / "state.db")
        try:
            rows = db.execute("SELECT original_name, finished_at FROM documents "
                              "WHERE finished_at IS NOT NULL").fetchall()
        finally:
            db.close()
        return {name: datetime.fromisoformat(at).timestamp() for name, at in rows}


def report(folder: Path, n: int, pad_kib: int = 0) -> bytes:
    """A born-digital lab report; `pad_kib` adds that much of a comment after its end (hex
    text, which poppler passes over), for attachments of a realistic scan's size."""
    last, first, birth = PATIENTS[n % len(PATIENTS)]
    path = folder / f"report-{n}.pdf"
    data = pdfgen.text_pdf([pdfgen.report(last, first, birth, tag=f"bench {n}")],
                           path).read_bytes()
    if pad_kib:
        data += b"%" + os.urandom(pad_kib * 512).hex().encode() + b"\n"
    return data


def latency(work: Path, rounds: int, *, idle: bool, poll: float, seed: int) -> list[float]:
    rng = random.Random(seed)
    with imapserver.running() as server:
        extra = {} if idle else {"DOCAGENT_MAIL_IDLE": "no",
                                 "DOCAGENT_MAIL_POLL_SECONDS": f"{poll:g}"}
        site = Site(work / ("idle" if idle else "poll"), server, **extra)
        site.start()
        seconds = []
        try:
            for n in range(rounds):
                name = f"{'idle' if idle else 'poll'}-{n}.pdf"
                data = report(work, n)
                mail = imapserver.message(LAB, subject=f"Résultats {n}",
                                          attachments=[(name, data)])
                server.deliver(mail)
                delivered = time.time()
                done = until(lambda name=name: site.finished().get(name), 120 + poll,
                             f"{name} to be filed")
                seconds.append(done - delivered)
                if not idle:
                    time.sleep(rng.uniform(0, poll))  # the next mail at any point of the cycle
        finally:
            site.stop()
    return seconds


def memory(work: Path, waiting: int, pad_kib: int = 0) -> dict[str, Any]:
    with imapserver.running() as server:
        empty = Site(work / "empty", server)
        empty.start()
        assert empty.proc is not None
        meter = PeakMemory(empty.proc.pid)
        time.sleep(10)
        meter.stop()
        empty.stop()
        idle_peak = meter.peak

    with imapserver.running() as server:
        site = Site(work / "waiting", server)
        names = []
        for start in range(0, waiting, 50):
            batch = []
            for n in range(start, min(waiting, start + 50)):
                name = f"wait-{n}.pdf"
                names.append(name)
                batch.append(imapserver.message(LAB, subject=f"Résultats {n}",
                                                attachments=[(name, report(work, 1000 + n,
                                                                           pad_kib))]))
            server.deliver(*batch)
        mailbox_bytes = sum(p.stat().st_size for p in (server.dir / "mail").rglob("*")
                            if p.is_file())
        site.log = open(site.root / "daemon.out", "ab")  # noqa: SIM115
        began = time.monotonic()
        site.proc = subprocess.Popen([DOCAGENT, "run"], env=site.env, stdout=site.log,
                                     stderr=subprocess.STDOUT)
        meter = PeakMemory(site.proc.pid)
        try:
            until(lambda: len(site.finished()) >= waiting, 900, "every waiting mail to be filed",
                  process=site.proc)
            took = time.monotonic() - began
        finally:
            meter.stop()
            site.stop()
        left = server.uids()
    return {"mails": waiting, "mailbox_mib": round(mailbox_bytes / 2**20, 1),
            "peak_mib": round(meter.peak / 2**20, 1),
            "empty_mailbox_peak_mib": round(idle_peak / 2**20, 1),
            "seconds_to_take_all": round(took, 1), "left_in_inbox": len(left)}


def summary(values: list[float]) -> dict[str, float]:
    ms = sorted(v * 1000 for v in values)
    return {"median_ms": round(statistics.median(ms)), "min_ms": round(ms[0]),
            "max_ms": round(ms[-1]), "n": len(ms)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--poll", type=float, default=5.0, help="DOCAGENT_MAIL_POLL_SECONDS")
    parser.add_argument("--waiting", type=int, default=200)
    parser.add_argument("--pad-kib", type=int, default=0,
                        help="make each waiting mail's attachment this much larger")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--only", choices=("latency", "memory"))
    args = parser.parse_args()
    reason = imapserver.why_not()
    if reason:
        print(f"cannot run: {reason}", file=sys.stderr)
        return 2
    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-mail-") as tmp:
        work = Path(tmp)
        if args.only in (None, "latency"):
            out["idle"] = summary(latency(work, args.rounds, idle=True, poll=args.poll,
                                          seed=args.seed))
            print("delivery -> filed, IDLE:", out["idle"], flush=True)
            out["polling"] = {**summary(latency(work, args.rounds, idle=False, poll=args.poll,
                                                seed=args.seed)), "poll_seconds": args.poll}
            print(f"delivery -> filed, polling every {args.poll:g} s:", out["polling"],
                  flush=True)
        if args.only in (None, "memory"):
            out["memory"] = {**memory(work, args.waiting, args.pad_kib),
                             "attachment_padding_kib": args.pad_kib}
            print("memory while mails wait:", out["memory"], flush=True)
    target = Path(__file__).parent / "out"
    target.mkdir(exist_ok=True)
    (target / "mail.json").write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
