"""SFTP partners against a real OpenSSH sshd on 127.0.0.1: no mocks.

Every test runs ``exchange run`` as a process against its own sshd (see
``conftest.py``), with the partner's folders as local folders the test
reads and writes directly, playing the partner. Crashes are real: sshd is
killed by PID mid-upload, and ``exchange`` is SIGKILLed right before or
after a remote operation by a two-line wrapper around that paramiko method
(the real method runs; then the process dies).

Waiting is polling with a deadline, never a fixed sleep.
"""

from __future__ import annotations

import getpass
import hashlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
import sshd_util
from inbound_util import InboundWorkspace, mid, new_customer, parse_import, return_package, returned
from packages_util import Entry, manifest_xml
from sshd_util import SshKeys
from workspace_util import CHANNEL, CliRun, cli_env, customer, customers, finish_cli, run_cli, start_cli

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
CZ = "MOBILE-CZ"
DEADLINE = 60.0  # seconds for anything the tests wait for
BIG = 192 << 20  # a package that takes a while to upload, even at 300 MB/s


# ------------------------------------------------------------------ helpers


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return f'"{value}"' if isinstance(value, (str, Path)) else str(value)


@dataclass
class Site:
    """A workspace whose channel has an SFTP partner, and that partner's folders."""

    ws: InboundWorkspace
    upload: Path  # the partner's upload_dir (where packages arrive)
    download: Path  # the partner's download_dir (where it leaves returns)
    known_hosts: Path

    def run(self, settle: float = 0, *extra: str) -> CliRun:
        return self.ws.run(settle, *extra)

    def upload_names(self) -> list[str]:
        return sorted(p.name for p in self.upload.iterdir())

    def sent(self) -> Path:
        return self.ws.root / "outbox" / "mobile" / "sent"

    def deliveries(self) -> list[tuple[str, str, str, str]]:
        with sqlite3.connect(self.ws.root / ".exchange" / "state.db") as db:
            return db.execute("SELECT direction, channel, name, state FROM deliveries ORDER BY id").fetchall()


def sftp_table(channel: str, port: int, key: Path, known_hosts: Path, upload: Path, download: Path,
               **options) -> str:
    settings = {"host": "127.0.0.1", "port": port, "user": getpass.getuser(),
                "key_file": key, "known_hosts": known_hosts, "upload_dir": upload, "download_dir": download,
                "retries": 2, "retry_backoff_seconds": 0.05, "connect_timeout": 5, "io_timeout": 10, **options}
    body = "".join(f"{k} = {toml_value(v)}\n" for k, v in settings.items() if v is not None)
    return f"\n[channels.{channel}.sftp]\n{body}"


def make_site(tmp_path: Path, server: sshd_util.Sshd, key: Path, *, known_hosts: str | None = None,
              port: int | None = None, **options) -> Site:
    """A new workspace (``exchange init``) with a partner on ``server``; known_hosts from ssh-keyscan,
    as README tells, unless given."""
    ws = InboundWorkspace.create(tmp_path)
    partner = tmp_path / "partner"
    upload, download = partner / "to-mobile", partner / "from-mobile"
    upload.mkdir(parents=True)
    download.mkdir(parents=True)
    known = tmp_path / "known_hosts"
    known.write_text(server.keyscan() if known_hosts is None else known_hosts)
    site = Site(ws, upload, download, known)
    ws.edit_config(lambda text: text + sftp_table(CHANNEL, port or server.port, key, known, upload, download,
                                                  **options))
    return site


def export(n: int, channel: str = CHANNEL) -> bytes:
    """A small, valid CEE customer export for ``channel``."""
    return customers(f"EXP-{channel}-{n}", f"2026-11-27T1{n % 10}:00:00Z",
                     records=[customer(f"{n:05d}", f"Firma {n}")], channel=channel)


def return_bytes(tmp_path: Path, n: int, **options) -> bytes:
    """A small, valid return package."""
    path = return_package(tmp_path / f"ret-{n}.zip",
                          returned([new_customer(mid(n), f"Nowa Firma {n}")]), sequence=n, **options)
    return path.read_bytes()


def big_return_package(path: Path, records: int, padding: int) -> Path:
    """A valid return package made big by whitespace between its records, stored uncompressed; written
    as a stream (pytest's own memory stays small: the CLI tests measure their children's peak RSS,
    which includes this process's)."""
    header, footer = returned([]).split(b"</ReturnedCustomers>")
    data = path.with_name(path.name + ".customers.xml")
    digest = hashlib.sha256()
    with open(data, "wb") as out:
        for chunk in (header, *(new_customer(mid(n), f"Firma {n}").encode() + b" " * padding
                                for n in range(1, records + 1)), b"</ReturnedCustomers>" + footer):
            out.write(chunk)
            digest.update(chunk)
    entry = Entry("customers.xml", records, data.stat().st_size, digest.hexdigest())
    manifest = manifest_xml("from-mobile", [entry], channel=CHANNEL, sequence=1,
                            created_at="2026-11-27T16:46:00+01:00", package_id=f"RET-{CHANNEL}-0001")
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive, open(data, "rb") as source:
        archive.writestr("manifest.xml", manifest)
        with archive.open("customers.xml", "w") as member:
            shutil.copyfileobj(source, member, 1 << 20)
    data.unlink()
    return path


