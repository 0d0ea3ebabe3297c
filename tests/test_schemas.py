"""The XSDs and the validator against the contract, docs/FORMATS.md.

* Every example in FORMATS.md (and ``examples/*.xml``) is valid, for
  ``exchange.validation.validate_file`` and for the full XSD (with its
  ``xs:unique`` constraints) alike.
* At least one negative case per constraint of every schema. Each case takes
  a valid document as text and changes one small thing, so the line of the
  broken thing is known; it asserts that the file is invalid, that exactly one
  error is reported, on exactly that line, at that element path, with a
  message that names the element (and the attribute, where one is at fault).
  Unless the constraint depends on ``action`` (checked in code, beyond XSD
  1.0), the full XSD must reject the document too.
* ``exchange validate`` prints ``FILE:LINE:COLUMN: message (at /path)`` and a
  verdict line per file, exits 0/1/2, and caps the list at 1,000 errors.

Which line an error belongs to: the line holding the start tag of the element
the message names, or holding the attribute the message names. Errors about an
element's content that can only be known at its end ("Missing child
element(s)") are reported where the content ends, at the end tag: that is
where the missing child belongs, and the column points there.

A case can carry ``bug=...``: it is then marked ``xfail(strict=True)``,
asserting the correct behaviour of a known defect until it is fixed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from exchange.cli import cli
from exchange.validation import validate_file
from exchange.xml import safe
from exchange.xml.report import readable
from exchange.xml.schemas import CEE_EXPORT, XSD_DIR, schema

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

# ---------------------------------------------------------------------------
# Base documents
# ---------------------------------------------------------------------------

# FORMATS.md shows no Positions document; this one follows its prose
# ("an upsert has child Description (Text), a delete is empty").
POSITIONS = """\
<?xml version="1.0" encoding="UTF-8"?>
<Positions xmlns="urn:cee-mobile:to-mobile:v1">
  <Position code="SALES_MGR" action="upsert"><Description>Sales manager</Description></Position>
  <Position code="BUYER" action="upsert"><Description>Buyer</Description></Position>
  <Position code="OLD_POS" action="delete"/>
