"""``exchange status``: what is waiting, what was rejected, how the last runs went.

Read only: it takes no lock and changes nothing, so it can run beside a
``run`` or ``watch``. The JSON form (``--json``) is stable: fields are only
ever added (documented in README.md, "Operating it").
"""

from __future__ import annotations

import json
import sqlite3
import time
from datetime import datetime, timezone
from pathlib import Path

from exchange import ledger_guard, pickup, to_cee
from exchange.ledger import channel_sequences
from exchange.rules import sequence as sequence_rule
from exchange.config import Config
from exchange.errors import ExchangeError
from exchange.workspace import CLAIM_FOLDER


def _waiting(folder: Path, suffix: str, now: float) -> dict:
    files = pickup.candidates(folder, suffix)
    left_alone = pickup.others(folder, suffix)
    ages = []
    for path in files:
        try:
            ages.append(now - path.stat().st_mtime)
        except FileNotFoundError:
            continue
    return {
        "waiting": len(files),
        "oldest_waiting_seconds": round(max(ages), 1) if ages else None,
        "files": [p.name for p in files],
        "left_alone": [entry.path.name for entry in left_alone],
        # F7: inputs a run has claimed and not finished (a run is at work, or a fault left them
        # for the next start to finish).
        "claimed": sorted(p.name for p in pickup.candidates(folder / CLAIM_FOLDER, suffix)),
        "left_alone_reasons": {entry.path.name: entry.reason for entry in left_alone},
    }


def _held(config: Config, db) -> dict:
    """F6: per channel, the return packages in inbox/mobile/ that wait for missing numbers
    (``packages``: ``file``, ``sequence``, ``held_since``) and the numbers awaited (``missing``).

    Judged now, as the next run would, from the packages' manifests and the ledger; a package
    not held by a run yet (dropped since) has ``held_since`` null. Channels with nothing held
    are left out.
    """
    numbered: dict[str, list[tuple[int, str]]] = {}
    for path in pickup.candidates(config.paths.inbox_mobile, ".zip"):
        _created, channel, sequence = to_cee.manifest_facts(path)
        if sequence is not None and channel in config.channels:
            numbered.setdefault(channel, []).append((sequence, path.name))
    held = {}
    for channel, items in sorted(numbered.items()):
        state = channel_sequences(db, channel)
        numbers = {n for n, _ in items}
        waiting = [(n, name) for n, name in sorted(items)
                   if sequence_rule.decide(state, n, numbers - {n}).action == "hold"]
        if not waiting:
            continue
        since = dict(((name, n), at) for name, n, at in db.execute(
            "SELECT name, sequence, since FROM held WHERE channel = ?", (channel,)))
        held[channel] = {
            "packages": [{"file": name, "sequence": n, "held_since": since.get((name, n))} for n, name in waiting],
            "missing": state.missing(n for n, _ in waiting),
        }
    return held


