"""SSD's PriorBox and DetectionOutput, as in the SSD Caffe fork (``ssd``
branch: ``prior_box_layer.cpp``, ``detection_output_layer.cpp``,
``bbox_util.cpp``, CPU paths).

PriorBox, per feature-map cell (row-major) and per ``min_size`` (truncated
to an int, as the fork's ``int min_size_`` does): the square ``min_size``
box, then (with ``max_size``) the square ``sqrt(min_size * max_size)`` box,
then ``min_size * sqrt(ar)`` x ``min_size / sqrt(ar)`` for each aspect ratio
other than 1 (the list starts with 1; a ratio within 1e-6 of one already
listed is skipped; ``flip`` adds ``1/ar`` after each).  Centres are
``(w + offset) * step`` with ``step`` given or ``image / feature`` size;
corners are divided by the image size; ``clip`` clamps them to [0, 1]; the
second channel holds the variances (one value for all, or four per box).

DetectionOutput, per image:

1. decode each prior's location prediction (CORNER, CENTER_SIZE or
   CORNER_SIZE; variances from the priors unless
   ``variance_encoded_in_target``);
2. per class other than ``background_label_id``: the scores strictly above
   ``confidence_threshold`` (-FLT_MAX when unset), sorted by descending score
   with ties in prior order (a stable sort), the first ``top_k``; then greedy
   NMS: a box is kept when its Jaccard overlap with every box kept before it
   is ``<= nms_threshold`` (multiplied by ``eta`` after each kept box while
   above 0.5, when ``eta < 1``);
3. if more than ``keep_top_k`` boxes are kept over all classes, the
   ``keep_top_k`` best by score (ties: lower class, then NMS order first;
   Caffe's ``std::sort`` leaves exact ties unspecified);
4. rows ``[image, label, score, xmin, ymin, xmax, ymax]`` by image, then by
   ascending label, then in the order of step 2/3 (descending score).

With no detection at all the output is one row per image,
``[image, -1, -1, -1, -1, -1, -1]``, as in Caffe.  (OpenCV differs in its
output layout: it sorts each image's rows by score across labels and pads the
output with zero rows to ``keep_top_k``.)
"""

from __future__ import annotations

import math

import numpy as np

from ._registry import FLT_MAX, Call, op

CORNER, CENTER_SIZE, CORNER_SIZE = 1, 2, 3
f32 = np.float32


def prior_aspect_ratios(pp) -> list[float]:
    ratios = [1.0]
    for ar in pp.aspect_ratio:
        ar = float(f32(ar))
        if any(abs(ar - r) < 1e-6 for r in ratios):
            continue
        ratios.append(ar)
        if pp.flip:
            ratios.append(float(f32(1.0 / ar)))
    return ratios


