"""A big customer export cut in two (exchange.halves, exchange.second_half).

Where the cut goes, that the halves read as the whole does, and that what
crosses the cut (a customer number in both halves, a Customer after a
DeletedCustomer) or a cut in the wrong place never changes a verdict or a
package. End-to-end runs use ``EXCHANGE_SPLIT_MIN_BYTES=1``, so that small
exports are cut as a big one would be.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from exchange import halves, ledger_spool
from exchange.ledger import Ledger
from exchange.ledger_spool import LedgerSpool
from exchange.xml.checks import CustomerExportChecks, KeySet
from exchange.xml.schemas import KINDS
from workspace_util import (
    CEE_NS,
    Workspace,
    customer,
    customers,
    cut_small_files,
    deleted_customer,
    masterdata,
    method,
    occupation,
    person,
)

CUSTOMERS = KINDS[f"{{{CEE_NS}}}CustomerExport"]
MD = masterdata("MD-1", "2026-11-27T22:00:00Z", occupations=[occupation("SALES_MGR", "Sales manager")],
                methods=[method("Business", True)])


def export(count: int, first: int = 10001, deleted: tuple[str, ...] = (), export_id: str = "CU-1") -> bytes:
    return customers(export_id, "2026-11-27T22:01:00Z", records=[
        customer(str(first + i), f"Customer {i}",
                 persons=[person(str(50001 + i), f"Surname {i}", occupation="SALES_MGR", classifications=["Sales"])])
        for i in range(count)], deleted=deleted)


def read_half(reader: halves.HalfReader) -> bytes:
    parts = []
    while data := reader.read(7):
        parts.append(data)
    return b"".join(parts)


# ------------------------------------------------------------------ the cut


def test_an_export_below_the_limit_is_not_cut(tmp_path: Path):
    path = tmp_path / "c.xml"
    path.write_bytes(export(50))
    assert halves.find_split(path) is None


def test_the_cut_is_at_a_top_level_record_near_the_middle(tmp_path: Path, cut_small):
    path = tmp_path / "c.xml"
    data = export(40)
    path.write_bytes(data)
    split = halves.find_split(path)
    assert split is not None
    # the first record that starts after the parent's share of the bytes
    assert split.cut == data.index(b"<Customer ", int(len(data) * halves._SHARE))
    assert 0.4 < split.cut / len(data) < 0.7
    assert split.head == (b'<?xml version="1.0" encoding="UTF-8"?>\n<CustomerExport xmlns="' + CEE_NS.encode()
                          + b'" exportId="CU-1" salesChannel="MOBILE-PL" createdAt="2026-11-27T22:01:00Z" '
                          b'changedSince="last-transfer">')
    assert split.tail == b"</CustomerExport>"
    first, second = read_half(split.first()), read_half(split.second())
    assert first == data[:split.cut] + b"</CustomerExport>"
    assert second == split.head + data[split.cut:]


def test_the_halves_hold_the_records_of_the_whole(tmp_path: Path, cut_small):
    path = tmp_path / "c.xml"
    path.write_bytes(export(40, deleted=("90001", "90002", "90003")))
    split = halves.find_split(path)
    numbers = []
    for reader in (split.first(), split.second()):
        order = halves.HalfOrder()
        with reader:
            numbers += [el.get("number") for el in halves.validated_records(reader, CUSTOMERS,
                                                                            CustomerExportChecks(), order)]
    assert numbers == [str(10001 + i) for i in range(40)] + ["90001", "90002", "90003"]


def test_a_prefixed_root_is_closed_and_reopened_with_its_prefix(tmp_path: Path, cut_small):
    body = "".join(f'  <c:Customer number="{n}"><c:Name>N{n}</c:Name></c:Customer>\n' for n in range(1, 30))
    data = (f'<?xml version="1.0"?>\n<c:CustomerExport xmlns:c="{CEE_NS}" exportId="E" salesChannel="MOBILE-PL" '
            f'createdAt="2026-11-27T22:01:00Z" changedSince="anytime">\n{body}</c:CustomerExport>\n').encode()
    path = tmp_path / "c.xml"
    path.write_bytes(data)
    split = halves.find_split(path)
    assert split.tail == b"</c:CustomerExport>"
    assert split.head.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<c:CustomerExport xmlns:c="')
    for reader in (split.first(), split.second()):
        with reader:
            numbers = [el.get("number") for el in halves.validated_records(reader, CUSTOMERS, CustomerExportChecks(),
                                                                           halves.HalfOrder())]
        assert numbers  # each half is a valid export of its own


@pytest.mark.parametrize("declaration", [
    b'<?xml version="1.0" encoding="ISO-8859-2"?>\n',
    b'<?xml version="1.1" encoding="UTF-8"?>\n',
])
def test_an_export_not_in_plain_utf8_xml_1_0_is_not_cut(tmp_path: Path, cut_small, declaration: bytes):
    path = tmp_path / "c.xml"
    path.write_bytes(declaration + export(40).split(b"\n", 1)[1])
    assert halves.find_split(path) is None


def test_a_utf16_export_is_not_cut(tmp_path: Path, cut_small):
    path = tmp_path / "c.xml"
    path.write_bytes(export(40).decode().replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16"))
    assert halves.find_split(path) is None


def test_a_half_that_is_cut_off_is_not_valid(tmp_path: Path, cut_small):
    path = tmp_path / "c.xml"
    path.write_bytes(export(40)[:-30])  # the second half loses its end
    split = halves.find_split(path)
    with split.second() as reader, pytest.raises(halves.HalfInvalid):
        for _ in halves.validated_records(reader, CUSTOMERS, CustomerExportChecks(), halves.HalfOrder()):
            pass


# ------------------------------------------------------------ end to end


def run_both(tmp_path: Path, monkeypatch, name: str, data: bytes) -> tuple[Workspace, Workspace]:
    """The same masterdata and export through a workspace that cuts and one that does not."""
    done = []
    for label, cut in (("whole", False), ("cut", True)):
        cut_small_files(monkeypatch, cut)
        ws = Workspace.create(tmp_path, name=label)
        ws.drop("md.xml", MD)
        assert ws.run().returncode == 0
        ws.drop(name, data)
        ws.run()
        done.append(ws)
    return done[0], done[1]


def ledger_rows(ws: Workspace) -> dict[str, list]:
    db = sqlite3.connect(ws.root / ".exchange" / "state.db")
    try:
        return {
            "events": db.execute("SELECT file_id, rule, subject, outcome, reason, customer, partner, code, count "
                                 "FROM events ORDER BY id").fetchall(),
            "sent": db.execute("SELECT * FROM sent_persons ORDER BY 1, 2, 3").fetchall(),
            "files": db.execute("SELECT name, state, sequence, output, records, error FROM files ORDER BY id").fetchall(),
        }
    finally:
        db.close()


def test_a_cut_export_gives_the_package_and_ledger_of_a_whole_one(tmp_path: Path, monkeypatch):
    whole, cut = run_both(tmp_path, monkeypatch, "c.xml", export(60, deleted=("90001",)))
    assert "c.xml: cut in two at byte" in cut.runs[-1].stderr, str(cut.runs[-1])
    assert "cut in two" not in whole.runs[-1].stderr
    assert cut.runs[-1].stdout == whole.runs[-1].stdout
    assert cut.package(2).data == whole.package(2).data
    assert cut.package(2).manifest["entries"] == whole.package(2).manifest["entries"]
    assert ledger_rows(cut) == ledger_rows(whole)


def test_a_customer_number_in_both_halves_is_rejected_as_in_a_whole_export(tmp_path: Path, monkeypatch):
    data = export(40, export_id="CU-DUP").replace(b'number="10040"', b'number="10003"')
    whole, cut = run_both(tmp_path, monkeypatch, "dup.xml", data)
    assert "customer number 10003 is in both halves" in cut.runs[-1].stderr, str(cut.runs[-1])
    assert cut.runs[-1].returncode == whole.runs[-1].returncode == 1
    assert cut.runs[-1].stdout == whole.runs[-1].stdout
    assert "duplicate customer number '10003'" in cut.runs[-1].stdout
    report = (cut.rejected / "dup.xml.error.txt").read_text(encoding="utf-8")
    assert report == (whole.rejected / "dup.xml.error.txt").read_text(encoding="utf-8")
    assert cut.package_names() == whole.package_names() == ["MOB_MOBILE-PL_00000001.zip"]


def test_a_customer_after_a_deleted_customer_across_the_cut_is_rejected(tmp_path: Path, monkeypatch):
    records = [customer(str(10001 + i), f"C{i}") for i in range(20)]
    # The first half ends in DeletedCustomers, and a comment long enough to hold the middle
    # of the file: the second half starts with a Customer.
    records[10:10] = [deleted_customer("90001"), deleted_customer("90002"), f"<!-- {'x' * 4000} -->\n"]
    data = customers("CU-ORDER", "2026-11-27T22:01:00Z", records=records)
    assert data.index(b"90002") < int(len(data) * halves._SHARE) < data.index(b'<Customer number="10011">')
    whole, cut = run_both(tmp_path, monkeypatch, "order.xml", data)
    assert "a Customer follows a DeletedCustomer across the cut" in cut.runs[-1].stderr, str(cut.runs[-1])
    assert cut.runs[-1].returncode == whole.runs[-1].returncode == 1
    assert cut.runs[-1].stdout == whole.runs[-1].stdout
    assert "order.xml" in cut.rejected_names()


def decoy_in_comment(pad: str) -> str:
    return f'<!-- {pad} ><Customer number="9"> -->\n'


def decoy_in_cdata(pad: str) -> str:
    # Blanks inside a start tag are allowed at any length: the middle of the file falls among them.
    return f'  <Customer number="9"{pad.replace("x", " ")}><Name><![CDATA[ ><Customer number="8">]]></Name></Customer>\n'


@pytest.mark.parametrize("decoy", [decoy_in_comment, decoy_in_cdata])
def test_a_cut_inside_a_comment_or_cdata_costs_time_not_the_verdict(tmp_path: Path, monkeypatch, decoy):
    """A record's start tag inside a comment or CDATA section: the cut lands there, the
    first half is then not well-formed, and the file is validated and processed whole."""
    body = export(6).decode()
    pad = "x" * (len(body) * 3)  # the middle of the file falls into the pad, before the decoy tag
    at = body.index('  <Customer number="10004">')
    data = (body[:at] + decoy(pad) + body[at:]).encode()
    whole, cut = run_both(tmp_path, monkeypatch, "decoy.xml", data)
    assert "decoy.xml: cut in two" in cut.runs[-1].stderr, str(cut.runs[-1])
    assert "a half is not valid" in cut.runs[-1].stderr, str(cut.runs[-1])
    assert cut.runs[-1].returncode == whole.runs[-1].returncode == 0, str(whole.runs[-1])
    assert cut.runs[-1].stdout == whole.runs[-1].stdout
    assert cut.package(2).data == whole.package(2).data
    assert ledger_rows(cut) == ledger_rows(whole)


def test_a_ledger_spool_left_by_a_crash_is_removed_by_the_next_run(tmp_path: Path):
    ws = Workspace.create(tmp_path)
    assert ws.run().returncode == 0  # creates the ledger
    stale = ws.root / ".exchange" / "half-0123456789abcdef.db"
    stale.write_bytes(b"left by a SIGKILL")
    kept = ws.root / ".exchange" / "notes-half.db"
    kept.write_bytes(b"not ours")
    assert ws.run().returncode == 0
    assert not stale.exists()
    assert kept.exists()


@pytest.mark.parametrize("in_memory", [1000, 2], ids=["first half's numbers in memory", "spilled to disk"])
def test_taking_a_spool_finds_a_customer_number_of_both_halves(tmp_path: Path, in_memory: int):
    """The cross-cut check of ledger_spool.take, whether the first half's numbers are
    still in memory or spilled to disk; nothing of the spool is taken then."""
    ledger = Ledger(tmp_path / "state.db")
    seen = KeySet(in_memory=in_memory)
    for number in ("10001", "10002", "10003", "10004"):
        seen.add(number)

    def spool_with(numbers: list[str]) -> Path:
        path = ledger_spool.spool_path(ledger.path)
        spool = LedgerSpool(ledger.path, path)
        spool.keep_numbers(numbers)
        spool.mark_sent("MOBILE-PL", [(n, "50001") for n in numbers])
        spool.close()
        return path

    for numbers, found in ((["10005", "10003", "10006"], "10003"), (["10007", "10008"], None)):
        path = spool_with(numbers)
        with ledger.transaction():
            file_id = ledger.add_file(sha256="x", name="c.xml", inbox="cee", state="claimed")
            with ledger.bulk():
                assert ledger_spool.take(ledger, path, "MOBILE-PL", file_id, seen).result() == found
        ledger_spool.detach(ledger)
        sent = ledger.db.execute("SELECT customer FROM sent_persons ORDER BY 1").fetchall()
        assert sent == ([] if found else [("10007",), ("10008",)])
        ledger.db.execute("DELETE FROM sent_persons")
    assert "10005" not in seen  # asked, never added
    ledger.close()


def test_an_export_whose_root_cannot_be_read_is_not_cut(tmp_path: Path, cut_small):
    path = tmp_path / "c.xml"
    path.write_bytes(b'<?xml version="1.0" encoding="UTF-8"?>\n<CustomerExport exportId="E" a="1" a="2">\n'
                     + export(20).split(b"\n", 2)[2])
    assert halves.find_split(path) is None
