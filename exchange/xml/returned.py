"""Return-package elements (from-mobile ``customers.xml``) -> records."""

from __future__ import annotations

from lxml import etree

from exchange.records import (
    Contact,
    NewCustomer,
    ReturnedCustomer,
    ReturnedPerson,
)
from exchange.xml.cee import read_address, token
from exchange.xml.schemas import FROM_MOBILE

_NS = f"{{{FROM_MOBILE}}}"
NEW_CUSTOMER = _NS + "NewCustomer"
CUSTOMER = _NS + "Customer"
_CONTACT_PERSON = _NS + "ContactPerson"
_DELETED = _NS + "DeletedContactPerson"
_CONTACT = _NS + "Contact"
_NAME = _NS + "Name"
_TAX_ID = _NS + "TaxId"
_ADDRESS = _NS + "Address"
_SURNAME = _NS + "Surname"
_FIRST_NAME = _NS + "FirstName"
_POSITION = _NS + "Position"
_STREET = _NS + "Street"
_POSTAL_CODE = _NS + "PostalCode"
_CITY = _NS + "City"
_COUNTRY = _NS + "Country"


def person(el: etree._Element) -> ReturnedPerson:
    surname = first = position = None
    contacts = []
    for child in el:
        tag = child.tag
        if tag == _CONTACT:  # inlined: a function call per contact costs as much as the contact
            contacts.append(Contact(child.get("kind"), token(child.text)))
        elif tag == _SURNAME:
            surname = token(child.text)
        elif tag == _FIRST_NAME:
            first = token(child.text)
        elif tag == _POSITION:
            position = child.get("code")
    return ReturnedPerson(el.get("mobileId"), surname, first, position, tuple(contacts))


def new_customer(el: etree._Element) -> NewCustomer:
    name = tax_id = address = None
    contacts = []
    persons = []
    for child in el:
        tag = child.tag
        if tag == _CONTACT_PERSON:
            persons.append(person(child))
        elif tag == _CONTACT:
            contacts.append(Contact(child.get("kind"), token(child.text)))
        elif tag == _NAME:
            name = token(child.text)
        elif tag == _TAX_ID:
            tax_id = child.text
        elif tag == _ADDRESS:
            address = read_address(child, _STREET, _POSTAL_CODE, _CITY, _COUNTRY)
    return NewCustomer(el.get("mobileId"), name, tax_id, address, tuple(contacts), tuple(persons))


def returned_customer(el: etree._Element) -> ReturnedCustomer:
    persons = []
    deleted = []
    for child in el:
        tag = child.tag
        if tag == _CONTACT_PERSON:
            persons.append(person(child))
        elif tag == _DELETED:
            deleted.append(child.get("id"))
    return ReturnedCustomer(el.get("id"), tuple(persons), tuple(deleted))
