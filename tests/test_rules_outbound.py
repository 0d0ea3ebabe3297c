"""R1-R8 (CEE to Mobile) as pure functions: :mod:`exchange.rules.outbound`.

Two layers:

* unit tests, one group per rule (``test_R1_...`` ... ``test_R8_...``), each
  asserting the exact output records and the exact decisions (rule, subject,
  outcome, customer, partner, code, count) the rule produces;
* Hypothesis properties over generated customers and channel state, for the
  invariants RULES.md and FORMATS.md state (who is upserted, who is deleted
  and how often, record order, no ``preferred``/method in the output, output
  valid against the to-mobile XSD), including a multi-step property that
  carries the channel's "sent" set from export to export like the ledger does.

Everything here is pure: no files, no ledger, no CLI.
"""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from exchange.records import (
    Address,
    Communication,
    CommunicationMethod,
    Contact,
    ContactPerson,
    Customer,
    CustomerDelete,
    CustomerUpsert,
    DeletedCustomer,
    Occupation,
    PersonDelete,
    PersonUpsert,
    PositionDelete,
    PositionUpsert,
)
from exchange.rules.outbound import (
    CustomerOutcome,
    CustomerRules,
    OccupationState,
    apply_customer,
    apply_deleted_customer,
    apply_method,
    apply_occupation,
    displayed_methods,
    withdraw,
)
from exchange.summary import Summary
from exchange.xml import mobile
from exchange.xml.checks import CustomersChecks, PositionsChecks
from exchange.xml.schemas import TO_MOBILE, schema

NS = f"{{{TO_MOBILE}}}"

LIVE = frozenset({"SALES_MGR", "BUYER", "ACC.1"})
MARKED = frozenset({"OLD_POS", "RETIRED-2"})
UNKNOWN = frozenset({"GHOST", "NOPE_9"})

RULES = CustomerRules(
    sales_classification="Sales",
    displayed_methods=frozenset({"Business"}),
    live_occupations=LIVE,
    known_occupations=LIVE | MARKED,
)


# ----------------------------------------------------------------- helpers


def d(rule, subject, outcome, customer=None, partner=None, code=None, count=1):
    """The comparable part of a Decision (everything but the free-text reason)."""
    return (rule, subject, outcome, customer, partner, code, count)


def proj(decisions):
    return [d(x.rule, x.subject, x.outcome, x.customer, x.partner, x.code, x.count) for x in decisions]


def person(partner, surname="Nowak", *, first_name=None, occupation=None, classifications=("Sales",),
           communications=(), assignment="employee", preferred=False) -> ContactPerson:
    return ContactPerson(partner, surname, first_name, occupation, tuple(classifications),
                         tuple(communications), assignment, preferred)


def upsert(partner, surname="Nowak", relation="employee", first_name=None, position=None, contacts=()):
    return PersonUpsert(partner, relation, surname, first_name, position, tuple(contacts))


def customers_xml(*records) -> str:
    return mobile.customers_open() + "".join(mobile.customer(r) for r in records) + mobile.customers_close()


def positions_xml(*records) -> str:
    return mobile.positions_open() + "".join(mobile.position(r) for r in records) + mobile.positions_close()


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def parse_valid(xml: str) -> etree._Element:
    """Parse a to-mobile document, assert it is valid (XSD + the action checks in code), return its root."""
    root = etree.fromstring(xml.encode("utf-8"), _PARSER)
    schema("to-mobile.xsd").assertValid(root)
    checks = CustomersChecks() if root.tag == NS + "Customers" else PositionsChecks()
    problems = [p for i, rec in enumerate(root, 1) for p in checks.check(rec, f"/{i}")]
    assert problems == []
    return root


# =============================================================== R1


def test_R1_live_occupation_becomes_position_upsert():
    for known in (None, OccupationState(False, True), OccupationState(True, False)):
        record, decision, state = apply_occupation(Occupation("SALES_MGR", "Sales manager"), known)
        assert record == PositionUpsert("SALES_MGR", "Sales manager")
        assert proj([decision]) == [d(None, "occupation", "upsert", code="SALES_MGR")]
        assert state == OccupationState(marked_for_deletion=False, sent=True)


def test_R1_marked_and_sent_before_is_deleted_once():
    occupation = Occupation("OLD_POS", "Former position", marked_for_deletion=True)
    record, decision, state = apply_occupation(occupation, OccupationState(False, True))
    assert record == PositionDelete("OLD_POS")
    assert proj([decision]) == [d("R1", "occupation", "delete", code="OLD_POS")]
    assert state == OccupationState(marked_for_deletion=True, sent=False)

    # a second masterdata export still marking it: nothing again
    record2, decision2, state2 = apply_occupation(occupation, state)
    assert record2 is None
    assert proj([decision2]) == [d("R1", "occupation", "not sent", code="OLD_POS")]
    assert state2 == OccupationState(marked_for_deletion=True, sent=False)


def test_R1_marked_and_never_sent_gives_no_record():
    occupation = Occupation("OLD_POS", "Former position", marked_for_deletion=True)
    for known in (None, OccupationState(True, False), OccupationState(False, False)):
        record, decision, state = apply_occupation(occupation, known)
        assert record is None
        assert proj([decision]) == [d("R1", "occupation", "not sent", code="OLD_POS")]
        assert state == OccupationState(marked_for_deletion=True, sent=False)


