"""F6: return packages of a channel are imported in their manifest's ``sequence`` order.

Pure functions over what the ledger knows about one channel (the numbers
imported, with their file and time, and the operator's releases). The shell
(:mod:`exchange.run`, :mod:`exchange.to_cee`) reads that state before each
package, because importing one package can make the next one importable in
the same run.

Mobile's packages are a stream of changes: importing package 8 (a person
deleted) before package 7 (the same person added) would undo the rep's
deletion in CEE. So a package ahead of a gap waits (is *held*) rather than
being imported out of order, and a number already used by other content is
refused rather than imported twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Mapping

RULE = "F6"


@dataclass(frozen=True)
class Imported:
    """One number already imported: from which file, and when (UTC)."""

    sequence: int
    file: str
    at: str


@dataclass(frozen=True)
class Release:
    """An operator's word (``exchange release``) that the missing numbers below ``below`` never come."""

    below: int
    reason: str
    at: str


@dataclass(frozen=True)
class ChannelSequences:
    """What the ledger knows about one channel's return-package numbers."""

    channel: str
    imported: Mapping[int, Imported] = field(default_factory=dict)
    releases: tuple[Release, ...] = ()

    def expected(self) -> int | None:
        """The next number to import; None while the channel has imported none (the
        first one sets the start). A release moves it past the numbers it gave up."""
        if not self.imported:
            return None
        following = max(self.imported) + 1
        return max([following, *(r.below for r in self.releases)])

    def missing(self, held: Iterable[int]) -> list[int]:
        """The numbers awaited before the ``held`` ones can go on."""
        held = set(held)
        expected = self.expected()
        if expected is None or not held:
            return []
        return [n for n in range(expected, max(held)) if n not in held]


@dataclass(frozen=True)
class Decision:
    """``action`` is ``import``, ``hold`` or ``reject``; ``message`` says why (a rejection's
    names the rule; a hold's is shown as ``held: NAME (MESSAGE) (F6)``)."""

    action: str
    message: str = ""
    waiting_for: tuple[int, ...] = ()


IMPORT = Decision("import")


def decide(state: ChannelSequences, sequence: int, waiting: Iterable[int] = ()) -> Decision:
    """F6 for a package numbered ``sequence`` of ``state.channel``.

    ``waiting`` are the numbers of the other packages of the channel in the
    inbox now, so that a held package names only what is really missing.
    Content equal to an imported package never gets here: it is a duplicate
    (F2), checked first.
    """
    channel = state.channel
    earlier = state.imported.get(sequence)
    if earlier is not None:
        return Decision("reject", f"sequence {sequence} of {channel} was imported from {earlier.file} at "
                                  f"{earlier.at}; this package has other content ({RULE})")
    expected = state.expected()
    if expected is None or sequence == expected:
        return IMPORT
    if sequence > expected:
        waiting = set(waiting)
        gap = tuple(n for n in range(expected, sequence) if n not in waiting) or tuple(range(expected, sequence))
        return Decision("hold", f"sequence {sequence}; waiting for {numbers_text(gap)}", gap)
    # Below the expected number and never imported: given up by a release, or before the start.
    release = next((r for r in state.releases if sequence < r.below), None)
    if release is not None:
        return Decision("reject", f"sequence {sequence} of {channel} was released at {release.at} "
                                  f"(\"{release.reason}\"): the numbers below {release.below} still missing "
                                  f"then were given up; import it by hand if it is still wanted ({RULE})")
    first = state.imported[min(state.imported)]
    return Decision("reject", f"sequence {sequence} of {channel} is before the channel's first imported package "
                              f"(sequence {first.sequence}, {first.file} at {first.at}) ({RULE})")


def releasable(state: ChannelSequences, below: int) -> list[int]:
    """The numbers below ``below`` that ``exchange release`` would give up: missing ones
    between the first number imported and ``below``; empty when nothing is missing."""
    expected = state.expected()
    if expected is None:
        return []
    return [n for n in range(expected, below) if n not in state.imported]


def numbers_text(numbers: tuple[int, ...]) -> str:
    if len(numbers) > 3 and list(numbers) == list(range(numbers[0], numbers[-1] + 1)):
        return f"{numbers[0]}-{numbers[-1]}"
    return ", ".join(str(n) for n in numbers)
