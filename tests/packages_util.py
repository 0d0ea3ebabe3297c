"""Test helpers: Mobile packages (FORMATS.md section 2), valid or broken on purpose, and the CLI.

``build_package`` writes a ZIP holding ``manifest.xml`` and the given data
files, with a manifest that is correct for them (sizes, SHA-256, record
counts), unless told otherwise. The other helpers write the variants the
package tests need: raw members with chosen ZIP attributes, members of
zeros streamed in chunks (bombs), corrupted CRC fields.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import secrets
import signal
import struct
import subprocess
import sys
import threading
import time
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence
from xml.sax.saxutils import quoteattr

from lxml import etree

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
MANIFEST_NS = "urn:cee-mobile:manifest:v1"


def example(name: str) -> bytes:
    return (EXAMPLES / name).read_bytes()


def to_mobile_customers() -> bytes:
    """A valid to-mobile ``Customers`` document (2 records)."""
    return example("to-mobile_customers.xml")


def from_mobile_customers() -> bytes:
    """A valid from-mobile ``ReturnedCustomers`` document (2 records)."""
    return example("from-mobile_customers.xml")


def count_records(data: bytes) -> int:
    """Top-level records of a (trusted, small) document: the root's element children."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.fromstring(data, parser)
    return sum(1 for child in root if isinstance(child.tag, str))


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Entry:
    """One ``Entry`` of a manifest; fields may be set to wrong values on purpose."""

    name: str
    records: int | str
    bytes: int | str
    sha256: str

    @classmethod
    def of(cls, name: str, data: bytes, records: int | None = None) -> "Entry":
        return cls(name, count_records(data) if records is None else records, len(data), sha256(data))

    def xml(self) -> str:
        return (f"  <Entry name={quoteattr(self.name)} records=\"{self.records}\" "
                f"bytes=\"{self.bytes}\" sha256=\"{self.sha256}\"/>\n")


def manifest_xml(direction: str, entries: Iterable[Entry], *, channel: str = "MOBILE-PL",
                 sequence: int = 1, created_at: str = "2026-11-27T22:01:07Z", mode: str = "delta",
                 package_id: str | None = None, doctype: str = "") -> bytes:
    """A manifest for ``entries``; ``doctype`` is inserted before the root when given."""
    if package_id is None:
        package_id = f"MOB-{channel}-{sequence:08d}"
    body = "".join(entry.xml() for entry in entries)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"{doctype}"
        f'<Manifest xmlns="{MANIFEST_NS}" packageId="{package_id}"\n'
        f'    direction="{direction}" salesChannel="{channel}" sequence="{sequence}"\n'
        f'    createdAt="{created_at}" mode="{mode}">\n'
        f"{body}"
        "</Manifest>\n"
    ).encode("utf-8")


Member = tuple["str | zipfile.ZipInfo", bytes]