</Positions>
"""

#: example file in examples/ -> (root element, number of top-level records, XSD)
EXAMPLE_FILES = {
    "masterdata_20261127.xml": ("MasterdataExport", 5, "cee-export.xsd"),
    "customers_20261127.xml": ("CustomerExport", 2, "cee-export.xsd"),
    "manifest.xml": ("Manifest", 2, "manifest.xsd"),
    "to-mobile_customers.xml": ("Customers", 2, "to-mobile.xsd"),
    "from-mobile_customers.xml": ("ReturnedCustomers", 2, "from-mobile.xsd"),
    "CEEIMP_MOBILE-PL_00000007.xml": ("CeeImport", 4, "cee-import.xsd"),
}


def _example(name: str) -> str:
    return (EXAMPLES / name).read_text(encoding="utf-8")


def _one_line(text: str) -> str:
    """The same document written on a single line (as many writers do)."""
    return re.sub(r"\n\s*", " ", text).strip() + "\n"


#: base document key -> (text, XSD)
DOCS: dict[str, tuple[str, str]] = {
    "masterdata": (_example("masterdata_20261127.xml"), "cee-export.xsd"),
    "customers": (_example("customers_20261127.xml"), "cee-export.xsd"),
    "positions": (POSITIONS, "to-mobile.xsd"),
    "to-mobile": (_example("to-mobile_customers.xml"), "to-mobile.xsd"),
    "from-mobile": (_example("from-mobile_customers.xml"), "from-mobile.xsd"),
    "manifest": (_example("manifest.xml"), "manifest.xsd"),
    "cee-import": (_example("CEEIMP_MOBILE-PL_00000007.xml"), "cee-import.xsd"),
    "customers-one-line": (_one_line(_example("customers_20261127.xml")), "cee-export.xsd"),
    "customers-crlf": (_example("customers_20261127.xml").replace("\n", "\r\n"), "cee-export.xsd"),
    "customers-cr": (_example("customers_20261127.xml").replace("\n", "\r"), "cee-export.xsd"),
}


def edit(text: str, edits: tuple[tuple[str, str], ...]) -> str:
    """Apply small textual changes; each ``old`` must occur exactly once."""
    for old, new in edits:
        assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in the base document"
        text = text.replace(old, new)
    return text


def write(tmp_path: Path, text: str, name: str = "doc.xml") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def full_schema_errors(xsd: str, text: str) -> list[str]:
    """Errors of the full XSD (xs:unique included), validating a parsed tree."""
    tree = etree.fromstring(text.encode("utf-8"), safe.parser())
    xml_schema = schema(xsd)  # the full schema: streaming=False
    if xml_schema.validate(tree):
        return []
    return [readable(entry.message) for entry in xml_schema.error_log]


# ---------------------------------------------------------------------------
# Message fragments (libxml2's words, namespace URIs removed)
# ---------------------------------------------------------------------------


def E(element: str) -> str:
    """How a message about an element starts."""
    return f"Element '{element}': "


def A(element: str, attribute: str) -> str:
    """How a message about an attribute starts."""
    return f"Element '{element}', attribute '{attribute}': "


def REQUIRED(attribute: str) -> str:
    return f"The attribute '{attribute}' is required but missing."


def NOT_ALLOWED(attribute: str) -> str:
    return f"The attribute '{attribute}' is not allowed."


def PATTERN(value: str) -> str:
    return f"[facet 'pattern'] The value '{value}' is not accepted by the pattern"


def ENUM(value: str, allowed: str) -> str:
    return f"[facet 'enumeration'] The value '{value}' is not an element of the set {{{allowed}}}."


def TOO_LONG(length: int, maximum: int) -> str:
    return f"has a length of '{length}'; this exceeds the allowed maximum length of '{maximum}'."


EMPTY_VALUE = "[facet 'minLength'] The value has a length of '0'; this underruns the allowed minimum length of '1'."


def NOT_OF_TYPE(value: str, type_name: str) -> str:
    return f"'{value}' is not a valid value of the atomic type '{type_name}'."


def BOOLEAN(value: str) -> str:
    return NOT_OF_TYPE(value, "xs:boolean")


UNEXPECTED = "This element is not expected."


def EXPECTED(*names: str) -> str:
    if len(names) == 1:
        return f"{UNEXPECTED} Expected is ( {names[0]} )."
    return f"{UNEXPECTED} Expected is one of ( {', '.join(names)} )."


def MISSING_CHILD(*names: str) -> str:
    if len(names) == 1:
        return f"Missing child element(s). Expected is ( {names[0]} )."
    return f"Missing child element(s). Expected is one of ( {', '.join(names)} )."


NO_CHARACTERS = "Character content is not allowed, because the content type is empty."
NO_ELEMENTS = "Element content is not allowed, because the content type is empty."

KINDS = "'phone', 'mobile', 'fax', 'email', 'url'"
ACTIONS = "'upsert', 'delete'"
SHA = "37834eafadd68549e2877d60fe43560870ea3a5861a71f002a5180b18221e7b9"
SRC_SHA = "37892d47678ce463499c00d0ae9bcb00594a13021bade0c9ebd9a1827a2a7574"
IMP_SHA = "d21d4bb0c7f998f041137f385174b37a53228af118af18c94606257921301796"



# ---------------------------------------------------------------------------
# Negative cases
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Bad:
    id: str
    doc: str
    edits: tuple[tuple[str, str], ...]
    line: int
    names: str  # how the message starts: the element, and the attribute at fault
    says: str  # what the message says is wrong (a part of it)
    path: str | None
    in_xsd: bool = True  # False: depends on `action`, checked in code only
    bug: str | None = None

    @property
    def text(self) -> str:
        return edit(DOCS[self.doc][0], self.edits)

    @property
    def xsd(self) -> str:
        return DOCS[self.doc][1]

    @property
    def element(self) -> str:
        return re.search(r"'([^']+)'", self.names).group(1)


def bad(id, doc, old, new, line, names, says, path, **kw) -> Bad:
    edits = tuple(zip(old, new)) if isinstance(old, tuple) else ((old, new),)
    return Bad(f"{doc}: {id}", doc, edits, line, names, says, path, **kw)


MD = "/MasterdataExport"
CU = "/CustomerExport/Customer[1]"
CP1, CP2, CP3 = (f"{CU}/ContactPerson[{i}]" for i in (1, 2, 3))
TM = "/Customers/Customer[1]"
NC = "/ReturnedCustomers/NewCustomer[1]"
RC = "/ReturnedCustomers/Customer[1]"
ORG = "/CeeImport/Organization[1]"
P1, P2 = "/CeeImport/Person[1]", "/CeeImport/Person[2]"
LONG_NAME = "x" * 81
# 81 characters once whitespace is collapsed, 89 before.
LONG_NAME_SPACED = "  " + "a" * 40 + " \t  " + "b" * 40 + "  "

BAD: list[Bad] = [
    # --- cee-export: MasterdataExport --------------------------------------
    bad("root@changedSince not in enumeration", "masterdata", 'changedSince="anytime"', 'changedSince="always"',
        3, A("MasterdataExport", "changedSince"), ENUM("always", "'anytime', 'last-transfer'"), MD),
    bad("root@createdAt without zone", "masterdata",
        'createdAt="2026-11-27T22:00:05+01:00"', 'createdAt="2026-11-27T22:00:05"',
        3, A("MasterdataExport", "createdAt"), PATTERN("2026-11-27T22:00:05"), MD),
    bad("root@salesChannel not a Code", "masterdata", 'salesChannel="MOBILE-PL"', 'salesChannel="MOBILE PL"',
        3, A("MasterdataExport", "salesChannel"), PATTERN("MOBILE PL"), MD),
    bad("root unknown attribute", "masterdata", 'changedSince="anytime">', 'changedSince="anytime" version="2">',
        3, A("MasterdataExport", "version"), NOT_ALLOWED("version"), MD),
    bad("root@exportId not an Id (line 2 of the tag)", "masterdata",
        'exportId="MD-20261127-01"', 'exportId="MD 20261127"',
        2, A("MasterdataExport", "exportId"), PATTERN("MD 20261127"), MD),
    bad("root@exportId missing", "masterdata", ' exportId="MD-20261127-01"', "",
        2, E("MasterdataExport"), REQUIRED("exportId"), MD),
    bad("root@changedSince missing", "masterdata", ' changedSince="anytime"', "",
        2, E("MasterdataExport"), REQUIRED("changedSince"), MD),
    bad("Occupation@code missing", "masterdata", '<Occupation code="BUYER">', "<Occupation>",
        5, E("Occupation"), REQUIRED("code"), f"{MD}/Occupation[2]"),
    bad("Occupation@code starts with _", "masterdata", 'code="BUYER"', 'code="_BUYER"',
        5, A("Occupation", "code"), PATTERN("_BUYER"), f"{MD}/Occupation[2]"),
    bad("Occupation@code 33 characters", "masterdata", 'code="BUYER"', f'code="{"B" * 33}"',
        5, A("Occupation", "code"), PATTERN("B" * 33), f"{MD}/Occupation[2]"),
    bad("Occupation@markedForDeletion not boolean", "masterdata", 'markedForDeletion="true"', 'markedForDeletion="yes"',
        6, A("Occupation", "markedForDeletion"), BOOLEAN("yes"), f"{MD}/Occupation[3]"),
    bad("Occupation unknown attribute", "masterdata", '<Occupation code="BUYER">', '<Occupation code="BUYER" sortOrder="1">',
        5, A("Occupation", "sortOrder"), NOT_ALLOWED("sortOrder"), f"{MD}/Occupation[2]"),
    bad("Occupation without Description", "masterdata",
        '<Occupation code="BUYER"><Description>Buyer</Description></Occupation>', '<Occupation code="BUYER"/>',
        5, E("Occupation"), MISSING_CHILD("Description"), f"{MD}/Occupation[2]"),
    bad("Description 81 characters", "masterdata", "<Description>Buyer</Description>", f"<Description>{LONG_NAME}</Description>",
        5, E("Description"), TOO_LONG(81, 80), f"{MD}/Occupation[2]/Description[1]"),
    bad("Description 81 characters after collapsing", "masterdata",
        "<Description>Buyer</Description>", f"<Description>{LONG_NAME_SPACED}</Description>",
        5, E("Description"), TOO_LONG(81, 80), f"{MD}/Occupation[2]/Description[1]"),
    bad("Description only whitespace", "masterdata", "<Description>Buyer</Description>", "<Description> \t </Description>",
        5, E("Description"), EMPTY_VALUE, f"{MD}/Occupation[2]/Description[1]"),
    bad("Occupation unknown child", "masterdata",
        "<Description>Buyer</Description>", "<Description>Buyer</Description><Label>Buyer</Label>",
        5, E("Label"), UNEXPECTED, f"{MD}/Occupation[2]/Label[1]"),
    bad("CommunicationMethod@displayInMobile missing", "masterdata", ' displayInMobile="false"', "",
        8, E("CommunicationMethod"), REQUIRED("displayInMobile"), f"{MD}/CommunicationMethod[2]"),
    bad("CommunicationMethod@displayInMobile not boolean", "masterdata", 'displayInMobile="true"', 'displayInMobile="Yes"',
        7, A("CommunicationMethod", "displayInMobile"), BOOLEAN("Yes"), f"{MD}/CommunicationMethod[1]"),
    bad("CommunicationMethod@code missing", "masterdata", '<CommunicationMethod code="Business"', "<CommunicationMethod",
        7, E("CommunicationMethod"), REQUIRED("code"), f"{MD}/CommunicationMethod[1]"),
    bad("CommunicationMethod not empty", "masterdata",
        '<CommunicationMethod code="Business" displayInMobile="true"/>',
        '<CommunicationMethod code="Business" displayInMobile="true">Business</CommunicationMethod>',
        7, E("CommunicationMethod"), NO_CHARACTERS, f"{MD}/CommunicationMethod[1]"),
    bad("Occupation after CommunicationMethod", "masterdata", "</MasterdataExport>",
        '  <Occupation code="LATE"><Description>Late</Description></Occupation>\n</MasterdataExport>',
        9, E("Occupation"), EXPECTED("CommunicationMethod"), f"{MD}/Occupation[4]"),
    bad("unknown element", "masterdata", "</MasterdataExport>", '  <Currency code="PLN"/>\n</MasterdataExport>',
        9, E("Currency"), EXPECTED("CommunicationMethod"), f"{MD}/Currency[1]"),
    bad("duplicate occupation code", "masterdata", 'code="BUYER"', 'code="SALES_MGR"',
        5, A("Occupation", "code"),
        "duplicate occupation code 'SALES_MGR'; ",
        f"{MD}/Occupation[2]"),
    bad("duplicate occupation code, not adjacent", "masterdata", 'code="OLD_POS"', 'code="SALES_MGR"',
        6, A("Occupation", "code"), "duplicate occupation code 'SALES_MGR'", f"{MD}/Occupation[3]"),
    bad("duplicate communication method code", "masterdata", 'code="Private"', 'code="Business"',
        8, A("CommunicationMethod", "code"),
        "duplicate communication method code 'Business'; a communication method code appears at most once "
        "in a masterdata export", f"{MD}/CommunicationMethod[2]"),

    # --- cee-export: CustomerExport ----------------------------------------
    bad("root@changedSince not in enumeration", "customers", 'changedSince="last-transfer"', 'changedSince="full"',
        3, A("CustomerExport", "changedSince"), ENUM("full", "'anytime', 'last-transfer'"), "/CustomerExport"),
    bad("root@createdAt without zone", "customers", 'createdAt="2026-11-27T22:01:00Z"', 'createdAt="2026-11-27T22:01:00"',
        3, A("CustomerExport", "createdAt"), PATTERN("2026-11-27T22:01:00"), "/CustomerExport"),
    bad("root@createdAt zone without colon", "customers",
        'createdAt="2026-11-27T22:01:00Z"', 'createdAt="2026-11-27T22:01:00+0100"',
        3, A("CustomerExport", "createdAt"), NOT_OF_TYPE("2026-11-27T22:01:00+0100", "Timestamp"), "/CustomerExport"),
    bad("root@createdAt no such day", "customers", 'createdAt="2026-11-27T22:01:00Z"', 'createdAt="2026-02-30T22:01:00Z"',
        3, A("CustomerExport", "createdAt"), NOT_OF_TYPE("2026-02-30T22:01:00Z", "Timestamp"), "/CustomerExport"),
    bad("root@createdAt date only", "customers", 'createdAt="2026-11-27T22:01:00Z"', 'createdAt="2026-11-27Z"',
        3, A("CustomerExport", "createdAt"), NOT_OF_TYPE("2026-11-27Z", "Timestamp"), "/CustomerExport"),
    bad("Customer@number missing", "customers", '<Customer number="10001">', "<Customer>",
        4, E("Customer"), REQUIRED("number"), CU),
    bad("Customer@number with a space", "customers", '<Customer number="10001">', '<Customer number="10001 A">',
        4, A("Customer", "number"), PATTERN("10001 A"), CU),
    bad("Customer@number 33 characters", "customers", '<Customer number="10001">', f'<Customer number="{"1" * 33}">',
        4, A("Customer", "number"), PATTERN("1" * 33), CU),
    bad("Customer@number empty", "customers", '<Customer number="10001">', '<Customer number="">',
        4, A("Customer", "number"), PATTERN(""), CU),
    bad("Customer@active not boolean", "customers", '<Customer number="10001">', '<Customer number="10001" active="no">',
        4, A("Customer", "active"), BOOLEAN("no"), CU),
    bad("Customer unknown attribute", "customers", '<Customer number="10001">', '<Customer number="10001" id="x">',
        4, A("Customer", "id"), NOT_ALLOWED("id"), CU),
    bad("Customer unknown attribute in another namespace", "customers", '<Customer number="10001">',
        '<Customer number="10001" xmlns:x="urn:example:extra" x:flag="1">',
        4, A("Customer", "flag"), NOT_ALLOWED("flag"), CU),
    bad("Customer attribute on the tag's last line", "customers", '<Customer number="10001">',
        '<Customer active="true"\n      number="10001 A">',
        5, A("Customer", "number"), PATTERN("10001 A"), CU),
    bad("Customer@number on the tag's first line", "customers", '<Customer number="10001">',
        '<Customer number="10001 A"\n      active="true">',
        4, A("Customer", "number"), PATTERN("10001 A"), CU),
    bad("Customer@number missing, tag over two lines", "customers", '<Customer number="10001">',
        '<Customer\n      active="true">',
        4, E("Customer"), REQUIRED("number"), CU),
    bad("Name missing", "customers", "    <Name>Acme Trading Sp. z o.o.</Name>\n", "",
        5, E("TaxId"), EXPECTED("Name"), f"{CU}/TaxId[1]"),
    bad("Name 81 characters", "customers", "<Name>Acme Trading Sp. z o.o.</Name>", f"<Name>{LONG_NAME}</Name>",
        5, E("Name"), TOO_LONG(81, 80), f"{CU}/Name[1]"),
    bad("Name 81 characters after collapsing", "customers",
        "<Name>Acme Trading Sp. z o.o.</Name>", f"<Name>{LONG_NAME_SPACED}</Name>",
        5, E("Name"), TOO_LONG(81, 80), f"{CU}/Name[1]"),
    bad("Name empty", "customers", "<Name>Acme Trading Sp. z o.o.</Name>", "<Name></Name>",
        5, E("Name"), EMPTY_VALUE, f"{CU}/Name[1]"),
    bad("Name only whitespace", "customers", "<Name>Acme Trading Sp. z o.o.</Name>", "<Name>   </Name>",
        5, E("Name"), EMPTY_VALUE, f"{CU}/Name[1]"),
    bad("Name twice", "customers", "<Name>Acme Trading Sp. z o.o.</Name>", "<Name>Acme</Name><Name>Acme Trading</Name>",
        5, E("Name"), EXPECTED("TaxId", "Address", "Communication", "ContactPerson", "RemovedContactPerson"),
        f"{CU}/Name[2]"),
    bad("TaxId not a Code", "customers", "<TaxId>PL5260001246</TaxId>", "<TaxId>PL 5260001246</TaxId>",
        6, E("TaxId"), PATTERN("PL 5260001246"), f"{CU}/TaxId[1]"),
    bad("TaxId before Name", "customers",
        "<Name>Acme Trading Sp. z o.o.</Name>\n    <TaxId>PL5260001246</TaxId>",
        "<TaxId>PL5260001246</TaxId>\n    <Name>Acme Trading Sp. z o.o.</Name>",
        5, E("TaxId"), EXPECTED("Name"), f"{CU}/TaxId[1]"),
    bad("Street 81 characters", "customers", "<Street>ul. Prosta 1</Street>", f"<Street>{LONG_NAME}</Street>",
        7, E("Street"), TOO_LONG(81, 80), f"{CU}/Address[1]/Street[1]"),
    bad("PostalCode 17 characters", "customers", "<PostalCode>00-001</PostalCode>", f"<PostalCode>{'1' * 17}</PostalCode>",
        7, E("PostalCode"), TOO_LONG(17, 16), f"{CU}/Address[1]/PostalCode[1]"),
    bad("PostalCode 17 characters after collapsing", "customers", "<PostalCode>00-001</PostalCode>",
        "<PostalCode>  12345   67890   12345  </PostalCode>",
        7, E("PostalCode"), TOO_LONG(17, 16), f"{CU}/Address[1]/PostalCode[1]"),
    bad("City missing", "customers", "<City>Warszawa</City>", "",
        8, E("Country"), EXPECTED("City"), f"{CU}/Address[1]/Country[1]"),
    bad("Country missing", "customers", "<Country>PL</Country>", "",
        7, E("Address"), MISSING_CHILD("Country"), f"{CU}/Address[1]"),
    bad("Country lower case", "customers", "<Country>PL</Country>", "<Country>pl</Country>",
        8, E("Country"), PATTERN("pl"), f"{CU}/Address[1]/Country[1]"),
    bad("Country three letters", "customers", "<Country>PL</Country>", "<Country>POL</Country>",
        8, E("Country"), PATTERN("POL"), f"{CU}/Address[1]/Country[1]"),
    bad("Street after City", "customers",
        "<Street>ul. Prosta 1</Street><PostalCode>00-001</PostalCode>\n      <City>Warszawa</City>",
        "<PostalCode>00-001</PostalCode>\n      <City>Warszawa</City><Street>ul. Prosta 1</Street>",
        8, E("Street"), EXPECTED("Country"), f"{CU}/Address[1]/Street[1]"),
    bad("Communication@kind not in enumeration", "customers", 'kind="phone"', 'kind="telex"',
        9, A("Communication", "kind"), ENUM("telex", KINDS), f"{CU}/Communication[1]"),
    bad("Communication@kind missing", "customers", 'kind="phone" ', "",
        9, E("Communication"), REQUIRED("kind"), f"{CU}/Communication[1]"),
    bad("Communication@method missing", "customers", 'kind="phone" method="Business"', 'kind="phone"',
        9, E("Communication"), REQUIRED("method"), f"{CU}/Communication[1]"),
    bad("Communication@method not a Code", "customers", 'method="Private">owner', 'method="Pri vate">owner',
        10, A("Communication", "method"), PATTERN("Pri vate"), f"{CU}/Communication[2]"),
    bad("Communication@preferred not boolean", "customers", 'method="Business" preferred="true"',
        'method="Business" preferred="TRUE"',
        9, A("Communication", "preferred"), BOOLEAN("TRUE"), f"{CU}/Communication[1]"),
    bad("Communication empty", "customers", ">owner@home.example<", "><",
        10, E("Communication"), EMPTY_VALUE, f"{CU}/Communication[2]"),
    bad("Communication 255 characters", "customers", ">owner@home.example<", f">{'a' * 255}<",
        10, E("Communication"), TOO_LONG(255, 254), f"{CU}/Communication[2]"),
    bad("Communication 255 characters after collapsing", "customers", ">owner@home.example<",
        f">  {'a' * 127} \t  {'b' * 127}  <",
        10, E("Communication"), TOO_LONG(255, 254), f"{CU}/Communication[2]"),
    bad("Communication after ContactPerson", "customers", '    <RemovedContactPerson partner="50007"/>',
        '    <Communication kind="fax" method="Business">+48 22 100 00 01</Communication>\n'
        '    <RemovedContactPerson partner="50007"/>',
        25, E("Communication"), EXPECTED("ContactPerson", "RemovedContactPerson"), f"{CU}/Communication[3]"),
    bad("ContactPerson@partner missing", "customers", '<ContactPerson partner="50001" preferred="true">',
        '<ContactPerson preferred="true">',
        11, E("ContactPerson"), REQUIRED("partner"), CP1),
    bad("ContactPerson@partner not a Code", "customers", '<ContactPerson partner="50002">', '<ContactPerson partner="50 002">',
        18, A("ContactPerson", "partner"), PATTERN("50 002"), CP2),
    bad("ContactPerson@assignment not in enumeration", "customers", 'assignment="contact"', 'assignment="colleague"',
        21, A("ContactPerson", "assignment"), ENUM("colleague", "'employee', 'contact'"), CP3),
    bad("ContactPerson@preferred not boolean", "customers", 'partner="50001" preferred="true"',
        'partner="50001" preferred="yes"',
        11, A("ContactPerson", "preferred"), BOOLEAN("yes"), CP1),
    bad("ContactPerson unknown attribute", "customers", '<ContactPerson partner="50002">',
        '<ContactPerson partner="50002" role="x">',
        18, A("ContactPerson", "role"), NOT_ALLOWED("role"), CP2),
    bad("ContactPerson without Surname", "customers", "<Surname>Nowak</Surname>", "",
        19, E("Classification"), EXPECTED("Surname"), f"{CP2}/Classification[1]"),
    bad("Surname 81 characters", "customers", "<Surname>Kowalska</Surname>", f"<Surname>{LONG_NAME}</Surname>",
        12, E("Surname"), TOO_LONG(81, 80), f"{CP1}/Surname[1]"),
    bad("FirstName misspelt", "customers", "<FirstName>Anna</FirstName>", "<Firstname>Anna</Firstname>",
        12, E("Firstname"), EXPECTED("FirstName", "Occupation", "Classification", "Communication"),
        f"{CP1}/Firstname[1]"),
    bad("ContactPerson Occupation not a Code", "customers", "<Occupation>BUYER</Occupation>",
        "<Occupation>BUYER MGR</Occupation>",
        22, E("Occupation"), PATTERN("BUYER MGR"), f"{CP3}/Occupation[1]"),
    bad("ContactPerson Occupation before Surname", "customers",
        "<Surname>Schmidt</Surname><Occupation>BUYER</Occupation>",
        "<Occupation>BUYER</Occupation><Surname>Schmidt</Surname>",
        22, E("Occupation"), EXPECTED("Surname"), f"{CP3}/Occupation[1]"),
    bad("Classification not a Code", "customers", "<Classification>Logistics</Classification>",
        "<Classification>Logi stics</Classification>",
        19, E("Classification"), PATTERN("Logi stics"), f"{CP2}/Classification[1]"),
    bad("Classification not a Code, last of two on a line", "customers",
        "<Classification>Purchasing</Classification>", "<Classification>Pur chasing</Classification>",
        14, E("Classification"), PATTERN("Pur chasing"), f"{CP1}/Classification[2]"),
    bad("Classification not a Code, first of two on a line", "customers",
        "<Classification>Sales</Classification><Classification>Purchasing</Classification>",
        "<Classification>Sa les</Classification><Classification>Purchasing</Classification>",
        14, E("Classification"), PATTERN("Sa les"), f"{CP1}/Classification[1]"),
    bad("Classification after Communication", "customers",
        '<Communication kind="mobile" method="Private">+48 600 000 001</Communication>',
        "<Classification>Late</Classification>",
        16, E("Classification"), EXPECTED("Communication"), f"{CP1}/Classification[3]"),
    bad("ContactPerson after RemovedContactPerson", "customers", '    <RemovedContactPerson partner="50007"/>\n',
        '    <RemovedContactPerson partner="50007"/>\n'
        '    <ContactPerson partner="50008"><Surname>Late</Surname></ContactPerson>\n',
        26, E("ContactPerson"), EXPECTED("RemovedContactPerson"), f"{CU}/ContactPerson[4]"),
    bad("RemovedContactPerson@partner missing", "customers", '<RemovedContactPerson partner="50007"/>',
        "<RemovedContactPerson/>",
        25, E("RemovedContactPerson"), REQUIRED("partner"), f"{CU}/RemovedContactPerson[1]"),
    bad("RemovedContactPerson with text", "customers", '<RemovedContactPerson partner="50007"/>',
        '<RemovedContactPerson partner="50007">50007</RemovedContactPerson>',
        25, E("RemovedContactPerson"), NO_CHARACTERS, f"{CU}/RemovedContactPerson[1]"),
    bad("RemovedContactPerson with a child", "customers", '<RemovedContactPerson partner="50007"/>',
        '<RemovedContactPerson partner="50007"><Surname>Old</Surname></RemovedContactPerson>',
        25, E("RemovedContactPerson"), NO_ELEMENTS, f"{CU}/RemovedContactPerson[1]"),
    bad("DeletedCustomer@number missing", "customers", '<DeletedCustomer number="10009"/>', "<DeletedCustomer/>",
        27, E("DeletedCustomer"), REQUIRED("number"), "/CustomerExport/DeletedCustomer[1]"),
    bad("DeletedCustomer@number not a Code", "customers", '<DeletedCustomer number="10009"/>',
        '<DeletedCustomer number="-10009"/>',
        27, A("DeletedCustomer", "number"), PATTERN("-10009"), "/CustomerExport/DeletedCustomer[1]"),
    bad("DeletedCustomer with a child", "customers", '<DeletedCustomer number="10009"/>',
        '<DeletedCustomer number="10009"><Name>Gone</Name></DeletedCustomer>',
        27, E("DeletedCustomer"), NO_ELEMENTS, "/CustomerExport/DeletedCustomer[1]"),
    bad("Customer after DeletedCustomer", "customers", "</CustomerExport>",
        '  <Customer number="10010"><Name>Late</Name></Customer>\n</CustomerExport>',
        28, E("Customer"), EXPECTED("DeletedCustomer"), "/CustomerExport/Customer[2]"),
    bad("unknown element", "customers", '  <DeletedCustomer number="10009"/>',
        '  <Supplier number="1"/>\n  <DeletedCustomer number="10009"/>',
        27, E("Supplier"), EXPECTED("Customer", "DeletedCustomer"), "/CustomerExport/Supplier[1]"),
    bad("duplicate customer number, Customer and DeletedCustomer", "customers",
        '<DeletedCustomer number="10009"/>', '<DeletedCustomer number="10001"/>',
        27, A("DeletedCustomer", "number"),
        "duplicate customer number '10001'; a customer number appears at most once in an export, "
        "over Customer and DeletedCustomer together", "/CustomerExport/DeletedCustomer[1]"),
    bad("duplicate customer number, two Customers", "customers", '  <DeletedCustomer number="10009"/>',
        '  <Customer number="10001"><Name>Acme again</Name></Customer>\n  <DeletedCustomer number="10009"/>',
        27, A("Customer", "number"), "duplicate customer number '10001'", "/CustomerExport/Customer[2]"),
    bad("duplicate customer number, two DeletedCustomers", "customers", '  <DeletedCustomer number="10009"/>',
        '  <DeletedCustomer number="10009"/>\n  <DeletedCustomer number="10009"/>',
        28, A("DeletedCustomer", "number"), "duplicate customer number '10009'", "/CustomerExport/DeletedCustomer[2]"),
    bad("duplicate customer number, DeletedCustomer tag over two lines", "customers",
        '<DeletedCustomer number="10009"/>', '<DeletedCustomer number="10001"\n    />',
        27, A("DeletedCustomer", "number"), "duplicate customer number '10001'", "/CustomerExport/DeletedCustomer[1]",
        ),
    bad("duplicate partner, two ContactPersons", "customers", '<ContactPerson partner="50002">',
        '<ContactPerson partner="50001">',
        18, A("ContactPerson", "partner"),
        "duplicate partner number '50001'; a partner number appears at most once per customer, "
        "over ContactPerson and RemovedContactPerson together", CP2),
    bad("duplicate partner, two ContactPersons not adjacent", "customers", 'partner="70010"', 'partner="50001"',
        21, A("ContactPerson", "partner"), "duplicate partner number '50001'", CP3),
    bad("duplicate partner, ContactPerson and RemovedContactPerson", "customers",
        '<RemovedContactPerson partner="50007"/>', '<RemovedContactPerson partner="50002"/>',
        25, A("RemovedContactPerson", "partner"), "duplicate partner number '50002'", f"{CU}/RemovedContactPerson[1]"),
    bad("duplicate partner, two RemovedContactPersons", "customers", '    <RemovedContactPerson partner="50007"/>',
        '    <RemovedContactPerson partner="50007"/>\n    <RemovedContactPerson partner="50007"/>',
        26, A("RemovedContactPerson", "partner"), "duplicate partner number '50007'", f"{CU}/RemovedContactPerson[2]"),

    # The same document written on one line, with CRLF and with CR line ends.
    bad("last ContactPerson@assignment not in enumeration", "customers-one-line",
        'assignment="contact"', 'assignment="colleague"',
        1, A("ContactPerson", "assignment"), ENUM("colleague", "'employee', 'contact'"), CP3),
    bad("duplicate customer number", "customers-one-line",
        '<DeletedCustomer number="10009"/>', '<DeletedCustomer number="10001"/>',
        1, A("DeletedCustomer", "number"), "duplicate customer number '10001'", "/CustomerExport/DeletedCustomer[1]"),
    bad("first ContactPerson@preferred not boolean", "customers-one-line",
        'partner="50001" preferred="true"', 'partner="50001" preferred="yes"',
        1, A("ContactPerson", "preferred"), BOOLEAN("yes"), CP1),
    bad("duplicate customer number", "customers-crlf",
        '<DeletedCustomer number="10009"/>', '<DeletedCustomer number="10001"/>',
        27, A("DeletedCustomer", "number"), "duplicate customer number '10001'", "/CustomerExport/DeletedCustomer[1]"),
    bad("Name 81 characters", "customers-crlf", "<Name>Acme Trading Sp. z o.o.</Name>", f"<Name>{LONG_NAME}</Name>",
        5, E("Name"), TOO_LONG(81, 80), f"{CU}/Name[1]"),
    bad("duplicate customer number", "customers-cr",
        '<DeletedCustomer number="10009"/>', '<DeletedCustomer number="10001"/>',
        27, A("DeletedCustomer", "number"), "duplicate customer number '10001'", "/CustomerExport/DeletedCustomer[1]",
        ),

    # Unknown roots: the schema is chosen by the root's namespace and local name.
    bad("root in another namespace version", "customers", "urn:cee-mobile:cee-export:v1", "urn:cee-mobile:cee-export:v2",
        2, "unknown root element 'CustomerExport' in namespace 'urn:cee-mobile:cee-export:v2'; ",
        "expected one of: ", None),
    bad("root without namespace", "customers", ' xmlns="urn:cee-mobile:cee-export:v1"', "",
        2, "unknown root element 'CustomerExport' in no namespace; ", "expected one of: ", None),
    bad("root with an unknown name", "masterdata", ("<MasterdataExport ", "</MasterdataExport>"),
        ("<Masterdata ", "</Masterdata>"),
        2, "unknown root element 'Masterdata' in namespace 'urn:cee-mobile:cee-export:v1'; ",
        "MasterdataExport (urn:cee-mobile:cee-export:v1)", None),

    # --- to-mobile: Positions ----------------------------------------------
    bad("Position@code missing", "positions", '<Position code="OLD_POS" action="delete"/>', '<Position action="delete"/>',
        5, E("Position"), REQUIRED("code"), "/Positions/Position[3]"),
    bad("Position@action missing", "positions", '<Position code="OLD_POS" action="delete"/>', '<Position code="OLD_POS"/>',
        5, E("Position"), REQUIRED("action"), "/Positions/Position[3]"),
    bad("Position@action not in enumeration", "positions", 'action="delete"', 'action="remove"',
        5, A("Position", "action"), ENUM("remove", ACTIONS), "/Positions/Position[3]"),
    bad("Position@code not a Code", "positions", 'code="BUYER"', 'code="BUY ER"',
        4, A("Position", "code"), PATTERN("BUY ER"), "/Positions/Position[2]"),
    bad("Position unknown attribute", "positions", '<Position code="OLD_POS" action="delete"/>',
        '<Position code="OLD_POS" action="delete" relation="employee"/>',
        5, A("Position", "relation"), NOT_ALLOWED("relation"), "/Positions/Position[3]"),
    bad("upsert without Description", "positions", "<Description>Buyer</Description>", "",
        4, E("Position"), "an upsert needs the child element 'Description'", "/Positions/Position[2]", in_xsd=False),
    bad("upsert empty element", "positions",
        '<Position code="BUYER" action="upsert"><Description>Buyer</Description></Position>',
        '<Position code="BUYER" action="upsert"/>',
        4, E("Position"), "an upsert needs the child element 'Description'", "/Positions/Position[2]", in_xsd=False),
    bad("delete with Description", "positions", '<Position code="OLD_POS" action="delete"/>',
        '<Position code="OLD_POS" action="delete"><Description>Former</Description></Position>',
        5, E("Position"), "a delete must be empty, found child element 'Description'", "/Positions/Position[3]",
        in_xsd=False),
    bad("Description 81 characters", "positions", "<Description>Buyer</Description>",
        f"<Description>{LONG_NAME}</Description>",
        4, E("Description"), TOO_LONG(81, 80), "/Positions/Position[2]/Description[1]"),
    bad("Description twice", "positions", "<Description>Buyer</Description>",
        "<Description>Buyer</Description><Description>Again</Description>",
        4, E("Description"), UNEXPECTED, "/Positions/Position[2]/Description[2]"),
    bad("unknown element", "positions", "</Positions>", '  <Occupation code="X"/>\n</Positions>',
        6, E("Occupation"), EXPECTED("Position"), "/Positions/Occupation[1]"),

    # --- to-mobile: Customers ----------------------------------------------
    bad("Customer@id missing", "to-mobile", '<Customer id="10001" action="upsert">', '<Customer action="upsert">',
        3, E("Customer"), REQUIRED("id"), TM),
    bad("Customer@action missing", "to-mobile", '<Customer id="10001" action="upsert">', '<Customer id="10001">',
        3, E("Customer"), REQUIRED("action"), TM),
    bad("Customer@action not in enumeration", "to-mobile", '<Customer id="10001" action="upsert">',
        '<Customer id="10001" action="insert">',
        3, A("Customer", "action"), ENUM("insert", ACTIONS), TM),
    bad("Customer@id not a Code", "to-mobile", '<Customer id="10009"', '<Customer id="10 009"',
        18, A("Customer", "id"), PATTERN("10 009"), "/Customers/Customer[2]"),
    bad("Customer unknown attribute", "to-mobile", '<Customer id="10009" action="delete"/>',
        '<Customer id="10009" action="delete" active="false"/>',
        18, A("Customer", "active"), NOT_ALLOWED("active"), "/Customers/Customer[2]"),
    bad("upsert Customer without Name", "to-mobile", "<Name>Acme Trading Sp. z o.o.</Name>", "",
        3, E("Customer"), "an upsert needs the child element 'Name'", TM, in_xsd=False),
    bad("upsert Customer empty", "to-mobile", '<Customer id="10009" action="delete"/>',
        '<Customer id="10009" action="upsert"/>',
        18, E("Customer"), "an upsert needs the child element 'Name'", "/Customers/Customer[2]", in_xsd=False),
    bad("delete Customer with Name", "to-mobile", '<Customer id="10009" action="delete"/>',
        '<Customer id="10009" action="delete"><Name>Gone</Name></Customer>',
        18, E("Customer"), "a delete must be empty, found child element 'Name'", "/Customers/Customer[2]",
        in_xsd=False),
    bad("delete Customer with a ContactPerson", "to-mobile", '<Customer id="10009" action="delete"/>',
        '<Customer id="10009" action="delete"><ContactPerson id="50009" action="delete"/></Customer>',
        18, E("Customer"), "a delete must be empty, found child element 'ContactPerson'", "/Customers/Customer[2]",
        in_xsd=False),
    bad("upsert ContactPerson without Surname", "to-mobile", "<Surname>Schmidt</Surname>", "",
        13, E("ContactPerson"), "an upsert needs the child element 'Surname'", f"{TM}/ContactPerson[2]",
        in_xsd=False),
    bad("upsert ContactPerson without relation", "to-mobile", ' relation="contact"', "",
        13, E("ContactPerson"), "an upsert needs the attribute 'relation'", f"{TM}/ContactPerson[2]",
        in_xsd=False),
    bad("delete ContactPerson with Surname", "to-mobile", '<ContactPerson id="50007" action="delete"/>',
        '<ContactPerson id="50007" action="delete"><Surname>Gone</Surname></ContactPerson>',
        16, E("ContactPerson"), "a delete must be empty, found child element 'Surname'", f"{TM}/ContactPerson[3]",
        in_xsd=False),
    bad("delete ContactPerson with relation", "to-mobile", '<ContactPerson id="50007" action="delete"/>',
        '<ContactPerson id="50007" action="delete" relation="employee"/>',
        16, E("ContactPerson"), "a delete must not carry the attribute 'relation'", f"{TM}/ContactPerson[3]",
        in_xsd=False),
    bad("ContactPerson@relation not in enumeration", "to-mobile", 'relation="contact"', 'relation="partner"',
        13, A("ContactPerson", "relation"), ENUM("partner", "'employee', 'contact'"), f"{TM}/ContactPerson[2]"),
    bad("ContactPerson@action not in enumeration", "to-mobile", '<ContactPerson id="50007" action="delete"/>',
        '<ContactPerson id="50007" action="remove"/>',
        16, A("ContactPerson", "action"), ENUM("remove", ACTIONS), f"{TM}/ContactPerson[3]"),
    bad("ContactPerson@id missing", "to-mobile", '<ContactPerson id="50007" action="delete"/>',
        '<ContactPerson action="delete"/>',
        16, E("ContactPerson"), REQUIRED("id"), f"{TM}/ContactPerson[3]"),
    bad("ContactPerson@action missing", "to-mobile", '<ContactPerson id="50007" action="delete"/>',
        '<ContactPerson id="50007"/>',
        16, E("ContactPerson"), REQUIRED("action"), f"{TM}/ContactPerson[3]"),
    bad("ContactPerson has no preferred", "to-mobile", 'relation="employee">', 'relation="employee" preferred="true">',
        8, A("ContactPerson", "preferred"), NOT_ALLOWED("preferred"), f"{TM}/ContactPerson[1]"),
    bad("Contact has no preferred", "to-mobile", '<Contact kind="phone">', '<Contact kind="phone" preferred="true">',
        7, A("Contact", "preferred"), NOT_ALLOWED("preferred"), f"{TM}/Contact[1]"),
    bad("Contact has no method", "to-mobile", '<Contact kind="phone">', '<Contact kind="phone" method="Business">',
        7, A("Contact", "method"), NOT_ALLOWED("method"), f"{TM}/Contact[1]"),
    bad("Communication instead of Contact", "to-mobile", '<Contact kind="phone">+48 22 100 00 00</Contact>',
        '<Communication kind="phone" method="Business">+48 22 100 00 00</Communication>',
        7, E("Communication"), EXPECTED("Contact", "ContactPerson"), f"{TM}/Communication[1]"),
    bad("Contact@kind missing", "to-mobile", '<Contact kind="phone">', "<Contact>",
        7, E("Contact"), REQUIRED("kind"), f"{TM}/Contact[1]"),
    bad("Contact@kind not in enumeration", "to-mobile", '<Contact kind="email">', '<Contact kind="pager">',
        11, A("Contact", "kind"), ENUM("pager", KINDS), f"{TM}/ContactPerson[1]/Contact[1]"),
    bad("Contact 255 characters", "to-mobile", ">anna.kowalska@acme.example<", f">{'a' * 255}<",
        11, E("Contact"), TOO_LONG(255, 254), f"{TM}/ContactPerson[1]/Contact[1]"),
    bad("Position@code missing", "to-mobile", '<Position code="SALES_MGR"/>', "<Position/>",
        10, E("Position"), REQUIRED("code"), f"{TM}/ContactPerson[1]/Position[1]"),
    bad("Position@code not a Code", "to-mobile", '<Position code="SALES_MGR"/>', '<Position code="SALES MGR"/>',
        10, A("Position", "code"), PATTERN("SALES MGR"), f"{TM}/ContactPerson[1]/Position[1]"),
    bad("Position with text", "to-mobile", '<Position code="BUYER"/>', '<Position code="BUYER">Buyer</Position>',
        14, E("Position"), NO_CHARACTERS, f"{TM}/ContactPerson[2]/Position[1]"),
    bad("Contact after ContactPerson", "to-mobile", '    <ContactPerson id="50007" action="delete"/>\n',
        '    <ContactPerson id="50007" action="delete"/>\n    <Contact kind="fax">+48 22 100 00 01</Contact>\n',
        17, E("Contact"), EXPECTED("ContactPerson"), f"{TM}/Contact[2]"),
    bad("Name after TaxId", "to-mobile", "<Name>Acme Trading Sp. z o.o.</Name><TaxId>PL5260001246</TaxId>",
        "<TaxId>PL5260001246</TaxId><Name>Acme Trading Sp. z o.o.</Name>",
        4, E("Name"), EXPECTED("Address", "Contact", "ContactPerson"), f"{TM}/Name[1]"),
    bad("Surname 81 characters", "to-mobile", "<Surname>Kowalska</Surname>", f"<Surname>{LONG_NAME}</Surname>",
        9, E("Surname"), TOO_LONG(81, 80), f"{TM}/ContactPerson[1]/Surname[1]"),
    bad("Country lower case", "to-mobile", "<Country>PL</Country>", "<Country>Pl</Country>",
        6, E("Country"), PATTERN("Pl"), f"{TM}/Address[1]/Country[1]"),
    bad("unknown element", "to-mobile", '  <Customer id="10009" action="delete"/>',
        '  <Position code="X" action="delete"/>\n  <Customer id="10009" action="delete"/>',
        18, E("Position"), EXPECTED("Customer"), "/Customers/Position[1]"),

    # --- from-mobile: ReturnedCustomers ------------------------------------
    bad("root@createdAt without zone", "from-mobile", 'createdAt="2026-11-27T16:45:00+01:00"',
        'createdAt="2026-11-27T16:45:00"',
        3, A("ReturnedCustomers", "createdAt"), PATTERN("2026-11-27T16:45:00"), "/ReturnedCustomers"),
    bad("root@representative not a Code", "from-mobile", 'representative="REP-03"', 'representative="REP 03"',
        3, A("ReturnedCustomers", "representative"), PATTERN("REP 03"), "/ReturnedCustomers"),
    bad("root unknown attribute", "from-mobile", '+01:00">\n  <NewCustomer', '+01:00" version="1">\n  <NewCustomer',
        3, A("ReturnedCustomers", "version"), NOT_ALLOWED("version"), "/ReturnedCustomers"),
    bad("root@device not a Code (line 2 of the tag)", "from-mobile", 'device="TAB-017"', 'device="TAB 017"',
        2, A("ReturnedCustomers", "device"), PATTERN("TAB 017"), "/ReturnedCustomers"),
    bad("root@device missing", "from-mobile", ' device="TAB-017"', "",
        2, E("ReturnedCustomers"), REQUIRED("device"), "/ReturnedCustomers"),
    bad("NewCustomer@mobileId upper case", "from-mobile", 'mobileId="3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b"',
        'mobileId="3F2B6C1E-8A4D-4E5F-9B1A-0C2D3E4F5A6B"',
        4, A("NewCustomer", "mobileId"), PATTERN("3F2B6C1E-8A4D-4E5F-9B1A-0C2D3E4F5A6B"), NC),
    bad("NewCustomer@mobileId without dashes", "from-mobile", 'mobileId="3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b"',
        'mobileId="3f2b6c1e8a4d4e5f9b1a0c2d3e4f5a6b"',
        4, A("NewCustomer", "mobileId"), PATTERN("3f2b6c1e8a4d4e5f9b1a0c2d3e4f5a6b"), NC),
    bad("NewCustomer@mobileId missing", "from-mobile", ' mobileId="3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b"', "",
        4, E("NewCustomer"), REQUIRED("mobileId"), NC),
    bad("NewCustomer@createdAt missing", "from-mobile", ' createdAt="2026-11-27T15:10:00+01:00"', "",
        4, E("NewCustomer"), REQUIRED("createdAt"), NC),
    bad("NewCustomer@createdAt without zone", "from-mobile", 'createdAt="2026-11-27T15:10:00+01:00"',
        'createdAt="2026-11-27T15:10:00"',
        4, A("NewCustomer", "createdAt"), PATTERN("2026-11-27T15:10:00"), NC),
    bad("NewCustomer without Name", "from-mobile", "    <Name>Hurtownia Zielona</Name>\n", "",
        5, E("Address"), EXPECTED("Name"), f"{NC}/Address[1]"),
    bad("Address without Country", "from-mobile", "<Country>PL</Country>", "",
        6, E("Address"), MISSING_CHILD("Country"), f"{NC}/Address[1]"),
    bad("Contact@kind not in enumeration", "from-mobile", '<Contact kind="phone">', '<Contact kind="pager">',
        7, A("Contact", "kind"), ENUM("pager", KINDS), f"{NC}/Contact[1]"),
    bad("Contact has no method", "from-mobile", '<Contact kind="phone">', '<Contact kind="phone" method="Business">',
        7, A("Contact", "method"), NOT_ALLOWED("method"), f"{NC}/Contact[1]"),
    bad("ContactPerson@mobileId missing", "from-mobile",
        '<ContactPerson mobileId="8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f">', "<ContactPerson>",
        8, E("ContactPerson"), REQUIRED("mobileId"), f"{NC}/ContactPerson[1]"),
    bad("ContactPerson@mobileId with prefix", "from-mobile", 'mobileId="0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"',
        'mobileId="mobile:0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"',
        14, A("ContactPerson", "mobileId"), PATTERN("mobile:0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"),
        f"{RC}/ContactPerson[1]"),
    bad("ContactPerson has no relation", "from-mobile", 'mobileId="0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d">',
        'mobileId="0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d" relation="employee">',
        14, A("ContactPerson", "relation"), NOT_ALLOWED("relation"), f"{RC}/ContactPerson[1]"),
    bad("Surname 81 characters, not ASCII", "from-mobile", "<Surname>Wiśniewski</Surname>",
        f"<Surname>{'ś' * 81}</Surname>",
        9, E("Surname"), TOO_LONG(81, 80), f"{NC}/ContactPerson[1]/Surname[1]"),
    bad("Position@code missing", "from-mobile", '<Position code="BUYER"/>', "<Position/>",
        9, E("Position"), REQUIRED("code"), f"{NC}/ContactPerson[1]/Position[1]"),
    bad("FirstName before Surname", "from-mobile", "<Surname>Lewandowski</Surname><FirstName>Piotr</FirstName>",
        "<FirstName>Piotr</FirstName><Surname>Lewandowski</Surname>",
        15, E("FirstName"), EXPECTED("Surname"), f"{RC}/ContactPerson[1]/FirstName[1]"),
    bad("DeletedContactPerson@id missing", "from-mobile", '<DeletedContactPerson id="50002"/>',
        "<DeletedContactPerson/>",
        17, E("DeletedContactPerson"), REQUIRED("id"), f"{RC}/DeletedContactPerson[1]"),
    bad("DeletedContactPerson@id not a Code", "from-mobile", '<DeletedContactPerson id="50002"/>',
        '<DeletedContactPerson id="50 002"/>',
        17, A("DeletedContactPerson", "id"), PATTERN("50 002"), f"{RC}/DeletedContactPerson[1]"),
    bad("DeletedContactPerson with text", "from-mobile", '<DeletedContactPerson id="50002"/>',
        '<DeletedContactPerson id="50002">Nowak</DeletedContactPerson>',
        17, E("DeletedContactPerson"), NO_CHARACTERS, f"{RC}/DeletedContactPerson[1]"),
    bad("ContactPerson after DeletedContactPerson", "from-mobile", '    <DeletedContactPerson id="50002"/>\n',
        '    <DeletedContactPerson id="50002"/>\n'
        '    <ContactPerson mobileId="0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e"><Surname>Late</Surname></ContactPerson>\n',
        18, E("ContactPerson"), EXPECTED("DeletedContactPerson"), f"{RC}/ContactPerson[2]"),
    bad("NewCustomer after Customer", "from-mobile", "</ReturnedCustomers>",
        '  <NewCustomer mobileId="3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6c" createdAt="2026-11-27T15:20:00Z">'
        "<Name>Late</Name></NewCustomer>\n</ReturnedCustomers>",
        19, E("NewCustomer"), EXPECTED("Customer"), "/ReturnedCustomers/NewCustomer[2]"),
    bad("Customer@id missing", "from-mobile", '<Customer id="10001">', "<Customer>",
        13, E("Customer"), REQUIRED("id"), RC),
    bad("Customer with a Name", "from-mobile", '  <Customer id="10001">\n',
        '  <Customer id="10001">\n    <Name>Acme</Name>\n',
        14, E("Name"), EXPECTED("ContactPerson", "DeletedContactPerson"), f"{RC}/Name[1]"),

    # --- manifest ----------------------------------------------------------
    bad("root@mode not in enumeration", "manifest", 'mode="delta"', 'mode="incremental"',
        4, A("Manifest", "mode"), ENUM("incremental", "'full', 'delta'"), "/Manifest"),
    bad("root@createdAt without zone", "manifest", 'createdAt="2026-11-27T22:01:07Z"', 'createdAt="2026-11-27T22:01:07"',
        4, A("Manifest", "createdAt"), PATTERN("2026-11-27T22:01:07"), "/Manifest"),
    bad("root@direction not in enumeration", "manifest",
        ('direction="to-mobile" ', 'mode="delta"'), ("", 'mode="delta" direction="outbound"'),
        4, A("Manifest", "direction"), ENUM("outbound", "'to-mobile', 'from-mobile'"), "/Manifest"),
    bad("root@sequence zero", "manifest", (' sequence="42"', 'mode="delta"'), ("", 'mode="delta" sequence="0"'),
        4, A("Manifest", "sequence"), NOT_OF_TYPE("0", "xs:positiveInteger"), "/Manifest"),
    bad("root@direction not in enumeration (line 3 of the tag)", "manifest", 'direction="to-mobile"',
        'direction="outbound"',
        3, A("Manifest", "direction"), ENUM("outbound", "'to-mobile', 'from-mobile'"), "/Manifest"),
    bad("root@sequence zero (line 3 of the tag)", "manifest", 'sequence="42"', 'sequence="0"',
        3, A("Manifest", "sequence"), NOT_OF_TYPE("0", "xs:positiveInteger"), "/Manifest"),
    bad("root@packageId not an Id (line 2 of the tag)", "manifest", 'packageId="MOB-MOBILE-PL-00000042"',
        'packageId="MOB/MOBILE-PL/00000042"',
        2, A("Manifest", "packageId"), PATTERN("MOB/MOBILE-PL/00000042"), "/Manifest"),
    bad("root@mode missing", "manifest", ' mode="delta"', "",
        2, E("Manifest"), REQUIRED("mode"), "/Manifest"),
    bad("Source@sha256 upper case", "manifest", f'sha256="{SRC_SHA}"', f'sha256="{SRC_SHA.upper()}"',
        5, A("Source", "sha256"), PATTERN(SRC_SHA.upper()), "/Manifest/Source[1]"),
    bad("Source@sha256 63 digits", "manifest", f'sha256="{SRC_SHA}"', f'sha256="{SRC_SHA[:63]}"',
        5, A("Source", "sha256"), PATTERN(SRC_SHA[:63]), "/Manifest/Source[1]"),
    bad("Source@sha256 missing", "manifest", f' sha256="{SRC_SHA}"', "",
        5, E("Source"), REQUIRED("sha256"), "/Manifest/Source[1]"),
    bad("Source@file with a folder", "manifest", 'file="customers_20261127.xml"', 'file="cee/customers_20261127.xml"',
        5, A("Source", "file"), PATTERN("cee/customers_20261127.xml"), "/Manifest/Source[1]"),
    bad("Source@file with a control character", "manifest", 'file="customers_20261127.xml"',
        'file="customers&#9;20261127.xml"',
        5, A("Source", "file"), "[facet 'pattern'] The value 'customers", "/Manifest/Source[1]"),
    bad("Source@file 256 characters", "manifest", 'file="customers_20261127.xml"', f'file="{"f" * 256}"',
        5, A("Source", "file"), TOO_LONG(256, 255), "/Manifest/Source[1]"),
    bad("Source@exportId 65 characters", "manifest", 'exportId="CU-20261127-01"', f'exportId="{"C" * 65}"',
        5, A("Source", "exportId"), PATTERN("C" * 65), "/Manifest/Source[1]"),
    bad("Source@exportId with a space", "manifest", 'exportId="CU-20261127-01"', 'exportId="CU 20261127"',
        5, A("Source", "exportId"), PATTERN("CU 20261127"), "/Manifest/Source[1]"),
    bad("no Entry", "manifest", f'  <Entry name="customers.xml" records="2" bytes="1532" sha256="{SHA}"/>\n', "",
        2, E("Manifest"), MISSING_CHILD("Source", "Entry"), "/Manifest"),
    bad("Entry before Source", "manifest",
        (f'  <Entry name="customers.xml" records="2" bytes="1532" sha256="{SHA}"/>\n', "  <Source "),
        ("", f'  <Entry name="customers.xml" records="2" bytes="1532" sha256="{SHA}"/>\n  <Source '),
        6, E("Source"), EXPECTED("Entry"), "/Manifest/Source[1]"),
    bad("Entry@records negative", "manifest", 'records="2"', 'records="-1"',
        6, A("Entry", "records"), NOT_OF_TYPE("-1", "xs:nonNegativeInteger"), "/Manifest/Entry[1]"),
    bad("Entry@records not a number", "manifest", 'records="2"', 'records="two"',
        6, A("Entry", "records"), NOT_OF_TYPE("two", "xs:nonNegativeInteger"), "/Manifest/Entry[1]"),
    bad("Entry@bytes missing", "manifest", ' bytes="1532"', "",
        6, E("Entry"), REQUIRED("bytes"), "/Manifest/Entry[1]"),
    bad("Entry@name with a backslash", "manifest", 'name="customers.xml"', 'name="data\\customers.xml"',
        6, A("Entry", "name"), PATTERN("data\\customers.xml"), "/Manifest/Entry[1]"),
    bad("Entry@sha256 63 digits", "manifest", f'sha256="{SHA}"', f'sha256="{SHA[:63]}"',
        6, A("Entry", "sha256"), PATTERN(SHA[:63]), "/Manifest/Entry[1]"),
    bad("Entry unknown attribute", "manifest", 'bytes="1532"', 'bytes="1532" compressed="true"',
        6, A("Entry", "compressed"), NOT_ALLOWED("compressed"), "/Manifest/Entry[1]"),
    bad("unknown element", "manifest", "</Manifest>", '  <Signature value="x"/>\n</Manifest>',
        7, E("Signature"), EXPECTED("Entry"), "/Manifest/Signature[1]"),

    # --- cee-import ----------------------------------------------------------
    bad("root@sourceSha256 upper case", "cee-import", f'sourceSha256="{IMP_SHA}"',
        f'sourceSha256="{IMP_SHA.upper()}"',
        4, A("CeeImport", "sourceSha256"), PATTERN(IMP_SHA.upper()), "/CeeImport"),
    bad("root@sourceSha256 63 digits", "cee-import", f'sourceSha256="{IMP_SHA}"', f'sourceSha256="{IMP_SHA[:63]}"',
        4, A("CeeImport", "sourceSha256"), PATTERN(IMP_SHA[:63]), "/CeeImport"),
    bad("root@sourcePackage with a folder", "cee-import", 'sourcePackage="RET_MOBILE-PL_0007.zip"',
        'sourcePackage="inbox/RET_MOBILE-PL_0007.zip"',
        4, A("CeeImport", "sourcePackage"), PATTERN("inbox/RET_MOBILE-PL_0007.zip"), "/CeeImport"),
    bad("root@sourcePackage 256 characters", "cee-import", 'sourcePackage="RET_MOBILE-PL_0007.zip"',
        f'sourcePackage="{"p" * 252}.zip"',
        4, A("CeeImport", "sourcePackage"), TOO_LONG(256, 255), "/CeeImport"),
    bad("root@createdAt without zone", "cee-import",
        (' createdAt="2026-11-27T22:05:00Z"', "sourcePackage="), ("", 'createdAt="2026-11-27T22:05:00" sourcePackage='),
        4, A("CeeImport", "createdAt"), PATTERN("2026-11-27T22:05:00"), "/CeeImport"),
    bad("root@createdAt without zone (line 3 of the tag)", "cee-import",
        'createdAt="2026-11-27T22:05:00Z"', 'createdAt="2026-11-27T22:05:00"',
        3, A("CeeImport", "createdAt"), PATTERN("2026-11-27T22:05:00"), "/CeeImport"),
    bad("root@importId missing", "cee-import", ' importId="CEEIMP-MOBILE-PL-00000007"', "",
        2, E("CeeImport"), REQUIRED("importId"), "/CeeImport"),
    bad("Organization@externalId without mobile:", "cee-import",
        '<Organization externalId="mobile:3f2b6c1e', '<Organization externalId="3f2b6c1e',
        5, A("Organization", "externalId"), PATTERN("3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b"), ORG),
    bad("Organization@externalId upper case", "cee-import",
        '<Organization externalId="mobile:3f2b6c1e', '<Organization externalId="mobile:3F2B6C1E',
        5, A("Organization", "externalId"), PATTERN("mobile:3F2B6C1E-8a4d-4e5f-9b1a-0c2d3e4f5a6b"), ORG),
    bad("Organization@externalId missing", "cee-import",
        '<Organization externalId="mobile:3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b">', "<Organization>",
        5, E("Organization"), REQUIRED("externalId"), ORG),
    bad("Organization without Name", "cee-import", "    <Name>Hurtownia Zielona</Name>\n", "",
        6, E("Address"), EXPECTED("Name"), f"{ORG}/Address[1]"),
    bad("Organization without SalesChannelAssignment", "cee-import",
        '    <SalesChannelAssignment salesChannel="MOBILE-PL"/>\n', "",
        5, E("Organization"), MISSING_CHILD("Communication", "SalesChannelAssignment"), ORG),
    bad("SalesChannelAssignment@salesChannel missing", "cee-import",
        '<SalesChannelAssignment salesChannel="MOBILE-PL"/>', "<SalesChannelAssignment/>",
        9, E("SalesChannelAssignment"), REQUIRED("salesChannel"), f"{ORG}/SalesChannelAssignment[1]"),
    bad("SalesChannelAssignment@salesChannel not a Code", "cee-import",
        '<SalesChannelAssignment salesChannel="MOBILE-PL"/>', '<SalesChannelAssignment salesChannel="MOBILE PL"/>',
        9, A("SalesChannelAssignment", "salesChannel"), PATTERN("MOBILE PL"), f"{ORG}/SalesChannelAssignment[1]"),
    bad("SalesChannelAssignment twice", "cee-import", '    <SalesChannelAssignment salesChannel="MOBILE-PL"/>\n',
        '    <SalesChannelAssignment salesChannel="MOBILE-PL"/>\n'
        '    <SalesChannelAssignment salesChannel="MOBILE-DE"/>\n',
        10, E("SalesChannelAssignment"), UNEXPECTED, f"{ORG}/SalesChannelAssignment[2]"),
    bad("SalesChannelAssignment before Communication", "cee-import",
        '    <Communication kind="phone" method="Business">+48 12 300 00 00</Communication>\n'
        '    <SalesChannelAssignment salesChannel="MOBILE-PL"/>',
        '    <SalesChannelAssignment salesChannel="MOBILE-PL"/>\n'
        '    <Communication kind="phone" method="Business">+48 12 300 00 00</Communication>',
        9, E("Communication"), UNEXPECTED, f"{ORG}/Communication[1]"),
    bad("Communication@method missing", "cee-import", '<Communication kind="phone" method="Business">',
        '<Communication kind="phone">',
        8, E("Communication"), REQUIRED("method"), f"{ORG}/Communication[1]"),
    bad("Communication@kind not in enumeration", "cee-import", 'kind="email"', 'kind="e-mail"',
        14, A("Communication", "kind"), ENUM("e-mail", KINDS), f"{P1}/Communication[1]"),
    bad("Person@externalId not mobile:uuid", "cee-import",
        '<Person externalId="mobile:8c1d2e3f', '<Person externalId="partner:8c1d2e3f',
        11, A("Person", "externalId"), PATTERN("partner:8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f"), P1),
    bad("Person Occupation not a Code", "cee-import", "<Occupation>BUYER</Occupation>",
        "<Occupation>BUYER!</Occupation>",
        12, E("Occupation"), PATTERN("BUYER!"), f"{P1}/Occupation[1]"),
    bad("Person without Classification", "cee-import",
        '    <Classification>Sales</Classification>\n    <EmployeeOf customer="10001"/>',
        '    <EmployeeOf customer="10001"/>',
        19, E("EmployeeOf"), EXPECTED("Occupation", "Classification"), f"{P2}/EmployeeOf[1]"),
    bad("Classification not a Code", "cee-import",
        '<Occupation>BUYER</Occupation>\n    <Classification>Sales</Classification>',
        '<Occupation>BUYER</Occupation>\n    <Classification>Sales team</Classification>',
        13, E("Classification"), PATTERN("Sales team"), f"{P1}/Classification[1]"),
    bad("Person without EmployeeOf or EmployeeOfNew", "cee-import", '    <EmployeeOf customer="10001"/>\n', "",
        17, E("Person"), MISSING_CHILD("Classification", "Communication", "EmployeeOf", "EmployeeOfNew"), P2),
    bad("Person with EmployeeOf and EmployeeOfNew", "cee-import", '    <EmployeeOf customer="10001"/>\n',
        '    <EmployeeOf customer="10001"/>\n'
        '    <EmployeeOfNew externalId="mobile:3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b"/>\n',
        21, E("EmployeeOfNew"), UNEXPECTED, f"{P2}/EmployeeOfNew[1]"),
    bad("EmployeeOf@customer missing", "cee-import", '<EmployeeOf customer="10001"/>', "<EmployeeOf/>",
        20, E("EmployeeOf"), REQUIRED("customer"), f"{P2}/EmployeeOf[1]"),
    bad("EmployeeOf@customer not a Code", "cee-import", '<EmployeeOf customer="10001"/>',
        '<EmployeeOf customer="mobile:3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b"/>',
        20, A("EmployeeOf", "customer"), PATTERN("mobile:3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b"),
        f"{P2}/EmployeeOf[1]"),
    bad("EmployeeOfNew@externalId without mobile:", "cee-import", '<EmployeeOfNew externalId="mobile:',
        '<EmployeeOfNew externalId="',
        15, A("EmployeeOfNew", "externalId"), PATTERN("3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b"),
        f"{P1}/EmployeeOfNew[1]"),
    bad("EmployeeOfNew@externalId missing", "cee-import",
        '<EmployeeOfNew externalId="mobile:3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b"/>', "<EmployeeOfNew/>",
        15, E("EmployeeOfNew"), REQUIRED("externalId"), f"{P1}/EmployeeOfNew[1]"),
    bad("Organization after Person", "cee-import", "  <ContactPersonRemoval ",
        '  <Organization externalId="mobile:3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6c"><Name>Late</Name>'
        '<SalesChannelAssignment salesChannel="MOBILE-PL"/></Organization>\n  <ContactPersonRemoval ',
        22, E("Organization"), EXPECTED("Person", "ContactPersonRemoval"), "/CeeImport/Organization[2]"),
    bad("Person after ContactPersonRemoval", "cee-import", "</CeeImport>",
        '  <Person externalId="mobile:0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4e"><Surname>Late</Surname>'
        '<Classification>Sales</Classification><EmployeeOf customer="10001"/></Person>\n</CeeImport>',
        23, E("Person"), EXPECTED("ContactPersonRemoval"), "/CeeImport/Person[3]"),
    bad("ContactPersonRemoval@customer missing", "cee-import", '<ContactPersonRemoval customer="10001" ',
        "<ContactPersonRemoval ",
        22, E("ContactPersonRemoval"), REQUIRED("customer"), "/CeeImport/ContactPersonRemoval[1]"),
    bad("ContactPersonRemoval@partner missing", "cee-import", ' partner="50002"', "",
        22, E("ContactPersonRemoval"), REQUIRED("partner"), "/CeeImport/ContactPersonRemoval[1]"),
    bad("ContactPersonRemoval@partner not a Code", "cee-import", 'partner="50002"', 'partner="50002 "',
        22, A("ContactPersonRemoval", "partner"), PATTERN("50002 "), "/CeeImport/ContactPersonRemoval[1]"),
    bad("ContactPersonRemoval unknown attribute", "cee-import", 'partner="50002"', 'partner="50002" reason="left"',
        22, A("ContactPersonRemoval", "reason"), NOT_ALLOWED("reason"), "/CeeImport/ContactPersonRemoval[1]"),
]


def _params(cases, *, with_bugs=True) -> list:
    return [pytest.param(case, id=case.id,
                         marks=[pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug and with_bugs else [])
            for case in cases]


def test_case_ids_are_unique():
    ids = [case.id for case in BAD]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("case", _params(BAD))
def test_invalid_document_names_line_and_culprit(case: Bad, tmp_path):
    path = write(tmp_path, case.text)
    verdict = validate_file(path)
    assert not verdict.valid
    problems = verdict.report.problems
    assert [(p.line, p.path) for p in problems] == [(case.line, case.path)], [p.message for p in problems]
    (problem,) = problems
    assert problem.message.startswith(case.names)
    assert case.says in problem.message
    assert verdict.report.count == 1
    assert verdict.lines()[-1] == f"{path}: INVALID (1 error)"


@pytest.mark.parametrize("case", _params([c for c in BAD if c.in_xsd], with_bugs=False))
def test_full_xsd_rejects_the_same_document(case: Bad):
    errors = full_schema_errors(case.xsd, case.text)
    assert errors, "the full XSD accepts a document the contract rejects"
    assert errors[0].startswith(f"Element '{case.element}'"), errors


def test_both_errors_of_one_element_are_reported(tmp_path):
    """An upsert ContactPerson lacking both Surname and relation: two errors."""
    text = edit(DOCS["to-mobile"][0], (
        ('<ContactPerson id="70010" action="upsert" relation="contact">\n      <Surname>Schmidt</Surname>',
         '<ContactPerson id="70010" action="upsert">\n      '),
    ))
    verdict = validate_file(write(tmp_path, text))
    assert [(p.line, p.path, p.message) for p in verdict.report.problems] == [
        (13, f"{TM}/ContactPerson[2]", "Element 'ContactPerson': an upsert needs the child element 'Surname'"),
        (13, f"{TM}/ContactPerson[2]", "Element 'ContactPerson': an upsert needs the attribute 'relation'"),
    ]


def test_errors_in_several_records_come_in_document_order(tmp_path):
    text = edit(DOCS["customers"][0], (
        ('<Customer number="10001">', '<Customer number="10001" active="nope">'),
        ('<DeletedCustomer number="10009"/>', '<DeletedCustomer number="10001"/>'),
    ))
    verdict = validate_file(write(tmp_path, text))
    assert [(p.line, p.message.split(":")[0]) for p in verdict.report.problems] == [
        (4, "Element 'Customer', attribute 'active'"),
        (27, "Element 'DeletedCustomer', attribute 'number'"),
    ]
    assert verdict.report.count == 2


ROOT_ATTRIBUTES = [
    ("masterdata", "MasterdataExport", ("exportId", "salesChannel", "createdAt", "changedSince")),
    ("customers", "CustomerExport", ("exportId", "salesChannel", "createdAt", "changedSince")),
    ("from-mobile", "ReturnedCustomers", ("device", "representative", "createdAt")),
    ("manifest", "Manifest", ("packageId", "direction", "salesChannel", "sequence", "createdAt", "mode")),
    ("cee-import", "CeeImport", ("importId", "salesChannel", "createdAt", "sourcePackage", "sourceSha256")),
]


@pytest.mark.parametrize("doc, root, attribute", [
    pytest.param(doc, root, attribute, id=f"{root}@{attribute}")
    for doc, root, attributes in ROOT_ATTRIBUTES for attribute in attributes
])
def test_every_required_root_attribute_is_required(doc, root, attribute, tmp_path):
    """Each root attribute FORMATS.md calls required, left out. The exact line is
    asserted in the cases above; here only that it lies within the root's start tag."""
    text, xsd = DOCS[doc]
    start = text.index(f"<{root} ")
    end = text.index(">", start)
    found = re.compile(rf'\s{attribute}="[^"]*"').search(text, start, end)
    broken = text[:found.start()] + text[found.end():]
    verdict = validate_file(write(tmp_path, broken))
    (problem,) = verdict.report.problems
    assert problem.message == f"Element '{root}': The attribute '{attribute}' is required but missing."
    assert problem.path == f"/{root}"
    first = text.count("\n", 0, start) + 1
    assert first <= problem.line <= first + broken.count("\n", start, end - len(found.group()))
    assert full_schema_errors(xsd, broken) == [
        f"Element '{root}': The attribute '{attribute}' is required but missing."
    ]


