"""Daphne with every thread profiled: what ``bench/api_throughput.py --profile-served`` starts in
place of ``daphne`` to see where a *served* request's CPU goes (the in-process ``--profile``
leaves out Daphne, Twisted, the ASGI handler and its threads).

Django's sync code runs in asgiref's worker threads (``SyncToAsync.thread_handler``); each thread
gets its own ``cProfile.Profile`` (CPU time), enabled around every call it runs, and the event
loop's thread its own. With ``API_SERVED_SPLIT=1`` no profiler runs: the CPU time each sync call
takes in its thread is summed per function, beside the event loop thread's and the process's
user and system time, written as JSON. Nothing is measured before SIGUSR1 (start-up, token issue
and warm-up left out: the bench sends it when its measured load starts). When the server stops
(SIGTERM: Twisted stops the reactor and the process exits) the results are written to
``API_SERVED_PROFILE`` (merged pstats, or the JSON).

    python bench/api_served_profile.py -b 127.0.0.1 -p 8106 tradeops.asgi:application
"""

from __future__ import annotations

import atexit
import cProfile
import os
import signal
import sys
import threading
import time

from asgiref.sync import SyncToAsync

_profiles: list[cProfile.Profile] = []
_local = threading.local()
_lock = threading.Lock()
_original = SyncToAsync.thread_handler
_on = False
_started = (0.0, None)
_splitting = os.environ.get("API_SERVED_SPLIT") == "1"


def _profile_of_thread() -> cProfile.Profile:
    profile = getattr(_local, "profile", None)
    if profile is None:
        profile = _local.profile = cProfile.Profile(time.thread_time)
        with _lock:
            _profiles.append(profile)
    return profile


_split: dict[str, list[float]] = {}  # API_SERVED_SPLIT: sync function -> [calls, CPU seconds]


def _thread_handler(self, *args, **kwargs):
    if not _on:
        return _original(self, *args, **kwargs)
    if _splitting:
        start = time.thread_time()
        try:
            return _original(self, *args, **kwargs)
        finally:
            spent = time.thread_time() - start
            name = getattr(self.func, "__qualname__", None) or type(self.func).__qualname__
            with _lock:
                entry = _split.setdefault(f"{getattr(self.func, '__module__', '?')}.{name}", [0, 0.0])
                entry[0] += 1
                entry[1] += spent
    profile = _profile_of_thread()
    profile.enable()
    try:
        return _original(self, *args, **kwargs)
    finally:
        profile.disable()


def _start(*_):
    global _on, _started
    _on = True
    _started = (time.thread_time(), os.times())
    if not _splitting:
        main.enable()  # signal handlers run in the main thread: the event loop's


def _dump():
    import json
    import pstats

    if _splitting:
        times = os.times()
        out = {
            "event_loop_thread": time.thread_time() - _started[0],
            "user": times.user - _started[1].user,
            "system": times.system - _started[1].system,
            "sync": _split,
        }
        with open(os.environ["API_SERVED_PROFILE"], "w") as f:
            json.dump(out, f)
        return

    main.disable()
    with _lock:
        profiles = list(_profiles)
    stats = pstats.Stats(profiles[0])
    for profile in profiles[1:]:
        stats.add(profile)
    stats.dump_stats(os.environ["API_SERVED_PROFILE"])


if __name__ == "__main__":
    SyncToAsync.thread_handler = _thread_handler
    main = cProfile.Profile(time.thread_time)  # the event loop: Daphne, Twisted, the ASGI handler
    _profiles.append(main)
    atexit.register(_dump)
    signal.signal(signal.SIGUSR1, _start)
    from daphne.cli import CommandLineInterface

    sys.argv[0] = "daphne"
    CommandLineInterface.entrypoint()
