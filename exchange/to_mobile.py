"""One CEE export -> one Mobile package, exactly once (R1-R8, F1-F4).

The shell around :mod:`exchange.rules.outbound`:

1. A file whose SHA-256 already produced a package is a duplicate (F2).
2. A forked child validates the file (fast path) while this process streams
   it through the rules into a package under a temporary name, with every
   change to the channel state and every decision written to the ledger in
   one open transaction.
3. Only if both succeed is the sequence number taken, the manifest added,
   the package fsynced, and the transaction committed with the file marked
   ``claimed``. A crash before that commit leaves no trace but a temporary
   file; the next run redoes the file from scratch.
4. Then the package is renamed to its final name (``published``) and the
   input moved to the archive (``archived``).
   :meth:`~exchange.workspace.Workspace.recover` finishes these two steps
   for files a crash left in between.

An invalid file rolls the transaction back and is rejected with a precise
report (F1); no sequence number is used, so sequences have no gaps.

A big customer export goes the same way in two processes: it is cut in two
(:mod:`exchange.halves`), this process validates and transforms the first
half in one pass and a forked child the second
(:mod:`exchange.second_half`), and the child's records and ledger changes
join this process's package and transaction. If a half is not valid, the
file takes the way above.
"""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import IO

import click

from exchange import customer_pass, halves, ledger_spool
from exchange.halves import HalfInvalid, HalfOrder, validated_records
from exchange.ledger import utc_now
from exchange.package import Manifest, Source
from exchange.package_writer import (
    PackageWriter,
    manifest_xml,
    package_id,
    package_name,
)
from exchange.rules import outbound
from exchange.second_half import SecondHalf
from exchange.summary import Summary
from exchange.validation_child import OutputValidation, ValidationChild
from exchange.workspace import Workspace, sha256_file, single_problem
from exchange.xml import cee, mobile, safe
from exchange.xml.checks import CustomerExportChecks
from exchange.xml.report import Problem
from exchange.xml.schemas import CEE_EXPORT, KINDS, schema, schema_for
from exchange.xml.validate import DocumentRejected, Root, read_root, validate_document

log = logging.getLogger("exchange")

MASTERDATA = KINDS[f"{{{CEE_EXPORT}}}MasterdataExport"]
CUSTOMERS = KINDS[f"{{{CEE_EXPORT}}}CustomerExport"]
DIRECTION = "to-mobile"
_READ_BLOCK = 1 << 20
_PROGRESS_MIN_BYTES = 4 << 20


class _Invalid(Exception):
    """The input turned out invalid while it was being transformed."""


class OutputInvalid(Exception):
    """What we wrote does not match the to-mobile XSD: a bug, never published."""


def read_ready_root(path: Path) -> Root | None:
    try:
        with open(path, "rb") as source:
            return read_root(source)
    except (DocumentRejected, OSError):
        return None


def process(ws: Workspace, path: Path) -> None:
    """Process one complete CEE export waiting in inbox/cee/."""
    sha256 = sha256_file(path)
    earlier = ws.ledger.produced_output(sha256)
    if earlier is not None:
        ws.duplicate(path, sha256, "cee", earlier.name)
        return
    try:
        with open(path, "rb") as source:
            root = read_root(source)
    except DocumentRejected as error:
        report = single_problem(error.problem.message, line=error.problem.line, column=error.problem.column)
        ws.reject(path, sha256, "cee", report)
        return
    if root.kind not in (MASTERDATA, CUSTOMERS):
        ws.reject(path, sha256, "cee", single_problem(
            f"root element '{root.kind.root}' ({root.kind.namespace}) is not a CEE export; inbox/cee/ takes "
            "MasterdataExport and CustomerExport", line=root.line, column=1), kind=root.kind.root)
        return
    channel = root.attrib.get("salesChannel")
    if channel not in ws.config.channels:
        report = validate_document(lambda: open(path, "rb")).report
        if channel is not None:  # a missing attribute is the schema's error, reported as such
            report.problems.insert(0, Problem(
                f"sales channel '{channel}' is not configured (F4); configured: "
                f"{', '.join(sorted(ws.config.channels))}", line=root.line, column=1))
        ws.reject(path, sha256, "cee", report, channel=channel, kind=root.kind.root)
        return
    if root.kind is CUSTOMERS:
        split = halves.find_split(path)
        if split is not None and _transform_halves(ws, path, sha256, root, channel, split):
            return
    _transform(ws, path, sha256, root, channel)


