"""ESMA's ISO 20022 schemas for transaction reports (RTS 22), loaded with lxml.

The XSDs ship inside the app (``schemas/iso20022/``, byte-for-byte copies of the team's
reference files) because production validates every report before it leaves and a deployment
has no ``shared/`` folder. Three schema sets:

- ``document_schema()``: ``auth.016.001.01`` alone, for a bare ``Document``;
- ``header_schema()``: ``head.001.001.01``, the application header (``AppHdr``);
- ``envelope_schema()``: ``head.003.001.01`` (``BizData``) together with the other two, so its
  strict wildcards check the header and the payload as well.

``xml_validate_stream`` validates a file of any size with memory that does not grow with it:
libxml2 validates while it parses (lxml's ``iterparse(schema=...)``), and every finished
transaction is cleared from the tree as soon as it has been checked.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from lxml import etree

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas" / "iso20022"
AUTH016_XSD = SCHEMA_DIR / "auth.016.001.01_ESMAUG_Reporting_1.0.3.xsd"
HEAD001_XSD = SCHEMA_DIR / "head.001.001.01_ESMAUG_1.0.0.xsd"
HEAD003_XSD = SCHEMA_DIR / "head.003.001.01.xsd"

NS_AUTH016 = "urn:iso:std:iso:20022:tech:xsd:auth.016.001.01"
NS_HEAD001 = "urn:iso:std:iso:20022:tech:xsd:head.001.001.01"
NS_HEAD003 = "urn:iso:std:iso:20022:tech:xsd:head.003.001.01"
MESSAGE_DEFINITION = "auth.016.001.01"

# How many schema errors one validation keeps (a broken file can have one per transaction).
MAX_ERRORS = 50


@functools.cache
def document_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(AUTH016_XSD)))


@functools.cache
def header_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(HEAD001_XSD)))


@functools.cache
def envelope_schema() -> etree.XMLSchema:
    """head.003 with head.001 and auth.016 imported beside it: BizData's wildcards are
    ``processContents="strict"``, so the header and the payload need their declarations."""
    xs = "http://www.w3.org/2001/XMLSchema"
    root = etree.Element(f"{{{xs}}}schema", nsmap={"xs": xs})
    for namespace, path in ((NS_HEAD003, HEAD003_XSD), (NS_HEAD001, HEAD001_XSD), (NS_AUTH016, AUTH016_XSD)):
        etree.SubElement(root, f"{{{xs}}}import", namespace=namespace, schemaLocation=path.as_uri())
    return etree.XMLSchema(root)


def schema_for_root(tag: str) -> etree.XMLSchema:
    """The schema set that validates a file whose root element is ``tag`` (Clark notation)."""
    if tag == f"{{{NS_AUTH016}}}Document":
        return document_schema()
    if tag == f"{{{NS_HEAD003}}}BizData":
        return envelope_schema()
    if tag == f"{{{NS_HEAD001}}}AppHdr":
        return header_schema()
    raise ValueError(f"not a transaction report: root element {tag}")


@dataclass(frozen=True)
class XmlValidation:
    """Result of validating one file: ``valid``, the first errors (line: message), and the
    number of transactions (``Tx`` elements under ``FinInstrmRptgTxRpt``) seen."""

    valid: bool
    errors: tuple[str, ...]
    transactions: int


def _root_tag(fh: IO[bytes]) -> str:
    for _event, element in etree.iterparse(fh, events=("start",)):
        return element.tag
    raise ValueError("empty XML file")


def xml_validate_stream(source: str | Path | IO[bytes]) -> XmlValidation:
    """Validate a transaction report file (bare ``Document`` or ``BizData`` envelope) against
    ESMA's schemas while streaming it: libxml2 checks each element as it is parsed, and each
    transaction is dropped from the tree once complete, so memory stays flat in the number of
    transactions. Parse errors and schema errors both make the file invalid."""
    opened = None
    if isinstance(source, (str, Path)):
        opened = fh = open(source, "rb")  # noqa: SIM115 (closed in finally)
    else:
        fh = source
    try:
        start = fh.tell()
        tag = _root_tag(fh)
        fh.seek(start)
        schema = schema_for_root(tag)
        tx_tag = f"{{{NS_AUTH016}}}Tx"
        report_tag = f"{{{NS_AUTH016}}}FinInstrmRptgTxRpt"
        count = 0
        # the error log libxml2 fills is per thread: earlier validations' errors would show here
        etree.clear_error_log()
        context = etree.iterparse(fh, events=("end",), schema=schema, huge_tree=True, remove_blank_text=True)
        try:
            for _event, element in context:
                if element.tag == tx_tag:
                    parent = element.getparent()
                    if parent is not None and parent.tag == report_tag:
                        count += 1
                        element.clear()
                        # Drop what is already checked; siblings before this one are gone too.
                        while element.getprevious() is not None:
                            del parent[0]
        except etree.XMLSyntaxError as exc:  # a schema error surfaces as a syntax error here
            errors = [f"line {e.line}: {e.message}" for e in list(exc.error_log)[:MAX_ERRORS]] or [str(exc)]
            return XmlValidation(False, tuple(errors), count)
        return XmlValidation(True, (), count)
    finally:
        if opened is not None:
            opened.close()


def xml_validate_bytes(data: bytes) -> XmlValidation:
    """``xml_validate_stream`` over bytes in memory (small files, tests)."""
    import io

    return xml_validate_stream(io.BytesIO(data))
