"""Precision and recall of the surveillance engine on generated books (pure, no Django).

Truth is by order: an alert is about an episode when it names at least one of the episode's
orders. The same scoring serves every book (``generator``, ``independent``, ``lob``): an episode is
anything with ``kind``, ``near_miss``, ``order_ids`` and ``accepted``. Per alert type:
- strict: an alert is true when it names an abuse episode of its own type; recall counts the
  episodes of the type found by an alert of that type. An alert of a related type (wash trade
  on a painting episode, spoofing on layering...) is false.
- lenient: an alert is also true on an abuse episode of a related type
  (``generator.ACCEPTED``), and an episode is also found by an alert of a related type.
An alert on a near-miss's orders (and on nothing else) is false either way; ``near_miss_alerts``
counts them. Macro figures are the plain means over the alert types (a type with no alert has
no precision and is left out of the precision mean; its recall, 0, stays in the recall mean).

``reliability`` bins the alerts by score: the fraction of true alerts per bin shows whether a
higher score is more likely a true episode.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

import orjson

from compliance.scenarios.generator import KINDS, ScenarioConfig, generate
from compliance.surveillance.batch import surveil_lines
from compliance.surveillance.engine import DETECTORS, SurveillanceEngine


@dataclass
class TypeScore:
    alert_type: str
    episodes: int = 0
    found_strict: int = 0
    found_lenient: int = 0
    alerts: int = 0
    true_strict: int = 0
    true_lenient: int = 0
    near_miss_alerts: int = 0
    near_misses: int = 0

    def add(self, other: TypeScore) -> None:
        for name in (
            "episodes",
            "found_strict",
            "found_lenient",
            "alerts",
            "true_strict",
            "true_lenient",
            "near_miss_alerts",
            "near_misses",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def recall(self, strict: bool = True) -> float | None:
        if not self.episodes:
            return None
        return (self.found_strict if strict else self.found_lenient) / self.episodes

    def precision(self, strict: bool = True) -> float | None:
        if not self.alerts:
            return None
        return (self.true_strict if strict else self.true_lenient) / self.alerts


def _truth(alert: dict, by_order: dict[str, list]):
    """(strictly true, leniently true, on a near-miss, episodes found strictly, leniently)."""
    kind = alert["alert_type"]
    strict = lenient = near = False
    found_s: list = []
    found_l: list = []
    for oid in alert["order_ids"]:
        for ep in by_order.get(oid, ()):
            if ep.near_miss:
                near = True
            elif kind == ep.kind:
                strict = lenient = True
                found_s.append(ep)
                found_l.append(ep)
            elif kind in ep.accepted:
                lenient = True
                found_l.append(ep)
    return strict, lenient, near and not lenient, found_s, found_l


def score(alerts: list[dict], episodes: list) -> tuple[list[TypeScore], list[tuple[float, bool, bool]]]:
    """Per-type scores and, per alert, (score, strictly true, leniently true)."""
    by_order: dict[str, list] = {}
    for ep in episodes:
        for oid in ep.order_ids:
            by_order.setdefault(oid, []).append(ep)
    table = {k: TypeScore(k) for k in KINDS}
    found_s: set[int] = set()
    found_l: set[int] = set()
    scored = []
    for alert in alerts:
        row = table.setdefault(alert["alert_type"], TypeScore(alert["alert_type"]))
        strict, lenient, near, eps_s, eps_l = _truth(alert, by_order)
        row.alerts += 1
        row.true_strict += strict
        row.true_lenient += lenient
        row.near_miss_alerts += near
        found_s.update(id(e) for e in eps_s)
        found_l.update(id(e) for e in eps_l)
        scored.append((float(alert["score"]), strict, lenient))
    for ep in episodes:
        row = table[ep.kind]
        if ep.near_miss:
            row.near_misses += 1
            continue
        row.episodes += 1
        row.found_strict += id(ep) in found_s
        row.found_lenient += id(ep) in found_l
    return list(table.values()), scored


# The books: "generator" (compliance.scenarios.generator: development, held-out and seen
# held-out seeds, by ranges), "independent" (compliance.scenarios.independent: evaluation only)
# and "lob" (compliance.scenarios.lob, an exchange-style limit order book: evaluation only).
BOOKS = ("generator", "independent", "lob")


def book_generate(book: str, seed: int, *, ranges: str = "dev", hours: float = 4.0):
    """(records, labelled episodes) of one book."""
    if book == "independent":
        from compliance.scenarios.independent import IndependentConfig, independent_generate

        return independent_generate(IndependentConfig(seed=seed, hours=hours))
    if book == "lob":
        from compliance.scenarios.lob import LobConfig, lob_generate

        return lob_generate(LobConfig(seed=seed, hours=hours))
    if book != "generator":
        raise ValueError(f"unknown book {book!r}; known: {', '.join(BOOKS)}")
    return generate(ScenarioConfig(seed=seed, ranges=ranges, hours=hours))


def evaluate(cfg: ScenarioConfig, params: dict | None = None):
    """Generate one book, surveil it through the same line decoder as ``manage.py surveil``,
    and score it. Returns (per-type scores, per-alert (score, strict, lenient), stats)."""
    return evaluate_rows(*generate(cfg), params)


def evaluate_rows(
    rows: list[dict],
    episodes: list,
    params: dict | None = None,
    *,
    market: str = "otc",
    variants: dict[str, dict] | None = None,
):
    """Surveil generated records on ``market``'s profile and score the alerts against the
    labelled episodes. ``variants`` (label -> detector parameters over ``params``): each is
    scored on the same records too, under ``info["variants"][label]`` (``variant_alerts``)."""
    lines = [orjson.dumps(r) for r in rows]
    del rows
    alerts: list[dict] = []
    stats = surveil_lines(
        lines, engine=SurveillanceEngine(params, market=market), emit=lambda b: alerts.append(orjson.loads(b))
    )
    scores, scored = score(alerts, episodes)
    by_variant = {
        label: score(variant_alerts(lines, alerts, params, overrides, market=market), episodes)[0]
        for label, overrides in (variants or {}).items()
    }
    info = {
        "lines": stats.lines,
        "order_events": stats.order_events,
        "alerts": stats.alerts,
        "episodes": sum(not e.near_miss for e in episodes),
        "near_misses": sum(e.near_miss for e in episodes),
    }
    if variants is not None:
        info["variants"] = by_variant
    return scores, scored, info


# Detectors whose alerts depend on each other's matching (the wash-trade and painting detectors
# share the wash-trade matching: wash leaves painting runs to painting): a variant of one re-runs
# both.
COUPLED_DETECTORS: dict[str, frozenset[str]] = {
    "wash_trade": frozenset({"painting_the_tape"}),
    "painting_the_tape": frozenset({"wash_trade"}),
}


def variant_detectors(overrides: dict) -> set[str]:
    """The detectors a variant's parameters touch, with the ones coupled to them."""
    names = set(overrides)
    for name in list(names):
        names |= COUPLED_DETECTORS.get(name, frozenset())
    return names


