"""Synthetic return packages from Mobile for benchmarks (FORMATS.md section 2,
"From Mobile" and "Manifest").

Importable::

    from generate_returns import ReturnedCustomersGenerator, write_return_package

    stats = write_return_package("bench/out/RET_MOBILE-PL_00000001.zip", target_bytes=200 << 20, seed=1)

or from the command line::

    python bench/generate_returns.py OUT.zip --mb 200 [--seed 1] [--check]

A package is a ZIP holding ``manifest.xml`` (direction ``from-mobile``, the
entry's ``records``, ``bytes`` and ``sha256`` exact) and ``customers.xml``, a
``ReturnedCustomers`` document of about ``--mb`` MiB (2**20 bytes; it ends
within a couple of KiB of the target). Memory stays flat whatever the size:
``customers.xml`` is streamed in chunks of about 1 MiB to a temporary file
beside the output while it is hashed and counted, the manifest is written
from those figures, and the temporary file is then streamed into the ZIP.
The output is a pure function of the arguments: the same seed and size give
the same bytes (fixed member timestamps, the same zlib level).

What the document looks like (the FORMATS.md example, scaled up):

* ``NewCustomer`` records first (``--new-share`` of the bytes, default 0.4):
  a mobileId and a createdAt during the device's day; a name (some with
  ``&amp;`` and non-ASCII letters), a tax id on about half of them, an
  address on most (street and postal code sometimes missing) in PL, DE, CZ,
  SK, AT, LT; 0-3 ``Contact`` elements (phone, mobile, fax, email, url);
  0-3 ``ContactPerson`` elements;
* then ``Customer`` records (existing CEE customers, unique increasing
  numbers): 0-3 ``ContactPerson`` elements added on the device, then 0-2
  ``DeletedContactPerson`` (partner numbers, unique within the customer),
  never both empty;
* a ``ContactPerson`` has a mobileId, a surname, usually a first name, often
  a ``Position``: mostly a live occupation code of the masterdata export
  that ``bench/generate.py`` writes (:data:`generate.KNOWN_OCCUPATIONS`),
  a few of its retired code and of :data:`generate.UNKNOWN_OCCUPATIONS`
  (R13 warnings); 0-2 contacts.

mobileIds are lower-case version-4 UUIDs drawn from the seeded generator
(122 random bits each: a collision among even 10**8 of them has a
probability below 10**-20), so they are unique without remembering them.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sys
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import generate  # bench/generate.py: occupation codes, names and places

NAMESPACE = "urn:cee-mobile:from-mobile:v1"
MANIFEST_NAMESPACE = "urn:cee-mobile:manifest:v1"
MIB = 1 << 20
DATA_FILE = "customers.xml"
#: Timestamps of the ZIP members (fixed, so that the package is reproducible).
_ZIP_TIME = (2026, 11, 27, 16, 45, 0)
_DAY = "2026-11-27"
_ZONE = "+01:00"

#: Position codes the masterdata export of bench/generate.py defines as live, and retired.
LIVE_POSITIONS: tuple[str, ...] = tuple(code for code, _, deleted in generate.KNOWN_OCCUPATIONS if not deleted)
RETIRED_POSITIONS: tuple[str, ...] = tuple(code for code, _, deleted in generate.KNOWN_OCCUPATIONS if deleted)
UNKNOWN_POSITIONS: tuple[str, ...] = tuple(generate.UNKNOWN_OCCUPATIONS)

# Names and places as in the CEE exports (display names already XML-escaped).
_COMPANY_STEMS = generate._COMPANY_STEMS
_LEGAL_FORMS = generate._LEGAL_FORMS
_PLACES = generate._PLACES
_COUNTRIES = generate._COUNTRIES
_SURNAMES = generate._SURNAMES
_FIRST_NAMES = generate._FIRST_NAMES
# What a representative types for a shop or firm met on the road.
_SHOP_KINDS = {
    "PL": ("Sklep", "Hurtownia", "Market", "Delikatesy", "Apteka", "Piekarnia", "Kiosk", "Restauracja"),
    "DE": ("Getränkemarkt", "Bäckerei", "Apotheke", "Handel", "Gasthaus"),
    "AT": ("Getränkemarkt", "Bäckerei", "Apotheke", "Handel", "Gasthaus"),
    "CZ": ("Obchod", "Potraviny", "Lékárna", "Pekárna"),
    "SK": ("Obchod", "Potraviny", "Lekáreň", "Pekáreň"),
    "LT": ("Prekyba", "Parduotuvė", "Vaistinė", "Kepykla"),
}
_KINDS_CUSTOMER = ("phone", "phone", "phone", "mobile", "email", "email", "fax", "url")
_KINDS_PERSON = ("email", "email", "mobile", "mobile", "phone")
_PRIVATE_MAIL = ("home.example", "poczta.example", "mail.example", "web.example")


@dataclass
class Stats:
    """What a generator wrote."""

    bytes: int = 0
    sha256: str = ""
    new_customers: int = 0
    customers: int = 0
    persons_of_new: int = 0  # ContactPerson under NewCustomer
    persons_added: int = 0  # ContactPerson under Customer
    deleted_persons: int = 0  # DeletedContactPerson
    contacts: int = 0
    positions_live: int = 0
    positions_retired: int = 0
    positions_unknown: int = 0
    package_bytes: int = 0

    @property
    def records(self) -> int:
        """Top-level records (``NewCustomer`` + ``Customer``), as the manifest counts them."""
        return self.new_customers + self.customers


class ReturnedCustomersGenerator:
    """Yields a ``ReturnedCustomers`` document as UTF-8 chunks; :attr:`stats` is complete once exhausted."""

    def __init__(self, target_bytes: int, seed: int = 1, new_share: float = 0.4, device: str = "TAB-017",
                 representative: str = "REP-03", chunk_bytes: int = MIB):
        if not 0.0 <= new_share <= 1.0:
            raise ValueError(f"new_share must be within 0..1, not {new_share!r}")
        self.target_bytes = target_bytes
        self.seed = seed
        self.new_share = new_share
        self.device = device
        self.representative = representative
        self.chunk_bytes = chunk_bytes
        self.created_at = f"{_DAY}T16:45:00{_ZONE}"
        self.stats = Stats()
        self._rng = random.Random(seed)
        self._next_customer = 10000
        self._next_new = 0

    # -- pieces ------------------------------------------------------------

    def _header(self) -> str:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<ReturnedCustomers xmlns="{NAMESPACE}" device="{self.device}"\n'
            f'    representative="{self.representative}" createdAt="{self.created_at}">\n'
        )

    def _mobile_id(self) -> str:
        return str(uuid.UUID(int=self._rng.getrandbits(128), version=4))

    def _phone(self, prefix: str, area: str) -> str:
        r = self._rng.randrange(10_000_000)
        return f"{prefix} {area} {r // 10000:03d} {r // 100 % 100:02d} {r % 100:02d}"

    def _contact(self, kind: str, prefix: str, area: str, domain: str, person: tuple[str, str] | None) -> str:
        rng = self._rng
        if kind == "email":
            if person is None:
                value = f"{rng.choice(('biuro', 'info', 'sklep', 'zamowienia', 'office'))}@{domain}"
            elif rng.random() < 0.3:
                value = f"{person[0]}.{person[1]}{rng.randrange(100)}@{rng.choice(_PRIVATE_MAIL)}"
            else:
                value = f"{person[0]}.{person[1]}@{domain}"
        elif kind == "url":
            value = f"https://www.{domain}/"
        elif kind == "mobile":
            value = self._phone(prefix, str(rng.randrange(500, 900)))
        else:
            value = self._phone(prefix, area)
        self.stats.contacts += 1
        return f'<Contact kind="{kind}">{value}</Contact>'

    def _person(self, indent: str, prefix: str, area: str, domain: str) -> str:
        rng = self._rng
        stats = self.stats
        surname = rng.choice(_SURNAMES)
        parts = [f'{indent}<ContactPerson mobileId="{self._mobile_id()}">\n{indent}  <Surname>{surname[0]}</Surname>']
        first = None
        if rng.random() < 0.8:
            first = rng.choice(_FIRST_NAMES)
            parts.append(f"<FirstName>{first[0]}</FirstName>")
        roll = rng.random()
        code = None
        if roll < 0.55:
            code = rng.choice(LIVE_POSITIONS)
            stats.positions_live += 1
        elif roll < 0.58:
            code = rng.choice(RETIRED_POSITIONS)
            stats.positions_retired += 1
        elif roll < 0.61:
            code = rng.choice(UNKNOWN_POSITIONS)
            stats.positions_unknown += 1
        if code is not None:
            parts.append(f'<Position code="{code}"/>')
        parts.append("\n")
        who = (first[1] if first else "kontakt", surname[1])
        for _ in range(rng.choice((0, 1, 1, 2))):
            parts.append(f"{indent}  {self._contact(rng.choice(_KINDS_PERSON), prefix, area, domain, who)}\n")
        parts.append(f"{indent}</ContactPerson>\n")
        return "".join(parts)

    def _new_customer(self) -> str:
        rng = self._rng
        stats = self.stats
        self._next_new += 1
        country = rng.choice(_COUNTRIES)
        prefix, cities, (street_prefix, streets) = _PLACES[country]
        city, area = rng.choice(cities)
        stem, slug = rng.choice(_COMPANY_STEMS)
        if rng.random() < 0.5:
            name = f"{stem} {rng.choice(_LEGAL_FORMS[country])}"
        else:
            name = f"{rng.choice(_SHOP_KINDS[country])} {stem}"
        domain = f"{slug}-m{self._next_new}.example"
        minute = rng.randrange(7 * 60, 16 * 60 + 45)
        created = f"{_DAY}T{minute // 60:02d}:{minute % 60:02d}:{rng.randrange(60):02d}{_ZONE}"
        parts = [f'  <NewCustomer mobileId="{self._mobile_id()}" createdAt="{created}">\n    <Name>{name}</Name>\n']
        if rng.random() < 0.5:
            parts.append(f"    <TaxId>{country}{rng.randrange(10**9, 10**10)}</TaxId>\n")
        element = generate.address(rng, country, city, street_prefix, streets, p_address=0.85, p_street=0.8,
                                   p_postal=0.7)
        if element is not None:
            parts.append(f"    {element}\n")
        for _ in range(rng.randint(0, 3)):
            parts.append(f"    {self._contact(rng.choice(_KINDS_CUSTOMER), prefix, area, domain, None)}\n")
        n_persons = rng.choice((0, 1, 1, 1, 2, 2, 3))
        for _ in range(n_persons):
            parts.append(self._person("    ", prefix, area, domain))
        stats.persons_of_new += n_persons
        parts.append("  </NewCustomer>\n")
        stats.new_customers += 1
        return "".join(parts)

    def _customer(self) -> str:
        rng = self._rng
        stats = self.stats
        self._next_customer += 1 + (rng.random() < 0.7) + rng.randrange(3)  # a sample of CEE's numbers
        number = str(self._next_customer)
        country = rng.choice(_COUNTRIES)
        prefix, cities, _streets = _PLACES[country]
        _city, area = rng.choice(cities)
        domain = f"{rng.choice(_COMPANY_STEMS)[1]}-{number}.example"
        n_persons = rng.choice((0, 1, 1, 1, 1, 2, 2, 3))
        n_deleted = rng.choice((0, 0, 0, 1, 1, 2)) if n_persons else rng.randint(1, 2)
        parts = [f'  <Customer id="{number}">\n']
        for _ in range(n_persons):
            parts.append(self._person("    ", prefix, area, domain))
        partners: set[int] = set()
        while len(partners) < n_deleted:
            partners.add(rng.randrange(50000, 2_000_000))
        for partner in sorted(partners):
            parts.append(f'    <DeletedContactPerson id="{partner}"/>\n')
        parts.append("  </Customer>\n")
        stats.persons_added += n_persons
        stats.deleted_persons += n_deleted
        stats.customers += 1
        return "".join(parts)

    # -- the stream ----------------------------------------------------------

    def chunks(self) -> Iterator[bytes]:
        """The document, in chunks of about :attr:`chunk_bytes`."""
        footer = b"</ReturnedCustomers>\n"
        header = self._header().encode()
        pending: list[bytes] = [header]
        pending_bytes = written = len(header)
        new_until = self.new_share * self.target_bytes
        while written + len(footer) < self.target_bytes or not self.stats.records:
            if (written < new_until or self.new_share == 1.0) and self.stats.customers == 0:
                record = self._new_customer().encode()
            else:
                record = self._customer().encode()
            pending.append(record)
            pending_bytes += len(record)
            written += len(record)
            if pending_bytes >= self.chunk_bytes:
                yield b"".join(pending)
                pending.clear()
                pending_bytes = 0
        pending.append(footer)
        written += len(footer)
        self.stats.bytes = written
        yield b"".join(pending)


def manifest_xml(*, channel: str, sequence: int, created_at: str, records: int, size: int, sha256: str,
                 package_id: str | None = None) -> bytes:
    """The ``manifest.xml`` of a from-mobile package with one ``customers.xml`` entry."""
    package_id = package_id or f"RET-{channel}-{sequence:08d}"
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<Manifest xmlns="{MANIFEST_NAMESPACE}" packageId="{package_id}"\n'
        f'    direction="from-mobile" salesChannel="{channel}" sequence="{sequence}"\n'
        f'    createdAt="{created_at}" mode="delta">\n'
        f'  <Entry name="{DATA_FILE}" records="{records}" bytes="{size}" sha256="{sha256}"/>\n'
        "</Manifest>\n"
    ).encode()


def _zip_info(name: str, size: int, compresslevel: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED if compresslevel > 0 else zipfile.ZIP_STORED
    info._compresslevel = compresslevel if compresslevel > 0 else None  # zipfile reads it per member
    info.external_attr = 0o100644 << 16  # a regular file
    info.file_size = size  # lets zipfile decide on ZIP64 before streaming
    return info


def write_return_package(path: str | os.PathLike, target_bytes: int, seed: int = 1, sales_channel: str = "MOBILE-PL",
                         sequence: int = 1, compresslevel: int = 6, **options) -> Stats:
    """Write a return package whose ``customers.xml`` is about ``target_bytes`` to ``path``.

    Written as ``PATH.part`` and renamed once complete; ``options`` go to
    :class:`ReturnedCustomersGenerator`. ``compresslevel`` 0 stores the
    members, 1-9 deflates them.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    part = final.with_name(final.name + ".part")
    data = final.with_name(f".{final.name}.{DATA_FILE}.tmp")
    generator = ReturnedCustomersGenerator(target_bytes, seed=seed, **options)
    stats = generator.stats
    try:
        digest = hashlib.sha256()
        with open(data, "wb") as out:
            for chunk in generator.chunks():
                digest.update(chunk)
                out.write(chunk)
        stats.sha256 = digest.hexdigest()
        manifest = manifest_xml(channel=sales_channel, sequence=sequence, created_at=generator.created_at,
                                records=stats.records, size=stats.bytes, sha256=stats.sha256)
        level = compresslevel if compresslevel > 0 else None
        with zipfile.ZipFile(part, "w", compresslevel=level) as zf:
            zf.writestr(_zip_info("manifest.xml", len(manifest), compresslevel), manifest)
            with open(data, "rb") as source, zf.open(_zip_info(DATA_FILE, stats.bytes, compresslevel), "w") as member:
                while block := source.read(MIB):
                    member.write(block)
        os.replace(part, final)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    finally:
        data.unlink(missing_ok=True)
    stats.package_bytes = final.stat().st_size
    return stats


