"""The ledger is precious (issue #15): refused when lost, one line when broken,
backed up after every run that changed it, checked and restored.

Every case runs the real command line as a subprocess on a real workspace.
"""

from __future__ import annotations

import fcntl
import os
import re
import sqlite3
from pathlib import Path

import pytest
from workspace_util import (
    CHANNEL,
    CliRun,
    Workspace,
    customer,
    customers,
    masterdata,
    occupation,
    run_cli_unprivileged,
    snapshot,
)

README = 'see README "Restoring the ledger"'
BACKUP_NAME = re.compile(r"state-(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z-run(\d+)\.db")

MASTERDATA = masterdata("MD-1", "2026-11-27T06:00:00Z", occupations=[occupation("CEO", "Chief executive")])


def export(n: int) -> bytes:
    """A small customer export, different for each ``n``."""
    return customers(f"CU-{n}", f"2026-11-27T07:{n:02d}:00Z", records=[customer(f"5{n:04d}", f"Firma {n}")])


@pytest.fixture
def ws(tmp_path) -> Workspace:
    return Workspace.create(tmp_path)


def state(ws: Workspace) -> Path:
    return ws.root / ".exchange" / "state.db"


def backups(ws: Workspace) -> list[str]:
    folder = ws.root / ".exchange" / "backups"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def remove_ledger(ws: Workspace) -> None:
    """What the operator of finding 7 did: ``rm .exchange/state.db*``."""
    for path in (ws.root / ".exchange").glob("state.db*"):
        path.unlink()


def unprivileged(ws: Workspace, *args: str) -> CliRun:
    return run_cli_unprivileged(*args, cwd=ws.root)


def first_run(ws: Workspace) -> None:
    """One export in, MOB_..._00000001.zip out."""
    ws.drop("masterdata.xml", MASTERDATA)
    run = ws.run()
    assert run.returncode == 0, str(run)
    assert ws.package_names() == [f"MOB_{CHANNEL}_00000001.zip"]


def taken(name: str) -> str:
    y, mo, d, h, mi, s, _run = BACKUP_NAME.fullmatch(name).groups()
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}Z"


def integrity(path: Path) -> list[str]:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("PRAGMA integrity_check")]
    finally:
        db.close()


# --------------------------------------------------------------- a lost ledger


def test_a_removed_ledger_is_refused_by_every_command_and_nothing_is_touched(ws):
    first_run(ws)
    [backup] = backups(ws)
    remove_ledger(ws)
    ws.drop("customers.xml", export(1))
    before = snapshot(ws.root)

    refusal = (f"exchange: {state(ws)}: the ledger is missing, but this workspace has history "
               f"(outbox/mobile/MOB_{CHANNEL}_00000001.zip); restore it with 'exchange ledger restore' from "
               f".exchange/backups/ (newest: {backup}), or {README}\n")
    for args in (["run", "--settle", "0"], ["status"], ["status", "--json"], ["explain", "CEO"],
                 ["retry", "--all"], ["watch", "--settle", "0", "--no-transfer"], ["ledger", "check"]):
        refused = ws.cli(*args)
        assert (refused.returncode, refused.stdout, refused.stderr) == (74, "", refusal), str(refused)

    assert not state(ws).exists()
    after = snapshot(ws.root)
    lock = ".exchange/lock"  # run, retry and watch take the lock (and write their PID) before they look
    assert {k: v for k, v in after.items() if k != lock} == {k: v for k, v in before.items() if k != lock}