def variant_params(params: dict | None, overrides: dict) -> dict:
    """``overrides`` (detector -> parameters) over ``params``, parameter by parameter."""
    merged = dict(params or {})
    for name, raw in overrides.items():
        base = merged.get(name)
        if not isinstance(raw, dict) or (base is not None and not isinstance(base, dict)):
            raise ValueError(
                f"variant parameters for {name!r}: a JSON object over a JSON object (parameter by parameter)"
            )
        merged[name] = {**(base or {}), **raw}
    return merged


def _rerun(lines: list[bytes], params: dict | None, only: set[str], *, market: str) -> tuple[set[str], list[dict]]:
    """The alert types of the detectors ``only``, and their alerts on ``lines`` run alone."""
    # every type the detectors raise: the spoofing detector raises layering too
    types = {t for name, cls in DETECTORS.items() if name in only for t in getattr(cls, "emits", (cls.alert_type,))}
    redone: list[dict] = []
    engine = SurveillanceEngine(params, market=market, only=only)
    surveil_lines(lines, engine=engine, emit=lambda b: redone.append(orjson.loads(b)))
    return types, redone


def variant_alerts(lines: list[bytes], alerts: list[dict], params: dict | None, overrides: dict, *, market: str):
    """The alerts of a run with ``overrides`` over ``params``, from a run with ``params``
    (``alerts``): only the detectors the overrides touch (``variant_detectors``) are run again,
    and their alert types' alerts replace the first run's (the other detectors' alerts do not
    depend on them; ``surveil_scenarios --variants`` checks that on the first book)."""
    types, redone = _rerun(lines, variant_params(params, overrides), variant_detectors(overrides), market=market)
    return [a for a in alerts if a["alert_type"] not in types] + redone


