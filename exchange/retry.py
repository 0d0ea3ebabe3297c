"""``exchange retry``: rejected files go back to their inbox.

A file in ``inbox/rejected/`` returns to ``inbox/cee/`` (an XML export) or
``inbox/mobile/`` (a package) and is validated again by the next run (F2: a
rejected file that comes back is processed normally). Its error report is
kept, moved to today's archive folder.
"""

from __future__ import annotations

import errno
import logging
import stat
from dataclasses import dataclass
from pathlib import Path

from exchange import files, ledger_guard
from exchange.config import Config
from exchange.errors import UsageError, os_fault

log = logging.getLogger("exchange")

REPORT_SUFFIX = ".error.txt"


@dataclass(frozen=True)
class Retried:
    name: str
    inbox: Path
    report: Path | None  # where the error report was kept


def rejected_files(config: Config) -> list[Path]:
    folder = config.paths.rejected
    if not folder.exists():
        return []
    return sorted(p for p in folder.iterdir() if _is_rejected(p))


def _is_rejected(path: Path) -> bool:
    """Whether ``path`` is a rejected file (not its error report)."""
    if path.name.endswith(REPORT_SUFFIX):
        return False
    try:
        return stat.S_ISREG(path.stat().st_mode)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except OSError as error:
        if error.errno == errno.ENAMETOOLONG:
            return False  # no file in rejected/ can have such a name
        raise os_fault(error, "looking for a rejected file") from None


def retry(config: Config, names: list[str], everything: bool = False) -> list[Retried]:
    """Move the named rejected files (or all of them) back into their inbox."""
    folder = config.paths.rejected
    if everything:
        targets = rejected_files(config)
    else:
        if not names:
            raise UsageError("name the rejected files to retry, or pass --all")
        targets = []
        for name in names:
            path = folder / Path(name).name
            if path in targets:
                continue  # the same file named twice (or by two spellings) goes back once
            if not _is_rejected(path):
                raise UsageError(f"{name}: not a rejected file in {folder}")
            targets.append(path)
    done = []
    ledger_guard.check(config)  # the next run would refuse this workspace: say so now, move nothing
    # No workspace lock (CLI.md, 2026-12-02: retry works while watch runs): every move here
    # is a rename that never replaces a file, into an inbox that a run or watcher only takes
    # complete files from, so the watcher simply finds the file and takes it once settled.
    for path in targets:
        inbox = config.paths.inbox_mobile if path.suffix.lower() == ".zip" else config.paths.inbox_cee
        report = path.with_name(path.name + REPORT_SUFFIX)
        kept = None
        if report.exists():
            kept = files.move(report, files.free_name(files.archive_folder(config.paths.archive), report.name))
        destination = files.move(path, files.free_name(inbox, path.name))
        log.info("%s: back in %s for the next run", path.name, inbox)
        done.append(Retried(path.name, destination, kept))
    return done
