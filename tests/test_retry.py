"""exchange retry: a rejected file goes back to its inbox and the next run processes it."""

from __future__ import annotations

from cli_util import EXAMPLES
from cli_util import exchange as _exchange


def test_retry_puts_a_fixed_file_back_and_the_next_run_processes_it(tmp_path):
    ws = tmp_path / "ws"
    assert _exchange(tmp_path, "init", str(ws)).returncode == 0
    good = (EXAMPLES / "customers_20261127.xml").read_text(encoding="utf-8")
    (ws / "inbox" / "cee" / "cu.xml").write_text(good.replace("<Name>Acme", "<Nam>Acme"), encoding="utf-8")
    first = _exchange(ws, "run", "--settle", "0")
    assert first.returncode == 1
    assert (ws / "inbox" / "rejected" / "cu.xml").exists()
    assert (ws / "inbox" / "rejected" / "cu.xml.error.txt").exists()

    # the operator fixes the file where it lies, then retries it
    (ws / "inbox" / "rejected" / "cu.xml").write_text(good, encoding="utf-8")
    retried = _exchange(ws, "retry", "cu.xml")
    assert retried.returncode == 0, retried.stderr
    archived = sorted((ws / "inbox" / "archive").glob("*/cu.xml.error.txt"))
    assert len(archived) == 1
    assert retried.stdout == f"cu.xml: back in {ws / 'inbox' / 'cee'}; its error report is kept as {archived[0]}\n"
    assert sorted(p.name for p in (ws / "inbox" / "rejected").iterdir()) == []
    assert (ws / "inbox" / "cee" / "cu.xml").read_text(encoding="utf-8") == good

    second = _exchange(ws, "run", "--settle", "0")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "packages written: 1 (MOB_MOBILE-PL_00000001.zip)" in second.stdout
    assert sorted(p.name for p in (ws / "outbox" / "mobile").iterdir()) == ["MOB_MOBILE-PL_00000001.zip"]


def test_retry_all_and_unknown_names(tmp_path):
    ws = tmp_path / "ws"
    assert _exchange(tmp_path, "init", str(ws)).returncode == 0
    (ws / "inbox" / "cee" / "junk.xml").write_text("not xml", encoding="utf-8")
    (ws / "inbox" / "mobile" / "junk.zip").write_bytes(b"not a zip")
    assert _exchange(ws, "run", "--settle", "0").returncode == 1

    unknown = _exchange(ws, "retry", "nope.xml")
    assert unknown.returncode == 2
    assert unknown.stderr == f"exchange: nope.xml: not a rejected file in {ws / 'inbox' / 'rejected'}\n"
    assert _exchange(ws, "retry").returncode == 2

    everything = _exchange(ws, "retry", "--all")
    assert everything.returncode == 0, everything.stderr
    assert (ws / "inbox" / "cee" / "junk.xml").exists()
    assert (ws / "inbox" / "mobile" / "junk.zip").exists()
    assert sorted(p.name for p in (ws / "inbox" / "rejected").iterdir()) == []


def test_retry_works_while_watch_runs_and_the_watcher_takes_the_file(tmp_path):
    """CLI.md (2026-12-02): retry while the recommended daemon holds the workspace."""
    import subprocess
    import time

    from workspace_util import cli_command, cli_env

    ws = tmp_path / "ws"
    assert _exchange(tmp_path, "init", str(ws)).returncode == 0
    good = (EXAMPLES / "customers_20261127.xml").read_text(encoding="utf-8")
    watcher = subprocess.Popen(cli_command("watch", "--settle", "0", "--no-transfer"), cwd=ws, env=cli_env(),
                               stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    rejected = ws / "inbox" / "rejected" / "cu.xml"
    package = ws / "outbox" / "mobile" / "MOB_MOBILE-PL_00000001.zip"
    try:
        (ws / "inbox" / "cee" / "cu.xml").write_text(good.replace("<Name>Acme", "<Nam>Acme"), encoding="utf-8")
        deadline = time.monotonic() + 60
        while not (rejected.exists() and rejected.with_name("cu.xml.error.txt").exists()):
            assert time.monotonic() < deadline and watcher.poll() is None, "watch did not reject cu.xml"
            time.sleep(0.05)
        rejected.write_text(good, encoding="utf-8")  # fixed where it lies
        retried = _exchange(ws, "retry", "cu.xml")
        assert retried.returncode == 0, retried.stderr
        assert retried.stdout.startswith(f"cu.xml: back in {ws / 'inbox' / 'cee'}; its error report is kept as ")
        while not package.exists():
            assert time.monotonic() < deadline and watcher.poll() is None, "watch did not take the retried file"
            time.sleep(0.05)
    finally:
        watcher.terminate()
        _out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert "Traceback" not in err
    assert sorted(p.name for p in (ws / "inbox" / "rejected").iterdir()) == []
