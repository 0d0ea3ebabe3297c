"""Return packages -> CEE import documents, end to end through the real command line.

Every test makes its own workspace with ``exchange init``, drops packages
into ``inbox/mobile/`` (and CEE exports into ``inbox/cee/`` where occupations
must be live), runs ``python -m exchange run --settle 0`` as a subprocess and
reads each import document strictly into plain data (inbound_util), which
is compared element by element with what RULES.md (R9-R14, F1-F5) and
FORMATS.md demand; each document is also checked with ``exchange validate``.

The second half feeds hostile packages: each must be rejected to
``inbox/rejected/`` with ``<name>.error.txt`` naming the member and the
reason, exit status 1, no import document, and nothing written outside
the workspace (the parent folder, the child's TMPDIR included, is listed
before and after; the places a zip slip would write to are looked at).
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path

import packages_util
import pytest
from inbound_util import (
    InboundWorkspace,
    body,
    comm_,
    contact,
    ext,
    import_header,
    import_name,
    mid,
    new_customer,
    org,
    parse_import,
    pers,
    removal,
    ret_address,
    ret_customer,
    ret_person,
    return_package,
    returned,
)
from packages_util import (
    Entry,
    build_package,
    corrupt_crc,
    listing,
    sha256,
    write_zeros_package,
    zeros_sha256,
    zip_info,
)
from workspace_util import CHANNEL, addr, archive_days, masterdata, occupation

from exchange.xml.validate import validate_document

NO_TRACEBACK = "Traceback"

MD_NAME = "masterdata_20261127.xml"
MD = masterdata("MD-20261127-01", "2026-11-27T22:00:05+01:00",
                occupations=[occupation("SALES_MGR", "Sales manager"), occupation("BUYER", "Buyer"),
                             occupation("OLD_POS", "Former position", marked=True)])


@pytest.fixture
def ws(tmp_path: Path) -> InboundWorkspace:
    return InboundWorkspace.create(tmp_path)


@pytest.fixture
def build(tmp_path: Path) -> Path:
    """Where packages are made before they are dropped into the inbox."""
    folder = tmp_path / "build"
    folder.mkdir()
    return folder


def drop(ws: InboundWorkspace, build: Path, name: str, data: bytes, **options) -> bytes:
    """Build a return package holding ``data`` and drop it into inbox/mobile/ as ``name``; its bytes."""
    package = return_package(build / name, data, **options).read_bytes()
    ws.drop_package(name, package)
    return package


def imports_line(*sequences: int, channel: str = CHANNEL) -> str:
    names = ", ".join(import_name(n, channel) for n in sequences)
    return f"import documents written: {len(sequences)} ({names})"


def assert_run(run, returncode: int, lines: list[str]) -> None:
    assert run.returncode == returncode, str(run)
    assert NO_TRACEBACK not in run.stderr, str(run)
    assert run.lines == lines, str(run)


def assert_valid(ws: InboundWorkspace, sequence: int, records: int, channel: str = CHANNEL) -> None:
    """``exchange validate`` accepts the import document (cee-import.xsd)."""
    path = ws.outbox_cee / import_name(sequence, channel)
    run = ws.cli("validate", path)
    assert run.returncode == 0, str(run)
    assert run.stdout == f"{path}: valid (CeeImport, {records} records)\n", str(run)


def assert_package_archived(ws: InboundWorkspace, name: str, data: bytes, run) -> None:
    assert not (ws.inbox_mobile / name).exists(), f"{name} is still in inbox/mobile"
    found = ws.archived(name)
    assert len(found) == 1, (name, found)
    assert found[0].parent.name in archive_days(run), found
    assert found[0].read_bytes() == data


def process_masterdata(ws: InboundWorkspace, data: bytes = MD, name: str = MD_NAME) -> None:
    ws.drop(name, data)
    run = ws.run()
    assert run.returncode == 0, str(run)


def r13_line(package: str, person: int, owner: str, code: str) -> str:
    return (f"warning: {package}: contact person {mid(person)} of customer {owner}: position {code} left out "
            f"(not a live occupation of {CHANNEL}) (R13)")


# ============================================ 1. new customers, persons, removals


def test_new_customers_with_contact_persons(ws, build):
    process_masterdata(ws)
    data = returned([
        new_customer(mid(1), "Hurtownia Zielona & Syn <Sp. j.>", tax_id="PL6770065406",
                     addr=ret_address("Kraków", "PL", street="ul. Długa 5/7", postal="30-001"),
                     contacts=[contact("phone", "+48 12 300 00 00"), contact("email", "biuro@zielona.example")],
                     persons=[ret_person(mid(2), "Wiśniewski", first="Jan", position="BUYER",
                                         contacts=[contact("email", "buyer@zielona.example")]),
                              ret_person(mid(3), "Żak", contacts=[contact("mobile", "+48 600 100 200"),
                                                                  contact("fax", "+48 12 300 00 01")])]),
        new_customer(mid(4), "Solo \"Bar\" 😀"),
    ])
    package = drop(ws, build, "RET_MOBILE-PL_0001.zip", data)
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 1, records read: 2",
        "packages written: 0",
        imports_line(1),
        "  R10 contact persons created as employees: 2",
    ])
    doc = ws.import_doc(1)
    import_header(doc, sequence=1, source_name="RET_MOBILE-PL_0001.zip", source=package, run=run)
    assert body(doc) == {
        "Organizations": [
            org(mid(1), "Hurtownia Zielona & Syn <Sp. j.>", tax_id="PL6770065406",
                address=addr("Kraków", "PL", street="ul. Długa 5/7", postal="30-001"),
                comms=[comm_("phone", "+48 12 300 00 00"), comm_("email", "biuro@zielona.example")]),
            org(mid(4), "Solo \"Bar\" 😀"),
        ],
        "Persons": [
            pers(mid(2), "Wiśniewski", first="Jan", occupation="BUYER",
                 comms=[comm_("email", "buyer@zielona.example")], employee_of_new=mid(1)),
            pers(mid(3), "Żak", comms=[comm_("mobile", "+48 600 100 200"), comm_("fax", "+48 12 300 00 01")],
                 employee_of_new=mid(1)),
        ],
        "Removals": [],
    }
    assert_valid(ws, 1, 4)
    assert_package_archived(ws, "RET_MOBILE-PL_0001.zip", package, run)
    assert ws.import_names() == [import_name(1)]
    assert ws.mobile_inbox_names() == []


def test_contact_persons_added_and_deleted_on_existing_customers(ws, build):
    data = returned([
        ret_customer("10001", persons=[ret_person(mid(11), "Lewandowski", first="Piotr"),
                                       ret_person(mid(12), "Nowak", contacts=[contact("url", "https://x.example/?a=1&b=2")])],
                     deleted=["50002", "50003"]),
        ret_customer("10002", deleted=["60001"]),
        ret_customer("C.3-x", persons=[ret_person(mid(13), "Kos")]),
    ])
    package = drop(ws, build, "ret.zip", data)
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 1, records read: 3",
        "packages written: 0",
        imports_line(1),
        "  R10 contact persons created as employees: 3",
        "  R14 contact person removals: 3",
    ])
    doc = ws.import_doc(1)
    import_header(doc, sequence=1, source_name="ret.zip", source=package, run=run)
    assert body(doc) == {
        "Organizations": [],
        "Persons": [
            pers(mid(11), "Lewandowski", first="Piotr", employee_of="10001"),
            pers(mid(12), "Nowak", comms=[comm_("url", "https://x.example/?a=1&b=2")], employee_of="10001"),
            pers(mid(13), "Kos", employee_of="C.3-x"),
        ],
        "Removals": [removal("10001", "50002"), removal("10001", "50003"), removal("10002", "60001")],
    }
    assert_valid(ws, 1, 6)
    assert_package_archived(ws, "ret.zip", package, run)


def test_configured_classification_and_import_method(ws, build):
    """R9 and R11 follow the configuration (rules.sales_classification, rules.import_method)."""
    ws.edit_config(lambda text: text.replace('sales_classification = "Sales"', 'sales_classification = "Vertrieb"')
                   .replace('import_method = "Business"', 'import_method = "Work_1"'))
    data = returned([new_customer(mid(1), "Firma", contacts=[contact("phone", "+49 1")],
                                  persons=[ret_person(mid(2), "Huber", contacts=[contact("email", "h@x.example")])]),
                     ret_customer("10001", persons=[ret_person(mid(3), "Maier")])])
    drop(ws, build, "ret.zip", data)
    assert ws.run().returncode == 0
    assert body(ws.import_doc(1)) == {
        "Organizations": [org(mid(1), "Firma", comms=[comm_("phone", "+49 1", "Work_1")])],
        "Persons": [pers(mid(2), "Huber", classifications=["Vertrieb"],
                         comms=[comm_("email", "h@x.example", "Work_1")], employee_of_new=mid(1)),
                    pers(mid(3), "Maier", classifications=["Vertrieb"], employee_of="10001")],
        "Removals": [],
    }
    assert_valid(ws, 1, 3)


def test_empty_returned_customers_still_yields_a_document(ws, build):
    package = drop(ws, build, "empty.zip", returned([]))
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 0", "packages written: 0", imports_line(1)])
    doc = ws.import_doc(1)
    import_header(doc, sequence=1, source_name="empty.zip", source=package, run=run)
    assert body(doc) == {"Organizations": [], "Persons": [], "Removals": []}
    assert_valid(ws, 1, 0)
    assert_package_archived(ws, "empty.zip", package, run)


# ============================================================ 2. positions (R13)


def test_unknown_and_marked_for_deletion_positions(ws, build):
    process_masterdata(ws)
    data = returned([
        new_customer(mid(1), "Firma", persons=[ret_person(mid(2), "Alfa", position="OLD_POS"),
                                               ret_person(mid(3), "Beta", position="SALES_MGR")]),
        ret_customer("10001", persons=[ret_person(mid(4), "Gamma", position="GHOST"),
                                       ret_person(mid(5), "Delta", position="BUYER"),
                                       ret_person(mid(6), "Epsilon", position="buyer")]),
    ])
    package = drop(ws, build, "pos.zip", data)
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 1, records read: 2",
        "packages written: 0",
        imports_line(1),
        "  R10 contact persons created as employees: 5",
        "  R13 warnings (position left out): 3",
        r13_line("pos.zip", 2, mid(1), "OLD_POS"),
        r13_line("pos.zip", 4, "10001", "GHOST"),
        r13_line("pos.zip", 6, "10001", "buyer"),
    ])
    doc = ws.import_doc(1)
    import_header(doc, sequence=1, source_name="pos.zip", source=package, run=run)
    assert body(doc) == {
        "Organizations": [org(mid(1), "Firma")],
        "Persons": [pers(mid(2), "Alfa", employee_of_new=mid(1)),
                    pers(mid(3), "Beta", occupation="SALES_MGR", employee_of_new=mid(1)),
                    pers(mid(4), "Gamma", employee_of="10001"),
                    pers(mid(5), "Delta", occupation="BUYER", employee_of="10001"),
                    pers(mid(6), "Epsilon", employee_of="10001")],
        "Removals": [],
    }
    assert_valid(ws, 1, 6)


def test_position_live_then_marked_for_deletion(ws, build):
    """A later masterdata export marks BUYER: from then on it is left out (R13 reads the current state)."""
    process_masterdata(ws)
    drop(ws, build, "one.zip", returned([ret_customer("10001", persons=[ret_person(mid(1), "A", position="BUYER")])]))
    assert ws.run().returncode == 0
    process_masterdata(ws, masterdata("MD-20261128-01", "2026-11-28T22:00:00Z", changed_since="last-transfer",
                                      occupations=[occupation("BUYER", "Buyer", marked=True)]),
                       "masterdata_20261128.xml")
    drop(ws, build, "two.zip", returned([ret_customer("10001", persons=[ret_person(mid(2), "B", position="BUYER")])]),
         sequence=2)  # F6: the channel's next return package
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 1", "packages written: 0", imports_line(2),
                        "  R10 contact persons created as employees: 1",
                        "  R13 warnings (position left out): 1",
                        r13_line("two.zip", 2, "10001", "BUYER")])
    assert body(ws.import_doc(1)) == {"Organizations": [], "Removals": [],
                                      "Persons": [pers(mid(1), "A", occupation="BUYER", employee_of="10001")]}
    doc = ws.import_doc(2)
    import_header(doc, sequence=2, source_name="two.zip", source=(ws.archived("two.zip")[0]).read_bytes(), run=run)
    assert body(doc) == {"Organizations": [], "Persons": [pers(mid(2), "B", employee_of="10001")], "Removals": []}
    assert_valid(ws, 1, 1)
    assert_valid(ws, 2, 1)


def test_positions_without_any_masterdata_are_all_left_out(ws, build):
    drop(ws, build, "p.zip", returned([ret_customer("10001", persons=[ret_person(mid(1), "A", position="BUYER")])]))
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 1", "packages written: 0", imports_line(1),
                        "  R10 contact persons created as employees: 1", "  R13 warnings (position left out): 1",
                        r13_line("p.zip", 1, "10001", "BUYER")])
    assert body(ws.import_doc(1)) == {"Organizations": [], "Persons": [pers(mid(1), "A", employee_of="10001")],
                                      "Removals": []}
    assert_valid(ws, 1, 1)


def test_positions_of_another_channel_are_not_live(ws, build):
    """Occupations are per channel: MOBILE-PL's BUYER is not live for MOBILE-DE."""
    ws.edit_config(lambda text: text + "\n[channels.MOBILE-DE]\n")
    process_masterdata(ws)
    package = drop(ws, build, "de.zip",
                   returned([ret_customer("20001", persons=[ret_person(mid(1), "A", position="BUYER")])]),
                   channel="MOBILE-DE")
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 1", "packages written: 0",
                        imports_line(1, channel="MOBILE-DE"), "  R10 contact persons created as employees: 1",
                        "  R13 warnings (position left out): 1",
                        f"warning: de.zip: contact person {mid(1)} of customer 20001: position BUYER left out "
                        "(not a live occupation of MOBILE-DE) (R13)"])
    assert ws.import_names() == [import_name(1, "MOBILE-DE")]  # MOBILE-PL's sequence is untouched
    doc = parse_import((ws.outbox_cee / import_name(1, "MOBILE-DE")).read_bytes())
    import_header(doc, sequence=1, source_name="de.zip", source=package, run=run, channel="MOBILE-DE")
    assert body(doc) == {"Organizations": [], "Persons": [pers(mid(1), "A", employee_of="20001")], "Removals": []}
    assert_valid(ws, 1, 1, channel="MOBILE-DE")


