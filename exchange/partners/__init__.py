"""Partners: the far side of a channel, where packages go and returns come from.

One seam per outside world. The exchange talks to a partner only through
the two small interfaces here; :mod:`exchange.transfer` holds the protocol
(which package goes next, what the ledger says, what a crash left behind)
and works the same over any partner. :mod:`exchange.partners.sftp` is the
SFTP implementation and the only module that imports paramiko; nothing in
the pipeline imports it.

A partner has two folders: one that packages are *published* into (the
SFTP ``upload_dir``) and one that returned packages are *taken* from
(``download_dir``). A package is written under a temporary name and renamed
to its final name once complete, so the partner never sees part of one.

Every failure is a :class:`TransferError` with a one-line message for the
person at the terminal, naming the host, the path and what to do; its
``retry`` says whether trying again within the run may help (a dropped
connection may; a refused host key never does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from exchange.errors import ExchangeError


class TransferError(ExchangeError):
    """A transfer failed. ``retry``: whether another attempt within the run may succeed."""

    def __init__(self, message: str, retry: bool = False):
        super().__init__(" ".join(message.split()))  # always one line
        self.retry = retry


class Gone(TransferError):
    """A remote file is not there (any more): someone else took it."""


@dataclass(frozen=True)
class RemoteFile:
    """One entry of a partner's folder listing."""

    name: str
    size: int
    mtime: int  # seconds since the epoch, as the server reports it


@dataclass(frozen=True)
class Outgoing:
    """What the upload folder holds of one package: sizes, or None where absent."""

    final: int | None  # under its final name
    part: int | None  # under its temporary name


class Session(Protocol):
    """An open connection to a partner. Paths are plain file names; the
    session knows the folders and the temporary-name convention."""

    # the upload folder
    def outgoing(self, name: str) -> Outgoing:
        """Sizes of ``name`` and of its temporary file in the upload folder."""

    def temporaries(self) -> list[str]:
        """Names of the packages whose temporary files are in the upload folder."""

    def upload(self, local: Path, name: str) -> None:
        """Copy ``local`` to ``name``'s temporary file and check its size there."""

    def publish(self, name: str) -> None:
        """Rename ``name``'s temporary file to ``name`` (atomically, replacing nothing partial)."""

    def discard(self, name: str) -> None:
        """Remove ``name``'s temporary file, if it is there."""

    # the download folder
    def returns(self) -> list[RemoteFile]:
        """The regular files in the download folder."""

    def fetch(self, name: str, out: BinaryIO) -> int:
        """Write the content of ``name`` to ``out``; the bytes written. :class:`Gone` if it is not there."""

    def take(self, name: str) -> None:
        """``name`` is safely here: delete it there, or move it to the done folder."""

    def close(self) -> None:
        """Close the connection."""


class Partner(Protocol):
    """A partner one can connect to, with its retry policy."""

    label: str  # e.g. ``exchange@sftp.partner.example:22``, for messages
    retries: int  # attempts after the first, within one run
    backoff_seconds: float  # wait before the first retry; doubles with each one

    def connect(self) -> Session:
        """Open a session; raises :class:`TransferError`."""
