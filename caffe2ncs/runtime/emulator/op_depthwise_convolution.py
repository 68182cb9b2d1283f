"""DEPTHWISE_CONVOLUTION: every input channel convolved with its own ``M`` filters.

``y[o, c*M + m] = sum over taps t of x[o*stride + t*dilation - pad, c] * w[t, c, m] + b[c*M + m]``

Taps are fp16 ``(kh, kw, C, M)`` stored contiguously (``M = K / C``, the
channel multiplier; output channel ``c*M + m``, the order the vendor compiler
uses when it builds depthwise taps from Caffe's ``(K, 1, kh, kw)``), bias
``K`` values.  Padding as for convolution.  One vectorised multiply-add per
kernel tap (at most ``kh*kw`` numpy operations), no loop over pixels or channels.
"""

from __future__ import annotations

import numpy as np

from ...errors import GraphFileError
from ...limits import check_elements
from ...lowering.ir import Op
from .op_convolution import geometry, zero_padded
from .stage import StageSpec

OPS = (Op.DEPTHWISE_CONVOLUTION,)


def depthwise_conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *,
                     stride: tuple[int, int], pad: tuple[int, int], dilation: int,
                     out_hw: tuple[int, int]) -> np.ndarray:
    """float32; ``x`` ``(H, W, C)``, ``w`` ``(kh, kw, C, M)`` -> ``(Ho, Wo, C*M)``."""
    kh, kw, c, m = w.shape
    ho, wo = out_hw
    sy, sx = stride
    check_elements((ho, wo, c, m), 4, "the depthwise convolution's output")
    xp = zero_padded(x, pad, ((ho - 1) * sy + dilation * (kh - 1) + 1,
                              (wo - 1) * sx + dilation * (kw - 1) + 1))
    acc = np.zeros((ho, wo, c, m), np.float32)
    for ty in range(kh):
        for tx in range(kw):
            y0, x0 = ty * dilation, tx * dilation
            window = xp[y0:y0 + (ho - 1) * sy + 1:sy, x0:x0 + (wo - 1) * sx + 1:sx]
            acc += window[..., None] * w[ty, tx]
    out = acc.reshape(ho, wo, c * m)
    if b is not None:
        out += b
    return out


def prepare(spec: StageSpec):
    p, pad = geometry(spec)
    (_, _, c), (ho, wo, k) = spec.in_hwc, spec.out_hwc
    if c == 0 or k % c:
        raise GraphFileError(f"a depthwise convolution from {c} channels cannot give {k} "
                             f"(output channels must be a multiple of the input channels)")
    m = k // c
    dims = tuple(spec.ref("taps").dims)
    if dims[0] and dims[0] != p.kernel_x * p.kernel_y:
        raise GraphFileError(f"taps hold {dims[0]} kernel positions, the kernel is "
                             f"{p.kernel_x}x{p.kernel_y}")
    w = spec.constant("taps", p.kernel_y * p.kernel_x * c * m).reshape(
        p.kernel_y, p.kernel_x, c, m)
    b = spec.bias(k)
    stride = (p.stride_y, p.stride_x)

    def compute(mem):
        x = mem.read(spec.stage.input, "input")
        return depthwise_conv2d(x, w, b, stride=stride, pad=pad, dilation=p.dilation,
                                out_hw=(ho, wo))

    return compute