def test_unknown_root_on_line_one(tmp_path):
    """The control for the unknown-root cases above: without an XML declaration the root is on line 1."""
    verdict = validate_file(write(tmp_path, '<Foo xmlns="urn:example"/>\n'))
    assert [p.line for p in verdict.report.problems] == [1]
    (problem,) = verdict.report.problems
    assert problem.message.startswith("unknown root element 'Foo' in namespace 'urn:example'; expected one of: ")
    assert verdict.lines()[-1].endswith(": INVALID (1 error)")


# ---------------------------------------------------------------------------
# Columns
# ---------------------------------------------------------------------------

COLUMN_CASES = [
    # (id, doc, edits, line, column): the column of the named attribute or element
    pytest.param("customers", (('<Customer number="10001">', '<Customer number="10001" active="no">'),), 4, 28,
                 id="attribute"),
    pytest.param("customers", (("<Country>PL</Country>", "<Country>pl</Country>"),), 8, 28,
                 id="second element on the line"),
    pytest.param("customers", (('<DeletedCustomer number="10009"/>', '<DeletedCustomer number="10001"/>'),), 27, 20,
                 id="duplicate key"),
    # libxml2 finds a missing child at the end tag; the report points at the element's start tag
    pytest.param("cee-import", (('    <SalesChannelAssignment salesChannel="MOBILE-PL"/>\n', ""),), 5, 3,
                 id="missing child at the element's start"),
    pytest.param("customers", (
        ('<Communication kind="phone" method="Business" preferred="true">+48 22 100 00 00</Communication>\n'
         '    <Communication kind="email" method="Private">owner@home.example</Communication>',
         '<Communication kind="phone" method="Business">1</Communication>'
         '<Communication kind="fax" method="B Q">2</Communication>'),), 9, 94,
        id="later of two same elements on a line"),
    pytest.param("customers-one-line", (('<ContactPerson partner="50002">', '<ContactPerson partner="50001">'),),
                 1, None, id="duplicate key in a one-line document"),
]


