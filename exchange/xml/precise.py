"""The report path: every error of an invalid document, with its position.

lxml's streaming validation tells only *that* a document is invalid. To
tell *where*, the document is parsed again and fed to a validating parser
in pieces that end at a ``>`` or a line break. Each piece completes at most
one tag, so every error libxml2 raises after a piece belongs to that tag,
and the tag's position is known: the line and column of its ``<``.

Memory stays flat: records are built only for the checks in code, one at a
time, and only the last megabyte or so of lines is kept to locate
attributes inside multi-line tags.

Time stays linear in the input, however many errors there are: columns are
counted as the input comes in, a start tag is scanned once for the
positions of all its attributes, and once the report is full (1,000
problems) the rest of the document is fed in whole blocks and its errors
are only counted.
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from typing import IO

from lxml import etree

from exchange.xml import safe
from exchange.xml.checks import checker_for
from exchange.xml.report import Problem, Report, readable
from exchange.xml.schemas import DocumentKind, schema_for

_BLOCK = 1 << 16
#: libxml2's limits without XML_PARSE_HUGE, which a target parser does not
#: apply by itself: kept here so the report path is as safe as the fast path.
MAX_DEPTH = 256
MAX_TEXT = 10_000_000


class _Refused(Exception):
    """Raised from a parser callback to stop the report path at a limit."""

    def __init__(self, problem: Problem):
        super().__init__(problem.message)
        self.problem = problem
_PIECES = re.compile(rb"[^>\r\n]*(?:>|\r\n|\r|\n)|[^>\r\n]+")
_ELEMENT = re.compile(r"^Element '(?:\{[^}]*\})?([^']+)'")
_ATTRIBUTE = re.compile(r"^Element '[^']+', attribute '(?:\{[^}]*\})?([^']+)'")
#: Inside a start tag: a name (the element's, then each attribute's), a quoted
#: value, a quote whose value goes on past the line, or the tag's end.
_TAG_TOKEN = re.compile(rb"""([^\s=/>"']+)|"[^"]*"|'[^']*'|(["'])|[/>]""")


class _Lines:
    """The recent logical lines of the input (CR, LF and CRLF all end one).

    Columns are counted as the pieces come in, so that the column of a tag is
    known without going back over its line: a document on one line would
    otherwise cost a pass over the line so far for every error. Like the
    rest of the report, they count characters as UTF-8 with replacement.
    """

    def __init__(self, max_bytes: int = 1 << 20):
        self.done: deque[tuple[int, bytes]] = deque()
        self.size = 0
        self.max_bytes = max_bytes
        self.number = 1  # the line being read
        self.current = bytearray()
        self.characters = 0  # in the current line so far
        # A block may end inside a character: the decoder keeps its first bytes.
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._pending = False  # whether it does

    @property
    def offset(self) -> int:
        """Byte offset of the next byte within the current line."""
        return len(self.current)

    def take(self, piece: bytes) -> tuple[int, int, int] | None:
        """Add the next piece of the input; where its last ``<`` is: (line, byte offset, column)."""
        if piece == b"\n" and not self.current and self.done and self.done[-1][1].endswith(b"\r"):
            # The LF of a CRLF that a block boundary cut off: the line it ends is done already.
            number, text = self.done[-1]
            self.done[-1] = (number, text + piece)
            self.size += 1
            return None
        lt = piece.rfind(b"<")
        at = None
        if not self._pending and piece.isascii():  # most pieces: one character a byte
            if lt >= 0:
                at = (self.number, len(self.current) + lt, self.characters + lt + 1)
            self.characters += len(piece)
        elif lt >= 0:
            self.characters += self._count(piece[:lt])
            # Bytes of a character cut short by the "<" are replaced before it.
            cut_short = len(self._decoder.getstate()[0].decode("utf-8", "replace")) if self._pending else 0
            at = (self.number, len(self.current) + lt, self.characters + cut_short + 1)
            self.characters += self._count(piece[lt:])
        else:
            self.characters += self._count(piece)
        self.current += piece
        if piece.endswith((b"\n", b"\r")):
            self.done.append((self.number, bytes(self.current)))
            self.size += len(self.current)
            self.current = bytearray()
            self.characters = 0
            self.number += 1
            while self.size > self.max_bytes and len(self.done) > 1:
                self.size -= len(self.done.popleft()[1])
        return at

    def _count(self, data: bytes) -> int:
        """Characters in the next bytes of the current line."""
        if not self._pending and data.isascii():
            return len(data)
        count = len(self._decoder.decode(data))
        self._pending = bool(self._decoder.getstate()[0])
        return count

    def _line(self, number: int) -> bytes | bytearray | None:
        if number == self.number:
            return self.current  # not copied: callers only read it
        # The kept lines are numbered without gaps: index, do not search.
        index = number - self.number + len(self.done)
        return self.done[index][1] if 0 <= index < len(self.done) else None

    def attributes(self, line: int, offset: int, column: int) -> dict[str, tuple[int, int]]:
        """Line and column of each attribute of the start tag whose ``<`` is at a position.

        Keyed by local name (libxml2 names an attribute without its prefix),
        the first of a name wins; the position is that of the local name.
        One pass over the tag, however many of its attributes are at fault.
        Empty when the tag's first line is no longer kept.
        """
        found: dict[str, tuple[int, int]] = {}
        element_name = True  # the first name in the tag is the element's
        quote = None  # the quote of a value that goes on past a line break
        position = offset + 1
        # Columns are counted on from the "<", then from each name: the bytes
        # before a name are ASCII (a space, a colon), so each part decodes alone
        # as it does within its line.
        counted = offset
        while (text := self._line(line)) is not None:
            if quote is not None:
                close = text.find(quote, position)
                if close < 0:
                    line, position, counted, column = line + 1, 0, 0, 1
                    continue
                quote, position = None, close + 1
            for token in _TAG_TOKEN.finditer(text, position):
                name, quote = token.group(1, 2)
                if quote is not None:
                    position = token.end()
                    break
                if name is None:
                    if token.group() in (b"/", b">"):
                        return found
                elif element_name:
                    element_name = False
                else:
                    local = name.rpartition(b":")[2]
                    at = token.end() - len(local)
                    column += len(text[counted:at].decode("utf-8", "replace"))
                    counted = at
                    found.setdefault(local.decode("utf-8", "replace"), (line, column))
            else:
                if line == self.number:
                    break
                line, position, counted, column = line + 1, 0, 0, 1
        return found


class _Tracker:
    """Parser target: element paths and positions, records for the checks.

    With a schema plugged in, lxml reports well-formedness errors faithfully
    only for target parsers, which is one reason this path uses one.
    """

    def __init__(self, kind: DocumentKind, report: Report, lines: _Lines):
        self.kind = kind
        self.report = report
        self.lines = lines
        self.checker = checker_for(kind)
        self.record_tags = set(kind.record_tags())
        # A position is (line, byte offset, column) of a "<".
        # One frame per open element: (local name, path, child counts, position of its "<").
        self.stack: list[tuple[str, str, dict[str, int], tuple[int, int, int]]] = []
        self.touched: tuple[str, str, tuple[int, int, int]] | None = None  # the element of the current piece
        self.tag_at: tuple[int, int, int] = (1, 0, 1)  # of the last "<" fed
        self.builder: etree.TreeBuilder | None = None
        self.positions: dict[etree._Element, tuple[int, int, int]] = {}
        self.text_size = 0  # characters of the current text node
        # The attributes of the start tag whose attribute was at fault last, and
        # where each is. Errors come tag by tag, in document order: each tag is
        # scanned once.
        self.scanned: tuple[tuple[int, int, int], dict[str, tuple[int, int]]] | None = None

    def start(self, tag, attrib, nsmap=None):
        qname = etree.QName(tag)
        local = qname.localname
        self.text_size = 0
        if len(self.stack) >= MAX_DEPTH:
            at = self.tag_at
            raise _Refused(Problem(
                f"not well-formed XML: elements nested deeper than {MAX_DEPTH} levels (F5)",
                line=at[0], column=at[2]))
        if self.stack:
            counts = self.stack[-1][2]
            counts[local] = counts.get(local, 0) + 1
            path = f"{self.stack[-1][1]}/{local}[{counts[local]}]"
        else:
            path = f"/{local}"
        at = self.tag_at
        self.stack.append((local, path, {}, at))
        self.touched = (local, path, at)
        if qname.namespace == safe.XINCLUDE_NS:
            self.report.add(self._locate(Problem(f"Element '{local}': XInclude is not allowed (F5)", path=path),
                                         at))
        if len(self.stack) == 2 and tag in self.record_tags:
            self.builder = etree.TreeBuilder()
        if self.builder is not None:
            element = self.builder.start(tag, attrib)
            # libxml2 keeps a node's line in 16 bits (lxml raises past 65535): the
            # problems of the checks take their line from self.positions anyway.
            element.sourceline = min(at[0], 65535)
            self.positions[element] = at

    def data(self, text):
        self.text_size += len(text)
        if self.text_size > MAX_TEXT:
            raise _Refused(Problem(
                f"not well-formed XML: a text node longer than {MAX_TEXT:,} characters (F5)",
                line=self.lines.number, column=1, path=self.stack[-1][1] if self.stack else None))
        if self.builder is not None:
            self.builder.data(text)

    def end(self, tag):
        self.text_size = 0
        local, path, _counts, start = self.stack.pop()
        # libxml2 checks content at the end tag; the element's start is where people look.
        self.touched = (local, path, start)
        if self.builder is not None:
            self.builder.end(tag)
            if len(self.stack) == 1:
                record = self.builder.close()
                self.builder = None
                for element, problem in self.checker.check(record, path):
                    self.report.add(self._locate(problem, self.positions.get(element)))
                self.positions.clear()

    def _locate(self, problem: Problem, at: tuple[int, int, int] | None) -> Problem:
        """The problem at the start tag whose ``<`` is at ``at``, or at its attribute the message names.

        Past the cap only the count matters: the problem is left where it is.
        """
        if at is None or self.report.full:
            return problem
        line, column = at[0], at[2]
        attribute = _ATTRIBUTE.match(problem.message)
        if attribute:
            if self.scanned is None or self.scanned[0] != at:
                self.scanned = (at, self.lines.attributes(*at))
            line, column = self.scanned[1].get(attribute.group(1), (line, column))
        return Problem(problem.message, line=line, column=column, path=problem.path)

    def comment(self, text):
        pass

    def pi(self, target, data=None):
        pass

    def close(self):
        return None


def report(source: IO[bytes], kind: DocumentKind) -> Report:
    """Every error of the document (capped), each with line, column and path."""
    report = Report()
    lines = _Lines()
    tracker = _Tracker(kind, report, lines)
    parser = etree.XMLParser(target=tracker, schema=schema_for(kind, streaming=True), **safe.SAFE_OPTIONS)
    errors_seen = 0

    def schema_errors() -> None:
        """Place each error libxml2 raised since the last call; past the cap, count them."""
        nonlocal errors_seen
        # feed_error_log is a copy of the whole log, made on every access: it is
        # read after each piece only while the report fills (so the log holds at
        # most about the cap), and past the cap once at the end.
        log = parser.feed_error_log
        total = len(log)
        if total == errors_seen:
            return
        for index in range(errors_seen, total):
            if report.full:  # past the cap only the count matters
                report.more += total - index
                break
            entry = log[index]
            message = readable(entry.message)
            named = _ELEMENT.match(entry.message)
            path, at = None, tracker.tag_at
            if tracker.touched is not None and (named is None or tracker.touched[0] == named.group(1)):
                _local, path, at = tracker.touched
            else:  # an error about an open element (e.g. a child where none may be)
                for local, frame_path, _counts, frame_at in reversed(tracker.stack):
                    if named is None or local == named.group(1):
                        path, at = frame_path, frame_at
                        break
            report.add(tracker._locate(Problem(message, path=path), at))
        errors_seen = total

    try:
        while block := source.read(_BLOCK):
            rest = 0  # where the part of the block fed whole begins
            if not report.full:
                for match in _PIECES.finditer(block):
                    piece = match.group()
                    at = lines.take(piece)
                    if at is not None:
                        tracker.tag_at = at
                    tracker.touched = None
                    parser.feed(piece)
                    schema_errors()
                    if report.full:
                        rest = match.end()
                        break
                else:
                    continue
            if rest < len(block):
                # Past the cap only the count matters: the rest goes in whole, without
                # lines or positions, and its errors are counted at the end.
                tracker.touched = None
                parser.feed(block[rest:])
    except _Refused as refused:
        if report.full:  # the errors of the blocks fed whole, up to the refusal
            schema_errors()
        report.add(refused.problem)
        return report
    except etree.XMLSyntaxError as error:
        schema_errors()
        report.add(syntax_problem(error))
        return report
    schema_errors()  # what the blocks fed past the cap raised, before close() adds its own
    truncated = bool(tracker.stack)
    try:
        parser.close()
    except etree.XMLSyntaxError as error:
        if not truncated:
            schema_errors()
        if truncated or any(entry.domain != etree.ErrorDomains.SCHEMASV for entry in error.error_log):
            # What libxml2 says about a cut-off document after the last tag is noise;
            # that it ends early, and where, is the news.
            if not truncated:
                report.add(syntax_problem(error))
                return report
    else:
        schema_errors()
    if tracker.stack or truncated:  # a truncated document may end without a parse error (fast_valid)
        local, path = (tracker.stack[-1][0], tracker.stack[-1][1]) if tracker.stack else ("?", None)
        report.add(Problem(f"not well-formed XML: the document ends before element '{local}' is closed "
                           "(is the file truncated?)", line=lines.number, column=lines.offset + 1, path=path))
    return report


def syntax_problem(error: etree.XMLSyntaxError) -> Problem:
    """A well-formedness error as a Problem, at libxml2's position."""
    line, column = error.position if error.position else (error.lineno, 0)
    parse_errors = [e for e in error.error_log if e.domain != etree.ErrorDomains.SCHEMASV]
    if parse_errors:
        last = parse_errors[-1]
        message = readable(last.message)
        if last.line:
            line, column = last.line, last.column
    else:
        # lxml's own text repeats the position ("..., line 6, column 1"): the Problem says it.
        message = re.sub(r",? \(?line \d+(, column \d+)?\)?$", "", readable(error.msg or str(error)))
    return Problem(f"not well-formed XML: {message}", line=line or 1, column=column or 1)
