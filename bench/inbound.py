"""Benchmark: ``exchange run`` end to end on a big return package from Mobile,
against a bare ``lxml.etree.iterparse`` pass over the same data, in the same script.

    python bench/inbound.py [--sizes 200] [--seed 1] [--repeat 1] [--profile]

For each size (MiB of ``customers.xml``, uncompressed) a return package is
generated with ``bench/generate_returns.py`` into ``bench/out/`` (git-ignored;
reused when already there), and the MasterdataExport of ``bench/generate.py``
beside it. Then, each in its own process:

baseline
    ``for event, el in etree.iterparse(member, events=("end",)): el.clear()``
    over the ``customers.xml`` member opened from the ZIP (``zipfile``,
    streaming: inflating included), dropping each processed record from the
    root: the bare streaming pass over the data, no schema, no output.
exchange run
    a fresh workspace (``exchange init``) that has processed the masterdata
    export already (so the positions are live occupations of the channel);
    the timed command is ``python -m exchange run --settle 0`` with the
    return package alone in ``inbox/mobile/``: hashing the package, checking
    the container and the manifest (sizes, SHA-256), validation (in a forked
    child), rules R9-R14, the ledger (mobileIds, decisions), writing the CEE
    import document (validated as written in another child), publishing it,
    archiving the package. The run must publish exactly one import document
    and reject nothing, or the benchmark stops.

Printed: MiB/s of each (MiB of the uncompressed ``customers.xml``), the
ratio exchange/baseline (the target is at least 1/3), the CPU seconds of
the run's process tree (and as a multiple of the baseline's), and peak
memory: the largest RSS of any one process of the run, and the largest sums
of Rss and of Pss over the run's process tree (as ``bench/run.py``),
sampled every 20 ms from /proc. The load average is printed before and
after.

``--profile`` then runs ``exchange.run.run_batch`` once more in this process
under cProfile (a fresh workspace, the first size) and prints the top
``--top`` functions by own time; the forked validation children are not in it.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from functools import partial
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import generate  # bench/generate.py, beside this file
import generate_returns  # bench/generate_returns.py, beside this file
from run import HEADER, Measurement, measure, pairs, result_line  # bench/run.py: the same measurement and table

MIB = 1 << 20
BASELINE = r"""
import sys
import zipfile
from lxml import etree
with zipfile.ZipFile(sys.argv[1]) as archive, archive.open("customers.xml") as member:
    for _event, el in etree.iterparse(member, events=("end",)):
        el.clear()
        parent = el.getparent()
        if parent is not None and parent.getparent() is None:
            while el.getprevious() is not None:
                del parent[0]
"""


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg()) + f" ({os.cpu_count()} CPUs)"


def _workspace(tmp: Path, masterdata: Path) -> Path:
    """A fresh workspace that has processed the masterdata export; its inbox/mobile/ is empty."""
    ws = tmp / "ws"
    subprocess.run([sys.executable, "-m", "exchange", "init", str(ws)], check=True, stdout=subprocess.DEVNULL)
    shutil.copy(masterdata, ws / "inbox" / "cee")
    subprocess.run([sys.executable, "-m", "exchange", "run", "--settle", "0"], cwd=ws, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return ws


def _check_published(ws: Path, package: Path) -> None:
    """The run did the work: one import document out, nothing rejected."""
    imports = sorted((ws / "outbox" / "cee").glob("CEEIMP_*.xml"))
    rejected = [p.name for p in (ws / "inbox" / "rejected").iterdir()]
    if len(imports) != 1 or rejected or (ws / "inbox" / "mobile" / package.name).exists():
        raise SystemExit(f"{package.name}: the run did not publish one import document "
                         f"(outbox/cee: {[p.name for p in imports]}, rejected: {rejected})")


def _package(out_dir: Path, mib: int, seed: int) -> Path:
    package = out_dir / f"RET_MOBILE-PL_{mib}MiB_seed{seed}.zip"
    if not package.exists():
        generate_returns.main([str(package), "--mb", str(mib), "--seed", str(seed)])
    return package


def _data_bytes(package: Path) -> int:
    with zipfile.ZipFile(package) as archive:
        return archive.getinfo(generate_returns.DATA_FILE).file_size


def _run_once(package: Path, masterdata: Path, out_dir: Path) -> Measurement:
    """``exchange run`` on ``package`` in a fresh workspace; checks what it published."""
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        ws = _workspace(Path(tmp), masterdata)
        os.link(package, ws / "inbox" / "mobile" / package.name)
        measured = measure([sys.executable, "-m", "exchange", "run", "--settle", "0"], cwd=ws)
        _check_published(ws, package)
        return measured


def profile(package: Path, masterdata: Path, out_dir: Path, top: int) -> None:
    """cProfile of ``run_batch`` over the package, in this process."""
    from exchange import config as config_module
    from exchange.run import run_batch

    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        ws = _workspace(Path(tmp), masterdata)
        os.link(package, ws / "inbox" / "mobile" / package.name)
        config = config_module.load(ws / config_module.CONFIG_NAME)
        profiler = cProfile.Profile()
        start = time.perf_counter()
        summary = profiler.runcall(run_batch, config, settle_seconds=0)
        wall = time.perf_counter() - start
        _check_published(ws, package)
    size = _data_bytes(package) / MIB
    print(f"\nprofile: run_batch in-process under cProfile, {package.name}: {wall:.1f} s "
          f"({size / wall:.1f} MiB/s with profiling overhead), exit code {summary.exit_code}; {_load()}")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    print(text.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="200", help="comma-separated MiB sizes of customers.xml (default 200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1,
                        help="(baseline, run) pairs, back to back; the fastest of each is kept")
    parser.add_argument("--out-dir", type=Path, default=HERE / "out")
    parser.add_argument("--profile", action="store_true",
                        help="afterwards, profile run_batch in-process on the first size (cProfile)")
    parser.add_argument("--top", type=int, default=25, help="functions shown by --profile (default 25)")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    masterdata = args.out_dir / "masterdata.xml"
    if not masterdata.exists():
        generate.main(["masterdata", str(masterdata)])
    sizes = [int(s) for s in args.sizes.split(",")]
    packages = {mib: _package(args.out_dir, mib, args.seed) for mib in sizes}
    print(_load())
    print(HEADER)
    for mib in sizes:
        package = packages[mib]
        size = _data_bytes(package) / MIB
        measured = pairs(args.repeat, partial(measure, [sys.executable, "-c", BASELINE, str(package)]),
                         partial(_run_once, package, masterdata, args.out_dir))
        print(result_line(mib, size, measured), flush=True)
    print(_load())
    if args.profile:
        profile(packages[sizes[0]], masterdata, args.out_dir, args.top)


if __name__ == "__main__":
    main()
