"""The one place parsers are made (F5).

Every parser in the project comes from here, built so that nothing in a
document can make it read another file, reach the network or expand
entities: no DTD is loaded, no entity is resolved, no network is allowed,
huge trees are refused, and XInclude is never processed (we never call
``xinclude()``). A document that carries a DOCTYPE at all is refused
outright, before its root element is looked at.
"""

from __future__ import annotations

from typing import IO, Iterable, Iterator

from lxml import etree

XINCLUDE_NS = "http://www.w3.org/2001/XInclude"

#: The options every parser is built with. ``huge_tree=False`` keeps
#: libxml2's limits on text size (10 MB) and nesting depth (256).
SAFE_OPTIONS = dict(
    resolve_entities=False,
    no_network=True,
    load_dtd=False,
    huge_tree=False,
    dtd_validation=False,
)


class HostileDocument(Exception):
    """The document tried something F5 forbids (DOCTYPE, XInclude)."""

    def __init__(self, message: str, line: int | None = None):
        super().__init__(message)
        self.line = line


def parser(**extra) -> etree.XMLParser:
    """A tree parser with the safe options (for small documents only)."""
    return etree.XMLParser(**SAFE_OPTIONS, **extra)


def pull_parser(events: Iterable[str], **extra) -> etree.XMLPullParser:
    """A push/pull parser with the safe options, fed by the caller."""
    return etree.XMLPullParser(events=tuple(events), **SAFE_OPTIONS, **extra)


def iterparse(source: IO[bytes], events: Iterable[str] = ("end",), **extra) -> etree.iterparse:
    """A streaming parser with the safe options over an open binary file."""
    return etree.iterparse(source, events=tuple(events), **SAFE_OPTIONS, **extra)


def records(source: IO[bytes], tags: tuple[str, ...]) -> Iterator[etree._Element]:
    """The top-level records of a document, for reading their values; each
    is dropped from the tree once the caller is done with it.

    Comments and processing instructions are left out of the tree: libxml2
    then joins the text around them, so an element's ``.text`` is its whole
    value, as the schema saw it. With them, ``.text`` stops at the first one
    (``<Name>Foo<!-- x -->Bar</Name>`` would read as ``Foo``).
    """
    for _event, element in iterparse(source, events=("end",), tag=tags, remove_comments=True, remove_pis=True):
        yield element
        element.clear()
        while element.getprevious() is not None:
            del element.getparent()[0]


def refuse_doctype(element: etree._Element) -> None:
    """Raise HostileDocument if the document of ``element`` has a DOCTYPE.

    Call it on the first start event: the DOCTYPE, if any, was read before
    the root element and is known by then.
    """
    docinfo = element.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.system_url:
        raise HostileDocument(
            "DOCTYPE is not allowed (F5): documents must not declare a DTD or entities",
            line=1,
        )


def _declares_doctype(data: bytes) -> bool:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "<!DOCTYPE" in data.decode("utf-16", "replace")
    return b"<!DOCTYPE" in data


def parse_bytes(data: bytes) -> etree._ElementTree:
    """Parse a small document held in memory (a manifest), refusing DOCTYPEs.

    The bytes are looked at before parsing, so that a DOCTYPE is refused as
    such, whatever its internal subset would make the parser say.
    """
    if _declares_doctype(data):
        raise HostileDocument(
            "DOCTYPE is not allowed (F5): documents must not declare a DTD or entities", line=1)
    tree = etree.ElementTree(etree.fromstring(data, parser()))
    refuse_doctype(tree.getroot())
    return tree