@op("PriorBox")
def prior_box(call: Call):
    pp = call.pb.prior_box_param
    call.need_bottoms(2)
    feature, image = call.bottoms
    if feature.ndim != 4 or image.ndim != 4:
        raise call.invalid("PriorBox needs 4-axis feature-map and image bottoms")
    if not len(pp.min_size):
        raise call.invalid("min_size is required")
    if len(pp.max_size) and len(pp.max_size) != len(pp.min_size):
        raise call.invalid("max_size must have as many values as min_size")
    for lo, hi in zip(pp.min_size, pp.max_size, strict=False):
        if not hi > lo:
            raise call.invalid("each max_size must be greater than its min_size")
    variance = [float(f32(v)) for v in pp.variance] or [0.1]
    if len(variance) not in (1, 4):
        raise call.invalid(f"give 1 or 4 variances, not {len(variance)}")
    layer_h, layer_w = feature.shape[2:]
    if pp.HasField("img_h") or pp.HasField("img_w"):
        img_h, img_w = pp.img_h, pp.img_w
    elif pp.HasField("img_size"):
        img_h = img_w = pp.img_size
    else:
        img_h = img_w = 0
    if img_h == 0 or img_w == 0:
        img_h, img_w = image.shape[2:]
    if pp.HasField("step_h") or pp.HasField("step_w"):
        step_h, step_w = f32(pp.step_h), f32(pp.step_w)
    elif pp.HasField("step"):
        step_h = step_w = f32(pp.step)
    else:
        step_h = step_w = f32(0)
    if step_h == 0 or step_w == 0:
        step_w = f32(img_w) / f32(layer_w)
        step_h = f32(img_h) / f32(layer_h)
    offset = f32(pp.offset)

    # (width, height) of each prior at a cell, as float (Caffe's box_width/height)
    sizes: list[tuple[float, float]] = []
    ratios = prior_aspect_ratios(pp)
    for s, min_size in enumerate(pp.min_size):
        m = int(min_size)
        sizes.append((m, m))
        if len(pp.max_size):
            side = math.sqrt(m * int(pp.max_size[s]))
            sizes.append((side, side))
        for ar in ratios:
            if abs(ar - 1.0) < 1e-6:
                continue
            root = math.sqrt(ar)
            sizes.append((m * root, m / root))
    box = np.array(sizes, dtype=f32).astype(np.float64)  # (P, 2)
    cx = ((np.arange(layer_w, dtype=f32) + offset) * step_w).astype(np.float64)
    cy = ((np.arange(layer_h, dtype=f32) + offset) * step_h).astype(np.float64)
    cx = cx[None, :, None]
    cy = cy[:, None, None]
    half_w, half_h = box[None, None, :, 0] / 2, box[None, None, :, 1] / 2
    coords = np.stack(np.broadcast_arrays(
        (cx - half_w) / img_w, (cy - half_h) / img_h,
        (cx + half_w) / img_w, (cy + half_h) / img_h), axis=-1).astype(f32)  # (H, W, P, 4)
    coords = coords.reshape(-1)
    if pp.clip:
        coords = np.minimum(np.maximum(coords, f32(0)), f32(1))
    if len(variance) == 1:
        var = np.full(coords.shape, variance[0], dtype=f32)
    else:
        var = np.tile(np.array(variance, dtype=f32), coords.size // 4)
    return [np.stack([coords, var])[None].astype(call.dtype)]


def _box_size(b: np.ndarray) -> np.ndarray:
    """Caffe's BBoxSize for normalised boxes: 0 for an inverted box, else w*h."""
    w = b[..., 2] - b[..., 0]
    h = b[..., 3] - b[..., 1]
    return np.where((w < 0) | (h < 0), f32(0), w * h).astype(b.dtype)


def decode_boxes(loc: np.ndarray, priors: np.ndarray, variances: np.ndarray | None,
                 code_type: int) -> np.ndarray:
    """Caffe's DecodeBBox for (..., P, 4) predictions against (P, 4) priors, in
    float32 with Caffe's order of operations."""
    loc = loc.astype(f32)
    pxmin, pymin, pxmax, pymax = (priors[:, i] for i in range(4))
    if variances is not None:
        loc = loc * variances
    lx, ly, lx2, ly2 = (loc[..., i] for i in range(4))
    if code_type == CORNER:
        out = [pxmin + lx, pymin + ly, pxmax + lx2, pymax + ly2]
    elif code_type == CENTER_SIZE:
        pw = pxmax - pxmin
        ph = pymax - pymin
        pcx = (pxmin + pxmax) / f32(2)
        pcy = (pymin + pymax) / f32(2)
        cx = lx * pw + pcx
        cy = ly * ph + pcy
        w = np.exp(lx2) * pw
        h = np.exp(ly2) * ph
        out = [cx - w / f32(2), cy - h / f32(2), cx + w / f32(2), cy + h / f32(2)]
    elif code_type == CORNER_SIZE:
        pw = pxmax - pxmin
        ph = pymax - pymin
        out = [pxmin + lx * pw, pymin + ly * ph, pxmax + lx2 * pw, pymax + ly2 * ph]
    else:
        raise ValueError(f"unknown code_type {code_type}")
    return np.stack(out, axis=-1).astype(f32)


def _overlaps(box: np.ndarray, size: f32, others: np.ndarray, other_sizes: np.ndarray):
    """Caffe's JaccardOverlap (normalised) of one box with each of ``others``."""
    disjoint = ((others[:, 0] > box[2]) | (others[:, 2] < box[0]) |
                (others[:, 1] > box[3]) | (others[:, 3] < box[1]))
    iw = np.minimum(others[:, 2], box[2]) - np.maximum(others[:, 0], box[0])
    ih = np.minimum(others[:, 3], box[3]) - np.maximum(others[:, 1], box[1])
    inter = iw * ih
    valid = ~disjoint & (iw > 0) & (ih > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (size + other_sizes - inter)
    return np.where(valid, iou, f32(0))


def nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, nms_threshold: float,
        eta: float, top_k: int) -> list[int]:
    """Caffe's ApplyNMSFast: the indices kept, best first."""
    candidates = np.flatnonzero(scores > score_threshold)
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    if top_k > -1:
        order = order[:top_k]
    sizes = _box_size(boxes)
    kept: list[int] = []
    threshold = f32(nms_threshold)
    if eta >= 1:
        # The same decisions, one kept box at a time: it removes every later
        # candidate it overlaps by more than the threshold (IoU is symmetric).
        remaining = order
        while remaining.size:
            best, rest = remaining[0], remaining[1:]
            kept.append(int(best))
            iou = _overlaps(boxes[best], sizes[best], boxes[rest], sizes[rest])
            remaining = rest[iou <= threshold]
        return kept
    for idx in order:
        if kept:
            k = np.asarray(kept)
            if np.any(_overlaps(boxes[idx], sizes[idx], boxes[k], sizes[k]) > threshold):
                continue
        kept.append(int(idx))
        if eta < 1 and threshold > 0.5:
            threshold = f32(threshold * f32(eta))
    return kept


@op("DetectionOutput")
def detection_output(call: Call):
    dp = call.pb.detection_output_param
    if len(call.bottoms) == 4:
        raise call.unsupported("a fourth bottom (image sizes for unnormalised boxes)")
    call.need_bottoms(3)
    loc_blob, conf_blob, prior_blob = call.bottoms
    num_classes = dp.num_classes
    if num_classes < 1:
        raise call.invalid("num_classes is required")
    share = dp.share_location
    num_loc_classes = 1 if share else num_classes
    background = dp.background_label_id
    code_type = dp.code_type
    if code_type not in (CORNER, CENTER_SIZE, CORNER_SIZE):
        raise call.unsupported(f"unknown code_type {code_type}")
    encoded = dp.variance_encoded_in_target
    keep_top_k = dp.keep_top_k
    threshold = f32(dp.confidence_threshold) if dp.HasField("confidence_threshold") else -FLT_MAX
    nms_param = dp.nms_param
    nms_threshold = nms_param.nms_threshold
    top_k = nms_param.top_k if nms_param.HasField("top_k") else -1
    eta = float(f32(nms_param.eta))
    if nms_threshold < 0:
        raise call.invalid("nms_threshold must be non-negative")
    if not 0 < eta <= 1:
        raise call.invalid("eta must be in (0, 1]")

    num = loc_blob.shape[0]
    if prior_blob.ndim < 3:
        raise call.invalid(f"the prior blob {prior_blob.shape} is not (1, 2, priors*4)")
    num_priors = prior_blob.shape[2] // 4
    loc = loc_blob.reshape(num, -1).astype(f32)
    conf = conf_blob.reshape(conf_blob.shape[0], -1).astype(f32)
    if loc.shape[1] != num_priors * num_loc_classes * 4:
        raise call.invalid(f"{loc.shape[1]} location values per image; {num_priors} priors "
                           f"x {num_loc_classes} location classes x 4 expected")
    if conf.shape != (num, num_priors * num_classes):
        raise call.invalid(f"confidences {conf_blob.shape} do not hold {num_priors} priors x "
                           f"{num_classes} classes for {num} image(s)")
    prior_flat = prior_blob.reshape(-1).astype(f32)
    priors = prior_flat[:num_priors * 4].reshape(num_priors, 4)
    variances = None
    if not encoded:
        if prior_flat.size < num_priors * 8:
            raise call.invalid("the prior blob holds no variances")
        variances = prior_flat[num_priors * 4:num_priors * 8].reshape(num_priors, 4)

    rows: list[list[float]] = []
    for i in range(num):
        preds = loc[i].reshape(num_priors, num_loc_classes, 4).transpose(1, 0, 2)
        decoded = decode_boxes(preds, priors, variances, code_type)  # (loc classes, P, 4)
        scores = conf[i].reshape(num_priors, num_classes).T  # (classes, P)
        kept: dict[int, list[int]] = {}
        total = 0
        for c in range(num_classes):
            if c == background:
                continue
            boxes = decoded[0 if share else c]
            kept[c] = nms(boxes, scores[c], threshold, nms_threshold, eta, top_k)
            total += len(kept[c])
        if keep_top_k > -1 and total > keep_top_k:
            pairs = [(c, idx) for c in sorted(kept) for idx in kept[c]]
            pair_scores = np.array([scores[c, idx] for c, idx in pairs], dtype=f32)
            best = np.argsort(-pair_scores, kind="stable")[:keep_top_k]
            kept = {}
            for j in best:
                c, idx = pairs[j]
                kept.setdefault(c, []).append(idx)
        for c in sorted(kept):
            boxes = decoded[0 if share else c]
            for idx in kept[c]:
                rows.append([i, c, scores[c, idx], *boxes[idx]])
    if not rows:
        out = np.full((num, 7), -1, dtype=f32)
        out[:, 0] = np.arange(num)
    else:
        out = np.array(rows, dtype=f32)
    return [out.reshape(1, 1, -1, 7).astype(call.dtype)]
