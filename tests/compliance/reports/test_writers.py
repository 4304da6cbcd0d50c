"""The XML writer validates every chunk against the XSD before writing it (here or in the
validator process), holds back what the schema refuses and writes the rest; memory-bounded."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from compliance.reports.transaction.builder import ExecutionRow, TransactionRecordBuilder
from compliance.reports.transaction.writers import EmptyReport, XmlReportWriter
from compliance.reports.xsd import xml_validate_bytes
from tests.compliance.reports.test_rules import ACCOUNT, EURUSD, FIRM

AT = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)


def records(n: int):
    builder = TransactionRecordBuilder(firm=FIRM, instruments={1: EURUSD}, accounts={1: ACCOUNT})
    for i in range(1, n + 1):
        row = ExecutionRow(
            i, 1, 1, "BUY" if i % 2 else "SELL", Decimal("0.5"), Decimal("1.1"), "XOFF", f"D{i}", AT, "a1"
        )
        yield i, builder.build(row).xml


@pytest.mark.parametrize("parallel", [False, True])
def test_a_record_the_schema_refuses_is_held_back_and_the_rest_written(parallel):
    out, written, held = io.BytesIO(), [], []
    writer = XmlReportWriter(
        out,
        header=None,
        on_done=lambda keys, failed: (written.extend(keys), held.extend(failed)),
        chunk=4,
        parallel=parallel,
    )
    for key, xml in records(30):
        if key == 17:  # a capacity the schema does not know, past the builder's rules
            xml = xml.replace("<TradgCpcty>DEAL</TradgCpcty>", "<TradgCpcty>SELF</TradgCpcty>")
        writer.add(key, xml)
    writer.close()
    assert [k for k, _ in held] == [17] and "TradgCpcty" in held[0][1]
    assert sorted(written) == [k for k in range(1, 31) if k != 17]
    result = xml_validate_bytes(out.getvalue())
    assert result.valid and result.transactions == 29 == writer.count


def test_nothing_valid_means_no_file():
    writer = XmlReportWriter(io.BytesIO(), header=None, on_done=lambda keys, failed: None)
    with pytest.raises(EmptyReport):
        writer.close()


class _Rows:
    """Stands for a queryset's ``iterator()`` (the row shapes the generator reads)."""

    def __init__(self, rows):
        self.rows = rows

    def iterator(self, chunk_size):
        return iter(self.rows)


def test_execution_rows_read_every_database_shape():
    from compliance.reports.generators.transaction import execution_rows

    start = datetime(2026, 3, 2, tzinfo=UTC)
    base = (1, 1, 1, "BUY", Decimal("1"), Decimal("1.1"), "XOFF", "D1")
    sqlite = base + (AT, None, None)  # datetimes and Decimals, no short-selling column
    sqlite_short = sqlite + (None,)  # with the position before the fill
    pg = base[:5] + ("1.1",) + base[6:] + ("2026-03-01T23:59:59.000001Z", "algo", None, "100000")
    pg_short = pg + (Decimal("-2"),)
    rows = list(execution_rows([_Rows([sqlite, sqlite_short, pg, pg_short])], period_start=start))
    assert [(r.algo_id, late, position) for r, late, position in rows] == [
        ("", False, None),
        ("", False, Decimal(0)),
        ("algo", True, None),
        ("algo", True, Decimal("-2")),
    ]
    assert rows[2][0].units == "100000" and rows[0][0].units is None
