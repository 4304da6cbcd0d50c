"""A child process that validates chunks of auth.016 ``Tx`` elements against ESMA's XSD, so
that a big report's schema validation runs on another core while the report is built.

Protocol on stdin/stdout (binary): a request is a 4-byte big-endian length then that many bytes
of UTF-8 ``Tx`` elements separated by newlines; the answer is a 4-byte length then JSON:
``[]`` when the chunk is valid, else ``[[index, error], ...]`` for each invalid element. A
zero-length request ends the process. No Django, no database: lxml and the shipped schemas only.
Started by ``compliance.reports.transaction.writers.XsdValidator``.
"""

from __future__ import annotations

import json
import struct
import sys

from lxml import etree

from compliance.reports.xsd import NS_AUTH016, document_schema

OPEN = f'<Document xmlns="{NS_AUTH016}"><FinInstrmRptgTxRpt>'.encode()
CLOSE = b"</FinInstrmRptgTxRpt></Document>"


def chunk_check(parser: etree.XMLParser, body: bytes) -> list[list]:
    """``[]`` if the chunk is valid, else ``[index, error]`` of each invalid element."""
    try:
        etree.fromstring(OPEN + body + CLOSE, parser)
        return []
    except etree.XMLSyntaxError:
        pass
    failed = []
    for index, element in enumerate(body.split(b"\n")):
        try:
            etree.fromstring(OPEN + element + CLOSE, parser)
        except etree.XMLSyntaxError as exc:
            failed.append([index, str(exc)[:500]])
    return failed or [[-1, "the chunk is invalid as a whole"]]


def main() -> None:
    parser = etree.XMLParser(schema=document_schema(), collect_ids=False, resolve_entities=False)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        header = stdin.read(4)
        if len(header) < 4:
            return
        (length,) = struct.unpack(">I", header)
        if length == 0:
            return
        body = stdin.read(length)
        answer = json.dumps(chunk_check(parser, body)).encode()
        stdout.write(struct.pack(">I", len(answer)) + answer)
        stdout.flush()


if __name__ == "__main__":
    main()
