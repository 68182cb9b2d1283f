"""Pooling: MAX (with the optional argmax mask top), AVE, STOCHASTIC (test
phase), global pooling; Caffe's output size (rounded up unless
``round_mode: FLOOR`` / a fork's ``ceil_mode: false``, then clamped so the
last window starts inside the image or its top/left padding).

Window rules, exactly Caffe's ``PoolingLayer::Forward_cpu``:

* MAX: ``hstart = ph*stride - pad``, ``hend = min(hstart + kernel, H)``,
  ``hstart = max(hstart, 0)``: padding never takes part; the result starts
  at ``-FLT_MAX`` and takes a value only if it is strictly greater (so NaNs
  are skipped, an empty window gives ``-FLT_MAX`` and the mask the first
  maximum in row-major order, or -1).
* AVE: ``hend = min(hstart + kernel, H + pad)``; the divisor is
  ``(hend - hstart) * (wend - wstart)`` taken *before* the window is clipped
  to the image, so windows over the padding count it as zeros, but windows
  running past ``H + pad`` (the rounded-up last one) do not.  The sum is
  accumulated in Caffe's order (row by row), so the result is bit-identical.
"""

from __future__ import annotations

import numpy as np

from ...model.shapes import ShapeError, pooling_geometry
from ._registry import FLT_MAX, Call, op

MAX, AVE, STOCHASTIC = 0, 1, 2


def pool_geometry(call: Call, h: int, w: int):
    """((kh, kw), (sh, sw), (ph, pw), (oh, ow)) of a Pooling layer on an HxW
    input: shape inference's (:func:`~caffe2ncs.model.shapes.pooling_geometry`),
    so that both size the output as Caffe does."""
    try:
        return pooling_geometry(call.pb, call.layer, h, w)
    except ShapeError as err:
        raise call.invalid(str(err)) from None


@op("Pooling")
def pooling(call: Call):
    x = call.x
    if x.ndim != 4:
        raise call.invalid(f"pooling needs a 4-axis NCHW input, not {x.shape}")
    method = call.pb.pooling_param.pool
    n_tops = len(call.layer.tops)
    if n_tops > (2 if method == MAX else 1):
        raise call.invalid(f"{n_tops} tops (only MAX pooling has a second, mask top)")
    geometry = pool_geometry(call, x.shape[2], x.shape[3])
    if method == MAX:
        return list(max_pool(x, *geometry, mask=n_tops == 2))
    if method == AVE:
        return [ave_pool(x, *geometry)]
    if method == STOCHASTIC:
        return [stochastic_pool_test(x, *geometry)]
    raise call.unsupported(f"unknown pooling method {method}")


def _taps(xp: np.ndarray, kernel, stride, out):
    """(i, j, view): for each kernel tap, the input each output position sees there."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out
    for i in range(kh):
        for j in range(kw):
            yield i, j, xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]


def _padded(x: np.ndarray, kernel, stride, pad, out, fill) -> np.ndarray:
    """``x`` padded by ``pad`` at the top/left and enough at the bottom/right for
    every window (which may run past the padding when the size is rounded up)."""
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, pad, out
    h, w = x.shape[2:]
    bottom = max(0, (oh - 1) * sh + kh - h - ph)
    right = max(0, (ow - 1) * sw + kw - w - pw)
    if not (ph or pw or bottom or right):
        return x
    return np.pad(x, ((0, 0), (0, 0), (ph, bottom), (pw, right)), constant_values=fill)


def max_pool(x: np.ndarray, kernel, stride, pad, out, mask: bool = False):
    """Caffe's MAX pooling; with ``mask``, also the argmax top (``h * W + w`` of
    the first maximum, as float; -1 for an empty window)."""
    n, c, h, w = x.shape
    xp = _padded(x, kernel, stride, pad, out, -np.inf)
    oh, ow = out
    acc = np.full((n, c, oh, ow), -FLT_MAX, dtype=x.dtype)
    if not mask:
        for _, _, view in _taps(xp, kernel, stride, out):
            np.fmax(acc, view, out=acc)  # fmax skips NaNs, as Caffe's ``>`` does
        return (acc,)
    (sh, sw), (ph, pw) = stride, pad
    arg = np.full((n, c, oh, ow), -1, dtype=np.int64)
    rows = np.arange(oh) * sh - ph
    cols = np.arange(ow) * sw - pw
    for i, j, view in _taps(xp, kernel, stride, out):
        better = view > acc
        acc = np.where(better, view, acc)
        index = (rows + i)[:, None] * w + (cols + j)[None, :]
        arg = np.where(better, index, arg)
    return acc, arg.astype(x.dtype)


def ave_pool(x: np.ndarray, kernel, stride, pad, out) -> np.ndarray:
    """Caffe's AVE pooling (see the module docstring for the divisor)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (oh, ow) = kernel, stride, pad, out
    xp = _padded(x, kernel, stride, pad, out, 0)
    acc = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for _, _, view in _taps(xp, kernel, stride, out):
        acc += view
    hstart = np.arange(oh) * sh - ph
    wstart = np.arange(ow) * sw - pw
    hsize = np.minimum(hstart + kh, h + ph) - hstart
    wsize = np.minimum(wstart + kw, w + pw) - wstart
    size = (hsize[:, None] * wsize[None, :]).astype(x.dtype)
    return acc / size


def stochastic_pool_test(x: np.ndarray, kernel, stride, pad, out) -> np.ndarray:
    """STOCHASTIC pooling in the TEST phase: each window's values weighted by
    themselves, ``sum(x*x) / sum(x)`` (0 where ``sum(x) <= 0``).  Caffe has only
    a GPU implementation (the CPU one is NOT_IMPLEMENTED); this follows it,
    including its windows, which start at ``ph*stride`` and ignore ``pad``."""
    (kh, kw), (sh, sw), (oh, ow) = kernel, stride, out
    n, c, h, w = x.shape
    bottom = max(0, (oh - 1) * sh + kh - h)
    right = max(0, (ow - 1) * sw + kw - w)
    xp = np.pad(x, ((0, 0), (0, 0), (0, bottom), (0, right))) if bottom or right else x
    total = np.zeros((n, c, oh, ow), dtype=x.dtype)
    weighted = np.zeros((n, c, oh, ow), dtype=x.dtype)
    for _, _, view in _taps(xp, kernel, stride, out):
        total += view
        weighted += view * view
    positive = total > 0
    return np.where(positive, weighted / np.where(positive, total, 1), 0).astype(x.dtype)
