"""Benchmark: the precise report of documents with many errors, against lxml finding the same errors.

    python bench/errors.py [--counts 2500,10000,40000] [--shapes attributes,...] [--repeat 3]
                           [--timeout 300] [--code DIR]

For each shape and each N a document is written into a temporary folder:

attributes
    the root's start tag carries N attributes the schema does not allow,
    all on one line.
attribute-lines
    the same, one attribute a line.
elements
    N ``CommunicationMethod`` elements, each with ``displayInMobile="maybe"``
    (not a boolean), one a line.
elements-line
    the same, all on one line.
late-line
    N valid ``CommunicationMethod`` elements, then 1,000 with that error, all
    on one line: the errors are few, but far into a long line.

Each document is then timed twice, each time in a child process of its own,
back to back:

baseline
    lxml alone: the document fed in blocks of 64 KiB to an ``XMLParser`` with
    the streaming schema, and the errors it logged counted at the end. This is
    what finding the errors costs, without placing them.
report
    :func:`exchange.xml.validate.validate_document`: the fast path, then the
    precise report (every error placed, 1,000 listed, the rest counted), which
    is what ``exchange validate`` does with one file.

The time is the CPU time of the timed call only (interpreter start, imports
and schema compilation excluded), the least of ``--repeat`` runs; the ratio
is report / baseline. Both grow linearly with N when the report is linear
in the input, so the ratio stays flat as N grows; a report quadratic in N
shows as a ratio that grows about as fast as N. A run longer than
``--timeout`` seconds is stopped and shown as ``>``.

``--code DIR`` measures the ``exchange`` package of another checkout (for
instance an older commit extracted with ``git archive``), to compare before
and after in the same run conditions.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BLOCK = 1 << 16
CEE_EXPORT = "urn:cee-mobile:cee-export:v1"
HEAD = (f'xmlns="{CEE_EXPORT}" exportId="E-1" salesChannel="MOBILE-PL" '
        'createdAt="2026-11-27T22:00:00Z" changedSince="anytime"')
SHAPES = ("attributes", "attribute-lines", "elements", "elements-line", "late-line")
LATE = 1000  # the errors of late-line
VARIANTS = ("baseline", "report")


def document(shape: str, count: int) -> bytes:
    """A MasterdataExport for ``shape`` and N = ``count``; see :func:`errors_in`."""
    decl = '<?xml version="1.0" encoding="UTF-8"?>\n'
    if shape in ("attributes", "attribute-lines"):
        separator = " " if shape == "attributes" else "\n  "
        attributes = separator.join(f'bad{i}="x"' for i in range(count))
        return f"{decl}<MasterdataExport {HEAD}{separator}{attributes}>\n</MasterdataExport>\n".encode()
    end = "\n" if shape == "elements" else ""
    valid = count if shape == "late-line" else 0
    body = "".join(f'  <CommunicationMethod code="V{i}" displayInMobile="true"/>{end}' for i in range(valid)) + \
        "".join(f'  <CommunicationMethod code="M{i}" displayInMobile="maybe"/>{end}'
                for i in range(errors_in(shape, count)))
    return f"{decl}<MasterdataExport {HEAD}>{end}{body}</MasterdataExport>\n".encode()


def errors_in(shape: str, count: int) -> int:
    """The errors in the document of ``shape`` for N = ``count``."""
    return LATE if shape == "late-line" else count


# --------------------------------------------------------------------------
# The worker: runs in a child process, prints one JSON line.


def _worker(variant: str, path: str, code: str) -> None:
    sys.path.insert(0, code)
    from lxml import etree

    from exchange.xml.schemas import kind_for, schema_for
    from exchange.xml.validate import validate_document

    kind = kind_for(f"{{{CEE_EXPORT}}}MasterdataExport")
    schema = schema_for(kind, streaming=True)  # compiled before the clock starts, for both variants
    started, cpu_started = time.perf_counter(), time.process_time()
    if variant == "baseline":
        parser = etree.XMLParser(schema=schema, resolve_entities=False, no_network=True)
        with open(path, "rb") as f:
            while block := f.read(BLOCK):
                parser.feed(block)
        try:
            parser.close()
        except etree.XMLSyntaxError:
            pass  # an invalid document: the errors are in the log
        count = len(parser.feed_error_log)
        listed = 0
    else:
        validation = validate_document(lambda: open(path, "rb"))
        count, listed = validation.report.count, len(validation.report.problems)
    cpu, wall = time.process_time() - cpu_started, time.perf_counter() - started
    import exchange

    print(json.dumps({"cpu": cpu, "wall": wall, "count": count, "listed": listed,
                      "exchange": str(Path(exchange.__file__).parent)}))


# --------------------------------------------------------------------------
# The driver.


def run(variant: str, path: Path, code: Path, timeout: float) -> dict | None:
    """One timed run in a child process; None when it took longer than ``timeout`` seconds."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--worker", variant, str(path), "--code", str(code)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(code), os.environ.get("PYTHONPATH")]))}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    except subprocess.TimeoutExpired:  # subprocess.run kills the child it started
        return None
    if done.returncode != 0:
        raise SystemExit(f"{variant} on {path.name} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def verdict(result: dict | None, variant: str, errors: int) -> str:
    if result is None:
        return "stopped"
    listed = min(errors, 1000) if variant == "report" else 0
    if result["count"] != errors or result["listed"] != listed:
        return f"UNEXPECTED: {result['count']} errors, {result['listed']} listed"
    return "ok"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="2500,10000,40000",
                        help="values of N, comma-separated (default 2500,10000,40000)")
    parser.add_argument("--shapes", default=",".join(SHAPES),
                        help=f"comma-separated, from {','.join(SHAPES)} (default: all)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="(baseline, report) pairs per document, back to back; the least CPU time of each "
                             "is kept (default 3)")
    parser.add_argument("--timeout", type=float, default=300,
                        help="stop a run after this many seconds (default 300)")
    parser.add_argument("--code", type=Path, default=ROOT,
                        help="the checkout whose exchange package is measured (default: this one)")
    parser.add_argument("--worker", nargs=2, metavar=("VARIANT", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        _worker(args.worker[0], args.worker[1], str(args.code))
        return 0

    counts = [int(c) for c in args.counts.split(",") if c.strip()]
    shapes = [s.strip() for s in args.shapes.split(",") if s.strip()]
    for shape in shapes:
        if shape not in SHAPES:
            parser.error(f"unknown shape {shape!r}")
    code = args.code.resolve()
    try:
        head = subprocess.run(["git", "-C", str(code), "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(code), "status", "--porcelain", "--", "exchange"],
                               capture_output=True, text=True, check=True).stdout.strip()
        what = f"commit {head}" + (" + uncommitted changes in exchange/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        what = "not a git checkout"
    print(f"measuring {code}/exchange ({what}); CPU seconds of the timed call, least of {args.repeat}; "
          f"timeout {args.timeout:g} s", flush=True)
    header = f"{'shape':<16} {'N':>7} {'KiB':>7} {'baseline s':>11} {'report s':>10} {'ratio':>8}  verdict"
    print(header)
    print("-" * len(header))
    ratios: dict[str, list[tuple[int, float | None]]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-errors-") as tmp:
        for shape in shapes:
            for count in counts:
                path = Path(tmp) / f"{shape}-{count}.xml"
                path.write_bytes(document(shape, count))
                best: dict[str, dict | None] = {}
                for _ in range(args.repeat):
                    for variant in VARIANTS:
                        if variant in best and best[variant] is None:
                            continue  # stopped once: once is enough
                        result = run(variant, path, code, args.timeout)
                        if result is None or variant not in best or result["cpu"] < best[variant]["cpu"]:
                            best[variant] = result
                base, report = best["baseline"], best["report"]
                base_s = f"{base['cpu']:.3f}" if base else f">{args.timeout:g}"
                report_s = f"{report['cpu']:.3f}" if report else f">{args.timeout:g}"
                ratio = report["cpu"] / base["cpu"] if base and report else None
                ratio_s = f"{ratio:.1f}" if ratio is not None else (f">{args.timeout / base['cpu']:.0f}" if base
                                                                    else "?")
                verdicts = {v: verdict(best[v], v, errors_in(shape, count)) for v in VARIANTS}
                shown = "ok" if set(verdicts.values()) == {"ok"} else "; ".join(f"{v}: {t}"
                                                                                 for v, t in verdicts.items())
                print(f"{shape:<16} {count:>7} {path.stat().st_size / 1024:>7.0f} {base_s:>11} {report_s:>10} "
                      f"{ratio_s:>8}  {shown}", flush=True)
                ratios.setdefault(shape, []).append((count, ratio))
                path.unlink()
    print()
    print("growth of the ratio from the smallest N to the largest (1.0: linear; k x N gives about k x for a "
          "report quadratic in N):")
    for shape, measured in ratios.items():
        (low_n, low), (high_n, high) = measured[0], measured[-1]
        if low is not None and high is not None:
            print(f"  {shape:<16} x{high / low:.2f} for x{high_n / low_n:g} N")
        else:
            print(f"  {shape:<16} not measured: a run was stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
