"""One return package from Mobile -> one CEE import document, exactly once
(R9-R14, F1, F2, F4, F5, F6).

The same protocol as :mod:`exchange.to_mobile`, for the way back:

1. A package whose SHA-256 already produced an import document is a
   duplicate (F2).
2. The package is checked as a container before anything in it is parsed
   (F5, :func:`exchange.package.check_package`): members, names, declared
   sizes, manifest; a to-mobile package or an unconfigured channel is
   rejected (F4). A package whose ``sequence`` was imported from other
   content is rejected (F6, :mod:`exchange.rules.sequence`); its number is
   recorded in the import's transaction.
3. A forked child validates ``customers.xml`` and verifies its size and
   SHA-256 against the manifest (F5) in one pass, while this process
   streams it through the rules (:mod:`exchange.import_pass`) into the
   import document under a temporary name, in one ledger transaction that
   also records every mobileId it creates (R12). Both read the member
   through :class:`exchange.package.MemberReader`, which stops past the
   declared size, so a ZIP bomb costs at most that much. Organizations come
   first in a CEE import, so persons and removals are spooled to temporary
   files and appended after the last organization. Three more children
   check what is written against cee-import.xsd, one per section
   (:class:`exchange.import_pass.SectionChecks`). A ``customers.xml`` of
   16 MiB or more is cut in two (:func:`exchange.halves.stream_cut`):
   a forked child does the second half the same way
   (:mod:`exchange.import_second_half`), and its sections and ledger
   changes are taken after this process's own.
4. Only if all succeed (the member's checksum first: a package that does not
   match its manifest is reported as such, whatever its XML looks like),
   and the records match the manifest, is the document
   fsynced and the transaction committed; then it is renamed to
   ``outbox/cee/CEEIMP_<channel>_<sequence>.xml`` and the package archived.
"""

from __future__ import annotations

import logging
import os
import tempfile
import uuid
from pathlib import Path

from exchange import halves, import_pass, ledger_spool
from exchange.halves import HalfInvalid
from exchange.import_second_half import ImportSecondHalf
from exchange.ledger import utc_now
from exchange.package import DATA_FILES, Entry, MemberRefused, check_package, open_member
from exchange.rules import inbound
from exchange.rules import sequence as sequence_rule
from exchange.summary import Summary
from exchange.validation_child import ValidationChild
from exchange.workspace import Held, Workspace, sha256_file, single_problem
from exchange.xml import cee_import, safe
from exchange.xml.report import Problem, Report
from exchange.xml.validate import DocumentRejected, read_root, validate_document

log = logging.getLogger("exchange")

DIRECTION = "from-mobile"
DATA_FILE = "customers.xml"
KIND = DATA_FILES[DIRECTION][DATA_FILE]
_RECORDS = ("NewCustomer", "Customer")  # where customers.xml may be cut in two
#: Where it is cut, as a share of its bytes: the child also reads the first half's bytes
#: to skip them, and does its ledger work in its one thread, so the parent takes more.
_SHARE = 0.57


class _Invalid(Exception):
    def __init__(self, report: Report | None = None):
        super().__init__("invalid")
        self.report = report


class OutputInvalid(Exception):
    """What we wrote does not match cee-import.xsd: a bug, never published."""


def import_name(channel: str, sequence: int) -> str:
    return f"CEEIMP_{channel}_{sequence:08d}.xml"


def import_id(channel: str, sequence: int) -> str:
    return f"CEEIMP-{channel}-{sequence:08d}"


def manifest_facts(path: Path) -> tuple[str | None, str | None, int | None]:
    """F3 and F6 for packages: the manifest's (createdAt, salesChannel, sequence), read without
    reading data; the sequence only for a readable from-mobile manifest (None otherwise: such a
    package is processed as before, and its checks reject it)."""
    try:
        check = check_package(path, validate_members=False, verify_members=False)
    except OSError:  # gone or unreadable: its claim says so
        return None, None, None
    manifest = check.manifest
    if manifest is None:
        return None, None, None
    sequence = manifest.sequence if check.valid and manifest.direction == DIRECTION else None
    return manifest.created_at, manifest.channel, sequence


