"""The second half of a big customer export, in a forked child (:mod:`exchange.halves`).

The child validates its half while it parses it, runs it through the
customer rules, and leaves its work in two spools: the serialized records,
which it also checks against the to-mobile XSD, and its ledger changes and
decisions (:mod:`exchange.ledger_spool`). Once through its own half, the
parent follows the records' spool into its package as it grows, and takes
the ledger spool into its one transaction when the child is done: the
package and the ledger come out as if one process had read the whole file.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import tempfile
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from exchange import customer_pass, ledger_spool
from exchange.halves import HalfInvalid, HalfOrder, Split, validated_records
from exchange.ledger import Ledger
from exchange.ledger_spool import LedgerSpool
from exchange.package_writer import PackageWriter
from exchange.rules.outbound import CustomerRules
from exchange.summary import Summary
from exchange.validation_child import _WRITE_FDS, OutputValidation, _die_with_parent, write_all
from exchange.xml import mobile
from exchange.xml.checks import CustomerExportChecks, KeySet
from exchange.xml.schemas import DocumentKind

log = logging.getLogger("exchange")

_FLUSH = 1 << 18
_FOLLOW_SECONDS = 0.02  # how often the parent looks for more records while it waits for the child


class _Output:
    """Serialized records into the records' spool and, at the same time, the to-mobile check."""

    def __init__(self, spool: int, check: OutputValidation):
        self.spool = spool
        self.check = check
        self.pending: list[str] = []
        self.size = 0

    def write(self, text: str) -> None:
        self.pending.append(text)
        self.size += len(text)
        if self.size >= _FLUSH:
            self.flush()

    def flush(self) -> None:
        data = "".join(self.pending).encode("utf-8")
        self.pending.clear()
        self.size = 0
        write_all(self.spool, data)
        self.check.feed(data)


@dataclass(frozen=True)
class HalfResult:
    records: int
    summary: Summary
    order: HalfOrder
    output_problem: str | None  # libxml2's message when the records written are not valid to-mobile


def _numbers(elements: Iterator, ledger: LedgerSpool) -> Iterator:
    """The elements, keeping their customer numbers on the way."""
    numbers = []
    for element in elements:
        numbers.append(element.get("number"))
        if len(numbers) >= customer_pass.BATCH:
            ledger.keep_numbers(numbers)
            numbers = []
        yield element
    ledger.keep_numbers(numbers)


def _run(split: Split, kind: DocumentKind, rules: CustomerRules, ledger_path: Path, spool: Path, channel: str,
         name: str, output: int) -> HalfResult:
    check = OutputValidation("to-mobile.xsd")
    ledger = LedgerSpool(ledger_path, spool)
    writer = _Output(output, check)
    order = HalfOrder()
    counted = Summary()
    try:
        check.feed(mobile.customers_open().encode("utf-8"))
        with split.second() as source:
            elements = _numbers(validated_records(source, kind, CustomerExportChecks(), order), ledger)
            records = customer_pass.run(elements, rules, ledger, channel, 0, writer.write, counted, name,
                                        lambda: None)
        writer.flush()
        check.feed(mobile.customers_close().encode("utf-8"))
        ledger.close()
        problem = check.close()
    except BaseException:
        check.stop()
        raise
    return HalfResult(records, counted, order, problem)


def _child(split, kind, rules, ledger_path, spool, channel, name, output, conn, parent) -> None:
    _die_with_parent(parent)
    for fd in tuple(_WRITE_FDS):  # a parent's output check must see the end of its data
        os.close(fd)
        _WRITE_FDS.discard(fd)
    try:
        answer = ("done", _run(split, kind, rules, ledger_path, spool, channel, name, output))
    except HalfInvalid as error:
        answer = ("invalid", str(error))
    except BaseException:  # reported to the parent, which processes the file in one pass instead
        answer = ("failed", traceback.format_exc())
    conn.send(answer)
    conn.close()


class SecondHalf:
    """A forked child working through the second half of ``split``; :meth:`follow` takes its work.

    Start it before any thread or output check of the parent, so that the
    fork copies no lock held by a thread and no pipe end it must not hold.
    """

    def __init__(self, split: Split, kind: DocumentKind, rules: CustomerRules, ledger_path: Path, channel: str,
                 name: str):
        # Both spools beside the ledger, on disk (/tmp may be memory). The records' spool has no
        # name, and the next run's recovery removes a ledger spool that a crash left behind.
        self._output = tempfile.TemporaryFile(dir=ledger_path.parent)  # noqa: SIM115 - closed in stop()
        self._spool = ledger_spool.spool_path(ledger_path)
        context = multiprocessing.get_context("fork")
        self._recv, send = context.Pipe(duplex=False)
        self._process = context.Process(
            target=_child, daemon=False,  # it forks an output check of its own
            args=(split, kind, rules, ledger_path, self._spool, channel, name, self._output.fileno(), send,
                  os.getpid()))
        self._process.start()
        send.close()

    def follow(self, ledger: Ledger, file_id: int, channel: str, writer: PackageWriter, seen: KeySet
               ) -> HalfResult:
        """Append the child's records to ``writer`` as it writes them, then take its
        ledger spool; what it made of its half.

        ``seen`` holds the first half's customer numbers: one in both halves
        is a duplicate. Raises :class:`HalfInvalid` when the half was not valid
        or the child failed (then the whole file is judged the usual way).
        """
        fd = self._output.fileno()
        taken = 0
        while True:
            done = self._recv.poll(_FOLLOW_SECONDS)  # wakes at once when the child answers
            # Everything the child wrote before it answered is in the spool by now.
            size = os.fstat(fd).st_size
            while size > taken:  # in blocks: after the first half, megabytes may be waiting
                data = os.pread(fd, min(size - taken, _FLUSH), taken)  # pread: the file offset is the child's
                taken += len(data)
                writer.append(data)
            if done:
                break
        try:
            outcome, value = self._recv.recv()
        except EOFError:
            outcome, value = "failed", "the child ended without an answer"
        self._process.join()
        if outcome == "failed":
            log.warning("the second half failed; the file is processed in one pass instead:\n%s", value)
        if outcome != "done":
            raise HalfInvalid(value)
        duplicate = ledger_spool.take(ledger, self._spool, channel, file_id, seen).result()
        if duplicate is not None:
            raise HalfInvalid(f"customer number {duplicate} is in both halves")
        return value

    def stop(self) -> None:
        """End the child if it still runs and remove its spools (after the file's transaction)."""
        if self._process.is_alive():
            self._process.kill()
        self._process.join()
        self._output.close()
        self._spool.unlink(missing_ok=True)
