"""The customer rules (R2-R8) over a stream of ``Customer`` elements.

One pass, whoever runs it: the parent over a whole export or its first
half, a forked child over the second half (:mod:`exchange.second_half`).
Records go through the rules in batches, so that the contact persons
already sent to Mobile are looked up for a batch at once, and the changes
and decisions of a batch reach ``ledger`` together.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Protocol

from lxml import etree

from exchange.records import Customer, Decision
from exchange.rules import outbound
from exchange.summary import Summary
from exchange.xml import cee, mobile

BATCH = 256


class CustomerLedger(Protocol):
    """What the pass reads from and writes to the ledger."""

    def sent_partners(self, channel: str, customers: Iterable[str]) -> dict[str, set[str]]: ...
    def unsend_customers(self, channel: str, customers: list[str]) -> None: ...
    def mark_unsent(self, channel: str, pairs: list[tuple[str, str]]) -> None: ...
    def mark_sent(self, channel: str, pairs: list[tuple[str, str]]) -> None: ...
    def log_decisions(self, file_id: int, decisions: Iterable[Decision]) -> None: ...


def run(elements: Iterable[etree._Element], rules: outbound.CustomerRules, ledger: CustomerLedger, channel: str,
        file_id: int, write: Callable[[str], None], counted: Summary, name: str,
        progress: Callable[[], None]) -> int:
    """Apply the rules to every record of ``elements``, writing each output record with
    ``write``; the number of records."""
    count = 0
    batch: list = []
    empty: frozenset = frozenset()

    def flush() -> None:
        numbers = [r.number for r in batch if isinstance(r, Customer)]
        sent = ledger.sent_partners(channel, numbers) if numbers else {}
        sent_pairs, unsent_pairs, withdrawn, decisions = [], [], [], []
        for record in batch:
            if isinstance(record, Customer):
                outcome = outbound.apply_customer(record, sent.get(record.number, empty), rules)
            else:
                outcome = outbound.apply_deleted_customer(record)
            write(mobile.customer(outcome.record))
            number = record.number
            if outcome.unsend_all:
                withdrawn.append(number)
            unsent_pairs.extend((number, p) for p in outcome.unsent)
            sent_pairs.extend((number, p) for p in outcome.sent)
            decisions.extend(outcome.decisions)
        ledger.unsend_customers(channel, withdrawn)
        ledger.mark_unsent(channel, unsent_pairs)
        ledger.mark_sent(channel, sent_pairs)
        ledger.log_decisions(file_id, decisions)
        counted.count(decisions, name)
        batch.clear()
        progress()

    for element in elements:
        count += 1
        batch.append(cee.customer(element) if element.tag == cee.CUSTOMER else cee.deleted_customer(element))
        if len(batch) >= BATCH:
            flush()
    flush()
    return count


def rules_for(ledger, config, channel: str) -> outbound.CustomerRules:
    """The channel's customer rules, from the configuration and the ledger's masterdata."""
    occupations = ledger.occupations(channel)
    return outbound.CustomerRules(
        sales_classification=config.rules.sales_classification,
        displayed_methods=outbound.displayed_methods(config.rules.displayed_methods, ledger.methods(channel),
                                                     config.channels[channel].displayed_methods),
        live_occupations=frozenset(c for c, s in occupations.items() if not s.marked_for_deletion),
        known_occupations=frozenset(occupations),
    )
