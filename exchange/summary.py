"""The run summary: what one run read, wrote, rejected and decided.

Built from the same :class:`~exchange.records.Decision` values the ledger
logs; printed at the end of ``exchange run`` and stored with the run.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable

from exchange.records import Decision

#: How each (rule, outcome) is counted in reports, in report order.
RULE_LABELS: dict[tuple[str, str], str] = {
    ("R1", "delete"): "R1 positions deleted (occupation marked for deletion)",
    ("R1", "not sent"): "R1 occupations not sent (marked for deletion)",
    ("R2", "not sent"): "R2 contact persons not sent (no Sales classification)",
    ("R2", "delete"): "R2 contact persons deleted (lost the Sales classification)",
    ("R3", "dropped"): "R3 preferred flags dropped",
    ("R4", "dropped"): "R4 communication connections filtered (method not displayed)",
    ("R4", "setting"): "R4 communication method settings from masterdata",
    ("R5", "delete"): "R5 removed contact persons deleted",
    ("R6", "upsert"): "R6 contact persons sent as relation=contact",
    ("R7", "warning"): "R7 warnings (position left out)",
    ("R8", "delete"): "R8 customers withdrawn (deleted or inactive)",
    ("R10", "created"): "R10 contact persons created as employees",
    ("R12", "not created"): "R12 records not created again (mobileId imported before)",
    ("R13", "warning"): "R13 warnings (position left out)",
    ("R14", "removal"): "R14 contact person removals",
}

STILL_CHANGING = "still changing"  # why a file that has not settled waits (pickup.settle)

MAX_WARNINGS_LISTED = 50  # in the JSON report
MAX_WARNINGS_PRINTED = 10  # in the summary on the terminal


@dataclass
class Summary:
    files: int = 0
    records_read: int = 0
    packages: list[str] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (file, first error)
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (file, the earlier file)
    left: list[tuple[str, str]] = field(default_factory=list)  # (file, why): not taken in this run
    held: list[tuple[str, str]] = field(default_factory=list)  # (file, why): F6, ahead of a gap in its sequence
    transfer_errors: list[str] = field(default_factory=list)
    faults: list[str] = field(default_factory=list)  # environment faults: one line each (exit 74)
    rules: Counter = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    warnings_total: int = 0

    def count(self, decisions: Iterable[Decision], file_name: str) -> None:
        tally = self.rules
        for d in decisions:  # every decision of a big file: kept to the fewest lookups
            rule = d.rule
            if rule is None:
                continue
            outcome = d.outcome
            tally[f"{rule} {outcome}"] += d.count
            if outcome == "warning":
                self.warnings_total += 1
                if len(self.warnings) < MAX_WARNINGS_LISTED:
                    who = f"contact person {d.partner} of customer {d.customer}" if d.partner else \
                        f"customer {d.customer}"
                    self.warnings.append(f"{file_name}: {who}: {d.reason} ({d.rule})")

    def leave(self, name: str, reason: str) -> None:
        """``name`` waits for the next run, because of ``reason`` (``still changing`` and others)."""
        self.left.append((name, reason))

    def merge(self, other: "Summary") -> None:
        """Add the rule counts and warnings of one file's processing."""
        self.rules.update(other.rules)
        room = MAX_WARNINGS_LISTED - len(self.warnings)
        self.warnings.extend(other.warnings[:max(room, 0)])
        self.warnings_total += other.warnings_total

    @property
    def exit_code(self) -> int:
        """74 for an environment fault (it wins over 1), 1 for a rejected input or a
        failed transfer, else 0 (CLI.md)."""
        if self.faults:
            return 74
        return 1 if self.rejected or self.transfer_errors else 0

    def as_dict(self) -> dict:
        return {
            "files": self.files,
            "records_read": self.records_read,
            "packages": self.packages,
            "imports": self.imports,
            "rejected": [{"file": f, "error": e} for f, e in self.rejected],
            "duplicates": [{"file": f, "duplicate_of": d} for f, d in self.duplicates],
            # Two fields, as the reports had them: files still changing by name, the rest with the reason.
            "left_for_next_run": [f for f, r in self.left if r == STILL_CHANGING],
            "put_back": [{"file": f, "reason": r} for f, r in self.left if r != STILL_CHANGING],
            "held": [{"file": f, "reason": r} for f, r in self.held],
            "transfer_errors": self.transfer_errors,
            "faults": self.faults,
            "rules": dict(sorted(self.rules.items())),
            "warnings": self.warnings,
            "warnings_total": self.warnings_total,
        }

    def lines(self) -> list[str]:
        out = [f"files processed: {self.files}, records read: {self.records_read}",
               f"packages written: {len(self.packages)}" + (f" ({', '.join(self.packages)})" if self.packages else "")]
        if self.imports:
            out.append(f"import documents written: {len(self.imports)} ({', '.join(self.imports)})")
        for (rule, outcome), label in RULE_LABELS.items():
            n = self.rules.get(f"{rule} {outcome}", 0)
            if n:
                out.append(f"  {label}: {n}")
        for key, n in sorted(self.rules.items()):
            rule, _, outcome = key.partition(" ")
            if (rule, outcome) not in RULE_LABELS:
                out.append(f"  {rule} {outcome}: {n}")
        for warning in self.warnings[:MAX_WARNINGS_PRINTED]:
            out.append(f"warning: {warning}")
        shown = min(len(self.warnings), MAX_WARNINGS_PRINTED)
        if self.warnings_total > shown:
            out.append(f"warning: ... and {self.warnings_total - shown} more (see the run report in "
                       ".exchange/reports/)")
        for name, error in self.rejected:
            out.append(f"rejected: {name}: {error}")
        for name, earlier in self.duplicates:
            out.append(f"duplicate: {name} (same content as {earlier}; archived, no output) (F2)")
        for name, why in self.held:  # not a rejection: it waits in inbox/mobile/ (exit 0)
            out.append(f"held: {name} ({why}) (F6)")
        for name, reason in self.left:
            out.append(f"left for the next run ({reason}): {name}")
        for error in self.transfer_errors:
            out.append(f"transfer failed: {error}")
        for fault in self.faults:
            out.append(f"fault: {fault}")
        return out
