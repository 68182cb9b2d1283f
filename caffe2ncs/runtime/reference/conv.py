"""Convolution, Deconvolution, InnerProduct and Embed.

Convolution is computed as Caffe computes it: im2col (a strided view of the
padded input, copied into Caffe's column layout, channel-major then kernel
row and column) and one float32 GEMM per group, image and band of output
rows (bands keep the column buffer under ``COLUMN_BUDGET``).  Only the order
of the additions inside the GEMM can differ from Caffe's (it is BLAS's).
Depthwise layers (one input channel per group) are a broadcast multiply-add
per kernel tap instead of thousands of tiny GEMMs.

Deconvolution is Caffe's: one GEMM of the transposed weights with the input
into columns, then col2im (a strided add per tap) and the crop of ``pad``.
"""

from __future__ import annotations

import numpy as np

from ...model.shapes import ShapeError, conv_geometry
from ._registry import Call, op


def _conv_params(call: Call, depthwise: bool = False):
    cp = call.pb.convolution_param
    x = call.x
    if x.ndim != 4:
        raise call.unsupported(f"only 2-D convolution (4-axis NCHW inputs) is implemented, "
                               f"not a {x.ndim}-axis input")
    axis = cp.axis + x.ndim if cp.axis < 0 else cp.axis
    if axis != 1:
        raise call.unsupported(f"convolution over axis {cp.axis} (only the channel axis 1)")
    try:
        kernel, stride, pad, dilation = conv_geometry(cp, 2)
    except ShapeError as err:
        raise call.invalid(str(err)) from None
    group = x.shape[1] if depthwise else cp.group
    if not depthwise and (group < 1 or x.shape[1] % group or cp.num_output % group):
        raise call.invalid(f"group {group} must divide the input channels ({x.shape[1]}) "
                           f"and num_output ({cp.num_output})")
    for other in call.bottoms[1:]:
        if other.shape != x.shape:
            raise call.invalid("all bottoms of a convolution must have the same shape")
    weights = call.blob(0, "weights")
    bias = call.blob(1, "bias") if cp.bias_term else None
    return cp, tuple(kernel), tuple(stride), tuple(pad), tuple(dilation), group, weights, bias


@op("Convolution", "DepthwiseConvolution")
def convolution(call: Call):
    """Caffe's Convolution; also the DepthwiseConvolution fork layer, which is a
    ConvolutionLayer (its ``group`` says how many groups there are)."""
    cp, kernel, stride, pad, dilation, group, weights, bias = _conv_params(call)
    want = (cp.num_output, call.x.shape[1] // group, *kernel)
    if weights.shape != want:
        raise call.invalid(f"weights are {weights.shape}, the layer needs {want}")
    return [conv2d(x, weights, bias, stride, pad, dilation, group, call) for x in call.bottoms]


@op("ConvolutionDepthwise")
def convolution_depthwise(call: Call):
    """The ConvolutionDepthwise fork layer (``conv_dw_layer.cpp``): always one
    filter per input channel, C in, C out, weights (C, 1, kh, kw) and a bias
    of C, whatever ``num_output`` and ``group`` say (networks often leave
    ``group`` out)."""
    cp, kernel, stride, pad, dilation, group, weights, bias = _conv_params(call, depthwise=True)
    c = call.x.shape[1]
    want = (c, 1, *kernel)
    if weights.shape != want:
        raise call.invalid(f"weights are {weights.shape}; ConvolutionDepthwise always has one "
                           f"filter per input channel: {want}")
    if bias is not None and bias.size != c:
        raise call.invalid(f"{bias.size} biases for {c} channels")
    return [conv2d(x, weights, bias, stride, pad, dilation, group, call) for x in call.bottoms]


def conv2d(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, stride, pad, dilation,
           group: int, call: Call | None = None) -> np.ndarray:
    """Caffe's 2-D convolution of NCHW ``x`` with ``weights`` (K, C/g, kh, kw)."""
    n, c, h, w = x.shape
    k, cg, kh, kw = weights.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    oh = (h + 2 * ph - (dh * (kh - 1) + 1)) // sh + 1
    ow = (w + 2 * pw - (dw * (kw - 1) + 1)) // sw + 1
    if oh < 1 or ow < 1:
        message = f"output size {oh}x{ow} < 1"
        if call is not None:
            raise call.invalid(message)
        raise ValueError(message)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))) if ph or pw else x
    xp = np.ascontiguousarray(xp)
    g, kg = group, k // group
    out = np.empty((n, k, oh, ow), dtype=x.dtype)
    if cg == 1:
        _depthwise(xp, weights.reshape(g, kg, kh, kw), out, stride, dilation)
    else:
        _im2col_gemm(xp, weights.reshape(g, kg, cg * kh * kw), out, (kh, kw), stride, dilation)
    if bias is not None:
        out += bias.reshape(1, k, 1, 1)
    return out


#: the largest column buffer (bytes) built at once; bigger inputs go in bands of rows
COLUMN_BUDGET = 64 << 20


