"""Mobile packages: a ZIP with ``manifest.xml`` and the data files it lists.

Reading a package is where hostile input is most likely (F5), so nothing in
it is parsed until the container itself has been checked: only plain
top-level members, no duplicates, no links, no encryption, exactly the
members the manifest lists. Members are then read as streams with a hard
limit, so a member that expands past its declared size (or the package past
``max_package_bytes``) is refused after reading at most that much, and every
member's size and SHA-256 are compared with the manifest:
:func:`check_package` does so before it validates the XML; the inbound flow
(:mod:`exchange.to_cee`) does it in the same pass as its validation
(:class:`MemberReader`) and uses nothing of the member before both passed.
"""

from __future__ import annotations

import hashlib
import re
import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from exchange.xml import safe
from exchange.xml.precise import syntax_problem
from exchange.xml.report import Problem, Report, readable
from exchange.xml.schemas import (
    FROM_MOBILE,
    KINDS,
    MANIFEST,
    TO_MOBILE,
    DocumentKind,
    schema,
)
from exchange.xml.validate import validate_document

MANIFEST_NAME = "manifest.xml"
MAX_MANIFEST_BYTES = 1 << 20
DEFAULT_MAX_PACKAGE_BYTES = 1 << 30
_READ = 1 << 16
_BLOCK = 1 << 18  # MemberReader's reads from the ZIP

#: The data files a package may carry, by direction (FORMATS.md section 2).
DATA_FILES: dict[str, dict[str, DocumentKind]] = {
    "to-mobile": {
        "positions.xml": KINDS[f"{{{TO_MOBILE}}}Positions"],
        "customers.xml": KINDS[f"{{{TO_MOBILE}}}Customers"],
    },
    "from-mobile": {
        "customers.xml": KINDS[f"{{{FROM_MOBILE}}}ReturnedCustomers"],
    },
}

_DRIVE = re.compile(r"^[A-Za-z]:")


@dataclass(frozen=True)
class Source:
    file: str
    export_id: str
    sha256: str


@dataclass(frozen=True)
class Entry:
    name: str
    records: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class Manifest:
    package_id: str
    direction: str
    channel: str
    sequence: int
    created_at: str
    mode: str
    sources: tuple[Source, ...]
    entries: tuple[Entry, ...]


@dataclass
class PackageCheck:
    """What checking a package found: its manifest (when readable) and its problems."""

    manifest: Manifest | None = None
    report: Report = field(default_factory=Report)

    @property
    def valid(self) -> bool:
        return not self.report


def shown(name: str) -> str:
    """A member name as it may be printed: control characters escaped, so a
    name cannot forge lines of a report."""
    return name.encode("unicode_escape").decode("ascii") if not name.isprintable() else name


def _member_problem(name: str) -> str | None:
    """Why a member name is not a plain top-level file name, or None."""
    if name.endswith("/") and name.count("/") == 1 and name != "/":
        return "directory entry"
    if name.startswith("/") or _DRIVE.match(name):
        return "absolute path"
    if "\\" in name:
        return "backslash in name"
    if any(part == ".." for part in name.split("/")):
        return "path leaves the package ('..')"
    if "/" in name:
        return "not at the top level"
    if not name or name in (".",):
        return "empty name"
    if any(ord(c) < 32 for c in name):
        return "control character in name"
    return None


def _expands_past(entry: Entry) -> str:
    return f"member expands past its declared size of {entry.bytes} bytes (F5)"


def _unlike(entry: Entry, size: int, digest: str) -> list[str]:
    """How a member read to its end differs from its manifest entry: size, SHA-256."""
    found = []
    if size != entry.bytes:
        found.append(f"size is {size} bytes, the manifest says {entry.bytes}")
    if digest != entry.sha256:
        found.append(f"SHA-256 is {digest}, the manifest says {entry.sha256}")
    return found


class MemberRefused(Exception):
    """A package member failed its check while being read (F5)."""