@pytest.mark.parametrize("doc, edits, line, column", COLUMN_CASES)
def test_column_points_at_the_culprit(doc, edits, line, column, tmp_path):
    text = edit(DOCS[doc][0], edits)
    if column is None:  # the one-line case: the second partner="50001" on the line
        column = text.index('partner="50001"', text.index('partner="50001"') + 1) + 1
    verdict = validate_file(write(tmp_path, text))
    assert [(p.line, p.column) for p in verdict.report.problems] == [(line, column)]


# ---------------------------------------------------------------------------
# Valid documents
# ---------------------------------------------------------------------------


def _md_blocks() -> list[str]:
    return re.findall(r"```xml\n(.*?)```", (ROOT / "docs" / "FORMATS.md").read_text(encoding="utf-8"), re.S)


def test_formats_md_examples_are_the_example_files():
    blocks = _md_blocks()
    assert len(blocks) == 6
    files = {name: _example(name) for name in EXAMPLE_FILES}
    for block in blocks:
        matches = [name for name, text in files.items()
                   if text == '<?xml version="1.0" encoding="UTF-8"?>\n' + block]
        assert len(matches) == 1, block[:60]
    assert sorted(p.name for p in EXAMPLES.glob("*.xml")) == sorted(EXAMPLE_FILES)


