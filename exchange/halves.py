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
from typing import IO, Self

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


class _Reader:
    """A half as a binary stream over ``self._source``, closed with it."""

    _source: IO[bytes]

    def close(self) -> None:
        self._source.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


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
    tags = _root_if_cuttable(lambda: open(path, "rb"), size)
    if tags is None:
        return None
    offset = int(size * _SHARE)
    with open(path, "rb") as source:
        source.seek(offset)  # a file is read from the share on, not up to it
        cut, _rest = _find_cut(source, 0, _RECORD_START)
    if cut is None:
        return None
    head, tail = tags
    return Split(path, size, offset + cut, head, tail)


def _min_bytes() -> int:
    # EXCHANGE_SPLIT_MIN_BYTES lowers the limit: the tests cut small files to cover this path.
    return int(os.environ.get("EXCHANGE_SPLIT_MIN_BYTES", MIN_BYTES))


@dataclass(frozen=True)
class StreamCut:
    """How a document that can only be read from its start (a package member) is cut in two.

    Where is not known in advance: finding out would cost a pass over half of
    the document. The second half's reader, which reads that far anyway to
    skip the first half, finds the cut (:meth:`SecondHalfReader.find`): before
    the first top-level record in ``records`` that starts at ``offset`` or
    after it. The first half's reader asks for it only once it has read
    ``offset`` bytes, short of which no cut can be.
    """

    open_source: Callable[[], IO[bytes]]
    size: int  # as declared
    offset: int  # where the search for the cut begins
    records: tuple[str, ...]
    head: bytes  # XML declaration and root start tag: opens the second half
    tail: bytes  # the root's end tag: closes the first half

    def first(self, cut: Callable[[], int | None]) -> FirstHalfReader:
        """The first half; ``cut()`` says where it ends (None: no cut, the whole document)."""
        return FirstHalfReader(self.open_source(), self.offset, cut, self.tail)

    def second(self) -> SecondHalfReader:
        return SecondHalfReader(self.open_source(), self)


def stream_cut(open_source: Callable[[], IO[bytes]], size: int, records: tuple[str, ...],
               share: float = _SHARE) -> StreamCut | None:
    """How to cut the document ``open_source()`` reads (``size`` bytes, as declared) in two
    near ``share`` of its bytes; None when it is small or not plain UTF-8."""
    tags = _root_if_cuttable(open_source, size)
    if tags is None:
        return None
    head, tail = tags
    return StreamCut(open_source, size, int(size * share), records, head, tail)


def _root_if_cuttable(open_source: Callable[[], IO[bytes]], size: int) -> tuple[bytes, bytes] | None:
    """What opens the second half (the XML declaration and the root's start tag) and what
    closes the first (the root's end tag), for a document worth cutting; None when it is
    small, not plain UTF-8, or its root cannot be read."""
    if size < _min_bytes():
        return None
    with open_source() as source:
        start = source.read(_WINDOW)
    if not _plain_utf8(start):
        return None
    head, tail = _root_tags(open_source)
    if head is None:
        return None
    return _XML_DECLARATION + head, tail


def _find_cut(source: IO[bytes], offset: int, pattern: re.Pattern) -> tuple[int | None, bytes]:
    """Read ``source`` up to the first match of ``pattern`` at ``offset`` or after it, within
    a few windows: (the match's offset, the bytes read from there on); (None, b"") when
    there is none."""
    base = 0  # the offset of window[0]
    window = source.read(_WINDOW)
    while base + len(window) < offset:  # skip to the share
        base += len(window)
        window = source.read(_WINDOW)
        if not window:
            return None, b""
    carry = b""  # the end of the window before: a start tag across two windows is found whole
    for _ in range(_WINDOWS):
        text = carry + window
        text_base = base - len(carry)
        found = pattern.search(text, max(offset - text_base, 0))
        if found:
            return text_base + found.start(1), text[found.start(1):]
        carry = text[-256:]
        base = text_base + len(text)
        window = source.read(_WINDOW)
        if not window:
            break
    return None, b""