def transfer_errors(run: CliRun) -> list[str]:
    return [line for line in run.lines if line.startswith("transfer failed: ")]


def assert_clean(run: CliRun, code: int = 0) -> None:
    assert run.returncode == code, str(run)
    assert "Traceback" not in run.stderr, str(run)


def fake_package(folder: Path, sequence: int, size: int, channel: str = CHANNEL) -> Path:
    """A package waiting in outbox/mobile/ (random bytes: what is pushed is never opened).

    The workspace gets its ledger first, from a run with nothing to do: outputs in a
    workspace without a ledger are history whose ledger was lost, which runs refuse."""
    workspace = folder.parent.parent
    if (workspace / "exchange.toml").exists() and not (workspace / ".exchange" / "state.db").exists():
        idle = run_cli("run", "--settle", "0", "--no-transfer", cwd=workspace)
        assert idle.returncode == 0, str(idle)
    path = folder / f"MOB_{channel}_{sequence:08d}.zip"
    with open(path, "wb") as f:
        for start in range(0, size, 1 << 20):
            f.write(os.urandom(min(1 << 20, size - start)))
    return path


#: ``exchange`` with one paramiko SFTPClient method wrapped: SIGKILL before or after the real call.
CRASHING_EXCHANGE = """
import os, signal, sys
import paramiko
method, when = sys.argv[1], sys.argv[2]
real = getattr(paramiko.SFTPClient, method)
def crash(self, *args, **kwargs):
    if when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    real(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
setattr(paramiko.SFTPClient, method, crash)
sys.argv = ["exchange", *sys.argv[3:]]
from exchange.cli import main
main()
"""


def run_crashing(site: Site, method: str, when: str) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-c", CRASHING_EXCHANGE, method, when, "run", "--settle", "0"],
                          cwd=site.ws.root, env=cli_env(), stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=120, check=False)
    assert done.returncode == -signal.SIGKILL, done
    return done


# ------------------------------------------------------------- round trip


@pytest.mark.parametrize("done_dir", [False, True], ids=["delete", "done_dir"])
def test_push_and_pull_round_trip(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys, done_dir: bool):
    done = tmp_path / "partner" / "done"
    site = make_site(tmp_path, sshd, ssh_keys.client, done_dir=done if done_dir else None)
    if done_dir:
        done.mkdir()
    ws = site.ws
    ws.drop("customers_20261127.xml", (EXAMPLES / "customers_20261127.xml").read_bytes())
    returned_package = (EXAMPLES / "RET_MOBILE-PL_0007.zip").read_bytes()
    (site.download / "RET_MOBILE-PL_0007.zip").write_bytes(returned_package)
    for ignored in (".RET_MOBILE-PL_0008.zip", "RET_MOBILE-PL_0009.zip.part", "notes.txt"):
        (site.download / ignored).write_bytes(b"not for us")
    # leftovers in upload_dir: a temporary file of ours (stale), and somebody else's
    (site.upload / f".MOB_{CHANNEL}_00000099.zip.part").write_bytes(b"half")
    (site.upload / ".other.zip.part").write_bytes(b"not ours")

    run = site.run()
    assert_clean(run)
    package = f"MOB_{CHANNEL}_00000001.zip"
    assert run.lines[1] == f"packages written: 1 ({package})", str(run)
    assert run.lines[2] == f"import documents written: 1 (CEEIMP_{CHANNEL}_00000001.xml)", str(run)
    # pushed: the partner has exactly the package, byte for byte; ours is in sent/
    assert site.upload_names() == [".other.zip.part", package]
    assert sha256(site.upload / package) == sha256(site.sent() / package)
    assert list((ws.root / "outbox" / "mobile").glob("*.zip")) == []
    # pulled: the return package was imported, byte for byte what the partner left, and taken off the server
    archived = list((ws.root / "inbox" / "archive").rglob("RET_MOBILE-PL_0007.zip"))
    assert [sha256(p) for p in archived] == [hashlib.sha256(returned_package).hexdigest()]
    assert sorted(p.name for p in site.download.iterdir()) == [".RET_MOBILE-PL_0008.zip", "RET_MOBILE-PL_0009.zip.part",
                                                                "notes.txt"]
    if done_dir:
        assert sha256(done / "RET_MOBILE-PL_0007.zip") == hashlib.sha256(returned_package).hexdigest()
    assert site.deliveries() == [("pull", CHANNEL, "RET_MOBILE-PL_0007.zip", "taken"),
                                 ("push", CHANNEL, package, "delivered")]

    # a second run has nothing to move: the delivered file is untouched
    before = (site.upload / package).stat()
    run = site.run()
    assert_clean(run)
    after = (site.upload / package).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert len(site.deliveries()) == 2


