"""``manage.py surveil_scenarios``: generate labelled FX books, surveil them, and report precision
and recall per alert type, strict (a related type counts as false) and lenient, with a
reliability table of the scores (markdown). Several books are pooled.

Development and held-out books (``compliance.scenarios.generator``): by default the development
seeds and ranges, the only ones thresholds may be chosen on; ``--held-out`` runs the held-out
seeds and ranges instead, kept for evaluation only (run them once a change is final).

``--write-input FILE`` also writes the first book as ``surveil`` JSONL (and ``--write-labels
FILE`` its labelled episodes and near-misses), e.g. to try ``manage.py surveil`` on it.
"""

from __future__ import annotations

import orjson
from django.core.management.base import BaseCommand, CommandError

from compliance.scenarios.evaluation import evaluate_sets, format_reliability, format_table, macro
from compliance.scenarios.generator import DEV_SEEDS, HELD_OUT_SEEDS, RANGES, ScenarioConfig, generate


class Command(BaseCommand):
    help = "Precision and recall of surveillance on seeded synthetic FX books (development or held-out)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--held-out",
            action="store_true",
            help="the held-out seeds and ranges (evaluation only: never choose thresholds on them)",
        )
        parser.add_argument("--seeds", help="comma-separated seeds (default: the development or held-out set)")
        parser.add_argument("--ranges", choices=sorted(RANGES), help="parameter ranges (default: dev, or heldout)")
        parser.add_argument("--hours", type=float, default=4.0)
        parser.add_argument("--params", help="JSON file of detector parameters overriding the defaults")
        parser.add_argument(
            "--fit-calibration",
            action="store_true",
            help="fit the score calibration on the development books and print it (refused with --held-out)",
        )
        parser.add_argument("--write-input", help="write the first book here (JSONL)")
        parser.add_argument("--write-labels", help="write the first book's labelled episodes here (JSONL)")

    def handle(self, *args, **opts):
        held_out = opts["held_out"]
        ranges = opts["ranges"] or ("heldout" if held_out else "dev")
        if opts["seeds"]:
            try:
                seeds = [int(s) for s in opts["seeds"].split(",") if s.strip()]
            except ValueError:
                raise CommandError("--seeds: comma-separated integers") from None
        else:
            seeds = list(HELD_OUT_SEEDS if held_out else DEV_SEEDS)
        if ranges == "dev" and set(seeds) & set(HELD_OUT_SEEDS):
            raise CommandError("held-out seeds go with the held-out ranges (--held-out)")
        params = None
        if opts["params"]:
            try:
                with open(opts["params"], "rb") as fh:
                    params = orjson.loads(fh.read())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise CommandError(f"--params: {exc}") from None

        if opts["fit_calibration"]:
            if ranges != "dev" or set(seeds) - set(DEV_SEEDS):
                raise CommandError("the calibration is fitted on the development books only")
            from compliance.scenarios.calibration import calibration_fit, calibration_samples

            fitted = calibration_fit(calibration_samples(seeds, hours=opts["hours"], params=params))
            self.stdout.write(orjson.dumps(fitted, option=orjson.OPT_INDENT_2).decode() + "\n")
            return

        def log(book):
            self.stderr.write(
                f"seed {book['seed']} ({book['ranges']}): {book['lines']} lines, {book['order_events']} order events, "
                f"{book['episodes']} episodes, {book['near_misses']} near-misses, {book['alerts']} alerts"
            )

        scores, scored, _books = evaluate_sets(seeds, ranges, params, hours=opts["hours"], log=log)
        kind = "HELD-OUT" if ranges == "heldout" else "development"
        self.stdout.write(f"{kind} books: seeds {','.join(map(str, seeds))}, ranges {ranges}, {opts['hours']} h each\n")
        self.stdout.write(format_table(scores) + "\n")
        ps, rs = macro(scores, True)
        pl, rl = macro(scores, False)
        self.stdout.write(
            f"\nmacro precision {ps:.2f} / recall {rs:.2f} (strict); {pl:.2f} / {rl:.2f} (lenient)\n\n"
            "Reliability of the scores (fraction of true alerts per score bin):\n\n"
        )
        self.stdout.write(format_reliability(scored) + "\n")
        if opts["write_input"] or opts["write_labels"]:
            rows, episodes = generate(ScenarioConfig(seed=seeds[0], ranges=ranges, hours=opts["hours"]))
            if opts["write_input"]:
                with open(opts["write_input"], "wb") as fh:
                    for row in rows:
                        fh.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
            if opts["write_labels"]:
                with open(opts["write_labels"], "wb") as fh:
                    for ep in episodes:
                        fh.write(orjson.dumps(ep.as_dict(), option=orjson.OPT_APPEND_NEWLINE))
