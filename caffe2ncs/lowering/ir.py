"""The graph IR: what the Neural Compute Stick executes, one stage at a time.

A :class:`Graph` is an ordered tuple of :class:`Stage` objects (the order is the
execution order and the order in the file), the :class:`Constant` buffers of
the file's data section (weights, biases, op-parameter arrays, in file order)
and a few header fields.  It is independent of the NCSDK version: op codes,
data-type codes and storage-order codes are symbolic here (:class:`Op`,
:class:`DataType`, :class:`StorageOrder`, ...) and each writer maps them to its
format's numbers (``caffe2ncs.lowering.graphfile.codes``).

Everything is a frozen dataclass; passes build new objects with
:func:`dataclasses.replace` (or :meth:`Graph.replace`).

Conventions (the device's, see ``docs/graph-format.md``):

* Activations are fp16, channel-minor ("HWC", storage order :attr:`StorageOrder.YXZ`).
  A buffer's ``dims`` are ``(x, y, z) = (width, height, channels)`` and its
  ``strides`` are byte distances between neighbours along x, y and z, so a dense
  HWC tensor has strides ``(2*C, 2*C*W, 2)`` (:func:`hwc_strides`).
* Convolution / fully-connected weights are fp16 "HWCK": ``dims = (kh*kw, C, K)``.
* Where a stage reads or writes is a :class:`BufferRef`: the network input, the
  network output, a constant in the data section (``BLOB``) or a work buffer in
  the device's scratch area (``WORK``).  Implicit concat is two stages writing
  into one work buffer at different ``offset`` with the concat's strides; a
  slice is a reader with a channel ``offset`` and the full buffer's strides.

A graph read from a file keeps every field either format stores, so writing it
back in the same format reproduces the file byte for byte (verified on the
vendor's NCSDK 2.05 files).  Fields one format does not store get the defaults
documented on each field.
"""

from __future__ import annotations

import dataclasses
import math
import struct
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

import numpy as np

#: Every constant in the data section starts on, and is zero-padded to, this many bytes.
CONSTANT_ALIGNMENT = 64

#: The ``implementation`` (optMask) the vendor compiler writes by default:
#: bit 31 = "default optimisation"; bits 27-30 may carry a per-stage SHAVE count.
DEFAULT_IMPLEMENTATION = 0x80000000


# --------------------------------------------------------------------------- enums


class GraphFormat(StrEnum):
    """The two incompatible NCSDK graph-file formats."""

    #: NCSDK 1.x, "graph version 2": 264-byte header, 227-byte stage records.
    NCSDK1 = "ncsdk1"
    #: NCSDK 2.x, "blob 2.3": pseudo-ELF header, magic 8708, relocation table.
    NCSDK2 = "ncsdk2"

    @property
    def version(self) -> tuple[int, int]:
        """The format version this package reads and writes: (2, 0) for the 1.x
        "graph version 2", (2, 3) for the 2.x "blob 2.3"."""
        return (2, 0) if self is GraphFormat.NCSDK1 else (2, 3)

    @property
    def description(self) -> str:
        return "NCSDK 1.x graph version 2" if self is GraphFormat.NCSDK1 else "NCSDK 2.x blob 2.3"


class Op(StrEnum):
    """A stage type (the vendor's ``StageType``), independent of the SDK version.

    The value is a stable lower-case name used in JSON and in generated stage
    names.  The numeric code differs between SDK versions; see
    ``graphfile/codes.py`` for the NCSDK 1.12 and 2.05 tables.  ``NONE``,
    ``RELU``, ``RELU_X``, ``LEAKY_RELU``, ``ELU`` and ``BIAS`` also serve as
    pre-/post-operations (:class:`PostOp`).
    """

    CONVOLUTION = "convolution"
    MAX_POOLING = "max_pooling"
    AVERAGE_POOLING = "average_pooling"
    SOFTMAX = "softmax"
    FULLY_CONNECTED = "fully_connected"
    NONE = "none"
    RELU = "relu"
    RELU_X = "relu_x"
    DEPTHWISE_CONVOLUTION = "depthwise_convolution"
    BIAS = "bias"
    PRELU = "prelu"
    LRN = "lrn"
    ELTWISE_SUM = "eltwise_sum"
    ELTWISE_PROD = "eltwise_prod"
    ELTWISE_MAX = "eltwise_max"
    SCALE = "scale"
    RELAYOUT = "relayout"
    SQUARE = "square"
    INNER_LRN = "inner_lrn"
    COPY = "copy"
    SIGMOID = "sigmoid"
    TANH = "tanh"
    DECONVOLUTION = "deconvolution"
    ELU = "elu"
    RESHAPE = "reshape"
    TO_PLANE_MAJOR = "to_plane_major"
    POWER = "power"
    CROP = "crop"
    TILE = "tile"
    REGION = "region"
    REORG = "reorg"
    CONVERT_U8_F16 = "convert_u8_f16"
    CONVERT_F32_F16 = "convert_f32_f16"
    MYRIADX_CONVOLUTION = "myriadx_convolution"
    MYRIADX_POOLING = "myriadx_pooling"
    MYRIADX_FULLY_CONNECTED = "myriadx_fully_connected"
    MYRIADX_POST_OPS = "myriadx_post_ops"
    CONVERT_HW_SW = "convert_hw_sw"  # code 37 in NCSDK 1.12 only
    STORAGE_ORDER_CONVERT = "storage_order_convert"  # code 37 in NCSDK 2.05 only
    PERMUTE = "permute"
    NORMALIZE = "normalize"
    PRIOR_BOX = "prior_box"
    DETECTION_OUTPUT = "detection_output"
    LEAKY_RELU = "leaky_relu"
    SUM_REDUCE = "sum_reduce"
    MAX_WITH_CONST = "max_with_const"
    RSQRT = "rsqrt"
    SCALE_WITH_SCALAR = "scale_with_scalar"
    PERMUTE_FLATTEN = "permute_flatten"  # NCSDK 2.05 only


