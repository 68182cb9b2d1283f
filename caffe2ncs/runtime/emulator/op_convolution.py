"""CONVOLUTION:

``y[o, k] = sum over taps t, channels c of x[o*stride + t*dilation - pad, c] * w[t, c, k] + b[k]``

Input ``(H, W, C)``, taps fp16 HWCK ``(kh, kw, C, K)`` stored contiguously
(the taps descriptor's dims are ``(kh*kw, C, K)``; its strides are not used:
NCSDK 1.x compilers store ``(2K, 2K, 2)``, which does not describe the data),
an optional fp16 bias of ``K`` values, output ``(Ho, Wo, K)`` with ``Ho, Wo``
taken from the output buffer.  Padding follows the stage's pad style
(:func:`~.numerics.window_padding`); positions outside the input read zero.

Computed as im2col + one float32 GEMM per block of output rows (BLAS), so a
224x224 VGG layer is a dozen large matrix products, not a Python loop.
"""

from __future__ import annotations

import numpy as np

from ...errors import GraphFileError
from ...limits import MAX_EMULATOR_MACS, LimitError, check_elements
from ...lowering.ir import Op
from .numerics import check_window, window_padding
from .stage import StageSpec

OPS = (Op.CONVOLUTION,)

#: Bytes of im2col columns built at once, in one buffer reused for every block of
#: output rows: bounds the memory a big layer needs (VGG16's conv1_2 has 115 MB of
#: columns) and keeps the copy cache-friendly, while each GEMM stays large enough
#: (thousands of rows) for BLAS to run at full speed.
COLUMN_BLOCK_BYTES = 8 << 20


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *, stride: tuple[int, int],
           pad: tuple[int, int], dilation: int, out_hw: tuple[int, int]) -> np.ndarray:
    """float32 convolution, HWC in and out.

    ``x``: ``(H, W, C)``; ``w``: ``(kh, kw, C, K)``; ``b``: ``(K,)`` or None;
    ``stride``/``pad``: ``(y, x)``; ``pad`` is the padding before the first
    row/column (the padding after is whatever ``out_hw`` needs).
    """
    kh, kw, c, k = w.shape
    ho, wo = out_hw
    sy, sx = stride
    macs = ho * wo * k * kh * kw * c
    if macs > MAX_EMULATOR_MACS:
        raise LimitError(f"the convolution needs {macs:.3g} multiply-accumulates, more than the "
                         f"emulator's limit of {MAX_EMULATOR_MACS:.3g} (limits.MAX_EMULATOR_MACS)")
    check_elements((ho, wo, k), 4, "the convolution's output")
    xp = zero_padded(x, pad, ((ho - 1) * sy + dilation * (kh - 1) + 1,
                              (wo - 1) * sx + dilation * (kw - 1) + 1))
    wmat = w.reshape(kh * kw * c, k)
    out = np.empty((ho, wo, k), np.float32)
    if kh == kw == 1 and sy == sx == 1:
        np.matmul(xp[:ho, :wo].reshape(ho * wo, c), wmat, out=out.reshape(ho * wo, k))
    else:
        row_bytes = wo * kh * kw * c * 4
        rows = max(1, min(ho, COLUMN_BLOCK_BYTES // max(1, row_bytes)))
        columns = np.empty((rows * wo, kh * kw * c), np.float32)  # reused by every block
        s0, s1, s2 = xp.strides
        for r0 in range(0, ho, rows):
            r1 = min(ho, r0 + rows)
            n = (r1 - r0) * wo
            windows = np.lib.stride_tricks.as_strided(
                xp[r0 * sy:], shape=(r1 - r0, wo, kh, kw, c),
                strides=(sy * s0, sx * s1, dilation * s0, dilation * s1, s2), writeable=False)
            np.copyto(columns[:n].reshape(r1 - r0, wo, kh, kw, c), windows)  # im2col
            np.matmul(columns[:n], wmat, out=out[r0:r1].reshape(n, k))
    if b is not None:
        out += b
    return out


def zero_padded(x: np.ndarray, pad: tuple[int, int], size: tuple[int, int]) -> np.ndarray:
    """``x`` placed at row/column ``pad`` of a zero ``size[0] x size[1]`` canvas
    (rows/columns beyond the canvas are dropped: no window reads them).
    Returns ``x`` itself when no padding is needed."""
    h, w, c = x.shape
    (pt, pl), (hp, wp) = pad, size
    if pt == 0 and pl == 0 and hp <= h and wp <= w:
        return x
    check_elements((hp, wp, c), 4, "the zero-padded input")
    canvas = np.zeros((max(hp, 1), max(wp, 1), c), np.float32)
    rows, cols = max(0, min(h, hp - pt)), max(0, min(w, wp - pl))
    canvas[pt:pt + rows, pl:pl + cols] = x[:rows, :cols]
    return canvas


def taps_hwck(spec: StageSpec, kh: int, kw: int, c: int, k: int) -> np.ndarray:
    """The stage's taps as float32 ``(kh, kw, C, K)``, checked against the taps dims."""
    dims = tuple(spec.ref("taps").dims)
    if any(dims) and dims != (kh * kw, c, k):
        raise GraphFileError(f"taps are {dims[0]}x{dims[1]}x{dims[2]} (taps x C x K) but a "
                             f"{kh}x{kw} kernel from {c} to {k} channels needs "
                             f"{kh * kw}x{c}x{k}")
    return spec.constant("taps", kh * kw * c * k).reshape(kh, kw, c, k)


def geometry(spec: StageSpec):
    """Kernel, stride, dilation and padding-before of a conv-like stage."""
    p = spec.stage.params
    check_window(p, "window")
    if p.dilation < 1:
        raise GraphFileError(f"dilation {p.dilation} must be >= 1")
    (h, w, _), (ho, wo, _) = spec.in_hwc, spec.out_hwc
    pad = (window_padding(p.pad_style, p.pad_y, h, ho, p.kernel_y, p.stride_y, p.dilation),
           window_padding(p.pad_style, p.pad_x, w, wo, p.kernel_x, p.stride_x, p.dilation))
    return p, pad


def prepare(spec: StageSpec):
    p, pad = geometry(spec)
    (_, _, c), (ho, wo, k) = spec.in_hwc, spec.out_hwc
    w = taps_hwck(spec, p.kernel_y, p.kernel_x, c, k)
    b = spec.bias(k)
    stride = (p.stride_y, p.stride_x)

    def compute(mem):
        x = mem.read(spec.stage.input, "input")
        return conv2d(x, w, b, stride=stride, pad=pad, dilation=p.dilation, out_hw=(ho, wo))

    return compute
