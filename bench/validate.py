"""Benchmark: ``exchange validate`` on big CustomerExports against lxml's own streaming validation.

    python bench/validate.py [--sizes 100,1000] [--seed 1] [--repeat 1] [--out-dir bench/out]

For each size (MiB) a CustomerExport is generated with ``bench/generate.py``
into ``--out-dir`` (git-ignored ``bench/out/`` by default; a file generated
earlier by the same generator source, seed and size is reused, ``--regenerate``
forces a new one, ``--delete`` removes the files at the end). Each variant then
runs in its own subprocess, reaped with ``os.wait4`` by a tiny spawner
process so that peak RSS (``ru_maxrss``) belongs to that run alone:

bare
    ``etree.iterparse(f, events=("end",))`` and ``clear()`` per record, no
    schema: the parsing floor, for orientation.
(a) lxml full
    the same with ``schema=etree.XMLSchema(xsd/cee-export.xsd)``, identity
    constraints (``xs:unique``) included.
(b) lxml streaming
    the same with ``exchange.xml.schemas.schema("cee-export.xsd", streaming=True)``
    (identity constraints removed).
(a'), (b') (only with ``--variants``)
    (a) and (b) with ``tag=`` filtering to the records, so that Python sees
    only the records' end events, like exchange's fast path.
(c) exchange validate
    ``python -m exchange validate FILE``, the real command line.

"Per record" means: on the end event of a ``Customer`` (and ``DeletedCustomer``)
the element is cleared and its already-processed preceding siblings are
deleted from the root, the usual flat-memory idiom and what
``exchange.xml.validate`` does. ``--clear-only`` does only ``elem.clear()``
(empty record shells then stay attached to the root and memory grows with
the record count).

A memory analysis follows (``--no-analysis`` skips it): two more bare runs,
iterparse with ``tag=`` filtering like exchange's fast path, without and with
a Python set of all customer numbers (as :class:`exchange.xml.checks._UniqueKeys`
keeps), to put a number on what that set costs.

Times are for the whole subprocess (interpreter start, imports and schema
compilation included; the startup of ``python -m exchange`` is measured
separately and printed): wall-clock seconds and CPU (user + system) seconds.
Every variant is single-threaded, so on an idle machine the two agree; on a
shared one CPU time is the steadier measure, so throughput (MiB/s, MiB = 2**20
bytes) is given per CPU second and per wall second, and with ``--repeat`` the
run with the least CPU time is kept. Before each run the driver waits (up to
``--quiet-timeout`` seconds) until other processes use fewer than
``--max-other`` cores, and reports how many they used during the run.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
XSD = ROOT / "xsd" / "cee-export.xsd"
NS = "urn:cee-mobile:cee-export:v1"
CUSTOMER = f"{{{NS}}}Customer"
DELETED = f"{{{NS}}}DeletedCustomer"
EXPORT = f"{{{NS}}}CustomerExport"
MIB = 1 << 20

VARIANTS = {
    "bare": "bare iterparse + clear (no schema)",
    "full": "(a) lxml iterparse, full XSD",
    "streaming": "(b) lxml iterparse, streaming XSD",
    "exchange": "(c) exchange validate (CLI)",
    # not run by default: the baselines with tag= filtering, as exchange's fast path does
    "full-tag": "(a') lxml full XSD, tag=records",
    "streaming-tag": "(b') lxml streaming XSD, tag=records",
}
DEFAULT_VARIANTS = ("bare", "full", "streaming", "exchange")
ANALYSIS = {
    "tagged": "iterparse tag=records + clear, no XSD",
    "tagged-set": "  same + set of customer numbers",
}


# --------------------------------------------------------------------------
# Workers: run in a child process, print one JSON line.


def _worker(variant: str, path: str, clear_only: bool) -> None:
    from lxml import etree

    started = time.perf_counter()
    schema = None
    if variant in ("full", "full-tag"):
        schema = etree.XMLSchema(etree.parse(str(XSD)))
    elif variant in ("streaming", "streaming-tag"):
        from exchange.xml.schemas import schema as exchange_schema

        schema = exchange_schema("cee-export.xsd", streaming=True)
    records = 0
    valid = True
    error = None
    numbers: set[str] | None = set() if variant == "tagged-set" else None
    loop_started = time.perf_counter()
    with open(path, "rb") as f:
        kwargs = {"events": ("end",)}
        if schema is not None:
            kwargs["schema"] = schema
        if variant in ("tagged", "tagged-set", "full-tag", "streaming-tag"):
            kwargs["tag"] = (CUSTOMER, DELETED)
        try:
            for _event, elem in etree.iterparse(f, **kwargs):
                tag = elem.tag
                if tag == CUSTOMER or tag == DELETED:
                    records += 1
                    if numbers is not None:
                        numbers.add(elem.get("number"))
                    elem.clear()
                    if not clear_only:
                        while elem.getprevious() is not None:
                            del elem.getparent()[0]
        except etree.XMLSyntaxError as e:
            valid = False
            error = str(e)[:300]
    result = {
        "records": records,
        "valid": valid,
        "error": error,
        "setup_seconds": loop_started - started,
        "loop_seconds": time.perf_counter() - loop_started,
    }
    if numbers is not None:
        result["set_len"] = len(numbers)
        result["set_table_bytes"] = sys.getsizeof(numbers)
        result["set_str_bytes"] = sum(sys.getsizeof(s) for s in numbers)
    print(json.dumps(result))


# --------------------------------------------------------------------------
# The driver.


@dataclass
class Run:
    variant: str
    wall: float
    cpu: float
    maxrss_kib: int
    returncode: int
    stdout: str
    stderr: str
    info: dict
    other_cores: float = 0.0  # average CPU cores used by other processes during the run

    @property
    def rss_mib(self) -> float:
        return self.maxrss_kib / 1024  # Linux: ru_maxrss is in KiB


# Linux carries a process's peak RSS across exec: a child forked (or vforked)
# straight from this driver would report at least the driver's own peak
# (it holds lxml and ran the generator). So children are started by this
# tiny helper (``python -S``, about 8 MiB), which spawns the command, reaps it
# with wait4 and writes wall time and rusage to a file, like /usr/bin/time.
_SPAWNER = """
import os, sys, time
report, argv = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.posix_spawn(argv[0], argv, os.environ)
_, status, ru = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(report, "w") as f:
    f.write(repr((wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss, os.waitstatus_to_exitcode(status))))
