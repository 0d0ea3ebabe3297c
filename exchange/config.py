"""exchange.toml -> typed settings, loaded strictly.

Every key is known: an unknown key, a value of the wrong type or a missing
required value is a :class:`ConfigError` naming the file and the key, raised
before anything is touched (CLI.md, "Configuration"). Relative paths are
relative to the folder of the config file.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchange.errors import ConfigError

CONFIG_NAME = "exchange.toml"
DEFAULT_CHANNEL = "MOBILE-PL"


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

    @property
    def root(self) -> Path:
        return self.file.parent

    def channel(self, name: str) -> Channel | None:
        return self.channels.get(name)


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

    def number(self, key: str, default: Any = ..., minimum: float = 0) -> float:
        value = self.get(key, (int, float), default, "a number")
        if value is not default and value < minimum:
            self.fail(key, f"must be at least {minimum}")
        return value

    def integer(self, key: str, default: Any = ..., minimum: int = 0) -> int:
        value = self.get(key, int, default, "a whole number")
        if value is not default and value < minimum:
            self.fail(key, f"must be at least {minimum}")
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

    settle = top.number("settle_seconds", 2.0)
    archive_days = top.integer("archive_days", 90, minimum=1)
    poll = top.number("poll_seconds", 60.0, minimum=1)
    scan = top.number("scan_seconds", 30.0, minimum=1)
    backup_count = top.integer("backup_count", 7, minimum=0)

    paths_t = top.table("paths")
    if paths_t is not None:
        paths = Paths(resolve(paths_t.text("inbox", "inbox")), resolve(paths_t.text("outbox", "outbox")),
                      resolve(paths_t.text("state", ".exchange/state.db")))
        paths_t.done()
    else:
        paths = Paths(root / "inbox", root / "outbox", root / ".exchange" / "state.db")

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

    channels_t = top.table("channels", required=True)
    channels: dict[str, Channel] = {}
    for name in channels_t.data:
        table = channels_t.table(name)
        methods = table.strings("displayed_methods", None)
        sftp_t = table.table("sftp")
        sftp = _sftp(sftp_t, resolve) if sftp_t is not None else None
        table.done()
        channels[name] = Channel(name, methods, sftp)
    if not channels:
        channels_t.fail(None, "must hold at least one channel table, e.g. [channels.MOBILE-PL]")
    top.done()
    return Config(path, paths, rules, channels, settle, archive_days, poll, scan, backup_count=backup_count)


def _sftp(t: _Table, resolve) -> Sftp:
    sftp = Sftp(
        host=t.text("host"),
        user=t.text("user"),
        key_file=resolve(t.text("key_file")),
        known_hosts=resolve(t.text("known_hosts")),
        upload_dir=t.text("upload_dir"),
        download_dir=t.text("download_dir"),
        port=t.integer("port", 22, minimum=1),
        done_dir=t.text("done_dir", None),
        passphrase_env=t.text("passphrase_env", None),
        connect_timeout=t.number("connect_timeout", 15.0, minimum=0.1),
        io_timeout=t.number("io_timeout", 60.0, minimum=0.1),
        keepalive_seconds=t.integer("keepalive_seconds", 30, minimum=0),
        retries=t.integer("retries", 3, minimum=0),
        retry_backoff_seconds=t.number("retry_backoff_seconds", 2.0, minimum=0),
    )
    if sftp.port > 65535:
        t.fail("port", "must be at most 65535")
    t.done()
    return sftp
