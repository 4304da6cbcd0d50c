"""The outbox relay: publishes unsent rows in ``id`` order and marks them sent.

Guarantees:
- nothing is lost: a row is marked sent only after the bus acknowledged it (``acks=all``);
- per-key order: rows go out in id order, and only the acknowledged prefix of a batch is marked,
  so a failure in the middle re-publishes from that row on (never skips ahead). Ids are taken at
  insert and rows become visible at commit, so this holds per key when the writers of one key
  serialise (trading's services lock the order and position rows they change); a row that
  commits after a later id was published still goes out, at the next full scan;
- a broker outage just makes rows wait: the batch stays in flight (librdkafka retries) and no
  new rows are read until it is acknowledged or times out, then it is retried with back-off;
- a crash of the relay between publish and mark re-publishes the unmarked rows: at-least-once,
  and consumers dedupe by ``event_id``; the embedded dispatcher marks the rows it relayed with
  its sinks' next batch (``step(mark=False)``, then ``mark_sent``: one UPDATE for many steps),
  so there that window is up to one batch (``tradeops.bus.runner.EMBEDDED_SINK_SECONDS``);
- one active relay per database (a PostgreSQL advisory lock); others wait as hot standbys.

Waking up (the relay process, ``run``): on PostgreSQL an idle leader waits on ``LISTEN
tradeops_outbox`` (its own autocommit connection, ``OutboxListener``); the outbox table's
statement-level AFTER INSERT trigger (``outbox_notify``, a pgtrigger in ``Outbox.Meta``) sends
``NOTIFY tradeops_outbox`` and PostgreSQL delivers it when the writing transaction commits, so a
row is read as soon as it is visible, not at the next poll. The wait still ends after
``idle_timeout`` seconds (2 by default) without a notification, which covers a notification
missed while the listening connection was down (it reconnects at the next wait, then looks once)
and rows written with the trigger skipped; a listener that cannot connect degrades to that timed polling and says
so in the log. Standbys and SQLite sleep ``idle_sleep`` (0.2 s) between looks, as before.

Batch size: 1,000 rows (one ~0.5 MB SELECT, one UPDATE by id array) measured best, ~22k rows/s
to the local broker; 500 gave ~19k and 5,000 ~15k (bench/outbox_relay.py, 2 shared cores).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import DatabaseError, connection, connections

from tradeops.bus.base import Bus
from tradeops.core.clock import utcnow
from tradeops.observability.metrics import outbox_published
from tradeops.outbox.models import Outbox
from tradeops.outbox.services import (
    outbox_commits,
    outbox_mark_sent,
    outbox_note_failure,
    outbox_prune,
    outbox_unsent,
)

logger = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x7472_6164_6F70_73  # "tradops": one relay per database
NOTIFY_CHANNEL = "tradeops_outbox"  # the outbox_notify trigger's channel (tradeops/outbox/models.py)


def plain_connection_params(alias: str = "default") -> dict:
    """``psycopg.connect`` arguments for a connection of one's own to the alias's database (same
    server, database, role and options; without Django's cursor class and adapters)."""
    params = connections[alias].get_connection_params()
    for key in ("cursor_factory", "context"):
        params.pop(key, None)
    return params


class OutboxListener:
    """``LISTEN tradeops_outbox`` on a connection of its own (autocommit, the Django alias's
    parameters), so notifications are not mixed into the relay's transactions and a reconnect of
    the relay's connection does not drop the subscription.

    ``wait(timeout)`` returns True when the caller should look at the table now: a notification
    arrived (every pending one is consumed: a burst of commits wakes the relay once), or the
    LISTEN was just (re)established (a row committed before it was not notified: look once). It
    returns False when ``timeout`` passed without one or the connection failed (the next call
    reconnects). It never raises for a database error: the caller's fallback is the timeout."""

    def __init__(self, alias: str = "default") -> None:
        self.alias = alias
        self._conn = None
        self.connects = 0
        self.failures = 0

    def _connect(self):
        import psycopg

        conn = psycopg.connect(**plain_connection_params(self.alias), autocommit=True)
        conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
        self.connects += 1
        return conn

    @property
    def backend_pid(self) -> int | None:
        """The listening connection's server process, while connected."""
        return self._conn.info.backend_pid if self._conn is not None and not self._conn.closed else None

    def wait(self, timeout: float) -> bool:
        import psycopg

        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
                logger.info("outbox relay: listening on %s", NOTIFY_CHANNEL)
                return True
            woken = any(True for _ in self._conn.notifies(timeout=timeout, stop_after=1))
            if woken:
                for _ in self._conn.notifies(timeout=0):  # the rest of a burst: one wake-up for all
                    pass
            return woken
        except psycopg.Error as exc:
            self.failures += 1
            logger.warning("outbox relay: LISTEN %s failed (%s); polling every %.1f s", NOTIFY_CHANNEL, exc, timeout)
            self.close()
            time.sleep(timeout)
            return False

    def close(self) -> None:
        import psycopg

        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:  # closing a broken connection: nothing left to do
                logger.debug("outbox relay: closing the listener failed", exc_info=True)
            self._conn = None


@dataclass
class _InFlight:
    ids: list[int]
    results: list  # None = not yet acknowledged, True = delivered, Exception = failed
    started: float

    @property
    def done(self) -> bool:
        return all(r is not None for r in self.results)


@dataclass
class RelayStats:
    published: int = 0
    marked: int = 0
    failures: int = 0
    pruned: int = 0
    batches: int = 0
    woken_by_notify: int = 0  # idle waits ended by a NOTIFY or a new LISTEN (run on PostgreSQL)
    woken_by_timeout: int = 0  # idle waits that ran out (the fallback)
    errors: list[str] = field(default_factory=list)


class OutboxRelay:
    def __init__(
        self,
        *,
        bus: Bus,
        batch_size: int = 1000,
        retention: timedelta = timedelta(days=7),
        prune_every: float = 300.0,
        retry_backoff: float = 1.0,
        use_lock: bool = True,
        rescan_every: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.bus = bus
        self.batch_size = batch_size
        self.retention = retention
        self.prune_every = prune_every
        self.retry_backoff = retry_backoff
        self.use_lock = use_lock
        self.clock = clock
        self.rescan_every = rescan_every
        self.stats = RelayStats()
        self._floor: int | None = None  # highest id of the last fully published batch
        self._last_full_scan = float("-inf")
        self._inflight: _InFlight | None = None
        self._retry_at = 0.0
        self._last_prune = 0.0
        self._leader = False
        self._waiting_logged = 0.0
        self._commits_seen: int | None = None  # outbox_commits() when the last batch was read
        # Rows acknowledged by ``step(mark=False)`` and not marked yet (``mark_sent``), and the
        # highest of them: the next read continues after it, so they are not read again.
        self._kept: list[int] = []
        self._kept_last: int | None = None

    # ------------------------------------------------------------ leadership

    def acquire_leadership(self) -> bool:
        if self._leader or not self.use_lock or connection.vendor != "postgresql":
            self._leader = True
            return True
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
            self._leader = bool(cursor.fetchone()[0])
        if self._leader:
            logger.info("outbox relay: leader (advisory lock held)")
        return self._leader

    def release_leadership(self) -> None:
        if self._leader and self.use_lock and connection.vendor == "postgresql":
            try:
                with connection.cursor() as cursor:
                    cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
            except DatabaseError:
                pass
        self._leader = False

    # ------------------------------------------------------------ one step

    def wanted(self) -> bool:
        """Whether a ``step`` may have something to do: a batch in flight or waiting for a retry,
        rows committed by this process since the last read (``outbox_commits``), a full batch
        read last time (more follow), or ``rescan_every`` seconds since the last full scan (rows
        from other processes). The embedded run steps the relay only then, instead of querying
        the table between every two events."""
        if self._inflight is not None or self._floor is not None:
            return True
        if self._commits_seen != outbox_commits():
            return True
        return self.clock() - self._last_full_scan >= self.rescan_every

    def step(self, *, flush_timeout: float = 1.0, mark: bool = True) -> int:
        """Do one unit of work; return the number of rows marked sent (0 when idle or waiting).

        ``mark=False`` (the embedded dispatcher): the acknowledged rows are kept for ``mark_sent``
        instead of marked now, and their number returned; the caller marks them once what it
        does with their events is done (one UPDATE for many steps)."""
        now = self.clock()
        if self._inflight is None:
            if now < self._retry_at:
                return 0
            if not self.acquire_leadership():
                return 0
            self._start_batch()
            if self._inflight is None:
                self._maybe_prune(now)
                return 0
        inflight = self._inflight
        if not inflight.done:
            self.bus.flush(flush_timeout)
        if not inflight.done:
            if now - self._waiting_logged > 10:
                self._waiting_logged = now
                pending = sum(1 for r in inflight.results if r is None)
                logger.warning("outbox relay: %d rows waiting for the bus to acknowledge", pending)
            return 0
        return self._finish_batch(inflight, mark=mark)

    def mark_sent(self) -> int:
        """Mark the rows ``step(mark=False)`` kept (one UPDATE); returns how many. The next read
        is a full scan, as after any caught-up batch."""
        kept = self._kept
        if not kept:
            return 0
        self._kept, self._kept_last = [], None
        outbox_mark_sent(ids=kept, at=utcnow())
        self.stats.marked += len(kept)
        outbox_published.inc(len(kept))  # tradeops_outbox_published_total
        return len(kept)

    def _start_batch(self) -> None:
        self._commits_seen = outbox_commits()  # read before the rows: a commit after it is seen next time
        now = self.clock()
        after = self._floor if self._floor is not None else self._kept_last
        full_scan = after is None or now - self._last_full_scan >= self.rescan_every
        if full_scan:
            self.mark_sent()  # a full scan must not find rows already published as unsent
            self._last_full_scan = now
        # Skip the rows just marked (or kept to be marked) unless this is a full scan: their dead
        # index entries slow a scan from the start while a backlog drains. A row with a smaller
        # id that commits late is picked up by the next full scan (every ``rescan_every``
        # seconds, and whenever caught up with nothing kept).
        rows = outbox_unsent(after=None if full_scan else after, limit=self.batch_size)
        if not rows:
            self._floor = None  # nothing after the floor: look from the start next time
            return
        results: list = [None] * len(rows)
        inflight = _InFlight([r[0] for r in rows], results, self.clock())
        self._inflight = inflight

        def make_callback(i: int):
            def callback(err) -> None:
                results[i] = True if err is None else err

            return callback

        publish_raw = self.bus.publish_raw
        for i, (_, topic, key, message, traceparent) in enumerate(rows):
            publish_raw(
                topic,
                bytes(message),
                key=key or None,
                headers={"traceparent": traceparent} if traceparent else None,
                on_delivery=make_callback(i),
            )
        self.stats.published += len(rows)
        self.stats.batches += 1

    def _finish_batch(self, inflight: _InFlight, *, mark: bool = True) -> int:
        self._inflight = None
        delivered = 0
        for result in inflight.results:
            if result is not True:
                break
            delivered += 1
        if delivered:
            self._kept.extend(inflight.ids[:delivered])
            if mark:
                self.mark_sent()
            else:
                self._kept_last = inflight.ids[delivered - 1]
            # a full batch means more may follow: continue after it; a short one means caught up,
            # so the next read is a full scan
            full = delivered == len(inflight.ids) == self.batch_size
            self._floor = inflight.ids[-1] if full else None
        if delivered < len(inflight.ids):
            self._floor = None  # retry from the first unsent row
            self._commits_seen = None  # and be wanted again once the back-off is over
            error = str(inflight.results[delivered])
            self.stats.failures += 1
            self.stats.errors.append(error)
            del self.stats.errors[:-20]
            outbox_note_failure(row_id=inflight.ids[delivered], error=error)
            self._retry_at = self.clock() + self.retry_backoff
            logger.warning(
                "outbox relay: row %s not published (%s); %d rows wait for a retry",
                inflight.ids[delivered],
                error,
                len(inflight.ids) - delivered,
            )
        return delivered

    def _maybe_prune(self, now: float) -> None:
        if now - self._last_prune < self.prune_every:
            return
        self._last_prune = now
        pruned = outbox_prune(sent_before=utcnow() - self.retention)
        if pruned:
            self.stats.pruned += pruned
            logger.info("outbox relay: pruned %d rows sent more than %s ago", pruned, self.retention)

    # ------------------------------------------------------------ loops

    def drain(self, *, timeout: float = 60.0) -> int:
        """Publish until nothing is pending (embedded run, tests); return rows marked."""
        marked = self.mark_sent()
        deadline = self.clock() + timeout
        while self.clock() < deadline:
            n = self.step(flush_timeout=0.5)
            marked += n
            idle = self._inflight is None and n == 0 and self.clock() >= self._retry_at
            if idle and not Outbox.objects.filter(sent_at__isnull=True).exists():
                return marked
        return marked

    def run(
        self,
        *,
        should_stop: Callable[[], bool],
        idle_sleep: float = 0.2,
        idle_timeout: float = 2.0,
        listener: OutboxListener | None = None,
    ) -> None:
        """The relay process's loop: until ``should_stop()``; survives database and bus errors.

        Idle, the leader on PostgreSQL waits for a NOTIFY from the outbox trigger, at most
        ``idle_timeout`` seconds (``listener``: an ``OutboxListener`` of the default database unless
        given); otherwise (a standby, SQLite, a retry back-off) it sleeps ``idle_sleep``."""
        if listener is None and connection.vendor == "postgresql":
            listener = OutboxListener()
        try:
            while not should_stop():
                try:
                    n = self.step()
                except DatabaseError as exc:
                    logger.error("outbox relay: database error, reconnecting: %s", exc)
                    self._leader = False
                    connection.close()
                    time.sleep(self.retry_backoff)
                    continue
                if n == 0 and self._inflight is None:
                    if listener is not None and self._leader and self.clock() >= self._retry_at:
                        if listener.wait(idle_timeout):
                            self.stats.woken_by_notify += 1
                        else:
                            self.stats.woken_by_timeout += 1
                    else:
                        time.sleep(idle_sleep)
        finally:
            if listener is not None:
                listener.close()
            if self._inflight is not None:
                # Give acknowledged rows a chance to be marked; the rest are re-published next time.
                self.bus.flush(2)
                if self._inflight.done:
                    self._finish_batch(self._inflight)
            self.mark_sent()
            self.release_leadership()
