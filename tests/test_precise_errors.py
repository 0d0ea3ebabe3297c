"""The precise report of a document with many errors: where each one is, and how many.

The report path (:mod:`exchange.xml.precise`) places every schema error at
the line and column of its start tag, or of the attribute the message names
(in characters, the local name of a prefixed attribute). It lists 1,000
problems per file and counts the rest: past the cap nothing is placed any
more, but every error up to where reading stops still counts.

Each test writes a real file and runs it through
:func:`exchange.validation.validate_file`, as ``exchange validate`` does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.validation import validate_file
from exchange.xml.validate import read_root

DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
HEAD = ('xmlns="urn:cee-mobile:cee-export:v1" exportId="E-1" salesChannel="MOBILE-PL" '
        'createdAt="2026-11-27T22:00:00Z" changedSince="anytime"')
NOT_ALLOWED = "Element 'MasterdataExport', attribute '{0}': The attribute '{0}' is not allowed. (at /MasterdataExport)"
MAYBE = ("Element 'CommunicationMethod', attribute 'displayInMobile': 'maybe' is not a valid value of the atomic "
         "type 'xs:boolean'. (at /MasterdataExport/CommunicationMethod[{0}])")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.xml"
    path.write_bytes(text.encode("utf-8"))
    return path


def methods(count: int, end: str = "\n", first: int = 0) -> str:
    """``count`` CommunicationMethods, each with one error (``displayInMobile="maybe"``)."""
    return "".join(f'  <CommunicationMethod code="M{i}" displayInMobile="maybe"/>{end}'
                   for i in range(first, first + count))


def test_five_bad_attributes_of_the_root_over_several_lines(tmp_path):
    path = write(tmp_path, (
        f"{DECL}"
        '<MasterdataExport bad1="x"\n'
        '    xmlns="urn:cee-mobile:cee-export:v1" exportId="E-1" salesChannel="MOBILE-PL"\n'
        '    createdAt="2026-11-27T22:00:00Z" changedSince="anytime" bad2="bad3=" bad3 = \'z\'\n'
        '  bad4="a\n'
        'b>ż" xmlns:x="urn:example:extra" x:bad5="1">\n'
        "</MasterdataExport>\n"))
    assert validate_file(path).lines() == [
        f"{path}:2:19: {NOT_ALLOWED.format('bad1')}",
        f"{path}:4:61: {NOT_ALLOWED.format('bad2')}",
        # not at column 67, the "bad3=" inside the value of bad2
        f"{path}:4:74: {NOT_ALLOWED.format('bad3')}",
        f"{path}:5:3: {NOT_ALLOWED.format('bad4')}",
        # columns count characters: the "ż" before it is two bytes
        f"{path}:6:36: {NOT_ALLOWED.format('bad5')}",
        f"{path}: INVALID (5 errors)",
    ]


@pytest.mark.parametrize("separator, first, step", [
    pytest.param(" ", (2, 152), (0, 10), id="one line"),
    pytest.param("\n  ", (3, 3), (1, 0), id="one a line"),
])
def test_5000_bad_attributes_list_1000_and_count_the_rest(separator, first, step, tmp_path):
    attributes = separator.join(f'a{i:04}="x"' for i in range(5000))
    path = write(tmp_path, f"{DECL}<MasterdataExport {HEAD}{separator}{attributes}>\n</MasterdataExport>\n")
    verdict = validate_file(path)
    assert len(verdict.report.problems) == 1000
    assert verdict.report.more == 4000
    lines = verdict.lines()
    assert len(lines) == 1002
    last = (first[0] + 999 * step[0], first[1] + 999 * step[1])
    assert lines[0] == f"{path}:{first[0]}:{first[1]}: {NOT_ALLOWED.format('a0000')}"
    assert lines[999] == f"{path}:{last[0]}:{last[1]}: {NOT_ALLOWED.format('a0999')}"
    assert lines[1000:] == [f"{path}: ... and 4000 more errors not listed", f"{path}: INVALID (5000 errors)"]


@pytest.mark.parametrize("end, first, last", [
    pytest.param("\n", (3, 34), (1002, 36), id="one a line"),
    pytest.param("", (2, 185), (2, 60017), id="one line"),
])
def test_5000_bad_elements_list_1000_and_count_the_rest(end, first, last, tmp_path):
    # Some 300 KB: the errors past the cap come in several blocks of 64 KiB.
    path = write(tmp_path, f"{DECL}<MasterdataExport {HEAD}>{end}{methods(5000, end)}</MasterdataExport>\n")
    lines = validate_file(path).lines()
    assert len(lines) == 1002
    assert lines[0] == f"{path}:{first[0]}:{first[1]}: {MAYBE.format(1)}"
    assert lines[999] == f"{path}:{last[0]}:{last[1]}: {MAYBE.format(1000)}"
    assert lines[1000:] == [f"{path}: ... and 4000 more errors not listed", f"{path}: INVALID (5000 errors)"]


@pytest.mark.parametrize("tail, count", [
    pytest.param('  <CommunicationMethod code="Z" displ', 5001, id="cut inside a tag"),
    pytest.param("", 5001, id="cut after a tag"),
    pytest.param("<a></b></MasterdataExport>\n", 5002, id="not well-formed"),
    # nesting too deep stops the reading: the errors before it count, those after it are never read
    pytest.param("<x>" * 300 + "</x>" * 300 + methods(100, first=5000) + "</MasterdataExport>\n", 5002,
                 id="nested too deep"),
])
def test_past_the_cap_every_error_up_to_where_reading_stops_counts(tail, count, tmp_path):
    path = write(tmp_path, f"{DECL}<MasterdataExport {HEAD}>\n{methods(5000)}{tail}")
    verdict = validate_file(path)
    assert len(verdict.report.problems) == 1000
    assert verdict.report.count == count
    assert verdict.lines()[999] == f"{path}:1002:36: {MAYBE.format(1000)}"


def test_errors_past_line_65535_are_placed(tmp_path):
    # libxml2 keeps a node's line in 16 bits; the report used to crash on a record past it.
    valid = "".join(f'  <CommunicationMethod code="G{i}" displayInMobile="true"/>\n' for i in range(70000))
    path = write(tmp_path, (f"{DECL}<MasterdataExport {HEAD}>\n{valid}{methods(1)}"
                            '  <CommunicationMethod code="G5" displayInMobile="true"/>\n</MasterdataExport>\n'))
    assert validate_file(path).lines() == [
        f"{path}:70003:34: {MAYBE.format(70001)}",
        f"{path}:70004:24: Element 'CommunicationMethod', attribute 'code': duplicate communication method code "
        "'G5'; a communication method code appears at most once in a masterdata export "
        "(at /MasterdataExport/CommunicationMethod[70002])",
        f"{path}: INVALID (2 errors)",
    ]


def test_the_root_attributes_are_read_in_order_with_their_namespaces(tmp_path):
    path = write(tmp_path, f'{DECL}<MasterdataExport {HEAD} xmlns:x="urn:example:extra" x:flag="a &amp; b"\n'
                           '    xml:lang="pl"></MasterdataExport>\n')
    with open(path, "rb") as source:
        root = read_root(source)
    assert list(root.attrib.items()) == [
        ("exportId", "E-1"), ("salesChannel", "MOBILE-PL"), ("createdAt", "2026-11-27T22:00:00Z"),
        ("changedSince", "anytime"), ("{urn:example:extra}flag", "a & b"),
        ("{http://www.w3.org/XML/1998/namespace}lang", "pl"),
    ]
    assert (root.tag, root.line) == ("{urn:cee-mobile:cee-export:v1}MasterdataExport", 2)


def test_a_crlf_cut_by_the_end_of_a_block_ends_one_line(tmp_path):
    # The report reads 64 KiB at a time: the comment puts the CR of line 2 at the
    # last byte of the first block, its LF at the first of the second.
    head = DECL.replace("\n", "\r\n") + "<!--"
    text = (head + "x" * (65535 - len(head) - len("-->")) + "-->\r\n"
            f"<MasterdataExport {HEAD}>\r\n" + methods(1, "\r\n") + "</MasterdataExport>\r\n")
    assert text.encode()[65535:65537] == b"\r\n"
    path = write(tmp_path, text)
    assert validate_file(path).lines() == [f"{path}:4:34: {MAYBE.format(1)}", f"{path}: INVALID (1 error)"]
