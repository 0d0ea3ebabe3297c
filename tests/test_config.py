"""Configuration that cannot hurt (issue #15): what exchange.toml may not say.

Each refused configuration is run through the real command line in a
workspace made by ``exchange init``: exit 2, one line on stderr naming the
file and the key, and nothing created or changed anywhere under the test's
folder (no ledger, no inbox folders, no typo'd folder). The accepted
configurations next to them show that the checks refuse only what they
should: the default layout, separate custom paths, folders still to be
created under an existing parent, and unusual but valid channel codes.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from workspace_util import Workspace, customer, customers, run_cli, snapshot

RULE = "1-32 of A-Z a-z 0-9 _ . -, starting with a letter or digit"
SEPARATE = "inbox, outbox and the state folder must be separate folders, none inside another"
SFTP = ('\n[channels.MOBILE-PL.sftp]\nhost = "sftp.example"\nuser = "u"\nkey_file = "k"\nknown_hosts = "kh"\n'
        'upload_dir = "/up"\ndownload_dir = "/down"\n')


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path)


def real(path: Path) -> Path:
    """The path as the command sees it: its working folder comes from getcwd, which resolves links."""
    return Path(os.path.realpath(path))


def with_paths(ws: Workspace, lines: str) -> None:
    """Settings in [paths] (the table init writes holds only comments)."""
    ws.edit_config(lambda text: re.sub(r"^\[paths\].*$", lambda _: "[paths]\n" + lines, text, count=1,
                                       flags=re.MULTILINE))


def assert_refused(ws: Workspace, message: str, command: str = "run") -> None:
    """Exit 2 with ``message`` about the workspace's config, and nothing touched anywhere near it."""
    around = ws.root.parent
    before = snapshot(around)
    run = ws.cli(command, "--settle", "0", "--no-transfer")
    assert run.returncode == 2, str(run)
    assert run.stdout == ""
    assert run.stderr == f"exchange: {real(ws.config)}: {message}\n", str(run)
    assert snapshot(around) == before
    assert not (ws.root / ".exchange" / "state.db").exists()


def assert_runs(ws: Workspace, inbox: Path) -> None:
    """A first run creates what is missing; an export then put into ``inbox``/cee becomes package 1."""
    first = ws.run()
    assert first.returncode == 0, str(first)
    (inbox / "cee" / "cu.xml").write_bytes(customers("CU-1", "2026-11-27T22:00:00Z", records=[customer("1", "One")]))
    run = ws.run()
    assert run.returncode == 0, str(run)
    assert run.lines[:2] == ["files processed: 1, records read: 1",
                             "packages written: 1 (MOB_MOBILE-PL_00000001.zip)"], str(run)


# ------------------------------------------------------------------- numbers

NUMBERS = {
    "settle_seconds nan": (lambda t: t.replace("settle_seconds = 2\n", "settle_seconds = nan\n"),
                           "'settle_seconds' must be a finite number, not nan"),
    "settle_seconds inf": (lambda t: t.replace("settle_seconds = 2\n", "settle_seconds = inf\n"),
                           "'settle_seconds' must be a finite number, not inf"),
    "settle_seconds -inf": (lambda t: t.replace("settle_seconds = 2\n", "settle_seconds = -inf\n"),
                            "'settle_seconds' must be a finite number, not -inf"),
    "settle_seconds over a day": (lambda t: t.replace("settle_seconds = 2\n", "settle_seconds = 86400.5\n"),
                                  "'settle_seconds' must be at most 86400"),
    "scan_seconds +inf": (lambda t: "scan_seconds = +inf\n" + t,
                          "'scan_seconds' must be a finite number, not inf"),
    "poll_seconds huge": (lambda t: "poll_seconds = 1e300\n" + t, "'poll_seconds' must be at most 86400"),
    "archive_days past the calendar": (lambda t: "archive_days = 36501\n" + t,
                                       "'archive_days' must be at most 36500"),
    "sftp io_timeout nan": (lambda t: t + SFTP + "io_timeout = nan\n",
                            "'io_timeout' in [channels.MOBILE-PL.sftp] must be a finite number, not nan"),
    "sftp connect_timeout inf": (lambda t: t + SFTP + "connect_timeout = inf\n",
                                 "'connect_timeout' in [channels.MOBILE-PL.sftp] must be a finite number, not inf"),
    "sftp retry_backoff_seconds -inf": (
        lambda t: t + SFTP + "retry_backoff_seconds = -inf\n",
        "'retry_backoff_seconds' in [channels.MOBILE-PL.sftp] must be a finite number, not -inf"),
    "sftp keepalive_seconds over a day": (
        lambda t: t + SFTP + "keepalive_seconds = 86401\n",
        "'keepalive_seconds' in [channels.MOBILE-PL.sftp] must be at most 86400"),
    "sftp retries": (lambda t: t + SFTP + "retries = 11\n",
                     "'retries' in [channels.MOBILE-PL.sftp] must be at most 10"),
    "sftp port": (lambda t: t + SFTP + "port = 65536\n", "'port' in [channels.MOBILE-PL.sftp] must be at most 65535"),
}


