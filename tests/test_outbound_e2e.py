"""CEE exports -> Mobile packages, end to end through the real command line.

Every test makes its own workspace with ``exchange init``, drops exports
into ``inbox/cee/`` and runs ``python -m exchange run`` as a subprocess.
Packages are unzipped and read into plain data (workspace_util) and
compared record by record with what RULES.md and FORMATS.md demand.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from workspace_util import (
    CHANNEL,
    Workspace,
    addr,
    address,
    archive_days,
    assert_archived,
    assert_manifest,
    comm,
    cp,
    cp_del,
    cust,
    cust_del,
    customer,
    customers,
    finish_cli,
    masterdata,
    method,
    occupation,
    person,
    pos,
    pos_del,
    run_cli,
    snapshot,
    start_cli,
)

PKG = "MOB_MOBILE-PL_{:08d}.zip"
NO_TRACEBACK = "Traceback"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    return Workspace.create(tmp_path)


def packages_line(*sequences: int, channel: str = CHANNEL) -> str:
    if not sequences:
        return "packages written: 0"
    names = ", ".join(f"MOB_{channel}_{n:08d}.zip" for n in sequences)
    return f"packages written: {len(sequences)} ({names})"


def assert_run(run, returncode: int, lines: list[str]) -> None:
    assert run.returncode == returncode, str(run)
    assert NO_TRACEBACK not in run.stderr, str(run)
    assert run.lines == lines, str(run)


# =========================================================== 1. several days


# ---- day 1: FORMATS.md's examples, and two more customers
MD1_NAME = "masterdata_20261127.xml"
MD1 = masterdata(
    "MD-20261127-01", "2026-11-27T22:00:05+01:00",
    occupations=[occupation("SALES_MGR", "Sales manager"), occupation("BUYER", "Buyer"),
                 occupation("OLD_POS", "Former position", marked=True)],
    methods=[method("Business", True), method("Private", False)])

CU1_NAME = "customers_20261127.xml"
CU1 = customers("CU-20261127-01", "2026-11-27T22:01:00Z", records=[
    customer("10001", "Acme Trading Sp. z o.o.", tax_id="PL5260001246",
             addr=address("Warszawa", "PL", street="ul. Prosta 1", postal="00-001"),
             comms=[comm("phone", "Business", "+48 22 100 00 00", preferred=True),
                    comm("email", "Private", "owner@home.example")],
             persons=[person("50001", "Kowalska", first="Anna", occupation="SALES_MGR", preferred=True,
                             classifications=["Sales", "Purchasing"],
                             comms=[comm("email", "Business", "anna.kowalska@acme.example"),
                                    comm("mobile", "Private", "+48 600 000 001")]),
                      person("50002", "Nowak", classifications=["Logistics"]),
                      person("70010", "Schmidt", occupation="BUYER", classifications=["Sales"],
                             assignment="contact")],
             removed_partners=["50007"]),
    customer("10002", "Beta Handel", addr=address("Kraków", "PL", postal="30-001"),
             comms=[comm("email", "Business", "biuro@beta.example")],
             persons=[person("60001", "Wójcik", occupation="SALES_MGR", classifications=["Sales"],
                             comms=[comm("mobile", "Private", "+48 600 000 002")])]),
    customer("10003", "Gamma Sp. j.", persons=[person("60002", "Lis", classifications=["Sales"])]),
], deleted=["10009"])

# ---- day 2: BUYER marked after it was sent, Private displayed from now on
MD2_NAME = "masterdata_20261128.xml"
MD2 = masterdata(
    "MD-20261128-01", "2026-11-28T22:00:00+01:00", changed_since="last-transfer",
    occupations=[occupation("SALES_MGR", "Sales manager (PL)"), occupation("BUYER", "Buyer", marked=True),
                 occupation("OLD_POS", "Former position", marked=True)],
    methods=[method("Private", True)])

CU2_NAME = "customers_20261128.xml"
CU2 = customers("CU-20261128-01", "2026-11-28T22:01:00Z", records=[
    customer("10001", "Acme Trading Sp. z o.o.", addr=address("Warszawa", "PL"),
             comms=[comm("phone", "Business", "+48 22 100 00 00"),
                    comm("email", "Private", "owner@home.example")],
             persons=[person("50001", "Kowalska", first="Anna", occupation="SALES_MGR",
                             classifications=["Purchasing"],
                             comms=[comm("email", "Business", "anna.kowalska@acme.example")]),
                      person("70010", "Schmidt", occupation="BUYER", classifications=["Sales"],
                             assignment="contact"),
                      person("50003", "Zieliński", first="Jan", occupation="NO_SUCH_CODE",
                             classifications=["Sales"]),
                      person("50002", "Nowak", classifications=["Logistics"])],
             removed_partners=["50008"]),
    customer("10002", "Beta Handel",
             persons=[person("60001", "Wójcik", occupation="SALES_MGR", classifications=["Sales"],
                             comms=[comm("mobile", "Private", "+48 600 000 002")]),
                      person("70010", "Schmidt", classifications=["Sales"], assignment="contact")]),
    customer("10003", "Gamma Sp. j.", active=False,
             persons=[person("60002", "Lis", classifications=["Sales"])]),
], deleted=["10004"])

# ---- day 3: masterdata says Private again, the channel's configuration says Business only
MD3_NAME = "masterdata_20261129.xml"
MD3 = masterdata("MD-20261129-01", "2026-11-29T22:00:00Z", changed_since="last-transfer",
                 occupations=[occupation("BUYER", "Buyer", marked=True)],
                 methods=[method("Private", True)])

CU3_NAME = "customers_20261129.xml"
CU3 = customers("CU-20261129-01", "2026-11-29T22:01:00Z", changed_since="anytime", records=[
    customer("10001", "Acme Trading Sp. z o.o.",
             comms=[comm("phone", "Business", "+48 22 100 00 00"),
                    comm("email", "Private", "owner@home.example")],
             persons=[person("50001", "Kowalska", first="Anna", classifications=["Purchasing"]),
                      person("70010", "Schmidt", occupation="SALES_MGR", classifications=["Sales"],
                             assignment="contact")]),
    customer("10003", "Gamma Sp. j.", persons=[person("60002", "Lis", classifications=["Logistics"])]),
])


def test_multi_day_sequence(ws: Workspace):
    # ------------------------------------------------------------ day 1
    ws.drop(MD1_NAME, MD1)
    ws.drop(CU1_NAME, CU1)
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 2, records read: 9",
        packages_line(1, 2),
        "  R1 occupations not sent (marked for deletion): 1",
        "  R2 contact persons not sent (no Sales classification): 1",
        "  R3 preferred flags dropped: 2",
        "  R4 communication connections filtered (method not displayed): 3",
        "  R4 communication method settings from masterdata: 2",
        "  R5 removed contact persons deleted: 1",
        "  R6 contact persons sent as relation=contact: 1",
        "  R8 customers withdrawn (deleted or inactive): 1",
    ])
    assert ws.package_names() == [PKG.format(1), PKG.format(2)]

    p1 = ws.package(1)
    assert_manifest(p1, sequence=1, mode="full", source_name=MD1_NAME, source=MD1, run=run)
    assert p1.records == [pos("SALES_MGR", "Sales manager"), pos("BUYER", "Buyer")]

    p2 = ws.package(2)
    assert_manifest(p2, sequence=2, mode="delta", source_name=CU1_NAME, source=CU1, run=run)
    assert p2.records == [
        cust("10001", "Acme Trading Sp. z o.o.", tax_id="PL5260001246",
             address=addr("Warszawa", "PL", street="ul. Prosta 1", postal="00-001"),
             contacts=[("phone", "+48 22 100 00 00")],
             persons=[cp("50001", "employee", "Kowalska", first="Anna", position="SALES_MGR",
                         contacts=[("email", "anna.kowalska@acme.example")]),
                      cp("70010", "contact", "Schmidt", position="BUYER"),
                      cp_del("50007")]),
        cust("10002", "Beta Handel", address=addr("Kraków", "PL", postal="30-001"),
             contacts=[("email", "biuro@beta.example")],
             persons=[cp("60001", "employee", "Wójcik", position="SALES_MGR")]),
        cust("10003", "Gamma Sp. j.", persons=[cp("60002", "employee", "Lis")]),
        cust_del("10009"),
    ]
    assert_archived(ws, MD1_NAME, MD1, run)
    assert_archived(ws, CU1_NAME, CU1, run)

    # ------------------------------------------------------------ day 2
    ws.drop(MD2_NAME, MD2)
    ws.drop(CU2_NAME, CU2)
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 2, records read: 8",
        packages_line(3, 4),
        "  R1 positions deleted (occupation marked for deletion): 1",
        "  R1 occupations not sent (marked for deletion): 1",
        "  R2 contact persons not sent (no Sales classification): 1",
        "  R2 contact persons deleted (lost the Sales classification): 1",
        "  R4 communication method settings from masterdata: 1",
        "  R5 removed contact persons deleted: 1",
        "  R6 contact persons sent as relation=contact: 2",
        "  R7 warnings (position left out): 2",
        "  R8 customers withdrawn (deleted or inactive): 2",
        f"warning: {CU2_NAME}: contact person 70010 of customer 10001: "
        "sent without position BUYER (marked for deletion) (R7)",
        f"warning: {CU2_NAME}: contact person 50003 of customer 10001: "
        "sent without position NO_SUCH_CODE (unknown occupation) (R7)",
    ])
    assert ws.package_names() == [PKG.format(n) for n in (1, 2, 3, 4)]

    p3 = ws.package(3)
    assert_manifest(p3, sequence=3, mode="delta", source_name=MD2_NAME, source=MD2, run=run)
    assert p3.records == [pos("SALES_MGR", "Sales manager (PL)"), pos_del("BUYER")]

    p4 = ws.package(4)
    assert_manifest(p4, sequence=4, mode="delta", source_name=CU2_NAME, source=CU2, run=run)
    assert p4.records == [
        cust("10001", "Acme Trading Sp. z o.o.", address=addr("Warszawa", "PL"),
             contacts=[("phone", "+48 22 100 00 00"), ("email", "owner@home.example")],
             persons=[cp_del("50001"),                          # R2: sent on day 1, lost Sales
                      cp("70010", "contact", "Schmidt"),         # R7: BUYER is marked now
                      cp("50003", "employee", "Zieliński", first="Jan"),  # R7: unknown code
                      cp_del("50008")]),                         # R5: even though never sent
        cust("10002", "Beta Handel",
             persons=[cp("60001", "employee", "Wójcik", position="SALES_MGR",
                         contacts=[("mobile", "+48 600 000 002")]),
                      cp("70010", "contact", "Schmidt")]),       # R6: same partner, second customer
        cust_del("10003"),                                       # R8: inactive, in its place
        cust_del("10004"),                                       # R8: deleted, never sent
    ]
    assert_archived(ws, MD2_NAME, MD2, run)
    assert_archived(ws, CU2_NAME, CU2, run)

    # ------------------------------------------------------------ day 3
    ws.edit_config(lambda text: text.replace(
        '[channels.MOBILE-PL]\n', '[channels.MOBILE-PL]\ndisplayed_methods = ["Business"]\n', 1))
    ws.drop(MD3_NAME, MD3)
    ws.drop(CU3_NAME, CU3)
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 2, records read: 4",
        packages_line(5, 6),
        "  R1 occupations not sent (marked for deletion): 1",
        "  R2 contact persons not sent (no Sales classification): 2",
        "  R4 communication connections filtered (method not displayed): 1",
        "  R4 communication method settings from masterdata: 1",
        "  R6 contact persons sent as relation=contact: 1",
    ])
    p5 = ws.package(5)
    assert_manifest(p5, sequence=5, mode="delta", source_name=MD3_NAME, source=MD3, run=run)
    assert p5.records == []  # BUYER was deleted once, on day 2: not again (R1)
    p6 = ws.package(6)
    assert_manifest(p6, sequence=6, mode="full", source_name=CU3_NAME, source=CU3, run=run)
    assert p6.records == [
        # 50001 still without Sales: no second delete (R2); Private filtered by the channel (R4)
        cust("10001", "Acme Trading Sp. z o.o.", contacts=[("phone", "+48 22 100 00 00")],
             persons=[cp("70010", "contact", "Schmidt", position="SALES_MGR")]),
        # 10003 was withdrawn (R8): its persons count as not sent, so no R2 delete for 60002
        cust("10003", "Gamma Sp. j."),
    ]

    # every package is valid against the to-mobile contract
    names = [f"outbox/mobile/{PKG.format(n)}" for n in range(1, 7)]
    records = [2, 4, 2, 4, 0, 2]
    check = ws.cli("validate", *names)
    assert_run(check, 0, [f"{name}: valid (package MOB-MOBILE-PL-{n:08d}, to-mobile, {r} records)"
                          for n, (name, r) in enumerate(zip(names, records), start=1)])
    assert ws.inbox_names() == []
    assert ws.rejected_names() == []


def test_r5_and_r8_deletes_always_r2_only_once_after_removal(ws: Workspace):
    """A person removed (R5) and then seen without Sales is not deleted again (R2 only for what was sent)."""
    ws.drop("md.xml", masterdata("MD-1", "2026-11-27T21:00:00Z", occupations=[occupation("BUYER", "Buyer")]))
    ws.drop("c1.xml", customers("CU-1", "2026-11-27T22:00:00Z", records=[
        customer("1", "One", persons=[person("p1", "Alpha", classifications=["Sales"])])]))
    assert ws.run().returncode == 0
    ws.drop("c2.xml", customers("CU-2", "2026-11-28T22:00:00Z", records=[
        customer("1", "One", removed_partners=["p1", "p9"])]))  # p9 never sent: deleted all the same
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 1", packages_line(3),
                        "  R5 removed contact persons deleted: 2"])
    assert ws.package(3).records == [cust("1", "One", persons=[cp_del("p1"), cp_del("p9")])]
    ws.drop("c3.xml", customers("CU-3", "2026-11-29T22:00:00Z", records=[
        customer("1", "One", persons=[person("p1", "Alpha", classifications=["Other"])])],
        deleted=["2"]))
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 2", packages_line(4),
                        "  R2 contact persons not sent (no Sales classification): 1",
                        "  R8 customers withdrawn (deleted or inactive): 1"])
    assert ws.package(4).records == [cust("1", "One"), cust_del("2")]


# ================================================================ 2. order (F3)


def test_masterdata_first_and_sequences_follow_created_at_as_instants(ws: Workspace):
    # names sort a, b, c; createdAt as text sorts c, a, b; as instants b, c, a
    a = customers("CU-A", "2026-11-27T22:00:00Z", records=[
        customer("1", "First", comms=[comm("phone", "Private", "+48 1")],
                 persons=[person("p1", "Buyer", occupation="BUYER", classifications=["Sales"])])])
    b = masterdata("MD-B", "2026-11-27T22:30:00+01:00",  # 21:30Z
                   occupations=[occupation("BUYER", "Buyer")], methods=[method("Private", True)])
    c = customers("CU-C", "2026-11-27T21:45:00Z", records=[customer("2", "Second")])
    ws.drop("a_customers.xml", a)
    ws.drop("b_masterdata.xml", b)
    ws.drop("c_customers.xml", c)
    run = ws.run()
    assert_run(run, 0, ["files processed: 3, records read: 4", packages_line(1, 2, 3),
                        "  R4 communication method settings from masterdata: 1"])
    assert_manifest(ws.package(1), sequence=1, mode="full", source_name="b_masterdata.xml", source=b, run=run)
    assert_manifest(ws.package(2), sequence=2, mode="delta", source_name="c_customers.xml", source=c, run=run)
    assert_manifest(ws.package(3), sequence=3, mode="delta", source_name="a_customers.xml", source=a, run=run)
    # the masterdata was applied before the customers: BUYER is a known position, Private is displayed
    assert ws.package(3).records == [
        cust("1", "First", contacts=[("phone", "+48 1")],
             persons=[cp("p1", "employee", "Buyer", position="BUYER")])]


def test_equal_instants_in_different_zones_go_by_file_name(ws: Workspace):
    later_name = customers("CU-1", "2026-11-27T23:00:00Z", records=[customer("1", "One")])
    earlier_name = customers("CU-2", "2026-11-28T00:00:00+01:00", records=[customer("2", "Two")])
    ws.drop("y.xml", later_name)
    ws.drop("x.xml", earlier_name)
    run = ws.run()
    assert_run(run, 0, ["files processed: 2, records read: 2", packages_line(1, 2)])
    assert ws.package(1).manifest["sources"][0]["file"] == "x.xml"
    assert ws.package(2).manifest["sources"][0]["file"] == "y.xml"


def test_late_file_with_older_created_at_is_processed_when_it_arrives(ws: Workspace):
    ws.drop("cu.xml", customers("CU-1", "2026-11-28T22:00:00Z", records=[
        customer("1", "One", persons=[person("p1", "Alpha", occupation="BUYER", classifications=["Sales"])])]))
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 1, records read: 1", packages_line(1),
        "  R7 warnings (position left out): 1",
        "warning: cu.xml: contact person p1 of customer 1: sent without position BUYER (unknown occupation) (R7)"])
    ws.drop("md.xml", masterdata("MD-1", "2026-11-27T22:00:00Z", occupations=[occupation("BUYER", "Buyer")]))
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 1", packages_line(2)])
    assert ws.package_names() == [PKG.format(1), PKG.format(2)]  # the past is not replayed
    assert ws.package(2).records == [pos("BUYER", "Buyer")]


def test_created_at_end_of_day_24_00_is_an_instant(ws: Workspace):
    md = masterdata("MD-1", "2026-11-27T23:00:00Z", occupations=[occupation("BUYER", "Buyer")])
    cu = customers("CU-1", "2026-11-27T24:00:00Z", records=[
        customer("1", "One", persons=[person("p1", "Alpha", occupation="BUYER", classifications=["Sales"])])])
    ws.drop("b_masterdata.xml", md)
    ws.drop("a_customers.xml", cu)
    run = ws.run()
    assert run.returncode == 0, str(run)
    assert ws.package(1).manifest["sources"][0]["file"] == "b_masterdata.xml"
    assert ws.package(2).records == [cust("1", "One", persons=[cp("p1", "employee", "Alpha", position="BUYER")])]


# ====================================================== 3. duplicates (F2)


def test_duplicates_are_archived_without_output(ws: Workspace):
    data = customers("CU-1", "2026-11-27T22:00:00Z", records=[customer("1", "One")])
    ws.drop("cu.xml", data)
    first = ws.run()
    assert_run(first, 0, ["files processed: 1, records read: 1", packages_line(1)])

    # the same bytes under another name
    ws.drop("copy.xml", data)
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 0", "packages written: 0",
                        "duplicate: copy.xml (same content as cu.xml; archived, no output) (F2)"])
    assert ws.package_names() == [PKG.format(1)]
    assert_archived(ws, "copy.xml", data, run)

    # the same bytes under the same name: archived beside the first one with a numeric suffix
    ws.drop("cu.xml", data)
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 0", "packages written: 0",
                        "duplicate: cu.xml (same content as cu.xml; archived, no output) (F2)"])
    assert not (ws.inbox_cee / "cu.xml").exists()
    archived = sorted(str(p.relative_to(ws.archive)) for p in ws.archive.glob("*/cu*.xml"))
    days = archive_days(first) | archive_days(run)
    if len(days) == 1:  # both runs on one UTC day: the second gets a numeric suffix
        day = days.pop()
        assert archived == [f"{day}/cu.1.xml", f"{day}/cu.xml"]
    assert len(archived) == 2 and all((ws.archive / a).read_bytes() == data for a in archived)

    # two copies of new content in one batch: the first by order makes the package
    other = customers("CU-2", "2026-11-28T22:00:00Z", records=[customer("2", "Two")])
    ws.drop("x.xml", other)
    ws.drop("y.xml", other)
    run = ws.run()
    assert_run(run, 0, ["files processed: 2, records read: 1", packages_line(2),
                        "duplicate: y.xml (same content as x.xml; archived, no output) (F2)"])
    assert ws.package_names() == [PKG.format(1), PKG.format(2)]
    assert_archived(ws, "x.xml", other, run)
    assert_archived(ws, "y.xml", other, run)


def test_rejected_file_that_comes_back_is_processed(ws: Workspace):
    broken = customers("CU-1", "2026-11-27T22:00:00Z", records=[customer("1", "One", tax_id="PL 123")])
    ws.drop("cu.xml", broken)
    run = ws.run()
    error = ("cu.xml:3:40: Element 'TaxId': [facet 'pattern'] The value 'PL 123' is not accepted by the "
             "pattern '[A-Za-z0-9][A-Za-z0-9_.\\-]{0,31}'. (at /CustomerExport/Customer[1]/TaxId[1])")
    assert_run(run, 1, ["files processed: 1, records read: 0", "packages written: 0", f"rejected: cu.xml: {error}"])
    assert ws.rejected_names() == ["cu.xml", "cu.xml.error.txt"]

    # the same bytes again: rejected again (only outputs make a duplicate), under a free name
    ws.drop("cu.xml", broken)
    run = ws.run()
    assert_run(run, 1, ["files processed: 1, records read: 0", "packages written: 0", f"rejected: cu.xml: {error}"])
    assert ws.rejected_names() == ["cu.1.xml", "cu.1.xml.error.txt", "cu.xml", "cu.xml.error.txt"]
    assert (ws.rejected / "cu.1.xml").read_bytes() == broken

    # fixed, it is processed normally, as sequence 1
    fixed = customers("CU-1", "2026-11-27T22:00:00Z", records=[customer("1", "One", tax_id="PL123")])
    ws.drop("cu.xml", fixed)
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 1", packages_line(1)])
    assert ws.package(1).records == [cust("1", "One", tax_id="PL123")]
    assert_archived(ws, "cu.xml", fixed, run)


# ================================================== 4. invalid beside valid (F1)


def test_invalid_file_beside_valid_ones(ws: Workspace):
    v1 = customers("CU-1", "2026-11-27T21:00:00Z", records=[customer("1", "One")])
    bad = customers("CU-2", "2026-11-27T22:00:00Z", records=[
        customer("2", "Two", addr=address("Kraków", "pl")),
        customer("2", "Again"),
    ])
    v2 = customers("CU-3", "2026-11-27T23:00:00Z", records=[customer("3", "Three")])
    not_xml = customers("CU-5", "2026-11-27T20:00:00Z", records=[customer("5", "Five")]).replace(
        b"</Name>", b"</Nme>")
    ws.drop("v1.xml", v1)
    ws.drop("bad.xml", bad)
    ws.drop("v2.xml", v2)
    ws.drop("cut.xml", not_xml)
    run = ws.run()
    country = ("bad.xml:3:68: Element 'Country': [facet 'pattern'] The value 'pl' is not accepted by the "
               "pattern '[A-Z]{2}'. (at /CustomerExport/Customer[1]/Address[1]/Country[1])")
    twice = ("bad.xml:4:13: Element 'Customer', attribute 'number': duplicate customer number '2'; a customer "
             "number appears at most once in an export, over Customer and DeletedCustomer together "
             "(at /CustomerExport/Customer[2])")
    cut = "cut.xml:3:40: not well-formed XML: Opening and ending tag mismatch: Name line 3 and Nme"
    assert_run(run, 1, [
        "files processed: 4, records read: 2", packages_line(1, 2),
        f"rejected: cut.xml: {cut}",
        f"rejected: bad.xml: {country}",
    ])
    # the valid ones have consecutive numbers: the invalid one used none
    assert_manifest(ws.package(1), sequence=1, mode="delta", source_name="v1.xml", source=v1, run=run)
    assert_manifest(ws.package(2), sequence=2, mode="delta", source_name="v2.xml", source=v2, run=run)
    assert ws.package_names() == [PKG.format(1), PKG.format(2)]
    assert ws.rejected_names() == ["bad.xml", "bad.xml.error.txt", "cut.xml", "cut.xml.error.txt"]
    assert (ws.rejected / "bad.xml").read_bytes() == bad
    assert (ws.rejected / "bad.xml.error.txt").read_text(encoding="utf-8") == (
        f"bad.xml: rejected, 2 error(s) (F1)\n{country}\n{twice}\n")
    assert (ws.rejected / "cut.xml.error.txt").read_text(encoding="utf-8") == (
        f"cut.xml: rejected, 1 error(s) (F1)\n{cut}\n")
    assert ws.inbox_names() == []

    # the next valid export continues the sequence without a gap
    v3 = customers("CU-4", "2026-11-28T21:00:00Z", records=[customer("4", "Four")])
    ws.drop("v3.xml", v3)
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 1", packages_line(3)])


def _error_lines(ws: Workspace, name: str) -> list[str]:
    text = (ws.rejected / f"{name}.error.txt").read_text(encoding="utf-8")
    head, *lines = text.splitlines()
    assert head == f"{name}: rejected, {len(lines)} error(s) (F1)", text
    return lines


def test_truncated_export_is_reported_where_it_ends(ws: Workspace):
    whole = customers("CU-1", "2026-11-27T22:00:00Z", records=[customer("1", "One"), customer("2", "Two")])
    cut = whole[:whole.index(b'<Customer number="2"') + len(b"<Customer")]  # line 4 ends in '  <Customer'
    ws.drop("cut.xml", cut)
    run = ws.run()
    assert run.returncode == 1, str(run)
    lines = _error_lines(ws, "cut.xml")
    assert [line for line in lines if " not well-formed XML: " in line and line.startswith("cut.xml:4:")], lines
    assert not [line for line in lines if line.startswith("cut.xml:1:1:")], lines


def test_error_column_points_at_the_element_in_error(ws: Workspace):
    data = customers("CU-1", "2026-11-27T22:00:00Z", records=[customer("1", "One", comms=[
        comm("phone", "Business", "+48 1"), comm("pager", "Business", "+48 2")])])
    ws.drop("cu.xml", data)
    run = ws.run()
    assert run.returncode == 1, str(run)
    line3 = data.decode().splitlines()[2]
    second = line3.index('<Communication kind="pager"')
    expected = {second + 1, line3.index('kind="pager"') + 1}  # the element or its attribute, 1-based
    lines = _error_lines(ws, "cu.xml")
    assert len(lines) == 1 and lines[0].startswith("cu.xml:3:"), lines
    column = int(lines[0].split(":")[2])
    assert column in expected, (lines[0], expected)


def test_channel_error_points_at_the_root_start_tag(ws: Workspace):
    ws.drop("de.xml", customers("CU-DE-1", "2026-11-27T22:00:00Z", channel="MOBILE-DE", split_root=True))
    run = ws.run()
    assert run.returncode == 1, str(run)
    lines = _error_lines(ws, "de.xml")
    assert lines[0].startswith("de.xml:2:"), lines
    assert lines[0].endswith(": sales channel 'MOBILE-DE' is not configured (F4); configured: MOBILE-PL"), lines


def test_missing_sales_channel_is_reported_as_missing(ws: Workspace):
    ws.drop("nochan.xml", customers("CU-1", "2026-11-27T22:00:00Z", channel=None, records=[customer("1", "A")]))
    run = ws.run()
    assert run.returncode == 1, str(run)
    assert _error_lines(ws, "nochan.xml") == [
        "nochan.xml:2:1: Element 'CustomerExport': The attribute 'salesChannel' is required but missing. "
        "(at /CustomerExport)"]


# ================================================= 5. unconfigured channel (F4)


def test_file_for_unconfigured_channel_is_rejected(ws: Workspace):
    data = customers("CU-DE-1", "2026-11-27T22:00:00Z", channel="MOBILE-DE", records=[customer("1", "Eins")])
    ws.drop("de.xml", data)
    run = ws.run()
    error = "de.xml:2:1: sales channel 'MOBILE-DE' is not configured (F4); configured: MOBILE-PL"
    assert_run(run, 1, ["files processed: 1, records read: 0", "packages written: 0", f"rejected: de.xml: {error}"])
    assert ws.package_names() == []
    assert ws.rejected_names() == ["de.xml", "de.xml.error.txt"]
    assert (ws.rejected / "de.xml.error.txt").read_text(encoding="utf-8") == (
        f"de.xml: rejected, 1 error(s) (F1)\n{error}\n")

    # once the channel is configured, the same file comes back and is processed (F2: only outputs count)
    ws.edit_config(lambda text: text + "\n[channels.MOBILE-DE]\n")
    os.replace(ws.rejected / "de.xml", ws.inbox_cee / "de.xml")
    run = ws.run()
    assert_run(run, 0, ["files processed: 1, records read: 1", packages_line(1, channel="MOBILE-DE")])
    pkg = ws.package(1, channel="MOBILE-DE")
    assert_manifest(pkg, sequence=1, mode="delta", source_name="de.xml", source=data, run=run, channel="MOBILE-DE")
    assert pkg.records == [cust("1", "Eins")]


def test_channels_keep_their_own_state_and_sequences(ws: Workspace):
    ws.edit_config(lambda text: text + "\n[channels.MOBILE-DE]\n")
    ws.drop("md_pl.xml", masterdata("MD-PL", "2026-11-27T21:00:00Z", occupations=[occupation("BUYER", "Buyer")],
                                    methods=[method("Private", True)]))
    ws.drop("cu_de.xml", customers("CU-DE", "2026-11-27T22:00:00Z", channel="MOBILE-DE", records=[
        customer("1", "Eins", comms=[comm("phone", "Private", "+49 1")],
                 persons=[person("p1", "Maier", occupation="BUYER", classifications=["Sales"])])]))
    run = ws.run()
    assert_run(run, 0, [
        "files processed: 2, records read: 3",
        "packages written: 2 (MOB_MOBILE-PL_00000001.zip, MOB_MOBILE-DE_00000001.zip)",
        "  R4 communication connections filtered (method not displayed): 1",
        "  R4 communication method settings from masterdata: 1",
        "  R7 warnings (position left out): 1",
        "warning: cu_de.xml: contact person p1 of customer 1: sent without position BUYER (unknown occupation) (R7)",
    ])
    assert ws.package(1, channel="MOBILE-DE").records == [cust("1", "Eins", persons=[cp("p1", "employee", "Maier")])]


# ======================================================= 6. configuration, init, validate


CONFIG_ERRORS = {
    "unknown key at top level": (
        lambda t: "colour = 1\n" + t,
        "'colour' is not a known setting (see the comments in the exchange.toml that 'exchange init' "
        "writes, or README.md)"),
    "unknown key in [rules]": (
        lambda t: t.replace("[rules]\n", "[rules]\nsales_clasification = \"Sales\"\n"),
        "'sales_clasification' in [rules] is not a known setting (see the comments in the exchange.toml "
        "that 'exchange init' writes, or README.md)"),
    "unknown key in a channel table": (
        lambda t: t.replace("[channels.MOBILE-PL]\n", "[channels.MOBILE-PL]\ndisplay_methods = [\"Business\"]\n"),
        "'display_methods' in [channels.MOBILE-PL] is not a known setting (see the comments in the "
        "exchange.toml that 'exchange init' writes, or README.md)"),
    "wrong type": (
        lambda t: t.replace("settle_seconds = 2\n", "settle_seconds = \"2\"\n"),
        "'settle_seconds' must be a number, not str '2'"),
    "wrong type in a channel": (
        lambda t: t.replace("[channels.MOBILE-PL]\n", "[channels.MOBILE-PL]\ndisplayed_methods = \"Business\"\n"),
        "'displayed_methods' in [channels.MOBILE-PL] must be a list of strings, not str 'Business'"),
    "missing [channels]": (
        lambda t: t.replace("[channels.MOBILE-PL]\n", ""),
        "'channels' is required"),
    "sftp table missing a required key": (
        lambda t: t + ('\n[channels.MOBILE-PL.sftp]\nhost = "sftp.example"\nuser = "u"\nkey_file = "k"\n'
                       'upload_dir = "/up"\ndownload_dir = "/down"\n'),
        "'known_hosts' in [channels.MOBILE-PL.sftp] is required"),
}


@pytest.mark.parametrize("case", CONFIG_ERRORS)
def test_configuration_error_exits_2_before_anything_is_touched(ws: Workspace, case):
    change, message = CONFIG_ERRORS[case]
    ws.edit_config(change)
    ws.drop("cu.xml", customers("CU-1", "2026-11-27T22:00:00Z", records=[customer("1", "One")]))
    before = snapshot(ws.root)
    run = ws.run()
    config = Path(os.path.realpath(ws.config))
    assert run.returncode == 2, str(run)
    assert run.stdout == ""
    assert run.stderr == f"exchange: {config}: {message}\n", str(run)
    assert snapshot(ws.root) == before


def test_init_never_overwrites_and_packages_validate(tmp_path: Path):
    ws = Workspace.create(tmp_path, "w")
    config = ws.config.read_bytes()
    again = run_cli("init", "w", cwd=tmp_path)
    assert again.returncode == 2, str(again)
    assert again.stdout == ""
    assert again.stderr == "exchange: w/exchange.toml already exists; init never overwrites a workspace\n"
    assert ws.config.read_bytes() == config

    ws.drop(MD1_NAME, MD1)
    ws.drop(CU1_NAME, CU1)
    assert ws.run().returncode == 0
    check = run_cli("validate", ws.outbox_mobile / PKG.format(1), ws.outbox_mobile / PKG.format(2), cwd=tmp_path)
    assert_run(check, 0, [
        f"{ws.outbox_mobile / PKG.format(1)}: valid (package MOB-MOBILE-PL-00000001, to-mobile, 2 records)",
        f"{ws.outbox_mobile / PKG.format(2)}: valid (package MOB-MOBILE-PL-00000002, to-mobile, 4 records)",
    ])


def test_init_with_another_channel(tmp_path: Path):
    ws = Workspace.create(tmp_path, "w", channel="MOBILE-CZ")
    ws.drop("cz.xml", customers("CU-CZ", "2026-11-27T22:00:00Z", channel="MOBILE-CZ", records=[customer("1", "A")]))
    ws.drop("pl.xml", customers("CU-PL", "2026-11-27T22:00:00Z", records=[customer("1", "A")]))
    run = ws.run()
    assert_run(run, 1, [
        "files processed: 2, records read: 1", packages_line(1, channel="MOBILE-CZ"),
        "rejected: pl.xml: pl.xml:2:1: sales channel 'MOBILE-PL' is not configured (F4); configured: MOBILE-CZ"])


# ================================================================ 7. settle


def _valid_export(export_id: str, created_at: str, number: str) -> bytes:
    return customers(export_id, created_at, records=[customer(number, f"Customer {number}")])


IGNORED = [".hidden.xml", "~x.xml", "cu.xml.part", "cu.xml.tmp", "notes.txt", "cu.xml.partial",
           "cu.xml.filepart", "cu.xml.writing", "cu.xml.swp", "CU.XML.TMP"]


def test_files_changing_during_settle_are_left_for_the_next_run(ws: Workspace):
    stable = _valid_export("CU-1", "2026-11-27T21:00:00Z", "1")
    growing = _valid_export("CU-2", "2026-11-27T22:00:00Z", "2")
    touched = _valid_export("CU-3", "2026-11-27T23:00:00Z", "3")
    ws.drop("stable.xml", stable)
    ws.drop("growing.xml", growing)
    touched_path = ws.drop("touched.xml", touched)
    for name in IGNORED:
        ws.drop(name, _valid_export("CU-X-" + name.strip(".~").replace(".", "-"), "2026-11-27T20:00:00Z", "9"))
    ignored_before = {name: (ws.inbox_cee / name).read_bytes() for name in IGNORED}
    base_mtime = touched_path.stat().st_mtime_ns

    proc, started = start_cli("run", "--settle", "2", cwd=ws.root)
    writes = {"growing": 0, "touched": 0}
    stop = threading.Event()

    def writer():
        # until the run ends: append an XML comment (still a valid document) to one file,
        # move the other one's mtime forward without changing its size
        while proc.poll() is None and not stop.is_set():
            with open(ws.inbox_cee / "growing.xml", "ab") as f:
                f.write(b"<!-- more -->\n")
            writes["growing"] += 1
            writes["touched"] += 1
            stamp = base_mtime + writes["touched"] * 1_000_000_000
            os.utime(touched_path, ns=(stamp, stamp))
            stop.wait(0.1)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        run = finish_cli(proc, started, ["run", "--settle", "2"])
    finally:
        stop.set()
        thread.join()
    assert writes["growing"] >= 10, writes  # the writer was busy through the 2 s settle window
    assert_run(run, 0, [
        "files processed: 1, records read: 1", packages_line(1),
        "left for the next run (still changing): growing.xml",
        "left for the next run (still changing): touched.xml",
    ])
    assert ws.package(1).manifest["sources"][0]["file"] == "stable.xml"
    assert ws.inbox_names() == sorted(["growing.xml", "touched.xml", *IGNORED])
    assert touched_path.read_bytes() == touched
    assert touched_path.stat().st_size == len(touched)

    # next run: they are complete now
    grown = (ws.inbox_cee / "growing.xml").read_bytes()
    assert grown.startswith(growing) and len(grown) > len(growing)
    run = ws.run(settle=0.5)
    assert_run(run, 0, ["files processed: 2, records read: 2", packages_line(2, 3)])
    assert_manifest(ws.package(2), sequence=2, mode="delta", source_name="growing.xml", source=grown, run=run)
    assert_manifest(ws.package(3), sequence=3, mode="delta", source_name="touched.xml", source=touched, run=run)
    assert {name: (ws.inbox_cee / name).read_bytes() for name in IGNORED} == ignored_before


def test_ignored_names_are_never_picked_up(ws: Workspace):
    for name in IGNORED:
        ws.drop(name, _valid_export("CU-X", "2026-11-27T20:00:00Z", "9"))
    before = snapshot(ws.inbox_cee)
    run = ws.run()
    assert_run(run, 0, ["files processed: 0, records read: 0", "packages written: 0"])
    assert snapshot(ws.inbox_cee) == before
    assert ws.package_names() == []
    assert ws.rejected_names() == []


# ============================================================== 8. empty exports


def test_empty_exports_still_yield_packages(ws: Workspace):
    md = masterdata("MD-0", "2026-11-27T21:00:00Z")
    cu = customers("CU-0", "2026-11-27T22:00:00Z")
    ws.drop("md.xml", md)
    ws.drop("cu.xml", cu)
    run = ws.run()
    assert_run(run, 0, ["files processed: 2, records read: 0", packages_line(1, 2)])
    p1, p2 = ws.package(1), ws.package(2)
    assert_manifest(p1, sequence=1, mode="full", source_name="md.xml", source=md, run=run)
    assert_manifest(p2, sequence=2, mode="delta", source_name="cu.xml", source=cu, run=run)
    assert p1.records == [] and p2.records == []
    assert p1.manifest["entries"][0]["records"] == "0"
    assert p2.manifest["entries"][0]["records"] == "0"
    check = ws.cli("validate", f"outbox/mobile/{PKG.format(1)}", f"outbox/mobile/{PKG.format(2)}")
    assert_run(check, 0, [
        f"outbox/mobile/{PKG.format(1)}: valid (package MOB-MOBILE-PL-00000001, to-mobile, 0 records)",
        f"outbox/mobile/{PKG.format(2)}: valid (package MOB-MOBILE-PL-00000002, to-mobile, 0 records)",
    ])


def test_comments_and_processing_instructions_inside_values_are_not_values(ws: Workspace):
    """The schema reads ``Sal<!-- x -->es`` as ``Sales``; so must the transform.

    Read through lxml's ``.text``, a value would stop at the first comment or
    processing instruction: the contact person below would lose the Sales
    classification (R2) and its position, and the names would be cut short.
    """
    ws.drop("md.xml", masterdata("MD-1", "2026-11-27T21:00:00Z",
                                 occupations=[occupation("SALES_MGR", "Sales manager")],
                                 methods=[method("Business", True)]))
    export = customers("CU-1", "2026-11-27T22:00:00Z", records=[
        customer("10001", "Acme NAME_CUT Trading", tax_id="PL5260001246",
                 addr=address("Warszawa", "PL", street="ul. Prosta 1"),
                 comms=[comm("phone", "Business", "+48 22 PHONE_CUT 100 00 00")],
                 persons=[person("50001", "Kowalska", first="Anna", occupation="SALES_MGR",
                                 classifications=["Sales"],
                                 comms=[comm("email", "Business", "anna@acme.example")])]),
    ])
    export = (export.replace(b"NAME_CUT", b"<!-- not part of the name -->&amp;<?cee page-break?>")
              .replace(b"PHONE_CUT", b"<!-- - -->")
              .replace(b"<Classification>Sales<", b"<Classification>Sal<!-- x -->es<")
              .replace(b"<Occupation>SALES_MGR<", b"<Occupation>SALES<?cee x?>_MGR<")
              .replace(b"<Street>ul. Prosta 1<", b"<Street>ul. <!--a--><![CDATA[Prosta]]><!--b--> 1<"))
    ws.drop("cu.xml", export)
    run = ws.run()
    assert_run(run, 0, ["files processed: 2, records read: 3", packages_line(1, 2),
                        "  R4 communication method settings from masterdata: 1"])
    assert ws.package(2).records == [
        cust("10001", "Acme & Trading", tax_id="PL5260001246",
             address=addr("Warszawa", "PL", street="ul. Prosta 1"),
             contacts=[("phone", "+48 22 100 00 00")],
             persons=[cp("50001", "employee", "Kowalska", first="Anna", position="SALES_MGR",
                         contacts=[("email", "anna@acme.example")])]),
    ]