def test_R1_live_again_after_delete_is_upserted_and_deletable_again():
    marked = Occupation("OLD_POS", "Former position", marked_for_deletion=True)
    live = Occupation("OLD_POS", "Former position")
    _, _, state = apply_occupation(live, None)
    rec, _, state = apply_occupation(marked, state)
    assert rec == PositionDelete("OLD_POS")
    rec, _, state = apply_occupation(live, state)
    assert rec == PositionUpsert("OLD_POS", "Former position") and state.sent
    rec, _, state = apply_occupation(marked, state)
    assert rec == PositionDelete("OLD_POS")


def test_R1_positions_xml_is_valid_and_delete_is_empty():
    xml = positions_xml(PositionUpsert("SALES_MGR", "Sales & <marketing> \"manager\""), PositionDelete("OLD_POS"))
    root = parse_valid(xml)
    upserted, deleted = list(root)
    assert (upserted.get("code"), upserted.get("action")) == ("SALES_MGR", "upsert")
    assert upserted.findtext(NS + "Description") == "Sales & <marketing> \"manager\""
    assert dict(deleted.attrib) == {"code": "OLD_POS", "action": "delete"} and len(deleted) == 0


def test_R1_summary_counts():
    decisions = [apply_occupation(Occupation("A", "a", True), OccupationState(False, True))[1],
                 apply_occupation(Occupation("B", "b", True), None)[1],
                 apply_occupation(Occupation("C", "c"), None)[1]]
    summary = Summary()
    summary.count(decisions, "md.xml")
    assert dict(summary.rules) == {"R1 delete": 1, "R1 not sent": 1}


# =============================================================== R2


def test_R2_without_sales_classification_not_sent():
    c = Customer("10001", "Acme", contact_persons=(person("50002", classifications=("Logistics",)),))
    out = apply_customer(c, frozenset(), RULES)
    assert out.record == CustomerUpsert("10001", "Acme", None, None, (), ())
    assert proj(out.decisions) == [d(None, "customer", "upsert", customer="10001"),
                                   d("R2", "contact person", "not sent", "10001", "50002")]
    assert (out.sent, out.unsent, out.unsend_all) == (set(), set(), False)


def test_R2_no_classification_at_all_not_sent_and_case_matters():
    c = Customer("10001", "Acme", contact_persons=(person("50002", classifications=()),
                                                   person("50003", classifications=("sales", "SALES"))))
    out = apply_customer(c, frozenset(), RULES)
    assert out.record.persons == ()
    assert proj(out.decisions)[1:] == [d("R2", "contact person", "not sent", "10001", "50002"),
                                       d("R2", "contact person", "not sent", "10001", "50003")]


def test_R2_sales_among_other_classifications_is_sent():
    c = Customer("10001", "Acme", contact_persons=(person("50001", classifications=("Purchasing", "Sales")),))
    out = apply_customer(c, frozenset(), RULES)
    assert out.record.persons == (upsert("50001"),)
    assert out.sent == {"50001"} and out.unsent == set()


def test_R2_lost_sales_after_being_sent_is_deleted():
    c = Customer("10001", "Acme", contact_persons=(person("50002", classifications=("Logistics",)),))
    out = apply_customer(c, frozenset({"50002", "50099"}), RULES)
    assert out.record.persons == (PersonDelete("50002"),)
    assert proj(out.decisions) == [d(None, "customer", "upsert", customer="10001"),
                                   d("R2", "contact person", "delete", "10001", "50002")]
    assert out.unsent == {"50002"} and out.sent == set() and not out.unsend_all

    # the next export (state carried as the ledger does): not sent, no second delete
    after = (frozenset({"50002", "50099"}) - out.unsent) | out.sent
    again = apply_customer(c, after, RULES)
    assert again.record.persons == ()
    assert proj(again.decisions)[1:] == [d("R2", "contact person", "not sent", "10001", "50002")]
    assert again.unsent == set()


def test_R2_classification_code_is_configurable():
    rules = CustomerRules("Vertrieb", frozenset({"Business"}), LIVE, LIVE | MARKED)
    c = Customer("10001", "Acme", contact_persons=(
        person("50001", classifications=("Sales",)),
        person("50002", classifications=("Vertrieb",)),
        person("50003", classifications=("Sales",)),
    ))
    out = apply_customer(c, frozenset({"50003"}), rules)
    assert out.record.persons == (upsert("50002"), PersonDelete("50003"))
    assert proj(out.decisions) == [d(None, "customer", "upsert", customer="10001"),
                                   d("R2", "contact person", "not sent", "10001", "50001"),
                                   d(None, "contact person", "upsert", "10001", "50002"),
                                   d("R2", "contact person", "delete", "10001", "50003")]
    assert "Vertrieb" in out.decisions[1].reason and "Vertrieb" in out.decisions[3].reason
    assert out.sent == {"50002"} and out.unsent == {"50003"}


def test_R2_summary_counts():
    c = Customer("10001", "Acme", contact_persons=(person("1", classifications=()),
                                                   person("2", classifications=()),
                                                   person("3")))
    out = apply_customer(c, frozenset({"2"}), RULES)
    summary = Summary()
    summary.count(out.decisions, "cu.xml")
    assert dict(summary.rules) == {"R2 not sent": 1, "R2 delete": 1}


# =============================================================== R3


