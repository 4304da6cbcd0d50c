"""Process locks: one holder at a time across processes and hosts, for runners that must be alone.

``NamedLock`` is held for as long as a long-running process works on something only one process
may work on (the execution worker on one trading account: RTS 6 Art. 17, one risk state and one
book per account). On PostgreSQL it is a session advisory lock (``pg_try_advisory_lock(class,
key)``) on a connection of its own, so the lock lives exactly as long as that session: a process
that dies, however it dies, releases it, and the holder can be named to whoever asks (pid, client
address, application name from ``pg_stat_activity``). On SQLite (one machine: the first run) it
is an exclusive ``flock`` on a file beside the database file. A lock is lost when its PostgreSQL
session is (a database restart): ``check()`` notices, takes it again if it is free and raises
``LockLost`` if another process took it meanwhile; the holder must then stop.
"""

from __future__ import annotations

import logging
import os
import socket
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)


class LockHeld(RuntimeError):
    """Another process holds the lock. ``holder`` describes it when it can be told."""

    def __init__(self, name: str, holder: str):
        super().__init__(f"{name} is held by another process ({holder})")
        self.name = name
        self.holder = holder


class LockLost(RuntimeError):
    """The lock was lost (its database session ended) and another process holds it now."""


@dataclass(frozen=True)
class LockKey:
    """A lock's identity: a class (what kind of thing) and a key (which one), both int4."""

    name: str  # for people: "execution worker for account 7"
    class_id: int
    key: int


def _database_error(exc: Exception) -> Exception:
    """psycopg's connection failures as Django's, so runners treat them as infrastructure."""
    from django.db import OperationalError

    error = OperationalError(str(exc))
    error.__cause__ = exc
    return error


class NamedLock:
    def __init__(self, key: LockKey, *, application_name: str = "tradeops") -> None:
        from django.db import connection

        self.key = key
        self.application_name = application_name
        self.vendor = connection.vendor
        self._settings = dict(connection.settings_dict)
        self._conn = None  # psycopg connection holding the advisory lock
        self._file = None  # open file holding the flock
        self.held = False

    # ------------------------------------------------------------ PostgreSQL

    def _connect(self):
        import psycopg

        s = self._settings
        try:
            return psycopg.connect(
                host=s["HOST"] or None,
                port=s["PORT"] or None,
                user=s["USER"],
                password=s["PASSWORD"],
                dbname=s["NAME"],
                autocommit=True,
                connect_timeout=5,
                application_name=self.application_name,
            )
        except psycopg.OperationalError as exc:
            raise _database_error(exc) from exc

    def _pg_try(self) -> bool:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = self._connect()
        try:
            row = self._conn.execute(
                "SELECT pg_try_advisory_lock(%s, %s)", [self.key.class_id, self.key.key]
            ).fetchone()
        except psycopg.OperationalError as exc:
            self._close_conn()
            raise _database_error(exc) from exc
        return bool(row[0])

    def holder(self) -> str:
        """Who holds the lock, as far as the database can tell (PostgreSQL); else a hint."""
        if self.vendor != "postgresql":
            return f"lock file {self._lock_path()}"
        conn = self._connect()
        try:
            row = conn.execute(
                "SELECT a.pid, a.client_addr, a.application_name, a.backend_start "
                "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.classid = %s AND l.objid = %s AND l.objsubid = 2 "
                "AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                [self.key.class_id, self.key.key],
            ).fetchone()
        finally:
            conn.close()
        if row is None:
            return "nobody now"
        pid, addr, app, since = row
        where = addr or "local socket"
        return f"database session pid {pid} from {where}, application {app!r}, since {since:%Y-%m-%d %H:%M:%S %Z}"

    def _close_conn(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001, S110 - already broken: nothing to release
                pass
            self._conn = None

    # ------------------------------------------------------------ SQLite (one machine)

    def _lock_path(self) -> Path | None:
        name = str(self._settings.get("NAME") or "")
        if not name or name == ":memory:" or name.startswith("file:"):
            return None
        return Path(f"{name}.{self.key.name.replace(' ', '-')}.lock")

    def _file_try(self) -> bool:
        import fcntl

        path = self._lock_path()
        if path is None:
            return True  # an in-memory database is one process's alone
        handle = open(path, "a+")  # noqa: SIM115 - held open for as long as the lock is
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        self._file = handle
        return True

    # ------------------------------------------------------------ both

    def try_acquire(self) -> bool:
        if self.held:
            return True
        self.held = self._pg_try() if self.vendor == "postgresql" else self._file_try()
        return self.held

    def acquire(self) -> None:
        """Take the lock or raise ``LockHeld`` naming the holder."""
        if not self.try_acquire():
            raise LockHeld(self.key.name, self.holder())

    def check(self) -> None:
        """Still ours? After a lost session (a database restart) take it again if it is free;
        raise ``LockLost`` if another process has it, or Django's ``OperationalError`` while the
        database cannot be reached (the caller retries)."""
        if self.vendor != "postgresql" or not self.held:
            return
        import psycopg

        try:
            if self._conn is not None and not self._conn.closed:
                self._conn.execute("SELECT 1")
                return
        except psycopg.OperationalError:
            self._close_conn()
        logger.warning("%s: the database session holding the lock ended; taking the lock again", self.key.name)
        if not self._pg_try():
            self.held = False
            raise LockLost(f"{self.key.name}: lost with its database session and now held by {self.holder()}")
        logger.info("%s: lock taken again", self.key.name)

    def release(self) -> None:
        if self._conn is not None:
            self._close_conn()  # ending the session releases its advisory locks
        if self._file is not None:
            self._file.close()  # closing the descriptor releases the flock
            self._file = None
        self.held = False
