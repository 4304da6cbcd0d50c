"""The learned gate of marking the close (``MarkingTheCloseParams.close_gate``): extract every push
the detector evaluates at a print, with its features and the hand test that stopped it, label it
against the book's episodes as the evaluation matches alerts (``evaluation._truth``: by order),
and fit a logistic regression over the standardised features by grouped cross-validation
(whole books left out), against today's hand rules on the same held-out folds.

Labels: ``true`` (the push names an order of a marking-the-close episode), ``near`` (it names a
near-miss's orders and no episode of its type or a related one) and ``background``. Counts on a
fold: the marking-the-close episodes found (named by an alerted push), the alerts (pushes
alerted: one per account and print, before the engine merges an account's alerts into one per
episode) and the strictly false ones (alerts that are not ``true``).

Allowed books only (the protocol in docs/surveillance-rounds.md): development, tuning, the order
book's development seeds 1-9 and the seen sets EXCEPT the nine CONFIRMATION sets per book
(``CONFIRMATION``); never the fresh seeds.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import orjson

from compliance.scenarios.evaluation import _truth, book_generate
from compliance.scenarios.generator import DEV_SEEDS, SEEN_HELD_OUT_SEEDS, TUNE_SEEDS
from compliance.scenarios.independent import SEEN_INDEPENDENT_SEEDS
from compliance.scenarios.lob import SEEN_LOB_SEEDS
from compliance.surveillance.batch import surveil_lines
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.params import CLOSE_GATE
from compliance.surveillance.trade_detectors import CLOSE_GATE_FEATURES, MarkingTheCloseDetector, close_gate_votes

# The nine sets per book run at 03:53-03:57 UTC on 2026-12-07 (main at f3774dd, drawn 02:48 UTC on
# 2026-12-07): the next round's CONFIRMATION row, never used to fit or choose. The gates in force
# (CLOSE_GATE, MOMENTUM_GATE, MOMENTUM_GATE_OTC, PRINT_PURPOSE_GATE) were fitted before it; the rows
# before it (the 02:46 run's sets, which were the 03:00 rounds' CONFIRMATION, and the runs before)
# are allowed seen books.
CONFIRMATION = {
    "heldout": (47883, 7264, 58309, 11224, 14619, 5562, 53136, 21384, 94679),
    "independent": (54886, 33625, 63850, 57615, 61159, 65190, 87345, 65135, 16800),
    "lob": (88048, 49063, 4696, 22272, 96373, 25272, 59358, 76634, 8841),
}
LOB_DEV_SEEDS = tuple(range(1, 10))


def allowed_books(per_book: int | None = None) -> list[tuple[str, int, str]]:
    """(book, seed, ranges) of every book the gate may be fitted on: development, tuning, the
    order book's development seeds, and the seen sets less the CONFIRMATION sets: every seen
    independent book, the first ``per_book`` seen held-out and seen order books (all when None;
    the 09:00 round's fit: 25, 222 books)."""
    books = [("generator", s, "dev") for s in DEV_SEEDS] + [("generator", s, "tune") for s in TUNE_SEEDS]
    books += [("lob", s, "dev") for s in LOB_DEV_SEEDS]
    for book, ranges, seen in (
        ("independent", "dev", SEEN_INDEPENDENT_SEEDS),
        ("generator", "heldout", SEEN_HELD_OUT_SEEDS),
        ("lob", "dev", SEEN_LOB_SEEDS),
    ):
        kept = [s for s in seen if s not in CONFIRMATION["heldout" if ranges == "heldout" else book]]
        books += [(book, s, ranges) for s in (kept if book == "independent" else kept[:per_book])]
    return books


def check_allowed(book: str, seed: int, ranges: str) -> None:
    """Refuse any book not in ``allowed_books()`` (a fresh seed, a CONFIRMATION set, or a seed
    nobody has seen): ValueError naming it."""
    if (book, seed, ranges) not in set(allowed_books()):
        raise ValueError(
            f"{book} seed {seed} ({ranges}): not an allowed book (development, tuning, the order book's 1-9, "
            "or a seen set other than the CONFIRMATION sets); the close gate is never fitted on it"
        )


def _detector(engine: SurveillanceEngine) -> MarkingTheCloseDetector:
    for unit in engine.detectors:
        if isinstance(unit, MarkingTheCloseDetector):
            return unit
    raise LookupError("no marking-the-close detector on the engine (scoped rules are not supported here)")


def book_candidates(book: str, seed: int, ranges: str, *, hours: float = 4.0, params: dict | None = None) -> dict:
    """One book's pushes at prints, labelled: {"book", "seed", "episodes": [episode keys of
    marking the close], "alerts": the engine's marking alerts, "candidates": [...]}."""
    check_allowed(book, seed, ranges)
    rows, episodes = book_generate(book, seed, ranges=ranges, hours=hours)
    params = dict(params or {})
    params["marking_the_close"] = {**params.get("marking_the_close", {}), "gate_candidates": True}
    engine = SurveillanceEngine(params)
    alerts: list[dict] = []
    surveil_lines(
        (orjson.dumps(r) for r in rows),
        engine=engine,
        emit=lambda b: alerts.append(orjson.loads(b)),
    )
    del rows
    key = {id(ep): f"{book}:{ranges}:{seed}:{i}" for i, ep in enumerate(episodes)}
    by_order: dict = {}
    for ep in episodes:
        for oid in ep.order_ids:
            by_order.setdefault(oid, []).append(ep)
    out = []
    for c in _detector(engine).candidates:
        strict, lenient, near, found, _found_l = _truth(
            {"alert_type": "marking_the_close", "order_ids": c["order_ids"]}, by_order
        )
        label = "true" if strict else "near" if near else "related" if lenient else "background"
        out.append(
            {
                "account": c["account"],
                "symbol": c["symbol"],
                "close_ts": c["close_ts"],
                "hand_stop": c["hand_stop"],
                "features": c["features"],
                "purpose": c.get("purpose", {}),
                "label": label,
                "found": sorted({key[id(ep)] for ep in found}),
            }
        )
    return {
        "book": f"{book}:{ranges}:{seed}",
        "episodes": [key[id(ep)] for ep in episodes if ep.kind == "marking_the_close" and not ep.near_miss],
        "alerts": sum(a["alert_type"] == "marking_the_close" for a in alerts),
        "candidates": out,
    }


def extract(books: Iterable[tuple[str, int, str]], path: str, *, hours: float = 4.0, params=None, log=None) -> int:
    """Write each book's labelled candidates to ``path`` (one JSON line per book)."""
    n = 0
    with open(path, "wb") as fh:
        for book, seed, ranges in books:
            record = book_candidates(book, seed, ranges, hours=hours, params=params)
            fh.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
            fh.flush()
            n += 1
            if log is not None:
                log(record)
    return n


def load(path: str) -> list[dict]:
    with open(path, "rb") as fh:
        return [orjson.loads(line) for line in fh if line.strip()]


def _feature(c: dict, name: str) -> float:
    if name == "hand_pass":  # derived from the recorded verdict (candidates extracted before it was a feature)
        return 1.0 if c["hand_stop"] is None else 0.0
    if name.startswith("ok_") and name not in c["features"]:
        c["features"].update(close_gate_votes(c["features"]))
    return c["features"][name]


def _matrix(records: list[dict], features=CLOSE_GATE_FEATURES):
    import numpy as np

    rows, y, groups, cands = [], [], [], []
    for g, rec in enumerate(records):
        for c in rec["candidates"]:
            rows.append([_feature(c, name) for name in features])
            y.append(c["label"] == "true")
            groups.append(g)
            cands.append(c)
    return np.array(rows, dtype=float).reshape(-1, len(features)), np.array(y), np.array(groups), cands


def _counts(records: list[dict], idx_books, cands, groups, alerted) -> dict:
    """Episodes, found, alerts, strictly false and near-miss alerts over the books ``idx_books``
    with ``alerted`` a boolean per candidate."""
    books = set(idx_books)
    episodes = sum(len(records[g]["episodes"]) for g in books)
    found: set[str] = set()
    alerts = false = near = 0
    for i, c in enumerate(cands):
        if groups[i] not in books or not alerted[i]:
            continue
        alerts += 1
        if c["label"] != "true":
            false += 1
        near += c["label"] == "near"
        found.update(c["found"])
    return {"episodes": episodes, "found": len(found), "alerts": alerts, "false": false, "near_miss_alerts": near}


def _choose(records, x, y, groups, cands, train_books, hand, *, grid_c, inner_folds, seed=0):
    """The regularisation and threshold chosen on the training books alone by an inner grouped
    cross-validation: the most episodes found with no more strictly false alerts than the hand
    rules on the same books (ties: fewer false). Returns (C, threshold, inner figures)."""
    import numpy as np
    from sklearn.model_selection import GroupKFold

    train = np.isin(groups, list(train_books))
    hand_counts = _counts(records, train_books, cands, groups, hand)
    best = None
    for c_value in grid_c:
        oof = np.full(len(y), -np.inf)
        for tr, te in GroupKFold(n_splits=inner_folds).split(x[train], y[train], groups[train]):
            tr_idx, te_idx = np.flatnonzero(train)[tr], np.flatnonzero(train)[te]
            model = _fit(x[tr_idx], y[tr_idx], c_value)
            oof[te_idx] = model(x[te_idx])
        for threshold in np.arange(-4.0, 4.01, 0.25):
            counts = _counts(records, train_books, cands, groups, oof >= threshold)
            if counts["false"] > hand_counts["false"]:
                continue
            key = (counts["found"], -counts["false"], -c_value)
            if best is None or key > best[0]:
                best = (key, c_value, float(threshold), counts)
    if best is None:  # no threshold keeps the hand rules' false alerts: the strictest one
        return grid_c[0], 4.0, None
    return best[1], best[2], best[3]


def _fit(x, y, c_value):
    """A standardised logistic regression; returns the linear score (log-odds) of new rows."""
    from sklearn.linear_model import LogisticRegression

    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    model = LogisticRegression(C=c_value, max_iter=2000).fit((x - mean) / scale, y)
    coef, intercept = model.coef_[0], float(model.intercept_[0])

    def score(rows):
        return ((rows - mean) / scale) @ coef + intercept

    score.mean, score.scale, score.coef, score.intercept = mean, scale, coef, intercept
    return score


def fit_gate(
    records: list[dict],
    *,
    features=CLOSE_GATE_FEATURES,
    folds: int = 5,
    inner_folds: int = 4,
    grid_c=(0.01, 0.1, 1.0, 10.0),
) -> dict:
    """Grouped (books left out) nested cross-validation of the gate against the hand rules, then
    the gate fitted on every book with the regularisation and threshold chosen the same way.
    Returns a JSON-able dict: per fold hand vs gate, the pooled figures, and ``gate`` (the
    ``CLOSE_GATE`` to paste into params.py)."""
    import numpy as np
    from sklearn.model_selection import GroupKFold

    x, y, groups, cands = _matrix(records, features)
    if not len(y) or not y.any():
        raise ValueError("no candidate of a marking-the-close episode on these books: nothing to fit")
    hand = np.array([c["hand_stop"] is None for c in cands])
    all_books = list(range(len(records)))
    out_folds = []
    oof = np.zeros(len(y), dtype=bool)  # the gate's verdict on each push from the fold that left its book out
    # Fewer than four books cannot be split into outer and inner folds: fitted and thresholded on
    # them in-sample, no cross-validated figures (a smoke run, never a gate to keep).
    n_splits = min(folds, len(records)) if len(records) >= 4 else 0
    splits = GroupKFold(n_splits=n_splits).split(all_books, groups=all_books) if n_splits else ()
    for k, (tr_books, te_books) in enumerate(splits):
        c_value, threshold, _inner = _choose(
            records, x, y, groups, cands, tr_books, hand, grid_c=grid_c, inner_folds=min(inner_folds, len(tr_books))
        )
        train = np.isin(groups, tr_books)
        model = _fit(x[train], y[train], c_value)
        scores = np.full(len(y), -np.inf)
        test = np.isin(groups, te_books)
        scores[test] = model(x[test])
        oof |= scores >= threshold
        out_folds.append(
            {
                "fold": k,
                "books": len(te_books),
                "C": c_value,
                "threshold": threshold,
                "hand": _counts(records, te_books, cands, groups, hand),
                "gate": _counts(records, te_books, cands, groups, scores >= threshold),
            }
        )
    families: dict[str, list[int]] = {}
    for g, rec in enumerate(records):
        book, ranges, _seed = rec["book"].split(":")
        family = "held-out (seen)" if ranges == "heldout" else f"{book} {ranges}" if book == "generator" else book
        families.setdefault(family, []).append(g)
    by_family = {
        family: {
            "books": len(books),
            "hand": _counts(records, books, cands, groups, hand),
            "gate": _counts(records, books, cands, groups, oof),
        }
        for family, books in families.items()
    }
    # where the gate and the hand rules disagree out of fold: (hand test that stopped it, label) -> n
    changes: dict[str, int] = {}
    for i, c in enumerate(cands):
        if out_folds and oof[i] != hand[i]:
            what = f"{'added' if oof[i] else 'dropped'} {c['hand_stop'] or 'hand alert'} {c['label']}"
            changes[what] = changes.get(what, 0) + 1
    keys = ("episodes", "found", "alerts", "false", "near_miss_alerts")
    pooled = {side: {key: sum(f[side][key] for f in out_folds) for key in keys} for side in ("hand", "gate")}
    if n_splits:
        c_value, threshold, inner = _choose(
            records, x, y, groups, cands, all_books, hand, grid_c=grid_c, inner_folds=min(folds, len(records))
        )
        model = _fit(x, y, c_value)
    else:
        c_value, inner = grid_c[len(grid_c) // 2], None
        model = _fit(x, y, c_value)
        scores = model(x)
        hand_false = _counts(records, all_books, cands, groups, hand)["false"]
        threshold = 4.0
        for t in np.arange(-4.0, 4.01, 0.25):
            if _counts(records, all_books, cands, groups, scores >= t)["false"] <= hand_false:
                threshold = float(t)
                break
    stops: dict[str, dict[str, int]] = {}
    for c in cands:
        row = stops.setdefault(str(c["hand_stop"]), {"true": 0, "near": 0, "related": 0, "background": 0})
        row[c["label"]] += 1
    gate = {
        "fitted": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "features": list(features),
        "mean": [round(float(v), 6) for v in model.mean],
        "scale": [round(float(v), 6) for v in model.scale],
        "coef": [round(float(v), 6) for v in model.coef],
        "intercept": round(model.intercept, 6),
        "threshold": threshold,
        "C": c_value,
    }
    return {
        "books": len(records),
        "candidates": len(y),
        "labels": {k: sum(c["label"] == k for c in cands) for k in ("true", "near", "related", "background")},
        "hand_stop_by_label": stops,
        "folds": out_folds,
        "pooled": pooled,
        "by_book": by_family if out_folds else {},
        "changes": dict(sorted(changes.items())),
        "full_fit_inner": inner,
        "gate": gate,
        "gate_in_force": CLOSE_GATE.get("fitted"),
    }
