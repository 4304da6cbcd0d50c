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
from compliance.surveillance.engine import SurveillanceEngine


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


def evaluate_rows(rows: list[dict], episodes: list, params: dict | None = None, *, market: str = "otc"):
    """Surveil generated records on ``market``'s profile and score the alerts against the
    labelled episodes."""
    lines = [orjson.dumps(r) for r in rows]
    del rows
    alerts: list[dict] = []
    stats = surveil_lines(
        lines, engine=SurveillanceEngine(params, market=market), emit=lambda b: alerts.append(orjson.loads(b))
    )
    scores, scored = score(alerts, episodes)
    info = {
        "lines": stats.lines,
        "order_events": stats.order_events,
        "alerts": stats.alerts,
        "episodes": sum(not e.near_miss for e in episodes),
        "near_misses": sum(e.near_miss for e in episodes),
    }
    return scores, scored, info


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
):
    """Pool several books: (per-type scores, per-alert scores, per-book stats, each book's own
    per-type scores under ``"scores"``). ``market``: the detectors' profile; None: the book's own
    market (``book_market``)."""
    market = market or book_market(book)
    scored_all: list[tuple[float, bool, bool]] = []
    books = []
    for seed in seeds:
        rows, episodes = book_generate(book, seed, ranges=ranges, hours=hours)
        scores, scored, info = evaluate_rows(rows, episodes, params, market=market)
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