def test_R3_preferred_dropped_and_counted_only_for_kept_connections():
    c = Customer("10001", "Acme", communications=(
        Communication("phone", "Business", "+48 1", preferred=True),
        Communication("email", "Business", "a@acme.example", preferred=True),
        Communication("fax", "Business", "+48 2"),
        Communication("email", "Private", "home@acme.example", preferred=True),  # filtered by R4
    ), contact_persons=(
        person("50001", preferred=True, communications=(
            Communication("email", "Business", "anna@acme.example", preferred=True),
            Communication("mobile", "Private", "+48 600", preferred=True),  # filtered by R4
        )),
        person("50002", preferred=True),
        person("50003", preferred=True, classifications=("Logistics",),  # not sent: no flag counted
               communications=(Communication("email", "Business", "x@acme.example", preferred=True),)),
    ))
    out = apply_customer(c, frozenset(), RULES)
    assert out.record == CustomerUpsert(
        "10001", "Acme", None, None,
        (Contact("phone", "+48 1"), Contact("email", "a@acme.example"), Contact("fax", "+48 2")),
        (upsert("50001", contacts=(Contact("email", "anna@acme.example"),)), upsert("50002")))
    assert proj(out.decisions) == [
        d(None, "customer", "upsert", customer="10001"),
        d("R4", "customer", "dropped", customer="10001", count=1),
        d("R3", "customer", "dropped", customer="10001", count=2),
        d("R4", "contact person", "dropped", "10001", "50001", count=1),
        d("R3", "contact person", "dropped", "10001", "50001", count=2),  # person flag + kept connection
        d(None, "contact person", "upsert", "10001", "50001"),
        d("R3", "contact person", "dropped", "10001", "50002", count=1),  # the person's own flag
        d(None, "contact person", "upsert", "10001", "50002"),
        d("R2", "contact person", "not sent", "10001", "50003"),
    ]
    summary = Summary()
    summary.count(out.decisions, "cu.xml")
    assert summary.rules["R3 dropped"] == 5
    xml = customers_xml(out.record)
    assert "preferred" not in xml
    parse_valid(xml)


def test_R3_no_preferred_flags_no_decision():
    c = Customer("10001", "Acme", communications=(Communication("phone", "Business", "1"),),
                 contact_persons=(person("50001"),))
    out = apply_customer(c, frozenset(), RULES)
    assert [x for x in out.decisions if x.rule == "R3"] == []


# =============================================================== R4


def test_R4_displayed_methods_default_is_used_without_settings():
    assert displayed_methods(("Business",), {}, None) == frozenset({"Business"})


def test_R4_displayed_methods_masterdata_changes_named_methods_only():
    default = ["Business", "Mobile"]
    shown = displayed_methods(default, {"Private": True, "Mobile": False, "Fax": False}, None)
    assert shown == frozenset({"Business", "Private"})
    assert default == ["Business", "Mobile"]  # the global default is not changed
    assert displayed_methods(("Business",), {"Business": False}, None) == frozenset()


def test_R4_displayed_methods_configured_channel_list_wins():
    assert displayed_methods(("Business",), {"Private": True, "Mobile": False}, ("Mobile",)) == \
        frozenset({"Mobile"})
    assert displayed_methods(("Business",), {"Business": True}, ()) == frozenset()  # set, but empty


def test_R4_filter_applies_to_customer_and_contact_person_connections():
    rules = CustomerRules("Sales", frozenset({"Business", "Mobile"}), LIVE, LIVE | MARKED)
    c = Customer("10001", "Acme", communications=(
        Communication("phone", "Private", "1"),
        Communication("phone", "Business", "2"),
        Communication("fax", "Home", "3"),
        Communication("mobile", "Mobile", "4"),
    ), contact_persons=(
        person("50001", communications=(Communication("email", "Private", "p@x"),
                                        Communication("email", "Business", "b@x"),
                                        Communication("email", "business", "lower@x"))),
        person("50002", communications=(Communication("url", "Mobile", "http://x"),)),
    ))
    out = apply_customer(c, frozenset(), rules)
    assert out.record.contacts == (Contact("phone", "2"), Contact("mobile", "4"))
    assert out.record.persons == (upsert("50001", contacts=(Contact("email", "b@x"),)),
                                  upsert("50002", contacts=(Contact("url", "http://x"),)))
    assert proj(out.decisions) == [
        d(None, "customer", "upsert", customer="10001"),
        d("R4", "customer", "dropped", customer="10001", count=2),
        d("R4", "contact person", "dropped", "10001", "50001", count=2),
        d(None, "contact person", "upsert", "10001", "50001"),
        d(None, "contact person", "upsert", "10001", "50002"),
    ]
    assert "Private" in out.decisions[1].reason and "Home" in out.decisions[1].reason
    summary = Summary()
    summary.count(out.decisions, "cu.xml")
    assert summary.rules["R4 dropped"] == 4
    xml = customers_xml(out.record)
    assert "method" not in xml and "Private" not in xml
    parse_valid(xml)


def test_R4_nothing_displayed_drops_every_connection():
    rules = CustomerRules("Sales", frozenset(), LIVE, LIVE | MARKED)
    c = Customer("10001", "Acme", communications=(Communication("phone", "Business", "1"),),
                 contact_persons=(person("50001", communications=(Communication("email", "Business", "e"),)),))
    out = apply_customer(c, frozenset(), rules)
    assert out.record.contacts == () and out.record.persons == (upsert("50001"),)
    assert [x.count for x in out.decisions if x.rule == "R4"] == [1, 1]


def test_R4_method_setting_decision():
    assert proj([apply_method(CommunicationMethod("Private", True))]) == \
        [d("R4", "communication method", "setting", code="Private")]
    decision = apply_method(CommunicationMethod("Business", False))
    assert proj([decision]) == [d("R4", "communication method", "setting", code="Business")]
    assert "not displayed" in decision.reason


# =============================================================== R5