def test_an_emptied_ledger_is_refused_and_without_backups_says_there_are_none(ws):
    ws.edit_config(lambda text: text.replace("# backup_count = 7", "backup_count = 0"))
    first_run(ws)
    assert backups(ws) == []
    state(ws).write_bytes(b"")
    package = (ws.outbox_mobile / f"MOB_{CHANNEL}_00000001.zip").read_bytes()
    ws.drop("customers.xml", export(1))

    refused = ws.run()
    assert (refused.returncode, refused.stdout) == (74, ""), str(refused)
    assert refused.stderr == (f"exchange: {state(ws)}: the ledger is empty (0 bytes), but this workspace has "
                              f"history (outbox/mobile/MOB_{CHANNEL}_00000001.zip); there is no backup in "
                              f".exchange/backups/ to restore; {README}\n")
    assert ws.package_names() == [f"MOB_{CHANNEL}_00000001.zip"]
    assert (ws.outbox_mobile / f"MOB_{CHANNEL}_00000001.zip").read_bytes() == package
    assert ws.inbox_names() == ["customers.xml"]
    assert state(ws).read_bytes() == b""


def test_a_ledger_without_files_or_sequences_is_refused_where_history_says_otherwise(ws):
    first_run(ws)
    db = sqlite3.connect(state(ws))
    with db:
        for table in ("files", "sequences", "runs"):
            db.execute(f"DELETE FROM {table}")
    db.close()

    refused = ws.cli("status")
    assert refused.returncode == 74, str(refused)
    assert refused.stderr.startswith(f"exchange: {state(ws)}: the ledger is empty (no files, no sequence "
                                     f"numbers, no runs), but this workspace has history "
                                     f"(outbox/mobile/MOB_{CHANNEL}_")


def test_a_fresh_workspace_still_starts_a_ledger(ws):
    status = ws.cli("status")
    assert status.returncode == 0, str(status)
    state(ws).write_bytes(b"")  # an empty file where no history is: as good as none
    first_run(ws)
    assert integrity(state(ws)) == ["ok"]


def test_runs_of_a_workspace_with_only_empty_runs_behind_it_are_not_refused(ws):
    for _ in range(2):  # each leaves a run report, which its ledger knows
        run = ws.run()
        assert run.returncode == 0, str(run)
    first_run(ws)


# ----------------------------------------------------------- a broken ledger


def test_junk_bytes_are_one_line_for_every_command(ws):
    first_run(ws)
    state(ws).write_bytes(b"this is not a ledger\n" * 300)
    line = (f"exchange: {state(ws)}: not a usable ledger (file is not a database); restore a backup with "
            f"'exchange ledger restore', or {README}\n")
    for args in (["run", "--settle", "0"], ["status"], ["explain", "CEO"], ["ledger", "check"]):
        result = ws.cli(*args)
        assert (result.returncode, result.stdout, result.stderr) == (74, "", line), str(result)


def test_a_ledger_this_user_cannot_write_is_one_line(ws):
    first_run(ws)
    os.chown(state(ws), 65534, 65534)
    state(ws).chmod(0o644)
    ws.drop("customers.xml", export(1))

    refused = unprivileged(ws, "run", "--settle", "0")
    assert (refused.returncode, refused.stdout) == (74, ""), refused
    assert refused.stderr == (f"exchange: {state(ws)}: cannot write the ledger: Permission denied (running as "
                              "uid 0; the file belongs to uid 65534, mode 0644)\n")
    assert ws.inbox_names() == ["customers.xml"]
    status = unprivileged(ws, "status")  # reading needs no more than reading
    assert status.returncode == 0, status

    state(ws).chmod(0o000)
    unreadable = unprivileged(ws, "status")
    assert (unreadable.returncode, unreadable.stdout) == (74, ""), unreadable
    assert unreadable.stderr == (f"exchange: {state(ws)}: cannot read the ledger: Permission denied (running as "
                                 "uid 0; the file belongs to uid 65534, mode 0000)\n")


def test_state_naming_a_folder_is_one_line(ws):
    ws.edit_config(lambda text: text.replace('# state = ".exchange/state.db"', 'state = "db/ledger"'))
    (ws.root / "db" / "ledger").mkdir(parents=True)
    line = (f"exchange: {ws.root / 'db' / 'ledger'}: a folder, not a ledger file (check 'state' in [paths] of "
            f"{ws.config})\n")
    for args in (["run", "--settle", "0"], ["status"]):
        result = ws.cli(*args)
        assert (result.returncode, result.stdout, result.stderr) == (74, "", line), str(result)