def test_many_r13_warnings_are_all_in_the_run_report(ws, build):
    persons = [ret_person(mid(100 + i), f"P{i}", position=f"GONE_{i}") for i in range(12)]
    drop(ws, build, "many.zip", returned([ret_customer("10001", persons=persons)]))
    run = ws.run()
    assert run.returncode == 0, str(run)
    warnings = [r13_line("many.zip", 100 + i, "10001", f"GONE_{i}") for i in range(12)]
    assert run.lines[:6] == ["files processed: 1, records read: 1", "packages written: 0", imports_line(1),
                             "  R10 contact persons created as employees: 12",
                             "  R13 warnings (position left out): 12", warnings[0]]
    printed = [line for line in run.lines if line.startswith("warning: ") and "... and" not in line]
    assert printed == warnings[:len(printed)] and len(printed) >= 10
    if len(printed) < 12:
        assert run.lines[-1].startswith(f"warning: ... and {12 - len(printed)} more (see the run report"), str(run)
    (report,) = (ws.root / ".exchange" / "reports").glob("run-*.json")
    data = json.loads(report.read_text())
    assert data["warnings"] == [w.removeprefix("warning: ") for w in warnings]
    assert (data["warnings_total"], data["rules"]) == (12, {"R10 created": 12, "R13 warning": 12})
    assert data["imports"] == [import_name(1)] and data["exit_code"] == 0
    assert body(ws.import_doc(1))["Persons"] == [pers(mid(100 + i), f"P{i}", employee_of="10001") for i in range(12)]
    assert_valid(ws, 1, 12)