def _transform(ws: Workspace, path: Path, sha256: str, root: Root, channel: str) -> None:
    kind = root.kind
    ledger = ws.ledger
    temp = _temp_package(ws, channel)
    entry_name = "positions.xml" if kind is MASTERDATA else "customers.xml"
    validator = ValidationChild(lambda: _open_export(path), kind)
    writer = PackageWriter(temp, entry_name)
    checker = OutputValidation("to-mobile.xsd")
    writer.observe = checker.feed
    records_read = 0
    try:
        with ledger.transaction():
            file_id = _claim(ws, path, sha256, root, channel)
            counted = Summary()  # merged into the run's summary only if the file goes through
            try:
                with _open_export(path) as source, _progress(ws, path) as progress, ledger.bulk():
                    transform = _masterdata if kind is MASTERDATA else _customers
                    records_read = transform(ws, counted, source, channel, file_id, writer, path.name, progress)
            except Exception as error:  # an invalid input can break the transform anywhere
                if validator.result().valid:
                    raise  # valid input, so this is our bug: let it surface
                raise _Invalid() from error
            entry = writer.finish_data()
            if not validator.result().valid:
                raise _Invalid()
            _check_output(path, entry_name, checker.close())
            final = _seal(ws, path, sha256, root, channel, file_id, writer, entry, records_read)
    except _Invalid:
        validator.stop()
        writer.discard()  # before the checker stops: the writer's thread may be feeding it
        checker.stop()
        report = validate_document(lambda: open(path, "rb"), kind=kind).report
        if not report:
            report = single_problem("the document is not valid (the precise pass found no position)")
        ws.reject(path, sha256, "cee", report, channel=channel, kind=kind.root)
        return
    except BaseException:
        validator.stop()
        writer.discard()
        checker.stop()
        raise
    _published(ws, path, counted, records_read, file_id, temp, final, entry)


def _transform_halves(ws: Workspace, path: Path, sha256: str, root: Root, channel: str, split: halves.Split) -> bool:
    """:func:`_transform` for a big customer export cut in two (:mod:`exchange.halves`):
    the first half here, the second in a child, each validated as it is parsed.

    False when a half was not valid, with nothing left behind: the caller
    then judges the whole file the usual way, and rejects it or transforms it.
    """
    kind = CUSTOMERS
    ledger = ws.ledger
    temp = _temp_package(ws, channel)
    rules = customer_pass.rules_for(ledger, ws.config, channel)
    schema_for(kind, streaming=True)  # compiled before the fork: once for both halves
    schema("to-mobile.xsd", streaming=True)
    log.info("%s: cut in two at byte %d of %d, one process per half", path.name, split.cut, split.size)
    second = SecondHalf(split, kind, rules, ledger.path, channel, path.name)
    writer = PackageWriter(temp, "customers.xml")
    checker = OutputValidation("to-mobile.xsd")
    writer.observe = checker.feed
    try:
        with ledger.transaction():
            file_id = _claim(ws, path, sha256, root, channel)
            counted = Summary()
            checks = CustomerExportChecks()
            order = HalfOrder()
            with split.first() as source, _progress(ws, path) as progress, ledger.bulk():
                writer.write(mobile.customers_open())
                try:
                    records = customer_pass.run(validated_records(source, kind, checks, order), rules, ledger,
                                                channel, file_id, writer.write, counted, path.name,
                                                lambda: progress.follow(source))
                except Exception as error:  # an invalid half can break the transform anywhere
                    raise HalfInvalid(f"the first half: {error}") from error
                writer.stop_observing(mobile.customers_close().encode("utf-8"))
                half = second.follow(ledger, file_id, channel, writer, checks.customers.seen)
                _check_output(path, "customers.xml (second half)", half.output_problem)
                if order.last == cee.DELETED_CUSTOMER and half.order.first == cee.CUSTOMER:
                    raise HalfInvalid("a Customer follows a DeletedCustomer across the cut")
                writer.write(mobile.customers_close())
                progress.at(progress.size)
            records += half.records
            counted.merge(half.summary)
            writer.records = records
            entry = writer.finish_data()
            _check_output(path, "customers.xml", checker.close())
            final = _seal(ws, path, sha256, root, channel, file_id, writer, entry, records)
    except HalfInvalid as error:
        log.info("%s: a half is not valid (%s); the file is validated whole", path.name, error)
        writer.discard()
        checker.stop()
        return False
    except BaseException:
        writer.discard()
        checker.stop()
        raise
    finally:  # the transaction has ended, however: SQLite refuses to detach within it
        ledger_spool.detach(ledger)
        second.stop()
    _published(ws, path, counted, records, file_id, temp, final, entry)
    return True


def _temp_package(ws: Workspace, channel: str) -> Path:
    """Where a package is written before it is published: a dot name beside its final one."""
    outbox = ws.paths.outbox_mobile
    outbox.mkdir(parents=True, exist_ok=True)
    return outbox / f".MOB_{channel}_{uuid.uuid4().hex}.zip.tmp"


def _claim(ws: Workspace, path: Path, sha256: str, root: Root, channel: str) -> int:
    """The file's ledger row, inside the transaction that will hold its outcome."""
    return ws.ledger.add_file(sha256=sha256, name=path.name, inbox="cee", state="claimed", channel=channel,
                              kind=root.kind.root, export_id=root.attrib.get("exportId"),
                              created_at=root.attrib.get("createdAt"), direction=DIRECTION, run_id=ws.run_id)


