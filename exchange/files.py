"""Atomic file operations: every output appears whole or not at all, and
no file is ever replaced by another (F7).

Write to a temporary name in the destination folder, fsync, rename, fsync
the folder: after a crash a file is either absent or complete. Renames
that give a file a name others may look at never replace what is there
(:func:`rename_noreplace`): a name already taken is an error, both files
are kept.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import unicodedata
from datetime import datetime, timezone
from pathlib import Path

_AT_FDCWD = -100
_RENAME_NOREPLACE = 1
_libc = ctypes.CDLL(None, use_errno=True)
_renameat2 = getattr(_libc, "renameat2", None)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary name in the same folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(temp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temp, path)
    fsync_dir(path.parent)


def rename_noreplace(source: Path, destination: Path) -> None:
    """Rename ``source`` to ``destination``; ``FileExistsError`` if that name is taken.

    ``renameat2(RENAME_NOREPLACE)`` where the kernel and file system have
    it, else a hard link and an unlink (``link`` fails on an existing
    name, too). A crash between the link and the unlink leaves the same
    file under both names, which :func:`same_file` recognises.
    """
    if _renameat2 is not None:
        if _renameat2(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(destination), _RENAME_NOREPLACE) == 0:
            return
        code = ctypes.get_errno()
        if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
            raise OSError(code, os.strerror(code), str(source), None, str(destination))
    os.link(source, destination)
    os.unlink(source)


def same_file(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` are one file (hard links) or hold the same bytes."""
    try:
        sa, sb = a.stat(), b.stat()
    except FileNotFoundError:
        return False
    if (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino):
        return True
    if sa.st_size != sb.st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            block = fa.read(1 << 20)
            if block != fb.read(1 << 20):
                return False
            if not block:
                return True


def publish(temp: Path, final: Path) -> None:
    """Give a complete, fsynced temporary file its final name, never replacing
    a file: ``FileExistsError`` when ``final`` exists (F7)."""
    rename_noreplace(temp, final)
    fsync_dir(final.parent)


def free_name(folder: Path, name: str) -> Path:
    """``folder/name``, or with a numeric suffix (``a.1.xml``) if taken."""
    candidate = folder / name
    if not candidate.exists():
        return candidate
    stem, dot, suffix = name.rpartition(".")
    if not dot:
        stem, suffix = name, ""
    n = 1
    while True:
        candidate = folder / (f"{stem}.{n}.{suffix}" if suffix else f"{name}.{n}")
        if not candidate.exists():
            return candidate
        n += 1


def archive_folder(archive: Path) -> Path:
    """Today's archive folder (UTC date), created if needed."""
    folder = archive / datetime.now(timezone.utc).strftime("%Y-%m-%d")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def move(source: Path, destination: Path) -> Path:
    """Move within the workspace (same file system), durably; never over
    another file: if ``destination`` is taken meanwhile, the next free name
    beside it (:func:`free_name`). Where the file went."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    while True:
        try:
            rename_noreplace(source, destination)
            break
        except FileExistsError:
            destination = free_name(destination.parent, destination.name)
    fsync_dir(destination.parent)
    fsync_dir(source.parent)
    return destination


#: What a file name carried in a manifest or an import document may not hold (FORMATS.md,
#: FileName: no slash, no backslash, no control character).
_FORBIDDEN = frozenset("/\\")


def carried_name(name: str) -> tuple[str, str | None]:
    """(the name as a manifest can carry it, why it had to change; None if it did not).

    A name read from the disk that is not UTF-8 holds surrogate escapes
    (``os.fsdecode``); each such byte, each control character and each
    backslash becomes ``_``. Such a file is rejected under the new name (F7):
    ``exchange retry`` then brings it back under a name the exchange can carry.
    """
    reasons = []
    out = []
    for char in name:
        if "\udc80" <= char <= "\udcff":
            reasons.append("bytes that are not UTF-8")
        elif char == "\\" or char == "/":
            reasons.append("a backslash")
        elif unicodedata.category(char) == "Cc":
            reasons.append("a control character (newline, tab ...)")
        else:
            out.append(char)
            continue
        out.append("_")
    if not reasons:
        return name, None
    return "".join(out), ", ".join(dict.fromkeys(reasons))


def printable(name: str) -> str:
    """A name as the terminal, the ledger and a report can show it: undecodable
    bytes as ``\\xe4``, control characters escaped as in Python."""
    raw = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if unicodedata.category(c) != "Cc" else repr(c)[1:-1] for c in raw)


def being_written(path: Path) -> bool:
    """Whether another process holds ``path`` open for writing (Linux leases).

    A read lease is refused while any process has the file open for
    writing: a writer that paused longer than the settle time still
    holds its file. Where leases are not available (another file system,
    a file of another owner without CAP_LEASE), False: the settle and the
    check of the claimed file before commit still apply.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as error:
        return error.errno == errno.EAGAIN
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)
