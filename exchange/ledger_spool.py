"""Ledger writes made in a child process, kept in a side file and taken in one go.

A forked child (:mod:`exchange.second_half`, :mod:`exchange.import_second_half`)
must not write to the ledger: the parent holds its one write transaction for
the file. The child keeps its changes (the sent contact persons, or the
mobileIds it created) and its decisions in a spool, a private SQLite file
without journal; once the child is done, the parent takes them into the
ledger with a few ``INSERT ... SELECT`` statements, in SQLite's own loop,
after its own writes.
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Iterable
from concurrent.futures import Future
from pathlib import Path

from exchange.ledger import (
    CREATED_COLUMNS,
    EVENT_COLUMNS,
    CreatedIds,
    Ledger,
    carried_mobile_ids,
    created_row,
    event_rows,
    insert_rows,
    mobile_keys,
    sent_partners,
)
from exchange.records import Decision
from exchange.xml.checks import KeySet

#: The decisions of a half, in both kinds of spool: the events table's columns, without file_id.
_EVENTS = f"CREATE TABLE events ({EVENT_COLUMNS});"

_SCHEMA = _EVENTS + """
CREATE TABLE unsend (customer);
CREATE TABLE unsent (customer, partner);
CREATE TABLE sent (customer, partner);
CREATE TABLE numbers (number);
"""

_IMPORT_SCHEMA = _EVENTS + """
CREATE TABLE mobile_ids (key INTEGER NOT NULL, mobile_id TEXT NOT NULL, organization INTEGER NOT NULL,
                         customer TEXT, reason TEXT);
CREATE INDEX mobile_ids_key ON mobile_ids (key);
"""

_IMPORT_CACHE_KIB = 16 * 1024
_PATTERN = "half-*.db"


def spool_path(ledger_path: Path) -> Path:
    """A new spool's name: beside the ledger, where :func:`remove_stale` finds it after a crash."""
    return ledger_path.parent / _PATTERN.replace("*", uuid.uuid4().hex)


def remove_stale(ledger_path: Path) -> None:
    """Remove the spools a crash left behind (call with the workspace locked, before any file)."""
    for stale in ledger_path.parent.glob(_PATTERN):
        stale.unlink(missing_ok=True)


class _Spool:
    """A child's two connections: ``db`` reads the ledger, ``spool`` takes the child's
    writes into ``path``, in one transaction that :meth:`close` commits.

    Reads go through a connection of its own: the parent's must not be used
    across a fork. Like the parent's reads during a file, they see the state
    committed before this file.
    """

    def __init__(self, ledger_path: Path, path: Path, schema: str, cache_kib: int | None = None):
        self.db = sqlite3.connect(ledger_path, isolation_level=None, timeout=30)
        self.spool = sqlite3.connect(path, isolation_level=None)
        self.spool.execute("PRAGMA journal_mode=OFF")  # a crash leaves a spool nobody takes
        self.spool.execute("PRAGMA synchronous=OFF")
        if cache_kib is not None:
            self.db.execute(f"PRAGMA cache_size=-{cache_kib}")
            self.spool.execute(f"PRAGMA cache_size=-{cache_kib}")
        self.spool.executescript(schema)
        self.spool.execute("BEGIN")

    def log_decisions(self, file_id: int, decisions: Iterable[Decision]) -> None:
        insert_rows(self.spool, f"INSERT INTO events ({EVENT_COLUMNS})", (), event_rows(decisions))

    def close(self) -> None:
        self.spool.execute("COMMIT")
        self.spool.close()
        self.db.close()


class LedgerSpool(_Spool):
    """The ledger as the second half of a customer export sees it: reads of what was
    committed, writes into ``path``."""

    def __init__(self, ledger_path: Path, path: Path):
        super().__init__(ledger_path, path, _SCHEMA)

    def sent_partners(self, channel: str, customers: Iterable[str]) -> dict[str, set[str]]:
        return sent_partners(self.db, channel, customers)

    def unsend_customers(self, channel: str, customers: list[str]) -> None:
        insert_rows(self.spool, "INSERT INTO unsend (customer)", (), [(c,) for c in customers])

    def mark_unsent(self, channel: str, pairs: list[tuple[str, str]]) -> None:
        insert_rows(self.spool, "INSERT INTO unsent (customer, partner)", (), pairs)

    def mark_sent(self, channel: str, pairs: list[tuple[str, str]]) -> None:
        insert_rows(self.spool, "INSERT INTO sent (customer, partner)", (), pairs)

    def keep_numbers(self, numbers: Iterable[str]) -> None:
        """Customer numbers, for the parent's check that none is also in its half."""
        insert_rows(self.spool, "INSERT INTO numbers (number)", (), [(n,) for n in numbers])


