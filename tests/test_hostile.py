"""F5: hostile XML documents, each run through the real command line.

Every hostile file must end with exit status 1, a clear message naming the
problem, no traceback, and proof that nothing was read or fetched: a
canary file's content never shows up, a loopback HTTP server sees no
connection at all. The documents otherwise use valid roots, so that a
refusal comes from the hostile part and not from an unknown root.

Control tests (``test_control_*``) show that the hostile files really are
hostile to a parser configured carelessly, and that the loopback server
really does see a request made to it: without them, "nothing was read"
could pass for the wrong reason.
"""

from __future__ import annotations

import random
import re
import secrets
import socket
import urllib.request
from pathlib import Path

import pytest
from lxml import etree

from packages_util import EXAMPLES, CliRun, LoopbackServer, listing, run_cli

CEE_EXPORT = "urn:cee-mobile:cee-export:v1"
ROOT_ATTRS = (f'xmlns="{CEE_EXPORT}" exportId="CU-20261127-01" salesChannel="MOBILE-PL" '
              'createdAt="2026-11-27T22:01:00Z" changedSince="anytime"')
DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
DOCTYPE_REFUSED = "DOCTYPE is not allowed (F5): documents must not declare a DTD or entities"
MAX_RSS_MB = 200


def export(body: str, prolog: str = "", extra_attrs: str = "") -> str:
    """A CustomerExport with a valid root; ``prolog`` goes between the declaration and the root."""
    return f"{DECL}{prolog}<CustomerExport {ROOT_ATTRS}{extra_attrs}>{body}</CustomerExport>\n"


def customer(name: str = "Acme", number: str = "10001") -> str:
    return f'<Customer number="{number}"><Name>{name}</Name></Customer>'


# ------------------------------------------------------------------ fixtures


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty folder the CLI runs in (its cwd and TMPDIR live under it)."""
    work = tmp_path / "work"
    (work / "tmp").mkdir(parents=True)
    return work


@pytest.fixture
def canary(tmp_path: Path) -> tuple[Path, str]:
    secret = f"CANARY-{secrets.token_hex(16)}"
    path = tmp_path / "secret" / "canary.txt"
    path.parent.mkdir()
    path.write_text(secret + "\n")
    return path, secret


@pytest.fixture
def loopback():
    server = LoopbackServer()
    yield server
    server.close()


def validate(path: Path, workdir: Path, **options) -> CliRun:
    """``python -m exchange validate PATH``, checked for the things every hostile run must show."""
    before = listing(workdir)
    run = run_cli("validate", path, cwd=workdir, tmpdir=workdir / "tmp", **options)
    assert "Traceback" not in run.stdout and "Traceback" not in run.stderr, run.output
    assert listing(workdir) == before, "validate wrote a file"
    return run


def assert_refused(run: CliRun, path: Path, message: str | re.Pattern) -> None:
    assert run.returncode == 1, run.output
    assert f"{path}: INVALID" in run.stdout, run.output
    if isinstance(message, re.Pattern):
        assert message.search(run.stdout), run.output
    else:
        assert message in run.stdout, run.output


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


# ------------------------------------------------------ controls: the tests can fail


def test_control_careless_parser_reads_the_canary(tmp_path, canary):
    """The XXE document below would leak the canary into a careless parser."""
    canary_path, secret = canary
    document = export(customer("&x;"), prolog=f'<!DOCTYPE CustomerExport [<!ENTITY x SYSTEM "{canary_path.as_uri()}">]>\n')
    careless = etree.XMLParser(resolve_entities=True)
    assert secret in etree.tostring(etree.fromstring(document.encode(), careless)).decode()


def test_control_xinclude_would_read_the_canary(tmp_path, canary):
    canary_path, secret = canary
    path = write(tmp_path, "xi.xml", _xinclude_text_document(canary_path))
    tree = etree.parse(str(path))
    tree.xinclude()
    assert secret in etree.tostring(tree).decode()


def test_control_loopback_server_sees_a_request(loopback):
    with urllib.request.urlopen(f"{loopback.url}/probe.dtd", timeout=10) as response:
        assert loopback.secret in response.read().decode()
    contacts = loopback.contacts()
    assert contacts[-1] == "request /probe.dtd" and contacts[0].startswith("connection from ('127.0.0.1',")


def test_control_loopback_server_sees_a_bare_connection(loopback):
    """A connection that never sends a request is still seen (the listen backlog is drained)."""
    with socket.create_connection(loopback.server_address[:2], timeout=10):
        contacts = loopback.contacts()
    assert contacts and all("connection" in contact for contact in contacts)


def test_control_valid_export_passes(tmp_path, workdir):
    """The same command, on the shipped example, exits 0: a refusal below is about the input."""
    path = write(tmp_path, "ok.xml", (EXAMPLES / "customers_20261127.xml").read_bytes())
    run = validate(path, workdir)
    assert run.returncode == 0, run.output
    assert f"{path}: valid (CustomerExport, 2 records)" in run.stdout


def test_control_documents_are_valid_without_their_hostile_part(tmp_path):
    """The skeleton every hostile document below is built on validates: a refusal is the hostile part's."""
    from exchange.validation import validate_file

    for name, body in (("plain", customer()), ("umlaut", customer("Kraków")), ("empty", "")):
        path = write(tmp_path, f"{name}.xml", export(body))
        verdict = validate_file(path)
        assert verdict.valid, verdict.lines()


