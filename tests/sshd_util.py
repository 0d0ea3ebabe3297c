"""A real OpenSSH ``sshd`` for the SFTP tests and the benchmark.

``Sshd`` runs ``/usr/sbin/sshd -D`` on 127.0.0.1 at a free port with a
configuration, host keys and ``authorized_keys`` of its own, all inside one
folder, and ``Subsystem sftp internal-sftp``; its log (connections,
authentication) goes to ``sshd.log`` in that folder. sshd forks a session
process per connection (in a session of its own); ``kill`` SIGKILLs the
listener and every session process by PID, so a transfer breaks off
mid-file, and ``stop`` leaves no process behind. The server's folders are
local folders, so a test plays the partner by reading and writing them
directly.

``ensure_sshd`` installs ``openssh-server`` with apt-get when ``sshd`` is
missing (CI runs as root); it raises if that fails: an SFTP test never skips.

Nothing here sleeps to synchronize: waiting is polling with a deadline.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
POLL = 0.005  # seconds between two looks while polling
START_DEADLINE = 20.0


class SshdError(RuntimeError):
    """sshd could not be installed or started."""


def ensure_sshd() -> Path:
    """The sshd binary; installs openssh-server via apt-get when it is missing."""
    if SSHD.exists():
        return SSHD
    if os.geteuid() != 0:
        raise SshdError(f"{SSHD} is missing and this is not root: install openssh-server "
                        "(apt-get install openssh-server) and run the tests again")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for command in (["apt-get", "update"],
                    ["apt-get", "install", "-y", "--no-install-recommends", "openssh-server"]):
        done = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise SshdError(f"{' '.join(command)} failed (exit {done.returncode}):\n"
                            f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    if not SSHD.exists():
        raise SshdError(f"openssh-server was installed but {SSHD} is still missing")
    return SSHD


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "", comment: str = "") -> Path:
    """A new key pair at ``path`` and ``path.pub`` (ssh-keygen); the private key's path."""
    bits = {"rsa": ["-b", "3072"], "ecdsa": ["-b", "256"]}.get(kind, [])
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["ssh-keygen", "-q", "-t", kind, *bits, "-N", passphrase, "-C", comment or path.name,
                    "-f", str(path)], check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return path


