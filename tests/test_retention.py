"""archive_days: old archive day folders and run reports are removed by a run."""

from __future__ import annotations

import os
import subprocess
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from workspace_util import cli_command, cli_env


def test_old_archive_folders_and_reports_are_removed(tmp_path):
    ws = tmp_path / "ws"
    subprocess.run(cli_command("init", ws), env=cli_env(), check=True, capture_output=True)
    config = ws / "exchange.toml"
    config.write_text(config.read_text().replace("# archive_days = 90", "archive_days = 10"))
    # A workspace with an archive has a ledger that knows a file: without one, a run refuses it.
    examples = Path(__file__).resolve().parent.parent / "examples"
    (ws / "inbox" / "cee" / "masterdata.xml").write_bytes((examples / "masterdata_20261127.xml").read_bytes())
    first = subprocess.run(cli_command("run", "--settle", "0"), cwd=ws, env=cli_env(), capture_output=True,
                           text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    today = datetime.now(timezone.utc).date()
    old = ws / "inbox" / "archive" / (today - timedelta(days=11)).isoformat()
    kept = ws / "inbox" / "archive" / (today - timedelta(days=9)).isoformat()
    for folder in (old, kept):
        folder.mkdir(parents=True)
        (folder / "x.xml").write_text("x")
    reports = ws / ".exchange" / "reports"
    stale = reports / "run-000099.json"
    stale.write_text("{}")
    eleven_days_ago = time.time() - 11 * 86400
    os.utime(stale, (eleven_days_ago, eleven_days_ago))
    rejected = ws / "inbox" / "rejected" / "old.xml"
    rejected.write_text("x")
    os.utime(rejected, (eleven_days_ago, eleven_days_ago))

    run = subprocess.run(cli_command("run", "--settle", "0"), cwd=ws, env=cli_env(), capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert not old.exists() and (kept / "x.xml").exists()
    assert not stale.exists()
    assert sorted(p.name for p in reports.iterdir()) == ["run-000001.json", "run-000002.json"]  # the runs' own
    assert rejected.exists()  # rejected files wait for an operator
    assert f"inbox/archive/{old.name}: older than 10 days, removed (archive_days)" in run.stderr
