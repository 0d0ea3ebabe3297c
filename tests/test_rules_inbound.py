"""R9-R14 (Mobile to CEE) as pure functions: :mod:`exchange.rules.inbound`.

Two layers:

* unit tests, one group per rule (``test_R9_...`` ... ``test_R14_...``), each
  asserting the exact output records (Organization, Person,
  ContactPersonRemoval), the exact mobileIds an outcome creates and the
  exact :class:`~exchange.records.Decision` values;
* Hypothesis properties over generated return-package records: R9/R10/R11
  for every Person, R13/R14 record by record, and R12 over a sequence of
  documents that carries the set of known mobileIds from document to
  document the way the shell does (``to_cee._Known``: the ledger's ids plus
  those created earlier in the same document), with repeated records and
  mobileIds repeated within a record and across NewCustomer/person (one
  mobileId space). Outcomes are serialized with :mod:`exchange.xml.cee_import`
  (organizations, then persons, then removals) and validated against
  cee-import.xsd, with texts full of XML-special and non-ASCII characters.

Everything here is pure: no files, no ledger, no CLI.
"""

from __future__ import annotations

import string

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from lxml import etree

from exchange.records import (
    Address,
    Communication,
    Contact,
    ContactPersonRemoval,
    Decision,
    NewCustomer,
    Organization,
    Person,
    ReturnedCustomer,
    ReturnedPerson,
)
from exchange.rules.inbound import ImportOutcome, ImportRules, apply_new_customer, apply_returned_customer, external_id
from exchange.xml import cee_import
from exchange.xml.schemas import CEE_IMPORT, schema

NS = f"{{{CEE_IMPORT}}}"
CHANNEL = "MOBILE-PL"
LIVE = frozenset({"SALES_MGR", "BUYER", "ACC.1"})
MARKED = frozenset({"OLD_POS"})  # known to the channel but marked for deletion: not live
UNKNOWN = frozenset({"GHOST", "NOPE_9"})

RULES = ImportRules(channel=CHANNEL, sales_classification="Sales", import_method="Business", live_occupations=LIVE)


def mid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012x}"


def ext(n: int) -> str:
    return f"mobile:{mid(n)}"


def rp(n: int, surname: str = "Nowak", first: str | None = None, position: str | None = None,
       contacts=()) -> ReturnedPerson:
    return ReturnedPerson(mid(n), surname, first, position, tuple(contacts))


def nc(n: int, name: str = "Hurtownia", persons=(), tax_id=None, address=None, contacts=()) -> NewCustomer:
    return NewCustomer(mid(n), name, tax_id, address, tuple(contacts), tuple(persons))


def rc(id: str, persons=(), deleted=()) -> ReturnedCustomer:
    return ReturnedCustomer(id, tuple(persons), tuple(deleted))


def created_new(n: int, org: int) -> Decision:
    return Decision("R10", "contact person", "created",
                    f"employee of new organization {mid(org)} (added with it on a device)",
                    customer=mid(org), partner=mid(n))


def created_of(n: int, customer: str) -> Decision:
    return Decision("R10", "contact person", "created", f"employee of customer {customer} (added on a device)",
                    customer=customer, partner=mid(n))


def org_created(n: int, channel: str = CHANNEL) -> Decision:
    return Decision(None, "new customer", "created", f"organization in sales channel {channel}",
                    customer=mid(n))


def person_known(n: int, customer: str) -> Decision:
    return Decision("R12", "contact person", "not created", f"mobileId {mid(n)} was imported before",
                    customer=customer, partner=mid(n))


def org_known(n: int) -> Decision:
    return Decision("R12", "new customer", "not created", f"mobileId {mid(n)} was imported before",
                    customer=mid(n))


def r13(n: int, customer: str, code: str, channel: str = CHANNEL) -> Decision:
    return Decision("R13", "contact person", "warning",
                    f"position {code} left out (not a live occupation of {channel})",
                    customer=customer, partner=mid(n), code=code)


def r14(customer: str, partner: str) -> Decision:
    return Decision("R14", "contact person", "removal", "deleted on a device", customer=customer, partner=partner)


def person(n: int, surname: str = "Nowak", *, first=None, occupation=None, classification="Sales", comms=(),
           of: str | None = None, of_new: int | None = None) -> Person:
    return Person(ext(n), surname, first, occupation, (classification,), tuple(comms),
                  employee_of=of, employee_of_new=ext(of_new) if of_new is not None else None)


