"""Inbound test helpers: return packages (FORMATS.md section 2, "From Mobile") and
CEE import documents (section 3) as plain data.

* ``ret_person``, ``new_customer``, ``ret_customer``, ``returned`` write a
  from-mobile ``customers.xml`` from a few arguments;
  ``return_package`` wraps it in a ZIP with a correct from-mobile manifest
  (built by ``packages_util.build_package``).
* ``parse_import`` reads a CEE import document strictly (wrong namespace,
  an unknown element or attribute, a child out of order fail the reading)
  into a dict, so that ``==`` with the expected structure built by
  ``org``/``pers``/``removal`` is an element-by-element comparison.
* ``InboundWorkspace`` is ``workspace_util.Workspace`` with the inbound
  folders.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from packages_util import Entry, build_package, sha256
from workspace_util import (
    CHANNEL,
    UTC_STAMP,
    CliRun,
    Workspace,
    _address,
    _attributes,
    _check,
    _children,
    _leaf,
    _local,
    _parse,
    address,
)

FROM_MOBILE_NS = "urn:cee-mobile:from-mobile:v1"
CEE_IMPORT_NS = "urn:cee-mobile:cee-import:v1"
DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'


def mid(n: int) -> str:
    """A readable, valid mobileId: ``mid(7)`` is ``00000000-0000-4000-8000-000000000007``."""
    return f"00000000-0000-4000-8000-{n:012x}"


def ext(n_or_id: int | str) -> str:
    return f"mobile:{mid(n_or_id) if isinstance(n_or_id, int) else n_or_id}"


# ------------------------------------------------------- from-mobile builders


def contact(kind: str, value: str) -> str:
    return f'<Contact kind="{kind}">{escape(value)}</Contact>'


ret_address = address  # the Address element of a return package is the one of a CEE export


def ret_person(mobile_id: str, surname: str, *, first: str | None = None, position: str | None = None,
               contacts: Iterable[str] = ()) -> str:
    body = [f"<Surname>{escape(surname)}</Surname>"]
    if first is not None:
        body.append(f"<FirstName>{escape(first)}</FirstName>")
    if position is not None:
        body.append(f'<Position code="{position}"/>')
    body += list(contacts)
    return f'<ContactPerson mobileId="{mobile_id}">' + "".join(body) + "</ContactPerson>"


def new_customer(mobile_id: str, name: str, *, created_at: str = "2026-11-27T15:10:00+01:00",
                 tax_id: str | None = None, addr: str | None = None, contacts: Iterable[str] = (),
                 persons: Iterable[str] = ()) -> str:
    body = [f"<Name>{escape(name)}</Name>"]
    if tax_id is not None:
        body.append(f"<TaxId>{tax_id}</TaxId>")
    if addr is not None:
        body.append(addr)
    body += list(contacts)
    body += list(persons)
    return (f'  <NewCustomer mobileId="{mobile_id}" createdAt="{created_at}">' + "".join(body)
            + "</NewCustomer>\n")


def ret_customer(id: str, *, persons: Iterable[str] = (), deleted: Iterable[str] = ()) -> str:
    body = list(persons) + [f'<DeletedContactPerson id="{p}"/>' for p in deleted]
    return f'  <Customer id="{id}">' + "".join(body) + "</Customer>\n"


def returned(records: Iterable[str] = (), *, device: str = "TAB-017", representative: str = "REP-03",
             created_at: str = "2026-11-27T16:45:00+01:00") -> bytes:
    """A from-mobile ``customers.xml``: NewCustomer records must come before Customer records."""
    return (f'{DECL}<ReturnedCustomers xmlns="{FROM_MOBILE_NS}" device={quoteattr(device)}\n'
            f'    representative={quoteattr(representative)} createdAt="{created_at}">\n'
            + "".join(records) + "</ReturnedCustomers>\n").encode("utf-8")


def return_package(path: Path, data: bytes, *, channel: str = CHANNEL, sequence: int = 1,
                   created_at: str = "2026-11-27T16:46:00+01:00", package_id: str | None = None,
                   direction: str = "from-mobile", entries: list[Entry] | None = None,
                   records: int | None = None, **options) -> Path:
    """A return package at ``path`` holding ``customers.xml``; the manifest is correct unless told otherwise
    (``records`` overrides the counted records, and is needed when ``data`` is not XML)."""
    if package_id is None:
        package_id = f"RET-{channel}-{sequence:04d}"
    if entries is None and records is not None:
        entries = [Entry.of("customers.xml", data, records)]
    return build_package(Path(path), {"customers.xml": data}, direction=direction, entries=entries,
                         channel=channel, sequence=sequence, created_at=created_at, package_id=package_id,
                         **options)


# -------------------------------------------------------- expected structures


def comm_(kind: str, value: str, method: str = "Business") -> tuple[str, str, str]:
    return (kind, method, value)


def org(mobile_id: str, name: str, *, tax_id: str | None = None, address: dict | None = None,
        comms: Iterable[tuple[str, str, str]] = (), channel: str = CHANNEL) -> dict:
    out: dict = {"externalId": f"mobile:{mobile_id}", "Name": name}
    if tax_id is not None:
        out["TaxId"] = tax_id
    if address is not None:
        out["Address"] = address
    out["Communications"] = list(comms)
    out["SalesChannelAssignment"] = channel
    return out


def pers(mobile_id: str, surname: str, *, first: str | None = None, occupation: str | None = None,
         classifications: Iterable[str] = ("Sales",), comms: Iterable[tuple[str, str, str]] = (),
         employee_of: str | None = None, employee_of_new: str | None = None) -> dict:
    assert (employee_of is None) != (employee_of_new is None)
    out: dict = {"externalId": f"mobile:{mobile_id}", "Surname": surname}
    if first is not None:
        out["FirstName"] = first
    if occupation is not None:
        out["Occupation"] = occupation
    out["Classifications"] = list(classifications)
    out["Communications"] = list(comms)
    if employee_of is not None:
        out["EmployeeOf"] = employee_of
    else:
        out["EmployeeOfNew"] = f"mobile:{employee_of_new}"
    return out


def removal(customer: str, partner: str) -> dict:
    return {"customer": customer, "partner": partner}


# ------------------------------------------------------ reading import documents


def _communication(el) -> tuple[str, str, str]:
    attrs = _attributes(el, ["kind", "method"])
    _check(len(el) == 0, "<Communication> has children")
    return attrs["kind"], attrs["method"], el.text or ""


def _organization(el) -> dict:
    attrs = _attributes(el, ["externalId"])
    out: dict = {"externalId": attrs["externalId"], "Communications": []}
    kids = _children(el, CEE_IMPORT_NS, ["Name", "TaxId", "Address", "Communication", "SalesChannelAssignment"])
    for name, child in kids:
        if name == "Communication":
            out["Communications"].append(_communication(child))
        elif name == "Address":
            _check("Address" not in out, "Address twice")
            out["Address"] = _address(child, CEE_IMPORT_NS)
        elif name == "SalesChannelAssignment":
            _check(name not in out and len(child) == 0, "SalesChannelAssignment twice or with children")
            out[name] = _attributes(child, ["salesChannel"])["salesChannel"]
        else:
            _check(name not in out, f"<{name}> twice")
            out[name] = _leaf(child)
    _check("Name" in out and "SalesChannelAssignment" in out, f"Organization {attrs['externalId']} incomplete")
    return {k: out[k] for k in ("externalId", "Name", "TaxId", "Address", "Communications",
                                "SalesChannelAssignment") if k in out}


def _person(el) -> dict:
    attrs = _attributes(el, ["externalId"])
    out: dict = {"externalId": attrs["externalId"], "Classifications": [], "Communications": []}
    kids = _children(el, CEE_IMPORT_NS, ["Surname", "FirstName", "Occupation", "Classification",
                                         "Communication", "EmployeeOf", "EmployeeOfNew"])
    employers = [name for name, _ in kids if name in ("EmployeeOf", "EmployeeOfNew")]
    _check(len(employers) == 1, f"Person {attrs['externalId']}: employers {employers}")
    for name, child in kids:
        if name == "Classification":
            out["Classifications"].append(_leaf(child))
        elif name == "Communication":
            out["Communications"].append(_communication(child))
        elif name == "EmployeeOf":
            _check(len(child) == 0, "EmployeeOf with children")
            out[name] = _attributes(child, ["customer"])["customer"]
        elif name == "EmployeeOfNew":
            _check(len(child) == 0, "EmployeeOfNew with children")
            out[name] = _attributes(child, ["externalId"])["externalId"]
        else:
            _check(name not in out, f"<{name}> twice")
            out[name] = _leaf(child)
    _check("Surname" in out, "Person without Surname")
    return {k: out[k] for k in ("externalId", "Surname", "FirstName", "Occupation", "Classifications",
                                "Communications", "EmployeeOf", "EmployeeOfNew") if k in out}


def parse_import(data: bytes) -> dict:
    """A CEE import document as a dict: the root's attributes, then its three lists of records."""
    root = _parse(data)
    _check(_local(root, CEE_IMPORT_NS) == "CeeImport", f"root is {root.tag}, expected CeeImport")
    attrs = _attributes(root, ["importId", "salesChannel", "createdAt", "sourcePackage", "sourceSha256"])
    out = {**attrs, "Organizations": [], "Persons": [], "Removals": []}
    for name, el in _children(root, CEE_IMPORT_NS, ["Organization", "Person", "ContactPersonRemoval"]):
        if name == "Organization":
            out["Organizations"].append(_organization(el))
        elif name == "Person":
            out["Persons"].append(_person(el))
        else:
            _check(len(el) == 0, "ContactPersonRemoval with children")
            out["Removals"].append(_attributes(el, ["customer", "partner"]))
    return out


