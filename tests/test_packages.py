"""Mobile packages (FORMATS.md section 2, RULES.md F5): checked in process and by the CLI.

Each case runs through ``exchange.package.check_package`` and through
``python -m exchange validate``, asserts the exact problem lines (texts
from package.py, positions as ``FILE[:MEMBER][:LINE:COLUMN]: message``),
and that checking wrote nothing: the package folder, the working folder
and the temporary folder are listed before and after.

"Stopped reading early" is proved without touching the code: the member's
recorded CRC-32 is corrupted, and zipfile only checks a CRC once a member
has been read to its end. A checker that stops early reports the size
problem; one that reads everything reports "Bad CRC-32" (the control
tests show both).
"""

from __future__ import annotations

import re
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from exchange.package import MemberRefused, check_package, open_member
from packages_util import (
    CliRun,
    Entry,
    LoopbackServer,
    build_package,
    corrupt_crc,
    count_records,
    from_mobile_customers,
    listing,
    manifest_xml,
    run_cli,
    set_encrypted_flag,
    sha256,
    to_mobile_customers,
    valid_from_mobile,
    valid_to_mobile,
    write_zeros_package,
    write_zip,
    zeros_sha256,
    zip_info,
)

DOCTYPE_REFUSED = "DOCTYPE is not allowed (F5): documents must not declare a DTD or entities"
POSITIONS = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<Positions xmlns="urn:cee-mobile:to-mobile:v1">\n'
    b'  <Position code="BUYER" action="upsert"><Description>Buyer</Description></Position>\n'
    b'  <Position code="OLD_POS" action="delete"/>\n'
    b"</Positions>\n"
)


@dataclass
class Sandbox:
    """Where packages are made, and the folders that must stay untouched while they are checked."""

    packages: Path
    cwd: Path
    tmp: Path

    def path(self, name: str = "package.zip") -> Path:
        return self.packages / name

    def _untouched(self, action):
        before = listing(self.packages, self.cwd, self.tmp)
        result = action()
        assert listing(self.packages, self.cwd, self.tmp) == before, "checking a package wrote a file"
        return result

    def check(self, path: Path, **options):
        return self._untouched(lambda: check_package(path, **options))

    def cli(self, path: Path) -> CliRun:
        run = self._untouched(lambda: run_cli("validate", path, cwd=self.cwd, tmpdir=self.tmp))
        assert "Traceback" not in run.stdout and "Traceback" not in run.stderr, run.output
        return run


@pytest.fixture
def sandbox(tmp_path, monkeypatch) -> Sandbox:
    box = Sandbox(tmp_path / "packages", tmp_path / "cwd", tmp_path / "tmp")
    for folder in (box.packages, box.cwd, box.tmp):
        folder.mkdir()
    monkeypatch.chdir(box.cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(box.tmp))
    return box


@pytest.fixture
def loopback():
    server = LoopbackServer()
    yield server
    server.close()


def problem_lines(check, path: Path) -> list[str]:
    return check.report.lines(str(path))


def assert_rejected(sandbox: Sandbox, path: Path, expected: list[str | re.Pattern], **options) -> None:
    """check_package and the CLI both report exactly ``expected`` ("{P}" stands for the path)."""
    expected = [e if isinstance(e, re.Pattern) else e.replace("{P}", str(path)) for e in expected]

    def matches(lines: list[str]) -> bool:
        return len(lines) == len(expected) and all(
            (e.fullmatch(line) if isinstance(e, re.Pattern) else e == line) for e, line in zip(expected, lines))

    check = sandbox.check(path, **options)
    assert not check.valid
    lines = problem_lines(check, path)
    assert matches(lines), "\n".join(lines)
    if options:  # the CLI has no option for max_bytes: the in-process check is the test
        return
    run = sandbox.cli(path)
    assert run.returncode == 1, run.output
    out = run.stdout.splitlines()
    errors = "1 error" if len(expected) == 1 else f"{len(expected)} errors"
    assert out[-1] == f"{path}: INVALID ({errors})", run.output
    assert matches(out[:-1]), run.output
    assert run.stderr == ""


