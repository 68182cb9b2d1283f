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
