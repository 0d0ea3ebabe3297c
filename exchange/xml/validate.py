"""Streaming validation of one XML document, with a precise error report.

Two passes, both in flat memory:

1. The fast path: lxml's ``iterparse`` with the streaming schema, plus the
   checks in code. libxml2 validates while it parses, at close to parsing
   speed, but reports errors only at the end and without positions.
2. Only when the fast path fails, the report path (:mod:`exchange.xml.precise`)
   parses again in tag-sized pieces, so that every error libxml2 raises can
   be tied to the line, column and element where it arose.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO

from lxml import etree

from exchange.xml import precise, safe
from exchange.xml.checks import RecordChecker, checker_for
from exchange.xml.report import Problem, Report
from exchange.xml.schemas import DocumentKind, UnknownRoot, kind_for, schema_for

_CHUNK = 1 << 16


@dataclass(frozen=True)
class Root:
    """The root element of a document: enough to choose a schema and order files."""

    tag: str
    attrib: dict[str, str]
    line: int
    kind: DocumentKind


class DocumentRejected(Exception):
    """A document is unusable before validation starts (junk, DOCTYPE, unknown root)."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem


class _Head:
    """A reader that remembers the first bytes it read (to place the root)."""

    def __init__(self, source: IO[bytes], keep: int = 1 << 16):
        self.source = source
        self.keep = keep
        self.head = bytearray()

    def read(self, size: int = -1) -> bytes:
        data = self.source.read(size)
        if len(self.head) < self.keep:
            self.head += data[: self.keep - len(self.head)]
        return data

    def line_of(self, local: str, fallback: int) -> int:
        """The line where the start tag of ``local`` begins (lxml gives its last line)."""
        found = re.search(rb"<(?:[\w.-]+:)?" + re.escape(local.encode()) + rb"[\s/>]", self.head)
        if not found:
            return fallback
        before = self.head[: found.start()]
        return before.count(b"\n") + 1 if b"\n" in before else before.count(b"\r") + 1


def read_root(source: IO[bytes]) -> Root:
    """Read only as far as the root element (F3 ordering, schema choice).

    Raises :class:`DocumentRejected` for anything that is not one of our
    documents: an empty file, not XML at all, a DOCTYPE, an unknown root.
    """
    head = _Head(source)
    try:
        events = safe.iterparse(head, events=("start",))
        for _event, element in events:
            safe.refuse_doctype(element)
            line = head.line_of(etree.QName(element).localname, element.sourceline or 1)
            try:
                kind = kind_for(element.tag)
            except UnknownRoot as error:
                # A file cut inside the root's start tag looks like an unknown root
                # (its xmlns may be missing): one more step tells the two apart.
                for _more in events:
                    break
                raise DocumentRejected(Problem(str(error), line=line, column=1)) from None
            return Root(element.tag, _attributes(element), line, kind)
    except etree.XMLSyntaxError as error:
        if not head.head:
            raise DocumentRejected(Problem("the file is empty")) from None
        raise DocumentRejected(precise.syntax_problem(error)) from None
    except safe.HostileDocument as error:
        raise DocumentRejected(Problem(str(error), line=error.line, column=1)) from None
    raise DocumentRejected(Problem("not well-formed XML: no root element", line=1, column=1))


def _attributes(element: etree._Element) -> dict[str, str]:
    """The attributes of an element, read in one pass.

    ``dict(element.attrib)`` has lxml look each value up by name along the
    element's list of attributes (xmlGetNsProp): quadratic, 7 s for a root
    with 40,000 attributes. XPath hands over the attribute nodes themselves.
    """
    return {value.attrname: str(value) for value in element.xpath("@*")}


@dataclass
class Validation:
    """The outcome of validating one document."""

    kind: DocumentKind | None
    report: Report = field(default_factory=Report)
    root: Root | None = None
    records: int = 0

    @property
    def valid(self) -> bool:
        return not self.report


def validate_document(open_source: Callable[[], IO[bytes]], kind: DocumentKind | None = None) -> Validation:
    """Validate the document that ``open_source()`` yields (called once or twice).

    ``kind`` restricts the document to one kind (e.g. the data file a
    manifest announces); by default the root element chooses it.
    """
    try:
        with open_source() as source:
            root = read_root(source)
    except DocumentRejected as error:
        validation = Validation(kind)
        validation.report.add(error.problem)
        return validation
    if kind is not None and root.kind is not kind:
        validation = Validation(kind, root=root)
        validation.report.add(Problem(
            f"root element is '{root.kind.root}' ({root.kind.namespace}), expected "
            f"'{kind.root}' ({kind.namespace})", line=root.line, column=1))
        return validation
    validation = Validation(root.kind, root=root)
    with open_source() as source:
        if fast_valid(source, validation):
            return validation
    validation.records = 0
    with open_source() as source:
        validation.report = precise.report(source, root.kind)
    return validation


def fast_valid(source: IO[bytes], validation: Validation) -> bool:
    """True when the document is valid; leaves no positions otherwise."""
    records = 0
    try:
        for _record in valid_records(source, validation.kind, checker_for(validation.kind)):
            records += 1
    except NotValid:
        return False
    validation.records = records
    return True


class NotValid(Exception):
    """The fast path's verdict: the document is not valid (where, the report path says)."""


def valid_records(source: IO[bytes], kind: DocumentKind, checker: RecordChecker,
                  **parse_options) -> Iterator[etree._Element]:
    """The top-level records of a document, validated as they are parsed (the
    streaming schema and the checks in code); each is dropped from the tree
    once the caller is done with it. Raises :class:`NotValid` when the
    document is not valid; libxml2 may say so only after some records went by.
    ``parse_options`` go to the parser (e.g. ``remove_comments``).
    """
    root_tag = kind.tag
    complete = False
    first = True
    try:
        for _event, record in safe.iterparse(
            source, events=("end",), tag=(*kind.record_tags(), root_tag), schema=schema_for(kind, streaming=True),
            **parse_options
        ):
            if first:  # read_root refuses a DOCTYPE too; this pass must not depend on it
                first = False
                docinfo = record.getroottree().docinfo
                if docinfo.doctype or docinfo.internalDTD is not None:
                    raise NotValid("DOCTYPE")
            if record.tag == root_tag:
                complete = True  # keep reading: content after the root is an error
                continue
            # Only whether there is a problem counts here: no element path (the report path has them).
            for _problem in checker.check(record, ""):
                raise NotValid("a check in code failed")
            yield record
            record.clear()
            while record.getprevious() is not None:
                del record.getparent()[0]
    except etree.XMLSyntaxError as error:
        raise NotValid(str(error)) from None
    # With a schema and resolve_entities=False, lxml 6.1 does not raise for a
    # document that simply stops (truncated): only the root's end proves the
    # document complete.
    if not complete:
        raise NotValid("the document ends before its root element is closed")
