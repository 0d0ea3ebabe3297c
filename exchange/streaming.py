"""What the streaming passes over big documents set up around themselves."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

#: Allocations (net of frees) between two runs of the youngest generation's collector.
YOUNG_COLLECTION_EVERY = 50_000


@contextmanager
def rare_collections() -> Iterator[None]:
    """Let Python's cycle collector run rarely while files are processed.

    A streaming pass allocates millions of short-lived objects (lxml
    proxies, records, decisions, ledger rows); reference counting frees
    them, and they form no cycles. The cycle collector still counts them
    and, at the default threshold of 700, walks the youngest generation
    thousands of times per big export, for nothing: about 2 % of the main
    process's instructions (callgrind, on a 5 MiB export). Forked
    validating children inherit the setting.
    """
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