def outcome_tuple(out: ImportOutcome):
    return (out.organizations, out.persons, out.removals, out.decisions, out.created)


def document(outcomes, import_id="CEEIMP-MOBILE-PL-00000001", channel=CHANNEL,
             created_at="2026-11-27T22:05:00Z", source="RET_MOBILE-PL_0007.zip", sha="0" * 64) -> str:
    """A whole import document, as the shell writes it: organizations, then persons, then removals."""
    parts = [cee_import.document_open(import_id, channel, created_at, source, sha)]
    parts += [cee_import.organization(o) for out in outcomes for o in out.organizations]
    parts += [cee_import.person(p) for out in outcomes for p in out.persons]
    parts += [cee_import.removal(r) for out in outcomes for r in out.removals]
    parts.append(cee_import.document_close())
    return "".join(parts)


_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def parse_valid(xml: str) -> etree._Element:
    root = etree.fromstring(xml.encode("utf-8"), _PARSER)
    xsd = schema("cee-import.xsd")
    assert xsd.validate(root), [str(e) for e in xsd.error_log]
    return root


# =============================================================== R9


def test_R9_person_of_existing_customer_gets_exactly_the_configured_classification():
    rules = ImportRules(CHANNEL, "Vertrieb", "Business", LIVE)
    out = apply_returned_customer(rc("10001", [rp(1, "Lewandowski", "Piotr")]), set(), rules)
    assert out.persons == [Person(ext(1), "Lewandowski", "Piotr", None, ("Vertrieb",), (), employee_of="10001")]
    assert out.persons[0].classifications == ("Vertrieb",)


def test_R9_person_of_new_customer_gets_exactly_the_configured_classification():
    rules = ImportRules(CHANNEL, "Sales.PL", "Business", LIVE)
    out = apply_new_customer(nc(1, persons=[rp(2), rp(3)]), set(), rules)
    assert [p.classifications for p in out.persons] == [("Sales.PL",), ("Sales.PL",)]


def test_R9_document_carries_one_classification_element():
    out = apply_returned_customer(rc("10001", [rp(1)]), set(), RULES)
    root = parse_valid(document([out]))
    (el,) = root.findall(NS + "Person")
    assert [c.text for c in el.findall(NS + "Classification")] == ["Sales"]


# =============================================================== R10


def test_R10_person_added_under_existing_customer_is_employee_of_it():
    out = apply_returned_customer(rc("10001", [rp(1, "Lewandowski", "Piotr")]), set(), RULES)
    assert outcome_tuple(out) == (
        [], [person(1, "Lewandowski", first="Piotr", of="10001")], [], [created_of(1, "10001")], [mid(1)])


def test_R10_person_added_under_new_customer_is_employee_of_new():
    record = nc(1, "Hurtownia Zielona", tax_id="PL1234567890",
                address=Address(None, None, "Kraków", "PL"),
                contacts=[Contact("phone", "+48 12 300 00 00")],
                persons=[rp(2, "Wiśniewski", contacts=[Contact("email", "buyer@zielona.example")])])
    out = apply_new_customer(record, set(), RULES)
    assert out.organizations == [Organization(ext(1), "Hurtownia Zielona", "PL1234567890",
                                              Address(None, None, "Kraków", "PL"),
                                              (Communication("phone", "Business", "+48 12 300 00 00"),), CHANNEL)]
    assert out.persons == [person(2, "Wiśniewski", comms=[Communication("email", "Business", "buyer@zielona.example")],
                                  of_new=1)]
    assert out.removals == []
    assert out.decisions == [org_created(1), created_new(2, 1)]
    assert out.created == [mid(1), mid(2)]


def test_R10_new_customer_without_persons_is_just_an_organization():
    out = apply_new_customer(nc(7, "Solo"), set(), ImportRules("MOBILE-DE", "Sales", "Business", LIVE))
    assert outcome_tuple(out) == (
        [Organization(ext(7), "Solo", None, None, (), "MOBILE-DE")], [], [], [org_created(7, "MOBILE-DE")],
        [mid(7)])


def test_R10_several_persons_keep_their_order():
    out = apply_returned_customer(rc("C-1", [rp(3, "C"), rp(1, "A"), rp(2, "B")]), set(), RULES)
    assert out.persons == [person(3, "C", of="C-1"), person(1, "A", of="C-1"), person(2, "B", of="C-1")]
    assert out.created == [mid(3), mid(1), mid(2)]


# =============================================================== R11


