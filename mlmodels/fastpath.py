"""Single-row prediction without scikit-learn's per-call overhead. Pure numpy, no I/O.

scikit-learn validates its input on every ``predict_proba`` call, which dominates the cost of a
one-row prediction (hundreds of µs). Serving predicts one feature vector at a time, so at load
the fitted estimator is "compiled" into plain numpy arrays for the shapes we train:

- ``[StandardScaler] > MLPClassifier`` (binary): the forward pass;
- ``[StandardScaler] > LogisticRegression`` (binary): a dot product;
- ``GradientBoostingClassifier`` (binary log-loss): every tree padded to a complete tree, all
  splits compared at once; trees of depth <= 3 then read their leaf from a table indexed by the
  packed split outcomes (the row compared with float32 bounds, no cast), deeper ones are walked
  level by level with index arithmetic.

A compiled function is only used after it reproduced ``predict_proba`` on probe rows to 1e-9;
anything else (another estimator, a mismatch) returns None and serving calls scikit-learn.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

_add_reduce = np.add.reduce  # what ndarray.sum() calls for a 1-d array: the same pairwise sum
RowPredictor = Callable[[np.ndarray], float]  # 1-d feature row -> P(up)


def _expit(z: float) -> float:
    # numpy's exp (not math.exp: they may differ in the last bit), the rest on Python floats:
    # the same IEEE additions and division as on numpy scalars, without their per-operation cost
    return 1.0 / (1.0 + float(np.exp(-z)))


def _scaler(step) -> Callable[[np.ndarray], np.ndarray] | None:
    if type(step).__name__ != "StandardScaler":
        return None
    mean = step.mean_ if step.with_mean else 0.0
    scale = step.scale_ if step.with_std and step.scale_ is not None else 1.0
    return lambda x: (x - mean) / scale


_ACTIVATIONS = {
    "relu": lambda a: np.maximum(a, 0.0),
    "tanh": np.tanh,
    "logistic": lambda a: 1.0 / (1.0 + np.exp(-a)),
    "identity": lambda a: a,
}


def _mlp(model) -> RowPredictor | None:
    if model.n_outputs_ != 1 or model.out_activation_ != "logistic" or model.activation not in _ACTIVATIONS:
        return None
    act = _ACTIVATIONS[model.activation]
    layers = list(zip(model.coefs_, model.intercepts_, strict=True))
    hidden, (w_out, b_out) = layers[:-1], layers[-1]
    b_last = float(b_out[0])  # one output unit: its bias added as a float (the same addition)
    maximum = np.maximum

    if model.activation == "relu":

        def predict(x: np.ndarray) -> float:
            # in place on each layer's fresh product: the same additions and maxima, fewer arrays
            a = x
            for w, b in hidden:
                a = a @ w
                a += b
                maximum(a, 0.0, out=a)
            return _expit(float((a @ w_out)[0]) + b_last)

        return predict

    def predict(x: np.ndarray) -> float:
        a = x
        for w, b in hidden:
            a = act(a @ w + b)
        return _expit(float((a @ w_out)[0]) + b_last)

    return predict


def _logreg(model) -> RowPredictor | None:
    if model.coef_.shape[0] != 1:
        return None
    w, b = model.coef_[0], float(model.intercept_[0])
    return lambda x: _expit(float(x @ w) + b)


MAX_COMPLETE_DEPTH = 8  # trees up to this depth are padded to complete trees (2^depth leaves each)


def _gbm(model, probe: np.ndarray) -> RowPredictor | None:
    if model.estimators_.shape[1] != 1:  # binary classification has one tree per stage
        return None
    trees = [t.tree_ for t in model.estimators_[:, 0]]
    depth = max(t.max_depth for t in trees)
    if depth > MAX_COMPLETE_DEPTH:
        return None
    rate = model.learning_rate
    raw_sum = _complete_trees(trees, depth, rate)
    # The initial raw prediction (the class prior's log-odds) is constant: read it off one row.
    init = float(model.decision_function(probe[:1])[0]) - raw_sum(probe[0])
    return lambda x: _expit(init + raw_sum(x))


def _complete_trees(trees, depth: int, rate: float) -> Callable[[np.ndarray], float]:
    """Every tree padded to a complete binary tree of ``depth`` levels in heap order (node ``i``'s
    children are ``2i+1`` and ``2i+2``): a leaf above the last level becomes a subtree whose splits
    always go left (threshold +inf) and whose leaves all hold its value. Then one gather and one
    comparison give every split of every tree, and each level is one step of index arithmetic; the
    leaves' values are summed in tree order, as the node-by-node walk does (the same float)."""
    n, internal = len(trees), 2**depth - 1
    feature = np.zeros((n, max(internal, 1)), dtype=np.intp)
    threshold = np.full((n, max(internal, 1)), np.inf)
    value = np.zeros((n, 2**depth))
    for i, t in enumerate(trees):
        stack = [(0, 0, 0)]  # (node in the fitted tree, position in the complete tree, level)
        while stack:
            node, pos, level = stack.pop()
            left, right = t.children_left[node], t.children_right[node]
            if left == -1:  # a leaf: every complete-tree leaf below ``pos`` holds its value
                span = 2 ** (depth - level)
                first = (pos - (2**level - 1)) * span
                value[i, first : first + span] = t.value[node, 0, 0]
                continue
            feature[i, pos] = t.feature[node]
            threshold[i, pos] = t.threshold[node]
            stack.append((left, 2 * pos + 1, level + 1))
            stack.append((right, 2 * pos + 2, level + 1))
    if 1 <= depth <= MAX_CODED_DEPTH:
        return _coded_trees(feature, threshold, value, depth, rate)
    # flat (1-d) indexing: ``take`` on a raveled array is several times cheaper than a 2-d gather
    split_base = np.arange(n, dtype=np.intp) * max(internal, 1)
    leaf_base = np.arange(n, dtype=np.intp) * 2**depth - internal  # minus the heap index of the first leaf
    values = value.ravel()

    def raw_sum(x: np.ndarray) -> float:
        x32 = x.astype(np.float32).astype(np.float64)  # trees compare float32 inputs, as sklearn does
        goes_right = (~(x32[feature] <= threshold)).ravel()  # every split of every tree (NaN goes right, as before)
        if not depth:  # stumps without a split: the root is the leaf
            return rate * float(_add_reduce(values.take(leaf_base)))
        node = 1 + goes_right.take(split_base)  # level 1: every tree from its root (node 0)
        for _ in range(depth - 1):
            node = 2 * node + 1 + goes_right.take(split_base + node)
        return rate * float(_add_reduce(values.take(leaf_base + node)))  # ndarray.sum() without its Python wrapper

    return raw_sum