def _im2col_gemm(xp, wg, out, kernel, stride, dilation) -> None:
    """Caffe's im2col + GEMM, one image and band of output rows at a time: the
    columns ``(C/g * kh * kw, rows * OW)`` of each group times its weights."""
    n, c, hp, wp = xp.shape
    g, kg, depth = wg.shape
    _, k, oh, ow = out.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    pointwise = kh == kw == 1 and sh == sw == 1
    rows = max(1, min(oh, COLUMN_BUDGET // max(1, c * kh * kw * ow * xp.itemsize)))
    s0, s1, s2, s3 = xp.strides
    for b in range(n):
        for r in range(0, oh, rows):
            rr = min(rows, oh - r)
            if pointwise:
                cols = xp[b, :, r:r + rr, :].reshape(g, depth, rr * ow)
            else:
                # (C, kh, kw, rows, OW) view of the input each output position sees
                view = np.lib.stride_tricks.as_strided(
                    xp[b, :, r * sh:, :], shape=(c, kh, kw, rr, ow),
                    strides=(s1, s2 * dh, s3 * dw, s2 * sh, s3 * sw), writeable=False)
                cols = view.reshape(g, depth, rr * ow)  # copies: Caffe's column buffer
            out[b, :, r:r + rr, :] = np.matmul(wg, cols).reshape(k, rr, ow)


def _depthwise(xp, wg, out, stride, dilation) -> None:
    """One input channel per group: a broadcast multiply-add per kernel tap."""
    n, c, hp, wp = xp.shape
    g, kg, kh, kw = wg.shape
    _, k, oh, ow = out.shape
    (sh, sw), (dh, dw) = stride, dilation
    acc = np.zeros((n, g, kg, oh, ow), dtype=xp.dtype)
    for i in range(kh):
        for j in range(kw):
            tap = xp[:, :, i * dh:i * dh + sh * (oh - 1) + 1:sh,
                     j * dw:j * dw + sw * (ow - 1) + 1:sw]
            acc += wg[None, :, :, i, j, None, None] * tap[:, :, None]
    out[...] = acc.reshape(n, k, oh, ow)


@op("Deconvolution")
def deconvolution(call: Call):
    cp, kernel, stride, pad, dilation, group, weights, bias = _conv_params(call)
    want = (call.x.shape[1], cp.num_output // group, *kernel)
    if weights.shape != want:
        raise call.invalid(f"weights are {weights.shape}, the layer needs {want}")
    return [deconv2d(x, weights, bias, stride, pad, dilation, group, call) for x in call.bottoms]


def deconv2d(x: np.ndarray, weights: np.ndarray, bias: np.ndarray | None, stride, pad, dilation,
             group: int, call: Call | None = None) -> np.ndarray:
    """Caffe's 2-D deconvolution (the convolution's backward pass) of NCHW ``x``
    with ``weights`` (C, K/g, kh, kw)."""
    n, c, h, w = x.shape
    _, kg, kh, kw = weights.shape
    (sh, sw), (ph, pw), (dh, dw) = stride, pad, dilation
    g, cg = group, c // group
    k = kg * g
    full_h = sh * (h - 1) + dh * (kh - 1) + 1
    full_w = sw * (w - 1) + dw * (kw - 1) + 1
    oh, ow = full_h - 2 * ph, full_w - 2 * pw
    if oh < 1 or ow < 1:
        message = f"output size {oh}x{ow} < 1"
        if call is not None:
            raise call.invalid(message)
        raise ValueError(message)
    # columns = W^T x: (n, g, K/g * kh * kw, H*W), one GEMM per group
    wt = weights.reshape(g, cg, kg * kh * kw).transpose(0, 2, 1)
    cols = np.matmul(wt, x.reshape(n, g, cg, h * w)).reshape(n, k, kh, kw, h, w)
    full = np.zeros((n, k, full_h, full_w), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            full[:, :, i * dh:i * dh + sh * (h - 1) + 1:sh,
                 j * dw:j * dw + sw * (w - 1) + 1:sw] += cols[:, :, i, j]
    out = full[:, :, ph:ph + oh, pw:pw + ow]
    if bias is not None:
        out = out + bias.reshape(1, k, 1, 1)
    return np.ascontiguousarray(out)


@op("InnerProduct")
def inner_product(call: Call):
    ip = call.pb.inner_product_param
    x = call.x
    axis = ip.axis + x.ndim if ip.axis < 0 else ip.axis
    if not 0 <= axis < x.ndim:
        raise call.invalid(f"axis {ip.axis} is out of range for a {x.ndim}-axis input")
    m = int(np.prod(x.shape[:axis], dtype=np.int64))
    depth = int(np.prod(x.shape[axis:], dtype=np.int64))
    weights = call.blob(0, "weights")
    n_out = ip.num_output
    want = (depth, n_out) if ip.transpose else (n_out, depth)
    if weights.shape != want:
        raise call.invalid(f"weights are {weights.shape}, the layer needs {want} "
                           f"(input {x.shape} flattened from axis {axis})")
    x2 = x.reshape(m, depth)
    y = x2 @ weights if ip.transpose else x2 @ weights.T
    if ip.bias_term:
        y += call.blob(1, "bias").reshape(1, n_out)
    return [y.reshape(*x.shape[:axis], n_out)]


@op("Embed")
def embed(call: Call):
    ep = call.pb.embed_param
    x = call.x
    table = call.blob(0, "weights")  # (input_dim, num_output)
    index = x.astype(np.int64)
    if np.any(index != x):
        raise call.invalid("the input holds non-integer indices")
    if index.size and (index.min() < 0 or index.max() >= table.shape[0]):
        raise call.invalid(f"an index is outside [0, {table.shape[0]})")
    y = table[index]
    if ep.bias_term:
        y = y + call.blob(1, "bias")
    return [y]
