"""Synthetic CEE exports for benchmarks (FORMATS.md, section 1).

Importable::

    from generate import CustomerExportGenerator, write_customer_export, write_masterdata_export

    stats = write_customer_export("bench/out/customers.xml", target_bytes=100 << 20, seed=1)

or from the command line::

    python bench/generate.py customers OUT.xml --mb 100 [--seed 1]
    python bench/generate.py masterdata OUT.xml [--seed 1]

A ``CustomerExport`` is streamed to disk in chunks of about 1 MiB, so memory
stays flat whatever the size (the only state kept across customers is a
ring of recent partner numbers, of fixed length). The output is a pure
function of the arguments: the same seed and size give the same bytes.
``--mb`` counts MiB (2**20 bytes); the file ends within a couple of KiB of
the target.

What the customers look like (the FORMATS.md example, scaled up):

* unique, increasing customer numbers; about 2 % inactive (``active="false"``),
  some with an explicit ``active="true"``;
* a name (a few with ``&amp;`` and non-ASCII letters), usually a tax id and
  an address (street and postal code sometimes missing), in PL, DE, CZ, SK,
  AT, LT;
* 2-3 communications (phone, mobile, fax, email, url), methods ``Business``
  and ``Private`` mixed, some ``preferred="true"``;
* 2-4 contact persons, unique partner numbers within the customer: surname,
  usually a first name, usually an occupation from a small set
  (:data:`KNOWN_OCCUPATIONS`, plus a few :data:`UNKNOWN_OCCUPATIONS` that no
  masterdata export defines), 0-3 classifications with or without ``Sales``,
  0-2 communications; about 10 % ``assignment="contact"`` (a partner number
  that already appeared on an earlier customer), some ``preferred="true"``;
* about 5 % of customers with 1-2 ``RemovedContactPerson``;
* ``DeletedCustomer`` elements at the end (about 1 % of the customer count,
  at least 3), with numbers not used by any ``Customer``.

The masterdata mode writes a ``MasterdataExport`` with every known
occupation code the customer exports use (one of them marked for deletion)
and the communication methods ``Business`` and ``Private``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

NAMESPACE = "urn:cee-mobile:cee-export:v1"
MIB = 1 << 20

#: Occupation codes defined by the masterdata export: (code, description, markedForDeletion).
KNOWN_OCCUPATIONS: tuple[tuple[str, str, bool], ...] = (
    ("SALES_MGR", "Sales manager", False),
    ("BUYER", "Buyer", False),
    ("CEO", "Chief executive officer", False),
    ("CFO", "Chief financial officer", False),
    ("ACCOUNTANT", "Accountant", False),
    ("LOGISTICS_MGR", "Logistics manager", False),
    ("PURCHASER", "Purchasing specialist", False),
    ("ASSISTANT", "Office assistant", False),
    ("OWNER", "Owner", False),
    ("OLD_POS", "Former position", True),
)
#: Occupation codes that appear on contact persons but in no masterdata export.
UNKNOWN_OCCUPATIONS: tuple[str, ...] = ("X_EXTERN", "INTERN.2019", "TMP-CONSULT")
_CURRENT_OCCUPATIONS = tuple(code for code, _, deleted in KNOWN_OCCUPATIONS if not deleted)
_RETIRED_OCCUPATIONS = tuple(code for code, _, deleted in KNOWN_OCCUPATIONS if deleted)
COMMUNICATION_METHODS: tuple[tuple[str, bool], ...] = (("Business", True), ("Private", False))
CLASSIFICATIONS: tuple[str, ...] = ("Purchasing", "Logistics", "Finance", "Marketing", "Service", "Management")

# (display name, ASCII slug); display names are already XML-escaped.
_COMPANY_STEMS = (
    ("Acme", "acme"), ("Zielona", "zielona"), ("Polmex", "polmex"), ("Baltic Foods", "baltic-foods"),
    ("Hurtownia Wisła", "hurtownia-wisla"), ("Łódzkie Młyny", "lodzkie-mlyny"), ("Kowalski &amp; Synowie", "kowalski"),
    ("Nordwind", "nordwind"), ("Müller &amp; Söhne", "mueller"), ("Bergmann Technik", "bergmann"),
    ("Vltava Obchod", "vltava"), ("Tatra Trade", "tatra"), ("Dunaj Handel", "dunaj"), ("Amber Logistics", "amber"),
    ("Mazowsze Agro", "mazowsze"), ("Śląska Stal", "slaska-stal"), ("Fenix", "fenix"), ("Orion Pharma", "orion"),
    ("Kraków Papier", "krakow-papier"), ("Rheinland Metall", "rheinland"), ("Alpen Getränke", "alpen"),
    ("Vilnius Prekyba", "vilnius"), ("Novák a spol.", "novak"), ("Pomorskie Ryby", "pomorskie-ryby"),
    ("Sokół", "sokol"), ("Bałtyk Serwis", "baltyk"), ("Eko-Dom", "eko-dom"), ("Gdańsk Port Services", "gdansk-port"),
)
_COMPANY_KINDS = (
    "Trading", "Hurt", "Dystrybucja", "Handel", "Logistik", "Services", "Group", "Import-Export", "Budownictwo",
    "Technik", "Consulting", "Retail",
)
_LEGAL_FORMS = {
    "PL": ("Sp. z o.o.", "S.A.", "Sp.j.", "s.c."),
    "DE": ("GmbH", "AG", "KG", "GmbH &amp; Co. KG"),
    "AT": ("GmbH", "AG", "KG"),
    "CZ": ("s.r.o.", "a.s."),
    "SK": ("s.r.o.", "a.s."),
    "LT": ("UAB", "AB"),
}
_PLACES = {
    # country: (phone prefix, ((city, area code), ...), (street prefix, (street names)))
    "PL": ("+48", (("Warszawa", "22"), ("Kraków", "12"), ("Łódź", "42"), ("Wrocław", "71"), ("Poznań", "61"),
                   ("Gdańsk", "58"), ("Szczecin", "91"), ("Lublin", "81"), ("Katowice", "32"), ("Białystok", "85")),
           ("ul.", ("Prosta", "Marszałkowska", "Długa", "Krótka", "Polna", "Leśna", "Słoneczna", "Kościuszki",
                    "Piłsudskiego", "Mickiewicza", "Żeromskiego", "Grunwaldzka"))),
    "DE": ("+49", (("Berlin", "30"), ("Hamburg", "40"), ("München", "89"), ("Köln", "221"), ("Leipzig", "341"),
                   ("Dresden", "351")),
           ("", ("Hauptstraße", "Bahnhofstraße", "Gartenweg", "Schillerstraße", "Industriestraße", "Am Markt"))),
    "AT": ("+43", (("Wien", "1"), ("Graz", "316"), ("Linz", "732"), ("Salzburg", "662")),
           ("", ("Ringstraße", "Mariahilfer Straße", "Landstraße", "Gewerbepark"))),
    "CZ": ("+420", (("Praha", "2"), ("Brno", "5"), ("Ostrava", "59"), ("Plzeň", "37")),
           ("", ("Národní", "Vodičkova", "Masarykova", "Průmyslová"))),
    "SK": ("+421", (("Bratislava", "2"), ("Košice", "55"), ("Žilina", "41")),
           ("", ("Hlavná", "Obchodná", "Priemyselná"))),
    "LT": ("+370", (("Vilnius", "5"), ("Kaunas", "37"), ("Klaipėda", "46")),
           ("", ("Gedimino pr.", "Laisvės al.", "Pramonės g."))),
}
_COUNTRY_WEIGHTS = (("PL", 70), ("DE", 12), ("CZ", 6), ("SK", 4), ("AT", 4), ("LT", 4))
_COUNTRIES = tuple(c for c, w in _COUNTRY_WEIGHTS for _ in range(w))
# (display, ascii) pairs
_SURNAMES = (
    ("Kowalska", "kowalska"), ("Nowak", "nowak"), ("Wiśniewski", "wisniewski"), ("Wójcik", "wojcik"),
    ("Kamińska", "kaminska"), ("Lewandowski", "lewandowski"), ("Zielińska", "zielinska"), ("Szymański", "szymanski"),
    ("Woźniak", "wozniak"), ("Dąbrowska", "dabrowska"), ("Kozłowski", "kozlowski"), ("Jankowska", "jankowska"),
    ("Mazur", "mazur"), ("Krawczyk", "krawczyk"), ("Piotrowski", "piotrowski"), ("Grabowska", "grabowska"),
    ("Schmidt", "schmidt"), ("Müller", "mueller"), ("Schneider", "schneider"), ("Fischer", "fischer"),
    ("Weber", "weber"), ("Becker", "becker"), ("Novák", "novak"), ("Dvořák", "dvorak"), ("Svoboda", "svoboda"),
    ("Horváth", "horvath"), ("Kazlauskas", "kazlauskas"), ("O'Brien", "obrien"), ("Kowalczyk-Nowak", "kowalczyk"),
)
_FIRST_NAMES = (
    ("Anna", "anna"), ("Piotr", "piotr"), ("Katarzyna", "katarzyna"), ("Tomasz", "tomasz"), ("Małgorzata", "malgorzata"),
    ("Paweł", "pawel"), ("Agnieszka", "agnieszka"), ("Krzysztof", "krzysztof"), ("Joanna", "joanna"),
    ("Michał", "michal"), ("Ewa", "ewa"), ("Łukasz", "lukasz"), ("Jürgen", "juergen"), ("Sabine", "sabine"),
    ("Stefan", "stefan"), ("Jana", "jana"), ("Jiří", "jiri"), ("Lukas", "lukas"), ("Rūta", "ruta"), ("Marek", "marek"),
)
_KINDS_CUSTOMER = ("phone", "phone", "phone", "email", "email", "fax", "url", "mobile")
_KINDS_PERSON = ("email", "email", "mobile", "mobile", "phone")
_PRIVATE_MAIL = ("home.example", "poczta.example", "mail.example", "web.example")


@dataclass
class Stats:
    """What a generator wrote."""

    bytes: int = 0
    customers: int = 0
    inactive: int = 0
    deleted: int = 0
    contact_persons: int = 0
    contact_assignments: int = 0
    removed_contact_persons: int = 0
    communications: int = 0

    @property
    def records(self) -> int:
        """Top-level records (``Customer`` + ``DeletedCustomer``), as ``exchange validate`` counts them."""
        return self.customers + self.deleted


def address(rng: random.Random, country: str, city: str, street_prefix: str, streets: tuple[str, ...], *,
            p_address: float, p_street: float, p_postal: float, before_city: str = "") -> str | None:
    """An Address element, or None (with probability 1 - ``p_address``): street and postal
    code each with their own probability. Exports and return packages share it, each with
    its own probabilities and layout (``before_city``)."""
    if rng.random() >= p_address:
        return None
    street = ""
    if rng.random() < p_street:
        sp = f"{street_prefix} " if street_prefix else ""
        street = f"<Street>{sp}{rng.choice(streets)} {rng.randrange(1, 200)}</Street>"
    postal = ""
    if rng.random() < p_postal:
        postal = f"<PostalCode>{postal_code(rng, country)}</PostalCode>"
    return f"<Address>{street}{postal}{before_city}<City>{city}</City><Country>{country}</Country></Address>"


def postal_code(rng: random.Random, country: str) -> str:
    """A postal code in the country's usual shape."""
    if country == "PL":
        return f"{rng.randrange(100):02d}-{rng.randrange(1000):03d}"
    if country in ("CZ", "SK"):
        return f"{rng.randrange(100, 1000)} {rng.randrange(100):02d}"
    if country == "AT":
        return f"{rng.randrange(1000, 10000)}"
    if country == "LT":
        return f"LT-{rng.randrange(10000, 100000)}"
    return f"{rng.randrange(10000, 100000)}"