@pytest.mark.parametrize("case", NUMBERS)
def test_a_number_that_is_not_finite_or_out_of_bounds_is_refused(ws: Workspace, case):
    change, message = NUMBERS[case]
    ws.edit_config(change)
    assert_refused(ws, message)


def test_numbers_at_their_bounds_are_accepted(ws: Workspace):
    ws.edit_config(lambda t: "archive_days = 36500\nscan_seconds = 86400\npoll_seconds = 1\n"
                   + t.replace("settle_seconds = 2\n", "settle_seconds = 0.0\n")
                   + SFTP + "retries = 10\nport = 65535\nio_timeout = 86400.0\nretry_backoff_seconds = 0\n")
    run = ws.run(0, "--no-transfer")
    assert run.returncode == 0, str(run)


# ------------------------------------------------------------ channel names

BAD_CHANNELS = {
    "a space": ('"MOBILE PL"', "MOBILE PL"),
    "a slash": ('"MOBILE/PL"', "MOBILE/PL"),
    "a way up": ('"../x"', "../x"),
    "33 characters": ("A" * 33, "A" * 33),
    "a leading dot": ('".MOBILE"', ".MOBILE"),
    "a leading dash": ("-MOBILE", "-MOBILE"),
    "empty": ('""', ""),
    "not ASCII": ('"MOBILE-ŁÓDŹ"', "MOBILE-ŁÓDŹ"),
}


@pytest.mark.parametrize("case", BAD_CHANNELS)
def test_a_channel_name_that_init_would_refuse_is_refused(ws: Workspace, case):
    key, name = BAD_CHANNELS[case]
    ws.edit_config(lambda t: t.replace("[channels.MOBILE-PL]\n", f"[channels.{key}]\n"))
    assert_refused(ws, f"channel {name!r} in [channels] is not a valid sales channel code ({RULE})")


def test_init_refuses_the_same_names_in_the_same_words(tmp_path: Path):
    run = run_cli("init", "w", "--channel", "../x", cwd=tmp_path)
    assert run.returncode == 2, str(run)
    assert run.stdout == ""
    assert run.stderr == f"exchange: --channel '../x' is not a valid sales channel code ({RULE})\n"
    assert list(tmp_path.iterdir()) == []


def test_unusual_but_valid_channel_names_are_accepted(ws: Workspace):
    longest = "A" * 32
    ws.edit_config(lambda t: t + f'\n[channels."MOBILE.PL_2"]\n\n[channels.{longest}]\n\n[channels.9]\n')
    run = ws.run()
    assert run.returncode == 0, str(run)


# ----------------------------------------------------------------- folders


def test_inbox_and_outbox_the_same_folder_is_refused(ws: Workspace):
    # Finding 5: the second run would take the first run's packages as inputs.
    with_paths(ws, 'inbox = "x"\noutbox = "x"\n')
    x = real(ws.root) / "x"
    assert_refused(ws, f"'inbox' in [paths] ({x}) is the same folder as 'outbox' in [paths] ({x}); {SEPARATE}")


def test_outbox_inside_inbox_is_refused(ws: Workspace):
    with_paths(ws, 'outbox = "inbox/out"\n')
    root = real(ws.root)
    assert_refused(ws, f"'outbox' in [paths] ({root}/inbox/out) is inside 'inbox' in [paths] ({root}/inbox); "
                       f"{SEPARATE}")


def test_inbox_inside_outbox_is_refused(ws: Workspace):
    with_paths(ws, f'inbox = "{ws.root / "outbox" / "in"}"\n')  # absolute paths are compared the same way
    root = real(ws.root)
    assert_refused(ws, f"'inbox' in [paths] ({root}/outbox/in) is inside 'outbox' in [paths] ({root}/outbox); "
                       f"{SEPARATE}")


def test_state_inside_inbox_is_refused(ws: Workspace):
    with_paths(ws, 'state = "inbox/.exchange/state.db"\n')
    root = real(ws.root)
    assert_refused(ws, f"'state' in [paths] (state folder {root}/inbox/.exchange) is inside 'inbox' in [paths] "
                       f"({root}/inbox); {SEPARATE}")


def test_state_folder_the_same_as_outbox_is_refused(ws: Workspace):
    with_paths(ws, 'state = "outbox/state.db"\n')
    root = real(ws.root)
    assert_refused(ws, f"'outbox' in [paths] ({root}/outbox) is the same folder as 'state' in [paths] "
                       f"(state folder {root}/outbox); {SEPARATE}")


def test_inbox_inside_the_state_folder_is_refused(ws: Workspace):
    with_paths(ws, 'inbox = ".exchange/inbox"\n')
    root = real(ws.root)
    assert_refused(ws, f"'inbox' in [paths] ({root}/.exchange/inbox) is inside 'state' in [paths] "
                       f"(state folder {root}/.exchange); {SEPARATE}")


