"""End-to-end helpers: real workspaces, real CLI runs, packages as plain data.

* ``Workspace.create`` makes a temporary workspace with ``exchange init``
  (run as a subprocess, like every other command here).
* The builders (``masterdata``, ``customers``, ``customer``, ``person`` ...)
  write CEE exports (FORMATS.md section 1) from a few arguments, so that a
  test shows its input in a few lines.
* ``read_package`` unzips a Mobile package and turns its manifest and data
  file into plain dicts and lists, strictly: an element or attribute the
  to-mobile format does not have, a wrong namespace or a wrong child order
  fails the reading, so comparisons with ``==`` are exact.
* ``pos``/``pos_del``, ``cust``/``cust_del``, ``cp``/``cp_del`` build the
  expected records in the same shape.
"""

from __future__ import annotations

import hashlib
import os
import re
import resource
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
CHANNEL = "MOBILE-PL"

CEE_NS = "urn:cee-mobile:cee-export:v1"
TO_MOBILE_NS = "urn:cee-mobile:to-mobile:v1"
MANIFEST_NS = "urn:cee-mobile:manifest:v1"

DECL = '<?xml version="1.0" encoding="UTF-8"?>\n'
UTC_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------ export builders


def _attrs(**attrs: object) -> str:
    """` name="value"` for every attribute that is not None (``_`` in names becomes nothing special)."""
    out = []
    for name, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        out.append(f" {name}={quoteattr(str(value))}")
    return "".join(out)


def comm(kind: str, method: str, value: str, preferred: bool | None = None) -> str:
    return f"<Communication{_attrs(kind=kind, method=method, preferred=preferred)}>{escape(value)}</Communication>"


def address(city: str, country: str, street: str | None = None, postal: str | None = None) -> str:
    parts = ["<Address>"]
    if street is not None:
        parts.append(f"<Street>{escape(street)}</Street>")
    if postal is not None:
        parts.append(f"<PostalCode>{escape(postal)}</PostalCode>")
    parts.append(f"<City>{escape(city)}</City><Country>{country}</Country></Address>")
    return "".join(parts)


def person(partner: str, surname: str, *, first: str | None = None, occupation: str | None = None,
           classifications: Iterable[str] = (), comms: Iterable[str] = (), assignment: str | None = None,
           preferred: bool | None = None) -> str:
    body = [f"<Surname>{escape(surname)}</Surname>"]
    if first is not None:
        body.append(f"<FirstName>{escape(first)}</FirstName>")
    if occupation is not None:
        body.append(f"<Occupation>{occupation}</Occupation>")
    body += [f"<Classification>{c}</Classification>" for c in classifications]
    body += list(comms)
    return (f"<ContactPerson{_attrs(partner=partner, assignment=assignment, preferred=preferred)}>"
            + "".join(body) + "</ContactPerson>")


def removed(partner: str) -> str:
    return f'<RemovedContactPerson partner="{partner}"/>'


def customer(number: str, name: str, *, active: bool | None = None, tax_id: str | None = None,
             addr: str | None = None, comms: Iterable[str] = (), persons: Iterable[str] = (),
             removed_partners: Iterable[str] = ()) -> str:
    body = [f"<Name>{escape(name)}</Name>"]
    if tax_id is not None:
        body.append(f"<TaxId>{tax_id}</TaxId>")
    if addr is not None:
        body.append(addr)
    body += list(comms)
    body += list(persons)
    body += [removed(p) for p in removed_partners]
    return f"  <Customer{_attrs(number=number, active=active)}>" + "".join(body) + "</Customer>\n"


def deleted_customer(number: str) -> str:
    return f'  <DeletedCustomer number="{number}"/>\n'


def occupation(code: str, description: str, marked: bool | None = None) -> str:
    return (f"  <Occupation{_attrs(code=code, markedForDeletion=marked)}>"
            f"<Description>{escape(description)}</Description></Occupation>\n")


def method(code: str, displayed: bool) -> str:
    return f"  <CommunicationMethod{_attrs(code=code, displayInMobile=displayed)}/>\n"


