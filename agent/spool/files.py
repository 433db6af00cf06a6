"""The spool's files: their names, and writing them so that a reader never sees half of one.

Every file here is docagent's own, created with `modes.FILE`; a file dropped by someone else
is only ever read, through one descriptor (`open_dropped`).
"""

from __future__ import annotations

import errno
import grp
import hashlib
import json
import os
import pwd
import re
import stat
import uuid
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from agent import modes
from agent.config import Settings
from agent.errors import DiskFull

FOLDERS = ("incoming", "processing", "done", "review", "failed")
MAX_NAME_BYTES = 150
# Opening a dropped file: never through a symlink, never blocking on a FIFO swapped in.
OPEN_DROPPED = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
CHUNK = 1024 * 1024
# Names in incoming/ that are not documents (yet): hidden files, and a copy being written.
IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".partial", ".swp", "~")
_CONTROL = re.compile(r"[\x00-\x1f\x7f/\\]+")
_PDF_SUFFIX = re.compile(r"\.pdf$", re.IGNORECASE)


class NotTaken(Exception):
    """The file cannot be taken now, and nothing was recorded: it is looked at again later
    (or, for a symlink or a FIFO, never)."""


class NotRegular(NotTaken):
    """The name no longer refers to a regular file (a symlink or a FIFO swapped in)."""


