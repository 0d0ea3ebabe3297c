"""exchange.toml -> typed settings, loaded strictly.

Every key is known: an unknown key, a value of the wrong type or a missing
required value is a :class:`ConfigError` naming the file and the key, raised
before anything is touched (CLI.md, "Configuration"). Relative paths are
relative to the folder of the config file.

Values that would only fail later, or quietly do harm, are refused here too
(issue #15, "configuration that cannot hurt"): numbers must be finite and
within bounds, channel names must be codes that are safe in file names, the
inbox, outbox and state folder must be separate, and a configured folder's
parent must exist (a typo would otherwise be created and watched for ever).
"""

from __future__ import annotations

import math
import os
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.errors import ConfigError, os_fault

CONFIG_NAME = "exchange.toml"
DEFAULT_CHANNEL = "MOBILE-PL"

#: A sales channel code: the XSD's Code type (xsd/common.xsd). The one rule for
#: `init --channel` and the [channels.NAME] tables, because the name goes into
#: file names (MOB_<channel>_<sequence>.zip) and must not carry a path.
CHANNEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,31}")
CHANNEL_NAME_RULE = "1-32 of A-Z a-z 0-9 _ . -, starting with a letter or digit"

#: The ceiling of every setting in seconds: a day. More is a typo, and a huge
#: value overflows the timers it is handed to (sleep, wait, socket timeouts).
MAX_SECONDS = 86400


def valid_channel_name(name: str) -> bool:
    return CHANNEL_NAME.fullmatch(name) is not None


@dataclass(frozen=True)
class Sftp:
    host: str
    user: str
    key_file: Path
    known_hosts: Path
    upload_dir: str
    download_dir: str
    port: int = 22
    done_dir: str | None = None
    passphrase_env: str | None = None
    connect_timeout: float = 15.0
    io_timeout: float = 60.0
    keepalive_seconds: int = 30
    retries: int = 3
    retry_backoff_seconds: float = 2.0


@dataclass(frozen=True)
class Channel:
    name: str
    displayed_methods: tuple[str, ...] | None = None  # R4: wins over masterdata when set
    sftp: Sftp | None = None


@dataclass(frozen=True)
class Rules:
    sales_classification: str = "Sales"
    displayed_methods: tuple[str, ...] = ("Business",)
    import_method: str = "Business"
    max_package_bytes: int = 1 << 30


@dataclass(frozen=True)
class Paths:
    inbox: Path
    outbox: Path
    state: Path

    @property
    def inbox_cee(self) -> Path:
        return self.inbox / "cee"

    @property
    def inbox_mobile(self) -> Path:
        return self.inbox / "mobile"

    @property
    def archive(self) -> Path:
        return self.inbox / "archive"

    @property
    def rejected(self) -> Path:
        return self.inbox / "rejected"

    @property
    def outbox_mobile(self) -> Path:
        return self.outbox / "mobile"

    @property
    def sent(self) -> Path:
        return self.outbox / "mobile" / "sent"

    @property
    def outbox_cee(self) -> Path:
        return self.outbox / "cee"

    @property
    def reports(self) -> Path:
        return self.state.parent / "reports"

    def folders(self) -> list[Path]:
        return [self.inbox_cee, self.inbox_mobile, self.archive, self.rejected,
                self.outbox_mobile, self.outbox_cee, self.state.parent]


@dataclass(frozen=True)
class Monitoring:
    """``[monitoring]``: when ``status --check`` warns and when it is critical (seconds)."""

    warn_waiting_seconds: float = 900
    crit_waiting_seconds: float = 3600
    crit_held_seconds: float = 3600
    crit_quiet_seconds: float = 93600  # no successful run for 26 hours: a nightly run was missed


@dataclass(frozen=True)
class Config:
    file: Path
    paths: Paths
    rules: Rules
    channels: dict[str, Channel]
    settle_seconds: float = 2.0
    archive_days: int = 90
    poll_seconds: float = 60.0
    scan_seconds: float = 30.0
    backup_count: int = 7  # ledger backups kept in .exchange/backups/; 0: none after runs
    monitoring: Monitoring = Monitoring()

    @property
    def root(self) -> Path:
        return self.file.parent

    def channel(self, name: str) -> Channel | None:
        return self.channels.get(name)

    def shown(self, path: Path) -> str:
        """``path`` as messages show it: relative to the workspace when inside it, else whole."""
        return str(path.relative_to(self.root)) if path.is_relative_to(self.root) else str(path)


# --- strict loading -------------------------------------------------------

