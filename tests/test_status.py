"""exchange status: field by field after a scripted run."""

from __future__ import annotations

import json

from cli_util import EXAMPLES
from cli_util import exchange as _exchange


def test_status_json_after_a_scripted_run(tmp_path):
    ws = tmp_path / "ws"
    assert _exchange(tmp_path, "init", str(ws)).returncode == 0
    cee = ws / "inbox" / "cee"
    (cee / "a_masterdata.xml").write_bytes((EXAMPLES / "masterdata_20261127.xml").read_bytes())
    (cee / "b_customers.xml").write_bytes((EXAMPLES / "customers_20261127.xml").read_bytes())
    (cee / "c_again.xml").write_bytes((EXAMPLES / "customers_20261127.xml").read_bytes())
    (cee / "d_bad.xml").write_text("junk", encoding="utf-8")
    (cee / "notes.txt").write_text("not for us", encoding="utf-8")
    assert _exchange(ws, "run", "--settle", "0").returncode == 1
    (cee / "e_waiting.xml").write_bytes((EXAMPLES / "customers_20261127.xml").read_bytes())

    result = _exchange(ws, "status", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["workspace"] == str(ws)
    assert status["inboxes"]["cee"]["waiting"] == 1
    assert status["inboxes"]["cee"]["files"] == ["e_waiting.xml"]
    assert status["inboxes"]["cee"]["left_alone"] == ["notes.txt"]
    assert status["inboxes"]["cee"]["oldest_waiting_seconds"] >= 0
    assert status["inboxes"]["cee"]["left_alone_reasons"] == {"notes.txt": "not a .xml file"}
    assert status["inboxes"]["mobile"] == {"waiting": 0, "oldest_waiting_seconds": None, "files": [],
                                           "left_alone": [], "left_alone_reasons": {}, "claimed": []}
    assert status["outbox"] == {"MOBILE-PL": {"partner": None, "waiting_for_pickup": [
        "MOB_MOBILE-PL_00000001.zip", "MOB_MOBILE-PL_00000002.zip"]}}
    [rejected] = status["rejected"]
    assert rejected["file"] == "d_bad.xml" and rejected["inbox"] == "cee" and rejected["errors"] == 1
    assert rejected["first_error"] == "d_bad.xml:1:1: not well-formed XML: Start tag expected, '<' not found"
    assert rejected["path"] == "inbox/rejected/d_bad.xml"
    [duplicate] = status["duplicates"]
    assert duplicate["file"] == "c_again.xml"
    [run] = status["last_runs"]
    assert {k: run[k] for k in ("run", "exit_code", "files", "records_read", "packages", "imports", "rejected",
                                "duplicates", "transfer_errors")} == {
        "run": 1, "exit_code": 1, "files": 4, "records_read": 7,
        "packages": ["MOB_MOBILE-PL_00000001.zip", "MOB_MOBILE-PL_00000002.zip"], "imports": [],
        "rejected": 1, "duplicates": 1, "transfer_errors": 0}
    assert status["next_sequences"] == {"MOBILE-PL": {"to-mobile": 3, "from-mobile": 1}}

    text = _exchange(ws, "status")
    assert text.returncode == 0
    assert "inbox/cee: 1 waiting" in text.stdout
    assert "  d_bad.xml: d_bad.xml:1:1: not well-formed XML: Start tag expected, '<' not found" in text.stdout
    assert "next sequences MOBILE-PL: package 3, import 1" in text.stdout


def test_status_of_a_new_workspace(tmp_path):
    ws = tmp_path / "ws"
    assert _exchange(tmp_path, "init", str(ws)).returncode == 0
    status = json.loads(_exchange(ws, "status", "--json").stdout)
    assert status["rejected"] == [] and status["last_runs"] == []
    assert status["next_sequences"] == {"MOBILE-PL": {"to-mobile": 1, "from-mobile": 1}}