def collect(config: Config, runs: int = 5) -> dict:
    """The status as a JSON-ready dict."""
    now = time.time()
    paths = config.paths
    status: dict = {
        "workspace": str(config.root),
        "inboxes": {"cee": _waiting(paths.inbox_cee, ".xml", now),
                    "mobile": _waiting(paths.inbox_mobile, ".zip", now)},
        "outbox": {},
        "rejected": [],
        "duplicates": [],
        "last_runs": [],
        "next_sequences": {},
        "held": {},
        "last_success_at": None,  # when the last run that exited 0 finished
    }
    packages = sorted(p.name for p in paths.outbox_mobile.glob("MOB_*.zip")) if paths.outbox_mobile.exists() else []
    for name, channel in sorted(config.channels.items()):
        mine = [p for p in packages if p.startswith(f"MOB_{name}_")]
        status["outbox"][name] = {"partner": channel.sftp.host if channel.sftp else None,
                                  "waiting_for_upload" if channel.sftp else "waiting_for_pickup": mine}
        status["next_sequences"][name] = {"to-mobile": 1, "from-mobile": 1}
    db = ledger_guard.open_reader(config)
    if db is None:
        return status
    try:
        for name, inbox, error, count, done, where in db.execute(
                "SELECT name, inbox, error, error_count, done_at, archived_as FROM files "
                "WHERE state IN ('rejected', 'lost') ORDER BY id"):
            if where and (config.root / where).exists():
                status["rejected"].append({"file": name, "inbox": inbox, "first_error": error,
                                           "errors": count, "rejected_at": done, "path": where})
        for name, done, where in db.execute(
                "SELECT name, done_at, archived_as FROM files WHERE state = 'duplicate' ORDER BY id DESC LIMIT 50"):
            status["duplicates"].append({"file": name, "at": done, "archived_as": where})
        for run_id, started, finished, code, summary in db.execute(
                "SELECT id, started_at, finished_at, exit_code, summary FROM runs ORDER BY id DESC LIMIT ?", (runs,)):
            data = json.loads(summary) if summary else {}
            status["last_runs"].append({
                "run": run_id, "started_at": started, "finished_at": finished, "exit_code": code,
                "files": data.get("files"), "records_read": data.get("records_read"),
                "packages": data.get("packages", []), "imports": data.get("imports", []),
                "rejected": len(data.get("rejected", [])), "duplicates": len(data.get("duplicates", [])),
                "transfer_errors": len(data.get("transfer_errors", [])),
                "faults": data.get("faults", []),
            })
        success = db.execute("SELECT finished_at FROM runs WHERE exit_code = 0 ORDER BY id DESC LIMIT 1").fetchone()
        status["last_success_at"] = success[0] if success else None
        for channel, direction, last in db.execute("SELECT channel, direction, last FROM sequences"):
            status["next_sequences"].setdefault(channel, {"to-mobile": 1, "from-mobile": 1})[direction] = last + 1
        try:
            status["held"] = _held(config, db)
        except sqlite3.OperationalError:  # a ledger no run of this version has opened: nothing held yet
            pass
    finally:
        db.close()
    return status


def lines(status: dict) -> list[str]:
    """The status for people."""
    out = [f"workspace {status['workspace']}"]
    for inbox, info in status["inboxes"].items():
        oldest = f", oldest waiting {info['oldest_waiting_seconds']:.0f} s" if info["waiting"] else ""
        out.append(f"inbox/{inbox}: {info['waiting']} waiting{oldest}")
        for name in info["claimed"]:
            out.append(f"  in hand: {name} (claimed by a run; it or the next start finishes it)")
        for name, reason in info["left_alone_reasons"].items():
            out.append(f"  left alone: {name} ({reason})")
    for channel, info in status["outbox"].items():
        if info["partner"]:
            out.append(f"outbox/mobile {channel}: {len(info['waiting_for_upload'])} waiting for upload to "
                       f"{info['partner']}")
        else:
            out.append(f"outbox/mobile {channel}: {len(info['waiting_for_pickup'])} packages (no partner: "
                       "collected from the folder)")
    out.append(f"rejected: {len(status['rejected'])}")
    for item in status["rejected"]:
        out.append(f"  {item['file']}: {item['first_error']}")
    out.append(f"duplicates (latest 50): {len(status['duplicates'])}")
    for run in status["last_runs"]:
        out.append(f"run {run['run']} {run['started_at']}: exit {run['exit_code']}, {run['files']} files, "
                   f"{len(run['packages'])} packages, {len(run['imports'])} imports, {run['rejected']} rejected, "
                   f"{run['duplicates']} duplicates")
        for fault in run["faults"]:
            out.append(f"  fault: {fault}")
    for channel, info in status["held"].items():
        for package in info["packages"]:
            since = f", held since {package['held_since']}" if package["held_since"] else ""
            out.append(f"held {channel}: {package['file']} (sequence {package['sequence']}{since}) (F6)")
        out.append(f"  missing {channel}: {', '.join(map(str, info['missing']))}; when they will never come: "
                   f"'exchange release {channel} {min(p['sequence'] for p in info['packages'])} --reason TEXT'")
    for channel, sequences in status["next_sequences"].items():
        out.append(f"next sequences {channel}: package {sequences['to-mobile']}, import {sequences['from-mobile']}")
    return out


# --- status --check -------------------------------------------------------------

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
_STATES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}