MAX_CODED_DEPTH = 3  # a complete tree of this depth has 7 splits: its outcomes fit in one byte


def _coded_trees(feature: np.ndarray, threshold: np.ndarray, value: np.ndarray, depth: int, rate: float):
    """Complete trees of at most ``MAX_CODED_DEPTH`` levels, without the level-by-level walk: the
    outcomes of a tree's splits (bit ``k`` set when split ``k``, in heap order, goes left) make
    a code (one small matrix product), and a table built here holds, per tree and code, the
    value of the leaf the walk would reach. One comparison of every split, the codes, one
    gather: the same leaves in tree order, summed as before (the same float), in about half the
    numpy calls of the walk (each ~0.5 us on a row of this size, whatever the work)."""
    n, internal = feature.shape[0], 2**depth - 1
    codes = 2**internal
    table = np.empty((n, codes))
    for code in range(codes):
        pos = 0
        for _ in range(depth):
            pos = 2 * pos + 1 if code >> pos & 1 else 2 * pos + 2
        table[:, code] = value[:, pos - internal]
    table = table.ravel()
    table_base = np.arange(n, dtype=np.intp) * codes
    bit = np.array([1 << k for k in range(internal)], dtype=np.uint8)  # codes < 2**7: no overflow
    feature = np.ascontiguousarray(feature[:, :internal])
    threshold = np.ascontiguousarray(threshold[:, :internal])
    bound = _float32_bounds(threshold)
    f32, f64 = np.float32, np.float64

    if bound is not None:

        def raw_sum(x: np.ndarray) -> float:
            # x <= bound is float32(x) <= threshold, as sklearn compares (NaN goes right, as before)
            goes_left = x.take(feature) <= bound
            leaves = table.take(table_base + goes_left.view(np.uint8) @ bit)
            return rate * float(_add_reduce(leaves))  # ndarray.sum() without its Python wrapper

        return raw_sum

    def raw_sum(x: np.ndarray) -> float:
        # trees compare float32 inputs, as sklearn does; NaN goes right, as before
        goes_left = x.astype(f32).astype(f64).take(feature) <= threshold
        leaves = table.take(table_base + goes_left.view(np.uint8) @ bit)
        return rate * float(_add_reduce(leaves))

    return raw_sum


