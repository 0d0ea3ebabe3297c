"""The inbound end-to-end tests again, with every return package cut in two.

A return package whose ``customers.xml`` holds 16 MiB or more is cut in two
and goes through two processes (:mod:`exchange.import_second_half`).
``EXCHANGE_SPLIT_MIN_BYTES=1`` makes every package with a record after the
cut's share take that path here, so each assertion of ``test_inbound_e2e``
(documents record by record, run summaries, rejections, the ledger) must
hold for it too, including the packages that fall back to one pass.
"""

from __future__ import annotations

import pytest

import workspace_util
from test_inbound_e2e import *  # noqa: F403 - the same tests, collected here again

_cut_runs: list[str] = []
_one_pass_again: list[str] = []


@pytest.fixture(autouse=True)
def cut_every_package(monkeypatch):
    workspace_util.cut_small_files(monkeypatch)
    workspace_util.keep_runs_saying(monkeypatch, {": customers.xml cut in two at byte": _cut_runs,
                                                  "; the package goes through in one pass": _one_pass_again})


def test_zz_the_tests_above_cut_their_packages():
    """Collected last: most packages of the tests above were cut, and a mobileId repeated
    across the cut sent its package through in one pass (R12)."""
    assert len(_cut_runs) >= 10, len(_cut_runs)  # 11 when this was written: small packages have no record past the share
    assert any("is created in both halves (R12)" in stderr for stderr in _one_pass_again), _one_pass_again
