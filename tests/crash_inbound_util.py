"""Helpers for the inbound crash test (tests/test_crash_inbound.py): a batch of
CEE exports and return packages whose import documents depend on what earlier
packages created (R12), and snapshots of a workspace on the way back.

The batch:

* CEE exports (``inbox/cee``): a full masterdata export (most occupations
  live, OLD_POS marked for deletion), a full customer export of a small pool
  (the customers and partners the packages name), and a later masterdata
  export marking BUYER for deletion; all of them are processed before any
  package (F3), so R13 sees the same live occupations in every run.
* return packages (``inbox/mobile``), each with its own manifest createdAt
  in one of several zones, names that do not sort like createdAt:
  NewCustomers with contact persons, persons added to and removed from
  existing customers (R10, R14), positions live, marked for deletion or
  unknown (R13), later packages repeating mobileIds of earlier ones and of
  their own earlier records (R12: a NewCustomer resent with new persons,
  persons resent, a NewCustomer under the mobileId of an earlier person),
  a package repeating the records of the invalid one (which created
  nothing, F1), a package with no records, big packages (1-3 MB of
  customers.xml), one invalid package (a bad position code at 90 % of about
  1 MB) and one package resent under another name (F2).

Nothing here sleeps to synchronize: waiting is polling with a deadline.
"""

from __future__ import annotations

import io
import os
import random
import re
import shutil
import signal
import sqlite3
import time
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import crash_util as cu
from inbound_util import contact, new_customer, ret_address, ret_customer, ret_person, return_package, returned
from lxml import etree

CHANNEL = cu.CHANNEL
IMPORT_RE = re.compile(rf"^CEEIMP_{re.escape(CHANNEL)}_(\d{{8}})\.xml$")
CEE_IMPORT_NS = "urn:cee-mobile:cee-import:v1"
POISON = "not a code!"  # a Position code of an invalid package (Code allows no space or '!')

LIVE_POSITIONS = ("SALES_MGR", "CEO", "CFO", "ACCOUNTANT", "LOGISTICS_MGR", "PURCHASER", "ASSISTANT", "OWNER")
DEAD_POSITIONS = ("OLD_POS", "BUYER")  # marked for deletion (BUYER by the second masterdata export)
UNKNOWN_POSITIONS = ("X_EXTERN", "TMP-CONSULT")

_MD1 = ([("SALES_MGR", "Sales manager", False), ("BUYER", "Buyer", False), ("CEO", "Chief executive", False),
         ("CFO", "Chief financial officer", False), ("ACCOUNTANT", "Accountant", False),
         ("LOGISTICS_MGR", "Logistics manager", False), ("PURCHASER", "Purchasing specialist", False),
         ("ASSISTANT", "Office assistant", False), ("OWNER", "Owner", False),
         ("OLD_POS", "Former position", True)],
        [("Business", True), ("Private", False)])
_MD2 = ([("BUYER", "Buyer", True)], [("Home", False)])

# (label, new customers, existing customers, share of records repeating earlier mobileIds, options)
# in createdAt order
PLAN: tuple = (
    ("r01", 6, 6, 0.0, {}),
    ("r02", 120, 80, 0.1, {}),
    ("r03", 30, 20, 0.3, {"inner_repeats": True}),
    ("big1", 1500, 700, 0.05, {}),
    ("r04", 8, 10, 0.5, {}),
    ("bad", 1300, 600, 0.05, {"poison_at": 0.9}),
    ("r05", 40, 30, 0.3, {"replay_invalid": 60}),
    ("r06", 0, 0, 0.0, {}),  # no records at all: still one import document
    ("r07", 60, 40, 0.4, {"person_as_org": 3}),
    ("big2", 2600, 1100, 0.05, {}),
    ("r08", 15, 15, 0.6, {"inner_repeats": True}),  # resent under another name
    ("r09", 200, 100, 0.2, {}),
    ("r10", 3, 5, 0.5, {}),
    ("big3", 3800, 1700, 0.08, {}),
    ("r11", 50, 50, 0.5, {"person_as_org": 2}),
    ("r12", 10, 10, 0.3, {}),
    ("big4", 1800, 800, 0.1, {}),
    ("r13", 25, 25, 0.7, {"inner_repeats": True}),
    ("r14", 5, 60, 0.2, {}),
)
BAD = "bad"
RESENT = "r08"

