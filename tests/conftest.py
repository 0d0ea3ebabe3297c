"""Fixtures shared by test files: a real OpenSSH sshd for the SFTP tests, and
``cut_small``, which makes the runs cut small files in two as they cut big ones.

``sshd_binary`` makes sure ``/usr/sbin/sshd`` exists (installing
openssh-server with apt-get once per session when it is missing; a failed
install is an error, never a skip). ``ssh_keys`` generates host and client
keys once per session. ``sshd`` starts a server of its own for one test, on
127.0.0.1 at a free port, and stops it by PID afterwards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest
import sshd_util
import workspace_util
from sshd_util import SshKeys


@pytest.fixture
def cut_small(monkeypatch):
    workspace_util.cut_small_files(monkeypatch)


@pytest.fixture(scope="session")
def sshd_binary() -> Path:
    return sshd_util.ensure_sshd()


@pytest.fixture(scope="session")
def ssh_keys(tmp_path_factory, sshd_binary: Path) -> SshKeys:  # openssh-server brings ssh-keygen too
    folder = tmp_path_factory.mktemp("ssh-keys")
    passphrase = SshKeys.passphrase
    return SshKeys(
        host=sshd_util.keygen(folder / "host_ed25519"),
        host_other=sshd_util.keygen(folder / "host_other_ed25519"),
        host_ecdsa=sshd_util.keygen(folder / "host_ecdsa", "ecdsa"),
        host_rsa=sshd_util.keygen(folder / "host_rsa", "rsa"),
        client=sshd_util.keygen(folder / "id_ed25519"),
        client_ecdsa=sshd_util.keygen(folder / "id_ecdsa", "ecdsa"),
        client_rsa=sshd_util.keygen(folder / "id_rsa", "rsa"),
        client_locked=sshd_util.keygen(folder / "id_ed25519_locked", passphrase=passphrase),
        stranger=sshd_util.keygen(folder / "id_stranger"),
    )


@pytest.fixture
def sshd(sshd_binary: Path, ssh_keys: SshKeys, tmp_path: Path) -> Iterator[sshd_util.Sshd]:
    server = sshd_util.Sshd(tmp_path / "sshd", host_keys=[ssh_keys.host], authorized=ssh_keys.authorized,
                            binary=sshd_binary)
    server.start()
    try:
        yield server
    finally:
        server.stop()
