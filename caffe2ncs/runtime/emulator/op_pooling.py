"""MAX_POOLING and AVERAGE_POOLING, per channel, over ``kh x kw`` windows.

Window ``o`` along an axis starts at input position ``o*stride - pad`` (pad as
:func:`~.numerics.window_padding` gives it).  The output size is the output
buffer's -- for Caffe networks the compiler's ceil rule
``min(ceil((in + 2*pad - k)/stride) + 1, ceil((in + pad)/stride))``, so the last
window may reach past the input.

* **max**: the largest input value inside the window; positions outside the
  input (padding, or past the end) are ignored, as in Caffe and TensorFlow.
* **average**: the sum of the input values inside the window divided by
  - pad style ``caffe``/``none``: Caffe's ``pool_size``, the window clipped to
    ``[-pad, in + pad)`` -- padding counts as zeros, the part past
    ``in + pad`` that the ceil rule adds does not;
  - ``tf_same``/``tf_valid``: the number of input positions inside the window
    (TensorFlow's ``avg_pool`` never counts padding).

One vectorised operation per window position (``kh*kw`` numpy calls), or
per window row and column for max pooling (``kh + kw``).

Max pooling of an input with no negative number, -0 or NaN in it -- any input
after a ReLU -- runs on the fp16 bits as int16 (:func:`max_pool_fp16`): for
such values the order of the bit patterns is the order of the numbers, and
the maximum is one of them, so the result is exact in fp16 and is stored as
it is; reading the input as float32 and rounding the result back cost 4x the
pooling itself (measured on VGG16's pool1: 4.5 against 1.1 ms).
"""

from __future__ import annotations

import numpy as np

from ...limits import check_elements
from ...lowering.ir import Op, PadStyle
from .numerics import check_window, window_padding
from .stage import StageSpec

OPS = (Op.MAX_POOLING, Op.AVERAGE_POOLING)


def _canvas(x: np.ndarray, pad: tuple[int, int], size: tuple[int, int], fill):
    """``x`` at ``pad`` in a ``size`` canvas of ``fill``, of ``x``'s dtype."""
    h, w, c = x.shape
    (pt, pl), (hp, wp) = pad, size
    check_elements((hp, wp, c), x.dtype.itemsize, "the padded input")
    canvas = np.full((hp, wp, c), fill, x.dtype)
    rows, cols = max(0, min(h, hp - pt)), max(0, min(w, wp - pl))
    canvas[pt:pt + rows, pl:pl + cols] = x[:rows, :cols]
    return canvas


def _windows(canvas, kernel, stride, out_hw):
    (kh, kw), (sy, sx), (ho, wo) = kernel, stride, out_hw
    for ty in range(kh):
        for tx in range(kw):
            yield canvas[ty:ty + (ho - 1) * sy + 1:sy, tx:tx + (wo - 1) * sx + 1:sx]


def max_pool(x: np.ndarray, *, kernel: tuple[int, int], stride: tuple[int, int],
             pad: tuple[int, int], out_hw: tuple[int, int], empty=-np.inf) -> np.ndarray:
    """float32 ``(H, W, C)`` -> ``(Ho, Wo, C)``; ``kernel``/``stride``/``pad`` are ``(y, x)``.
    A window with no input position in it gives -inf; a NaN in a window gives NaN.
    (Also int16, with ``empty`` for a window without input positions.)

    Separable: the maximum over each window's columns first, then over its
    rows (the maximum is exact, so the order changes nothing)."""
    (kh, kw), (sy, sx), (ho, wo) = kernel, stride, out_hw
    check_elements((ho, wo, x.shape[2]), x.dtype.itemsize, "the pooling's output")
    h, w, _ = x.shape
    hp, wp = (ho - 1) * sy + kh, (wo - 1) * sx + kw
    if pad == (0, 0) and hp <= h and wp <= w:
        canvas = x
    else:
        canvas = _canvas(x, pad, (hp, wp), empty)
    span_x, span_y = (wo - 1) * sx + 1, (ho - 1) * sy + 1
    across = canvas[:hp, 0:span_x:sx].copy()
    for tx in range(1, kw):
        np.maximum(across, canvas[:hp, tx:tx + span_x:sx], out=across)
    out = across[0:span_y:sy].copy()
    for ty in range(1, kh):
        np.maximum(out, across[ty:ty + span_y:sy], out=out)
    return out


