"""The accuracy metrics of the vendor's ``mvNCCheck``, with its thresholds.

``a`` is the device (or emulator) result and ``b`` the expected fp32 result;
every error is relative to ``ref = max|b|``, the largest expected magnitude
(``ncsdk-reference.md`` §4, from the toolkit's ``Metrics.py``/``Validate.py``):

=========================== =================================== =========
printed name                formula                              pass if
=========================== =================================== =========
Min Pixel Accuracy          ``max|a−b| / ref · 100``             ≤ 2 %
Average Pixel Accuracy      ``mean|a−b| / ref · 100``            ≤ 1 %
Percentage of wrong values  ``count(|a−b| > 2 % · ref) / N · 100`` ≤ 0 %
Pixel-wise L2 error         ``sqrt(Σ(a−b)² / N) / ref · 100``     ≤ 1 %
Global Sum Difference       ``Σ|a−b|``                           (none)
=========================== =================================== =========

A NaN anywhere in the result fails.  When ``ref`` is 0 an error is 0 if the
result is exactly 0 too, else infinite (as the vendor tool's division gives).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: (printed name, threshold in percent) in the vendor tool's order.
THRESHOLDS = (
    ("Min Pixel Accuracy", 2.0),
    ("Average Pixel Accuracy", 1.0),
    ("Percentage of wrong values", 0.0),
    ("Pixel-wise L2 error", 1.0),
)
#: |a−b| above this fraction of ref counts as a wrong value.
WRONG_VALUE_FRACTION = 0.02


@dataclass(frozen=True)
class Metric:
    name: str
    value: float  # percent (or an absolute sum for Global Sum Difference)
    threshold: float | None

    @property
    def passed(self) -> bool:
        if self.threshold is None:
            return True
        return not math.isnan(self.value) and self.value <= self.threshold


@dataclass(frozen=True)
class Comparison:
    metrics: tuple[Metric, ...]
    reference_magnitude: float
    count: int
    has_nan: bool

    @property
    def passed(self) -> bool:
        return not self.has_nan and all(m.passed for m in self.metrics)

    def failed(self) -> list[Metric]:
        return [m for m in self.metrics if not m.passed]

    def as_dict(self) -> dict:
        return {
            "passed": self.passed,
            "reference_magnitude": self.reference_magnitude,
            "count": self.count,
            "has_nan": self.has_nan,
            "metrics": [{"name": m.name, "value": m.value, "threshold": m.threshold,
                         "passed": m.passed} for m in self.metrics],
        }


def _relative(error: float, ref: float) -> float:
    if ref == 0:
        return 0.0 if error == 0 else math.inf
    return error / ref * 100.0


def compare(result: np.ndarray, expected: np.ndarray) -> Comparison:
    """Compare a result with the expected output, as mvNCCheck does."""
    a = np.asarray(result, dtype=np.float64).ravel()
    b = np.asarray(expected, dtype=np.float64).ravel()
    if a.shape != b.shape:
        raise ValueError(f"cannot compare {a.size} values with {b.size} expected values")
    n = b.size
    has_nan = bool(np.isnan(a).any())
    ref = float(np.max(np.abs(b))) if n else 0.0
    diff = np.abs(a - b)
    if n:
        max_err = float(np.max(diff))
        mean_err = float(np.mean(diff))
        l2 = float(np.sqrt(np.sum(diff * diff) / n))
        wrong = float(np.count_nonzero(diff > WRONG_VALUE_FRACTION * ref)) / n * 100.0
        total = float(np.sum(diff))
    else:
        max_err = mean_err = l2 = wrong = total = 0.0
    if has_nan:
        max_err = math.nan
    values = (_relative(max_err, ref) if not has_nan else math.nan,
              _relative(mean_err, ref), wrong, _relative(l2, ref))
    metrics = tuple(Metric(name, value, threshold)
                    for (name, threshold), value in zip(THRESHOLDS, values))
    metrics += (Metric("Global Sum Difference", total, None),)
    return Comparison(metrics, ref, n, has_nan)


def top_k(values: np.ndarray, k: int = 5) -> list[tuple[int, float]]:
    """The k largest values with their flat indices, largest first (ties by index)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    k = min(k, flat.size)
    if k == 0:
        return []
    order = np.lexsort((np.arange(flat.size), -np.nan_to_num(flat, nan=-np.inf)))[:k]
    return [(int(i), float(flat[i])) for i in order]


# ------------------------------------------------------------------------- detections

#: The detection check used for SSD networks, whose output is a list of boxes:
#: (printed name, threshold in percent), after the vendor tool's SSD metric.
DETECTION_THRESHOLDS = (
    ("Detection count difference", 2.0),
    ("Unmatched detections", 2.0),
    ("Out-of-order detections", 10.0),
    ("Multiple matches", 10.0),
)
#: Largest absolute difference of score and of each box coordinate for a result
#: detection to match an expected one (NCSDK 1.x; 2.05 loosened it to 0.10).
DETECTION_TOLERANCE = 0.01