def test_a_plain_file_where_the_state_folder_belongs_is_one_line(ws):
    (ws.root / ".exchange").rmdir()
    (ws.root / ".exchange").write_text("not a folder\n")
    ws.drop("customers.xml", export(1))
    line = (f"exchange: {ws.root / '.exchange'}: not a folder, but the workspace keeps its ledger, lock and "
            "backups there; move the file away (or set 'state' in [paths])\n")
    for args in (["run", "--settle", "0"], ["status"], ["ledger", "restore"]):
        result = ws.cli(*args)
        assert (result.returncode, result.stdout, result.stderr) == (74, "", line), str(result)
    assert ws.inbox_names() == ["customers.xml"]


# --------------------------------------------------------------------- backups


def test_a_backup_follows_a_run_that_changed_the_ledger_and_only_such_a_run(ws):
    first_run(ws)
    [name] = backups(ws)
    assert BACKUP_NAME.fullmatch(name) and name.endswith("-run1.db"), name
    backup = ws.root / ".exchange" / "backups" / name
    assert "backed up" not in ws.runs[-1].stderr  # routine: the run's log is about its inputs
    assert integrity(backup) == ["ok"]
    assert backup.read_bytes()[18:20] == b"\x01\x01"  # a rollback-journal database: one file, no -wal
    copy = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    live = sqlite3.connect(f"file:{state(ws)}?mode=ro", uri=True)
    query = "SELECT name, state, output FROM files ORDER BY id"
    assert copy.execute(query).fetchall() == live.execute(query).fetchall() == [
        ("masterdata.xml", "archived", f"MOB_{CHANNEL}_00000001.zip")]
    copy.close()
    live.close()

    idle = ws.run()
    assert idle.returncode == 0, str(idle)
    assert backups(ws) == [name]


def test_backups_are_rotated_to_backup_count_and_listed_newest_first(ws):
    ws.edit_config(lambda text: text.replace("# backup_count = 7", "backup_count = 2"))
    first_run(ws)
    for n in (1, 2):
        ws.drop(f"customers{n}.xml", export(n))
        assert ws.run().returncode == 0
    names = backups(ws)
    assert [BACKUP_NAME.fullmatch(n)[7] for n in names] == ["2", "3"]

    listing = ws.cli("ledger", "backups")
    assert listing.returncode == 0, str(listing)
    folder = ws.root / ".exchange" / "backups"
    assert listing.lines == [f"{n}  {taken(n)}  run {BACKUP_NAME.fullmatch(n)[7]}  "
                             f"{(folder / n).stat().st_size / 1024:.1f} KiB" for n in reversed(names)]


def test_ledger_backup_takes_one_now_even_with_backup_count_0(ws):
    ws.edit_config(lambda text: text.replace("# backup_count = 7", "backup_count = 0"))
    first_run(ws)
    assert backups(ws) == []
    taken_now = ws.cli("ledger", "backup")
    assert taken_now.returncode == 0, str(taken_now)
    [name] = backups(ws)
    assert name.endswith("-run1.db")
    assert taken_now.lines == [f"backed up {state(ws)} to {ws.root / '.exchange' / 'backups' / name}"]
    assert integrity(ws.root / ".exchange" / "backups" / name) == ["ok"]


