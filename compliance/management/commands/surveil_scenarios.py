"""``manage.py surveil_scenarios``: generate labelled abuse scenarios, surveil them, and report
precision and recall per alert type (markdown table). Several seeds are pooled, so that the
figures do not describe one lucky draw.

``--write-input FILE`` also writes the first seed's history as ``surveil`` JSONL (and
``--write-labels FILE`` its episodes), e.g. to try ``manage.py surveil`` on it.
"""

from __future__ import annotations

import orjson
from django.core.management.base import BaseCommand, CommandError

from compliance.scenarios.evaluation import TypeScore, evaluate, format_table
from compliance.scenarios.generator import ScenarioConfig, generate


class Command(BaseCommand):
    help = "Precision and recall of surveillance on seeded synthetic abuse scenarios."

    def add_arguments(self, parser):
        parser.add_argument("--seeds", default="7,11,23", help="comma-separated seeds (pooled)")
        parser.add_argument("--hours", type=float, default=4.0)
        parser.add_argument("--episodes", type=int, default=10, help="episodes per abuse kind per seed")
        parser.add_argument("--params", help="JSON file of detector parameters overriding the defaults")
        parser.add_argument("--write-input", help="write the first seed's history here (JSONL)")
        parser.add_argument("--write-labels", help="write the first seed's labelled episodes here (JSONL)")

    def handle(self, *args, **opts):
        try:
            seeds = [int(s) for s in opts["seeds"].split(",") if s.strip()]
        except ValueError:
            raise CommandError("--seeds: comma-separated integers") from None
        params = None
        if opts["params"]:
            with open(opts["params"], "rb") as fh:
                params = orjson.loads(fh.read())
        pooled: dict[str, list[int]] = {}
        for seed in seeds:
            cfg = ScenarioConfig(seed=seed, hours=opts["hours"], episodes_per_kind=opts["episodes"])
            scores, stats = evaluate(cfg, params)
            self.stderr.write(
                f"seed {seed}: {stats['lines']} lines, {stats['order_events']} order events, {stats['alerts']} alerts"
            )
            for s in scores:
                acc = pooled.setdefault(s.alert_type, [0, 0, 0, 0])
                acc[0] += s.episodes
                acc[1] += s.found
                acc[2] += s.alerts
                acc[3] += s.true_alerts
        table = [TypeScore(k, *v) for k, v in pooled.items()]
        self.stdout.write(
            f"seeds {','.join(map(str, seeds))}, {opts['hours']} h each, "
            f"{opts['episodes']} episodes per kind per seed\n"
        )
        self.stdout.write(format_table(table))
        if opts["write_input"] or opts["write_labels"]:
            rows, episodes = generate(
                ScenarioConfig(seed=seeds[0], hours=opts["hours"], episodes_per_kind=opts["episodes"])
            )
            if opts["write_input"]:
                with open(opts["write_input"], "wb") as fh:
                    for row in rows:
                        fh.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
            if opts["write_labels"]:
                with open(opts["write_labels"], "wb") as fh:
                    for ep in episodes:
                        fh.write(
                            orjson.dumps(
                                {
                                    "kind": ep.kind,
                                    "accepted": ep.accepted,
                                    "account": ep.account,
                                    "owner": ep.owner,
                                    "symbol": ep.symbol,
                                    "order_ids": sorted(ep.order_ids),
                                },
                                option=orjson.OPT_APPEND_NEWLINE,
                            )
                        )
