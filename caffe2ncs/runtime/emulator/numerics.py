"""The device's numerics, in one place.

The model (``docs/emulator.md``):

* activations are stored as **fp16** between stages (IEEE binary16, round to
  nearest even; overflow gives +-inf as numpy's cast does);
* weights, biases and other parameters are the graph's **fp16** values;
* each stage computes in **float32** from those fp16 values -- products and
  sums (convolution and fully-connected accumulation), the bias, the fused
  post-operation -- and rounds **once**, when it stores its output.

So a convolution with a ReLU is ``fp16(relu(sum(fp32(x) * fp32(w)) + fp32(b)))``.
:func:`to_fp16` is that single rounding, made explicit for the kernels and the
tests; :func:`apply_post_op` is the post-operation, applied before it.
"""

from __future__ import annotations

import numpy as np

from ...errors import GraphFileError, UnsupportedNetworkError
from ...limits import MAX_KERNEL_TAPS, LimitError
from ...lowering.ir import Op, PadStyle, PostOp


def to_fp16(values: np.ndarray) -> np.ndarray:
    """Round float32/float64 values to the fp16 the device stores."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.asarray(values).astype(np.float16)


def fp16_to_fp32(values: np.ndarray) -> np.ndarray:
    return np.asarray(values, dtype=np.float16).astype(np.float32)


#: Post-operations the emulator applies, and the meaning of their parameter.
POST_OPS = {
    Op.NONE: "none",
    Op.BIAS: "none (the bias itself is added when the stage has a bias buffer)",
    Op.RELU: "max(x, 0)",
    Op.LEAKY_RELU: "x if x > 0 else slope * x (slope = float32 param)",
    Op.RELU_X: "min(max(x, 0), ceiling) (ceiling = float32 param)",
    Op.ELU: "x if x > 0 else alpha * (exp(x) - 1) (alpha = float32 param)",
}


def check_post_op(post: PostOp, pre_op: Op) -> None:
    """Raise for a pre-/post-operation the emulator does not model."""
    if pre_op is not Op.NONE:
        raise UnsupportedNetworkError(f"pre-operation {pre_op.value} is not emulated "
                                      f"(no known NCSDK compiler writes one)")
    if post.op not in POST_OPS:
        raise UnsupportedNetworkError(f"post-operation {post.op.value} is not emulated "
                                      f"(known: {', '.join(o.value for o in POST_OPS)})")
    if post.stride_x or post.stride_y:
        raise UnsupportedNetworkError(f"post-operation strides {post.stride_x},{post.stride_y} "
                                      f"are not emulated (all known graphs use 0,0)")


def apply_post_op(acc: np.ndarray, post: PostOp) -> np.ndarray:
    """The fused activation, in float32, before the output is rounded to fp16."""
    op = post.op
    if op in (Op.NONE, Op.BIAS):
        return acc
    if op is Op.RELU:
        return np.maximum(acc, np.float32(0), out=acc)
    param = np.float32(post.param_float)
    if op is Op.LEAKY_RELU:
        return np.where(acc > 0, acc, acc * param).astype(np.float32, copy=False)
    if op is Op.RELU_X:
        return np.clip(acc, np.float32(0), param, out=acc)
    if op is Op.ELU:
        with np.errstate(over="ignore"):
            neg = param * np.expm1(np.minimum(acc, 0))
        return np.where(acc > 0, acc, neg).astype(np.float32, copy=False)
    raise UnsupportedNetworkError(f"post-operation {op.value} is not emulated")


# ----------------------------------------------------------------------------- windows


def window_padding(style: PadStyle, pad: int, size_in: int, size_out: int, kernel: int,
                   stride: int, dilation: int = 1) -> int:
    """Padding before the first input row/column for one axis of a window op.

    * ``caffe`` (and ``none``): the stage's explicit pad, on both sides (the
      output size, Caffe's floor rule for convolution or ceil rule for pooling,
      is the output buffer's; windows reaching past ``size_in + pad`` read zeros
      for convolution and are clipped for pooling).
    * ``tf_same``: TensorFlow's SAME -- the total ``max((out-1)*stride + extent - in, 0)``
      split with the smaller half before (``total // 2``) and the rest after.
    * ``tf_valid``: none.

    The stage's pad fields are ignored for the TensorFlow styles (the vendor
    compiler writes 0 there).
    """
    if style is PadStyle.TF_VALID:
        return 0
    if style is PadStyle.TF_SAME:
        extent = dilation * (kernel - 1) + 1
        return max((size_out - 1) * stride + extent - size_in, 0) // 2
    return pad


def check_window(window, what: str) -> None:
    if window.kernel_x < 1 or window.kernel_y < 1:
        raise GraphFileError(f"{what}: kernel {window.kernel_x}x{window.kernel_y} is empty")
    if window.stride_x < 1 or window.stride_y < 1:
        raise GraphFileError(f"{what}: stride {window.stride_x}x{window.stride_y} must be >= 1")
    taps = window.kernel_x * window.kernel_y
    if taps > MAX_KERNEL_TAPS:
        raise LimitError(f"{what}: kernel {window.kernel_x}x{window.kernel_y} has {taps} taps, more "
                         f"than the emulator's limit of {MAX_KERNEL_TAPS} (limits.MAX_KERNEL_TAPS)")
