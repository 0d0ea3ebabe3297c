"""An SFTP partner (paramiko): the folders of a ``[channels.NAME.sftp]`` table.

Packages are uploaded to ``upload_dir`` as ``.NAME.part`` with paramiko's
pipelined writer, their size checked on the server, then renamed to
``NAME`` with ``posix-rename@openssh.com`` (atomic, replaces nothing
partial). Returned packages are listed in ``download_dir``, downloaded with
paramiko's prefetching reader (bounded) and, once the exchange holds them
safely, deleted or moved to ``done_dir``. Requests are as big as the
server's ``limits@openssh.com`` allows, up to 256 KiB; 32 KiB where it does
not say.

Every paramiko, socket or SFTP error becomes a
:class:`~exchange.partners.TransferError` naming the host, what was being
done and to which path: a lost connection or a silent server is worth
retrying, a refused permission or a full disk is not.
"""

from __future__ import annotations

import logging
import posixpath
import stat
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

import paramiko
from paramiko.sftp import CMD_EXTENDED, CMD_EXTENDED_REPLY, SFTPError

from exchange.config import Sftp
from exchange.partners import Gone, Outgoing, RemoteFile, TransferError
from exchange.partners.ssh import MAX_PACKET_BYTES, WINDOW_BYTES, load_key, open_transport

# paramiko logs what its transport thread sees (with tracebacks); every failure reaches the
# person at the terminal as one TransferError line instead.
logging.getLogger("paramiko").addHandler(logging.NullHandler())
logging.getLogger("paramiko").propagate = False

#: Bytes per SFTP read or write request: up to this much where the server's
#: ``limits@openssh.com`` allows it (OpenSSH: 255 KiB), else paramiko's 32 KiB,
#: which every server takes. Bigger requests mean fewer Python-level messages:
#: about 1.5 times the throughput of 32 KiB on loopback (bench/sftp.py).
MAX_REQUEST_BYTES = 256 << 10
SAFE_REQUEST_BYTES = 32 << 10
#: Bytes of read requests paramiko's prefetch may have asked for and not yet handed
#: over (``max_concurrent_prefetch_requests`` = this / the request size). Memory is
#: bounded by the SSH window whatever this is (the server sends no more than the
#: window before we read; a 256 MiB pull peaks 8 MiB above the idle process). The
#: bound covers a whole package of the default max_package_bytes: at the bound
#: paramiko's request thread polls every 10 ms, which cost a third of the
#: throughput with 64 MiB; and far below that, at about twice the window, it
#: ends the prefetch early for good (a paramiko race: 100 MB/s fell to 10).
PREFETCH_BYTES = 1 << 30
_BLOCK = 1 << 20  # local reads and writes


class _LocalError(Exception):
    """A local read or write failed during a transfer (not the partner's fault)."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


class _LocalWriter:
    """Wraps the local file a download goes to, so its errors are told apart from the server's."""

    def __init__(self, out: BinaryIO):
        self.out = out
        self.written = 0

    def write(self, data: bytes) -> int:
        try:
            self.out.write(data)
        except OSError as error:
            raise _LocalError(error) from error
        self.written += len(data)
        return len(data)


class SftpPartner:
    """The partner of one channel, reached over SFTP."""

    def __init__(self, settings: Sftp):
        self.settings = settings
        self.label = f"{settings.user}@{settings.host}:{settings.port}"
        self.retries = settings.retries
        self.backoff_seconds = settings.retry_backoff_seconds

    def connect(self) -> "SftpSession":
        settings = self.settings
        key = load_key(settings)
        transport = open_transport(settings, key)
        try:
            sftp = paramiko.SFTPClient.from_transport(transport, window_size=WINDOW_BYTES,
                                                      max_packet_size=MAX_PACKET_BYTES)
            sftp.get_channel().settimeout(settings.io_timeout)
        except (paramiko.SSHException, EOFError, OSError) as error:
            transport.close()
            raise TransferError(f"{settings.host}:{settings.port} did not start SFTP for {settings.user}: "
                                f"{error or type(error).__name__} (is the sftp subsystem enabled?)",
                                retry=True) from None
        read_bytes, write_bytes = _request_sizes(sftp)
        return SftpSession(settings, transport, sftp, read_bytes, write_bytes)


