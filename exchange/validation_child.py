"""Validate an input in a second process while the first transforms it.

libxml2 validates at about half its parsing speed; doing it in the same
pass as the transformation would put both on one core. The exchange
therefore forks: the child validates (fast path, yes or no), the parent
transforms, and a package is published only when both succeeded (F1).
"""

from __future__ import annotations

import ctypes
import fcntl
import multiprocessing
import os
import signal
from dataclasses import dataclass
from typing import IO, Callable

from exchange.package import MemberRefused
from exchange.xml import sax_validation
from exchange.xml.checks import has_checks
from exchange.xml.schemas import KINDS, DocumentKind
from exchange.xml.validate import Validation, fast_valid

_PR_SET_PDEATHSIG = 1
_NICE = 10  # the children's niceness: about a tenth of the parent's weight with the scheduler
_PIPE_BYTES = 1 << 20  # the default pipe-max-size; the default pipe holds 64 KiB


def _die_with_parent(parent: int) -> None:
    """If the parent is killed (crash tests do that), the child goes too.

    A child still running would hold the workspace lock it inherited and
    block the next run. The parent may die between fork and prctl: then the
    child has been reparented already, and leaves at once.
    """
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child just finishes its file
        pass
    if os.getppid() != parent:
        os._exit(1)


def _yield_to_parent() -> None:
    """Lower this child's CPU priority below its parent's.

    The parent's transform is the run's critical path; a validating child
    only has to be done by the time the parent is. At equal priority the
    scheduler shares the cores evenly among the parent, its ledger thread
    and the children, and the parent, slowed, keeps everyone waiting.
    """
    try:
        os.nice(_NICE)
    except OSError:
        pass


def _validate(opener: Callable[[], IO[bytes]], kind: DocumentKind) -> tuple[bool, tuple[str, ...]]:
    """(valid, problems of the source itself) of one document, fast path.

    A kind with no checks in code (a return package's ``customers.xml``) is
    validated by libxml2's streaming validator, which builds no tree
    (:mod:`exchange.xml.sax_validation`); the others by lxml, which hands
    each record to their checks.

    A source that checks itself as it is read (a package member,
    :class:`exchange.package.MemberReader`) has a ``problems()`` method: it
    is asked once the document is read, and a source with problems is
    never valid, whatever the XML said.
    """
    with opener() as source:
        if sax_validation.available() and not has_checks(kind):
            ok = sax_validation.stream_schema(kind.xsd).validate_source(source) is None
        else:
            try:
                ok = fast_valid(source, Validation(kind))
            except MemberRefused:
                ok = False
        problems = source.problems() if hasattr(source, "problems") else ()
    return ok and not problems, problems


def _child(opener: Callable[[], IO[bytes]], tag: str, conn, parent: int) -> None:
    _die_with_parent(parent)
    _yield_to_parent()
    try:
        answer = _validate(opener, KINDS[tag])
    except Exception:  # reported as "unknown": the parent validates itself
        answer = None
    conn.send(answer)
    conn.close()


@dataclass(frozen=True)
class FastResult:
    valid: bool
    problems: tuple[str, ...] = ()  # what is wrong with the source itself (a package member's size, SHA-256)


class ValidationChild:
    """A forked process validating one document; :meth:`result` waits for it.

    ``opener`` opens the document (a file, or a member of a package); with
    the fork start method it is not pickled, so a lambda will do.
    """

    def __init__(self, opener: Callable[[], IO[bytes]], kind: DocumentKind):
        context = multiprocessing.get_context("fork")
        self._recv, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_child, args=(opener, kind.tag, send, os.getpid()), daemon=True)
        self._process.start()
        send.close()
        self.opener = opener
        self.kind = kind
        self._result: FastResult | None = None

    def result(self) -> FastResult:
        """Whether the document is valid (fast path), and the source's own problems."""
        if self._result is not None:
            return self._result
        try:
            answer = self._recv.recv()
        except EOFError:
            answer = None
        self._process.join()
        if answer is None:  # the child died or failed: validate here instead
            answer = _validate(self.opener, self.kind)
        self._result = FastResult(*answer)
        return self._result

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()


