"""The device's memory as the graph file describes it, and tensor views into it.

A stage reads and writes tensors through buffer descriptors
(:class:`~caffe2ncs.lowering.ir.BufferRef`): a location, a byte offset, dims
``(x, y, z)`` = (width, height, channels) and byte strides along each.  The
emulator keeps one byte array per location, as the firmware does:

* the network **input** (the fp16 HWC tensor the host sent),
* the network **output** (what the host reads back),
* the **scratch** area holding every work buffer at its address (so an implicit
  concat -- several producers writing one buffer at different channel offsets
  with the concat's strides -- and a slice -- a reader with a channel offset and
  the full buffer's strides -- work exactly as on the device),
* the **constants** of the data section (read only).

:meth:`Memory.view` turns a descriptor into a numpy view of shape
``(y, x, z)`` = (H, W, C) whose strides are the descriptor's, without copying;
writing into a view writes the device memory.  Every view is bounds-checked
against its region first: a descriptor reaching past its buffer is a
:class:`~caffe2ncs.errors.GraphFileError`, never an out-of-bounds access.
"""

from __future__ import annotations

import numpy as np

from ...errors import GraphFileError
from ...limits import MAX_DEVICE_MEMORY_BYTES, check_elements
from ...lowering.ir import DataType, Graph, Location, StorageOrder

FP16 = np.dtype("<f2")