def _export(root: str, export_id: str, created_at: str, changed_since: str, channel: str | None,
            body: Iterable[str], split_root: bool) -> bytes:
    """Line 1 the declaration, line 2 the root's start tag (lines 2-3 with ``split_root``, as in
    FORMATS.md), then one line per record."""
    channel_attr = f' salesChannel="{channel}"' if channel is not None else ""
    gap = "\n    " if split_root else " "
    return (f"{DECL}<{root} xmlns=\"{CEE_NS}\" exportId=\"{export_id}\"{channel_attr}{gap}"
            f"createdAt=\"{created_at}\" changedSince=\"{changed_since}\">\n"
            + "".join(body) + f"</{root}>\n").encode("utf-8")


def masterdata(export_id: str, created_at: str, *, occupations: Iterable[str] = (), methods: Iterable[str] = (),
               changed_since: str = "anytime", channel: str | None = CHANNEL, split_root: bool = False) -> bytes:
    return _export("MasterdataExport", export_id, created_at, changed_since, channel,
                   [*occupations, *methods], split_root)


def customers(export_id: str, created_at: str, *, records: Iterable[str] = (), deleted: Iterable[str] = (),
              changed_since: str = "last-transfer", channel: str | None = CHANNEL,
              split_root: bool = False) -> bytes:
    return _export("CustomerExport", export_id, created_at, changed_since, channel,
                   [*records, *(deleted_customer(n) for n in deleted)], split_root)


# --------------------------------------------------------- expected records


def pos(code: str, description: str) -> dict:
    return {"code": code, "action": "upsert", "Description": description}


def pos_del(code: str) -> dict:
    return {"code": code, "action": "delete"}


def addr(city: str, country: str, street: str | None = None, postal: str | None = None) -> dict:
    out = {}
    if street is not None:
        out["Street"] = street
    if postal is not None:
        out["PostalCode"] = postal
    out["City"] = city
    out["Country"] = country
    return out


def cust(id: str, name: str, *, tax_id: str | None = None, address: dict | None = None,
         contacts: Iterable[tuple[str, str]] = (), persons: Iterable[dict] = ()) -> dict:
    out: dict = {"id": id, "action": "upsert", "Name": name}
    if tax_id is not None:
        out["TaxId"] = tax_id
    if address is not None:
        out["Address"] = address
    out["Contacts"] = list(contacts)
    out["ContactPersons"] = list(persons)
    return out


def cust_del(id: str) -> dict:
    return {"id": id, "action": "delete"}


def cp(id: str, relation: str, surname: str, *, first: str | None = None, position: str | None = None,
       contacts: Iterable[tuple[str, str]] = ()) -> dict:
    out: dict = {"id": id, "action": "upsert", "relation": relation, "Surname": surname}
    if first is not None:
        out["FirstName"] = first
    if position is not None:
        out["Position"] = position
    out["Contacts"] = list(contacts)
    return out


def cp_del(id: str) -> dict:
    return {"id": id, "action": "delete"}


# ---------------------------------------------------------- reading packages


