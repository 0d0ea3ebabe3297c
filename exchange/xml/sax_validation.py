"""Schema validation without a tree: libxml2's SAX-level streaming validator.

lxml validates while it parses only into a tree, and building (and
trimming) that tree costs about as much as the validation itself. For a
document we only need a verdict on, libxml2 can validate the parser's
events as they go by (``xmlSchemaValidateStream``), with no node ever
allocated: about half the CPU of lxml's pull parser with a schema, in flat
memory. lxml does not offer it, so this module calls it through ``ctypes``
in the libxml2 that lxml itself is built with (its ``etree`` module
exports libxml2's functions), so that both see the same library.

Used where only a verdict is wanted and no check in code needs the
elements: the output checks (what we write, against to-mobile.xsd or
cee-import.xsd) and the fast path of a return package's ``customers.xml``.
Where libxml2's functions cannot be found (another build of lxml),
:func:`available` is False and callers keep to lxml.

What a parser made by :mod:`exchange.xml.safe` refuses, this one refuses
too (F5): libxml2's defaults here load no DTD, resolve no entity and reach
no network, keep the limits on text size and depth, and a DOCTYPE makes the
document invalid outright. The XSDs are our own files in ``xsd/``; only
those without identity constraints can be used (the streaming schemas of
:mod:`exchange.xml.schemas` leave those out; here they are refused).
"""

from __future__ import annotations

import ctypes
import functools
import os
from typing import IO

from lxml import etree

from exchange.xml.schemas import XSD_DIR

_XML_SAX2_MAGIC = 0xDEEDBEAF
_NO_ENCODING = 0  # XML_CHAR_ENCODING_NONE: detected from the document
_ERROR = 2  # XML_ERR_ERROR; below it, XML_ERR_WARNING


class _Error(ctypes.Structure):
    """libxml2's ``xmlError`` (the fields up to the column)."""

    _fields_ = [
        ("domain", ctypes.c_int),
        ("code", ctypes.c_int),
        ("message", ctypes.c_char_p),
        ("level", ctypes.c_int),
        ("file", ctypes.c_char_p),
        ("line", ctypes.c_int),
        ("str1", ctypes.c_char_p),
        ("str2", ctypes.c_char_p),
        ("str3", ctypes.c_char_p),
        ("int1", ctypes.c_int),
        ("int2", ctypes.c_int),
    ]


_ErrorFunc = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.POINTER(_Error))
_ReadFunc = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
_CloseFunc = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)
_InternalSubsetFunc = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p)


class _SaxHandler(ctypes.Structure):
    """libxml2's ``xmlSAXHandler``: all callbacks empty but ``internalSubset``
    (a DOCTYPE) and ``serror``; the validator plugs its own in front."""

    _fields_ = [("internalSubset", _InternalSubsetFunc)] + [
        (name, ctypes.c_void_p) for name in (
            "isStandalone", "hasInternalSubset", "hasExternalSubset", "resolveEntity", "getEntity",
            "entityDecl", "notationDecl", "attributeDecl", "elementDecl", "unparsedEntityDecl",
            "setDocumentLocator", "startDocument", "endDocument", "startElement", "endElement", "reference",
            "characters", "ignorableWhitespace", "processingInstruction", "comment", "warning", "error",
            "fatalError", "getParameterEntity", "cdataBlock", "externalSubset")
    ] + [
        ("initialized", ctypes.c_uint),
        ("_private", ctypes.c_void_p),
        ("startElementNs", ctypes.c_void_p),
        ("endElementNs", ctypes.c_void_p),
        ("serror", _ErrorFunc),
    ]


def _bind():
    """libxml2's functions in lxml's ``etree`` module, typed; None when they are not there."""
    try:
        lib = ctypes.CDLL(etree.__file__)
        p, i = ctypes.c_void_p, ctypes.c_int
        signatures = {
            "xmlSchemaNewParserCtxt": (p, [ctypes.c_char_p]),
            "xmlSchemaParse": (p, [p]),
            "xmlSchemaFreeParserCtxt": (None, [p]),
            "xmlSchemaSetParserStructuredErrors": (None, [p, _ErrorFunc, p]),
            "xmlSchemaNewValidCtxt": (p, [p]),
            "xmlSchemaFreeValidCtxt": (None, [p]),
            "xmlSchemaSetValidStructuredErrors": (None, [p, _ErrorFunc, p]),
            "xmlSchemaValidCtxtGetParserCtxt": (p, [p]),
            "xmlSchemaValidateStream": (i, [p, p, i, ctypes.POINTER(_SaxHandler), p]),
            "xmlParserInputBufferCreateFd": (p, [i, i]),
            "xmlParserInputBufferCreateIO": (p, [_ReadFunc, _CloseFunc, p, i]),
            "xmlSetStructuredErrorFunc": (None, [p, _ErrorFunc]),
            "xmlStopParser": (None, [p]),
        }
        for name, (result, arguments) in signatures.items():
            function = getattr(lib, name)
            function.restype = result
            function.argtypes = arguments
        return lib
    except (OSError, AttributeError):
        return None