class MemberReader:
    """A package member as a binary stream, read against its manifest entry (F5).

    Never reads more than the declared size plus one byte, whatever the
    member would inflate to: past the declared size, :meth:`read` raises
    :class:`MemberRefused`. With ``verify``, it also hashes what it reads;
    :meth:`problems` then reads whatever the caller left (still bounded)
    and compares size and SHA-256 with the manifest. So one streaming pass
    can parse a member and verify it: nothing that comes of the parse may
    be used before :meth:`problems` came back empty.
    """

    def __init__(self, archive: zipfile.ZipFile, entry: Entry, verify: bool = False):
        self.archive = archive
        self.entry = entry
        self.size = 0
        self.digest = hashlib.sha256() if verify else None
        self.problem: str | None = None
        self._buffer = b""
        self._offset = 0
        try:
            self.stream = archive.open(entry.name)
        except Exception:
            archive.close()
            raise

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            return b"".join(iter(lambda: self.read(_BLOCK), b""))
        if self._offset >= len(self._buffer):
            self._buffer = self._fetch()
            self._offset = 0
        block = self._buffer[self._offset:self._offset + size]
        self._offset += len(block)
        return block

    def _fetch(self) -> bytes:
        """The next block of the member: big, as every read from a ZIP goes through
        locks, a seek and GIL hand-overs, and parsers ask for 32 KiB at a time."""
        if self.problem is not None:
            raise MemberRefused(self.problem)
        try:
            block = self.stream.read(min(_BLOCK, self.entry.bytes + 1 - self.size))
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as error:
            self.problem = f"cannot read the member: {error}"
            raise MemberRefused(self.problem) from error
        self.size += len(block)
        if self.size > self.entry.bytes:
            self.problem = _expands_past(self.entry)
            raise MemberRefused(self.problem)
        if self.digest is not None:
            self.digest.update(block)
        return block

    def problems(self) -> tuple[str, ...]:
        """Read to the end, then what is wrong with the member: size, SHA-256 (empty when it is as declared)."""
        if self.digest is None:
            raise ValueError("problems() needs a MemberReader made with verify=True")
        try:
            while self._fetch():
                pass
        except MemberRefused:
            return (self.problem,)
        return tuple(_unlike(self.entry, self.size, self.digest.hexdigest()))

    def close(self) -> None:
        try:
            self.stream.close()
        finally:
            self.archive.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_member(path: str | Path, entry: Entry, verify: bool = False) -> MemberReader:
    """A member of a package whose container and manifest were checked (``check_package``)."""
    return MemberReader(zipfile.ZipFile(path), entry, verify)