def check(config: Config, now: float | None = None) -> tuple[int, list[str]]:
    """``status --check``: the monitoring-plugin view (CLI.md, 2026-12-02).

    The exit code is 0 OK, 1 WARNING, 2 CRITICAL or 3 UNKNOWN (the workspace
    or the ledger cannot be read); the first line is ``EXCHANGE <STATE> -
    <summary>``, then one line for each problem, the worst first. Thresholds
    come from ``[monitoring]``.
    """
    now = time.time() if now is None else now
    try:
        data = collect(config)
    except (ExchangeError, OSError, sqlite3.Error) as error:
        return UNKNOWN, [f"EXCHANGE UNKNOWN - {error}"]
    limits = config.monitoring
    problems: list[tuple[int, str]] = []
    for item in data["rejected"]:
        problems.append((CRITICAL, f"rejected file waiting in inbox/rejected/: {item['file']}: {item['first_error']}"))
    held_files = {package["file"] for held in data["held"].values() for package in held["packages"]}
    for inbox, info in data["inboxes"].items():
        # a held return package has a threshold of its own (crit_held_seconds), below
        age = _oldest(config.paths.inbox_cee if inbox == "cee" else config.paths.inbox_mobile,
                      [name for name in info["files"] if inbox == "cee" or name not in held_files], now)
        for level, limit, key in ((CRITICAL, limits.crit_waiting_seconds, "crit_waiting_seconds"),
                                  (WARNING, limits.warn_waiting_seconds, "warn_waiting_seconds")):
            if age is not None and age > limit:
                problems.append((level, f"inbox/{inbox}: an input has waited {_age(age)} (over {key} = {limit:g})"))
                break
    notes = []  # what an operator should know that is no problem (yet)
    for channel, held in data["held"].items():
        missing = ", ".join(map(str, held["missing"]))
        for package in held["packages"]:
            since = _instant(package["held_since"])
            if since is not None and now - since > limits.crit_held_seconds:
                problems.append((CRITICAL, f"held {channel}: {package['file']} (sequence {package['sequence']}) for "
                                           f"{_age(now - since)}, waiting for {missing} (over crit_held_seconds = "
                                           f"{limits.crit_held_seconds:g}) (F6)"))
            else:
                notes.append(f"held {channel}: {package['file']} (sequence {package['sequence']}), waiting for "
                             f"{missing} (F6)")
    finished = [run for run in data["last_runs"] if run["exit_code"] is not None]
    success = _instant(data["last_success_at"])
    if not finished:
        problems.append((WARNING, "no run has finished yet"))
    elif success is None or now - success > limits.crit_quiet_seconds:
        since = "ever" if success is None else f"for {_age(now - success)}"
        problems.append((CRITICAL, f"no successful run {since} (over crit_quiet_seconds = "
                                   f"{limits.crit_quiet_seconds:g})"))
    if finished and finished[0]["exit_code"] != 0:
        last = finished[0]
        problems.append((WARNING, f"the last run ({last['run']}, {last['finished_at']}) exited {last['exit_code']}"))
        if last["transfer_errors"]:
            problems.append((WARNING, f"the last run's transfers failed: {last['transfer_errors']}"))
    problems.sort(key=lambda p: -p[0])
    state = problems[0][0] if problems else OK
    waiting = sum(info["waiting"] for info in data["inboxes"].values()) - len(held_files)
    held_part = f", {len(held_files)} held (F6)" if held_files else ""
    summary = (f"{len(problems)} problem(s): {problems[0][1]}" if problems else
               f"{waiting} input(s) waiting{held_part}, last successful run {data['last_success_at']}")
    return state, [f"EXCHANGE {_STATES[state]} - {summary}", *(f"{_STATES[level]}: {text}" for level, text in problems),
                   *notes]


def _oldest(folder: Path, names: list[str], now: float) -> float | None:
    """How long the oldest of ``names`` in ``folder`` has waited (by its mtime), in seconds."""
    ages = []
    for name in names:
        try:
            ages.append(now - (folder / name).stat().st_mtime)
        except FileNotFoundError:  # taken meanwhile
            continue
    return max(ages) if ages else None


def _instant(stamp: str | None) -> float | None:
    """A UTC timestamp of the ledger (``...Z``) as seconds since the epoch."""
    if not stamp:
        return None
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc).timestamp()


def _age(seconds: float) -> str:
    """Seconds in the largest whole unit a person reads at a glance."""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"
