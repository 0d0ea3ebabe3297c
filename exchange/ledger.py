"""The ledger: what the exchange has seen, sent and decided (SQLite, WAL).

One SQLite file (``.exchange/state.db``) holds

* every input file by SHA-256 with its state (claimed, published, archived,
  rejected, duplicate) and the output it produced;
* the package sequence numbers per channel and direction;
* the channel state the rules need: occupations known (and whether Mobile
  has them), communication methods displayed, contact persons sent;
* an event log of every rule decision per record, for reports and
  ``exchange explain``;
* the runs, with their summaries;
* what crossed the wire to or from SFTP partners (``deliveries``): each
  package pushed (``uploaded`` under its temporary name, then
  ``delivered``) and each return package pulled (``pulled`` into
  inbox/mobile/, then ``taken`` off the server), and what the last listing
  of each partner's download folder saw (``remote_seen``, for settling).

Every state change is one transaction. The processing of one input is a
single transaction from the first record to the ``claimed`` mark, so a
crash before it commits leaves the channel state exactly as before.
"""

from __future__ import annotations

import json
import sqlite3
import zlib
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cache, lru_cache
from itertools import chain
from operator import itemgetter
from pathlib import Path
from typing import Iterable, Iterator

from exchange.background import SerialWorker
from exchange.records import Decision
from exchange.rules.outbound import OccupationState
from exchange.rules.sequence import ChannelSequences, Imported, Release

