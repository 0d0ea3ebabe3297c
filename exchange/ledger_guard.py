"""Opening the ledger safely: the one door every command goes through.

The ledger is precious (issue #15): it holds the package numbers, which
inputs were seen (F2) and which mobileIds were imported (R12). A workspace
that lost it must not quietly start a new one, or the next run numbers its
packages from 1 again over packages Mobile has not collected, and a return
package dropped again becomes a second import of the same customers.

So before a command works with the ledger, :func:`open_ledger` (``run``,
``watch``) or :func:`open_reader` (``status``, ``explain``, ``retry``)
checks it:

* a ledger that is missing, 0 bytes, or as good as new (no ``files``,
  ``sequences``, ``deliveries`` or ``runs`` row), in a workspace that has
  *history* (see :func:`find_history`), is refused;
* a ledger that cannot be used (junk bytes, no write permission, ``state``
  naming a folder, the state folder being a plain file) is refused too.

Both are an :class:`~exchange.errors.EnvironmentFault` (exit 74): one line
naming the file, the cause and the way out, never a traceback. A fresh
workspace, with no history, still gets a new ledger silently.
"""

from __future__ import annotations

import os
import re
import sqlite3
import stat
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

from exchange.config import Config
from exchange.errors import EnvironmentFault, os_fault
from exchange.ledger import Ledger
from exchange.lock import not_a_folder

#: Outputs the exchange writes, by folder; only these count as history in the outboxes
#: (whatever else someone put there says nothing about the ledger).
_OUTPUTS = {"outbox_mobile": "MOB_*.zip", "sent": "MOB_*.zip", "outbox_cee": "CEEIMP_*.xml"}
_REPORT = re.compile(r"run-(\d+)\.json")

README_HINT = 'see README "Restoring the ledger"'


def backups_folder(config: Config) -> Path:
    """Where the ledger's backups are kept: ``backups/`` beside the ledger."""
    return config.paths.state.parent / "backups"


def find_history(config: Config, known_runs: set[int] = frozenset()) -> Path | None:
    """The first sign found that this workspace has worked before, or None.

    Signs: an output (``MOB_*.zip`` in ``outbox/mobile/`` or its ``sent/``,
    ``CEEIMP_*.xml`` in ``outbox/cee/``); any file in ``inbox/archive/`` or
    ``inbox/rejected/``; a run report of a run not in ``known_runs``, or any
    other file in the reports folder; a backup of the ledger. Dot files
    (temporary names) and the error report a rejection writes just before
    its ledger row do not count: a first run interrupted there has no
    history yet.
    """
    for found in _history(config, known_runs):
        return found
    return None


def _history(config: Config, known_runs: set[int]) -> Iterator[Path]:
    paths = config.paths
    for attribute, pattern in _OUTPUTS.items():
        yield from sorted(_files(getattr(paths, attribute), pattern))
    yield from _files(paths.archive, "**/*")
    yield from (p for p in _files(paths.rejected, "*") if not p.name.endswith(".error.txt"))
    for report in _files(paths.reports, "*"):
        match = _REPORT.fullmatch(report.name)
        if not match or int(match[1]) not in known_runs:
            yield report
    yield from _files(backups_folder(config), "state-*.db")


def _files(folder: Path, pattern: str) -> Iterator[Path]:
    """Regular files (not dot files) in ``folder`` matching ``pattern``; nothing if it is missing."""
    try:
        candidates = sorted(folder.glob(pattern)) if not pattern.startswith("**") else folder.glob(pattern)
        for path in candidates:
            if not path.name.startswith(".") and path.is_file():
                yield path
    except OSError as error:
        raise os_fault(error, "looking for the workspace's history") from None


def _where(config: Config) -> Path | None:
    """Check the ledger's path; the ledger file if it exists and has bytes, None if missing or empty."""
    state = config.paths.state
    folder = state.parent
    try:
        folder_stat = folder.stat()
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise EnvironmentFault(f"{state}: a part of this path is a file, not a folder; "
                               f"the ledger cannot be there (check 'state' in [paths] of {config.file})") from None
    except OSError as error:
        raise os_fault(error, "reaching the ledger's folder") from None
    if not stat.S_ISDIR(folder_stat.st_mode):
        raise not_a_folder(folder)
    try:
        state_stat = state.stat()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise os_fault(error, "reaching the ledger") from None
    if stat.S_ISDIR(state_stat.st_mode):
        raise EnvironmentFault(f"{state}: a folder, not a ledger file (check 'state' in [paths] of {config.file})")
    return state if state_stat.st_size else None


