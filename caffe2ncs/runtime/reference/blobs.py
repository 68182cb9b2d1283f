"""Layers that rearrange or combine blobs (Concat, Slice, Eltwise, Flatten,
Reshape, Crop, Permute, Tile, Reduction, ArgMax, Parameter) and the common
custom layers of Caffe forks (Axpy, ShuffleChannel, Upsample, Interp, Reorg),
whose parameters are read from the prototxt text (our schema does not know
them) with :func:`~caffe2ncs.model.shapes.raw_value`.
"""

from __future__ import annotations

import numpy as np

from ...model.shapes import ShapeError, infer, raw_value
from ._registry import Call, op

PROD, SUM, MAX = 0, 1, 2
R_SUM, R_ASUM, R_SUMSQ, R_MEAN = 1, 2, 3, 4


def _axis(call: Call, axis: int, rank: int) -> int:
    if not -rank <= axis < rank:
        raise call.invalid(f"axis {axis} is out of range for a {rank}-axis input")
    return axis + rank if axis < 0 else axis


def _inferred(call: Call) -> tuple:
    """The top shapes by Caffe's shape rules (model/shapes.py), on the actual inputs."""
    try:
        return infer(call.layer, [tuple(b.shape) for b in call.bottoms])
    except ShapeError as err:
        raise call.invalid(str(err)) from None


@op("Concat")
def concat(call: Call):
    cp = call.pb.concat_param
    x = call.x
    if cp.HasField("concat_dim"):
        axis = cp.concat_dim
        if axis >= x.ndim:
            raise call.invalid(f"concat_dim {axis} is out of range for {x.shape}")
    else:
        axis = _axis(call, cp.axis, x.ndim)
    for i, b in enumerate(call.bottoms):
        if b.ndim != x.ndim or any(a != c for j, (a, c) in
                                   enumerate(zip(b.shape, x.shape, strict=True)) if j != axis):
            raise call.invalid(f"bottom {i} {b.shape} does not match bottom 0 {x.shape} "
                               f"outside axis {axis}")
    if len(call.bottoms) == 1:
        return [x]
    return [np.concatenate(call.bottoms, axis=axis)]