class _Table:
    """Reads one TOML table, remembering which keys were used."""

    def __init__(self, file: Path, name: str, data: Any):
        self.file = file
        self.name = name
        if not isinstance(data, dict):
            self.fail(None, "must be a table")
        self.data = data
        self.used: set[str] = set()

    def where(self, key: str | None) -> str:
        if key is None:
            return f"[{self.name}]" if self.name else "the top level"
        return f"'{key}' in [{self.name}]" if self.name else f"'{key}'"

    def fail(self, key: str | None, message: str):
        raise ConfigError(f"{self.file}: {self.where(key)} {message}")

    def get(self, key: str, kind: type | tuple[type, ...], default: Any = ..., what: str = "") -> Any:
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                self.fail(key, "is required")
            return default
        value = self.data[key]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        # TOML booleans are not numbers here.
        if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
            self.fail(key, f"must be {what or ' or '.join(k.__name__ for k in kinds)}, "
                           f"not {type(value).__name__} {value!r}")
        return value

    def text(self, key: str, default: Any = ...) -> str:
        value = self.get(key, str, default, "a string")
        if value is not default and not value:
            self.fail(key, "must not be empty")
        return value

    def number(self, key: str, default: Any = ..., minimum: float = 0, maximum: float | None = None) -> float:
        value = self.get(key, (int, float), default, "a number")
        if value is default:
            return value
        # TOML has nan and inf; neither is a duration, and both pass a minimum.
        if isinstance(value, float) and not math.isfinite(value):
            self.fail(key, f"must be a finite number, not {value!r}")
        return self._within(key, value, minimum, maximum)

    def integer(self, key: str, default: Any = ..., minimum: int = 0, maximum: int | None = None) -> int:
        value = self.get(key, int, default, "a whole number")
        return value if value is default else self._within(key, value, minimum, maximum)

    def _within(self, key: str, value: Any, minimum: float, maximum: float | None) -> Any:
        if value < minimum:
            self.fail(key, f"must be at least {minimum}")
        if maximum is not None and value > maximum:
            self.fail(key, f"must be at most {maximum}")
        return value

    def strings(self, key: str, default: Any = ...) -> tuple[str, ...] | Any:
        value = self.get(key, list, default, "a list of strings")
        if value is default:
            return value
        if not all(isinstance(v, str) and v for v in value):
            self.fail(key, "must be a list of non-empty strings")
        return tuple(value)

    def table(self, key: str, required: bool = False) -> "_Table | None":
        self.used.add(key)
        if key not in self.data:
            if required:
                self.fail(key, "is required")
            return None
        name = f"{self.name}.{key}" if self.name else key
        return _Table(self.file, name, self.data[key])

    def done(self) -> None:
        for key in self.data:
            if key not in self.used:
                self.fail(key, "is not a known setting (see the comments in the exchange.toml that "
                               "'exchange init' writes, or README.md)")


def find_config(explicit: Path | None) -> Path:
    """--config FILE, else $EXCHANGE_CONFIG, else ./exchange.toml."""
    if explicit is not None:
        return explicit
    env = os.environ.get("EXCHANGE_CONFIG")
    if env:
        return Path(env)
    return Path.cwd() / CONFIG_NAME


def load(path: Path) -> Config:
    """Load and check a configuration file; raises ConfigError."""
    path = Path(path).absolute()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file (create a workspace with "
                          f"'exchange init', or pass --config)") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: cannot read: {error}") from None
    return _parse(path, raw)


