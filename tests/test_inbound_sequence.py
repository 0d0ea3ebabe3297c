"""F6 end to end: return packages imported in their manifest's sequence order, through the real CLI.

Packages ahead of a gap wait (held) in inbox/mobile/, untouched, and are
imported in order once the gap is filled (in the same run if the missing
one arrives in it) or released by an operator (``exchange release``); a
number imported before is refused when the content differs (F6) and is a
duplicate when it is the same (F2). The import documents' own numbers
(CEEIMP_<channel>_<n>) stay gapless and follow the import order.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import sqlite3
import subprocess
import time
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

from inbound_util import InboundWorkspace, import_name, mid, new_customer, parse_import, return_package, returned
from test_inbound_e2e import build, ws  # noqa: F401 - fixtures: the inbound workspace, where packages are made
from workspace_util import CHANNEL, cli_command, cli_env

STAMP = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def drop(ws: InboundWorkspace, build: Path, sequence: int, *, name: str | None = None, firm: str | None = None,
         channel: str = CHANNEL) -> bytes:
    """Return package ``sequence`` of ``channel`` (one new customer, mobileId ``mid(sequence)``) into
    inbox/mobile/ as ``RET_<sequence>.zip``; its bytes."""
    name = name or f"RET_{sequence}.zip"
    data = returned([new_customer(mid(sequence), firm or f"Firma {sequence}")])
    package = return_package(build / name, data, sequence=sequence, channel=channel).read_bytes()
    ws.drop_package(name, package)
    return package


def imports_line(*sequences: int, channel: str = CHANNEL) -> str:
    return f"import documents written: {len(sequences)} ({', '.join(import_name(n, channel) for n in sequences)})"


def summary(files: int, imports: list[int], *more: str, channel: str = CHANNEL) -> list[str]:
    lines = [f"files processed: {files}, records read: {files}", "packages written: 0"]
    if imports:
        lines.append(imports_line(*imports, channel=channel))
    return lines + list(more)


def source_of(ws: InboundWorkspace, sequence: int, channel: str = CHANNEL) -> str:
    """The package an import document was made from (its root's ``sourcePackage``)."""
    return parse_import(ws.import_bytes(sequence, channel))["sourcePackage"]


def held_json(ws: InboundWorkspace) -> dict:
    status = ws.cli("status", "--json")
    assert status.returncode == 0, str(status)
    return json.loads(status.stdout)["held"]


def test_packages_arriving_out_of_order_over_three_runs(ws, build):
    drop(ws, build, 1)
    run = ws.run()
    assert (run.returncode, run.lines) == (0, summary(1, [1])), str(run)

    three = drop(ws, build, 3)
    run = ws.run()
    assert (run.returncode, run.lines) == (0, summary(0, [], "held: RET_3.zip (sequence 3; waiting for 2) (F6)")), \
        str(run)
    assert ws.mobile_inbox_names() == ["RET_3.zip"]  # not claimed, not archived, not rejected
    assert (ws.inbox_mobile / "RET_3.zip").read_bytes() == three
    assert ws.import_names() == [import_name(1)]
    held = held_json(ws)
    assert re.fullmatch(STAMP, held[CHANNEL]["packages"][0]["held_since"]), held
    assert held == {CHANNEL: {"packages": [{"file": "RET_3.zip", "sequence": 3,
                                            "held_since": held[CHANNEL]["packages"][0]["held_since"]}],
                              "missing": [2]}}
    text = ws.cli("status")
    since = held[CHANNEL]["packages"][0]["held_since"]
    assert f"held {CHANNEL}: RET_3.zip (sequence 3, held since {since}) (F6)" in text.lines, str(text)
    assert f"  missing {CHANNEL}: 2; when they will never come: 'exchange release {CHANNEL} 3 --reason TEXT'" \
        in text.lines, str(text)

    run = ws.run()  # still waiting: the same line again, the same held_since
    assert (run.returncode, run.lines) == (0, summary(0, [], "held: RET_3.zip (sequence 3; waiting for 2) (F6)"))
    assert held_json(ws) == held

    drop(ws, build, 2)
    run = ws.run()
    assert (run.returncode, run.lines) == (0, summary(2, [2, 3])), str(run)
    assert [source_of(ws, n) for n in (1, 2, 3)] == ["RET_1.zip", "RET_2.zip", "RET_3.zip"]
    assert ws.mobile_inbox_names() == []
    assert held_json(ws) == {}


def test_packages_dropped_together_are_imported_in_sequence_order_in_one_run(ws, build):
    for sequence in (1, 3, 2):
        drop(ws, build, sequence)
    run = ws.run()
    assert (run.returncode, run.lines) == (0, summary(3, [1, 2, 3])), str(run)
    assert [source_of(ws, n) for n in (1, 2, 3)] == ["RET_1.zip", "RET_2.zip", "RET_3.zip"]


def test_the_first_package_a_channel_imports_sets_the_start(ws, build):
    drop(ws, build, 5)
    drop(ws, build, 7)
    run = ws.run()
    assert (run.returncode, run.lines) == (0, summary(1, [1], "held: RET_7.zip (sequence 7; waiting for 6) (F6)")), \
        str(run)
    assert source_of(ws, 1) == "RET_5.zip"
    assert held_json(ws)[CHANNEL]["missing"] == [6]


def test_a_gap_released_with_a_reason(ws, build):
    drop(ws, build, 1)
    drop(ws, build, 4)
    drop(ws, build, 5)
    run = ws.run()
    assert run.lines == summary(1, [1], "held: RET_4.zip (sequence 4; waiting for 2, 3) (F6)",
                                "held: RET_5.zip (sequence 5; waiting for 2, 3) (F6)"), str(run)
    assert held_json(ws)[CHANNEL]["missing"] == [2, 3]

    release = ws.cli("release", CHANNEL, "4", "--reason", "tablet lost")
    assert release.returncode == 0, str(release)
    assert re.fullmatch(rf"released {CHANNEL}: sequence 2, 3 will never come \('tablet lost', {STAMP}\); "
                        r"the next run imports the held packages from sequence 4 on \(F6\)",
                        release.stdout.strip()), str(release)
    at = re.search(STAMP, release.stdout).group(0)

    again = ws.cli("release", CHANNEL, "4", "--reason", "tablet lost")
    assert (again.returncode, again.stdout) == (1, ""), str(again)
    assert again.stderr.strip() == (f"exchange: nothing below sequence 4 of {CHANNEL} is missing: the next return "
                                    f"package {CHANNEL} expects is sequence 4; nothing was recorded (F6)")

    run = ws.run()
    assert (run.returncode, run.lines) == (0, summary(2, [2, 3])), str(run)
    assert [source_of(ws, n) for n in (2, 3)] == ["RET_4.zip", "RET_5.zip"]
    assert held_json(ws) == {}

    # A released number that comes after all is refused, naming the release.
    drop(ws, build, 2)
    run = ws.run()
    assert run.returncode == 1, str(run)
    assert run.lines == [
        "files processed: 1, records read: 0", "packages written: 0",
        f"rejected: RET_2.zip: RET_2.zip:manifest.xml: sequence 2 of {CHANNEL} was released at {at} (\"tablet lost\"): the "
        "numbers below 4 still missing then were given up; import it by hand if it is still wanted (F6)"], str(run)


def test_release_refuses_an_unknown_channel_and_a_channel_with_nothing_imported(ws):
    unknown = ws.cli("release", "MOBILE-XX", "4", "--reason", "x")
    assert (unknown.returncode, unknown.stderr.strip()) == (
        2, f"exchange: sales channel 'MOBILE-XX' is not configured; configured: {CHANNEL}"), str(unknown)
    nothing = ws.cli("release", CHANNEL, "4", "--reason", "x")
    assert (nothing.returncode, nothing.stderr.strip()) == (
        1, f"exchange: nothing below sequence 4 of {CHANNEL} is missing: {CHANNEL} has imported no return package "
           "yet (the first one sets the start); nothing was recorded (F6)"), str(nothing)
    usage = ws.cli("release", CHANNEL, "4")
    assert usage.returncode == 2, str(usage)
    blank = ws.cli("release", CHANNEL, "4", "--reason", " ")
    assert (blank.returncode, blank.stderr.strip()) == (
        2, "exchange: --reason must say why the missing packages will never come"), str(blank)
    zero = ws.cli("release", CHANNEL, "0", "--reason", "x")
    assert zero.returncode == 2, str(zero)


def test_a_resend_with_other_content_is_rejected_and_the_same_content_is_a_duplicate(ws, build):
    drop(ws, build, 1)
    first = drop(ws, build, 2)
    assert ws.run().returncode == 0
    imported_at = ws.runs[-1]

    drop(ws, build, 2, name="RET_2_again.zip", firm="Firma Inna")
    run = ws.run()
    assert run.returncode == 1, str(run)
    assert len(run.lines) == 3, str(run)
    match = re.fullmatch(rf"rejected: RET_2_again.zip: RET_2_again.zip:manifest.xml: sequence 2 of {CHANNEL} was imported from "
                         rf"RET_2.zip at ({STAMP}); this package has other content \(F6\)", run.lines[2])
    assert match, str(run)
    at = datetime.strptime(match.group(1), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert imported_at.started <= at <= imported_at.finished
    assert run.lines[:2] == ["files processed: 1, records read: 0", "packages written: 0"]
    assert (ws.root / "inbox" / "rejected" / "RET_2_again.zip").exists()
    error = (ws.root / "inbox" / "rejected" / "RET_2_again.zip.error.txt").read_text()
    assert f"sequence 2 of {CHANNEL} was imported from RET_2.zip at {match.group(1)}" in error

    ws.drop_package("RET_2_same.zip", first)
    run = ws.run()
    assert (run.returncode, run.lines) == (0, [
        "files processed: 1, records read: 0", "packages written: 0",
        "duplicate: RET_2_same.zip (same content as RET_2.zip; archived, no output) (F2)"]), \
        str(run)

    drop(ws, build, 3)  # the rejected package used no number: 3 follows 2
    run = ws.run()
    assert (run.returncode, run.lines) == (0, summary(1, [3])), str(run)


def test_two_channels_have_independent_sequences(ws, build):
    ws.edit_config(lambda text: text + "\n[channels.MOBILE-DE]\n")
    drop(ws, build, 1)
    drop(ws, build, 7, name="DE_7.zip", channel="MOBILE-DE")
    drop(ws, build, 3)
    run = ws.run()
    assert (run.returncode, run.lines[:2]) == (0, ["files processed: 2, records read: 2", "packages written: 0"]), \
        str(run)
    assert sorted(run.lines[2].removeprefix("import documents written: 2 (").rstrip(")").split(", ")) == \
        [import_name(1, "MOBILE-DE"), import_name(1)], str(run)
    assert run.lines[3:] == ["held: RET_3.zip (sequence 3; waiting for 2) (F6)"]
    drop(ws, build, 9, name="DE_9.zip", channel="MOBILE-DE")
    drop(ws, build, 8, name="DE_8.zip", channel="MOBILE-DE")
    run = ws.run()
    assert (run.returncode, run.lines) == (0, summary(2, [2, 3], "held: RET_3.zip (sequence 3; waiting for 2) (F6)",
                                                      channel="MOBILE-DE")), str(run)
    assert [source_of(ws, n, "MOBILE-DE") for n in (1, 2, 3)] == ["DE_7.zip", "DE_8.zip", "DE_9.zip"]
    held = held_json(ws)
    assert list(held) == [CHANNEL] and held[CHANNEL]["missing"] == [2]


def test_held_packages_survive_retention(ws, build):
    ws.edit_config(lambda text: text.replace("# archive_days = 90", "archive_days = 1"))
    drop(ws, build, 1)
    assert ws.run().returncode == 0
    three = drop(ws, build, 3)
    long_ago = time.time() - 10 * 86400
    os.utime(ws.inbox_mobile / "RET_3.zip", (long_ago, long_ago))
    old_day = ws.archive / (datetime.now(timezone.utc).date() - timedelta(days=5)).isoformat()
    old_day.mkdir()
    (old_day / "old.zip").write_bytes(b"x")
    run = ws.run()
    assert (run.returncode, run.lines) == (0, summary(0, [], "held: RET_3.zip (sequence 3; waiting for 2) (F6)")), \
        str(run)
    assert not old_day.exists()  # retention did run
    assert (ws.inbox_mobile / "RET_3.zip").read_bytes() == three
    drop(ws, build, 2)
    assert ws.run().lines == summary(2, [2, 3])


def test_release_waits_for_no_one_while_the_workspace_is_held(ws, build):
    """release writes the ledger a run judges packages against: under the workspace lock, else exit 75."""
    drop(ws, build, 1)
    drop(ws, build, 3)
    assert ws.run().returncode == 0
    lock = ws.root / ".exchange" / "lock"
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"4242\n", 0)
        refused = ws.cli("release", CHANNEL, "3", "--reason", "tablet lost")
    finally:
        os.close(fd)
    assert (refused.returncode, refused.stdout) == (75, ""), str(refused)
    assert refused.stderr == (f"exchange: the workspace is in use by another run or watcher (PID 4242); "
                              f"lock file {lock}\n")
    assert held_json(ws)[CHANNEL]["missing"] == [2]  # nothing was recorded


def test_release_help_teaches_with_an_example(ws):
    shown = ws.cli("release", "--help")
    assert shown.returncode == 0, str(shown)
    assert "Give up the missing return packages of CHANNEL numbered below SEQUENCE (F6)." in shown.stdout
    assert '  exchange release MOBILE-PL 5 --reason "tablet lost, packages 3 and 4 never sent"' in shown.stdout


def test_held_packages_survive_a_killed_run(ws, build):
    """SIGKILL while the package before a held one is being imported: the held one is untouched in
    inbox/mobile/, and the next run finishes the first and imports both in order."""
    drop(ws, build, 1)
    assert ws.run().returncode == 0
    three = drop(ws, build, 3)
    padding = " " * (1 << 20)
    records = [new_customer(mid(1000 + n), f"Firma {n}") + padding for n in range(48)]
    big = return_package(build / "RET_2.zip", returned(records), sequence=2, compression=zipfile.ZIP_STORED)
    ws.drop_package("RET_2.zip", big.read_bytes())
    claimed = ws.inbox_mobile / ".claimed" / "RET_2.zip"
    with open(ws.root / "killed.out", "wb") as out:
        proc = subprocess.Popen(cli_command("run", "--settle", "0", "--no-transfer"), cwd=ws.root, env=cli_env(),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.monotonic() + 60
        while not claimed.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, (ws.root / "killed.out").read_text()
    assert (ws.inbox_mobile / "RET_3.zip").read_bytes() == three
    run = ws.run()
    assert (run.returncode, run.lines[:3]) == (0, ["files processed: 2, records read: 49", "packages written: 0",
                                                   imports_line(2, 3)]), str(run)
    assert [source_of(ws, n) for n in (2, 3)] == ["RET_2.zip", "RET_3.zip"]
    assert ws.mobile_inbox_names() == []


def test_explain_shows_the_release_in_the_history_of_the_packages_it_let_go_on(ws, build):
    drop(ws, build, 1)
    drop(ws, build, 4)
    assert ws.run().returncode == 0
    release = ws.cli("release", CHANNEL, "4", "--reason", "tablet lost")
    assert release.returncode == 0, str(release)
    at = re.search(STAMP, release.stdout).group(0)
    assert ws.run().returncode == 0
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    shown = ws.cli("explain", mid(4))
    assert (shown.returncode, shown.lines) == (0, [
        f"{today} RET_4.zip -> {import_name(2)}: held, then released: sequence 2, 3 of {CHANNEL} will never come "
        f"(\"tablet lost\", {at}); packages from sequence 4 on went on (F6)",
        f"{today} RET_4.zip -> {import_name(2)}: new customer {mid(4)}: created: organization in sales channel "
        f"{CHANNEL}",
    ]), str(shown)
    before = ws.cli("explain", mid(1))  # imported before the release: not affected
    assert "released" not in before.stdout, str(before)


def test_a_ledger_from_before_f6_is_read_and_upgraded(ws, build):
    """status and explain read a ledger no F6 version has opened (no F6 tables yet); the next run
    adds them, and the channel's first return package from then on sets the start."""
    drop(ws, build, 1)
    assert ws.run().returncode == 0
    db = sqlite3.connect(ws.root / ".exchange" / "state.db")
    with db:
        for table in ("inbound_sequences", "releases", "held"):
            db.execute(f"DROP TABLE {table}")
    db.close()
    drop(ws, build, 3)
    assert held_json(ws) == {}
    shown = ws.cli("explain", mid(1))
    assert shown.returncode == 0 and len(shown.lines) == 1, str(shown)
    run = ws.run()
    assert (run.returncode, run.lines) == (0, summary(1, [2])), str(run)
    drop(ws, build, 5)
    run = ws.run()
    assert (run.returncode, run.lines) == (0, summary(0, [], "held: RET_5.zip (sequence 5; waiting for 4) (F6)")), \
        str(run)


def test_a_package_claimed_ahead_of_a_gap_goes_back_to_the_inbox_held(ws, build):
    """The batch holds a package before claiming it; should a claimed one turn out to be ahead of a
    gap all the same (it changed between the look and the claim), processing it puts it back
    into inbox/mobile/ unchanged and says it is held, instead of importing it out of order."""
    from exchange import config as config_module, to_cee
    from exchange.ledger import Ledger
    from exchange.workspace import Workspace as RunWorkspace

    drop(ws, build, 1)
    assert ws.run().returncode == 0
    three = drop(ws, build, 3)
    config = config_module.load(ws.config)
    ledger = Ledger(config.paths.state)
    try:
        run_ws = RunWorkspace(config, ledger, run_id=ledger.start_run())
        run_ws.take(ws.inbox_mobile / "RET_3.zip", "mobile", CHANNEL, to_cee.process)
    finally:
        ledger.close()
    assert run_ws.summary.lines() == ["files processed: 0, records read: 0", "packages written: 0",
                                      "held: RET_3.zip (sequence 3; waiting for 2) (F6)"]
    assert ws.mobile_inbox_names() == ["RET_3.zip"]
    assert (ws.inbox_mobile / "RET_3.zip").read_bytes() == three
    assert held_json(ws)[CHANNEL]["missing"] == [2]