@pytest.mark.parametrize("block", _md_blocks(), ids=lambda b: b.split()[0].lstrip("<"))
def test_every_example_in_formats_md_is_valid(block, tmp_path):
    root = block.split()[0].lstrip("<")
    (records, xsd), = [(n, x) for r, n, x in EXAMPLE_FILES.values() if r == root]
    path = write(tmp_path, block)
    verdict = validate_file(path)
    assert verdict.report.problems == []
    assert verdict.lines() == [f"{path}: valid ({root}, {records} records)"]
    assert full_schema_errors(xsd, block) == []


@pytest.mark.parametrize("name", sorted(EXAMPLE_FILES))
def test_every_example_file_is_valid(name):
    root, records, xsd = EXAMPLE_FILES[name]
    verdict = validate_file(EXAMPLES / name)
    assert verdict.report.problems == []
    assert verdict.valid
    assert verdict.what == f"{root}, {records} records"
    assert full_schema_errors(xsd, _example(name)) == []


def test_the_packaged_xsds_are_the_contract_xsds():
    """The validator loads exchange/xsd/; the contract is xsd/. They are the same files."""
    contract = sorted(p.name for p in (ROOT / "xsd").glob("*.xsd"))
    assert contract == ["cee-export.xsd", "cee-import.xsd", "common.xsd", "from-mobile.xsd",
                        "manifest.xsd", "to-mobile.xsd"]
    for name in contract:
        assert (XSD_DIR / name).read_bytes() == (ROOT / "xsd" / name).read_bytes(), name


