"""Streaming validation of one XML document, with a precise error report.

Two passes, both in flat memory:

1. The fast path: lxml's ``iterparse`` with the streaming schema, plus the
   checks in code. libxml2 validates while it parses, at close to parsing
   speed, but reports errors only at the end and without positions.
2. Only when the fast path fails, the report path parses again, feeding the
   parser a line at a time, so that every error libxml2 raises can be tied
   to the line (and the element) where it arose.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass, field
from typing import IO, Callable

from lxml import etree

from exchange.xml import safe
from exchange.xml.checks import checker_for
from exchange.xml.report import Problem, Report, readable
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


def _syntax_problem(error: etree.XMLSyntaxError) -> Problem:
    line, column = error.position if error.position else (error.lineno, 0)
    last = error.error_log.last_error if error.error_log else None
    message = readable(last.message if last is not None else (error.msg or str(error)))
    # lxml appends its own "(line N)" to some messages; the position says it.
    message = re.sub(r",? \(?line \d+(, column \d+)?\)?$", "", message)
    return Problem(f"not well-formed XML: {message}", line=line or 1, column=column or 1)


def read_root(source: IO[bytes]) -> Root:
    """Read only as far as the root element (F3 ordering, schema choice).

    Raises :class:`DocumentRejected` for anything that is not one of our
    documents: not XML at all, a DOCTYPE, an unknown root.
    """
    try:
        for _event, element in safe.iterparse(source, events=("start",)):
            safe.refuse_doctype(element)
            return Root(element.tag, dict(element.attrib), element.sourceline or 1, kind_for(element.tag))
    except etree.XMLSyntaxError as error:
        raise DocumentRejected(_syntax_problem(error)) from None
    except safe.HostileDocument as error:
        raise DocumentRejected(Problem(str(error), line=error.line, column=1)) from None
    except UnknownRoot as error:
        raise DocumentRejected(Problem(str(error), line=1, column=1)) from None
    raise DocumentRejected(Problem("not well-formed XML: no root element", line=1, column=1))


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
        validation.report = _precise(source, root.kind)
    return validation


def fast_valid(source: IO[bytes], validation: Validation) -> bool:
    """True when the document is valid; leaves no positions otherwise."""
    kind = validation.kind
    checker = checker_for(kind)
    records = kind.record_tags()
    counts: dict[str, int] = dict.fromkeys(records, 0)
    prefix = f"/{kind.root}/"
    root_tag = kind.tag
    complete = False
    try:
        for _event, record in safe.iterparse(
            source, events=("end",), tag=(*records, root_tag), schema=schema_for(kind, streaming=True)
        ):
            if record.tag == root_tag:
                complete = True  # keep reading: content after the root is an error
                continue
            counts[record.tag] += 1
            for _problem in checker.check(record, f"{prefix}{etree.QName(record).localname}[{counts[record.tag]}]"):
                return False
            record.clear()
            while record.getprevious() is not None:
                del record.getparent()[0]
    except etree.XMLSyntaxError:
        return False
    # With a schema and resolve_entities=False, lxml 6.1 does not raise for a
    # document that simply stops (truncated): only the root's end proves the
    # document complete.
    if not complete:
        return False
    validation.records = sum(counts.values())
    return True


class _RecentLines:
    """The last few lines read, to find the column an error points at."""

    def __init__(self, max_bytes: int = 1 << 20):
        self.lines: deque[tuple[int, bytes]] = deque()
        self.size = 0
        self.max_bytes = max_bytes

    def add(self, number: int, chunk: bytes) -> None:
        self.lines.append((number, chunk))
        self.size += len(chunk)
        while self.size > self.max_bytes and len(self.lines) > 1:
            self.size -= len(self.lines.popleft()[1])

    def column(self, number: int, element: str | None, attribute: str | None) -> int:
        for line_number, chunk in self.lines:
            if line_number != number:
                continue
            text = chunk.decode("utf-8", "replace")
            start = 0
            if element:
                found = re.search(rf"</?(?:[\w.-]+:)?{re.escape(element)}\b", text)
                if found:
                    start = found.start()
            if attribute:
                found = re.compile(rf"\b{re.escape(attribute)}\s*=").search(text, start)
                if found:
                    start = found.start()
            if not element and not attribute:
                start = len(text) - len(text.lstrip())
            return start + 1
        return 1


_ELEMENT = re.compile(r"^Element '(?:\{[^}]*\})?([^']+)'")
_ATTRIBUTE = re.compile(r"^Element '[^']+', attribute '(?:\{[^}]*\})?([^']+)'")


class _Tracker:
    """Parser target of the report path: element paths, records for the checks.

    Used as the parser's ``target``: with a schema plugged in, lxml reports
    well-formedness errors faithfully only for target parsers. Records are
    built with a TreeBuilder (stamped with the line being fed) for the checks
    in code, then dropped, so memory stays flat.
    """

    def __init__(self, kind: DocumentKind, report: Report, recent: _RecentLines):
        self.kind = kind
        self.report = report
        self.recent = recent
        self.checker = checker_for(kind)
        self.record_tags = set(kind.record_tags())
        self.stack: list[tuple[str, str, dict[str, int]]] = []  # (local name, path, child counts)
        self.touched: list[tuple[str, str, int]] = []  # elements seen in the current chunk
        self.line = 1
        self.builder: etree.TreeBuilder | None = None

    def start(self, tag, attrib, nsmap=None):
        qname = etree.QName(tag)
        local = qname.localname
        if self.stack:
            counts = self.stack[-1][2]
            counts[local] = counts.get(local, 0) + 1
            path = f"{self.stack[-1][1]}/{local}[{counts[local]}]"
        else:
            path = f"/{local}"
        self.stack.append((local, path, {}))
        self.touched.append((local, path, self.line))
        if qname.namespace == safe.XINCLUDE_NS:
            self.report.add(_with_column(Problem(
                f"Element '{local}': XInclude is not allowed (F5)", line=self.line, path=path), self.recent))
        if len(self.stack) == 2 and tag in self.record_tags:
            self.builder = etree.TreeBuilder()
        if self.builder is not None:
            self.builder.start(tag, attrib).sourceline = self.line

    def data(self, text):
        if self.builder is not None:
            self.builder.data(text)

    def end(self, tag):
        local, path, _counts = self.stack.pop()
        self.touched.append((local, path, self.line))
        if self.builder is not None:
            self.builder.end(tag)
            if len(self.stack) == 1:
                record = self.builder.close()
                self.builder = None
                for problem in self.checker.check(record, path):
                    self.report.add(_with_column(problem, self.recent))

    def comment(self, text):
        pass

    def pi(self, target, data=None):
        pass

    def close(self):
        return None


def _precise(source: IO[bytes], kind: DocumentKind) -> Report:
    """The report path: every error with line, column, element path and message."""
    report = Report()
    recent = _RecentLines()
    tracker = _Tracker(kind, report, recent)
    parser = etree.XMLParser(target=tracker, schema=schema_for(kind, streaming=True), **safe.SAFE_OPTIONS)
    errors_seen = 0

    def schema_errors() -> None:
        nonlocal errors_seen
        log = parser.feed_error_log
        for entry in list(log)[errors_seen:]:
            message = readable(entry.message)
            element = _ELEMENT.match(entry.message)
            name = element.group(1) if element else None
            path, where = (tracker.stack[-1][1] if tracker.stack else None), tracker.line
            for local, element_path, element_line in reversed(tracker.touched):
                if local == name:
                    path, where = element_path, element_line
                    break
            report.add(_with_column(Problem(message, line=where, path=path), recent))
        errors_seen = len(log)

    while True:
        # Past the cap only the count matters: bigger chunks, fewer log copies.
        chunk = source.readline(_CHUNK) if not report.full else source.read(_CHUNK)
        if not chunk:
            break
        recent.add(tracker.line, chunk)
        tracker.touched.clear()
        try:
            parser.feed(chunk)
        except etree.XMLSyntaxError as error:
            report.add(_syntax_problem(error))
            return report
        schema_errors()
        tracker.line += chunk.count(b"\n")
    try:
        parser.close()
    except etree.XMLSyntaxError as error:
        schema_errors()
        if any(entry.domain != etree.ErrorDomains.SCHEMASV for entry in error.error_log):
            report.add(_syntax_problem(error))
            return report
    else:
        schema_errors()
    if tracker.stack:  # see fast_valid: a truncated document may end without a parse error
        report.add(Problem(
            f"not well-formed XML: the document ends before element '{tracker.stack[-1][0]}' is closed "
            "(is the file truncated?)", line=tracker.line, column=1, path=tracker.stack[-1][1]))
    return report


def _with_column(problem: Problem, recent: _RecentLines) -> Problem:
    element = _ELEMENT.match(problem.message)
    return Problem(
        problem.message, line=problem.line, path=problem.path, member=problem.member,
        column=recent.column(problem.line, element.group(1) if element else None,
                             _attribute_named(problem.message)),
    )


def _attribute_named(message: str) -> str | None:
    found = _ATTRIBUTE.match(message)
    return found.group(1) if found else None
