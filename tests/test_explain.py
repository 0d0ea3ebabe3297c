"""exchange explain: the history of an ID, line by line, from the event log."""

from __future__ import annotations

from datetime import datetime, timezone

from cli_util import EXAMPLES
from cli_util import exchange as _exchange


def test_explain_partner_customer_code_and_unknown(tmp_path):
    ws = tmp_path / "ws"
    assert _exchange(tmp_path, "init", str(ws)).returncode == 0
    cee = ws / "inbox" / "cee"
    (cee / "md.xml").write_bytes((EXAMPLES / "masterdata_20261127.xml").read_bytes())
    customers = (EXAMPLES / "customers_20261127.xml").read_text(encoding="utf-8")
    (cee / "cu_1.xml").write_text(customers.replace("<Occupation>BUYER</Occupation>",
                                                    "<Occupation>NO_SUCH_CODE</Occupation>"), encoding="utf-8")
    assert _exchange(ws, "run", "--settle", "0").returncode == 0
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")

    partner = _exchange(ws, "explain", "70010")
    assert partner.returncode == 0, partner.stderr
    assert partner.stdout.splitlines() == [
        f"{today} cu_1.xml -> MOB_MOBILE-PL_00000002.zip: contact person 70010 of customer 10001: warning: "
        "sent without position NO_SUCH_CODE (unknown occupation) (R7)",
        f"{today} cu_1.xml -> MOB_MOBILE-PL_00000002.zip: contact person 70010 of customer 10001: upsert: "
        "sent as contact (R6)",
    ]
    assert _exchange(ws, "explain", "50002").stdout == (
        f"{today} cu_1.xml -> MOB_MOBILE-PL_00000002.zip: contact person 50002 of customer 10001: not sent: "
        "no Sales classification (R2)\n")
    assert _exchange(ws, "explain", "10009").stdout == (
        f"{today} cu_1.xml -> MOB_MOBILE-PL_00000002.zip: customer 10009: delete: "
        "deleted or withdrawn from the sales channel in CEE (R8)\n")
    code = _exchange(ws, "explain", "NO_SUCH_CODE").stdout.splitlines()
    assert code == [f"{today} cu_1.xml -> MOB_MOBILE-PL_00000002.zip: contact person 70010 of customer 10001: "
                    "warning: sent without position NO_SUCH_CODE (unknown occupation) (R7)"]

    unknown = _exchange(ws, "explain", "NEVER_SEEN")
    assert unknown.returncode == 1
    assert unknown.stderr == "NEVER_SEEN: not in the ledger (no file processed so far carried it)\n"