# ------------------------------------------------------- entities, DTDs, network


def test_external_entity_to_local_file_is_not_read(tmp_path, workdir, canary):
    canary_path, secret = canary
    path = write(tmp_path, "xxe.xml", export(
        customer("&x;"), prolog=f'<!DOCTYPE CustomerExport [<!ENTITY x SYSTEM "{canary_path.as_uri()}">]>\n'))
    run = validate(path, workdir)
    assert_refused(run, path, re.compile(rf"^{re.escape(str(path))}:\d+:\d+: {re.escape(DOCTYPE_REFUSED)}$", re.M))
    assert secret not in run.output


def test_external_entity_by_plain_path_is_not_read(tmp_path, workdir, canary):
    """The same with a bare file path instead of a file: URI."""
    canary_path, secret = canary
    path = write(tmp_path, "xxe2.xml", export(
        customer("&x;"), prolog=f'<!DOCTYPE CustomerExport [<!ENTITY x SYSTEM "{canary_path}">]>\n'))
    run = validate(path, workdir)
    assert_refused(run, path, DOCTYPE_REFUSED)
    assert secret not in run.output


NETWORK_CASES = {
    "external general entity": lambda url: (
        f'<!DOCTYPE CustomerExport [<!ENTITY x SYSTEM "{url}/entity.txt">]>\n', customer("&x;")),
    "external DTD": lambda url: (
        f'<!DOCTYPE CustomerExport SYSTEM "{url}/export.dtd">\n', customer("&leak;")),
    "external DTD with PUBLIC id": lambda url: (
        f'<!DOCTYPE CustomerExport PUBLIC "-//CEE//Export//EN" "{url}/public.dtd">\n', customer()),
    "parameter entity": lambda url: (
        f'<!DOCTYPE CustomerExport [<!ENTITY % p SYSTEM "{url}/param.dtd"> %p;]>\n', customer("&leak;")),
}


@pytest.mark.parametrize("case", NETWORK_CASES)
def test_network_reference_is_not_fetched(tmp_path, workdir, loopback, case):
    prolog, body = NETWORK_CASES[case](loopback.url)
    path = write(tmp_path, "net.xml", export(body, prolog=prolog))
    run = validate(path, workdir)
    assert loopback.contacts() == []
    assert_refused(run, path, DOCTYPE_REFUSED)
    assert loopback.secret not in run.output


