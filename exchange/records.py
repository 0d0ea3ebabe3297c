"""The small typed records that flow through the exchange.

Parsers turn documents into these, the rules (pure functions in
:mod:`exchange.rules`) turn them into output records and
:class:`Decision` values, and writers serialize the output records. The
decision log, the run summary and ``exchange explain`` are all views of the
same decisions.

Records are never changed once made. They are not ``frozen`` dataclasses
only because a frozen dataclass takes three times as long to construct
(``object.__setattr__`` per field), and a big export makes millions of
them; ``unsafe_hash`` keeps them usable in sets like frozen ones.
"""

from __future__ import annotations

from dataclasses import dataclass

# --- CEE exports (input) --------------------------------------------------


@dataclass(slots=True, unsafe_hash=True)
class Communication:
    """A communication connection: phone, e-mail ... with its CEE method."""

    kind: str
    method: str
    value: str
    preferred: bool = False


@dataclass(slots=True, unsafe_hash=True)
class Address:
    street: str | None
    postal_code: str | None
    city: str
    country: str


@dataclass(slots=True, unsafe_hash=True)
class ContactPerson:
    """A partner (person) on a customer's Contact person tab."""

    partner: str
    surname: str
    first_name: str | None = None
    occupation: str | None = None
    classifications: tuple[str, ...] = ()
    communications: tuple[Communication, ...] = ()
    assignment: str = "employee"  # or "contact" (an existing partner, Default extension)
    preferred: bool = False


@dataclass(slots=True, unsafe_hash=True)
class Customer:
    number: str
    name: str
    active: bool = True
    tax_id: str | None = None
    address: Address | None = None
    communications: tuple[Communication, ...] = ()
    contact_persons: tuple[ContactPerson, ...] = ()
    removed_partners: tuple[str, ...] = ()  # RemovedContactPerson


@dataclass(slots=True, unsafe_hash=True)
class DeletedCustomer:
    number: str


@dataclass(slots=True, unsafe_hash=True)
class Occupation:
    """CEE occupation masterdata; becomes a Mobile position."""

    code: str
    description: str
    marked_for_deletion: bool = False


@dataclass(slots=True, unsafe_hash=True)
class CommunicationMethod:
    code: str
    display_in_mobile: bool


# --- Mobile packages (output) ---------------------------------------------


@dataclass(slots=True, unsafe_hash=True)
class Contact:
    kind: str
    value: str


@dataclass(slots=True, unsafe_hash=True)
class PersonUpsert:
    id: str
    relation: str
    surname: str
    first_name: str | None
    position: str | None
    contacts: tuple[Contact, ...]


@dataclass(slots=True, unsafe_hash=True)
class PersonDelete:
    id: str


@dataclass(slots=True, unsafe_hash=True)
class CustomerUpsert:
    id: str
    name: str
    tax_id: str | None
    address: Address | None
    contacts: tuple[Contact, ...]
    persons: tuple[PersonUpsert | PersonDelete, ...]


@dataclass(slots=True, unsafe_hash=True)
class CustomerDelete:
    id: str


@dataclass(slots=True, unsafe_hash=True)
class PositionUpsert:
    code: str
    description: str


@dataclass(slots=True, unsafe_hash=True)
class PositionDelete:
    code: str


# --- return packages from Mobile (input) ------------------------------------


@dataclass(slots=True, unsafe_hash=True)
class ReturnedPerson:
    """A contact person added on a device."""

    mobile_id: str
    surname: str
    first_name: str | None
    position: str | None
    contacts: tuple[Contact, ...]


@dataclass(slots=True, unsafe_hash=True)
class NewCustomer:
    """A customer added on a device, with its contact persons."""

    mobile_id: str
    name: str
    tax_id: str | None
    address: Address | None
    contacts: tuple[Contact, ...]
    persons: tuple[ReturnedPerson, ...]


@dataclass(slots=True, unsafe_hash=True)
class ReturnedCustomer:
    """An existing CEE customer with contact persons added or deleted on a device."""

    id: str
    persons: tuple[ReturnedPerson, ...]
    deleted_partners: tuple[str, ...]


# --- CEE import documents (output) -------------------------------------------


@dataclass(slots=True, unsafe_hash=True)
class Organization:
    external_id: str
    name: str
    tax_id: str | None
    address: Address | None
    communications: tuple[Communication, ...]
    sales_channel: str


@dataclass(slots=True, unsafe_hash=True)
class Person:
    external_id: str
    surname: str
    first_name: str | None
    occupation: str | None
    classifications: tuple[str, ...]
    communications: tuple[Communication, ...]
    employee_of: str | None = None  # an existing CEE customer number
    employee_of_new: str | None = None  # the externalId of an Organization of this or an earlier import


@dataclass(slots=True, unsafe_hash=True)
class ContactPersonRemoval:
    customer: str
    partner: str


# --- what the rules decided -------------------------------------------------


@dataclass(slots=True, unsafe_hash=True)
class Decision:
    """One thing a rule did to one record, for reports and ``explain``.

    ``rule`` is ``R1`` ... ``R14`` or ``None`` for a plain transfer;
    ``customer`` and ``partner`` hold CEE numbers or, for records that come
    from Mobile, mobileIds;
    ``outcome`` is what happened (``upsert``, ``delete``, ``not sent``,
    ``dropped``, ``warning``, ``setting``); ``count`` says how many items
    (flags, connections) a summary decision stands for.
    """

    rule: str | None
    subject: str  # "customer", "contact person", "occupation", "communication method"
    outcome: str
    reason: str
    customer: str | None = None
    partner: str | None = None
    code: str | None = None
    count: int = 1
