"""The progress bar of ``exchange run`` (stderr, files of 4 MiB and more, only on a terminal).

The command runs as a real subprocess with its stderr on a pseudo-terminal, as an operator's
shell would give it; the controls run the same export without a terminal, and a small export
on one.
"""

from __future__ import annotations

import os
import pty
import re
import subprocess
from pathlib import Path

import pytest
from workspace_util import Workspace, address, cli_command, cli_env, customer, customers, person

BIG = 30_000  # customers: about 6 MiB


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path)


def _export(count: int) -> bytes:
    records = [customer(str(100000 + i), f"Firma {i}", addr=address("Kraków", "PL"),
                        persons=[person(str(500000 + i), "Nowak", classifications=["Sales"])])
               for i in range(count)]
    return customers("CU-PROGRESS", "2026-11-27T22:00:00Z", records=records)


def _run_on_a_terminal(ws: Workspace) -> tuple[int, str, str]:
    """(exit code, stdout, what the terminal showed) of ``exchange run --settle 0``."""
    master, slave = pty.openpty()
    proc = subprocess.Popen(cli_command("run", "--settle", "0"), cwd=ws.root, env=cli_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown = []
    while True:
        try:
            chunk = os.read(master, 1 << 16)
        except OSError:  # EIO: the last holder of the terminal's other end has gone
            break
        if not chunk:
            break
        shown.append(chunk)
    os.close(master)
    stdout, _ = proc.communicate(timeout=300)
    return proc.returncode, stdout.decode("utf-8"), b"".join(shown).decode("utf-8", "replace")


def test_a_big_export_shows_a_progress_bar_on_a_terminal(ws):
    data = _export(BIG)
    assert len(data) >= 4 << 20
    ws.drop("big.xml", data)
    code, stdout, terminal = _run_on_a_terminal(ws)
    assert code == 0, terminal
    assert "packages written: 1 (MOB_MOBILE-PL_00000001.zip)" in stdout
    # The bar redraws its line (carriage returns) and hides the cursor meanwhile (escape codes).
    frames = [line.split() for line in re.split(r"[\r\n]", re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", terminal))
              if line.startswith("big.xml")]
    assert frames[0] == ["big.xml", "[" + "-" * 36 + "]", "0%"], frames[0]
    assert frames[-1] == ["big.xml", "[" + "#" * 36 + "]", "100%"], frames[-1]
    assert len({frame[2] for frame in frames}) > 20  # it moved along as the file was read


def test_control_no_bar_without_a_terminal(ws):
    ws.drop("big.xml", _export(BIG))
    run = ws.run()
    assert run.returncode == 0, run
    assert "big.xml [" not in run.stderr and "%" not in run.stderr, run.stderr


def test_control_no_bar_for_a_small_export(ws):
    ws.drop("small.xml", _export(100))
    code, stdout, terminal = _run_on_a_terminal(ws)
    assert code == 0, terminal
    assert "packages written: 1 (MOB_MOBILE-PL_00000001.zip)" in stdout
    assert "%" not in terminal, terminal
