"""Small prototxt builders and numpy references for the lowering tests."""

from __future__ import annotations

import numpy as np

from caffe2ncs.model.loader import loads


def net(body: str, shape=(1, 3, 8, 8), name: str = "t"):
    dims = " ".join(f"dim: {d}" for d in shape)
    return loads(f'name: "{name}"\ninput: "data"\ninput_shape {{ {dims} }}\n{body}')


def conv(name, bottom, top=None, n=4, k=3, pad=0, stride=1, group=1, bias=True, extra=""):
    return f"""layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{top or name}"
  convolution_param {{ num_output: {n} kernel_size: {k} pad: {pad} stride: {stride}
    group: {group} bias_term: {str(bias).lower()} {extra} }} }}
"""


def layer(name, type_, bottoms, tops=None, params=""):
    bottoms = [bottoms] if isinstance(bottoms, str) else bottoms
    tops = [name] if tops is None else ([tops] if isinstance(tops, str) else tops)
    b = " ".join(f'bottom: "{x}"' for x in bottoms)
    t = " ".join(f'top: "{x}"' for x in tops)
    return f'layer {{ name: "{name}" type: "{type_}" {b} {t} {params} }}\n'


def const(graph, ref) -> np.ndarray:
    """The fp16 values of the constant ``ref`` names, as float64 (padding included)."""
    return graph.constant(ref.constant).array().astype(np.float64)


def stage(graph, name):
    return next(s for s in graph.stages if s.name == name)


def caffe_conv(x, w, b, stride=1, pad=0):
    """Caffe's convolution in float64: x (C, H, W), w (K, C, kh, kw)."""
    _, h, wd = x.shape
    k, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((k, ho, wo))
    for i in range(kh):
        for j in range(kw):
            patch = xp[:, i:i + stride * ho:stride, j:j + stride * wo:stride]
            out += np.einsum("kc,chw->khw", w[:, :, i, j], patch)
    return out + (0 if b is None else b[:, None, None])


def hwc_conv(x_hwc, taps_hwck, bias, stride=1, pad=0):
    """The device's view: HWC input, HWCK taps -> HWC output (float64)."""
    h, wd, _ = x_hwc.shape
    kh, kw, _, k = taps_hwck.shape
    xp = np.pad(x_hwc, ((pad, pad), (pad, pad), (0, 0)))
    ho, wo = (h + 2 * pad - kh) // stride + 1, (wd + 2 * pad - kw) // stride + 1
    out = np.zeros((ho, wo, k))
    for i in range(kh):
        for j in range(kw):
            out += xp[i:i + stride * ho:stride, j:j + stride * wo:stride, :] @ taps_hwck[i, j]
    return out + (0 if bias is None else bias)


def taps_hwck(graph, st) -> np.ndarray:
    """A convolution stage's taps as (kh, kw, C, K) float64."""
    kk, c, k = st.taps.dims
    kh, kw = st.params.kernel_y, st.params.kernel_x
    assert kh * kw == kk
    return const(graph, st.taps)[:kk * c * k].reshape(kh, kw, c, k)
