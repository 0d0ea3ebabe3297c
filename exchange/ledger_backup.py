"""Backups of the ledger: taken after every run that changed it, checked, restored.

A backup is a copy made with SQLite's online backup API, so it is
consistent even while a run or watcher writes: ``backups/`` beside the
ledger (``.exchange/backups/state-<UTC time>-run<run>.db``), written under
a temporary name, fsynced and renamed, the newest ``backup_count`` kept.
Backups are plain rollback-journal databases (not WAL): one file each,
which reading does not litter with ``-wal`` and ``-shm`` files.

:func:`restore` puts one back under the workspace lock, after checking
its integrity, and keeps the ledger it replaces beside it; the old
ledger's ``-wal`` goes with it, so the restored copy never meets a
write-ahead log that belongs to another database.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from exchange import files
from exchange.config import Config
from exchange.errors import EnvironmentFault, ExchangeError, UsageError, os_fault
from exchange.ledger import Ledger
from exchange.ledger_guard import README_HINT, backups_folder, check, reader_uri, unusable
from exchange.lock import workspace_lock

log = logging.getLogger("exchange")

_NAME = re.compile(r"state-(\d{8}T\d{6}Z)-run(\d+)\.db")
_STAMP = "%Y%m%dT%H%M%SZ"
#: The rows every batch writes, whatever else it does: start_run inserts the run's row, finish_run
#: updates it. A batch that wrote more changed the ledger (an input recorded or finished, a transfer).
_RUN_ROWS = 2
#: What SQLite keeps beside a database while it is in use.
_SIDE_FILES = ("-wal", "-journal")


@dataclass(frozen=True)
class Backup:
    """One backup file: when it was taken, after which run, how big."""

    path: Path
    taken_at: datetime
    run: int | None
    size: int

    @property
    def name(self) -> str:
        return self.path.name

    def describe(self) -> str:
        """``taken 2026-12-03T10:15:00Z, the ledger as of run 3``."""
        after = f"the ledger as of run {self.run}" if self.run else "the ledger before any run"
        return f"taken {self.taken_at:%Y-%m-%dT%H:%M:%SZ}, {after}"


def _not_a_folder(folder: Path) -> EnvironmentFault:
    return EnvironmentFault(f"{folder}: not a folder, but the ledger's backups go there; move the file away")


def _stamp(now: datetime | None = None) -> str:
    return (now or datetime.now(timezone.utc)).strftime(_STAMP)


def _describe(path: Path) -> Backup:
    """A backup file as a :class:`Backup`, from its name (or, for a file named otherwise, its mtime)."""
    st = path.stat()
    match = _NAME.fullmatch(path.name)
    if match:
        taken = datetime.strptime(match[1], _STAMP).replace(tzinfo=timezone.utc)
        return Backup(path, taken, int(match[2]), st.st_size)
    return Backup(path, datetime.fromtimestamp(st.st_mtime, timezone.utc).replace(microsecond=0), None, st.st_size)


def backups(config: Config) -> list[Backup]:
    """The backups in the backups folder, newest first."""
    folder = backups_folder(config)
    try:
        found = [_describe(p) for p in folder.iterdir() if _NAME.fullmatch(p.name) and p.is_file()]
    except FileNotFoundError:
        return []
    except NotADirectoryError:
        raise _not_a_folder(folder) from None
    except OSError as error:
        raise os_fault(error, "listing the ledger's backups") from None
    return sorted(found, key=lambda b: (b.taken_at, b.run or 0, b.name), reverse=True)


# --- taking backups -----------------------------------------------------------


def backup(config: Config, source: sqlite3.Connection, run_id: int | None) -> Path:
    """Copy the ledger behind ``source`` into the backups folder; the new backup's path.

    ``run_id`` names the run the copy is "as of". Afterwards only the
    newest ``backup_count`` backups are kept (all of them when it is 0).
    """
    folder = backups_folder(config)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise _not_a_folder(folder) from None
    final = folder / f"state-{_stamp()}-run{run_id or 0}.db"
    temp = folder / f".{final.name}.{os.getpid()}.tmp"
    try:
        _copy(source, temp)
        files.publish(temp, final)
    finally:
        for leftover in (temp, *(Path(f"{temp}{side}") for side in _SIDE_FILES)):
            leftover.unlink(missing_ok=True)
    _rotate(config, config.backup_count)
    # Routine, like the run report: kept out of the run's log, which tells what happened to the inputs.
    log.debug("ledger backed up to %s", final)
    return final


def _copy(source: sqlite3.Connection, temp: Path) -> None:
    """An online copy of ``source`` into the new file ``temp``, as a rollback-journal database, fsynced."""
    with open(temp, "wb"):  # made here first, so that a folder we cannot write says so by name
        pass
    copy = sqlite3.connect(temp, isolation_level=None)
    try:
        source.backup(copy)
        # The copy carries the ledger's WAL mark; one file that reads without side files is a better backup.
        copy.execute("PRAGMA journal_mode=DELETE")
    finally:
        copy.close()
    files.fsync_file(temp)


def _rotate(config: Config, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` backups (none when ``keep`` is 0); the paths removed."""
    if keep <= 0:
        return []
    removed = [b.path for b in backups(config)[keep:]]
    for path in removed:
        path.unlink(missing_ok=True)
        log.debug("%s: removed, %d newer backups kept (backup_count)", path.name, keep)
    return removed


