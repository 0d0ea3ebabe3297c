"""Helpers for the crash test (tests/test_crash.py): a batch of CEE exports
whose processing depends on channel state, workspaces, ``exchange run`` in a
process group of its own, and snapshots of what a workspace holds.

Nothing here sleeps to synchronize: waiting is polling with a deadline.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape

NS = "urn:cee-mobile:cee-export:v1"
CHANNEL = "MOBILE-PL"
DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
RUN = [sys.executable, "-m", "exchange", "run", "--settle", "0"]
PACKAGE_RE = re.compile(rf"^MOB_{re.escape(CHANNEL)}_(\d{{8}})\.zip$")
POLL = 0.002  # seconds between two looks while polling


# ----------------------------------------------------------------------------
# the batch of inputs
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Input:
    name: str
    created_at: str
    kind: str  # MasterdataExport | CustomerExport
    sha256: str
    size: int
    valid: bool = True
    duplicate_of: str | None = None  # name of the file with the same content

    @property
    def instant(self) -> datetime:
        return datetime.fromisoformat(self.created_at)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_path(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def processing_order(inputs) -> list:
    """F3: by createdAt as an instant, then file name."""
    return sorted(inputs, key=lambda i: (i.instant.timestamp(), i.name))


_SURNAMES = ("Kowalska", "Nowak", "Wiśniewski", "Wójcik", "Lewandowski", "Zielińska", "Schmidt", "Müller",
             "Novák", "Dvořák", "O'Brien", "Kowalczyk-Nowak", "Mazur", "Krawczyk", "Weber", "Kazlauskas")
_FIRST = ("Anna", "Piotr", "Katarzyna", "Tomasz", "Małgorzata", "Paweł", "Jürgen", "Sabine", "Jiří", "Rūta")
_COMPANIES = ("Acme", "Zielona", "Polmex", "Baltic Foods", "Hurtownia Wisła", "Łódzkie Młyny",
              "Kowalski & Synowie", "Nordwind", "Müller & Söhne", "Tatra Trade", "Amber Logistics", "Śląska Stal")
_KINDS = ("Trading", "Hurt", "Handel", "Logistik", "Services", "Group", "Import-Export")
_CITIES = (("Warszawa", "PL"), ("Kraków", "PL"), ("Łódź", "PL"), ("Gdańsk", "PL"), ("Berlin", "DE"),
           ("Praha", "CZ"), ("Wien", "AT"), ("Vilnius", "LT"))
_CLASSES = ("Purchasing", "Logistics", "Finance", "Marketing", "Service")
OCCUPATIONS = ("SALES_MGR", "BUYER", "CEO", "CFO", "ACCOUNTANT", "LOGISTICS_MGR", "PURCHASER", "ASSISTANT",
               "OWNER", "OLD_POS", "KEY_ACCOUNT")
UNKNOWN_OCCUPATIONS = ("X_EXTERN", "TMP-CONSULT")
METHODS = ("Business", "Business", "Business", "Private", "Home")


@dataclass
class _Person:
    partner: str
    assignment: str  # employee | contact
    surname: str
    first: str | None
    occupation: str | None
    classes: list[str]
    comms: list[tuple[str, str, bool, str]]  # kind, method, preferred, value
    preferred: bool = False


@dataclass
class _Customer:
    number: str
    name: str
    tax_id: str | None
    city: str
    country: str
    street: str | None
    postal: str | None
    comms: list[tuple[str, str, bool, str]]
    persons: dict[str, _Person] = field(default_factory=dict)
    active: bool = True


class BatchModel:
    """The CEE side: a pool of customers whose contact persons change between exports.

    Each customer export takes some customers, changes a few things about
    them (a contact person gains or loses Sales, is removed, a new one is
    added, a customer becomes inactive or active again, an occupation
    changes) and writes their current state; so what a package holds
    depends on what earlier packages sent (R1, R2, R5, R8).
    """

    def __init__(self, seed: int, pool: int):
        self.rng = random.Random(seed)
        self.next_partner = 500000
        self.customers: dict[str, _Customer] = {}
        self.order: list[str] = []
        self.next_customer = 100000
        for _ in range(pool):
            self._new_customer()

    # -- the model -------------------------------------------------------

    def _comm(self, slug: str, person: bool) -> tuple[str, str, bool, str]:
        rng = self.rng
        kind = rng.choice(("email", "mobile", "phone") if person else ("phone", "phone", "email", "fax", "url"))
        method = rng.choice(METHODS)
        if kind == "email":
            value = f"{slug}{rng.randrange(1000)}@{rng.choice(('firma', 'home', 'mail'))}.example"
        elif kind == "url":
            value = f"https://www.{slug}.example/"
        else:
            value = f"+48 {rng.randrange(100, 1000)} {rng.randrange(1000):03d} {rng.randrange(1000):03d}"
        return kind, method, rng.random() < 0.15, value

    def _new_person(self, customer: _Customer | None = None) -> _Person:
        rng = self.rng
        assignment = "employee"
        partner = None
        if customer is not None and rng.random() < 0.15 and len(self.order) > 10:
            # an existing partner of another customer, assigned as contact (R6)
            other = self.customers[rng.choice(self.order)]
            candidates = [p for p in other.persons if p not in customer.persons]
            if candidates:
                partner = rng.choice(candidates)
                assignment = "contact"
        if partner is None:
            self.next_partner += 1
            partner = str(self.next_partner)
        roll = rng.random()
        if roll < 0.05:
            occupation = rng.choice(UNKNOWN_OCCUPATIONS)
        elif roll < 0.75:
            occupation = rng.choice(OCCUPATIONS)
        else:
            occupation = None
        classes = rng.sample(_CLASSES, rng.randint(0, 2))
        if rng.random() < 0.65:
            classes.insert(rng.randint(0, len(classes)), "Sales")
        slug = f"p{partner}"
        return _Person(partner, assignment, rng.choice(_SURNAMES), rng.choice(_FIRST) if rng.random() < 0.8 else None,
                       occupation, classes, [self._comm(slug, True) for _ in range(rng.choice((0, 1, 1, 2)))],
                       rng.random() < 0.1)

    def _new_customer(self) -> _Customer:
        rng = self.rng
        self.next_customer += rng.randint(1, 3)
        number = str(self.next_customer)
        city, country = rng.choice(_CITIES)
        customer = _Customer(
            number=number,
            name=f"{rng.choice(_COMPANIES)} {rng.choice(_KINDS)} {number}",
            tax_id=f"{country}{rng.randrange(10 ** 9, 10 ** 10)}" if rng.random() < 0.9 else None,
            city=city, country=country,
            street=f"ul. Prosta {rng.randrange(1, 200)}" if rng.random() < 0.8 else None,
            postal=f"{rng.randrange(100):02d}-{rng.randrange(1000):03d}" if rng.random() < 0.8 else None,
            comms=[self._comm(f"c{number}", False) for _ in range(rng.randint(1, 3))],
        )
        for _ in range(rng.randint(1, 4)):
            person = self._new_person(customer)
            customer.persons[person.partner] = person
        self.customers[number] = customer
        self.order.append(number)
        return customer

    def _mutate(self, customer: _Customer) -> list[str]:
        """Change a customer as CEE users would; the partners removed since the last export."""
        rng = self.rng
        removed: list[str] = []
        persons = list(customer.persons.values())
        for person in persons:
            roll = rng.random()
            if roll < 0.12:  # gains or loses Sales (R2)
                if "Sales" in person.classes:
                    person.classes.remove("Sales")
                else:
                    person.classes.append("Sales")
            elif roll < 0.18:  # taken off the customer (R5)
                del customer.persons[person.partner]
                removed.append(person.partner)
            elif roll < 0.24:
                person.occupation = rng.choice(OCCUPATIONS + UNKNOWN_OCCUPATIONS + (None,))
        if rng.random() < 0.12:
            person = self._new_person(customer)
            if person.partner not in customer.persons and person.partner not in removed:
                customer.persons[person.partner] = person
        if rng.random() < 0.03:  # someone removed that the ledger never saw (R5 always)
            self.next_partner += 1
            removed.append(str(self.next_partner))
        if rng.random() < 0.04:
            customer.active = not customer.active  # R8 and back
        if rng.random() < 0.05:
            customer.comms = [self._comm(f"c{customer.number}", False) for _ in range(rng.randint(1, 3))]
        return removed

    # -- writing -------------------------------------------------------------

    @staticmethod
    def _comm_xml(comm: tuple[str, str, bool, str]) -> str:
        kind, method, preferred, value = comm
        pref = ' preferred="true"' if preferred else ""
        return f'<Communication kind="{kind}" method="{method}"{pref}>{escape(value)}</Communication>'

    def _customer_xml(self, customer: _Customer, removed: list[str], poison: bool = False) -> str:
        active = "" if customer.active else ' active="false"'
        out = [f'  <Customer number="{customer.number}"{active}>\n    <Name>{escape(customer.name)}</Name>\n']
        if customer.tax_id:
            out.append(f"    <TaxId>{customer.tax_id}</TaxId>\n")
        street = f"<Street>{escape(customer.street)}</Street>" if customer.street else ""
        postal = f"<PostalCode>{customer.postal}</PostalCode>" if customer.postal else ""
        out.append(f"    <Address>{street}{postal}<City>{escape(customer.city)}</City>"
                   f"<Country>{customer.country}</Country></Address>\n")
        for comm in customer.comms:
            out.append(f"    {self._comm_xml(comm)}\n")
        for person in customer.persons.values():
            attrs = ' assignment="contact"' if person.assignment == "contact" else ""
            if person.preferred:
                attrs += ' preferred="true"'
            out.append(f'    <ContactPerson partner="{person.partner}"{attrs}>\n'
                       f"      <Surname>{escape(person.surname)}</Surname>")
            if person.first:
                out.append(f"<FirstName>{escape(person.first)}</FirstName>")
            if person.occupation:
                out.append(f"<Occupation>{person.occupation}</Occupation>")
            classes = list(person.classes)
            if poison:
                classes.append("not a code!")  # Code allows no space or '!': the file is invalid (F1)
                poison = False
            for c in classes:
                out.append(f"<Classification>{c}</Classification>")
            for comm in person.comms:
                out.append(self._comm_xml(comm))
            out.append("\n    </ContactPerson>\n")
        for partner in removed:
            if partner not in customer.persons:
                out.append(f'    <RemovedContactPerson partner="{partner}"/>\n')
        out.append("  </Customer>\n")
        return "".join(out)

    def customer_export(self, export_id: str, created_at: str, count: int, *, full: bool = False,
                        deleted: int = 0, poison_at: float | None = None) -> bytes:
        """A CustomerExport of ``count`` customers (all of them, in pool order, if ``full``)."""
        rng = self.rng
        if full:
            chosen = list(self.order)
        else:
            chosen = sorted(rng.sample(self.order, min(count, len(self.order))), key=self.order.index) \
                if count < 200 else self._window(count)
        poison_index = int(len(chosen) * poison_at) if poison_at is not None else -1
        body = []
        for i, number in enumerate(chosen):
            customer = self.customers[number]
            removed = self._mutate(customer)
            body.append(self._customer_xml(customer, removed, poison=(i == poison_index)))
        deletes = []
        for _ in range(deleted):
            if rng.random() < 0.3:  # a number no package ever sent: R8 deletes always
                self.next_customer += 1
                deletes.append(str(self.next_customer))
                continue
            number = rng.choice(self.order)
            if number in chosen or number in deletes:
                continue
            deletes.append(number)
            self.order.remove(number)
            del self.customers[number]
            if rng.random() < 0.5:
                self._new_customer()  # the pool keeps its size
        body.extend(f'  <DeletedCustomer number="{n}"/>\n' for n in deletes)
        head = (f'{DECL}<CustomerExport xmlns="{NS}" exportId="{export_id}" salesChannel="{CHANNEL}"\n'
                f'    createdAt="{created_at}" changedSince="{"anytime" if full else "last-transfer"}">\n')
        return (head + "".join(body) + "</CustomerExport>\n").encode("utf-8")

    def _window(self, count: int) -> list[str]:
        start = self.rng.randrange(max(1, len(self.order) - count))
        return self.order[start:start + count]


def no_traceback(stderr: str, what: str) -> None:
    assert "Traceback" not in stderr, f"{what}: traceback on stderr:\n{stderr[-4000:]}"


def counter_diff(a, b, name_a: str = "crash run", name_b: str = "reference", limit: int = 8) -> str:
    """What two multisets do not share, a few of each side."""
    a, b = Counter(a), Counter(b)
    only_a = list((a - b).elements())[:limit]
    only_b = list((b - a).elements())[:limit]
    return f"only in {name_a} ({sum((a - b).values())}): {only_a}; only in {name_b} ({sum((b - a).values())}): {only_b}"


def estimate_durations(order, output_of: dict[str, str], arrivals: dict[str, float],
                       startup: float) -> dict[str, float]:
    """Seconds each input took in the reference run, from when its output appeared
    (``output_of``: input name -> output key in ``arrivals``); inputs without an
    output fold into the next one."""
    estimates = {}
    previous = startup
    waiting = []
    for item in order:
        output = output_of.get(item.name)
        if output is None or output not in arrivals:
            waiting.append(item.name)
            continue
        took = max(arrivals[output] - previous, 0.005)
        previous = arrivals[output]
        for name in waiting:
            estimates[name] = took / (len(waiting) + 1)
        estimates[item.name] = took / (len(waiting) + 1)
        waiting = []
    for name in waiting:
        estimates[name] = 0.05
    return estimates


def masterdata_export(export_id: str, created_at: str, occupations: list[tuple[str, str, bool]],
                      methods: list[tuple[str, bool]], full: bool) -> bytes:
    root = (f'<MasterdataExport xmlns="{NS}" exportId="{export_id}" salesChannel="{CHANNEL}"\n'
            f'    createdAt="{created_at}" changedSince="{"anytime" if full else "last-transfer"}">\n')
    lines = [DECL, root]
    for code, description, marked in occupations:
        mark = ' markedForDeletion="true"' if marked else ""
        lines.append(f'  <Occupation code="{code}"{mark}><Description>{escape(description)}</Description></Occupation>\n')
    for code, shown in methods:
        lines.append(f'  <CommunicationMethod code="{code}" displayInMobile="{"true" if shown else "false"}"/>\n')
    lines.append("</MasterdataExport>\n")
    return "".join(lines).encode("utf-8")


def _timestamp(moment: datetime, rng: random.Random) -> str:
    """``moment`` written in one of several zones: createdAt compares as instants (F3)."""
    offset = rng.choice((0, 0, 60, 120, -300))
    local = moment.astimezone(timezone(timedelta(minutes=offset)))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    return text + ("Z" if offset == 0 else local.strftime("%z")[:3] + ":" + local.strftime("%z")[3:])


# (label, kind, customers, options); the order is the order of createdAt
_PLAN: tuple = (
    ("md1", "md", 0, {"full": True}),
    ("full1", "cu", 0, {"full": True, "deleted": 8}),
    ("d01", "cu", 40, {}), ("d02", "cu", 150, {"deleted": 3}), ("d03", "cu", 12, {}),
    ("d04", "cu", 600, {"deleted": 5}), ("d05", "cu", 90, {}), ("d06", "cu", 1, {}),
    ("md2", "md", 0, {}),
    ("d07", "cu", 300, {"deleted": 2}), ("d08", "cu", 60, {}), ("d09", "cu", 0, {}),  # d09: no records at all
    ("bad", "cu", 700, {"poison_at": 0.9, "deleted": 4}),
    ("d10", "cu", 25, {"deleted": 1}),
    ("full2", "cu", 0, {"full": True, "deleted": 6}),
    ("d11", "cu", 200, {}), ("d12", "cu", 5, {"deleted": 2}), ("d13", "cu", 1200, {"deleted": 4}),
    ("d14", "cu", 70, {}),
    ("md3", "md", 0, {}),
    ("d15", "cu", 130, {}), ("d16", "cu", 8, {"deleted": 1}), ("d17", "cu", 2400, {"deleted": 6}),
    ("d18", "cu", 45, {}), ("d19", "cu", 350, {"deleted": 3}),
    ("full3", "cu", 0, {"full": True, "deleted": 5}),
    ("d20", "cu", 20, {}), ("d21", "cu", 160, {"deleted": 2}),
)
DUPLICATE_OF = "d07"  # resent under another name: same content, produces nothing (F2)

_MD1_OCCUPATIONS = [("SALES_MGR", "Sales manager", False), ("BUYER", "Buyer", False), ("CEO", "Chief executive", False),
                    ("CFO", "Chief financial officer", False), ("ACCOUNTANT", "Accountant", False),
                    ("LOGISTICS_MGR", "Logistics manager", False), ("PURCHASER", "Purchasing specialist", False),
                    ("ASSISTANT", "Office assistant", False), ("OWNER", "Owner", False),
                    ("OLD_POS", "Former position", True)]
_MASTERDATA = {
    "md1": (_MD1_OCCUPATIONS, [("Business", True), ("Private", False)]),
    # BUYER was sent: R1 deletes it; OLD_POS comes back; Private is displayed from now on
    "md2": ([("BUYER", "Buyer", True), ("OLD_POS", "Former position, revived", False),
             ("KEY_ACCOUNT", "Key account manager", False)], [("Private", True), ("Home", False)]),
    # BUYER was deleted in Mobile: deleting again sends nothing; Private hidden again, Home shown
    "md3": ([("BUYER", "Buyer", True), ("ASSISTANT", "Office assistant", True), ("CEO", "Chief executive officer", False)],
            [("Private", False), ("Home", True)]),
}


def generate_batch(folder: Path, seed: int, pool: int = 3000) -> list[Input]:
    """Write the batch into ``folder``; the inputs, in no particular order.

    29 files, about 18 MB together: three masterdata exports, full customer
    exports of the whole pool (several MB each), deltas from one customer to
    a few thousand (one with no records at all), one invalid export (a bad
    classification code at 90 % of a 1 MB file) and one export resent under
    another name. File names do not sort like createdAt.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed * 7919 + 1)
    model = BatchModel(seed, pool)
    moment = datetime(2026, 11, 20, 6, 0, 0, tzinfo=UTC)
    inputs: list[Input] = []
    for index, (label, kind, count, options) in enumerate(_PLAN):
        moment += timedelta(minutes=rng.randint(3, 240), seconds=rng.randint(0, 59))
        created = _timestamp(moment, rng)
        export_id = f"{'MD' if kind == 'md' else 'CU'}-{index:02d}-{label}"
        if kind == "md":
            occupations, methods = _MASTERDATA[label]
            data = masterdata_export(export_id, created, occupations, methods, full=options.get("full", False))
            root = "MasterdataExport"
        else:
            data = model.customer_export(export_id, created, count, **options)
            root = "CustomerExport"
        # names that do not sort in createdAt order
        name = f"{rng.choice('kqbxmzaf')}{rng.randrange(1000):03d}_{label}.xml"
        (folder / name).write_bytes(data)
        inputs.append(Input(name, created, root, sha256_bytes(data), len(data), valid=(label != "bad")))
        if label == DUPLICATE_OF:
            copy_name = f"zz_resent_{name}"  # sorts after the original: the copy is the duplicate
            (folder / copy_name).write_bytes(data)
            inputs.append(Input(copy_name, created, root, sha256_bytes(data), len(data), duplicate_of=name))
    return inputs