class SecondHalfReader(_Reader):
    """The second half of a :class:`StreamCut` as a document, once :meth:`find` found the cut:
    the XML declaration and root start tag, then the source's bytes from the cut on."""

    def __init__(self, source: IO[bytes], cut: StreamCut):
        self._source = source
        self._spec = cut
        self.cut: int | None = None
        self._pending = b""

    def find(self) -> int | None:
        """Read up to the cut; where it is (None: no record near the share, no second half)."""
        spec = self._spec
        self.cut, rest = _find_cut(self._source, spec.offset, _record_start(spec.records))
        if self.cut is not None:
            self._pending = spec.head + rest
        return self.cut

    def read(self, size: int = -1) -> bytes:
        if self._pending:
            data, self._pending = self._pending, b""
            return data
        if self.cut is None:
            return b""
        return self._source.read(size if size >= 0 else _READ_BLOCK)


class FirstHalfReader(_Reader):
    """The first half of a :class:`StreamCut` as a document: the source's bytes up to the
    cut, then the root's end tag; the whole source when there is no cut."""

    def __init__(self, source: IO[bytes], offset: int, cut: Callable[[], int | None], tail: bytes):
        self._source = source
        self._position = 0
        self._offset = offset
        self._ask = cut
        self._asked = False
        self._end: int | None = None
        self._tail = tail

    def read(self, size: int = -1) -> bytes:
        wanted = size if size >= 0 else _READ_BLOCK
        if not self._asked:
            room = self._offset - self._position
            if room > 0:
                wanted = min(wanted, room)
            else:  # no cut before here: now it matters where it is
                self._asked = True
                self._end = self._ask()
                if self._end is None:
                    self._tail = b""  # the whole document, with its own end
        if self._end is not None:
            wanted = min(wanted, self._end - self._position)
        data = self._source.read(wanted) if wanted > 0 else b""
        if data:
            self._position += len(data)
            return data
        data, self._tail = self._tail, b""
        return data


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


#: More attributes than any export or data file root has: such a file is not cut (it is invalid,
#: and the one pass says why), as reading many attributes by name is quadratic in lxml.
_MAX_ROOT_ATTRIBUTES = 32


def _root_tags(open_source: Callable[[], IO[bytes]]) -> tuple[bytes | None, bytes]:
    """The root's start tag (its namespaces and attributes as parsed) and end tag;
    (None, b"") when they cannot be read (then the file is not cut, and the usual
    validation says why)."""
    try:
        with open_source() as source:
            for _event, root in safe.iterparse(source, events=("start",)):
                if len(root.attrib) > _MAX_ROOT_ATTRIBUTES:
                    return None, b""  # not a root the XSDs allow; copying it costs N² in lxml
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


class HalfReader(_Reader):
    """One half as a document: ``prefix``, the file's bytes ``start:end``, ``suffix``."""

    def __init__(self, path: Path, prefix: bytes, start: int, end: int, suffix: bytes, scale: float):
        self._source: IO[bytes] = open(path, "rb", buffering=_READ_BLOCK)
        self._source.seek(start)
        self._left = end - start
        self._prefix = prefix
        self._suffix = suffix
        self._scale = scale  # tell() as a share of the whole file, for a progress bar

    def read(self, size: int = -1) -> bytes:
        if self._prefix:
            data, self._prefix = self._prefix, b""
            return data
        if self._left > 0:
            data = self._source.read(self._left if size < 0 else min(size, self._left))
            if not data:  # the file shrank under us: the half ends early, and is not valid
                self._left = 0
                return b""
            self._left -= len(data)
            return data
        data, self._suffix = self._suffix, b""
        return data

    def tell(self) -> int:
        return int(self._source.tell() * self._scale)


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
