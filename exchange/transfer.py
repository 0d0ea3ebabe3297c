"""Transfers with partners: pull before a run processes, push after it.

For every channel with a partner (a ``[channels.NAME.sftp]`` table) ``run``
pulls the partner's return packages into ``inbox/mobile/`` before the
inboxes are scanned, and pushes the packages waiting in ``outbox/mobile/``
after processing. Each partner is independent: one that is down, refuses
the login or breaks off is retried with exponential backoff
(``retries``, ``retry_backoff_seconds``), then reported in the run summary
(exit 1) while everything else carries on; what it did not take stays
queued for the next run.

Push, per channel in sequence order, exactly once:

1. upload under the temporary name and check its size on the server;
2. record ``uploaded`` in the ledger (committed);
3. rename to the final name on the server;
4. record ``delivered``, then move the package to ``outbox/mobile/sent/``.

A run that finds an ``uploaded`` record (a crash between 2 and 4) looks at
the server: the final name with the right size means the rename happened;
the temporary file means it did not (it is renamed now); neither means the
partner has already taken the package. In no case is it uploaded again.
(The one thing this cannot tell apart: someone else deleting our temporary
file between that crash and the next run would count as delivered.) A
package under its final name with the right size but no record (a crash
before 2 that still left it renamed cannot happen; a lost ledger can) is
not uploaded again either. Temporary files of ours that no record explains
are removed; a crash between 1 and 2 just means uploading again.

Pull, per channel, once a file has settled (same size and mtime over
``settle_seconds``, across runs too):

1. download into ``inbox/mobile/.pull.NAME.part``, fsync, check the size
   against the listing and that it is a readable ZIP;
2. rename it into ``inbox/mobile/`` and record ``pulled``;
3. delete it on the server (or move it to ``done_dir``), record ``taken``.

A crash between 2 and 3 leaves the file on the server: the next run
downloads it again, sees the same name and SHA-256 as its ``pulled``
record and only takes it off the server. (Were it brought in twice, F2
would archive the second copy as a duplicate: nothing is imported twice.)
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
import zipfile
from pathlib import Path
from typing import Callable, Mapping

from exchange import files, pickup
from exchange.config import Config
from exchange.partners import Gone, Partner, RemoteFile, Session, TransferError
from exchange.summary import STILL_CHANGING
from exchange.workspace import Workspace, sha256_file

log = logging.getLogger("exchange")

#: Mobile packages as the exchange names them (package_writer.package_name).
PACKAGE = re.compile(r"^MOB_(?P<channel>.+)_(?P<sequence>\d{8})\.zip$")
_PULL_PREFIX = ".pull."
_PULL_SUFFIX = ".part"


def partners_for(config: Config) -> dict[str, Partner]:
    """The partner of every channel with a ``[channels.NAME.sftp]`` table."""
    tables = {name: channel.sftp for name, channel in config.channels.items() if channel.sftp is not None}
    if not tables:
        return {}
    from exchange.partners.sftp import SftpPartner  # paramiko is loaded only where a partner is configured

    return {name: SftpPartner(table) for name, table in tables.items()}


# --- retries -----------------------------------------------------------------------

def _attempt(ws: Workspace, channel: str, partner: Partner, what: str, work: Callable[[Session], None],
             sleep: Callable[[float], None] = time.sleep) -> bool:
    """Connect and ``work``, retrying what may pass with exponential backoff; False if it failed in the end."""
    attempts = partner.retries + 1
    delay = partner.backoff_seconds
    for attempt in range(1, attempts + 1):
        try:
            session = partner.connect()
            try:
                work(session)
            finally:
                try:
                    session.close()
                except Exception as error:  # noqa: BLE001 - closing a broken connection may fail
                    log.debug("%s: closing the connection to %s: %s", channel, partner.label, error)
            return True
        except TransferError as error:
            if error.retry and attempt < attempts:
                log.warning("%s: %s %s failed (attempt %d of %d): %s; trying again in %g s", channel, what,
                            partner.label, attempt, attempts, error, delay)
                sleep(delay)
                delay *= 2
                continue
            tried = f" after {attempt} attempts" if attempt > 1 else ""
            message = f"{channel}: {what} {partner.label} failed{tried}: {error}"
            log.error("%s", message)
            ws.summary.transfer_errors.append(message)
            return False
    return False


# --- pull ----------------------------------------------------------------------

def pull(ws: Workspace, partners: Mapping[str, Partner], settle_seconds: float,
         sleep: Callable[[float], None] = time.sleep) -> None:
    """Bring every settled return package of every partner into inbox/mobile/."""
    inbox = ws.paths.inbox_mobile
    for stale in inbox.glob(f"{_PULL_PREFIX}*{_PULL_SUFFIX}"):  # downloads a crash interrupted
        stale.unlink(missing_ok=True)
    for channel, partner in sorted(partners.items()):
        _attempt(ws, channel, partner, "pull from",
                 lambda session, c=channel, p=partner: _pull(ws, c, p, session, settle_seconds, sleep), sleep)


def _wanted(name: str) -> bool:
    """A return package's name: not a dot or temporary name, ``.zip``, one plain file name, not ours."""
    if pickup.is_ignored(name) or not name.lower().endswith(".zip") or PACKAGE.match(name):
        return False
    return "/" not in name and "\\" not in name and name.isprintable()