# ----------------------------------------------------------------------------
# workspaces and processes
# ----------------------------------------------------------------------------


def source_digest() -> str:
    """A digest of the exchange package's source: others may edit the tree while the test runs."""
    import exchange

    digest = hashlib.sha256()
    root = Path(exchange.__file__).resolve().parent
    found = [Path(folder) / name for folder, _dirs, names in os.walk(root, followlinks=True) for name in names]
    for path in sorted(found):
        if path.suffix in (".py", ".xsd"):
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("EXCHANGE_CONFIG", None)  # the workspace's own ./exchange.toml
    env["PYTHONUNBUFFERED"] = "1"
    return env


def init_workspace(folder: Path, deadline_s: float = 60) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([sys.executable, "-m", "exchange", "init", str(folder)], capture_output=True,
                            text=True, timeout=deadline_s, env=child_env(), check=False)
    assert result.returncode == 0, f"exchange init failed: {result.stderr}"


def group_members(pgid: int) -> list[tuple[int, str]]:
    """(pid, state) of the processes in process group ``pgid``."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses
        rest = stat[stat.rfind(")") + 2:].split()
        if int(rest[2]) == pgid:
            found.append((int(entry.name), rest[0]))
    return found


def live_members(pgid: int) -> list[int]:
    return [pid for pid, state in group_members(pgid) if state not in ("Z", "X")]


def wait_group_gone(pgid: int, deadline_s: float = 15.0) -> list[int]:
    """Poll until no live process is left in the group; those still alive at the deadline."""
    end = time.monotonic() + deadline_s
    while True:
        alive = live_members(pgid)
        if not alive or time.monotonic() > end:
            return alive
        time.sleep(POLL)


@dataclass
class Attempt:
    number: int
    mode: str
    delay: float  # seconds after the start when the kill was due
    killed: bool  # the SIGKILL reached a process that was still running
    returncode: int
    group_size_at_kill: int
    pending: int  # inputs still in inbox/cee when the run started
    phase: str = ""
    stderr_tail: str = ""


class Runner:
    """Starts ``exchange run`` in a workspace, in a new session (its own process group)."""

    def __init__(self, workspace: Path, logs: Path):
        self.workspace = workspace
        self.logs = logs
        logs.mkdir(parents=True, exist_ok=True)
        self.pgids: set[int] = set()
        self.count = 0

    def start(self, label: str) -> tuple[subprocess.Popen, Path]:
        self.count += 1
        err = self.logs / f"{self.count:03d}-{label}.err"
        with open(self.logs / f"{self.count:03d}-{label}.out", "wb") as out, open(err, "wb") as errf:
            proc = subprocess.Popen(RUN, cwd=self.workspace, stdout=out, stderr=errf, stdin=subprocess.DEVNULL,
                                    env=child_env(), start_new_session=True)
        self.pgids.add(proc.pid)
        return proc, err

    def kill_group(self, proc: subprocess.Popen) -> int:
        """SIGKILL the whole group; reap the leader; wait for the rest. The group's size at the kill."""
        size = len(live_members(proc.pid))
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)
        alive = wait_group_gone(proc.pid)
        assert not alive, f"processes of run {proc.pid} survive SIGKILL of their group: {alive}"
        return size

    def run_to_end(self, label: str, deadline_s: float) -> tuple[int, str, str, float]:
        """Run once to completion: (exit status, stdout, stderr, seconds)."""
        proc, err = self.start(label)
        started = time.monotonic()
        try:
            rc = proc.wait(timeout=deadline_s)
        except subprocess.TimeoutExpired:
            self.kill_group(proc)
            raise AssertionError(f"exchange run ({label}) did not finish within {deadline_s:.0f} s")
        took = time.monotonic() - started
        alive = wait_group_gone(proc.pid)
        assert not alive, f"processes of run {proc.pid} outlive it: {alive}"
        out = err.with_suffix(".out").read_text("utf-8", "replace")
        return rc, out, err.read_text("utf-8", "replace"), took