def test_R5_removed_contact_person_deleted_even_if_never_sent():
    c = Customer("10001", "Acme", removed_partners=("50007",))
    for sent_before in (frozenset(), frozenset({"50007"})):
        out = apply_customer(c, sent_before, RULES)
        assert out.record.persons == (PersonDelete("50007"),)
        assert proj(out.decisions) == [d(None, "customer", "upsert", customer="10001"),
                                       d("R5", "contact person", "delete", "10001", "50007")]
        assert out.unsent == {"50007"} and out.sent == set()


def test_R5_removed_come_after_the_persons_in_order():
    c = Customer("10001", "Acme", contact_persons=(
        person("A1"), person("B2", classifications=()), person("C3"), person("D4", classifications=()),
    ), removed_partners=("Z9", "X7", "Y8"))
    out = apply_customer(c, frozenset({"B2"}), RULES)
    assert out.record.persons == (upsert("A1"), PersonDelete("B2"), upsert("C3"),
                                  PersonDelete("Z9"), PersonDelete("X7"), PersonDelete("Y8"))
    assert proj(out.decisions)[-3:] == [d("R5", "contact person", "delete", "10001", p) for p in ("Z9", "X7", "Y8")]
    assert out.sent == {"A1", "C3"} and out.unsent == {"B2", "Z9", "X7", "Y8"}
    root = parse_valid(customers_xml(out.record))
    assert [(p.get("id"), p.get("action")) for p in root[0].iter(NS + "ContactPerson")] == [
        ("A1", "upsert"), ("B2", "delete"), ("C3", "upsert"), ("Z9", "delete"), ("X7", "delete"), ("Y8", "delete")]


def test_R5_removed_deleted_again_in_every_export_that_names_it():
    c = Customer("10001", "Acme", removed_partners=("50007",))
    first = apply_customer(c, frozenset({"50007"}), RULES)
    second = apply_customer(c, (frozenset({"50007"}) - first.unsent) | first.sent, RULES)
    assert first.record.persons == second.record.persons == (PersonDelete("50007",),)


# =============================================================== R6


def test_R6_assignment_becomes_relation():
    c = Customer("10001", "Acme", contact_persons=(
        person("50001", "Kowalska", first_name="Anna"),
        person("70010", "Schmidt", assignment="contact"),
    ))
    out = apply_customer(c, frozenset(), RULES)
    assert out.record.persons == (upsert("50001", "Kowalska", "employee", "Anna"),
                                  upsert("70010", "Schmidt", "contact"))
    assert proj(out.decisions)[1:] == [d(None, "contact person", "upsert", "10001", "50001"),
                                       d("R6", "contact person", "upsert", "10001", "70010")]
    root = parse_valid(customers_xml(out.record))
    assert [p.get("relation") for p in root[0].iter(NS + "ContactPerson")] == ["employee", "contact"]
    summary = Summary()
    summary.count(out.decisions, "cu.xml")
    assert dict(summary.rules) == {"R6 upsert": 1}


def test_R6_same_partner_on_two_customers():
    shared = person("70010", "Schmidt", assignment="contact", occupation="BUYER")
    first = apply_customer(Customer("10001", "Acme", contact_persons=(shared,)), frozenset(), RULES)
    second = apply_customer(Customer("10002", "Beta", contact_persons=(
        person("70010", "Schmidt", assignment="employee", occupation="BUYER"),)), frozenset(), RULES)
    assert first.record.persons == (upsert("70010", "Schmidt", "contact", position="BUYER"),)
    assert second.record.persons == (upsert("70010", "Schmidt", "employee", position="BUYER"),)
    assert first.sent == second.sent == {"70010"}
    assert proj(first.decisions)[1:] == [d("R6", "contact person", "upsert", "10001", "70010")]
    assert proj(second.decisions)[1:] == [d(None, "contact person", "upsert", "10002", "70010")]
    assert "BUYER" in first.decisions[1].reason and "BUYER" in second.decisions[1].reason

    # the sent state is per customer: sent for 10001 says nothing about 10002
    lost = Customer("10002", "Beta", contact_persons=(person("70010", "Schmidt", classifications=()),))
    out = apply_customer(lost, frozenset(), RULES)  # 10002 never sent it, only 10001 did
    assert out.record.persons == ()
    out = apply_customer(lost, frozenset({"70010"}), RULES)
    assert out.record.persons == (PersonDelete("70010"),)


# =============================================================== R7


def test_R7_unknown_occupation_sent_without_position_with_warning():
    c = Customer("10001", "Acme", contact_persons=(person("50001", occupation="GHOST"),))
    out = apply_customer(c, frozenset(), RULES)
    assert out.record.persons == (upsert("50001", position=None),)
    assert proj(out.decisions) == [d(None, "customer", "upsert", customer="10001"),
                                   d("R7", "contact person", "warning", "10001", "50001", "GHOST"),
                                   d(None, "contact person", "upsert", "10001", "50001", None)]
    reason = out.decisions[1].reason
    assert "unknown occupation" in reason and "marked for deletion" not in reason and "GHOST" in reason
    assert out.sent == {"50001"}
    xml = customers_xml(out.record)
    assert "Position" not in xml and "GHOST" not in xml
    parse_valid(xml)


def test_R7_marked_for_deletion_occupation_sent_without_position_with_warning():
    c = Customer("10001", "Acme", contact_persons=(person("70010", occupation="OLD_POS", assignment="contact"),))
    out = apply_customer(c, frozenset(), RULES)
    assert out.record.persons == (upsert("70010", relation="contact", position=None),)
    assert proj(out.decisions) == [d(None, "customer", "upsert", customer="10001"),
                                   d("R7", "contact person", "warning", "10001", "70010", "OLD_POS"),
                                   d("R6", "contact person", "upsert", "10001", "70010", None)]
    reason = out.decisions[1].reason
    assert "marked for deletion" in reason and "unknown occupation" not in reason and "OLD_POS" in reason