SCHEMA_VERSION = 2  # 2: mobile_ids found by mobile_key, with the creating decision
CACHE_KIB = 32 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    sha256 TEXT NOT NULL,
    name TEXT NOT NULL,
    inbox TEXT NOT NULL,            -- 'cee' or 'mobile'
    channel TEXT,
    kind TEXT,                      -- root element, e.g. CustomerExport
    export_id TEXT,
    created_at TEXT,                -- the document's createdAt
    state TEXT NOT NULL,            -- claimed, published, archived; rejecting, rejected; duplicating, duplicate;
                                    -- lost (committed, but the output was gone before it was published)
    direction TEXT,
    sequence INTEGER,
    output TEXT,                    -- package or import document file name
    temp TEXT,                      -- the output's temporary name while claimed
    archived_as TEXT,               -- where the input went (archive or rejected folder)
    records INTEGER,
    error TEXT,                     -- first error, for rejected files
    error_count INTEGER,
    run_id INTEGER,
    seen_at TEXT NOT NULL,
    done_at TEXT
);
CREATE INDEX IF NOT EXISTS files_sha256 ON files (sha256);
CREATE INDEX IF NOT EXISTS files_state ON files (state);
CREATE TABLE IF NOT EXISTS sequences (
    channel TEXT NOT NULL, direction TEXT NOT NULL, last INTEGER NOT NULL,
    PRIMARY KEY (channel, direction)
);
CREATE TABLE IF NOT EXISTS occupations (
    channel TEXT NOT NULL, code TEXT NOT NULL, description TEXT,
    marked INTEGER NOT NULL, sent INTEGER NOT NULL,
    PRIMARY KEY (channel, code)
);
CREATE TABLE IF NOT EXISTS methods (
    channel TEXT NOT NULL, code TEXT NOT NULL, displayed INTEGER NOT NULL,
    PRIMARY KEY (channel, code)
);
CREATE TABLE IF NOT EXISTS sent_persons (
    channel TEXT NOT NULL, customer TEXT NOT NULL, partner TEXT NOT NULL,
    PRIMARY KEY (channel, customer, partner)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    file_id INTEGER NOT NULL,
    rule TEXT, subject TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL,
    customer TEXT, partner TEXT, code TEXT, count INTEGER NOT NULL DEFAULT 1
);
-- Partial indexes keep the bulk inserts of big exports cheap: customer-level
-- rows by customer, person-level rows by partner, rules naming a code by code.
CREATE INDEX IF NOT EXISTS events_customer ON events (customer) WHERE partner IS NULL AND customer IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_partner ON events (partner) WHERE partner IS NOT NULL;
CREATE INDEX IF NOT EXISTS events_code ON events (code) WHERE code IS NOT NULL;
-- R12: every mobileId an import document carried. Rows are appended; they are found by
-- mobile_key(mobileId), 64 bits of its hash, in a small index: mobileIds are random, and an
-- index of the ids themselves outgrows the page cache within one big package, so that every
-- insert would read and write a random page. Equal keys are told apart by mobile_id.
CREATE TABLE IF NOT EXISTS mobile_ids (
    id INTEGER PRIMARY KEY,
    key INTEGER NOT NULL,                       -- mobile_key(mobile_id)
    mobile_id TEXT NOT NULL, channel TEXT NOT NULL, file_id INTEGER NOT NULL,
    organization INTEGER NOT NULL,              -- 1: an Organization, 0: a Person
    customer TEXT,                              -- a Person's employer: customer number or organization mobileId
    reason TEXT                                 -- the decision that created it (R10), as in events
);
CREATE INDEX IF NOT EXISTS mobile_ids_key ON mobile_ids (key);
CREATE TABLE IF NOT EXISTS deliveries (     -- packages pushed to and pulled from partners
    id INTEGER PRIMARY KEY,
    direction TEXT NOT NULL,        -- 'push' (outbox/mobile -> upload_dir), 'pull' (download_dir -> inbox/mobile)
    channel TEXT NOT NULL,
    partner TEXT NOT NULL,          -- user@host:port
    name TEXT NOT NULL,             -- the file's name at the partner
    local TEXT NOT NULL,            -- its name here (in outbox/mobile/sent/ or inbox/mobile/)
    bytes INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    mtime INTEGER,                  -- pull: the modification time the server listed
    state TEXT NOT NULL,            -- push: uploaded, delivered (or abandoned); pull: pulled, taken
    run_id INTEGER,
    started_at TEXT NOT NULL,
    done_at TEXT
);
CREATE INDEX IF NOT EXISTS deliveries_name ON deliveries (channel, direction, name);
CREATE TABLE IF NOT EXISTS remote_seen (    -- each file of a partner's download folder: as last seen, since when
    channel TEXT NOT NULL, name TEXT NOT NULL, bytes INTEGER NOT NULL, mtime INTEGER NOT NULL,
    since REAL NOT NULL,            -- seconds since the epoch
    PRIMARY KEY (channel, name)
) WITHOUT ROWID;
-- F6: each return package's manifest sequence, per channel, written in the transaction of its import
-- (so a rejected package uses no number).
CREATE TABLE IF NOT EXISTS inbound_sequences (
    channel TEXT NOT NULL, sequence INTEGER NOT NULL, file_id INTEGER NOT NULL, imported_at TEXT NOT NULL,
    PRIMARY KEY (channel, sequence)
);
-- F6: 'exchange release': the missing return packages of a channel below `below` never come.
CREATE TABLE IF NOT EXISTS releases (
    id INTEGER PRIMARY KEY, channel TEXT NOT NULL, below INTEGER NOT NULL, reason TEXT NOT NULL,
    at TEXT NOT NULL, missing TEXT NOT NULL      -- the numbers given up, comma-separated
);
-- F6: return packages held (ahead of a gap), since when; for status. Rows of packages no longer
-- waiting are harmless: status looks at the inbox and takes only the rows of what is there.
CREATE TABLE IF NOT EXISTS held (
    channel TEXT NOT NULL, name TEXT NOT NULL, sequence INTEGER NOT NULL, since TEXT NOT NULL,
    PRIMARY KEY (channel, name, sequence)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT,
    exit_code INTEGER, summary TEXT
);
"""


def _statements(script: str) -> Iterator[str]:
    """The statements of an SQL script, one by one (to run them inside a transaction)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""