def _parse(path: Path, raw: dict) -> Config:
    root = path.parent
    top = _Table(path, "", raw)

    def resolve(value: str) -> Path:
        p = Path(value)
        return p if p.is_absolute() else root / p

    settle = top.number("settle_seconds", 2.0, maximum=MAX_SECONDS)
    # A century: further back than that, the cutoff date leaves the calendar.
    archive_days = top.integer("archive_days", 90, minimum=1, maximum=36500)
    poll = top.number("poll_seconds", 60.0, minimum=1, maximum=MAX_SECONDS)
    scan = top.number("scan_seconds", 30.0, minimum=1, maximum=MAX_SECONDS)
    backup_count = top.integer("backup_count", 7, minimum=0, maximum=1000)

    # A missing [paths] is checked like an empty one: the defaults are paths too.
    paths_t = top.table("paths") or _Table(path, "paths", {})
    paths = Paths(resolve(paths_t.text("inbox", "inbox")), resolve(paths_t.text("outbox", "outbox")),
                  resolve(paths_t.text("state", ".exchange/state.db")))
    paths_t.done()
    _check_paths(paths_t, paths)

    rules_t = top.table("rules")
    rules = Rules()
    if rules_t is not None:
        rules = Rules(
            sales_classification=rules_t.text("sales_classification", rules.sales_classification),
            displayed_methods=rules_t.strings("displayed_methods", rules.displayed_methods),
            import_method=rules_t.text("import_method", rules.import_method),
            max_package_bytes=rules_t.integer("max_package_bytes", rules.max_package_bytes, minimum=1),
        )
        rules_t.done()

    monitoring_t = top.table("monitoring")
    monitoring = Monitoring()
    if monitoring_t is not None:
        week = 7 * 86400
        monitoring = Monitoring(**{key: monitoring_t.number(key, getattr(monitoring, key), minimum=1, maximum=week)
                                   for key in Monitoring.__dataclass_fields__})
        monitoring_t.done()

    channels_t = top.table("channels", required=True)
    channels: dict[str, Channel] = {}
    for name in channels_t.data:
        if not valid_channel_name(name):
            raise ConfigError(f"{path}: channel {name!r} in [channels] is not a valid sales channel code "
                              f"({CHANNEL_NAME_RULE})")
        table = channels_t.table(name)
        methods = table.strings("displayed_methods", None)
        sftp_t = table.table("sftp")
        sftp = _sftp(sftp_t, resolve) if sftp_t is not None else None
        table.done()
        channels[name] = Channel(name, methods, sftp)
    if not channels:
        channels_t.fail(None, "must hold at least one channel table, e.g. [channels.MOBILE-PL]")
    top.done()
    return Config(path, paths, rules, channels, settle, archive_days, poll, scan, backup_count=backup_count,
                  monitoring=monitoring)


def _check_paths(t: _Table, paths: Paths) -> None:
    """The inbox, the outbox and the state folder: each under an existing
    folder, and none the same as or inside another."""
    # Only the folder a configured path names may be missing (it is created as
    # a workspace's folders are); a missing parent is a typo, which would be
    # created and then watched for ever, "0 files" every run.
    for key, folder in (("inbox", paths.inbox), ("outbox", paths.outbox), ("state", paths.state.parent)):
        parent = folder.parent
        try:
            if parent.is_dir():
                continue
        except OSError as error:  # e.g. a folder on the way that may not be searched
            raise os_fault(error, f"{t.file}: checking {t.where(key)}") from None
        configured = getattr(paths, key)
        whose = "its parent folder" if key != "state" else "the parent folder of its folder"
        problem = "is not a folder; fix the path" if parent.exists() else \
            "does not exist; create it, or fix the path"
        t.fail(key, f"is {configured}, but {whose}, {parent}, {problem}")
    # A run reads the inbox and writes the outbox and the state folder: were one
    # inside another, it would take its own outputs (or reports) as inputs, or
    # archive its outputs. Resolved, so that a symbolic link hides nothing.
    folders = [("inbox", paths.inbox.resolve(), ""), ("outbox", paths.outbox.resolve(), ""),
               ("state", paths.state.parent.resolve(), "state folder ")]
    for i, (key_a, a, what_a) in enumerate(folders):
        for key_b, b, what_b in folders[i + 1:]:
            if a == b or a.is_relative_to(b):
                inner, outer = (key_a, a, what_a), (key_b, b, what_b)
            elif b.is_relative_to(a):
                inner, outer = (key_b, b, what_b), (key_a, a, what_a)
            else:
                continue
            relation = "is the same folder as" if a == b else "is inside"
            t.fail(inner[0], f"({inner[2]}{inner[1]}) {relation} '{outer[0]}' in [paths] ({outer[2]}{outer[1]}); "
                             "inbox, outbox and the state folder must be separate folders, none inside another")


def _sftp(t: _Table, resolve) -> Sftp:
    sftp = Sftp(
        host=t.text("host"),
        user=t.text("user"),
        key_file=resolve(t.text("key_file")),
        known_hosts=resolve(t.text("known_hosts")),
        upload_dir=t.text("upload_dir"),
        download_dir=t.text("download_dir"),
        port=t.integer("port", 22, minimum=1, maximum=65535),
        done_dir=t.text("done_dir", None),
        passphrase_env=t.text("passphrase_env", None),
        connect_timeout=t.number("connect_timeout", 15.0, minimum=0.1, maximum=MAX_SECONDS),
        io_timeout=t.number("io_timeout", 60.0, minimum=0.1, maximum=MAX_SECONDS),
        keepalive_seconds=t.integer("keepalive_seconds", 30, minimum=0, maximum=MAX_SECONDS),
        # The backoff doubles on every attempt: ten retries at 2 s already wait
        # 34 minutes in one run, and more only stall it.
        retries=t.integer("retries", 3, minimum=0, maximum=10),
        retry_backoff_seconds=t.number("retry_backoff_seconds", 2.0, minimum=0, maximum=MAX_SECONDS),
    )
    t.done()
    return sftp