def P(pattern: str, path_placeholder: str = "{P}") -> re.Pattern:
    """A line pattern; ``{P}`` is any path (the real one is checked by the plain-text lines)."""
    return re.compile(re.escape(pattern).replace(re.escape(path_placeholder), r".+").replace(r"\#", r"\d+"))


# ---------------------------------------------------------------- valid packages


@pytest.mark.parametrize("direction,data_name,data,records", [
    ("to-mobile", "customers.xml", to_mobile_customers(), 2),
    ("to-mobile", "positions.xml", POSITIONS, 2),
    ("from-mobile", "customers.xml", from_mobile_customers(), 2),
], ids=["to-mobile customers", "to-mobile positions", "from-mobile customers"])
@pytest.mark.parametrize("compression", [zipfile.ZIP_DEFLATED, zipfile.ZIP_STORED], ids=["deflate", "stored"])
def test_valid_package(sandbox, direction, data_name, data, records, compression):
    path = build_package(sandbox.path(), {data_name: data}, direction=direction, sequence=7,
                         compression=compression)
    check = sandbox.check(path)
    assert check.valid, problem_lines(check, path)
    manifest = check.manifest
    assert (manifest.package_id, manifest.direction, manifest.channel, manifest.sequence, manifest.mode) == (
        "MOB-MOBILE-PL-00000007", direction, "MOBILE-PL", 7, "delta")
    assert [(e.name, e.records, e.bytes, e.sha256) for e in manifest.entries] == [
        (data_name, records, len(data), sha256(data))]
    run = sandbox.cli(path)
    assert run.returncode == 0, run.output
    assert run.stdout == f"{path}: valid (package MOB-MOBILE-PL-00000007, {direction}, {records} records)\n"


def test_helper_counts_records_like_the_checker():
    assert count_records(to_mobile_customers()) == 2
    assert count_records(from_mobile_customers()) == 2
    assert count_records(POSITIONS) == 2


# -------------------------------------------------------------- manifest vs members


@pytest.mark.parametrize("build", [valid_to_mobile, valid_from_mobile], ids=["to-mobile", "from-mobile"])
def test_member_not_in_manifest(sandbox, build):
    path = build(sandbox.path(), extra=[("notes.txt", b"hello\n")])
    assert_rejected(sandbox, path, ["{P}: member 'notes.txt' is not listed in the manifest (F5)"])


def test_listed_member_missing(sandbox):
    path = valid_to_mobile(sandbox.path(), omit=["customers.xml"])
    assert_rejected(sandbox, path, [
        "{P}: member 'customers.xml' is listed in the manifest but missing from the package"])


def test_no_manifest(sandbox):
    path = valid_to_mobile(sandbox.path(), omit=["manifest.xml"])
    assert_rejected(sandbox, path, ["{P}: no manifest.xml in the package"])


def test_manifest_lists_a_member_twice(sandbox):
    data = to_mobile_customers()
    path = build_package(sandbox.path(), {"customers.xml": data}, entries=[Entry.of("customers.xml", data)] * 2)
    assert_rejected(sandbox, path, ["{P}:manifest.xml: the manifest lists a member more than once"])


def test_checksum_mismatch(sandbox):
    data = to_mobile_customers()
    tampered = data.replace(b"Acme Trading", b"Acme Tradinq")
    assert len(tampered) == len(data)
    path = build_package(sandbox.path(), {"customers.xml": tampered}, entries=[Entry.of("customers.xml", data)])
    assert_rejected(sandbox, path, [
        f"{{P}}:customers.xml: SHA-256 is {sha256(tampered)}, the manifest says {sha256(data)}"])


def test_size_declared_larger_than_member(sandbox):
    data = to_mobile_customers()
    entry = Entry.of("customers.xml", data)
    entry.bytes = len(data) + 10
    path = build_package(sandbox.path(), {"customers.xml": data}, entries=[entry])
    assert_rejected(sandbox, path, [f"{{P}}:customers.xml: size is {len(data)} bytes, the manifest says {len(data) + 10}"])


def test_size_declared_smaller_than_member(sandbox):
    data = to_mobile_customers()
    entry = Entry.of("customers.xml", data)
    entry.bytes = len(data) - 10
    path = build_package(sandbox.path(), {"customers.xml": data}, entries=[entry])
    assert_rejected(sandbox, path, [
        f"{{P}}:customers.xml: member expands past its declared size of {len(data) - 10} bytes (F5)"])