class FormatError(AssertionError):
    """A package or data file that is not what FORMATS.md describes."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise FormatError(message)


def _parse(data: bytes) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=True)
    return etree.fromstring(data, parser)


def _local(el: etree._Element, ns: str) -> str:
    q = etree.QName(el)
    _check(q.namespace == ns, f"element {el.tag} (line {el.sourceline}) is not in {ns}")
    return q.localname


def _attributes(el: etree._Element, required: Iterable[str], optional: Iterable[str] = ()) -> dict[str, str]:
    allowed = set(required) | set(optional)
    got = dict(el.attrib)
    _check(set(got) <= allowed, f"<{etree.QName(el).localname}> (line {el.sourceline}) has unexpected "
                                f"attributes {sorted(set(got) - allowed)}")
    _check(set(required) <= set(got), f"<{etree.QName(el).localname}> (line {el.sourceline}) lacks "
                                      f"attributes {sorted(set(required) - set(got))}")
    return got


def _children(el: etree._Element, ns: str, order: list[str]) -> list[tuple[str, etree._Element]]:
    """The element children as (local name, element), checked against ``order`` (allowed names, in order)."""
    _check(not (el.text or "").strip() or len(el) == 0, f"mixed content in <{etree.QName(el).localname}>")
    out = []
    rank = -1
    for child in el:
        _check(isinstance(child.tag, str), f"unexpected node {child!r} in <{etree.QName(el).localname}>")
        name = _local(child, ns)
        _check(name in order, f"unexpected <{name}> in <{etree.QName(el).localname}> (line {child.sourceline})")
        _check(order.index(name) >= rank, f"<{name}> out of order in <{etree.QName(el).localname}> "
                                          f"(line {child.sourceline})")
        rank = order.index(name)
        out.append((name, child))
    return out


def _leaf(el: etree._Element) -> str:
    _check(len(el) == 0 and not el.attrib, f"<{etree.QName(el).localname}> must be a plain text element")
    return el.text or ""


def _contact(el: etree._Element) -> tuple[str, str]:
    attrs = _attributes(el, ["kind"])
    _check(len(el) == 0, "<Contact> has children")
    return attrs["kind"], el.text or ""


def parse_positions(data: bytes) -> list[dict]:
    root = _parse(data)
    _check(_local(root, TO_MOBILE_NS) == "Positions", f"root is {root.tag}, expected Positions")
    _attributes(root, [])
    out = []
    for name, el in _children(root, TO_MOBILE_NS, ["Position"]):
        attrs = _attributes(el, ["code", "action"])
        record = {"code": attrs["code"], "action": attrs["action"]}
        kids = _children(el, TO_MOBILE_NS, ["Description"])
        if attrs["action"] == "upsert":
            _check([k for k, _ in kids] == ["Description"], f"Position {attrs['code']}: upsert needs Description")
            record["Description"] = _leaf(kids[0][1])
        else:
            _check(attrs["action"] == "delete" and not kids, f"Position {attrs['code']}: bad delete")
        out.append(record)
    return out


def _address(el: etree._Element, ns: str = TO_MOBILE_NS) -> dict:
    """An Address element as a dict (the same in to-mobile and cee-import documents)."""
    _attributes(el, [])
    out = {}
    for name, child in _children(el, ns, ["Street", "PostalCode", "City", "Country"]):
        _check(name not in out, f"Address: <{name}> twice")
        out[name] = _leaf(child)
    return out


def _person(el: etree._Element) -> dict:
    attrs = _attributes(el, ["id", "action"], ["relation"])
    record: dict = {"id": attrs["id"], "action": attrs["action"]}
    kids = _children(el, TO_MOBILE_NS, ["Surname", "FirstName", "Position", "Contact"])
    if attrs["action"] == "delete":
        _check(not kids and "relation" not in attrs, f"ContactPerson {attrs['id']}: a delete must be empty")
        return record
    _check(attrs["action"] == "upsert" and "relation" in attrs, f"ContactPerson {attrs['id']}: bad upsert")
    record["relation"] = attrs["relation"]
    record["Contacts"] = []
    for name, child in kids:
        if name == "Contact":
            record["Contacts"].append(_contact(child))
        elif name == "Position":
            _check("Position" not in record and len(child) == 0, "Position twice or with children")
            record["Position"] = _attributes(child, ["code"])["code"]
        else:
            _check(name not in record, f"<{name}> twice")
            record[name] = _leaf(child)
    # key order like cp(): id, action, relation, Surname, FirstName?, Position?, Contacts
    return {k: record[k] for k in ("id", "action", "relation", "Surname", "FirstName", "Position", "Contacts")
            if k in record}


def parse_customers(data: bytes) -> list[dict]:
    root = _parse(data)
    _check(_local(root, TO_MOBILE_NS) == "Customers", f"root is {root.tag}, expected Customers")
    _attributes(root, [])
    out = []
    for _name, el in _children(root, TO_MOBILE_NS, ["Customer"]):
        attrs = _attributes(el, ["id", "action"])
        record: dict = {"id": attrs["id"], "action": attrs["action"]}
        kids = _children(el, TO_MOBILE_NS, ["Name", "TaxId", "Address", "Contact", "ContactPerson"])
        if attrs["action"] == "delete":
            _check(not kids, f"Customer {attrs['id']}: a delete must be empty")
            out.append(record)
            continue
        _check(attrs["action"] == "upsert", f"Customer {attrs['id']}: bad action")
        record["Contacts"] = []
        record["ContactPersons"] = []
        for name, child in kids:
            if name == "Contact":
                record["Contacts"].append(_contact(child))
            elif name == "ContactPerson":
                record["ContactPersons"].append(_person(child))
            elif name == "Address":
                record["Address"] = _address(child)
            else:
                _check(name not in record, f"<{name}> twice")
                record[name] = _leaf(child)
        out.append({k: record[k] for k in ("id", "action", "Name", "TaxId", "Address", "Contacts",
                                           "ContactPersons") if k in record})
    return out


def parse_manifest(data: bytes) -> dict:
    root = _parse(data)
    _check(_local(root, MANIFEST_NS) == "Manifest", f"root is {root.tag}, expected Manifest")
    attrs = _attributes(root, ["packageId", "direction", "salesChannel", "sequence", "createdAt", "mode"])
    manifest = {**attrs, "sources": [], "entries": []}
    for name, el in _children(root, MANIFEST_NS, ["Source", "Entry"]):
        _check(len(el) == 0, f"<{name}> has children")
        if name == "Source":
            manifest["sources"].append(_attributes(el, ["file", "exportId", "sha256"]))
        else:
            manifest["entries"].append(_attributes(el, ["name", "records", "bytes", "sha256"]))
    return manifest


@dataclass
class Package:
    path: Path
    members: list[str]  # in ZIP order
    manifest: dict
    data_name: str
    data: bytes
    records: list[dict]

    @property
    def name(self) -> str:
        return self.path.name


def read_package(path: Path) -> Package:
    with zipfile.ZipFile(path) as zf:
        _check(zf.testzip() is None, f"{path.name}: a member fails its CRC")
        members = zf.namelist()
        contents = {name: zf.read(name) for name in members}
    _check(len(members) == len(set(members)), f"{path.name}: duplicate members {members}")
    _check("manifest.xml" in contents, f"{path.name}: no manifest.xml")
    data_names = [m for m in members if m != "manifest.xml"]
    _check(len(data_names) == 1 and data_names[0] in ("positions.xml", "customers.xml"),
           f"{path.name}: members {members}")
    data_name = data_names[0]
    data = contents[data_name]
    records = parse_positions(data) if data_name == "positions.xml" else parse_customers(data)
    return Package(path, members, parse_manifest(contents["manifest.xml"]), data_name, data, records)


# ------------------------------------------------------------- the real CLI


def _floor_utc() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


@dataclass
class CliRun:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    started: datetime  # UTC, to the second (floor)
    finished: datetime

    @property
    def lines(self) -> list[str]:
        return self.stdout.splitlines()

    def __str__(self) -> str:  # for assertion messages
        return (f"exchange {' '.join(self.args)} -> {self.returncode}\n--- stdout\n{self.stdout}"
                f"--- stderr\n{self.stderr}")


def cut_small_files(monkeypatch, cut: bool = True) -> None:
    """With ``cut``, the runs cut every file with a record past its share in two, as they
    cut a big one (``EXCHANGE_SPLIT_MIN_BYTES=1``); without, only files of 16 MiB and more,
    which a test's files are not."""
    if cut:
        monkeypatch.setenv("EXCHANGE_SPLIT_MIN_BYTES", "1")
    else:
        monkeypatch.delenv("EXCHANGE_SPLIT_MIN_BYTES", raising=False)


