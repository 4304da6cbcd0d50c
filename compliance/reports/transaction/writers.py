"""Write transaction report files, streaming: ISO 20022 auth.016 XML (bare ``Document`` or in
the ESMA ``head.003`` envelope with a ``head.001`` application header) and CSV.

Memory stays flat in the number of records: records are written as they come, in chunks.
No byte reaches an XML file that is not valid against ESMA's auth.016 XSD; the header is
validated once at ``open``. Two ways of making sure, ``check``:

- ``"fields"`` (the default): a record comes as a shape and slot texts (``facets.TxShape``).
  Each shape is validated once against the full XSD with placeholder texts in its slots (and
  read back, to prove each slot is the element its path names); each record's slot texts are
  checked against their elements' XSD simple types (``facets``: patterns, digits, bounds,
  enumerations, ``xs:dateTime``, read from the XSD). A record whose shape or texts fail is
  validated on its own by libxml2, which decides (the refusal names the record's field). On
  top, the first chunk and every ``sample_every``-th chunk are validated whole by libxml2: if
  it ever refuses a record the field checks passed, ``FieldCheckDisagreement`` stops the report
  (a bug to fix, never a file sent on a weaker check). It costs a few microseconds a record;
- ``"full"``: every chunk is parsed and validated by libxml2 (the exact bytes that go into the
  file, wrapped in the constant ``Document`` tags), ~40 us a record; past a few chunks in a
  child process (``compliance.reports.xsd_worker``) on another core, two chunks behind.

Records added as plain XML (``add``: cancellations) are always validated by libxml2. A record
the schema refuses is reported back to the caller, who holds it back; the rest is written.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO
from xml.sax.saxutils import escape

from lxml import etree

from compliance.reports import xsd
from compliance.reports.transaction.facets import TxShape
from compliance.reports.transaction.fields import COLUMNS
from compliance.reports.xsd_worker import chunk_check as xsd_chunk_check

XML_CHUNK = 500  # records per chunk: ~0.5 MB; bigger chunks were no faster here
SAMPLE_EVERY = 20  # check="fields": the first chunk and every 20th are validated whole by libxml2


class FieldCheckDisagreement(Exception):
    """libxml2 refused a record that the field checks had passed: the checks are not
    equivalent to the XSD for some value. The report stops; nothing is sent on them."""


class EmptyReport(Exception):
    """No record to write: auth.016 needs at least one transaction, so no file is made."""


class HashingWriter:
    """A binary file wrapper that counts bytes and computes their SHA-256 as they are written."""

    def __init__(self, fh: IO[bytes]):
        self._fh = fh
        self._sha = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> None:
        self._fh.write(data)
        self._sha.update(data)
        self.size += len(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


@dataclass(frozen=True)
class AppHeader:
    """The ``head.001`` business application header (sender, receiver, message id, time)."""

    from_lei: str
    to_id: str
    to_scheme: str
    message_id: str  # BizMsgIdr, up to 35 characters
    created_at: datetime  # UTC

    def xml(self) -> str:
        created = self.created_at.strftime("%Y-%m-%dT%H:%M:%SZ")
        return (
            f'<AppHdr xmlns="{xsd.NS_HEAD001}"><Fr><OrgId><Id><OrgId><Othr><Id>{escape(self.from_lei)}</Id>'
            "<SchmeNm><Prtry>LEI</Prtry></SchmeNm></Othr></OrgId></Id></OrgId></Fr>"
            f"<To><OrgId><Id><OrgId><Othr><Id>{escape(self.to_id)}</Id><SchmeNm><Prtry>{escape(self.to_scheme)}"
            "</Prtry></SchmeNm></Othr></OrgId></Id></OrgId></To>"
            f"<BizMsgIdr>{escape(self.message_id)}</BizMsgIdr><MsgDefIdr>{xsd.MESSAGE_DEFINITION}</MsgDefIdr>"
            f"<CreDt>{created}</CreDt></AppHdr>"
        )


_DOC_OPEN = f'<Document xmlns="{xsd.NS_AUTH016}"><FinInstrmRptgTxRpt>'
_DOC_CLOSE = "</FinInstrmRptgTxRpt></Document>"
PROJECT_ROOT = Path(__file__).resolve().parents[3]
MAX_IN_FLIGHT = 2  # chunks sent to the validator and not yet answered
PARALLEL_AFTER_CHUNKS = 2  # small reports are validated in-process (starting a process costs ~0.3 s)

Done = Callable[[list, list], None]  # (keys written, [(key, error)] held back)


# The report column of an auth.016 element, to name the field of a schema refusal.
ELEMENT_COLUMNS = {
    "TxId": "transaction_reference_number",
    "ExctgPty": "executing_entity_lei",
    "SubmitgPty": "submitting_entity_lei",
    "TradDt": "trading_date_time",
    "TradgCpcty": "trading_capacity",
    "Unit": "quantity",
    "NmnlVal": "quantity",
    "Amt": "price",
    "TradVn": "venue",
    "TradPlcMtchgId": "venue_transaction_id",
    "ShrtSellgInd": "short_selling_indicator",
    "FullNm": "instrument_full_name",
    "ClssfctnTp": "instrument_classification",
    "Algo": "investment_decision_id",
}
_ELEMENT = re.compile(r"^record \S*: (\w+) \(|Element '(?:\{[^}]*\})?(\w+)'")


def error_field(error: str) -> str:
    """The column a schema refusal is about (the first element it names), or ``""``."""
    m = _ELEMENT.search(error)
    if m is None:
        return ""
    element = m.group(1) or m.group(2)
    return ELEMENT_COLUMNS.get(element, element)


class XsdValidator:
    """The XSD check of chunks in a child process (``compliance.reports.xsd_worker``), so it
    runs on another core while this one builds the next chunk. Answers come back in order."""

    def __init__(self):
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "compliance.reports.xsd_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=str(PROJECT_ROOT),
            env=env,
        )

    def send(self, body: bytes) -> None:
        self.process.stdin.write(struct.pack(">I", len(body)) + body)
        self.process.stdin.flush()

    def receive(self) -> list:
        header = self.process.stdout.read(4)
        if len(header) < 4:
            raise OSError("XSD validator process ended")
        (length,) = struct.unpack(">I", header)
        return json.loads(self.process.stdout.read(length))

    def close(self) -> None:
        try:
            self.process.stdin.write(struct.pack(">I", 0))
            self.process.stdin.close()
        except OSError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class XmlReportWriter:
    """Streams ``<Tx>`` elements into an auth.016 file, each checked against the XSD before it
    is written (``check``: ``fields`` or ``full``, see the module's docstring).

    ``add_shaped(key, shape, slots)`` queues a record built as a shape and its slot texts;
    ``add(key, tx_xml)`` one as plain XML (always validated by libxml2). Every ``chunk``
    records the chunk is checked and written, and ``on_done(keys_written, [(key, error)])`` is
    told what went into the file and what the XSD refused (held back by the caller).
    ``close()`` finishes; it raises ``EmptyReport`` when nothing was written."""

    def __init__(
        self,
        fh: IO[bytes],
        *,
        header: AppHeader | None,
        on_done: Done,
        chunk: int = XML_CHUNK,
        parallel: bool = True,
        check: str = "fields",
        sample_every: int = SAMPLE_EVERY,
    ):
        if check not in ("fields", "full"):
            raise ValueError(f"check must be 'fields' or 'full', not {check!r}")
        self.out = HashingWriter(fh)
        self.header = header
        self.on_done = on_done
        self.chunk = chunk
        self.parallel = parallel and check == "full"
        self.fields = check == "fields"
        self.sample_every = max(1, sample_every)
        self.count = 0
        # what was done, for the run's summary and the benchmark
        self.stats = {"shapes": 0, "shapes_invalid": 0, "sampled_chunks": 0, "chunks": 0, "libxml2_records": 0}
        self._keys: list = []
        self._xml: list[str] = []
        self._notes: list[str | None] = []  # None: passed the field checks; else why libxml2 must look
        self._shapes: dict[TxShape, bool] = {}
        self._in_flight: deque = deque()
        self._validator: XsdValidator | None = None
        self._dispatched = 0
        self._parser = etree.XMLParser(schema=xsd.document_schema(), collect_ids=False, resolve_entities=False)
        self._opened = False

    def _open(self) -> None:
        self.out.write(b'<?xml version="1.0" encoding="UTF-8"?>\n')
        if self.header is not None:
            header = self.header.xml()
            try:
                etree.fromstring(header, etree.XMLParser(schema=xsd.header_schema()))
            except etree.XMLSyntaxError as exc:
                raise ValueError(f"application header is not valid head.001: {exc}") from exc
            self.out.write(f'<BizData xmlns="{xsd.NS_HEAD003}"><Hdr>{header}</Hdr><Pyld>'.encode())
        self.out.write((_DOC_OPEN + "\n").encode())
        self._opened = True

    def add(self, key: object, tx_xml: str) -> None:
        """A record as plain XML: validated by libxml2 whatever ``check`` is."""
        self._keys.append(key)
        self._xml.append(tx_xml)
        self._notes.append("")
        if len(self._keys) >= self.chunk:
            self._dispatch()

    def add_shaped(self, key: object, shape: TxShape, slots: tuple[str, ...]) -> None:
        """A record as a shape and its slot texts (``facets.TxShape``)."""
        self._keys.append(key)
        self._xml.append(shape.render(slots))
        if not self.fields:
            self._notes.append("")
        else:
            valid = self._shapes.get(shape)
            if valid is None:
                valid = self._shape_check(shape)
            if not valid:
                self._notes.append("")
            else:
                errors = shape.slot_errors(slots)
                self._notes.append(f"record {slots[0]}: {'; '.join(errors)}" if errors else None)
        if len(self._keys) >= self.chunk:
            self._dispatch()

    def _shape_check(self, shape: TxShape) -> bool:
        """Validate a shape once: placeholders in its slots, the whole ``Tx`` through the XSD,
        then each placeholder found at its slot's path (so a slot's type is its element's)."""
        placeholders = shape.placeholder_slots()
        valid = not shape.slot_errors(placeholders)
        if valid:
            try:
                root = etree.fromstring(_DOC_OPEN + shape.render(placeholders) + _DOC_CLOSE, self._parser)
            except etree.XMLSyntaxError:
                valid = False
            else:
                ns = f"{{{xsd.NS_AUTH016}}}"
                new = root[0][0][0]
                for path, text in zip(shape.paths, placeholders, strict=True):
                    found = new.find("/".join(ns + part for part in path.split("/")))
                    if found is None or found.text != text or len(found):
                        valid = False
        self._shapes[shape] = valid
        self.stats["shapes"] += 1
        self.stats["shapes_invalid"] += not valid
        return valid

    def _dispatch(self) -> None:
        if not self._keys:
            return
        keys, xml, notes = self._keys, self._xml, self._notes
        self._keys, self._xml, self._notes = [], [], []
        body = "\n".join(xml).encode()
        self._dispatched += 1
        self.stats["chunks"] += 1
        if self.fields:
            if (self._dispatched - 1) % self.sample_every == 0:
                self.stats["sampled_chunks"] += 1
                self.stats["libxml2_records"] += len(keys)
                failed = xsd_chunk_check(self._parser, body)
                self._write(keys, body, self._sample_verdict(keys, notes, failed))
            else:
                self._write(keys, body, self._flagged_check(xml, notes))
            return
        if self.parallel and self._validator is None and self._dispatched > PARALLEL_AFTER_CHUNKS:
            try:
                self._validator = XsdValidator()
            except OSError:
                self.parallel = False
        if self._validator is not None:
            try:
                self._validator.send(body)
                self._in_flight.append((keys, body))
            except OSError:
                self._fall_back()
                self._write(keys, body, xsd_chunk_check(self._parser, body))
            while len(self._in_flight) > MAX_IN_FLIGHT:
                self._complete()
        else:
            self._write(keys, body, xsd_chunk_check(self._parser, body))

    def _flagged_check(self, xml: list[str], notes: list[str | None]) -> list:
        """libxml2 on each record that did not pass the field checks; it decides."""
        failed = []
        for index, note in enumerate(notes):
            if note is None:
                continue
            self.stats["libxml2_records"] += 1
            problems = xsd_chunk_check(self._parser, xml[index].encode())
            if problems:
                failed.append([index, self._reason(note, problems[0][1])])
        return failed

    def _sample_verdict(self, keys: list, notes: list[str | None], failed: list) -> list:
        """A chunk libxml2 validated whole: a refusal of a record the field checks passed
        stops the report; the others are held back with both reasons."""
        if any(index == -1 for index, _ in failed):
            if all(note is None for note in notes):
                raise FieldCheckDisagreement(f"libxml2 refused a chunk the field checks passed: {failed[0][1]}")
            return failed
        disagreements = [(keys[i], error) for i, error in failed if notes[i] is None]
        if disagreements:
            key, error = disagreements[0]
            raise FieldCheckDisagreement(
                f"libxml2 refused record {key} that the field checks passed ({len(disagreements)} such): {error}"
            )
        return [[i, self._reason(notes[i], error)] for i, error in failed]

    @staticmethod
    def _reason(note: str | None, xsd_error: str) -> str:
        return f"{note}; XSD: {xsd_error}" if note else xsd_error

    def _complete(self) -> None:
        keys, body = self._in_flight.popleft()
        try:
            failed = self._validator.receive()
        except OSError:
            self._in_flight.appendleft((keys, body))
            self._fall_back()
            return
        self._write(keys, body, failed)

    def _fall_back(self) -> None:
        """The validator process died: check what it had in hand here, and go on here."""
        if self._validator is not None:
            self._validator.close()
        self._validator, self.parallel = None, False
        while self._in_flight:
            keys, body = self._in_flight.popleft()
            self._write(keys, body, xsd_chunk_check(self._parser, body))

    def _write(self, keys: list, body: bytes, failed: list) -> None:
        held: list[tuple[object, str]] = []
        if failed:
            bad = {index: error for index, error in failed}
            if -1 in bad:  # invalid as a whole, no element alone: hold the chunk back
                self.on_done([], [(key, bad[-1]) for key in keys])
                return
            parts = body.split(b"\n")
            held = [(keys[i], bad[i]) for i in sorted(bad)]
            keys = [k for i, k in enumerate(keys) if i not in bad]
            body = b"\n".join(p for i, p in enumerate(parts) if i not in bad)
        if keys:
            if not self._opened:
                self._open()
            self.out.write(body + b"\n")
            self.count += len(keys)
        self.on_done(keys, held)

    def close(self) -> None:
        try:
            self._dispatch()
            while self._in_flight:
                self._complete()
        finally:
            if self._validator is not None:
                self._validator.close()
                self._validator = None
        if not self.count:
            raise EmptyReport("no valid record: nothing to write")
        tail = _DOC_CLOSE + ("</Pyld></BizData>" if self.header is not None else "") + "\n"
        self.out.write(tail.encode())


class CsvReportWriter:
    """One row per record, one column per RTS 22 field (``fields.COLUMNS``), UTF-8, header first."""

    def __init__(self, fh: IO[bytes], *, chunk: int = 5000):
        self.out = HashingWriter(fh)
        self.chunk = chunk
        self.count = 0
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")
        self._csv.writerow(COLUMNS)
        self._pending = 0

    def add(self, values: tuple[str, ...], line: str | None = None) -> None:
        """One row: ``line`` when the caller has it as CSV text already (``BuiltRecord.csv_line``,
        the same bytes ``csv`` writes for ``values``), else ``values`` through ``csv``."""
        if line is None:
            self._csv.writerow(values)
        else:
            self._buffer.write(line)
        self.count += 1
        self._pending += 1
        if self._pending >= self.chunk:
            self.flush()

    def flush(self) -> None:
        data = self._buffer.getvalue()
        if data:
            self.out.write(data.encode())
        self._buffer.seek(0)
        self._buffer.truncate()
        self._pending = 0

    def close(self) -> None:
        self.flush()
        if not self.count:
            raise EmptyReport("no valid record: nothing to write")