"""

_HZ = os.sysconf("SC_CLK_TCK")


def busy_seconds() -> float:
    """CPU seconds spent by the whole machine (all cores) since boot, from /proc/stat."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / _HZ


def wait_for_quiet(max_other: float, timeout: float) -> float:
    """Wait (up to ``timeout`` s) until other processes use less than ``max_other`` cores.

    Returns the load last seen. The benchmark is single-threaded: on a
    shared machine another busy process slows it down (on 2 cores, two
    others already take a core from it).
    """
    deadline = time.monotonic() + timeout
    told = False
    while True:
        before = busy_seconds()
        time.sleep(1.0)
        load = busy_seconds() - before
        if load < max_other or time.monotonic() >= deadline:
            if told:
                print(f" ({'quiet' if load < max_other else 'still busy, running anyway'}: {load:.2f} cores)",
                      flush=True)
            return load
        if not told:
            print(f"  waiting for other processes to calm down ({load:.2f} cores busy) ...", end="", flush=True)
            told = True


def run_child(argv: list[str], variant: str) -> Run:
    """Run ``argv``; wall time, CPU time and peak RSS of that child alone (wait4)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile("r", suffix=".rusage") as report:
        busy_before = busy_seconds()
        started = time.perf_counter()
        subprocess.run([sys.executable, "-S", "-c", _SPAWNER, report.name, *argv],
                       stdout=out, stderr=err, cwd=ROOT, check=True)
        elapsed = time.perf_counter() - started
        busy = busy_seconds() - busy_before
        wall, cpu, maxrss, returncode = ast.literal_eval(report.read())
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode("utf-8", "replace")
        stderr = err.read().decode("utf-8", "replace")
    info: dict = {}
    if (variant in VARIANTS or variant in ANALYSIS) and variant != "exchange" and returncode == 0:
        info = json.loads(stdout.strip().splitlines()[-1])
    other = max(0.0, busy - cpu) / elapsed if elapsed > 0 else 0.0
    return Run(variant, wall, cpu, maxrss, returncode, stdout, stderr, info, other)


def variant_argv(variant: str, path: Path, clear_only: bool) -> list[str]:
    if variant == "exchange":
        return [sys.executable, "-m", "exchange", "validate", str(path)]
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, str(path)]
    if clear_only:
        argv.append("--clear-only")
    return argv


def verdict(run: Run, expected_records: int) -> str:
    if run.variant == "exchange":
        ok = run.returncode == 0 and f"valid (CustomerExport, {expected_records} records)" in run.stdout
        if ok:
            return "valid"
        tail = (run.stdout.strip().splitlines() or [""])[-1]
        return f"UNEXPECTED rc={run.returncode}: {tail[:120]} {run.stderr.strip()[-200:]}"
    if run.returncode != 0:
        return f"CRASHED rc={run.returncode}: {run.stderr.strip()[-300:]}"
    if not run.info.get("valid"):
        return f"INVALID: {run.info.get('error')}"
    if run.info.get("records") != expected_records:
        return f"records {run.info.get('records')} != {expected_records}"
    return "valid"


def generator_fingerprint() -> str:
    return hashlib.sha256((HERE / "generate.py").read_bytes()).hexdigest()[:10]


def ensure_file(out_dir: Path, mb: float, seed: int, regenerate: bool) -> tuple[Path, dict, float | None]:
    """The export of ``mb`` MiB (generated or reused) and its generator stats."""
    sys.path.insert(0, str(HERE))
    import generate  # bench/ is not a package

    label = f"{mb:g}".replace(".", "_")
    path = out_dir / f"customers_{label}MiB_seed{seed}_{generator_fingerprint()}.xml"
    meta = path.with_name(path.name + ".json")
    if path.exists() and meta.exists() and not regenerate:
        return path, json.loads(meta.read_text()), None
    print(f"generating {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} ...", flush=True)
    started = time.perf_counter()
    stats = generate.write_customer_export(path, int(mb * MIB), seed=seed)
    took = time.perf_counter() - started
    info = {**stats.__dict__, "records": stats.records}
    meta.write_text(json.dumps(info))
    return path, info, took


def code_fingerprint() -> tuple[str, dict[str, str]]:
    """What is being measured: the commit, and hashes of exchange/**.py and xsd/*.xsd as they are on disk.

    The tree may be edited while the benchmark runs; comparing the hashes at
    the start and at the end tells whether every run measured the same code.
    """
    files: dict[str, str] = {}
    for path in sorted([*(ROOT / "exchange").rglob("*.py"), *(ROOT / "xsd").glob("*.xsd")]):
        if "__pycache__" not in path.parts:
            files[str(path.relative_to(ROOT))] = hashlib.sha256(path.read_bytes()).hexdigest()
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:12]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "exchange", "xsd"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout.split("\n")
        dirty = [line[3:] for line in dirty if line.strip()]
        commit = f"commit {head}" + (f" + uncommitted changes ({', '.join(dirty)})" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        commit = "not a git checkout"
    return f"{commit}; code hash {digest}", files


def warm(path: Path) -> None:
    """Read the file once so that every variant finds it in the page cache."""
    with open(path, "rb", buffering=0) as f:
        while f.read(8 * MIB):
            pass


def fmt_row(cols: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) if i < 2 or i == len(cols) - 1 else c.rjust(w)
                     for i, (c, w) in enumerate(zip(cols, widths))).rstrip()


def progress(label: str, run: Run, size: int, expected_records: int) -> None:
    print(f"  {label:<38} wall {run.wall:7.2f} s  CPU {run.cpu:7.2f} s  {size / MIB / run.cpu:6.1f} MiB/s  "
          f"{run.rss_mib:7.1f} MiB  others {run.other_cores:.2f} cores  {verdict(run, expected_records)}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000", help="file sizes in MiB, comma-separated (default 100,1000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1,
                        help="runs per variant (default 1); the one with the least CPU time is reported")
    parser.add_argument("--out-dir", type=Path, default=HERE / "out")
    parser.add_argument("--variants", default=",".join(DEFAULT_VARIANTS),
                        help=f"comma-separated, from {','.join(VARIANTS)} (default {','.join(DEFAULT_VARIANTS)})")
    parser.add_argument("--regenerate", action="store_true", help="generate the files even if present")
    parser.add_argument("--delete", action="store_true", help="delete the generated files at the end")
    parser.add_argument("--no-analysis", action="store_true", help="skip the memory analysis runs")
    parser.add_argument("--clear-only", action="store_true",
                        help="baselines only clear() each record, without deleting preceding siblings")
    parser.add_argument("--max-other", type=float, default=max(0.5, (os.cpu_count() or 1) - 1.0),
                        help="before each run, wait until other processes use fewer cores than this "
                             "(default: all cores but one, at least 0.5)")
    parser.add_argument("--quiet-timeout", type=float, default=300,
                        help="how long to wait for that, in seconds (default 300; 0: do not wait)")
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        _worker(args.worker[0], args.worker[1], args.clear_only)
        return 0

    sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    for v in variants:
        if v not in VARIANTS:
            parser.error(f"unknown variant {v!r}")
    args.out_dir.mkdir(parents=True, exist_ok=True)

    from lxml import etree

    print(f"python {sys.version.split()[0]}, lxml {'.'.join(map(str, etree.LXML_VERSION))}, "
          f"libxml2 {'.'.join(map(str, etree.LIBXML_VERSION))}, {os.cpu_count()} CPUs. "
          f"Baselines: {'clear() only' if args.clear_only else 'clear() + delete preceding siblings'} "
          f"per record. Best of {args.repeat} by CPU time.")
    code_at_start, files_at_start = code_fingerprint()
    print(f"measuring {code_at_start}")
    startup = run_child([sys.executable, "-m", "exchange", "--version"], "startup")
    print(f"startup of `python -m exchange --version`: wall {startup.wall:.2f} s, CPU {startup.cpu:.2f} s, "
          f"peak RSS {startup.rss_mib:.1f} MiB")

    def measure(variant: str, label: str, path: Path, size: int, records: int) -> Run:
        if args.quiet_timeout > 0:
            wait_for_quiet(args.max_other, args.quiet_timeout)
        run = run_child(variant_argv(variant, path, args.clear_only), variant)
        progress(label, run, size, records)
        return run

    def best_of(runs: list[Run]) -> Run:
        best = min(runs, key=lambda r: r.cpu)
        best.maxrss_kib = max(r.maxrss_kib for r in runs)  # peak RSS: the highest seen over the repeats
        return best

    results: list[tuple[Path, dict, dict[str, Run], dict[str, Run]]] = []
    for mb in sizes:
        path, info, took = ensure_file(args.out_dir, mb, args.seed, args.regenerate)
        size = path.stat().st_size
        gen = f"generated in {took:.1f} s ({size / MIB / took:.1f} MiB/s)" if took else "reused"
        print(f"{path.name}: {size} bytes ({size / MIB:.1f} MiB), {info['customers']} customers "
              f"({info['inactive']} inactive), {info['deleted']} deleted, {info['contact_persons']} contact "
              f"persons, {info['records']} records; {gen}", flush=True)
        warm(path)
        runs: dict[str, list[Run]] = {v: [] for v in variants}
        extra: dict[str, list[Run]] = {v: [] for v in ANALYSIS} if not args.no_analysis else {}
        for _ in range(args.repeat):
            for v in variants:
                runs[v].append(measure(v, VARIANTS[v], path, size, info["records"]))
            for v, done in extra.items():
                done.append(measure(v, ANALYSIS[v], path, size, info["records"]))
        results.append((path, info, {v: best_of(rs) for v, rs in runs.items()},
                        {v: best_of(rs) for v, rs in extra.items()}))

    # -- the table -------------------------------------------------------------
    print()
    print("MiB = 2**20 bytes. wall = the whole subprocess (interpreter start, imports, schema compilation "
          "included); CPU = its user+system time; MiB/s = size / CPU s (single-threaded: equal to size / wall "
          "on an idle machine); others = cores used by other processes meanwhile.")
    widths = [8, 36, 7, 7, 9, 9, 12, 6, 7]
    header = ["file", "variant", "wall s", "CPU s", "MiB/s CPU", "MiB/s wall", "peak RSS MiB", "others", "verdict"]
    print(fmt_row(header, widths))
    print("-" * (sum(widths) + 2 * (len(widths) - 1)))
    for path, info, best, best_extra in results:
        size = path.stat().st_size
        first = True
        for v in variants:
            r = best[v]
            label = f"{size / MIB:.0f} MiB" if first else ""
            first = False
            print(fmt_row([label, VARIANTS[v], f"{r.wall:.2f}", f"{r.cpu:.2f}", f"{size / MIB / r.cpu:.1f}",
                           f"{size / MIB / r.wall:.1f}", f"{r.rss_mib:.1f}", f"{r.other_cores:.2f}",
                           verdict(r, info["records"])], widths))
        c = best.get("exchange")
        for base, name in (("full", "(a)"), ("streaming", "(b)"), ("full-tag", "(a')"), ("streaming-tag", "(b')")):
            b = best.get(base)
            if c and b:
                print(fmt_row(["", f"ratio (c)/{name}", f"x{c.wall / b.wall:.2f}", f"x{c.cpu / b.cpu:.2f}",
                               f"{100 * b.cpu / c.cpu:.0f} %", f"{100 * b.wall / c.wall:.0f} %",
                               f"x{c.rss_mib / b.rss_mib:.2f}", "", ""], widths))
        print()
    if "exchange" in variants and len(variants) > 1:
        print("ratio rows: time x (>1: (c) slower); throughput of (c) in % of the baseline's; peak RSS x")
        print()

    if not args.no_analysis:
        print("Memory: what the set of customer numbers costs (iterparse with tag= and clear, like exchange's fast path)")
        for path, info, best, best_extra in results:
            size = path.stat().st_size
            t, s = best_extra.get("tagged"), best_extra.get("tagged-set")
            if not (t and s and s.info):
                continue
            n = s.info["set_len"]
            table, strs = s.info["set_table_bytes"], s.info["set_str_bytes"]
            delta = s.rss_mib - t.rss_mib
            print(f"  {size / MIB:.0f} MiB file, {n} numbers: peak RSS {t.rss_mib:.1f} MiB without the set, "
                  f"{s.rss_mib:.1f} MiB with it: +{delta:.1f} MiB ({delta * MIB / n:.0f} bytes per number); "
                  f"sys.getsizeof: set table {table / MIB:.1f} MiB + strings {strs / MIB:.1f} MiB "
                  f"= {(table + strs) / MIB:.1f} MiB")
            c, b = best.get("exchange"), best.get("streaming")
            if c and b:
                print(f"    exchange validate {c.rss_mib:.1f} MiB vs (b) lxml streaming {b.rss_mib:.1f} MiB: "
                      f"+{c.rss_mib - b.rss_mib:.1f} MiB")
            line = (f"    tag= filtering alone (no XSD, no set): CPU {t.cpu:.2f} s, {size / MIB / t.cpu:.1f} MiB/s; "
                    f"the set adds {s.cpu - t.cpu:+.2f} s CPU")
            if "bare" in best:
                line += f"; bare iterparse of every element: CPU {best['bare'].cpu:.2f} s"
            print(line)

    code_at_end, files_at_end = code_fingerprint()
    changed = sorted(f for f in files_at_start.keys() | files_at_end.keys()
                     if files_at_start.get(f) != files_at_end.get(f))
    if changed:
        print(f"\nWARNING: the code changed while the benchmark ran ({code_at_start} at the start, "
              f"{code_at_end} at the end): {', '.join(changed)}. Runs may have measured different versions "
              f"if `exchange validate` imports any of these.")

    if args.delete:
        for path, *_ in results:
            path.unlink(missing_ok=True)
            path.with_name(path.name + ".json").unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
