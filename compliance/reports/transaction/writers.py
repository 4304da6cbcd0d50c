"""Write transaction report files, streaming: ISO 20022 auth.016 XML (bare ``Document`` or in
the ESMA ``head.003`` envelope with a ``head.001`` application header) and CSV.

Memory stays flat in the number of records: records are written as they come, in chunks.
Every XML chunk is validated against ESMA's schema before it is written (the chunk's ``Tx``
elements, exactly the bytes that go into the file, wrapped in the constant ``Document`` open
and close tags); a record the schema refuses is reported back to the caller, who holds it back,
and the rest of the chunk is written. The header is validated once at ``open``. So no byte
reaches the file that the XSD has not passed, without ever holding the whole tree: the
validation costs one libxml2 parse of each chunk.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import datetime
from typing import IO
from xml.sax.saxutils import escape

from lxml import etree

from compliance.reports import xsd
from compliance.reports.transaction.fields import COLUMNS

XML_CHUNK = 500  # records per validated chunk: ~0.5 MB; bigger chunks were no faster here


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


class XmlReportWriter:
    """Streams ``<Tx>`` elements into an auth.016 file, validating each chunk first.

    ``add(key, tx_xml)`` queues a record; ``flush()`` (called every ``chunk`` records and by
    ``close``) validates the queue, writes what passed and returns ``[(key, error)]`` for what
    did not. ``close()`` raises ``EmptyReport`` when nothing was written."""

    def __init__(self, fh: IO[bytes], *, header: AppHeader | None, chunk: int = XML_CHUNK):
        self.out = HashingWriter(fh)
        self.header = header
        self.chunk = chunk
        self.count = 0
        self._queue: list[tuple[object, str]] = []
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

    def add(self, key: object, tx_xml: str) -> list[tuple[object, str]]:
        self._queue.append((key, tx_xml))
        if len(self._queue) >= self.chunk:
            return self.flush()
        return []

    def _valid(self, body: str) -> str | None:
        try:
            etree.fromstring(f"{_DOC_OPEN}{body}{_DOC_CLOSE}", self._parser)
        except etree.XMLSyntaxError as exc:
            return str(exc)
        return None

    def flush(self) -> list[tuple[object, str]]:
        if not self._queue:
            return []
        queue, self._queue = self._queue, []
        body = "\n".join(xml for _key, xml in queue)
        failed: list[tuple[object, str]] = []
        if self._valid(body) is not None:
            # Find the culprits one by one; the rest of the chunk still goes.
            good = []
            for key, xml in queue:
                error = self._valid(xml)
                if error is None:
                    good.append(xml)
                else:
                    failed.append((key, error))
            body = "\n".join(good)
            written = len(good)
        else:
            written = len(queue)
        if written:
            if not self._opened:
                self._open()
            self.out.write((body + "\n").encode())
            self.count += written
        return failed

    def close(self) -> list[tuple[object, str]]:
        failed = self.flush()
        if not self.count:
            raise EmptyReport("no valid record: nothing to write")
        tail = _DOC_CLOSE + ("</Pyld></BizData>" if self.header is not None else "") + "\n"
        self.out.write(tail.encode())
        return failed


class CsvReportWriter:
    """One row per record, one column per RTS 22 field (``fields.COLUMNS``), UTF-8, header first."""

    def __init__(self, fh: IO[bytes], *, chunk: int = 2000):
        self.out = HashingWriter(fh)
        self.chunk = chunk
        self.count = 0
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\n")
        self._csv.writerow(COLUMNS)
        self._pending = 0

    def add(self, values: tuple[str, ...]) -> None:
        self._csv.writerow(values)
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
