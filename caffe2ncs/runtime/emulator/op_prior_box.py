"""PRIOR_BOX (SSD), SSD-Caffe's semantics: the default boxes of a feature map.

For every feature-map cell ``(h, w)`` (the input's height and width), centre
``((w + offset) * step_w, (h + offset) * step_h)``, and for every ``min_size``:
a square box of that size, then (with max sizes) a square of
``sqrt(min_size * max_size)``, then one box per aspect ratio ``ar`` other than 1
(``min_size * sqrt(ar)`` wide, ``min_size / sqrt(ar)`` high; ``1/ar`` added for
each ``ar`` when ``flip``; duplicates dropped).  Coordinates are
``[xmin, ymin, xmax, ymax]`` divided by the image size, clipped to [0, 1] when
``clip``.  ``step_w``/``step_h`` of 0 mean ``image size / feature-map size``.

Parameters: the ``float32[img_h, img_w, n_min, n_max, n_ar, n_var, flip, clip,
min..., max..., ar..., var..., step_w, step_h, offset]`` op-parameter constant
(an image size of 0 is taken from the image tensor in the taps slot).

Output, as Caffe's ``(2, N)`` top (boxes, then variances, ``N = H*W*priors*4``)
stored in a ``1 x N x 2`` (x, y, z) buffer: height ``N``, two channels.
"""

from __future__ import annotations

import numpy as np

from ...errors import GraphFileError
from ...lowering.ir import Op
from .stage import StageSpec

OPS = (Op.PRIOR_BOX,)


def expand_aspect_ratios(aspect_ratios, flip: bool) -> list[float]:
    """Caffe's list: 1, then each new ratio (and its inverse when ``flip``)."""
    out = [1.0]
    for ar in aspect_ratios:
        if any(abs(ar - a) < 1e-6 for a in out):
            continue
        out.append(ar)
        if flip:
            out.append(1.0 / ar)
    return out


def prior_boxes(layer_hw, image_hw, *, min_sizes, max_sizes, aspect_ratios, flip, clip,
                variances, step_hw=(0.0, 0.0), offset=0.5) -> np.ndarray:
    """float32 ``(2, N)``: row 0 the box coordinates, row 1 the variances."""
    (lh, lw), (ih, iw) = layer_hw, image_hw
    step_h = step_hw[0] or ih / lh
    step_w = step_hw[1] or iw / lw
    ratios = expand_aspect_ratios(aspect_ratios, flip)
    half = []  # (half width, half height) of each prior, in Caffe's order
    for s, min_size in enumerate(min_sizes):
        half.append((min_size / 2, min_size / 2))
        if max_sizes:
            side = np.sqrt(min_size * max_sizes[s])
            half.append((side / 2, side / 2))
        for ar in ratios:
            if abs(ar - 1.0) < 1e-6:
                continue
            half.append((min_size * np.sqrt(ar) / 2, min_size / np.sqrt(ar) / 2))
    half = np.asarray(half, np.float32)
    cy = ((np.arange(lh, dtype=np.float32) + np.float32(offset)) * np.float32(step_h))
    cx = ((np.arange(lw, dtype=np.float32) + np.float32(offset)) * np.float32(step_w))
    cy, cx = cy[:, None, None], cx[None, :, None]
    boxes = np.stack(np.broadcast_arrays(
        (cx - half[:, 0]) / np.float32(iw), (cy - half[:, 1]) / np.float32(ih),
        (cx + half[:, 0]) / np.float32(iw), (cy + half[:, 1]) / np.float32(ih)), axis=-1)
    boxes = boxes.reshape(-1)
    if clip:
        boxes = np.clip(boxes, 0, 1)
    var = np.broadcast_to(np.asarray(variances, np.float32), (boxes.size // 4, 4)).reshape(-1)
    return np.stack([boxes, var]).astype(np.float32)


def decode_params(raw: np.ndarray):
    """The op-parameter floats -> keyword arguments of :func:`prior_boxes`."""
    img_h, img_w, n_min, n_max, n_ar, n_var, flip, clip = raw[:8]
    counts = [int(v) for v in (n_min, n_max, n_ar, n_var)]
    if min(counts) < 0 or sum(counts) > raw.size - 11:
        raise GraphFileError(f"prior-box parameters give impossible counts {counts}")
    pos, lists = 8, []
    for n in counts:
        lists.append([float(v) for v in raw[pos:pos + n]])
        pos += n
    step_w, step_h, offset = (float(v) for v in raw[pos:pos + 3])
    min_sizes, max_sizes, ars, var = lists
    if not min_sizes or (max_sizes and len(max_sizes) != len(min_sizes)):
        raise GraphFileError(f"prior box needs min sizes (and as many max sizes), got "
                             f"{len(min_sizes)} and {len(max_sizes)}")
    if len(var) not in (1, 4):
        raise GraphFileError(f"prior box needs 1 or 4 variances, got {len(var)}")
    return (float(img_h), float(img_w)), dict(
        min_sizes=min_sizes, max_sizes=max_sizes, aspect_ratios=ars, flip=bool(flip),
        clip=bool(clip), variances=var, step_hw=(step_h, step_w), offset=offset)


def prepare(spec: StageSpec):
    ref = spec.ref("op_params")
    raw = spec.constants[ref.constant].view(np.uint8).view("<f4")
    if raw.size < 11:
        raise GraphFileError("prior-box parameters are too short")
    image_hw, kw = decode_params(raw)
    if not all(image_hw) and spec.has("taps"):
        x, y, _ = spec.ref("taps").dims
        image_hw = (image_hw[0] or float(y), image_hw[1] or float(x))
    if not all(image_hw):
        raise GraphFileError("prior box has no image size")
    h, w, _ = spec.in_hwc
    values = prior_boxes((h, w), image_hw, **kw)  # (2, N): does not depend on the data
    out = values.T.reshape(-1, 1, 2)  # (H=N, W=1, C=2)
    if out.shape != spec.out_hwc:
        raise GraphFileError(f"prior box gives {out.shape[0]} values per row, but the output "
                             f"buffer is {'x'.join(map(str, spec.out_hwc))} (HxWxC); "
                             f"expected {out.shape[0]}x1x2")

    def compute(mem):
        return out.copy()

    return compute