def after_run(config: Config, ledger: Ledger, run_id: int) -> Path | None:
    """Back the ledger up at the end of a batch that changed it (``backup_count`` > 0).

    The run's work is done and committed by then: a backup that fails (a
    full disk) is logged as an error and does not fail the run.
    """
    if config.backup_count <= 0 or ledger.changes_since_open() <= _RUN_ROWS:
        return None
    try:
        return backup(config, ledger.db, run_id)
    except (OSError, sqlite3.Error, ExchangeError) as error:
        cause = os_fault(error) if isinstance(error, OSError) else error
        log.error("backing up the ledger into %s failed: %s; the run's work is done and recorded in the "
                  "ledger, which has no backup of it yet", backups_folder(config), cause)
        return None


def backup_now(config: Config) -> Path:
    """``exchange ledger backup``: a backup of the ledger as it is now, whatever ``backup_count``
    says (rotation keeps the newest ``backup_count`` when it is above 0)."""
    state = check(config)
    if state is None:
        raise EnvironmentFault(f"{config.paths.state}: no ledger yet, nothing to back up "
                               "(the first run creates it)")
    try:
        source = sqlite3.connect(reader_uri(state), uri=True)
        try:
            run = source.execute("SELECT max(id) FROM runs").fetchone()[0]
            return backup(config, source, run)
        finally:
            source.close()
    except sqlite3.Error as error:
        raise unusable(state, error) from None
    except OSError as error:
        raise os_fault(error, "backing up the ledger") from None


# --- checking -----------------------------------------------------------------


def integrity(path: Path) -> list[str]:
    """What ``PRAGMA integrity_check`` finds wrong with the database at ``path`` (empty: nothing).

    A file that is not an SQLite database at all raises
    :class:`EnvironmentFault`; damage found while checking is a problem.
    """
    try:
        db = sqlite3.connect(reader_uri(path), uri=True)
    except (sqlite3.Error, OSError) as error:
        raise unusable(path, error) from None
    try:
        try:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as error:
            raise unusable(path, error) from None
        try:
            problems = [row[0] for row in db.execute("PRAGMA integrity_check")]
        except sqlite3.DatabaseError as error:
            return [str(error)]
        if problems == ["ok"]:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            missing = [t for t in ("files", "sequences", "runs") if t not in tables]
            return [f"no table {t}: not a ledger" for t in missing]
        return problems
    finally:
        db.close()


def check_ledger(config: Config) -> tuple[Path, list[str]]:
    """``exchange ledger check``: the ledger's path and its problems (empty: ok)."""
    state = check_path(config)
    return state, integrity(state)


def check_path(config: Config) -> Path:
    """The ledger file, which must exist; for a missing one an :class:`EnvironmentFault`
    that says whether the workspace has history."""
    state = config.paths.state
    if not state.is_file() or state.stat().st_size == 0:
        check(config)  # refuses a missing or empty ledger with history, and a state path that is no file
        what = "empty (0 bytes)" if state.is_file() else "missing"
        raise EnvironmentFault(f"{state}: the ledger is {what}: a fresh workspace, whose first run creates it")
    return state


# --- restoring ----------------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    """What :func:`restore` did."""

    ledger: Path
    backup: Backup
    replaced: Path | None  # where the ledger it replaced is kept
    unknown_outputs: list[Path]  # outputs in the outboxes the restored ledger has no record of


def _choose(config: Config, chosen: str | None) -> Backup:
    if chosen is None:
        found = backups(config)
        if not found:
            raise ExchangeError(f"no backup in {backups_folder(config)} to restore ({README_HINT})")
        return found[0]
    for path in (backups_folder(config) / chosen, Path(chosen)):
        if path.is_file():
            return _describe(path)
    raise UsageError(f"{chosen}: no such backup (neither a file in {backups_folder(config)} nor a path); "
                     "'exchange ledger backups' lists them")