@dataclass(frozen=True)
class Good:
    id: str
    doc: str
    edits: tuple[tuple[str, str], ...]
    records: int


def good(id, doc, old, new, records) -> Good:
    edits = tuple(zip(old, new)) if isinstance(old, tuple) else ((old, new),)
    return Good(f"{doc}: {id}", doc, edits, records)


ROOT_OF = {"masterdata": "MasterdataExport", "customers": "CustomerExport", "positions": "Positions",
           "to-mobile": "Customers", "from-mobile": "ReturnedCustomers", "manifest": "Manifest",
           "cee-import": "CeeImport", "customers-one-line": "CustomerExport", "customers-crlf": "CustomerExport",
           "customers-cr": "CustomerExport"}

GOOD: list[Good] = [
    good("as shipped", "positions", "", "", 3),
    good("as written on one line", "customers-one-line", "", "", 2),
    good("with CRLF line ends", "customers-crlf", "", "", 2),
    good("with CR line ends", "customers-cr", "", "", 2),
    # Text, LongText, PostalCode: lengths after whitespace collapsing
    good("Name 80 characters", "customers", "<Name>Acme Trading Sp. z o.o.</Name>", f"<Name>{'x' * 80}</Name>", 2),
    good("Name 80 characters after collapsing", "customers", "<Name>Acme Trading Sp. z o.o.</Name>",
         f"<Name>   {'a' * 40} \t\n   {'b' * 39}   </Name>", 2),
    good("Name 80 characters, not ASCII", "customers", "<Name>Acme Trading Sp. z o.o.</Name>",
         f"<Name>{'Ż' * 80}</Name>", 2),
    good("Name one character", "customers", "<Name>Acme Trading Sp. z o.o.</Name>", "<Name>A</Name>", 2),
    good("Communication 254 characters", "customers", ">owner@home.example<", f">{'a' * 254}<", 2),
    good("Communication 254 characters after collapsing", "customers", ">owner@home.example<",
         f">  {'a' * 127}  \t  {'b' * 126}  <", 2),
    good("PostalCode 16 characters", "customers", "<PostalCode>00-001</PostalCode>",
         f"<PostalCode>{'1' * 16}</PostalCode>", 2),
    good("PostalCode 16 characters after collapsing", "customers", "<PostalCode>00-001</PostalCode>",
         "<PostalCode>   12345    67890 1234   </PostalCode>", 2),
    # Code, Id
    good("Code 32 characters", "customers", '<Customer number="10001">', f'<Customer number="{"A" * 32}">', 2),
    good("Code one character", "customers", '<Customer number="10001">', '<Customer number="7">', 2),
    good("Code with _ . -", "customers", '<Customer number="10001">', '<Customer number="a_B.c-9">', 2),
    good("Id 64 characters", "customers", 'exportId="CU-20261127-01"', f'exportId="{"I" * 64}"', 2),
    good("Id with : and leading -", "customers", 'exportId="CU-20261127-01"', 'exportId="-CU:2026.11_27"', 2),
    # Timestamp with a zone
    good("Timestamp with a negative offset", "customers", 'createdAt="2026-11-27T22:01:00Z"',
         'createdAt="2026-11-27T17:01:00-05:00"', 2),
    good("Timestamp with fractions of a second", "customers", 'createdAt="2026-11-27T22:01:00Z"',
         'createdAt="2026-11-27T22:01:00.125Z"', 2),
    good("Timestamp +14:00", "customers", 'createdAt="2026-11-27T22:01:00Z"', 'createdAt="2026-11-28T12:01:00+14:00"', 2),
    # booleans and enumerations
    good("booleans as 0 and 1", "customers",
         ('<Customer number="10001">', 'preferred="true">+48'),
         ('<Customer number="10001" active="0">', 'preferred="1">+48'), 2),
    good("booleans as false and true", "customers",
         ('<Customer number="10001">', 'partner="50001" preferred="true"'),
         ('<Customer number="10001" active="true">', 'partner="50001" preferred="false"'), 2),
    good("assignment employee written out", "customers", '<ContactPerson partner="50002">',
         '<ContactPerson partner="50002" assignment="employee">', 2),
    good("changedSince anytime", "customers", 'changedSince="last-transfer"', 'changedSince="anytime"', 2),
    good("optional parts left out", "customers",
         ("    <TaxId>PL5260001246</TaxId>\n", "<Street>ul. Prosta 1</Street><PostalCode>00-001</PostalCode>"),
         ("", ""), 2),
    # uniqueness: scopes
    good("same partner on two customers", "customers", '  <DeletedCustomer number="10009"/>',
         '  <Customer number="10002"><Name>Other</Name>'
         '<ContactPerson partner="50001"><Surname>Kowalska</Surname></ContactPerson>'
         '<RemovedContactPerson partner="50007"/></Customer>\n'
         '  <DeletedCustomer number="10009"/>', 3),
    good("same partner removed from one customer, kept on another", "customers", '  <DeletedCustomer number="10009"/>',
         '  <Customer number="10002"><Name>Other</Name><RemovedContactPerson partner="50001"/></Customer>\n'
         '  <DeletedCustomer number="10009"/>', 3),
    good("a partner number equal to a customer number", "customers", '<RemovedContactPerson partner="50007"/>',
         '<RemovedContactPerson partner="10001"/>', 2),
    good("no records", "customers", (
        '  <Customer number="10001">', '  </Customer>\n  <DeletedCustomer number="10009"/>\n'),
        ("  <!-- <Customer number=\"10001\">", "  </Customer> -->\n"), 0),
    good("an occupation code equal to a method code", "masterdata", 'code="Private"', 'code="BUYER"', 5),
    good("markedForDeletion 0 and displayInMobile 1", "masterdata",
         ('markedForDeletion="true"', 'displayInMobile="false"'),
         ('markedForDeletion="0"', 'displayInMobile="1"'), 5),
    good("only communication methods", "masterdata",
         ('  <Occupation code="SALES_MGR"><Description>Sales manager</Description></Occupation>\n'
          '  <Occupation code="BUYER"><Description>Buyer</Description></Occupation>\n'
          '  <Occupation code="OLD_POS" markedForDeletion="true"><Description>Former position</Description>'
          '</Occupation>\n',),
         ("",), 2),
    # to-mobile
    good("only deletes", "positions",
         ('  <Position code="SALES_MGR" action="upsert"><Description>Sales manager</Description></Position>\n'
          '  <Position code="BUYER" action="upsert"><Description>Buyer</Description></Position>\n',),
         ("",), 1),
    good("no positions", "positions",
         ('  <Position code="SALES_MGR" action="upsert"><Description>Sales manager</Description></Position>\n'
          '  <Position code="BUYER" action="upsert"><Description>Buyer</Description></Position>\n'
          '  <Position code="OLD_POS" action="delete"/>\n',),
         ("",), 0),
    good("upsert with Name only", "to-mobile",
         ("<TaxId>PL5260001246</TaxId>", '    <Address><Street>ul. Prosta 1</Street><PostalCode>00-001</PostalCode>\n'
          "      <City>Warszawa</City><Country>PL</Country></Address>\n"), ("", ""), 2),
    good("upsert ContactPerson with Surname only", "to-mobile", "<Surname>Schmidt</Surname><Position code=\"BUYER\"/>",
         "<Surname>Schmidt</Surname>", 2),
    good("delete ContactPerson of an upsert customer, no relation", "to-mobile",
         '<ContactPerson id="50007" action="delete"/>',
         '<ContactPerson id="50007" action="delete"/><ContactPerson id="50008" action="delete"/>', 2),
    # from-mobile
    good("Customer with deletions only", "from-mobile",
         ('    <ContactPerson mobileId="0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d">\n'
          "      <Surname>Lewandowski</Surname><FirstName>Piotr</FirstName>\n"
          "    </ContactPerson>\n",), ("",), 2),
    good("Surname 80 characters, not ASCII", "from-mobile", "<Surname>Wiśniewski</Surname>",
         f"<Surname>{'ś' * 80}</Surname>", 2),
    good("NewCustomer with Name only", "from-mobile",
         ('    <Address><City>Kraków</City><Country>PL</Country></Address>\n'
          '    <Contact kind="phone">+48 12 300 00 00</Contact>\n',),
         ("",), 2),
    # manifest
    good("two entries, no source", "manifest",
         (f'  <Source file="customers_20261127.xml" exportId="CU-20261127-01" sha256="{SRC_SHA}"/>\n',
          "</Manifest>"),
         ("", f'  <Entry name="positions.xml" records="0" bytes="0" sha256="{SHA}"/>\n</Manifest>'), 2),
    good("from-mobile, full, sequence 1", "manifest",
         ('direction="to-mobile"', 'sequence="42"', 'mode="delta"'),
         ('direction="from-mobile"', 'sequence="1"', 'mode="full"'), 2),
    good("file names with spaces and letters beyond ASCII", "manifest", 'file="customers_20261127.xml"',
         'file="Eksport klientów (27.11).xml"', 2),
    good("file name 255 characters", "manifest", 'file="customers_20261127.xml"', f'file="{"f" * 251}.xml"', 2),
    good("two sources", "manifest", "  <Entry ",
         f'  <Source file="masterdata.xml" exportId="MD-1" sha256="{SRC_SHA}"/>\n  <Entry ', 3),
    # cee-import
    good("Person with two Classifications", "cee-import", "<Classification>Sales</Classification>\n    <EmployeeOf",
         "<Classification>Sales</Classification><Classification>Logistics</Classification>\n    <EmployeeOf", 4),
    good("Organization with TaxId and a full Address", "cee-import",
         "<Address><City>Kraków</City><Country>PL</Country></Address>",
         "<TaxId>PL6770065406</TaxId><Address><Street>ul. Długa 5</Street><PostalCode>31-147</PostalCode>"
         "<City>Kraków</City><Country>PL</Country></Address>", 4),
    good("sourcePackage 255 characters", "cee-import", 'sourcePackage="RET_MOBILE-PL_0007.zip"',
         f'sourcePackage="{"p" * 251}.zip"', 4),
    good("removals only", "cee-import", (
        '  <Organization externalId="mobile:3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b">',
        "  <ContactPersonRemoval "),
        ('  <!--<Organization externalId="mobile:3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b">',
         "  -->\n  <ContactPersonRemoval "), 1),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in GOOD])
