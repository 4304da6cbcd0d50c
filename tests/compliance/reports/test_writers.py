"""The XML writer validates every chunk against the XSD before writing it (here or in the
validator process), holds back what the schema refuses and writes the rest; memory-bounded."""

from __future__ import annotations

import io
from dataclasses import replace
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


# ---------------------------------------------------------------- check="fields"


def shaped_records(n: int):
    """(key, shape, slots) of n valid records with every optional slot (venue id, short
    selling), both sides, a few price and quantity forms."""
    from tests.compliance.reports.test_facets import EQUITY_CFD

    builder = TransactionRecordBuilder(firm=FIRM, instruments={1: EQUITY_CFD}, accounts={1: ACCOUNT})
    for i in range(1, n + 1):
        row = ExecutionRow(
            i,
            1,
            1,
            "BUY" if i % 3 else "SELL",
            Decimal(i % 7 + 1) / 4,
            Decimal("101.25") + Decimal(i % 13) / 1000,
            "XLON",
            f"D{i}",
            AT,
            "a1",
        )
        built = builder.build(row, position_before=Decimal(i % 5 - 2))
        assert built.reasons == ()
        yield i, built.shape, built.slots


def write(records, **options):
    out, written, held = io.BytesIO(), [], []
    writer = XmlReportWriter(
        out, header=None, on_done=lambda keys, failed: (written.extend(keys), held.extend(failed)), **options
    )
    for key, shape, slots in records:
        writer.add_shaped(key, shape, slots)
    writer.close()
    return writer, out.getvalue(), written, held


def test_field_checks_write_the_bytes_full_validation_writes_and_libxml2_sees_only_the_samples():
    records = list(shaped_records(2100))
    fields, data, written, held = write(records, chunk=100, sample_every=5)
    full, full_data, _, _ = write(records, chunk=100, check="full", parallel=False)
    assert data == full_data and not held and written == list(range(1, 2101))
    assert xml_validate_bytes(data).valid
    # 21 chunks: the 1st, 6th, 11th, 16th and 21st through libxml2 whole, no other record
    assert fields.stats["sampled_chunks"] == 5 and fields.stats["libxml2_records"] == 500
    assert fields.stats["shapes"] == 2 and fields.stats["shapes_invalid"] == 0  # BUY; SELL with ShrtSellgInd


@pytest.mark.parametrize(
    ("slot", "bad", "element", "why"),
    [
        (3, "101.12345678901234", "Amt", "14 fraction digits, the schema allows at most 13"),
        (2, "1234567890123456789", "Unit", "19 digits, the schema allows at most 18"),
        (1, "2026-02-30T09:30:00Z", "TradDt", "day 30 of month 02"),
        (1, "2026-03-02T09:30:00", "TradDt", "does not match the pattern"),
        (0, "TOPS-17", "TxId", "does not match the pattern"),
        (4, "xlon", "TradVn", "does not match the pattern"),
    ],
)
@pytest.mark.parametrize("sampled", [False, True])
def test_a_corrupted_record_is_refused_naming_its_field_and_record(slot, bad, element, why, sampled):
    from compliance.reports.transaction.writers import error_field

    records = list(shaped_records(40))
    key, shape, slots = records[16]
    trn = slots[0]
    records[16] = (key, shape, slots[:slot] + (bad,) + slots[slot + 1 :])
    # chunks of 8: record 17 is in the 3rd chunk, validated whole by libxml2 only when sampled
    writer, data, written, held = write(records, chunk=8, sample_every=2 if sampled else 1000)
    assert [k for k, _ in held] == [17] and sorted(written) == [k for k in range(1, 41) if k != 17]
    error = held[0][1]
    assert f"record {bad if slot == 0 else trn}" in error and f"{element} (" in error and why in error
    assert "XSD:" in error  # libxml2 refused it too
    assert error_field(error) in {"price", "quantity", "trading_date_time", "transaction_reference_number", "venue"}
    assert xml_validate_bytes(data).transactions == 39 == writer.count


def test_a_shape_the_schema_refuses_sends_its_records_to_libxml2():
    """A corrupted constant part (here an LEI the XSD's pattern refuses; the builder's rules
    would have caught a real one) fails the shape's check; libxml2 then refuses each record,
    naming the element."""
    from compliance.reports.transaction.facets import TxShape
    from compliance.reports.transaction.writers import error_field
    from tests.compliance.reports.test_rules import FIRM_LEI

    records = list(shaped_records(12))
    key, shape, slots = records[5]
    broken = TxShape(
        tuple(s.replace(f"<ExctgPty>{FIRM_LEI}", "<ExctgPty>bad-lei") for s in shape.segments), shape.paths
    )
    records[5] = (key, broken, slots)
    writer, data, written, held = write(records, chunk=4, sample_every=1000)
    assert writer.stats["shapes_invalid"] == 1
    assert (
        [k for k, _ in held] == [6] and "ExctgPty" in held[0][1] and error_field(held[0][1]) == "executing_entity_lei"
    )
    assert xml_validate_bytes(data).transactions == 11


def test_a_field_check_libxml2_contradicts_stops_the_report():
    """If the field checks ever pass what libxml2 refuses, the report stops (in a sampled
    chunk): nothing is sent on checks that are not equivalent to the schema."""
    from compliance.reports.transaction.facets import TxShape
    from compliance.reports.transaction.writers import FieldCheckDisagreement

    records = list(shaped_records(10))
    key, shape, slots = records[2]
    lax = TxShape(shape.segments, shape.paths)
    lax._accepts = tuple(lambda text: True for _ in lax._accepts)  # a broken check: accepts anything
    records[2] = (key, lax, slots[:3] + ("1.12345678901234",) + slots[4:])
    with pytest.raises(FieldCheckDisagreement, match="record 3"):
        write(records, chunk=4, sample_every=1000)  # the first chunk is always sampled


def test_csv_rows_from_shapes_are_the_bytes_the_csv_module_writes():
    from compliance.reports.transaction.writers import CsvReportWriter
    from tests.compliance.reports.test_facets import EQUITY_CFD

    builder = TransactionRecordBuilder(firm=FIRM, instruments={1: EQUITY_CFD}, accounts={1: ACCOUNT})
    # a name with a comma and quotes in a constant column; a time text with a comma in a slot
    quoted = TransactionRecordBuilder(
        firm=FIRM, instruments={1: replace(EQUITY_CFD, full_name='APPLE, "INC" CFD')}, accounts={1: ACCOUNT}
    )
    built = []
    for i, b in enumerate([builder, quoted] * 20, start=1):
        stamp = "2026-03-02T09:30:00,5Z" if i == 7 else "2026-03-02T09:30:00.000001Z"
        row = ExecutionRow(
            i, 1, 1, "BUY" if i % 3 else "SELL", Decimal(2), "101.25", "XLON", f"D{i}", stamp, "a1", None, "2"
        )
        built.append(b.build(row, position_before=Decimal(-1)))
    assert all(r.reasons == () for r in built)
    assert built[6].csv_line is None and sum(r.csv_line is None for r in built) == 1
    fast, plain = io.BytesIO(), io.BytesIO()
    a, b = CsvReportWriter(fast), CsvReportWriter(plain)
    for r in built:
        a.add(r.values, r.csv_line)
        b.add(r.values)
    a.close(), b.close()
    assert fast.getvalue() == plain.getvalue() and b'"APPLE, ""INC"" CFD"' in fast.getvalue()
