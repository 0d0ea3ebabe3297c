"""The second half of a big return package, in a forked child (:mod:`exchange.halves`).

The child runs its half of ``customers.xml`` through R9-R14 and leaves its
work in spools: the three sections of the import document (organizations,
persons, removals), each checked against cee-import.xsd by a check of its
own, and its ledger changes and decisions (:class:`exchange.ledger_spool.ImportLedgerSpool`).
When both halves are through, the parent appends the child's sections after
its own, section by section, and takes the ledger spool into its one
transaction: the document and the ledger come out as if one process had
read the whole package.

Whether the package is valid is not the halves' business: a child of its
own validates the whole member (:mod:`exchange.validation_child`). A half
that cannot be parsed (the cut fell inside a comment or CDATA section) or a
mobileId created in both halves sends the package through in one pass.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import tempfile
import traceback
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from exchange import import_pass, ledger_spool
from exchange.halves import HalfInvalid, StreamCut
from exchange.ledger import Ledger
from exchange.ledger_spool import ImportLedgerSpool
from exchange.rules.inbound import ImportRules
from exchange.summary import Summary
from exchange.validation_child import _WRITE_FDS, _die_with_parent, write_all
from exchange.xml import cee_import, safe

log = logging.getLogger("exchange")


@dataclass(frozen=True)
class ImportHalfResult:
    records: int
    summary: Summary
    output_problem: str | None  # libxml2's message when a section written is not valid cee-import


def _run(split: StreamCut, rules: ImportRules, ledger_path: Path, spool: Path, channel: str, name: str,
         header: bytes, outputs: tuple[int, int, int], cut_fd: int) -> ImportHalfResult:
    with split.second() as source:
        cut = source.find()
        os.write(cut_fd, str(cut).encode())  # "None" when there is no second half
        os.close(cut_fd)  # before the section checks are forked: the parent reads it to its end
        if cut is None:
            return ImportHalfResult(0, Summary(), None)
        checks = import_pass.SectionChecks()
        ledger = ImportLedgerSpool(ledger_path, spool)
        counted = Summary()
        try:
            checks.feed_all(header)
            sections = import_pass.Sections(*(checks.writer(section, lambda data, fd=fd: write_all(fd, data))
                                              for section, fd in enumerate(outputs)))
            records = import_pass.run(safe.records(source, import_pass.RECORD_TAGS), rules, ledger, channel, 0,
                                      sections, counted, name)
            checks.feed_all(cee_import.document_close().encode("utf-8"))
            ledger.close()
            problem = checks.close()
        except BaseException:
            checks.stop()
            raise
    return ImportHalfResult(records, counted, problem)


def _child(split, rules, ledger_path, spool, channel, name, header, outputs, cut_fd, conn, parent) -> None:
    _die_with_parent(parent)
    for fd in tuple(_WRITE_FDS):  # a parent's output check must see the end of its data
        os.close(fd)
        _WRITE_FDS.discard(fd)
    try:
        answer = ("done", _run(split, rules, ledger_path, spool, channel, name, header, outputs, cut_fd))
    except BaseException:  # reported to the parent, which processes the package in one pass instead
        answer = ("failed", traceback.format_exc())
    conn.send(answer)
    conn.close()


class ImportSecondHalf:
    """A forked child working through the second half of ``split``; :meth:`wait` and
    :meth:`take` take its work.

    Start it before any thread or output check of the parent, so that the
    fork copies no lock held by a thread and no pipe end it must not hold.
    ``header`` opens the documents its section checks see.
    """

    def __init__(self, split: StreamCut, rules: ImportRules, ledger_path: Path, channel: str, name: str,
                 header: bytes):
        # The spools beside the ledger, on disk (/tmp may be memory). The sections' spools have
        # no name, and the next run's recovery removes a ledger spool that a crash left behind.
        self.organizations, self.persons, self.removals = (
            tempfile.TemporaryFile(dir=ledger_path.parent) for _ in range(3))  # noqa: SIM115 - closed in stop()
        self._spool = ledger_spool.spool_path(ledger_path)
        self.channel = channel
        self.name = name
        self.split = split
        self._cut: int | None = None
        self._asked = False
        context = multiprocessing.get_context("fork")
        self._recv, send = context.Pipe(duplex=False)
        self._cut_fd, cut_write = os.pipe()
        outputs = (self.organizations.fileno(), self.persons.fileno(), self.removals.fileno())
        try:
            self._process = context.Process(
                target=_child, daemon=False,  # it forks section checks of its own
                args=(split, rules, ledger_path, self._spool, channel, name, header, outputs, cut_write, send,
                      os.getpid()))
            self._process.start()
        finally:
            send.close()
            os.close(cut_write)

    def cut(self) -> int | None:
        """Where the child cut the document (None: it found no record to cut before, and the
        first half is the whole document); waits for the child to find it."""
        if not self._asked:
            self._asked = True
            answer = b""
            while data := os.read(self._cut_fd, 64):
                answer += data
            os.close(self._cut_fd)
            self._cut = int(answer) if answer.isdigit() else None  # b"" if the child died before it found one
            if self._cut is None:
                log.debug("%s: customers.xml has no record to cut before past byte %d; one process", self.name,
                         self.split.offset)
            else:
                log.info("%s: customers.xml cut in two at byte %d of %d, one process per half", self.name,
                         self._cut, self.split.size)
        return self._cut

    def wait(self) -> ImportHalfResult:
        """Wait for the child: what it made of its half. Raises :class:`HalfInvalid` when
        it failed (then the package goes through in one pass)."""
        if self.cut() is None:  # the first half was the whole document; the child has nothing to say
            self._end_child()
            return ImportHalfResult(0, Summary(), None)
        try:
            outcome, value = self._recv.recv()
        except EOFError:
            outcome, value = "failed", "the child ended without an answer"
        self._process.join()
        if outcome != "done":
            raise HalfInvalid(f"the second half failed: {value.strip().splitlines()[-1]}")
        return value

    def take(self, ledger: Ledger, file_id: int) -> Future:
        """Take the child's ledger spool into ``ledger`` after the writes queued so far, on
        the ledger's thread; pass the future to :meth:`taken` once the document is written."""
        if self.cut() is None:
            nothing: Future = Future()
            nothing.set_result(None)
            return nothing
        return ledger_spool.take_import(ledger, self._spool, self.channel, file_id)

    @staticmethod
    def taken(taking: Future) -> None:
        """Raise :class:`HalfInvalid` when a mobileId was created in both halves (R12)."""
        both = taking.result()
        if both is not None:
            raise HalfInvalid(f"mobileId {both} is created in both halves (R12)")

    def _end_child(self) -> None:
        if self._process.is_alive():
            self._process.kill()
        self._process.join()

    def stop(self) -> None:
        """End the child if it still runs and remove its spools (after the file's transaction)."""
        self._end_child()
        for spool in (self.organizations, self.persons, self.removals):
            spool.close()
        self._spool.unlink(missing_ok=True)
        if not self._asked:
            self._asked = True
            os.close(self._cut_fd)
