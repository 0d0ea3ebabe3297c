"""What the XSDs say but the streaming validator does not check.

FORMATS.md's uniqueness constraints are ``xs:unique`` in the XSDs, but the
streaming schemas leave them out (see :mod:`exchange.xml.schemas`), and
XSD 1.0 cannot say that an upsert has content and a delete is empty. These
checks run on each top-level record as it is parsed, so they stream too:
only the keys that must be unique across a file are remembered.
"""

from __future__ import annotations

import sqlite3
from typing import Callable, Iterator

from lxml import etree

from exchange.xml.report import Problem
from exchange.xml.schemas import CEE_EXPORT, TO_MOBILE, DocumentKind


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _child_path(parent_path: str, child: etree._Element) -> str:
    tag = child.tag
    index = 1
    for sibling in child.itersiblings(tag, preceding=True):
        index += 1
    return f"{parent_path}/{_local(child)}[{index}]"


class RecordChecker:
    """Checks the records of one document, one record at a time."""

    def check(self, record: etree._Element, path: str) -> Iterator[tuple[etree._Element, Problem]]:
        """(element at fault, problem) for each problem of one record."""
        return iter(())


#: Keys a :class:`KeySet` holds in memory before it spills to disk (about 7 MiB).
KEYS_IN_MEMORY = 1 << 16


class KeySet:
    """The set of keys a file must remember (customer numbers ...), in
    bounded memory: the first :data:`KEYS_IN_MEMORY` keys in a Python set,
    all of them in a private temporary SQLite file beyond that, which holds
    millions of keys in a 2 MiB page cache."""

    def __init__(self, in_memory: int | None = None):
        self.in_memory = KEYS_IN_MEMORY if in_memory is None else in_memory
        self.memory: set[str] = set()
        self.spill: sqlite3.Connection | None = None

    def add(self, key: str) -> bool:
        """Remember ``key``; False when it was seen before."""
        if key in self.memory:
            return False
        if self.spill is None:
            self.memory.add(key)
            if len(self.memory) >= self.in_memory:
                self._start_spill()
            return True
        return self.spill.execute("INSERT OR IGNORE INTO seen VALUES (?)", (key,)).rowcount == 1

    def __contains__(self, key: str) -> bool:
        if key in self.memory:
            return True
        return self.spill is not None and \
            self.spill.execute("SELECT 1 FROM seen WHERE key = ?", (key,)).fetchone() is not None

    def _start_spill(self) -> None:
        # "" opens a private on-disk database that SQLite deletes when it is closed.
        self.spill = sqlite3.connect("", isolation_level=None, check_same_thread=False)
        self.spill.execute("PRAGMA cache_size=-2048")
        self.spill.execute("CREATE TABLE seen (key TEXT PRIMARY KEY) WITHOUT ROWID")
        self.spill.execute("BEGIN")  # never committed: one transaction, no journal syncs
        self.spill.executemany("INSERT INTO seen VALUES (?)", ((k,) for k in self.memory))
        self.memory = set()  # later keys are looked up in the spill, and only there

    def close(self) -> None:
        if self.spill is not None:
            self.spill.close()
            self.spill = None
        self.memory = set()

    def __del__(self) -> None:
        self.close()


class _UniqueKeys:
    """Remembers keys seen in a file and reports a key seen twice."""

    def __init__(self, what: str, scope: str):
        self.what = what
        self.scope = scope
        self.seen = KeySet()

    def see(self, key: str | None, el: etree._Element, path: str, attribute: str
            ) -> Iterator[tuple[etree._Element, Problem]]:
        if key is None:
            return  # a missing key is the schema's to report
        if not self.seen.add(key):
            article = "an" if self.what[0] in "aeiou" else "a"
            yield el, Problem(
                f"Element '{_local(el)}', attribute '{attribute}': duplicate {self.what} '{key}'; "
                f"{article} {self.what} appears at most once {self.scope}",
                line=el.sourceline,
                path=path,
            )


class MasterdataChecks(RecordChecker):
    def __init__(self):
        self.occupations = _UniqueKeys("occupation code", "in a masterdata export")
        self.methods = _UniqueKeys("communication method code", "in a masterdata export")

    def check(self, record, path):
        keys = self.occupations if _local(record) == "Occupation" else self.methods
        yield from keys.see(record.get("code"), record, path, "code")


class CustomerExportChecks(RecordChecker):
    _PARTNERS = (f"{{{CEE_EXPORT}}}ContactPerson", f"{{{CEE_EXPORT}}}RemovedContactPerson")

    def __init__(self):
        self.customers = _UniqueKeys(
            "customer number", "in an export, over Customer and DeletedCustomer together"
        )

    def check(self, record, path):
        yield from self.customers.see(record.get("number"), record, path, "number")
        persons = list(record.iterchildren(*self._PARTNERS))
        if len(persons) < 2:
            return
        numbers = [person.get("partner") for person in persons]
        if len(set(numbers)) == len(numbers):  # the common case, without a set per customer
            return
        partners = _UniqueKeys(
            "partner number", "per customer, over ContactPerson and RemovedContactPerson together"
        )
        for person in persons:
            yield from partners.see(
                person.get("partner"), person, _child_path(path, person), "partner"
            )


def _action_content(el: etree._Element, path: str, required: tuple[str, ...],
                    required_attrs: tuple[str, ...] = ()) -> Iterator[tuple[etree._Element, Problem]]:
    """An upsert carries its required content; a delete is empty."""
    action = el.get("action")
    name = _local(el)
    if action == "upsert":
        present = {_local(child) for child in el}
        for child in required:
            if child not in present:
                yield el, Problem(
                    f"Element '{name}': an upsert needs the child element '{child}'",
                    line=el.sourceline, path=path,
                )
        for attribute in required_attrs:
            if el.get(attribute) is None:
                yield el, Problem(
                    f"Element '{name}': an upsert needs the attribute '{attribute}'",
                    line=el.sourceline, path=path,
                )
    elif action == "delete":
        if len(el):
            yield el, Problem(
                f"Element '{name}': a delete must be empty, found child element '{_local(el[0])}'",
                line=el.sourceline, path=path,
            )
        for attribute in required_attrs:
            if el.get(attribute) is not None:
                yield el, Problem(
                    f"Element '{name}': a delete must not carry the attribute '{attribute}'",
                    line=el.sourceline, path=path,
                )


class PositionsChecks(RecordChecker):
    def check(self, record, path):
        yield from _action_content(record, path, ("Description",))


class CustomersChecks(RecordChecker):
    _PERSON = f"{{{TO_MOBILE}}}ContactPerson"

    def check(self, record, path):
        yield from _action_content(record, path, ("Name",))
        for person in record.iterchildren(self._PERSON):
            yield from _action_content(
                person, _child_path(path, person), ("Surname",), ("relation",)
            )


_CHECKERS: dict[str, Callable[[], RecordChecker]] = {
    f"{{{CEE_EXPORT}}}MasterdataExport": MasterdataChecks,
    f"{{{CEE_EXPORT}}}CustomerExport": CustomerExportChecks,
    f"{{{TO_MOBILE}}}Positions": PositionsChecks,
    f"{{{TO_MOBILE}}}Customers": CustomersChecks,
}


def has_checks(kind: DocumentKind) -> bool:
    """Whether the records of ``kind`` have checks in code besides the schema."""
    return kind.tag in _CHECKERS


def checker_for(kind: DocumentKind) -> RecordChecker:
    """A fresh checker (with empty memory of keys) for one document."""
    return _CHECKERS.get(kind.tag, RecordChecker)()
