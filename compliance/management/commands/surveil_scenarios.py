"""``manage.py surveil_scenarios``: generate labelled FX books, surveil them, and report precision
and recall per alert type, strict (a related type counts as false) and lenient, with a
reliability table of the scores (markdown). Several books are pooled.

Which books (docs/surveillance-evaluation.md):
- default: the development books of ``compliance.scenarios.generator`` (``DEV_SEEDS``, ranges
  ``dev``) and ``--tuning``: its tuning books (``TUNE_SEEDS``, the wide ranges ``tune``), the
  only ones thresholds and the score calibration may be chosen on;
- ``--held-out``: that generator's held-out seeds and ranges (``HELD_OUT_SEEDS``), evaluation
  only: run them once a change is final;
- ``--seen-held-out``: earlier held-out seeds (``SEEN_HELD_OUT_SEEDS``), whose figures have
  been read: reported as "seen", never as a held-out measure;
- ``--independent``: the independent book (``compliance.scenarios.independent``, a second
  firm's book from a different generator; ``INDEPENDENT_SEEDS``), evaluation only;
  ``--seen-independent``: its earlier seeds (``SEEN_INDEPENDENT_SEEDS``), read: reported as seen;
- ``--lob``: the third book, an exchange-style limit order book (``compliance.scenarios.lob``,
  docs/lob-book.md; ``LOB_SEEDS``), evaluation only, refused while no evaluation seed is set;
  ``--seen-lob``: its earlier seeds (``SEEN_LOB_SEEDS``), read: reported as seen.

``--write-input FILE`` also writes the first book as ``surveil`` JSONL (and ``--write-labels
FILE`` its labelled episodes and near-misses), e.g. to try ``manage.py surveil`` on it. With
``--lob`` (or ``--seen-lob``) they only write the book, scoring nothing: ``--seeds 3 --lob
--write-input F`` lets a seed be inspected without reading its figures.

Each book is surveilled on its own market's profile (``--market`` to choose another):
``order_book`` for the limit order book, ``otc`` for the others (``MARKET_PROFILES``).
"""

from __future__ import annotations

import dataclasses

import orjson
from django.core.management.base import BaseCommand, CommandError

from compliance.scenarios.evaluation import (
    book_generate,
    book_market,
    evaluate_sets,
    format_intervals,
    format_reliability,
    format_set_summary,
    format_sets,
    format_table,
    format_variant_summary,
    macro,
    pool,
    set_summary,
    targets_missed,
    variant_check,
)
from compliance.scenarios.generator import DEV_SEEDS, HELD_OUT_SEEDS, RANGES, SEEN_HELD_OUT_SEEDS, TUNE_SEEDS
from compliance.scenarios.independent import INDEPENDENT_SEEDS, SEEN_INDEPENDENT_SEEDS
from compliance.scenarios.lob import LOB_SEEDS, SEEN_LOB_SEEDS
from compliance.surveillance.batch import surveil_lines
from compliance.surveillance.engine import DETECTORS, SurveillanceEngine
from compliance.surveillance.params import MARKET_PROFILES, ParameterError