def test_a_failing_backup_is_an_error_in_the_log_and_the_run_still_counts(ws):
    first_run(ws)
    folder = ws.root / ".exchange" / "backups"
    folder.chmod(0o555)
    ws.drop("customers.xml", export(1))

    run = unprivileged(ws, "run", "--settle", "0")
    assert run.returncode == 0, run
    assert run.stdout.startswith("files processed: 1, records read: 1\n"
                                 f"packages written: 1 (MOB_{CHANNEL}_00000002.zip)\n")
    temp = re.search(r"failed: (\S+): Permission denied", run.stderr)
    assert temp and Path(temp[1]).parent == folder, run.stderr
    assert (f"ERROR backing up the ledger into {folder} failed: {temp[1]}: Permission denied; the run's work "
            "is done and recorded in the ledger, which has no backup of it yet\n") in run.stderr
    assert len(backups(ws)) == 1


# ------------------------------------------------------------------- restoring


def test_restore_after_rm_brings_the_ledger_back_and_f2_recognises_the_input(ws):
    first_run(ws)
    [backup] = backups(ws)
    package = (ws.outbox_mobile / f"MOB_{CHANNEL}_00000001.zip").read_bytes()
    remove_ledger(ws)

    restored = ws.cli("ledger", "restore")
    assert restored.returncode == 0, str(restored)
    assert restored.lines == [
        f"restored {state(ws)} from .exchange/backups/{backup} (taken {taken(backup)}, the ledger as of run 1)",
        "no run report is newer than the backup: the restored ledger is as of run 1",
    ]
    assert integrity(state(ws)) == ["ok"]

    ws.drop("masterdata.xml", MASTERDATA)  # dropped again: the restored ledger knows it
    again = ws.run()
    assert again.returncode == 0, str(again)
    assert ("duplicate: masterdata.xml (same content as masterdata.xml; archived, no output) (F2)"
            in again.lines), str(again)
    assert ws.package_names() == [f"MOB_{CHANNEL}_00000001.zip"]
    assert (ws.outbox_mobile / f"MOB_{CHANNEL}_00000001.zip").read_bytes() == package

    ws.drop("customers.xml", export(1))  # and numbering goes on where it was
    assert ws.run().returncode == 0
    assert ws.package_names() == [f"MOB_{CHANNEL}_00000001.zip", f"MOB_{CHANNEL}_00000002.zip"]


def test_restoring_an_older_backup_keeps_the_ledger_aside_and_says_what_it_lacks(ws):
    first_run(ws)
    [older] = backups(ws)
    ws.drop("customers.xml", export(1))
    assert ws.run().returncode == 0
    assert len(backups(ws)) == 2
    current = state(ws).read_bytes()
    Path(f"{state(ws)}-wal").write_bytes(b"a log that belongs to the replaced ledger")
    Path(f"{state(ws)}-shm").write_bytes(b"its index")

    restored = ws.cli("ledger", "restore", older)
    assert restored.returncode == 0, str(restored)
    [aside] = [p for p in (ws.root / ".exchange").iterdir() if re.fullmatch(r"state\.db\.replaced-\d{8}T\d{6}Z",
                                                                               p.name)]
    assert restored.lines == [
        f"restored {state(ws)} from .exchange/backups/{older} (taken {taken(older)}, the ledger as of run 1)",
        f"the ledger it replaced is kept as .exchange/{aside.name}",
        "not in the restored ledger: what run 2 did (see .exchange/reports/); an input processed since the "
        "backup is unknown to it, so dropped again it is processed again, not recognised as a duplicate",
        f"outputs this ledger has no record of (made after the backup): 1, first "
        f"outbox/mobile/MOB_{CHANNEL}_00000002.zip; the next run numbers its outputs from where the backup stood "
        f"and may reuse their numbers: {README}",
    ]
    assert aside.read_bytes() == current
    assert Path(f"{aside}-wal").read_bytes() == b"a log that belongs to the replaced ledger"
    assert not Path(f"{state(ws)}-wal").exists() and not Path(f"{state(ws)}-shm").exists()
    live = sqlite3.connect(f"file:{state(ws)}?mode=ro", uri=True)
    assert live.execute("SELECT name FROM files").fetchall() == [("masterdata.xml",)]
    live.close()