def variant_check(lines: list[bytes], alerts: list[dict], params: dict | None, overrides: dict, *, market: str):
    """None when re-running only a variant's detectors with no change reproduces the full run's
    alerts of their types (so ``variant_alerts`` is the full run's), else what differs."""
    only = variant_detectors(overrides)
    types, redone = _rerun(lines, params, only, market=market)
    key = _alert_key
    full = sorted(key(a) for a in alerts if a["alert_type"] in types)
    alone = sorted(key(a) for a in redone)
    if full == alone:
        return None
    return f"{', '.join(sorted(only))}: {len(full)} alerts in the full run, {len(alone)} alone"


def _alert_key(alert: dict) -> bytes:
    return orjson.dumps({k: v for k, v in alert.items() if k not in ("alert_id", "id")}, option=orjson.OPT_SORT_KEYS)


def book_market(book: str) -> str:
    """The kind of market a scenario book trades on (``MARKET_PROFILES``): the limit order book's
    clients trade on an exchange-style order book; the generator's and the independent book's on
    dealer quotes. A firm knows its venue and sets ``SURVEILLANCE_MARKET`` so; the evaluation does
    the same for each book."""
    return "order_book" if book == "lob" else "otc"


def evaluate_sets(
    seeds: Iterable[int],
    ranges: str,
    params: dict | None = None,
    *,
    hours: float = 4.0,
    log=None,
    book: str = "generator",
    market: str | None = None,
    variants: dict[str, dict] | None = None,
):
    """Pool several books: (per-type scores, per-alert scores, per-book stats, each book's own
    per-type scores under ``"scores"``). ``market``: the detectors' profile; None: the book's own
    market (``book_market``). ``variants``: each book is also scored under each (its per-type
    scores under ``"variants"``, ``evaluate_rows``)."""
    market = market or book_market(book)
    scored_all: list[tuple[float, bool, bool]] = []
    books = []
    for seed in seeds:
        rows, episodes = book_generate(book, seed, ranges=ranges, hours=hours)
        scores, scored, info = evaluate_rows(rows, episodes, params, market=market, variants=variants)
        del rows
        scored_all += scored
        books.append({"seed": seed, "ranges": ranges if book == "generator" else book, "scores": scores, **info})
        if log is not None:
            log(books[-1])
    return pool(b["scores"] for b in books), scored_all, books


def macro(scores: list[TypeScore], strict: bool) -> tuple[float, float]:
    precisions = [p for s in scores if (p := s.precision(strict)) is not None]
    recalls = [r for s in scores if (r := s.recall(strict)) is not None]
    return (
        sum(precisions) / len(precisions) if precisions else 0.0,
        sum(recalls) / len(recalls) if recalls else 0.0,
    )


# Issue 16's targets, per set of books: macro precision and recall >= 0.90 (lenient), >= 0.85
# strict (related types count as false), and no alert type under 0.75 recall (strict).
TARGET_MACRO_LENIENT = 0.90
TARGET_MACRO_STRICT = 0.85
TARGET_FLOOR = 0.75


def targets_missed(scores: list[TypeScore]) -> list[str]:
    """Which of issue 16's targets a set's scores miss (empty: every target met)."""
    missed = []
    ps, rs = macro(scores, True)
    pl, rl = macro(scores, False)
    for name, value, target in (
        ("strict precision", ps, TARGET_MACRO_STRICT),
        ("strict recall", rs, TARGET_MACRO_STRICT),
        ("lenient precision", pl, TARGET_MACRO_LENIENT),
        ("lenient recall", rl, TARGET_MACRO_LENIENT),
    ):
        if round(value, 2) < target:
            missed.append(f"{name} {value:.2f}")
    for s in scores:
        r = s.recall(True)
        if r is not None and round(r, 2) < TARGET_FLOOR:
            missed.append(f"{s.alert_type} {r:.2f}")
    return missed


