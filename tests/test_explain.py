"""exchange explain: the history of an ID, line by line, from the event log."""

from __future__ import annotations

from datetime import datetime, timezone

from cli_util import EXAMPLES
from cli_util import exchange as _exchange

from exchange.ledger import event_rows
from exchange.records import Decision


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
    # what R3 and R4 dropped is on the line of the upsert it belongs to (ledger.event_rows)
    assert _exchange(ws, "explain", "50001").stdout == (
        f"{today} cu_1.xml -> MOB_MOBILE-PL_00000002.zip: contact person 50001 of customer 10001: upsert: "
        "sent as employee with position SALES_MGR; dropped: communication not displayed in Mobile (Private) (R4); "
        "dropped: preferred flag not supported in Mobile (R3)\n")
    code = _exchange(ws, "explain", "NO_SUCH_CODE").stdout.splitlines()
    assert code == [f"{today} cu_1.xml -> MOB_MOBILE-PL_00000002.zip: contact person 70010 of customer 10001: "
                    "warning: sent without position NO_SUCH_CODE (unknown occupation) (R7)"]

    unknown = _exchange(ws, "explain", "NEVER_SEEN")
    assert unknown.returncode == 1
    assert unknown.stderr == "NEVER_SEEN: not in the ledger (no file processed so far carried it)\n"


def test_event_rows_fold_R3_and_R4_drops_into_their_upsert():
    customer = [
        Decision(None, "customer", "upsert", "sent", customer="1"),
        Decision("R4", "customer", "dropped", "communication not displayed in Mobile (Private, Fax)",
                 customer="1", count=2),
        Decision("R3", "customer", "dropped", "preferred flag not supported in Mobile", customer="1"),
    ]
    person = [  # a contact person's drops come before its upsert
        Decision("R7", "contact person", "warning", "sent without position X (unknown occupation)",
                 customer="1", partner="5", code="X"),
        Decision("R4", "contact person", "dropped", "communication not displayed in Mobile (Private)",
                 customer="1", partner="5"),
        Decision("R6", "contact person", "upsert", "sent as contact", customer="1", partner="5"),
    ]
    assert event_rows(customer + person) == [
        [None, "customer", "upsert", "sent; dropped: communication not displayed in Mobile (Private, Fax) (R4, 2x); "
         "dropped: preferred flag not supported in Mobile (R3)", "1", None, None, 1],
        ["R7", "contact person", "warning", "sent without position X (unknown occupation)", "1", "5", "X", 1],
        ["R6", "contact person", "upsert", "sent as contact; dropped: communication not displayed in Mobile "
         "(Private) (R4)", "1", "5", None, 1],
    ]


def test_event_rows_keep_a_drop_without_its_upsert():
    drop = Decision("R3", "contact person", "dropped", "preferred flag not supported in Mobile",
                    customer="1", partner="6")
    other = Decision(None, "contact person", "upsert", "sent as employee", customer="1", partner="7")
    assert event_rows([drop, other]) == [
        ["R3", "contact person", "dropped", "preferred flag not supported in Mobile", "1", "6", None, 1],
        [None, "contact person", "upsert", "sent as employee", "1", "7", None, 1],
    ]
    assert event_rows([other, drop]) == [
        [None, "contact person", "upsert", "sent as employee", "1", "7", None, 1],
        ["R3", "contact person", "dropped", "preferred flag not supported in Mobile", "1", "6", None, 1],
    ]
