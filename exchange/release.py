"""``exchange release``: an operator's word that missing return packages never come (F6).

A return package ahead of a gap in its channel's ``sequence`` is held in
inbox/mobile/ until the numbers before it arrive. When they never will (a
tablet lost, a package deleted at the partner), the operator says so with a
reason; the release is kept in the ledger with its time, and the next run
imports the held packages from SEQUENCE on. Who ran it is not known.
"""

from __future__ import annotations

from dataclasses import dataclass

from exchange import ledger_guard
from exchange.config import Config
from exchange.errors import ExchangeError, UsageError
from exchange.lock import workspace_lock
from exchange.rules import sequence as sequence_rule


class NothingMissing(ExchangeError):
    """Nothing below the number given is missing: nothing to release (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Released:
    channel: str
    below: int
    missing: list[int]
    reason: str
    at: str


def release(config: Config, channel: str, below: int, reason: str) -> Released:
    """Record that the return packages of ``channel`` numbered below ``below`` still
    missing never come; under the workspace lock (a run judges packages against it)."""
    if channel not in config.channels:
        raise UsageError(f"sales channel '{channel}' is not configured; configured: "
                         f"{', '.join(sorted(config.channels))}")
    if not reason.strip():
        raise UsageError("--reason must say why the missing packages will never come")
    with workspace_lock(config.paths.state.parent):
        ledger = ledger_guard.open_ledger(config)
        try:
            with ledger.transaction():
                state = ledger.channel_sequences(channel)
                missing = sequence_rule.releasable(state, below)
                if not missing:
                    expected = state.expected()
                    if expected is None:
                        why = f"{channel} has imported no return package yet (the first one sets the start)"
                    else:
                        why = f"the next return package {channel} expects is sequence {expected}"
                    raise NothingMissing(f"nothing below sequence {below} of {channel} is missing: {why}; "
                                         "nothing was recorded (F6)")
                at = ledger.add_release(channel, below, reason, missing)
        finally:
            ledger.close()
    return Released(channel, below, missing, reason, at)