class Command(BaseCommand):
    help = "Precision and recall of surveillance on seeded synthetic FX books (development, held-out, independent)."

    def add_arguments(self, parser):
        which = parser.add_mutually_exclusive_group()
        which.add_argument(
            "--tuning",
            action="store_true",
            help="the tuning books (wide ranges; thresholds may be chosen on them, like the development books)",
        )
        which.add_argument(
            "--held-out",
            action="store_true",
            help="the held-out seeds and ranges (evaluation only: never choose thresholds on them)",
        )
        which.add_argument(
            "--seen-held-out",
            action="store_true",
            help="the first held-out seeds, already looked at (reported as seen, not as held-out)",
        )
        which.add_argument(
            "--independent",
            action="store_true",
            help="the independent book from a second generator (evaluation only)",
        )
        which.add_argument(
            "--seen-independent",
            action="store_true",
            help="the independent book's earlier seeds, already looked at (reported as seen)",
        )
        which.add_argument(
            "--lob",
            action="store_true",
            help="the limit order book, a third firm's book (evaluation only; LOB_SEEDS)",
        )
        which.add_argument(
            "--seen-lob",
            action="store_true",
            help="the limit order book's earlier seeds, already looked at (reported as seen)",
        )
        parser.add_argument("--seeds", help="comma-separated seeds (default: the chosen set's)")
        parser.add_argument("--ranges", choices=sorted(RANGES), help="parameter ranges (default: dev, or heldout)")
        parser.add_argument("--hours", type=float, default=4.0)
        parser.add_argument("--params", help="JSON file of detector parameters overriding the defaults")
        parser.add_argument(
            "--market",
            choices=sorted(MARKET_PROFILES),
            help="the detectors' market profile (default: the book's own market: order_book for the limit "
            "order book, otc for the others)",
        )
        parser.add_argument(
            "--fit-calibration",
            action="store_true",
            help="fit the score calibration on the development books and print it (refused on any other book)",
        )
        parser.add_argument(
            "--fit-close-gate",
            action="store_true",
            help="fit marking the close's learned gate (close_gate) by grouped cross-validation on the allowed "
            "books (development, tuning, the order book's 1-9, the seen sets less the CONFIRMATION sets) and "
            "print it with the folds' figures against the hand rules (JSON)",
        )
        parser.add_argument(
            "--candidates",
            help="with --fit-close-gate: the candidates file (JSONL); read when it exists, else extracted to it",
        )
        parser.add_argument(
            "--gate-per-book",
            type=int,
            help="with --fit-close-gate: at most this many seen held-out and seen order-book seeds (default: all; "
            "every seen independent book is taken; the 09:00 round's fit: 25)",
        )
        parser.add_argument(
            "--set-size",
            type=int,
            help="also report the seeds as consecutive sets of this many books (issue 16's targets per set), "
            "e.g. --seeds <nine seeds> --set-size 3",
        )
        parser.add_argument(
            "--momentum-candidates",
            metavar="FILE",
            help="write every momentum ignition candidate of the chosen books (the gate's loose stage: "
            "features, the hand test that stopped it, its label) and the hand rules' figures per book to "
            "FILE (JSONL); refused on the fresh evaluation seeds",
        )
        parser.add_argument(
            "--fit-momentum-gate",
            metavar="FILE",
            help="fit the momentum ignition gate on a candidates FILE (grouped cross-validation, whole "
            "books left out) and print the choice, the gate against the hand rules and the model (JSON)",
        )
        parser.add_argument(
            "--gate-market",
            choices=("order_book", "otc"),
            default="order_book",
            help="with --fit-momentum-gate: the market the gate is fitted for, whose books' episodes the "
            "objective counts (order_book: the order books, MOMENTUM_GATE; otc: the FX books, development, "
            "tuning, seen held-out and seen independent, MOMENTUM_GATE_OTC)",
        )
        parser.add_argument(
            "--variants",
            metavar="FILE",
            help="JSON file of named parameter variants ({label: {detector: {parameter: value}}}, each over "
            "--params): every book is also scored under each (only the detectors a variant touches are run "
            "again, checked on the first book), and the sets' pass rate and per-type changes are reported "
            "against the base",
        )
        parser.add_argument(
            "--scores-out",
            metavar="FILE",
            help="append each book's per-type counts (base and each variant) to FILE as JSONL, book by book",
        )
        parser.add_argument("--write-input", help="write the first book here (JSONL)")
        parser.add_argument("--write-labels", help="write the first book's labelled episodes here (JSONL)")

    def handle(self, *args, **opts):
        if opts["independent"] or opts["seen_independent"]:
            book = "independent"
        elif opts["lob"] or opts["seen_lob"]:
            book = "lob"
        else:
            book = "generator"
        held_out = opts["held_out"] or opts["seen_held_out"]
        ranges = opts["ranges"] or ("heldout" if held_out else "tune" if opts["tuning"] else "dev")
        if opts["seeds"]:
            try:
                seeds = [int(s) for s in opts["seeds"].split(",") if s.strip()]
            except ValueError:
                raise CommandError("--seeds: comma-separated integers") from None
        elif book == "independent":
            seeds = list(SEEN_INDEPENDENT_SEEDS if opts["seen_independent"] else INDEPENDENT_SEEDS)
        elif book == "lob":
            seeds = list(SEEN_LOB_SEEDS if opts["seen_lob"] else LOB_SEEDS)
            if not seeds:
                which = "SEEN_LOB_SEEDS" if opts["seen_lob"] else "LOB_SEEDS"
                raise CommandError(
                    f"the limit order book has no evaluation seeds yet ({which} in compliance/scenarios/lob is "
                    "empty): the lead sets them; --seeds N --lob --write-input F writes one book to inspect"
                )
        elif opts["tuning"]:
            seeds = list(TUNE_SEEDS)
        elif opts["seen_held_out"]:
            seeds = list(SEEN_HELD_OUT_SEEDS)
        else:
            seeds = list(HELD_OUT_SEEDS if held_out else DEV_SEEDS)
        if not seeds:
            raise CommandError("--seeds: no seed given")
        set_size = opts.get("set_size")
        if set_size is not None and (set_size < 1 or len(seeds) % set_size):
            raise CommandError(f"--set-size {set_size}: {len(seeds)} seeds do not split into sets of that size")
        kept_apart = set(HELD_OUT_SEEDS) | set(SEEN_HELD_OUT_SEEDS)
        if book == "generator" and ranges in ("dev", "tune") and set(seeds) & kept_apart:
            raise CommandError("held-out seeds go with the held-out ranges (--held-out or --seen-held-out)")
        params = None
        if opts["params"]:
            try:
                with open(opts["params"], "rb") as fh:
                    params = orjson.loads(fh.read())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise CommandError(f"--params: {exc}") from None

        variants = None
        if opts.get("variants"):
            try:
                with open(opts["variants"], "rb") as fh:
                    variants = orjson.loads(fh.read())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise CommandError(f"--variants: {exc}") from None
            if not isinstance(variants, dict) or not all(
                isinstance(v, dict) and v and all(isinstance(d, dict) for d in v.values()) for v in variants.values()
            ):
                raise CommandError("--variants: a JSON object of {label: {detector: {parameter: value}}}")
            unknown = sorted({d for v in variants.values() for d in v} - set(DETECTORS))
            if unknown:
                raise CommandError(f"--variants: unknown detectors {', '.join(unknown)}")

        if opts["fit_momentum_gate"]:
            from compliance.scenarios.momentum_gate import gate_fit

            try:
                fitted = gate_fit(opts["fit_momentum_gate"], market=opts["gate_market"])
            except (OSError, ValueError) as exc:
                raise CommandError(f"--fit-momentum-gate: {exc}") from None
            self.stdout.write(orjson.dumps(fitted, option=orjson.OPT_INDENT_2).decode() + "\n")
            return
        if opts["momentum_candidates"]:
            fresh = set(HELD_OUT_SEEDS) | set(INDEPENDENT_SEEDS) | set(LOB_SEEDS)
            if opts["held_out"] or opts["independent"] or opts["lob"] or set(seeds) & fresh:
                raise CommandError(
                    "--momentum-candidates: the gate is fitted on development, tuning and seen books only "
                    "(never on the fresh evaluation seeds)"
                )
            # The CONFIRMATION sets are seen books too, but the round's row: never fitted on (the seen
            # lists hold them; close_gate.CONFIRMATION names them).
            from compliance.scenarios.close_gate import CONFIRMATION

            confirmation = set(CONFIRMATION.get("heldout" if ranges == "heldout" else book, ()))
            if opts["seeds"] and set(seeds) & confirmation:
                raise CommandError(
                    "--momentum-candidates: seeds "
                    + ",".join(str(s) for s in seeds if s in confirmation)
                    + f" are {book} CONFIRMATION sets (the current round's row), never fitted on"
                )
            if set(seeds) & confirmation:
                seeds = [s for s in seeds if s not in confirmation]
                self.stderr.write(f"--momentum-candidates: the {book} CONFIRMATION sets left out")
            from compliance.scenarios.momentum_gate import candidates_extract

            with open(opts["momentum_candidates"], "wb") as fh:
                for seed in seeds:
                    rows, episodes = book_generate(book, seed, ranges=ranges, hours=opts["hours"])
                    recs = candidates_extract(rows, episodes, book=book, seed=seed, ranges=ranges)
                    del rows
                    for rec in recs:
                        fh.write(orjson.dumps(rec, option=orjson.OPT_APPEND_NEWLINE))
                    self.stderr.write(f"seed {seed}: {len(recs) - 1} momentum candidates")
            return

        if opts["fit_close_gate"]:
            self._fit_close_gate(book, seeds if opts["seeds"] else None, ranges, params, opts)
            return

        if opts["fit_calibration"]:
            # The development and the tuning books, both unless --seeds names some of them.
            chosen = (
                [(s, "dev" if s in DEV_SEEDS else "tune") for s in seeds]
                if opts["seeds"]
                else [(s, "dev") for s in DEV_SEEDS] + [(s, "tune") for s in TUNE_SEEDS]
            )
            if book != "generator" or held_out or set(seeds) - set(DEV_SEEDS) - set(TUNE_SEEDS):
                raise CommandError("the calibration is fitted on the development and tuning books only")
            from compliance.scenarios.calibration import calibration_fit, calibration_samples

            fitted = calibration_fit(calibration_samples(chosen, hours=opts["hours"], params=params))
            self.stdout.write(orjson.dumps(fitted, option=orjson.OPT_INDENT_2).decode() + "\n")
            return

        if book == "lob" and (opts["write_input"] or opts["write_labels"]):
            # Inspection only: the book is written, nothing is surveilled or scored.
            self._write(book, seeds[0], ranges, opts)
            self.stderr.write(f"lob book seed {seeds[0]} written (not scored)")
            return

        market = opts["market"] or book_market(book)
        if variants:
            self._check_variants(book, seeds[0], ranges, params, variants, market, opts)

        def log(info):
            self.stderr.write(
                f"seed {info['seed']} ({info['ranges']}): {info['lines']} lines, {info['order_events']} order events, "
                f"{info['episodes']} episodes, {info['near_misses']} near-misses, {info['alerts']} alerts"
            )
            if opts.get("scores_out"):
                with open(opts["scores_out"], "ab") as fh:
                    for label, scores in (("base", info["scores"]), *info.get("variants", {}).items()):
                        record = {"book": book, "seed": info["seed"], "ranges": ranges, "variant": label}
                        record["scores"] = [dataclasses.asdict(s) for s in scores]
                        fh.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))

        try:
            scores, scored, books = evaluate_sets(
                seeds, ranges, params, hours=opts["hours"], log=log, book=book, market=market, variants=variants
            )
        except ParameterError as exc:
            raise CommandError(f"--variants: {exc}") from None
        if book == "lob" and opts["seen_lob"]:
            kind, detail = "SEEN lob (already looked at: not an unseen measure)", "the limit order book"
        elif book == "lob":
            kind, detail = "LOB", "the limit order book"
        elif book == "independent" and opts["seen_independent"]:
            kind, detail = "SEEN independent (already looked at: not an unseen measure)", "the independent book"
        elif book == "independent":
            kind, detail = "INDEPENDENT", "the independent book"
        elif opts["seen_held_out"] or (ranges == "heldout" and set(seeds) <= set(SEEN_HELD_OUT_SEEDS)):
            kind, detail = "SEEN held-out (already looked at: not a held-out measure)", f"ranges {ranges}"
        elif ranges == "heldout":
            kind, detail = "HELD-OUT", f"ranges {ranges}"
        elif ranges == "tune":
            kind, detail = "tuning", f"ranges {ranges}"
        else:
            kind, detail = "development", f"ranges {ranges}"
        self.stdout.write(
            f"{kind} books: seeds {','.join(map(str, seeds))}, {detail}, {opts['hours']} h each, "
            f"market profile {market}\n"
        )
        self.stdout.write(format_table(scores) + "\n")
        ps, rs = macro(scores, True)
        pl, rl = macro(scores, False)
        self.stdout.write(
            f"\nmacro precision {ps:.2f} / recall {rs:.2f} (strict); {pl:.2f} / {rl:.2f} (lenient)\n\n"
            "Reliability of the scores (fraction of true alerts per score bin):\n\n"
        )
        self.stdout.write(format_reliability(scored) + "\n")
        self.stdout.write(
            "\nRecall with its 95 % interval (Wilson; about 12 episodes per type measure a recall only to "
            "+-0.2):\n\n" + format_intervals(scores) + "\n"
        )
        if set_size:
            sets = [
                (seeds[i : i + set_size], pool(b["scores"] for b in books[i : i + set_size]))
                for i in range(0, len(seeds), set_size)
            ]
            met = sum(not targets_missed(set_scores) for _, set_scores in sets)
            self.stdout.write(
                f"\nPer set of {set_size} (issue 16's targets: macro P and R >= 0.90 lenient, >= 0.85 strict, "
                f"no type under 0.75 recall): {met} of {len(sets)} sets meet every target\n\n"
                + format_sets(sets)
                + "\n"
            )
        if variants:
            size = set_size or len(seeds)
            chunks = [books[i : i + size] for i in range(0, len(books), size)]
            base = set_summary([pool(b["scores"] for b in chunk) for chunk in chunks])
            summaries = {
                label: set_summary([pool(b["variants"][label] for b in chunk) for chunk in chunks])
                for label in variants
            }
            self.stdout.write(
                f"\nSets of {size}, base: "
                + format_set_summary(base)
                + "\n\nVariants (each over the base):\n\n"
                + format_variant_summary(base, summaries)
                + "\n"
            )
            for label, summary in summaries.items():
                self.stdout.write(f"\nSets of {size}, variant {label}: " + format_set_summary(summary) + "\n")
        elif set_size:
            summary = set_summary([s for _, s in sets])
            self.stdout.write(f"\nSets of {set_size}: " + format_set_summary(summary) + "\n")
        if opts["write_input"] or opts["write_labels"]:
            self._write(book, seeds[0], ranges, opts)

    def _check_variants(self, book, seed, ranges, params, variants, market, opts) -> None:
        """Re-running only a variant's detectors must reproduce the full run's alerts of their
        types with the base parameters (on the first book): else the variants' figures would not be
        the full run's, and the command stops."""
        rows, _ = book_generate(book, seed, ranges=ranges, hours=opts["hours"])
        lines = [orjson.dumps(r) for r in rows]
        del rows
        alerts: list[dict] = []
        surveil_lines(
            lines, engine=SurveillanceEngine(params, market=market), emit=lambda b: alerts.append(orjson.loads(b))
        )
        for label, overrides in variants.items():
            differs = variant_check(lines, alerts, params, overrides, market=market)
            if differs:
                raise CommandError(f"--variants {label}: re-running its detectors alone differs ({differs})")
        self.stderr.write(f"variants checked on seed {seed}: their detectors alone reproduce the full run's alerts")

    def _fit_close_gate(self, book, seeds, ranges, params, opts) -> None:
        """Extract the allowed books' pushes at prints (or read them from ``--candidates``) and
        fit the gate; refused on any fresh or CONFIRMATION seed."""
        import os

        from compliance.scenarios import close_gate

        path = opts["candidates"]
        if path and os.path.exists(path):
            records = close_gate.load(path)
        else:
            if seeds is None:
                books = close_gate.allowed_books(opts["gate_per_book"])
            else:
                books = [(book, s, ranges) for s in seeds]
            for b in books:
                try:
                    close_gate.check_allowed(*b)
                except ValueError as exc:
                    raise CommandError(str(exc)) from None
            records = []

            def log(record):
                records.append(record)
                self.stderr.write(f"{record['book']}: {len(record['candidates'])} pushes at prints")

            if path:
                close_gate.extract(books, path, hours=opts["hours"], params=params, log=log)
            else:
                for b in books:
                    log(close_gate.book_candidates(*b, hours=opts["hours"], params=params))
        try:
            fitted = close_gate.fit_gate(records)
        except ValueError as exc:
            raise CommandError(f"--fit-close-gate: {exc}") from None
        self.stdout.write(orjson.dumps(fitted, option=orjson.OPT_INDENT_2).decode() + "\n")

    def _write(self, book: str, seed: int, ranges: str, opts) -> None:
        """Write one book's records (``--write-input``) and labels (``--write-labels``) as JSONL."""
        rows, episodes = book_generate(book, seed, ranges=ranges, hours=opts["hours"])
        if opts["write_input"]:
            with open(opts["write_input"], "wb") as fh:
                for row in rows:
                    fh.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))
        if opts["write_labels"]:
            with open(opts["write_labels"], "wb") as fh:
                for ep in episodes:
                    fh.write(orjson.dumps(ep.as_dict(), option=orjson.OPT_APPEND_NEWLINE))
