"""exchange watch and the workspace lock, with real processes and signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from cli_util import EXAMPLES
from cli_util import exchange as _exchange
from workspace_util import cli_command, cli_env

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))



def _start_watch(ws: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(cli_command("watch", *args), cwd=ws, env=cli_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition, deadline: float = 60.0, what: str = "condition") -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _packages(ws: Path) -> list[str]:
    return sorted(p.name for p in (ws / "outbox" / "mobile").glob("MOB_*.zip"))


def _stop(proc: subprocess.Popen) -> tuple[int, str]:
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=120)
    return proc.returncode, err


@pytest.fixture
def ws(tmp_path) -> Path:
    workspace = tmp_path / "ws"
    assert _exchange(tmp_path, "init", str(workspace)).returncode == 0
    return workspace


def test_watch_takes_files_present_at_start_moved_in_and_written_slowly(ws, tmp_path):
    (ws / "inbox" / "cee" / "md.xml").write_bytes((EXAMPLES / "masterdata_20261127.xml").read_bytes())
    proc = _start_watch(ws, "--settle", "3")
    try:
        _wait_for(lambda: _packages(ws) == ["MOB_MOBILE-PL_00000001.zip"], what="the file present at start")

        # moved in from another folder of the same file system
        outside = tmp_path / "outside.xml"
        outside.write_bytes((EXAMPLES / "customers_20261127.xml").read_bytes())
        os.replace(outside, ws / "inbox" / "cee" / "moved.xml")
        _wait_for(lambda: len(_packages(ws)) == 2, what="the moved-in file")

        # written slowly in small chunks: taken only once complete and settled
        data = (EXAMPLES / "customers_20261127.xml").read_bytes().replace(b"CU-20261127-01", b"CU-SLOW")
        slow = ws / "inbox" / "cee" / "slow.xml"
        with open(slow, "wb") as f:
            for start in range(0, len(data), 100):
                f.write(data[start:start + 100])
                f.flush()
                assert len(_packages(ws)) == 2, "a file still being written was picked up"
                assert not any((ws / "inbox" / "rejected").iterdir()), "a partial file was rejected"
                time.sleep(0.3)  # the writer's pace: a tenth of the 3 s settle time
        _wait_for(lambda: len(_packages(ws)) == 3, what="the slowly written file")
        with zipfile.ZipFile(ws / "outbox" / "mobile" / "MOB_MOBILE-PL_00000003.zip") as z:
            assert b'exportId="CU-SLOW"' in z.read("manifest.xml")
    finally:
        code, err = _stop(proc)
    assert code == 0, err
    assert "SIGTERM: stopping after the file in hand" in err and "Traceback" not in err


def test_sigterm_with_a_big_file_in_hand_finishes_that_file_first(ws):
    """CLI.md: watch stops on SIGTERM *after the file in hand*: its package is written, whole."""
    import generate

    big = ws.parent / "big.xml"
    generate.main(["customers", str(big), "--mb", "20"])
    (ws / "inbox" / "cee" / "md.xml").write_bytes((EXAMPLES / "masterdata_20261127.xml").read_bytes())
    proc = _start_watch(ws, "--settle", "0")
    _wait_for(lambda: _packages(ws) == ["MOB_MOBILE-PL_00000001.zip"], what="the masterdata package")
    os.replace(big, ws / "inbox" / "cee" / "big.xml")
    _wait_for(lambda: any((ws / "outbox" / "mobile").glob(".MOB_*.tmp")), what="the big file in hand")
    code, err = _stop(proc)
    assert code == 0, err
    names = sorted(p.name for p in (ws / "outbox" / "mobile").iterdir() if p.is_file())
    assert names == ["MOB_MOBILE-PL_00000001.zip", "MOB_MOBILE-PL_00000002.zip"], err
    assert _exchange(ws, "validate", "outbox/mobile/MOB_MOBILE-PL_00000002.zip").returncode == 0
    assert not list((ws / "inbox" / "cee").glob("*.xml"))  # the big file was archived before the stop
    # the next start has nothing left to do
    again = _exchange(ws, "run", "--settle", "0")
    assert again.returncode == 0, again.stderr
    assert _packages(ws) == ["MOB_MOBILE-PL_00000001.zip", "MOB_MOBILE-PL_00000002.zip"]
    assert not list((ws / "inbox" / "cee").glob("*.xml"))


def test_two_workers_one_gets_75(ws):
    proc = _start_watch(ws, "--settle", "0")
    try:
        _wait_for(lambda: (ws / ".exchange" / "lock").exists() and
                  (ws / ".exchange" / "lock").read_text().strip() == str(proc.pid), what="the watcher's lock")
        second = _exchange(ws, "run", "--settle", "0")
        assert second.returncode == 75
        assert second.stderr.startswith(f"exchange: the workspace is in use by another run or watcher (PID {proc.pid})")
    finally:
        code, err = _stop(proc)
    assert code == 0, err


def test_a_lock_left_by_a_killed_run_does_not_block(ws):
    import generate

    generate.main(["customers", str(ws / "inbox" / "cee" / "big.xml"), "--mb", "10"])
    proc = subprocess.Popen(cli_command("run", "--settle", "0"), cwd=ws, env=cli_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    _wait_for(lambda: (ws / ".exchange" / "lock").exists() and
              (ws / ".exchange" / "lock").read_text().strip() == str(proc.pid), what="the run's lock")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)
    after = _exchange(ws, "run", "--settle", "0")
    assert after.returncode == 0, after.stderr
    assert _packages(ws) == ["MOB_MOBILE-PL_00000001.zip"]


def test_two_concurrent_runs_one_gets_75(ws):
    import generate

    # big enough that the first run still holds the lock when the second one starts
    generate.main(["customers", str(ws / "inbox" / "cee" / "big.xml"), "--mb", "40"])
    first = subprocess.Popen(cli_command("run", "--settle", "0"), cwd=ws, env=cli_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: (ws / ".exchange" / "lock").exists() and
              (ws / ".exchange" / "lock").read_text().strip() == str(first.pid), what="the first run's lock")
    second = _exchange(ws, "run", "--settle", "0")
    _out, err = first.communicate(timeout=300)
    assert (first.returncode, second.returncode) == (0, 75), err
    assert second.stderr.startswith(f"exchange: the workspace is in use by another run or watcher (PID {first.pid})")
    assert _packages(ws) == ["MOB_MOBILE-PL_00000001.zip"]