def _pull(ws: Workspace, channel: str, partner: Partner, session: Session, settle: float,
          sleep: Callable[[float], None]) -> None:
    listing = [f for f in session.returns() if _wanted(f.name)]
    ready, changing = _settled(ws, channel, session, listing, settle, sleep)
    pending = {(row.name, row.sha256): row for row in ws.ledger.deliveries_in("pull", channel, "pulled")}
    listed = {f.name for f in listing}
    for row in pending.values():
        if row.name not in listed:  # taken off the server, but the crash came before the ledger heard of it
            with ws.ledger.transaction():
                ws.ledger.set_delivery_state(row.id, "taken")
    problems = []
    for remote in sorted(ready, key=lambda f: f.name):
        problem = _pull_one(ws, channel, partner, session, remote, pending)
        if problem == "changed":
            changing.append(remote.name)
        elif problem:
            problems.append(problem)
    for name in changing:
        ws.summary.leave(f"{name} (on {partner.label})", STILL_CHANGING)
    if problems:
        raise TransferError("; ".join(problems))


def _settled(ws: Workspace, channel: str, session: Session, listing: list[RemoteFile], settle: float,
             sleep: Callable[[float], None]) -> tuple[list[RemoteFile], list[str]]:
    """(ready, still changing): files unchanged for ``settle`` seconds, this run or since an earlier one."""
    ledger = ws.ledger
    now = time.time()
    with ledger.transaction():
        ledger.set_remote_seen(channel, [(f.name, f.size, f.mtime) for f in listing], now)
    if settle <= 0:
        return listing, []
    since = ledger.remote_seen(channel)
    ready = [f for f in listing if now - since[f.name][2] >= settle]
    fresh = [f for f in listing if now - since[f.name][2] < settle]
    if not fresh:
        return ready, []
    sleep(settle)  # something new: look again once it had the time to settle
    again = {f.name: f for f in session.returns() if _wanted(f.name)}
    with ledger.transaction():
        ledger.set_remote_seen(channel, [(f.name, f.size, f.mtime) for f in again.values()], time.time())
    changing = []
    for first in fresh:
        second = again.get(first.name)
        if second is None:
            continue  # gone meanwhile: someone else took it
        if (second.size, second.mtime) == (first.size, first.mtime):
            ready.append(second)
        else:
            changing.append(first.name)
    return ready, changing


class _Hashing:
    """A file being written, with the SHA-256 of what went in."""

    def __init__(self, out):
        self.out = out
        self.digest = hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        return self.out.write(data)


def _unreadable(path: Path) -> str | None:
    """Why a downloaded file is not a readable ZIP package, or None."""
    try:
        with zipfile.ZipFile(path) as archive:
            archive.namelist()
    except (zipfile.BadZipFile, OSError, EOFError) as error:
        return f"not a readable ZIP file ({error})"
    return None


def _pull_one(ws: Workspace, channel: str, partner: Partner, session: Session, remote: RemoteFile,
              pending: dict) -> str | None:
    """Pull one settled file; None when done, "changed", or a problem for the run summary."""
    inbox = ws.paths.inbox_mobile
    temp = inbox / f"{_PULL_PREFIX}{remote.name}{_PULL_SUFFIX}"
    started = time.monotonic()
    try:
        with open(temp, "wb") as out:
            hashing = _Hashing(out)
            size = session.fetch(remote.name, hashing)
            out.flush()
            os.fsync(out.fileno())
    except Gone:
        temp.unlink(missing_ok=True)
        log.info("%s: %s was taken off %s by someone else before it could be downloaded", channel, remote.name,
                 partner.label)
        return None
    except OSError as error:  # here, not on the server (the session's errors are TransferErrors)
        temp.unlink(missing_ok=True)
        return f"{remote.name}: cannot write {temp}: {error.strerror or error}; left on the server"
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    took = time.monotonic() - started
    if size != remote.size:
        temp.unlink(missing_ok=True)
        log.warning("%s: %s on %s changed while it was downloaded (%d bytes listed, %d read); left for the next "
                    "run", channel, remote.name, partner.label, remote.size, size)
        return "changed"
    problem = _unreadable(temp)
    if problem:
        temp.unlink(missing_ok=True)
        return f"{remote.name}: {problem}; left on the server"
    sha256 = hashing.digest.hexdigest()
    earlier = pending.get((remote.name, sha256))
    if earlier is not None:
        temp.unlink(missing_ok=True)
        delivery_id = earlier.id
        log.info("%s: %s was pulled before (%s, same SHA-256) by a run interrupted before it was taken off %s",
                 channel, remote.name, earlier.local, partner.label)
    else:
        local = files.free_name(inbox, remote.name)
        files.publish(temp, local)
        with ws.ledger.transaction():
            delivery_id = ws.ledger.add_delivery(direction="pull", channel=channel, partner=partner.label,
                                                 name=remote.name, local=local.name, size=size, sha256=sha256,
                                                 mtime=remote.mtime, state="pulled", run_id=ws.run_id)
        log.info("%s: pulled %s from %s into %s (%d bytes, %.1f MB/s)", channel, remote.name, partner.label,
                 ws.config.shown(local), size,
                 size / 1e6 / max(took, 1e-6))
    session.take(remote.name)
    with ws.ledger.transaction():
        ws.ledger.set_delivery_state(delivery_id, "taken")
    return None


