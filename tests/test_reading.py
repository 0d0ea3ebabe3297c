"""Values are read as the schema reads them (the parsing edge of both transforms).

A comment or processing instruction inside a value is not part of it: the
schema validates ``Sal<!-- x -->es`` as ``Sales``. lxml's ``.text`` stops at
the first one; :func:`exchange.xml.safe.records` parses without them, so
that the text around them is joined.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from hypothesis import given, settings
from hypothesis import strategies as st
from workspace_util import comm, customer, customers, person

from exchange.xml import cee, returned, safe

_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc", "Cn")), min_size=1, max_size=12)
_INSERT = st.sampled_from(["<!-- a comment -->", "<!---->", "<?pi some data?>", "<?pi?>"])


@st.composite
def _cut(draw) -> tuple[str, str]:
    """A value, and its XML text with comments or processing instructions inside."""
    parts = draw(st.lists(_TEXT, min_size=1, max_size=4))
    inserts = [draw(_INSERT) for _ in parts[1:]]
    xml = escape(parts[0]) + "".join(insert + escape(part) for insert, part in zip(inserts, parts[1:]))
    return "".join(parts), xml


def _customer(data: bytes):
    (record,) = [cee.customer(el) for el in safe.records(io.BytesIO(data), (cee.CUSTOMER,))]
    return record


@settings(max_examples=200, deadline=None)
@given(name=_cut(), surname=_cut(), value=_cut())
def test_a_cee_value_is_whole_whatever_sits_inside_it(name, surname, value):
    expected = customers("CU-1", "2026-11-28T01:00:00Z", records=[customer(
        "10001", name[0], comms=[comm("phone", "Business", value[0])],
        persons=[person("50001", surname[0], classifications=["Sales"])])])
    cut = (expected.replace(f"<Name>{escape(name[0])}<".encode(), f"<Name>{name[1]}<".encode())
           .replace(f"<Surname>{escape(surname[0])}<".encode(), f"<Surname>{surname[1]}<".encode())
           .replace(f'method="Business">{escape(value[0])}<'.encode(), f'method="Business">{value[1]}<'.encode())
           .replace(b"<Classification>Sales<", b"<Classification>Sa<!-- x -->l<?y?>es<"))
    record = _customer(cut)
    assert record == _customer(expected)
    assert record.contact_persons[0].classifications == ("Sales",)


def test_a_returned_value_is_whole_whatever_sits_inside_it():
    data = (b'<ReturnedCustomers xmlns="urn:cee-mobile:from-mobile:v1" device="T" representative="R" '
            b'createdAt="2026-11-27T16:45:00+01:00"><NewCustomer mobileId="0c1a2b3c-0000-4000-8000-000000000001" '
            b'createdAt="2026-11-27T15:10:00+01:00"><Name>Firma <!-- x -->Zie<?p?>lona</Name></NewCustomer>'
            b'</ReturnedCustomers>')
    (record,) = [returned.new_customer(el) for el in safe.records(io.BytesIO(data), (returned.NEW_CUSTOMER,))]
    assert record.name == "Firma Zielona"
