"""The momentum ignition gate's candidates and fit (pure, no Django; scikit-learn for the fit only).

The detector's loose candidate stage (``MomentumIgnitionParams.gate_candidates``) records every
series it assesses with its features and the hand test that stopped it. ``candidates_extract``
runs it on one labelled book and labels each candidate the way ``evaluation.score`` matches an
alert to episodes (by the orders it names): ``true`` (a momentum ignition episode), ``near`` (a
near-miss and nothing leniently true), ``related`` (leniently true: an episode of a related type)
or ``background``. Beside the candidates it records today's hand rules on the same book (the
detector with its defaults, scored the same way), so the gate and the hand rules are compared on
the same books and the same folds.

``gate_fit`` chooses the regularisation and the threshold by grouped cross-validation (whole books
left out), reports the gate against the hand rules per book kind on those folds, and refits on
every book: the coefficients ``compliance.surveillance.params.MOMENTUM_GATE`` takes. With
``market="otc"`` (``--gate-market otc``) the objective counts the FX books' episodes and a third
way is fitted, the move gate (a model of the candidates the hand rules' move tests stopped, its
alerts beside the hand rules'): ``MOMENTUM_GATE_OTC`` takes it.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import orjson

from compliance.scenarios.evaluation import score
from compliance.surveillance.batch import surveil_lines
from compliance.surveillance.engine import SurveillanceEngine
from compliance.surveillance.episodes import QUIET_S

KIND = "momentum_ignition"
# The features the gate reads (``MomentumIgnitionDetector._gate_features`` computes more: the
# 15-feature set without ``hand_passed`` did no better on the order book in cross-validation and
# lost more on the FX books).
GATE_FEATURES = (
    "orders",
    "max_gap_s",
    "walked_share",
    "print_spreads",
    "move_sigma",
    "own_share",
    "newcomer",
    "from_flat",
    "prior_volume",
    "hand_passed",
)
# The FX books' gate (``MOMENTUM_GATE_OTC``, 2026-12-07 00:00 round, wip/mom51) reads only the
# candidates the hand rules' move tests stopped (``hand_stop`` "move": every one fails the hand
# tests, so ``hand_passed`` is left out) over every other figure the detector measures.
MOVE_STOPS = ("move",)
GATE_FEATURES_OTC = (
    "orders",
    "max_gap_s",
    "walked_share",
    "move_spreads",
    "print_spreads",
    "move_sigma",
    "own_share",
    "turn_log_s",
    "turned",
    "capture",
    "loss_closed",
    "newcomer",
    "from_flat",
    "prior_two_way",
    "prior_volume",
    "carried_on",
)
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(2, 19))
# The fit's objective on the out-of-fold predictions of the order books (``lob``; the gate is
# meant for the order book, where its depth features read: on the FX books the hand rules stay):
# episodes found minus FALSE_WEIGHT strictly false alerts (2: an alert is worth raising when it
# is at least twice as likely true as false, precision about 0.67 at the margin).
FALSE_WEIGHT = 2.0
OBJECTIVE_BOOK = "lob"
# The objective's books by the market the gate is fitted for (``gate_fit(market=...)``): the
# order book's gate (``MOMENTUM_GATE``) on the order books' episodes; the FX books' gate
# (``MOMENTUM_GATE_OTC``, 2026-12-07 00:00 round, wip/mom51) on the dealer books' episodes (the
# generator's development, tuning and seen held-out books and the seen independent books).
OBJECTIVE_BOOKS = {"order_book": (OBJECTIVE_BOOK,), "otc": ("generator", "independent")}


def _lines(rows_or_lines) -> list[bytes]:
    return [r if isinstance(r, bytes) else orjson.dumps(r) for r in rows_or_lines]


def candidates_extract(rows_or_lines, episodes: list, *, book: str, seed: int, ranges: str | None = None) -> list[dict]:
    """One book's candidates (one dict each, labelled) and, last, the book's summary: its
    momentum episodes and today's hand rules on it (found episode indices, alerts, strictly
    false alerts, alerts on near-misses)."""
    lines = _lines(rows_or_lines)
    engine = SurveillanceEngine({KIND: {"gate_candidates": True}}, only={KIND})
    surveil_lines(lines, engine=engine, emit=lambda _b: None)
    candidates = engine.units[KIND].candidates
    by_order: dict[str, list[int]] = {}
    for i, ep in enumerate(episodes):
        for oid in ep.order_ids:
            by_order.setdefault(oid, []).append(i)
    group = f"{book}-{ranges}-{seed}" if book == "generator" else f"{book}-{seed}"
    out = []
    for c in candidates:
        found, near, lenient = set(), False, False
        for oid in c["order_ids"]:
            for i in by_order.get(oid, ()):
                ep = episodes[i]
                if ep.near_miss:
                    near = True
                elif ep.kind == KIND:
                    found.add(i)
                elif KIND in ep.accepted:
                    lenient = True
        label = "true" if found else "related" if lenient else "near" if near else "background"
        out.append(
            {
                "group": group,
                "book": book,
                "ranges": ranges,
                "seed": seed,
                "account": c["account"],
                "symbol": c["symbol"],
                "t": c["t"],
                "hand_stop": c["hand_stop"],
                "label": label,
                "episodes": sorted(found),
                "features": c["features"],
            }
        )
    # Today's hand rules on the same book: the detector with its defaults.
    alerts: list[dict] = []
    surveil_lines(lines, engine=SurveillanceEngine(only={KIND}), emit=lambda b: alerts.append(orjson.loads(b)))
    hand_found = set()
    hand_list = []
    for a in alerts:
        eps = set()
        for oid in a["order_ids"]:
            for i in by_order.get(oid, ()):
                if not episodes[i].near_miss and episodes[i].kind == KIND:
                    eps.add(i)
        hand_found |= eps
        # (account, symbol, start, end in event seconds, the episodes it names): to merge the
        # gate's detections into it as the engine would when both run (``gate_beside_hand``)
        hand_list.append([a["account"], a["symbol"], _epoch(a["start"]), _epoch(a["end"]), sorted(eps)])
    scores, _ = score(alerts, episodes)
    row = next(s for s in scores if s.alert_type == KIND)
    out.append(
        {
            "group": group,
            "book": book,
            "ranges": ranges,
            "seed": seed,
            "summary": {
                "episodes": [i for i, ep in enumerate(episodes) if ep.kind == KIND and not ep.near_miss],
                "hand_found": sorted(hand_found),
                "hand_alerts": row.alerts,
                "hand_false": row.alerts - row.true_strict,
                "hand_near_alerts": row.near_miss_alerts,
                "hand_alert_list": hand_list,
            },
        }
    )
    return out


def _epoch(iso_ts: str) -> float:
    return datetime.fromisoformat(iso_ts.replace("Z", "+00:00")).timestamp()


def candidates_load(path: str) -> tuple[list[dict], dict[str, dict]]:
    """(candidates, per-book summaries) from a JSONL file written by the extraction."""
    cands, books = [], {}
    with open(path, "rb") as fh:
        for line in fh:
            rec = orjson.loads(line)
            if "summary" in rec:
                books[rec["group"]] = rec
            else:
                cands.append(rec)
    return cands, books


def _alerts(cands: list[dict], passed: Iterable[bool], hand: list | None = None) -> list[tuple[bool, set, bool]]:
    """The alerts the passing candidates make once merged as the engine merges detections (one
    per account and symbol while they come within the type's quiet period): (true, episodes,
    leniently true: an episode of the type or of a related type; a hand alert's is its strict).
    With ``hand`` (the book's hand-rule alerts, ``hand_alert_list``) the gate runs beside the hand
    rules: a detection within the quiet period of a hand alert of its account and symbol joins it."""
    quiet = QUIET_S[KIND]
    chosen = sorted((c for c, ok in zip(cands, passed, strict=True) if ok), key=lambda c: c["t"])
    open_: dict[tuple, list] = {}
    alerts: list[list] = []
    by_key: dict[tuple, list] = {}
    for account, symbol, start, end, eps in hand or ():
        a = [end, bool(eps), set(eps), start, bool(eps)]
        alerts.append(a)
        by_key.setdefault((account, symbol), []).append(a)
    for c in chosen:
        joined = next(
            (a for a in by_key.get((c["account"], c["symbol"]), ()) if a[3] - quiet <= c["t"] <= a[0] + quiet),
            None,
        )
        if joined is not None:
            joined[1] = joined[1] or c["label"] == "true"
            joined[2].update(c["episodes"])
            joined[4] = joined[4] or c["label"] in ("true", "related")
            continue
        key = (c["group"], c["account"], c["symbol"])
        cur = open_.get(key)
        if cur is None or c["t"] - cur[0] > quiet:
            cur = [c["t"], False, set(), None, False]
            open_[key] = cur
            alerts.append(cur)
        cur[0] = c["t"]
        cur[1] = cur[1] or c["label"] == "true"
        cur[2].update(c["episodes"])
        cur[4] = cur[4] or c["label"] in ("true", "related")
    return [(a[1], a[2], a[4]) for a in alerts]


def book_figures(
    cands: list[dict], passed: list[bool], books: dict[str, dict], *, beside_hand: bool = False
) -> dict[str, dict]:
    """Per book: the gate's (found, alerts, strictly false, leniently false) from the passing
    candidates (with ``beside_hand``, of the gate and the hand rules together)."""
    per: dict[str, tuple[list, list]] = {g: ([], []) for g in books}
    for c, ok in zip(cands, passed, strict=True):
        per[c["group"]][0].append(c)
        per[c["group"]][1].append(ok)
    out = {}
    for g, (cs, ps) in per.items():
        alerts = _alerts(cs, ps, books[g]["summary"]["hand_alert_list"] if beside_hand else None)
        found = set().union(*(e for _t, e, _l in alerts)) if alerts else set()
        out[g] = {
            "found": len(found),
            "alerts": len(alerts),
            "false": sum(not t for t, _e, _l in alerts),
            "lenient_false": sum(not lenient for _t, _e, lenient in alerts),
        }
    return out


def _kind(group_rec: dict) -> str:
    book, seed = group_rec["book"], group_rec["seed"]
    if book == "lob":
        return "lob dev 1-9" if seed < 100 else "lob seen"
    if book == "generator":
        ranges = group_rec.get("ranges")
        if ranges is None:  # an older file: the development, tuning and held-out seeds' numbers
            ranges = "dev" if seed < 200 else "tune" if seed < 400 else "heldout"
        return {"dev": "development", "tune": "tuning"}.get(ranges, "held-out seen")
    return "independent seen"


def _design(cands: list[dict], features: tuple[str, ...]):
    import numpy as np

    def value(c, f):
        if f == "hand_passed" and f not in c["features"]:  # a file extracted before the feature
            return float(c["hand_stop"] is None)
        return c["features"][f]

    X = np.array([[value(c, f) for f in features] for c in cands], dtype=float)
    y = np.array([c["label"] == "true" for c in cands], dtype=int)
    return X, y


def _by_kind(books: dict[str, dict], gate: dict[str, dict]) -> dict[str, dict]:
    table: dict[str, dict] = {}
    for g, rec in books.items():
        s = rec["summary"]
        row = table.setdefault(
            _kind(rec),
            dict.fromkeys(
                (
                    "books",
                    "episodes",
                    "hand_found",
                    "hand_alerts",
                    "hand_false",
                    "gate_found",
                    "gate_alerts",
                    "gate_false",
                ),
                0,
            ),
        )
        row["books"] += 1
        row["episodes"] += len(s["episodes"])
        row["hand_found"] += len(s["hand_found"])
        row["hand_alerts"] += s["hand_alerts"]
        row["hand_false"] += s["hand_false"]
        row["gate_found"] += gate[g]["found"]
        row["gate_alerts"] += gate[g]["alerts"]
        row["gate_false"] += gate[g]["false"]
    return table


def _oof(Z, y, folds, c):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    oof = np.zeros(len(y))
    for train, test in folds:
        if y[train].min() == y[train].max():
            oof[test] = y[train].mean()
            continue
        oof[test] = LogisticRegression(C=c, max_iter=3000).fit(Z[train], y[train]).predict_proba(Z[test])[:, 1]
    return oof


def _standardised(cands, features):
    X, y = _design(cands, features)
    mean, scale = X.mean(axis=0), X.std(axis=0)
    scale[scale == 0] = 1.0
    return (X - mean) / scale, y, mean, scale


def gate_fit(
    path: str, *, features: tuple[str, ...] | None = None, n_splits: int = 5, market: str = "order_book"
) -> dict:
    """Grouped cross-validation (``GroupKFold``: whole books left out) of a standardised logistic
    regression. For each way the gate may run, the inverse regularisation ``C`` and the threshold
    that maximise episodes found minus ``FALSE_WEIGHT`` strictly false alerts over the out-of-fold
    scores of the ``market``'s books (``OBJECTIVE_BOOKS``), and the gate against the hand rules
    per book kind and per book (``cv_by_book``) on those folds:

    - ``alone``: every candidate scored over ``features`` (``GATE_FEATURES``); the gate replaces
      the hand tests (``gate``; ``MOMENTUM_GATE``, the order book's).
    - ``beside_hand``: the same scores, the gate's alerts added to the hand rules' (merged as the
      engine merges; offline only).
    - ``move`` (``market`` "otc"): only the candidates the hand rules' move tests stopped
      (``MOVE_STOPS``), scored over ``GATE_FEATURES_OTC`` by a model fitted on them alone, its
      alerts added to the hand rules' (``move_gate``; ``MOMENTUM_GATE_OTC``). Its per-threshold
      out-of-fold figures per book kind are printed (``move_grid``): the objective prices a false
      alert at two episodes, the sets' recall floor may price it lower.

    The model printed is refitted on every book (``move``: every move-stopped candidate) with the
    ``C`` chosen for ``alone`` (``order_book``) or ``move`` (``otc``)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold

    if market not in OBJECTIVE_BOOKS:
        raise ValueError(f"unknown market {market!r}; known: {', '.join(OBJECTIVE_BOOKS)}")
    objective_books = OBJECTIVE_BOOKS[market]
    cands, books = candidates_load(path)
    if not cands or not books:
        raise ValueError(f"{path}: no candidates")
    features = features or GATE_FEATURES
    Z, y, mean, scale = _standardised(cands, features)
    if y.min() == y.max():
        raise ValueError(f"{path}: the candidates need both true episodes and others to fit")
    groups = np.array([c["group"] for c in cands])
    n_groups = len(set(groups))
    if n_groups < 2:
        raise ValueError(f"{path}: grouped cross-validation needs two books or more")
    folds = list(GroupKFold(n_splits=min(n_splits, n_groups)).split(Z, y, groups))

    def objective_of(figs):
        on = [f for g, f in figs.items() if books[g]["book"] in objective_books] or list(figs.values())
        found = sum(f["found"] for f in on)
        false = sum(f["false"] for f in on)
        return found, false, found - FALSE_WEIGHT * false

    modes = {"alone": False, "beside_hand": True}
    best: dict[str, tuple] = {}
    grid: dict[str, list] = {m: [] for m in (*modes, "move")}

    def consider(mode, c, thr, figs):
        found, false, objective = objective_of(figs)
        grid[mode].append({"C": c, "threshold": thr, "found": found, "false": false, "objective": objective})
        if mode not in best or objective > best[mode][0]:
            best[mode] = (objective, c, thr, figs)

    for c in C_GRID:
        oof = _oof(Z, y, folds, c)
        for mode, beside in modes.items():
            for thr in THRESHOLD_GRID:
                consider(mode, c, thr, book_figures(cands, list(oof >= thr), books, beside_hand=beside))
    move_grid: list[dict] = []
    move_model = None
    if market == "otc":
        idx = [i for i, c in enumerate(cands) if c["hand_stop"] in MOVE_STOPS]
        sub = [cands[i] for i in idx]
        Zm, ym, mean_m, scale_m = _standardised(sub, GATE_FEATURES_OTC)
        if ym.min() == ym.max():
            raise ValueError(f"{path}: the move-stopped candidates need both true episodes and others to fit")
        gm = np.array([c["group"] for c in sub])
        folds_m = list(GroupKFold(n_splits=min(n_splits, len(set(gm)))).split(Zm, ym, gm))
        for c in C_GRID:
            oof_m = _oof(Zm, ym, folds_m, c)
            full = np.zeros(len(cands))
            full[idx] = oof_m
            in_sub = np.zeros(len(cands), dtype=bool)
            in_sub[idx] = True
            for thr in THRESHOLD_GRID:
                figs = book_figures(cands, list(in_sub & (full >= thr)), books, beside_hand=True)
                consider("move", c, thr, figs)
                move_grid.append({"C": c, "threshold": thr, "by_book_kind": _by_kind(books, figs)})
        final_m = LogisticRegression(C=best["move"][1], max_iter=3000).fit(Zm, ym)
        move_model = {
            "features": {
                f: [round(float(mean_m[i]), 6), round(float(scale_m[i]), 6), round(float(final_m.coef_[0][i]), 6)]
                for i, f in enumerate(GATE_FEATURES_OTC)
            },
            "intercept": round(float(final_m.intercept_[0]), 6),
            "threshold": best["move"][2],
            "stops": list(MOVE_STOPS),
            "candidates": len(sub),
            "true": int(ym.sum()),
        }
    on = [b for b in books.values() if b["book"] in objective_books] or list(books.values())
    hand = {
        "found": sum(len(b["summary"]["hand_found"]) for b in on),
        "false": sum(b["summary"]["hand_false"] for b in on),
    }
    hand["objective"] = hand["found"] - FALSE_WEIGHT * hand["false"]
    c_best = best["alone"][1]
    final = LogisticRegression(C=c_best, max_iter=2000).fit(Z, y)
    coefs = final.coef_[0]
    model = {
        "features": {
            f: [round(float(mean[i]), 6), round(float(scale[i]), 6), round(float(coefs[i]), 6)]
            for i, f in enumerate(features)
        },
        "intercept": round(float(final.intercept_[0]), 6),
        "threshold": best["alone"][2],
    }
    return {
        "candidates": len(cands),
        "books": len(books),
        "labels": {lab: sum(c["label"] == lab for c in cands) for lab in ("true", "near", "related", "background")},
        "folds": len(folds),
        "false_weight": FALSE_WEIGHT,
        "market": market,
        "objective_on": ",".join(objective_books)
        if any(b["book"] in objective_books for b in books.values())
        else "every book",
        "hand_rules": hand,
        "modes": {
            m: {
                "C": best[m][1],
                "threshold": best[m][2],
                "objective": best[m][0],
                "cv_by_book_kind": _by_kind(books, best[m][3]),
                "best_per_C": [max((r for r in grid[m] if r["C"] == c), key=lambda r: r["objective"]) for c in C_GRID],
                "cv_by_book": best[m][3],
            }
            for m in best
        },
        "chosen_mode": "move" if move_model else "alone",
        "model": move_model or model,
        **({"move_grid": move_grid, "alone_model": model} if move_model else {}),
    }
