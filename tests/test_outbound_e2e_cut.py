"""The outbound end-to-end tests again, with every customer export cut in two.

Exports from 16 MiB are cut in two and go through two processes
(:mod:`exchange.halves`). ``EXCHANGE_SPLIT_MIN_BYTES=1`` makes every
customer export with a record after its middle take that path here, so each
assertion of ``test_outbound_e2e`` (packages record by record, reports,
rejections, the ledger) must hold for it too.
"""

from __future__ import annotations

import pytest

import workspace_util
from test_outbound_e2e import *  # noqa: F403 - the same tests, collected here again

_cut_runs: list[str] = []


@pytest.fixture(autouse=True)
def cut_every_export(monkeypatch):
    workspace_util.cut_small_files(monkeypatch)
    workspace_util.keep_runs_saying(monkeypatch, {": cut in two at byte": _cut_runs})


def test_zz_the_tests_above_cut_their_exports():
    """Collected last: most customer exports of the tests above were cut."""
    assert len(_cut_runs) >= 15, len(_cut_runs)  # 19 when this was written