# ============================================================ 3. F2 and R12


def test_package_resent_under_another_name_is_a_duplicate(ws, build):
    data = returned([ret_customer("10001", persons=[ret_person(mid(1), "A")], deleted=["50002"])])
    package = drop(ws, build, "RET_0001.zip", data)
    first = ws.run()
    assert first.returncode == 0, str(first)
    ws.drop_package("RET_0001_resent.zip", package)
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 1, records read: 0",
        "packages written: 0",
        "duplicate: RET_0001_resent.zip (same content as RET_0001.zip; archived, no output) (F2)",
    ])
    assert ws.import_names() == [import_name(1)]
    assert body(ws.import_doc(1)) == {"Organizations": [], "Persons": [pers(mid(1), "A", employee_of="10001")],
                                      "Removals": [removal("10001", "50002")]}
    assert_valid(ws, 1, 2)
    assert_package_archived(ws, "RET_0001_resent.zip", package, run)
    assert_package_archived(ws, "RET_0001.zip", package, first)


def test_duplicate_within_one_run(ws, build):
    data = returned([ret_customer("10001", persons=[ret_person(mid(1), "A")])])
    package = drop(ws, build, "a.zip", data)
    ws.drop_package("b.zip", package)  # same createdAt: a.zip goes first by name
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 2, records read: 1",
        "packages written: 0",
        imports_line(1),
        "  R10 contact persons created as employees: 1",
        "duplicate: b.zip (same content as a.zip; archived, no output) (F2)",
    ])
    doc = ws.import_doc(1)
    import_header(doc, sequence=1, source_name="a.zip", source=package, run=run)
    assert body(doc) == {"Organizations": [], "Persons": [pers(mid(1), "A", employee_of="10001")], "Removals": []}
    assert_valid(ws, 1, 1)
    assert ws.import_names() == [import_name(1)]
    assert_package_archived(ws, "b.zip", package, run)


def test_later_package_repeating_mobile_ids_creates_nothing_twice(ws, build):
    first = returned([
        new_customer(mid(1), "Firma", persons=[ret_person(mid(2), "Alfa")]),
        ret_customer("10001", persons=[ret_person(mid(3), "Beta")]),
    ])
    drop(ws, build, "one.zip", first, sequence=1, created_at="2026-11-27T10:00:00Z")
    assert ws.run().returncode == 0
    assert body(ws.import_doc(1)) == {
        "Organizations": [org(mid(1), "Firma")],
        "Persons": [pers(mid(2), "Alfa", employee_of_new=mid(1)), pers(mid(3), "Beta", employee_of="10001")],
        "Removals": [],
    }
    second = returned([
        # the NewCustomer again (edited on the device), with its old person and a new one
        new_customer(mid(1), "Firma (changed)", persons=[ret_person(mid(2), "Alfa"), ret_person(mid(4), "Gamma")]),
        new_customer(mid(5), "Nowa", persons=[ret_person(mid(6), "Delta"), ret_person(mid(6), "Delta again")]),
        ret_customer("10001", persons=[ret_person(mid(3), "Beta"), ret_person(mid(7), "Eta")], deleted=["50002"]),
        ret_customer("10002", persons=[ret_person(mid(2), "Alfa elsewhere"), ret_person(mid(5), "Org id as person")]),
    ])
    package = drop(ws, build, "two.zip", second, sequence=2, created_at="2026-11-28T10:00:00Z")
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 1, records read: 4",
        "packages written: 0",
        imports_line(2),
        "  R10 contact persons created as employees: 3",
        "  R12 records not created again (mobileId imported before): 6",
        "  R14 contact person removals: 1",
    ])
    doc = ws.import_doc(2)
    import_header(doc, sequence=2, source_name="two.zip", source=package, run=run)
    assert body(doc) == {
        "Organizations": [org(mid(5), "Nowa")],
        "Persons": [pers(mid(4), "Gamma", employee_of_new=mid(1)),  # R12: still points at the earlier one
                    pers(mid(6), "Delta", employee_of_new=mid(5)),
                    pers(mid(7), "Eta", employee_of="10001")],
        "Removals": [removal("10001", "50002")],
    }
    assert_valid(ws, 2, 5)

    # explain: what the ledger remembers of each mobileId, creation (R10) and refusals (R12)
    today = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    one, two = f"{today} one.zip -> {import_name(1)}", f"{today} two.zip -> {import_name(2)}"
    assert ws.cli("explain", mid(2)).stdout.splitlines() == [
        f"{one}: contact person {mid(2)} of customer {mid(1)}: created: employee of new organization {mid(1)} "
        "(added with it on a device) (R10)",
        f"{two}: contact person {mid(2)} of customer {mid(1)}: not created: mobileId {mid(2)} was imported "
        "before (R12)",
        f"{two}: contact person {mid(2)} of customer 10002: not created: mobileId {mid(2)} was imported "
        "before (R12)",
    ]
    assert ws.cli("explain", mid(1)).stdout.splitlines() == [
        f"{one}: new customer {mid(1)}: created: organization in sales channel {CHANNEL}",
        f"{two}: new customer {mid(1)}: not created: mobileId {mid(1)} was imported before (R12)",
    ]
    assert ws.cli("explain", mid(5)).stdout.splitlines() == [  # one space of mobileIds: both roles
        f"{mid(5)} as customer:",
        f"  {two}: new customer {mid(5)}: created: organization in sales channel {CHANNEL}",
        f"{mid(5)} as contact person:",
        f"  {two}: contact person {mid(5)} of customer 10002: not created: mobileId {mid(5)} was imported "
        "before (R12)",
    ]


