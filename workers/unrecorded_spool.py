"""The execution worker's durable spool of orders the broker answered whose write failed.

When the order's write fails after the broker answered (the database went away), the worker
appends what the write would have written (``trading.orders.unrecorded.UnrecordedOrder``) to the
spool of the order's account, fsynced, BEFORE the failure is raised; a restarted worker reads it
at start-up and settles each entry as the running worker would have (written, or found in our
records). A refused order leaves no trace at the broker, so without this a restart in between
lost it (RTS 25: every order, refused ones too, with its times; RTS 6 Art. 17).

One file per account, ``<EXECUTION_STATE_DIR>/unrecorded-account-<id>.jsonl``: an account is
traded by one worker at a time (``execution_account_locks``), so two workers never share a file,
and a restart that trades the account, whatever other accounts it trades, finds its entries.
One JSON line per entry with its checksum (``spool_line_encode``). An entry leaves the file only
once it is written or found in our records: the file is then rewritten with what remains
(written beside it, fsynced, renamed over it), and removed when nothing does.

A line that does not read back whole (a crash mid-append, a disk or hand that altered it) is
never dropped: at start-up it is appended to ``unrecorded-account-<id>.quarantine.jsonl`` (with
where it came from, when and why, the raw line as text), logged as an error and counted
(``tradeops_execution_spool_quarantined_total``); the rest of the spool is settled. An operator
reads a quarantined line, finds the order in the broker's records or the worker's log (the
failed write's line names its client order id) and records it by hand; docs/execution-worker.md.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from tradeops.core.clock import utcnow
from tradeops.observability import metrics
from trading.orders.unrecorded import SpoolLineError, UnrecordedOrder, spool_line_decode, spool_line_encode

logger = logging.getLogger(__name__)


class UnrecordedSpool:
    """One account's spool file under ``directory`` (created when first needed)."""

    def __init__(self, directory: str | os.PathLike, account_id: int, *, metrics_enabled: bool = True):
        self.directory = Path(directory)
        self.account_id = account_id
        self.path = self.directory / f"unrecorded-account-{account_id}.jsonl"
        self.quarantine_path = self.directory / f"unrecorded-account-{account_id}.quarantine.jsonl"
        self._gauge = metrics.execution_unrecorded_spooled.labels(str(account_id)) if metrics_enabled else None
        self._quarantined = metrics.execution_spool_quarantined.labels(str(account_id)) if metrics_enabled else None

    def load(self) -> list[UnrecordedOrder]:
        """The entries in the file (one per client order id, the first written), in the order
        written. A line that does not read back whole is quarantined (appended, fsynced, to the
        quarantine file with its line number, the reason and the raw line) and logged as an error;
        then the file is rewritten with the entries alone, so a torn last line is not followed by
        the next append."""
        if not self.path.exists():
            self._count(0)
            return []
        entries: dict[str, UnrecordedOrder] = {}
        refused: list[tuple[int, bytes, str]] = []
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    entry = spool_line_decode(line)
                except SpoolLineError as exc:
                    refused.append((number, line, str(exc)))
                    continue
                if entry.account_id != self.account_id:
                    refused.append((number, line, f"an entry of account {entry.account_id} in this account's spool"))
                    continue
                entries.setdefault(entry.client_order_id, entry)
        if refused:
            self._quarantine(refused)
        values = list(entries.values())
        if refused or len(values) != sum(1 for _ in self._lines()):
            self.rewrite(values)
        else:
            self._count(len(values))
        return values

    def _lines(self):
        with open(self.path, "rb") as handle:
            yield from (line for line in handle if line.strip())

    def _quarantine(self, refused: list[tuple[int, bytes, str]]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        at = utcnow().isoformat()
        with open(self.quarantine_path, "ab") as handle:
            for number, line, reason in refused:
                record = {
                    "quarantined_at": at,
                    "spool": str(self.path),
                    "line_number": number,
                    "reason": reason,
                    "line": line.decode("utf-8", errors="backslashreplace"),
                }
                handle.write(json.dumps(record, sort_keys=True).encode() + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
        for number, _, reason in refused:
            logger.error(
                "execution: account %s's spool of unrecorded orders: line %s refused (%s); quarantined to %s "
                "for a person to record by hand: the rest is settled",
                self.account_id,
                number,
                reason,
                self.quarantine_path,
            )
        if self._quarantined is not None:
            self._quarantined.inc(len(refused))

    def append(self, entry: UnrecordedOrder) -> None:
        """Append ``entry`` and fsync it (the file, and the folder when the file is new): once this
        returns, a restart finds it. Raises ``OSError`` when it cannot."""
        self.directory.mkdir(parents=True, exist_ok=True)
        new = not self.path.exists()
        with open(self.path, "ab") as handle:
            handle.write(spool_line_encode(entry))
            handle.flush()
            os.fsync(handle.fileno())
        if new:
            _fsync_directory(self.directory)
        if self._gauge is not None:
            self._gauge.inc()

    def rewrite(self, entries: Iterable[UnrecordedOrder]) -> None:
        """The file holds ``entries`` alone now (the others were written or found): written beside
        it, fsynced, renamed over it, the folder fsynced; removed when there are none."""
        entries = list(entries)
        if not entries:
            if self.path.exists():
                self.path.unlink()
                _fsync_directory(self.directory)
            self._count(0)
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".new")
        with open(temporary, "wb") as handle:
            for entry in entries:
                handle.write(spool_line_encode(entry))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        _fsync_directory(self.directory)
        self._count(len(entries))

    def _count(self, n: int) -> None:
        if self._gauge is not None:
            self._gauge.set(n)


def _fsync_directory(directory: Path) -> None:
    """A file created, renamed or removed survives a power cut once its folder is fsynced."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
