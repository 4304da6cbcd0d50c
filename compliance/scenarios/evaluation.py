"""Precision and recall of the surveillance engine on a generated scenario (pure, no Django).

An alert is a true positive when its type is one the episode accepts (``generator.ACCEPTED``)
and it names at least one of the episode's orders. Precision per alert type = true-positive
alerts / alerts of that type; recall per kind = episodes of that kind found by at least one
alert of that kind / episodes of that kind.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from compliance.scenarios.generator import KINDS, Episode, ScenarioConfig, generate
from compliance.surveillance.batch import surveil_lines
from compliance.surveillance.engine import SurveillanceEngine


@dataclass(frozen=True)
class TypeScore:
    alert_type: str
    episodes: int
    found: int
    alerts: int
    true_alerts: int

    @property
    def recall(self) -> float | None:
        return self.found / self.episodes if self.episodes else None

    @property
    def precision(self) -> float | None:
        return self.true_alerts / self.alerts if self.alerts else None


def score(alerts: list[dict], episodes: list[Episode]) -> list[TypeScore]:
    by_order: dict[str, list[Episode]] = {}
    for ep in episodes:
        for oid in ep.order_ids:
            by_order.setdefault(oid, []).append(ep)
    found: set[int] = set()
    true_alerts: dict[str, int] = {}
    counts: dict[str, int] = {}
    for alert in alerts:
        kind = alert["alert_type"]
        counts[kind] = counts.get(kind, 0) + 1
        hit = False
        for oid in alert["order_ids"]:
            for ep in by_order.get(oid, ()):
                if kind in ep.accepted:
                    hit = True
                    if kind == ep.kind:
                        found.add(id(ep))
        if hit:
            true_alerts[kind] = true_alerts.get(kind, 0) + 1
    out = []
    for kind in KINDS:
        eps = [e for e in episodes if e.kind == kind]
        out.append(
            TypeScore(
                alert_type=kind,
                episodes=len(eps),
                found=sum(1 for e in eps if id(e) in found),
                alerts=counts.get(kind, 0),
                true_alerts=true_alerts.get(kind, 0),
            )
        )
    return out


def evaluate(cfg: ScenarioConfig, params: dict | None = None) -> tuple[list[TypeScore], dict]:
    """Generate, surveil through the same line decoder as ``manage.py surveil``, and score."""
    rows, episodes = generate(cfg)
    lines = [orjson.dumps(r) for r in rows]
    alerts: list[dict] = []
    stats = surveil_lines(lines, engine=SurveillanceEngine(params), emit=lambda b: alerts.append(orjson.loads(b)))
    return score(alerts, episodes), {"lines": stats.lines, "order_events": stats.order_events, "alerts": stats.alerts}


def format_table(scores: list[TypeScore]) -> str:
    def pct(x):
        return "-" if x is None else f"{x:.2f}"

    lines = [
        "| alert type | episodes | found | recall | alerts | true | precision |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in scores:
        recall, precision = pct(s.recall), pct(s.precision)
        lines.append(
            f"| {s.alert_type} | {s.episodes} | {s.found} | {recall} | {s.alerts} | {s.true_alerts} | {precision} |"
        )
    return "\n".join(lines)
