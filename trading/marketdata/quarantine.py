"""Quarantine: where bad input goes instead of being dropped (ARCHITECTURE.md, Resilience).

A parser that meets a bad row, or a collector whose monitor quarantines a tick by rule, records a
``QuarantinedRow`` with the reason and where it came from (file and line, or the event). The
``Quarantine`` keeps them in memory (bounded) and, with ``path``, appends each as one JSON line to
a file a person can read, fix and replay. Nothing valid is lost with the bad rows.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from tradeops.core.errors import ApplicationError


class FileFormatError(ApplicationError):
    """The whole file is unusable (no or wrong header, unreadable encoding). Names the line."""

    code = "marketdata_file_invalid"

    def __init__(self, source: str, line: int, reason: str):
        super().__init__(f"{source}, line {line}: {reason}", extra={"source": source, "line": line})
        self.source = source
        self.line = line
        self.reason = reason


@dataclass(frozen=True, slots=True)
class QuarantinedRow:
    source: str  # file path, dataset name or collector source
    line: int  # 1-based line in the file; 0 for events
    reason: str  # stable code first, then detail: "non_positive_price: low -1.2 must be positive"
    raw: str  # the row as read (or the encoded event)
    # An event the market monitor quarantined: one finding per flag, ``{"flag", "reason", and its
    # figures as fields}`` (trading.marketdata.monitor's table), so nobody parses ``reason``.
    # Empty for a parser's row (and then not written to the file).
    findings: tuple[dict, ...] = ()

    @property
    def code(self) -> str:
        return self.reason.split(":", 1)[0]

    def __str__(self) -> str:
        where = f"{self.source}, line {self.line}" if self.line else self.source
        return f"{where}: {self.reason}"


class Quarantine:
    """Collects quarantined rows; ``keep`` bounds memory (the file, when given, keeps everything)."""

    def __init__(self, path: str | Path | None = None, *, keep: int = 10_000):
        self.path = Path(path) if path else None
        self.keep = keep
        self.rows: list[QuarantinedRow] = []
        self.count = 0
        self.by_code: Counter[str] = Counter()
        self._file: IO[str] | None = None

    def add(self, row: QuarantinedRow) -> None:
        self.count += 1
        self.by_code[row.code] += 1
        if len(self.rows) < self.keep:
            self.rows.append(row)
        if self.path is not None:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = self.path.open("a", encoding="utf-8")
            record = asdict(row)
            if not row.findings:  # a parser's row: its line as before
                del record["findings"]
            self._file.write(json.dumps(record, ensure_ascii=False) + "\n")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __len__(self) -> int:
        return self.count

    def __iter__(self):
        return iter(self.rows)

    def summary(self) -> str:
        if not self.count:
            return "nothing quarantined"
        codes = ", ".join(f"{code} {n}" for code, n in self.by_code.most_common())
        return f"{self.count} quarantined ({codes})"
