"""DECONVOLUTION (transposed convolution), Caffe's semantics:

``y[i*stride - pad + t*dilation, k] += x[i, c] * W[c, k, t]`` for every input
position ``i`` and kernel tap ``t``, plus ``b[k]``.

The taps are stored the way the vendor compiler writes them: Caffe's
``(C_in, K_out, kh, kw)`` weights swapped to ``(K_out, C_in, ...)``, **rotated
by 180 degrees** and converted to HWCK, i.e. fp16 ``(kh, kw, C_in, K_out)`` with
``T[ty, tx] = W[kh-1-ty, kw-1-tx]`` -- the kernel a plain convolution of the
zero-upsampled input would use.  Output size comes from the output buffer
(Caffe: ``stride*(in-1) + dilation*(k-1) + 1 - 2*pad``); pad style ``caffe``
(or ``none``) with the stage's pads.  The TensorFlow pad styles are refused:
NCSDK 2.05 computes a wrong output shape for them (its "Wrong deconvolution
output shape" error) and what the device then does is unknown.

Computed as one GEMM (every input pixel times every tap) and a strided
scatter-add per tap (col2im).
"""

from __future__ import annotations

import numpy as np

from ...errors import UnsupportedNetworkError
from ...limits import check_elements
from ...lowering.ir import Op, PadStyle
from .numerics import check_window
from .op_convolution import taps_hwck
from .stage import StageSpec

OPS = (Op.DECONVOLUTION,)


def deconv2d(x: np.ndarray, t: np.ndarray, b: np.ndarray | None, *, stride: tuple[int, int],
             pad: tuple[int, int], dilation: int, out_hw: tuple[int, int]) -> np.ndarray:
    """float32; ``x`` ``(H, W, C)``, ``t`` the stored (rotated) taps ``(kh, kw, C, K)``."""
    kh, kw, c, k = t.shape
    h, w, _ = x.shape
    sy, sx = stride
    ho, wo = out_hw
    check_elements((h * w, kh * kw * k), 4, "the deconvolution's products")
    check_elements(((h - 1) * sy + dilation * (kh - 1) + 1, (w - 1) * sx + dilation * (kw - 1) + 1,
                    k), 4, "the deconvolution's full output")
    check_elements((ho, wo, k), 4, "the deconvolution's output")
    per_tap = x.reshape(h * w, c) @ t.transpose(2, 0, 1, 3).reshape(c, kh * kw * k)
    per_tap = per_tap.reshape(h, w, kh, kw, k)
    full = np.zeros(((h - 1) * sy + dilation * (kh - 1) + 1,
                     (w - 1) * sx + dilation * (kw - 1) + 1, k), np.float32)
    for ty in range(kh):  # ty, tx: Caffe's (unrotated) tap index
        for tx in range(kw):
            y0, x0 = ty * dilation, tx * dilation
            full[y0:y0 + (h - 1) * sy + 1:sy, x0:x0 + (w - 1) * sx + 1:sx] += \
                per_tap[:, :, kh - 1 - ty, kw - 1 - tx]
    out = np.zeros((ho, wo, k), np.float32)
    pt, pl = pad
    crop = full[pt:pt + ho, pl:pl + wo]
    out[:crop.shape[0], :crop.shape[1]] = crop
    if b is not None:
        out += b
    return out


def prepare(spec: StageSpec):
    p = spec.stage.params
    check_window(p, "window")
    if p.pad_style in (PadStyle.TF_SAME, PadStyle.TF_VALID):
        raise UnsupportedNetworkError(f"deconvolution with pad style {p.pad_style.value} is not "
                                      f"emulated (NCSDK 2.05 computes a wrong output shape for "
                                      f"it; use explicit Caffe padding)")
    (_, _, c), (ho, wo, k) = spec.in_hwc, spec.out_hwc
    t = taps_hwck(spec, p.kernel_y, p.kernel_x, c, k)
    b = spec.bias(k)

    def compute(mem):
        x = mem.read(spec.stage.input, "input")
        return deconv2d(x, t, b, stride=(p.stride_y, p.stride_x), pad=(p.pad_y, p.pad_x),
                        dilation=p.dilation, out_hw=(ho, wo))

    return compute
