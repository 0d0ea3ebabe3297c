"""R9-R14: what of a return package goes to CEE, and how.

Pure functions over the records of :mod:`exchange.records`. The shell
passes what the ledger knows (mobileIds already carried by an import
document, the channel's live occupations) and commits the mobileIds each
outcome creates together with the import document.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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


@dataclass
class ImportOutcome:
    organizations: list[Organization] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)
    removals: list[ContactPersonRemoval] = field(default_factory=list)
    decisions: list[Decision] = field(default_factory=list)
    created: list[str] = field(default_factory=list)  # mobileIds this outcome creates in CEE
    created_organizations: list[str] = field(default_factory=list)  # those of them that are organizations


def external_id(mobile_id: str) -> str:
    return f"mobile:{mobile_id}"


def _communications(contacts, rules: ImportRules) -> tuple[Communication, ...]:
    """R11: Mobile sends no method; every connection gets the import method."""
    return tuple([Communication(c.kind, rules.import_method, c.value) for c in contacts])


def _person(person: ReturnedPerson, known: Container[str], rules: ImportRules,
            outcome: ImportOutcome, *, customer: str | None = None, organization: str | None = None,
            where: str) -> None:
    mobile_id = person.mobile_id
    if mobile_id in known or mobile_id in outcome.created:  # R12
        outcome.decisions.append(Decision("R12", "contact person", "not created",
                                          f"mobileId {mobile_id} was imported before", customer=customer or organization,
                                          partner=mobile_id))
        return
    occupation = person.position
    if occupation is not None and occupation not in rules.live_occupations:  # R13
        outcome.decisions.append(Decision("R13", "contact person", "warning",
                                          f"position {occupation} left out (not a live occupation of "
                                          f"{rules.channel})", customer=customer or organization,
                                          partner=mobile_id, code=occupation))
        occupation = None
    outcome.persons.append(Person(
        external_id(mobile_id), person.surname, person.first_name, occupation,
        (rules.sales_classification,),  # R9
        _communications(person.contacts, rules),  # R11
        employee_of=customer,  # R10
        employee_of_new=external_id(organization) if organization else None,
    ))
    outcome.created.append(mobile_id)
    employer = f"customer {customer}" if customer else f"new organization {organization}"
    outcome.decisions.append(Decision("R10", "contact person", "created", f"employee of {employer} {where}",
                                      customer=customer or organization, partner=mobile_id))


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
    for person in record.persons:
        _person(person, known, rules, outcome, organization=mobile_id, where="(added with it on a device)")
    return outcome


def apply_returned_customer(record: ReturnedCustomer, known: Container[str],
                            rules: ImportRules) -> ImportOutcome:
    """R9-R14 for an existing customer: persons added and deleted on a device."""
    outcome = ImportOutcome()
    for person in record.persons:
        _person(person, known, rules, outcome, customer=record.id, where="(added on a device)")
    for partner in record.deleted_partners:  # R14
        outcome.removals.append(ContactPersonRemoval(record.id, partner))
        outcome.decisions.append(Decision("R14", "contact person", "removal", "deleted on a device",
                                          customer=record.id, partner=partner))
    return outcome