def test_R7_live_occupation_kept_without_warning():
    c = Customer("10001", "Acme", contact_persons=(person("50001", occupation="SALES_MGR"),))
    out = apply_customer(c, frozenset(), RULES)
    assert out.record.persons == (upsert("50001", position="SALES_MGR"),)
    assert proj(out.decisions)[1:] == [d(None, "contact person", "upsert", "10001", "50001")]
    assert "SALES_MGR" in out.decisions[1].reason
    root = parse_valid(customers_xml(out.record))
    assert root[0].find(f"{NS}ContactPerson/{NS}Position").get("code") == "SALES_MGR"


def test_R7_person_not_sent_gets_no_warning():
    c = Customer("10001", "Acme", contact_persons=(person("50001", occupation="GHOST", classifications=()),))
    out = apply_customer(c, frozenset(), RULES)
    assert [x for x in out.decisions if x.rule == "R7"] == []


def test_R7_warning_in_summary_names_customer_partner_and_code():
    c = Customer("10001", "Acme", contact_persons=(person("50001", occupation="GHOST"),
                                                   person("50002", occupation="OLD_POS")))
    summary = Summary()
    summary.count(apply_customer(c, frozenset(), RULES).decisions, "cu.xml")
    assert summary.rules["R7 warning"] == 2 and summary.warnings_total == 2
    first, second = summary.warnings
    assert "10001" in first and "50001" in first and "GHOST" in first and "unknown occupation" in first
    assert "10001" in second and "50002" in second and "OLD_POS" in second and "marked for deletion" in second


# =============================================================== R8


def test_R8_inactive_customer_becomes_customer_delete():
    c = Customer("10001", "Acme", active=False,
                 communications=(Communication("phone", "Business", "1", True),),
                 contact_persons=(person("50001"), person("50002", classifications=())),
                 removed_partners=("50007",))
    out = apply_customer(c, frozenset({"50001", "50002"}), RULES)
    assert out.record == CustomerDelete("10001")
    assert proj(out.decisions) == [d("R8", "customer", "delete", customer="10001")]
    assert out.unsend_all is True and out.sent == set() and out.unsent == set()
    root = parse_valid(customers_xml(out.record))
    assert dict(root[0].attrib) == {"id": "10001", "action": "delete"} and len(root[0]) == 0


def test_R8_deleted_customer_becomes_customer_delete():
    out = apply_deleted_customer(DeletedCustomer("10009"))
    assert out.record == CustomerDelete("10009")
    assert proj(out.decisions) == [d("R8", "customer", "delete", customer="10009")]
    assert out.unsend_all is True and out.sent == set() and out.unsent == set()
    assert out.decisions[0].reason != withdraw("10009", "inactive").decisions[0].reason


def test_R8_summary_counts():
    summary = Summary()
    summary.count(apply_deleted_customer(DeletedCustomer("1")).decisions, "cu.xml")
    summary.count(apply_customer(Customer("2", "B", active=False), frozenset(), RULES).decisions, "cu.xml")
    assert dict(summary.rules) == {"R8 delete": 2}


# ================================================ FORMATS.md example, end to end


def test_R2_to_R8_formats_md_example():
    """The CustomerExport example of FORMATS.md gives its to-mobile example."""
    exported = Customer(
        "10001", "Acme Trading Sp. z o.o.", tax_id="PL5260001246",
        address=Address("ul. Prosta 1", "00-001", "Warszawa", "PL"),
        communications=(Communication("phone", "Business", "+48 22 100 00 00", True),
                        Communication("email", "Private", "owner@home.example")),
        contact_persons=(
            person("50001", "Kowalska", first_name="Anna", occupation="SALES_MGR", preferred=True,
                   classifications=("Sales", "Purchasing"),
                   communications=(Communication("email", "Business", "anna.kowalska@acme.example"),
                                   Communication("mobile", "Private", "+48 600 000 001"))),
            person("50002", "Nowak", classifications=("Logistics",)),
            person("70010", "Schmidt", occupation="BUYER", assignment="contact"),
        ),
        removed_partners=("50007",))
    first = apply_customer(exported, frozenset(), RULES)
    second = apply_deleted_customer(DeletedCustomer("10009"))
    assert first.record == CustomerUpsert(
        "10001", "Acme Trading Sp. z o.o.", "PL5260001246", Address("ul. Prosta 1", "00-001", "Warszawa", "PL"),
        (Contact("phone", "+48 22 100 00 00"),),
        (upsert("50001", "Kowalska", "employee", "Anna", "SALES_MGR",
                (Contact("email", "anna.kowalska@acme.example"),)),
         upsert("70010", "Schmidt", "contact", None, "BUYER"),
         PersonDelete("50007")))
    assert second.record == CustomerDelete("10009")
    got = parse_valid(customers_xml(first.record, second.record))
    expected = etree.fromstring(b"""<Customers xmlns="urn:cee-mobile:to-mobile:v1">
  <Customer id="10001" action="upsert">
    <Name>Acme Trading Sp. z o.o.</Name><TaxId>PL5260001246</TaxId>
    <Address><Street>ul. Prosta 1</Street><PostalCode>00-001</PostalCode>
      <City>Warszawa</City><Country>PL</Country></Address>
    <Contact kind="phone">+48 22 100 00 00</Contact>
    <ContactPerson id="50001" action="upsert" relation="employee">
      <Surname>Kowalska</Surname><FirstName>Anna</FirstName>
      <Position code="SALES_MGR"/>
      <Contact kind="email">anna.kowalska@acme.example</Contact>
    </ContactPerson>
    <ContactPerson id="70010" action="upsert" relation="contact">
      <Surname>Schmidt</Surname><Position code="BUYER"/>
    </ContactPerson>
    <ContactPerson id="50007" action="delete"/>
  </Customer>
  <Customer id="10009" action="delete"/>
</Customers>""")
    assert _canonical(got) == _canonical(expected)