def check(path: str | os.PathLike) -> list[str]:
    """What ``exchange`` finds wrong with the package (container, manifest, XSD, counts); empty if valid."""
    from exchange.package import check_package

    result = check_package(path, max_bytes=1 << 62)
    return [str(problem.message) for problem in result.report.problems]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a synthetic return package from Mobile "
                                                 "(FORMATS.md section 2, From Mobile).")
    parser.add_argument("out", help="output .zip (written as OUT.part, then renamed)")
    parser.add_argument("--mb", type=float, default=100.0, help="size of customers.xml in MiB (default 100)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1): same seed, same bytes")
    parser.add_argument("--sales-channel", default="MOBILE-PL")
    parser.add_argument("--sequence", type=int, default=1, help="the manifest's sequence (default 1)")
    parser.add_argument("--new-share", type=float, default=0.4,
                        help="share of the bytes in NewCustomer records (default 0.4)")
    parser.add_argument("--compresslevel", type=int, default=6, choices=range(10),
                        help="deflate level of the members, 0 = stored (default 6)")
    parser.add_argument("--check", action="store_true",
                        help="afterwards, check the package as exchange does (container, manifest, XSD)")
    args = parser.parse_args(argv)
    stats = write_return_package(args.out, int(args.mb * MIB), seed=args.seed, sales_channel=args.sales_channel,
                                 sequence=args.sequence, compresslevel=args.compresslevel,
                                 new_share=args.new_share)
    print(f"{args.out}: {stats.package_bytes} bytes; {DATA_FILE} {stats.bytes} bytes, {stats.records} records "
          f"({stats.new_customers} NewCustomer, {stats.customers} Customer), contact persons "
          f"{stats.persons_of_new} new + {stats.persons_added} added, {stats.deleted_persons} deleted, "
          f"{stats.contacts} contacts; positions {stats.positions_live} live, {stats.positions_retired} retired, "
          f"{stats.positions_unknown} unknown", file=sys.stderr)
    if args.check:
        problems = check(args.out)
        for problem in problems:
            print(f"{args.out}: {problem}", file=sys.stderr)
        if problems:
            return 1
        print(f"{args.out}: valid", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