def test_restore_is_refused_while_the_workspace_is_held(ws):
    first_run(ws)
    lock = ws.root / ".exchange" / "lock"
    before = state(ws).read_bytes()
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.ftruncate(fd, 0)
        os.pwrite(fd, b"4242\n", 0)
        refused = ws.cli("ledger", "restore")
    finally:
        os.close(fd)
    assert (refused.returncode, refused.stdout) == (75, ""), str(refused)
    assert refused.stderr == (f"exchange: the workspace is in use by another run or watcher (PID 4242); "
                              f"lock file {lock}\n")
    assert state(ws).read_bytes() == before
    assert [p.name for p in (ws.root / ".exchange").glob("state.db*")] == ["state.db"]


def test_restore_with_nothing_to_restore_or_a_name_that_is_none(ws):
    nothing = ws.cli("ledger", "restore")
    assert (nothing.returncode, nothing.stdout) == (1, ""), str(nothing)
    assert nothing.stderr == (f"exchange: no backup in {ws.root / '.exchange' / 'backups'} to restore "
                              f"({README})\n")
    unknown = ws.cli("ledger", "restore", "state-nope.db")
    assert (unknown.returncode, unknown.stdout) == (2, ""), str(unknown)
    assert unknown.stderr == (f"exchange: state-nope.db: no such backup (neither a file in "
                              f"{ws.root / '.exchange' / 'backups'} nor a path); 'exchange ledger backups' "
                              "lists them\n")


# ---------------------------------------------------------------- ledger check


def corrupt_an_index(path: Path) -> None:
    """Change one key of the files_sha256 index in place: the table and the index now disagree,
    which PRAGMA integrity_check reports as a row missing from the index."""
    db = sqlite3.connect(path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'files_sha256'").fetchone()[0]
    sha256 = db.execute("SELECT sha256 FROM files ORDER BY id LIMIT 1").fetchone()[0]
    db.close()
    assert not Path(f"{path}-wal").exists()  # every page is in the file itself
    with open(path, "r+b") as f:
        f.seek((root - 1) * page_size)
        page = f.read(page_size)
        at = page.index(sha256.encode())
        f.seek((root - 1) * page_size + at)
        f.write(sha256[::-1].encode())


def test_ledger_check_says_ok_then_finds_the_damage_and_restore_repairs_it(ws):
    first_run(ws)
    ok = ws.cli("ledger", "check")
    assert (ok.returncode, ok.stdout, ok.stderr) == (0, f"{state(ws)}: ok\n", ""), str(ok)

    corrupt_an_index(state(ws))
    assert integrity(state(ws)) == ["row 1 missing from index files_sha256"]  # really damaged
    damaged = ws.cli("ledger", "check")
    assert damaged.returncode == 1, str(damaged)
    assert damaged.lines == [f"{state(ws)}: 1 problem(s) found by the integrity check; restore a backup with "
                             "'exchange ledger restore'",
                             "  row 1 missing from index files_sha256"]

    restored = ws.cli("ledger", "restore")
    assert restored.returncode == 0, str(restored)
    again = ws.cli("ledger", "check")
    assert (again.returncode, again.stdout) == (0, f"{state(ws)}: ok\n"), str(again)


def test_restore_refuses_a_damaged_backup(ws):
    first_run(ws)
    [name] = backups(ws)
    damaged = ws.root / "damaged.db"
    damaged.write_bytes((ws.root / ".exchange" / "backups" / name).read_bytes())
    corrupt_an_index(damaged)
    before = state(ws).read_bytes()

    refused = ws.cli("ledger", "restore", str(damaged))
    assert (refused.returncode, refused.stdout) == (74, ""), str(refused)
    assert refused.stderr == (f"exchange: {damaged}: the backup fails its integrity check (row 1 missing from "
                              "index files_sha256); choose another with 'exchange ledger restore NAME' "
                              "('exchange ledger backups' lists them)\n")
    assert state(ws).read_bytes() == before
