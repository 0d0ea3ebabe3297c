"""CEE export elements -> records (the parsing edge of the outbound flow).

Called once per top-level record of an export, on the hot path, so it
walks each element's children once, creates no more lxml proxies than it
needs, and inlines what a function call per communication would cost.
"""

from __future__ import annotations

import re

from lxml import etree

from exchange.records import (
    Address,
    Communication,
    CommunicationMethod,
    ContactPerson,
    Customer,
    DeletedCustomer,
    Occupation,
)
from exchange.xml.schemas import CEE_EXPORT

_NS = f"{{{CEE_EXPORT}}}"
NAME = _NS + "Name"
TAX_ID = _NS + "TaxId"
ADDRESS = _NS + "Address"
COMMUNICATION = _NS + "Communication"
CONTACT_PERSON = _NS + "ContactPerson"
REMOVED = _NS + "RemovedContactPerson"
SURNAME = _NS + "Surname"
FIRST_NAME = _NS + "FirstName"
OCCUPATION = _NS + "Occupation"
CLASSIFICATION = _NS + "Classification"
STREET = _NS + "Street"
POSTAL_CODE = _NS + "PostalCode"
CITY = _NS + "City"
COUNTRY = _NS + "Country"
DESCRIPTION = _NS + "Description"
CUSTOMER = _NS + "Customer"
DELETED_CUSTOMER = _NS + "DeletedCustomer"
COMMUNICATION_METHOD = _NS + "CommunicationMethod"


_TRUE = ("true", "1")


_XML_SPACE = re.compile(r"[ \t\n\r]+")


def token(text: str | None) -> str:
    """xs:token's value: XML whitespace (space, tab, CR, LF) collapsed, as the
    schema compared it. Other spaces (no-break, ideographic) are content."""
    if not text:
        return ""
    if text.isprintable() and "  " not in text and text[0] != " " and text[-1] != " ":
        return text  # the common case: nothing to collapse (isprintable is False for tab, CR, LF)
    return _XML_SPACE.sub(" ", text).strip(" ")


def boolean(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.strip() in _TRUE


def read_address(el: etree._Element, street_tag: str, postal_code_tag: str, city_tag: str,
                 country_tag: str) -> Address:
    """An ``Address`` element as a record; the same in every format but for the namespace of its tags."""
    street = postal = city = country = None
    for child in el:
        tag = child.tag
        if tag == street_tag:
            street = token(child.text)
        elif tag == postal_code_tag:
            postal = token(child.text)
        elif tag == city_tag:
            city = token(child.text)
        elif tag == country_tag:
            country = child.text
    return Address(street, postal, city, country)


def contact_person(el: etree._Element) -> ContactPerson:
    surname = first = occupation = None
    classifications = []
    communications = []
    for child in el:
        tag = child.tag
        if tag == COMMUNICATION:
            get = child.get
            text = child.text
            preferred = get("preferred")
            communications.append(Communication(
                get("kind"), get("method"), token(text), preferred is not None and preferred.strip() in _TRUE))
        elif tag == CLASSIFICATION:
            classifications.append(child.text)
        elif tag == SURNAME:
            surname = token(child.text)
        elif tag == FIRST_NAME:
            first = token(child.text)
        elif tag == OCCUPATION:
            occupation = child.text
    get = el.get
    preferred = get("preferred")
    return ContactPerson(get("partner"), surname, first, occupation, tuple(classifications),
                         tuple(communications), get("assignment") or "employee",
                         preferred is not None and preferred.strip() in _TRUE)


def customer(el: etree._Element) -> Customer:
    """A ``Customer`` element as a record (the hot path of every customer export)."""
    name = tax_id = address = None
    communications = []
    persons = []
    removed = []
    for child in el:
        tag = child.tag
        if tag == CONTACT_PERSON:
            persons.append(contact_person(child))
        elif tag == COMMUNICATION:
            get = child.get
            text = child.text
            preferred = get("preferred")
            communications.append(Communication(
                get("kind"), get("method"), token(text), preferred is not None and preferred.strip() in _TRUE))
        elif tag == NAME:
            name = token(child.text)
        elif tag == TAX_ID:
            tax_id = child.text
        elif tag == ADDRESS:
            address = read_address(child, STREET, POSTAL_CODE, CITY, COUNTRY)
        elif tag == REMOVED:
            removed.append(child.get("partner"))
    active = el.get("active")
    return Customer(el.get("number"), name, active is None or active.strip() in _TRUE, tax_id, address,
                    tuple(communications), tuple(persons), tuple(removed))


def deleted_customer(el: etree._Element) -> DeletedCustomer:
    return DeletedCustomer(el.get("number"))


def occupation(el: etree._Element) -> Occupation:
    description = ""
    for child in el:
        if child.tag == DESCRIPTION:
            description = token(child.text)
    return Occupation(el.get("code"), description, boolean(el.get("markedForDeletion"), False))


def communication_method(el: etree._Element) -> CommunicationMethod:
    return CommunicationMethod(el.get("code"), boolean(el.get("displayInMobile"), False))