# --- push ------------------------------------------------------------------------

def waiting(ws: Workspace, channel: str) -> list[Path]:
    """The packages of ``channel`` waiting in outbox/mobile/, in sequence order."""
    found = []
    for path in pickup.candidates(ws.paths.outbox_mobile, ".zip"):
        match = PACKAGE.match(path.name)
        if match and match["channel"] == channel:
            found.append((int(match["sequence"]), path))
    return [path for _, path in sorted(found)]


def push(ws: Workspace, partners: Mapping[str, Partner], sleep: Callable[[float], None] = time.sleep) -> None:
    """Deliver every package waiting in outbox/mobile/ to its channel's partner."""
    for channel, partner in sorted(partners.items()):
        for path in waiting(ws, channel):  # delivered, but a crash came before the move to sent/
            row = ws.ledger.delivery("push", channel, path.name)
            if row is not None and row.state == "delivered" and row.sha256 == sha256_file(path):
                _to_sent(ws, path)
        if waiting(ws, channel):
            _attempt(ws, channel, partner, "push to",
                     lambda session, c=channel, p=partner: _push(ws, c, p, session), sleep)


def _to_sent(ws: Workspace, path: Path) -> None:
    sent = ws.paths.sent
    sent.mkdir(parents=True, exist_ok=True)
    files.move(path, files.free_name(sent, path.name))


def _push(ws: Workspace, channel: str, partner: Partner, session: Session) -> None:
    uploaded = {row.name: row for row in ws.ledger.deliveries_in("push", channel, "uploaded")}
    for name in session.temporaries():
        match = PACKAGE.match(name)
        if match and match["channel"] == channel and name not in uploaded:
            session.discard(name)
            log.info("%s: removed the stale temporary file of %s from %s", channel, name, partner.label)
    for path in waiting(ws, channel):
        _push_one(ws, channel, partner, session, path, uploaded.get(path.name))


def _push_one(ws: Workspace, channel: str, partner: Partner, session: Session, path: Path, row) -> None:
    name = path.name
    size = path.stat().st_size
    sha256 = sha256_file(path)
    there = session.outgoing(name)
    if there.final is not None and there.final != size:
        raise TransferError(f"{name} is already on the server with {there.final} bytes, ours has {size}: not "
                            "overwritten (ask the partner what it is); later packages wait behind it")
    if row is not None and row.sha256 == sha256:  # a run was interrupted after the upload
        if there.final == size:
            log.info("%s: %s is on %s under its final name (renamed before an interruption); not uploaded "
                     "again", channel, name, partner.label)
        elif there.part == size:
            session.publish(name)
        elif there.part is not None:  # not what was uploaded: upload it again
            session.upload(path, name)
            session.publish(name)
        else:
            log.warning("%s: %s was uploaded and renamed before an interruption and the partner has taken it "
                        "since; not uploaded again", channel, name)
        delivery_id = row.id
    elif there.final == size:
        log.info("%s: %s is already on %s with the same size; not uploaded again", channel, name, partner.label)
        with ws.ledger.transaction():
            delivery_id = _record_upload(ws, channel, partner, path, size, sha256)
    else:
        started = time.monotonic()
        session.upload(path, name)
        took = time.monotonic() - started
        with ws.ledger.transaction():
            delivery_id = _record_upload(ws, channel, partner, path, size, sha256)
        try:
            session.publish(name)
        except Gone:  # someone removed the temporary file: it was never renamed, so it was not delivered
            with ws.ledger.transaction():
                ws.ledger.set_delivery_state(delivery_id, "abandoned")
            raise TransferError(f"the temporary file of {name} disappeared from the server before it could be "
                                "renamed; uploading it again", retry=True) from None
        log.info("%s: pushed %s to %s (%d bytes, %.1f MB/s)", channel, name, partner.label, size,
                 size / 1e6 / max(took, 1e-6))
    with ws.ledger.transaction():
        ws.ledger.set_delivery_state(delivery_id, "delivered")
    _to_sent(ws, path)


def _record_upload(ws: Workspace, channel: str, partner: Partner, path: Path, size: int, sha256: str) -> int:
    return ws.ledger.add_delivery(direction="push", channel=channel, partner=partner.label, name=path.name,
                                  local=path.name, size=size, sha256=sha256, state="uploaded", run_id=ws.run_id)