class Watch:
    """Looks at a workspace during a run (seconds after the start): when the first new temporary
    package appeared in outbox/mobile, when each new package did, and when an input was first
    moved into inbox/archive/ or inbox/rejected/."""

    def __init__(self, workspace: Path, before: Before, started: float):
        self.outbox = workspace / "outbox" / "mobile"
        self.archive = workspace / "inbox" / "archive"
        self.rejected = workspace / "inbox" / "rejected"
        self.before = before
        self.started = started
        self.first_temp: float | None = None
        self.packages: dict[str, float] = {}
        self.first_move: float | None = None

    def look(self, moves: bool = False, target: str | None = None) -> None:
        """One look at outbox/mobile, and at the archive and rejected folders if ``moves``
        (for the input named ``target`` only, if given)."""
        before = self.before
        now = time.monotonic() - self.started
        try:
            names = os.listdir(self.outbox)
        except FileNotFoundError:
            names = []
        for name in names:
            if name.startswith("."):
                if self.first_temp is None and name not in before.temps:
                    self.first_temp = now
            elif PACKAGE_RE.match(name) and name not in before.packages and name not in self.packages:
                self.packages[name] = now
        if moves and self.first_move is None:
            moved = []
            try:
                for day in os.scandir(self.archive):
                    if day.is_dir():
                        moved += [f"{day.name}/{n}" for n in os.listdir(day.path) if f"{day.name}/{n}" not in before.archive]
            except FileNotFoundError:
                pass
            try:
                moved += [n for n in os.listdir(self.rejected)
                          if not n.endswith(".error.txt") and not n.startswith(".") and n not in before.rejected]
            except FileNotFoundError:
                pass
            if any(target is None or Path(m).name == target for m in moved):
                self.first_move = now