def test_to_mobile_texts_escaped_and_kept_whole_at_max_length():
    """Text (80) and LongText (254) values at their limits, with XML-special and non-ASCII characters."""
    name = ("Żółć & <Spółka> \"Ä\" 'ß' ]]> " * 4)[:80].strip().ljust(80, "x")
    value = ("a&b<c>d\"e'f ąę 漢😀 " * 20)[:254].strip().ljust(254, "&")
    c = Customer("10001", name, address=Address(name, "00-001 <&>", name, "PL"),
                 communications=(Communication("email", "Business", value),),
                 contact_persons=(person("50001", name, first_name=name,
                                         communications=(Communication("url", "Business", value),)),))
    out = apply_customer(c, frozenset(), RULES)
    root = parse_valid(customers_xml(out.record))
    rec = root[0]
    assert len(name) == 80 and len(value) == 254
    assert rec.findtext(NS + "Name") == name
    assert rec.findtext(f"{NS}Address/{NS}Street") == rec.findtext(f"{NS}Address/{NS}City") == name
    assert rec.findtext(f"{NS}Address/{NS}PostalCode") == "00-001 <&>"
    assert rec.findtext(NS + "Contact") == value
    p = rec.find(NS + "ContactPerson")
    assert (p.findtext(NS + "Surname"), p.findtext(NS + "FirstName"), p.findtext(NS + "Contact")) == \
        (name, name, value)


def _canonical(el):
    text = (el.text or "").strip()
    return (el.tag, dict(el.attrib), text, [_canonical(c) for c in el])


# ================================================================ properties

CODE_CHARS = string.ascii_uppercase + string.digits
codes = st.from_regex(r"[A-Z0-9][A-Z0-9_.\-]{0,31}", fullmatch=True)
# printable, XML-special and non-ASCII characters, and whitespace that xs:token collapses
TEXT_ALPHABET = (string.ascii_letters + string.digits + "&<>\"'];:-.,/()#@!?%+=*"
                 + "ąćęłńóśźżĄŁŻÄÖÜßéñçøåЖжλΩ漢字😀" + " \t\n")


def tokens(max_len: int):
    """xs:token values of 1..max_len characters (as the CEE parser hands them on: collapsed),
    often short, often at the maximum length."""

    @st.composite
    def token(draw):
        n = draw(st.one_of(st.integers(1, 6), st.just(max_len), st.integers(1, max_len)))
        raw = draw(st.text(alphabet=TEXT_ALPHABET, min_size=n, max_size=n))
        value = " ".join(raw.split())
        if len(value) < n:  # whitespace collapsed: pad back to the drawn length, no blanks
            value += "x" * (n - len(value))
        return value

    return token().filter(lambda s: "method" not in s.lower() and "preferred" not in s.lower())


texts = tokens(80)
long_texts = tokens(254)
METHODS = ("Business", "Private", "Mobile", "Home")
CLASSES = ("Sales", "Vertrieb", "Purchasing", "Logistics", "sales")
KINDS = ("phone", "mobile", "fax", "email", "url")

communications = st.builds(Communication, kind=st.sampled_from(KINDS), method=st.sampled_from(METHODS),
                           value=long_texts, preferred=st.booleans())
addresses = st.builds(Address, street=st.none() | texts, postal_code=st.none() | tokens(16), city=texts,
                      country=st.from_regex(r"[A-Z]{2}", fullmatch=True))


# each branch equally likely: no occupation, a live one, a marked one, an unknown one
occupation_codes = st.one_of(st.none(), st.sampled_from(sorted(LIVE)), st.sampled_from(sorted(MARKED)),
                             st.sampled_from(sorted(UNKNOWN)))


@st.composite
def classifications(draw, sales: str):
    """Other classifications (near misses included), with the Sales one in half the cases."""
    others = draw(st.lists(st.sampled_from([c for c in CLASSES if c != sales]), unique=True, max_size=2))
    if draw(st.booleans()):
        others.insert(draw(st.integers(0, len(others))), sales)
    return tuple(others)


def contact_persons(partner: str, sales: str):
    return st.builds(
        ContactPerson, partner=st.just(partner), surname=texts, first_name=st.none() | texts,
        occupation=occupation_codes, classifications=classifications(sales),
        communications=st.lists(communications, max_size=3).map(tuple),
        assignment=st.sampled_from(("employee", "contact")), preferred=st.booleans())


@st.composite
def scenarios(draw):
    """(customer, sent_before, rules): a customer as a CEE export has it, and the channel's view."""
    sales = draw(st.sampled_from(("Sales", "Vertrieb")))
    partners = draw(st.lists(codes, unique=True, max_size=7))
    removed_flags = draw(st.lists(st.booleans(), min_size=len(partners), max_size=len(partners)))
    in_export = [p for p, r in zip(partners, removed_flags) if not r]
    removed = tuple(p for p, r in zip(partners, removed_flags) if r)
    persons = tuple(draw(contact_persons(p, sales)) for p in in_export)
    others = draw(st.lists(codes, max_size=2))  # sent earlier, not in this export at all
    pool = sorted(set(partners) | set(others))
    sent_before = frozenset(draw(st.sets(st.sampled_from(pool)))) if pool else frozenset()
    customer = Customer(
        number=draw(codes), name=draw(texts), active=draw(st.sampled_from((True, True, True, False))),
        tax_id=draw(st.none() | codes), address=draw(st.none() | addresses),
        communications=tuple(draw(st.lists(communications, max_size=4))),
        contact_persons=persons, removed_partners=removed)
    rules = CustomerRules(sales_classification=sales,
                          displayed_methods=draw(st.frozensets(st.sampled_from(METHODS))),
                          live_occupations=LIVE, known_occupations=LIVE | MARKED)
    return customer, sent_before, rules