#: Ops whose parameters are a :class:`ConvParams` (and whose 1.x op-params
#: buffer is ``int32[dilation]``).
CONV_OPS = frozenset({Op.CONVOLUTION, Op.DEPTHWISE_CONVOLUTION, Op.DECONVOLUTION})
#: Ops whose parameters are a :class:`PoolParams`.
POOL_OPS = frozenset({Op.MAX_POOLING, Op.AVERAGE_POOLING})


class DataType(StrEnum):
    """Element type of a buffer (both formats number these differently)."""

    FP16 = "fp16"
    FP32 = "fp32"
    FP64 = "fp64"
    FP8 = "fp8"
    INT64 = "int64"
    INT32 = "int32"


class StorageOrder(StrEnum):
    """Memory order of a 3-D buffer, written from the slowest to the fastest
    varying axis' letter as the vendor names them (``YXZ`` = rows, then
    columns, then channels: HWC, channel-minor)."""

    YXZ = "YXZ"
    ZYX = "ZYX"
    YZX = "YZX"
    XYZ = "XYZ"
    XZY = "XZY"
    ZXY = "ZXY"


class PadStyle(StrEnum):
    """How a window op pads (same codes 0-3 in both formats)."""

    NONE = "none"
    TF_VALID = "tf_valid"
    CAFFE = "caffe"
    TF_SAME = "tf_same"


class Location(StrEnum):
    """Where a buffer lives (the vendor's ``MemoryIndex``)."""

    #: No buffer (an unused slot).
    NONE = "none"
    #: The network input tensor; ``offset`` is a byte offset into it.
    INPUT = "input"
    #: The network output tensor; ``offset`` is a byte offset into it.
    OUTPUT = "output"
    #: A constant of the data section; ``constant`` names it.
    BLOB = "blob"
    #: A work buffer in the device's scratch area; ``work_index`` (4, 5, ...)
    #: names it and ``offset`` is its byte address within the scratch area.
    WORK = "work"


#: The location codes stored in both formats; work buffers use codes >= 4.
LOCATION_CODES = {Location.NONE: 0, Location.INPUT: 1, Location.OUTPUT: 2, Location.BLOB: 3}
FIRST_WORK_INDEX = 4


# --------------------------------------------------------------------------- geometry


class Dims3(NamedTuple):
    """Three sizes or byte strides along ``x`` (width), ``y`` (height), ``z`` (channels)."""

    x: int
    y: int
    z: int


ZERO3 = Dims3(0, 0, 0)


def hwc_strides(dims: Dims3 | tuple[int, int, int], elem_size: int = 2) -> Dims3:
    """Byte strides of a dense channel-minor (HWC, :attr:`StorageOrder.YXZ`) tensor:
    ``(elem*C, elem*C*W, elem)``.  For the output of one branch of an implicit
    concat, pass the *concat's* dims (all channels) and write at a channel offset."""
    x, _y, z = dims
    return Dims3(elem_size * z, elem_size * z * x, elem_size)


def hwck_taps_strides(k: int, c: int, elem_size: int = 2) -> Dims3:
    """Byte strides of HWCK taps with ``dims = (kh*kw, C, K)`` as the NCSDK 2.05
    compiler writes them: ``(elem*C*K, elem*K, elem)`` (verified on the vendor files)."""
    return Dims3(elem_size * c * k, elem_size * k, elem_size)