def stray_processes(pgids: set[int], roots: list[Path]) -> list[str]:
    """Live processes in one of our groups, or working in one of our folders."""
    roots = [str(r.resolve()) for r in roots]
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        pid = int(entry.name)
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read().decode("ascii", "replace")
            rest = stat[stat.rfind(")") + 2:].split()
            if rest[0] in ("Z", "X"):
                continue
            pgid = int(rest[2])
            try:
                cwd = os.readlink(f"/proc/{pid}/cwd")
            except OSError:
                cwd = ""
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if pgid in pgids or any(cwd == r or cwd.startswith(r + os.sep) for r in roots):
            found.append(f"pid {pid} pgid {pgid} cwd {cwd}: {cmd}")
    return found


# ----------------------------------------------------------------------------
# what a workspace holds
# ----------------------------------------------------------------------------


def ledger_rows(workspace: Path, sql: str, params: tuple = ()) -> list[tuple]:
    """Rows of a query on the ledger; [] when it or the table does not exist yet."""
    path = workspace / ".exchange" / "state.db"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return []
        raise
    finally:
        db.close()


@dataclass
class Ledger:
    files: list[dict]
    events: Counter
    sent_persons: set
    occupations: set
    methods: set
    sequences: set
    runs: int


def read_ledger(workspace: Path) -> Ledger:
    columns = ("id", "sha256", "name", "inbox", "channel", "kind", "export_id", "created_at", "state",
               "direction", "sequence", "output", "temp", "archived_as", "records", "error", "error_count")
    files = [dict(zip(columns, row)) for row in
             ledger_rows(workspace, f"SELECT {', '.join(columns)} FROM files ORDER BY id")]
    events = Counter(ledger_rows(
        workspace, "SELECT f.name, e.rule, e.subject, e.outcome, e.reason, e.customer, e.partner, e.code, e.count "
                   "FROM events e JOIN files f ON f.id = e.file_id"))
    orphans = ledger_rows(workspace, "SELECT count(*) FROM events WHERE file_id NOT IN (SELECT id FROM files)")
    assert not orphans or orphans[0][0] == 0, f"{workspace}: events without a file row: {orphans}"
    return Ledger(
        files=files,
        events=events,
        sent_persons=set(ledger_rows(workspace, "SELECT channel, customer, partner FROM sent_persons")),
        occupations=set(ledger_rows(workspace, "SELECT channel, code, description, marked, sent FROM occupations")),
        methods=set(ledger_rows(workspace, "SELECT channel, code, displayed FROM methods")),
        sequences=set(ledger_rows(workspace, "SELECT channel, direction, last FROM sequences")),
        runs=(ledger_rows(workspace, "SELECT count(*) FROM runs") or [(0,)])[0][0],
    )


