"""libxml2's streaming validator (no tree) gives the verdicts lxml gives, refuses what
the safe parsers refuse (F5), and never leaves a writer blocked on its pipe."""

from __future__ import annotations

import io
import os
import socket
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from exchange.validation_child import _pull_parser_problem
from exchange.xml import safe, sax_validation
from exchange.xml.schemas import FROM_MOBILE, KINDS, schema
from exchange.xml.validate import Validation, fast_valid



def test_the_lxml_the_project_installs_exports_the_streaming_validator() -> None:
    """The tests below need libxml2's streaming validator; a broken detection must fail
    here, loudly, rather than skip them (the code's fallback to lxml is tested on its own)."""
    assert sax_validation.available()

EXAMPLE = (Path(__file__).resolve().parent.parent / "examples" / "from-mobile_customers.xml").read_bytes()
RETURNED = KINDS[f"{{{FROM_MOBILE}}}ReturnedCustomers"]
BODY = EXAMPLE.split(b"\n", 1)[1]  # without the XML declaration


def _sax(document: bytes) -> str | None:
    return sax_validation.stream_schema("from-mobile.xsd").validate_source(io.BytesIO(document))


def _lxml_valid(document: bytes) -> bool:
    """lxml's streaming fast path (validate.fast_valid)."""
    return fast_valid(io.BytesIO(document), Validation(RETURNED))


def _tree_valid(document: bytes) -> bool:
    """The reference: the whole document parsed into a tree by a safe parser, then validated."""
    try:
        tree = etree.fromstring(document, safe.parser()).getroottree()
    except etree.XMLSyntaxError:
        return False
    return tree.docinfo.doctype == "" and schema("from-mobile.xsd").validate(tree)


CORPUS = {
    "the example": EXAMPLE,
    "a comment, a PI and CDATA in values": EXAMPLE.replace(b"<Surname>Lewandowski", b"<Surname><!-- x --><?pi y?>Lew<![CDATA[and]]>owski"),
    "ISO-8859-2": EXAMPLE.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-2"').decode().encode("iso-8859-2"),
    "UTF-16": EXAMPLE.replace(b'encoding="UTF-8"', b'encoding="UTF-16"').decode().encode("utf-16"),
    "a byte order mark": b"\xef\xbb\xbf" + EXAMPLE,
    "no XML declaration": BODY,
    "a missing Surname": EXAMPLE.replace(b"<Surname>Lewandowski</Surname>", b""),
    "an unknown element": EXAMPLE.replace(b"<Surname>Lewandowski</Surname>", b"<Surname>L</Surname><Shoe/>"),
    "an attribute of no schema": EXAMPLE.replace(b'<Customer id="10001">', b'<Customer id="10001" x="1">'),
    "a wrong namespace": EXAMPLE.replace(b"urn:cee-mobile:from-mobile:v1", b"urn:cee-mobile:from-mobile:v2"),
    "tags that do not match": EXAMPLE.replace(b"</Surname><FirstName>", b"</Surnam><FirstName>"),
    "an undefined entity": EXAMPLE.replace(b"Lewandowski", b"&nope;"),
    "cut before the root's end": EXAMPLE[:EXAMPLE.rindex(b"</ReturnedCustomers>")],
    "cut inside a record": EXAMPLE[:EXAMPLE.index(b"<DeletedContactPerson")],
    "content after the root": EXAMPLE + b"<ReturnedCustomers/>",
    "text after the root": EXAMPLE + b"junk",
    "empty": b"",
    "not XML": b"PK\x03\x04 this is a ZIP",
    "an internal DTD": b'<?xml version="1.0"?>\n<!DOCTYPE ReturnedCustomers [<!ENTITY a "b">]>\n' + BODY,
    "billion laughs": b'<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;">]>\n'
                      + BODY.replace(b"Lewandowski", b"&lol2;"),
    "XML 1.1": EXAMPLE.replace(b'version="1.0"', b'version="1.1"'),
}
VALID = {"the example", "a comment, a PI and CDATA in values", "ISO-8859-2", "UTF-16", "a byte order mark",
         "no XML declaration", "XML 1.1"}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_the_verdict_is_lxml_s(name):
    document = CORPUS[name]
    assert (_sax(document) is None) == (name in VALID)
    assert _lxml_valid(document) == (name in VALID)
    assert _tree_valid(document) == (name in VALID)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(start=st.integers(0, len(EXAMPLE)), length=st.integers(0, 40),
       junk=st.sampled_from([b"", b"<", b">", b"&", b"x", b"<a>", b"</Name>", b"\x00", b"\xff", b'"']))
