"""R9-R14: what of a return package goes to CEE, and how.

Pure functions over the records of :mod:`exchange.records`. The shell
passes what the ledger knows (mobileIds already carried by an import
document, the channel's live occupations) and commits the mobileIds each
outcome creates together with the import document.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Container

from exchange.records import (
    Communication,
    ContactPersonRemoval,
    Decision,
    NewCustomer,
    Organization,
    Person,
    ReturnedCustomer,
    ReturnedPerson,
)


@dataclass(frozen=True)
class ImportRules:
    """The channel's settings the inbound rules need."""

    channel: str
    sales_classification: str  # R9
    import_method: str  # R11
    live_occupations: frozenset[str]  # R13


class ImportOutcome:
    """What the rules made of one record: the CEE records, the decisions, and the mobileIds created."""

    # A plain class: a dataclass's six default factories cost more than the rules of a record.
    __slots__ = ("created", "created_organizations", "decisions", "organizations", "persons", "removals")

    def __init__(self):
        self.organizations: list[Organization] = []
        self.persons: list[Person] = []
        self.removals: list[ContactPersonRemoval] = []
        self.decisions: list[Decision] = []
        self.created: list[str] = []  # mobileIds this outcome creates in CEE
        self.created_organizations: list[str] = []  # those of them that are organizations

    def __repr__(self) -> str:
        return (f"ImportOutcome(organizations={self.organizations!r}, persons={self.persons!r}, "
                f"removals={self.removals!r}, decisions={self.decisions!r}, created={self.created!r}, "
                f"created_organizations={self.created_organizations!r})")


def external_id(mobile_id: str) -> str:
    return f"mobile:{mobile_id}"


def _communications(contacts, rules: ImportRules) -> tuple[Communication, ...]:
    """R11: Mobile sends no method; every connection gets the import method."""
    if not contacts:
        return ()
    method = rules.import_method
    return tuple([Communication(c.kind, method, c.value) for c in contacts])


@dataclass(slots=True)
class _Employer:
    """Who the persons of one record work for (R10), worked out once per record."""

    who: str  # the customer number or the new organization's mobileId, in decisions
    employee_of: str | None  # an existing CEE customer
    employee_of_new: str | None  # the externalId of a new organization
    reason: str  # the R10 decision's reason

    @classmethod
    def customer(cls, number: str) -> _Employer:
        return cls(number, number, None, f"employee of customer {number} (added on a device)")

    @classmethod
    def organization(cls, mobile_id: str) -> _Employer:
        return cls(mobile_id, None, external_id(mobile_id),
                   f"employee of new organization {mobile_id} (added with it on a device)")


def _person(person: ReturnedPerson, known: Container[str], rules: ImportRules, outcome: ImportOutcome,
            employer: _Employer) -> None:
    mobile_id = person.mobile_id
    if mobile_id in known or mobile_id in outcome.created:  # R12
        outcome.decisions.append(Decision("R12", "contact person", "not created",
                                          f"mobileId {mobile_id} was imported before", employer.who, mobile_id))
        return
    occupation = person.position
    if occupation is not None and occupation not in rules.live_occupations:  # R13
        outcome.decisions.append(Decision("R13", "contact person", "warning",
                                          f"position {occupation} left out (not a live occupation of "
                                          f"{rules.channel})", employer.who, mobile_id, occupation))
        occupation = None
    outcome.persons.append(Person(
        external_id(mobile_id), person.surname, person.first_name, occupation,
        (rules.sales_classification,),  # R9
        _communications(person.contacts, rules),  # R11
        employer.employee_of, employer.employee_of_new,  # R10
    ))
    outcome.created.append(mobile_id)
    outcome.decisions.append(Decision("R10", "contact person", "created", employer.reason, employer.who, mobile_id))


def apply_new_customer(record: NewCustomer, known: Container[str], rules: ImportRules,
                       organizations: Container[str] | None = None) -> ImportOutcome:
    """R9-R13 for a customer added on a device, with its persons.

    ``known`` holds the mobileIds already carried by an import document
    (earlier documents, and earlier records of this one); ``organizations``
    those of them that were organizations (by default: all of them).
    """
    outcome = ImportOutcome()
    mobile_id = record.mobile_id
    if mobile_id in known and organizations is not None and mobile_id not in organizations:
        # R12 with one space of mobileIds: this id is a contact person in CEE already, so
        # no organization can be created under it, and R10 has no employer to name.
        outcome.decisions.append(Decision(
            "R12", "new customer", "not created",
            f"mobileId {mobile_id} was imported before as a contact person, not a customer; "
            f"its {len(record.persons)} contact person(s) are not created either (R10 needs an organization)",
            customer=mobile_id))
        return outcome
    if mobile_id in known:  # R12: not created again; its persons still point at it
        outcome.decisions.append(Decision("R12", "new customer", "not created",
                                          f"mobileId {mobile_id} was imported before", customer=mobile_id))
    else:
        outcome.organizations.append(Organization(external_id(mobile_id), record.name, record.tax_id,
                                                  record.address, _communications(record.contacts, rules),
                                                  rules.channel))
        outcome.created.append(mobile_id)
        outcome.created_organizations.append(mobile_id)
        outcome.decisions.append(Decision(None, "new customer", "created",
                                          f"organization in sales channel {rules.channel}", customer=mobile_id))
    if record.persons:
        employer = _Employer.organization(mobile_id)
        for person in record.persons:
            _person(person, known, rules, outcome, employer)
    return outcome


def apply_returned_customer(record: ReturnedCustomer, known: Container[str],
                            rules: ImportRules) -> ImportOutcome:
    """R9-R14 for an existing customer: persons added and deleted on a device."""
    outcome = ImportOutcome()
    if record.persons:
        employer = _Employer.customer(record.id)
        for person in record.persons:
            _person(person, known, rules, outcome, employer)
    for partner in record.deleted_partners:  # R14
        outcome.removals.append(ContactPersonRemoval(record.id, partner))
        outcome.decisions.append(Decision("R14", "contact person", "removal", "deleted on a device",
                                          customer=record.id, partner=partner))
    return outcome
