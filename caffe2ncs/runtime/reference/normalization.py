"""BatchNorm, Scale, Bias, LRN, MVN, Softmax and SSD's Normalize."""

from __future__ import annotations

import numpy as np

from ._registry import Call, op
from .pooling import ave_pool

ACROSS_CHANNELS, WITHIN_CHANNEL = 0, 1


def _canonical_axis(call: Call, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise call.invalid(f"axis {axis} is out of range for a {rank}-axis input")
    return axis + rank if axis < 0 else axis


def _per_channel(v: np.ndarray, x: np.ndarray, axis: int = 1) -> np.ndarray:
    """``v`` (the shape of some of ``x``'s axes from ``axis`` on) shaped to broadcast
    against ``x``."""
    return v.reshape((1,) * axis + v.shape + (1,) * (x.ndim - axis - v.ndim))


@op("BatchNorm")
def batch_norm(call: Call):
    """Caffe's BatchNorm: ``(x - mean) / sqrt(var + eps)`` per channel (axis 1).

    With ``use_global_stats`` (the TEST-phase default) mean and variance are the
    stored sums multiplied by ``1 / blob[2]`` (0 when ``blob[2]`` is 0), in
    float32 as Caffe does; with ``use_global_stats: false`` they are the
    statistics of this batch (over N and the spatial axes)."""
    bn = call.pb.batch_norm_param
    x = call.x
    dt = call.dtype.type
    channels = x.shape[1] if x.ndim > 1 else 1
    global_stats = bn.use_global_stats if bn.HasField("use_global_stats") else True
    eps = dt(np.float32(bn.eps))
    xc = x.reshape(x.shape[0], channels, -1)
    if global_stats:
        mean_sum, var_sum, factor_blob = (call.blob(i, "mean/variance/scale factor")
                                          for i in range(3))
        if mean_sum.size != channels or var_sum.size != channels:
            raise call.invalid(f"mean/variance have {mean_sum.size}/{var_sum.size} values for "
                               f"{channels} channels")
        s = factor_blob.reshape(-1)[0]
        factor = dt(0) if s == 0 else dt(1) / s
        mean = mean_sum.reshape(-1) * factor
        var = var_sum.reshape(-1) * factor
    else:
        mean = xc.mean(axis=(0, 2), dtype=call.dtype)
        var = ((xc - mean[None, :, None]) ** 2).mean(axis=(0, 2), dtype=call.dtype)
    y = (xc - mean[None, :, None]) / np.sqrt(var + eps)[None, :, None]
    return [y.reshape(x.shape)]


def _scale_shape_checked(call: Call, x: np.ndarray, s: np.ndarray, axis_param: int) -> int:
    """The axis where ``s`` lines up with ``x`` (Caffe's Scale/Bias Reshape)."""
    axis = 0 if s.ndim == 0 else _canonical_axis(call, axis_param, x.ndim)
    if x.ndim < axis + s.ndim or tuple(x.shape[axis:axis + s.ndim]) != tuple(s.shape):
        raise call.invalid(f"a {s.shape} blob does not match axes {axis}.. of the {x.shape} input")
    return axis


@op("Scale")
def scale(call: Call):
    """``x * scale (+ bias)``, the scale broadcast from ``axis`` over the
    following ``num_axes`` axes (a learned blob), or given as the second bottom."""
    sp = call.pb.scale_param
    call.need_bottoms(1, 2)
    x = call.x
    if len(call.bottoms) == 2:
        s = call.bottoms[1]
        bias = call.blob(0, "bias") if sp.bias_term else None
    else:
        s = call.blob(0, "scale")
        bias = call.blob(1, "bias") if sp.bias_term else None
        s = s.reshape(_param_shape(call, x, sp.axis, sp.num_axes, s))
    axis = _scale_shape_checked(call, x, s, sp.axis)
    y = x * _per_channel(s, x, axis)
    if bias is not None:
        y += _per_channel(bias.reshape(s.shape), x, axis)
    return [y]


def _param_shape(call: Call, x: np.ndarray, axis: int, num_axes: int, blob: np.ndarray):
    """The shape Caffe gives a learned Scale/Bias blob: ``x.shape[axis:axis+num_axes]``."""
    if num_axes < -1:
        raise call.invalid("num_axes must be -1 or more")
    start = _canonical_axis(call, axis, x.ndim)
    end = x.ndim if num_axes == -1 else start + num_axes
    if end > x.ndim:
        raise call.invalid(f"axis {axis} + num_axes {num_axes} exceed the input's {x.ndim} axes")
    shape = tuple(x.shape[start:end])
    if int(np.prod(shape, dtype=np.int64)) != blob.size:
        raise call.invalid(f"the learned blob has {blob.size} values, the input's axes "
                           f"{start}..{end - 1} need {shape}")
    return shape


@op("Bias")
def bias(call: Call):
    bp = call.pb.bias_param
    call.need_bottoms(1, 2)
    x = call.x
    if len(call.bottoms) == 2:
        b = call.bottoms[1]
    else:
        b = call.blob(0, "bias")
        b = b.reshape(_param_shape(call, x, bp.axis, bp.num_axes, b))
    axis = _scale_shape_checked(call, x, b, bp.axis)
    return [x + _per_channel(b, x, axis)]


@op("LRN")
def lrn(call: Call):
    """Caffe's local response normalisation (``k``, ``alpha``, ``beta``,
    ``local_size``; ``size`` = ``local_size``):

    * ACROSS_CHANNELS: ``x / (k + alpha/size * sum(x^2 over the size channels
      centred on c))^beta`` (channels beyond the ends count as 0);
    * WITHIN_CHANNEL: Caffe builds it from other layers: ``x * (1 + alpha *
      avepool(x^2))^-beta`` with a size x size AVE pooling, stride 1, pad
      (size-1)/2 (so the divisor is always size^2); ``k`` is not used.
    """
    lp = call.pb.lrn_param
    x = call.x
    if x.ndim != 4:
        raise call.invalid(f"LRN needs a 4-axis NCHW input, not {x.shape}")
    size = lp.local_size
    if size % 2 == 0 or size < 1:
        raise call.invalid(f"local_size must be odd, not {size}")
    dt = call.dtype.type
    alpha, beta, k = dt(np.float32(lp.alpha)), dt(np.float32(lp.beta)), dt(np.float32(lp.k))
    pre = (size - 1) // 2
    if lp.norm_region == ACROSS_CHANNELS:
        sq = np.pad(x * x, ((0, 0), (pre, pre), (0, 0), (0, 0)))
        c = x.shape[1]
        total = np.zeros_like(x)
        for i in range(size):
            total += sq[:, i:i + c]
        scale = k + (alpha / dt(size)) * total
        return [x * np.power(scale, -beta)]
    if lp.norm_region == WITHIN_CHANNEL:
        pooled = ave_pool(x * x, (size, size), (1, 1), (pre, pre), x.shape[2:])
        return [x * np.power(1 + alpha * pooled, -beta)]
    raise call.unsupported(f"unknown norm_region {lp.norm_region}")


@op("MVN")
def mvn(call: Call):
    """``(x - mean)`` and, with ``normalize_variance``, divided by ``sqrt(var) + eps``
    (eps added *after* the square root, as in Caffe); statistics per channel
    and image, or per image with ``across_channels``."""
    mp = call.pb.mvn_param
    x = call.x
    groups = x.shape[0] if mp.across_channels else x.shape[0] * x.shape[1]
    flat = x.reshape(groups, -1)
    centred = flat - flat.mean(axis=1, keepdims=True, dtype=call.dtype)
    if mp.normalize_variance:
        var = (centred * centred).mean(axis=1, keepdims=True, dtype=call.dtype)
        centred = centred / (np.sqrt(var) + call.dtype.type(np.float32(mp.eps)))
    return [centred.reshape(x.shape)]


@op("Softmax")
def softmax(call: Call):
    x = call.x
    axis = _canonical_axis(call, call.pb.softmax_param.axis, x.ndim)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return [e / e.sum(axis=axis, keepdims=True)]


@op("Normalize")
def normalize(call: Call):
    """SSD's L2 normalisation: ``x / sqrt(sum(x^2) + eps)``, the sum over
    (C, H, W) of each image (``across_spatial``, the default) or over C at each
    position; then times the learned scale (one value, or one per channel)."""
    np_ = call.pb.norm_param
    x = call.x
    if x.ndim < 2:
        raise call.invalid("Normalize needs an input with a channel axis")
    eps = call.dtype.type(np.float32(np_.eps))
    n, c = x.shape[:2]
    xs = x.reshape(n, c, -1)
    if np_.across_spatial:
        norm = np.sqrt((xs * xs).sum(axis=(1, 2), keepdims=True) + eps)
        y = xs * (1 / norm)  # Caffe scales by the reciprocal here ...
    else:
        norm = np.sqrt((xs * xs).sum(axis=1, keepdims=True) + eps)
        y = xs / norm  # ... and divides here
    s = call.blob(0, "scale")
    if np_.channel_shared:
        if s.size != 1:
            raise call.invalid(f"channel_shared takes one scale, not {s.size}")
        y = y * s.reshape(())
    else:
        if s.size != c:
            raise call.invalid(f"{s.size} scales for {c} channels")
        y = y * s.reshape(1, c, 1)
    return [y.reshape(x.shape)]
