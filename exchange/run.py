"""``exchange run``: one batch over the workspace.

Order (F3): finish what an interrupted run left, pull from SFTP partners,
then CEE exports in ``createdAt`` order, then return packages by their
channel's ``sequence`` (F6: one ahead of a gap is held), then push
to the partners; a summary at the end, also written as a JSON report under
``.exchange/reports/``. Partners are an argument (:mod:`exchange.transfer`
builds them from the configuration); this module never touches SSH.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Callable, Iterable, Mapping

from exchange import files, ledger_backup, ledger_guard, pickup, retention, to_cee, to_mobile
from exchange import transfer as transfers
from exchange.config import Config
from exchange.errors import EnvironmentFault
from exchange.ledger import utc_now
from exchange.lock import workspace_lock
from exchange.partners import Partner
from exchange.rules import sequence as sequence_rule
from exchange.streaming import rare_collections
from exchange.summary import STILL_CHANGING, Summary
from exchange.workspace import Workspace

log = logging.getLogger("exchange")


def prepare_folders(config: Config) -> None:
    """Create the workspace's folders that are missing; a file where a folder belongs
    is an environment fault (exit 74) naming it."""
    for folder in config.paths.folders():
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise EnvironmentFault(f"{folder}: not a folder, but the workspace needs a folder there; "
                                   "move the file away") from None


def run_batch(config: Config, settle_seconds: float | None = None, transfer: bool = True,
              progress: bool = False, partners: Mapping[str, Partner] | None = None) -> Summary:
    """Process everything complete in the inboxes once; the run's summary.

    With ``transfer`` (not ``--no-transfer``), return packages are pulled
    from ``partners`` (default: the SFTP partners of the configuration)
    before the inboxes are scanned, and waiting packages pushed after.
    """
    settle_seconds = config.settle_seconds if settle_seconds is None else settle_seconds
    if not transfer:
        partners = {}
    elif partners is None:
        partners = transfers.partners_for(config)
    with workspace_lock(config.paths.state.parent):
        return batch(config, settle_seconds, progress, partners)


@rare_collections()
def batch(config: Config, settle_seconds: float, progress: bool, partners: Mapping[str, Partner],
          ready_files: Iterable[Path] | None = None, pull: bool = True,
          stop: Callable[[], bool] = lambda: False) -> Summary:
    """One batch, with the workspace lock already held by the caller.

    ``ready_files`` skips the settle step (``watch`` settles each file
    itself); ``stop`` is asked between files, so a stop request ends the
    batch after the file in hand. Environment faults (CLI.md, exit 74) are
    recorded in the summary where they happen and the batch goes on with
    what does not depend on them; the run is recorded as finished either way.
    """
    prepare_folders(config)
    ledger = ledger_guard.open_ledger(config)
    try:
        ws = Workspace(config, ledger, run_id=ledger.start_run(), progress=progress)
        started = utc_now()
        ws.recover()
        if partners and pull:
            _contained(ws, "pulling from the partners", transfers.pull, ws, partners, settle_seconds)
        exports = pickup.candidates(config.paths.inbox_cee, ".xml")
        packages = pickup.candidates(config.paths.inbox_mobile, ".zip")
        if ready_files is None:
            complete, changing = pickup.settle(exports + packages, settle_seconds)
            for path in changing:
                ws.summary.leave(path.name, STILL_CHANGING)
        else:
            complete = list(ready_files)
        complete = set(complete)
        # F3: CEE exports first, then return packages, each in the order written.
        ready = []
        for path in (p for p in exports if p in complete):
            root = to_mobile.read_ready_root(path)
            attributes = root.attrib if root else {}
            ready.append(pickup.Ready(path, pickup.instant(attributes.get("createdAt")),
                                      attributes.get("salesChannel")))
        for item in pickup.order(ready):
            if stop():
                break
            ws.take(item.path, "cee", item.channel, to_mobile.process)
        # F6: return packages by their channel's sequence; those whose number cannot be read
        # (or whose channel is not configured) are taken first, in F3's order: their checks reject them.
        ready, numbered = [], {}
        for path in (p for p in packages if p in complete):
            created_at, channel, sequence = to_cee.manifest_facts(path)
            if sequence is None or channel not in config.channels:
                ready.append(pickup.Ready(path, pickup.instant(created_at), channel))
            else:
                numbered.setdefault(channel, []).append((sequence, path))
        for item in pickup.order(ready):
            if stop():
                break
            ws.take(item.path, "mobile", item.channel, to_cee.process)
        for channel, items in sorted(numbered.items()):
            if stop():
                break
            take_in_sequence(ws, channel, items, stop)
        if partners and not stop():
            _contained(ws, "pushing to the partners", transfers.push, ws, partners)
        summary = ws.summary
        _contained(ws, "removing old archive folders and reports", retention.prune, config)
        _contained(ws, "writing the run report", _write_report, config, ws.run_id, started, summary)
        ledger.finish_run(ws.run_id, summary.exit_code, summary.as_dict())
        ledger_backup.after_run(config, ledger, ws.run_id)
        return summary
    finally:
        ledger.close()


def take_in_sequence(ws: Workspace, channel: str, items: list[tuple[int, Path]],
                     stop: Callable[[], bool] = lambda: False) -> None:
    """F6: the return packages of ``channel`` (sequence, path), lowest number first.

    Each is judged against the ledger as it is after the ones before it, so
    that 1, 3 and 2 arriving together are imported 1, 2, 3 in this run, and
    a package rejected for its content (which uses no number) keeps the ones
    after it held. A held package is not claimed: it stays in inbox/mobile/
    as it is, and the summary says so (not a rejection, exit 0). Packages
    that F6 rejects are claimed and rejected by :func:`exchange.to_cee.process`,
    after the duplicate check (F2), on the claimed bytes (F7).
    """
    pending = sorted(items, key=lambda item: (item[0], item[1].name))
    for index, (sequence, path) in enumerate(pending):
        if stop():
            break
        state = ws.ledger.channel_sequences(channel)
        # The others in the inbox (held ones too) are not missing: a hold names only what is.
        others = (n for i, (n, _) in enumerate(pending) if i != index)
        decision = sequence_rule.decide(state, sequence, others)
        if decision.action == "hold":
            ws.hold(path, channel, sequence, decision.message)
            continue
        ws.take(path, "mobile", channel, to_cee.process)


def _contained(ws: Workspace, doing: str, step: Callable, *args) -> None:
    """Run one step of the batch that no input depends on; an OS fault in it is
    recorded (exit 74) and the batch goes on."""
    try:
        step(*args)
    except OSError as error:
        ws.fault(error, doing)


def _write_report(config: Config, run_id: int, started: str, summary: Summary) -> Path:
    report = {"run": run_id, "started_at": started, "finished_at": utc_now(),
              "exit_code": summary.exit_code, **summary.as_dict()}
    # A free name: after a ledger restore, run numbers come again, and an old report stays.
    path = files.free_name(config.paths.reports, f"run-{run_id:06d}.json")
    files.write_atomic(path, (json.dumps(report, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return path
