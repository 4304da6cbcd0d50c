"""Circuit breaker response time when a peer hangs (design brief: breaker response < 100 ms).

    python bench/breaker_response.py [--calls 20000] [--timeout 0.5] [--fail-max 5]

A real peer on loopback that accepts TCP connections and never answers (what a hung broker, ARM
or Elasticsearch looks like), called through ``tradeops.breaker.CircuitBreaker`` with a socket
timeout of ``--timeout`` seconds, as the integrations call their peers:

1. while the breaker is closed: each call waits for the client timeout, then fails
   (``--fail-max`` of them open the breaker): the time a caller waits before the breaker acts;
2. once open: the response to a caller (``CircuitOpenError`` with retry_after, no network call),
   p50 / p99 / max over ``--calls`` calls: the figure the target is about;
3. same-run baseline: the same number of calls of a healthy in-process function through a closed
   breaker (the breaker's own bookkeeping), and a plain call without the breaker.

Prints a table and one ``RESULT {json}`` line (bench/run_all.py reads it).
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tradeops.breaker import CircuitBreaker, CircuitOpenError


def hung_peer() -> tuple[socket.socket, int]:
    """A listening socket whose accepted connections are never read from or answered."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            held.append(conn)

    threading.Thread(target=accept, daemon=True).start()
    return server, server.getsockname()[1]


def ask(port: int, timeout: float) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(b"PING\r\n")
        return conn.recv(16)  # never answered: socket.timeout after ``timeout`` seconds


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--timeout", type=float, default=0.5, help="client socket timeout, seconds")
    parser.add_argument("--fail-max", type=int, default=5)
    args = parser.parse_args()

    server, port = hung_peer()
    breaker = CircuitBreaker("bench-peer", fail_max=args.fail_max, reset_timeout=60.0)
    closed_waits = []
    while breaker.state == "closed":
        start = time.perf_counter()
        try:
            breaker.call(ask, port, args.timeout)
        except OSError:
            pass
        closed_waits.append(time.perf_counter() - start)

    open_times = []
    for _ in range(args.calls):
        start = time.perf_counter_ns()
        try:
            breaker.call(ask, port, args.timeout)
        except CircuitOpenError:
            pass
        open_times.append((time.perf_counter_ns() - start) / 1e3)
    server.close()

    healthy = CircuitBreaker("bench-healthy")
    through, plain = [], []
    for _ in range(args.calls):
        start = time.perf_counter_ns()
        healthy.call(len, "x")
        through.append((time.perf_counter_ns() - start) / 1e3)
        start = time.perf_counter_ns()
        len("x")
        plain.append((time.perf_counter_ns() - start) / 1e3)

    result = {
        "closed_call_wait_ms": statistics.median(closed_waits) * 1e3,
        "calls_to_open": len(closed_waits),
        "open_p50_us": pct(open_times, 0.5),
        "open_p99_us": pct(open_times, 0.99),
        "open_max_us": max(open_times),
        "healthy_breaker_p99_us": pct(through, 0.99),
        "plain_call_p99_us": pct(plain, 0.99),
    }
    print(f"peer hung, client timeout {args.timeout} s, fail_max {args.fail_max}")
    print(
        f"| closed: wait per failing call (median of {len(closed_waits)}) | {result['closed_call_wait_ms']:,.1f} ms |"
    )
    print(
        f"| open: response p50 / p99 / max ({args.calls:,} calls) | {result['open_p50_us']:.1f} / "
        f"{result['open_p99_us']:.1f} / {result['open_max_us']:,.1f} us |"
    )
    print(
        f"| baseline: healthy call through a closed breaker / plain call, p99 | "
        f"{result['healthy_breaker_p99_us']:.2f} / {result['plain_call_p99_us']:.2f} us |"
    )
    print("RESULT " + json.dumps(result))


if __name__ == "__main__":
    main()