def write_all(fd: int, data: bytes) -> None:
    """``os.write`` until all of ``data`` is out (a pipe or file may take part of it)."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


#: The parent's ends of the pipes to live output children: a child forked later inherits them and must
#: close them, or an earlier child never sees the end of its data.
_WRITE_FDS: set[int] = set()


def _output_child(read_fd: int, write_fds: tuple[int, ...], xsd: str, tags: tuple[str, ...], conn,
                  parent: int) -> None:
    _die_with_parent(parent)
    _yield_to_parent()
    for fd in write_fds:  # the parent's ends, inherited by the fork: EOF needs them closed here
        os.close(fd)
    if sax_validation.available():
        error = sax_validation.stream_schema(xsd).validate_fd(read_fd)
        os.close(read_fd)
    else:
        error = _pull_parser_problem(read_fd, xsd, tags)
    conn.send(error)
    conn.close()


def _pull_parser_problem(read_fd: int, xsd: str, tags: tuple[str, ...]) -> str | None:
    """The output check where libxml2's streaming validator is out of reach: lxml's
    parser with the schema, building a tree of each record and trimming it."""
    from lxml import etree

    from exchange.xml import safe
    from exchange.xml.schemas import schema

    # A tree-building pull parser (lxml applies no schema to a parser with a
    # custom target), trimmed record by record so memory stays flat.
    parser = etree.XMLPullParser(events=("end",), tag=tags, schema=schema(xsd, streaming=True), **safe.SAFE_OPTIONS)
    error = None
    complete = False
    with os.fdopen(read_fd, "rb") as stream:
        while block := stream.read(1 << 16):
            if error is not None:
                continue  # drain the pipe, so the parent never blocks on a full one
            try:
                parser.feed(block)
                for _event, element in parser.read_events():
                    parent_element = element.getparent()
                    if parent_element is None:
                        complete = True
                    elif parent_element.getparent() is None:  # a top-level record
                        element.clear()
                        while element.getprevious() is not None:
                            del parent_element[0]
            except etree.XMLSyntaxError as problem:
                error = str(problem)
    if error is None:
        try:
            parser.close()
        except etree.XMLSyntaxError as problem:
            error = str(problem)
    if error is None and not complete:  # see validate.fast_valid: a cut-off end may pass silently
        error = "the document ends before its root element is closed"
    return error


class OutputValidation:
    """Validates what we write, as we write it, in a second process.

    The bytes of the data file go through a pipe to a child that validates
    them against the to-mobile (or cee-import) XSD; :meth:`close` says
    whether they matched. Start it after :class:`ValidationChild`, so that
    child does not inherit this pipe.
    """

    def __init__(self, xsd: str):
        # Events only for roots and top-level records: nothing in Python per element.
        tags = tuple(t for kind in KINDS.values() if kind.xsd == xsd for t in (kind.tag, *kind.record_tags()))
        context = multiprocessing.get_context("fork")
        read_fd, self._write_fd = os.pipe()
        _WRITE_FDS.add(self._write_fd)
        try:  # room for a few of the writer's flushes, so it seldom waits for the child
            fcntl.fcntl(self._write_fd, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        except (OSError, AttributeError):  # not Linux, or above /proc/sys/fs/pipe-max-size
            pass
        self._recv, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_output_child,
                                        args=(read_fd, tuple(_WRITE_FDS), xsd, tags, send, os.getpid()),
                                        daemon=True)
        self._process.start()
        send.close()
        os.close(read_fd)
        self.xsd = xsd

    def feed(self, data: bytes) -> None:
        write_all(self._write_fd, data)

    def _close_pipe(self) -> None:
        if self._write_fd >= 0:
            _WRITE_FDS.discard(self._write_fd)
            os.close(self._write_fd)
            self._write_fd = -1

    def close(self) -> str | None:
        """None when the output was valid, else libxml2's message."""
        self._close_pipe()
        try:
            error = self._recv.recv()
        except EOFError:
            error = "the output validator died"
        self._process.join()
        return error

    def stop(self) -> None:
        self._close_pipe()
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