# ------------------------------------------------------------- member names and kinds


BAD_NAMES = {
    "../customers.xml": "path leaves the package ('..')",
    "../../etc/cron.d/x": "path leaves the package ('..')",
    "/etc/x": "absolute path",
    "C:\\x": "absolute path",
    "c:/windows/x.xml": "absolute path",
    "sub\\customers.xml": "backslash in name",
    "..\\customers.xml": "backslash in name",
    "sub/customers.xml": "not at the top level",
    "./customers.xml": "not at the top level",
}


@pytest.mark.parametrize("name", BAD_NAMES)
def test_member_name_outside_the_package_root(sandbox, name):
    path = valid_to_mobile(sandbox.path(), extra=[(name, b"<x/>")])
    with zipfile.ZipFile(path) as zf:
        assert name in zf.namelist()  # the archive really holds that name, unchanged
    assert_rejected(sandbox, path, [f"{{P}}: member '{name}' refused: {BAD_NAMES[name]} (F5)"])


def test_listed_data_file_as_symlink(sandbox):
    """customers.xml is a symbolic link (Unix mode 0120777); size and checksum match its bytes."""
    target = b"/etc/passwd"
    manifest = manifest_xml("to-mobile", [Entry("customers.xml", 2, len(target), sha256(target))])
    path = write_zip(sandbox.path(), [("manifest.xml", manifest), (zip_info("customers.xml", mode=0o120777), target)])
    assert_rejected(sandbox, path, ["{P}: member 'customers.xml' refused: symbolic link (F5)"])


def test_symlink_member_beside_the_data(sandbox):
    path = valid_to_mobile(sandbox.path(), extra=[(zip_info("link", mode=0o120777), b"../../etc/passwd")])
    assert_rejected(sandbox, path, ["{P}: member 'link' refused: symbolic link (F5)"])


def test_duplicate_data_member(sandbox):
    """A second customers.xml after the checked one: which would an extractor keep?"""
    other = to_mobile_customers().replace(b"Acme Trading", b"Evil Trading")
    path = valid_to_mobile(sandbox.path(), extra=[("customers.xml", other)])
    with zipfile.ZipFile(path) as zf:
        assert zf.namelist().count("customers.xml") == 2
    assert_rejected(sandbox, path, ["{P}: member 'customers.xml' refused: appears more than once (F5)"])


def test_duplicate_manifest(sandbox):
    second = manifest_xml("to-mobile", [Entry.of("customers.xml", to_mobile_customers())], sequence=99)
    path = valid_to_mobile(sandbox.path(), extra=[("manifest.xml", second)])
    assert_rejected(sandbox, path, ["{P}: member 'manifest.xml' refused: appears more than once (F5)"])


def test_directory_entry_is_refused(sandbox):
    path = valid_to_mobile(sandbox.path(), extra=[(zip_info("sub/", mode=0o040755), b"")])
    check = sandbox.check(path)
    assert [p.message.split(":")[0] for p in check.report.problems] == ["member 'sub/' refused"]
    run = sandbox.cli(path)
    assert run.returncode == 1 and f"{path}: member 'sub/' refused: " in run.stdout, run.output


def test_directory_entry_message(sandbox):
    path = valid_to_mobile(sandbox.path(), extra=[(zip_info("sub/", mode=0o040755), b"")])
    assert_rejected(sandbox, path, ["{P}: member 'sub/' refused: directory entry (F5)"])


def test_encrypted_member(sandbox):
    path = valid_to_mobile(sandbox.path())
    set_encrypted_flag(path, "customers.xml")
    assert_rejected(sandbox, path, ["{P}: member 'customers.xml' refused: encrypted (F5)"])


@pytest.mark.parametrize("method,number", [(zipfile.ZIP_BZIP2, 12), (zipfile.ZIP_LZMA, 14)], ids=["bzip2", "lzma"])
def test_other_compression_methods(sandbox, method, number):
    data = to_mobile_customers()
    manifest = manifest_xml("to-mobile", [Entry.of("customers.xml", data)])
    path = write_zip(sandbox.path(), [("manifest.xml", manifest), (zip_info("customers.xml", compression=method), data)])
    assert_rejected(sandbox, path, [
        f"{{P}}: member 'customers.xml' refused: compression method {number} (only stored and deflate are allowed)"])