def test_records_repeated_within_one_package(ws, build):
    data = returned([
        new_customer(mid(1), "Firma", persons=[ret_person(mid(2), "Alfa")]),
        new_customer(mid(1), "Firma", persons=[ret_person(mid(2), "Alfa"), ret_person(mid(3), "Beta")]),
        ret_customer("10001", persons=[ret_person(mid(4), "Gamma"), ret_person(mid(4), "Gamma")]),
        ret_customer("10001", persons=[ret_person(mid(4), "Gamma")], deleted=["50002"]),
    ])
    drop(ws, build, "rep.zip", data)
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 1, records read: 4",
        "packages written: 0",
        imports_line(1),
        "  R10 contact persons created as employees: 3",
        "  R12 records not created again (mobileId imported before): 4",
        "  R14 contact person removals: 1",
    ])
    assert body(ws.import_doc(1)) == {
        "Organizations": [org(mid(1), "Firma")],
        "Persons": [pers(mid(2), "Alfa", employee_of_new=mid(1)), pers(mid(3), "Beta", employee_of_new=mid(1)),
                    pers(mid(4), "Gamma", employee_of="10001")],
        "Removals": [removal("10001", "50002")],
    }
    assert_valid(ws, 1, 5)


def test_many_records_cross_the_writers_batches(ws, build):
    """More records than the writer's batch (256): R12 memory and organization-first order hold across batches."""
    n = 600
    records = [new_customer(mid(1000 + i), f"Firma {i}", persons=[ret_person(mid(5000 + i), f"P{i}")])
               for i in range(n)]
    records.append(new_customer(mid(1000), "Firma 0 again", persons=[ret_person(mid(5000), "P0"),
                                                                      ret_person(mid(9999), "Late")]))
    records.append(ret_customer("10001", persons=[ret_person(mid(5000 + n - 1), "Last again")]))
    drop(ws, build, "big.zip", returned(records))
    run = ws.run()
    assert run.returncode == 0, str(run)
    assert "  R12 records not created again (mobileId imported before): 3" in run.lines
    doc = ws.import_doc(1)
    assert doc["Organizations"] == [org(mid(1000 + i), f"Firma {i}") for i in range(n)]
    assert doc["Persons"] == [pers(mid(5000 + i), f"P{i}", employee_of_new=mid(1000 + i)) for i in range(n)] + [
        pers(mid(9999), "Late", employee_of_new=mid(1000))]
    assert_valid(ws, 1, 2 * n + 1)


def test_employee_of_new_never_points_at_a_person(ws, build):
    drop(ws, build, "a.zip", returned([ret_customer("10001", persons=[ret_person(mid(5), "Nowak")])]),
         created_at="2026-11-27T10:00:00Z")
    drop(ws, build, "b.zip", returned([new_customer(mid(5), "Firma", persons=[ret_person(mid(6), "Kos")])]),
         created_at="2026-11-27T11:00:00Z", sequence=2)
    assert ws.run().returncode == 0
    organizations = set()
    for sequence in (1, 2):
        doc = ws.import_doc(sequence)
        organizations |= {o["externalId"] for o in doc["Organizations"]}
        for p in doc["Persons"]:
            if "EmployeeOfNew" in p:
                assert p["EmployeeOfNew"] in organizations, (p, organizations)


# ================================================ 4. sequences, order (F3), F2 retry


def test_sequences_are_gapless_and_headers_exact(ws, build):
    """Rejected packages and duplicates take no number; every document names its source exactly."""
    made = {}

    def package(name, n, **options):
        made[name] = drop(ws, build, name, returned([ret_customer("10001", persons=[ret_person(mid(n), f"P{n}")])]),
                          sequence=n, **options)

    package("r1.zip", 1, created_at="2026-11-27T10:00:00Z")
    bad = return_package(build / "bad.zip", returned([ret_customer("10001")]), records=5).read_bytes()
    ws.drop_package("bad.zip", bad)
    run1 = ws.run()
    assert run1.returncode == 1, str(run1)
    package("r2.zip", 2, created_at="2026-11-27T11:00:00Z")
    ws.drop_package("r1-again.zip", made["r1.zip"])
    package("r3.zip", 3, created_at="2026-11-27T12:00:00Z")
    run2 = ws.run()
    assert run2.returncode == 0, str(run2)
    package("r4.zip", 4, created_at="2026-11-27T09:00:00Z")  # older createdAt: F6 goes by sequence
    run3 = ws.run()
    assert run3.returncode == 0, str(run3)
    assert ws.import_names() == [import_name(n) for n in (1, 2, 3, 4)]
    for sequence, name, run in ((1, "r1.zip", run1), (2, "r2.zip", run2), (3, "r3.zip", run2), (4, "r4.zip", run3)):
        doc = ws.import_doc(sequence)
        import_header(doc, sequence=sequence, source_name=name, source=made[name], run=run)
        n = int(name[1])
        assert body(doc) == {"Organizations": [], "Persons": [pers(mid(n), f"P{n}", employee_of="10001")],
                             "Removals": []}
        assert_valid(ws, sequence, 1)
    assert ws.rejected_names() == ["bad.zip", "bad.zip.error.txt"]


def test_cee_exports_go_before_packages_and_packages_by_manifest_created_at(ws, build):
    """F3: the masterdata export (created after both packages) is applied first, so BUYER is live for
    them; packages go by the manifest's createdAt as instants (not by name, not by the data's createdAt)."""
    ws.drop("masterdata.xml", masterdata("MD-1", "2026-11-29T00:00:00Z", occupations=[occupation("BUYER", "Buyer")]))
    # a.zip: 22:45Z; b.zip: 23:30+01:00 = 22:30Z, so b.zip first although it sorts after a.zip by name
    a = drop(ws, build, "a.zip", returned([new_customer(mid(1), "From a", persons=[ret_person(mid(2), "A", position="BUYER")])],
                                          created_at="2026-11-27T01:00:00Z"),
             created_at="2026-11-27T22:45:00Z", sequence=9)
    b = drop(ws, build, "b.zip", returned([new_customer(mid(1), "From b", persons=[ret_person(mid(3), "B", position="BUYER")])],
                                          created_at="2026-11-28T23:00:00Z"),
             created_at="2026-11-27T23:30:00+01:00", sequence=8)
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 3, records read: 3",
        "packages written: 1 (MOB_MOBILE-PL_00000001.zip)",
        imports_line(1, 2),
        "  R10 contact persons created as employees: 2",
        "  R12 records not created again (mobileId imported before): 1",
    ])
    order = [line.split(" INFO ")[1].split(":")[0] for line in run.stderr.splitlines() if " INFO " in line]
    assert order == ["masterdata.xml", "b.zip", "a.zip"], run.stderr
    first, second = ws.import_doc(1), ws.import_doc(2)
    import_header(first, sequence=1, source_name="b.zip", source=b, run=run)
    import_header(second, sequence=2, source_name="a.zip", source=a, run=run)
    assert body(first) == {"Organizations": [org(mid(1), "From b")],
                           "Persons": [pers(mid(3), "B", occupation="BUYER", employee_of_new=mid(1))], "Removals": []}
    assert body(second) == {"Organizations": [],
                            "Persons": [pers(mid(2), "A", occupation="BUYER", employee_of_new=mid(1))], "Removals": []}
    assert_valid(ws, 1, 2)
    assert_valid(ws, 2, 1)


