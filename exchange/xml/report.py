"""Errors found in a document, written for the person who has to fix it.

Each :class:`Problem` names the position (line, column), the element path
and what is wrong. A :class:`Report` collects them up to a cap (1,000 per
file, CLI.md) and counts the rest.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_PROBLEMS = 1000

_CLARK = re.compile(r"\{(?:urn|https?):[^}]*\}")


def readable(message: str) -> str:
    """libxml2's message without namespace URIs in element names, one line."""
    return " ".join(_CLARK.sub("", message).split())


@dataclass(frozen=True)
class Problem:
    """One error: where it is and what it is."""

    message: str
    line: int | None = None
    column: int | None = None
    path: str | None = None
    member: str | None = None  # the ZIP member, for errors inside packages

    def location(self, file: str) -> str:
        parts = [file]
        if self.member:
            parts.append(self.member)
        if self.line is not None:
            parts.append(str(self.line))
            parts.append(str(self.column or 1))
        return ":".join(parts)

    def format(self, file: str) -> str:
        """``FILE[:MEMBER][:LINE:COLUMN]: message (at path)``."""
        where = f" (at {self.path})" if self.path else ""
        return f"{self.location(file)}: {self.message}{where}"


@dataclass
class Report:
    """The problems of one file, capped, in the order they were found."""

    cap: int = MAX_PROBLEMS
    problems: list[Problem] = field(default_factory=list)
    more: int = 0  # problems found beyond the cap

    def add(self, problem: Problem) -> None:
        if len(self.problems) < self.cap:
            self.problems.append(problem)
        else:
            self.more += 1

    def extend(self, problems) -> None:
        for problem in problems:
            self.add(problem)

    @property
    def full(self) -> bool:
        return len(self.problems) >= self.cap

    @property
    def count(self) -> int:
        return len(self.problems) + self.more

    def __bool__(self) -> bool:  # a report is "truthy" when it holds errors
        return self.count > 0

    def lines(self, file: str) -> list[str]:
        out = [p.format(file) for p in self.problems]
        if self.more:
            out.append(f"{file}: ... and {self.more} more errors not listed")
        return out
