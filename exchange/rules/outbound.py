"""R1-R8: what of a CEE export goes to Mobile, and how.

Pure functions over the records of :mod:`exchange.records` and a small view
of the channel's state. Each returns the output records, the decisions
taken (each naming its rule) and the change to the channel's state, which
the shell commits together with the package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

from exchange.records import (
    Communication,
    CommunicationMethod,
    Contact,
    ContactPerson,
    Customer,
    CustomerDelete,
    CustomerUpsert,
    Decision,
    DeletedCustomer,
    Occupation,
    PersonDelete,
    PersonUpsert,
    PositionDelete,
    PositionUpsert,
)


@dataclass(frozen=True)
class OccupationState:
    """What the channel knows of one occupation."""

    marked_for_deletion: bool
    sent: bool  # an upsert reached Mobile and no delete since


@dataclass(frozen=True)
class CustomerRules:
    """The channel's settings the customer rules need (R2, R4, R7)."""

    sales_classification: str
    displayed_methods: frozenset[str]
    live_occupations: frozenset[str]  # known to the channel and not marked for deletion
    known_occupations: frozenset[str] = frozenset()


@dataclass
class CustomerOutcome:
    record: CustomerUpsert | CustomerDelete
    decisions: list[Decision]
    sent: set[str] = field(default_factory=set)  # partners now sent (upserted)
    unsent: set[str] = field(default_factory=set)  # partners no longer sent
    unsend_all: bool = False  # R8: none of the customer's persons count as sent any more


# --- R4 ------------------------------------------------------------------


def displayed_methods(default: Iterable[str], masterdata: Mapping[str, bool],
                      configured: Iterable[str] | None) -> frozenset[str]:
    """R4: the methods shown in Mobile for a channel.

    The channel's own configured list wins; otherwise the global default,
    changed method by method by what masterdata exports said.
    """
    if configured is not None:
        return frozenset(configured)
    shown = set(default)
    for method, display in masterdata.items():
        (shown.add if display else shown.discard)(method)
    return frozenset(shown)


def _contacts(communications: tuple[Communication, ...], displayed: frozenset[str]
              ) -> tuple[tuple[Contact, ...], list[str], int]:
    """R4 filter and R3 drop: (contacts kept, methods filtered, preferred flags dropped)."""
    kept = []
    filtered = []
    preferred = 0
    for c in communications:
        if c.method in displayed:
            kept.append(Contact(c.kind, c.value))
            preferred += c.preferred
        else:
            filtered.append(c.method)
    return tuple(kept), filtered, preferred


# --- R1: occupations become positions --------------------------------------


def apply_occupation(occupation: Occupation, known: OccupationState | None
                     ) -> tuple[PositionUpsert | PositionDelete | None, Decision, OccupationState]:
    """R1: live occupations are upserted; one marked for deletion is deleted
    in Mobile only when an earlier package sent it, and only once."""
    code = occupation.code
    if not occupation.marked_for_deletion:
        return (PositionUpsert(code, occupation.description),
                Decision(None, "occupation", "upsert", "sent as position", code=code),
                OccupationState(False, True))
    if known is not None and known.sent:
        return (PositionDelete(code),
                Decision("R1", "occupation", "delete",
                         "marked for deletion; an earlier package sent it, so Mobile deletes the position",
                         code=code),
                OccupationState(True, False))
    return (None,
            Decision("R1", "occupation", "not sent", "marked for deletion; never sent, nothing to delete",
                     code=code),
            OccupationState(True, False))


def apply_method(method: CommunicationMethod) -> Decision:
    """R4: a masterdata export sets whether a method is displayed, from now on."""
    shown = "displayed" if method.display_in_mobile else "not displayed"
    return Decision("R4", "communication method", "setting", f"{shown} in Mobile from now on",
                    code=method.code)


# --- R2-R8: customers and their contact persons -------------------------------