def test_return_packages_go_by_sequence_not_created_at_or_name(ws, build):
    """F6 replaces F3's createdAt order for return packages: the manifest's sequence decides."""
    for name, n in (("z.zip", 1), ("m.zip", 2)):
        drop(ws, build, name, returned([ret_customer("10001", persons=[ret_person(mid(n), name)])]),
             created_at="2026-11-27T22:00:00Z", sequence=n)
    drop(ws, build, "a.zip", returned([ret_customer("10001", persons=[ret_person(mid(3), "a.zip")])]),
         created_at="2026-11-27T21:00:00Z", sequence=3)  # the earliest createdAt and name, the last number
    assert ws.run().returncode == 0
    for sequence, (name, n) in enumerate((("z.zip", 1), ("m.zip", 2), ("a.zip", 3)), 1):
        doc = ws.import_doc(sequence)
        assert doc["sourcePackage"] == name
        assert body(doc) == {"Organizations": [], "Persons": [pers(mid(n), name, employee_of="10001")],
                             "Removals": []}
        assert_valid(ws, sequence, 1)


def test_rejected_package_comes_back_after_the_configuration_is_fixed(ws, build):
    """F4 rejects a package for an unconfigured channel (exit 1); once configured and retried it is
    processed normally (F2: only outputs make a duplicate), in its own channel's sequence."""
    package = drop(ws, build, "de.zip", returned([ret_customer("20001", persons=[ret_person(mid(1), "Huber")])]),
                   channel="MOBILE-DE")
    run = ws.run()
    assert_run(run, 1, ["files processed: 1, records read: 0", "packages written: 0",
                        "rejected: de.zip: de.zip:manifest.xml: sales channel 'MOBILE-DE' is not configured (F4); "
                        "configured: MOBILE-PL"])
    ws.edit_config(lambda text: text + "\n[channels.MOBILE-DE]\n")
    (ws.rejected / "de.zip").rename(ws.inbox_mobile / "de.zip")  # what `exchange retry` would do
    (ws.rejected / "de.zip.error.txt").unlink()
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 1", "packages written: 0", imports_line(1, channel="MOBILE-DE"),
                        "  R10 contact persons created as employees: 1"])
    doc = parse_import((ws.outbox_cee / import_name(1, "MOBILE-DE")).read_bytes())
    import_header(doc, sequence=1, source_name="de.zip", source=package, run=run, channel="MOBILE-DE")
    assert body(doc) == {"Organizations": [], "Persons": [pers(mid(1), "Huber", employee_of="20001")], "Removals": []}
    assert_valid(ws, 1, 1, channel="MOBILE-DE")


# ==================================================== 5. texts that must survive


def test_name_of_one_non_breaking_space_gives_a_valid_document(ws, build):
    drop(ws, build, "nbsp.zip", returned([new_customer(mid(1), "\u00a0")]))
    run = ws.run()
    assert run.returncode == 0, str(run)
    assert body(ws.import_doc(1)) == {"Organizations": [org(mid(1), "\u00a0")], "Persons": [], "Removals": []}
    assert_valid(ws, 1, 1)


def test_unicode_spaces_inside_texts_are_kept(ws, build):
    data = returned([new_customer(mid(1), "Firma\u00a0Zielona", addr=ret_address("Nowy\u3000Sącz", "PL"),
                                  persons=[ret_person(mid(2), "A\u00a0B", first="Jo\u2028hn")])])
    drop(ws, build, "nbsp.zip", data)
    run = ws.run()
    assert run.returncode == 0, str(run)
    assert body(ws.import_doc(1)) == {
        "Organizations": [org(mid(1), "Firma\u00a0Zielona", address=addr("Nowy\u3000Sącz", "PL"))],
        "Persons": [pers(mid(2), "A\u00a0B", first="Jo\u2028hn", employee_of_new=mid(1))],
        "Removals": []}
    assert_valid(ws, 1, 2)


def test_comments_and_processing_instructions_inside_values_are_not_values(ws, build):
    """The schema reads ``Zie<!-- x -->lona`` as ``Zielona``; so must the transform
    (read through lxml's ``.text``, the value would stop at the comment)."""
    data = returned([new_customer(mid(1), "Firma Zielona", addr=ret_address("Kraków", "PL"),
                                  persons=[ret_person(mid(2), "Kowalska", first="Anna")])])
    data = (data.replace(b"Firma Zielona", b"Firma <!-- x -->Zie<?mobile y?>lona")
            .replace(b"<Surname>Kowalska<", b"<Surname>Kowal<!---->ska<")
            .replace(b"<City>Krak", b"<City><!-- a -->Krak"))
    drop(ws, build, "comments.zip", data)
    run = ws.run()
    assert run.returncode == 0, str(run)
    assert body(ws.import_doc(1)) == {
        "Organizations": [org(mid(1), "Firma Zielona", address=addr("Kraków", "PL"))],
        "Persons": [pers(mid(2), "Kowalska", first="Anna", employee_of_new=mid(1))],
        "Removals": []}
    assert_valid(ws, 1, 2)


def test_output_validation_refuses_an_invalid_import_document():
    from exchange.validation_child import OutputValidation
    valid_doc = (f'<CeeImport xmlns="urn:cee-mobile:cee-import:v1" importId="CEEIMP-MOBILE-PL-00000001" '
                 f'salesChannel="MOBILE-PL" createdAt="2026-11-27T22:05:00Z" sourcePackage="a.zip" '
                 f'sourceSha256="{"0" * 64}">\n'
                 f'  <Organization externalId="{ext(1)}"><Name>NAME</Name>'
                 '<SalesChannelAssignment salesChannel="MOBILE-PL"/></Organization>\n</CeeImport>\n')
    control = OutputValidation("cee-import.xsd")
    control.feed(valid_doc.replace("NAME", "Firma").encode())
    assert control.close() is None
    checker = OutputValidation("cee-import.xsd")
    checker.feed(valid_doc.replace("<Name>NAME</Name>", "<Name></Name><Bogus/>").encode())
    assert checker.close() is not None


def test_whitespace_is_collapsed_like_xs_token(ws, build):
    data = returned([new_customer(mid(1), "  Firma \t\n  Zielona  ",
                                  addr=ret_address("  Nowy   Sącz ", "PL", street=" ul.  A ", postal=" 33-300 "),
                                  contacts=[contact("phone", " +48  1 ")],
                                  persons=[ret_person(mid(2), " Kowalska  Nowak ", first="  Anna ")])])
    drop(ws, build, "ws.zip", data)
    assert ws.run().returncode == 0
    assert body(ws.import_doc(1)) == {
        "Organizations": [org(mid(1), "Firma Zielona", address=addr("Nowy Sącz", "PL", street="ul. A", postal="33-300"),
                              comms=[comm_("phone", "+48 1")])],
        "Persons": [pers(mid(2), "Kowalska Nowak", first="Anna", employee_of_new=mid(1))],
        "Removals": []}
    assert_valid(ws, 1, 2)


# ======================================================= 6. hostile packages (F5)


VALID = returned([ret_customer("10001", persons=[ret_person(mid(1), "Nowak")], deleted=["50002"])])


