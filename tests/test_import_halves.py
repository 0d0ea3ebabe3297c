"""A big return package cut in two (exchange.halves.stream_cut, exchange.import_second_half).

Where the cut goes in a package member, and that the cut never changes an
import document, a run summary or the ledger: not when the halves are
clean, not when a mobileId is created in both halves (R12: one pass
instead), not when the cut falls inside a comment. End-to-end runs use
``EXCHANGE_SPLIT_MIN_BYTES=1``, so that small packages are cut as a big one
would be.
"""

from __future__ import annotations

import random
import re
import sqlite3
from pathlib import Path

import pytest
from inbound_util import (
    InboundWorkspace,
    contact,
    mid,
    new_customer,
    ret_customer,
    ret_person,
    return_package,
    returned,
)
from workspace_util import cut_small_files, masterdata, occupation

from exchange import halves, ledger_spool
from exchange.ledger import Ledger
from exchange.ledger_spool import ImportLedgerSpool
from exchange.package import check_package, open_member
from exchange.records import Decision

RECORDS = ("NewCustomer", "Customer")
MD = masterdata("MD-1", "2026-11-27T22:00:00Z", occupations=[
    occupation("SALES_MGR", "Sales manager"), occupation("OLD_POS", "Former position", marked=True)])


def package_data(count: int, seed: int = 7, repeat: tuple[int, int] | None = None) -> bytes:
    """``count`` records, new customers first: persons with and without positions (live,
    retired, unknown: R13), contacts, deletions (R14); ``repeat=(i, j)`` gives record
    ``j`` a contact person with the mobileId of record ``i``'s (R12)."""
    rng = random.Random(seed)
    records = []
    new = count * 2 // 5
    for i in range(count):
        persons = [ret_person(mid(100_000 + 10 * i + k), f"Nazwisko {i}.{k}", first=rng.choice((None, "Anna")),
                              position=rng.choice((None, "SALES_MGR", "OLD_POS", "NOPE")),
                              contacts=[contact("email", f"p{i}.{k}@example.com")] * rng.randrange(2))
                   for k in range(rng.randrange(4))]
        if repeat is not None and i == repeat[1]:
            persons.append(ret_person(mid(100_000 + 10 * repeat[0]), "Powtórka"))
        if i < new:
            records.append(new_customer(mid(i + 1), f"Firma {i} & Syn", persons=persons,
                                        contacts=[contact("phone", f"+48 12 {i:07d}")]))
        else:
            records.append(ret_customer(str(10_000 + i), persons=persons,
                                        deleted=[str(50_000 + i)] * rng.randrange(2)))
    return returned(records)


def run_both(tmp_path: Path, monkeypatch, data: bytes) -> tuple[InboundWorkspace, InboundWorkspace]:
    """The same package through a workspace without the cut and one with it."""
    package = return_package(tmp_path / "RET.zip", data).read_bytes()
    workspaces = []
    for label, cut in (("whole", False), ("cut", True)):
        cut_small_files(monkeypatch, cut)
        (tmp_path / label).mkdir()
        ws = InboundWorkspace.create(tmp_path / label)
        ws.drop("masterdata.xml", MD)
        assert ws.run().returncode == 0
        ws.drop_package("RET.zip", package)
        ws.runs.append(ws.run())
        workspaces.append(ws)
    return workspaces[0], workspaces[1]


def ledger_rows(ws: InboundWorkspace) -> dict[str, list]:
    with sqlite3.connect(ws.root / ".exchange" / "state.db") as db:
        return {
            "events": db.execute("SELECT f.name, rule, subject, outcome, reason, customer, partner, code, e.count "
                                 "FROM events e JOIN files f ON f.id = e.file_id ORDER BY e.id").fetchall(),
            "mobile_ids": db.execute("SELECT f.name, key, mobile_id, m.channel, organization, customer, reason "
                                     "FROM mobile_ids m JOIN files f ON f.id = m.file_id "
                                     "ORDER BY mobile_id").fetchall(),
            "files": db.execute("SELECT name, state, sequence, output, records FROM files ORDER BY id").fetchall(),
        }


def document(ws: InboundWorkspace) -> bytes:
    return re.sub(rb'createdAt="[^"]*"', b"", ws.import_bytes(1), count=1)


def assert_same(whole: InboundWorkspace, cut: InboundWorkspace) -> None:
    assert cut.runs[-1].returncode == whole.runs[-1].returncode == 0, str(cut.runs[-1])
    assert cut.runs[-1].stdout == whole.runs[-1].stdout
    assert document(cut) == document(whole)
    assert ledger_rows(cut) == ledger_rows(whole)


def member_halves(tmp_path: Path, data: bytes, share: float = 0.57) -> tuple[int | None, bytes, bytes] | None:
    """(the cut, the first half, the second half) of ``data`` as a package member; None when it is not cut."""
    path = return_package(tmp_path / "p.zip", data)
    entry = check_package(path, validate_members=False, verify_members=False).manifest.entries[0]
    split = halves.stream_cut(lambda: open_member(path, entry), entry.bytes, RECORDS, share)
    if split is None:
        return None
    with split.second() as second_half:
        cut = second_half.find()
        second = read_all(second_half)
    asked = []

    def ask() -> int | None:
        asked.append(cut)
        return cut

    with split.first(ask) as first_half:
        first = read_all(first_half)
    assert asked == [cut]  # once, when the first half reached the share
    return cut, first, second


def read_all(reader) -> bytes:
    parts = []
    while data := reader.read(1000):
        parts.append(data)
    return b"".join(parts)


# ------------------------------------------------------------------ the cut


