"""F2 under SIGKILL: a crash at any moment loses no input and duplicates no output.

One batch of CEE exports (tests/crash_util.py: masterdata first, customer
exports whose contact persons gain and lose Sales, are removed, whose
customers go inactive or are deleted; full exports of several MB; one
export with no records; one invalid file; one file resent under another
name) is processed twice:

* reference: a fresh workspace, ``exchange run --settle 0`` once, to the end;
* crash: another fresh workspace with the same files; ``exchange run`` is
  started in a process group of its own and the group is SIGKILLed after a
  random (seeded) delay, over and over, until at least ``MIN_KILLS`` kills
  have hit a run that was still running and kills have landed in startup,
  mid-transform and between commit and archive; then it runs to the end,
  and once more.

Then the crash workspace must hold exactly what the reference holds: every
input archived (or rejected) exactly once and recorded once in the ledger's
files table (one row with an output per valid input, in F3 order; the
resent file once as a duplicate, F2; the invalid file once as rejected),
packages 1..n without gap or leftover temporary file, the same package
bytes (the manifest's createdAt aside), the same channel state
(sent_persons, occupations, methods, sequences) and the same rule decisions
(events, compared as a multiset by file name). No process of any run may
outlive its kill or the test. Everything wrong is collected and reported
together, with the kills that left work for recovery; the run of every
attempt is in ``crash-report.txt`` and ``logs-crash/`` under the test's
tmp_path. Reported but not failed: ledger rows whose ``archived_as`` does
not name the input, temporary files outside outbox/mobile.

Four kinds of kill delay, drawn at random (seeded): ``startup`` (within the
time a run takes to reach its first file), ``timed`` (after startup, within
twice the share of the remaining work that falls to each kill still to come,
from the reference run's timings scaled by the speed the crash runs show),
``publish`` (0-4 ms after a new package appears in outbox/mobile) and
``archive`` (0-1 ms after an input is moved into inbox/archive/ or
inbox/rejected/; drawn mostly, and aimed at that file, when the resent or
the invalid file is among the next three), to hit the steps between commit, rename, archive and their ledger
marks. Once every input is done, kills land in startup and recovery
(``idle``). The delays are the only sleeps; every other wait polls with a
deadline.

The test runs twice: with each export processed whole, and with every
customer export cut in two (``EXCHANGE_SPLIT_MIN_BYTES=1``, exchange.halves),
so that kills also land while the second half's child works.

Environment: ``EXCHANGE_CRASH_SEED`` (default 20261128),
``EXCHANGE_CRASH_KILLS`` (default 80, at least 50 make sense).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import time
from collections import Counter
from pathlib import Path

import crash_util as cu
import pytest
from workspace_util import cut_small_files

SEED = int(os.environ.get("EXCHANGE_CRASH_SEED", "20261128"))
MIN_KILLS = int(os.environ.get("EXCHANGE_CRASH_KILLS", "80"))
MAX_KILLS = 3 * MIN_KILLS  # keep going past MIN_KILLS only to reach every phase
LOOP_BUDGET_S = 330.0  # the kill loop stops here, whatever it has reached
RUN_DEADLINE_S = 180.0  # one run to the end

PHASE_GROUPS = {
    "startup": ("startup (before the run was recorded)", cu.NO_PACKAGE_IN_HAND),
    "mid-transform": ("mid-transform (before commit)",),
    "commit/rename/archive": cu.POST_COMMIT + ("duplicate archived, before its ledger row",
                                               "rejected moved, before its ledger row"),
}


def _copy_inputs(source: Path, workspace: Path, inputs) -> None:
    inbox = workspace / "inbox" / "cee"
    for item in inputs:
        shutil.copy2(source / item.name, inbox / item.name)


def _run_observed(runner: cu.Runner, label: str) -> tuple[int, str, float, dict[str, float]]:
    """Run to the end, noting when each package, and the first temporary file, appears:
    (status, stderr, seconds, {package or "first temp": seconds after the start})."""
    outbox = runner.workspace / "outbox" / "mobile"
    proc, err = runner.start(label)
    started = time.monotonic()
    seen: dict[str, float] = {}
    deadline = started + RUN_DEADLINE_S
    while proc.poll() is None:
        if time.monotonic() > deadline:
            runner.kill_group(proc)
            raise AssertionError(f"{label}: exchange run did not finish within {RUN_DEADLINE_S:.0f} s")
        try:
            names = os.listdir(outbox)
        except FileNotFoundError:
            names = []
        now = time.monotonic() - started
        for name in names:
            if cu.PACKAGE_RE.match(name) and name not in seen:
                seen[name] = now
            elif name.startswith(".") and "first temp" not in seen:
                seen["first temp"] = now
        time.sleep(cu.POLL)
    took = time.monotonic() - started
    alive = cu.wait_group_gone(proc.pid)
    assert not alive, f"{label}: processes outlive the run: {alive}"
    return proc.returncode, err.read_text("utf-8", "replace"), took, seen


def _check_workspace(ws: Path, inputs, problems: list[str]) -> cu.Ledger:
    """What any finished workspace must hold for this batch (F1, F2, F3), on its own.

    Appends what is wrong to ``problems``, so that one failure reports all of it.
    """
    valid = [i for i in inputs if i.valid and i.duplicate_of is None]
    order = [i.name for i in cu.processing_order(valid)]
    duplicate = next(i for i in inputs if i.duplicate_of)
    invalid = next(i for i in inputs if not i.valid)
    by_name = {i.name: i for i in inputs}

    def check(ok: bool, message: str) -> bool:
        if not ok:
            problems.append(message)
        return ok

    check(cu.listing(ws / "inbox" / "cee") == [], f"inputs left in inbox/cee: {cu.listing(ws / 'inbox' / 'cee')}")
    check(cu.listing(ws / "outbox" / "cee") == [], f"unexpected files in outbox/cee: {cu.listing(ws / 'outbox' / 'cee')}")

    # every input archived or rejected exactly once, under its own name, with its own content
    archived = cu.listing(ws / "inbox" / "archive")
    archived_names = Counter(Path(rel).name for rel in archived)
    expected_names = Counter([i.name for i in valid] + [duplicate.name])
    check(archived_names == expected_names,
          f"archive differs: missing {sorted((expected_names - archived_names).elements())}, "
          f"extra {sorted((archived_names - expected_names).elements())}")
    for rel in archived:
        path = ws / "inbox" / "archive" / rel
        check(path.name in by_name and cu.sha256_path(path) == by_name[path.name].sha256,
              f"archive: {rel} is not an input or changed content")
    rejected = cu.listing(ws / "inbox" / "rejected")
    if check(rejected == sorted([invalid.name, invalid.name + ".error.txt"]), f"rejected folder holds {rejected}"):
        check(cu.sha256_path(ws / "inbox" / "rejected" / invalid.name) == invalid.sha256, "rejected file changed")
        report = (ws / "inbox" / "rejected" / (invalid.name + ".error.txt")).read_text("utf-8")
        check("not a code!" in report, f"the error report does not name the error:\n{report}")

    # outbox/mobile: packages 1..n, nothing else (no temporary file)
    n = len(valid)
    outbox_entries = sorted(os.listdir(ws / "outbox" / "mobile"))
    expected_packages = [f"MOB_{cu.CHANNEL}_{k:08d}.zip" for k in range(1, n + 1)]
    check(outbox_entries == expected_packages,
          f"outbox/mobile: missing {sorted(set(expected_packages) - set(outbox_entries))}, "
          f"extra {sorted(set(outbox_entries) - set(expected_packages))} (expected packages 1..{n}, nothing else)")

    # the ledger: each valid input exactly one output, in F3 order; the duplicate and the invalid file once
    ledger = cu.read_ledger(ws)
    rows_by_sha: dict[str, list] = {}
    for row in ledger.files:
        rows_by_sha.setdefault(row["sha256"], []).append(row)
    for position, name in enumerate(order, start=1):
        outputs = [r for r in rows_by_sha.get(by_name[name].sha256, []) if r["output"] is not None]
        if check(len(outputs) == 1, f"ledger: {name} has {len(outputs)} rows with an output: {outputs}"):
            row = outputs[0]
            check((row["name"], row["state"], row["sequence"], row["output"], row["temp"]) ==
                  (name, "archived", position, expected_packages[position - 1], None),
                  f"ledger: {name}: row {row}, expected archived as package {position} (F3 order)")
    dup_rows = [r for r in ledger.files if r["name"] == duplicate.name]
    check([(r["state"], r["output"]) for r in dup_rows] == [("duplicate", None)],
          f"ledger: the resent file {duplicate.name} (archived: "
          f"{any(Path(rel).name == duplicate.name for rel in archived)}) is not recorded once as a duplicate "
          f"(F2): rows {dup_rows}")
    bad_rows = [r for r in ledger.files if r["name"] == invalid.name]
    check([(r["state"], r["output"]) for r in bad_rows] == [("rejected", None)],
          f"ledger: the invalid file {invalid.name} (in inbox/rejected: {invalid.name in rejected}) is not "
          f"recorded once as rejected: rows {bad_rows}")
    check(len(ledger.files) == len(inputs),
          f"ledger: {len(ledger.files)} file rows for {len(inputs)} inputs: {sorted(r['name'] for r in ledger.files)}")
    check(ledger.sequences == {(cu.CHANNEL, "to-mobile", n)}, f"ledger: sequences {ledger.sequences}, expected {n}")
    check(not any(e[0] == invalid.name for e in ledger.events),
          "ledger: decisions of the invalid file were kept (F1: all or nothing)")

    # each package names its input
    for position, name in enumerate(order, start=1):
        path = ws / "outbox" / "mobile" / expected_packages[position - 1]
        if path.exists():
            content = cu.read_package(path)
            check(f'sha256="{by_name[name].sha256}"'.encode() in content.manifest,
                  f"package {position} does not name its source {name}")
    return ledger


def _workload_is_stateful(ledger: cu.Ledger) -> None:
    """The batch exercises the channel state, or the comparison would prove little."""
    outcomes = Counter((e[1], e[3]) for e in ledger.events)
    for wanted in (("R1", "delete"), ("R2", "delete"), ("R2", "not sent"), ("R5", "delete"), ("R6", "upsert"),
                   ("R7", "warning"), ("R8", "delete"), ("R4", "setting")):
        assert outcomes[wanted] > 0, f"the reference run made no {wanted} decision; outcomes: {outcomes}"
    # R3 and R4 drops are noted in the reason of the upsert row they belong to (ledger.event_rows)
    for rule in ("R3", "R4"):
        assert any(f"({rule})" in e[4] or f"({rule}, " in e[4] for e in ledger.events if e[3] == "upsert"), \
            f"the reference run dropped nothing by {rule}"
    assert len(ledger.sent_persons) > 1000, "few contact persons sent: the batch does not exercise channel state"


@pytest.mark.slow
@pytest.mark.parametrize("cut", [False, True], ids=["whole", "cut"])
def test_sigkill_at_random_moments_loses_and_duplicates_nothing(tmp_path: Path, monkeypatch, cut: bool) -> None:
    if cut:  # every customer export is cut in two, so kills also hit the second half's child (exchange.halves)
        cut_small_files(monkeypatch)
    t_start = time.monotonic()
    code = cu.source_digest()
    lines: list[str] = [f"seed {SEED}, at least {MIN_KILLS} kills"]

    def note(text: str) -> None:
        lines.append(text)
        print(text, flush=True)

    source = tmp_path / "batch"
    inputs = cu.generate_batch(source, SEED)
    valid = [i for i in inputs if i.valid and i.duplicate_of is None]
    note(f"batch: {len(inputs)} files, {sum(i.size for i in inputs) / 1e6:.1f} MB, {len(valid)} valid and distinct")

    # ---------------------------------------------------------------- reference
    ref = tmp_path / "reference"
    cu.init_workspace(ref)
    _copy_inputs(source, ref, inputs)
    ref_runner = cu.Runner(ref, tmp_path / "logs-reference")
    rc, stderr, ref_took, arrivals = _run_observed(ref_runner, "reference")
    cu.no_traceback(stderr, "reference run")
    assert (": cut in two at byte" in stderr) == cut, stderr[-3000:]
    assert rc == 1, f"reference run: exit {rc}, expected 1 (one input rejected)\n{stderr[-3000:]}"
    problems: list[str] = []
    ref_ledger = _check_workspace(ref, inputs, problems)
    assert not problems, "the reference run itself is wrong:\n" + "\n".join(problems)
    _workload_is_stateful(ref_ledger)
    rc, _out, stderr, idle = ref_runner.run_to_end("reference-idle", RUN_DEADLINE_S)
    assert rc == 0, f"idle run on the reference: exit {rc}\n{stderr}"
    ref_packages = {seq: cu.read_package(path) for seq, path in cu.packages(ref).items()}
    assert cu.read_ledger(ref).files == ref_ledger.files, "an idle run changed the reference ledger"
    # startup: from the start until the first file is in hand (its temporary package appears)
    startup = arrivals.get("first temp", idle)
    estimates = cu.estimate_durations(cu.processing_order(inputs),
                                      {r["name"]: r["output"] for r in ref_ledger.files if r["output"]},
                                      arrivals, startup)
    note(f"reference run: {ref_took:.1f} s, {len(ref_packages)} packages, first file in hand after "
         f"{startup:.2f} s; idle run: {idle:.2f} s")

    # ---------------------------------------------------------------- crash loop
    crash = tmp_path / "crash"
    cu.init_workspace(crash)
    _copy_inputs(source, crash, inputs)
    runner = cu.Runner(crash, tmp_path / "logs-crash")
    rng = random.Random(SEED)
    order = cu.processing_order(inputs)
    attempts: list[cu.Attempt] = []
    phases: Counter = Counter()
    kills = 0
    speed = 1.0  # this machine now, against the reference run: the load of a shared machine changes
    loop_start = time.monotonic()

    def covered() -> bool:
        return all(any(phases[p] for p in group) for group in PHASE_GROUPS.values())

    while kills < MIN_KILLS or (not covered() and kills < MAX_KILLS):
        if time.monotonic() - loop_start > LOOP_BUDGET_S:
            break
        pending = [i for i in order if (crash / "inbox" / "cee" / i.name).exists()]
        before = cu.Before.of(crash)
        if not pending:  # all done: only startup, recover and pickup are left to hit
            mode = "idle"
        else:
            # a resent or an invalid file is moved once, then recorded: aim at it when it is near
            special = next((i for i in pending[:3] if i.duplicate_of is not None or not i.valid), None)
            mode = rng.choices(("startup", "timed", "publish", "archive"),
                               weights=(15, 55, 20, 400 if special else 10))[0]
        target = special.name if pending and mode == "archive" and special else None
        # Timed kills spread the work left over the kills still to come, so that kills keep
        # landing in transforms to the end of the loop (a big file is left to publish kills).
        remaining = sum(estimates[i.name] for i in pending)
        window = speed * 2 * remaining / max(MIN_KILLS - kills, 1)
        proc, err = runner.start(f"kill-{len(attempts) + 1}-{mode}")
        started = time.monotonic()
        watch = cu.Watch(crash, before, started)
        if mode in ("publish", "archive"):  # a few ms after the next package appears, or input is moved
            ahead = pending[:[i.name for i in pending].index(target) + 1] if target else pending[:1]
            deadline = started + startup + 3 * speed * sum(estimates[i.name] for i in ahead) + 5.0  # else timed
            while proc.poll() is None and time.monotonic() < deadline:
                watch.look(moves=mode == "archive", target=target)
                if (watch.packages if mode == "publish" else watch.first_move is not None):
                    break
                time.sleep(cu.POLL / 4 if mode == "publish" else 0)  # a move is recorded within ms
            delay = time.monotonic() - started + rng.uniform(0, 0.004 if mode == "publish" else 0.001)
        elif mode == "startup":
            delay = rng.uniform(0, startup)
        elif mode == "idle":
            delay = rng.uniform(0, idle)
        else:
            delay = startup + rng.uniform(0, window)
        kill_at = started + delay
        while proc.poll() is None and time.monotonic() < kill_at:  # the random kill delay, watching
            watch.look()
            time.sleep(max(0.0, min(cu.POLL, kill_at - time.monotonic())))
        size = runner.kill_group(proc)
        killed = proc.returncode == -signal.SIGKILL
        stderr = err.read_text("utf-8", "replace")
        attempt = cu.Attempt(len(attempts) + 1, mode, delay, killed, proc.returncode, size, len(pending),
                             stderr_tail=stderr[-2000:])
        attempts.append(attempt)
        cu.no_traceback(stderr, f"attempt {attempt.number} ({mode}, {delay:.3f} s)")
        if killed:
            attempt.phase = cu.classify_kill(crash, before)
            phases[attempt.phase] += 1
            kills += 1
        else:
            assert proc.returncode in (0, 1), \
                f"attempt {attempt.number}: exit {proc.returncode} before the kill\n{stderr[-3000:]}"
            attempt.phase = f"finished first (exit {proc.returncode})"
        # what this run showed of the machine's speed now
        if watch.first_temp is not None:
            startup = 0.5 * startup + 0.5 * watch.first_temp
            if watch.packages:
                last = max(watch.packages, key=watch.packages.get)
                produced = {r["output"]: r["name"] for r in cu.read_ledger(crash).files if r["output"]}
                names = [i.name for i in pending]
                if produced.get(last) in names:
                    expected = sum(estimates[n] for n in names[:names.index(produced[last]) + 1])
                    ratio = (watch.packages[last] - watch.first_temp) / max(expected, 0.01)
                    speed = min(5.0, max(0.2, 0.5 * speed + 0.5 * ratio))

    loop_took = time.monotonic() - loop_start
    with_child = sum(1 for a in attempts if a.killed and a.group_size_at_kill > 1)
    note(f"crash loop: {len(attempts)} runs, {kills} killed while running ({with_child} with a validation "
         f"child alive), {loop_took:.1f} s")
    for a in attempts:
        lines.append(f"  attempt {a.number:3d} {a.mode:8s} {a.delay:6.3f} s, {a.pending:2d} pending, "
                     f"group {a.group_size_at_kill}: {a.phase}")
    for phase, count in sorted(phases.items(), key=lambda kv: -kv[1]):
        note(f"  {count:3d}  {phase}")
    note(f"  modes: {dict(Counter(a.mode for a in attempts if a.killed))}; speed at the end {speed:.2f}, "
         f"startup {startup:.2f} s")
    (tmp_path / "crash-report.txt").write_text("\n".join(lines) + "\n", "utf-8")
    assert kills >= MIN_KILLS, f"only {kills} kills hit a running process within {LOOP_BUDGET_S:.0f} s"
    if not covered():  # timing on a shared machine decides where kills land; correctness is checked below
        note(f"kills did not reach every phase this time: {dict(phases)}")

    # ---------------------------------------------------------------- to the end, and once more
    rc, _out, stderr, took = runner.run_to_end("final", RUN_DEADLINE_S)
    cu.no_traceback(stderr, "final run")
    assert rc in (0, 1), f"final run: exit {rc}\n{stderr[-3000:]}"
    note(f"final run: exit {rc}, {took:.1f} s")
    after_final = cu.read_ledger(crash)
    outbox_after_final = cu.listing(crash / "outbox")
    rc, _out, stderr, _took = runner.run_to_end("again", RUN_DEADLINE_S)
    cu.no_traceback(stderr, "second run after the end")
    assert rc == 0, f"a run after the end: exit {rc}\n{stderr[-3000:]}"
    again = cu.read_ledger(crash)
    assert again.files == after_final.files and again.events == after_final.events, \
        "a run with nothing to do changed the ledger"
    assert cu.listing(crash / "outbox") == outbox_after_final, "a run with nothing to do changed the outbox"

    # Not a failure (no rule asks for it), but reported: rows whose archived_as does not say where
    # the input is (recover() finishes a file whose input a crash had already archived with NULL).
    for row in again.files:
        where = row["archived_as"]
        if where is None or not (crash / where).is_file() or cu.sha256_path(crash / where) != row["sha256"]:
            note(f"observation: ledger row {row['name']} ({row['state']}) has archived_as {where!r}, "
                 "which does not name the input")

    # Not a failure either: temporary files outside outbox/mobile (say a run report's, in .exchange/).
    for path in sorted(crash.rglob(".*")):
        if path.is_file() and path.parent.name != ".exchange" and path.name != "lock":
            note(f"observation: temporary file left: {path.relative_to(crash)}")

    # ---------------------------------------------------------------- the crash workspace on its own
    if cu.source_digest() != code:
        pytest.fail("the exchange package's source changed while the test ran: the reference and the crash "
                    "runs used different code, so they cannot be compared; run the test again")
    held: list[str] = []

    def verdict(what: str, count_before: int) -> None:
        if len(problems) == count_before:
            held.append(what)

    count = len(problems)
    crash_ledger = _check_workspace(crash, inputs, problems)
    verdict("inputs, archive, rejected folder, outbox and the ledger's files table on their own", count)

    # ---------------------------------------------------------------- the same as the reference
    count = len(problems)
    crash_packages = {seq: cu.read_package(path) for seq, path in cu.packages(crash).items()}
    if sorted(crash_packages) != sorted(ref_packages):
        problems.append(f"package numbers {sorted(crash_packages)} differ from the reference's {sorted(ref_packages)}")
    for seq in sorted(set(ref_packages) & set(crash_packages)):
        mine, theirs = crash_packages[seq], ref_packages[seq]
        if mine.members != theirs.members:
            problems.append(f"package {seq}: members {mine.members}, reference {theirs.members}")
        if mine.data != theirs.data:
            problems.append(f"package {seq}: {mine.data_name} differs from the reference's "
                            f"({len(mine.data)} vs {len(theirs.data)} bytes)")
        if mine.manifest_without_created_at != theirs.manifest_without_created_at:
            problems.append(f"package {seq}: manifest differs beyond createdAt:\n{mine.manifest!r}\n{theirs.manifest!r}")

    verdict(f"{len(ref_packages)} packages byte-identical to the reference's (manifest createdAt aside)", count)
    keys = ("sha256", "name", "inbox", "channel", "kind", "export_id", "created_at", "state", "direction",
            "sequence", "output", "records", "error", "error_count")
    mine_rows = [tuple(r[k] for k in keys) for r in crash_ledger.files]
    ref_rows = [tuple(r[k] for k in keys) for r in ref_ledger.files]
    if Counter(mine_rows) != Counter(ref_rows):
        problems.append(f"ledger files table: {cu.counter_diff(mine_rows, ref_rows)}")
    for table in ("sent_persons", "occupations", "methods", "sequences"):
        mine_t, ref_t = getattr(crash_ledger, table), getattr(ref_ledger, table)
        count = len(problems)
        if mine_t != ref_t:
            problems.append(f"ledger {table}: {cu.counter_diff(mine_t, ref_t)}")
        verdict(f"ledger {table} equal to the reference's ({len(ref_t)} rows)", count)
    count = len(problems)
    if crash_ledger.events != ref_ledger.events:
        events = cu.counter_diff(crash_ledger.events.elements(), ref_ledger.events.elements())
        problems.append(f"ledger events: {events}")
    verdict(f"ledger events equal to the reference's ({sum(ref_ledger.events.values())} decisions)", count)

    # ---------------------------------------------------------------- nothing left running
    count = len(problems)
    strays = cu.stray_processes(runner.pgids | ref_runner.pgids, [tmp_path])
    if strays:
        problems.append(f"exchange processes left behind: {strays}")
    verdict("no process left behind", count)

    boring = PHASE_GROUPS["startup"] + PHASE_GROUPS["mid-transform"]
    telling = [(a.number, a.mode, round(a.delay, 3), a.phase) for a in attempts if a.killed and a.phase not in boring]
    for what in held:
        note(f"held: {what}")
    for problem in problems:
        note(f"PROBLEM: {problem}")
    (tmp_path / "crash-report.txt").write_text("\n".join(lines) + "\n", "utf-8")
    assert not problems, (
        f"after {kills} kills (seed {SEED}) the crash workspace differs from what it must hold:\n  "
        + "\n  ".join(problems)
        + "\nwhat held: " + "; ".join(held)
        + f"\nkills by phase: {dict(phases)}\nkills that left work for recovery or a move unrecorded: "
          f"{telling[:30]}\nevery attempt: {tmp_path / 'crash-report.txt'}; logs of each run: {runner.logs}")

    note(f"total {time.monotonic() - t_start:.1f} s")
    (tmp_path / "crash-report.txt").write_text("\n".join(lines) + "\n", "utf-8")
