"""A big customer export cut in two at a record boundary, one half per core.

Validating and transforming one export are two passes over it, each of
which would otherwise parse the whole file. Cut in two, each half is parsed
once, validated while it is parsed, and transformed in the same pass: the
parent takes the first half, a forked child the second
(:mod:`exchange.second_half`).

The cut is made before the ``<`` of a top-level ``Customer`` or
``DeletedCustomer`` near the middle. The first half is the bytes before it
and the root's end tag; the second half is an XML declaration, the root's
start tag (the same name, namespaces and attributes) and the bytes from the
cut on. If both halves are well-formed, the cut sat between two top-level
records: anything else (inside a comment, a CDATA section, a nested
element) leaves the first half with an element or comment open. The two
halves are then valid exactly when the whole is, once three things that
cross the cut are checked as well: customer numbers are unique over both
halves, no ``Customer`` follows a ``DeletedCustomer`` (the XSD's order), and
the whole has one root (the second half's). Whenever a half is not valid,
the caller validates the whole file the usual way instead, so a cut in the
wrong place costs time, never a wrong verdict.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lxml import etree

from exchange.xml import safe
from exchange.xml.checks import RecordChecker
from exchange.xml.schemas import DocumentKind
from exchange.xml.validate import NotValid, valid_records

#: Exports smaller than this are not cut: the second process would cost more than it saves.
MIN_BYTES = 16 << 20
#: Where the cut is looked for, as a share of the file: the child also keeps its ledger
#: changes in a spool, so the parent takes a little more than half.
_SHARE = 0.54
_WINDOW = 1 << 20
_WINDOWS = 8
_XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def _record_start(names: tuple[str, ...]) -> re.Pattern:
    """A top-level record's start tag, right after the end of a tag (so seldom in a comment or CDATA)."""
    return re.compile(rb">[ \t\r\n]*(<(?:[A-Za-z_][\w.-]*:)?(?:" + "|".join(names).encode() +
                      rb")[ \t\r\n/>])")


