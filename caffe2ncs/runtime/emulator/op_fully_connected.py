"""FULLY_CONNECTED: ``y[k] = sum over i of x[i] * w[i, k] + b[k]``.

``x`` is the input tensor flattened in memory (HWC) order -- the compiler
reorders Caffe's ``(K, C*H*W)`` weights to follow the HWC activation -- ``w``
the fp16 taps ``(N, K)`` stored contiguously (descriptor dims ``(1, N, K)``),
``b`` an optional fp16 bias of ``K``.  The ``K`` results fill the output buffer
in HWC order (normally ``1x1xK``).  One float32 matrix-vector product.
"""

from __future__ import annotations

from ...errors import GraphFileError
from ...lowering.ir import Op
from .stage import StageSpec

OPS = (Op.FULLY_CONNECTED,)


def fully_connected(x, w, b):
    """float32: ``x`` any shape with ``N`` elements, ``w`` ``(N, K)`` -> ``(K,)``."""
    y = x.reshape(-1) @ w
    if b is not None:
        y += b
    return y


def prepare(spec: StageSpec):
    h, w_, c = spec.in_hwc
    n = h * w_ * c
    out_hwc = spec.out_hwc
    k = out_hwc[0] * out_hwc[1] * out_hwc[2]
    dims = tuple(spec.ref("taps").dims)
    if any(dims) and dims[1:] != (n, k):
        raise GraphFileError(f"taps are {dims[0]}x{dims[1]}x{dims[2]} but {n} inputs and {k} "
                             f"outputs need 1x{n}x{k}")
    if any(dims) and dims[0] != 1:
        raise GraphFileError(f"fully-connected taps must have x dim 1, not {dims[0]}")
    w = spec.constant("taps", n * k).reshape(n, k)
    b = spec.bias(k)

    def compute(mem):
        x = mem.read(spec.stage.input, "input")
        return fully_connected(x, w, b).reshape(out_hwc)

    return compute