def test_control_characters_in_member_name_cannot_forge_output(sandbox):
    forged = "\nother.zip: valid (package MOB-MOBILE-PL-00000001, to-mobile, 2 records)\n"
    path = valid_to_mobile(sandbox.path(), extra=[(forged, b"x")])
    check = sandbox.check(path)
    assert not check.valid
    run = sandbox.cli(path)
    assert run.returncode == 1
    assert all(line.startswith(f"{path}:") for line in run.stdout.splitlines()), run.stdout
    assert "control character in name" in run.stdout


# ----------------------------------------------------------- expansion and bombs


FIFTY_MB = 50 << 20


def _zeros_declared(sandbox: Sandbox, name: str, size: int, declared: int, crc_ok: bool) -> Path:
    path = write_zeros_package(sandbox.path(name), "customers.xml", size,
                               Entry("customers.xml", 2, declared, zeros_sha256(declared)))
    if not crc_ok:
        corrupt_crc(path, "customers.xml")
    return path


def test_member_far_bigger_than_declared_stops_reading_early(sandbox):
    """50 MB of zeros declared as 100 bytes: refused after ~101 bytes, never reaching the (bad) CRC."""
    path = _zeros_declared(sandbox, "liar.zip", FIFTY_MB, 100, crc_ok=False)
    assert_rejected(sandbox, path, ["{P}:customers.xml: member expands past its declared size of 100 bytes (F5)"])


def test_control_reading_the_whole_member_hits_the_bad_crc(sandbox):
    """The proof's control: declared honestly, the member is read to its end and the CRC trap fires."""
    path = _zeros_declared(sandbox, "honest.zip", FIFTY_MB, FIFTY_MB, crc_ok=False)
    check = sandbox.check(path)
    assert problem_lines(check, path) == [f"{path}: not a readable ZIP package: Bad CRC-32 for file 'customers.xml'"]


def test_member_far_bigger_than_declared_is_cheap(sandbox):
    """The same through the CLI: small peak memory, and far quicker than inflating the member."""
    liar = _zeros_declared(sandbox, "liar.zip", FIFTY_MB, 100, crc_ok=True)
    honest = _zeros_declared(sandbox, "honest.zip", FIFTY_MB, FIFTY_MB, crc_ok=True)

    def best_of_three(path: Path) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            check = check_package(path)
            times.append(time.perf_counter() - start)
        assert not check.valid
        return min(times)

    assert best_of_three(liar) * 4 < best_of_three(honest)
    run = sandbox.cli(liar)
    assert run.returncode == 1
    assert f"{liar}:customers.xml: member expands past its declared size of 100 bytes (F5)" in run.stdout
    assert run.max_rss_mb < 100, run.max_rss_mb


# ------------------------------------------------ MemberReader: parse and verify in one pass


def test_member_reader_stops_one_byte_past_the_declared_size(sandbox):
    path = _zeros_declared(sandbox, "liar.zip", FIFTY_MB, 100, crc_ok=False)
    entry = Entry("customers.xml", 2, 100, zeros_sha256(100))
    with open_member(path, entry, verify=True) as member:
        with pytest.raises(MemberRefused, match=r"^member expands past its declared size of 100 bytes \(F5\)$"):
            member.read(60)  # it reads ahead, and the first block already tells
        assert member.size == 101  # not a byte more, so the bad CRC at the end is never reached
        with pytest.raises(MemberRefused):  # and it stays refused
            member.read(1)
        assert member.problems() == ("member expands past its declared size of 100 bytes (F5)",)