def write_zip(path: Path, members: Sequence[Member], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """Write ``members`` (name or ZipInfo, content) in order; duplicates are written as given."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about duplicate names; we want them
        with zipfile.ZipFile(path, "w", compression=compression) as zf:
            for name, data in members:
                if isinstance(name, zipfile.ZipInfo):
                    zf.writestr(name, data)
                else:
                    zf.writestr(name, data, compress_type=compression)
    return path


def build_package(path: Path, data: dict[str, bytes], *, direction: str = "to-mobile",
                  entries: Sequence[Entry] | None = None, manifest: bytes | None = None,
                  extra: Sequence[Member] = (), omit: Iterable[str] = (),
                  compression: int = zipfile.ZIP_DEFLATED, **manifest_options) -> Path:
    """A package at ``path`` with ``data`` (member name -> bytes) and a manifest.

    By default the manifest is correct for ``data``. ``entries`` replaces the
    computed entries, ``manifest`` replaces the whole manifest (raw bytes),
    ``extra`` adds members after the data files, ``omit`` leaves members
    out of the ZIP (they stay in the manifest).
    """
    if entries is None:
        entries = [Entry.of(name, content) for name, content in data.items()]
    if manifest is None:
        manifest = manifest_xml(direction, entries, **manifest_options)
    omit = set(omit)
    members: list[Member] = [("manifest.xml", manifest)] if "manifest.xml" not in omit else []
    members += [(name, content) for name, content in data.items() if name not in omit]
    members += list(extra)
    return write_zip(path, members, compression=compression)


def valid_to_mobile(path: Path, **options) -> Path:
    return build_package(path, {"customers.xml": to_mobile_customers()}, direction="to-mobile", **options)


def valid_from_mobile(path: Path, **options) -> Path:
    return build_package(path, {"customers.xml": from_mobile_customers()}, direction="from-mobile", **options)


def zip_info(name: str, *, mode: int | None = None, compression: int = zipfile.ZIP_DEFLATED) -> zipfile.ZipInfo:
    """A ZipInfo with a fixed date and, when given, a Unix mode in ``external_attr``."""
    info = zipfile.ZipInfo(name, date_time=(2026, 11, 27, 22, 0, 0))
    info.compress_type = compression
    info.create_system = 3  # Unix, so that the mode bits mean what they say
    if mode is not None:
        info.external_attr = mode << 16
    return info


ZERO_CHUNK = 1 << 20


def zeros_sha256(size: int) -> str:
    digest = hashlib.sha256()
    chunk = bytes(ZERO_CHUNK)
    left = size
    while left:
        n = min(left, ZERO_CHUNK)
        digest.update(chunk if n == ZERO_CHUNK else bytes(n))
        left -= n
    return digest.hexdigest()


def write_zeros_package(path: Path, name: str, size: int, entry: Entry, direction: str = "to-mobile",
                        compression: int = zipfile.ZIP_DEFLATED) -> Path:
    """A package whose member ``name`` is ``size`` zero bytes, streamed in chunks.

    ``entry`` is what the manifest says about it (declared size, checksum).
    Deflate compresses a GiB of zeros to about a MiB.
    """
    chunk = bytes(ZERO_CHUNK)
    with zipfile.ZipFile(path, "w", compression=compression) as zf:
        zf.writestr("manifest.xml", manifest_xml(direction, [entry]))
        info = zip_info(name, compression=compression)
        info.file_size = size  # lets zipfile pick ZIP64 when it must
        with zf.open(info, "w", force_zip64=size >= (1 << 31)) as member:
            left = size
            while left:
                n = min(left, ZERO_CHUNK)
                member.write(chunk if n == ZERO_CHUNK else bytes(n))
                left -= n
    return Path(path)


def _patch_member_headers(path: Path, name: str, local_field: int, central_field: int, fmt: str, change) -> None:
    """Rewrite one field of member ``name`` in its local header and its central directory record.

    ``local_field`` and ``central_field`` are the field's offsets within the
    two records, ``fmt`` its struct format, ``change`` maps old to new value.
    """
    size = struct.calcsize(fmt)
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
        header_offset = info.header_offset
        central = zf.start_dir
    with open(path, "r+b") as f:
        f.seek(header_offset)
        assert f.read(4) == b"PK\x03\x04"
        f.seek(header_offset + local_field)
        old = struct.unpack(fmt, f.read(size))[0]
        f.seek(header_offset + local_field)
        f.write(struct.pack(fmt, change(old)))
        f.seek(central)
        directory = f.read()
    encoded = name.encode("utf-8")
    position = 0
    while True:
        position = directory.find(b"PK\x01\x02", position)
        assert position >= 0, f"central directory record of {name!r} not found"
        name_length = struct.unpack_from("<H", directory, position + 28)[0]
        if directory[position + 46:position + 46 + name_length] == encoded:
            break
        position += 4
    old = struct.unpack_from(fmt, directory, position + central_field)[0]
    with open(path, "r+b") as f:
        f.seek(central + position + central_field)
        f.write(struct.pack(fmt, change(old)))


def corrupt_crc(path: Path, name: str) -> None:
    """Flip the CRC-32 recorded for member ``name`` (local header and central directory).

    zipfile checks a member's CRC only once it has read the member to its
    end, so a reader that stops early never notices; one that reads the
    whole member fails with "Bad CRC-32". That makes "stopped reading
    early" observable without touching the code under test.
    """
    _patch_member_headers(path, name, 14, 16, "<I", lambda crc: crc ^ 0xFFFFFFFF)


def set_encrypted_flag(path: Path, name: str) -> None:
    """Mark member ``name`` as encrypted (general purpose flag bit 0); zipfile cannot write that itself."""
    _patch_member_headers(path, name, 6, 8, "<H", lambda flags: flags | 0x1)


def listing(*roots: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``roots``: path -> (size, mtime_ns), to prove nothing was written."""
    out: dict[str, tuple[int, int]] = {}
    for root in roots:
        root = Path(root)
        for item in [root, *root.rglob("*")]:
            st = item.lstat()
            out[str(item)] = (st.st_size if not item.is_dir() else 0, st.st_mtime_ns)
    return out


# ---------------------------------------------------------------- the real CLI


@dataclass
class CliRun:
    """One run of ``python -m exchange``: exit status, output, peak memory, wall time."""

    returncode: int
    stdout: str
    stderr: str
    max_rss_mb: float  # this child's own peak RSS (os.wait4), not the max over all children
    seconds: float

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


# Linux gives an exec'd child the peak RSS of the process it was forked from
# (the pytest process, which may be big by then): a tiny spawner forks the
# real command, so the figure reaped by wait4 is the command's own.
_RSS_MARKER = "\x1eexchange-peak-rss-kib:"
_SPAWNER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"{sys.argv[1]}{usage.ru_maxrss}\\n")
code = os.waitstatus_to_exitcode(status)
sys.exit(code if code >= 0 else 128 - code)
"""


def run_cli(*args: str | Path, cwd: Path, tmpdir: Path | None = None, timeout: float = 300) -> CliRun:
    """Run ``[sys.executable, "-m", "exchange", *args]`` in ``cwd`` and wait for it.

    The command's own peak RSS is measured by a small spawner process that
    reaps it with ``os.wait4`` (see ``_SPAWNER``). ``tmpdir`` becomes the
    child's ``TMPDIR``. A child still running after ``timeout`` seconds is
    killed with its process group (and the test then fails on its exit status).
    """
    env = dict(os.environ)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.pop("EXCHANGE_CONFIG", None)
    if tmpdir is not None:
        env["TMPDIR"] = str(tmpdir)
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", _SPAWNER, _RSS_MARKER, sys.executable, "-m", "exchange",
                             *map(str, args)], cwd=cwd, env=env, start_new_session=True,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    timer = threading.Timer(timeout, lambda: os.killpg(proc.pid, signal.SIGKILL))
    timer.start()
    try:
        out, err = proc.communicate()
    finally:
        timer.cancel()
    seconds = time.monotonic() - start
    # The spawner's last line on stderr is the marker and the command's peak RSS in KiB.
    err, _marker, rss = err.rpartition(_RSS_MARKER.encode())
    max_rss_kib = int(rss) if rss.strip().isdigit() else 0
    return CliRun(proc.returncode, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                  max_rss_kib / 1024, seconds)


# ------------------------------------------------------- a loopback HTTP server


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers anything (a DTD declaring ``&leak;``, or the secret), and writes down that it was asked."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.server.requests.append(self.path)
        if self.path.endswith(".dtd"):
            body = f'<!ENTITY leak "{self.server.secret}">'.encode()
        else:
            body = self.server.secret.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep pytest output clean
        pass


class LoopbackServer(http.server.ThreadingHTTPServer):
    """An HTTP server on 127.0.0.1 (free port) that records every connection and request."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.requests: list[str] = []
        self.connections: list[tuple[str, int]] = []
        self.secret = f"HTTP-CANARY-{secrets.token_hex(16)}"
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def verify_request(self, request, client_address):
        self.connections.append(client_address)
        return True

    def contacts(self) -> list[str]:
        """Stop serving, then report every connection ever made, pending ones included.

        Call it after the client process has exited: any connection it opened
        is then either accepted (recorded) or still in the listen backlog,
        where a non-blocking accept finds it. No waiting on time.
        """
        self.shutdown()
        self._thread.join()
        seen = [f"connection from {address}" for address in self.connections]
        seen += [f"request {path}" for path in self.requests]
        self.socket.setblocking(False)
        while True:
            try:
                connection, address = self.socket.accept()
            except (BlockingIOError, InterruptedError):
                break
            connection.close()
            seen.append(f"pending connection from {address}")
        return seen

    def close(self) -> None:
        self.shutdown()
        self.server_close()
