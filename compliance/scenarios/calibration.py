"""Fit the score calibration (``compliance.surveillance.episodes.CALIBRATION``) on the development
and tuning books (pure; numpy). A logistic regression of "the alert is a true episode of its type"
(strict truth) on one intercept per alert type and the raw strength (which already counts the
repeats), with a
light L2 penalty so that a type whose development alerts are all true keeps a finite intercept.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import orjson

from compliance.scenarios.evaluation import _truth
from compliance.scenarios.generator import ScenarioConfig, generate
from compliance.surveillance.batch import surveil_lines
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.params import ALERT_TYPES


def calibration_samples(books: Iterable[tuple[int, str]], *, hours: float = 4.0, params=None):
    """(alert type, raw score, detections, strictly true) for every alert on the books, each
    given as (seed, ranges): the development and tuning books only."""
    out = []
    for seed, ranges in books:
        rows, episodes = generate(ScenarioConfig(seed=seed, ranges=ranges, hours=hours))
        alerts: list[dict] = []
        surveil_lines(
            (orjson.dumps(r) for r in rows),
            engine=SurveillanceEngine(params),
            emit=lambda b, alerts=alerts: alerts.append(orjson.loads(b)),
        )
        by_order: dict = {}
        for ep in episodes:
            for oid in ep.order_ids:
                by_order.setdefault(oid, []).append(ep)
        for a in alerts:
            strict, _lenient, _near, _s, _l = _truth(a, by_order)
            episode = a["evidence"]["episode"]
            out.append((a["alert_type"], episode["raw_score"], episode["detections"], strict))
    return out


def calibration_fit(samples, *, l2: float = 0.5, iterations: int = 50) -> dict:
    """Newton's method on the penalised log-likelihood. Returns the ``CALIBRATION`` dict."""
    types = [t for t in ALERT_TYPES if any(s[0] == t for s in samples)]
    n_feat = len(types) + 1
    x = np.zeros((len(samples), n_feat))
    y = np.zeros(len(samples))
    for i, (alert_type, raw, _detections, true) in enumerate(samples):
        x[i, types.index(alert_type)] = 1.0
        x[i, -1] = raw - 0.75
        y[i] = 1.0 if true else 0.0
    w = np.zeros(n_feat)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(x @ w)))
        grad = x.T @ (p - y) + l2 * w
        hess = (x.T * (p * (1 - p))) @ x + l2 * np.eye(n_feat)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.max(np.abs(step)) < 1e-8:
            break
    return {
        "raw": round(float(w[-1]), 4),
        "intercepts": {t: round(float(w[i]), 4) for i, t in enumerate(types)},
    }