def test_R11_every_communication_gets_the_import_method_kinds_values_and_order_kept():
    rules = ImportRules(CHANNEL, "Sales", "Work_1", LIVE)
    contacts = [Contact("url", "https://x.example/?a=1&b=<2>"), Contact("fax", "+48 1"), Contact("phone", "+48 2")]
    out = apply_new_customer(nc(1, contacts=contacts, persons=[rp(2, contacts=reversed(contacts))]), set(), rules)
    expected = tuple(Communication(c.kind, "Work_1", c.value) for c in contacts)
    assert out.organizations[0].communications == expected
    assert out.persons[0].communications == tuple(reversed(expected))
    assert all(c.preferred is False for c in expected)


def test_R11_person_of_existing_customer():
    out = apply_returned_customer(rc("10001", [rp(1, contacts=[Contact("mobile", "+48 600")])]), set(), RULES)
    assert out.persons[0].communications == (Communication("mobile", "Business", "+48 600"),)


# =============================================================== R12


def test_R12_person_known_from_an_earlier_document_is_not_created():
    out = apply_returned_customer(rc("10001", [rp(1), rp(2, "Kos")]), {mid(1)}, RULES)
    assert outcome_tuple(out) == (
        [], [person(2, "Kos", of="10001")], [], [person_known(1, "10001"), created_of(2, "10001")], [mid(2)])


def test_R12_new_customer_imported_earlier_is_not_created_its_new_persons_still_point_at_it():
    out = apply_new_customer(nc(1, persons=[rp(2), rp(3, "Kos")]), {mid(1), mid(2)}, RULES)
    assert outcome_tuple(out) == (
        [], [person(3, "Kos", of_new=1)], [],
        [org_known(1), person_known(2, mid(1)), created_new(3, 1)], [mid(3)])


def test_R12_known_new_customer_and_all_its_persons_known_yields_nothing():
    out = apply_new_customer(nc(1, persons=[rp(2)]), frozenset({mid(1), mid(2)}), RULES)
    assert outcome_tuple(out) == ([], [], [], [org_known(1), person_known(2, mid(1))], [])


def test_R12_person_repeated_within_one_new_customer_is_created_once():
    out = apply_new_customer(nc(1, persons=[rp(2, "First"), rp(2, "Second")]), set(), RULES)
    assert out.persons == [person(2, "First", of_new=1)]
    assert out.decisions == [org_created(1), created_new(2, 1), person_known(2, mid(1))]
    assert out.created == [mid(1), mid(2)]


def test_R12_person_with_the_mobile_id_of_its_own_new_customer_is_not_created():
    """One mobileId space: the organization took the id first."""
    out = apply_new_customer(nc(1, persons=[rp(1), rp(2)]), set(), RULES)
    assert [o.external_id for o in out.organizations] == [ext(1)]
    assert out.persons == [person(2, of_new=1)]
    assert out.decisions == [org_created(1), person_known(1, mid(1)), created_new(2, 1)]
    assert out.created == [mid(1), mid(2)]


def test_R12_person_repeated_within_one_existing_customer_is_created_once():
    out = apply_returned_customer(rc("10001", [rp(5, "A"), rp(5, "B")]), set(), RULES)
    assert out.persons == [person(5, "A", of="10001")]
    assert out.decisions == [created_of(5, "10001"), person_known(5, "10001")]
    assert out.created == [mid(5)]


def test_R12_known_person_with_a_dead_position_gets_no_R13_warning():
    """Not created, so there is no position to leave out."""
    out = apply_returned_customer(rc("10001", [rp(1, position="GHOST")]), {mid(1)}, RULES)
    assert out.decisions == [person_known(1, "10001")]


def test_R12_known_set_is_only_read():
    known = {mid(1)}
    apply_new_customer(nc(2, persons=[rp(3)]), known, RULES)
    apply_returned_customer(rc("10001", [rp(4)]), known, RULES)
    assert known == {mid(1)}


def test_R12_shell_style_sequence_repeated_records_in_one_document():
    """The shell adds each outcome's ``created`` to what later records see: a repeated record creates nothing."""
    known: set[str] = set()
    first = apply_new_customer(nc(1, persons=[rp(2)]), known, RULES)
    known.update(first.created)
    again = apply_new_customer(nc(1, persons=[rp(2), rp(3)]), known, RULES)
    known.update(again.created)
    existing = apply_returned_customer(rc("10001", [rp(2), rp(1), rp(4)]), known, RULES)
    assert first.created == [mid(1), mid(2)]
    assert (again.organizations, again.persons, again.created) == ([], [person(3, of_new=1)], [mid(3)])
    assert (existing.persons, existing.created) == ([person(4, of="10001")], [mid(4)])
    assert [d.rule for d in existing.decisions] == ["R12", "R12", "R10"]