class OverLimit(NotTaken):
    """More bytes came than the limit allows (a stream given to `write_chunks`)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"over {limit} bytes ({size} came before it was stopped)")
        self.size = size
        self.limit = limit


def ignored(name: str) -> bool:
    """A name in incoming/ never taken: a hidden file, or a copy still being written."""
    return name.startswith(".") or name.lower().endswith(IGNORED_SUFFIXES)


def files_under(folder: Path, limit: int = 1000) -> int:
    """Files a folder inside incoming/ holds, at any depth (counted up to `limit`): none of
    them is ever taken, only files directly in incoming/ are. Symlinks are not followed."""
    count = 0
    for _, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        count += sum(not ignored(name) for name in names)
        if count >= limit:
            return limit
    return count


def stray_folders(incoming: Path) -> dict[str, int]:
    """The folders inside incoming/ that hold files, by name, with how many (`files_under`)."""
    found: dict[str, int] = {}
    with os.scandir(incoming) as entries:
        for entry in entries:
            if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
                count = files_under(Path(entry.path))
                if count:
                    found[entry.name] = count
    return dict(sorted(found.items()))


def ensure_folders(settings: Settings) -> None:
    """Create what is missing; an existing folder keeps its mode (install.sh sets incoming/'s)."""
    for name in FOLDERS:
        modes.make_folder(settings.home / name)


def processing_path(settings: Settings, document_id: str) -> Path:
    return settings.processing / f"{document_id}.pdf"


def original_path(settings: Settings, document_id: str) -> Path:
    """Where the bytes received stay while `processing_path` holds the PDF made from them (an
    image): a second link to the claimed copy, made before the PDF replaces it."""
    return settings.processing / f"{document_id}.original"


def conversion_path(settings: Settings, document_id: str) -> Path:
    """Where the PDF made from an image is written before it replaces the claimed copy (a
    hidden .tmp: recovery removes one a crash left)."""
    return settings.processing / f".convert-{document_id}.tmp"


def keep_original(settings: Settings, document_id: str) -> Path:
    """Link the claimed copy as the original, once, before anything replaces it; returns it.
    Already there (a crash, a retry), it is the bytes received and is left as it is."""
    original = original_path(settings, document_id)
    if not original.exists():
        try:
            os.link(processing_path(settings, document_id), original)
            fsync_dir(original.parent)
        except OSError as error:
            raise disk_error(error) from error
    return original


def swap_in_pdf(settings: Settings, document_id: str, made: Path) -> None:
    """The PDF made from the original (written and fsync'd at `made`) becomes the document's
    PDF: one rename, so a crash leaves either the claimed copy or the PDF, and the original."""
    try:
        os.rename(made, processing_path(settings, document_id))
        fsync_dir(made.parent)
    except OSError as error:
        raise disk_error(error) from error


def display_name(raw: str) -> str:
    """A name that can be stored, logged and shown: undecodable bytes become U+FFFD."""
    return os.fsencode(raw).decode("utf-8", "replace")


def safe_name(raw: str) -> str:
    """A single, harmless path component: no separators, control characters or leading dots."""
    name = _CONTROL.sub("_", display_name(raw)).strip().lstrip(".").strip()
    if not name:
        name = "document"
    while len(name.encode("utf-8")) > MAX_NAME_BYTES:
        stem, dot, ext = name.rpartition(".")
        keep_extension = dot and 0 < len(ext) <= 10 and len(stem) > 1
        name = f"{stem[:-1]}.{ext}" if keep_extension else name[:-1]
    return name


def kept_name(original_name: str) -> tuple[str, str]:
    """The stem and the suffix a failed file keeps in failed/: its safe name, split before an
    extension of up to 10 characters (`scan.pdf` -> `scan`, `.pdf`; `notes` -> `notes`, ``)."""
    name = safe_name(original_name)
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or len(ext) > 10:
        return name, ""
    return stem, f".{ext}"


def pdf_stem(original_name: str) -> str:
    return _PDF_SUFFIX.sub("", safe_name(original_name)) or "document"


def owner_of(info: os.stat_result) -> str:
    """`user:group` of a file, numbers where the names are unknown."""
    try:
        user = pwd.getpwuid(info.st_uid).pw_name
    except KeyError:
        user = str(info.st_uid)
    try:
        group = grp.getgrgid(info.st_gid).gr_name
    except KeyError:
        group = str(info.st_gid)
    return f"{user}:{group}"


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def disk_error(error: OSError) -> Exception:
    """A full disk is the machine's fault (DiskFull, the document waits); anything else as is."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull("the disk is full", detail=str(error))
    return error


def temporary(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")


def open_dropped(path: Path) -> int:
    """A descriptor on a dropped regular file. Raises NotRegular for a symlink, a FIFO or
    anything else, PermissionError when docagent may not read it, FileNotFoundError."""
    try:
        fd = os.open(path, OPEN_DROPPED)
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise NotRegular(f"{display_name(path.name)!r} is a symlink") from None
        raise
    try:
        mode = os.fstat(fd).st_mode
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise NotRegular(f"{display_name(path.name)!r} is not a regular file")
    return fd


def copy_fd(source_fd: int, tmp: Path) -> tuple[str, int]:
    """Copy everything `source_fd` holds into a new file `tmp` of ours, fsync'd; returns the
    sha256 and size of the bytes copied. pread: the descriptor's offset is not ours to move."""
    def chunks() -> Iterator[bytes]:
        offset = 0
        while chunk := os.pread(source_fd, CHUNK, offset):
            offset += len(chunk)
            yield chunk

    return write_chunks(chunks(), tmp)


def write_chunks(chunks: Iterable[bytes], tmp: Path, limit: int | None = None) -> tuple[str, int]:
    """Write bytes as they come (a download) into a new file `tmp` of ours, fsync'd; returns
    their sha256 and size. Stops with OverLimit once more than `limit` bytes came; `tmp` is
    then removed, as on any error."""
    digest = hashlib.sha256()
    size = 0
    try:
        out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, modes.FILE)
        with os.fdopen(out, "wb") as target:
            for chunk in chunks:
                size += len(chunk)
                if limit is not None and size > limit:
                    raise OverLimit(size, limit)
                digest.update(chunk)
                target.write(chunk)
            target.flush()
            os.fsync(target.fileno())
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise disk_error(error) from error
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return digest.hexdigest(), size


def copy_durably(src: Path, dest: Path) -> None:
    """Copy one of our own files to a temporary name, fsync, then rename: a reader never sees
    half a file."""
    tmp = temporary(dest)
    fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        copy_fd(fd, tmp)
    finally:
        os.close(fd)
    try:
        os.rename(tmp, dest)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise disk_error(error) from error


def write_file(path: Path, data: bytes) -> None:
    """Write a whole file atomically (temporary name, fsync, rename), mode modes.FILE."""
    tmp = temporary(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, modes.FILE)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.rename(tmp, path)
    except OSError as error:
        tmp.unlink(missing_ok=True)
        raise disk_error(error) from error


def sidecar(result: Mapping[str, Any]) -> bytes:
    """What was read and decided, as the JSON file beside a placed PDF."""
    return (json.dumps(result, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