def listing(folder: Path) -> list[str]:
    """Every file under ``folder``, as relative paths, sorted."""
    if not folder.exists():
        return []
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def packages(workspace: Path) -> dict[int, Path]:
    outbox = workspace / "outbox" / "mobile"
    found = {}
    for p in outbox.iterdir() if outbox.exists() else ():
        m = PACKAGE_RE.match(p.name)
        if m:
            found[int(m.group(1))] = p
    return found


@dataclass(frozen=True)
class PackageContent:
    members: tuple[str, ...]
    data_name: str
    data: bytes
    manifest: bytes

    @property
    def manifest_without_created_at(self) -> bytes:
        return re.sub(rb'createdAt="[^"]*"', b'createdAt="*"', self.manifest, count=1)


def read_package(path: Path) -> PackageContent:
    with zipfile.ZipFile(path) as zf:
        names = tuple(zf.namelist())
        data_names = [n for n in names if n != "manifest.xml"]
        assert len(data_names) == 1, f"{path.name}: members {names}"
        return PackageContent(names, data_names[0], zf.read(data_names[0]), zf.read("manifest.xml"))


@dataclass(frozen=True)
class Before:
    """What a workspace held before a run started, to judge what the run left."""

    runs: int
    archived: int
    pending: frozenset  # (file id, state) of files between commit and archive
    temps: frozenset  # temporary files in outbox/mobile
    packages: frozenset
    archive: frozenset
    rejected: frozenset

    @classmethod
    def of(cls, workspace: Path) -> Before:
        ledger = read_ledger(workspace)
        outbox = workspace / "outbox" / "mobile"
        return cls(ledger.runs, sum(1 for r in ledger.files if r["state"] == "archived"),
                   frozenset((r["id"], r["state"]) for r in ledger.files if r["state"] in ("claimed", "published")),
                   frozenset(p.name for p in outbox.glob(".*")) if outbox.exists() else frozenset(),
                   frozenset(p.name for p in packages(workspace).values()),
                   frozenset(listing(workspace / "inbox" / "archive")),
                   frozenset(listing(workspace / "inbox" / "rejected")))