def _restore_hint(config: Config) -> str:
    folder = backups_folder(config)
    newest = sorted(p.name for p in _files(folder, "state-*.db"))  # the names sort by time
    if newest:
        return (f"restore it with 'exchange ledger restore' from {config.shown(folder)}/ "
                f"(newest: {newest[-1]}), or {README_HINT}")
    return f"there is no backup in {config.shown(folder)}/ to restore; {README_HINT}"


def _refuse(config: Config, what: str, history: Path) -> EnvironmentFault:
    return EnvironmentFault(f"{config.paths.state}: the ledger is {what}, but this workspace has history "
                            f"({config.shown(history)}); {_restore_hint(config)}")


def _cause(error: Exception) -> str:
    return error.strerror if isinstance(error, OSError) and error.strerror else str(error)


def unusable(path: Path, error: Exception) -> EnvironmentFault:
    """One line for a ledger that SQLite or the system would not open or read."""
    if isinstance(error, sqlite3.DatabaseError) and not isinstance(error, sqlite3.OperationalError):
        return EnvironmentFault(f"{path}: not a usable ledger ({error}); restore a backup with "
                                f"'exchange ledger restore', or {README_HINT}")
    return EnvironmentFault(f"{path}: cannot use the ledger: {_cause(error)}")


def reader_uri(path: Path) -> str:
    """A read-only SQLite URI for ``path`` (quoted: a path may hold ``?`` or ``#``)."""
    return f"file:{quote(str(path.absolute()))}?mode=ro"


def check(config: Config) -> Path | None:
    """Check the ledger before use: the ledger file, or None for a fresh workspace without one.

    Raises :class:`EnvironmentFault` for a ledger that is missing or
    empty in a workspace with history, and for one that cannot be read.
    """
    state = _where(config)
    if state is None:
        history = find_history(config)
        if history is not None:
            exists = config.paths.state.exists()
            raise _refuse(config, "empty (0 bytes)" if exists else "missing", history)
        return None
    if not os.access(state, os.R_OK):
        raise _denied(state, "read")
    try:
        db = sqlite3.connect(reader_uri(state), uri=True)
        try:
            empty, runs = _contents(db)
        finally:
            db.close()
    except (sqlite3.Error, OSError) as error:
        raise unusable(state, error) from None
    if empty:
        history = find_history(config, runs)
        if history is not None:
            raise _refuse(config, "empty (no files, no sequence numbers, no runs)", history)
    return state


def _contents(db: sqlite3.Connection) -> tuple[bool, set[int]]:
    """Whether the ledger is as good as new (no ``files``, ``sequences``, ``deliveries`` or
    ``runs`` rows), and its run numbers. A ledger that has run is not "empty": outputs put
    into the outbox by hand after it began are not a lost ledger's history."""
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for table in ("files", "sequences", "deliveries", "runs"):
        if table in tables and db.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0]:
            return False, set()
    runs = {run for (run,) in db.execute("SELECT id FROM runs")} if "runs" in tables else set()
    return True, runs


def open_ledger(config: Config) -> Ledger:
    """The ledger for work (``run``, ``watch``), checked by :func:`check`,
    created in a fresh workspace, and proven writable for this user."""
    state = check(config)
    path = config.paths.state
    if state is not None and not os.access(state, os.W_OK):
        raise _denied(state, "write")
    try:
        ledger = Ledger(path)
    except (sqlite3.Error, OSError) as error:
        raise unusable(path, error) from None
    try:
        # A read-only file system or a file SQLite opened read-only shows only when writing.
        ledger.db.execute("BEGIN IMMEDIATE")
        ledger.db.execute("ROLLBACK")
    except sqlite3.Error as error:
        ledger.close()
        raise unusable(path, error) from None
    return ledger


def _denied(state: Path, doing: str) -> EnvironmentFault:
    st = state.stat()
    return EnvironmentFault(f"{state}: cannot {doing} the ledger: Permission denied (running as uid {os.getuid()}; "
                            f"the file belongs to uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o})")


def open_reader(config: Config) -> sqlite3.Connection | None:
    """A read-only connection to the checked ledger (``status``, ``explain``),
    or None in a fresh workspace that has none yet."""
    state = check(config)
    if state is None:
        return None
    try:
        return sqlite3.connect(reader_uri(state), uri=True)
    except (sqlite3.Error, OSError) as error:
        raise unusable(state, error) from None