def detection_rows(values: np.ndarray, device: bool) -> np.ndarray:
    """Detections as ``(N, 7)`` rows ``[image, label, score, xmin, ymin, xmax, ymax]``.

    ``device``: the layout the device returns (row 0 holds the count in its
    first value, then one row per detection); else Caffe's ``(1, 1, N, 7)``,
    where a row with label -1 means "no detection"."""
    rows = np.asarray(values, np.float64).reshape(-1, 7)
    if device:
        count = rows[0, 0] if rows.size else 0.0
        n = int(count) if math.isfinite(count) else 0
        return rows[1:1 + max(0, min(n, len(rows) - 1))]
    return rows[rows[:, 1] != -1]


def match_detections(result: np.ndarray, expected: np.ndarray,
                     tolerance: float = DETECTION_TOLERANCE) -> tuple[list[tuple[int, int]], int]:
    """Pair expected detections (rows of ``expected``) with result detections,
    one to one: each expected detection in turn takes the closest result
    detection still free that has the same image and label and whose score and
    four coordinates are each within ``tolerance``.  Returns the pairs
    ``(expected row, result row)`` in expected order, and how many expected
    detections had more than one such result detection."""
    a, b = np.asarray(result, np.float64), np.asarray(expected, np.float64)
    taken = np.zeros(len(a), bool)
    pairs, multiple = [], 0
    for i in range(len(b) if len(a) else 0):
        distance = np.max(np.abs(a[:, 2:] - b[i, 2:]), axis=1)
        close = (a[:, 0] == b[i, 0]) & (a[:, 1] == b[i, 1]) & (distance <= tolerance)
        multiple += int(np.count_nonzero(close) > 1)
        free = np.flatnonzero(close & ~taken)
        if free.size:
            j = int(free[np.argmin(distance[free])])
            taken[j] = True
            pairs.append((i, j))
    return pairs, multiple


def out_of_place(order: list[int]) -> list[int]:
    """Positions in ``order`` (distinct numbers) outside one longest increasing
    subsequence: the fewest entries that must move to sort it (one for a swap
    of two neighbours)."""
    import bisect

    tails: list[int] = []  # tails[k]: position ending the best increasing run of length k+1
    ends: list[int] = []  # order[tails[k]], kept sorted for the binary search
    parent = [-1] * len(order)
    for pos, value in enumerate(order):
        k = bisect.bisect_left(ends, value)
        parent[pos] = tails[k - 1] if k else -1
        if k == len(tails):
            tails.append(pos)
            ends.append(value)
        else:
            tails[k], ends[k] = pos, value
    keep, pos = set(), tails[-1] if tails else -1
    while pos >= 0:
        keep.add(pos)
        pos = parent[pos]
    return [p for p in range(len(order)) if p not in keep]


def result_order(result: np.ndarray, pairs: list[tuple[int, int]]) -> list[int]:
    """The matched expected detections (their rows) in the order the result
    lists them; result detections of the same image and label with exactly
    the same score have no order of their own (neither Caffe's sort nor fp16
    scores define one), so they are taken in the expected order."""
    a = np.asarray(result, np.float64)
    group = list(range(len(a)))  # the first row of each run of equal (image, label, score)
    for j in range(1, len(a)):
        if np.array_equal(a[j, :3], a[j - 1, :3]):
            group[j] = group[j - 1]
    return [i for _, i in sorted((group[j], i) for i, j in pairs)]


def compare_detections(result: np.ndarray, expected: np.ndarray,
                       tolerance: float = DETECTION_TOLERANCE) -> Comparison:
    """Compare detection rows (see :func:`detection_rows`), as percentages:

    * count difference: ``|N_result - N_expected| / N_expected``;
    * unmatched: expected detections without a result detection of the same
      image and label whose score and coordinates are each within
      ``tolerance`` (:func:`match_detections`), of ``N_expected``;
    * out of order: matched detections the result lists in another order
      than expected -- the fewest that must move to restore the expected
      order (:func:`out_of_place`; equal scores count as no order,
      :func:`result_order`), of the matched ones;
    * multiple matches: expected detections more than one result detection
      is close to, of ``N_expected``.

    A NaN in the result fails.  ``reference_magnitude`` is ``N_expected``.
    """
    a, b = np.asarray(result, np.float64), np.asarray(expected, np.float64)
    n_a, n_b = len(a), len(b)
    has_nan = bool(np.isnan(a).any())
    pairs, multiple = match_detections(a, b, tolerance)
    moved = out_of_place(result_order(a, pairs))

    def percent(count: int, of: int) -> float:
        if of == 0:
            return 0.0 if count == 0 else math.inf
        return count / of * 100.0

    values = (percent(abs(n_a - n_b), n_b), percent(n_b - len(pairs), n_b),
              percent(len(moved), len(pairs)), percent(multiple, n_b))
    metrics = tuple(Metric(name, value, threshold)
                    for (name, threshold), value in zip(DETECTION_THRESHOLDS, values))
    metrics += (Metric("Matched detections", float(len(pairs)), None),)
    return Comparison(metrics, float(n_b), n_b, has_nan)