def take(ledger: Ledger, path: Path, channel: str, file_id: int, seen: KeySet) -> Future:
    """Take the spool's changes into ``ledger`` after the writes queued so far: a future
    of None, or of a customer number that is also in ``seen`` (then nothing is taken).

    Call within the file's transaction and :meth:`Ledger.bulk`, and :func:`detach`
    after it. An export names each customer once, so all deletes of the spool,
    then all its inserts, do what its batches did one after another.
    """

    def run() -> str | None:
        db = ledger.db
        db.execute("ATTACH DATABASE ? AS spool", (str(path),))
        # Looked up, not added: adding grew the first half's set, on disk for a big export.
        # Not sorted first either: SQLite's sorter took 20 MiB more at 2 GiB.
        for (number,) in db.execute("SELECT number FROM spool.numbers"):
            if number in seen:
                return number
        db.execute("DELETE FROM sent_persons WHERE channel = ? AND customer IN (SELECT customer FROM spool.unsend)",
                   (channel,))
        db.execute("DELETE FROM sent_persons WHERE channel = ? AND (customer, partner) IN "
                   "(SELECT customer, partner FROM spool.unsent)", (channel,))
        db.execute("INSERT OR IGNORE INTO sent_persons (channel, customer, partner) "
                   "SELECT ?, customer, partner FROM spool.sent ORDER BY rowid", (channel,))
        _take_events(db, file_id)
        return None

    return ledger.after_writes(run)


def _take_events(db: sqlite3.Connection, file_id: int) -> None:
    """The attached spool's decisions into the ledger's events, in the order they were made."""
    db.execute(f"INSERT INTO events (file_id, {EVENT_COLUMNS}) "
               f"SELECT ?, {EVENT_COLUMNS} FROM spool.events ORDER BY rowid", (file_id,))


def detach(ledger: Ledger) -> None:
    """Forget the spool; after the file's transaction ended (SQLite refuses within it)."""
    try:
        ledger.db.execute("DETACH DATABASE spool")
    except sqlite3.OperationalError:  # never attached (the file went another way)
        pass


class ImportLedgerSpool(_Spool):
    """The ledger as the second half of a return package sees it: R12 lookups in what
    was committed before this file and in the mobileIds this half created, writes
    into ``path``. What the first half created is not seen here: :func:`take_import`
    finds a mobileId both halves created."""

    def __init__(self, ledger_path: Path, path: Path):
        # The spool's key index and the ledger's take a random page for most lookups (R12); with
        # SQLite's default 2 MiB cache, most of those were reads from the file: a fifth of the
        # spool's SQLite time.
        super().__init__(ledger_path, path, _IMPORT_SCHEMA, cache_kib=_IMPORT_CACHE_KIB)
        self.created = CreatedIds(self._insert_created)

    def known_mobile_ids(self, mobile_ids: Iterable[str]) -> Future:
        wanted = set(mobile_ids)
        keys = mobile_keys(wanted)
        found = carried_mobile_ids(self.db, keys, wanted)
        found.update(carried_mobile_ids(self.spool, keys, wanted))
        found.update(self.created.known(wanted))
        done: Future = Future()
        done.set_result(found)
        return done

    def add_mobile_ids(self, channel: str, file_id: int, created: list[Decision]) -> None:
        self.created.add(channel, file_id, [created_row(d) for d in created])

    def _insert_created(self, _channel: str, _file_id: int, rows: list) -> None:
        insert_rows(self.spool, f"INSERT INTO mobile_ids ({CREATED_COLUMNS})", (), rows)

    def close(self) -> None:
        self.created.flush()
        super().close()


def take_import(ledger: Ledger, path: Path, channel: str, file_id: int) -> Future:
    """Take an :class:`ImportLedgerSpool` into ``ledger`` after the writes queued so far:
    a future of None, or of a mobileId that both halves created (then nothing is taken,
    and the file must go through in one pass: R12 would not have created it twice).

    Call within the file's transaction and :meth:`Ledger.bulk`, and :func:`detach`
    after it. A mobileId the second half did not create, it found in the ledger
    or in its own half, as one pass would have; so the halves differ from one
    pass only where both created the same mobileId.
    """

    def run() -> str | None:
        ledger.write_created()  # the first half's last mobileIds, so that the check sees them all
        db = ledger.db
        db.execute("ATTACH DATABASE ? AS spool", (str(path),))
        # CROSS JOIN: the spool's rows outside, each looked up in the ledger's key index.
        both = db.execute("SELECT s.mobile_id FROM spool.mobile_ids AS s CROSS JOIN mobile_ids AS m "
                          "ON m.key = s.key AND m.mobile_id = s.mobile_id LIMIT 1").fetchone()
        if both is not None:
            return both[0]
        # In the spool's order: chunks sorted by key, cheap to insert into the key index.
        db.execute(f"INSERT INTO mobile_ids (channel, file_id, {CREATED_COLUMNS}) "
                   f"SELECT ?, ?, {CREATED_COLUMNS} FROM spool.mobile_ids ORDER BY rowid", (channel, file_id))
        _take_events(db, file_id)
        return None

    return ledger.after_writes(run)
