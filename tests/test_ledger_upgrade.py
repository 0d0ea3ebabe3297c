"""A ledger written before mobile_ids had its hash key is upgraded when it is opened."""

from __future__ import annotations

import sqlite3

from exchange.ledger import SCHEMA_VERSION, Ledger, mobile_key

OLD_MOBILE_IDS = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1');
CREATE TABLE mobile_ids (
    mobile_id TEXT PRIMARY KEY, channel TEXT NOT NULL, file_id INTEGER NOT NULL, organization INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO mobile_ids VALUES ('3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b', 'MOBILE-PL', 1, 1);
INSERT INTO mobile_ids VALUES ('0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', 'MOBILE-PL', 1, 0);
"""
ORG, PERSON = "3f2b6c1e-8a4d-4e5f-9b1a-0c2d3e4f5a6b", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


def test_old_mobile_ids_are_moved_under_their_keys(tmp_path):
    path = tmp_path / "state.db"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_MOBILE_IDS)
    ledger = Ledger(path)
    try:
        assert ledger.known_mobile_ids([ORG, PERSON, "ffffffff-0000-4000-8000-000000000000"]).result() == \
            {ORG: True, PERSON: False}
        rows = ledger.db.execute("SELECT key, mobile_id, channel, file_id, organization, customer, reason "
                                 "FROM mobile_ids ORDER BY mobile_id").fetchall()
        assert rows == [(mobile_key(PERSON), PERSON, "MOBILE-PL", 1, 0, None, None),
                        (mobile_key(ORG), ORG, "MOBILE-PL", 1, 1, None, None)]
        assert ledger.db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == \
            (str(SCHEMA_VERSION),)
    finally:
        ledger.close()
    Ledger(path).close()  # opening it again changes nothing


def test_equal_keys_are_told_apart_by_the_mobile_id(tmp_path):
    ledger = Ledger(tmp_path / "state.db")
    try:
        # a row whose key collides with ORG's, as a 64-bit hash collision would
        ledger.db.execute("INSERT INTO mobile_ids (key, mobile_id, channel, file_id, organization) "
                          "VALUES (?, ?, 'MOBILE-PL', 1, 0)", (mobile_key(ORG), PERSON))
        assert ledger.known_mobile_ids([ORG]).result() == {}
        assert ledger.known_mobile_ids([PERSON]).result() == {}  # its own key finds nothing
    finally:
        ledger.close()