def _request_sizes(sftp: paramiko.SFTPClient) -> tuple[int, int]:
    """(read, write) bytes per request: what the server's limits@openssh.com allows (its reply: max
    packet, read and write length, open handles), at most MAX_REQUEST_BYTES; SAFE_REQUEST_BYTES
    where the server does not say."""
    try:
        kind, reply = sftp._request(CMD_EXTENDED, "limits@openssh.com")  # as SFTPClient.posix_rename does
        if kind != CMD_EXTENDED_REPLY:
            return SAFE_REQUEST_BYTES, SAFE_REQUEST_BYTES
        _packet, read, write = reply.get_int64(), reply.get_int64(), reply.get_int64()
    except (OSError, EOFError, paramiko.SSHException, SFTPError):  # not supported
        return SAFE_REQUEST_BYTES, SAFE_REQUEST_BYTES

    def fit(limit: int) -> int:
        return min(limit, MAX_REQUEST_BYTES) if limit > 0 else SAFE_REQUEST_BYTES  # 0: "no limit", unsaid

    return fit(read), fit(write)


class SftpSession:
    """An open SFTP connection to a partner (see :class:`exchange.partners.Session`)."""

    def __init__(self, settings: Sftp, transport: paramiko.Transport, sftp: paramiko.SFTPClient,
                 read_bytes: int = SAFE_REQUEST_BYTES, write_bytes: int = SAFE_REQUEST_BYTES):
        self.settings = settings
        self.transport = transport
        self.sftp = sftp
        self.read_bytes = read_bytes
        self.write_bytes = write_bytes
        self.host = f"{settings.host}:{settings.port}"

    def __enter__(self) -> "SftpSession":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        try:
            self.sftp.close()
        finally:
            self.transport.close()

    # --- names ---------------------------------------------------------------

    def _up(self, name: str) -> str:
        return posixpath.join(self.settings.upload_dir, name)

    def _part(self, name: str) -> str:
        return posixpath.join(self.settings.upload_dir, f".{name}.part")

    def _down(self, name: str) -> str:
        return posixpath.join(self.settings.download_dir, name)

    # --- errors ----------------------------------------------------------------

    def _connected(self) -> bool:
        return self.transport.is_active() and not self.sftp.get_channel().closed

    @contextmanager
    def _errors(self, doing: str, path: str, writing: bool = False) -> Iterator[None]:
        """Turn whatever paramiko, the socket or the server raise into one TransferError."""
        try:
            yield
        except TransferError:
            raise
        except _LocalError as local:
            raise TransferError(f"local file error while {doing} {path} from {self.host}: "
                                f"{local.error.strerror or local.error}") from None
        except TimeoutError:
            raise TransferError(f"no answer from {self.host} within {self.settings.io_timeout:g} s (io_timeout) "
                                f"while {doing} {path}", retry=True) from None
        except FileNotFoundError:
            raise Gone(f"{path} does not exist on {self.host}") from None
        except PermissionError:
            raise TransferError(f"permission denied on {self.host} while {doing} {path} (what may user "
                                f"{self.settings.user} do in that folder?)") from None
        except (EOFError, paramiko.SSHException, OSError) as error:
            if not self._connected():
                raise TransferError(f"connection to {self.host} lost while {doing} {path}", retry=True) from None
            if isinstance(error, EOFError):  # the server said end of file before the expected size
                raise TransferError(f"{path} on {self.host} ended early while {doing} it (did it shrink?)",
                                    retry=True) from None
            hint = " (on a write this usually means its disk is full or a quota is reached)" if writing else ""
            raise TransferError(f"{self.host} failed while {doing} {path}: "
                                f"{error or type(error).__name__}{hint}") from None

    def _size(self, path: str) -> int | None:
        try:
            return self.sftp.stat(path).st_size
        except FileNotFoundError:
            return None

    # --- the upload folder -------------------------------------------------------

    def outgoing(self, name: str) -> Outgoing:
        with self._errors("looking at", self._up(name)):
            return Outgoing(final=self._size(self._up(name)), part=self._size(self._part(name)))

    def temporaries(self) -> list[str]:
        folder = self.settings.upload_dir
        try:
            with self._errors("listing", folder):
                names = self.sftp.listdir(folder)
        except Gone:
            raise TransferError(f"upload_dir {folder} does not exist on {self.host}") from None
        return sorted(n[1:-len(".part")] for n in names if n.startswith(".") and n.endswith(".part")
                      and len(n) > len("..part"))

    def upload(self, local: Path, name: str) -> None:
        part = self._part(name)
        size = local.stat().st_size
        try:
            with self._errors("uploading", part, writing=True):
                self._put(local, part)
                stored = self.sftp.stat(part).st_size
        except Gone:
            raise TransferError(f"upload_dir {self.settings.upload_dir} does not exist on {self.host}") from None
        except TransferError as error:
            if not error.retry:  # the server refused: leave nothing half-written behind
                self.discard(name, quiet=True)
            raise
        if stored != size:
            raise TransferError(f"{part} on {self.host} holds {stored} bytes after the upload of {size}",
                                retry=True)

    def _put(self, local: Path, part: str) -> None:
        """What ``SFTPClient.putfo`` does (a pipelined write: requests go out without waiting for
        their answers, which are checked as they come and all at the close), with the request size
        the server allows instead of putfo's fixed 32 KiB."""
        with open(local, "rb") as source, self.sftp.open(part, "wb") as remote:
            remote.set_pipelined(True)
            remote.MAX_REQUEST_SIZE = self.write_bytes
            while True:
                try:
                    block = source.read(_BLOCK)
                except OSError as error:
                    raise _LocalError(error) from error
                if not block:
                    break
                remote.write(block)

    def publish(self, name: str) -> None:
        with self._errors("renaming", self._part(name)):
            self.sftp.posix_rename(self._part(name), self._up(name))

    def discard(self, name: str, quiet: bool = False) -> None:
        try:
            with self._errors("removing", self._part(name)):
                self.sftp.remove(self._part(name))
        except Gone:
            pass
        except TransferError:
            if not quiet:
                raise

    # --- the download folder -------------------------------------------------

    def returns(self) -> list[RemoteFile]:
        folder = self.settings.download_dir
        try:
            with self._errors("listing", folder):
                entries = self.sftp.listdir_attr(folder)
        except Gone:
            raise TransferError(f"download_dir {folder} does not exist on {self.host}") from None
        return [RemoteFile(e.filename, e.st_size, int(e.st_mtime or 0)) for e in entries
                if e.st_mode is not None and stat.S_ISREG(e.st_mode)]

    def fetch(self, name: str, out: BinaryIO) -> int:
        path = self._down(name)
        writer = _LocalWriter(out)
        with self._errors("downloading", path):
            size = self.sftp.stat(path).st_size
            with self.sftp.open(path, "rb") as remote:  # SFTPClient.getfo, with the request size the server allows
                remote.MAX_REQUEST_SIZE = self.read_bytes
                remote.prefetch(size, max(PREFETCH_BYTES // self.read_bytes, 1))
                while data := remote.read(_BLOCK):
                    writer.write(data)
        return writer.written

    def take(self, name: str) -> None:
        path = self._down(name)
        done_dir = self.settings.done_dir
        try:
            if done_dir:
                with self._errors("moving to done_dir", path):
                    self.sftp.posix_rename(path, posixpath.join(done_dir, name))
            else:
                with self._errors("deleting", path):
                    self.sftp.remove(path)
        except Gone:
            with self._errors("looking at", path):
                still_there = self._size(path) is not None
            if still_there:
                raise TransferError(f"done_dir {done_dir} does not exist on {self.host}; {name} stays in "
                                    "download_dir") from None
            # already gone: taken by someone else, nothing left to do

