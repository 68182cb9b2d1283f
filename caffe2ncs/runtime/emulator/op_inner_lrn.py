"""INNER_LRN: ``y = (k + alpha * x) ** -beta``, elementwise.

The third stage of the compiler's decomposition of Caffe's ``WITHIN_CHANNEL``
LRN (square, average pool ``size x size`` with pad ``(size-1)//2``, inner LRN,
product with the input): fed with the pooled squares it gives Caffe's
``(1 + alpha/size**2 * sum of squares) ** -beta`` when ``k`` is 1 (Caffe's
within-channel LRN uses 1 whatever ``k`` says; the device is given ``k``).
``k, alpha, beta`` come from the fp16 ``[k, alpha, beta, 0]`` bias constant.
"""

from __future__ import annotations

import numpy as np

from ...lowering.ir import Op
from .op_lrn import lrn_constants
from .stage import StageSpec, elementwise

OPS = (Op.INNER_LRN,)


def inner_lrn(x: np.ndarray, k: float, alpha: float, beta: float) -> np.ndarray:
    return np.power(np.float32(k) + np.float32(alpha) * x, np.float32(-beta))


def prepare(spec: StageSpec):
    k, alpha, beta = lrn_constants(spec)
    return elementwise(spec, lambda x: inner_lrn(x, k, alpha, beta))