def run_hostile(ws: InboundWorkspace, tmp_path: Path, name: str, package: bytes, expected: list[str],
                slip_targets: list[Path] = ()) -> packages_util.CliRun:
    """Drop ``package`` as ``name``, run, and check the whole rejection (``expected``: the error lines
    without the leading ``<name>:``)."""
    child_tmp = tmp_path / "child-tmp"
    child_tmp.mkdir(exist_ok=True)
    ws.drop_package(name, package)
    outside_before = _outside(ws, tmp_path)
    run = packages_util.run_cli("run", "--settle", "0", cwd=ws.root, tmpdir=child_tmp)
    assert NO_TRACEBACK not in run.output, run.output
    assert run.returncode == 1, run.output
    lines = [f"{name}:{line}" for line in expected]
    assert run.stdout.splitlines() == ["files processed: 1, records read: 0", "packages written: 0",
                                       f"rejected: {name}: {lines[0]}"], run.output
    assert ws.rejected_names() == sorted([name, f"{name}.error.txt"])
    assert (ws.rejected / name).read_bytes() == package
    count = len(lines)
    assert (ws.rejected / f"{name}.error.txt").read_text(encoding="utf-8") == (
        f"{name}: rejected, {count} error(s) (F1)\n" + "\n".join(lines) + "\n")
    assert ws.mobile_inbox_names() == []
    assert ws.import_names() == []  # no document, no temporary file left
    assert not any(ws.archive.rglob("*.zip"))
    assert _outside(ws, tmp_path) == outside_before, "something was written outside the workspace"
    for target in slip_targets:
        assert not target.exists() and not target.is_symlink(), target
    assert not [p for p in ws.root.rglob("*") if p.name in ("x", "C:\\x")]
    return run


def _outside(ws: InboundWorkspace, tmp_path: Path) -> dict:
    """Everything under the workspace's parent but the workspace. The child's TMPDIR is in it: no file may
    be left there, but its own mtime is left out (the writer spools to temporary files it deletes)."""
    inside = str(ws.root)
    child_tmp = str(tmp_path / "child-tmp")
    return {path: (stat if path != child_tmp else None) for path, stat in listing(tmp_path).items()
            if path != inside and not path.startswith(inside + "/")}


def package_bytes(build: Path, members, compression=zipfile.ZIP_DEFLATED) -> bytes:
    path = build / "p.zip"
    packages_util.write_zip(path, members, compression=compression)
    data = path.read_bytes()
    path.unlink()
    return data


def manifest(entries, **options) -> bytes:
    return packages_util.manifest_xml("from-mobile", entries, package_id="RET-MOBILE-PL-0001", **options)


def slip_targets(ws: InboundWorkspace, tmp_path: Path) -> list[Path]:
    """Where ``../../x`` lands from the folders a careless extractor might use."""
    return [ws.root / "x", ws.root / "inbox" / "x", ws.root / "inbox" / "mobile" / "x", ws.root / "outbox" / "x",
            tmp_path / "x", tmp_path.parent / "x", tmp_path / "child-tmp" / "x"]


@pytest.mark.parametrize("member,reason", [
    ("../../x", "path leaves the package ('..')"),
    ("inbox/../../x", "path leaves the package ('..')"),
    ("ABSOLUTE", "absolute path"),
    ("C:\\x", "absolute path"),
    ("C:x", "absolute path"),
    ("..\\..\\x", "backslash in name"),
    ("sub/x", "not at the top level"),
], ids=["dotdot", "dotdot-inside", "absolute", "drive-backslash", "drive-relative", "backslash-dotdot", "subfolder"])
def test_zip_slip_is_refused(ws, tmp_path, build, member, reason):
    absolute = tmp_path / "abs" / "x"
    if member == "ABSOLUTE":
        member = str(absolute)  # an /etc/x-like name whose target we can look at
    payload = b"written outside\n"
    entries = [Entry.of("customers.xml", VALID)]
    package = package_bytes(build, [("manifest.xml", manifest(entries)), ("customers.xml", VALID), (member, payload)])
    run_hostile(ws, tmp_path, "slip.zip", package, [f" member '{member}' refused: {reason} (F5)"],
                slip_targets(ws, tmp_path) + [absolute, ws.root / "sub" / "x"])


def test_zip_slip_as_the_listed_data_file(ws, tmp_path, build):
    entries = [Entry("../../x", 1, len(VALID), sha256(VALID))]
    package = package_bytes(build, [("manifest.xml", manifest(entries)), ("../../x", VALID)])
    run_hostile(ws, tmp_path, "slip.zip", package, [" member '../../x' refused: path leaves the package ('..') (F5)"],
                slip_targets(ws, tmp_path))


@pytest.mark.parametrize("name", ["customers.xml", "link"])
def test_symlink_member_is_refused(ws, tmp_path, build, name):
    target = b"../../x"
    members = [("manifest.xml", manifest([Entry.of("customers.xml", VALID)]))]
    if name == "customers.xml":  # the data file itself is a link
        members.append((zip_info("customers.xml", mode=0o120777), target))
    else:
        members += [("customers.xml", VALID), (zip_info("link", mode=0o120777), target)]
    package = package_bytes(build, members)
    run_hostile(ws, tmp_path, "link.zip", package, [f" member '{name}' refused: symbolic link (F5)"],
                slip_targets(ws, tmp_path))


@pytest.mark.parametrize("duplicated", ["customers.xml", "manifest.xml"])
def test_duplicate_member_names_are_refused(ws, tmp_path, build, duplicated):
    other = returned([new_customer(mid(9), "Other")])
    entries = [Entry.of("customers.xml", VALID)]
    members = [("manifest.xml", manifest(entries)), ("customers.xml", VALID)]
    members.append(("customers.xml", other) if duplicated == "customers.xml" else ("manifest.xml", manifest(entries)))
    package = package_bytes(build, members)
    run_hostile(ws, tmp_path, "dup.zip", package, [f" member '{duplicated}' refused: appears more than once (F5)"])


def test_extra_member_is_refused(ws, tmp_path, build):
    package = return_package(build / "p.zip", VALID, extra=[("notes.txt", b"hello\n")]).read_bytes()
    run_hostile(ws, tmp_path, "extra.zip", package, [" member 'notes.txt' is not listed in the manifest (F5)"])


def test_missing_member_is_refused(ws, tmp_path, build):
    package = return_package(build / "p.zip", VALID, omit=["customers.xml"]).read_bytes()
    run_hostile(ws, tmp_path, "missing.zip", package,
                [" member 'customers.xml' is listed in the manifest but missing from the package"])


def test_missing_manifest_is_refused(ws, tmp_path, build):
    package = return_package(build / "p.zip", VALID, omit=["manifest.xml"]).read_bytes()
    run_hostile(ws, tmp_path, "nomanifest.zip", package, [" no manifest.xml in the package"])


JUNK = b"\x00corrupted\x00"
SCHEMA_INVALID = VALID.replace(b'id="10001"', b'id=""')
WRONG_ROOT = packages_util.to_mobile_customers()


def test_control_schema_invalid_is_refused_by_the_schema():
    assert not validate_document(lambda: io.BytesIO(SCHEMA_INVALID)).valid


