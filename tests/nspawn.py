"""A Debian 12 container booted with systemd as PID 1, for the tests that need the real systemd.

A debootstrap image cached as a tarball (keyed by a hash of its package list, so a change of
packages builds a new one), booted by `systemd-nspawn -b` inside a private mount namespace (the
container's mounts never reach the host's), with commands run through `nsenter`. The launcher
moves itself into a cgroup of its own first, so the `payload`/`supervisor` groups nspawn
creates never collide with another container on the same machine, and everything it leaves
behind is removed by removing that one subtree.

Never boots systemd any other way: started by `unshare` without a cgroup namespace, it takes the
host's cgroup tree for its own and remounts /sys/fs/cgroup read-only; a `systemd --user` with a
faked /run/systemd/system moves every process of the machine into its cgroup. Either damages
the machine for everything else running on it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path

from tests.watch import until

CACHE = Path(os.environ.get("DOCAGENT_TEST_CACHE", "/var/cache/docagent-test"))
SUITE = "bookworm"
# What the installed project needs, baked in so the boot test does not apt-get each run.
PACKAGES = ("systemd", "systemd-sysv", "dbus", "python3", "python3-venv", "ca-certificates",
            "tesseract-ocr", "tesseract-ocr-fra", "tesseract-ocr-eng", "poppler-utils")
CGROUP_ROOTS = (Path("/sys/fs/cgroup/unified"), Path("/sys/fs/cgroup/systemd"),
                Path("/sys/fs/cgroup"))


def why_not() -> str | None:
    """None if a container can boot here, else the reason (for a skip)."""
    if os.geteuid() != 0:
        return "booting a systemd-nspawn container needs root"
    for tool in ("systemd-nspawn", "debootstrap", "nsenter", "unshare", "zstd"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (apt-get install systemd-container debootstrap zstd)"
    if not Path("/sys/fs/cgroup").is_dir():
        return "no cgroup file system at /sys/fs/cgroup"
    return None


def image_key() -> str:
    return hashlib.sha256(f"{SUITE} {' '.join(sorted(PACKAGES))} v1".encode()).hexdigest()[:16]


def image() -> Path:
    """The cached image tarball, built once (about a minute) under a lock."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"bookworm-{image_key()}.tar.zst"
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.exists():
            return tarball
        with tempfile.TemporaryDirectory(dir=CACHE) as work:
            root = Path(work) / "root"
            subprocess.run(["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}",
                            SUITE, str(root)], check=True, stdout=subprocess.DEVNULL)
            for pattern in ("var/cache/apt/archives/*.deb", "var/lib/apt/lists/*",
                            "usr/share/doc/*", "usr/share/locale/*", "usr/share/man/*"):
                for path in root.glob(pattern):
                    if path.is_dir() and not path.is_symlink():
                        shutil.rmtree(path)
                    else:
                        path.unlink()
            (root / "etc/machine-id").write_text("")
            partial = tarball.with_suffix(".part")
            subprocess.run(["tar", "--zstd", "-cf", str(partial), "-C", str(root), "."],
                           check=True)
            partial.rename(tarball)
    return tarball


class Container:
    """One booted container; `run` executes a command inside it."""

    def __init__(self, root: Path, payload: Path, log: Path) -> None:
        self.root = root
        self.payload = payload
        self.log = log
        self.cgroup = f"docagent-nspawn-{uuid.uuid4().hex[:12]}"
        self.process: subprocess.Popen[bytes] | None = None
        self.leader = 0

    def boot(self, timeout: float = 120.0) -> None:
        cgroups = [root / self.cgroup for root in CGROUP_ROOTS
                   if (root / "cgroup.procs").exists()]
        # The launcher joins its own cgroups before becoming nspawn, so nspawn's subgroups
        # land under them and not beside another container's.
        join = "".join(f'mkdir -p {g} && echo $$ > {g}/cgroup.procs && ' for g in cgroups)
        script = (join + "mkdir -p /run/systemd/nspawn && "
                  "mount -t tmpfs tmpfs /run/systemd/nspawn && "
                  'exec systemd-nspawn -q -D "$0" --volatile=no --register=no --keep-unit '
                  '--console=pipe --bind-ro="$1":/payload -b')
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(
                ["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                 str(self.root), str(self.payload)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env)
        self._cgroups = cgroups
        launcher = self.process
        deadline = time.monotonic() + timeout

        def leader() -> int:
            found = subprocess.run(["pgrep", "-P", str(launcher.pid), "-x", "systemd"],
                                   capture_output=True, text=True)
            return int(found.stdout.split()[0]) if found.stdout.strip() else 0

        self.leader = until(leader, timeout, "the container to start", process=launcher,
                            output=self.log.read_text)
        until(lambda: self.run(["test", "-S", "/run/systemd/private"],
                               check=False).returncode == 0,
              max(0.0, deadline - time.monotonic()),
              "systemd in the container to open its private socket")
        self.run(["systemctl", "is-system-running", "--wait"], check=False, timeout=timeout)

    def run(self, argv: Sequence[str], *, check: bool = True,
            timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["nsenter", "-t", str(self.leader), "-a",
             "env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
             "LANG=C.UTF-8", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0", *argv],
            capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {result.returncode}:\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # nspawn turns SIGTERM into a clean halt of the container
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        for group in getattr(self, "_cgroups", []):
            if group.exists():
                subprocess.run(["find", str(group), "-depth", "-type", "d",
                                "-exec", "rmdir", "{}", "+"], check=False,
                               stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def booted(payload: Path, workdir: Path) -> Iterator[Container]:
    """Unpack the cached image under `workdir`, boot it, and always halt and clean up."""
    root = workdir / "root"
    root.mkdir()
    subprocess.run(["tar", "--zstd", "-xf", str(image()), "-C", str(root)], check=True)
    container = Container(root, payload, workdir / "container.log")
    try:
        container.boot()
        yield container
    finally:
        container.stop()
        shutil.rmtree(root, ignore_errors=True)