# =============================================================== R13


def test_R13_live_position_becomes_the_occupation():
    out = apply_returned_customer(rc("10001", [rp(1, position="BUYER")]), set(), RULES)
    assert out.persons == [person(1, occupation="BUYER", of="10001")]
    assert out.decisions == [created_of(1, "10001")]


@pytest.mark.parametrize("code", ["GHOST", "OLD_POS", "buyer"], ids=["unknown", "marked for deletion", "case"])
def test_R13_position_not_live_is_left_out_with_a_warning(code):
    out = apply_returned_customer(rc("10001", [rp(1, position=code)]), set(), RULES)
    assert outcome_tuple(out) == (
        [], [person(1, of="10001")], [], [r13(1, "10001", code), created_of(1, "10001")], [mid(1)])


def test_R13_under_a_new_customer_the_warning_names_the_new_customer():
    out = apply_new_customer(nc(1, persons=[rp(2, position="OLD_POS"), rp(3, position="SALES_MGR")]), set(), RULES)
    assert out.persons == [person(2, of_new=1), person(3, occupation="SALES_MGR", of_new=1)]
    assert out.decisions == [org_created(1), r13(2, mid(1), "OLD_POS"), created_new(2, 1), created_new(3, 1)]


def test_R13_no_live_occupations_at_all():
    rules = ImportRules("MOBILE-DE", "Sales", "Business", frozenset())
    out = apply_returned_customer(rc("10001", [rp(1, position="BUYER")]), set(), rules)
    assert out.persons == [person(1, of="10001")]
    assert out.decisions == [r13(1, "10001", "BUYER", "MOBILE-DE"), created_of(1, "10001")]


# =============================================================== R14


def test_R14_deleted_contact_person_becomes_a_removal():
    out = apply_returned_customer(rc("10001", deleted=["50002"]), set(), RULES)
    assert outcome_tuple(out) == ([], [], [ContactPersonRemoval("10001", "50002")], [r14("10001", "50002")], [])


def test_R14_several_removals_in_order_after_the_added_persons():
    out = apply_returned_customer(rc("C.9", [rp(1)], deleted=["P3", "P1", "P2"]), set(), RULES)
    assert out.removals == [ContactPersonRemoval("C.9", "P3"), ContactPersonRemoval("C.9", "P1"),
                            ContactPersonRemoval("C.9", "P2")]
    assert out.decisions == [created_of(1, "C.9"), r14("C.9", "P3"), r14("C.9", "P1"), r14("C.9", "P2")]
    assert out.created == [mid(1)]  # removals create nothing


def test_R14_removals_are_not_subject_to_R12():
    out = apply_returned_customer(rc("10001", deleted=["50002"]), {"50002"}, RULES)
    assert out.removals == [ContactPersonRemoval("10001", "50002")]


def test_R14_customer_with_nothing_yields_nothing():
    assert outcome_tuple(apply_returned_customer(rc("10001"), set(), RULES)) == ([], [], [], [], [])


# ====================================================== the example of FORMATS.md


def test_formats_example_document_element_by_element():
    new = nc(0, "Hurtownia Zielona", address=Address(None, None, "Kraków", "PL"),
             contacts=[Contact("phone", "+48 12 300 00 00")],
             persons=[rp(1, "Wiśniewski", position="BUYER", contacts=[Contact("email", "buyer@zielona.example")])])
    old = rc("10001", [rp(2, "Lewandowski", "Piotr")], ["50002"])
    known: set[str] = set()
    outs = []
    for record, apply in ((new, apply_new_customer), (old, apply_returned_customer)):
        outs.append(apply(record, known, RULES))
        known.update(outs[-1].created)
    got = parse_valid(document(outs, sha="d21d4bb0c7f998f041137f385174b37a53228af118af18c94606257921301796"))
    expected = etree.fromstring(f"""<CeeImport xmlns="urn:cee-mobile:cee-import:v1" importId="CEEIMP-MOBILE-PL-00000001"
    salesChannel="MOBILE-PL" createdAt="2026-11-27T22:05:00Z"
    sourcePackage="RET_MOBILE-PL_0007.zip" sourceSha256="d21d4bb0c7f998f041137f385174b37a53228af118af18c94606257921301796">
  <Organization externalId="{ext(0)}">
    <Name>Hurtownia Zielona</Name>
    <Address><City>Kraków</City><Country>PL</Country></Address>
    <Communication kind="phone" method="Business">+48 12 300 00 00</Communication>
    <SalesChannelAssignment salesChannel="MOBILE-PL"/>
  </Organization>
  <Person externalId="{ext(1)}">
    <Surname>Wiśniewski</Surname><Occupation>BUYER</Occupation>
    <Classification>Sales</Classification>
    <Communication kind="email" method="Business">buyer@zielona.example</Communication>
    <EmployeeOfNew externalId="{ext(0)}"/>
  </Person>
  <Person externalId="{ext(2)}">
    <Surname>Lewandowski</Surname><FirstName>Piotr</FirstName>
    <Classification>Sales</Classification>
    <EmployeeOf customer="10001"/>
  </Person>
  <ContactPersonRemoval customer="10001" partner="50002"/>
</CeeImport>""".encode())
    assert _canonical(got) == _canonical(expected)