def test_the_cut_goes_before_the_first_record_past_the_share(tmp_path: Path, cut_small):
    data = package_data(400)
    cut, first, second = member_halves(tmp_path, data)
    assert cut == data.index(b"  <", int(len(data) * 0.57)) + 2
    assert data[cut:].startswith((b"<Customer ", b"<NewCustomer "))
    assert first == data[:cut] + b"</ReturnedCustomers>"
    assert second == (b'<?xml version="1.0" encoding="UTF-8"?>\n<ReturnedCustomers xmlns="urn:cee-mobile:from-mobile:v1" '
                      b'device="TAB-017" representative="REP-03" createdAt="2026-11-27T16:45:00+01:00">'
                      + data[cut:])


@pytest.mark.parametrize("share", [0.01, 0.3, 0.5, 0.9])
def test_the_halves_hold_every_record_once_wherever_the_cut_is(tmp_path: Path, cut_small, share: float):
    data = package_data(300)
    _cut, first, second = member_halves(tmp_path, data, share)
    records = re.compile(rb'<(?:NewCustomer mobileId|Customer id)="[^"]+"')
    assert records.findall(first) + records.findall(second) == records.findall(data)


def test_without_a_record_past_the_share_the_first_half_is_the_whole(tmp_path: Path, cut_small):
    data = package_data(50)
    last = data.rindex(b"  <Customer ")
    data = data[:last] + b"</ReturnedCustomers>\n"
    assert member_halves(tmp_path, data, share=0.999) == (None, data, b"")


def test_a_small_or_unusual_member_is_not_cut(tmp_path: Path, monkeypatch):
    data = package_data(50)
    assert member_halves(tmp_path, data) is None  # under 16 MiB
    cut_small_files(monkeypatch)
    assert member_halves(tmp_path, data.replace(b'encoding="UTF-8"', b'encoding="ISO-8859-2"')) is None
    assert member_halves(tmp_path, data.replace(b'version="1.0"', b'version="1.1"')) is None


# ------------------------------------------------------- the same outcome as one pass


def test_a_cut_package_gives_the_document_and_ledger_of_one_pass(tmp_path: Path, monkeypatch):
    whole, cut = run_both(tmp_path, monkeypatch, package_data(1500))
    assert ": customers.xml cut in two at byte" in cut.runs[-1].stderr, str(cut.runs[-1])
    assert "one pass" not in cut.runs[-1].stderr, str(cut.runs[-1])
    assert_same(whole, cut)
    rows = ledger_rows(cut)
    assert {e[1] for e in rows["events"] if e[0] == "RET.zip"} == {"R13", "R14"} and len(rows["mobile_ids"]) > 2000


def test_a_mobile_id_created_in_both_halves_sends_the_package_through_in_one_pass(tmp_path: Path, monkeypatch):
    whole, cut = run_both(tmp_path, monkeypatch, package_data(1500, repeat=(10, 1400)))
    assert ": customers.xml cut in two at byte" in cut.runs[-1].stderr, str(cut.runs[-1])
    assert (f"RET.zip: mobileId {mid(100_000 + 100)} is created in both halves (R12); "
            "the package goes through in one pass") in cut.runs[-1].stderr, str(cut.runs[-1])
    assert_same(whole, cut)
    assert "  R12 records not created again (mobileId imported before): 1" in cut.runs[-1].lines


def test_a_cut_inside_a_comment_sends_the_package_through_in_one_pass(tmp_path: Path, monkeypatch):
    data = package_data(1500)
    at = data.index(b"\n  <Customer ", int(len(data) * 0.5)) + 1
    decoy = b"<!-- kept for the record:\n" + b'<Customer id="1"><DeletedContactPerson id="2"/></Customer>\n' * 2000 + b"-->\n"
    whole, cut = run_both(tmp_path, monkeypatch, data[:at] + decoy + data[at:])
    stderr = cut.runs[-1].stderr
    assert ": customers.xml cut in two at byte" in stderr, str(cut.runs[-1])
    assert "RET.zip: the first half: " in stderr and "; the package goes through in one pass" in stderr, stderr
    assert_same(whole, cut)


# ------------------------------------------------------------------ the spool


def test_taking_a_spool_finds_a_mobile_id_both_halves_created(tmp_path: Path):
    ledger = Ledger(tmp_path / "state.db")

    def created(mobile_id: str) -> Decision:
        return Decision(None, "new customer", "created", "organization in sales channel MOBILE-PL",
                        customer=mobile_id)

    for second_half, both in (([mid(3), mid(1)], mid(1)), ([mid(4), mid(5)], None)):
        path = ledger_spool.spool_path(ledger.path)
        spool = ImportLedgerSpool(ledger.path, path)
        spool.add_mobile_ids("MOBILE-PL", 0, [created(m) for m in second_half])
        assert spool.known_mobile_ids([*second_half, mid(9)]).result() == {m: True for m in second_half}
        spool.close()
        with ledger.transaction():
            file_id = ledger.add_file(sha256="x", name="RET.zip", inbox="mobile", state="claimed")
            with ledger.bulk():
                ledger.add_mobile_ids("MOBILE-PL", file_id, [created(mid(1)), created(mid(2))])
                assert ledger_spool.take_import(ledger, path, "MOBILE-PL", file_id).result() == both
        ledger_spool.detach(ledger)
        path.unlink()
        taken = [m for (m,) in ledger.db.execute("SELECT mobile_id FROM mobile_ids ORDER BY 1")]
        assert taken == ([mid(1), mid(2)] if both else [mid(1), mid(2), mid(4), mid(5)])
        ledger.db.execute("DELETE FROM mobile_ids")
    ledger.close()
