"""CONVOLUTION:

``y[o, k] = sum over taps t, channels c of x[o*stride + t*dilation - pad, c] * w[t, c, k] + b[k]``

Input ``(H, W, C)``, taps fp16 HWCK ``(kh, kw, C, K)`` stored contiguously
(the taps descriptor's dims are ``(kh*kw, C, K)``; its strides are not used:
NCSDK 1.x compilers store ``(2K, 2K, 2)``, which does not describe the data),
an optional fp16 bias of ``K`` values, output ``(Ho, Wo, K)`` with ``Ho, Wo``
taken from the output buffer.  Padding follows the stage's pad style
(:func:`~.numerics.window_padding`); positions outside the input read zero.

Computed in float32 with BLAS matrix products, no Python loop over pixels:

* 3x3 kernels with stride 1, no dilation and at least
  :data:`WINOGRAD_MIN_CHANNELS` input channels (most of the arithmetic of VGG,
  GoogLeNet, ResNet, SqueezeNet): Winograd's minimal filtering F(2x2, 3x3)
  (Lavin & Gray, 2016), which computes each 2x2 block of outputs from a 4x4
  block of inputs with 16 products per channel pair instead of 36 -- 2.25x
  fewer multiplications, 1.7-1.8x faster here on 128-512 channel layers.  Its
  transforms only add, subtract and halve, so it is a different order of the
  same float32 sums: it differs from direct summation by float32 rounding
  (measured: 5e-7 of the largest output), three orders of magnitude below one
  fp16 unit (4.9e-4), like any change of summation order.  (The larger
  F(4x4, 3x3) would be 1.1-1.5x faster again, but its coefficients up to 8 and
  1/24 raise the float32 error to 1e-5 and change 1.3 % of the fp16 results
  instead of 0.35 %: not faithful enough for an emulator);
* everything else: im2col + one GEMM per block of output rows.
"""

from __future__ import annotations

import numpy as np

from ...errors import GraphFileError
from ...limits import MAX_EMULATOR_MACS, LimitError, check_elements
from ...lowering.ir import Op
from .memory import Workspace
from .numerics import check_window, window_padding
from .stage import StageSpec

OPS = (Op.CONVOLUTION,)

