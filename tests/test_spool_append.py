"""Appending a spool to the import document (``exchange.to_cee._append``): in the kernel where
it can (sendfile), by hand where it cannot; either way the document ends with the spool's bytes
and goes on being written after them."""

from __future__ import annotations

import io
import tempfile

import pytest

from exchange.to_cee import _append

SPOOL = b"".join(b"  <Person n=\"%d\"/>\n" % i for i in range(100_000))  # about 2 MiB


@pytest.mark.parametrize("kind", ["file", "in-memory"])
def test_spool_lands_at_the_end_and_writing_goes_on(tmp_path, kind):
    out_path = tmp_path / "doc.xml"
    with open(out_path, "wb") as out:
        out.write(b"<Doc>\n")
        out.flush()
        if kind == "file":  # sendfile, file to file
            spool = tempfile.TemporaryFile()
            spool.write(SPOOL)
            spool.seek(10)  # wherever it was left: it is copied whole
        else:  # no file descriptor: the copy by hand
            spool = io.BytesIO(SPOOL)
        with spool:
            _append(out, spool)
        out.write(b"</Doc>\n")
    assert out_path.read_bytes() == b"<Doc>\n" + SPOOL + b"</Doc>\n"