def fingerprint(public_key: Path) -> str:
    """OpenSSH's SHA256 fingerprint of a public key file, ``SHA256:...``."""
    out = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f", str(public_key)], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[1]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, deadline_s: float, what: str, interval: float = POLL):
    """Poll ``condition()`` until it returns something true; its value. Raises after the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise TimeoutError(f"gave up after {deadline_s:g} s waiting for {what}")
        time.sleep(interval)


def _parents() -> dict[int, int]:
    """PID -> parent PID of every process (Linux /proc)."""
    parents = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
    return parents


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _supports(binary: Path, config_line: str, folder: Path) -> bool:
    """Whether this sshd knows an option (sshd -t on a config holding only it)."""
    probe = folder / "probe_config"
    probe.write_text(config_line + "\n")
    key = folder / "probe_key"
    if not key.exists():
        keygen(key)
    done = subprocess.run([str(binary), "-t", "-f", str(probe), "-h", str(key)], capture_output=True, text=True,
                          check=False)
    return "Bad configuration option" not in done.stderr and "Unsupported option" not in done.stderr


@dataclass(frozen=True)
class SshKeys:
    """Private keys (each with its ``.pub`` beside it)."""

    host: Path  # ed25519: what sshd offers by default
    host_other: Path  # ed25519: a different key, for a "changed host key"
    host_ecdsa: Path
    host_rsa: Path
    client: Path  # ed25519, authorized
    client_ecdsa: Path  # authorized
    client_rsa: Path  # authorized; RSA logins are signed with SHA-2 (OpenSSH 8.8+ refuses SHA-1)
    client_locked: Path  # ed25519 with the passphrase below, authorized
    stranger: Path  # ed25519, not authorized
    passphrase: str = "correct horse battery staple"

    @property
    def authorized(self) -> list[Path]:
        return [k.with_name(k.name + ".pub") for k in (self.client, self.client_ecdsa, self.client_rsa,
                                                       self.client_locked)]


@dataclass
class Sshd:
    """One sshd on 127.0.0.1 with everything it needs under ``root``."""

    root: Path
    host_keys: list[Path]  # private keys; their .pub beside them
    authorized: list[Path]  # public keys allowed to log in
    binary: Path = SSHD
    sftp_flags: str = ""  # internal-sftp options, e.g. "-R" (read-only: every write is refused)
    user: str = field(default_factory=getpass.getuser)
    port: int = 0
    process: subprocess.Popen | None = None

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "authorized_keys").write_text("".join(p.read_text() for p in self.authorized))
        self.log = self.root / "sshd.log"

    # -- the server ---------------------------------------------------------

    def _config(self) -> Path:
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            *(f"HostKey {key}" for key in self.host_keys),
            "PidFile none",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
            "StrictModes no",
            "UsePAM no",
            "PubkeyAuthentication yes",
            # SHA-2 signatures only for RSA, whatever this OpenSSH's default
            "PubkeyAcceptedAlgorithms ssh-ed25519,ecdsa-sha2-nistp256,rsa-sha2-512,rsa-sha2-256",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "AuthenticationMethods publickey",
            "PermitRootLogin prohibit-password",
            f"AllowUsers {self.user}",
            "MaxStartups 100",
            "MaxAuthTries 10",
            "LogLevel VERBOSE",
            f"Subsystem sftp internal-sftp {self.sftp_flags}".rstrip(),
        ]
        if _supports(self.binary, "PerSourcePenalties no", self.root):  # OpenSSH 9.8+ would throttle retries
            lines.append("PerSourcePenalties no")
        config = self.root / "sshd_config"
        config.write_text("\n".join(lines) + "\n")
        return config

    def start(self, port: int | None = None) -> "Sshd":
        """Start (or restart, on the same port unless told otherwise) and wait for its banner."""
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation directory
        for _attempt in range(5):
            self.port = port or self.port or free_port()
            config = self._config()
            self.process = subprocess.Popen(
                [str(self.binary), "-D", "-f", str(config), "-E", str(self.log)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            try:
                wait_for(self._ready, START_DEADLINE, f"sshd on port {self.port}")
                return self
            except SshdError:
                self.process.wait()
                if port is not None or "Address already in use" not in self.log_text():
                    raise
                self.port = 0  # lost a race for the port: another one
        raise SshdError("sshd found no free port")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise SshdError(f"sshd exited with {self.process.returncode}:\n{self.log_text()[-3000:]}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                return s.recv(8).startswith(b"SSH-2.0")
        except OSError:
            return False

    @property
    def pid(self) -> int:
        return self.process.pid

    def sessions(self) -> list[int]:
        """PIDs of the server's session processes (sshd forks one per connection, in a session of its own)."""
        return _descendants(self.pid) if self.process is not None else []

    def kill(self) -> None:
        """SIGKILL the server and every session process, by PID: mid-transfer, nothing is finished."""
        if self.process is None or self.process.poll() is not None:
            return
        pids = [self.pid, *self.sessions()]  # before the listener dies: orphans lose their parent link
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        wait_for(lambda: not any(_alive(pid) for pid in pids), 10, "the sshd processes to exit")

    def stop(self) -> None:
        """SIGTERM the server, then SIGKILL it and whatever sessions are left."""
        if self.process is None or self.process.poll() is not None:
            return
        sessions = self.sessions()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for pid in [self.pid, *sessions]:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.process.wait()
        wait_for(lambda: not any(_alive(pid) for pid in sessions), 10, "the sshd sessions to exit")

    # -- what clients need ------------------------------------------------

    @property
    def where(self) -> str:
        """How known_hosts names this server (a non-default port is in brackets)."""
        return f"[127.0.0.1]:{self.port}"

    def known_hosts_line(self, host_key: Path | None = None) -> str:
        kind, blob = (host_key or self.host_keys[0]).with_suffix(".pub").read_text().split()[:2]
        return f"{self.where} {kind} {blob}\n"

    def keyscan(self, *types: str) -> str:
        """``ssh-keyscan -p PORT 127.0.0.1``: what README tells partners to run."""
        args = ["ssh-keyscan", "-p", str(self.port)] + (["-t", ",".join(types)] if types else []) + ["127.0.0.1"]
        return subprocess.run(args, check=True, capture_output=True, text=True, timeout=30).stdout

    # -- what the server said ----------------------------------------------

    def log_text(self) -> str:
        """sshd's own log (connections, authentication): for failure messages."""
        try:
            return self.log.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def copy_tree_files(source: Path) -> dict[str, bytes]:
    """Every regular file under ``source`` (relative name -> content), for comparisons."""
    return {str(p.relative_to(source)): p.read_bytes() for p in sorted(source.rglob("*")) if p.is_file()}


def which(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise SshdError(f"{name} is missing (openssh-client)")
    return found