def utc_now() -> str:
    """Timestamps the exchange writes: UTC with Z, to the second."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class FileRow:
    id: int
    sha256: str
    name: str
    inbox: str
    channel: str | None
    kind: str | None
    state: str
    direction: str | None
    sequence: int | None
    output: str | None
    temp: str | None
    archived_as: str | None
    created_at: str | None
    export_id: str | None
    error: str | None


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    direction: str
    channel: str
    partner: str
    name: str
    local: str
    bytes: int
    sha256: str
    mtime: int | None
    state: str


_DELIVERY_COLUMNS = "id, direction, channel, partner, name, local, bytes, sha256, mtime, state"

_FILE_COLUMNS = "id, sha256, name, inbox, channel, kind, state, direction, sequence, output, temp, " \
                "archived_as, created_at, export_id, error"


class Ledger:
    """The SQLite ledger of one workspace."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # check_same_thread=False: the ledger-writer thread may own it while a file is transformed.
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        # Big exports insert hundreds of thousands of rows with random keys (partner
        # numbers, mobileIds) in one transaction; with SQLite's default 2 MiB page
        # cache those inserts re-read evicted pages all the time.
        self.db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._committed_changes = 0  # rows changed by committed transactions since it was opened
        self._create()
        self._committed_changes = 0  # what creating or upgrading the ledger wrote does not count
        self._writer: SerialWorker | None = None
        self._reader: sqlite3.Connection | None = None
        self._created: CreatedIds | None = None

    def _create(self) -> None:
        if "key" not in self._columns("mobile_ids"):
            self._upgrade_mobile_ids()
        self.db.executescript(_SCHEMA)

    def _columns(self, table: str) -> set[str]:
        return {row[1] for row in self.db.execute(f"PRAGMA table_info({table})")}

    def _upgrade_mobile_ids(self) -> None:
        """Move the rows of a ledger from before ``mobile_key`` into the new ``mobile_ids``."""
        self.db.create_function("mobile_key", 1, mobile_key, deterministic=True)
        with self.transaction():
            columns = self._columns("mobile_ids")  # again, under the write lock: one upgrade only
            if not columns or "key" in columns:
                return
            employer = "customer, reason" if "reason" in columns else "NULL, NULL"
            self.db.execute("ALTER TABLE mobile_ids RENAME TO mobile_ids_before_key")
            for statement in _statements(_SCHEMA):
                self.db.execute(statement)
            self.db.execute(
                "INSERT INTO mobile_ids (key, mobile_id, channel, file_id, organization, customer, reason) "
                f"SELECT mobile_key(mobile_id), mobile_id, channel, file_id, organization, {employer} "
                "FROM mobile_ids_before_key")
            self.db.execute("DROP TABLE mobile_ids_before_key")
            self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                            (str(SCHEMA_VERSION),))
        self.db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),))

    def changes_since_open(self) -> int:
        """Rows inserted, updated or deleted by the transactions committed through this
        ledger since it was opened; a file's work that was rolled back does not count."""
        return self._committed_changes

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self.db.close()

    @contextmanager
    def bulk(self) -> Iterator[None]:
        """Hand the bulk writes of one file to a background thread.

        Inside an open transaction: inserts of sent persons, mobileIds and
        decisions run on the second core while this thread parses.
        :meth:`sent_partners` reads through a read connection, which sees the
        state committed before this file: correct, because an export names
        each customer once, so no lookup depends on the file's own writes.
        :meth:`known_mobile_ids` does depend on them (R12) and queues behind
        them on the write connection. The mobileIds created are inserted in
        chunks sorted by key (:class:`CreatedIds`), the last when the block
        ends without an error.
        """
        if self._reader is None:
            self._reader = sqlite3.connect(self.path, isolation_level=None, timeout=30,
                                           check_same_thread=False)
        self._writer = SerialWorker("ledger-writer", depth=64)
        self._created = CreatedIds(self._insert_created)
        try:
            yield
        except BaseException:
            self._created = None  # the transaction is rolled back: nothing more to insert
            raise
        else:
            self._writer.submit(self.write_created)
        finally:
            writer, self._writer = self._writer, None
            writer.close()
            self._created = None

    def _insert(self, into: str, constants: tuple, rows: list) -> None:
        """``into`` (``INSERT INTO table (columns)``) for all ``rows``, each row
        preceded by the ``constants``, in multi-row ``VALUES`` statements.

        A few statements per batch rather than ``executemany``: sqlite3
        releases the GIL for every statement it steps, so row by row the
        writer thread would trade the GIL with the parsing thread hundreds of
        thousands of times per export, slowing both down. Bound parameters
        rather than a JSON array: ``json_extract`` parses a row's JSON once
        per column, which cost twice as much as the insert itself.
        """
        if rows:
            self._run_bulk(self._execute_insert, into, constants, rows)

    def _bulk(self, sql: str, params: tuple, rows: list) -> None:
        """Run ``sql`` once for all ``rows``, which it reads as one JSON array
        (its last parameter, through ``json_each``); for deletes, which are few."""
        if rows:
            self._run_bulk(self._execute_bulk, sql, params, rows)

    def _run_bulk(self, call, *args) -> None:
        if self._writer is not None:
            self._writer.submit(call, *args)
        else:
            call(*args)

    def _execute_insert(self, into: str, constants: tuple, rows: list) -> None:
        insert_rows(self.db, into, constants, rows)

    def _execute_bulk(self, sql: str, params: tuple, rows: list) -> None:
        self.db.execute(sql, (*params, _json_rows(rows)))

    def _read(self) -> sqlite3.Connection:
        return self._reader if self._writer is not None else self.db

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        before = self.db.total_changes
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")
            self._committed_changes += self.db.total_changes - before

    # --- files -----------------------------------------------------------

    def produced_output(self, sha256: str) -> FileRow | None:
        """The file with this content that already produced an output (F2)."""
        row = self.db.execute(
            f"SELECT {_FILE_COLUMNS} FROM files WHERE sha256 = ? AND output IS NOT NULL "
            "AND state IN ('claimed', 'published', 'archived') ORDER BY id LIMIT 1", (sha256,)).fetchone()
        return FileRow(*row) if row else None

    def file(self, file_id: int) -> FileRow:
        return FileRow(*self.db.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE id = ?", (file_id,)).fetchone())

    def files_in(self, *states: str) -> list[FileRow]:
        marks = ",".join("?" * len(states))
        rows = self.db.execute(f"SELECT {_FILE_COLUMNS} FROM files WHERE state IN ({marks}) ORDER BY id",
                               states).fetchall()
        return [FileRow(*row) for row in rows]

    def add_file(self, *, sha256: str, name: str, inbox: str, state: str, channel: str | None = None,
                 kind: str | None = None, export_id: str | None = None, created_at: str | None = None,
                 direction: str | None = None, sequence: int | None = None, output: str | None = None,
                 temp: str | None = None, archived_as: str | None = None, records: int | None = None,
                 error: str | None = None, error_count: int | None = None, run_id: int | None = None) -> int:
        cursor = self.db.execute(
            "INSERT INTO files (sha256, name, inbox, state, channel, kind, export_id, created_at, direction, "
            "sequence, output, temp, archived_as, records, error, error_count, run_id, seen_at, done_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (sha256, name, inbox, state, channel, kind, export_id, created_at, direction, sequence, output,
             temp, archived_as, records, error, error_count, run_id, utc_now(),
             utc_now() if state in ("rejected", "duplicate", "archived") else None))
        return cursor.lastrowid

    def set_state(self, file_id: int, state: str, **columns) -> None:
        columns["state"] = state
        if state in ("archived", "rejected", "duplicate"):
            columns["done_at"] = utc_now()
        assignments = ", ".join(f"{name} = ?" for name in columns)
        self.db.execute(f"UPDATE files SET {assignments} WHERE id = ?", (*columns.values(), file_id))

    # --- sequences -------------------------------------------------------

    def next_sequence(self, channel: str, direction: str) -> int:
        """Take the next sequence number (inside the caller's transaction)."""
        row = self.db.execute("SELECT last FROM sequences WHERE channel = ? AND direction = ?",
                              (channel, direction)).fetchone()
        number = (row[0] if row else 0) + 1
        self.db.execute("INSERT INTO sequences (channel, direction, last) VALUES (?, ?, ?) "
                        "ON CONFLICT (channel, direction) DO UPDATE SET last = excluded.last",
                        (channel, direction, number))
        return number

    def record_inbound_sequence(self, channel: str, sequence: int, file_id: int) -> None:
        """F6: ``file_id`` imports return package ``sequence`` of ``channel`` (inside its import's
        transaction). REPLACE: only the same content comes again under a used number (a lost
        output retried); other content is rejected before."""
        self.db.execute("INSERT OR REPLACE INTO inbound_sequences (channel, sequence, file_id, imported_at) "
                        "VALUES (?, ?, ?, ?)", (channel, sequence, file_id, utc_now()))

    def channel_sequences(self, channel: str, same_content: str | None = None) -> ChannelSequences:
        """F6: what the ledger knows of ``channel``'s return-package numbers (:func:`channel_sequences`)."""
        return channel_sequences(self.db, channel, same_content)

    def note_held(self, channel: str, name: str, sequence: int) -> None:
        """F6: the package ``name`` is held; the first time is kept (``held_since``)."""
        self.db.execute("INSERT OR IGNORE INTO held (channel, name, sequence, since) VALUES (?, ?, ?, ?)",
                        (channel, name, sequence, utc_now()))

    def add_release(self, channel: str, below: int, reason: str, missing: list[int]) -> str:
        """F6: record ``exchange release``; its time."""
        at = utc_now()
        self.db.execute("INSERT INTO releases (channel, below, reason, at, missing) VALUES (?, ?, ?, ?, ?)",
                        (channel, below, reason, at, ",".join(str(n) for n in missing)))
        return at

    def last_sequences(self) -> dict[tuple[str, str], int]:
        return {(c, d): n for c, d, n in self.db.execute("SELECT channel, direction, last FROM sequences")}

    # --- channel state -----------------------------------------------------

    def occupations(self, channel: str) -> dict[str, OccupationState]:
        return {code: OccupationState(bool(marked), bool(sent)) for code, marked, sent in self.db.execute(
            "SELECT code, marked, sent FROM occupations WHERE channel = ?", (channel,))}

    def set_occupation(self, channel: str, code: str, description: str, state: OccupationState) -> None:
        self.db.execute(
            "INSERT INTO occupations (channel, code, description, marked, sent) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (channel, code) DO UPDATE SET description = excluded.description, "
            "marked = excluded.marked, sent = excluded.sent",
            (channel, code, description, int(state.marked_for_deletion), int(state.sent)))

    def methods(self, channel: str) -> dict[str, bool]:
        return {code: bool(shown) for code, shown in self.db.execute(
            "SELECT code, displayed FROM methods WHERE channel = ?", (channel,))}

    def set_method(self, channel: str, code: str, displayed: bool) -> None:
        self.db.execute("INSERT INTO methods (channel, code, displayed) VALUES (?, ?, ?) "
                        "ON CONFLICT (channel, code) DO UPDATE SET displayed = excluded.displayed",
                        (channel, code, int(displayed)))

    def sent_partners(self, channel: str, customers: Iterable[str]) -> dict[str, set[str]]:
        """Partners sent to Mobile (and not deleted since), for a batch of customers."""
        return sent_partners(self._read(), channel, customers)

    def mark_sent(self, channel: str, pairs: list[tuple[str, str]]) -> None:
        """(customer, partner) pairs now sent to Mobile."""
        self._insert("INSERT OR IGNORE INTO sent_persons (channel, customer, partner)", (channel,), pairs)

    def mark_unsent(self, channel: str, pairs: list[tuple[str, str]]) -> None:
        self._bulk("DELETE FROM sent_persons WHERE channel = ? AND (customer, partner) IN "
                   f"(SELECT {_items(2)} FROM json_each(?))", (channel,), pairs)

    def unsend_customers(self, channel: str, customers: list[str]) -> None:
        self._bulk("DELETE FROM sent_persons WHERE channel = ? AND customer IN (SELECT value FROM json_each(?))",
                   (channel,), customers)

    def known_mobile_ids(self, mobile_ids: Iterable[str]) -> Future:
        """R12: which of these mobileIds an import document carried, each with
        whether it was an organization (a future of ``{mobileId: organization}``).

        Inside :meth:`bulk` the query runs on the write connection, after the
        writes queued before it: it sees earlier documents and the records
        of this one written so far, so a document need not remember the
        mobileIds it created. The caller can parse on while it runs.
        """
        wanted = set(mobile_ids)
        keys = mobile_keys(wanted)

        def organizations() -> dict[str, bool]:
            found = carried_mobile_ids(self.db, keys, wanted)
            created = self._created  # once: a failing file sets it to None from the other thread
            if created is not None:
                found.update(created.known(wanted))
            return found

        return self.after_writes(organizations)

    def after_writes(self, call) -> Future:
        """Run ``call()`` on the write connection after the writes queued so far
        (inside :meth:`bulk`; at once otherwise): a future of what it returns."""
        if self._writer is not None:
            return self._writer.ask(call)
        done: Future = Future()
        done.set_result(call())
        return done

    def add_mobile_ids(self, channel: str, file_id: int, created: list[Decision]) -> None:
        """R12: the mobileIds an import document carries, from the decisions that created them.

        These decisions are kept here rather than in ``events``: one row per
        mobileId either way, and the events table's indexes would take
        hundreds of thousands of random mobileIds per big package.
        """
        rows = [created_row(d) for d in created]
        if not rows:
            return
        if self._writer is None:
            self._execute_insert(_CREATED_INTO, (channel, file_id), rows)
        else:
            self._writer.submit(self._created.add, channel, file_id, rows)

    def write_created(self) -> None:
        """Insert the mobileIds still held back (inside :meth:`bulk`, on the write
        connection: from a call queued with :meth:`after_writes`, or at its end)."""
        created = self._created
        if created is not None:
            created.flush()

    def _insert_created(self, channel: str, file_id: int, rows: list) -> None:
        self._execute_insert(_CREATED_INTO, (channel, file_id), rows)

    # --- transfers to and from partners -----------------------------------------

    def delivery(self, direction: str, channel: str, name: str) -> DeliveryRow | None:
        """The latest transfer of the file ``name`` (its name at the partner)."""
        row = self.db.execute(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE direction = ? AND channel = ? "
                              "AND name = ? ORDER BY id DESC LIMIT 1", (direction, channel, name)).fetchone()
        return DeliveryRow(*row) if row else None

    def deliveries_in(self, direction: str, channel: str, *states: str) -> list[DeliveryRow]:
        marks = ",".join("?" * len(states))
        rows = self.db.execute(f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE direction = ? AND channel = ? "
                               f"AND state IN ({marks}) ORDER BY id", (direction, channel, *states)).fetchall()
        return [DeliveryRow(*row) for row in rows]

    def add_delivery(self, *, direction: str, channel: str, partner: str, name: str, local: str, size: int,
                     sha256: str, state: str, mtime: int | None = None, run_id: int | None = None) -> int:
        return self.db.execute(
            "INSERT INTO deliveries (direction, channel, partner, name, local, bytes, sha256, mtime, state, run_id, "
            "started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (direction, channel, partner, name, local, size, sha256, mtime, state, run_id, utc_now())).lastrowid

    def set_delivery_state(self, delivery_id: int, state: str) -> None:
        """Move a transfer on; ``delivered`` and ``taken`` are final and get their time."""
        done = utc_now() if state in ("delivered", "taken") else None
        self.db.execute("UPDATE deliveries SET state = ?, done_at = COALESCE(?, done_at) WHERE id = ?",
                        (state, done, delivery_id))

    def remote_seen(self, channel: str) -> dict[str, tuple[int, int, float]]:
        """name -> (bytes, mtime, since when unchanged) for a partner's download folder."""
        return {name: (size, mtime, since) for name, size, mtime, since in self.db.execute(
            "SELECT name, bytes, mtime, since FROM remote_seen WHERE channel = ?", (channel,))}

    def set_remote_seen(self, channel: str, listing: Iterable[tuple[str, int, int]], now: float) -> None:
        """Record a listing (name, bytes, mtime): unchanged files keep their ``since``, names gone are dropped."""
        seen = self.remote_seen(channel)
        listing = list(listing)
        self.db.executemany("DELETE FROM remote_seen WHERE channel = ? AND name = ?",
                            [(channel, name) for name in set(seen) - {n for n, _, _ in listing}])
        self.db.executemany(
            "INSERT OR REPLACE INTO remote_seen (channel, name, bytes, mtime, since) VALUES (?, ?, ?, ?, ?)",
            [(channel, name, size, mtime, now) for name, size, mtime in listing
             if seen.get(name, (None, None, 0))[:2] != (size, mtime)])

    # --- decisions and runs ---------------------------------------------------

    def log_decisions(self, file_id: int, decisions: Iterable[Decision]) -> None:
        """Decisions as event rows; see :func:`event_rows` for the R3 and R4 drops."""
        self.log_event_rows(file_id, event_rows(decisions))

    def log_event_rows(self, file_id: int, rows: list[list]) -> None:
        """Rows made by :func:`event_rows` (perhaps in another process)."""
        self._insert(f"INSERT INTO events (file_id, {EVENT_COLUMNS})", (file_id,), rows)

    def start_run(self) -> int:
        with self.transaction():
            return self.db.execute("INSERT INTO runs (started_at) VALUES (?)", (utc_now(),)).lastrowid

    def finish_run(self, run_id: int, exit_code: int, summary: dict) -> None:
        with self.transaction():
            self.db.execute("UPDATE runs SET finished_at = ?, exit_code = ?, summary = ? WHERE id = ?",
                            (utc_now(), exit_code, json.dumps(summary, sort_keys=True), run_id))


def channel_sequences(db: sqlite3.Connection, channel: str, same_content: str | None = None) -> ChannelSequences:
    """F6: the numbers of ``channel``'s return packages imported (with file and time) and its
    releases. Numbers imported from ``same_content`` (a SHA-256) are left out: that content may
    come again (F2 did not call it a duplicate, so its output was lost), and it is no other content."""
    imported = {}
    for sequence, name, at, sha256 in db.execute(
            "SELECT s.sequence, f.name, s.imported_at, f.sha256 FROM inbound_sequences s "
            "JOIN files f ON f.id = s.file_id WHERE s.channel = ?", (channel,)):
        if sha256 != same_content:
            imported[sequence] = Imported(sequence, name, at)
    releases = tuple(Release(below, reason, at) for below, reason, at in db.execute(
        "SELECT below, reason, at FROM releases WHERE channel = ? ORDER BY id", (channel,)))
    return ChannelSequences(channel, imported, releases)


def sent_partners(db: sqlite3.Connection, channel: str, customers: Iterable[str]) -> dict[str, set[str]]:
    """:meth:`Ledger.sent_partners` through the connection ``db``."""
    customers = list(customers)
    found: dict[str, set[str]] = {}
    for start in range(0, len(customers), 500):
        chunk = customers[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for customer, partner in db.execute(
                f"SELECT customer, partner FROM sent_persons WHERE channel = ? AND customer IN ({marks})",
                (channel, *chunk)):
            found.setdefault(customer, set()).add(partner)
    return found


#: Rules whose decisions ride along in the row of the upsert they belong to.
_FOLDED = frozenset({"R3", "R4"})


def event_rows(decisions: Iterable[Decision]) -> list[list]:
    """Event rows (rule, subject, outcome, reason, customer, partner, code, count) for decisions.

    What R3 and R4 dropped from a customer or contact person (preferred
    flags, communications not displayed) goes into the reason of that
    record's upsert row, with its rule and count, instead of rows of its own:
    a third fewer rows for a big export, and ``explain`` shows it on the line
    that says the record was sent. The rules put a record's drops right
    before its upsert (contact persons) or right after it (customers); a
    drop with no upsert of the same record there keeps its own row.
    """
    rows: list[list] = []
    upsert_key = upsert = None  # the last upsert row and its (subject, customer, partner)
    waiting: list[Decision] = []  # drops since the last row
    for d in decisions:
        if d.outcome == "dropped" and d.rule in _FOLDED:
            if upsert is not None and upsert_key == (d.subject, d.customer, d.partner):
                upsert[3] += _note(d)
            else:
                waiting.append(d)
            continue
        row = [d.rule, d.subject, d.outcome, d.reason, d.customer, d.partner, d.code, d.count]
        if d.outcome == "upsert":
            upsert, upsert_key = row, (d.subject, d.customer, d.partner)
            for drop in waiting:
                if (drop.subject, drop.customer, drop.partner) == upsert_key:
                    row[3] += _note(drop)
                else:
                    rows.append(_row(drop))
        else:
            upsert = None
            rows.extend(_row(drop) for drop in waiting)
        if waiting:
            waiting = []
        rows.append(row)
    rows.extend(_row(drop) for drop in waiting)
    return rows


def _row(d: Decision) -> list:
    return [d.rule, d.subject, d.outcome, d.reason, d.customer, d.partner, d.code, d.count]


def _note(drop: Decision) -> str:
    times = f", {drop.count}x" if drop.count > 1 else ""
    return f"; dropped: {drop.reason} ({drop.rule}{times})"


@lru_cache(maxsize=1 << 13)  # a mobileId's key is needed twice: to look it up (R12), then to insert it
def mobile_key(mobile_id: str) -> int:
    """The ``mobile_ids`` index key of a mobileId: its CRC-32 and Adler-32 side by side, as a
    signed 64-bit integer. Only a key for the index, not an identity (rows are compared by the
    mobileId), so it need not resist anyone; it must be cheap, at two lookups per mobileId."""
    data = mobile_id.encode()
    key = zlib.crc32(data) << 32 | zlib.adler32(data)
    return key - (1 << 64) if key >= 1 << 63 else key


def created_row(decision: Decision) -> tuple[int, str, int, str | None, str]:
    """(key, mobileId, organization, employer, reason) of a decision that created a record in CEE (R10)."""
    if decision.partner is None:  # a new customer: an Organization
        return mobile_key(decision.customer), decision.customer, 1, None, decision.reason
    return mobile_key(decision.partner), decision.partner, 0, decision.customer, decision.reason


def mobile_keys(mobile_ids: Iterable[str]) -> str:
    """The keys of these mobileIds, as the JSON array :func:`carried_mobile_ids` takes."""
    return json.dumps([mobile_key(m) for m in mobile_ids])


def carried_mobile_ids(db: sqlite3.Connection, keys: str, wanted: set[str]) -> dict[str, bool]:
    """Those of ``wanted`` (their keys: ``keys``) in the ``mobile_ids`` of ``db``: mobileId -> whether
    it is an organization (R12)."""
    # json_each outside, each key looked up in the key index: a quarter cheaper than "key IN (...)",
    # which first builds a temporary index of the keys.
    rows = db.execute("SELECT m.mobile_id, m.organization FROM json_each(?) AS k CROSS JOIN mobile_ids AS m "
                      "ON m.key = k.value", (keys,))
    return {mobile_id: bool(organization) for mobile_id, organization in rows if mobile_id in wanted}


#: The columns of an events row that :func:`event_rows` makes (after its file_id).
EVENT_COLUMNS = "rule, subject, outcome, reason, customer, partner, code, count"
#: The columns of a mobile_ids row that :func:`created_row` makes (after its channel and file_id).
CREATED_COLUMNS = "key, mobile_id, organization, customer, reason"
_CREATED_INTO = f"INSERT INTO mobile_ids (channel, file_id, {CREATED_COLUMNS})"

#: mobileIds held back before they are inserted, sorted by key. Inserted as they come, each
#: went to a random page of the key index; sorted, most go to the page the one before went to,
#: which SQLite finds without a search from the root: about half the cost of the inserts.
CREATED_CHUNK = 1 << 14


class CreatedIds:
    """The mobileIds one file created (R12), inserted in chunks sorted by key.

    Until its chunk is inserted, a mobileId is found here: :meth:`known`
    answers for what is held back, the ledger for the rest. At most
    :data:`CREATED_CHUNK` rows wait, so memory stays flat.
    """

    def __init__(self, insert):
        self._insert = insert  # insert(channel, file_id, rows): rows sorted by key
        self._rows: list[tuple] = []
        self._organizations: dict[str, int] = {}  # mobileId -> 1 for an organization, 0 for a person
        self._file: tuple[str, int] | None = None

    def add(self, channel: str, file_id: int, rows: list[tuple]) -> None:
        """Rows made by :func:`created_row`."""
        self._file = (channel, file_id)
        self._rows.extend(rows)
        organizations = self._organizations
        for row in rows:
            organizations[row[1]] = row[2]
        if len(self._rows) >= CREATED_CHUNK:
            self.flush()

    def known(self, wanted: Iterable[str]) -> dict[str, bool]:
        """Those of ``wanted`` held back here: mobileId -> whether it is an organization."""
        organizations = self._organizations
        return {m: bool(organizations[m]) for m in wanted if m in organizations}

    def flush(self) -> None:
        if self._rows:
            self._rows.sort(key=itemgetter(0))  # by key: the index's order
            self._insert(*self._file, self._rows)
            self._rows = []
            self._organizations = {}


def insert_rows(db: sqlite3.Connection, into: str, constants: tuple, rows: list) -> None:
    """``into`` (``INSERT INTO table (columns)``) for all ``rows``, each row preceded by the
    ``constants``, in a few multi-row ``VALUES`` statements: about 40 % cheaper than
    ``executemany``, which steps and resets one statement per row."""
    if not rows:
        return
    width = len(rows[0])
    done = 0
    for size in _statement_sizes(len(rows)):
        params = list(constants)
        params.extend(chain.from_iterable(rows[done:done + size]))
        db.execute(_values_sql(into, len(constants), width, size), params)
        done += size


#: Rows per INSERT statement: a batch is split into chunks of these sizes, so a few
#: statements, each prepared once, take any number of rows.
_STATEMENT_ROWS = (256, 64, 16, 4, 1)


def _statement_sizes(count: int) -> Iterator[int]:
    """Chunk sizes from ``_STATEMENT_ROWS`` that add up to ``count``."""
    for size in _STATEMENT_ROWS:
        while count >= size:
            yield size
            count -= size


@cache
def _values_sql(into: str, constants: int, width: int, rows: int) -> str:
    """``into VALUES (...), ...`` for ``rows`` rows: the constants (numbered
    parameters ?1..?constants) and then ``width`` values of each row."""
    shared = [f"?{i}" for i in range(1, constants + 1)]
    number = constants
    values = []
    for _ in range(rows):
        own = [f"?{number + i}" for i in range(1, width + 1)]
        number += width
        values.append("(" + ",".join(shared + own) + ")")
    return f"{into} VALUES {','.join(values)}"


def _item(index: int) -> str:
    return f"json_extract(value, '$[{index}]')"


def _items(count: int) -> str:
    """The first ``count`` items of each row of a ``json_each`` array, as columns."""
    return ", ".join(_item(i) for i in range(count))


def _json_rows(rows: list) -> str:
    return json.dumps(rows, ensure_ascii=False, separators=(",", ":"))