def _canonical(el):
    return (el.tag, dict(el.attrib), (el.text or "").strip(), [_canonical(c) for c in el])


# ================================================================ properties

codes = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}", fullmatch=True)
# XML-special, non-ASCII (NBSP, astral plane included) and whitespace that xs:token collapses
TEXT_ALPHABET = (string.ascii_letters + string.digits + "&<>\"'];:-.,/()#@!?%+=*"
                 + "ąćęłńóśźżĄŁŻÄÖÜßéñçøåЖжλΩ漢字😀\u00a0\u2028€" + " ")


def tokens(max_len: int):
    """xs:token values of 1..max_len characters, collapsed as an XML parser hands them on."""

    @st.composite
    def token(draw):
        n = draw(st.one_of(st.integers(1, 6), st.just(max_len), st.integers(1, max_len)))
        raw = draw(st.text(alphabet=TEXT_ALPHABET, min_size=n, max_size=n))
        value = " ".join(raw.split(" "))
        value = " ".join(part for part in value.split(" ") if part)
        return value + "x" * (n - len(value))

    return token()


texts = tokens(80)
long_texts = tokens(254)
KINDS = ("phone", "mobile", "fax", "email", "url")
POSITIONS = sorted(LIVE | MARKED | UNKNOWN)
ID_POOL = [mid(i) for i in range(1, 9)]  # small: repeated mobileIds are frequent
ANY_ID = st.sampled_from(ID_POOL)
CUSTOMER_POOL = ("10001", "10002", "C.3")

contacts = st.builds(Contact, kind=st.sampled_from(KINDS), value=long_texts)
addresses = st.builds(Address, street=st.none() | texts, postal_code=st.none() | tokens(16), city=texts,
                      country=st.from_regex(r"[A-Z]{2}", fullmatch=True))


# For the R12 sequences, where only ids matter: cheap texts, so that more sequences are tried.
light_texts = st.sampled_from(("Nowak", "A&B <x>", "Ząb 😀"))
light_contacts = st.lists(st.builds(Contact, kind=st.sampled_from(KINDS), value=light_texts), max_size=1)


def returned_persons(ids=ANY_ID, light=False):
    text = light_texts if light else texts
    return st.builds(ReturnedPerson, mobile_id=ids, surname=text, first_name=st.none() | text,
                     position=st.none() | st.sampled_from(POSITIONS),
                     contacts=(light_contacts if light else st.lists(contacts, max_size=3)).map(tuple))


def new_customers(ids=ANY_ID, person_ids=ANY_ID, light=False):
    text = light_texts if light else texts
    return st.builds(NewCustomer, mobile_id=ids, name=text, tax_id=st.none() | st.just("PL1") if light
                     else st.none() | codes, address=st.none() if light else st.none() | addresses,
                     contacts=(light_contacts if light else st.lists(contacts, max_size=3)).map(tuple),
                     persons=st.lists(returned_persons(person_ids, light), max_size=4).map(tuple))


def returned_customers(person_ids=ANY_ID, light=False):
    return st.builds(ReturnedCustomer, id=st.sampled_from(CUSTOMER_POOL) if light
                     else st.sampled_from(CUSTOMER_POOL) | codes,
                     persons=st.lists(returned_persons(person_ids, light), max_size=4).map(tuple),
                     deleted_partners=st.lists(st.sampled_from(("P1", "P2")) if light else codes,
                                               max_size=3).map(tuple))