_lib = _bind()


def available() -> bool:
    """Whether libxml2's streaming validator can be reached (lxml exports it on Linux)."""
    return _lib is not None


class _Verdict:
    """What one validation found: the first problem, with its line."""

    def __init__(self):
        self.problem: str | None = None
        self.context = None  # the validation context, to stop the parser at the first problem

    def error(self, _data, error) -> None:
        found = error.contents
        if self.problem is not None or found.level < _ERROR:  # a warning ("Unsupported version '1.1'") is no verdict
            return
        message = (found.message or b"").decode("utf-8", "replace").strip()
        self.problem = f"line {found.line}: {message}" if found.line > 0 else message
        self._stop()

    def internal_subset(self, _data, _name, _public, _system) -> None:
        if self.problem is None:
            self.problem = "the document has a DOCTYPE, which is not allowed (F5)"
        self._stop()

    def _stop(self) -> None:
        if self.context is not None:
            parser = _lib.xmlSchemaValidCtxtGetParserCtxt(self.context)
            if parser:
                _lib.xmlStopParser(parser)


class StreamSchema:
    """One XSD of ``xsd/``, compiled by libxml2, for validating whole documents as streams."""

    def __init__(self, xsd: str):
        if _lib is None:
            raise RuntimeError("libxml2's streaming validator is not available")
        path = XSD_DIR / xsd
        text = path.read_bytes()
        if b"<xs:unique" in text or b"<xs:key" in text:
            raise ValueError(f"{xsd} has identity constraints, which the streaming validator would "
                             "have to remember for the whole document")
        verdict = _Verdict()
        on_error = _ErrorFunc(verdict.error)
        parser = _lib.xmlSchemaNewParserCtxt(os.fsencode(path))
        try:
            _lib.xmlSchemaSetParserStructuredErrors(parser, on_error, None)
            self._schema = _lib.xmlSchemaParse(parser)
        finally:
            _lib.xmlSchemaFreeParserCtxt(parser)
        if not self._schema:
            raise ValueError(f"{xsd} does not compile: {verdict.problem}")
        self.xsd = xsd

    def validate_fd(self, fd: int) -> str | None:
        """Validate the document read from ``fd`` to its end: None when it is valid, else
        libxml2's first problem. Reads to the end even when a problem stops the parser,
        so a writer on the other end of a pipe never blocks."""
        try:
            return self._validate(lambda: _lib.xmlParserInputBufferCreateFd(fd, _NO_ENCODING))
        finally:
            while os.read(fd, 1 << 16):
                pass

    def validate_source(self, source: IO[bytes]) -> str | None:
        """Validate the document read from the binary stream ``source``: None when it is
        valid, else the first problem (an exception of ``source.read`` is one: the
        document is then not valid, and the caller asks the source why)."""
        failed: list[BaseException] = []

        def read(_context, buffer, size):
            try:
                data = source.read(size)
            except Exception as error:  # noqa: BLE001 - MemberRefused, a broken ZIP ...: libxml2 sees an I/O error
                failed.append(error)
                return -1
            ctypes.memmove(buffer, data, len(data))
            return len(data)

        reader = _ReadFunc(read)
        closer = _CloseFunc(lambda _context: 0)
        problem = self._validate(lambda: _lib.xmlParserInputBufferCreateIO(reader, closer, None, _NO_ENCODING))
        if failed:
            return f"reading the document failed: {failed[0]}"
        return problem

    def _validate(self, open_input) -> str | None:
        verdict = _Verdict()
        on_error = _ErrorFunc(verdict.error)
        sax = _SaxHandler()
        sax.initialized = _XML_SAX2_MAGIC
        sax.internalSubset = _InternalSubsetFunc(verdict.internal_subset)
        sax.serror = on_error
        context = _lib.xmlSchemaNewValidCtxt(self._schema)
        if not context:
            raise MemoryError("libxml2 could not make a validation context")
        verdict.context = context
        try:
            _lib.xmlSchemaSetValidStructuredErrors(context, on_error, None)
            _lib.xmlSetStructuredErrorFunc(None, on_error)  # the parser's own errors (well-formedness)
            source = open_input()
            if not source:
                raise MemoryError("libxml2 could not make an input buffer")
            result = _lib.xmlSchemaValidateStream(context, source, _NO_ENCODING, ctypes.byref(sax), None)
        finally:
            _lib.xmlSetStructuredErrorFunc(None, _ErrorFunc())
            _lib.xmlSchemaFreeValidCtxt(context)
        if result == 0 and verdict.problem is None:
            return None
        return verdict.problem or f"not valid (libxml2 error {result})"


@functools.cache
def stream_schema(xsd: str) -> StreamSchema:
    """The compiled :class:`StreamSchema` of an XSD file in ``xsd/`` (cached per process)."""
    return StreamSchema(xsd)