def test_billion_laughs_is_not_expanded(tmp_path, workdir):
    entities = ['<!ENTITY lol0 "lollollollollollollollollollol">']
    entities += [f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    prolog = "<!DOCTYPE CustomerExport [\n" + "\n".join(entities) + "\n]>\n"
    path = write(tmp_path, "laughs.xml", export(customer("&lol9;"), prolog=prolog))
    run = validate(path, workdir)
    assert_refused(run, path, DOCTYPE_REFUSED)
    assert "lollollol" not in run.output
    assert run.max_rss_mb < MAX_RSS_MB, run.max_rss_mb
    assert len(run.stdout) < 2000


def test_quadratic_blowup_entity_is_not_expanded(tmp_path, workdir):
    """One big entity referenced many times (no nesting, slips past nesting limits)."""
    prolog = f'<!DOCTYPE CustomerExport [<!ENTITY big "{"x" * 50_000}">]>\n'
    path = write(tmp_path, "quadratic.xml", export(customer("&big;" * 50_000), prolog=prolog))
    run = validate(path, workdir)
    assert_refused(run, path, DOCTYPE_REFUSED)
    assert run.max_rss_mb < MAX_RSS_MB, run.max_rss_mb


# ------------------------------------------------------------------- XInclude


def _xinclude_text_document(canary_path: Path) -> str:
    return export(customer(f'<xi:include href="{canary_path.as_uri()}" parse="text"/>'),
                  extra_attrs=' xmlns:xi="http://www.w3.org/2001/XInclude"')


def test_xinclude_of_local_file_is_not_processed(tmp_path, workdir, canary):
    canary_path, secret = canary
    path = write(tmp_path, "xi.xml", _xinclude_text_document(canary_path))
    run = validate(path, workdir)
    assert_refused(run, path, re.compile(
        rf"^{re.escape(str(path))}:2:\d+: Element 'include': XInclude is not allowed \(F5\)"
        r" \(at /CustomerExport/Customer\[1\]/Name\[1\]/include\[1\]\)$", re.M))
    assert secret not in run.output


def test_xinclude_that_would_make_the_document_valid_is_refused(tmp_path, workdir, canary):
    """An xi:include standing for a whole record: processed, the file would be valid."""
    canary_path, secret = canary
    included = tmp_path / "secret" / "record.xml"
    included.write_text(f'<Customer xmlns="{CEE_EXPORT}" number="10002"><Name>{secret}</Name></Customer>')
    path = write(tmp_path, "xi-record.xml", export(
        customer() + f'<xi:include href="{included.as_uri()}"/>',
        extra_attrs=' xmlns:xi="http://www.w3.org/2001/XInclude"'))
    control = etree.parse(str(path))
    control.xinclude()
    assert secret in etree.tostring(control).decode()  # what processing it would do
    run = validate(path, workdir)
    assert_refused(run, path, "Element 'include': XInclude is not allowed (F5)")
    assert secret not in run.output


# -------------------------------------------------------------- size and depth


def _big_text_document(path: Path, size: int) -> Path:
    with open(path, "w", encoding="ascii") as f:
        f.write(DECL + f'<CustomerExport {ROOT_ATTRS}><Customer number="10001"><Name>')
        block = "a" * (1 << 20)
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n
        f.write("</Name></Customer></CustomerExport>\n")
    return path


@pytest.mark.parametrize("megabytes", [20])
def test_huge_text_node_is_refused_in_modest_memory(tmp_path, workdir, megabytes):
    size = megabytes << 20
    path = _big_text_document(tmp_path / "big-text.xml", size)
    run = validate(path, workdir)
    assert run.returncode == 1, run.output
    assert f"{path}: INVALID" in run.stdout
    assert (f"{path}:2:1: not well-formed XML: a text node longer than 10,000,000 characters (F5) "
            "(at /CustomerExport/Customer[1]/Name[1])") in run.stdout, run.output
    assert len(run.stdout) < 4096, "the report must not echo the text node"
    assert run.max_rss_mb < MAX_RSS_MB, run.max_rss_mb


def test_bigger_text_node_stays_in_bounded_memory(tmp_path, workdir):
    path = _big_text_document(tmp_path / "bigger-text.xml", 60 << 20)
    run = validate(path, workdir)
    assert run.returncode == 1, run.output
    assert run.max_rss_mb < MAX_RSS_MB, run.max_rss_mb


def _deep_document(path: Path, depth: int) -> Path:
    path.write_text(export('<Customer number="10001">' * depth + "</Customer>" * depth))
    return path


def test_deeply_nested_document_is_refused(tmp_path, workdir):
    path = _deep_document(tmp_path / "deep.xml", 10_000)
    run = validate(path, workdir)
    assert_refused(run, path, re.compile(
        rf"^{re.escape(str(path))}:2:\d+: (Element 'Customer': This element is not expected\. Expected is \( Name \)\."
        r"|.*[Ee]xcessive depth)", re.M))


def test_deeply_nested_document_stays_in_bounded_memory(tmp_path, workdir):
    path = _deep_document(tmp_path / "deep.xml", 10_000)
    run = validate(path, workdir)
    assert run.returncode == 1, run.output
    assert run.max_rss_mb < MAX_RSS_MB, run.max_rss_mb


# --------------------------------------------------------------- junk and cuts


JUNK = {
    "random bytes": random.Random(20261127).randbytes(64 * 1024),
    "NUL bytes": bytes(4096),
    "ZIP magic in an .xml file": b"PK\x03\x04" + random.Random(5).randbytes(1024),
    "ELF header": b"\x7fELF\x02\x01\x01" + bytes(1000),
}
JUNK_MESSAGES = {
    "random bytes": "not well-formed XML: Start tag expected, '<' not found",
    "NUL bytes": "not well-formed XML:",
    "ZIP magic in an .xml file": "not a readable ZIP package: File is not a zip file",
    "ELF header": "not well-formed XML: Start tag expected, '<' not found",
}


@pytest.mark.parametrize("case", JUNK)
def test_binary_junk_is_refused(tmp_path, workdir, case):
    path = write(tmp_path, "junk.xml", JUNK[case])
    run = validate(path, workdir)
    assert_refused(run, path, JUNK_MESSAGES[case])


@pytest.mark.parametrize("content", [b"", b"   \n\n"], ids=["empty", "whitespace only"])
def test_empty_file_is_refused(tmp_path, workdir, content):
    path = write(tmp_path, "empty.xml", content)
    run = validate(path, workdir)
    expected = f"{path}: the file is empty" if not content else "not well-formed XML: Start tag expected, '<' not found"
    assert_refused(run, path, expected)


EXPORT = (EXAMPLES / "customers_20261127.xml").read_bytes()
_MIDDLE = len(EXPORT) // 2


@pytest.mark.parametrize("cut", [
    _MIDDLE,                                           # the middle of the file
    EXPORT.index(b"<Occupation>") + len(b"<Occup"),    # inside a tag name
    EXPORT.index(b'partner="50002"') + len(b'partner="50'),  # inside an attribute value
    EXPORT.index(b"</CustomerExport>"),                # just before the root closes
], ids=["middle", "in a tag name", "in an attribute value", "before the root's end tag"])
def test_truncated_export_is_refused(tmp_path, workdir, cut):
    path = write(tmp_path, "truncated.xml", EXPORT[:cut])
    run = validate(path, workdir)
    assert_refused(run, path, "not well-formed XML")
    if cut in (_MIDDLE, EXPORT.index(b"</CustomerExport>")):
        assert "(is the file truncated?)" in run.stdout, run.output


def test_every_truncation_of_an_export_is_refused(tmp_path):
    """In-process sweep over every cut point of a valid export: never valid, never an exception."""
    from exchange.validation import validate_file

    end = EXPORT.rindex(b"</CustomerExport>") + len(b"</CustomerExport>")
    path = tmp_path / "cut.xml"
    accepted = []
    for cut in range(end):
        path.write_bytes(EXPORT[:cut])
        verdict = validate_file(path)  # an exception fails the test here
        if verdict.valid:
            accepted.append(cut)
    assert accepted == []
    path.write_bytes(EXPORT[:end])
    assert validate_file(path).valid  # the sweep's control: the whole document passes


def test_export_cut_inside_root_start_tag_says_not_well_formed(tmp_path, workdir):
    cut = EXPORT.index(b"<CustomerExport") + len(b"<CustomerExport ")
    path = write(tmp_path, "cut-root.xml", EXPORT[:cut])
    run = validate(path, workdir)
    assert_refused(run, path, "not well-formed XML")
    assert "unknown root element" not in run.stdout


# ------------------------------------------------------------------ encodings


ENCODING_LIES = {
    "declares UTF-8, Latin-1 bytes": (
        export(customer("Kraków")).encode("latin-1"),
        "not well-formed XML: Invalid bytes in character encoding"),
    "declares UTF-16, ASCII bytes": (
        export(customer("Krakow")).replace("UTF-8", "UTF-16").encode("ascii"),
        "not well-formed XML: parsing XML declaration: '?>' expected"),
    "declares UTF-32, ASCII bytes": (
        export(customer("Krakow")).replace("UTF-8", "UTF-32").encode("ascii"),
        "not well-formed XML:"),
    "declares an unknown encoding": (
        export(customer("Krakow")).replace("UTF-8", "x-no-such-charset").encode("ascii"),
        "not well-formed XML: Unsupported encoding: x-no-such-charset"),
}


@pytest.mark.parametrize("case", ENCODING_LIES)
def test_lying_encoding_declaration_is_refused(tmp_path, workdir, case):
    content, message = ENCODING_LIES[case]
    path = write(tmp_path, "lying.xml", content)
    run = validate(path, workdir)
    assert_refused(run, path, message)
