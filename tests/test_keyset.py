"""The keys a file must remember (customer numbers), in bounded memory.

A big export's customer numbers spill from a Python set to a temporary
SQLite file; a duplicate is found whether its first occurrence is in
memory or on disk, by the fast path (yes or no) and by the precise report.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from exchange.validation import validate_file
from exchange.xml import checks
from exchange.xml.checks import KeySet
from exchange.xml.schemas import KINDS
from exchange.xml.validate import Validation, fast_valid
from workspace_util import customer, customers


def test_keys_before_and_after_the_spill():
    keys = KeySet(in_memory=3)
    assert [keys.add(k) for k in ("a", "b", "a")] == [True, True, False]
    assert keys.spill is None
    assert keys.add("c") is True  # the third key: everything moves to disk
    assert keys.spill is not None and keys.memory == set()
    assert [keys.add(k) for k in ("a", "b", "c", "d", "d", "e")] == [False, False, False, True, False, True]
    keys.close()


def test_asking_for_a_key_before_and_after_the_spill_adds_nothing():
    keys = KeySet(in_memory=3)
    keys.add("a")
    keys.add("b")
    assert "a" in keys and "z" not in keys
    keys.add("c")  # the spill
    assert ["a" in keys, "c" in keys, "z" in keys] == [True, True, False]
    assert keys.add("z") is True  # asking did not add it
    assert "z" in keys
    keys.close()


def test_a_key_set_that_never_fills_stays_in_memory():
    keys = KeySet(in_memory=100)
    assert all(keys.add(str(n)) for n in range(99))
    assert keys.spill is None and len(keys.memory) == 99


def _export(tmp_path: Path, numbers: list[str]) -> Path:
    path = tmp_path / "CU.xml"
    path.write_bytes(customers("CU-1", "2026-11-28T01:00:00Z",
                               records=[customer(n, f"Customer {n}") for n in numbers]))
    return path


@pytest.fixture
def small_memory(monkeypatch):
    monkeypatch.setattr(checks, "KEYS_IN_MEMORY", 10)


def test_duplicate_far_beyond_the_spill_is_found_with_its_place(tmp_path, small_memory):
    numbers = [str(10000 + n) for n in range(50)]
    numbers[45] = "10003"  # record 46 repeats record 4, which went to disk with the first ten
    path = _export(tmp_path, numbers)
    kind = KINDS["{urn:cee-mobile:cee-export:v1}CustomerExport"]
    with open(path, "rb") as source:
        assert fast_valid(source, Validation(kind)) is False
    verdict = validate_file(path)
    problems = verdict.report.problems
    assert [(p.line, p.path) for p in problems] == [(48, "/CustomerExport/Customer[46]")]
    assert problems[0].message == (
        "Element 'Customer', attribute 'number': duplicate customer number '10003'; a customer number "
        "appears at most once in an export, over Customer and DeletedCustomer together")


def test_many_distinct_numbers_beyond_the_spill_are_valid(tmp_path, small_memory):
    path = _export(tmp_path, [str(10000 + n) for n in range(50)])
    kind = KINDS["{urn:cee-mobile:cee-export:v1}CustomerExport"]
    validation = Validation(kind)
    with open(path, "rb") as source:
        assert fast_valid(source, validation) is True
    assert validation.records == 50
