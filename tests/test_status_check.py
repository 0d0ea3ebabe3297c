"""``exchange status --check``: the monitoring-plugin view (CLI.md, 2026-12-02).

Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; the first line is
``EXCHANGE <STATE> - <summary>``, one line per problem after it. Real
workspaces, real runs of the CLI; thresholds set in ``[monitoring]``.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from inbound_util import mid, new_customer, return_package, returned
from workspace_util import CliRun, Workspace, customer, customers

DEADLINE_S = 60


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path)


def monitoring(ws: Workspace, **limits: float) -> None:
    table = "".join(f"{key} = {value}\n" for key, value in limits.items())
    ws.edit_config(lambda text: text + f"\n[monitoring]\n{table}")


def check(ws: Workspace) -> CliRun:
    return ws.cli("status", "--check")


def export(n: int) -> bytes:
    return customers(f"CU-{n}", f"2026-11-27T0{n}:00:00Z", records=[customer(f"1000{n}", f"Firma {n}")])


def wait_for_check(ws: Workspace, code: int) -> CliRun:
    """``status --check`` until it exits ``code`` (an age must pass a threshold of 1 s)."""
    end = time.monotonic() + DEADLINE_S
    while True:
        result = check(ws)
        if result.returncode == code or time.monotonic() > end:
            return result
        time.sleep(0.2)


def test_a_workspace_that_never_ran_is_a_warning(ws: Workspace) -> None:
    result = check(ws)
    assert (result.returncode, result.lines) == (1, [
        "EXCHANGE WARNING - 1 problem(s): no run has finished yet",
        "WARNING: no run has finished yet"]), str(result)


def test_all_well_is_ok(ws: Workspace) -> None:
    ws.drop("a.xml", export(1))
    assert ws.run().returncode == 0
    success = json.loads(ws.cli("status", "--json").stdout)["last_success_at"]
    result = check(ws)
    assert (result.returncode, result.lines) == (
        0, [f"EXCHANGE OK - 0 input(s) waiting, last successful run {success}"]), str(result)


def test_a_rejected_file_waiting_is_critical_and_the_failed_run_a_warning(ws: Workspace) -> None:
    ws.drop("a.xml", export(1))
    assert ws.run().returncode == 0
    ws.drop("broken.xml", b"<CustomerExport")
    run = ws.run()
    assert run.returncode == 1
    first_error = json.loads(ws.cli("status", "--json").stdout)["rejected"][0]["first_error"]
    last = json.loads(ws.cli("status", "--json").stdout)["last_runs"][0]
    result = check(ws)
    problem = f"rejected file waiting in inbox/rejected/: broken.xml: {first_error}"
    assert (result.returncode, result.lines) == (2, [
        f"EXCHANGE CRITICAL - 2 problem(s): {problem}",
        f"CRITICAL: {problem}",
        f"WARNING: the last run ({last['run']}, {last['finished_at']}) exited 1"]), str(result)


def test_an_input_waiting_too_long_warns_then_is_critical(ws: Workspace) -> None:
    monitoring(ws, warn_waiting_seconds=60, crit_waiting_seconds=7200)
    ws.drop("a.xml", export(1))
    assert ws.run().returncode == 0
    two_hours_ago = time.time() - 2 * 3600 + 60  # older than warn, younger than crit
    ws.drop("b.xml", export(2))
    os.utime(ws.inbox_cee / "b.xml", (two_hours_ago, two_hours_ago))
    result = check(ws)
    assert (result.returncode, result.lines) == (1, [
        "EXCHANGE WARNING - 1 problem(s): inbox/cee: an input has waited 2 h (over warn_waiting_seconds = 60)",
        "WARNING: inbox/cee: an input has waited 2 h (over warn_waiting_seconds = 60)"]), str(result)
    three_hours_ago = time.time() - 3 * 3600
    os.utime(ws.inbox_cee / "b.xml", (three_hours_ago, three_hours_ago))
    result = check(ws)
    assert (result.returncode, result.lines[1:]) == (2, [
        "CRITICAL: inbox/cee: an input has waited 3 h (over crit_waiting_seconds = 7200)"]), str(result)


def test_a_return_package_held_too_long_is_critical(ws: Workspace) -> None:
    monitoring(ws, crit_held_seconds=1)
    mobile = ws.root / "inbox" / "mobile"
    return_package(mobile / "RET_1.zip", returned([new_customer(mid(1), "Firma 1")]), sequence=1)
    assert ws.run().returncode == 0
    return_package(mobile / "RET_3.zip", returned([new_customer(mid(3), "Firma 3")]), sequence=3)
    held = ws.run()
    assert held.returncode == 0 and "held: RET_3.zip (sequence 3; waiting for 2) (F6)" in held.lines, str(held)
    success = json.loads(ws.cli("status", "--json").stdout)["last_success_at"]
    early = check(ws)  # held, not yet for long: said, and no problem
    if early.returncode == 0:  # the second may already have passed on a slow machine
        assert early.lines == [f"EXCHANGE OK - 0 input(s) waiting, 1 held (F6), last successful run {success}",
                               "held MOBILE-PL: RET_3.zip (sequence 3), waiting for 2 (F6)"], str(early)
    result = wait_for_check(ws, 2)
    assert result.returncode == 2, str(result)
    assert len(result.lines) == 2 and result.lines[1].startswith(
        "CRITICAL: held MOBILE-PL: RET_3.zip (sequence 3) for "), str(result)
    assert result.lines[1].endswith(", waiting for 2 (over crit_held_seconds = 1) (F6)"), str(result)


def test_no_successful_run_for_too_long_is_critical(ws: Workspace) -> None:
    monitoring(ws, crit_quiet_seconds=1)
    assert ws.run().returncode == 0
    result = wait_for_check(ws, 2)
    assert result.returncode == 2, str(result)
    assert len(result.lines) == 2 and result.lines[1].startswith("CRITICAL: no successful run for "), str(result)
    assert result.lines[1].endswith(" (over crit_quiet_seconds = 1)"), str(result)


def test_a_ledger_that_cannot_be_read_is_unknown(ws: Workspace) -> None:
    ledger = ws.root / ".exchange" / "state.db"
    ledger.write_bytes(b"this is not a database, it is junk" * 200)
    result = check(ws)
    assert result.returncode == 3, str(result)
    assert result.lines[0].startswith(f"EXCHANGE UNKNOWN - {ledger}: "), str(result)
    assert len(result.lines) == 1 and "Traceback" not in result.stderr


def test_a_broken_configuration_is_unknown_for_check_and_exit_2_for_run(ws: Workspace) -> None:
    monitoring(ws, crit_held_seconds="nan")
    message = f"{ws.config}: 'crit_held_seconds' in [monitoring] must be a finite number, not nan"
    result = check(ws)
    assert (result.returncode, result.lines) == (3, [f"EXCHANGE UNKNOWN - {message}"]), str(result)
    run = ws.run()
    assert (run.returncode, run.stderr) == (2, f"exchange: {message}\n"), str(run)