# ------------------------------------------------------------------ workspace


class InboundWorkspace(Workspace):
    """``workspace_util.Workspace`` plus the folders of the way back."""

    @property
    def inbox_mobile(self) -> Path:
        return self.root / "inbox" / "mobile"

    @property
    def outbox_cee(self) -> Path:
        return self.root / "outbox" / "cee"

    def drop_package(self, name: str, data: bytes) -> Path:
        """Put a complete package into inbox/mobile/ (written under a dot name, then renamed)."""
        path = self.inbox_mobile / name
        temp = self.inbox_mobile / f".{name}.writing"
        temp.write_bytes(data)
        os.replace(temp, path)
        return path

    def import_names(self) -> list[str]:
        return sorted(p.name for p in self.outbox_cee.iterdir())

    def import_doc(self, sequence: int, channel: str = CHANNEL) -> dict:
        return parse_import(self.import_bytes(sequence, channel))

    def import_bytes(self, sequence: int, channel: str = CHANNEL) -> bytes:
        return (self.outbox_cee / import_name(sequence, channel)).read_bytes()

    def mobile_inbox_names(self) -> list[str]:
        return sorted(p.name for p in self.inbox_mobile.iterdir())


def import_name(sequence: int, channel: str = CHANNEL) -> str:
    return f"CEEIMP_{channel}_{sequence:08d}.xml"


def import_header(doc: dict, *, sequence: int, source_name: str, source: bytes, run: CliRun,
                  channel: str = CHANNEL) -> None:
    """The root attributes of an import document made by ``run`` from the package bytes ``source``."""
    created = doc["createdAt"]
    assert UTC_STAMP.fullmatch(created), created
    stamp = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    assert run.started <= stamp <= run.finished, (created, run.started, run.finished)
    assert {k: doc[k] for k in ("importId", "salesChannel", "createdAt", "sourcePackage", "sourceSha256")} == {
        "importId": f"CEEIMP-{channel}-{sequence:08d}",
        "salesChannel": channel,
        "createdAt": created,
        "sourcePackage": source_name,
        "sourceSha256": sha256(source),
    }


def body(doc: dict) -> dict:
    """The records of an import document (everything but the root's attributes)."""
    return {k: doc[k] for k in ("Organizations", "Persons", "Removals")}
