"""One execution worker per account (issue 19, finding 6): a second worker on an account another
worker trades is refused with a message naming the holder (exit status 3), or with ``--wait``
stands by and takes over when the first stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import requires_postgres
from tradeops.core.locks import LockHeld, LockKey, NamedLock
from workers.execution import execution_account_locks

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db(transaction=True)
def test_a_second_lock_on_the_same_account_is_refused_and_names_the_holder(account):
    requires_postgres()
    first = execution_account_locks([account.pk])
    try:
        with pytest.raises(LockHeld) as refused:
            execution_account_locks([account.pk])
        assert f"account {account.pk}" in str(refused.value)
        assert f"tradeops-execution-worker:{account.pk}" in refused.value.holder  # who holds it
        other = execution_account_locks([account.pk + 1])  # another account is free
        for lock in other:
            lock.release()
    finally:
        for lock in first:
            lock.release()
    again = execution_account_locks([account.pk])  # released: free again
    for lock in again:
        lock.release()


def test_on_sqlite_the_lock_is_a_file_beside_the_database(tmp_path):
    def lock():
        made = NamedLock.__new__(NamedLock)
        made.key = LockKey("execution worker for account 1", 1, 1)
        made.application_name = "test"
        made.vendor = "sqlite"
        made._settings = {"NAME": str(tmp_path / "db.sqlite3")}
        made._conn = made._file = None
        made.held = False
        return made

    first, second = lock(), lock()
    first.acquire()
    with pytest.raises(LockHeld):
        second.acquire()
    first.release()
    second.acquire()
    second.release()


# Timing: on the shared 2-CPU machine under load a worker process takes 15-60 s to start (Django
# and the apps imported; --help alone took 16 s at load 9). The test waits on what the processes
# SAY, never on fixed sleeps, and its deadlines are generous (a stuck process still fails it).
STARTUP = 300  # seconds a worker may take to start, or to be refused
# The first worker must not leave by itself before the test stops it: with --idle-exit 120 a slow
# second start (120 s at load ~20) let the first exit idle, the "second" then took the lock and
# ran until subprocess.run's timeout: the flake of 2026-12-04. Still bounded, so an orphan ends.
IDLE_EXIT = "900"


class _Output:
    """A worker process with both pipes drained by threads (a pipe nobody reads fills at 64 KB
    and blocks the worker's logging), so waits have real deadlines."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.lines: list[tuple[str, str]] = []  # (stream, line), in arrival order
        self._changed = threading.Condition()
        self._readers = [
            threading.Thread(target=self._read, args=(name, stream), daemon=True)
            for name, stream in (("stdout", proc.stdout), ("stderr", proc.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, name: str, stream) -> None:
        for line in stream:
            with self._changed:
                self.lines.append((name, line))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def said(self) -> str:
        with self._changed:
            return "".join(f"[{name}] {line}" for name, line in self.lines)[-4000:]

    def wait_for(self, text: str, stream: str = "stdout", timeout: float = STARTUP) -> str:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for name, line in self.lines:
                    if name == stream and text in line:
                        return line
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.proc.poll() is not None and not any(r.is_alive() for r in self._readers)):
                    status = self.proc.poll()
                    raise AssertionError(f"no {text!r} on {stream} (exit status {status}); it said: {self.said()}")
                self._changed.wait(min(remaining, 1.0))


def _worker(account_id: int, env: dict, *extra: str) -> _Output:
    return _Output(
        subprocess.Popen(
            [sys.executable, "manage.py", "run_execution_worker", "--accounts", str(account_id), "--bus", "memory"]
            + ["--idle-exit", IDLE_EXIT, *extra],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_second_worker_process_is_refused_or_stands_by(account, instrument):
    from django.db import connection

    requires_postgres()
    db = connection.settings_dict
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "BROKER": "paper",
        "EXECUTION_PAPER_JOURNAL_DIR": "",
        "PYTHONPATH": str(ROOT),
    }
    first = _worker(account.pk, env)
    standby = None
    try:
        first.wait_for("execution worker: accounts")  # printed after its lock is taken
        second = subprocess.run(
            [sys.executable, "manage.py", "run_execution_worker", "--accounts", str(account.pk), "--bus", "memory"]
            + ["--idle-exit", "60"],  # if it ever took the lock, it would not run until the timeout
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=STARTUP,
        )
        assert second.returncode == 3, second.stderr[-2000:]
        assert f"execution worker for account {account.pk} is held by another process" in second.stderr
        assert "--wait" in second.stderr and "Traceback" not in second.stderr
        assert first.proc.poll() is None, f"the first worker left before it was stopped: {first.said()}"

        standby = _worker(account.pk, env, "--wait")
        standby.wait_for("standing by", stream="stderr")  # it met the lock held, and waits
        assert standby.proc.poll() is None, "the standby waits"
        assert not any("execution worker: accounts" in line for _, line in standby.lines), "it did not start"
        first.proc.send_signal(signal.SIGTERM)
        assert first.proc.wait(STARTUP) == 0, first.said()
        standby.wait_for("execution worker: accounts")  # took over
    finally:
        for worker in (first, standby):
            if worker is not None and worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
                try:
                    worker.proc.wait(60)
                except subprocess.TimeoutExpired:
                    worker.proc.kill()
                    worker.proc.wait()