PROPERTY = settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _has_sales(p: ContactPerson, rules: CustomerRules) -> bool:
    return rules.sales_classification in p.classifications


@PROPERTY
@given(scenarios())
def test_R2_R5_R7_R8_property_invariants(scenario):
    customer, sent_before, rules = scenario
    out = apply_customer(customer, sent_before, rules)
    number = customer.number

    if not customer.active:  # R8
        assert out.record == CustomerDelete(number)
        assert out.unsend_all is True and out.sent == set() and out.unsent == set()
        assert proj(out.decisions) == [d("R8", "customer", "delete", customer=number)]
        return
    assert isinstance(out.record, CustomerUpsert) and out.unsend_all is False
    by_partner = {p.partner: p for p in customer.contact_persons}
    persons = out.record.persons
    ids = [r.id for r in persons]

    # R2: no upsert without Sales; R6 relation kept; R7: no dangling position
    for r in persons:
        if isinstance(r, PersonUpsert):
            source = by_partner[r.id]
            assert _has_sales(source, rules)
            assert r.relation == source.assignment
            assert r.position is None or r.position in rules.live_occupations
            assert r.position not in MARKED | UNKNOWN
            if source.occupation in rules.live_occupations:
                assert r.position == source.occupation
    # R2/R5: who is deleted, exactly once
    lost = {p.partner for p in customer.contact_persons if not _has_sales(p, rules)}
    for partner in sent_before & (lost | set(customer.removed_partners)):
        assert ids.count(partner) == 1 and PersonDelete(partner) in persons
        assert partner in out.unsent
    for partner in lost - sent_before:  # never sent, not removed: nothing at all
        assert partner not in ids and partner not in out.unsent
    for partner in customer.removed_partners:  # R5 always
        assert ids.count(partner) == 1 and PersonDelete(partner) in persons
    # order: contact persons as exported (upserts and R2 deletes), then removed ones
    expected_ids = [p.partner for p in customer.contact_persons
                    if _has_sales(p, rules) or p.partner in sent_before] + list(customer.removed_partners)
    assert ids == expected_ids
    assert out.sent == {r.id for r in persons if isinstance(r, PersonUpsert)}
    assert out.unsent == {r.id for r in persons if isinstance(r, PersonDelete)}

    # R4: customer contacts are the displayed connections, in order
    assert out.record.contacts == tuple(Contact(c.kind, c.value) for c in customer.communications
                                        if c.method in rules.displayed_methods)
    # R7: a warning for each sent person with an unusable occupation, naming customer, partner, code
    warnings = [x for x in out.decisions if x.rule == "R7"]
    expected_warnings = [p for p in customer.contact_persons if _has_sales(p, rules)
                         and p.occupation is not None and p.occupation not in rules.live_occupations]
    assert proj(warnings) == [d("R7", "contact person", "warning", number, p.partner, p.occupation)
                              for p in expected_warnings]
    for w, p in zip(warnings, expected_warnings):
        why = "marked for deletion" if p.occupation in MARKED else "unknown occupation"
        assert why in w.reason
    # R3: flags on kept connections and on sent persons are counted (what the code does)
    sent_people = [p for p in customer.contact_persons if _has_sales(p, rules)]
    flags = sum(c.preferred for c in customer.communications if c.method in rules.displayed_methods)
    flags += sum(p.preferred + sum(c.preferred for c in p.communications if c.method in rules.displayed_methods)
                 for p in sent_people)
    assert sum(x.count for x in out.decisions if x.rule == "R3") == flags


@settings(PROPERTY, max_examples=150)
@given(scenarios())
def test_R3_R4_property_output_xml_has_no_preferred_no_method_and_is_valid(scenario):
    customer, sent_before, rules = scenario
    out = apply_customer(customer, sent_before, rules)
    fragment = mobile.customer(out.record)
    assert "preferred" not in fragment and "method" not in fragment
    root = parse_valid(mobile.customers_open() + fragment + mobile.customers_close())
    methods = set(METHODS)
    for el in root.iter():
        assert not {"preferred", "method"} & set(el.attrib)
        assert not methods & set(el.attrib.values())
    # escaping: every text comes back exactly as it went in
    (rec,) = list(root)
    if isinstance(out.record, CustomerDelete):
        assert len(rec) == 0 and dict(rec.attrib) == {"id": customer.number, "action": "delete"}
        return
    assert rec.findtext(NS + "Name") == customer.name
    assert [(c.get("kind"), c.text) for c in rec.findall(NS + "Contact")] == \
        [(c.kind, c.value) for c in out.record.contacts]
    if customer.address is not None:
        a = customer.address
        got = rec.find(NS + "Address")
        assert (got.findtext(NS + "Street"), got.findtext(NS + "PostalCode"), got.findtext(NS + "City"),
                got.findtext(NS + "Country")) == (a.street, a.postal_code, a.city, a.country)
    xml_persons = rec.findall(NS + "ContactPerson")
    assert len(xml_persons) == len(out.record.persons)
    for el, r in zip(xml_persons, out.record.persons):
        assert el.get("id") == r.id
        if isinstance(r, PersonDelete):
            assert el.get("action") == "delete" and len(el) == 0
            continue
        assert el.get("action") == "upsert" and el.get("relation") == r.relation
        assert el.findtext(NS + "Surname") == r.surname
        assert el.findtext(NS + "FirstName") == r.first_name
        pos = el.find(NS + "Position")
        assert (pos.get("code") if pos is not None else None) == r.position
        assert [(c.get("kind"), c.text) for c in el.findall(NS + "Contact")] == \
            [(c.kind, c.value) for c in r.contacts]