def keep_runs_saying(monkeypatch, kept: dict[str, list[str]]) -> None:
    """From now on, the stderr of every :func:`run_cli` run goes into ``kept[text]`` for each
    ``text`` it contains (a log line's words): for counting what the runs of a module did."""
    real = run_cli

    def keeping(*args, **kw):
        run = real(*args, **kw)
        for text, runs in kept.items():
            if text in run.stderr:
                runs.append(run.stderr)
        return run

    monkeypatch.setattr(sys.modules[__name__], "run_cli", keeping)


def cli_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("EXCHANGE_CONFIG", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def cli_command(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "exchange", *map(str, args)]


def run_cli(*args: str | Path, cwd: Path, timeout: float = 120) -> CliRun:
    """``python -m exchange ARGS`` in ``cwd``, to its end."""
    started = _floor_utc()
    proc = subprocess.run(cli_command(*args), cwd=cwd, env=cli_env(), stdin=subprocess.DEVNULL,
                          capture_output=True, timeout=timeout)
    finished = datetime.now(timezone.utc)
    return CliRun(tuple(map(str, args)), proc.returncode, proc.stdout.decode("utf-8", "replace"),
                  proc.stderr.decode("utf-8", "replace"), started, finished)


#: The CLI as a user whom file permissions bind. Not another uid: the interpreter lives under
#: /root (mode 700) here, which no other user can enter. Root without capabilities (nothing
#: in its bounding set, so nothing after exec) meets permission bits as any owner does: a
#: folder of mode 0555 refuses it, a file of mode 0000 cannot be read.
WITHOUT_PRIVILEGE = ["setpriv", "--bounding-set=-all", "--inh-caps=-all"]


def run_cli_unprivileged(*args: str | Path, cwd: Path, timeout: float = 120,
                         limit_bytes: int | None = None) -> CliRun:
    """:func:`run_cli` without privilege (:data:`WITHOUT_PRIVILEGE`); ``limit_bytes`` sets
    RLIMIT_FSIZE, so that a write past it fails with EFBIG as it would on a full disk."""
    def limit() -> None:
        if limit_bytes is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    started = _floor_utc()
    proc = subprocess.run([*WITHOUT_PRIVILEGE, *cli_command(*args)], cwd=cwd, env=cli_env(),
                          stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, preexec_fn=limit)
    return CliRun(tuple(map(str, args)), proc.returncode, proc.stdout.decode("utf-8", "replace"),
                  proc.stderr.decode("utf-8", "replace"), started, datetime.now(timezone.utc))


def start_cli(*args: str | Path, cwd: Path) -> tuple[subprocess.Popen, datetime]:
    """Start ``python -m exchange ARGS`` without waiting (output to pipes)."""
    proc = subprocess.Popen(cli_command(*args), cwd=cwd, env=cli_env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return proc, _floor_utc()


def finish_cli(proc: subprocess.Popen, started: datetime, args: Iterable[str], timeout: float = 120) -> CliRun:
    out, err = proc.communicate(timeout=timeout)
    return CliRun(tuple(map(str, args)), proc.returncode, out.decode("utf-8", "replace"),
                  err.decode("utf-8", "replace"), started, datetime.now(timezone.utc))


# --------------------------------------------------------------- workspaces


def snapshot(root: Path) -> dict[str, tuple[int, int, str]]:
    """Every file and folder under ``root``: relative path -> (size, mtime_ns, sha256 or 'dir')."""
    out = {}
    for item in sorted([root, *root.rglob("*")]):
        st = item.lstat()
        digest = "dir" if item.is_dir() else sha256(item.read_bytes())
        out[str(item.relative_to(root))] = (st.st_size if not item.is_dir() else 0, st.st_mtime_ns, digest)
    return out


@dataclass
class Workspace:
    root: Path
    runs: list[CliRun] = field(default_factory=list)

    @classmethod
    def create(cls, parent: Path, name: str = "ws", channel: str | None = None) -> "Workspace":
        args = ["init", name] + (["--channel", channel] if channel else [])
        run = run_cli(*args, cwd=parent)
        root = parent / name
        assert run.returncode == 0, str(run)
        assert run.lines == [f"created {name}/exchange.toml; put CEE exports into {name}/inbox/cee "
                             f"and run 'cd {name} && exchange run'"], str(run)
        return cls(root)

    # folders
    @property
    def config(self) -> Path:
        return self.root / "exchange.toml"

    @property
    def inbox_cee(self) -> Path:
        return self.root / "inbox" / "cee"

    @property
    def rejected(self) -> Path:
        return self.root / "inbox" / "rejected"

    @property
    def archive(self) -> Path:
        return self.root / "inbox" / "archive"

    @property
    def outbox_mobile(self) -> Path:
        return self.root / "outbox" / "mobile"

    # inputs
    def drop(self, name: str, data: bytes, mtime_ns: int | None = None) -> Path:
        """Put a complete file into inbox/cee/ (written beside it under a dot name, then renamed)."""
        path = self.inbox_cee / name
        temp = self.inbox_cee / f".{name}.writing"
        temp.write_bytes(data)
        if mtime_ns is not None:
            os.utime(temp, ns=(mtime_ns, mtime_ns))
        os.replace(temp, path)
        return path

    def edit_config(self, change: Callable[[str], str]) -> None:
        self.config.write_text(change(self.config.read_text(encoding="utf-8")), encoding="utf-8")

    # commands
    def cli(self, *args: str | Path, timeout: float = 120) -> CliRun:
        run = run_cli(*args, cwd=self.root, timeout=timeout)
        self.runs.append(run)
        return run

    def run(self, settle: float = 0, *extra: str) -> CliRun:
        return self.cli("run", "--settle", str(settle), *extra)

    # outputs
    def package_names(self) -> list[str]:
        return sorted(p.name for p in self.outbox_mobile.iterdir() if p.is_file())

    def package(self, sequence: int, channel: str = CHANNEL) -> Package:
        return read_package(self.outbox_mobile / f"MOB_{channel}_{sequence:08d}.zip")

    def archived(self, name: str) -> list[Path]:
        """Where ``name`` is in the archive (any day folder)."""
        return sorted(self.archive.glob(f"*/{name}"))

    def inbox_names(self) -> list[str]:
        return sorted(p.name for p in self.inbox_cee.iterdir())

    def rejected_names(self) -> list[str]:
        return sorted(p.name for p in self.rejected.iterdir())


def archive_days(run: CliRun) -> set[str]:
    """The UTC day folders an input archived during ``run`` may be in."""
    return {run.started.strftime("%Y-%m-%d"), run.finished.strftime("%Y-%m-%d")}


def assert_archived(ws: Workspace, name: str, data: bytes, run: CliRun, as_name: str | None = None) -> None:
    """``name`` left inbox/cee/ and is in inbox/archive/<UTC day of the run>/, unchanged."""
    as_name = as_name or name
    assert not (ws.inbox_cee / name).exists(), f"{name} is still in inbox/cee"
    found = ws.archived(as_name)
    assert len(found) == 1, (as_name, found)
    assert found[0].parent.name in archive_days(run), found
    assert found[0].read_bytes() == data


def assert_manifest(pkg: Package, *, sequence: int, mode: str, source_name: str, source: bytes,
                    run: CliRun, channel: str = CHANNEL) -> None:
    """The manifest of a to-mobile package made by ``run`` from ``source`` (FORMATS.md section 2)."""
    created = pkg.manifest["createdAt"]
    assert UTC_STAMP.fullmatch(created), created
    stamp = datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    assert run.started <= stamp <= run.finished, (created, run.started, run.finished)
    export_id = _parse(source).get("exportId")
    expected = {
        "packageId": f"MOB-{channel}-{sequence:08d}",
        "direction": "to-mobile",
        "salesChannel": channel,
        "sequence": str(sequence),
        "createdAt": created,
        "mode": mode,
        "sources": [{"file": source_name, "exportId": export_id, "sha256": sha256(source)}],
        "entries": [{"name": pkg.data_name, "records": str(len(pkg.records)), "bytes": str(len(pkg.data)),
                     "sha256": sha256(pkg.data)}],
    }
    assert pkg.manifest == expected
    assert pkg.name == f"MOB_{channel}_{sequence:08d}.zip"
    root = etree.QName(_parse(source)).localname
    assert pkg.data_name == {"MasterdataExport": "positions.xml", "CustomerExport": "customers.xml"}[root]
    assert sorted(pkg.members) == sorted(["manifest.xml", pkg.data_name])
