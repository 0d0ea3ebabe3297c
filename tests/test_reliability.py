"""The world around a run (F7, CLI.md exit 74): a replaced or rewritten input,
odd file names, an output name already taken, folders that cannot be written
and a full disk lose nothing, double nothing and block nothing.

Real runs of the CLI in real workspaces. Permissions are taken away the way
an operator would meet them: the CLI runs as root without any capability
(``workspace_util.WITHOUT_PRIVILEGE``), so a folder of mode 0555 refuses it as it
refuses any user. A full disk is ``RLIMIT_FSIZE``: writes past the limit fail
with EFBIG, as they fail with ENOSPC on a full file system.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import select
import shutil
import sqlite3
import subprocess
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest
from inbound_util import body, parse_import, return_package, returned
from inbound_util import mid, new_customer
from workspace_util import (
    WITHOUT_PRIVILEGE,
    CliRun,
    Workspace,
    assert_manifest,
    cli_command,
    cli_env,
    comm,
    customer,
    customers,
    masterdata,
    occupation,
    person,
    read_package,
    run_cli_unprivileged,
    sha256,
    start_cli,
    finish_cli,
)

CHANNEL = "MOBILE-PL"
DEADLINE_S = 120


# ------------------------------------------------------------------ helpers

def big_export(export_id: str, created_at: str, count: int) -> bytes:
    """A customer export of ``count`` customers: big enough that a run spends seconds on it."""
    return customers(export_id, created_at, records=(
        customer(f"{100000 + n}", f"Customer {n}", persons=[person(f"{500000 + n}", f"Person {n}")])
        for n in range(count)))


def small_export(export_id: str, created_at: str, *numbers: str) -> bytes:
    return customers(export_id, created_at, records=(customer(n, f"Customer {n}") for n in numbers))


def wait_for(condition, what: str, deadline_s: float = DEADLINE_S) -> None:
    end = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > end:
            pytest.fail(f"waited {deadline_s} s for {what}")
        time.sleep(0.002)


def without_caps(*args: str | Path, cwd: Path, limit_bytes: int | None = None) -> CliRun:
    return run_cli_unprivileged(*args, cwd=cwd, timeout=DEADLINE_S, limit_bytes=limit_bytes)


def no_traceback(run: CliRun) -> None:
    assert "Traceback" not in run.stderr, str(run)


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path)


def claimed(ws: Workspace, name: str, inbox: str = "cee") -> Path:
    return ws.root / "inbox" / inbox / ".claimed" / name


# ------------------------------------------------- F7: claim, then work on what you claimed

def test_an_input_replaced_while_it_is_processed_is_the_next_input(ws: Workspace) -> None:
    first = big_export("CU-BIG", "2026-11-27T08:00:00Z", 60_000)
    second = small_export("CU-NEXT", "2026-11-27T09:00:00Z", "20001", "20002")
    ws.drop("customers.xml", first)
    proc, started = start_cli("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    wait_for(claimed(ws, "customers.xml").exists, "the run to claim customers.xml")
    ws.drop("customers.xml", second)  # the way a writer replaces a file: rename over the name
    run = finish_cli(proc, started, ("run",))
    assert run.returncode == 0, str(run)
    assert_manifest(ws.package(1), sequence=1, mode="delta", source_name="customers.xml", source=first, run=run)
    assert len(ws.package(1).records) == 60_000
    assert (ws.inbox_cee / "customers.xml").read_bytes() == second  # not archived unprocessed
    assert [p.read_bytes() == first for p in ws.archived("customers.xml")] == [True]

    again = ws.run()
    assert again.returncode == 0, str(again)
    assert_manifest(ws.package(2), sequence=2, mode="delta", source_name="customers.xml", source=second, run=again)
    assert [r["id"] for r in ws.package(2).records] == ["20001", "20002"]
    assert ws.inbox_names() == []


def test_an_input_rewritten_while_it_is_processed_yields_nothing_until_it_settles(ws: Workspace) -> None:
    data = big_export("CU-BIG", "2026-11-27T08:00:00Z", 60_000)
    ws.drop("customers.xml", data)
    proc, started = start_cli("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    path = claimed(ws, "customers.xml")
    # The package's temporary file appears once the claimed file was hashed and is being transformed.
    wait_for(lambda: any(ws.outbox_mobile.glob(".MOB_*.zip.tmp")), "the run to transform customers.xml")
    with open(path, "ab") as late_writer:  # a writer that still had it, finishing its file
        late_writer.write(b"<!-- the writer's last words -->\n")
    rewritten = data + b"<!-- the writer's last words -->\n"
    run = finish_cli(proc, started, ("run",))
    assert run.returncode == 0, str(run)
    assert run.lines == ["files processed: 0, records read: 0", "packages written: 0",
                         "left for the next run (changed while it was processed): customers.xml"]
    assert "customers.xml: changed while it was processed (a writer still has it open?); nothing was published " \
           "or rejected, it is back in inbox/cee for the next settle (F7)" in run.stderr
    assert ws.package_names() == [] and ws.rejected_names() == []
    assert (ws.inbox_cee / "customers.xml").read_bytes() == rewritten

    again = ws.run()
    assert again.returncode == 0, str(again)
    assert_manifest(ws.package(1), sequence=1, mode="delta", source_name="customers.xml", source=rewritten,
                    run=again)


def test_a_file_still_open_for_writing_is_not_taken(ws: Workspace) -> None:
    data = small_export("CU-1", "2026-11-27T08:00:00Z", "10001")
    ws.drop("customers.xml", data)
    with open(ws.inbox_cee / "customers.xml", "ab"):  # a writer that paused longer than the settle time
        run = ws.run()
        assert run.returncode == 0, str(run)
        assert run.lines == ["files processed: 0, records read: 0", "packages written: 0",
                             "left for the next run (still open for writing): customers.xml"]
        assert ws.inbox_names() == ["customers.xml"]
    again = ws.run()
    assert again.returncode == 0, str(again)
    assert_manifest(ws.package(1), sequence=1, mode="delta", source_name="customers.xml", source=data, run=again)


# ------------------------------------------------- odd names: rejected, never blocking

ODD_NAMES = {  # name on disk -> the name it is rejected under, and what is wrong with it
    b"md\\2026.xml": ("md_2026.xml", "md\\2026.xml", "a backslash"),
    b"new\nline.xml": ("new_line.xml", "new\\nline.xml", "a control character (newline, tab ...)"),
    b"tab\tbed.xml": ("tab_bed.xml", "tab\\tbed.xml", "a control character (newline, tab ...)"),
    b"Kunden_M\xe4rz.xml": ("Kunden_M_rz.xml", "Kunden_M\\xe4rz.xml", "bytes that are not UTF-8"),
}


def test_names_a_manifest_cannot_carry_are_rejected_and_block_nothing(ws: Workspace) -> None:
    for n, raw in enumerate(ODD_NAMES):
        data = small_export(f"CU-ODD-{n}", f"2026-11-27T0{n}:00:00Z", f"3000{n}")
        with open(os.fsencode(ws.inbox_cee) + b"/" + raw, "wb") as f:
            f.write(data)
    good = small_export("CU-GOOD", "2026-11-27T09:00:00Z", "10001")
    ws.drop("z_good.xml", good)

    run = ws.run()
    assert run.returncode == 1, str(run)
    no_traceback(run)
    expected = []
    for safe, shown, why in ODD_NAMES.values():
        message = (f"{safe}: the file name '{shown}' cannot be carried in a manifest or import document: it holds "
                   f"{why} (F7); it is kept here as {safe}, and 'exchange retry {safe}' processes it under that name")
        expected.append(f"rejected: {safe}: {message}")
        report = (ws.rejected / f"{safe}.error.txt").read_text(encoding="utf-8")
        assert report == f"{safe}: rejected, 1 error(s) (F1)\n{message}\n"
    assert sorted(line for line in run.lines if line.startswith("rejected: ")) == sorted(expected)
    assert_manifest(ws.package(1), sequence=1, mode="delta", source_name="z_good.xml", source=good, run=run)
    assert ws.inbox_names() == []

    retried = ws.cli("retry", "md_2026.xml")
    assert retried.returncode == 0, str(retried)
    again = ws.run()
    assert again.returncode == 0, str(again)
    assert_manifest(ws.package(2), sequence=2, mode="delta", source_name="md_2026.xml",
                    source=small_export("CU-ODD-0", "2026-11-27T00:00:00Z", "30000"), run=again)


# ------------------------------------------------- outputs are never overwritten

def copy_ledger(source: Path, target: Path) -> None:
    with sqlite3.connect(source) as src, sqlite3.connect(target) as dst:
        src.backup(dst)
    src.close()
    dst.close()


def test_an_output_name_already_taken_stops_that_channel_and_direction_and_keeps_both(ws: Workspace) -> None:
    ledger = ws.root / ".exchange" / "state.db"
    ws.drop("a.xml", small_export("CU-A", "2026-11-27T08:00:00Z", "10001"))
    assert ws.run().returncode == 0
    copy_ledger(ledger, ws.root / "older.db")  # an older backup
    ws.drop("b.xml", small_export("CU-B", "2026-11-27T09:00:00Z", "10002"))
    assert ws.run().returncode == 0
    second = (ws.outbox_mobile / "MOB_MOBILE-PL_00000002.zip").read_bytes()
    for leftover in ledger.parent.glob("state.db*"):
        leftover.unlink()
    shutil.move(ws.root / "older.db", ledger)  # restored: it does not know package 2

    c = small_export("CU-C", "2026-11-27T10:00:00Z", "10003")
    ws.drop("c.xml", c)
    package = return_package(ws.root / "inbox" / "mobile" / "RET_1.zip",
                             returned([new_customer(mid(1), "Nowa Firma")]))
    returned_bytes = package.read_bytes()
    run = ws.run()
    assert run.returncode == 74, str(run)
    no_traceback(run)
    assert run.lines[-1] == (
        "fault: outbox/mobile/MOB_MOBILE-PL_00000002.zip: a file of that name exists already, and the ledger says "
        "this name is the next output; nothing was overwritten (F7). Was the ledger restored from an older backup? "
        "See README, \"Restoring the ledger\" (channel MOBILE-PL to-mobile stopped for this run)")
    assert (ws.outbox_mobile / "MOB_MOBILE-PL_00000002.zip").read_bytes() == second
    assert ws.package_names() == ["MOB_MOBILE-PL_00000001.zip", "MOB_MOBILE-PL_00000002.zip"]
    assert ws.inbox_names() == ["c.xml"] and (ws.inbox_cee / "c.xml").read_bytes() == c
    # the other direction went on: the return package became the first import document
    doc = parse_import((ws.root / "outbox" / "cee" / "CEEIMP_MOBILE-PL_00000001.xml").read_bytes())
    assert doc["sourceSha256"] == sha256(returned_bytes)
    assert ws.archived("RET_1.zip")[0].read_bytes() == returned_bytes


# ------------------------------------------------- environment faults: exit 74, contained, recovered

def test_an_outbox_that_cannot_be_written_stops_its_inbox_only(ws: Workspace) -> None:
    data = small_export("CU-1", "2026-11-27T08:00:00Z", "10001")
    ws.drop("customers.xml", data)
    return_package(ws.root / "inbox" / "mobile" / "RET_1.zip", returned([new_customer(mid(2), "Firma B")]))
    ws.outbox_mobile.chmod(0o555)
    run = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    ws.outbox_mobile.chmod(0o755)
    assert run.returncode == 74, str(run)
    no_traceback(run)
    assert re.fullmatch(rf"fault: customers\.xml: {re.escape(str(ws.outbox_mobile))}/\.MOB_MOBILE-PL_[0-9a-f]{{32}}"
                        r"\.zip\.tmp: Permission denied \(inbox/cee stopped for this run\)", run.lines[-1]), str(run)
    assert "import documents written: 1 (CEEIMP_MOBILE-PL_00000001.xml)" in run.lines
    assert ws.inbox_names() == ["customers.xml"]  # back in its inbox, not in the claim folder
    assert ws.package_names() == []
    status = ws.cli("status", "--json")
    last = json.loads(status.stdout)["last_runs"][0]  # recorded as finished, with its fault
    assert (last["exit_code"], last["files"], last["imports"], last["faults"]) == (
        74, 1, ["CEEIMP_MOBILE-PL_00000001.xml"], [run.lines[-1].removeprefix("fault: ")])

    again = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    assert again.returncode == 0, str(again)
    assert_manifest(ws.package(1), sequence=1, mode="delta", source_name="customers.xml", source=data, run=again)


def test_an_archive_folder_that_cannot_be_written_blocks_no_later_run(ws: Workspace) -> None:
    a = small_export("CU-A", "2026-11-27T08:00:00Z", "10001")
    b = small_export("CU-B", "2026-11-27T09:00:00Z", "10002")
    day = ws.archive / today()
    day.mkdir(parents=True)
    day.chmod(0o555)
    ws.drop("a.xml", a)
    first = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    assert first.returncode == 74, str(first)
    no_traceback(first)
    assert first.lines[-1] == (f"fault: a.xml: {claimed(ws, 'a.xml')} -> {day}/a.xml: Permission denied "
                               "(inbox/cee stopped for this run)"), str(first)
    assert ws.package_names() == ["MOB_MOBILE-PL_00000001.zip"]  # published; only its archiving is pending
    assert "packages written: 1 (MOB_MOBILE-PL_00000001.zip)" in first.lines
    assert claimed(ws, "a.xml").read_bytes() == a
    status = ws.cli("status")
    assert status.returncode == 0, str(status)
    assert "  in hand: a.xml (claimed by a run; it or the next start finishes it)" in status.lines
    assert f"  {first.lines[-1]}" in status.lines  # the run's fault, under its run line

    ws.drop("b.xml", b)
    second = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    assert second.returncode == 74, str(second)
    no_traceback(second)
    assert f"fault: a.xml: finishing it after an interruption: {claimed(ws, 'a.xml')} -> {day}/a.xml: " \
           "Permission denied" in second.lines, str(second)
    assert ws.package_names() == ["MOB_MOBILE-PL_00000001.zip", "MOB_MOBILE-PL_00000002.zip"]

    day.chmod(0o755)
    third = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    assert third.returncode == 0, str(third)
    assert sorted(p.name for p in day.iterdir()) == ["a.xml", "b.xml"]
    assert (day / "a.xml").read_bytes() == a and (day / "b.xml").read_bytes() == b
    assert ws.package_names() == ["MOB_MOBILE-PL_00000001.zip", "MOB_MOBILE-PL_00000002.zip"]
    assert not (ws.inbox_cee / ".claimed").exists()


def test_a_full_disk_is_a_fault_and_the_next_run_makes_the_package(ws: Workspace) -> None:
    # Contact values that do not compress: the package outgrows the limit before the ledger does.
    data = customers("CU-BIG", "2026-11-27T08:00:00Z", records=(
        customer(f"{100000 + n}", f"Customer {n}",
                 comms=[comm("phone", "Business", hashlib.sha256(f"{n}.{k}".encode()).hexdigest()) for k in range(6)])
        for n in range(3000)))
    ws.drop("customers.xml", data)
    run = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root, limit_bytes=512 * 1024)
    assert run.returncode == 74, str(run)
    no_traceback(run)
    assert run.lines[-1] == ("fault: customers.xml: writing its output into outbox/mobile/ or a temporary spool: "
                             "File too large (inbox/cee stopped for this run)"), str(run)
    assert ws.package_names() == []
    assert ws.inbox_names() == ["customers.xml"]
    assert list(ws.outbox_mobile.glob(".*")) == []  # the temporary package is gone too
    again = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    assert again.returncode == 0, str(again)
    assert_manifest(ws.package(1), sequence=1, mode="delta", source_name="customers.xml", source=data, run=again)


def test_a_lock_file_of_another_user_is_one_line(ws: Workspace) -> None:
    lock = ws.root / ".exchange" / "lock"
    lock.touch()
    lock.chmod(0o444)
    run = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    assert run.returncode == 74, str(run)
    assert run.stderr == f"exchange: taking the workspace lock: {lock}: Permission denied\n"


# ------------------------------------------------- recovery tells the truth (finding 8)

def test_a_committed_output_that_is_gone_is_reported_and_its_input_kept(ws: Workspace) -> None:
    data = small_export("CU-1", "2026-11-27T08:00:00Z", "10001")
    ws.drop("customers.xml", data)
    assert ws.run().returncode == 0
    ledger = ws.root / ".exchange" / "state.db"
    archived = ws.archived("customers.xml")[0]
    # As a crash right after the commit leaves it, with the package then taken by someone else.
    claimed(ws, "customers.xml").parent.mkdir()
    archived.rename(claimed(ws, "customers.xml"))
    (ws.outbox_mobile / "MOB_MOBILE-PL_00000001.zip").unlink()
    with sqlite3.connect(ledger) as db:
        db.execute("UPDATE files SET state = 'claimed', archived_as = NULL, temp = '.MOB_gone.zip.tmp'")
    db.close()

    run = ws.run()
    assert run.returncode == 74, str(run)
    message = ("output MOB_MOBILE-PL_00000001.zip was committed for customers.xml but is not in outbox/mobile/ nor "
               "in outbox/mobile/sent/: taken by someone else, or lost (F2)")
    assert run.lines[-1] == f"fault: {message}; the input is in inbox/rejected/customers.xml"
    assert "stays in the inbox" not in run.stderr
    assert (ws.rejected / "customers.xml").read_bytes() == data
    assert (ws.rejected / "customers.xml.error.txt").read_text(encoding="utf-8") == (
        f"customers.xml: {message}.\nIf it never reached its recipient, 'exchange retry customers.xml' makes a new "
        "output of it (with a new sequence number).\n")

    assert ws.cli("retry", "customers.xml").returncode == 0
    again = ws.run()
    assert again.returncode == 0, str(again)  # a new package, not a duplicate of the lost one
    assert_manifest(ws.package(2), sequence=2, mode="delta", source_name="customers.xml", source=data, run=again)


# ------------------------------------------------- a fault at every step, then a clean run

def _workload(ws: Workspace) -> None:
    ws.drop("masterdata.xml", masterdata("MD-1", "2026-11-27T07:00:00Z",
                                         occupations=[occupation("BUYER", "Buyer")]))
    ws.drop("customers.xml", small_export("CU-1", "2026-11-27T08:00:00Z", "10001", "10002"))
    ws.drop("broken.xml", b"<CustomerExport")  # rejected (F1)
    return_package(ws.root / "inbox" / "mobile" / "RET_1.zip", returned([new_customer(mid(3), "Firma C")]))


def _outcome(ws: Workspace) -> dict:
    """What the exchange made of the workload: packages, import documents, archive and rejected folder."""
    packages = {}
    for name in ws.package_names():
        pkg = read_package(ws.outbox_mobile / name)
        packages[name] = (pkg.manifest["sources"], pkg.records)
    cee = ws.root / "outbox" / "cee"
    imports = {p.name: body(parse_import(p.read_bytes())) for p in sorted(cee.iterdir()) if p.is_file()}
    archive = sorted(p.name for p in ws.archive.glob("*/*"))
    leftovers = sorted(str(p.relative_to(ws.root)) for p in (ws.root / "inbox").rglob("*")
                       if p.is_file() and "archive" not in p.parts and "rejected" not in p.parts)
    return {"packages": packages, "imports": imports, "archive": archive, "rejected": ws.rejected_names(),
            "left": leftovers}


FAULTS = {  # what is taken away during the first run: a folder (mode 0555), or bytes a file may have
    "inbox/cee": "inbox/cee",
    "inbox/mobile": "inbox/mobile",
    "outbox/mobile": "outbox/mobile",
    "outbox/cee": "outbox/cee",
    "inbox/archive": "inbox/archive",
    "inbox/rejected": "inbox/rejected",
    "reports": ".exchange/reports",
    "full disk at the start": 4096,  # the ledger cannot grow: nothing is done
    "full disk mid-batch": 256 * 1024,  # the ledger fills up while the first files are processed
}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    ws = Workspace.create(tmp_path_factory.mktemp("reference"))
    _workload(ws)
    run = ws.run()
    assert run.returncode == 1, str(run)
    return _outcome(ws)


@pytest.mark.parametrize("fault", list(FAULTS))
def test_a_fault_at_any_step_then_a_clean_run_gives_the_undisturbed_outcome(ws: Workspace, reference: dict,
                                                                           fault: str) -> None:
    _workload(ws)
    where = FAULTS[fault]
    folder = where if isinstance(where, str) else None
    if folder is not None:
        (ws.root / folder).mkdir(parents=True, exist_ok=True)
        (ws.root / folder).chmod(0o555)
    faulty = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root,
                          limit_bytes=where if isinstance(where, int) else None)
    if folder is not None:
        (ws.root / folder).chmod(0o755)
    no_traceback(faulty)
    assert faulty.returncode == 74, str(faulty)
    assert faulty.stdout == "" or any(line.startswith("fault: ") for line in faulty.lines), str(faulty)

    clean = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    no_traceback(clean)
    assert clean.returncode in (0, 1), str(clean)
    assert _outcome(ws) == reference
    idle = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    assert idle.returncode == 0, str(idle)
    assert _outcome(ws) == reference


# ------------------------------------------------- one input's fault stops no other

def test_an_unreadable_input_is_rejected_and_the_others_go_on(ws: Workspace) -> None:
    locked = small_export("CU-LOCKED", "2026-11-27T07:00:00Z", "10001")
    good = small_export("CU-GOOD", "2026-11-27T08:00:00Z", "10002")
    ws.drop("locked.xml", locked).chmod(0o000)
    ws.drop("good.xml", good)
    run = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    assert run.returncode == 1, str(run)
    no_traceback(run)
    message = "locked.xml: cannot be read: Permission denied (F7); make it readable, then 'exchange retry locked.xml'"
    assert f"rejected: locked.xml: {message}" in run.lines
    assert_manifest(ws.package(1), sequence=1, mode="delta", source_name="good.xml", source=good, run=run)
    (ws.rejected / "locked.xml").chmod(0o644)
    assert ws.cli("retry", "locked.xml").returncode == 0
    again = without_caps("run", "--settle", "0", "--no-transfer", cwd=ws.root)
    assert again.returncode == 0, str(again)
    assert_manifest(ws.package(2), sequence=2, mode="delta", source_name="locked.xml", source=locked, run=again)


def test_an_input_gone_before_it_is_claimed_is_no_fault(ws: Workspace, caplog) -> None:
    from exchange import config as config_module, to_mobile
    from exchange.ledger import Ledger
    from exchange.workspace import Workspace as RunWorkspace

    config = config_module.load(ws.config)
    ledger = Ledger(config.paths.state)
    try:
        run_ws = RunWorkspace(config, ledger, run_id=ledger.start_run())
        with caplog.at_level("INFO", logger="exchange"):
            run_ws.take(config.paths.inbox_cee / "gone.xml", "cee", None, to_mobile.process)
    finally:
        ledger.close()
    assert run_ws.summary.as_dict()["faults"] == [] and run_ws.summary.files == 0
    assert [r.getMessage() for r in caplog.records] == [
        "gone.xml: gone before it was claimed (taken by someone else?); nothing to do"]
    assert not (ws.inbox_cee / ".claimed").exists()


def test_watch_lives_through_a_fault_and_finishes_once_it_is_mended(ws: Workspace) -> None:
    data = small_export("CU-1", "2026-11-27T08:00:00Z", "10001")
    ws.outbox_mobile.chmod(0o555)
    proc = subprocess.Popen([*WITHOUT_PRIVILEGE, *cli_command("watch", "--settle", "0", "--no-transfer")],
                            cwd=ws.root, env=cli_env(),
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        ws.drop("customers.xml", data)
        err = b""
        end = time.monotonic() + DEADLINE_S
        while b"(inbox/cee stopped for this run)" not in err:
            assert time.monotonic() < end, err.decode()
            assert proc.poll() is None, err.decode()
            if select.select([proc.stderr], [], [], 1.0)[0]:
                err += os.read(proc.stderr.fileno(), 65536)
        assert proc.poll() is None  # alive after the fault
        ws.outbox_mobile.chmod(0o755)
        wait_for((ws.outbox_mobile / "MOB_MOBILE-PL_00000001.zip").exists, "watch to make the package once mended")
    finally:
        ws.outbox_mobile.chmod(0o755)
        proc.terminate()
        rest = proc.communicate(timeout=DEADLINE_S)[1]
    assert proc.returncode == 0
    assert b"Traceback" not in err + rest
    assert ws.inbox_names() == []


def test_a_plain_file_where_an_inbox_belongs_is_one_line(ws: Workspace) -> None:
    ws.inbox_cee.rmdir()
    ws.inbox_cee.write_text("not a folder\n")
    run = ws.run()
    assert (run.returncode, run.stdout, run.stderr) == (
        74, "", f"exchange: {ws.inbox_cee}: not a folder, but the workspace needs a folder there; "
                "move the file away\n")


def test_a_return_package_still_open_for_writing_is_not_taken(ws: Workspace) -> None:
    package = return_package(ws.root / "inbox" / "mobile" / "RET_1.zip", returned([new_customer(mid(4), "Firma D")]))
    with open(package, "ab"):
        run = ws.run()
        assert run.returncode == 0, str(run)
        assert run.lines == ["files processed: 0, records read: 0", "packages written: 0",
                             "left for the next run (still open for writing): RET_1.zip"]
    again = ws.run()
    assert again.returncode == 0, str(again)
    assert "import documents written: 1 (CEEIMP_MOBILE-PL_00000001.xml)" in again.lines