# --------------------------------------------------- multi-step (carried state)

POOL = ("50001", "50002", "50003", "70010", "70011")
MULTI_RULES = CustomerRules("Sales", frozenset({"Business"}), LIVE, LIVE | MARKED)


@st.composite
def exports(draw):
    chosen = draw(st.lists(st.sampled_from(POOL), unique=True))
    removed_flags = draw(st.lists(st.sampled_from((False, False, True)), min_size=len(chosen),
                                  max_size=len(chosen)))
    persons = tuple(
        person(p, classifications=draw(classifications("Sales")), occupation=draw(occupation_codes),
               assignment=draw(st.sampled_from(("employee", "contact"))))
        for p, r in zip(chosen, removed_flags) if not r)
    removed = tuple(p for p, r in zip(chosen, removed_flags) if r)
    active = draw(st.sampled_from((True, True, True, True, False)))
    return Customer("10001", "Acme", active=active, contact_persons=persons, removed_partners=removed)


def carry(sent: frozenset[str], out: CustomerOutcome) -> frozenset[str]:
    """What the ledger does with an outcome (unsend_customers, mark_unsent, mark_sent)."""
    if out.unsend_all:
        return frozenset()
    return frozenset((sent - out.unsent) | out.sent)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(initial=st.frozensets(st.sampled_from(POOL)), sequence=st.lists(exports(), min_size=1, max_size=8))
def test_R2_R5_R8_property_deletes_only_for_sent_and_once(initial, sequence):
    sent = initial
    in_mobile = set(initial)  # model: what Mobile holds, from the records alone
    deleted_since_sent = set(POOL) - initial  # R2 may not delete these until they are sent again
    for customer in sequence:
        out = apply_customer(customer, sent, MULTI_RULES)
        r2_deleted = {x.partner for x in out.decisions if x.rule == "R2" and x.outcome == "delete"}
        assert not r2_deleted & deleted_since_sent  # only once until sent again
        deleted_since_sent |= {r.id for r in getattr(out.record, "persons", ()) if isinstance(r, PersonDelete)}
        deleted_since_sent -= out.sent
        if out.unsend_all:
            deleted_since_sent = set(POOL)
        if isinstance(out.record, CustomerDelete):
            assert out.unsend_all and not r2_deleted
            in_mobile.clear()
        else:
            person_deletes = [r.id for r in out.record.persons if isinstance(r, PersonDelete)]
            assert len(person_deletes) == len(set(person_deletes))  # at most once per export
            lost = {p.partner for p in customer.contact_persons if "Sales" not in p.classifications}
            # R2: a delete exactly for those that lost Sales and are in the sent set
            assert r2_deleted == lost & sent
            assert r2_deleted <= in_mobile
            # R5: always
            assert set(customer.removed_partners) <= set(person_deletes)
            assert set(person_deletes) == r2_deleted | set(customer.removed_partners)
            for r in out.record.persons:
                if isinstance(r, PersonUpsert):
                    in_mobile.add(r.id)
                else:
                    in_mobile.discard(r.id)
        sent = carry(sent, out)
        assert sent == in_mobile  # the carried set is exactly what the records sent and not deleted since


# ------------------------------------------------------- R1 and R4 properties


@settings(max_examples=200, deadline=None)
@given(initial=st.none() | st.builds(OccupationState, st.booleans(), st.booleans()),
       marks=st.lists(st.booleans(), min_size=1, max_size=10))
def test_R1_property_positions_deleted_only_when_sent_and_once(initial, marks):
    """A sequence of masterdata exports naming the same occupation, marked or not."""
    state = initial
    in_mobile = bool(initial and initial.sent)
    for marked in marks:
        record, decision, state = apply_occupation(Occupation("POS-1", "Position", marked), state)
        if not marked:
            assert record == PositionUpsert("POS-1", "Position") and decision.rule is None
            in_mobile = True
        elif in_mobile:
            assert record == PositionDelete("POS-1") and (decision.rule, decision.outcome) == ("R1", "delete")
            in_mobile = False
        else:  # never an upsert for a marked occupation, and no second delete
            assert record is None and (decision.rule, decision.outcome) == ("R1", "not sent")
        assert state == OccupationState(marked, in_mobile)


@settings(max_examples=200, deadline=None)
@given(default=st.frozensets(st.sampled_from(METHODS)),
       masterdata=st.dictionaries(st.sampled_from(METHODS + ("Fax",)), st.booleans()),
       configured=st.none() | st.lists(st.sampled_from(METHODS), max_size=3))
def test_R4_property_displayed_methods_precedence(default, masterdata, configured):
    shown = displayed_methods(default, masterdata, configured)
    if configured is not None:
        assert shown == frozenset(configured)
    else:
        on = {m for m, v in masterdata.items() if v}
        off = {m for m, v in masterdata.items() if not v}
        assert shown == frozenset((set(default) - off) | on)
        assert {m for m in default if m not in masterdata} <= shown  # methods not named keep theirs