def _read_limited(zf: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> tuple[int, str, bool]:
    """Stream a member: (bytes read, sha256, whether it went past ``limit``).

    Reads at most ``limit + 1`` uncompressed bytes, whatever the member
    would inflate to.
    """
    digest = hashlib.sha256()
    size = 0
    with zf.open(info) as member:
        while size <= limit:
            block = member.read(min(_READ, limit + 1 - size))
            if not block:
                return size, digest.hexdigest(), False
            digest.update(block)
            size += len(block)
    return size, digest.hexdigest(), True


def _parse_manifest(data: bytes, report: Report) -> Manifest | None:
    from lxml import etree

    try:
        tree = safe.parse_bytes(data)
    except etree.XMLSyntaxError as error:
        problem = syntax_problem(error)
        report.add(Problem(problem.message, line=problem.line, column=problem.column, member=MANIFEST_NAME))
        return None
    except safe.HostileDocument as error:
        report.add(Problem(str(error), member=MANIFEST_NAME, line=1, column=1))
        return None
    root = tree.getroot()
    if root.tag != f"{{{MANIFEST}}}Manifest":
        report.add(Problem(f"root element is '{etree.QName(root).localname}', expected 'Manifest' ({MANIFEST})",
                           member=MANIFEST_NAME, line=root.sourceline, column=1))
        return None
    manifest_schema = schema("manifest.xsd")
    if not manifest_schema.validate(tree):
        for entry in manifest_schema.error_log:
            report.add(Problem(readable(entry.message), line=entry.line, column=entry.column or 1,
                               path=entry.path, member=MANIFEST_NAME))
        return None
    ns = f"{{{MANIFEST}}}"
    return Manifest(
        package_id=root.get("packageId"),
        direction=root.get("direction"),
        channel=root.get("salesChannel"),
        sequence=int(root.get("sequence")),
        created_at=root.get("createdAt"),
        mode=root.get("mode"),
        sources=tuple(Source(s.get("file"), s.get("exportId"), s.get("sha256")) for s in root.iter(ns + "Source")),
        entries=tuple(Entry(e.get("name"), int(e.get("records")), int(e.get("bytes")), e.get("sha256"))
                      for e in root.iter(ns + "Entry")),
    )


def check_package(path: str | Path, max_bytes: int = DEFAULT_MAX_PACKAGE_BYTES,
                  validate_members: bool = True, verify_members: bool = True) -> PackageCheck:
    """Check a package completely; never raises for bad input.

    ``max_bytes`` bounds the uncompressed bytes of all data members together
    (F5, ``max_package_bytes``). ``verify_members=False`` stops after the
    manifest (to read its createdAt); ``validate_members=False`` checks sizes
    and checksums but leaves the XML of the data files to the caller.
    """
    check = PackageCheck()
    report = check.report
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = _check_container(zf, report, max_bytes, verify_members)
            check.manifest = manifest
            if manifest is not None and not report and validate_members and verify_members:
                _check_members_xml(zf, manifest, report)
    except zipfile.BadZipFile as error:
        report.add(Problem(f"not a readable ZIP package: {error}"))
    except (OSError, EOFError, NotImplementedError, RuntimeError) as error:
        report.add(Problem(f"cannot read the package: {error}"))
    return check


def _check_container(zf: zipfile.ZipFile, report: Report, max_bytes: int,
                     verify_members: bool = True) -> Manifest | None:
    infos = zf.infolist()
    names: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        name = info.filename
        why = _member_problem(name)
        if why:
            report.add(Problem(f"member '{shown(name)}' refused: {why} (F5)"))
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            report.add(Problem(f"member '{shown(name)}' refused: symbolic link (F5)"))
            continue
        if info.flag_bits & 0x1:
            report.add(Problem(f"member '{shown(name)}' refused: encrypted (F5)"))
            continue
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            report.add(Problem(f"member '{shown(name)}' refused: compression method {info.compress_type} "
                               "(only stored and deflate are allowed)"))
            continue
        if name in names:
            report.add(Problem(f"member '{shown(name)}' refused: appears more than once (F5)"))
            continue
        names[name] = info
    if report:
        return None
    if MANIFEST_NAME not in names:
        report.add(Problem(f"no {MANIFEST_NAME} in the package"))
        return None
    size, _digest, too_big = _read_limited(zf, names[MANIFEST_NAME], MAX_MANIFEST_BYTES)
    if too_big:
        report.add(Problem(f"{MANIFEST_NAME} is larger than {MAX_MANIFEST_BYTES} bytes", member=MANIFEST_NAME))
        return None
    manifest = _parse_manifest(zf.read(names[MANIFEST_NAME]), report)
    if manifest is None:
        return None

    listed = {entry.name: entry for entry in manifest.entries}
    allowed = DATA_FILES[manifest.direction]
    for name in names:
        if name != MANIFEST_NAME and name not in listed:
            report.add(Problem(f"member '{shown(name)}' is not listed in the manifest (F5)"))
    for entry in manifest.entries:
        if entry.name not in allowed:
            report.add(Problem(f"entry '{shown(entry.name)}' is not a data file of a {manifest.direction} package "
                               f"(expected {' or '.join(sorted(allowed))})", member=MANIFEST_NAME))
        elif entry.name not in names:
            report.add(Problem(f"member '{entry.name}' is listed in the manifest but missing from the package"))
    if len(listed) != len(manifest.entries):
        report.add(Problem("the manifest lists a member more than once", member=MANIFEST_NAME))
    elif len(manifest.entries) > 1:
        report.add(Problem(f"a package holds one data file; this manifest lists {len(manifest.entries)} "
                           f"({', '.join(shown(e.name) for e in manifest.entries)})", member=MANIFEST_NAME))
    declared = sum(entry.bytes for entry in manifest.entries)
    if declared > max_bytes:
        report.add(Problem(f"the manifest declares {declared} bytes, more than max_package_bytes "
                           f"({max_bytes} bytes) (F5)", member=MANIFEST_NAME))
    if report or not verify_members:
        return manifest

    # The declared sizes are within max_package_bytes (checked above), so reading
    # each member no further than its declared size bounds the whole package.
    for entry in manifest.entries:
        size, digest, too_big = _read_limited(zf, names[entry.name], entry.bytes)
        for problem in [_expands_past(entry)] if too_big else _unlike(entry, size, digest):
            report.add(Problem(problem, member=entry.name))
    return manifest


def _check_members_xml(zf: zipfile.ZipFile, manifest: Manifest, report: Report) -> None:
    allowed = DATA_FILES[manifest.direction]
    for entry in manifest.entries:
        kind = allowed[entry.name]
        validation = validate_document(lambda: zf.open(entry.name), kind=kind)
        for problem in validation.report.problems:
            report.add(Problem(problem.message, problem.line, problem.column, problem.path, member=entry.name))
        report.more += validation.report.more
        if validation.valid and validation.records != entry.records:
            report.add(Problem(f"holds {validation.records} records, the manifest says {entry.records}",
                               member=entry.name))
