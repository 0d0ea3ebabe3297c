"""The inbound rules (R9-R14) over a stream of return-package records.

One pass, whoever runs it: the parent over a whole ``customers.xml`` or the
first half of a big one, a forked child over the second half
(:mod:`exchange.import_second_half`). Records go through the rules in
batches: a batch's mobileIds are looked up at once (R12), and the lookup
runs while the next batch is parsed. What a batch yields goes to the three
sections of a CEE import (organizations, persons, removals), and its
decisions to the ledger.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Protocol

from lxml import etree

from exchange.config import Config
from exchange.records import Decision, NewCustomer
from exchange.rules import inbound
from exchange.summary import Summary
from exchange.validation_child import OutputValidation
from exchange.xml import cee_import, returned

#: Records per batch. Each batch costs an R12 lookup, a few inserts and a hand-over to and
#: from the ledger thread: 1024 ran a 200 MiB package about 5 % faster than 256.
BATCH = 1024
RECORD_TAGS = (returned.NEW_CUSTOMER, returned.CUSTOMER)


class ImportLedger(Protocol):
    """What the pass reads from and writes to the ledger."""

    def known_mobile_ids(self, mobile_ids: Iterable[str]) -> Future: ...
    def add_mobile_ids(self, channel: str, file_id: int, created: list[Decision]) -> None: ...
    def log_decisions(self, file_id: int, decisions: Iterable[Decision]) -> None: ...


@dataclass(frozen=True)
class Sections:
    """Where the serialized records of each section of the import document go."""

    organizations: Callable[[bytes], None]
    persons: Callable[[bytes], None]
    removals: Callable[[bytes], None]


class SectionChecks:
    """cee-import.xsd checks of an import document as it is written, one child per section.

    A ``CeeImport`` is its header, then its organizations, then persons, then
    removals: a sequence of three optional, repeated elements. Persons and
    removals wait in spools until the last organization is out; checking them
    only as they are copied into the document would leave most of the check
    for the end, with nothing else to do meanwhile. So each section is checked
    as it is produced, in a document of its own with the same header: the
    three are valid exactly when the document is. (So are the sections of two
    halves, each checked on its own.)
    """

    ORGANIZATIONS, PERSONS, REMOVALS = range(3)

    def __init__(self):
        self.sections = [OutputValidation("cee-import.xsd") for _ in range(3)]

    def feed(self, section: int, data: bytes) -> None:
        self.sections[section].feed(data)

    def feed_all(self, data: bytes) -> None:
        for check in self.sections:
            check.feed(data)

    def writer(self, section: int, write: Callable[[bytes], object]) -> Callable[[bytes], None]:
        """A section's writer for :class:`Sections`: ``write(data)``, and the data to its check."""
        check = self.sections[section].feed

        def write_and_check(data: bytes) -> None:
            write(data)
            check(data)

        return write_and_check

    def close(self) -> str | None:
        """None when all sections were valid, else libxml2's first message."""
        problems = [check.close() for check in self.sections]
        return next((p for p in problems if p is not None), None)

    def stop(self) -> None:
        for check in self.sections:
            check.stop()


def rules_for(ledger, config: Config, channel: str) -> inbound.ImportRules:
    """The channel's settings for R9-R14, with its live occupations as the ledger has them (R13)."""
    occupations = ledger.occupations(channel)
    return inbound.ImportRules(
        channel=channel,
        sales_classification=config.rules.sales_classification,
        import_method=config.rules.import_method,
        live_occupations=frozenset(c for c, s in occupations.items() if not s.marked_for_deletion),
    )


def _mobile_ids(batch: list) -> list[str]:
    ids = []
    for record in batch:
        if isinstance(record, NewCustomer):
            ids.append(record.mobile_id)
        ids.extend(p.mobile_id for p in record.persons)
    return ids


def run(elements: Iterable[etree._Element], rules: inbound.ImportRules, ledger: ImportLedger, channel: str,
        file_id: int, sections: Sections, counted: Summary, name: str) -> int:
    """Apply R9-R14 to every record of ``elements``, in input order within each section;
    the number of records."""

    def apply(batch: list, in_ledger: Future) -> None:
        """The rules over one batch, once the ledger said which of its mobileIds it knows."""
        # R12's memory for this batch: the mobileIds an import document carried (the
        # ledger's answer) and those earlier records of the batch create; plain sets,
        # as the rules ask them once or twice per person.
        carried = in_ledger.result()  # mobileId -> was an organization
        known = set(carried)
        organizations = {mobile_id for mobile_id, organization in carried.items() if organization}
        decisions = []
        organization_text, person_text, removal_text = [], [], []
        new_customer, returned_customer = inbound.apply_new_customer, inbound.apply_returned_customer
        organization_xml, person_xml, removal_xml = cee_import.organization, cee_import.person, cee_import.removal
        for record in batch:
            if isinstance(record, NewCustomer):
                outcome = new_customer(record, known, rules, organizations)
            else:
                outcome = returned_customer(record, known, rules)
            if outcome.organizations:
                organization_text += map(organization_xml, outcome.organizations)
                organizations.update(outcome.created_organizations)
            if outcome.persons:
                person_text += map(person_xml, outcome.persons)
            if outcome.removals:
                removal_text += map(removal_xml, outcome.removals)
            if outcome.created:
                known.update(outcome.created)
            decisions += outcome.decisions
        # One write per batch and section: small writes cost more than the data.
        if organization_text:
            sections.organizations("".join(organization_text).encode("utf-8"))
        if person_text:
            sections.persons("".join(person_text).encode("utf-8"))
        if removal_text:
            sections.removals("".join(removal_text).encode("utf-8"))
        # The decisions that created records are the R12 memory (mobile_ids), the rest events.
        ledger.add_mobile_ids(channel, file_id, [d for d in decisions if d.outcome == "created"])
        ledger.log_decisions(file_id, [d for d in decisions if d.outcome != "created"])
        counted.count(decisions, name)

    # A batch's R12 lookup waits in the ledger's queue behind the previous batch's
    # mobileIds, and runs while this thread parses the next batch.
    waiting = None  # (batch, future of its lookup)
    batch: list = []

    def flush() -> None:
        nonlocal waiting, batch
        if waiting is not None:
            apply(*waiting)
        waiting = (batch, ledger.known_mobile_ids(_mobile_ids(batch))) if batch else None
        batch = []

    records = 0
    new_customer, returned_customer, new_customer_tag = returned.new_customer, returned.returned_customer, \
        returned.NEW_CUSTOMER
    for element in elements:
        records += 1
        batch.append(new_customer(element) if element.tag == new_customer_tag else returned_customer(element))
        if len(batch) >= BATCH:
            flush()
    flush()
    flush()  # the last batch
    return records