def test_member_reader_verifies_what_the_parser_left_unread(sandbox):
    path = _zeros_declared(sandbox, "zeros.zip", 1 << 20, 1 << 20, crc_ok=True)
    honest = Entry("customers.xml", 2, 1 << 20, zeros_sha256(1 << 20))
    with open_member(path, honest, verify=True) as member:
        member.read(10)  # a parser that gave up early
        assert member.problems() == ()
        assert member.size == 1 << 20
    wrong = Entry("customers.xml", 2, (1 << 20) + 5, sha256(b"other"))
    with open_member(path, wrong, verify=True) as member:
        assert member.problems() == (f"size is {1 << 20} bytes, the manifest says {(1 << 20) + 5}",
                                     f"SHA-256 is {zeros_sha256(1 << 20)}, the manifest says {sha256(b'other')}")


def test_member_reader_hands_out_the_member_in_the_sizes_asked_for(sandbox):
    data = bytes(range(256)) * 9000  # more than one of its blocks
    path = sandbox.path("p.zip")
    write_zip(path, [("customers.xml", data)])
    entry = Entry("customers.xml", 0, len(data), sha256(data))
    with open_member(path, entry, verify=True) as member:
        parts = [member.read(1000), member.read(32768), member.read(-1), member.read(10)]
        assert [len(p) for p in parts] == [1000, 32768, len(data) - 33768, 0]
        assert b"".join(parts) == data
        assert member.problems() == ()


def test_member_reader_without_verify_only_limits(sandbox):
    path = _zeros_declared(sandbox, "zeros.zip", 1000, 1000, crc_ok=True)
    with open_member(path, Entry("customers.xml", 2, 1000, sha256(b"wrong")), verify=False) as member:
        assert member.read(5000) == bytes(1000)
        assert member.read(5000) == b""
        with pytest.raises(ValueError, match="verify=True"):
            member.problems()


GIB = 1 << 30
BOMB_SIZE = GIB + (1 << 20)  # a little over the default max_package_bytes (1 GiB)


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    """A GiB of zeros (deflated to about a MiB), declared honestly in the manifest."""
    folder = tmp_path_factory.mktemp("bomb")
    path = write_zeros_package(folder / "bomb.zip", "customers.xml", BOMB_SIZE,
                               Entry("customers.xml", 0, BOMB_SIZE, zeros_sha256(BOMB_SIZE)))
    assert path.stat().st_size < 4 << 20
    corrupt_crc(path, "customers.xml")  # reading it all would end in "Bad CRC-32"
    return path


@pytest.mark.slow
def test_zip_bomb_over_max_bytes_is_refused_fast(sandbox, bomb):
    path = sandbox.path("bomb.zip")
    path.write_bytes(bomb.read_bytes())
    start = time.perf_counter()
    # Declared honestly, the bomb is refused from its manifest, before a byte of it is inflated.
    assert_rejected(sandbox, path, [
        f"{{P}}:manifest.xml: the manifest declares {BOMB_SIZE} bytes, more than max_package_bytes "
        "(1048576 bytes) (F5)"], max_bytes=1 << 20)
    assert time.perf_counter() - start < 1.0


@pytest.mark.slow
def test_zip_bomb_over_default_max_bytes_via_cli(sandbox, bomb):
    """Through the CLI (default 1 GiB): refused, in flat memory, without reaching the end of the member."""
    path = sandbox.path("bomb.zip")
    path.write_bytes(bomb.read_bytes())
    run = sandbox.cli(path)
    assert run.returncode == 1, run.output
    assert run.stdout == (f"{path}:manifest.xml: the manifest declares {BOMB_SIZE} bytes, more than "
                          f"max_package_bytes ({GIB} bytes) (F5)\n"
                          f"{path}: INVALID (1 error)\n")
    assert run.max_rss_mb < 100, run.max_rss_mb


# --------------------------------------------------------------- not what it claims


def test_nested_zip_as_data_file(sandbox):
    inner = valid_to_mobile(sandbox.path("inner.zip")).read_bytes()
    sandbox.path("inner.zip").unlink()
    path = build_package(sandbox.path(), {"customers.xml": inner}, entries=[Entry("customers.xml", 2, len(inner), sha256(inner))])
    assert_rejected(sandbox, path, ["{P}:customers.xml:1:1: not well-formed XML: Start tag expected, '<' not found"])