def _float32_bounds(threshold: np.ndarray) -> np.ndarray | None:
    """Per split, the largest float64 ``x`` whose float32 rounding is <= the threshold, so that
    ``x <= bound`` decides exactly what ``float32(x) <= threshold`` decides (rounding to nearest
    is monotone: every smaller x rounds no higher), and the row needs no cast to float32 and
    back. The bound is the midpoint between the float32 at or below the threshold and the next
    one (or the float64 just below it when a tie rounds up); each is checked with numpy's own
    cast, at the bound and at the next float64 above it. None (the caller casts) if one fails
    or a threshold is not a finite number or +inf (the padding)."""
    bounds = np.empty(threshold.size)
    with np.errstate(over="ignore"):
        for i, t in enumerate(threshold.ravel().tolist()):
            if t == math.inf:
                bounds[i] = math.inf
                continue
            if not math.isfinite(t):
                return None
            below = np.float32(t)
            if float(below) > t:
                below = np.nextafter(below, np.float32(-np.inf))
            above = float(np.nextafter(below, np.float32(np.inf)))
            mid = (
                (float(below) + above) / 2 if math.isfinite(above) else float(below) + 2.0**103
            )  # half an ulp of float32's max
            bound = mid if float(np.float32(mid)) <= t else math.nextafter(mid, -math.inf)
            if not (float(np.float32(bound)) <= t < float(np.float32(math.nextafter(bound, math.inf)))):
                return None
            bounds[i] = bound
    return bounds.reshape(threshold.shape)


def compile_row_predictor(estimator, probe: np.ndarray) -> RowPredictor | None:
    """A numpy single-row P(up) for ``estimator``, verified on ``probe`` rows, or None."""
    steps = [s for _, s in estimator.steps] if hasattr(estimator, "steps") else [estimator]
    transforms = []
    for step in steps[:-1]:
        t = _scaler(step)
        if t is None:
            return None
        transforms.append(t)
    final = steps[-1]
    kind = type(final).__name__
    if kind == "MLPClassifier":
        core = _mlp(final)
    elif kind == "LogisticRegression":
        core = _logreg(final)
    elif kind == "GradientBoostingClassifier":
        inner = probe
        for t in transforms:
            inner = t(inner)
        core = _gbm(final, inner)
    else:
        return None
    if core is None or list(getattr(final, "classes_", [0, 1])) != [0, 1]:
        return None

    if not transforms:
        predict = core
    elif len(transforms) == 1:
        transform = transforms[0]

        def predict(x: np.ndarray) -> float:
            return core(transform(x))

    else:

        def predict(x: np.ndarray) -> float:
            for t in transforms:
                x = t(x)
            return core(x)

    expected = estimator.predict_proba(probe)[:, 1]
    got = np.array([predict(row) for row in probe])
    if not np.allclose(got, expected, rtol=0, atol=1e-9):
        return None
    return predict