def test_valid_variant_is_accepted(case: Good, tmp_path):
    text = edit(DOCS[case.doc][0], tuple(e for e in case.edits if e != ("", "")))
    path = write(tmp_path, text)
    verdict = validate_file(path)
    assert verdict.report.problems == []
    assert verdict.lines() == [f"{path}: valid ({ROOT_OF[case.doc]}, {case.records} records)"]
    assert full_schema_errors(DOCS[case.doc][1], text) == []


# ---------------------------------------------------------------------------
# Uniqueness in the full XSDs themselves (xs:unique), on small documents
# ---------------------------------------------------------------------------

_HEAD = ('xmlns="urn:cee-mobile:cee-export:v1" exportId="E-1" salesChannel="MOBILE-PL" '
         'createdAt="2026-11-27T22:00:00Z" changedSince="anytime"')


def _masterdata(*lines: str) -> str:
    return "\n".join([f"<MasterdataExport {_HEAD}>", *lines, "</MasterdataExport>", ""])


def _customers(*lines: str) -> str:
    return "\n".join([f"<CustomerExport {_HEAD}>", *lines, "</CustomerExport>", ""])


def _customer(number: str, *people: str) -> str:
    return f'<Customer number="{number}"><Name>C {number}</Name>{"".join(people)}</Customer>'