def pool(score_lists: Iterable[list[TypeScore]]) -> list[TypeScore]:
    """Per-type scores summed over several books or sets (counts, not ratios, are added)."""
    pooled = {k: TypeScore(k) for k in KINDS}
    for scores in score_lists:
        for s in scores:
            pooled.setdefault(s.alert_type, TypeScore(s.alert_type)).add(s)
    return list(pooled.values())


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval (95 % by default) of a proportion k / n; None when n is 0.
    About 12 episodes per type measure a recall only to +-0.2: the interval says so."""
    if n <= 0:
        return None
    p = k / n
    d = 1 + z * z / n
    c = p + z * z / (2 * n)
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, (c - h) / d), min(1.0, (c + h) / d)


def format_sets(sets: list[tuple[list[int], list[TypeScore]]]) -> str:
    """One row per set of books: macro figures, the two lowest recalls, and the targets."""
    lines = [
        "| set | strict P / R | lenient P / R | lowest recall (strict) | every target met? |",
        "| --- | --- | --- | --- | --- |",
    ]
    for seeds, scores in sets:
        ps, rs = macro(scores, True)
        pl, rl = macro(scores, False)
        ranked = sorted((r, s.alert_type) for s in scores if (r := s.recall(True)) is not None)[:2]
        missed = targets_missed(scores)
        lines.append(
            f"| {', '.join(map(str, seeds))} | {ps:.2f} / {rs:.2f} | {pl:.2f} / {rl:.2f} "
            f"| {', '.join(f'{t} {r:.2f}' for r, t in ranked)} | {'no: ' + ', '.join(missed) if missed else 'yes'} |"
        )
    return "\n".join(lines)


def format_intervals(scores: list[TypeScore]) -> str:
    """Per type: episodes found (strict) with the recall's 95 % interval."""
    lines = [
        "| alert type | found / episodes (strict) | recall strict | 95 % interval |",
        "| --- | ---: | ---: | --- |",
    ]
    for s in scores:
        interval = wilson(s.found_strict, s.episodes)
        lines.append(
            f"| {s.alert_type} | {s.found_strict} / {s.episodes} | {_pct(s.recall(True))} "
            f"| {'-' if interval is None else f'{interval[0]:.2f}-{interval[1]:.2f}'} |"
        )
    return "\n".join(lines)


def reliability(scored: list[tuple[float, bool, bool]], edges=(0.5, 0.6, 0.7, 0.8, 0.9, 1.0001)):
    """Per score bin: (low, high, alerts, strictly true fraction, leniently true fraction)."""
    out = []
    for lo, hi in zip(edges, edges[1:], strict=False):
        inside = [x for x in scored if lo <= x[0] < hi]
        n = len(inside)
        out.append(
            (
                lo,
                min(hi, 1.0),
                n,
                sum(x[1] for x in inside) / n if n else None,
                sum(x[2] for x in inside) / n if n else None,
            )
        )
    below = [x for x in scored if x[0] < edges[0]]
    if below:
        n = len(below)
        out.insert(0, (0.0, edges[0], n, sum(x[1] for x in below) / n, sum(x[2] for x in below) / n))
    return out


def _pct(x):
    return "-" if x is None else f"{x:.2f}"