rules_strategy = st.builds(ImportRules, channel=st.sampled_from((CHANNEL, "MOBILE-DE")),
                           sales_classification=st.sampled_from(("Sales", "Vertrieb", "S.1")),
                           import_method=st.sampled_from(("Business", "Work_1")),
                           live_occupations=st.sampled_from((LIVE, frozenset(), LIVE | MARKED)))


def documents(ids=ANY_ID, person_ids=ANY_ID, light=False):
    """One return package's records: NewCustomers first, then Customers (FORMATS.md)."""
    return st.tuples(st.lists(new_customers(ids, person_ids, light), max_size=4),
                     st.lists(returned_customers(person_ids, light), max_size=3)).map(lambda t: t[0] + t[1])


@st.composite
def sequences(draw, ids=ANY_ID, person_ids=ANY_ID):
    """Several documents; some records repeated verbatim, in the same or a later document."""
    docs = draw(st.lists(documents(ids, person_ids, light=True), min_size=1, max_size=5))
    pool = [r for records in docs for r in records]
    if pool:
        for i, records in enumerate(docs):
            records = records + draw(st.lists(st.sampled_from(pool), max_size=2))
            docs[i] = ([r for r in records if isinstance(r, NewCustomer)]
                       + [r for r in records if not isinstance(r, NewCustomer)])
    return docs


PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def apply(record, known, rules, organizations=None) -> ImportOutcome:
    if isinstance(record, NewCustomer):
        return apply_new_customer(record, known, rules, organizations)
    return apply_returned_customer(record, known, rules)


def run_documents(docs, rules, initial=frozenset()):
    """The shell's R12 memory: ledger ids from earlier documents plus ids created earlier in this one,
    and which of them are organizations."""
    ledger = set(initial)
    ledger_organizations = set(initial)
    results = []  # per document: [(record, outcome), ...]
    for records in docs:
        in_document: set[str] = set()
        organizations_in_document: set[str] = set()
        pairs = []
        for record in records:
            out = apply(record, ledger | in_document, rules, ledger_organizations | organizations_in_document)
            in_document.update(out.created)
            organizations_in_document.update(out.created_organizations)
            pairs.append((record, out))
        ledger |= in_document
        ledger_organizations |= organizations_in_document
        results.append(pairs)
    return results


@PROPERTY
@given(record=st.one_of(new_customers(), returned_customers()), known=st.sets(st.sampled_from(ID_POOL)),
       rules=rules_strategy)
def test_R9_R10_R11_property_every_person(record, known, rules):
    out = apply(record, known, rules)
    for p in out.persons:
        assert p.classifications == (rules.sales_classification,)  # R9: exactly the configured one
        assert (p.employee_of is None) != (p.employee_of_new is None)  # R10: exactly one employer
        if isinstance(record, NewCustomer):
            assert p.employee_of_new == external_id(record.mobile_id)
        else:
            assert p.employee_of == record.id
        assert all(c.method == rules.import_method and c.preferred is False for c in p.communications)  # R11
    for o in out.organizations:
        assert all(c.method == rules.import_method for c in o.communications)  # R11
        assert o.sales_channel == rules.channel
    # the persons are the record's new ones, first occurrence each, in order, content carried over
    if isinstance(record, NewCustomer):
        taken = set(known) | {record.mobile_id}
    else:
        taken = set(known)
    expected = []
    for source in record.persons:
        if source.mobile_id in taken:
            continue
        taken.add(source.mobile_id)
        expected.append(source)
    assert [p.external_id for p in out.persons] == [external_id(s.mobile_id) for s in expected]
    for p, s in zip(out.persons, expected):
        assert (p.surname, p.first_name) == (s.surname, s.first_name)
        assert [(c.kind, c.value) for c in p.communications] == [(c.kind, c.value) for c in s.contacts]


@PROPERTY
@given(record=st.one_of(new_customers(), returned_customers()), known=st.sets(st.sampled_from(ID_POOL)),
       rules=rules_strategy)
def test_R13_property_positions_not_live_are_left_out_with_a_warning(record, known, rules):
    out = apply(record, known, rules)
    owner = record.mobile_id if isinstance(record, NewCustomer) else record.id
    by_id = {}
    for s in record.persons:
        by_id.setdefault(s.mobile_id, s)
    warnings = [d for d in out.decisions if d.rule == "R13"]
    expected_warnings = []
    for p in out.persons:
        source = by_id[p.external_id.removeprefix("mobile:")]
        if source.position in rules.live_occupations:
            assert p.occupation == source.position
        else:
            assert p.occupation is None
            if source.position is not None:
                expected_warnings.append((owner, source.mobile_id, source.position))
    assert [(d.customer, d.partner, d.code, d.outcome, d.subject) for d in warnings] == [
        (c, m, code, "warning", "contact person") for c, m, code in expected_warnings]