def _check_output(path: Path, what: str, problem: str | None) -> None:
    if problem is not None:
        raise OutputInvalid(f"{path.name}: the {what} written does not match to-mobile.xsd "
                            f"(a bug; nothing was published): {problem}")


def _seal(ws: Workspace, path: Path, sha256: str, root: Root, channel: str, file_id: int, writer: PackageWriter,
          entry, records: int) -> str:
    """Take the sequence number, add the manifest, fsync, mark the file claimed; the package's name."""
    ledger = ws.ledger
    ws.check_claim()  # F7: what was transformed is what was hashed
    sequence = ledger.next_sequence(channel, DIRECTION)
    final = package_name(channel, sequence)
    ws.check_output_free(ws.paths.outbox_mobile / final, ws.paths.sent / final, channel=channel, inbox="cee")
    manifest = manifest_xml(Manifest(
        package_id=package_id(channel, sequence), direction=DIRECTION, channel=channel,
        sequence=sequence, created_at=utc_now(),
        mode="full" if root.attrib.get("changedSince") == "anytime" else "delta",
        sources=(Source(path.name, root.attrib.get("exportId"), sha256),), entries=(entry,)))
    writer.close(manifest)
    ledger.set_state(file_id, "claimed", sequence=sequence, output=final, temp=writer.temp.name, records=records)
    return final


def _published(ws: Workspace, path: Path, counted: Summary, records: int, file_id: int, temp: Path, final: str,
               entry) -> None:
    ws.summary.records_read += records  # committed: counted even if a fault keeps it from its final name
    ws.summary.merge(counted)
    ws.summary.files += 1
    ws.finish(file_id, temp, ws.paths.outbox_mobile / final, path,
              published=lambda: ws.summary.packages.append(final))
    log.info("%s: %d records -> %s (%d records)", path.name, records, final, entry.records)


def _open_export(path: Path):
    """An export for one streaming pass: read in 1 MiB blocks, as every read from
    the file hands the GIL over and back, and parsers ask for 32 KiB at a time."""
    return open(path, "rb", buffering=_READ_BLOCK)


class _progress:
    """A progress bar on stderr for big files, when stderr is a terminal."""

    def __init__(self, ws: Workspace, path: Path):
        self.size = path.stat().st_size
        self.bar = None
        if ws.progress and self.size >= _PROGRESS_MIN_BYTES:
            self.bar = click.progressbar(length=self.size, label=path.name, file=click.get_text_stream("stderr"),
                                         show_eta=True, show_percent=True)
        self.done = 0

    def __enter__(self):
        if self.bar:
            self.bar.__enter__()
        return self

    def __exit__(self, *exc):
        if self.bar:
            self.bar.__exit__(*exc)

    def at(self, position: int) -> None:
        if self.bar and position > self.done:
            self.bar.update(position - self.done)
            self.done = position

    def follow(self, source: IO[bytes]) -> None:
        """Move the bar to where ``source`` is. Only when a bar is shown: ``tell``
        is a system call, which hands the GIL over and waits to get it back."""
        if self.bar:
            self.at(source.tell())


def _masterdata(ws: Workspace, counted: Summary, source, channel, file_id, writer, name, progress) -> int:
    ledger = ws.ledger
    known = ledger.occupations(channel)
    writer.write(mobile.positions_open())
    count = 0
    decisions = []
    for element in safe.records(source, (cee.OCCUPATION, cee.COMMUNICATION_METHOD)):
        count += 1
        if element.tag == cee.OCCUPATION:
            occupation = cee.occupation(element)
            record, decision, state = outbound.apply_occupation(occupation, known.get(occupation.code))
            known[occupation.code] = state
            ledger.set_occupation(channel, occupation.code, occupation.description, state)
            if record is not None:
                writer.write(mobile.position(record))
                writer.records += 1
        else:
            method = cee.communication_method(element)
            ledger.set_method(channel, method.code, method.display_in_mobile)
            decision = outbound.apply_method(method)
        decisions.append(decision)
    writer.write(mobile.positions_close())
    ledger.log_decisions(file_id, decisions)
    counted.count(decisions, name)
    progress.at(progress.size)
    return count


def _customers(ws: Workspace, counted: Summary, source, channel, file_id, writer, name, progress) -> int:
    writer.write(mobile.customers_open())
    count = customer_pass.run(safe.records(source, (cee.CUSTOMER, cee.DELETED_CUSTOMER)),
                              customer_pass.rules_for(ws.ledger, ws.config, channel), ws.ledger, channel, file_id,
                              writer.write, counted, name, lambda: progress.follow(source))
    writer.records += count
    writer.write(mobile.customers_close())
    return count
