"""One return package from Mobile -> one CEE import document, exactly once
(R9-R14, F1, F2, F4, F5).

The same protocol as :mod:`exchange.to_mobile`, for the way back:

1. A package whose SHA-256 already produced an import document is a
   duplicate (F2).
2. The package is checked as a container before anything in it is parsed
   (F5, :func:`exchange.package.check_package`): members, names, declared
   sizes, manifest; a to-mobile package or an unconfigured channel is
   rejected (F4).
3. A forked child validates ``customers.xml`` and verifies its size and
   SHA-256 against the manifest (F5) in one pass, while this process
   streams it through the rules into the import document under a temporary
   name, in one ledger transaction that also records every mobileId it
   creates (R12). Both read the member through
   :class:`exchange.package.MemberReader`, which stops past the declared
   size, so a ZIP bomb costs at most that much. Organizations come first in
   a CEE import, so persons and removals are spooled to temporary files and
   appended after the last organization. Three more children check what is
   written against cee-import.xsd, one per section (:class:`_SectionChecks`).
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

from exchange.ledger import utc_now
from exchange.package import DATA_FILES, Entry, MemberRefused, check_package, open_member
from exchange.records import NewCustomer
from exchange.rules import inbound
from exchange.summary import Summary
from exchange.validation_child import OutputValidation, ValidationChild
from exchange.workspace import Workspace, sha256_file, single_problem
from exchange.xml import cee_import, returned, safe
from exchange.xml.report import Problem, Report
from exchange.xml.validate import DocumentRejected, read_root, validate_document

log = logging.getLogger("exchange")

DIRECTION = "from-mobile"
DATA_FILE = "customers.xml"
KIND = DATA_FILES[DIRECTION][DATA_FILE]
_BATCH = 256


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


def manifest_created_at(path: Path):
    """F3 for packages: the manifest's createdAt, read without reading data."""
    check = check_package(path, validate_members=False, verify_members=False)
    return check.manifest.created_at if check.manifest is not None else None


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


def _transform(ws: Workspace, path: Path, sha256: str, manifest, entry: Entry) -> None:
    ledger = ws.ledger
    channel = manifest.channel
    outbox = ws.paths.outbox_cee
    outbox.mkdir(parents=True, exist_ok=True)
    temp = outbox / f".CEEIMP_{channel}_{uuid.uuid4().hex}.xml.tmp"
    validator = ValidationChild(lambda: open_member(path, entry, verify=True), KIND)
    checker = _SectionChecks()
    expected = entry.records
    counted = Summary()
    try:
        with ledger.transaction():
            file_id = ledger.add_file(sha256=sha256, name=path.name, inbox="mobile", state="claimed",
                                      channel=channel, kind=KIND.root, export_id=manifest.package_id,
                                      created_at=manifest.created_at, direction=DIRECTION, run_id=ws.run_id)
            sequence = ledger.next_sequence(channel, DIRECTION)  # rolled back with the rest if invalid
            final = import_name(channel, sequence)
            try:
                with ledger.bulk():
                    records = _write(ws, path, entry, sha256, channel, sequence, file_id, temp, checker,
                                     counted)
            except Exception as error:  # an invalid input can break the transform anywhere
                result = validator.result()
                if result.valid:
                    raise
                raise _Invalid(_member_report(result.problems)) from error
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
            ledger.set_state(file_id, "claimed", sequence=sequence, output=final, temp=temp.name,
                             records=records)
    except _Invalid as invalid:
        validator.stop()
        checker.stop()
        temp.unlink(missing_ok=True)
        report = invalid.report
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
        return
    except BaseException:
        validator.stop()
        checker.stop()
        temp.unlink(missing_ok=True)
        raise
    ws.summary.records_read += records
    ws.summary.merge(counted)
    ws.finish(file_id, temp, outbox / final, path)
    ws.summary.files += 1
    ws.summary.imports.append(final)
    log.info("%s: %d records -> %s", path.name, records, final)


def _mobile_ids(batch: list) -> list[str]:
    ids = []
    for record in batch:
        if isinstance(record, NewCustomer):
            ids.append(record.mobile_id)
        ids.extend(p.mobile_id for p in record.persons)
    return ids


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