@PROPERTY
@given(record=returned_customers(), known=st.sets(st.sampled_from(ID_POOL)))
def test_R14_property_deleted_contact_persons_become_removals(record, known):
    out = apply_returned_customer(record, known, RULES)
    assert out.removals == [ContactPersonRemoval(record.id, p) for p in record.deleted_partners]
    assert [d for d in out.decisions if d.rule == "R14"] == [r14(record.id, p) for p in record.deleted_partners]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=sequences(), rules=rules_strategy,
       initial=st.sets(st.sampled_from(ID_POOL), max_size=2))
def test_R12_property_nothing_created_twice_over_a_sequence_of_documents(docs, rules, initial):
    results = run_documents(docs, rules, initial)
    seen = set(initial)
    organizations = set(initial)  # run_documents treats the initial ids as organizations
    created_ever: list[str] = []
    external_ids: list[str] = []
    for pairs in results:
        for record, out in pairs:
            # the model: in processing order, a mobileId is created at its first occurrence only;
            # a NewCustomer whose id is already a person creates nothing at all (no employer for R10)
            expected_created = []
            not_created = 0
            if isinstance(record, NewCustomer) and record.mobile_id in seen and record.mobile_id not in organizations:
                ids = []
                not_created = 1
            else:
                ids = ([record.mobile_id] if isinstance(record, NewCustomer) else []) + \
                    [p.mobile_id for p in record.persons]
            for m in ids:
                if m in seen:
                    not_created += 1
                else:
                    seen.add(m)
                    expected_created.append(m)
                    if isinstance(record, NewCustomer) and m == record.mobile_id:
                        organizations.add(m)
            assert out.created == expected_created
            # the ledger keeps the R12 memory from these decisions (mobile_ids): one per created id, in order
            assert [d.partner or d.customer for d in out.decisions if d.outcome == "created"] == expected_created
            assert [d.partner is None for d in out.decisions if d.outcome == "created"] == \
                [m in out.created_organizations for m in expected_created]
            assert sum(1 for d in out.decisions if d.rule == "R12" and d.outcome == "not created") == not_created
            assert [o.external_id for o in out.organizations] + [p.external_id for p in out.persons] == \
                [external_id(m) for m in expected_created]
            created_ever += out.created
            external_ids += [o.external_id for o in out.organizations] + [p.external_id for p in out.persons]
            # a person under a NewCustomer imported earlier still points at it
            if isinstance(record, NewCustomer):
                assert all(p.employee_of_new == external_id(record.mobile_id) for p in out.persons)
    assert len(created_ever) == len(set(created_ever))  # no mobileId created twice
    assert len(external_ids) == len(set(external_ids))  # no externalId created twice
    assert set(created_ever) == seen - set(initial)  # and every new one created once


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=sequences(), rules=rules_strategy)
def test_R12_property_employee_of_new_points_at_something_created_in_this_or_an_earlier_outcome(docs, rules):
    created_so_far: set[str] = set()
    for pairs in run_documents(docs, rules):
        for _record, out in pairs:
            created_so_far |= {o.external_id for o in out.organizations} | {p.external_id for p in out.persons}
            for p in out.persons:
                if p.employee_of_new is not None:
                    assert p.employee_of_new in created_so_far


def _check_employee_of_new_points_at_organizations(docs, rules):
    organizations: set[str] = set()
    for pairs in run_documents(docs, rules):
        for _record, out in pairs:
            organizations |= {o.external_id for o in out.organizations}
            for p in out.persons:
                if p.employee_of_new is not None:
                    assert p.employee_of_new in organizations, (p, sorted(organizations))


# NewCustomer ids and person ids drawn from disjoint pools: no id is ever both.
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(docs=sequences(ids=st.sampled_from(ID_POOL[:4]), person_ids=st.sampled_from(ID_POOL[4:])),
       rules=rules_strategy)
def test_R10_R12_property_employee_of_new_points_at_an_organization_when_ids_are_not_shared(docs, rules):
    _check_employee_of_new_points_at_organizations(docs, rules)


