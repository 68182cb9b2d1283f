"""DETECTION_OUTPUT (SSD), SSD-Caffe's semantics, for one image:

1. decode every prior's box from the location predictions (``code_type`` 1
   CORNER, 2 CENTER_SIZE, 3 CORNER_SIZE; variances from the priors unless
   ``variance_encoded``);
2. per class other than ``background_label_id``: the priors scoring above
   ``confidence_threshold``, best first (at most ``top_k``), thinned by greedy
   non-maximum suppression at ``nms_threshold`` (IoU of normalised boxes;
   the threshold shrinks by ``eta`` after each kept box while above 0.5);
3. if more than ``keep_top_k`` remain, the ``keep_top_k`` best overall;
4. listed by class, best first within a class.

Operands: locations in the **input** slot (``P*4`` values, or
``P*num_classes*4`` without ``share_location``), class scores in the **taps**
slot (``P*num_classes``, after the softmax), priors in the **bias** slot
(PriorBox's ``(2, P*4)``).  Each is read in Caffe's planar order; a descriptor
without dims (NCSDK 1.x's bias slot) is read as the dense tensor the producer
writes.  Parameters: the packed op-parameter record (``opparams.DETECTION_OUTPUT_FORMAT``).

Output, as the vendor toolkit reads it: rows of 7 values (output buffer
``7 x R x 1``, x = 7): row 0 holds the number of detections in its first
value, rows 1.. ``[image_id 0, label, score, xmin, ymin, xmax, ymax]``; the
rest is zero.  Detections that do not fit the ``R - 1`` rows are dropped.
"""

from __future__ import annotations

import struct

import numpy as np

from ...errors import GraphFileError, UnsupportedNetworkError
from ...lowering.graphfile.opparams import DETECTION_OUTPUT_FORMAT
from ...lowering.ir import Location, Op
from .stage import StageSpec

OPS = (Op.DETECTION_OUTPUT,)

CORNER, CENTER_SIZE, CORNER_SIZE = 1, 2, 3
FIELDS = ("num_classes", "share_location", "background_label_id", "nms_threshold", "top_k",
          "code_type", "keep_top_k", "confidence_threshold", "variance_encoded", "eta")


def decode_boxes(loc: np.ndarray, priors: np.ndarray, variances: np.ndarray, code_type: int,
                 variance_encoded: bool) -> np.ndarray:
    """``loc``, ``priors``, ``variances``: ``(P, 4)`` -> decoded ``(P, 4)`` boxes."""
    var = np.ones_like(variances) if variance_encoded else variances
    pw, ph = priors[:, 2] - priors[:, 0], priors[:, 3] - priors[:, 1]
    if code_type == CORNER:
        return priors + var * loc
    if code_type == CORNER_SIZE:
        size = np.stack([pw, ph, pw, ph], axis=1)
        return priors + var * loc * size
    if code_type == CENTER_SIZE:
        pcx, pcy = (priors[:, 0] + priors[:, 2]) / 2, (priors[:, 1] + priors[:, 3]) / 2
        cx = var[:, 0] * loc[:, 0] * pw + pcx
        cy = var[:, 1] * loc[:, 1] * ph + pcy
        w = np.exp(var[:, 2] * loc[:, 2]) * pw
        h = np.exp(var[:, 3] * loc[:, 3]) * ph
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    raise UnsupportedNetworkError(f"detection output code type {code_type} is not known "
                                  f"(1 CORNER, 2 CENTER_SIZE, 3 CORNER_SIZE)")


def box_area(b: np.ndarray) -> np.ndarray:
    w, h = b[..., 2] - b[..., 0], b[..., 3] - b[..., 1]
    return np.where((w < 0) | (h < 0), 0, w * h)


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Caffe's JaccardOverlap of normalised boxes: one box against ``(n, 4)``."""
    lo = np.maximum(box[:2], others[:, :2])
    hi = np.minimum(box[2:], others[:, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), axis=1)
    disjoint = np.any(hi < lo, axis=1)
    union = box_area(box) + box_area(others) - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(disjoint, 0, inter / union)


def nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, nms_threshold: float,
        top_k: int, eta: float) -> list[int]:
    """Caffe's ApplyNMSFast: indices of the kept boxes, best first."""
    candidates = np.flatnonzero(scores > score_threshold)
    candidates = candidates[np.argsort(-scores[candidates], kind="stable")]
    if top_k > -1:
        candidates = candidates[:top_k]
    kept: list[int] = []
    threshold = nms_threshold
    for i in candidates:  # greedy and sequential by nature: one step per candidate box
        if kept and np.any(iou(boxes[i], boxes[kept]) > threshold):
            continue
        kept.append(int(i))
        if eta < 1 and threshold > 0.5:
            threshold *= eta
    return kept