class Memory:
    """The four memory regions of one inference.

    ``input_hwc`` is the network input, already fp16 and shaped like
    :attr:`Graph.input` ``.shape_hwc``.  The scratch area and the output start
    zeroed (the device's contents there are undefined; zeros make every run
    reproducible).
    """

    def __init__(self, graph: Graph, input_hwc: np.ndarray, constants: dict[str, np.ndarray],
                 path: str | None = None, scratch: np.ndarray | None = None,
                 workspace: Workspace | None = None) -> None:
        self.path = path
        #: Host-side float32 temporaries of the kernels, reused from run to run.
        self.workspace = workspace if workspace is not None else Workspace()
        self.output_elements = graph.output.elements if graph.output is not None else 0
        size = _reach(graph, Location.WORK)
        out_size = max(self.output_elements, _reach(graph, Location.OUTPUT))
        if 2 * (size + out_size) > MAX_DEVICE_MEMORY_BYTES:
            raise GraphFileError(f"the graph's buffers need {2 * (size + out_size)} bytes of "
                                 f"device memory (scratch and output), more than the stick's "
                                 f"{MAX_DEVICE_MEMORY_BYTES // 2**20} MiB", path)
        if scratch is not None and scratch.shape == (size,) and scratch.dtype == FP16:
            scratch.fill(0)  # a previous run's area: cheaper than new pages
        else:
            scratch = np.zeros(size, FP16)
        self.regions: dict[Location, np.ndarray] = {
            Location.INPUT: np.ascontiguousarray(input_hwc, dtype=FP16).reshape(-1),
            Location.OUTPUT: np.zeros(out_size, FP16),
            Location.WORK: scratch,
        }
        self.constants = constants

    @property
    def scratch(self) -> np.ndarray:
        return self.regions[Location.WORK]

    @property
    def output(self) -> np.ndarray:
        """What the host reads back: the first ``Graph.output.elements`` fp16 values
        of the output region (1-D, in memory order: HWC for a dense output)."""
        return self.regions[Location.OUTPUT][:self.output_elements]

    def region(self, ref, what: str) -> np.ndarray:
        if ref.location is Location.BLOB:
            try:
                return self.constants[ref.constant]
            except KeyError:
                raise GraphFileError(f"{what} names constant {ref.constant!r}, which the graph "
                                     f"does not have", self.path) from None
        if ref.location is Location.NONE:
            raise GraphFileError(f"{what} is missing (an empty buffer slot)", self.path)
        return self.regions[ref.location]

    def view(self, ref, what: str, dims: tuple[int, int, int] | None = None,
             strides: tuple[int, int, int] | None = None, writable: bool = False) -> np.ndarray:
        """An ``(H, W, C)`` fp16 view of the tensor ``ref`` describes.

        ``dims``/``strides`` (x, y, z) override the descriptor's, for operands
        whose descriptor does not describe them (see :func:`operand_view`).
        """
        check_activation(ref, what, self.path)
        x, y, z = ref.dims if dims is None else dims
        sx, sy, sz = ref.strides if strides is None else strides
        base = self.region(ref, what)
        if ref.offset % 2 or sx % 2 or sy % 2 or sz % 2:
            raise GraphFileError(f"{what}: offset {ref.offset} and strides {sx},{sy},{sz} must be "
                                 f"multiples of 2 bytes (fp16 elements)", self.path)
        if min(x, y, z) == 0:
            return np.zeros((y, x, z), FP16)
        extent = ref.offset + (x - 1) * sx + (y - 1) * sy + (z - 1) * sz + 2
        size = base.size * 2
        if extent > size:
            name = {Location.INPUT: "the network input", Location.OUTPUT: "the network output",
                    Location.WORK: "the scratch area"}.get(ref.location,
                                                           f"constant {ref.constant!r}")
            raise GraphFileError(f"{what} ({x}x{y}x{z} at byte {ref.offset}, strides "
                                 f"{sx},{sy},{sz}) reaches byte {extent} of {name}, which has "
                                 f"{size} bytes", self.path)
        start = base[ref.offset // 2:]
        return np.lib.stride_tricks.as_strided(start, shape=(y, x, z), strides=(sy, sx, sz),
                                               writeable=writable)

    def read(self, ref, what: str, **kw) -> np.ndarray:
        """The tensor as float32 ``(H, W, C)``: a contiguous array of the
        :attr:`workspace` (role ``what``), the stage's to use until it ends."""
        view = self.view(ref, what, **kw)
        check_elements(view.shape, 4, f"{what} (as float32)")
        return fp16_to_float32(view, self.workspace.array(("read", what), view.shape))

    def read_padded(self, ref, what: str, pad: tuple[int, int], size: tuple[int, int],
                    split: bool = False) -> np.ndarray:
        """:meth:`read`, placed at row/column ``pad`` of a zero canvas of ``size``
        (rows and columns beyond it dropped: what a window kernel reads).  The
        tensor itself when no padding is needed (and not ``split``).  With
        ``split`` (``size[1]`` even), the canvas split by column parity,
        ``(size[0], 2, size[1] // 2, C)`` (see ``op_convolution.split_columns``).

        The fp16 bits are copied into a zero fp16 canvas and the whole canvas
        converted at once (zero bits are +0.0): one float32 pass instead of
        three (convert, clear a canvas, copy into it)."""
        from .op_convolution import fill_split

        view = self.view(ref, what)
        h, w, c = view.shape
        (pt, pl), (hp, wp) = pad, size
        if pt == 0 and pl == 0 and hp <= h and wp <= w and not split:
            check_elements(view.shape, 4, f"{what} (as float32)")
            return fp16_to_float32(view, self.workspace.array(("read", what), view.shape))
        check_elements((hp, wp, c), 4, f"{what} (zero-padded, as float32)")
        shape = (hp, 2, wp // 2, c) if split else (max(hp, 1), max(wp, 1), c)
        bits = self.workspace.array(("padded bits", what), shape, np.uint16)
        src = view.view(np.uint16)
        if split:
            bits.fill(0)
            fill_split(bits, src, pad)
        else:
            rows, cols = max(0, min(h, hp - pt)), max(0, min(w, wp - pl))
            bits[:pt] = 0
            bits[pt + rows:] = 0
            bits[pt:pt + rows, :pl] = 0
            bits[pt:pt + rows, pl + cols:] = 0
            bits[pt:pt + rows, pl:pl + cols] = src[:rows, :cols]
        return fp16_to_float32(bits.view(FP16), self.workspace.array(("read", what), shape))

    def write(self, ref, values: np.ndarray, what: str, relu: bool = False) -> None:
        """Round ``values`` (float32 ``(H, W, C)``) to fp16 and store them at ``ref``;
        with ``relu``, store ``fp16(max(values, 0))`` (see :func:`store_relu`).
        fp16 ``values`` are stored as they are."""
        dst = self.view(ref, what, writable=True)
        if values.shape != dst.shape:
            raise GraphFileError(f"{what}: the stage computes a {_hwc(values.shape)} tensor but "
                                 f"its output buffer is {_hwc(dst.shape)}", self.path)
        if ref.location is Location.BLOB:
            raise GraphFileError(f"{what} writes into constant {ref.constant!r}", self.path)
        if relu:
            store_relu(dst, values, self.workspace)
            return
        with np.errstate(over="ignore", invalid="ignore"):
            # float32 -> fp16: round to nearest even, overflow to inf
            np.copyto(dst, values, casting="unsafe")


def store_relu(dst: np.ndarray, values: np.ndarray, workspace: Workspace | None = None) -> None:
    """``dst[...] = fp16(max(values, 0))``, the ReLU post-operation and the
    stage's rounding, bit for bit what numpy's float32 -> fp16 cast of the
    ReLU's result gives.

    numpy's cast is scalar and branches on every element's range (1.6 ns per
    value on this host, 3x that on data with zeros at random places), so the
    rounding is done with whole-array float32 operations instead, one band of
    :data:`STORE_BLOCK` values at a time (so that the temporaries stay in
    cache; 0.95 against 2.0 ms per million values, measured):

    1. ``a = min(max(v, 0), 65536)``: the ReLU; beyond fp16's range everything
       rounds to infinity, which 65536 does too;
    2. ``bias = 2**(e + 13)`` for ``a``'s binary exponent ``e``, at least
       ``2**-1`` (``a * 8192`` with the mantissa bits cleared, then a maximum):
       ``a + bias`` is a float32 whose last place is fp16's unit at ``a``'s
       binary exponent (``2**(e-10)``; ``2**-24`` for fp16's subnormals), so the
       FPU's addition rounds ``a`` to fp16 precision, to nearest even;
       ``(a + bias) - bias`` is then that fp16 value, exactly, as float32;
    3. times ``2**-112``, the float32's bits shifted right by 13 are the fp16
       bits (fp16's exponent bias is 112 below float32's; fp16 subnormals
       become float32 subnormals, exactly), 65536 giving infinity's 0x7c00.

    Every float32 bit pattern was checked against the cast.  A NaN (which the
    bias arithmetic would not keep) shows in step 3 as a value above 0x7c00
    or, with the sign bit, a negative one; a band with one takes numpy's cast.
    """
    ws = workspace if workspace is not None else Workspace()
    if values.ndim == 0 or values.size == 0:
        _store_relu_cast(dst, values)
        return
    rows = max(1, STORE_BLOCK // max(1, values[0].size))
    shape = (min(rows, values.shape[0]), *values.shape[1:])
    a_buf = ws.array("store relu a", shape)
    b_buf = ws.array("store relu bias", shape)
    t_buf = ws.array("store relu bits", shape, np.int32)
    with np.errstate(over="ignore", invalid="ignore"):
        for r0 in range(0, values.shape[0], rows):
            v = values[r0:r0 + rows]
            d = dst[r0:r0 + rows]
            n = v.shape[0]
            a, b, t = a_buf[:n], b_buf[:n], t_buf[:n]
            np.clip(v, np.float32(0), np.float32(65536), out=a)
            np.multiply(a, np.float32(8192), out=b)
            bits = b.view(np.int32)
            np.bitwise_and(bits, np.int32(0x7F800000), out=bits)
            np.maximum(bits, np.int32(0x3F000000), out=bits)  # 2**-1
            a += b
            a -= b
            a *= np.float32(2.0 ** -112)
            np.right_shift(a.view(np.int32), 13, out=t)
            if t.view(np.uint32).max() > 0x7C00:  # a NaN (either sign)
                _store_relu_cast(d, v)
            else:
                np.copyto(d.view(np.uint16), t, casting="unsafe")


#: Values rounded at once by :func:`store_relu` (three float32 temporaries of
#: this size stay in the 2 MiB level-2 cache).
STORE_BLOCK = 1 << 17


def _store_relu_cast(dst: np.ndarray, values: np.ndarray) -> None:
    """:func:`store_relu` by numpy's cast (NaNs included: float ReLU keeps NaN).
    ReLU on the fp16 bits after the cast gives the same numbers as before it:
    rounding is monotonic and keeps the sign, and as int16 every fp16 with
    the sign bit set (-0 included) is below +0."""
    with np.errstate(over="ignore", invalid="ignore"):
        if values.size and np.isnan(values.max()):
            np.copyto(dst, np.maximum(values, np.float32(0)), casting="unsafe")
            return
        np.copyto(dst, values, casting="unsafe")
    bits = dst.view(np.int16)
    np.maximum(bits, np.int16(0), out=bits)


#: Every fp16 bit pattern's float32 value, for arrays with an infinity or a NaN.
_FP16_TO_FLOAT32 = np.arange(1 << 16, dtype=np.uint32).astype(np.uint16).view(FP16).astype(
    np.float32)


def fp16_to_float32(values: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """fp16 array (any strides) -> a contiguous float32 array of the same values
    (``out``, or a new one), exactly numpy's conversion.

    Finite values by moving the bits: the int16 sign-extended to int32 and
    shifted left by 13 puts the sign at bit 31 (with copies of it at bits
    28-30, cleared), the exponent and mantissa at float32's exponent and
    mantissa positions; that float32 times ``2**112`` (the difference of the
    exponent biases) is the value, subnormals included -- four array passes,
    0.2 ms per million values against 1.25 for a lookup in a 65536-entry table
    (measured), which an array with an infinity or a NaN still takes.
    """
    if out is None:
        out = np.empty(values.shape, np.float32)
    signed = values.view(np.int16)
    if signed.size and (signed.max() >= 0x7C00 or values.view(np.uint16).max() >= 0xFC00):
        np.take(_FP16_TO_FLOAT32, values.view(np.uint16), out=out)  # inf or NaN
        return out
    wide = out.view(np.int32)
    np.copyto(wide, signed)
    np.left_shift(wide, 13, out=wide)
    np.bitwise_and(wide, np.int32(-0x70000001), out=wide)  # 0x8fffffff
    np.multiply(out, np.float32(2.0 ** 112), out=out)
    return out


class Workspace:
    """Host-side temporaries reused from one inference to the next.

    Every kernel allocates float32 arrays as large as its tensors (the input
    converted from fp16, im2col columns, Winograd tiles, the result); fresh
    megabyte-size arrays come from the operating system as new pages, and
    faulting them in cost more than the arithmetic on mid-sized layers
    (measured: a 55x55x16 -> 64 Winograd convolution took 4.7 ms with new
    arrays, 0.65 ms with reused ones).  An :class:`~.executor.Emulator`
    hands one workspace from each run to the next, as it does the scratch area.

    :meth:`array` returns a view of a buffer kept per *role*; the stages run
    one at a time, so a role's array is the current stage's until the stage
    ends.  Different arrays a kernel uses at once need different roles.
    """

    def __init__(self) -> None:
        self._buffers: dict[object, np.ndarray] = {}

    def array(self, role: object, shape: tuple[int, ...], dtype=np.float32) -> np.ndarray:
        """An uninitialised contiguous array of ``shape`` for ``role``."""
        dtype = np.dtype(dtype)
        n = 1
        for d in shape:
            n *= int(d)
        key = (role, dtype)
        buf = self._buffers.get(key)
        if buf is None or buf.size < n:
            buf = np.empty(n, dtype)
            self._buffers[key] = buf
        return buf[:n].reshape(shape)


def check_activation(ref, what: str, path: str | None) -> None:
    """Activations are fp16 HWC, of a size the emulator can hold; anything
    else is not emulated."""
    from ...errors import UnsupportedNetworkError

    # (dims the strides do not span, e.g. beside a zero dimension, would
    # otherwise reach numpy as a shape past its index range)
    check_elements((ref.dims.y, ref.dims.x, ref.dims.z), 2, what)

    if ref.dtype is not DataType.FP16:
        raise UnsupportedNetworkError(f"{what} is {ref.dtype.value}; the emulator handles fp16 "
                                      f"tensors only", path)
    if ref.order is not StorageOrder.YXZ and ref.location is not Location.BLOB:
        raise UnsupportedNetworkError(f"{what} has storage order {ref.order.value}; the emulator "
                                      f"handles channel-minor YXZ (HWC) activations only", path)


def _reach(graph: Graph, location: Location) -> int:
    """fp16 elements needed to hold everything the references into ``location`` span."""
    end = 0
    for stage in graph.stages:
        for _slot, ref in stage.buffers():
            if ref.location is location:
                end = max(end, ref.offset + ref.extent)
    return -(-end // 2)


def _hwc(shape: tuple[int, ...]) -> str:
    return "x".join(str(s) for s in shape) + " (HxWxC)"


def constant_arrays(graph: Graph) -> dict[str, np.ndarray]:
    """Every constant as a read-only 1-D fp16 array over its bytes (padding included)."""
    out = {}
    for c in graph.constants:
        arr = np.frombuffer(c.data, dtype=FP16)
        out[c.name] = arr
    return out
