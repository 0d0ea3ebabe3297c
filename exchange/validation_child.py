"""Validate an input in a second process while the first transforms it.

libxml2 validates at about half its parsing speed; doing it in the same
pass as the transformation would put both on one core. The exchange
therefore forks: the child validates (fast path, yes or no), the parent
transforms, and a package is published only when both succeeded (F1).
"""

from __future__ import annotations

import ctypes
import os
import multiprocessing
import signal
from pathlib import Path

from exchange.xml.schemas import KINDS, DocumentKind
from exchange.xml.validate import Validation, fast_valid

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """If the parent is killed (crash tests do that), the child goes too."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):  # not Linux: the child just finishes its file
        pass


def _child(path: str, tag: str, conn) -> None:
    _die_with_parent()
    kind = KINDS[tag]
    try:
        with open(path, "rb") as source:
            ok = fast_valid(source, Validation(kind))
    except Exception:  # reported as "unknown": the parent validates itself
        ok = None
    conn.send(ok)
    conn.close()


class ValidationChild:
    """A forked process validating one file; :meth:`result` waits for it."""

    def __init__(self, path: Path, kind: DocumentKind):
        context = multiprocessing.get_context("fork")
        self._recv, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_child, args=(str(path), kind.tag, send), daemon=True)
        self._process.start()
        send.close()
        self.path = path
        self.kind = kind

    def result(self) -> bool:
        """True if valid, False if not (the fast path found a problem)."""
        try:
            ok = self._recv.recv()
        except EOFError:
            ok = None
        self._process.join()
        if ok is None:  # the child died or failed: validate here instead
            with open(self.path, "rb") as source:
                ok = fast_valid(source, Validation(self.kind))
        return ok

    def stop(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()


class _Sink:
    """A parser target without callbacks: no tree, no Python per element."""

    def close(self):
        return None


def _output_child(read_fd: int, write_fd: int, xsd: str, conn) -> None:
    _die_with_parent()
    os.close(write_fd)  # the parent's end, inherited by the fork: EOF needs it closed here
    from lxml import etree

    from exchange.xml import safe
    from exchange.xml.schemas import schema

    parser = etree.XMLParser(target=_Sink(), schema=schema(xsd, streaming=True), **safe.SAFE_OPTIONS)
    error = None
    with os.fdopen(read_fd, "rb") as stream:
        while block := stream.read(1 << 16):
            if error is None:
                try:
                    parser.feed(block)
                except etree.XMLSyntaxError as problem:
                    error = str(problem)
    if error is None:
        try:
            parser.close()
        except etree.XMLSyntaxError as problem:
            error = str(problem)
    conn.send(error)
    conn.close()


class OutputValidation:
    """Validates what we write, as we write it, in a second process.

    The bytes of the data file go through a pipe to a child that validates
    them against the to-mobile (or cee-import) XSD; :meth:`close` says
    whether they matched. Start it after :class:`ValidationChild`, so that
    child does not inherit this pipe.
    """

    def __init__(self, xsd: str):
        context = multiprocessing.get_context("fork")
        read_fd, self._write_fd = os.pipe()
        self._recv, send = context.Pipe(duplex=False)
        self._process = context.Process(target=_output_child, args=(read_fd, self._write_fd, xsd, send),
                                        daemon=True)
        self._process.start()
        send.close()
        os.close(read_fd)
        self.xsd = xsd

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self._write_fd, view)
            view = view[written:]

    def close(self) -> str | None:
        """None when the output was valid, else libxml2's message."""
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1
        try:
            error = self._recv.recv()
        except EOFError:
            error = "the output validator died"
        self._process.join()
        return error

    def stop(self) -> None:
        if self._write_fd >= 0:
            os.close(self._write_fd)
            self._write_fd = -1
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
