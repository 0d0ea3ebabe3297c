"""The import document is checked against cee-import.xsd section by section, as it is written."""

from __future__ import annotations

from exchange.import_pass import SectionChecks as _SectionChecks
from exchange.xml import cee_import

HEADER = cee_import.document_open("CEEIMP-MOBILE-PL-00000001", "MOBILE-PL", "2026-11-28T01:00:00Z",
                                  "RET.zip", "0" * 64).encode()
TAIL = cee_import.document_close().encode()
ORG_ID = b"mobile:00000000-0000-4000-8000-000000000001"
PERSON_ID = b"mobile:00000000-0000-4000-8000-000000000002"
ORGANIZATION = (b'  <Organization externalId="' + ORG_ID + b'"><Name>Firma</Name>'
                b'<SalesChannelAssignment salesChannel="MOBILE-PL"/></Organization>\n')
PERSON = (b'  <Person externalId="' + PERSON_ID + b'"><Surname>Alfa</Surname><Classification>Sales</Classification>'
          b'<EmployeeOfNew externalId="' + ORG_ID + b'"/></Person>\n')
REMOVAL = b'  <ContactPersonRemoval customer="10001" partner="50002"/>\n'


def _check(organizations: bytes, persons: bytes, removals: bytes) -> str | None:
    checks = _SectionChecks()
    checks.feed_all(HEADER)
    checks.feed(checks.ORGANIZATIONS, organizations)
    checks.feed(checks.PERSONS, persons)
    checks.feed(checks.REMOVALS, removals)
    checks.feed_all(TAIL)
    return checks.close()


def test_valid_sections_pass():
    assert _check(ORGANIZATION, PERSON, REMOVAL) is None
    assert _check(b"", b"", b"") is None


def test_an_invalid_element_in_any_section_is_reported():
    assert "ContactPersonRemoval" in _check(ORGANIZATION, PERSON, REMOVAL.replace(b' partner="50002"', b""))
    assert "Expected is ( {urn:cee-mobile:cee-import:v1}Surname )" in \
        _check(ORGANIZATION, PERSON.replace(b"<Surname>Alfa</Surname>", b""), REMOVAL)


def test_an_element_in_the_wrong_section_is_reported():
    # a person among the removals would stand after them in the document: out of order
    assert _check(ORGANIZATION, b"", REMOVAL + PERSON) is not None