def restore(config: Config, chosen: str | None = None) -> Restored:
    """Put a backup (the newest, or ``chosen``: a name in the backups folder or a path) back as the ledger.

    Refused (:class:`~exchange.errors.LockHeld`) while a run or watcher
    holds the workspace, and for a backup that fails its integrity check.
    The current ledger, if any, is kept as ``state.db.replaced-<time>``
    (with its ``-wal``); a stale ``-shm`` is removed.
    """
    state = config.paths.state
    with workspace_lock(state.parent):
        source = _choose(config, chosen)
        problems = integrity(source.path)
        if problems:
            raise EnvironmentFault(f"{source.path}: the backup fails its integrity check ({problems[0]}); "
                                   "choose another with 'exchange ledger restore NAME' "
                                   "('exchange ledger backups' lists them)")
        if state.is_dir():
            check(config)  # names the folder for what it is
        temp = state.with_name(f".{state.name}.restoring-{os.getpid()}")
        try:
            try:
                db = sqlite3.connect(reader_uri(source.path), uri=True)
                try:
                    _copy(db, temp)
                    run = db.execute("SELECT max(id) FROM runs").fetchone()[0]
                finally:
                    db.close()
                unknown = _unknown_outputs(config, temp)
                replaced = _set_aside(state)
                files.publish(temp, state)
            except sqlite3.Error as error:
                raise unusable(source.path, error) from None
            except OSError as error:
                raise os_fault(error, "restoring the ledger") from None
        finally:
            for leftover in (temp, *(Path(f"{temp}{side}") for side in _SIDE_FILES)):
                leftover.unlink(missing_ok=True)
    backup_info = Backup(source.path, source.taken_at, run, source.size)
    log.info("ledger restored from %s (%s)", source.path, backup_info.describe())
    return Restored(state, backup_info, replaced, unknown)


def _set_aside(state: Path) -> Path | None:
    """Move the ledger and its side files out of the way; where the ledger went (None if there was none).

    SQLite finds a database's log by appending ``-wal`` to its name, so the
    log moves along as ``<aside>-wal`` and stays paired with its database;
    the ``-shm`` index is rebuilt from the log and is removed.
    """
    aside = state.with_name(f"{state.name}.replaced-{_stamp()}")
    moved = None
    if state.exists():
        os.replace(state, aside)
        moved = aside
    for side in _SIDE_FILES:
        log_file = Path(f"{state}{side}")
        if log_file.exists():
            os.replace(log_file, Path(f"{aside}{side}"))
    Path(f"{state}-shm").unlink(missing_ok=True)
    files.fsync_dir(state.parent)
    return moved


def _unknown_outputs(config: Config, ledger: Path) -> list[Path]:
    """Outputs in the outboxes (and ``sent/``) that the ledger at ``ledger`` has no record of."""
    db = sqlite3.connect(reader_uri(ledger), uri=True)
    try:
        known = {name for (name,) in db.execute("SELECT output FROM files WHERE output IS NOT NULL")}
    finally:
        db.close()
    paths = config.paths
    found = []
    for folder, pattern in ((paths.outbox_mobile, "MOB_*.zip"), (paths.sent, "MOB_*.zip"),
                            (paths.outbox_cee, "CEEIMP_*.xml")):
        if folder.is_dir():
            found += sorted(p for p in folder.glob(pattern) if p.is_file() and p.name not in known)
    return found


def _later_runs(config: Config, run: int) -> list[int]:
    """The runs after ``run`` that left a report, in order."""
    folder = config.paths.reports
    if not folder.is_dir():
        return []
    numbers = (re.fullmatch(r"run-(\d+)\.json", p.name) for p in folder.iterdir())
    return sorted(n for n in (int(m[1]) for m in numbers if m) if n > run)


def restore_lines(config: Config, restored: Restored) -> list[str]:
    """What ``exchange ledger restore`` prints."""
    b = restored.backup
    lines = [f"restored {restored.ledger} from {config.shown(b.path)} ({b.describe()})"]
    if restored.replaced:
        lines.append(f"the ledger it replaced is kept as {config.shown(restored.replaced)}")
    later = _later_runs(config, b.run or 0)
    if later:
        runs = f"run {later[0]}" if len(later) == 1 else f"runs {later[0]} to {later[-1]}"
        lines.append(f"not in the restored ledger: what {runs} did (see {config.shown(config.paths.reports)}/); "
                     "an input processed since the backup is unknown to it, so dropped again it is processed "
                     "again, not recognised as a duplicate")
    else:
        lines.append(f"no run report is newer than the backup: the restored ledger is as of run {b.run or 0}")
    if restored.unknown_outputs:
        first = config.shown(restored.unknown_outputs[0])
        lines.append(f"outputs this ledger has no record of (made after the backup): "
                     f"{len(restored.unknown_outputs)}, first {first}; the next run numbers its outputs "
                     f"from where the backup stood and may reuse their numbers: {README_HINT}")
    return lines

