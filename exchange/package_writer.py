"""Writing a Mobile package: one data file and its manifest in a ZIP.

The data file is streamed into the ZIP under a temporary name while its
size and SHA-256 are counted; the manifest is added once the sequence
number is known; the finished file is fsynced and only then published
under its final name (:func:`exchange.files.publish`).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

from lxml import etree

from exchange.background import SerialWorker
from exchange.package import MANIFEST_NAME, Entry, Manifest
from exchange.xml.schemas import MANIFEST, schema

_FLUSH = 1 << 18
#: A fixed member date keeps packages reproducible (ZIP stores local time, no zone).
_MEMBER_DATE = (2020, 1, 1, 0, 0, 0)


def package_name(channel: str, sequence: int) -> str:
    return f"MOB_{channel}_{sequence:08d}.zip"


def package_id(channel: str, sequence: int) -> str:
    return f"MOB-{channel}-{sequence:08d}"


def manifest_xml(info: Manifest) -> bytes:
    """The manifest document, checked against manifest.xsd."""
    ns = f"{{{MANIFEST}}}"
    root = etree.Element(ns + "Manifest", nsmap={None: MANIFEST})
    for key, value in (("packageId", info.package_id), ("direction", info.direction),
                       ("salesChannel", info.channel), ("sequence", str(info.sequence)),
                       ("createdAt", info.created_at), ("mode", info.mode)):
        root.set(key, value)
    for source in info.sources:
        etree.SubElement(root, ns + "Source", file=source.file, exportId=source.export_id,
                         sha256=source.sha256)
    for entry in info.entries:
        etree.SubElement(root, ns + "Entry", name=entry.name, records=str(entry.records),
                         bytes=str(entry.bytes), sha256=entry.sha256)
    data = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    manifest_schema = schema("manifest.xsd")
    if not manifest_schema.validate(etree.fromstring(data)):
        raise AssertionError(f"the manifest written does not match manifest.xsd: {manifest_schema.error_log}")
    return data


class PackageWriter:
    """A package under construction at a temporary path."""

    def __init__(self, temp: Path, entry_name: str):
        self.temp = temp
        self.entry_name = entry_name
        self.zip = zipfile.ZipFile(temp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        info = zipfile.ZipInfo(entry_name, date_time=_MEMBER_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        self._member = self.zip.open(info, "w", force_zip64=True)
        self._digest = hashlib.sha256()
        self._pending: list[str] = []
        self._pending_size = 0
        self.bytes = 0
        self.records = 0
        #: Called with every block of the data file as written (e.g. a validator).
        self.observe = None
        # Hashing, deflating and handing blocks to ``observe`` run on a thread of their
        # own: all three release the GIL, so they take the second core, not the parser's.
        self._worker = SerialWorker("package-writer", depth=8)

    def write(self, text: str) -> None:
        """Append serialized XML to the data file."""
        self._pending.append(text)
        self._pending_size += len(text)
        if self._pending_size >= _FLUSH:
            self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        data = "".join(self._pending).encode("utf-8")
        self._pending.clear()
        self._pending_size = 0
        self._worker.submit(self._write_block, data, self.observe)
        self.bytes += len(data)

    def _write_block(self, data: bytes, observe) -> None:
        self._digest.update(data)
        self._member.write(data)
        if observe is not None:
            observe(data)

    def stop_observing(self, last: bytes) -> None:
        """Show ``observe`` what is written so far and then ``last`` (which is not
        written), and nothing after: the rest is checked elsewhere."""
        self._flush()
        if self.observe is not None:
            self._worker.submit(self.observe, last)
        self.observe = None

    def append(self, data: bytes) -> None:
        """Append bytes of the data file, serialized and checked elsewhere, as they are."""
        self._flush()
        self._worker.submit(self._write_block, data, self.observe)
        self.bytes += len(data)

    def finish_data(self) -> Entry:
        """Close the data file; its manifest entry."""
        self._flush()
        self._worker.close()
        self._member.close()
        return Entry(self.entry_name, self.records, self.bytes, self._digest.hexdigest())

    def close(self, manifest: bytes) -> None:
        """Add the manifest, close and fsync the ZIP."""
        info = zipfile.ZipInfo(MANIFEST_NAME, date_time=_MEMBER_DATE)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        self.zip.writestr(info, manifest)
        self.zip.close()
        with open(self.temp, "rb+") as f:
            os.fsync(f.fileno())

    def discard(self) -> None:
        self._worker.join()
        # Half-written, and thrown away: whatever closing it says (a full disk) is of no use,
        # but every handle must be closed now, or the garbage collector tries again and prints.
        for close in (self._member.close, self.zip.close):
            try:
                close()
            except Exception:  # noqa: BLE001
                pass
        fp, self.zip.fp = self.zip.fp, None
        if fp is not None:
            try:
                fp.close()
            except OSError:
                pass
        self.temp.unlink(missing_ok=True)