_RECORD_START = _record_start(("Customer", "DeletedCustomer"))
_DECLARATION = re.compile(rb"<\?xml[^>]*\?>")
_ENCODING = re.compile(rb"""encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_VERSION = re.compile(rb"""version\s*=\s*["']([0-9.]+)["']""")
_READ_BLOCK = 1 << 20


class HalfInvalid(Exception):
    """A half is not valid; the whole file must be judged the usual way."""


@dataclass(frozen=True)
class Split:
    path: Path
    size: int
    cut: int  # the offset of the second half's first record
    head: bytes  # XML declaration and root start tag: opens the second half
    tail: bytes  # the root's end tag: closes the first half

    def first(self) -> HalfReader:
        return HalfReader(self.path, b"", 0, self.cut, self.tail, self.size / self.cut)

    def second(self) -> HalfReader:
        return HalfReader(self.path, self.head, self.cut, self.size, b"", 1.0)


def find_split(path: Path) -> Split | None:
    """Where to cut this export in two; None when it is small or not plain UTF-8."""
    size = path.stat().st_size
    if size < _min_bytes():
        return None
    with open(path, "rb") as source:
        start = source.read(_WINDOW)
        if not _plain_utf8(start):
            return None
        head, tail = _root_tags(lambda: open(path, "rb"))
        if head is None:
            return None
        offset = int(size * _SHARE)
        for _ in range(_WINDOWS):
            source.seek(offset)
            window = source.read(_WINDOW)
            found = _RECORD_START.search(window)
            if found:
                return Split(path, size, offset + found.start(1), _XML_DECLARATION + head, tail)
            if len(window) < _WINDOW:
                return None
            offset += _WINDOW - 256  # a start tag across two windows is found in the second
    return None


def _min_bytes() -> int:
    # EXCHANGE_SPLIT_MIN_BYTES lowers the limit: the tests cut small files to cover this path.
    return int(os.environ.get("EXCHANGE_SPLIT_MIN_BYTES", MIN_BYTES))


@dataclass(frozen=True)
class StreamSplit:
    """Where a document that can only be read from its start (a package member) is cut."""

    open_source: Callable[[], IO[bytes]]
    size: int
    cut: int  # the offset of the second half's first record
    head: bytes  # XML declaration and root start tag: opens the second half
    tail: bytes  # the root's end tag: closes the first half

    def first(self) -> StreamHalf:
        return StreamHalf(self.open_source(), b"", 0, self.cut, self.tail)

    def second(self) -> StreamHalf:
        return StreamHalf(self.open_source(), self.head, self.cut, None, b"")


def find_stream_split(open_source: Callable[[], IO[bytes]], size: int, records: tuple[str, ...],
                      share: float = _SHARE) -> StreamSplit | None:
    """Where to cut the document ``open_source()`` reads (``size`` bytes, as declared) in
    two, before a top-level record named in ``records`` at about ``share`` of its bytes;
    None when it is small or not plain UTF-8, or no such record is near there.

    Reads the document up to the cut: this costs a pass over that much of it.
    """
    if size < _min_bytes():
        return None
    pattern = _record_start(records)
    offset = int(size * share)
    with open_source() as source:
        start = source.read(_WINDOW)
        if not _plain_utf8(start):
            return None
        head, tail = _root_tags(open_source)
        if head is None:
            return None
        position = len(start)  # bytes read so far
        window = start
        while position < offset:  # skip to the share
            window = source.read(_WINDOW)
            if not window:
                return None
            position += len(window)
        looked = 0
        carry = b""  # the end of the window before: a start tag across two windows is found whole
        base = position - len(window)  # the offset of window[0]
        while looked < _WINDOWS:
            text = carry + window
            text_base = base - len(carry)
            found = pattern.search(text, max(offset - text_base, 0))
            if found:
                return StreamSplit(open_source, size, text_base + found.start(1), _XML_DECLARATION + head, tail)
            carry = text[-256:]
            window = source.read(_WINDOW)
            if not window:
                return None
            base = text_base + len(text)
            looked += 1
    return None


class StreamHalf:
    """One half of a :class:`StreamSplit` as a document: ``prefix``, the source's bytes
    from ``start`` to ``end`` (to its end when None), ``suffix``. The bytes before
    ``start`` are read and dropped."""

    def __init__(self, source: IO[bytes], prefix: bytes, start: int, end: int | None, suffix: bytes):
        self._source = source
        self._skip = start
        self._left = None if end is None else end - start
        self._prefix = prefix
        self._suffix = suffix

    def read(self, size: int = -1) -> bytes:
        while self._skip > 0:
            dropped = self._source.read(min(self._skip, _READ_BLOCK))
            if not dropped:  # shorter than the cut: the half ends early, and is not valid
                self._skip = 0
                self._left = 0
            self._skip -= len(dropped)
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        if self._left is None or self._left > 0:
            wanted = size if size >= 0 else _READ_BLOCK
            if self._left is not None:
                wanted = min(wanted, self._left)
            data = self._source.read(wanted)
            if data:
                if self._left is not None:
                    self._left -= len(data)
                return data
            self._left = 0
        data, self._suffix = self._suffix, b""
        return data

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> StreamHalf:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _plain_utf8(start: bytes) -> bool:
    """UTF-8 (with or without BOM) and XML 1.0: what the second half's declaration says."""
    if start.startswith(b"\xef\xbb\xbf"):
        start = start[3:]
    if not start.startswith(b"<?xml"):
        return start.startswith(b"<")
    declaration = _DECLARATION.match(start)
    if declaration is None:
        return False
    encoding = _ENCODING.search(declaration.group())
    version = _VERSION.search(declaration.group())
    return (encoding is None or encoding.group(1).lower() in (b"utf-8", b"utf8")) and \
        version is not None and version.group(1) == b"1.0"


def _root_tags(open_source: Callable[[], IO[bytes]]) -> tuple[bytes | None, bytes]:
    """The root's start tag (its namespaces and attributes as parsed) and end tag;
    (None, b"") when they cannot be read (then the file is not cut, and the usual
    validation says why)."""
    try:
        with open_source() as source:
            for _event, root in safe.iterparse(source, events=("start",)):
                copy = etree.Element(root.tag, dict(root.attrib), nsmap=root.nsmap)
                start = etree.tostring(copy)
                if not start.endswith(b"/>"):
                    return None, b""
                local = etree.QName(root).localname
                name = f"{root.prefix}:{local}" if root.prefix else local
                return start[:-2] + b">", f"</{name}>".encode()
    except (etree.XMLSyntaxError, OSError):
        pass
    return None, b""


class HalfReader:
    """One half as a document: ``prefix``, the file's bytes ``start:end``, ``suffix``."""

    def __init__(self, path: Path, prefix: bytes, start: int, end: int, suffix: bytes, scale: float):
        self._file: IO[bytes] = open(path, "rb", buffering=_READ_BLOCK)
        self._file.seek(start)
        self._left = end - start
        self._prefix = prefix
        self._suffix = suffix
        self._scale = scale  # tell() as a share of the whole file, for a progress bar

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        if self._left > 0:
            data = self._file.read(self._left if size < 0 else min(size, self._left))
            if not data:  # the file shrank under us: the half ends early, and is not valid
                self._left = 0
                return b""
            self._left -= len(data)
            return data
        data, self._suffix = self._suffix, b""
        return data

    def tell(self) -> int:
        return int(self._file.tell() * self._scale)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> HalfReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@dataclass
class HalfOrder:
    """What a half saw of the records' order, to check it across the cut."""

    first: str | None = None
    last: str | None = None


def validated_records(source: IO[bytes], kind: DocumentKind, checker: RecordChecker,
                      order: HalfOrder) -> Iterator[etree._Element]:
    """The top-level records of one half, validated as they are parsed
    (:func:`exchange.xml.validate.valid_records`), with comments and processing
    instructions left out as :func:`exchange.xml.safe.records` does, so that
    ``.text`` is a whole value. Raises :class:`HalfInvalid` when the half is not
    valid; libxml2 may say so only after some records went by, so what was
    made of them must wait for the end of the half.
    """
    try:
        for element in valid_records(source, kind, checker, remove_comments=True, remove_pis=True):
            if order.first is None:
                order.first = element.tag
            order.last = element.tag
            yield element
    except NotValid as error:
        raise HalfInvalid(str(error)) from None