def process(ws: Workspace, path: Path) -> None:
    """Process one complete return package waiting in inbox/mobile/."""
    sha256 = sha256_file(path)
    earlier = ws.ledger.produced_output(sha256)
    if earlier is not None:
        ws.duplicate(path, sha256, "mobile", earlier.name)
        return
    # Container and manifest only: the member's size and SHA-256 are verified while it is
    # validated, in the same pass (_transform).
    check = check_package(path, max_bytes=ws.config.rules.max_package_bytes, validate_members=False,
                          verify_members=False)
    manifest = check.manifest
    if not check.valid:
        ws.reject(path, sha256, "mobile", check.report)
        return
    if manifest.direction != DIRECTION:
        ws.reject(path, sha256, "mobile", single_problem(
            f"the manifest says direction=\"{manifest.direction}\"; inbox/mobile/ takes packages returned "
            "by Mobile (from-mobile)", member="manifest.xml"))
        return
    if manifest.channel not in ws.config.channels:
        ws.reject(path, sha256, "mobile", single_problem(
            f"sales channel '{manifest.channel}' is not configured (F4); configured: "
            f"{', '.join(sorted(ws.config.channels))}", member="manifest.xml"), channel=manifest.channel)
        return
    # F6 after F2 (the same content is a duplicate) and the container checks (an unreadable
    # package uses no number): the manifest read here is the claimed one's (F7).
    decision = sequence_rule.decide(ws.ledger.channel_sequences(manifest.channel, same_content=sha256),
                                    manifest.sequence)
    if decision.action == "reject":
        ws.reject(path, sha256, "mobile", single_problem(decision.message, member="manifest.xml"),
                  channel=manifest.channel)
        return
    if decision.action == "hold":
        raise Held(manifest.channel, manifest.sequence, decision.message)  # back into inbox/mobile/
    entry = manifest.entries[0]

    def reject_data_file(problem: Report) -> None:
        # A member unlike its manifest says so first, whatever its XML looks like.
        ws.reject(path, sha256, "mobile", _member_problems(path, entry) or problem, channel=manifest.channel)

    try:
        with open_member(path, entry) as member:
            root = read_root(member)  # refuses a DOCTYPE and any root but ReturnedCustomers
    except DocumentRejected as error:
        p = error.problem
        reject_data_file(single_problem(p.message, line=p.line, column=p.column, member=DATA_FILE))
        return
    except MemberRefused as error:
        reject_data_file(single_problem(str(error), member=DATA_FILE))
        return
    if root.kind is not KIND:
        reject_data_file(single_problem(
            f"root element is '{root.kind.root}' ({root.kind.namespace}), expected '{KIND.root}' "
            f"({KIND.namespace})", line=root.line, column=1, member=DATA_FILE))
        return
    split = None
    try:
        split = halves.stream_cut(lambda: open_member(path, entry), entry.bytes, _RECORDS, _SHARE)
    except MemberRefused:  # the member cannot be read that far: the pass in one piece says why
        pass
    if split is not None and _transform(ws, path, sha256, manifest, entry, split):
        return
    _transform(ws, path, sha256, manifest, entry)


def _member_problems(path: Path, entry: Entry) -> Report | None:
    """What is wrong with the data file's size or SHA-256 (F5), as a report; None when nothing."""
    with open_member(path, entry, verify=True) as member:
        return _member_report(member.problems())


def _member_report(problems: tuple[str, ...]) -> Report | None:
    """The data file's own problems (size, SHA-256) as a report; None when it is as declared."""
    if not problems:
        return None
    report = Report()
    for problem in problems:
        report.add(Problem(problem, member=DATA_FILE))
    return report


def _transform(ws: Workspace, path: Path, sha256: str, manifest, entry: Entry,
               split: halves.StreamCut | None = None) -> bool:
    """Validate and transform the package's data file into an import document, in one
    ledger transaction; publish it, or reject the package.

    With ``split``, the second half of a big ``customers.xml`` goes through a
    forked child (:mod:`exchange.import_second_half`) while this process does
    the first. False when the halves cannot stand for the whole (a half that
    cannot be parsed, a mobileId created in both), with nothing left behind:
    the caller then sends the package through in one pass.
    """
    ledger = ws.ledger
    channel = manifest.channel
    outbox = ws.paths.outbox_cee
    outbox.mkdir(parents=True, exist_ok=True)
    temp = outbox / f".CEEIMP_{channel}_{uuid.uuid4().hex}.xml.tmp"
    rules = import_pass.rules_for(ledger, ws.config, channel)
    validator = ValidationChild(lambda: open_member(path, entry, verify=True), KIND)
    second = None
    if split is not None:  # forked before the ledger's thread and the section checks
        header = cee_import.document_open(import_id(channel, 0), channel, utc_now(), path.name, sha256)
        second = ImportSecondHalf(split, rules, ledger.path, channel, path.name, header.encode("utf-8"))
    checker = import_pass.SectionChecks()
    expected = entry.records
    counted = Summary()

    def discard() -> None:
        """Stop the validating child and the section checks, and remove the unpublished document."""
        validator.stop()
        checker.stop()
        temp.unlink(missing_ok=True)

    try:
        with ledger.transaction():
            file_id = ledger.add_file(sha256=sha256, name=path.name, inbox="mobile", state="claimed",
                                      channel=channel, kind=KIND.root, export_id=manifest.package_id,
                                      created_at=manifest.created_at, direction=DIRECTION, run_id=ws.run_id)
            sequence = ledger.next_sequence(channel, DIRECTION)  # rolled back with the rest if invalid
            # F6: the package's own number, taken with the import (a rejected package uses none)
            ledger.record_inbound_sequence(channel, manifest.sequence, file_id)
            final = import_name(channel, sequence)
            ws.check_output_free(outbox / final, channel=channel, inbox="mobile")
            try:
                source = split.first(second.cut) if split is not None else open_member(path, entry)
                with ledger.bulk():
                    records = _write(ws, path, sha256, channel, sequence, file_id, rules, temp, checker, counted,
                                     source, second)
            except Exception as error:  # an invalid input can break the transform anywhere
                result = validator.result()
                if not result.valid:
                    raise _Invalid(_member_report(result.problems)) from error
                if isinstance(error, HalfInvalid):
                    raise
                if second is not None:  # a cut in the wrong place can break the first half
                    raise HalfInvalid(f"the first half: {error}") from error
                raise  # valid input, so this is our bug: let it surface
            result = validator.result()
            if not result.valid:
                raise _Invalid(_member_report(result.problems))
            if records != expected:
                raise _Invalid(single_problem(
                    f"holds {records} records, the manifest says {expected}", member=DATA_FILE))
            problem = checker.close()
            if problem is not None:
                raise OutputInvalid(f"{path.name}: the import document written does not match cee-import.xsd "
                                    f"(a bug; nothing was published): {problem}")
            ws.check_claim()  # F7: what was transformed is what was hashed
            ledger.set_state(file_id, "claimed", sequence=sequence, output=final, temp=temp.name,
                             records=records)
    except HalfInvalid as error:
        log.info("%s: %s; the package goes through in one pass", path.name, error)
        discard()
        return False
    except _Invalid as invalid:
        discard()
        if second is not None:  # before the precise pass: its child's work is of no use now
            second.stop()
        _reject_invalid(ws, path, sha256, entry, channel, invalid.report)
        return True
    except BaseException:
        discard()
        raise
    finally:
        if second is not None:  # the transaction has ended, however: SQLite refuses to detach within it
            ledger_spool.detach(ledger)
            second.stop()
    ws.summary.records_read += records  # committed: counted even if a fault keeps it from its final name
    ws.summary.merge(counted)
    ws.summary.files += 1
    ws.finish(file_id, temp, outbox / final, path, published=lambda: ws.summary.imports.append(final))
    log.info("%s: %d records -> %s", path.name, records, final)
    return True


