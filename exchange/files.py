"""Atomic file operations: every output appears whole or not at all.

Write to a temporary name in the destination folder, fsync, rename, fsync
the folder: after a crash a file is either absent or complete.
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path


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


def publish(temp: Path, final: Path) -> None:
    """Rename a complete, fsynced temporary file to its final name."""
    os.replace(temp, final)
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


def move(source: Path, destination: Path) -> None:
    """Move within the workspace (same file system), durably."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    os.replace(source, destination)
    fsync_dir(destination.parent)
    fsync_dir(source.parent)
