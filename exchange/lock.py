"""One workspace, one worker: an exclusive lock held by ``run`` and ``watch``.

An ``fcntl`` lock on ``.exchange/lock``: the kernel drops it when the
holder dies, however it dies, so a stale lock never blocks. The file keeps
the holder's PID for the message the second worker prints.
"""

from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from exchange.errors import EnvironmentFault, LockHeld, os_fault


def not_a_folder(folder: Path) -> EnvironmentFault:
    """The fault for a state folder (``.exchange``) that is a plain file."""
    return EnvironmentFault(f"{folder}: not a folder, but the workspace keeps its ledger, lock and backups "
                            "there; move the file away (or set 'state' in [paths])")


@contextmanager
def workspace_lock(state_dir: Path) -> Iterator[None]:
    path = state_dir / "lock"
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileExistsError:  # mkdir(exist_ok=True) says so only for something that is not a folder
        raise not_a_folder(state_dir) from None
    except OSError as error:
        raise os_fault(error, "taking the workspace lock") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            raise LockHeld(f"the workspace is in use by another run or watcher (PID {holder}); "
                           f"lock file {path}") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)
