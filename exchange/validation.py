"""``exchange validate``: check files without processing them.

An XML document is validated against the schema its root element chooses;
a ZIP package is checked as a container first (members, sizes, checksums)
and then each data file against its schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from exchange import filetypes
from exchange.package import DEFAULT_MAX_PACKAGE_BYTES, check_package
from exchange.xml.report import Report
from exchange.xml.validate import validate_document

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


@dataclass
class FileVerdict:
    path: Path
    what: str  # e.g. "CustomerExport, 12 records" or "package MOB-MOBILE-PL-00000001"
    report: Report

    @property
    def valid(self) -> bool:
        return not self.report

    def lines(self) -> list[str]:
        name = str(self.path)
        out = self.report.lines(name)
        if self.valid:
            out.append(f"{name}: valid ({self.what})")
        else:
            errors = "1 error" if self.report.count == 1 else f"{self.report.count} errors"
            out.append(f"{name}: INVALID ({errors})")
        return out


def unusable(path: Path) -> str | None:
    """Why ``path`` cannot be validated, as the line to print; None when it can.

    A symbolic link is followed (a link to a file is validated as that file).
    Only a regular file is opened, and only to see that it can be read: a
    FIFO or a device is named by its kind without being opened, so a FIFO
    never hangs the command.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return f"{path}: no such file"
    except OSError as error:  # a name too long, a loop of links, a folder that cannot be searched
        return f"{path}: {error.strerror}"
    what = filetypes.kind(mode)
    if what == "a folder":
        return f"{path}: is a folder, not a file"
    if what:
        return f"{path}: is not a regular file ({what})"
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        return f"{path}: {error.strerror}"
    return None


def is_package(path: Path) -> bool:
    """A ZIP by name or by its first bytes."""
    if path.suffix.lower() == ".zip":
        return True
    with open(path, "rb") as f:
        return f.read(4) in _ZIP_MAGIC


def validate_file(path: Path, max_package_bytes: int = DEFAULT_MAX_PACKAGE_BYTES) -> FileVerdict:
    """Validate one file, XML document or package; never raises for bad content."""
    if is_package(path):
        check = check_package(path, max_bytes=max_package_bytes)
        if check.manifest is not None:
            m = check.manifest
            records = sum(e.records for e in m.entries)
            what = f"package {m.package_id}, {m.direction}, {records} records"
        else:
            what = "package"
        return FileVerdict(path, what, check.report)
    validation = validate_document(lambda: open(path, "rb"))
    what = f"{validation.kind.root}, {validation.records} records" if validation.kind else "XML"
    return FileVerdict(path, what, validation.report)
