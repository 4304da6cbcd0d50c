"""``manage.py surveil INPUT.jsonl --output ALERTS.jsonl``: market-abuse and best-execution
surveillance of any order history (formats: docs/compliance-monitor.md).

``--record`` also records the alerts (deduplicated, grouped into cases) for the compliance desk
and publishes ``alert.raised`` and ``case.changed`` for its open screens, through the outbox in
the same transaction (one event per alert and case touched; a re-run publishes nothing new).
Thresholds: the detectors' defaults for the market (``--market``: ``otc`` or ``order_book``,
default the ``SURVEILLANCE_MARKET`` setting; ``MARKET_PROFILES``), overridden by ``--params
FILE.json`` (detector name -> parameters) or, with ``--rules``, by the effective surveillance
``ComplianceRule`` rows (firm, instrument, account and algorithm scope; an account rule matches
the file's ``account`` by the account's primary key or MT5 login). One alert per episode (a
wash-trade run, a breach of the RTS 9 ratio, a client's run of adverse fills...). Bad lines are
reported on stderr (line number and field) and skipped.
"""

from __future__ import annotations

import itertools
import sys
import time
from datetime import UTC, datetime

import orjson
from django.core.management.base import BaseCommand, CommandError

from compliance.surveillance.batch import surveil_lines
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.params import MARKET_PROFILES, ParameterError, params_check


class Command(BaseCommand):
    help = "Surveil a JSONL order history (quotes, orders, fills, closes) and write alerts as JSONL."
    # No system checks at start-up: they import every URLconf, view and template-tag library
    # (the ML pipeline's pull in scikit-learn, SciPy and pandas: ~3-4 s of CPU), none of which a
    # batch run over a file needs. The checks run in CI, in ``manage.py check`` and the servers.
    requires_system_checks: list = []

    def add_arguments(self, parser):
        parser.add_argument("input", help="JSONL input, one record per line, in time order ('-' for stdin)")
        parser.add_argument("--output", "-o", required=True, help="where to write alerts (JSONL; '-' for stdout)")
        parser.add_argument("--params", help="JSON file: {detector: {parameter: value}} overriding the defaults")
        parser.add_argument(
            "--market",
            choices=sorted(MARKET_PROFILES),
            help="the kind of market the book trades on, whose profile gives the detectors' defaults "
            "(default: the SURVEILLANCE_MARKET setting, otc)",
        )
        parser.add_argument(
            "--rules",
            action="store_true",
            help="use the surveillance rules in force (firm, instrument, account and algorithm scope)",
        )
        parser.add_argument("--fail-on-error", action="store_true", help="exit with status 1 if any line was bad")
        parser.add_argument(
            "--record",
            action="store_true",
            help="also record the alerts in the database (deduplicated, grouped into cases)",
        )

    def handle(self, *args, **opts):
        params: dict = {}
        instrument_params: dict = {}
        account_params: dict = {}
        algo_params: dict = {}
        if opts["rules"]:
            from compliance.selectors import (
                surveillance_account_params_effective,
                surveillance_algo_params_effective,
                surveillance_instrument_params_effective,
                surveillance_params_effective,
            )

            params.update(surveillance_params_effective())
            instrument_params = surveillance_instrument_params_effective()
            account_params = surveillance_account_params_effective(keys="pk+login")
            algo_params = surveillance_algo_params_effective()
        if opts["params"]:
            try:
                with open(opts["params"], "rb") as fh:
                    params.update(params_check(orjson.loads(fh.read())))
            except (OSError, orjson.JSONDecodeError, ParameterError) as exc:
                raise CommandError(f"--params {opts['params']}: {exc}") from None
        from django.conf import settings

        market = opts["market"] or getattr(settings, "SURVEILLANCE_MARKET", "otc")
        try:
            engine = SurveillanceEngine(
                params,
                instrument_params=instrument_params,
                account_params=account_params,
                algo_params=algo_params,
                market=market,
            )
        except ParameterError as exc:
            raise CommandError(str(exc)) from None

        started = time.perf_counter()
        try:
            source = sys.stdin.buffer if opts["input"] == "-" else open(opts["input"], "rb")  # noqa: SIM115
        except OSError as exc:
            raise CommandError(f"cannot read {opts['input']}: {exc.strerror or exc}") from None
        try:
            sink = sys.stdout.buffer if opts["output"] == "-" else open(opts["output"], "wb")  # noqa: SIM115
        except OSError as exc:
            if source is not sys.stdin.buffer:
                source.close()
            raise CommandError(f"cannot write {opts['output']}: {exc.strerror or exc}") from None
        # (alert line, the book's market time when surveillance raised it): the event time the
        # desk shows as "Raised", as the streaming stage records a replay's market time
        recorded: list[tuple[bytes, float]] = []

        def emit(line: bytes) -> None:
            sink.write(line)
            if opts["record"]:
                recorded.append((line, engine.last_t))

        try:
            stats = surveil_lines(source, engine=engine, emit=emit)
        except OSError as exc:  # the input or the output failed mid-way (a full disk, a lost mount)
            raise CommandError(f"surveil stopped: {exc.strerror or exc} ({exc.filename or 'input/output'})") from None
        finally:
            if source is not sys.stdin.buffer:
                source.close()
            if sink is not sys.stdout.buffer:
                sink.close()
        elapsed = time.perf_counter() - started

        if recorded:
            new = _record(recorded)
            self.stderr.write(f"surveil: recorded {len(new)} new alerts ({len(recorded) - len(new)} duplicates)")
        for error in stats.errors:
            self.stderr.write(str(error))
        by_type = ", ".join(f"{k}={v}" for k, v in sorted(stats.alerts_by_type.items())) or "none"
        self.stderr.write(
            f"surveil: {stats.records} records ({stats.order_events} order events) from {stats.lines} lines "
            f"in {elapsed:.2f}s, {len(stats.errors)} bad lines, {stats.alerts} alerts ({by_type}); "
            f"market profile {market}"
        )
        if stats.errors and opts["fail_on_error"]:
            raise CommandError(f"{len(stats.errors)} bad lines")


def _record(recorded: list[tuple[bytes, float]]) -> list:
    """Record the alerts for the desk, all or none, each raised at the book's market time when
    surveillance raised it (alerts raised at the same instant recorded together), and publish
    what changed to the compliance screens in the same transaction (``alerts_record_published``)."""
    from compliance.services import alerts_record_published

    return alerts_record_published(
        sightings=(
            (datetime.fromtimestamp(raised_t, tz=UTC), [orjson.loads(line) for line, _ in group])
            for raised_t, group in itertools.groupby(recorded, key=lambda item: item[1])
        ),
        source="surveil-batch",
    ).created