# The member is verified in the same pass as it is parsed: a member unlike its manifest is reported as
# such (size, SHA-256), never by the XML errors its corruption causes (junk cannot even give a root).
@pytest.mark.parametrize("data,entry,expected", [
    (VALID, Entry("customers.xml", 1, len(VALID), sha256(b"something else")),
     [f"customers.xml: SHA-256 is {sha256(VALID)}, the manifest says {sha256(b'something else')}"]),
    (VALID, Entry("customers.xml", 1, len(VALID) + 10, sha256(VALID)),
     [f"customers.xml: size is {len(VALID)} bytes, the manifest says {len(VALID) + 10}"]),
    (VALID, Entry("customers.xml", 1, len(VALID) - 10, sha256(VALID)),
     [f"customers.xml: member expands past its declared size of {len(VALID) - 10} bytes (F5)"]),
    (VALID, Entry("customers.xml", 1, 20, sha256(VALID[:20])),
     ["customers.xml: member expands past its declared size of 20 bytes (F5)"]),
    (JUNK, Entry("customers.xml", 1, len(VALID), sha256(VALID)),
     [f"customers.xml: size is {len(JUNK)} bytes, the manifest says {len(VALID)}",
      f"customers.xml: SHA-256 is {sha256(JUNK)}, the manifest says {sha256(VALID)}"]),
    (SCHEMA_INVALID, Entry("customers.xml", 1, len(SCHEMA_INVALID), sha256(VALID)),
     [f"customers.xml: SHA-256 is {sha256(SCHEMA_INVALID)}, the manifest says {sha256(VALID)}"]),
    (WRONG_ROOT, Entry("customers.xml", 2, len(WRONG_ROOT), sha256(VALID)),
     [f"customers.xml: SHA-256 is {sha256(WRONG_ROOT)}, the manifest says {sha256(VALID)}"]),
], ids=["checksum", "size-declared-larger", "expands-past-declared-size", "expands-before-its-root",
        "checksum-outranks-junk", "checksum-outranks-schema-errors", "checksum-outranks-a-wrong-root"])
def test_member_unlike_its_manifest_is_refused(ws, tmp_path, build, data, entry, expected):
    package = return_package(build / "p.zip", data, entries=[entry]).read_bytes()
    run_hostile(ws, tmp_path, "member.zip", package, expected)


def test_package_over_max_package_bytes_is_refused(ws, tmp_path, build):
    ws.edit_config(lambda text: text.replace("max_package_bytes = 1073741824", "max_package_bytes = 100"))
    package = return_package(build / "p.zip", VALID).read_bytes()
    run_hostile(ws, tmp_path, "big.zip", package,
                [f"manifest.xml: the manifest declares {len(VALID)} bytes, more than max_package_bytes "
                 "(100 bytes) (F5)"])


GIB = 1 << 30


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> bytes:
    """A GiB of zeros declared as 1,000 bytes, deflated to about a MiB; its CRC is corrupted, so a reader
    that inflated the whole member would report "Bad CRC-32" instead of the size."""
    path = tmp_path_factory.mktemp("bomb") / "bomb.zip"
    write_zeros_package(path, "customers.xml", GIB, Entry("customers.xml", 1, 1000, zeros_sha256(1000)),
                        direction="from-mobile")
    corrupt_crc(path, "customers.xml")
    assert path.stat().st_size < 2 << 20
    return path.read_bytes()


@pytest.mark.slow
def test_zip_bomb_declared_small_is_refused_fast_in_flat_memory(ws, tmp_path, bomb):
    start = time.monotonic()
    run = run_hostile(ws, tmp_path, "bomb.zip", bomb,
                      ["customers.xml: member expands past its declared size of 1000 bytes (F5)"])
    assert run.max_rss_mb < 100, run.max_rss_mb
    assert run.seconds < 5, run.seconds  # inflating a GiB alone would take seconds
    assert time.monotonic() - start < 10


def test_nested_zip_as_the_data_file_is_refused(ws, tmp_path, build):
    inner = return_package(build / "inner.zip", VALID).read_bytes()
    package = return_package(build / "p.zip", inner, records=1).read_bytes()
    run_hostile(ws, tmp_path, "nested.zip", package,
                ["customers.xml:1:1: not well-formed XML: Start tag expected, '<' not found"],
                slip_targets(ws, tmp_path))


def test_nested_zip_as_a_second_listed_member_is_refused(ws, tmp_path, build):
    inner = return_package(build / "inner.zip", VALID).read_bytes()
    entries = [Entry.of("customers.xml", VALID), Entry("inner.zip", 0, len(inner), sha256(inner))]
    package = package_bytes(build, [("manifest.xml", manifest(entries)), ("customers.xml", VALID),
                                    ("inner.zip", inner)])
    run_hostile(ws, tmp_path, "nested.zip", package, [
        "manifest.xml: entry 'inner.zip' is not a data file of a from-mobile package (expected customers.xml)",
        "manifest.xml: a package holds one data file; this manifest lists 2 (customers.xml, inner.zip)"])


@pytest.mark.parametrize("content", [b"this is not a zip\n" * 20, b"", b"PK\x03\x04" + bytes(200), VALID],
                         ids=["text", "empty", "zip-magic-then-junk", "xml"])
def test_non_zip_with_zip_name_is_refused(ws, tmp_path, content):
    run_hostile(ws, tmp_path, "fake.zip", content, [" not a readable ZIP package: File is not a zip file"])


def test_manifest_for_the_wrong_direction_is_refused(ws, tmp_path, build):
    data = packages_util.to_mobile_customers()
    package = build_package(build / "p.zip", {"customers.xml": data}, direction="to-mobile").read_bytes()
    run_hostile(ws, tmp_path, "to-mobile.zip", package, [
        'manifest.xml: the manifest says direction="to-mobile"; inbox/mobile/ takes packages returned by Mobile '
        "(from-mobile)"])


def test_manifest_for_an_unconfigured_channel_is_refused(ws, tmp_path, build):
    package = return_package(build / "p.zip", VALID, channel="MOBILE-CZ").read_bytes()
    run_hostile(ws, tmp_path, "cz.zip", package, [
        "manifest.xml: sales channel 'MOBILE-CZ' is not configured (F4); configured: MOBILE-PL"])


@pytest.mark.parametrize("declared", [0, 2, 3])
def test_manifest_records_count_disagreeing_is_refused(ws, tmp_path, build, declared):
    data = returned([new_customer(mid(1), "Firma"), ret_customer("10001", deleted=["50002"])])
    package = return_package(build / "p.zip", data, records=declared).read_bytes()
    if declared == 2:  # the control: the same package with the right count is processed
        ws.drop_package("count.zip", package)
        assert ws.run().returncode == 0
        assert ws.import_names() == [import_name(1)]
        assert body(ws.import_doc(1)) == {"Organizations": [org(mid(1), "Firma")], "Persons": [],
                                          "Removals": [removal("10001", "50002")]}
        return
    run_hostile(ws, tmp_path, "count.zip", package, [f"customers.xml: holds 2 records, the manifest says {declared}"])
    # nothing of it was remembered: neither its sequence number nor its mobileIds (R12)
    drop(ws, build, "ok.zip", data)
    assert ws.run().returncode == 0
    assert ws.import_names() == [import_name(1)]
    assert body(ws.import_doc(1)) == {"Organizations": [org(mid(1), "Firma")], "Persons": [],
                                      "Removals": [removal("10001", "50002")]}
    assert_valid(ws, 1, 2)