def _cp(partner: str) -> str:
    return f'<ContactPerson partner="{partner}"><Surname>S {partner}</Surname></ContactPerson>'


def _removed(partner: str) -> str:
    return f'<RemovedContactPerson partner="{partner}"/>'


OCC = '<Occupation code="{}"><Description>D</Description></Occupation>'
METHOD = '<CommunicationMethod code="{}" displayInMobile="true"/>'

UNIQUE_CASES = [
    # (document, constraint broken or None, the duplicated key, line of the second, its element, attribute)
    pytest.param(_masterdata(OCC.format("A"), OCC.format("A")), "uniqueOccupationCode", "A", 3, "Occupation", "code",
                 id="occupation code twice"),
    pytest.param(_masterdata(METHOD.format("M"), METHOD.format("M")), "uniqueCommunicationMethodCode", "M", 3,
                 "CommunicationMethod", "code", id="communication method code twice"),
    pytest.param(_masterdata(OCC.format("A"), METHOD.format("A")), None, None, None, None, None,
                 id="occupation and method may share a code"),
    pytest.param(_customers(_customer("1"), _customer("1")), "uniqueCustomerNumber", "1", 3, "Customer", "number",
                 id="Customer twice"),
    pytest.param(_customers(_customer("1"), '<DeletedCustomer number="1"/>'), "uniqueCustomerNumber", "1", 3,
                 "DeletedCustomer", "number", id="Customer and DeletedCustomer"),
    pytest.param(_customers('<DeletedCustomer number="1"/>', '<DeletedCustomer number="1"/>'), "uniqueCustomerNumber",
                 "1", 3, "DeletedCustomer", "number", id="DeletedCustomer twice"),
    pytest.param(_customers(_customer("1", _cp("P"), "\n", _cp("P"))), "uniquePartnerInCustomer", "P", 3,
                 "ContactPerson", "partner", id="ContactPerson twice in a customer"),
    pytest.param(_customers(_customer("1", _cp("P"), "\n", _removed("P"))), "uniquePartnerInCustomer", "P", 3,
                 "RemovedContactPerson", "partner", id="ContactPerson and RemovedContactPerson in a customer"),
    pytest.param(_customers(_customer("1", _removed("P"), "\n", _removed("P"))), "uniquePartnerInCustomer", "P", 3,
                 "RemovedContactPerson", "partner", id="RemovedContactPerson twice in a customer"),
    pytest.param(_customers(_customer("1", _cp("P")), _customer("2", _cp("P"))), None, None, None, None, None,
                 id="same partner on two customers"),
    pytest.param(_customers(_customer("1", _removed("P")), _customer("2", _cp("P"))), None, None, None, None, None,
                 id="partner removed from one customer, on another"),
]


def test_the_xsd_declares_the_uniqueness_constraints():
    tree = etree.parse(str(ROOT / "xsd" / "cee-export.xsd"))
    names = tree.xpath("//xs:unique/@name", namespaces={"xs": "http://www.w3.org/2001/XMLSchema"})
    assert sorted(names) == ["uniqueCommunicationMethodCode", "uniqueCustomerNumber", "uniqueOccupationCode",
                             "uniquePartnerInCustomer"]


@pytest.mark.parametrize("text, constraint, key, line, element, attribute", UNIQUE_CASES)
def test_full_xsd_enforces_uniqueness(text, constraint, key, line, element, attribute):
    xml_schema = schema("cee-export.xsd")  # the full schema, not the streaming one
    tree = etree.fromstring(text.encode(), safe.parser())
    valid = xml_schema.validate(tree)
    if constraint is None:
        assert valid, list(xml_schema.error_log)
        return
    assert not valid
    assert [(e.line, e.message) for e in xml_schema.error_log] == [(
        line,
        f"Element '{{{CEE_EXPORT}}}{element}': Duplicate key-sequence ['{key}'] in unique identity-constraint "
        f"'{{{CEE_EXPORT}}}{constraint}'.",
    )]


@pytest.mark.parametrize("text, constraint, key, line, element, attribute", UNIQUE_CASES)
def test_validator_enforces_uniqueness(text, constraint, key, line, element, attribute, tmp_path):
    verdict = validate_file(write(tmp_path, text))
    if constraint is None:
        assert verdict.report.problems == []
        return
    assert [(p.line, p.message.split(": duplicate")[0]) for p in verdict.report.problems] == [
        (line, f"Element '{element}', attribute '{attribute}'")
    ]
    assert "duplicate " in verdict.report.problems[0].message
    assert f"'{key}'" in verdict.report.problems[0].message


# ---------------------------------------------------------------------------
# exchange validate
# ---------------------------------------------------------------------------


def _validate(*args: str):
    return CliRunner().invoke(cli, ["validate", *args])


def test_cli_valid_file(tmp_path):
    path = write(tmp_path, DOCS["customers"][0], "customers.xml")
    result = _validate(str(path))
    assert result.exit_code == 0
    assert result.stdout == f"{path}: valid (CustomerExport, 2 records)\n"


def test_cli_every_example_is_valid():
    paths = [str(EXAMPLES / name) for name in sorted(EXAMPLE_FILES)]
    result = _validate(*paths)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        f"{EXAMPLES / name}: valid ({root}, {records} records)"
        for name, (root, records, _xsd) in sorted(EXAMPLE_FILES.items())
    ]


def test_cli_invalid_file_prints_file_line_column_message_path(tmp_path):
    path = write(tmp_path, edit(DOCS["customers"][0], (
        ('<DeletedCustomer number="10009"/>', '<DeletedCustomer number="10001"/>'),
    )), "customers.xml")
    result = _validate(str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}:27:20: Element 'DeletedCustomer', attribute 'number': duplicate customer number '10001'; "
        "a customer number appears at most once in an export, over Customer and DeletedCustomer together "
        "(at /CustomerExport/DeletedCustomer[1])",
        f"{path}: INVALID (1 error)",
    ]


def test_cli_two_errors(tmp_path):
    path = write(tmp_path, edit(DOCS["customers"][0], (
        ('<Customer number="10001">', '<Customer number="10001" active="nope">'),
        ("<Country>PL</Country>", "<Country>pl</Country>"),
    )), "customers.xml")
    result = _validate(str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}:4:28: Element 'Customer', attribute 'active': 'nope' is not a valid value of the atomic type "
        "'xs:boolean'. (at /CustomerExport/Customer[1])",
        f"{path}:8:28: Element 'Country': [facet 'pattern'] The value 'pl' is not accepted by the pattern "
        "'[A-Z]{2}'. (at /CustomerExport/Customer[1]/Address[1]/Country[1])",
        f"{path}: INVALID (2 errors)",
    ]


def test_cli_not_well_formed_has_no_path(tmp_path):
    path = write(tmp_path, edit(DOCS["customers"][0], (
        ("    </ContactPerson>\n    <ContactPerson partner=\"50002\">",
         "    </ContactPersn>\n    <ContactPerson partner=\"50002\">"),
    )), "customers.xml")
    result = _validate(str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{path}:17:20: not well-formed XML: Opening and ending tag mismatch: ContactPerson line 11 and ContactPersn",
        f"{path}: INVALID (1 error)",
    ]


def test_cli_empty_file(tmp_path):
    path = write(tmp_path, "", "empty.xml")
    result = _validate(str(path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [f"{path}: the file is empty", f"{path}: INVALID (1 error)"]


def test_cli_valid_and_invalid_files(tmp_path):
    good_path = write(tmp_path, DOCS["manifest"][0], "manifest.xml")
    bad_path = write(tmp_path, edit(DOCS["positions"][0], (("<Description>Buyer</Description>", ""),)),
                     "positions.xml")
    result = _validate(str(good_path), str(bad_path))
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        f"{good_path}: valid (Manifest, 2 records)",
        f"{bad_path}:4:3: Element 'Position': an upsert needs the child element 'Description' "
        "(at /Positions/Position[2])",
        f"{bad_path}: INVALID (1 error)",
    ]


def test_cli_missing_file_exits_2_and_validates_nothing(tmp_path):
    present = write(tmp_path, DOCS["customers"][0], "customers.xml")
    missing = tmp_path / "nope.xml"
    result = _validate(str(present), str(missing))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == f"{missing}: no such file\n"


def _errors(count: int) -> str:
    """A masterdata export with ``count`` errors, one per line from line 3."""
    body = "".join(f'  <CommunicationMethod code="M{i}" displayInMobile="maybe"/>\n' for i in range(count))
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<MasterdataExport {_HEAD}>\n{body}</MasterdataExport>\n'


def test_cli_lists_1000_errors_and_counts_the_rest(tmp_path):
    path = write(tmp_path, _errors(1500), "many.xml")
    result = _validate(str(path))
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert len(lines) == 1002
    for i, line in enumerate(lines[:1000]):
        column = 33 + len(str(i))  # of displayInMobile, after code="M<i>"
        assert line == (
            f"{path}:{i + 3}:{column}: Element 'CommunicationMethod', attribute 'displayInMobile': 'maybe' is not a "
            f"valid value of the atomic type 'xs:boolean'. (at /MasterdataExport/CommunicationMethod[{i + 1}])"
        )
    assert lines[1000] == f"{path}: ... and 500 more errors not listed"
    assert lines[1001] == f"{path}: INVALID (1500 errors)"


@pytest.mark.parametrize("count, listed, more", [(1000, 1000, None), (1001, 1000, 1)])
def test_error_cap_boundary(count, listed, more, tmp_path):
    path = write(tmp_path, _errors(count))
    verdict = validate_file(path)
    assert len(verdict.report.problems) == listed
    assert verdict.report.count == count
    lines = verdict.lines()
    assert lines[-1] == f"{path}: INVALID ({count} errors)"
    if more is None:
        assert len(lines) == listed + 1
    else:
        assert lines[-2] == f"{path}: ... and {more} more errors not listed"