#: Bytes of im2col columns built at once, in one buffer reused for every block of
#: output rows: bounds the memory a big layer needs (VGG16's conv1_2 has 115 MB of
#: columns) and keeps the copy cache-friendly, while each GEMM stays large enough
#: (thousands of rows) for BLAS to run at full speed.
COLUMN_BLOCK_BYTES = 8 << 20


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, *, stride: tuple[int, int],
           pad: tuple[int, int], dilation: int, out_hw: tuple[int, int],
           workspace: Workspace | None = None) -> np.ndarray:
    """float32 convolution, HWC in and out.

    ``x``: ``(H, W, C)``; ``w``: ``(kh, kw, C, K)``; ``b``: ``(K,)`` or None;
    ``stride``/``pad``: ``(y, x)``; ``pad`` is the padding before the first
    row/column (the padding after is whatever ``out_hw`` needs).  Temporaries
    and the result come from ``workspace`` when given.
    """
    ws = workspace if workspace is not None else Workspace()
    kh, kw, c, k = w.shape
    ho, wo = out_hw
    sy, sx = stride
    macs = ho * wo * k * kh * kw * c
    if macs > MAX_EMULATOR_MACS:
        raise LimitError(f"the convolution needs {macs:.3g} multiply-accumulates, more than the "
                         f"emulator's limit of {MAX_EMULATOR_MACS:.3g} (limits.MAX_EMULATOR_MACS)")
    check_elements((ho, wo, k), 4, "the convolution's output")
    xp = zero_padded(x, pad, ((ho - 1) * sy + dilation * (kh - 1) + 1,
                              (wo - 1) * sx + dilation * (kw - 1) + 1), ws)
    wmat = w.reshape(kh * kw * c, k)
    out = ws.array("conv result", (ho, wo, k))
    if kh == kw == 1 and sy == sx == 1:
        np.matmul(xp[:ho, :wo].reshape(ho * wo, c), wmat, out=out.reshape(ho * wo, k))
    else:
        row_bytes = wo * kh * kw * c * 4
        rows = max(1, min(ho, COLUMN_BLOCK_BYTES // max(1, row_bytes)))
        columns = ws.array("im2col", (rows * wo, kh * kw * c))  # reused by every block
        s0, s1, s2 = xp.strides
        for r0 in range(0, ho, rows):
            r1 = min(ho, r0 + rows)
            n = (r1 - r0) * wo
            windows = np.lib.stride_tricks.as_strided(
                xp[r0 * sy:], shape=(r1 - r0, wo, kh, kw, c),
                strides=(sy * s0, sx * s1, dilation * s0, dilation * s1, s2), writeable=False)
            np.copyto(columns[:n].reshape(r1 - r0, wo, kh, kw, c), windows)  # im2col
            np.matmul(columns[:n], wmat, out=out[r0:r1].reshape(n, k))
    if b is not None:
        out += b
    return out


#: Winograd F(2x2, 3x3): input transform B^T (4x4), weight transform G (4x3),
#: output transform A^T (2x4).  ``y = A^T [(G g G^T) * (B^T d B)] A`` for a 4x4
#: input tile ``d`` and a 3x3 kernel ``g`` gives the tile's 2x2 outputs.
WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

#: Fewer input channels go through im2col: the transforms' cost is per input
#: channel and the saving per channel pair (measured, one thread: 3 channels
#: 0.36x the speed of im2col, 16 channels 0.9x, 32 channels 1.2x).
WINOGRAD_MIN_CHANNELS = 32

#: Bytes of transformed inputs and products handled at once (one band of tile rows).
WINOGRAD_BLOCK_BYTES = 4 << 20


def winograd_weights(w: np.ndarray) -> np.ndarray:
    """``(3, 3, C, K)`` taps -> ``(16, C, K)``: ``G g G^T`` for every channel pair,
    computed in float64 and rounded once to float32."""
    g = WINOGRAD_G
    u = np.einsum("ai,ijck,bj->abck", g, np.asarray(w, np.float64), g)
    return u.reshape(16, *w.shape[2:]).astype(np.float32)


def winograd_conv3x3(x: np.ndarray, u: np.ndarray, b: np.ndarray | None, *,
                     pad: tuple[int, int], out_hw: tuple[int, int],
                     workspace: Workspace | None = None) -> np.ndarray:
    """float32 3x3 stride-1 convolution, HWC in and out, by F(2x2, 3x3).

    ``u``: :func:`winograd_weights`; ``pad``: padding before the first
    row/column.  Output tile ``(i, j)`` covers outputs ``2i..2i+1, 2j..2j+1``
    and reads inputs ``2i..2i+3, 2j..2j+3`` of the padded input; one band of
    tile rows at a time: transform the inputs (``B^T d B``: adds only), one
    batch of 16 GEMMs ``(tiles x C) @ (C x K)``, transform back (``A^T m A``).
    Temporaries and the result come from ``workspace`` when given.

    ``x`` may also be the zero-padded input already split by column parity,
    ``(2*nth + 2, 2, ntw + 1, C)`` (:func:`split_columns`, or
    ``Memory.read_padded(split=True)``): column ``2q + p`` at ``[:, p, q]``.
    In that layout every operand of the column transform is a slice whose
    rows are contiguous (``ntw*C`` values) instead of ``C``-value runs two
    pixels apart, which numpy walks 3-5x faster on 64-128 channels; the
    arithmetic is the same, operand for operand.
    """
    ws = workspace if workspace is not None else Workspace()
    c, k = u.shape[1:]
    ho, wo = out_hw
    nth, ntw = -(-ho // 2), -(-wo // 2)
    wp = 2 * ntw + 2
    if x.ndim == 4:
        xs = x
        if pad != (0, 0) or xs.shape != (2 * nth + 2, 2, ntw + 1, c):
            raise ValueError(f"a column-split input must be the padded canvas "
                             f"{2 * nth + 2}x2x{ntw + 1}x{c}, not {xs.shape}")
    else:
        xs = split_columns(x, pad, (2 * nth + 2, wp), ws)
    out = ws.array("conv result", (2 * nth, 2 * ntw, k))
    rows = max(1, min(nth, WINOGRAD_BLOCK_BYTES // (16 * ntw * max(c, k) * 4)))
    # Scratch for one band, reused; a shorter last band uses a prefix of each, so
    # that every array stays contiguous (numpy's matmul leaves BLAS for others).
    rowwise_buf = ws.array("winograd rows", (4 * rows * wp * c,))
    v_buf = ws.array("winograd inputs", (16 * rows * ntw * c,))
    m_buf = ws.array("winograd products", (16 * rows * ntw * k,))
    half_buf = ws.array("winograd outputs", (8 * rows * ntw * k,))
    for i0 in range(0, nth, rows):
        n = min(rows, nth - i0)
        t = n * ntw
        # B^T d: combine input rows 2i + 0..3 of every tile of the band.
        d = [xs[2 * i0 + j:2 * (i0 + n) + j:2] for j in range(4)]
        r = rowwise_buf[:4 * n * wp * c].reshape(4, n, 2, ntw + 1, c)
        np.subtract(d[0], d[2], out=r[0])
        np.add(d[1], d[2], out=r[1])
        np.subtract(d[2], d[1], out=r[2])
        np.subtract(d[1], d[3], out=r[3])
        # (B^T d) B: the same along the columns, into v[row term, column term].
        v = v_buf[:16 * t * c].reshape(4, 4, n, ntw, c)
        for a in range(4):
            ra = r[a]  # columns 2q + 0..3 of tile column q: parity j % 2, index q + j // 2
            e = [ra[:, j % 2, j // 2:j // 2 + ntw] for j in range(4)]
            np.subtract(e[0], e[2], out=v[a, 0])
            np.add(e[1], e[2], out=v[a, 1])
            np.subtract(e[2], e[1], out=v[a, 2])
            np.subtract(e[1], e[3], out=v[a, 3])
        m = m_buf[:16 * t * k].reshape(16, t, k)
        np.matmul(v.reshape(16, t, c), u, out=m)
        m = m.reshape(4, 4, n, ntw, k)
        # A^T m A: rows, then columns, straight into the output's 2x2 positions.
        h2 = half_buf[:8 * t * k].reshape(2, 4, n, ntw, k)
        np.add(m[0], m[1], out=h2[0])
        h2[0] += m[2]
        np.subtract(m[1], m[2], out=h2[1])
        h2[1] -= m[3]
        o = out[2 * i0:2 * (i0 + n)].reshape(n, 2, ntw, 2, k)
        for a in range(2):
            np.add(h2[a, 0], h2[a, 1], out=o[:, a, :, 0])
            o[:, a, :, 0] += h2[a, 2]
            np.subtract(h2[a, 1], h2[a, 2], out=o[:, a, :, 1])
            o[:, a, :, 1] -= h2[a, 3]
    out = out[:ho, :wo]
    if b is not None:
        out += b
    return out


def split_columns(x: np.ndarray, pad: tuple[int, int], size: tuple[int, int],
                  workspace: Workspace | None = None) -> np.ndarray:
    """:func:`zero_padded` (``size[1]`` even), stored split by column parity:
    ``(size[0], 2, size[1] // 2, C)`` with padded column ``2q + p`` at ``[:, p, q]``."""
    h, w, c = x.shape
    (pt, pl), (hp, wp) = pad, size
    check_elements((hp, wp, c), 4, "the zero-padded input")
    shape = (hp, 2, wp // 2, c)
    if workspace is None:
        canvas = np.zeros(shape, x.dtype)
    else:
        canvas = workspace.array("padded", shape, x.dtype)
        canvas.fill(0)
    fill_split(canvas, x, pad)
    return canvas


def fill_split(canvas: np.ndarray, x: np.ndarray, pad: tuple[int, int]) -> None:
    """Copy ``x`` (H, W, C) to row/column ``pad`` of the column-split ``canvas``
    (see :func:`split_columns`; what falls outside it is dropped)."""
    hp, _, half, _ = canvas.shape
    (pt, pl), (h, w, _) = pad, x.shape
    rows, cols = max(0, min(h, hp - pt)), max(0, min(w, 2 * half - pl))
    for p in (0, 1):
        j0 = (p - pl) % 2  # the first input column landing at parity p
        src = x[:rows, j0:cols:2]
        q0 = (pl + j0) // 2
        canvas[pt:pt + rows, p, q0:q0 + src.shape[1]] = src


def zero_padded(x: np.ndarray, pad: tuple[int, int], size: tuple[int, int],
                workspace: Workspace | None = None) -> np.ndarray:
    """``x`` placed at row/column ``pad`` of a zero ``size[0] x size[1]`` canvas
    (rows/columns beyond the canvas are dropped: no window reads them).
    Returns ``x`` itself when no padding is needed."""
    h, w, c = x.shape
    (pt, pl), (hp, wp) = pad, size
    if pt == 0 and pl == 0 and hp <= h and wp <= w:
        return x
    check_elements((hp, wp, c), 4, "the zero-padded input")
    shape = (max(hp, 1), max(wp, 1), c)
    if workspace is None:
        canvas = np.zeros(shape, np.float32)
    else:
        canvas = workspace.array("padded", shape)
        canvas.fill(0)
    rows, cols = max(0, min(h, hp - pt)), max(0, min(w, wp - pl))
    canvas[pt:pt + rows, pl:pl + cols] = x[:rows, :cols]
    return canvas


def taps_hwck(spec: StageSpec, kh: int, kw: int, c: int, k: int) -> np.ndarray:
    """The stage's taps as float32 ``(kh, kw, C, K)``, checked against the taps dims."""
    dims = tuple(spec.ref("taps").dims)
    if any(dims) and dims != (kh * kw, c, k):
        raise GraphFileError(f"taps are {dims[0]}x{dims[1]}x{dims[2]} (taps x C x K) but a "
                             f"{kh}x{kw} kernel from {c} to {k} channels needs "
                             f"{kh * kw}x{c}x{k}")
    return spec.constant("taps", kh * kw * c * k).reshape(kh, kw, c, k)


def geometry(spec: StageSpec):
    """Kernel, stride, dilation and padding-before of a conv-like stage."""
    p = spec.stage.params
    check_window(p, "window")
    if p.dilation < 1:
        raise GraphFileError(f"dilation {p.dilation} must be >= 1")
    (h, w, _), (ho, wo, _) = spec.in_hwc, spec.out_hwc
    pad = (window_padding(p.pad_style, p.pad_y, h, ho, p.kernel_y, p.stride_y, p.dilation),
           window_padding(p.pad_style, p.pad_x, w, wo, p.kernel_x, p.stride_x, p.dilation))
    return p, pad


def prepare(spec: StageSpec):
    p, pad = geometry(spec)
    (_, _, c), (ho, wo, k) = spec.in_hwc, spec.out_hwc
    w = taps_hwck(spec, p.kernel_y, p.kernel_x, c, k)
    b = spec.bias(k)
    stride = (p.stride_y, p.stride_x)
    # The input is read already zero-padded (Memory.read_padded: the canvas
    # zero_padded would build), so the kernels see no padding to add.
    if (p.kernel_y, p.kernel_x, p.stride_y, p.stride_x, p.dilation) == (3, 3, 1, 1, 1) \
            and c >= WINOGRAD_MIN_CHANNELS:
        u = winograd_weights(w)
        size = (2 * -(-ho // 2) + 2, 2 * -(-wo // 2) + 2)

        def winograd(mem):
            xs = mem.read_padded(spec.stage.input, "input", pad, size, split=True)
            return winograd_conv3x3(xs, u, b, pad=(0, 0), out_hw=(ho, wo),
                                    workspace=mem.workspace)

        return winograd

    size = ((ho - 1) * p.stride_y + p.dilation * (p.kernel_y - 1) + 1,
            (wo - 1) * p.stride_x + p.dilation * (p.kernel_x - 1) + 1)

    def compute(mem):
        xp = mem.read_padded(spec.stage.input, "input", pad, size)
        return conv2d(xp, w, b, stride=stride, pad=(0, 0), dilation=p.dilation, out_hw=(ho, wo),
                      workspace=mem.workspace)

    return compute
