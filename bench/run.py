"""Benchmark: ``exchange run`` end to end on a big CustomerExport, against a
bare ``lxml.etree.iterparse`` pass over the same file, in the same script.

    python bench/run.py [--sizes 200] [--seed 1] [--repeat 1] [--keep]

For each size (MiB) a CustomerExport (and a small MasterdataExport for its
occupations) is generated with ``bench/generate.py`` into ``bench/out/``
(git-ignored; reused when already there). Then, each in its own process:

baseline
    ``for event, el in etree.iterparse(f, events=("end",)): el.clear()``,
    dropping each processed record from the root: the bare streaming pass
    over the file, no schema, no output.
exchange run
    a fresh workspace (``exchange init``) that has processed the masterdata
    export already; the timed command is ``python -m exchange run --settle 0``
    with the CustomerExport alone in ``inbox/cee/``: hashing, validation (in
    a forked child), rules R1-R8, the ledger, writing, checking and
    publishing the package, archiving the input.

With ``--repeat N`` the two run in N pairs, each baseline right before its
run, and the fastest of each is kept: the speed of a shared machine drifts
within minutes.

Printed: MiB/s of each, the ratio exchange/baseline (the target is at least
1/3) and the lowest and highest ratio within one pair, the CPU seconds of
the run's process tree (and as a multiple of the baseline's: steadier than
wall times on a shared machine), and peak memory: the largest RSS of any
one process of the run, and the largest sums of Rss and of Pss over the
run's process tree (the main process and the children it forks: the
second half's, the output checks), sampled every 20 ms from /proc. The forked children share the
parent's pages copy-on-write; the Rss sum counts those once per process,
the Pss sum once in all.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import NamedTuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate  # noqa: E402  (bench/generate.py, beside this file)

MIB = 1 << 20
BASELINE = r"""
import sys
from lxml import etree
for _event, el in etree.iterparse(sys.argv[1], events=("end",)):
    el.clear()
    parent = el.getparent()
    if parent is not None and parent.getparent() is None:
        while el.getprevious() is not None:
            del parent[0]
"""


def _tree_kib(pid: int) -> tuple[int, int]:
    """(sum of Rss, sum of Pss) over a process and its descendants, in KiB (Linux /proc).

    The forked children share the parent's pages copy-on-write: the Rss sum
    counts a shared page once per process, the Pss sum splits it between
    them, so Pss adds up to what the tree really occupies.
    """
    rss = pss = 0
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    stack.extend(int(c) for c in f.read().split())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return rss, pss


class Measurement(NamedTuple):
    """One run of a command. The CPU seconds (user and system, of the process and
    the children it waited for) vary less than the wall time on a shared
    machine: compare variants by both."""

    wall: float  # seconds
    rss_one: float  # MiB: peak RSS of one process
    rss_tree: float  # MiB: peak Rss sum of the process tree
    pss_tree: float  # MiB: peak Pss sum of the process tree
    cpu: float  # seconds, the whole tree


HEADER = (f"{'size':>8} {'baseline MiB/s':>15} {'exchange MiB/s':>15} {'ratio':>7} {'ratio per pair':>15} "
          f"{'peak RSS (largest process)':>27} {'peak Rss sum (tree)':>20} {'peak Pss sum (tree)':>20} "
          f"{'CPU s (tree)':>13} {'CPU/baseline':>13}")


def pairs(repeat: int, baseline: Callable[[], Measurement], run: Callable[[], Measurement]
          ) -> list[tuple[Measurement, Measurement]]:
    """``repeat`` (baseline, run) pairs, each measured back to back.

    The speed of a shared machine drifts within minutes: all baselines first
    and all runs after would compare them under different conditions."""
    return [(baseline(), run()) for _ in range(repeat)]


def result_line(mib: int, size: float, measured: list[tuple[Measurement, Measurement]]) -> str:
    """The line under :data:`HEADER` for ``size`` MiB of XML (named ``mib``):
    the fastest baseline against the fastest run (memory and CPU of that
    run), and the lowest and highest ratio within a pair."""
    baseline = fastest(b for b, _ in measured)
    run = fastest(r for _, r in measured)
    ratios = [b.wall / r.wall for b, r in measured]
    spread = f"{min(ratios):.2f}-{max(ratios):.2f}"
    return (f"{mib:>6}MiB {size / baseline.wall:>15.1f} {size / run.wall:>15.1f} {baseline.wall / run.wall:>7.2f} "
            f"{spread:>15} {run.rss_one:>24.0f} MiB {run.rss_tree:>16.0f} MiB {run.pss_tree:>16.0f} MiB "
            f"{run.cpu:>13.1f} {run.cpu / baseline.cpu:>13.1f}")


def fastest(runs: Iterable[Measurement]) -> Measurement:
    return min(runs, key=lambda run: run.wall)


def measure(cmd: list[str], cwd: Path | None = None) -> Measurement:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    tree_peak = tree_pss_peak = 0
    while True:
        try:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:
            break
        if pid:
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
            break
        rss, pss = _tree_kib(proc.pid)
        tree_peak = max(tree_peak, rss)
        tree_pss_peak = max(tree_pss_peak, pss)
        time.sleep(0.02)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode not in (0,):
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{err}")
    # ru_maxrss of the direct child; forked grandchildren are covered by the tree samples
    return Measurement(wall, usage.ru_maxrss / 1024, tree_peak / 1024, tree_pss_peak / 1024,
                       usage.ru_utime + usage.ru_stime)


def _run_once(export: Path, masterdata: Path, out_dir: Path) -> Measurement:
    """``exchange run`` on ``export`` in a fresh workspace that has processed ``masterdata``."""
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        ws = Path(tmp) / "ws"
        subprocess.run([sys.executable, "-m", "exchange", "init", str(ws)], check=True, stdout=subprocess.DEVNULL)
        shutil.copy(masterdata, ws / "inbox" / "cee")
        subprocess.run([sys.executable, "-m", "exchange", "run", "--settle", "0"], cwd=ws, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.link(export, ws / "inbox" / "cee" / export.name)
        return measure([sys.executable, "-m", "exchange", "run", "--settle", "0"], cwd=ws)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="200", help="comma-separated MiB sizes (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1,
                        help="(baseline, run) pairs, back to back; the fastest of each is kept")
    parser.add_argument("--out-dir", type=Path, default=HERE / "out")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    masterdata = args.out_dir / "masterdata.xml"
    if not masterdata.exists():
        generate.main(["masterdata", str(masterdata)])
    print(HEADER)
    for mib in (int(s) for s in args.sizes.split(",")):
        export = args.out_dir / f"run_customers_{mib}MiB_seed{args.seed}.xml"
        if not export.exists():
            generate.main(["customers", str(export), "--mb", str(mib), "--seed", str(args.seed)])
        size = export.stat().st_size / MIB
        measured = pairs(args.repeat, partial(measure, [sys.executable, "-c", BASELINE, str(export)]),
                         partial(_run_once, export, masterdata, args.out_dir))
        print(result_line(mib, size, measured), flush=True)


if __name__ == "__main__":
    main()
