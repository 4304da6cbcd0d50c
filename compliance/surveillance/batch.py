"""Batch surveillance of a JSONL order history (the engine behind ``manage.py surveil``).

No Django: usable from any script. Each input line is decoded on its own; a bad line becomes a
``LineError`` (line number, field, message) and the rest of the file is still processed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import msgspec
import orjson

from compliance.surveillance.engine import OutOfOrder, SurveillanceEngine
from compliance.surveillance.records import FillRecord, OrderMessage, field_of, record_decoder


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: field '{self.field}': {self.message}"


@dataclass(slots=True)
class BatchStats:
    lines: int = 0
    records: int = 0
    order_events: int = 0  # order messages and fills
    alerts: int = 0
    errors: list[LineError] = field(default_factory=list)
    alerts_by_type: dict[str, int] = field(default_factory=dict)


def surveil_lines(
    lines: Iterable[bytes],
    *,
    engine: SurveillanceEngine,
    emit: Callable[[bytes], object],
    max_errors_kept: int = 10_000,
) -> BatchStats:
    """Decode, surveil and emit: ``emit`` receives each alert as one JSON line (bytes, ending in
    a newline). Returns counts and the bad lines (the first ``max_errors_kept`` of them)."""
    stats = BatchStats()
    decode = record_decoder.decode
    process = engine.process
    alerts = engine.alerts
    errors = stats.errors
    n_errors = 0
    lineno = 0
    records = 0
    order_events = 0
    for lineno, raw in enumerate(lines, 1):
        if len(raw) < 8 and not raw.strip():  # blank line (the length test spares the strip)
            continue
        try:
            rec = decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            n_errors += 1
            if len(errors) < max_errors_kept:
                message = str(exc)
                errors.append(LineError(lineno, field_of(message), message))
            continue
        try:
            process(rec)
        except OutOfOrder as exc:
            n_errors += 1
            if len(errors) < max_errors_kept:
                errors.append(LineError(lineno, "ts", str(exc)))
            continue
        records += 1
        cls = rec.__class__
        if cls is OrderMessage or cls is FillRecord:
            order_events += 1
        if alerts:
            _emit_all(engine.take_alerts(), emit, stats)
    _emit_all(engine.finish(), emit, stats)
    stats.lines = lineno
    stats.records = records
    stats.order_events = order_events
    if n_errors > len(errors):
        errors.append(LineError(0, "line", f"{n_errors - len(errors)} further bad lines not listed"))
    return stats


def _emit_all(batch, emit, stats: BatchStats) -> None:
    for alert in batch:
        emit(orjson.dumps(alert.as_dict(), option=orjson.OPT_APPEND_NEWLINE))
        stats.alerts += 1
        stats.alerts_by_type[alert.alert_type] = stats.alerts_by_type.get(alert.alert_type, 0) + 1