def apply_customer(customer: Customer, sent_before: frozenset[str] | set[str],
                   rules: CustomerRules) -> CustomerOutcome:
    """R2-R8 for one customer.

    ``sent_before`` holds the partner numbers of this customer that an
    earlier package sent to Mobile and that have not been deleted since.
    """
    number = customer.number
    if not customer.active:
        return withdraw(number, "inactive")

    decisions: list[Decision] = [Decision(None, "customer", "upsert", "sent", customer=number)]
    contacts, filtered, preferred = _contacts(customer.communications, rules.displayed_methods)
    if filtered:
        decisions.append(Decision("R4", "customer", "dropped",
                                  f"communication not displayed in Mobile ({', '.join(filtered)})",
                                  customer=number, count=len(filtered)))
    if preferred:
        decisions.append(Decision("R3", "customer", "dropped", "preferred flag not supported in Mobile",
                                  customer=number, count=preferred))

    persons: list[PersonUpsert | PersonDelete] = []
    outcome = CustomerOutcome(None, decisions)
    for person in customer.contact_persons:
        record = _apply_person(number, person, person.partner in sent_before, rules, outcome)
        if record is not None:
            persons.append(record)
    for partner in customer.removed_partners:
        persons.append(PersonDelete(partner))
        outcome.unsent.add(partner)
        decisions.append(Decision("R5", "contact person", "delete", "removed from the customer in CEE",
                                  customer=number, partner=partner))
    outcome.record = CustomerUpsert(number, customer.name, customer.tax_id, customer.address,
                                    contacts, tuple(persons))
    return outcome


def _apply_person(number: str, person: ContactPerson, was_sent: bool, rules: CustomerRules,
                  outcome: CustomerOutcome) -> PersonUpsert | PersonDelete | None:
    decisions = outcome.decisions
    partner = person.partner
    if rules.sales_classification not in person.classifications:
        if was_sent:
            outcome.unsent.add(partner)
            decisions.append(Decision("R2", "contact person", "delete",
                                      f"lost the {rules.sales_classification} classification; "
                                      "an earlier package sent it", customer=number, partner=partner))
            return PersonDelete(partner)
        decisions.append(Decision("R2", "contact person", "not sent",
                                  f"no {rules.sales_classification} classification",
                                  customer=number, partner=partner))
        return None

    position = person.occupation
    if position is not None and position not in rules.live_occupations:
        why = ("marked for deletion" if position in rules.known_occupations else "unknown occupation")
        decisions.append(Decision("R7", "contact person", "warning",
                                  f"sent without position {position} ({why})",
                                  customer=number, partner=partner, code=position))
        position = None
    contacts, filtered, preferred = _contacts(person.communications, rules.displayed_methods)
    preferred += person.preferred
    if filtered:
        decisions.append(Decision("R4", "contact person", "dropped",
                                  f"communication not displayed in Mobile ({', '.join(filtered)})",
                                  customer=number, partner=partner, count=len(filtered)))
    if preferred:
        decisions.append(Decision("R3", "contact person", "dropped", "preferred flag not supported in Mobile",
                                  customer=number, partner=partner, count=preferred))
    relation = person.assignment  # R6: employee -> employee, contact -> contact
    decisions.append(Decision(None if relation == "employee" else "R6", "contact person", "upsert",
                              f"sent as {relation}" + (f" with position {position}" if position else ""),
                              customer=number, partner=partner))
    outcome.sent.add(partner)
    return PersonUpsert(partner, relation, person.surname, person.first_name, position, contacts)


def withdraw(number: str, why: str) -> CustomerOutcome:
    """R8: a deleted or inactive customer is deleted in Mobile, always."""
    reason = "deleted or withdrawn from the sales channel in CEE" if why == "deleted" else "inactive in CEE"
    return CustomerOutcome(
        CustomerDelete(number),
        [Decision("R8", "customer", "delete", reason, customer=number)],
        unsend_all=True,
    )


def apply_deleted_customer(deleted: DeletedCustomer) -> CustomerOutcome:
    return withdraw(deleted.number, "deleted")