CROSS_KIND = [
    [[ReturnedCustomer("10001", (ReturnedPerson(mid(5), "Nowak", None, None, ()),), ())],
     [NewCustomer(mid(5), "Firma", None, None, (), (ReturnedPerson(mid(6), "Kos", None, None, ()),))]],
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(docs=CROSS_KIND[0], rules=RULES)
@given(docs=sequences(), rules=rules_strategy)
def test_R10_R12_property_every_employee_of_new_points_at_an_organization(docs, rules):
    """The brief's invariant, over shared mobileIds (orgs and persons share one space, R12)."""
    _check_employee_of_new_points_at_organizations(docs, rules)


# ---------------------------------------------------- serialization and the XSD


@PROPERTY
@given(records=documents(), known=st.sets(st.sampled_from(ID_POOL), max_size=3), rules=rules_strategy)
def test_property_import_document_is_valid_and_carries_every_text_exactly(records, known, rules):
    known = set(known)
    outs = []
    for record in records:
        out = apply(record, known, rules)
        known.update(out.created)
        outs.append(out)
    root = parse_valid(document(outs, channel=rules.channel))
    organizations = [o for out in outs for o in out.organizations]
    persons = [p for out in outs for p in out.persons]
    removals = [r for out in outs for r in out.removals]
    # organizations first, then persons, then removals
    tags = [etree.QName(el).localname for el in root]
    assert tags == ["Organization"] * len(organizations) + ["Person"] * len(persons) + \
        ["ContactPersonRemoval"] * len(removals)
    for el, o in zip(root.findall(NS + "Organization"), organizations):
        assert el.get("externalId") == o.external_id
        assert el.findtext(NS + "Name") == o.name
        assert el.findtext(NS + "TaxId") == o.tax_id
        a = el.find(NS + "Address")
        if o.address is None:
            assert a is None
        else:
            assert Address(a.findtext(NS + "Street"), a.findtext(NS + "PostalCode"), a.findtext(NS + "City"),
                           a.findtext(NS + "Country")) == o.address
        assert tuple(Communication(c.get("kind"), c.get("method"), c.text)
                     for c in el.findall(NS + "Communication")) == o.communications
        assert el.find(NS + "SalesChannelAssignment").get("salesChannel") == rules.channel
    for el, p in zip(root.findall(NS + "Person"), persons):
        assert el.get("externalId") == p.external_id
        assert el.findtext(NS + "Surname") == p.surname
        assert el.findtext(NS + "FirstName") == p.first_name
        assert el.findtext(NS + "Occupation") == p.occupation
        assert [c.text for c in el.findall(NS + "Classification")] == [rules.sales_classification]
        assert tuple(Communication(c.get("kind"), c.get("method"), c.text)
                     for c in el.findall(NS + "Communication")) == p.communications
        employers = [(etree.QName(c).localname, dict(c.attrib)) for c in el
                     if etree.QName(c).localname in ("EmployeeOf", "EmployeeOfNew")]
        assert employers == ([("EmployeeOf", {"customer": p.employee_of})] if p.employee_of is not None
                             else [("EmployeeOfNew", {"externalId": p.employee_of_new})])
    assert [ContactPersonRemoval(el.get("customer"), el.get("partner"))
            for el in root.findall(NS + "ContactPersonRemoval")] == removals


@settings(max_examples=100, deadline=None)
@given(name=texts, surname=texts, value=long_texts)
def test_property_special_characters_survive_serialization(name, surname, value):
    out = apply_new_customer(NewCustomer(mid(1), name, None, None, (Contact("email", value),),
                                         (ReturnedPerson(mid(2), surname, None, None, ()),)), set(), RULES)
    root = parse_valid(document([out]))
    assert root.find(NS + "Organization").findtext(NS + "Name") == name
    assert root.find(NS + "Organization").findtext(NS + "Communication") == value
    assert root.find(NS + "Person").findtext(NS + "Surname") == surname


def test_serialization_of_xml_specials_by_example():
    out = apply_new_customer(nc(1, 'A&B <Sp. z o.o.> "Ząb" ]]> €😀', contacts=[Contact("url", "http://x/?a=1&b=2")],
                                persons=[rp(2, "O'Brien & <Söhne>")]), set(), RULES)
    xml = document([out])
    assert "A&amp;B &lt;Sp. z o.o.&gt;" in xml and "]]&gt;" in xml
    root = parse_valid(xml)
    assert root.find(NS + "Organization").findtext(NS + "Name") == 'A&B <Sp. z o.o.> "Ząb" ]]> €😀'
    assert root.find(NS + "Person").findtext(NS + "Surname") == "O'Brien & <Söhne>"
