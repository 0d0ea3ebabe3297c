"""Which files in an inbox are ready, and in what order (F3).

Like a file consumer with a read lock: names that are still being written
by convention (dot files, ``.part``, ``.tmp`` ...) are ignored, and a file is
complete when two looks ``settle_seconds`` apart see the same size and
modification time. A batch is ordered by the root's ``createdAt`` (as an
instant), then by file name; only the root element is read to find it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Callable, Iterable

from exchange import filetypes

IGNORED_PREFIXES = (".", "~")
IGNORED_SUFFIXES = (".tmp", ".part", ".partial", ".filepart", ".writing", ".swp")


def is_ignored(name: str) -> bool:
    """Names FORMATS.md says are never picked up (temporary or hidden files)."""
    lower = name.lower()
    return name.startswith(IGNORED_PREFIXES) or lower.endswith(IGNORED_SUFFIXES)


def candidates(folder: Path, suffix: str) -> list[Path]:
    """Regular files in ``folder`` with ``suffix`` that are not ignored."""
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        if is_ignored(entry.name) or not entry.name.lower().endswith(suffix):
            continue
        if entry.is_file(follow_symlinks=False):
            found.append(Path(entry.path))
    return sorted(found)


@dataclass(frozen=True)
class LeftAlone:
    """An inbox entry that is never picked up, and why (for status)."""

    path: Path
    reason: str


def others(folder: Path, suffix: str) -> list[LeftAlone]:
    """Everything in an inbox that ``candidates`` does not take, with the reason.

    Folders, symbolic links, FIFOs and other special files (whatever their
    names), temporary or hidden names, and files without ``suffix``.
    ``.gitkeep``, which keeps an empty inbox in a repository, is not listed.
    Entries are looked at with ``lstat`` only: nothing is opened or followed.
    """
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    found = []
    for entry in entries:
        if entry.name in (".gitkeep", ".claimed"):  # the claim folder is shown as inputs in hand
            continue
        try:
            what = filetypes.kind(entry.stat(follow_symlinks=False).st_mode)
        except FileNotFoundError:
            continue  # gone meanwhile
        if what == "a symbolic link":
            reason = "a symbolic link: not picked up"
        elif what:
            reason = what
        elif entry.name.startswith("."):
            reason = "a hidden name"
        elif is_ignored(entry.name):
            reason = "a temporary name"
        elif not entry.name.lower().endswith(suffix):
            reason = f"not a {suffix} file"
        else:
            continue  # a candidate
        found.append(LeftAlone(Path(entry.path), reason))
    return found


def _look(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_size, st.st_mtime_ns


def settle(paths: Iterable[Path], seconds: float, sleep: Callable[[float], None] = time.sleep
           ) -> tuple[list[Path], list[Path]]:
    """(complete, still changing): two looks ``seconds`` apart, for the whole batch."""
    paths = list(paths)
    if seconds <= 0:
        return paths, []
    first = {p: _look(p) for p in paths}
    if paths:
        sleep(seconds)
    complete, changing = [], []
    for p in paths:
        second = _look(p)
        if second is None:
            continue  # gone meanwhile (taken by someone else): nothing to do
        (complete if second == first[p] else changing).append(p)
    return complete, changing


def instant(timestamp: str | None) -> datetime | None:
    """An xs:dateTime with zone as an aware datetime, or None when unusable."""
    if not timestamp:
        return None
    text = timestamp.strip()
    next_day = "T24:00:00" in text  # xs:dateTime allows 24:00:00, the end of the day
    if next_day:
        text = text.replace("T24:00:00", "T00:00:00", 1)
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    return value + timedelta(days=1) if next_day else value


@dataclass(frozen=True)
class Ready:
    """A complete file, with what its root (or manifest) said."""

    path: Path
    created_at: datetime | None
    channel: str | None = None  # the sales channel its root (or manifest) names, if it could be read


def order(files: Iterable[Ready]) -> list[Ready]:
    """F3: by createdAt as an instant, then file name. Files whose createdAt
    cannot be read go first: they will be rejected, and never change state."""
    def key(f: Ready):
        return (f.created_at is not None, f.created_at.timestamp() if f.created_at else 0.0, f.path.name)
    return sorted(files, key=key)