def test_a_symbolic_link_does_not_hide_the_same_folder(ws: Workspace):
    (ws.root / "in").symlink_to("outbox", target_is_directory=True)
    with_paths(ws, 'inbox = "in"\n')
    root = real(ws.root)
    assert_refused(ws, f"'inbox' in [paths] ({root}/outbox) is the same folder as 'outbox' in [paths] "
                       f"({root}/outbox); {SEPARATE}")


def test_watch_refuses_the_same_folders_before_it_starts(ws: Workspace):
    with_paths(ws, 'outbox = "inbox"\n')
    inbox = real(ws.root) / "inbox"
    assert_refused(ws, f"'inbox' in [paths] ({inbox}) is the same folder as 'outbox' in [paths] ({inbox}); "
                       f"{SEPARATE}", command="watch")


def test_a_missing_parent_of_inbox_is_refused(ws: Workspace, tmp_path: Path):
    typo = real(tmp_path) / "exchnage" / "inbox"
    with_paths(ws, f'inbox = "{typo}"\n')
    assert_refused(ws, f"'inbox' in [paths] is {typo}, but its parent folder, {typo.parent}, does not exist; "
                       "create it, or fix the path")


def test_a_missing_parent_of_outbox_is_refused(ws: Workspace):
    with_paths(ws, 'outbox = "out/box"\n')
    root = real(ws.root)
    assert_refused(ws, f"'outbox' in [paths] is {root}/out/box, but its parent folder, {root}/out, does not "
                       "exist; create it, or fix the path")


def test_a_missing_parent_of_the_state_folder_is_refused(ws: Workspace):
    with_paths(ws, 'state = "var/.exchange/state.db"\n')
    root = real(ws.root)
    assert_refused(ws, f"'state' in [paths] is {root}/var/.exchange/state.db, but the parent folder of its "
                       f"folder, {root}/var, does not exist; create it, or fix the path")


def test_a_parent_that_is_a_file_is_refused(ws: Workspace):
    with_paths(ws, 'outbox = "exchange.toml/outbox"\n')
    root = real(ws.root)
    assert_refused(ws, f"'outbox' in [paths] is {root}/exchange.toml/outbox, but its parent folder, "
                       f"{root}/exchange.toml, is not a folder; fix the path")


# ---------------------------------------------------------- what still works


def test_the_default_configuration_runs(ws: Workspace):
    assert_runs(ws, ws.root / "inbox")
    assert (ws.outbox_mobile / "MOB_MOBILE-PL_00000001.zip").is_file()


def test_separate_custom_paths_run_and_their_folders_are_created(ws: Workspace, tmp_path: Path):
    # data/ exists, the folders in it do not yet: they are created as a workspace's are.
    # The outbox is outside the workspace; "inbox-state" beside "inbox" is not inside it.
    (ws.root / "data").mkdir()
    shared = real(tmp_path) / "shared-out"
    with_paths(ws, f'inbox = "data/inbox"\noutbox = "{shared}"\nstate = "data/inbox-state/state.db"\n')
    assert_runs(ws, ws.root / "data" / "inbox")
    assert (shared / "mobile" / "MOB_MOBILE-PL_00000001.zip").is_file()
    assert (ws.root / "data" / "inbox-state" / "state.db").is_file()
    assert not (ws.root / ".exchange" / "state.db").exists()


def test_missing_workspace_folders_under_an_existing_parent_are_created(ws: Workspace):
    # As after a fresh clone of a repository that holds a workspace: inbox/ may lack
    # its sub-folders, and outbox/ and .exchange/ may be missing altogether.
    (ws.root / "inbox" / "cee").rmdir()
    for folder in ("outbox/mobile", "outbox/cee", "outbox", ".exchange"):
        (ws.root / folder).rmdir()
    assert_runs(ws, ws.root / "inbox")
    assert (ws.outbox_mobile / "MOB_MOBILE-PL_00000001.zip").is_file()


# ------------------------------------------------------- --settle, the override


@pytest.mark.parametrize("command, value", [("run", "nan"), ("run", "inf"), ("run", "-inf"), ("run", "-1"),
                                            ("run", "86400.5"), ("watch", "nan")])
def test_settle_option_takes_what_settle_seconds_takes(ws: Workspace, command: str, value: str):
    before = snapshot(ws.root.parent)
    run = ws.cli(command, "--settle", value, "--no-transfer")
    assert run.returncode == 2, str(run)
    assert run.stdout == ""
    assert run.stderr == (f"Usage: exchange {command} [OPTIONS]\nTry 'exchange {command} --help' for help.\n\n"
                          f"Error: Invalid value for '--settle': '{value}' is not a number of seconds "
                          "from 0 to 86400\n"), str(run)
    assert snapshot(ws.root.parent) == before