_SURNAMES = ("Kowalska", "Nowak", "Wiśniewski", "Wójcik", "Lewandowski", "Zielińska", "Schmidt", "Müller",
             "Novák", "Dvořák", "O'Brien", "Kowalczyk-Nowak", "Mazur", "Krawczyk", "Weber", "Kazlauskas")
_FIRST = ("Anna", "Piotr", "Katarzyna", "Tomasz", "Małgorzata", "Paweł", "Jürgen", "Sabine", "Jiří", "Rūta")
_COMPANIES = ("Hurtownia Zielona", "Sklep & Syn", "Piekarnia Złota", "Auto-Serwis", "Apteka Pod Lwem",
              "Kwiaciarnia Róża", "Müller Getränke", "Tatra Hurt", "Bistro <Na Rogu>", "Delikatesy \"Smak\"")
_CITIES = (("Warszawa", "PL"), ("Kraków", "PL"), ("Łódź", "PL"), ("Gdańsk", "PL"), ("Berlin", "DE"),
           ("Praha", "CZ"), ("Wien", "AT"), ("Vilnius", "LT"))


# ----------------------------------------------------------------------------
# the batch
# ----------------------------------------------------------------------------


def is_package(item: cu.Input) -> bool:
    return item.name.endswith(".zip")


class _Returns:
    """The Mobile side: what devices send back, with the mobileIds sent before."""

    def __init__(self, rng: random.Random, customers: list[str], partners: dict[str, list[str]]):
        self.rng = rng
        self.customers = customers
        self.partners = partners
        self.orgs: list[tuple[str, str]] = []  # (mobileId, name) of NewCustomers in valid packages
        self.persons: list[str] = []  # mobileIds of persons in valid packages
        self.invalid_records: list[str] = []  # records of the invalid package (but the poisoned one)
        self.serial = 0

    def mobile_id(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def _contacts(self, slug: str) -> list[str]:
        rng = self.rng
        out = []
        for _ in range(rng.choice((0, 1, 1, 2))):
            kind = rng.choice(("phone", "mobile", "email"))
            value = (f"{slug}{rng.randrange(1000)}@mobile.example" if kind == "email"
                     else f"+48 {rng.randrange(100, 1000)} {rng.randrange(1000):03d} {rng.randrange(1000):03d}")
            out.append(contact(kind, value))
        return out

    def _position(self) -> str | None:
        roll = self.rng.random()
        if roll < 0.55:
            return self.rng.choice(LIVE_POSITIONS)
        if roll < 0.65:
            return self.rng.choice(DEAD_POSITIONS)  # R13
        if roll < 0.72:
            return self.rng.choice(UNKNOWN_POSITIONS)  # R13
        return None

    def person(self, mobile_id: str | None = None, position: str | None = "draw") -> tuple[str, str]:
        rng = self.rng
        mobile_id = mobile_id or self.mobile_id()
        position = self._position() if position == "draw" else position
        text = ret_person(mobile_id, rng.choice(_SURNAMES), first=rng.choice(_FIRST) if rng.random() < 0.8 else None,
                          position=position, contacts=self._contacts(f"m{mobile_id[:8]}"))
        return mobile_id, text

    def _repeat_person(self) -> tuple[str, str] | None:
        return self.person(self.rng.choice(self.persons)) if self.persons else None

    def new_customer(self, repeat: float, created: list, persons: list) -> str:
        rng = self.rng
        if self.orgs and rng.random() < repeat:  # R12: sent again, with new persons (and maybe an old one)
            mobile_id, name = rng.choice(self.orgs)
        else:
            self.serial += 1
            mobile_id, name = self.mobile_id(), f"{rng.choice(_COMPANIES)} {self.serial}"
            created.append((mobile_id, name))
        people = []
        for _ in range(rng.randint(0, 3)):
            old = self._repeat_person() if rng.random() < repeat else None
            pid, text = old or self.person()
            if old is None:
                persons.append(pid)
            people.append(text)
        city, country = rng.choice(_CITIES)
        addr = ret_address(city, country, street=f"ul. Polna {rng.randrange(1, 90)}" if rng.random() < 0.6 else None,
                           postal=f"{rng.randrange(100):02d}-{rng.randrange(1000):03d}" if rng.random() < 0.5 else None)
        return new_customer(mobile_id, name, created_at="2026-11-27T15:10:00+01:00",
                            tax_id=f"{country}{rng.randrange(10 ** 9, 10 ** 10)}" if rng.random() < 0.5 else None,
                            addr=addr if rng.random() < 0.8 else None,
                            contacts=self._contacts(f"c{mobile_id[:8]}"), persons=people)

    def customer(self, repeat: float, persons: list) -> str:
        rng = self.rng
        number = rng.choice(self.customers)
        people = []
        for _ in range(rng.choice((0, 1, 1, 2))):
            old = self._repeat_person() if rng.random() < repeat else None
            pid, text = old or self.person()
            if old is None:
                persons.append(pid)
            people.append(text)
        deleted = []
        if rng.random() < 0.5:
            known = self.partners.get(number, [])
            deleted = rng.sample(known, min(len(known), rng.randint(1, 2))) if known else []
            if rng.random() < 0.2:
                deleted.append(str(900000 + rng.randrange(100000)))  # a partner CEE may not know: R14 all the same
            deleted = list(dict.fromkeys(deleted))
        if not people and not deleted:
            people.append(self.person()[1])
        return ret_customer(number, persons=people, deleted=deleted)

    def package_data(self, label: str, news: int, olds: int, repeat: float, options: dict,
                     created_at: str) -> bytes:
        rng = self.rng
        created: list = []
        persons: list = []
        head: list[str] = []
        if options.get("replay_invalid"):  # the invalid package created nothing: these are created now
            head += rng.sample(self.invalid_records, min(options["replay_invalid"], len(self.invalid_records)))
        for _ in range(options.get("person_as_org", 0)):  # R12, one space of mobileIds
            if self.persons:
                pid = rng.choice(self.persons)
                head.append(new_customer(pid, f"Firma {pid[:8]}", created_at="2026-11-27T15:10:00+01:00",
                                         persons=[self.person()[1]]))
        news_text = [self.new_customer(repeat, created, persons) for _ in range(news)]
        if options.get("inner_repeats") and news_text:  # the same NewCustomer twice in one document
            news_text.insert(rng.randrange(len(news_text) + 1), rng.choice(news_text))
        customers_text = [self.customer(repeat, persons) for _ in range(olds)]
        if options.get("inner_repeats") and customers_text:  # a person twice in one document
            customers_text.insert(rng.randrange(len(customers_text) + 1), rng.choice(customers_text))
        records = head + news_text + customers_text
        if options.get("poison_at") is not None:
            at = int(len(news_text) * options["poison_at"])
            self.invalid_records = [r for r in head + news_text if "<NewCustomer" in r]
            pid, text = self.person(position=POISON)
            news_text[at] = new_customer(self.mobile_id(), "Zatruta Sp. z o.o.", persons=[text])
            records = head + news_text + customers_text
        else:
            self.orgs += created
            self.persons += persons
        # NewCustomer records come first (the schema's order)
        ordered = [r for r in records if r.lstrip().startswith("<NewCustomer")] + \
                  [r for r in records if r.lstrip().startswith("<Customer")]
        return returned(ordered, device=f"TAB-{rng.randrange(100):03d}", representative=f"REP-{rng.randrange(20):02d}",
                        created_at=created_at)


def generate_batch(folder: Path, seed: int) -> list[cu.Input]:
    """Write the CEE exports and the return packages into ``folder``; the inputs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed * 104729 + 7)
    inputs: list[cu.Input] = []
    moment = datetime(2026, 11, 20, 6, 0, 0, tzinfo=UTC)

    # CEE exports: masterdata, the customers, masterdata again
    model = cu.BatchModel(seed, 60)
    exports = [
        ("md1", "MasterdataExport", lambda eid, c: cu.masterdata_export(eid, c, *_MD1, full=True)),
        ("full", "CustomerExport", lambda eid, c: model.customer_export(eid, c, 0, full=True)),
        ("md2", "MasterdataExport", lambda eid, c: cu.masterdata_export(eid, c, *_MD2, full=False)),
    ]
    for index, (label, root, make) in enumerate(exports):
        moment += timedelta(minutes=rng.randint(3, 60), seconds=rng.randint(0, 59))
        created = cu._timestamp(moment, rng)
        data = make(f"EXP-{index:02d}-{label}", created)
        name = f"{rng.choice('kqbxmz')}{rng.randrange(1000):03d}_{label}.xml"
        (folder / name).write_bytes(data)
        inputs.append(cu.Input(name, created, root, cu.sha256_bytes(data), len(data)))

    customers = list(model.order) + ["777001", "777002"]  # two CEE never exported to Mobile
    partners = {number: list(model.customers[number].persons) for number in model.order}
    returns = _Returns(random.Random(seed * 31 + 5), customers, partners)
    moment = datetime(2026, 11, 27, 7, 0, 0, tzinfo=UTC)
    sequence = 0
    for index, (label, news, olds, repeat, options) in enumerate(PLAN, start=1):
        moment += timedelta(minutes=rng.randint(2, 90), seconds=rng.randint(0, 59))
        created = cu._timestamp(moment, rng)
        data = returns.package_data(label, news, olds, repeat, options, cu._timestamp(moment - timedelta(minutes=1), rng))
        name = f"RET_{rng.choice('tkpwa')}{rng.randrange(10000):04d}_{label}.zip"
        if label == BAD:
            # F6: a rejected package uses no number. The invalid one carries the number of the
            # package after it, as a broken first send that a good one replaces; its name sorts
            # first, so it is judged (and rejected for its content) before the good one is imported.
            name = "RET_0" + name[4:]
            number = sequence + 1
        else:
            sequence += 1
            number = sequence
        path = return_package(folder / name, data, sequence=number, created_at=created,
                              package_id=f"RET-{CHANNEL}-{index:04d}-{rng.randrange(10 ** 6)}")
        content = path.read_bytes()
        inputs.append(cu.Input(name, created, "ReturnedCustomers", cu.sha256_bytes(content), len(content),
                               valid=(label != BAD)))
        if label == RESENT:
            copy = f"zz_resent_{name}"  # sorts after the original (same createdAt): the copy is the duplicate
            shutil.copy2(path, folder / copy)
            inputs.append(cu.Input(copy, created, "ReturnedCustomers", cu.sha256_bytes(content), len(content),
                                   duplicate_of=name))
    return inputs


def data_size(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return zf.getinfo("customers.xml").file_size


# ----------------------------------------------------------------------------
# what a workspace holds
# ----------------------------------------------------------------------------


@dataclass
class Files:
    rows: list[dict]
    runs: int


def read_files(workspace: Path) -> Files:
    """The files table and the number of runs (cheap: no events)."""
    columns = ("id", "sha256", "name", "inbox", "state", "output", "temp")
    rows = [dict(zip(columns, r)) for r in
            cu.ledger_rows(workspace, f"SELECT {', '.join(columns)} FROM files ORDER BY id")]
    runs = (cu.ledger_rows(workspace, "SELECT count(*) FROM runs") or [(0,)])[0][0]
    return Files(rows, runs)


def mobile_ids(workspace: Path) -> Counter:
    """The ledger's mobile_ids table, with the file named instead of its id."""
    return Counter(cu.ledger_rows(
        workspace, "SELECT m.mobile_id, m.channel, f.name, m.organization FROM mobile_ids m "
                   "LEFT JOIN files f ON f.id = m.file_id"))


def creations(workspace: Path) -> Counter:
    """The ledger's mobile_ids rows whole: what each created record is, its employer and the R10 reason."""
    return Counter(cu.ledger_rows(
        workspace, "SELECT m.mobile_id, m.channel, f.name, m.organization, m.customer, m.reason FROM mobile_ids m "
                   "LEFT JOIN files f ON f.id = m.file_id"))


def imports(workspace: Path) -> dict[int, Path]:
    outbox = workspace / "outbox" / "cee"
    found = {}
    for p in outbox.iterdir() if outbox.exists() else ():
        m = IMPORT_RE.match(p.name)
        if m:
            found[int(m.group(1))] = p
    return found


_ROOT_CREATED_AT = re.compile(rb'(<CeeImport\b[^>]*?\screatedAt=")[^"]*(")')


def mask_created_at(document: bytes) -> bytes:
    """The document with the root's createdAt masked (the only attribute that may differ)."""
    masked, count = _ROOT_CREATED_AT.subn(rb"\1*\2", document, count=1)
    assert count == 1, "no createdAt on the CeeImport root"
    return masked


def organizations_bytes(document: bytes) -> int:
    """Where the organizations of an import document end: a transform writes them as it goes,
    then appends the persons and removals it spooled."""
    ends = [at for at in (document.find(b"<Person "), document.find(b"<ContactPersonRemoval ")) if at >= 0]
    return min(ends) if ends else len(document)


def external_ids(document: bytes) -> tuple[list[str], list[str]]:
    """externalId of every Organization and of every Person, in document order (streamed)."""
    orgs, persons = [], []
    tags = (f"{{{CEE_IMPORT_NS}}}Organization", f"{{{CEE_IMPORT_NS}}}Person")
    for _event, el in etree.iterparse(io.BytesIO(document), events=("end",), tag=tags,
                                      resolve_entities=False, no_network=True):
        (orgs if el.tag == tags[0] else persons).append(el.get("externalId"))
        el.clear()
    return orgs, persons


def employers_new(document: bytes) -> list[str]:
    """externalId of every EmployeeOfNew (the organization a new person belongs to), in document order."""
    found = []
    tag = f"{{{CEE_IMPORT_NS}}}EmployeeOfNew"
    for _event, el in etree.iterparse(io.BytesIO(document), events=("end",), tag=tag,
                                      resolve_entities=False, no_network=True):
        found.append(el.get("externalId"))
    return found


@dataclass(frozen=True)
class Before:
    """What a workspace held before a run started, to judge what the run left."""

    runs: int
    archived: int
    pending: frozenset  # (file id, state) of files between commit and archive (or move and mark)
    temps: frozenset  # temporary outputs in outbox/cee and outbox/mobile
    outputs: frozenset
    archive: frozenset
    rejected: frozenset

    @classmethod
    def of(cls, workspace: Path) -> Before:
        files = read_files(workspace)
        return cls(files.runs, sum(1 for r in files.rows if r["state"] == "archived"),
                   frozenset((r["id"], r["state"]) for r in files.rows
                             if r["state"] in ("claimed", "published", "duplicating", "rejecting")),
                   frozenset(temps(workspace)), frozenset(outputs(workspace)),
                   frozenset(cu.listing(workspace / "inbox" / "archive")),
                   frozenset(cu.listing(workspace / "inbox" / "rejected")))


def temps(workspace: Path) -> set[str]:
    found = set()
    for sub in ("cee", "mobile"):
        folder = workspace / "outbox" / sub
        if folder.exists():
            found |= {f"{sub}/{p.name}" for p in folder.glob(".*")}
    return found


def outputs(workspace: Path) -> set[str]:
    found = set()
    for sub, pattern in (("cee", IMPORT_RE), ("mobile", cu.PACKAGE_RE)):
        folder = workspace / "outbox" / sub
        if folder.exists():
            found |= {f"{sub}/{n}" for n in os.listdir(folder) if pattern.match(n)}
    return found


def classify_kill(workspace: Path, before: Before) -> str:
    """Where a kill landed, judged by what it left behind (both directions)."""
    files = read_files(workspace)
    if files.runs == before.runs:
        return STARTUP
    for row in files.rows:
        if (row["id"], row["state"]) in before.pending:
            continue  # left by an earlier kill: this one came before recover() finished it
        inbox = workspace / "inbox" / row["inbox"]
        outbox = workspace / "outbox" / ("mobile" if row["inbox"] == "cee" else "cee")
        side = "package" if row["inbox"] == "mobile" else "export"
        if row["state"] == "claimed":
            if row["temp"] and (outbox / row["temp"]).exists():
                return f"{side}: committed, before rename"
            return f"{side}: renamed, before 'published'"
        if row["state"] == "published":
            if (inbox / row["name"]).exists():
                return f"{side}: published, before archive"
            return f"{side}: archived, before 'archived'"
        if row["state"] == "duplicating":
            return f"{side}: duplicate recorded, before its move" if (inbox / row["name"]).exists() \
                else f"{side}: duplicate moved, before 'duplicate'"
        if row["state"] == "rejecting":
            return f"{side}: reject recorded, before its move" if (inbox / row["name"]).exists() \
                else f"{side}: rejected moved, before 'rejected'"
    new_temps = temps(workspace) - before.temps
    if new_temps:
        side = "package" if any(t.startswith("cee/") for t in new_temps) else "export"
        return f"{side}: mid-transform (before commit)"
    names = {row["name"] for row in files.rows}
    for rel in set(cu.listing(workspace / "inbox" / "rejected")) - before.rejected:
        if rel.endswith(".error.txt"):
            original = rel[:-len(".error.txt")]
            if original not in names:
                return "reject report written, before its ledger row"
    if sum(1 for row in files.rows if row["state"] == "archived") > before.archived:
        return "between files (after a file was finished)"
    return NOTHING_IN_HAND


STARTUP = "startup (before the run was recorded)"
NOTHING_IN_HAND = "after start, nothing in hand (recover, pickup, checks, a reject's report)"
POST_COMMIT = tuple(f"package: {p}" for p in ("committed, before rename", "renamed, before 'published'",
                                               "published, before archive", "archived, before 'archived'"))


class Watch:
    """Looks at a workspace during a run (seconds after the start): when the first new temporary
    output appeared (either outbox), when each new output did (``cee/CEEIMP_...`` or
    ``mobile/MOB_...``), and when an input was first moved into inbox/archive/ or inbox/rejected/."""

    def __init__(self, workspace: Path, before: Before, started: float):
        self.workspace = workspace
        self.archive = workspace / "inbox" / "archive"
        self.rejected = workspace / "inbox" / "rejected"
        self.before = before
        self.started = started
        self.first_temp: float | None = None
        self.outputs: dict[str, float] = {}
        self.first_move: float | None = None

    def look(self, moves: bool = False, target: str | None = None) -> None:
        """One look at both outboxes, and at the archive and rejected folders if ``moves``
        (for the input named ``target`` only, if given)."""
        now = time.monotonic() - self.started
        for sub, pattern in (("cee", IMPORT_RE), ("mobile", cu.PACKAGE_RE)):
            try:
                names = os.listdir(self.workspace / "outbox" / sub)
            except FileNotFoundError:
                continue
            for name in names:
                key = f"{sub}/{name}"
                if name.startswith("."):
                    if self.first_temp is None and key not in self.before.temps:
                        self.first_temp = now
                elif pattern.match(name) and key not in self.before.outputs and key not in self.outputs:
                    self.outputs[key] = now
        if moves and self.first_move is None:
            self._moves(now, target)

    def temp_bytes(self) -> int:
        """The size of the new temporary import document, 0 if there is none."""
        folder = self.workspace / "outbox" / "cee"
        try:
            with os.scandir(folder) as entries:
                return max((e.stat().st_size for e in entries
                            if e.name.startswith(".") and f"cee/{e.name}" not in self.before.temps), default=0)
        except FileNotFoundError:
            return 0

    def _moves(self, now: float, target: str | None) -> None:
        moved = []
        try:
            for day in os.scandir(self.archive):
                if day.is_dir():
                    moved += [f"{day.name}/{n}" for n in os.listdir(day.path)
                              if f"{day.name}/{n}" not in self.before.archive]
        except FileNotFoundError:
            pass
        try:
            moved += [n for n in os.listdir(self.rejected)
                      if not n.endswith(".error.txt") and not n.startswith(".") and n not in self.before.rejected]
        except FileNotFoundError:
            pass
        if any(target is None or Path(m).name == target for m in moved):
            self.first_move = now


class ClaimWatch:
    """Sees a file committed as ``claimed`` during a run (one cheap query on the ledger per look)."""

    def __init__(self, workspace: Path, before: Before):
        self.path = workspace / ".exchange" / "state.db"
        self.known = {file_id for file_id, state in before.pending if state == "claimed"}
        self.db = None

    def new_claim(self) -> bool:
        if self.db is None:
            if not self.path.exists():
                return False
            self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            rows = self.db.execute("SELECT id FROM files WHERE state = 'claimed'").fetchall()
        except sqlite3.OperationalError:  # no table yet, or busy: look again
            return False
        return any(r[0] not in self.known for r in rows)

    def close(self) -> None:
        if self.db is not None:
            self.db.close()
            self.db = None


def kill_group_now(runner: cu.Runner, proc) -> int:
    """SIGKILL the whole group at once (nothing looked at first: the moment matters), reap the
    leader, wait for the rest; the number of processes the group held when it was killed."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    size = len(cu.group_members(proc.pid))  # killed ones linger as zombies until reaped
    proc.wait(timeout=30)
    alive = cu.wait_group_gone(proc.pid)
    assert not alive, f"processes of run {proc.pid} survive SIGKILL of their group: {alive}"
    return size