def align(n: int, alignment: int) -> int:
    """``n`` rounded up to a multiple of ``alignment`` (unchanged when already aligned)."""
    return (n + alignment - 1) // alignment * alignment


def work_buffer_size(dims: Dims3 | tuple[int, int, int], elem_size: int = 2) -> int:
    """Bytes the vendor compiler reserves in the scratch area for a work buffer of
    ``dims``: the tensor plus ``2*pad`` with ``pad = 2*(W+1)*C*elem`` (convolutions
    may write up to two rows and a pixel past their output), rounded up to 64.
    Verified against every work-buffer offset in the NCSDK 2.05 sample files."""
    x, y, z = dims
    pad = (5 // 2) * (x + 1) * z * elem_size
    return align(x * y * z * elem_size + 2 * pad, CONSTANT_ALIGNMENT)


class ScratchAllocator:
    """Hands out work buffers the way the vendor compiler does: indices 4, 5, ...
    and consecutive offsets of :func:`work_buffer_size` bytes.

    >>> alloc = ScratchAllocator()
    >>> alloc.allocate(Dims3(32, 32, 8))
    (4, 0)
    >>> alloc.allocate(Dims3(1, 1, 1))
    (5, 18496)
    """

    def __init__(self, first_index: int = FIRST_WORK_INDEX, first_offset: int = 0) -> None:
        self.next_index = first_index
        self.next_offset = first_offset

    def allocate(self, dims: Dims3 | tuple[int, int, int]) -> tuple[int, int]:
        """Reserve a buffer for a tensor of ``dims``; returns ``(work_index, offset)``."""
        index, offset = self.next_index, self.next_offset
        self.next_index += 1
        self.next_offset += work_buffer_size(dims)
        return index, offset

    @property
    def size(self) -> int:
        """Bytes reserved so far (the scratch area's size)."""
        return self.next_offset


# --------------------------------------------------------------------------- buffers


@dataclass(frozen=True)
class BufferRef:
    """One buffer a stage reads or writes (a "buffer descriptor").

    ``dims``/``strides`` may be all zero where the format stores none (the 1.x
    bias and op-params slots, and the 2.x bias descriptor as the vendor writes
    it); the element count then follows from the op (a bias has one value per
    output channel).
    """

    #: Sizes (x = width, y = height, z = channels); for taps ``(kh*kw, C, K)``.
    dims: Dims3 = ZERO3
    #: Byte distance between neighbours along x, y, z.
    strides: Dims3 = ZERO3
    #: Which memory: input, output, a constant (BLOB), a work buffer, or none.
    location: Location = Location.NONE
    #: Byte offset: into the input/output tensor, into the scratch area (WORK:
    #: the buffer's address there), or into the constant (BLOB; always 0 in
    #: graphs read from a file, and 0 is all the writers accept).
    offset: int = 0
    #: BLOB only: the :attr:`Constant.name` of the data.
    constant: str | None = None
    #: WORK only: the work buffer's location code as stored (4, 5, ...).
    #: References with the same index denote the same buffer.
    work_index: int = 0
    #: Element type (2.x stores it per buffer, 1.x once per stage).
    dtype: DataType = DataType.FP16
    #: Storage order (2.x stores it per buffer, 1.x once per stage).
    order: StorageOrder = StorageOrder.YXZ

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", Dims3(*self.dims))
        object.__setattr__(self, "strides", Dims3(*self.strides))
        if self.location is Location.BLOB:
            if not self.constant:
                raise ValueError("a BLOB buffer reference must name its constant")
        elif self.constant is not None:
            raise ValueError(f"a {self.location.value} buffer reference cannot name a constant")
        if self.location is Location.WORK:
            if self.work_index < FIRST_WORK_INDEX:
                raise ValueError(f"work buffer index must be >= {FIRST_WORK_INDEX}, "
                                 f"got {self.work_index}")
        elif self.work_index != 0:
            raise ValueError(f"work_index is only meaningful for WORK buffers "
                             f"(got {self.work_index})")
        if self.offset < 0 or min(self.dims) < 0 or min(self.strides) < 0:
            raise ValueError("buffer offsets, dims and strides cannot be negative")

    # -- constructors a lowering pass uses

    @classmethod
    def input(cls, dims: tuple[int, int, int], strides: tuple[int, int, int] | None = None,
              offset: int = 0) -> BufferRef:
        """The network input (dense HWC fp16 unless ``strides`` say otherwise)."""
        strides = strides or hwc_strides(dims)
        return cls(Dims3(*dims), Dims3(*strides), Location.INPUT, offset)

    @classmethod
    def output(cls, dims: tuple[int, int, int], strides: tuple[int, int, int] | None = None,
               offset: int = 0) -> BufferRef:
        """The network output (dense HWC fp16 unless ``strides`` say otherwise)."""
        strides = strides or hwc_strides(dims)
        return cls(Dims3(*dims), Dims3(*strides), Location.OUTPUT, offset)

    @classmethod
    def work(cls, index: int, offset: int, dims: tuple[int, int, int],
             strides: tuple[int, int, int] | None = None) -> BufferRef:
        """Work buffer ``index`` at scratch address ``offset`` (see :class:`ScratchAllocator`)."""
        return cls(Dims3(*dims), Dims3(*(strides or hwc_strides(dims))), Location.WORK, offset,
                   work_index=index)

    @classmethod
    def blob(cls, constant: str, dims: tuple[int, int, int] = ZERO3,
             strides: tuple[int, int, int] = ZERO3, *, dtype: DataType = DataType.FP16,
             order: StorageOrder = StorageOrder.YXZ) -> BufferRef:
        """Constant ``constant`` of the data section."""
        return cls(Dims3(*dims), Dims3(*strides), Location.BLOB, 0, constant, dtype=dtype,
                   order=order)

    # -- derived

    @property
    def elements(self) -> int:
        """``x*y*z``."""
        return self.dims.x * self.dims.y * self.dims.z

    @property
    def extent(self) -> int:
        """Bytes spanned from the first to the last element (inclusive), from the
        strides; 0 when any dim is 0.  Element size is 2 (fp16) unless ``dtype``
        says otherwise."""
        if min(self.dims) == 0:
            return 0
        (x, y, z), (sx, sy, sz) = self.dims, self.strides
        return (x - 1) * sx + (y - 1) * sy + (z - 1) * sz + element_size(self.dtype)


def element_size(dtype: DataType) -> int:
    return {DataType.FP16: 2, DataType.FP32: 4, DataType.FP64: 8, DataType.FP8: 1,
            DataType.INT64: 8, DataType.INT32: 4}[dtype]


@dataclass(frozen=True)
class TensorDesc:
    """The network input or output as the host sees it."""

    dims: Dims3
    strides: Dims3
    dtype: DataType = DataType.FP16
    order: StorageOrder = StorageOrder.YXZ

    @property
    def elements(self) -> int:
        return self.dims.x * self.dims.y * self.dims.z

    @property
    def shape_hwc(self) -> tuple[int, int, int]:
        """``(height, width, channels)``."""
        return (self.dims.y, self.dims.x, self.dims.z)


# --------------------------------------------------------------------------- constants


@dataclass(frozen=True)
class Constant:
    """One buffer of the data section: weights, biases or an op-parameter array.

    ``data`` holds the exact bytes of the file, always a multiple of
    :data:`CONSTANT_ALIGNMENT` (64) bytes: the constructor zero-pads it, which is
    the alignment both formats use.  Padding the compiler chose on top of that
    (NCSDK 2.05 reserves taps as if ``K`` were a multiple of 8) is part of
    ``data``.
    """

    #: Unique within the graph, e.g. ``"conv1/taps"``.
    name: str
    #: The bytes, zero-padded to a multiple of 64.
    data: bytes
    #: numpy name of the element type, for display and :meth:`array`: ``"float16"``
    #: for weights/biases, ``"int32"``/``"uint32"``/``"float32"`` for op params,
    #: ``"uint8"`` for packed records (DetectionOutput).  Not stored in either
    #: format: readers infer it from the slot that references the constant.
    dtype: str = "float16"

    def __post_init__(self) -> None:
        data = bytes(self.data)
        if len(data) % CONSTANT_ALIGNMENT:
            data += bytes(CONSTANT_ALIGNMENT - len(data) % CONSTANT_ALIGNMENT)
        object.__setattr__(self, "data", data)
        np.dtype(self.dtype)  # raises TypeError for an unknown dtype name

    @classmethod
    def from_array(cls, name: str, array: np.ndarray | list | tuple, dtype: str | None = None,
                   *, min_size: int = 0) -> Constant:
        """A constant from ``array`` cast to ``dtype`` (default: fp16 for floats,
        int32 for integers), little-endian, C order, zero-padded to ``min_size``
        bytes and then to a multiple of 64."""
        arr = np.asarray(array)
        if dtype is None:
            dtype = "float16" if arr.dtype.kind in "fc" or arr.dtype == object else "int32"
        raw = np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()
        if len(raw) < min_size:
            raw += bytes(min_size - len(raw))
        return cls(name, raw, np.dtype(dtype).name)

    @classmethod
    def hwck_taps(cls, name: str, kchw: np.ndarray, *, pad_k_to: int = 8) -> Constant:
        """Convolution weights from Caffe ``(K, C, kh, kw)`` to fp16 HWCK, with the
        space reserved as if ``K`` were a multiple of ``pad_k_to`` (what NCSDK 2.05
        does; use 1 for no reservation).  Reference the result with
        ``dims=(kh*kw, C, K)`` and :func:`hwck_taps_strides`.

        Fully-connected weights: pass Caffe's ``(K, C*H*W)`` reshaped to
        ``(K, C, H, W)`` so that the taps follow the HWC order of the activation
        they multiply, and reference them with ``dims=(1, H*W*C, K)``; a 2-D
        ``(K, C)`` array is taken as ``(K, C, 1, 1)``."""
        w = np.asarray(kchw)
        if w.ndim == 2:  # fully connected (K, C)
            w = w[:, :, None, None]
        k, c, kh, kw = w.shape
        hwck = np.transpose(w, (2, 3, 1, 0))
        k_padded = -(-k // pad_k_to) * pad_k_to if pad_k_to > 1 else k
        return cls.from_array(name, hwck, "float16", min_size=kh * kw * c * k_padded * 2)

    def array(self) -> np.ndarray:
        """All of ``data`` (padding included) as a 1-D array of ``dtype``."""
        dt = np.dtype(self.dtype).newbyteorder("<")
        n = len(self.data) // dt.itemsize
        return np.frombuffer(self.data, dtype=dt, count=n)

    @property
    def size(self) -> int:
        return len(self.data)


# --------------------------------------------------------------------------- op parameters


@dataclass(frozen=True)
class Window:
    """Kernel window geometry (the fields named radix/stride/pad in the formats)."""

    kernel_x: int
    kernel_y: int
    stride_x: int = 1
    stride_y: int = 1
    pad_x: int = 0
    pad_y: int = 0
    pad_style: PadStyle = PadStyle.NONE

    def __post_init__(self) -> None:
        for name in ("kernel_x", "kernel_y", "stride_x", "stride_y", "pad_x", "pad_y"):
            if not 0 <= getattr(self, name) <= 0xFFFFFFFF:
                raise ValueError(f"{name} {getattr(self, name)} is not a 32-bit unsigned value")
        object.__setattr__(self, "pad_style", PadStyle(self.pad_style))


@dataclass(frozen=True)
class PoolParams(Window):
    """Parameters of MAX_POOLING / AVERAGE_POOLING."""


@dataclass(frozen=True)
class ConvParams(Window):
    """Parameters of CONVOLUTION / DEPTHWISE_CONVOLUTION / DECONVOLUTION.

    ``dilation`` is inline in 2.x; 1.x stores it in the op-params buffer
    (``int32[dilation]``), which 2.05 also writes as an unreferenced constant
    after the bias."""

    dilation: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.dilation <= 0x7FFFFFFF:
            raise ValueError(f"dilation {self.dilation} is not in 1..2**31-1")


@dataclass(frozen=True)
class SoftmaxParams:
    """SOFTMAX: the axis (inline in 2.x; ``int32[axis]`` op params in 1.x)."""

    axis: int = 1


@dataclass(frozen=True)
class LrnParams:
    """LRN / INNER_LRN: the window size (2.x inline; 1.x kernel fields, an
    assumption).  ``k, alpha, beta`` are an fp16 ``[k, alpha, beta, 0]`` constant
    in the stage's ``bias`` slot in both formats."""

    size: int


@dataclass(frozen=True)
class OffsetParams:
    """CROP / RESHAPE: offsets along x, y, z (2.x inline; 1.x CROP stores
    ``uint32[off_x, off_y, off_z]`` op params).  NCSDK 2.05 writes a RESHAPE's
    output dims (x, y, z) in these fields."""

    offset_x: int = 0
    offset_y: int = 0
    offset_z: int = 0


@dataclass(frozen=True)
class PowerParams:
    """POWER: ``(shift + scale*x) ** power`` (2.x inline float32; 1.x
    ``float32[shift, scale, power]`` op params)."""

    shift: float = 0.0
    scale: float = 1.0
    power: float = 1.0

    def __post_init__(self) -> None:
        # Canonicalise to float32 so that a read graph equals the one written.
        for name in ("shift", "scale", "power"):
            value = float(np.float32(getattr(self, name)))
            if not math.isfinite(value):
                raise ValueError(f"power {name} {getattr(self, name)} is not a finite float32")
            object.__setattr__(self, name, value)


OpParams = ConvParams | PoolParams | SoftmaxParams | LrnParams | OffsetParams | PowerParams

#: Which parameter class each op requires (ops not listed take none).
PARAMS_FOR_OP: dict[Op, type] = {
    **{op: ConvParams for op in CONV_OPS},
    **{op: PoolParams for op in POOL_OPS},
    Op.SOFTMAX: SoftmaxParams,
    Op.LRN: LrnParams,
    Op.INNER_LRN: LrnParams,
    Op.CROP: OffsetParams,
    Op.RESHAPE: OffsetParams,
    Op.POWER: PowerParams,
}


@dataclass(frozen=True)
class PostOp:
    """An activation fused after a stage (or, for :attr:`Stage.pre_op`, only the op).

    ``param`` is the raw 32-bit word the formats store (1.x ``post_param1``,
    2.x ``opX``): float32 bits of the slope / alpha / ceiling for LEAKY_RELU,
    ELU, RELU_X; usually 0 for RELU.  ``stride_x``/``stride_y`` are the
    post-op strides (0 in every file seen).
    """

    op: Op = Op.NONE
    param: int = 0
    stride_x: int = 0
    stride_y: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.param <= 0xFFFFFFFF:
            raise ValueError(f"post-op param must be a 32-bit word, got {self.param}")

    @classmethod
    def relu(cls) -> PostOp:
        return cls(Op.RELU)

    @classmethod
    def bias(cls) -> PostOp:
        """"Add the bias", what NCSDK 2.05 writes for a conv/FC with no activation."""
        return cls(Op.BIAS)

    @classmethod
    def leaky_relu(cls, slope: float) -> PostOp:
        return cls(Op.LEAKY_RELU, float32_bits(slope))

    @classmethod
    def relu_x(cls, ceiling: float) -> PostOp:
        return cls(Op.RELU_X, float32_bits(ceiling))

    @classmethod
    def elu(cls, alpha: float) -> PostOp:
        return cls(Op.ELU, float32_bits(alpha))

    @property
    def param_float(self) -> float:
        """``param`` read as a float32."""
        return struct.unpack("<f", struct.pack("<I", self.param))[0]


def float32_bits(value: float) -> int:
    return struct.unpack("<I", struct.pack("<f", value))[0]


NO_POST_OP = PostOp()

#: The buffer slots of a stage, in the order both formats serialise them.
BUFFER_SLOTS = ("input", "output", "taps", "bias", "op_params")


@dataclass(frozen=True)
class Stage:
    """One device operation.

    Slots: ``input`` (the 1.x "data" buffer), ``output``, ``taps`` (weights; the
    second operand of eltwise ops; Normalize's scales; PriorBox's image input),
    ``bias`` (bias; LRN's fp16 ``[k, alpha, beta, 0]``; PReLU's slopes),
    ``op_params`` (an op-parameter array: 1.x dilation/axis/crop/power, permute
    order, normalize flags, prior-box and detection-output records).
    DetectionOutput reads three activations through ``input``, ``taps`` and
    ``bias`` (presumably Caffe's bottom order: loc, conf, priors).
    """

    #: The operation.
    op: Op
    #: 1.x stores it (ASCII, <= 100 bytes); 2.x stores no names, its reader
    #: names stages ``"<op>_<index>"``.
    name: str = ""
    #: Op-specific parameters; the class is fixed per op (:data:`PARAMS_FOR_OP`).
    params: OpParams | None = None
    #: The tensor the stage reads (the 1.x "data" buffer).
    input: BufferRef | None = None
    #: The tensor the stage writes.
    output: BufferRef | None = None
    #: Weights, or a second operand (see the class docstring).
    taps: BufferRef | None = None
    #: Bias, LRN parameters, PReLU slopes, or a third operand.
    bias: BufferRef | None = None
    #: An op-parameter array (a BLOB constant).
    op_params: BufferRef | None = None
    #: Pre-operation (only the op; NONE in every known file).
    pre_op: Op = Op.NONE
    #: Post-operation (fused activation, or BIAS).
    post_op: PostOp = NO_POST_OP
    #: The vendor's ``optMask``/``implementation`` word.
    implementation: int = DEFAULT_IMPLEMENTATION
    #: 1.x only: the stage's "precision" byte (2.x has none; its reader gives FP16).
    precision: DataType = DataType.FP16
    #: 1.x only: radix/stride/pad bytes of a stage whose op has no window
    #: parameters, kept when they are not the writer's default (all zero) so
    #: that such files round-trip.  2.x has no such fields.
    ncsdk1_window: Window | None = None

    def __post_init__(self) -> None:
        wanted = PARAMS_FOR_OP.get(self.op)
        if wanted is None:
            if self.params is not None:
                raise ValueError(f"{self.op.value} stage {self.name!r} takes no params, "
                                 f"got {type(self.params).__name__}")
        elif type(self.params) is not wanted:
            raise ValueError(f"{self.op.value} stage {self.name!r} needs {wanted.__name__}, "
                             f"got {type(self.params).__name__}")
        if not 0 <= self.implementation <= 0xFFFFFFFF:
            raise ValueError("implementation must be a 32-bit word")

    def buffers(self) -> list[tuple[str, BufferRef]]:
        """``(slot, ref)`` for every slot that is set, in :data:`BUFFER_SLOTS` order."""
        return [(s, getattr(self, s)) for s in BUFFER_SLOTS if getattr(self, s) is not None]

    @property
    def window(self) -> Window | None:
        """The kernel window of conv and pooling stages."""
        return self.params if isinstance(self.params, Window) else None


# --------------------------------------------------------------------------- graph


@dataclass(frozen=True)
class ElfStub:
    """The 34-byte pseudo-ELF prefix of a 2.x blob (values as NCSDK 2.05 writes them)."""

    e_ident: int = 0
    e_type: int = 1
    e_machine: int = 2
    e_version: int = 1
    e_entry: int = 0
    e_phoff: int = 0
    e_shoff: int = 0
    e_flags: int = 0
    e_ehsize: int = 272
    e_phentsize: int = 0
    e_phnum: int = 0
    e_shentsize: int = 0
    e_shnum: int = 0
    e_shstrndx: int = 0


@dataclass(frozen=True)
class Ncsdk1Header:
    """Header fields only the 1.x format has (besides name and SHAVEs)."""

    #: The 100-byte "report dir" string (empty as the vendor writes it).
    report_dir: str = ""
    #: ``firstShave``; ``lastShave`` is ``first_shave + shave_count - 1``.
    first_shave: int = 0
    leon_mem_location: int = 0
    leon_mem_size: int = 0
    dma_agent: int = 0


@dataclass(frozen=True)
class Ncsdk2Header:
    """Header fields only the 2.x format has."""

    elf: ElfStub = ElfStub()
    #: Myriad X input permutation ids, or None when ``permutation_enabled`` is 0.
    permutation: tuple[int, ...] | None = None


@dataclass(frozen=True)
class Graph:
    """A compiled network: stages in execution order plus the data section."""

    stages: tuple[Stage, ...]
    #: The data section, in file order.
    constants: tuple[Constant, ...] = ()
    #: The format this graph was read from / is meant for.
    format: GraphFormat = GraphFormat.NCSDK2
    #: Network name (1.x header; 2.x stores none).
    name: str = ""
    #: SHAVE processors to use (the compiler's ``-s``): 2.x ``num_shaves``,
    #: 1.x ``lastShave - firstShave + 1``.
    shave_count: int = 12
    ncsdk1: Ncsdk1Header = Ncsdk1Header()
    ncsdk2: Ncsdk2Header = Ncsdk2Header()

    def __post_init__(self) -> None:
        object.__setattr__(self, "stages", tuple(self.stages))
        object.__setattr__(self, "constants", tuple(self.constants))
        names = [c.name for c in self.constants]
        if len(set(names)) != len(names):
            dup = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"duplicate constant names: {', '.join(dup)}")

    def replace(self, **changes) -> Graph:
        return dataclasses.replace(self, **changes)

    @property
    def version(self) -> tuple[int, int]:
        return self.format.version

    def constant(self, name: str) -> Constant:
        """The constant called ``name`` (KeyError if there is none)."""
        for c in self.constants:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def constant_offsets(self) -> dict[str, int]:
        """Byte offset of each constant from the start of the data section."""
        offsets, pos = {}, 0
        for c in self.constants:
            offsets[c.name] = pos
            pos += c.size
        return offsets

    @property
    def input(self) -> TensorDesc | None:
        """The network input: from the first buffer reference to it, with the
        channel count taken from its x stride (so a first stage reading a
        channel slice still describes the whole input)."""
        for stage in self.stages:
            for _slot, ref in stage.buffers():
                if ref.location is Location.INPUT:
                    return _tensor_from_ref(ref)
        return None

    @property
    def output(self) -> TensorDesc | None:
        """The network output: the output buffer of the last stage that writes
        it, with the channel count ``strideX / 2`` (what libmvnc 1.x does, so an
        implicit concat into the output counts all its channels)."""
        for stage in reversed(self.stages):
            if stage.output is not None and stage.output.location is Location.OUTPUT:
                return _tensor_from_ref(stage.output)
        return None

    @property
    def work_buffers(self) -> dict[int, tuple[int, int]]:
        """``{work_index: (offset, size)}``: where each work buffer starts in the
        scratch area (its lowest referenced offset) and how many bytes its
        references span (an implicit concat's branches and a slice's channel
        offsets fall inside one buffer)."""
        spans: dict[int, tuple[int, int]] = {}
        for stage in self.stages:
            for _slot, ref in stage.buffers():
                if ref.location is Location.WORK:
                    lo, hi = spans.get(ref.work_index, (ref.offset, ref.offset))
                    spans[ref.work_index] = (min(lo, ref.offset), max(hi, ref.offset + ref.extent))
        return {k: (lo, hi - lo) for k, (lo, hi) in sorted(spans.items())}

    @property
    def scratch_size(self) -> int:
        """Bytes of scratch the work-buffer references reach (max offset + extent)."""
        end = 0
        for stage in self.stages:
            for _slot, ref in stage.buffers():
                if ref.location is Location.WORK:
                    end = max(end, ref.offset + ref.extent)
        return end


def layout_work_buffers(graph: Graph, first_offset: int = 0) -> Graph:
    """Give every work buffer its scratch address the way NCSDK 2.05 does.

    Work buffers are taken in order of first appearance; each is sized by
    :func:`work_buffer_size` from the tensor its first writer describes (width
    ``strideY/strideX``, channels ``strideX/2`` -- the whole buffer for an
    implicit concat -- and as many rows as its references reach: ``dims.y``
    of one writer, the sum of the parts of an implicit concat along the
    height) and placed right after the previous one.  A reference's
    ``offset`` is taken as relative to the smallest offset used with its
    ``work_index`` (so a lowering pass can give channel offsets only, e.g.
    ``2*channel`` for the second concat branch), and becomes the buffer's
    address plus that relative offset.
    """
    refs: dict[int, list[tuple[str, BufferRef]]] = {}
    for stage in graph.stages:
        for slot, ref in stage.buffers():
            if ref.location is Location.WORK:
                refs.setdefault(ref.work_index, []).append((slot, ref))
    base: dict[int, tuple[int, int]] = {}  # index -> (old minimum offset, new address)
    pos = first_offset
    for index, uses in refs.items():
        writer = next((r for s, r in uses if s == "output"), uses[0][1])
        esize = element_size(writer.dtype)
        sx, sy, _sz = writer.strides
        channels = sx // esize if sx else writer.dims.z
        width = sy // sx if sx and sy else writer.dims.x
        lowest = min(r.offset for _, r in uses)
        rows = max(((r.offset - lowest) // sy if sy else 0) + r.dims.y for _, r in uses)
        base[index] = (lowest, pos)
        pos += work_buffer_size((width, rows, channels), esize)

    def moved(ref: BufferRef | None) -> BufferRef | None:
        if ref is None or ref.location is not Location.WORK:
            return ref
        old_min, address = base[ref.work_index]
        return dataclasses.replace(ref, offset=address + ref.offset - old_min)

    stages = tuple(
        dataclasses.replace(s, **{slot: moved(getattr(s, slot)) for slot in BUFFER_SLOTS})
        for s in graph.stages)
    return graph.replace(stages=stages)


def _tensor_from_ref(ref: BufferRef) -> TensorDesc:
    esize = element_size(ref.dtype)
    z = ref.strides.x // esize if ref.strides.x else ref.dims.z
    dims = Dims3(ref.dims.x, ref.dims.y, z)
    return TensorDesc(dims, ref.strides, ref.dtype, ref.order)


__all__ = [
    "BUFFER_SLOTS", "CONSTANT_ALIGNMENT", "CONV_OPS", "DEFAULT_IMPLEMENTATION", "POOL_OPS",
    "PARAMS_FOR_OP", "BufferRef", "Constant", "ConvParams", "DataType", "Dims3", "ElfStub",
    "Graph", "GraphFormat", "Location", "LrnParams", "Ncsdk1Header", "Ncsdk2Header",
    "OffsetParams", "Op", "OpParams", "PadStyle", "PoolParams", "PostOp", "PowerParams",
    "ScratchAllocator", "SoftmaxParams", "Stage", "StorageOrder", "TensorDesc", "Window",
    "align", "element_size", "float32_bits", "hwc_strides", "hwck_taps_strides",
    "layout_work_buffers", "work_buffer_size",
]
