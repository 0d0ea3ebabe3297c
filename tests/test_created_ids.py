"""R12 in one file: the mobileIds it created are found whether their chunk was inserted
yet or not, and the chunks go into the ledger sorted by key."""

from __future__ import annotations

import uuid

import pytest

from exchange import ledger as ledger_module
from exchange.ledger import Ledger, mobile_key
from exchange.records import Decision

ORG = "3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b"
PERSONS = [str(uuid.UUID(int=n << 64 | n, version=4)) for n in range(1, 8)]


def _organization(mobile_id: str) -> Decision:
    return Decision(None, "new customer", "created", "organization in sales channel MOBILE-PL", customer=mobile_id)


def _person(mobile_id: str) -> Decision:
    return Decision("R10", "contact person", "created", f"employee of new organization {ORG} (added with it on a device)",
                    customer=ORG, partner=mobile_id)


def _rows(ledger: Ledger) -> list[tuple]:
    return ledger.db.execute("SELECT key, mobile_id, organization FROM mobile_ids ORDER BY id").fetchall()


@pytest.fixture()
def ledger(tmp_path, monkeypatch):
    monkeypatch.setattr(ledger_module, "CREATED_CHUNK", 4)
    ledger = Ledger(tmp_path / "state.db")
    yield ledger
    ledger.close()


def test_held_back_and_inserted_mobile_ids_are_both_known(ledger):
    with ledger.transaction():
        file_id = ledger.add_file(sha256="0" * 64, name="RET.zip", inbox="mobile", state="claimed")
        with ledger.bulk():
            ledger.add_mobile_ids("MOBILE-PL", file_id, [_organization(ORG), _person(PERSONS[0])])
            assert ledger.known_mobile_ids([ORG, PERSONS[0], PERSONS[1]]).result() == {ORG: True, PERSONS[0]: False}
            assert ledger.after_writes(lambda: _rows(ledger)).result() == []  # held back
            ledger.add_mobile_ids("MOBILE-PL", file_id, [_person(p) for p in PERSONS[1:3]])  # a chunk of 4 goes in
            assert len(ledger.after_writes(lambda: _rows(ledger)).result()) == 4
            ledger.add_mobile_ids("MOBILE-PL", file_id, [_person(p) for p in PERSONS[3:6]])
            assert ledger.known_mobile_ids([ORG, *PERSONS]).result() == \
                {ORG: True, **{p: False for p in PERSONS[:6]}}
            assert len(ledger.after_writes(lambda: _rows(ledger)).result()) == 4
        rows = _rows(ledger)  # the rest went in when the block ended
    expected = [(mobile_key(ORG), ORG, 1)] + [(mobile_key(p), p, 0) for p in PERSONS[:6]]
    assert sorted(rows) == sorted(expected)
    first_chunk, rest = rows[:4], rows[4:]
    assert first_chunk == sorted(first_chunk) and rest == sorted(rest)  # each chunk in key order
    assert first_chunk != expected[:4]  # not in the order they came (the test's keys are not sorted)


def test_nothing_held_back_is_inserted_when_the_file_fails(ledger):
    with pytest.raises(RuntimeError), ledger.transaction():
        file_id = ledger.add_file(sha256="0" * 64, name="RET.zip", inbox="mobile", state="claimed")
        with ledger.bulk():
            ledger.add_mobile_ids("MOBILE-PL", file_id, [_organization(ORG)])
            raise RuntimeError("the transform failed")
    assert _rows(ledger) == []
    assert ledger.known_mobile_ids([ORG]).result() == {}
