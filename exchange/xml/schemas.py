"""Which schema a document needs, chosen by its root element.

Five namespaces cross the processor (FORMATS.md). Each root element maps to
one :class:`DocumentKind`; an unknown root is rejected. Schemas come in two
flavours:

``full``
    the XSD as written in ``xsd/``, identity constraints (``xs:unique``)
    included. The contract; used for small documents and in tests.
``streaming``
    the same XSD with its identity constraints removed. libxml2 keeps about
    a kilobyte per customer to evaluate ``xs:unique`` while streaming, which
    breaks flat memory on big exports, so uniqueness is checked in code
    instead (:mod:`exchange.xml.checks`), with a set of the keys seen.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from exchange.xml import safe

XSD_DIR = Path(__file__).resolve().parent.parent / "xsd"
XS = "http://www.w3.org/2001/XMLSchema"

CEE_EXPORT = "urn:cee-mobile:cee-export:v1"
TO_MOBILE = "urn:cee-mobile:to-mobile:v1"
FROM_MOBILE = "urn:cee-mobile:from-mobile:v1"
MANIFEST = "urn:cee-mobile:manifest:v1"
CEE_IMPORT = "urn:cee-mobile:cee-import:v1"


@dataclass(frozen=True)
class DocumentKind:
    """One root element of one namespace, and what validates it."""

    namespace: str
    root: str
    xsd: str
    #: Local names of the top-level records (children of the root).
    records: tuple[str, ...]

    @property
    def tag(self) -> str:
        return f"{{{self.namespace}}}{self.root}"

    def record_tags(self) -> tuple[str, ...]:
        return tuple(f"{{{self.namespace}}}{name}" for name in self.records)


KINDS: dict[str, DocumentKind] = {
    kind.tag: kind
    for kind in (
        DocumentKind(CEE_EXPORT, "MasterdataExport", "cee-export.xsd", ("Occupation", "CommunicationMethod")),
        DocumentKind(CEE_EXPORT, "CustomerExport", "cee-export.xsd", ("Customer", "DeletedCustomer")),
        DocumentKind(TO_MOBILE, "Positions", "to-mobile.xsd", ("Position",)),
        DocumentKind(TO_MOBILE, "Customers", "to-mobile.xsd", ("Customer",)),
        DocumentKind(FROM_MOBILE, "ReturnedCustomers", "from-mobile.xsd", ("NewCustomer", "Customer")),
        DocumentKind(MANIFEST, "Manifest", "manifest.xsd", ("Source", "Entry")),
        DocumentKind(CEE_IMPORT, "CeeImport", "cee-import.xsd", ("Organization", "Person", "ContactPersonRemoval")),
    )
}


class UnknownRoot(Exception):
    """The root element belongs to none of the exchange's formats."""


def kind_for(tag: str) -> DocumentKind:
    """The document kind for a root element's Clark-notation tag."""
    try:
        return KINDS[tag]
    except KeyError:
        qname = etree.QName(tag)
        where = f"namespace '{qname.namespace}'" if qname.namespace else "no namespace"
        known = ", ".join(sorted({f"{k.root} ({k.namespace})" for k in KINDS.values()}))
        raise UnknownRoot(
            f"unknown root element '{qname.localname}' in {where}; expected one of: {known}"
        ) from None


def _load_xsd(name: str, streaming: bool) -> etree.XMLSchema:
    path = XSD_DIR / name
    tree = etree.parse(str(path), safe.parser())
    if streaming:
        for constraint in tree.iter(f"{{{XS}}}unique", f"{{{XS}}}key", f"{{{XS}}}keyref"):
            constraint.getparent().remove(constraint)
    return etree.XMLSchema(tree)


@functools.cache
def schema(xsd: str, streaming: bool = False) -> etree.XMLSchema:
    """The compiled schema of an XSD file in ``xsd/`` (cached per process)."""
    return _load_xsd(xsd, streaming)


def schema_for(kind: DocumentKind, streaming: bool = False) -> etree.XMLSchema:
    return schema(kind.xsd, streaming)
