"""One execution worker per account (issue 19, finding 6): a second worker on an account another
worker trades is refused with a message naming the holder (exit status 3), or with ``--wait``
stands by and takes over when the first stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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


def _worker(account_id: int, env: dict, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "run_execution_worker", "--accounts", str(account_id), "--bus", "memory"]
        + ["--idle-exit", "120", *extra],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for_line(proc: subprocess.Popen, text: str, timeout: float = 90) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no {text!r} from the worker; it said: {''.join(seen)[-2000:]}")


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
        _wait_for_line(first, "execution worker: accounts")
        second = subprocess.run(
            [sys.executable, "manage.py", "run_execution_worker", "--accounts", str(account.pk), "--bus", "memory"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert second.returncode == 3, second.stderr[-2000:]
        assert f"execution worker for account {account.pk} is held by another process" in second.stderr
        assert "--wait" in second.stderr and "Traceback" not in second.stderr

        standby = _worker(account.pk, env, "--wait")
        time.sleep(3)
        assert standby.poll() is None, "the standby waits"
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0
        _wait_for_line(standby, "execution worker: accounts")  # took over
    finally:
        for proc in (first, standby):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()