def test_invalid_customers_xml_is_refused_with_line_and_column(ws, tmp_path, build):
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<ReturnedCustomers xmlns="urn:cee-mobile:from-mobile:v1" device="TAB-017" representative="REP-03"'
        ' createdAt="2026-11-27T16:45:00+01:00">',
        '  <NewCustomer mobileId="NOT-A-UUID" createdAt="2026-11-27T15:10:00+01:00">',
        '    <Name>Firma</Name>',
        f'    <ContactPerson mobileId="{mid(2)}"><Surname>A</Surname><Position code="bad code!"/></ContactPerson>',
        '  </NewCustomer>',
        '  <Customer id="10001">',
        f'    <ContactPerson mobileId="{mid(3)}"><FirstName>X</FirstName></ContactPerson>',
        '  </Customer>',
        '</ReturnedCustomers>',
    ]
    data = ("\n".join(lines) + "\n").encode("utf-8")
    package = return_package(build / "p.zip", data).read_bytes()
    col = lambda line, text: lines[line - 1].index(text) + 1
    uuid = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    run_hostile(ws, tmp_path, "invalid.zip", package, [
        f"customers.xml:3:{col(3, 'mobileId=')}: Element 'NewCustomer', attribute 'mobileId': [facet 'pattern'] "
        f"The value 'NOT-A-UUID' is not accepted by the pattern '{uuid}'. (at /ReturnedCustomers/NewCustomer[1])",
        f"customers.xml:5:{col(5, 'code=')}: Element 'Position', attribute 'code': [facet 'pattern'] The value "
        "'bad code!' is not accepted by the pattern '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,31}'. "
        "(at /ReturnedCustomers/NewCustomer[1]/ContactPerson[1]/Position[1])",
        f"customers.xml:8:{col(8, '<FirstName>')}: Element 'FirstName': This element is not expected. Expected is "
        "( Surname ). (at /ReturnedCustomers/Customer[1]/ContactPerson[1]/FirstName[1])",
    ])


def test_customers_xml_not_well_formed_is_refused(ws, tmp_path, build):
    data = VALID.replace(b"</Customer>", b"</Kunde>")
    lines = data.decode().splitlines()
    (line,) = [n for n, text in enumerate(lines, 1) if "</Kunde>" in text]
    column = lines[line - 1].index("</Kunde>") + len("</Kunde>") + 1  # libxml2 points just past the end tag
    package = return_package(build / "p.zip", data, records=1).read_bytes()
    run_hostile(ws, tmp_path, "broken.zip", package, [
        f"customers.xml:{line}:{column}: not well-formed XML: Opening and ending tag mismatch: "
        f"Customer line {line} and Kunde"])


DOCTYPE_REFUSED = "DOCTYPE is not allowed (F5): documents must not declare a DTD or entities"


def with_doctype(doctype: str, name_text: str = "Firma") -> bytes:
    """A valid one-record customers.xml with ``doctype`` before the root; ``name_text`` goes in raw."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n{doctype}\n'
            '<ReturnedCustomers xmlns="urn:cee-mobile:from-mobile:v1" device="TAB-017" representative="REP-03" '
            'createdAt="2026-11-27T16:45:00Z">\n'
            + new_customer(mid(1), "PLACEHOLDER").replace("PLACEHOLDER", name_text)
            + "</ReturnedCustomers>\n").encode("utf-8")


@pytest.fixture
def loopback():
    server = packages_util.LoopbackServer()
    yield server
    server.close()


def _doctype(kind: str, url: str) -> tuple[str, str]:
    return {
        "plain": ("<!DOCTYPE ReturnedCustomers>", "Firma"),
        "unused entity": ('<!DOCTYPE ReturnedCustomers [<!ENTITY e "x">]>', "Firma"),
        "external DTD": (f'<!DOCTYPE ReturnedCustomers SYSTEM "{url}/r.dtd">', "Firma"),
        "unused external entity": (f'<!DOCTYPE ReturnedCustomers [<!ENTITY e SYSTEM "{url}/e.txt">]>', "Firma"),
        "used external entity": (f'<!DOCTYPE ReturnedCustomers [<!ENTITY e SYSTEM "{url}/e.txt">]>', "&e;"),
        "billion laughs": ('<!DOCTYPE ReturnedCustomers [<!ENTITY l0 "lol">'
                           + "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10)) + "]>",
                           "&l9;"),
    }[kind]


@pytest.mark.parametrize("kind", ["plain", "unused entity", "external DTD", "unused external entity",
                                  "used external entity", "billion laughs"])
def test_customers_xml_with_a_doctype_fetches_nothing(ws, build, loopback, kind):
    doctype, name_text = _doctype(kind, loopback.url)
    drop(ws, build, "dtd.zip", with_doctype(doctype, name_text), records=1)
    run = packages_util.run_cli("run", "--settle", "0", cwd=ws.root)
    assert loopback.contacts() == []
    assert NO_TRACEBACK not in run.output, run.output
    assert loopback.secret not in run.output and "lollol" not in run.output
    assert run.max_rss_mb < 100, run.max_rss_mb
    for path in ws.root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert loopback.secret.encode() not in content and b"lollollol" not in content, path


@pytest.mark.parametrize("kind", ["plain", "unused entity", "external DTD", "unused external entity",
                                  "used external entity", "billion laughs"])
def test_customers_xml_with_a_doctype_is_rejected(ws, tmp_path, build, kind):
    doctype, name_text = _doctype(kind, "http://127.0.0.1:9")
    package = return_package(build / "p.zip", with_doctype(doctype, name_text), records=1).read_bytes()
    run_hostile(ws, tmp_path, "dtd.zip", package, [f"customers.xml:1:1: {DOCTYPE_REFUSED}"])


def test_manifest_with_a_doctype_is_rejected(ws, tmp_path, build):
    entries = [Entry.of("customers.xml", VALID)]
    package = package_bytes(build, [("manifest.xml", manifest(entries, doctype='<!DOCTYPE Manifest [<!ENTITY o "me">]>\n')),
                                    ("customers.xml", VALID)])
    run_hostile(ws, tmp_path, "dtd.zip", package, [f"manifest.xml:1:1: {DOCTYPE_REFUSED}"])


def test_to_mobile_data_in_a_from_mobile_package_is_rejected(ws, tmp_path, build):
    package = return_package(build / "p.zip", packages_util.to_mobile_customers(), records=2).read_bytes()
    run_hostile(ws, tmp_path, "wrongroot.zip", package, [
        "customers.xml:2:1: root element is 'Customers' (urn:cee-mobile:to-mobile:v1), expected "
        "'ReturnedCustomers' (urn:cee-mobile:from-mobile:v1)"])


def test_hostile_package_beside_a_valid_one(ws, tmp_path, build):
    """F1: other files go on being processed; the rejected one takes no sequence number."""
    good = drop(ws, build, "good.zip", VALID, created_at="2026-11-27T23:00:00Z")
    ws.drop_package("bad.zip", b"not a zip")
    run = ws.run()
    assert_run(run, 1, ["files processed: 2, records read: 1", "packages written: 0", imports_line(1),
                        "  R10 contact persons created as employees: 1", "  R14 contact person removals: 1",
                        "rejected: bad.zip: bad.zip: not a readable ZIP package: File is not a zip file"])
    doc = ws.import_doc(1)
    import_header(doc, sequence=1, source_name="good.zip", source=good, run=run)
    assert body(doc) == {"Organizations": [], "Persons": [pers(mid(1), "Nowak", employee_of="10001")],
                         "Removals": [removal("10001", "50002")]}
    assert_valid(ws, 1, 2)
    assert ws.rejected_names() == ["bad.zip", "bad.zip.error.txt"]
    assert (ws.rejected / "bad.zip.error.txt").read_text() == (
        "bad.zip: rejected, 1 error(s) (F1)\nbad.zip: not a readable ZIP package: File is not a zip file\n")
