"""Output records -> to-mobile XML text (``positions.xml``, ``customers.xml``).

Serialized by hand rather than through element trees: the writer is on the
hot path of every export, and the to-mobile format is small and fixed. The
namespace is declared once on the root. What comes out is checked against
the to-mobile XSD before a package is published.
"""

from __future__ import annotations

from exchange.records import (
    Address,
    Contact,
    CustomerDelete,
    CustomerUpsert,
    PersonUpsert,
    PositionDelete,
    PositionUpsert,
)
from exchange.xml.schemas import TO_MOBILE

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'

_ATTR = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                       "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"})


def text(value: str) -> str:
    """Escape character data (str.replace is much faster than translate here)."""
    if "&" in value:
        value = value.replace("&", "&amp;")
    if "<" in value:
        value = value.replace("<", "&lt;")
    if ">" in value:
        value = value.replace(">", "&gt;")
    return value


def attr(value: str) -> str:
    """Escape an attribute value. Codes, the only attributes we write from
    input, cannot hold special characters; this is the safety net."""
    return value.translate(_ATTR) if not value.isalnum() and _needs_escape(value) else value


def _needs_escape(value: str) -> bool:
    return any(c in value for c in '&<>"\t\n\r')


def positions_open() -> str:
    return f'{XML_DECLARATION}<Positions xmlns="{TO_MOBILE}">\n'


def positions_close() -> str:
    return "</Positions>\n"


def customers_open() -> str:
    return f'{XML_DECLARATION}<Customers xmlns="{TO_MOBILE}">\n'


def customers_close() -> str:
    return "</Customers>\n"


def position(record: PositionUpsert | PositionDelete) -> str:
    if isinstance(record, PositionDelete):
        return f'  <Position code="{attr(record.code)}" action="delete"/>\n'
    return (f'  <Position code="{attr(record.code)}" action="upsert">'
            f"<Description>{text(record.description)}</Description></Position>\n")


def address(a: Address) -> str:
    """An Address element (the same in to-mobile, from-mobile and cee-import)."""
    parts = ["<Address>"]
    if a.street is not None:
        parts.append(f"<Street>{text(a.street)}</Street>")
    if a.postal_code is not None:
        parts.append(f"<PostalCode>{text(a.postal_code)}</PostalCode>")
    parts.append(f"<City>{text(a.city)}</City><Country>{a.country}</Country></Address>")
    return "".join(parts)


def _contacts(contacts: tuple[Contact, ...]) -> str:
    return "".join([f'<Contact kind="{c.kind}">{text(c.value)}</Contact>' for c in contacts])


def _person(p) -> str:
    if not isinstance(p, PersonUpsert):
        return f'\n    <ContactPerson id="{attr(p.id)}" action="delete"/>'
    first = f"<FirstName>{text(p.first_name)}</FirstName>" if p.first_name is not None else ""
    position_ = f'<Position code="{attr(p.position)}"/>' if p.position is not None else ""
    return (f'\n    <ContactPerson id="{attr(p.id)}" action="upsert" relation="{p.relation}">'
            f"<Surname>{text(p.surname)}</Surname>{first}{position_}{_contacts(p.contacts)}</ContactPerson>")


def customer(record: CustomerUpsert | CustomerDelete) -> str:
    if isinstance(record, CustomerDelete):
        return f'  <Customer id="{attr(record.id)}" action="delete"/>\n'
    parts = [f'  <Customer id="{attr(record.id)}" action="upsert">\n    <Name>{text(record.name)}</Name>']
    if record.tax_id is not None:
        parts.append(f"<TaxId>{text(record.tax_id)}</TaxId>")
    if record.address is not None:
        parts.append(address(record.address))
    if record.contacts:
        parts.append(_contacts(record.contacts))
    for p in record.persons:
        parts.append(_person(p))
    parts.append("\n  </Customer>\n")
    return "".join(parts)
