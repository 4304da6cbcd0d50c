"""The plain-process cluster's process bookkeeping (tradeops/topology.py): a live process is never
reported gone (a CI run saw a just-started stage reported "exited" because its /proc cmdline
still read empty inside exec), a reused pid is never taken for ours, and the supervisor logs
every signal it gets (with who sent it) and every exit of its child."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tradeops.topology import ProcessGroup, pidfile_parse, process_alive, process_start_time

ROOT = Path(__file__).resolve().parents[2]


def _sleeper(seconds: float = 30) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", f"import time; time.sleep({seconds})"], stdin=subprocess.DEVNULL)


def test_a_child_is_running_from_the_moment_popen_returns(tmp_path):
    group = ProcessGroup(tmp_path)
    for _ in range(20):  # the cmdline check failed about three times in four
        child = _sleeper()
        try:
            group._children[child.pid] = child
            (tmp_path / "pids" / "x.pid").write_text(f"{child.pid} {process_start_time(child.pid)}\n")
            assert group.pid("x") == child.pid
        finally:
            child.kill()
            child.wait()
        assert group.pid("x") is None


def test_a_pid_file_names_the_process_by_pid_and_start_time(tmp_path):
    """As ``scripts/cluster.sh status`` sees it (another process: no Popen to ask)."""
    group = ProcessGroup(tmp_path)
    child = _sleeper()
    try:
        started = process_start_time(child.pid)
        assert started is not None
        pidfile = tmp_path / "pids" / "x.pid"
        pidfile.write_text(f"{child.pid} {started}\n")
        assert group.pid("x") == child.pid
        pidfile.write_text(f"{child.pid} {started + 1}\n")  # the pid now belongs to someone else
        assert group.pid("x") is None
        pidfile.write_text(f"{child.pid}\n")  # written by an earlier version: pid only
        assert group.pid("x") == child.pid
        pidfile.write_text("garbage\n")
        assert group.pid("x") is None
    finally:
        child.kill()
        child.wait()


def test_a_zombie_or_missing_process_is_not_alive():
    child = _sleeper()
    started = process_start_time(child.pid)
    child.kill()
    deadline = time.monotonic() + 10
    while process_alive(child.pid, started) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process_alive(child.pid, started)  # dead, not reaped: a zombie
    child.wait()
    assert not process_alive(child.pid, started)
    assert process_start_time(child.pid) is None or process_start_time(child.pid) != started


def test_pidfile_parse():
    assert pidfile_parse("123 456\n") == (123, 456)
    assert pidfile_parse("123") == (123, None)
    assert pidfile_parse("") is None
    assert pidfile_parse("x 1") is None


SUPERVISED = """
import sys
from tradeops.topology import supervise
sys.exit(supervise([sys.executable, "-c", "import sys, time; time.sleep(0.2); sys.exit(3)"], backoff=0.3, name="toy"))
"""


def test_the_supervisor_logs_each_exit_and_each_signal_with_its_sender(tmp_path):
    log = tmp_path / "toy.log"
    with open(log, "wb") as out:
        supervisor = subprocess.Popen(
            [sys.executable, "-c", SUPERVISED], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    try:
        deadline = time.monotonic() + 30
        while "(restart 2)" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        os.kill(supervisor.pid, signal.SIGTERM)
        rc = supervisor.wait(timeout=30)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait()
    text = log.read_text()
    assert "[supervise] toy: started pid" in text, text
    assert "exited (exit status 3) after" in text and "restart 1 in 0 s" in text, text
    assert f"[supervise] toy: got SIGTERM from pid {os.getpid()} (" in text, text
    # stopped while its child ran (passed on: killed by it; sys.exit(-15) is status 241) or while
    # waiting to restart (the last status, 3)
    assert rc in (3, -signal.SIGTERM & 0xFF), (rc, text)


def test_the_supervised_child_starts_with_no_signal_blocked(tmp_path):
    """The supervisor blocks its signals to take them with sigtimedwait; its child must not
    inherit that mask, or SIGTERM would never stop a stage."""
    code = (
        "import sys\nfrom tradeops.topology import supervise\n"
        "sys.exit(supervise([sys.executable, '-c', "
        "'import signal, sys; sys.exit(len(signal.pthread_sigmask(signal.SIG_BLOCK, [])))'], backoff=60, name='m'))"
    )
    supervisor = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 30
    lines = []
    while time.monotonic() < deadline:
        line = supervisor.stderr.readline()
        lines.append(line)
        if "exited" in line:
            break
    supervisor.terminate()
    supervisor.communicate(timeout=30)
    assert any("exited (exit status 0)" in line for line in lines), lines


def test_status_tells_a_crash_looping_process_from_a_running_one(tmp_path):
    """``cluster.sh status`` said "up" for a stage whose child died every two seconds (its
    supervisor was alive); it now says the child is restarting, and exits 1 (walk45)."""
    from tradeops.topology import STATE_ENV, status_line

    state = tmp_path / "toy.state"
    script = (
        "import sys\nfrom tradeops.topology import supervise\n"
        "sys.exit(supervise([sys.executable, '-c', 'import sys; sys.exit(3)'], backoff=5, name='toy', "
        f"state_file={str(state)!r}))\n"
    )
    supervisor = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, env={**os.environ, STATE_ENV: ""})
    try:
        deadline = time.monotonic() + 30
        seen = None
        while time.monotonic() < deadline:
            seen = json.loads(state.read_text()) if state.exists() else None
            if seen and seen["child"] is None:
                break
            time.sleep(0.1)
        assert seen and seen["child"] is None and seen["restarts"] == 1, seen
        assert seen["last_exit"].startswith("exit status 3 after ")
        line, up = status_line(supervisor.pid, seen)
        assert not up and line.startswith(f"restarting pid {supervisor.pid} (its child ended ")
        assert "exit status 3" in line and "restart 1 due" in line
    finally:
        supervisor.terminate()
        supervisor.wait(timeout=30)


def test_status_of_a_running_child_says_since_when_and_its_restarts():
    from tradeops.topology import status_line

    line, up = status_line(
        4242, {"child": 4343, "since": 1000.0, "restarts": 2, "last_exit": "exit status 1 after 0.4 s"}, now=1030.0
    )
    assert up and line == "up    pid 4242 (child 4343, running 30 s; 2 restarts, last ended: exit status 1 after 0.4 s)"
    assert status_line(4242, {"child": 4343, "since": 1000.0, "restarts": 0, "last_exit": ""}, now=1005.0) == (
        "up    pid 4242 (child 4343, running 5 s)",
        True,
    )
    assert status_line(None, None) == ("down", False)
    assert status_line(4242, None) == ("up    pid 4242", True)  # a supervisor of before this change
