"""Import records -> CEE import document text (``CeeImport``), by hand like
:mod:`exchange.xml.mobile`, and checked against cee-import.xsd as written."""

from __future__ import annotations

from exchange.records import Communication, ContactPersonRemoval, Organization, Person
from exchange.xml.mobile import XML_DECLARATION, address, attr, text
from exchange.xml.schemas import CEE_IMPORT


def document_open(import_id: str, channel: str, created_at: str, source_package: str, source_sha256: str) -> str:
    return (f'{XML_DECLARATION}<CeeImport xmlns="{CEE_IMPORT}" importId="{attr(import_id)}" '
            f'salesChannel="{attr(channel)}" createdAt="{created_at}" sourcePackage="{attr(source_package)}" '
            f'sourceSha256="{source_sha256}">\n')


def document_close() -> str:
    return "</CeeImport>\n"


def _communications(items: tuple[Communication, ...]) -> str:
    return "".join([f'<Communication kind="{c.kind}" method="{attr(c.method)}">{text(c.value)}</Communication>'
                    for c in items])


# The two below run once per record of a big return package: each optional part is
# a string of its own, "" when absent, and all go into one f-string, which costs
# less than a list of parts and a join.


def organization(o: Organization) -> str:
    tax_id = "" if o.tax_id is None else f"<TaxId>{text(o.tax_id)}</TaxId>"
    place = "" if o.address is None else address(o.address)
    communications = _communications(o.communications) if o.communications else ""
    return (f'  <Organization externalId="{o.external_id}">\n    <Name>{text(o.name)}</Name>{tax_id}{place}'
            f'{communications}\n    <SalesChannelAssignment salesChannel="{attr(o.sales_channel)}"/>\n'
            "  </Organization>\n")


def person(p: Person) -> str:
    first = "" if p.first_name is None else f"<FirstName>{text(p.first_name)}</FirstName>"
    occupation = "" if p.occupation is None else f"<Occupation>{text(p.occupation)}</Occupation>"
    classifications = "".join([f"<Classification>{text(c)}</Classification>" for c in p.classifications])
    communications = _communications(p.communications) if p.communications else ""
    employer = (f'<EmployeeOf customer="{attr(p.employee_of)}"/>' if p.employee_of is not None
                else f'<EmployeeOfNew externalId="{p.employee_of_new}"/>')
    return (f'  <Person externalId="{p.external_id}">\n    <Surname>{text(p.surname)}</Surname>{first}{occupation}'
            f"{classifications}{communications}\n    {employer}\n  </Person>\n")


def removal(r: ContactPersonRemoval) -> str:
    return f'  <ContactPersonRemoval customer="{attr(r.customer)}" partner="{attr(r.partner)}"/>\n'