def test_packages_go_in_sequence_order(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys):
    site = make_site(tmp_path, sshd, ssh_keys.client)
    outbox = site.ws.root / "outbox" / "mobile"
    for sequence in (3, 1, 2):
        fake_package(outbox, sequence, 1000 * sequence)
    run = site.run()
    assert_clean(run)
    pushed = [line.split(": pushed ")[1].split()[0] for line in run.stderr.splitlines() if ": pushed " in line]
    assert pushed == [f"MOB_{CHANNEL}_{n:08d}.zip" for n in (1, 2, 3)], run.stderr


def test_a_package_already_on_the_server(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys):
    """Same name and size (e.g. the ledger was lost after a delivery): not uploaded again. Same name, other
    size: never overwritten, and the packages after it wait (sequence order)."""
    site = make_site(tmp_path, sshd, ssh_keys.client)
    outbox = site.ws.root / "outbox" / "mobile"
    first, second, third = (fake_package(outbox, n, 1000 + n) for n in (1, 2, 3))
    (site.upload / first.name).write_bytes(first.read_bytes())
    (site.upload / second.name).write_bytes(b"something else")
    seen = (site.upload / first.name).stat()
    run = site.run()
    assert_clean(run, 1)
    assert transfer_errors(run) == [
        (f"transfer failed: {CHANNEL}: push to {sshd.user}@127.0.0.1:{sshd.port} failed: {second.name} is already "
         f"on the server with 14 bytes, ours has 1002: not overwritten (ask the partner what it is); later "
         "packages wait behind it")]
    now = (site.upload / first.name).stat()
    assert (now.st_ino, now.st_mtime_ns) == (seen.st_ino, seen.st_mtime_ns)
    assert (site.sent() / first.name).exists() and second.exists() and third.exists()
    assert site.upload_names() == [first.name, second.name]
    assert site.deliveries() == [("push", CHANNEL, first.name, "delivered")]


@pytest.mark.slow
def test_large_package_both_ways_with_checksums(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys):
    """Big enough for many pipelined requests and the prefetch limit: 80 MiB each way, in-process."""
    from exchange.config import load
    from exchange.partners.sftp import SftpPartner

    site = make_site(tmp_path, sshd, ssh_keys.client)
    partner = SftpPartner(load(site.ws.config).channels[CHANNEL].sftp)
    local = fake_package(tmp_path, 7, 80 << 20)
    shutil.copyfile(local, site.download / "RET_big.zip")  # (not through memory: pytest's RSS is measured)
    with partner.connect() as session:
        session.upload(local, local.name)
        assert session.outgoing(local.name).part == local.stat().st_size
        session.publish(local.name)
        with open(tmp_path / "got.zip", "wb") as out:
            assert session.fetch("RET_big.zip", out) == 80 << 20
    assert sha256(site.upload / local.name) == sha256(local) == sha256(tmp_path / "got.zip")
    assert site.upload_names() == [local.name]


# --------------------------------------------------------------- host keys


def test_hashed_known_hosts_entries_work(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys):
    hashed = subprocess.run(["ssh-keyscan", "-H", "-p", str(sshd.port), "127.0.0.1"], check=True,
                            capture_output=True, text=True).stdout
    assert hashed.startswith("|1|")
    site = make_site(tmp_path, sshd, ssh_keys.client, known_hosts=hashed)
    fake_package(site.ws.root / "outbox" / "mobile", 1, 1000)
    assert_clean(site.run())
    assert site.upload_names() == [f"MOB_{CHANNEL}_00000001.zip"]


@pytest.mark.parametrize("offered, pinned", [
    (["host_rsa"], "host_rsa"),  # RSA host key, rsa-sha2 signatures
    (["host", "host_ecdsa", "host_rsa"], "host_ecdsa"),  # the server offers the pinned type, not its first
], ids=["rsa", "ecdsa-of-three"])
def test_host_key_types(tmp_path: Path, sshd_binary: Path, ssh_keys: SshKeys, offered: list[str], pinned: str):
    server = sshd_util.Sshd(tmp_path / "sshd", [getattr(ssh_keys, k) for k in offered], ssh_keys.authorized,
                            binary=sshd_binary).start()
    try:
        known = server.known_hosts_line(getattr(ssh_keys, pinned))
        site = make_site(tmp_path, server, ssh_keys.client, known_hosts=known)
        fake_package(site.ws.root / "outbox" / "mobile", 1, 1000)
        assert_clean(site.run())
        assert site.upload_names() == [f"MOB_{CHANNEL}_00000001.zip"]
    finally:
        server.stop()


