"""Benchmark: SFTP push and pull by ``exchange`` against OpenSSH's ``sftp -b``,
on the same loopback sshd and the same file.

    python bench/sftp.py [--size-mb 256] [--repeat 3]

Starts its own OpenSSH ``sshd`` on 127.0.0.1 at a free port (config, host
key and client key in a temporary folder; ``Subsystem sftp internal-sftp``,
see ``tests/sshd_util.py``; installs openssh-server with apt-get if
``/usr/sbin/sshd`` is missing and this is root), writes one file of random
bytes (incompressible, like a package) and then, ``--repeat`` times, in
turn:

OpenSSH put / get
    ``sftp -b BATCH -P PORT 127.0.0.1`` with ``put FILE DIR/NAME`` or
    ``get DIR/NAME FILE``; timed from start to exit (connecting and
    logging in included).
exchange push
    what ``exchange run`` does for each package: connect with
    :class:`exchange.partners.sftp.SftpPartner` (the settings of a
    ``[channels.NAME.sftp]`` table), upload under the temporary name,
    check its size, rename it with posix-rename, close; timed from before
    connecting to after closing.
exchange pull
    connect, download into a local file (paramiko's prefetching reader),
    fsync, close; timed the same way.

Every transferred file is compared with the original (SHA-256). Printed:
MB/s (10^6 bytes a second) of each run, the median of each, and the ratio
exchange/OpenSSH per direction (the target is at least 0.5); the
negotiated cipher and MAC of each client; the load average before and after.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests"))
import sshd_util  # noqa: E402 - tests/sshd_util.py: the sshd the SFTP tests use

from exchange.config import Sftp  # noqa: E402
from exchange.partners.sftp import SftpPartner  # noqa: E402

MB = 1_000_000


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def write_random(path: Path, size: int) -> None:
    with open(path, "wb") as f:
        for start in range(0, size, 1 << 20):
            f.write(os.urandom(min(1 << 20, size - start)))


def warm_cache(path: Path) -> None:
    """Read the file once before timing, so that every run reads it from the page cache."""
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


class Bench:
    def __init__(self, folder: Path, size: int):
        self.folder = folder
        self.size = size
        keys = folder / "keys"
        host_key = sshd_util.keygen(keys / "host_ed25519")
        self.client_key = sshd_util.keygen(keys / "id_ed25519")
        self.server = sshd_util.Sshd(folder / "sshd", [host_key], [self.client_key.with_name("id_ed25519.pub")],
                                     binary=sshd_util.ensure_sshd())
        self.remote = folder / "remote"
        self.local = folder / "local"
        self.remote.mkdir()
        self.local.mkdir()
        self.source = self.local / "MOB_BENCH_00000001.zip"
        write_random(self.source, size)
        self.digest = sha256(self.source)
        shutil.copy(self.source, self.remote / "RET_BENCH_0001.zip")
        self.known_hosts = folder / "known_hosts"
        self.ciphers: dict[str, str] = {}

    def start(self) -> None:
        self.server.start()
        self.known_hosts.write_text(self.server.keyscan())
        self.settings = Sftp(host="127.0.0.1", user=self.server.user, key_file=self.client_key,
                             known_hosts=self.known_hosts, upload_dir=str(self.remote),
                             download_dir=str(self.remote), port=self.server.port)

    def stop(self) -> None:
        self.server.stop()

    def _rate(self, seconds: float) -> float:
        return self.size / MB / seconds

    # --- OpenSSH ---------------------------------------------------------------

    def _sftp(self, command: str) -> float:
        batch = self.folder / "batch"
        batch.write_text(command + "\n")
        args = ["sftp", "-q", "-b", str(batch), "-i", str(self.client_key), "-o", "BatchMode=yes",
                "-o", f"UserKnownHostsFile={self.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-P", str(self.server.port), "127.0.0.1"]
        if "openssh" not in self.ciphers:
            verbose = subprocess.run(["ssh", "-v", "-s", "-i", str(self.client_key), "-o", "BatchMode=yes",
                                      "-o", f"UserKnownHostsFile={self.known_hosts}", "-p", str(self.server.port),
                                      "127.0.0.1", "sftp"], input="", capture_output=True, text=True, check=False)
            found = re.findall(r"kex: server->client cipher: (\S+) MAC: (\S+)", verbose.stderr)
            self.ciphers["openssh"] = " ".join(found[0]) if found else "?"
        started = time.perf_counter()
        subprocess.run(args, check=True, stdin=subprocess.DEVNULL, capture_output=True)
        return self._rate(time.perf_counter() - started)

    def openssh_put(self) -> float:
        target = self.remote / "openssh_put.zip"
        rate = self._sftp(f"put {self.source} {target}")
        assert sha256(target) == self.digest, "OpenSSH put: content differs"
        target.unlink()
        return rate

    def openssh_get(self) -> float:
        target = self.local / "openssh_get.zip"
        rate = self._sftp(f"get {self.remote / 'RET_BENCH_0001.zip'} {target}")
        assert sha256(target) == self.digest, "OpenSSH get: content differs"
        target.unlink()
        return rate

    # --- exchange ----------------------------------------------------------------

    def exchange_push(self) -> float:
        started = time.perf_counter()
        with SftpPartner(self.settings).connect() as session:
            session.upload(self.source, self.source.name)
            session.publish(self.source.name)
            self._note(session)
        rate = self._rate(time.perf_counter() - started)
        target = self.remote / self.source.name
        assert sha256(target) == self.digest, "exchange push: content differs"
        target.unlink()
        return rate

    def exchange_pull(self) -> float:
        target = self.local / "exchange_pull.zip"
        started = time.perf_counter()
        with SftpPartner(self.settings).connect() as session, open(target, "wb") as out:
            session.fetch("RET_BENCH_0001.zip", out)
            out.flush()
            os.fsync(out.fileno())
            self._note(session)
        rate = self._rate(time.perf_counter() - started)
        assert sha256(target) == self.digest, "exchange pull: content differs"
        target.unlink()
        return rate

    def _note(self, session) -> None:
        transport = session.transport
        mac = "<implicit>" if "gcm" in transport.remote_cipher else transport.remote_mac
        self.ciphers.setdefault("exchange", f"{transport.remote_cipher} {mac}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=int, default=256, help="size of the package in MiB (default 256)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each measurement (default 3)")
    args = parser.parse_args()
    import paramiko

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ssh_version = subprocess.run(["ssh", "-V"], capture_output=True, text=True, check=False).stderr.strip()
    print(f"{ssh_version}; paramiko {paramiko.__version__}; Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="bench-sftp-") as tmp:
        bench = Bench(Path(tmp), args.size_mb << 20)
        bench.start()
        try:
            warm_cache(bench.source)
            results: dict[str, list[float]] = {k: [] for k in ("OpenSSH put", "exchange push", "OpenSSH get",
                                                                "exchange pull")}
            for _ in range(args.repeat):
                results["OpenSSH put"].append(bench.openssh_put())
                results["exchange push"].append(bench.exchange_push())
                results["OpenSSH get"].append(bench.openssh_get())
                results["exchange pull"].append(bench.exchange_pull())
        finally:
            bench.stop()
    print(f"file: {args.size_mb} MiB of random bytes, loopback sshd (internal-sftp), {args.repeat} run(s) each")
    print(f"ciphers: OpenSSH {bench.ciphers.get('openssh')}; exchange (paramiko) {bench.ciphers.get('exchange')}")
    medians = {}
    for name, rates in results.items():
        medians[name] = statistics.median(rates)
        print(f"  {name:14s} median {medians[name]:6.1f} MB/s   runs: {', '.join(f'{r:.1f}' for r in rates)}")
    failed = False
    for direction, ours, theirs in (("push", "exchange push", "OpenSSH put"), ("pull", "exchange pull", "OpenSSH get")):
        ratio = medians[ours] / medians[theirs]
        failed |= ratio < 0.5
        print(f"{direction}: exchange {medians[ours]:.1f} MB/s, OpenSSH {medians[theirs]:.1f} MB/s, "
              f"ratio {ratio:.2f} (target >= 0.50{'' if ratio >= 0.5 else ': MISSED'})")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
