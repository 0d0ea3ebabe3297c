"""``exchange explain ID``: the history of one customer number, partner number,
occupation code or mobileId, from the ledger's event log.

Each line names the input file, the output it went into (with its sequence
number), and what the rule did. An ID that is several things (a customer
number and a partner number) gets a heading per role.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from exchange import ledger_guard
from exchange.config import Config
from exchange.ledger import mobile_key

_ROLES = (
    ("customer", "customer", "e.customer = ? AND e.partner IS NULL", "m.organization = 1"),
    ("partner", "contact person", "e.partner = ?", "m.organization = 0"),
    ("code", "occupation / position code", "e.code = ?", None),
)

# What the exchange created in CEE is recorded with the mobileId (ledger.add_mobile_ids), not
# in events: as event rows, in the same shape.
_CREATED = (
    "SELECT m.file_id, 0, CASE m.organization WHEN 1 THEN 'new customer' ELSE 'contact person' END, 'created', "
    "COALESCE(m.reason, 'created'), CASE m.organization WHEN 1 THEN NULL ELSE 'R10' END, "
    "CASE m.organization WHEN 1 THEN m.mobile_id ELSE m.customer END, "
    "CASE m.organization WHEN 1 THEN NULL ELSE m.mobile_id END, NULL, 1 "
    "FROM mobile_ids m WHERE m.key = ? AND m.mobile_id = ? AND {role}"
)


@dataclass(frozen=True)
class Line:
    date: str
    file: str
    output: str | None
    sequence: int | None
    text: str

    def format(self) -> str:
        into = f" -> {self.output}" if self.output else ""
        return f"{self.date} {self.file}{into}: {self.text}"


def _describe(subject: str, outcome: str, reason: str, rule: str | None, customer: str | None,
              partner: str | None, code: str | None, count: int) -> str:
    if subject == "contact person":
        who = f"contact person {partner}" + (f" of customer {customer}" if customer else "")
    elif subject in ("occupation", "communication method"):
        who = f"{subject} {code}"
    else:
        who = f"{subject} {customer}"
    times = f" ({count}x)" if count > 1 else ""
    tail = f" ({rule})" if rule else ""
    return f"{who}: {outcome}{times}: {reason}{tail}"


def _releases(db, file_ids: set[int]) -> dict[int, list[str]]:
    """F6: for each of ``file_ids``, the releases that let it go on: return packages held when
    an operator gave up the numbers before them (``exchange release``), imported after that."""
    marks = ",".join("?" * len(file_ids))
    try:
        rows = db.execute(
            "SELECT s.file_id, s.channel, r.below, r.missing, r.reason, r.at FROM inbound_sequences s "
            "JOIN files f ON f.id = s.file_id "
            "JOIN releases r ON r.channel = s.channel AND r.below <= s.sequence AND r.at <= s.imported_at "
            "JOIN held h ON h.channel = s.channel AND h.name = f.name AND h.sequence = s.sequence "
            f"AND h.since <= r.at WHERE s.file_id IN ({marks}) ORDER BY r.id", tuple(file_ids)).fetchall()
    except sqlite3.OperationalError:  # a ledger from before F6: nothing was ever released
        return {}
    found: dict[int, list[str]] = {}
    for file_id, channel, below, missing, reason, at in rows:
        numbers = missing.replace(",", ", ")
        found.setdefault(file_id, []).append(
            f"held, then released: sequence {numbers} of {channel} will never come (\"{reason}\", {at}); "
            f"packages from sequence {below} on went on (F6)")
    return found


def history(config: Config, identifier: str) -> dict[str, list[Line]]:
    """Role heading -> lines, oldest first; empty when the ID was never seen."""
    found: dict[str, list[Line]] = {}
    db = ledger_guard.open_reader(config)
    if db is None:
        return found
    try:
        for _column, heading, where, created in _ROLES:
            events = ("SELECT e.file_id, e.id, e.subject, e.outcome, e.reason, e.rule, e.customer, e.partner, "
                      f"e.code, e.count FROM events e WHERE {where}")
            params: tuple = (identifier,)
            if created is not None:
                events += " UNION ALL " + _CREATED.format(role=created)
                params += (mobile_key(identifier), identifier)
            rows = db.execute(
                "SELECT f.id, substr(COALESCE(f.done_at, f.seen_at), 1, 10), f.name, f.output, f.sequence, "
                "e.subject, e.outcome, e.reason, e.rule, e.customer, e.partner, e.code, e.count "
                f"FROM ({events}) e JOIN files f ON f.id = e.file_id ORDER BY e.file_id, e.id",
                params).fetchall()
            if rows:
                released = _releases(db, {row[0] for row in rows})
                lines = found[heading] = []
                for file_id, date, name, output, sequence, *rest in rows:
                    for text in released.pop(file_id, ()):  # once, before the file's first line
                        lines.append(Line(date, name, output, sequence, text))
                    lines.append(Line(date, name, output, sequence, _describe(*rest)))
    finally:
        db.close()
    return found