def detection_output(loc, conf, priors, *, num_classes, share_location, background_label_id,
                     nms_threshold, top_k, code_type, keep_top_k, confidence_threshold,
                     variance_encoded, eta) -> np.ndarray:
    """float32 ``(n, 7)`` detections ``[0, label, score, xmin, ymin, xmax, ymax]``."""
    p = priors.shape[1] // 4
    prior_boxes, prior_var = priors[0].reshape(p, 4), priors[1].reshape(p, 4)
    loc_classes = 1 if share_location else num_classes
    loc = loc.reshape(p, loc_classes, 4)
    conf = conf.reshape(p, num_classes)
    decoded = [decode_boxes(loc[:, j], prior_boxes, prior_var, code_type, variance_encoded)
               for j in range(loc_classes)]
    found = []  # (score, label, prior index)
    for label in range(num_classes):
        if label == background_label_id:
            continue
        boxes = decoded[0 if share_location else label]
        for i in nms(boxes, conf[:, label], confidence_threshold, nms_threshold, top_k, eta):
            found.append((float(conf[i, label]), label, i))
    if keep_top_k > -1 and len(found) > keep_top_k:
        found = sorted(found, key=lambda f: -f[0])[:keep_top_k]
    found.sort(key=lambda f: (f[1], -f[0]))  # by class, best first within a class
    rows = [[0, label, score, *decoded[0 if share_location else label][i]]
            for score, label, i in found]
    return np.asarray(rows, np.float32).reshape(-1, 7)


def decode_params(raw: bytes) -> dict:
    size = struct.calcsize(DETECTION_OUTPUT_FORMAT)
    if len(raw) < size:
        raise GraphFileError("detection-output parameters are too short")
    values = dict(zip(FIELDS, struct.unpack_from(DETECTION_OUTPUT_FORMAT, raw), strict=True))
    if values["num_classes"] < 1 or values["num_classes"] > 100000:
        raise GraphFileError(f"detection output has {values['num_classes']} classes")
    values["share_location"] = bool(values["share_location"])
    values["variance_encoded"] = bool(values["variance_encoded"])
    return values


def planar_operand(spec: StageSpec, slot: str, count: int, producer_hwc):
    """Read kwargs and a reader for an operand of ``count`` values: its own
    descriptor, or (no dims) the dense ``producer_hwc`` tensor at its offset."""
    ref = spec.ref(slot)
    if ref.location is Location.BLOB:
        raise GraphFileError(f"its {slot} must be an activation, not a constant")
    x, y, z = ref.dims
    if x * y * z == count:
        layout = {}
    elif x * y * z == 0:
        h, w, c = producer_hwc
        layout = {"dims": (w, h, c), "strides": (2 * c, 2 * c * w, 2)}
    else:
        raise GraphFileError(f"its {slot} holds {x * y * z} values; {count} are needed")

    def read(mem):
        return mem.read(ref, slot, **layout).transpose(2, 0, 1).reshape(-1)

    return read


def prepare(spec: StageSpec):
    ref = spec.ref("op_params")
    params = decode_params(spec.constants[ref.constant].tobytes())
    n_cls = params["num_classes"]
    x, y, z = spec.ref("taps").dims
    conf_count = x * y * z
    if conf_count == 0 or conf_count % n_cls:
        x, y, z = spec.ref("input").dims
        loc_per_prior = 4 if params["share_location"] else 4 * n_cls
        conf_count = (x * y * z) // loc_per_prior * n_cls
    priors = conf_count // n_cls
    loc_count = priors * (4 if params["share_location"] else 4 * n_cls)
    read_loc = planar_operand(spec, "input", loc_count, (1, 1, loc_count))
    read_conf = planar_operand(spec, "taps", conf_count, (1, 1, conf_count))
    read_priors = planar_operand(spec, "bias", 8 * priors, (4 * priors, 1, 2))
    ho, wo, co = spec.out_hwc
    if wo * co != 7:
        raise GraphFileError(f"detection output writes rows of 7 values; the output buffer is "
                             f"{ho}x{wo}x{co} (HxWxC), expected Rx7x1")

    def compute(mem):
        found = detection_output(read_loc(mem), read_conf(mem),
                                 read_priors(mem).reshape(2, 4 * priors), **params)
        found = found[:max(ho - 1, 0)]
        out = np.zeros((ho, 7), np.float32)
        if ho:
            out[0, 0] = len(found)
            out[1:1 + len(found)] = found
        return out.reshape(ho, wo, co)

    return compute