def classify_kill(workspace: Path, before: Before) -> str:
    """Where a kill landed, judged by what it left behind."""
    outbox = workspace / "outbox" / "mobile"
    inbox = workspace / "inbox" / "cee"
    ledger = read_ledger(workspace)
    if ledger.runs == before.runs:
        return "startup (before the run was recorded)"
    for row in ledger.files:
        if (row["id"], row["state"]) in before.pending:
            continue  # left by an earlier kill: this one came before recover() finished it
        if row["state"] == "claimed":
            if row["temp"] and (outbox / row["temp"]).exists():
                return "committed, before rename"
            return "renamed, before 'published'"
        if row["state"] == "published":
            if (inbox / row["name"]).exists():
                return "published, before archive"
            return "archived, before 'archived'"
    temps = {p.name for p in outbox.glob(".*")} - before.temps if outbox.exists() else set()
    if temps:
        return "mid-transform (before commit)"
    names = {row["name"] for row in ledger.files}
    for rel in set(listing(workspace / "inbox" / "archive")) - before.archive:
        if Path(rel).name not in names:
            return "duplicate archived, before its ledger row"
    for rel in set(listing(workspace / "inbox" / "rejected")) - before.rejected:
        if rel.endswith(".error.txt"):
            if (inbox / rel[:-len(".error.txt")]).exists():
                return "reject report written, before move"
        elif rel not in names:
            return "rejected moved, before its ledger row"
    if sum(1 for row in ledger.files if row["state"] == "archived") > before.archived:
        return "between files (after a file was finished)"
    return NO_PACKAGE_IN_HAND


NO_PACKAGE_IN_HAND = "after start, no package in hand (recover, pickup, checks, a reject's report)"
POST_COMMIT = ("committed, before rename", "renamed, before 'published'", "published, before archive",
               "archived, before 'archived'")