#: -inf's fp16 bits as int16 (0xfc00): below every non-negative fp16.
FP16_MINUS_INF_BITS = np.int16(-1024)


def max_pool_fp16(x: np.ndarray, **window) -> np.ndarray | None:
    """:func:`max_pool` of an fp16 ``(H, W, C)`` input (any strides) on its bits,
    as fp16, when every value is +0, positive or +inf (then the int16 order of
    the bits is the order of the values: the same result, bit for bit); None
    for an input with a negative value, -0 or a NaN."""
    bits = x.view(np.int16)
    if bits.size and (bits.min() < 0 or bits.max() > 0x7C00):
        return None
    return max_pool(bits, empty=FP16_MINUS_INF_BITS, **window).view(x.dtype)


def avg_pool(x: np.ndarray, *, kernel: tuple[int, int], stride: tuple[int, int],
             pad: tuple[int, int], out_hw: tuple[int, int], count_padding: bool) -> np.ndarray:
    """float32 average pooling.  ``count_padding``: divide by Caffe's pool size
    (the window clipped to ``[-pad, in + pad)``) instead of by the number of
    input positions in the window."""
    (kh, kw), (sy, sx), (ho, wo) = kernel, stride, out_hw
    h, w, c = x.shape
    check_elements((ho, wo, c), 4, "the pooling's output")
    canvas = _canvas(x, pad, ((ho - 1) * sy + kh, (wo - 1) * sx + kw), 0.0)
    total = np.zeros((ho, wo, c), np.float32)
    for window in _windows(canvas, kernel, stride, out_hw):
        total += window
    counts = [_counts(n_out, k, s, p, n_in, count_padding)
              for n_out, k, s, p, n_in in ((ho, kh, sy, pad[0], h), (wo, kw, sx, pad[1], w))]
    divisor = np.outer(counts[0], counts[1]).astype(np.float32)[:, :, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        return total / divisor


def _counts(n_out, k, stride, pad, n_in, count_padding):
    """Per output position along one axis: Caffe's pool size, or the input positions."""
    start = np.arange(n_out) * stride - pad
    if count_padding:
        return np.minimum(start + k, n_in + pad) - start
    return np.maximum(np.minimum(start + k, n_in) - np.maximum(start, 0), 0)


def prepare(spec: StageSpec):
    p = spec.stage.params
    check_window(p, "window")
    (h, w, c), (ho, wo, k) = spec.in_hwc, spec.out_hwc
    if c != k:
        from ...errors import GraphFileError

        raise GraphFileError(f"pooling keeps the channel count, but the input has {c} channels "
                             f"and the output {k}")
    kernel, stride = (p.kernel_y, p.kernel_x), (p.stride_y, p.stride_x)
    pad = (window_padding(p.pad_style, p.pad_y, h, ho, p.kernel_y, p.stride_y),
           window_padding(p.pad_style, p.pad_x, w, wo, p.kernel_x, p.stride_x))
    caffe_style = p.pad_style in (PadStyle.CAFFE, PadStyle.NONE)
    is_max = spec.op is Op.MAX_POOLING

    def compute(mem):
        if is_max:
            window = {"kernel": kernel, "stride": stride, "pad": pad, "out_hw": (ho, wo)}
            exact = max_pool_fp16(mem.view(spec.stage.input, "input"), **window)
            if exact is not None:
                return exact
            return max_pool(mem.read(spec.stage.input, "input"), **window)
        x = mem.read(spec.stage.input, "input")
        return avg_pool(x, kernel=kernel, stride=stride, pad=pad, out_hw=(ho, wo),
                        count_padding=caffe_style)

    return compute
