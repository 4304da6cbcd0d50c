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

import dataclasses
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
        lines = 0
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                lines += 1
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
        if len(values) != lines:  # lines refused, or the same order twice
            self.rewrite(values)
        else:
            self._count(len(values))
        return values

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
        with open(self.path, "ab+") as handle:
            line = spool_line_encode(entry)
            if handle.tell() > 0:
                handle.seek(-1, os.SEEK_END)
                if handle.read(1) != b"\n":  # an append of this process torn (disk full): keep it a line of its own
                    line = b"\n" + line
            handle.write(line)
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


class UnrecordedBook:
    """The execution worker's orders the broker answered whose write failed, by client order id:
    each in memory with the monotonic time its write failed, and in its account's spool under
    ``directory`` (``UnrecordedSpool``, one per account). The worker settles them
    (``ExecutionWorker._unrecorded_settle``, by ``trading.orders.unrecorded``'s rules); this
    only keeps them, here and on disk. ``monotonic`` is the worker's (tests move it)."""

    def __init__(self, directory: str | os.PathLike, *, monotonic, metrics_enabled: bool = True):
        self.directory = Path(directory)
        self._monotonic = monotonic
        self._metrics_enabled = metrics_enabled
        self._entries: dict[str, UnrecordedOrder] = {}
        self._since: dict[str, float] = {}
        self._spools: dict[int, UnrecordedSpool] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self):
        return iter(self._entries)

    def items(self):
        return self._entries.items()

    def spool(self, account_id: int) -> UnrecordedSpool:
        spool = self._spools.get(account_id)
        if spool is None:
            spool = self._spools[account_id] = UnrecordedSpool(
                self.directory, account_id, metrics_enabled=self._metrics_enabled
            )
        return spool

    def keep(self, entry: UnrecordedOrder) -> None:
        """Keep ``entry``: in memory, and appended (fsynced) to its account's spool, so a restart
        settles it too. A spool that cannot be written (the disk full, gone) is logged critical:
        the entry then lives in this process only, as before the spool."""
        coid = entry.client_order_id
        self._entries[coid] = entry
        self._since[coid] = self._monotonic()
        spool = self.spool(entry.account_id)
        try:
            spool.append(entry)
        except OSError:
            logger.critical(
                "execution: order %s (broker answer %s) could not be written to the spool %s: it is kept in "
                "memory only, and a restart before it is recorded loses it",
                coid,
                entry.answer,
                spool.path,
                exc_info=True,
            )

    def restore(self, account_ids: Iterable[int]) -> list[UnrecordedOrder]:
        """Start-up: take back what the previous process spooled for ``account_ids`` (corrupt
        lines quarantined by ``UnrecordedSpool.load``), each as waiting since its write failed
        (``failed_at``, wall clock). The previous process's breaker trial is not this one's (the
        breaker was restored from its records): a spooled trial's refusal is told to the breaker
        like any refusal. Returns the entries taken back."""
        wall, now = utcnow(), self._monotonic()
        restored = []
        for account_id in account_ids:
            for entry in self.spool(account_id).load():
                entry = dataclasses.replace(entry, trial=False)
                coid = entry.client_order_id
                self._entries[coid] = entry
                self._since[coid] = now - max((wall - entry.failed_at).total_seconds(), 0.0)
                restored.append(entry)
                logger.warning(
                    "execution: order %s (broker answer %s) of account %s, unrecorded when its write failed at %s, "
                    "taken back from the spool",
                    coid,
                    entry.answer,
                    account_id,
                    entry.failed_at.isoformat(),
                )
        return restored

    def of_account(self, account_id: int) -> list[tuple[str, UnrecordedOrder, float]]:
        """The account's entries with the seconds each has waited, in the order kept."""
        now = self._monotonic()
        return [(c, e, now - self._since[c]) for c, e in self._entries.items() if e.account_id == account_id]

    def settled(self, account_id: int, coids: Iterable[str]) -> None:
        """``coids`` of the account were written or found: they leave memory and the account's
        spool (rewritten with what remains). A spool that cannot be rewritten keeps them on disk:
        the next start finds them in our records and drops them then."""
        for coid in coids:
            del self._entries[coid], self._since[coid]
        spool = self.spool(account_id)
        try:
            spool.rewrite(e for e in self._entries.values() if e.account_id == account_id)
        except OSError:
            logger.exception("execution: account %s's spool %s could not be compacted", account_id, spool.path)


def _fsync_directory(directory: Path) -> None:
    """A file created, renamed or removed survives a power cut once its folder is fsynced."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