def _reject_invalid(ws: Workspace, path: Path, sha256: str, entry: Entry, channel: str,
                    report: Report | None) -> None:
    """Reject a package whose data file is not valid; without a report yet, the precise pass makes one."""
    if report is None:
        validation = validate_document(lambda: open_member(path, entry), kind=KIND)
        report = Report()
        for p in validation.report.problems:
            report.add(Problem(p.message, p.line, p.column, p.path, member=DATA_FILE))
        report.more = validation.report.more
        if not report:
            report = single_problem("the data file is not valid (the precise pass found no position)",
                                    member=DATA_FILE)
    ws.reject(path, sha256, "mobile", report, channel=channel, kind=KIND.root)


def _append(out, spool) -> None:
    """Copy a whole spool to the end of ``out``, in the kernel where it can: the
    persons' spool holds most of a big document, and this copy is the run's tail."""
    out.flush()
    spool.flush()
    size = spool.seek(0, os.SEEK_END)
    offset = 0
    try:
        while offset < size:
            sent = os.sendfile(out.fileno(), spool.fileno(), offset, size - offset)
            if sent == 0:
                break
            offset += sent
    except OSError:  # no sendfile between files here: copy the rest by hand
        pass
    out.seek(0, os.SEEK_END)
    spool.seek(offset)
    while block := spool.read(1 << 20):
        out.write(block)
    out.flush()


def _write(ws: Workspace, path: Path, sha256: str, channel: str, sequence: int, file_id: int,
           rules: inbound.ImportRules, temp: Path, checker: import_pass.SectionChecks, counted: Summary, source,
           second: ImportSecondHalf | None) -> int:
    """The import document of ``source`` (the data file, or its first half with
    ``second`` doing the other) into ``temp``, fsynced; the number of records."""
    ledger = ws.ledger
    with source, open(temp, "wb") as out, tempfile.TemporaryFile() as persons, \
            tempfile.TemporaryFile() as removals:
        header = cee_import.document_open(import_id(channel, sequence), channel, utc_now(), path.name,
                                          sha256).encode("utf-8")
        out.write(header)
        checker.feed_all(header)
        sections = import_pass.Sections(checker.writer(checker.ORGANIZATIONS, out.write),
                                        checker.writer(checker.PERSONS, persons.write),
                                        checker.writer(checker.REMOVALS, removals.write))
        records = import_pass.run(safe.records(source, import_pass.RECORD_TAGS), rules, ledger, channel, file_id,
                                  sections, counted, path.name)
        spools = (persons, removals)
        taking = None
        if second is not None:
            half = second.wait()
            if half.output_problem is not None:
                raise OutputInvalid(f"{path.name}: the second half's import sections do not match cee-import.xsd "
                                    f"(a bug; nothing was published): {half.output_problem}")
            taking = second.take(ledger, file_id)  # on the ledger's thread, while the document is finished here
            records += half.records
            counted.merge(half.summary)
            _append(out, second.organizations)
            spools = (persons, second.persons, removals, second.removals)
        for spool in spools:  # CEE imports: organizations, then persons, then removals
            _append(out, spool)  # checked as it went into the spool
        tail = cee_import.document_close().encode("utf-8")
        out.write(tail)
        checker.feed_all(tail)
        out.flush()
        os.fsync(out.fileno())
        if taking is not None:
            second.taken(taking)
    return records