class _SectionChecks:
    """cee-import.xsd checks of the import document as it is written, one child per section.

    A ``CeeImport`` is its header, then its organizations, then persons, then
    removals: a sequence of three optional, repeated elements. Persons and
    removals wait in spools until the last organization is out; checking them
    only as they are copied into the document would leave most of the check
    for the end, with nothing else to do meanwhile. So each section is checked
    as it is produced, in a document of its own with the same header: the
    three are valid exactly when the document is.
    """

    ORGANIZATIONS, PERSONS, REMOVALS = range(3)

    def __init__(self):
        self.sections = [OutputValidation("cee-import.xsd") for _ in range(3)]

    def feed(self, section: int, data: bytes) -> None:
        self.sections[section].feed(data)

    def feed_all(self, data: bytes) -> None:
        for check in self.sections:
            check.feed(data)

    def close(self) -> str | None:
        """None when all sections were valid, else libxml2's first message."""
        problems = [check.close() for check in self.sections]
        return next((p for p in problems if p is not None), None)

    def stop(self) -> None:
        for check in self.sections:
            check.stop()


def _write(ws: Workspace, path: Path, entry: Entry, sha256: str, channel: str, sequence: int, file_id: int,
           temp: Path, checker: _SectionChecks, counted: Summary) -> int:
    ledger = ws.ledger
    config = ws.config
    occupations = ledger.occupations(channel)
    rules = inbound.ImportRules(
        channel=channel,
        sales_classification=config.rules.sales_classification,
        import_method=config.rules.import_method,
        live_occupations=frozenset(c for c, s in occupations.items() if not s.marked_for_deletion),
    )
    records = 0
    batch: list = []
    with open(temp, "wb") as out, tempfile.TemporaryFile() as persons, tempfile.TemporaryFile() as removals:
        def emit(stream, section: int, text: str) -> None:
            data = text.encode("utf-8")
            stream.write(data)
            checker.feed(section, data)

        def apply(batch: list, in_ledger) -> None:
            """The rules over one batch, once the ledger said which of its mobileIds it knows."""
            # R12's memory for this batch: the mobileIds an import document carried (the
            # ledger's answer) and those earlier records of the batch create; plain sets,
            # as the rules ask them once or twice per person.
            carried = in_ledger.result()  # mobileId -> was an organization
            known = set(carried)
            organizations = {mobile_id for mobile_id, organization in carried.items() if organization}
            decisions = []
            organization_text, person_text, removal_text = [], [], []
            for record in batch:
                if isinstance(record, NewCustomer):
                    outcome = inbound.apply_new_customer(record, known, rules, organizations)
                else:
                    outcome = inbound.apply_returned_customer(record, known, rules)
                if outcome.organizations:
                    organization_text += [cee_import.organization(o) for o in outcome.organizations]
                person_text += [cee_import.person(p) for p in outcome.persons]
                if outcome.removals:
                    removal_text += [cee_import.removal(r) for r in outcome.removals]
                known.update(outcome.created)
                organizations.update(outcome.created_organizations)
                decisions.extend(outcome.decisions)
            # One write per batch and stream: small writes cost more than the data.
            if organization_text:
                emit(out, checker.ORGANIZATIONS, "".join(organization_text))
            if person_text:
                emit(persons, checker.PERSONS, "".join(person_text))
            if removal_text:
                emit(removals, checker.REMOVALS, "".join(removal_text))
            # The decisions that created records are the R12 memory (mobile_ids), the rest events.
            ledger.add_mobile_ids(channel, file_id, [d for d in decisions if d.outcome == "created"])
            ledger.log_decisions(file_id, [d for d in decisions if d.outcome != "created"])
            counted.count(decisions, path.name)

        # A batch's R12 lookup waits in the ledger's queue behind the previous batch's
        # mobileIds, and runs while this thread parses the next batch.
        waiting = None  # (batch, future of its lookup)

        def flush() -> None:
            nonlocal waiting, batch
            if waiting is not None:
                apply(*waiting)
            waiting = (batch, ledger.known_mobile_ids(_mobile_ids(batch))) if batch else None
            batch = []

        header = cee_import.document_open(import_id(channel, sequence), channel, utc_now(), path.name,
                                          sha256).encode("utf-8")
        out.write(header)
        checker.feed_all(header)
        with open_member(path, entry) as source:
            for element in safe.records(source, (returned.NEW_CUSTOMER, returned.CUSTOMER)):
                records += 1
                batch.append(returned.new_customer(element) if element.tag == returned.NEW_CUSTOMER
                             else returned.returned_customer(element))
                if len(batch) >= _BATCH:
                    flush()
        flush()
        flush()  # the last batch
        for spool in (persons, removals):  # CEE imports: organizations, then persons, then removals
            _append(out, spool)  # checked as it went into the spool
        tail = cee_import.document_close().encode("utf-8")
        out.write(tail)
        checker.feed_all(tail)
        out.flush()
        os.fsync(out.fileno())
    return records
