"""Element-wise layers, each with the formula of its Caffe ``Forward_cpu``.

Parameters are Caffe's ``Dtype`` (float32) values; numpy keeps the
arithmetic in the blobs' dtype.  Dropout is the identity in the TEST phase
(Caffe scales at training time).
"""

from __future__ import annotations

import numpy as np

from ...model.shapes import raw_value
from ._registry import Call, op


def _scalar(call: Call, value: float):
    """A layer parameter as Caffe holds it (a float), in the blobs' dtype."""
    return call.dtype.type(np.float32(value))


@op("ReLU")
def relu(call: Call):
    x = call.x
    slope = call.pb.relu_param.negative_slope
    if slope == 0:
        return [np.maximum(x, 0)]
    return [np.maximum(x, 0) + _scalar(call, slope) * np.minimum(x, 0)]


@op("ReLU6")
def relu6(call: Call):
    return [np.minimum(np.maximum(call.x, 0), 6)]


@op("PReLU")
def prelu(call: Call):
    x = call.x
    slopes = call.blob(0, "slopes")
    if x.ndim < 2:
        raise call.invalid("PReLU needs an input with a channel axis")
    if call.pb.prelu_param.channel_shared:
        slope = slopes.reshape(())
    else:
        if slopes.size != x.shape[1]:
            raise call.invalid(f"{slopes.size} slopes for {x.shape[1]} channels")
        slope = slopes.reshape((1, x.shape[1]) + (1,) * (x.ndim - 2))
    return [np.maximum(x, 0) + slope * np.minimum(x, 0)]


@op("ELU")
def elu(call: Call):
    x = call.x
    alpha = _scalar(call, call.pb.elu_param.alpha)
    return [np.maximum(x, 0) + alpha * (np.exp(np.minimum(x, 0)) - 1)]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # Caffe's form since 2017 (no overflow for large |x|)
    return 0.5 * np.tanh(0.5 * x) + 0.5


@op("Sigmoid")
def sigmoid(call: Call):
    return [_sigmoid(call.x)]


@op("TanH")
def tanh(call: Call):
    return [np.tanh(call.x)]


@op("AbsVal")
def absval(call: Call):
    return [np.abs(call.x)]


@op("BNLL")
def bnll(call: Call):
    # x > 0 ? x + log(1 + exp(-x)) : log(1 + exp(x)), written without overflow
    x = call.x
    return [np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))]


@op("Power")
def power(call: Call):
    pp = call.pb.power_param
    x = call.x
    p, scale, shift = (_scalar(call, v) for v in (pp.power, pp.scale, pp.shift))
    if p * scale == 0:
        # Caffe: the output does not depend on x (power 0, or scale 0)
        value = 1 if p == 0 else np.power(shift, p)
        return [np.full(x.shape, value, dtype=x.dtype)]
    y = x
    if scale != 1:
        y = y * scale
    if shift != 0:
        y = y + shift
    if p != 1:
        y = np.power(y, p)
    return [y if y is not x else x.copy()]


@op("Exp")
def exp(call: Call):
    ep = call.pb.exp_param
    base, scale, shift = (_scalar(call, v) for v in (ep.base, ep.scale, ep.shift))
    if base != -1 and base <= 0:
        raise call.invalid(f"base must be strictly positive (or -1 for e), not {ep.base}")
    log_base = 1 if base == -1 else np.log(base)
    inner = call.dtype.type(log_base * scale)
    outer = 1 if shift == 0 else (np.exp(shift) if base == -1 else np.power(base, shift))
    y = np.exp(call.x if inner == 1 else call.x * inner)
    if outer != 1:
        y = y * call.dtype.type(outer)
    return [y]


@op("Log")
def log(call: Call):
    lp = call.pb.log_param
    base, scale, shift = (_scalar(call, v) for v in (lp.base, lp.scale, lp.shift))
    if base != -1 and base <= 0:
        raise call.invalid(f"base must be strictly positive (or -1 for e), not {lp.base}")
    base_scale = 1 if base == -1 else call.dtype.type(1 / np.log(base))
    y = call.x
    if scale != 1:
        y = y * scale
    if shift != 0:
        y = y + shift
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.log(y)
    if base_scale != 1:
        y = y * base_scale
    return [y]


@op("Threshold")
def threshold(call: Call):
    t = _scalar(call, call.pb.threshold_param.threshold)
    return [(call.x > t).astype(call.dtype)]


@op("Clip")
def clip(call: Call):
    cp = call.pb.clip_param
    lo, hi = _scalar(call, cp.min), _scalar(call, cp.max)
    return [np.maximum(lo, np.minimum(call.x, hi))]


@op("Swish")
def swish(call: Call):
    beta = _scalar(call, call.pb.swish_param.beta)
    x = call.x
    return [x * _sigmoid(beta * x)]


@op("Dropout")
def dropout(call: Call):
    # TEST phase: the identity (Caffe's inverted dropout scales while training).
    # A fork's ``scale_train: false`` multiplies by (1 - ratio) at test time instead.
    if raw_value(call.layer, "dropout_param", "scale_train") is False:
        keep = _scalar(call, 1 - np.float32(call.pb.dropout_param.dropout_ratio))
        return [call.x * keep]
    return [call.x]


@op("Split")
def split(call: Call):
    return [call.x] * len(call.layer.tops)


@op("Silence")
def silence(call: Call):
    return []