def test_a_damaged_document_gets_the_verdict_of_the_whole_tree(start, length, junk):
    document = EXAMPLE[:start] + junk + EXAMPLE[start + length:]
    assert (_sax(document) is None) == _tree_valid(document)


def test_the_first_problem_is_named_with_its_line():
    assert _sax(CORPUS["a missing Surname"]) == (
        "line 15: Element '{urn:cee-mobile:from-mobile:v1}FirstName': This element is not expected. "
        "Expected is ( {urn:cee-mobile:from-mobile:v1}Surname ).")
    assert _sax(CORPUS["tags that do not match"]) == \
        "line 15: Opening and ending tag mismatch: Surname line 15 and Surnam"
    assert _sax(CORPUS["an internal DTD"]) == "the document has a DOCTYPE, which is not allowed (F5)"
    assert _sax(CORPUS["cut before the root's end"]).startswith("line 19: Premature end of data")


def test_nothing_is_printed(capfd):
    for document in CORPUS.values():
        _sax(document)
    assert capfd.readouterr() == ("", "")


def test_an_external_dtd_is_never_fetched():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        document = (f'<?xml version="1.0"?>\n<!DOCTYPE ReturnedCustomers SYSTEM "http://127.0.0.1:{port}/x.dtd">\n'
                    ).encode() + BODY.replace(b"Lewandowski", b"&ext;")
        assert _sax(document) == "the document has a DOCTYPE, which is not allowed (F5)"
        with pytest.raises(BlockingIOError):
            server.accept()


def test_a_source_that_fails_makes_the_document_not_valid():
    class Refusing(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 100:
                raise ValueError("member expands past its declared size of 120 bytes (F5)")
            return super().read(size if 0 < size < 64 else 64)

    assert sax_validation.stream_schema("from-mobile.xsd").validate_source(Refusing(EXAMPLE)) == \
        "reading the document failed: member expands past its declared size of 120 bytes (F5)"


def test_the_pipe_is_read_to_its_end_after_the_first_problem():
    read_fd, write_fd = os.pipe()
    tail = b"<!-- padding -->" * (1 << 19)  # 8 MiB, far more than a pipe holds

    def write() -> None:
        with os.fdopen(write_fd, "wb") as out:
            out.write(b"<ReturnedCustomers xmlns='urn:cee-mobile:from-mobile:v1'><Nope/>" + tail)

    writer = threading.Thread(target=write)
    writer.start()
    try:
        problem = sax_validation.stream_schema("from-mobile.xsd").validate_fd(read_fd)
    finally:
        os.close(read_fd)
    writer.join(timeout=60)
    assert not writer.is_alive()
    assert problem == ("line 1: Element '{urn:cee-mobile:from-mobile:v1}ReturnedCustomers': "
                       "The attribute 'device' is required but missing.")


def test_a_schema_with_identity_constraints_is_refused():
    with pytest.raises(ValueError, match="cee-export.xsd has identity constraints"):
        sax_validation.StreamSchema("cee-export.xsd")


@pytest.mark.parametrize("name", sorted(set(CORPUS) - {"an internal DTD", "billion laughs"}))
def test_the_output_check_gives_the_verdict_of_lxml_s_pull_parser(name):
    """Where libxml2 cannot be reached, the output child keeps to lxml: same verdicts
    (on what we write, which never has a DOCTYPE; lxml would refuse only its entities)."""
    tags = (RETURNED.tag, *RETURNED.record_tags())
    verdicts = []
    for check in (lambda fd: sax_validation.stream_schema("from-mobile.xsd").validate_fd(fd),
                  lambda fd: _pull_parser_problem(fd, "from-mobile.xsd", tags)):
        read_fd, write_fd = os.pipe()
        writer = threading.Thread(target=lambda fd=write_fd: (os.write(fd, CORPUS[name]), os.close(fd)))
        writer.start()
        try:
            verdicts.append(check(read_fd) is None)
        finally:
            try:
                os.close(read_fd)
            except OSError:  # the pull parser closed it
                pass
        writer.join(timeout=60)
    assert verdicts == [name in VALID] * 2