@pytest.mark.parametrize("known", ["empty", "missing", "other hosts"])
def test_unknown_host_key_is_refused(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys, known: str):
    key = ssh_keys.host.with_suffix(".pub").read_text()
    other = f"[127.0.0.1]:{sshd.port + 1} {key}127.0.0.1 {key}"  # the same key, for another port and for port 22
    site = make_site(tmp_path, sshd, ssh_keys.client, known_hosts=other if known == "other hosts" else "")
    if known == "missing":
        site.known_hosts.unlink()
    package = fake_package(site.ws.root / "outbox" / "mobile", 1, 1000)
    run = site.run()
    assert_clean(run, 1)
    errors = transfer_errors(run)
    assert len(errors) == 2, str(run)  # pull and push, each refused at once (never retried)
    kh = site.known_hosts
    if known == "missing":
        expected = (f"known_hosts file {kh} does not exist; pin the partner's host key: ssh-keyscan -p {sshd.port} "
                    f"127.0.0.1 >> {kh} (then compare the fingerprint, ssh-keygen -lf {kh}, with the one the "
                    "partner gives you)")
    else:
        expected = (f"host [127.0.0.1]:{sshd.port} is not in known_hosts {kh}: it offered the ssh-ed25519 key "
                    f"{sshd_util.fingerprint(ssh_keys.host.with_suffix('.pub'))}. Check this fingerprint with the "
                    f"partner, then pin the key: ssh-keyscan -p {sshd.port} -t ed25519 127.0.0.1 >> {kh}")
    label = f"{sshd.user}@127.0.0.1:{sshd.port}"
    assert errors == [f"transfer failed: {CHANNEL}: pull from {label} failed: {expected}",
                      f"transfer failed: {CHANNEL}: push to {label} failed: {expected}"]
    assert package.exists() and site.upload_names() == []
    assert "Accepted publickey" not in sshd.log_text()


def test_changed_host_key_is_refused(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys):
    site = make_site(tmp_path, sshd, ssh_keys.client, known_hosts=sshd.known_hosts_line(ssh_keys.host_other))
    package = fake_package(site.ws.root / "outbox" / "mobile", 1, 1000)
    run = site.run()
    assert_clean(run, 1)
    offered = sshd_util.fingerprint(ssh_keys.host.with_suffix(".pub"))
    pinned = sshd_util.fingerprint(ssh_keys.host_other.with_suffix(".pub"))
    kh = site.known_hosts
    message = (f"host key of [127.0.0.1]:{sshd.port} does not match known_hosts {kh}: it offered the ssh-ed25519 "
               f"key {offered}, pinned is ssh-ed25519 {pinned}. Someone may be intercepting the connection; if "
               f"the partner confirms a new key, remove the old one (ssh-keygen -R '[127.0.0.1]:{sshd.port}' -f "
               f"{kh}) and pin the new one: ssh-keyscan -p {sshd.port} -t ed25519 127.0.0.1 >> {kh}")
    errors = transfer_errors(run)
    assert len(errors) == 2 and all(e.endswith(f"failed: {message}") for e in errors), str(run)
    assert package.exists() and site.upload_names() == []
    assert "Accepted publickey" not in sshd.log_text()


# -------------------------------------------------------------- client keys


@pytest.mark.parametrize("key", ["client_ecdsa", "client_rsa", "client_locked"])
def test_client_key_types(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys, key: str,
                          monkeypatch: pytest.MonkeyPatch):
    options = {}
    if key == "client_locked":
        monkeypatch.setenv("EXCHANGE_TEST_PASSPHRASE", ssh_keys.passphrase)
        options["passphrase_env"] = "EXCHANGE_TEST_PASSPHRASE"
    site = make_site(tmp_path, sshd, getattr(ssh_keys, key), **options)
    fake_package(site.ws.root / "outbox" / "mobile", 1, 1000)
    assert_clean(site.run())
    assert site.upload_names() == [f"MOB_{CHANNEL}_00000001.zip"]
    accepted = {"client_ecdsa": "ECDSA", "client_rsa": "RSA", "client_locked": "ED25519"}[key]
    fp = sshd_util.fingerprint(getattr(ssh_keys, key).with_suffix(".pub"))
    assert f"Accepted publickey for {sshd.user} from 127.0.0.1" in sshd.log_text()
    assert f"{accepted} {fp}" in sshd.log_text()