class CustomerExportGenerator:
    """Yields a ``CustomerExport`` as UTF-8 chunks; :attr:`stats` is complete once exhausted."""

    def __init__(self, target_bytes: int, seed: int = 1, sales_channel: str = "MOBILE-PL",
                 changed_since: str = "anytime", chunk_bytes: int = MIB):
        if changed_since not in ("anytime", "last-transfer"):
            raise ValueError(f"changed_since must be 'anytime' or 'last-transfer', not {changed_since!r}")
        self.target_bytes = target_bytes
        self.seed = seed
        self.sales_channel = sales_channel
        self.changed_since = changed_since
        self.chunk_bytes = chunk_bytes
        self.stats = Stats()
        self._rng = random.Random(seed)
        self._next_customer = 10000
        self._next_partner = 50000
        self._recent_partners: deque[str] = deque(maxlen=4096)

    # -- pieces ------------------------------------------------------------

    def _header(self) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<CustomerExport xmlns="{NAMESPACE}" exportId="CU-BENCH-{self.seed}-{self.target_bytes}"\n'
            f'    salesChannel="{self.sales_channel}" createdAt="2026-11-27T22:01:00Z" '
            f'changedSince="{self.changed_since}">\n'
        )

    def _phone(self, prefix: str, area: str) -> str:
        r = self._rng.randrange(10_000_000)
        return f"{prefix} {area} {r // 10000:03d} {r // 100 % 100:02d} {r % 100:02d}"

    def _communication(self, kind: str, prefix: str, area: str, domain: str, person: tuple[str, str] | None,
                       preferred: bool) -> str:
        rng = self._rng
        method = "Business" if rng.random() < 0.7 else "Private"
        if kind == "email":
            if method == "Private":
                local = f"{person[0]}.{person[1]}" if person else "owner"
                value = f"{local}{rng.randrange(100)}@{rng.choice(_PRIVATE_MAIL)}"
            else:
                value = f"{person[0]}.{person[1]}@{domain}" if person else f"{rng.choice(('office', 'biuro', 'info', 'sales'))}@{domain}"
        elif kind == "url":
            value = f"https://www.{domain}/"
        elif kind == "mobile":
            value = self._phone(prefix, str(rng.randrange(500, 900)))
        else:
            value = self._phone(prefix, area)
        self.stats.communications += 1
        pref = ' preferred="true"' if preferred else (' preferred="false"' if rng.random() < 0.05 else "")
        return f'<Communication kind="{kind}" method="{method}"{pref}>{value}</Communication>'

    def _customer(self) -> str:
        rng = self._rng
        stats = self.stats
        self._next_customer += 1 + (rng.random() < 0.3)  # gaps, as in a real numbering
        number = str(self._next_customer)
        country = rng.choice(_COUNTRIES)
        prefix, cities, (street_prefix, streets) = _PLACES[country]
        city, area = rng.choice(cities)
        stem, slug = rng.choice(_COMPANY_STEMS)
        name = f"{stem} {rng.choice(_COMPANY_KINDS)} {rng.choice(_LEGAL_FORMS[country])}"
        domain = f"{slug}-{number}.example"

        active = ""
        roll = rng.random()
        if roll < 0.02:
            active = ' active="false"'
            stats.inactive += 1
        elif roll < 0.05:
            active = ' active="true"'
        parts = [f'  <Customer number="{number}"{active}>\n    <Name>{name}</Name>\n']
        if rng.random() < 0.9:
            parts.append(f"    <TaxId>{country}{rng.randrange(10**9, 10**10)}</TaxId>\n")
        element = address(rng, country, city, street_prefix, streets, p_address=0.95, p_street=0.9, p_postal=0.9,
                          before_city="\n      ")
        if element is not None:
            parts.append(f"    {element}\n")
        n_comm = rng.randint(2, 3)
        preferred_at = rng.randrange(n_comm) if rng.random() < 0.6 else -1
        for i in range(n_comm):
            kind = rng.choice(_KINDS_CUSTOMER)
            parts.append(f"    {self._communication(kind, prefix, area, domain, None, i == preferred_at)}\n")

        used: set[str] = set()
        n_persons = rng.randint(2, 4)
        preferred_person = rng.randrange(n_persons) if rng.random() < 0.5 else -1
        for i in range(n_persons):
            attrs = ""
            partner = rng.choice(self._recent_partners) if self._recent_partners and rng.random() < 0.1 else None
            if partner is not None and partner not in used:
                attrs = ' assignment="contact"'  # a partner of an earlier customer
                stats.contact_assignments += 1
            else:
                self._next_partner += 1
                partner = str(self._next_partner)
                self._recent_partners.append(partner)
                if rng.random() < 0.05:
                    attrs = ' assignment="employee"'
            used.add(partner)
            if i == preferred_person:
                attrs += ' preferred="true"'
            surname = rng.choice(_SURNAMES)
            person = [f'    <ContactPerson partner="{partner}"{attrs}>\n      <Surname>{surname[0]}</Surname>']
            first = None
            if rng.random() < 0.85:
                first = rng.choice(_FIRST_NAMES)
                person.append(f"<FirstName>{first[0]}</FirstName>")
            person.append("\n")
            roll = rng.random()
            if roll < 0.03:
                person.append(f"      <Occupation>{rng.choice(UNKNOWN_OCCUPATIONS)}</Occupation>\n")
            elif roll < 0.74:
                person.append(f"      <Occupation>{rng.choice(_CURRENT_OCCUPATIONS)}</Occupation>\n")
            elif roll < 0.75:
                person.append(f"      <Occupation>{rng.choice(_RETIRED_OCCUPATIONS)}</Occupation>\n")
            classes = rng.sample(CLASSIFICATIONS, rng.randint(0, 2))
            if rng.random() < 0.6:
                classes.insert(rng.randint(0, len(classes)), "Sales")
            if classes:
                person.append("      " + "".join(f"<Classification>{c}</Classification>" for c in classes) + "\n")
            who = (first[1] if first else "kontakt", surname[1])
            for _ in range(rng.choice((0, 1, 1, 2))):
                kind = rng.choice(_KINDS_PERSON)
                person.append(f"      {self._communication(kind, prefix, area, domain, who, rng.random() < 0.15)}\n")
            person.append("    </ContactPerson>\n")
            parts.append("".join(person))
            stats.contact_persons += 1
        if rng.random() < 0.05:
            for _ in range(rng.randint(1, 2)):
                if self._recent_partners and rng.random() < 0.5:
                    partner = rng.choice(self._recent_partners)
                else:
                    self._next_partner += 1
                    partner = str(self._next_partner)
                if partner in used:
                    continue
                used.add(partner)
                parts.append(f'    <RemovedContactPerson partner="{partner}"/>\n')
                stats.removed_contact_persons += 1
        parts.append("  </Customer>\n")
        stats.customers += 1
        return "".join(parts)

    # -- the stream ----------------------------------------------------------

    def chunks(self) -> Iterator[bytes]:
        """The document, in chunks of about :attr:`chunk_bytes`."""
        stats = self.stats
        footer = b"</CustomerExport>\n"
        pending: list[bytes] = []
        pending_bytes = 0
        header = self._header().encode()
        pending.append(header)
        pending_bytes += len(header)
        written = len(header)
        while True:
            # Keep room for the DeletedCustomer tail (about 1 % of the customers,
            # ~40 bytes each) and the closing tag.
            reserve = len(footer) + (stats.customers // 100 + 4) * 40
            if written + reserve >= self.target_bytes and stats.customers:
                break
            record = self._customer().encode()
            pending.append(record)
            pending_bytes += len(record)
            written += len(record)
            if pending_bytes >= self.chunk_bytes:
                yield b"".join(pending)
                pending.clear()
                pending_bytes = 0
        for _ in range(max(3, stats.customers // 100)):
            self._next_customer += self._rng.randint(1, 5)
            record = f'  <DeletedCustomer number="{self._next_customer}"/>\n'.encode()
            pending.append(record)
            written += len(record)
            stats.deleted += 1
        pending.append(footer)
        written += len(footer)
        stats.bytes = written
        yield b"".join(pending)


def _open_target(path: str | os.PathLike) -> tuple[BinaryIO, Path | None]:
    """The file to write to: ``-`` is stdout; else ``PATH.part``, renamed once complete."""
    if str(path) == "-":
        return sys.stdout.buffer, None
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    return open(final.with_name(final.name + ".part"), "wb"), final


def _finish(out: BinaryIO, final: Path | None) -> None:
    if final is None:
        out.flush()
        return
    out.close()
    os.replace(final.with_name(final.name + ".part"), final)


def write_customer_export(path: str | os.PathLike, target_bytes: int, seed: int = 1, **options) -> Stats:
    """Write a ``CustomerExport`` of about ``target_bytes`` to ``path`` (``-``: stdout)."""
    generator = CustomerExportGenerator(target_bytes, seed=seed, **options)
    out, final = _open_target(path)
    try:
        for chunk in generator.chunks():
            out.write(chunk)
    except BaseException:
        if final is not None:
            out.close()
            final.with_name(final.name + ".part").unlink(missing_ok=True)
        raise
    _finish(out, final)
    return generator.stats


def masterdata_export(seed: int = 1, sales_channel: str = "MOBILE-PL") -> bytes:
    """A ``MasterdataExport`` defining :data:`KNOWN_OCCUPATIONS` and the communication methods."""
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        f'<MasterdataExport xmlns="{NAMESPACE}" exportId="MD-BENCH-{seed}"\n'
        f'    salesChannel="{sales_channel}" createdAt="2026-11-27T22:00:05Z" changedSince="anytime">\n',
    ]
    for code, description, deleted in KNOWN_OCCUPATIONS:
        marked = ' markedForDeletion="true"' if deleted else ""
        lines.append(f'  <Occupation code="{code}"{marked}><Description>{description}</Description></Occupation>\n')
    for code, display in COMMUNICATION_METHODS:
        lines.append(f'  <CommunicationMethod code="{code}" displayInMobile="{str(display).lower()}"/>\n')
    lines.append("</MasterdataExport>\n")
    return "".join(lines).encode()


def write_masterdata_export(path: str | os.PathLike, seed: int = 1, sales_channel: str = "MOBILE-PL") -> int:
    """Write the masterdata export to ``path`` (``-``: stdout); returns its size."""
    data = masterdata_export(seed, sales_channel)
    out, final = _open_target(path)
    out.write(data)
    _finish(out, final)
    return len(data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write synthetic CEE exports (FORMATS.md section 1).")
    parser.add_argument("mode", choices=("customers", "masterdata"))
    parser.add_argument("out", help="output file ('-' for stdout); written as OUT.part, then renamed")
    parser.add_argument("--mb", type=float, default=100.0, help="target size in MiB (customers; default 100)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1): same seed, same bytes")
    parser.add_argument("--sales-channel", default="MOBILE-PL")
    parser.add_argument("--changed-since", choices=("anytime", "last-transfer"), default="anytime")
    args = parser.parse_args(argv)
    if args.mode == "masterdata":
        size = write_masterdata_export(args.out, seed=args.seed, sales_channel=args.sales_channel)
        print(f"{args.out}: MasterdataExport, {len(KNOWN_OCCUPATIONS)} occupations, {size} bytes", file=sys.stderr)
        return 0
    stats = write_customer_export(args.out, int(args.mb * MIB), seed=args.seed,
                                  sales_channel=args.sales_channel, changed_since=args.changed_since)
    print(f"{args.out}: CustomerExport, {stats.bytes} bytes, {stats.customers} customers "
          f"({stats.inactive} inactive), {stats.deleted} deleted, {stats.contact_persons} contact persons "
          f"({stats.contact_assignments} assigned as contact), {stats.removed_contact_persons} removed, "
          f"{stats.communications} communications", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