@op("Slice")
def slice_(call: Call):
    sp = call.pb.slice_param
    x = call.x
    if sp.HasField("slice_dim"):
        axis = sp.slice_dim
        if axis >= x.ndim:
            raise call.invalid(f"slice_dim {axis} is out of range for {x.shape}")
    else:
        axis = _axis(call, sp.axis, x.ndim)
    n, dim = len(call.layer.tops), x.shape[axis]
    points = list(sp.slice_point)
    if points:
        bounds = [0, *points, dim]
        if len(points) != n - 1 or any(b <= a for a, b in zip(bounds, bounds[1:], strict=False)):
            raise call.invalid(f"slice points {points} do not cut axis {axis} ({dim}) into "
                               f"{n} non-empty parts")
    else:
        if n == 0 or dim % n:
            raise call.invalid(f"cannot split {dim} evenly into {n} tops")
        points = [dim // n * i for i in range(1, n)]
    return np.split(x, points, axis=axis)


@op("Eltwise")
def eltwise(call: Call):
    ep = call.pb.eltwise_param
    call.need_bottoms(2, 1 << 16)
    xs = call.bottoms
    for i, b in enumerate(xs[1:], 1):
        if b.shape != xs[0].shape:
            raise call.invalid(f"bottom {i} {b.shape} differs from bottom 0 {xs[0].shape}")
    coeff = list(ep.coeff)
    if coeff and ep.operation != SUM:
        raise call.invalid("coeff is only allowed with operation: SUM")
    if coeff and len(coeff) != len(xs):
        raise call.invalid(f"{len(coeff)} coeff values for {len(xs)} bottoms")
    if ep.operation == SUM:
        # Caffe: top = 0, then top += coeff_i * bottom_i in order
        y = np.zeros_like(xs[0])
        for i, b in enumerate(xs):
            c = np.float32(coeff[i]) if coeff else 1
            y += b if c == 1 else call.dtype.type(c) * b
        return [y]
    if ep.operation == PROD:
        y = xs[0] * xs[1]
        for b in xs[2:]:
            y *= b
        return [y]
    if ep.operation == MAX:
        y = np.maximum(xs[0], xs[1])
        for b in xs[2:]:
            np.maximum(y, b, out=y)
        return [y]
    raise call.unsupported(f"unknown eltwise operation {ep.operation}")


@op("Flatten", "Reshape")
def reshape(call: Call):
    (shape,) = _inferred(call)
    return [call.x.reshape(shape)]


@op("Crop")
def crop(call: Call):
    call.need_bottoms(2)
    (shape,) = _inferred(call)
    x = call.x
    cp = call.pb.crop_param
    axis = _axis(call, cp.axis, x.ndim)
    offsets = list(cp.offset)
    index = []
    for i in range(x.ndim):
        if i < axis:
            index.append(slice(None))
            continue
        off = 0 if not offsets else offsets[0] if len(offsets) == 1 else offsets[i - axis]
        index.append(slice(off, off + shape[i]))
    return [x[tuple(index)]]


@op("Permute")
def permute(call: Call):
    x = call.x
    order: list[int] = []
    for o in call.pb.permute_param.order:
        if not 0 <= o < x.ndim or o in order:
            raise call.invalid(f"order {list(call.pb.permute_param.order)} is not a "
                               f"permutation of {x.ndim} axes")
        order.append(o)
    order += [i for i in range(x.ndim) if i not in order]
    return [np.ascontiguousarray(x.transpose(order))]


@op("Tile")
def tile(call: Call):
    tp = call.pb.tile_param
    x = call.x
    axis = _axis(call, tp.axis, x.ndim)
    if tp.tiles < 1:
        raise call.invalid("tiles must be positive")
    return [np.concatenate([x] * tp.tiles, axis=axis) if tp.tiles > 1 else x]


@op("Reduction")
def reduction(call: Call):
    rp = call.pb.reduction_param
    x = call.x
    axis = _axis(call, rp.axis, x.ndim)
    flat = x.reshape(x.shape[:axis] + (-1,))
    coeff = call.dtype.type(np.float32(rp.coeff))
    if rp.operation in (R_SUM, R_MEAN):
        y = flat.sum(axis=-1)
        if rp.operation == R_MEAN:
            coeff = coeff / call.dtype.type(flat.shape[-1])  # Caffe: coeff_ /= dim_
    elif rp.operation == R_ASUM:
        y = np.abs(flat).sum(axis=-1)
    elif rp.operation == R_SUMSQ:
        y = (flat * flat).sum(axis=-1)
    else:
        raise call.unsupported(f"unknown reduction operation {rp.operation}")
    if coeff != 1:
        y = y * coeff
    return [np.asarray(y, dtype=call.dtype)]


@op("ArgMax")
def argmax(call: Call):
    """Caffe's ArgMax: the ``top_k`` largest values (ties: the larger index
    first, as ``std::greater`` on (value, index) pairs sorts them), their
    indices, or with ``out_max_val`` and no axis both, as (N, 2, top_k)."""
    ap = call.pb.argmax_param
    x = call.x
    k = ap.top_k
    if ap.HasField("axis"):
        axis = _axis(call, ap.axis, x.ndim)
        moved = np.moveaxis(x, axis, -1)
    else:
        moved = x.reshape(x.shape[0], -1)
    dim = moved.shape[-1]
    if not 1 <= k <= dim:
        raise call.invalid(f"top_k {k} must be within [1, {dim}]")
    # Sorting the reversed axis stably by descending value puts, among equal
    # values, the larger original index first.
    order = np.argsort(-moved[..., ::-1], axis=-1, kind="stable")[..., :k]
    index = dim - 1 - order
    values = np.take_along_axis(moved, index, axis=-1)
    dt = call.dtype
    if ap.HasField("axis"):
        out = values if ap.out_max_val else index.astype(dt)
        return [np.ascontiguousarray(np.moveaxis(out, -1, axis)).astype(dt)]
    (shape,) = _inferred(call)
    if ap.out_max_val:
        out = np.concatenate([index.astype(dt), values], axis=-1)
    else:
        out = index.astype(dt)
    return [out.reshape(shape)]


@op("Parameter")
def parameter(call: Call):
    return [call.blob(0, "parameter")]


# -- custom layers of Caffe forks ----------------------------------------------------

@op("Axpy")
def axpy(call: Call):
    """SENet's Axpy: ``a * x + y`` with ``a`` (N, C) or (N, C, 1, 1) per channel."""
    call.need_bottoms(3)
    a, x, y = call.bottoms
    if x.shape != y.shape or a.shape[:2] != x.shape[:2] or a.size != x.shape[0] * x.shape[1]:
        raise call.invalid(f"bottoms {a.shape}, {x.shape}, {y.shape} do not fit "
                           "(scale (N, C[, 1, 1]), x and y of one shape)")
    a = a.reshape(x.shape[:2] + (1,) * (x.ndim - 2))
    return [a * x + y]


@op("ShuffleChannel")
def shuffle_channel(call: Call):
    """ShuffleNet's channel shuffle: channels seen as a (group, C/group) matrix,
    transposed."""
    x = call.x
    group = raw_value(call.layer, "shuffle_channel_param", "group")
    group = group if isinstance(group, int) else 1
    n, c = x.shape[:2]
    if group < 1 or c % group:
        raise call.invalid(f"group {group} does not divide the {c} channels")
    rest = x.shape[2:]
    y = x.reshape(n, group, c // group, *rest).swapaxes(1, 2)
    return [np.ascontiguousarray(y).reshape(x.shape)]


@op("Upsample")
def upsample(call: Call):
    """Two forks' Upsample.  With one bottom (YOLOv3 ports): nearest neighbour,
    ``out[h, w] = in[h // scale, w // scale]``.  With two (SegNet/ENet
    unpooling): the second bottom is a MAX pooling mask; each value goes to the
    position its mask names (``h * W_out + w``) in an output of zeros, sized
    ``upsample_h``/``upsample_w`` or the input times ``scale``."""
    x = call.x
    if x.ndim != 4:
        raise call.invalid(f"needs a 4-axis input, not {x.shape}")
    n, c, h, w = x.shape

    def param(name):
        v = raw_value(call.layer, "upsample_param", name)
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    scale = param("scale")
    sh = param("scale_h") or scale or 2
    sw = param("scale_w") or scale or 2
    if len(call.bottoms) == 1:
        if param("upsample_h") is not None or param("upsample_w") is not None:
            raise call.unsupported("upsample_h/upsample_w without a mask bottom")
        return [x.repeat(sh, axis=2).repeat(sw, axis=3)]
    call.need_bottoms(2)
    mask = call.bottoms[1]
    if mask.shape != x.shape:
        raise call.invalid(f"the mask {mask.shape} does not match the input {x.shape}")
    oh = param("upsample_h") or h * sh - (1 if raw_value(call.layer, "upsample_param",
                                                         "pad_out_h") is True else 0)
    ow = param("upsample_w") or w * sw - (1 if raw_value(call.layer, "upsample_param",
                                                         "pad_out_w") is True else 0)
    index = mask.reshape(n, c, h * w).astype(np.int64)
    if index.size and (index.min() < 0 or index.max() >= oh * ow):
        raise call.invalid("a mask index is outside the output (do the scale settings match "
                           "the pooling that made the mask?)")
    out = np.zeros((n, c, oh * ow), dtype=x.dtype)
    np.put_along_axis(out, index, x.reshape(n, c, h * w), axis=2)
    return [out.reshape(n, c, oh, ow)]


@op("Interp")
def interp(call: Call):
    """PSPNet/DeepLab's Interp: bilinear resizing with aligned corners
    (``caffe_cpu_interp2``), of the input cropped by ``pad_beg``/``pad_end``
    (which must be <= 0); the output size by the shape rules (``height``/
    ``width``, ``zoom_factor``, ``shrink_factor``, or the second bottom)."""
    x = call.x
    if x.ndim != 4:
        raise call.invalid(f"needs a 4-axis input, not {x.shape}")
    pad_beg = raw_value(call.layer, "interp_param", "pad_beg") or 0
    pad_end = raw_value(call.layer, "interp_param", "pad_end") or 0
    if pad_beg > 0 or pad_end > 0:
        raise call.invalid("only non-positive pad_beg/pad_end (cropping) are supported, "
                           "as in Caffe")
    (shape,) = _inferred(call)
    n, c, h, w = x.shape
    h1, w1 = h + pad_beg + pad_end, w + pad_beg + pad_end
    if h1 < 1 or w1 < 1:
        raise call.invalid("pad_beg/pad_end crop the whole input")
    h2, w2 = shape[2], shape[3]
    crop = x[:, :, -pad_beg:-pad_beg + h1, -pad_beg:-pad_beg + w1]
    if (h1, w1) == (h2, w2):
        return [np.ascontiguousarray(crop)]
    f32 = np.float32
    rh = f32(h1 - 1) / f32(h2 - 1) if h2 > 1 else f32(0)
    rw = f32(w1 - 1) / f32(w2 - 1) if w2 > 1 else f32(0)

    def axis_weights(r, size_in, size_out):
        pos = r * np.arange(size_out, dtype=f32)  # float32, as Caffe
        i0 = pos.astype(np.int64)  # truncation, as Caffe's int conversion
        step = (i0 < size_in - 1).astype(np.int64)
        lam1 = (pos - i0.astype(f32)).astype(call.dtype)
        return i0, i0 + step, 1 - lam1, lam1

    hi0, hi1, h0l, h1l = axis_weights(rh, h1, h2)
    wi0, wi1, w0l, w1l = axis_weights(rw, w1, w2)
    rows0, rows1 = crop[:, :, hi0], crop[:, :, hi1]
    w0l, w1l = w0l[None, None, None, :], w1l[None, None, None, :]
    top = w0l * rows0[..., wi0] + w1l * rows0[..., wi1]
    bottom = w0l * rows1[..., wi0] + w1l * rows1[..., wi1]
    return [h0l[None, None, :, None] * top + h1l[None, None, :, None] * bottom]


@op("Reorg")
def reorg(call: Call):
    """YOLOv2's reorg as Darknet (and the Caffe ports) compute it: not a plain
    space-to-depth; the input's memory is read as (C/s^2, H*s, W*s) and
    written as (C, H, W) order (``reorg_cpu`` with ``forward = reverse``)."""
    x = call.x
    if x.ndim != 4:
        raise call.invalid(f"needs a 4-axis input, not {x.shape}")
    stride = raw_value(call.layer, "reorg_param", "stride")
    s = stride if isinstance(stride, int) and stride > 0 else 2
    reverse = raw_value(call.layer, "reorg_param", "reverse") is True
    n, c, h, w = x.shape
    (shape,) = _inferred(call)
    if c % (s * s):
        raise call.invalid(f"{c} channels do not divide by stride^2 = {s * s}")
    tc = c // (s * s)
    if not reverse:
        # top[n, (dh*s + dw)*tc + c2, y, x] = in_as(tc, H*s, W*s)[n, c2, y*s + dh, x*s + dw]
        v = x.reshape(n, tc, h, s, w, s)  # (n, c2, y, dh, x, dw)
        y = v.transpose(0, 3, 5, 1, 2, 4)  # (n, dh, dw, c2, y, x)
    else:
        # the inverse:
        # out_as(tc, H*s, W*s)[n, c2, y*s + dh, x*s + dw] = in[n, (dh*s + dw)*tc + c2, y, x]
        v = x.reshape(n, s, s, tc, h, w)  # (n, dh, dw, c2, y, x)
        y = v.transpose(0, 3, 4, 1, 5, 2)  # (n, c2, y, dh, x, dw)
    return [np.ascontiguousarray(y).reshape(shape)]