def test_wrong_client_key_is_refused(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys):
    site = make_site(tmp_path, sshd, ssh_keys.stranger)
    package = fake_package(site.ws.root / "outbox" / "mobile", 1, 1000)
    run = site.run()
    assert_clean(run, 1)
    fp = sshd_util.fingerprint(ssh_keys.stranger.with_suffix(".pub"))
    message = (f"failed after 3 attempts: 127.0.0.1:{sshd.port} refused the login of user {sshd.user} with key "
               f"{ssh_keys.stranger} (ssh-ed25519 {fp}): authentication failed (is the public key in the partner's "
               "authorized_keys for that user?)")
    errors = transfer_errors(run)
    assert len(errors) == 2 and all(e.endswith(message) for e in errors), str(run)
    assert package.exists() and site.upload_names() == []


def test_passphrase_variable_not_set(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys,
                                     monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("EXCHANGE_TEST_PASSPHRASE", raising=False)
    site = make_site(tmp_path, sshd, ssh_keys.client_locked, passphrase_env="EXCHANGE_TEST_PASSPHRASE")
    fake_package(site.ws.root / "outbox" / "mobile", 1, 1000)
    run = site.run()
    assert_clean(run, 1)
    assert transfer_errors(run)[-1].endswith(
        "failed: passphrase_env names $EXCHANGE_TEST_PASSPHRASE, which is not set: export the passphrase of "
        f"{ssh_keys.client_locked} in it"), str(run)


# --------------------------------------------------------- server refusals


def test_permission_denied_is_one_line(tmp_path: Path, sshd_binary: Path, ssh_keys: SshKeys):
    server = sshd_util.Sshd(tmp_path / "sshd", [ssh_keys.host], ssh_keys.authorized, binary=sshd_binary,
                            sftp_flags="-R").start()  # read-only: the server refuses every write
    try:
        site = make_site(tmp_path, server, ssh_keys.client)
        package = fake_package(site.ws.root / "outbox" / "mobile", 1, 1000)
        run = site.run()
        assert_clean(run, 1)
        part = site.upload / f".{package.name}.part"
        assert transfer_errors(run) == [
            (f"transfer failed: {CHANNEL}: push to {server.user}@127.0.0.1:{server.port} failed: permission "
             f"denied on 127.0.0.1:{server.port} while uploading {part} (what may user {server.user} do in that "
             "folder?)")]
        assert package.exists() and site.upload_names() == []
    finally:
        server.stop()


def test_missing_folders_are_named(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys):
    site = make_site(tmp_path, sshd, ssh_keys.client)
    site.upload.rmdir()
    site.download.rmdir()
    fake_package(site.ws.root / "outbox" / "mobile", 1, 1000)
    run = site.run()
    assert_clean(run, 1)
    where = f"on 127.0.0.1:{sshd.port}"
    errors = transfer_errors(run)
    assert errors[0].endswith(f"failed: download_dir {site.download} does not exist {where}"), str(run)
    assert errors[1].endswith(f"failed: upload_dir {site.upload} does not exist {where}"), str(run)


# ---------------------------------------------------------------- timeouts


def test_silent_server_hits_the_connect_timeout(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys):
    site = make_site(tmp_path, sshd, ssh_keys.client, connect_timeout=1, retries=0)
    package = fake_package(site.ws.root / "outbox" / "mobile", 1, 1000)
    os.kill(sshd.pid, signal.SIGSTOP)  # the kernel still accepts connections; sshd never answers
    try:
        run = site.run()
    finally:
        os.kill(sshd.pid, signal.SIGCONT)
    assert_clean(run, 1)
    label = f"{sshd.user}@127.0.0.1:{sshd.port}"
    silent = f"failed: no SSH answer from 127.0.0.1:{sshd.port} within 1 s (connect_timeout)"
    assert transfer_errors(run) == [f"transfer failed: {CHANNEL}: pull from {label} {silent}",
                                    f"transfer failed: {CHANNEL}: push to {label} {silent}"]
    assert package.exists()


@pytest.mark.slow
def test_server_that_stops_answering_hits_the_io_timeout(tmp_path: Path, sshd: sshd_util.Sshd,
                                                         ssh_keys: SshKeys):
    site = make_site(tmp_path, sshd, ssh_keys.client, io_timeout=2, retries=0)
    package = fake_package(site.ws.root / "outbox" / "mobile", 1, BIG)
    part = site.upload / f".{package.name}.part"
    proc, started = start_cli("run", "--settle", "0", cwd=site.ws.root)
    try:
        sshd_util.wait_for(lambda: part.exists() and part.stat().st_size > 0, DEADLINE,
                           "the upload to be under way")
        for pid in sshd.sessions():  # the connection stays open; nothing answers any more
            os.kill(pid, signal.SIGSTOP)
    finally:
        run = finish_cli(proc, started, ["run", "--settle", "0"])
        sshd.kill()
    assert_clean(run, 1)
    assert transfer_errors(run) == [
        (f"transfer failed: {CHANNEL}: push to {sshd.user}@127.0.0.1:{sshd.port} failed: no answer from "
         f"127.0.0.1:{sshd.port} within 2 s (io_timeout) while uploading {part}")], str(run)
    assert package.exists() and not (site.upload / package.name).exists()


# ------------------------------------------------------------ partner down


def test_partner_down_gives_exit_1_and_the_rest_carries_on(tmp_path: Path, sshd: sshd_util.Sshd,
                                                          ssh_keys: SshKeys, sshd_binary: Path):
    down_port = sshd_util.free_port()  # nothing listens there
    host_key = ssh_keys.host.with_suffix(".pub").read_text()
    site = make_site(tmp_path, sshd, ssh_keys.client, port=down_port,
                     known_hosts=f"{sshd.where} {host_key}[127.0.0.1]:{down_port} {host_key}")
    cz_upload = tmp_path / "partner-cz" / "to-mobile"
    cz_download = tmp_path / "partner-cz" / "from-mobile"
    cz_upload.mkdir(parents=True)
    cz_download.mkdir(parents=True)
    site.ws.edit_config(lambda text: text + f"\n[channels.{CZ}]\n" + sftp_table(
        CZ, sshd.port, ssh_keys.client, site.known_hosts, cz_upload, cz_download))
    site.ws.drop("pl.xml", export(1))
    site.ws.drop("cz.xml", export(2, CZ))
    run = site.run()
    assert_clean(run, 1)
    assert run.lines[0] == "files processed: 2, records read: 2", str(run)
    label = f"{sshd.user}@127.0.0.1:{down_port}"
    refused = (f"failed after 3 attempts: 127.0.0.1:{down_port} refused the connection (is the SFTP server "
               "running, is the port right?)")
    assert transfer_errors(run) == [f"transfer failed: {CHANNEL}: pull from {label} {refused}",
                                    f"transfer failed: {CHANNEL}: push to {label} {refused}"]
    pl = f"MOB_{CHANNEL}_00000001.zip"
    assert (site.ws.root / "outbox" / "mobile" / pl).exists()  # stays queued
    assert sorted(p.name for p in cz_upload.iterdir()) == [f"MOB_{CZ}_00000001.zip"]  # the other partner got its

    # the partner comes back: the queued package is delivered, once
    back = sshd_util.Sshd(tmp_path / "sshd-back", [ssh_keys.host], ssh_keys.authorized, binary=sshd_binary)
    back.start(port=down_port)
    try:
        run = site.run()
        assert_clean(run)
        assert site.upload_names() == [pl]
        assert sha256(site.upload / pl) == sha256(site.sent() / pl)
    finally:
        back.stop()


def test_no_transfer_touches_no_partner(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys):
    site = make_site(tmp_path, sshd, ssh_keys.client)
    site.ws.drop("pl.xml", export(1))
    (site.download / "RET_1.zip").write_bytes(return_bytes(tmp_path, 1))
    run = site.run(0, "--no-transfer")
    assert_clean(run)
    assert (site.ws.root / "outbox" / "mobile" / f"MOB_{CHANNEL}_00000001.zip").exists()
    assert site.upload_names() == [] and (site.download / "RET_1.zip").exists()
    assert "Accepted publickey" not in sshd.log_text()


def test_pull_delivering_out_of_order_is_imported_in_sequence_order(tmp_path: Path, sshd: sshd_util.Sshd,
                                                                     ssh_keys: SshKeys):
    """F6: the partner leaves 1 and 3, then 2: 3 is held in inbox/mobile/ (pulled, taken off the
    server) until 2 is pulled, then both are imported in order in that run."""
    site = make_site(tmp_path, sshd, ssh_keys.client)
    (site.download / "RET_1.zip").write_bytes(return_bytes(tmp_path, 1))
    (site.download / "RET_3.zip").write_bytes(return_bytes(tmp_path, 3))
    run = site.run()
    assert_clean(run)
    assert run.lines[2:] == [f"import documents written: 1 (CEEIMP_{CHANNEL}_00000001.xml)",
                             "held: RET_3.zip (sequence 3; waiting for 2) (F6)"], str(run)
    assert sorted(p.name for p in site.ws.inbox_mobile.iterdir()) == ["RET_3.zip"]
    assert list(site.download.iterdir()) == []
    (site.download / "RET_2.zip").write_bytes(return_bytes(tmp_path, 2))
    run = site.run()
    assert_clean(run)
    assert run.lines[2:] == [f"import documents written: 2 (CEEIMP_{CHANNEL}_00000002.xml, "
                             f"CEEIMP_{CHANNEL}_00000003.xml)"], str(run)
    sources = [parse_import((site.ws.outbox_cee / f"CEEIMP_{CHANNEL}_{n:08d}.xml").read_bytes())["sourcePackage"]
               for n in (1, 2, 3)]
    assert sources == ["RET_1.zip", "RET_2.zip", "RET_3.zip"]


def test_pipeline_does_not_import_paramiko():
    code = ("import sys, exchange.cli, exchange.run, exchange.transfer, exchange.partners; "
            "print('paramiko' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


# ------------------------------------------------------------------ crashes


@pytest.mark.slow
def test_sshd_killed_mid_upload_then_delivered_exactly_once(tmp_path: Path, sshd: sshd_util.Sshd,
                                                            ssh_keys: SshKeys):
    site = make_site(tmp_path, sshd, ssh_keys.client)
    package = fake_package(site.ws.root / "outbox" / "mobile", 1, BIG)
    digest = sha256(package)
    part = site.upload / f".{package.name}.part"
    proc, started = start_cli("run", "--settle", "0", cwd=site.ws.root)
    try:
        sshd_util.wait_for(lambda: part.exists() and part.stat().st_size > 0, DEADLINE,
                           "the upload to be under way")
        sshd.kill()  # the server and its sessions, mid-transfer
        assert part.stat().st_size < package.stat().st_size
    finally:
        run = finish_cli(proc, started, ["run", "--settle", "0"])
    assert_clean(run, 1)
    errors = transfer_errors(run)
    assert len(errors) == 1 and errors[0].startswith(f"transfer failed: {CHANNEL}: push to "), str(run)
    assert f"connection to 127.0.0.1:{sshd.port} lost while uploading {part}" in run.stderr, str(run)
    assert not (site.upload / package.name).exists()  # never a partial file under the final name
    assert package.exists() and not site.sent().exists()  # still queued

    sshd.start(port=sshd.port)
    run = site.run()
    assert_clean(run)
    assert site.upload_names() == [package.name]  # the stale temporary file is gone
    assert sha256(site.upload / package.name) == digest == sha256(site.sent() / package.name)
    assert site.deliveries() == [("push", CHANNEL, package.name, "delivered")]
    before = (site.upload / package.name).stat()
    assert_clean(site.run())
    after = (site.upload / package.name).stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


@pytest.mark.parametrize("when, partner_takes_it", [
    ("before", False),  # uploaded and recorded, not renamed: the next run renames
    ("after", False),  # renamed, the ledger never heard of it
    ("after", True),  # renamed, and the partner took it before the next run
], ids=["before-rename", "after-rename", "after-rename-taken"])
def test_crash_around_the_remote_rename_delivers_nothing_twice(tmp_path: Path, sshd: sshd_util.Sshd,
                                                               ssh_keys: SshKeys, when: str, partner_takes_it: bool):
    site = make_site(tmp_path, sshd, ssh_keys.client)
    site.ws.drop("pl.xml", export(1))
    name = f"MOB_{CHANNEL}_00000001.zip"
    run_crashing(site, "posix_rename", when)
    package = site.ws.root / "outbox" / "mobile" / name
    assert package.exists()
    assert site.deliveries() == [("push", CHANNEL, name, "uploaded")]
    if when == "before":
        assert site.upload_names() == [f".{name}.part"]
    else:
        assert site.upload_names() == [name] and sha256(site.upload / name) == sha256(package)
    if partner_takes_it:
        taken = (site.upload / name).read_bytes()
        (site.upload / name).unlink()
    seen = (site.upload / name).stat() if when == "after" and not partner_takes_it else None

    run = site.run()
    assert_clean(run)
    assert site.deliveries() == [("push", CHANNEL, name, "delivered")]
    assert (site.sent() / name).exists() and not package.exists()
    if partner_takes_it:
        assert site.upload_names() == []  # not uploaded again
        assert hashlib.sha256(taken).hexdigest() == sha256(site.sent() / name)
    else:
        assert site.upload_names() == [name]
        assert sha256(site.upload / name) == sha256(site.sent() / name)
    if seen is not None:  # the very file renamed before the crash: not uploaded again
        now = (site.upload / name).stat()
        assert (now.st_ino, now.st_mtime_ns) == (seen.st_ino, seen.st_mtime_ns)


def test_crash_before_the_remote_delete_imports_nothing_twice(tmp_path: Path, sshd: sshd_util.Sshd,
                                                              ssh_keys: SshKeys):
    site = make_site(tmp_path, sshd, ssh_keys.client)
    data = return_bytes(tmp_path, 1)
    (site.download / "RET_1.zip").write_bytes(data)
    run_crashing(site, "remove", "before")  # pulled into inbox/mobile/ and recorded; the delete never happened
    assert (site.ws.inbox_mobile / "RET_1.zip").read_bytes() == data
    assert site.deliveries() == [("pull", CHANNEL, "RET_1.zip", "pulled")]
    assert (site.download / "RET_1.zip").exists()

    run = site.run()
    assert_clean(run)
    assert site.ws.import_names() == [f"CEEIMP_{CHANNEL}_00000001.xml"]
    assert "duplicate" not in run.stdout  # recognised at the door: not even brought in again
    assert list(site.download.iterdir()) == []
    assert site.deliveries() == [("pull", CHANNEL, "RET_1.zip", "taken")]
    assert_clean(site.run())
    assert site.ws.import_names() == [f"CEEIMP_{CHANNEL}_00000001.xml"]


# ---------------------------------------------------------------- pull rules


@pytest.mark.slow
def test_return_file_still_growing_is_not_pulled_until_stable(tmp_path: Path, sshd: sshd_util.Sshd,
                                                              ssh_keys: SshKeys):
    site = make_site(tmp_path, sshd, ssh_keys.client)
    data = return_bytes(tmp_path, 1)
    target = site.download / "RET_1.zip"
    finish = threading.Event()
    wrote_some = threading.Event()

    def partner_writes_slowly() -> None:  # a byte every 20 ms until told to finish, then the rest
        with open(target, "wb") as f:
            for i in range(len(data) - 1):
                if finish.is_set():
                    break
                f.write(data[i:i + 1])
                f.flush()
                wrote_some.set()
                finish.wait(0.02)
            f.write(data[f.tell():])

    writer = threading.Thread(target=partner_writes_slowly)
    writer.start()
    try:
        assert wrote_some.wait(DEADLINE)
        run = site.run(1)
    finally:
        finish.set()
        writer.join()
    assert_clean(run)
    assert f"left for the next run (still changing): RET_1.zip (on {sshd.user}@127.0.0.1:{sshd.port})" in run.lines
    assert target.read_bytes() == data and site.ws.mobile_inbox_names() == [] and site.deliveries() == []

    run = site.run(1)  # now stable: taken after one settle
    assert_clean(run)
    assert site.ws.import_names() == [f"CEEIMP_{CHANNEL}_00000001.xml"]
    assert list(site.download.iterdir()) == []


@pytest.mark.slow
def test_return_file_deleted_between_listing_and_download(tmp_path: Path, sshd: sshd_util.Sshd,
                                                          ssh_keys: SshKeys):
    site = make_site(tmp_path, sshd, ssh_keys.client)
    big_return_package(site.download / "RET_A.zip", records=64, padding=1 << 20)  # its download takes a while
    (site.download / "RET_B.zip").write_bytes(return_bytes(tmp_path, 2, package_id="RET-B"))
    downloading_a = site.ws.inbox_mobile / ".pull.RET_A.zip.part"
    proc, started = start_cli("run", "--settle", "0", cwd=site.ws.root)
    try:
        sshd_util.wait_for(downloading_a.exists, DEADLINE, "the download of RET_A.zip to start")
        (site.download / "RET_B.zip").unlink()  # someone else takes B while A downloads
    finally:
        run = finish_cli(proc, started, ["run", "--settle", "0"])
    assert_clean(run)
    assert transfer_errors(run) == []
    assert "RET_B.zip was taken off" in run.stderr and "by someone else before it could be downloaded" in run.stderr
    assert site.ws.import_names() == [f"CEEIMP_{CHANNEL}_00000001.xml"]
    assert site.deliveries() == [("pull", CHANNEL, "RET_A.zip", "taken")]
    assert list(site.download.iterdir()) == []


def test_unreadable_return_file_stays_on_the_server(tmp_path: Path, sshd: sshd_util.Sshd, ssh_keys: SshKeys):
    site = make_site(tmp_path, sshd, ssh_keys.client)
    (site.download / "RET_broken.zip").write_bytes(b"PK not really a zip")
    (site.download / "RET_1.zip").write_bytes(return_bytes(tmp_path, 1))
    run = site.run()
    assert_clean(run, 1)
    assert transfer_errors(run) == [
        (f"transfer failed: {CHANNEL}: pull from {sshd.user}@127.0.0.1:{sshd.port} failed: RET_broken.zip: not a "
         "readable ZIP file (File is not a zip file); left on the server")]
    assert site.ws.import_names() == [f"CEEIMP_{CHANNEL}_00000001.xml"]  # the good one went through
    assert sorted(p.name for p in site.download.iterdir()) == ["RET_broken.zip"]
    assert site.ws.mobile_inbox_names() == []
