"""Validate an input in a second process while the first transforms it.

libxml2 validates at about half its parsing speed; doing it in the same
pass as the transformation would put both on one core. The exchange
therefore forks: the child validates (fast path, yes or no), the parent
transforms, and a package is published only when both succeeded (F1).
"""

from __future__ import annotations

import ctypes
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