def format_table(scores: list[TypeScore]) -> str:
    lines = [
        "| alert type | episodes | near-misses | alerts | recall strict | recall lenient "
        "| precision strict | precision lenient | alerts on near-misses |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in scores:
        lines.append(
            f"| {s.alert_type} | {s.episodes} | {s.near_misses} | {s.alerts} | {_pct(s.recall(True))} "
            f"| {_pct(s.recall(False))} | {_pct(s.precision(True))} | {_pct(s.precision(False))} "
            f"| {s.near_miss_alerts} |"
        )
    ps, rs = macro(scores, True)
    pl, rl = macro(scores, False)
    lines.append(f"| **macro** | | | | **{rs:.2f}** | **{rl:.2f}** | **{ps:.2f}** | **{pl:.2f}** | |")
    return "\n".join(lines)


def format_reliability(scored) -> str:
    lines = ["| score | alerts | true (strict) | true (lenient) |", "| --- | ---: | ---: | ---: |"]
    for lo, hi, n, fs, fl in reliability(scored):
        lines.append(f"| {lo:.1f}-{hi:.1f} | {n} | {_pct(fs)} | {_pct(fl)} |")
    return "\n".join(lines)


def macro_drags(scores: list[TypeScore]) -> set[str]:
    """The types that drag a missed macro target under it: the macro figure (strict or lenient
    precision or recall) misses its target and, the type left out of the mean, would meet it."""
    dragging: set[str] = set()
    for strict, target in ((True, TARGET_MACRO_STRICT), (False, TARGET_MACRO_LENIENT)):
        for figure in (TypeScore.precision, TypeScore.recall):
            values = {s.alert_type: v for s in scores if (v := figure(s, strict)) is not None}
            if not values or round(sum(values.values()) / len(values), 2) >= target:
                continue
            for t in values:
                rest = [x for u, x in values.items() if u != t]
                if rest and round(sum(rest) / len(rest), 2) >= target:
                    dragging.add(t)
    return dragging


def set_summary(sets: list[list[TypeScore]]) -> dict:
    """Over sets of books: how many meet every target, and per type the sets under the recall
    floor, the sets where it drags a macro figure under target (``macro_drags``), and its pooled
    counts (episodes, found strictly, alerts, strictly false)."""
    met = sum(not targets_missed(scores) for scores in sets)
    per_type: dict[str, dict] = {}
    for scores in sets:
        drags = macro_drags(scores)
        for s in scores:
            row = per_type.setdefault(
                s.alert_type, {"under_floor": 0, "drags_macro": 0, "episodes": 0, "found": 0, "alerts": 0, "false": 0}
            )
            r = s.recall(True)
            row["under_floor"] += r is not None and round(r, 2) < TARGET_FLOOR
            row["drags_macro"] += s.alert_type in drags
            row["episodes"] += s.episodes
            row["found"] += s.found_strict
            row["alerts"] += s.alerts
            row["false"] += s.alerts - s.true_strict
    return {"sets": len(sets), "met": met, "types": per_type}


def format_set_summary(summary: dict) -> str:
    """``set_summary`` as markdown: the pass rate, the chance that 3 of 3 sets pass if sets are
    independent, and one row per type."""
    n, met = summary["sets"], summary["met"]
    rate = met / n if n else 0.0
    interval = wilson(met, n)
    head = (
        f"{met} of {n} sets meet every target ({rate:.2f}"
        + (f", 95 % interval {interval[0]:.2f}-{interval[1]:.2f}" if interval else "")
        + f"); 3 of 3 independent sets pass with chance {rate**3:.2f}\n\n"
    )
    lines = [
        "| alert type | sets under 0.75 recall | sets where it drags a macro figure under target "
        "| found / episodes (strict) | recall strict | alerts | strictly false | precision strict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for t, row in summary["types"].items():
        recall = row["found"] / row["episodes"] if row["episodes"] else None
        precision = (row["alerts"] - row["false"]) / row["alerts"] if row["alerts"] else None
        lines.append(
            f"| {t} | {row['under_floor']} | {row['drags_macro']} | {row['found']} / {row['episodes']} "
            f"| {_pct(recall)} | {row['alerts']} | {row['false']} | {_pct(precision)} |"
        )
    return head + "\n".join(lines)


def format_variant_summary(base: dict, variants: dict[str, dict]) -> str:
    """One row per variant against the base (both ``set_summary``): sets meeting every target,
    and per type whose figures changed: found, alerts, strictly false, sets under the floor."""
    lines = [
        "| variant | sets meeting every target | found / alerts / strictly false / sets under 0.75, base -> variant "
        "(types that changed) |",
        "| --- | --- | --- |",
    ]
    for label, summary in variants.items():
        changes = []
        for t, row in summary["types"].items():
            b = base["types"].get(t)
            keys = ("found", "alerts", "false", "under_floor")
            if b is None or any(b[k] != row[k] for k in keys):
                b = b or dict.fromkeys(keys, 0)
                changes.append(
                    f"{t} {b['found']} -> {row['found']} of {row['episodes']}, {b['alerts']} -> {row['alerts']}, "
                    f"{b['false']} -> {row['false']}, {b['under_floor']} -> {row['under_floor']}"
                )
        met = f"{base['met']} -> {summary['met']} of {summary['sets']}"
        lines.append(f"| {label} | {met} | {'; '.join(changes) or 'identical'} |")
    return "\n".join(lines)