def test_nested_zip_as_extra_listed_member(sandbox):
    data = to_mobile_customers()
    inner = valid_to_mobile(sandbox.path("inner.zip")).read_bytes()
    sandbox.path("inner.zip").unlink()
    path = build_package(sandbox.path(), {"customers.xml": data, "inner.zip": inner},
                         entries=[Entry.of("customers.xml", data), Entry("inner.zip", 0, len(inner), sha256(inner))])
    assert_rejected(sandbox, path, [
        "{P}:manifest.xml: entry 'inner.zip' is not a data file of a to-mobile package "
        "(expected customers.xml or positions.xml)",
        "{P}:manifest.xml: a package holds one data file; this manifest lists 2 (customers.xml, inner.zip)"])


@pytest.mark.parametrize("content", [b"this is not a zip\n" * 20, b"", b"PK\x03\x04" + bytes(200)],
                         ids=["text", "empty", "ZIP magic then junk"])
def test_not_a_zip(sandbox, content):
    path = sandbox.path("fake.zip")
    path.write_bytes(content)
    assert_rejected(sandbox, path, ["{P}: not a readable ZIP package: File is not a zip file"])


def test_truncated_zip(sandbox):
    whole = valid_to_mobile(sandbox.path("whole.zip")).read_bytes()
    sandbox.path("whole.zip").unlink()
    path = sandbox.path("cut.zip")
    path.write_bytes(whole[: len(whole) // 2])
    assert_rejected(sandbox, path, ["{P}: not a readable ZIP package: File is not a zip file"])


def test_wrong_direction_for_entry(sandbox):
    path = build_package(sandbox.path(), {"positions.xml": POSITIONS}, direction="from-mobile")
    assert_rejected(sandbox, path, [
        "{P}:manifest.xml: entry 'positions.xml' is not a data file of a from-mobile package (expected customers.xml)"])


def test_wrong_direction_for_data_file(sandbox):
    """A to-mobile manifest carrying Mobile's ReturnedCustomers as customers.xml."""
    path = build_package(sandbox.path(), {"customers.xml": from_mobile_customers()}, direction="to-mobile")
    assert_rejected(sandbox, path, [P(
        "{P}:customers.xml:#:1: root element is 'ReturnedCustomers' (urn:cee-mobile:from-mobile:v1), "
        "expected 'Customers' (urn:cee-mobile:to-mobile:v1)")])


def test_to_mobile_package_with_two_data_files(sandbox):
    path = build_package(sandbox.path(), {"customers.xml": to_mobile_customers(), "positions.xml": POSITIONS})
    check = sandbox.check(path)
    assert not check.valid


@pytest.mark.parametrize("declared", [3, 0, 1])
def test_record_count_differs(sandbox, declared):
    data = to_mobile_customers()
    path = build_package(sandbox.path(), {"customers.xml": data},
                         entries=[Entry.of("customers.xml", data, records=declared)])
    assert_rejected(sandbox, path, [f"{{P}}:customers.xml: holds 2 records, the manifest says {declared}"])


def test_data_file_invalid_against_its_schema(sandbox):
    data = (to_mobile_customers()
            .replace(b'<Customer id="10001" action="upsert">', b'<Customer id="10001" action="bogus">')
            .replace(b"<Surname>Schmidt</Surname>", b"<Surname>Schmidt</Surname><Nope/>"))
    path = build_package(sandbox.path(), {"customers.xml": data}, entries=[Entry.of("customers.xml", data, records=2)])
    assert_rejected(sandbox, path, [
        "{P}:customers.xml:3:24: Element 'Customer', attribute 'action': [facet 'enumeration'] The value 'bogus' "
        "is not an element of the set {'upsert', 'delete'}. (at /Customers/Customer[1])",
        "{P}:customers.xml:14:33: Element 'Nope': This element is not expected. Expected is one of "
        "( FirstName, Position, Contact ). (at /Customers/Customer[1]/ContactPerson[2]/Nope[1])",
    ])


def test_data_file_with_external_entity(sandbox, tmp_path):
    secret = "CANARY-package-data-7f3a"
    canary = tmp_path / "canary.txt"
    canary.write_text(secret)
    data = to_mobile_customers().replace(
        b'<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE Customers [<!ENTITY x SYSTEM "{canary.as_uri()}">]>\n'.encode()
    ).replace(b"<Name>Acme Trading Sp. z o.o.</Name>", b"<Name>&x;</Name>")
    path = build_package(sandbox.path(), {"customers.xml": data}, entries=[Entry("customers.xml", 2, len(data), sha256(data))])
    assert_rejected(sandbox, path, [f"{{P}}:customers.xml:1:1: {DOCTYPE_REFUSED}"])
    assert secret not in sandbox.cli(path).output


# -------------------------------------------------------------------- the manifest


def _broken_manifest() -> bytes:
    return manifest_xml("to-mobile", [Entry.of("customers.xml", to_mobile_customers())]).replace(b"</Manifest>\n", b"")


def test_manifest_not_well_formed_message_is_clean(sandbox):
    path = valid_to_mobile(sandbox.path(), manifest=_broken_manifest())
    assert_rejected(sandbox, path, ["{P}:manifest.xml:6:1: not well-formed XML: Premature end of data in tag Manifest line 2"])


def test_manifest_invalid_against_its_schema(sandbox):
    data = to_mobile_customers()
    path = build_package(sandbox.path(), {"customers.xml": data},
                         entries=[Entry("customers.xml", 2, len(data), "NOT-A-SHA")])
    check = sandbox.check(path)
    assert not check.valid and check.manifest is None
    lines = problem_lines(check, path)
    assert lines and all(line.startswith(f"{path}:manifest.xml:5:") for line in lines), lines
    assert any("'NOT-A-SHA'" in line for line in lines), lines


def test_manifest_larger_than_a_mebibyte(sandbox):
    manifest = manifest_xml("to-mobile", [Entry.of("customers.xml", to_mobile_customers())]).replace(
        b"</Manifest>", b"<!--" + b"x" * (1 << 20) + b"--></Manifest>")
    path = valid_to_mobile(sandbox.path(), manifest=manifest)
    assert_rejected(sandbox, path, ["{P}:manifest.xml: manifest.xml is larger than 1048576 bytes"])


def test_manifest_with_doctype(sandbox):
    manifest = manifest_xml("to-mobile", [Entry.of("customers.xml", to_mobile_customers())],
                            doctype='<!DOCTYPE Manifest [<!ENTITY owner "me">]>\n')
    path = valid_to_mobile(sandbox.path(), manifest=manifest)
    assert_rejected(sandbox, path, [f"{{P}}:manifest.xml:1:1: {DOCTYPE_REFUSED}"])


@pytest.mark.parametrize("kind", [
    "external entity", "external DTD", "parameter entity",
    "billion laughs",
])
def test_manifest_with_hostile_doctype_fetches_nothing(sandbox, loopback, kind):
    url = loopback.url
    doctype = {
        "external entity": f'<!DOCTYPE Manifest [<!ENTITY x SYSTEM "{url}/x.txt">]>\n',
        "external DTD": f'<!DOCTYPE Manifest SYSTEM "{url}/manifest.dtd">\n',
        "parameter entity": f'<!DOCTYPE Manifest [<!ENTITY % p SYSTEM "{url}/p.dtd"> %p;]>\n',
        "billion laughs": "<!DOCTYPE Manifest [<!ENTITY l0 \"lol\">"
                          + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)) + "]>\n",
    }[kind]
    manifest = manifest_xml("to-mobile", [Entry.of("customers.xml", to_mobile_customers())], doctype=doctype)
    if kind != "external DTD":
        manifest = manifest.replace(b'mode="delta">', b'mode="delta">' + (b"&x;" if kind == "external entity" else
                                                                         b"&leak;" if kind == "parameter entity"
                                                                         else b"&l9;"))
    path = valid_to_mobile(sandbox.path(), manifest=manifest)
    check = sandbox.check(path)
    run = sandbox.cli(path)
    assert loopback.contacts() == []
    assert problem_lines(check, path) == [f"{path}:manifest.xml:1:1: {DOCTYPE_REFUSED}"]
    assert run.returncode == 1 and f"{path}:manifest.xml:1:1: {DOCTYPE_REFUSED}" in run.stdout, run.output
    assert loopback.secret not in run.output and "lollol" not in run.output
    assert run.max_rss_mb < 200, run.max_rss_mb
