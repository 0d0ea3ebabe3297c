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


def organization(o: Organization) -> str:
    parts = [f'  <Organization externalId="{o.external_id}">\n    <Name>{text(o.name)}</Name>']
    if o.tax_id is not None:
        parts.append(f"<TaxId>{text(o.tax_id)}</TaxId>")
    if o.address is not None:
        parts.append(address(o.address))
    parts.append(_communications(o.communications))
    parts.append(f'\n    <SalesChannelAssignment salesChannel="{attr(o.sales_channel)}"/>\n  </Organization>\n')
    return "".join(parts)


def person(p: Person) -> str:
    parts = [f'  <Person externalId="{p.external_id}">\n    <Surname>{text(p.surname)}</Surname>']
    if p.first_name is not None:
        parts.append(f"<FirstName>{text(p.first_name)}</FirstName>")
    if p.occupation is not None:
        parts.append(f"<Occupation>{text(p.occupation)}</Occupation>")
    parts.extend(f"<Classification>{text(c)}</Classification>" for c in p.classifications)
    parts.append(_communications(p.communications))
    if p.employee_of is not None:
        parts.append(f'\n    <EmployeeOf customer="{attr(p.employee_of)}"/>\n  </Person>\n')
    else:
        parts.append(f'\n    <EmployeeOfNew externalId="{p.employee_of_new}"/>\n  </Person>\n')
    return "".join(parts)


def removal(r: ContactPersonRemoval) -> str:
    return f'  <ContactPersonRemoval customer="{attr(r.customer)}" partner="{attr(r.partner)}"/>\n'
