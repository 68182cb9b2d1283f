"""Per-stage cost of a graph on an NCS1 (Myriad 2): MFLOPs as the vendor profiler
counts them, bytes moved, and a predicted time.

The time of one stage is

    time = overhead + max(compute, memory) + (1 - overlap) * min(compute, memory)

* ``compute = work_flops / (shaves * PEAK_FLOPS_PER_SHAVE * efficiency[op class])``
  for the op classes that do arithmetic worth counting (convolutions, fully
  connected); 0 for the streaming ops (pooling, LRN, softmax, ReLU, eltwise, ...);
* ``memory = bytes / (DRAM_PEAK_BYTES_PER_S * DRAM_EFFICIENCY)``, with ``bytes``
  the fp16 input, weights and output the stage reads and writes once;
* ``overhead`` a fixed cost per stage.

Only the compute term scales with the SHAVE count.  The constants, their
sources and the calibration are in :mod:`caffe2ncs.profile.constants` and
:mod:`caffe2ncs.profile.calibrate`; ``docs/profile.md`` explains the model.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from ..lowering.ir import BufferRef, Graph, Location, Op, Stage
from . import constants as K

#: Op classes of the model (the keys of :attr:`CostModel.efficiency`).
CONV1X1 = "conv1x1"
CONV = "conv"
DEPTHWISE = "depthwise"
DECONV = "deconv"
FC = "fc"
STREAM = "stream"

_CONV_LIKE = {Op.CONVOLUTION, Op.MYRIADX_CONVOLUTION}
_FC_LIKE = {Op.FULLY_CONNECTED, Op.MYRIADX_FULLY_CONNECTED}


@dataclass(frozen=True)
class CostModel:
    """The model's parameters; the defaults are :mod:`.constants`."""

    stage_overhead_ms: float = K.STAGE_OVERHEAD_MS
    conv1x1_efficiency: float = K.CONV1X1_EFFICIENCY
    conv_efficiency: float = K.CONV_EFFICIENCY
    depthwise_efficiency: float = K.DEPTHWISE_EFFICIENCY
    deconv_efficiency: float = K.DECONV_EFFICIENCY
    fc_efficiency: float = K.FC_EFFICIENCY
    dram_efficiency: float = K.DRAM_EFFICIENCY
    overlap: float = K.COMPUTE_MEMORY_OVERLAP
    peak_flops_per_shave: float = K.PEAK_FLOPS_PER_SHAVE
    dram_peak_bytes_per_s: float = K.DRAM_PEAK_BYTES_PER_S

    def efficiency(self, op_class: str) -> float:
        return {CONV1X1: self.conv1x1_efficiency, CONV: self.conv_efficiency,
                DEPTHWISE: self.depthwise_efficiency, DECONV: self.deconv_efficiency,
                FC: self.fc_efficiency}[op_class]

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def stage_cost(self, index: int, stage: Stage, shaves: int = K.DEFAULT_SHAVES) -> StageCost:
        """The cost of ``stage`` (the ``index``-th of its graph) with ``shaves`` SHAVEs."""
        shaves = max(1, min(int(shaves), K.MAX_SHAVES))
        cls = op_class(stage)
        work = work_flops(stage)
        moved = bytes_moved(stage)
        if cls == STREAM or work == 0:
            compute_ms = 0.0
        else:
            rate = shaves * self.peak_flops_per_shave * self.efficiency(cls)
            compute_ms = 1e3 * work / rate
        memory_ms = 1e3 * moved / (self.dram_peak_bytes_per_s * self.dram_efficiency)
        longer, shorter = max(compute_ms, memory_ms), min(compute_ms, memory_ms)
        time_ms = self.stage_overhead_ms + longer + (1.0 - self.overlap) * shorter
        return StageCost(
            index=index, name=stage.name or f"{stage.op.value}_{index}", op=stage.op,
            op_class=cls, mflops=vendor_mflops(stage), work_flops=work, bytes=moved,
            vendor_bytes=vendor_bytes(stage), overhead_ms=self.stage_overhead_ms,
            compute_ms=compute_ms, memory_ms=memory_ms, time_ms=time_ms)

    def estimate(self, graph: Graph, shaves: int | None = None) -> list[StageCost]:
        """The cost of every stage of ``graph``, in execution order.  ``shaves``
        defaults to the graph's own SHAVE count (the compiler's ``-s``)."""
        n = graph.shave_count if shaves is None else shaves
        return [self.stage_cost(i, s, n) for i, s in enumerate(graph.stages)]


DEFAULT_MODEL = CostModel()


@dataclass(frozen=True)
class StageCost:
    """What the model says about one stage."""

    index: int
    name: str
    op: Op
    #: The model's op class: conv1x1, conv, depthwise, deconv, fc or stream.
    op_class: str
    #: MFLOPs as the vendor profiler counts them (see :func:`vendor_mflops`).
    mflops: float
    #: Arithmetic the compute term is based on (FLOPs, multiply-add = 2).
    work_flops: int
    #: Bytes the stage reads and writes (fp16 input, weights, output, once each).
    bytes: int
    #: ``2 * arrays`` of the vendor's bandwidth formula (see :func:`vendor_bytes`).
    vendor_bytes: int
    overhead_ms: float
    compute_ms: float
    memory_ms: float
    #: Predicted (or, after :meth:`with_time`, measured) time.
    time_ms: float

    @property
    def bound(self) -> str:
        """"compute" or "memory": which term is larger; "overhead" when the fixed
        cost exceeds both."""
        if self.overhead_ms > max(self.compute_ms, self.memory_ms):
            return "overhead"
        return "compute" if self.compute_ms > self.memory_ms else "memory"

    def bandwidth_mb_s(self, time_ms: float | None = None) -> float:
        """The vendor's "Bandwidth (MB/s)" column for this stage."""
        return vendor_bandwidth_mb_s(self.vendor_bytes, self.time_ms if time_ms is None
                                     else time_ms)

    def dram_mb_s(self, time_ms: float | None = None) -> float:
        """Bytes actually moved (our count) per second, in MiB/s."""
        ms = self.time_ms if time_ms is None else time_ms
        return self.bytes / MIB / (ms / 1e3) if ms > 0 else 0.0


MIB = 1024 * 1024

# --------------------------------------------------------------------------- counting


def _elements(ref: BufferRef | None) -> int:
    if ref is None:
        return 0
    return ref.dims.x * ref.dims.y * ref.dims.z


def _kernel(stage: Stage) -> tuple[int, int]:
    w = stage.window
    if w is None:
        return 1, 1
    return max(1, w.kernel_y), max(1, w.kernel_x)


def op_class(stage: Stage) -> str:
    """Which efficiency factor applies to ``stage``."""
    op = stage.op
    if op in _CONV_LIKE:
        return CONV1X1 if _kernel(stage) == (1, 1) else CONV
    if op is Op.DEPTHWISE_CONVOLUTION:
        return DEPTHWISE
    if op is Op.DECONVOLUTION:
        return DECONV
    if op in _FC_LIKE:
        return FC
    return STREAM


def work_flops(stage: Stage) -> int:
    """The arithmetic of a stage, multiply-add = 2 FLOPs, for the compute term:
    convolution ``2*K*Ho*Wo*Cin*kh*kw`` (``Cin`` of this stage's input, so one
    group of a split group convolution), depthwise ``2*kh*kw*K*Ho*Wo``,
    deconvolution ``2*Cin*Hi*Wi*K*kh*kw``, fully connected ``2*in*out``; 0 for
    the streaming ops."""
    cls = op_class(stage)
    out, inp = stage.output, stage.input
    if out is None or inp is None:
        return 0
    kh, kw = _kernel(stage)
    if cls in (CONV1X1, CONV):
        return 2 * _elements(out) * inp.dims.z * kh * kw
    if cls == DEPTHWISE:
        return 2 * kh * kw * _elements(out)
    if cls == DECONV:
        return 2 * _elements(inp) * out.dims.z * kh * kw
    if cls == FC:
        return 2 * _elements(inp) * _elements(out)
    return 0


def vendor_mflops(stage: Stage) -> float:
    """MFLOPs as mvNCProfile counts them (NCSDK 1.x ``NetworkStage.getFlops``,
    shared/spec/ncsdk-reference.md section 4): convolution
    ``2*K*Ho*Wo*Cin*kh*kw``, max pooling ``K*Ho*Wo*kh*kw``, average pooling
    ``2*K*Ho*Wo*kh*kw``, fully connected ``2*in*out``, depthwise
    ``2*kh*kw*K*Ho*Wo``, softmax ``3*in``; every other op 0 (LRN, ReLU, eltwise,
    deconvolution, ...).

    One deliberate difference: for a fully-connected layer the vendor table
    shows a value 1024 times too small for GoogLeNet's classifier (0.002 for
    1024 -> 1000, i.e. ``2*1*1000``, as if the input had one element); we print
    the real ``2*in*out`` (2.048 there)."""
    op = stage.op
    out, inp = stage.output, stage.input
    if out is None or inp is None:
        return 0.0
    kh, kw = _kernel(stage)
    if op in _CONV_LIKE:
        flops = 2 * _elements(out) * inp.dims.z * kh * kw
    elif op is Op.DEPTHWISE_CONVOLUTION:
        flops = 2 * kh * kw * _elements(out)
    elif op is Op.MAX_POOLING:
        flops = _elements(out) * kh * kw
    elif op is Op.AVERAGE_POOLING:
        flops = 2 * _elements(out) * kh * kw
    elif op in _FC_LIKE:
        flops = 2 * _elements(inp) * _elements(out)
    elif op is Op.SOFTMAX:
        flops = 3 * _elements(inp)
    else:
        flops = 0
    return flops / 1e6


def _activation(ref: BufferRef | None) -> bool:
    return ref is not None and ref.location in (Location.INPUT, Location.OUTPUT, Location.WORK)


def bytes_moved(stage: Stage) -> int:
    """Bytes the stage moves through DRAM, each buffer once: its input and
    output, its weights (taps) and any activation in the taps/bias slots (the
    second operand of an eltwise, DetectionOutput's extra inputs).  Biases and
    op-parameter arrays are ignored (a few hundred bytes)."""
    total = 0
    for slot in ("input", "output", "taps"):
        ref = getattr(stage, slot)
        if ref is not None:
            total += _elements(ref) * _size(ref)
    if _activation(stage.bias):
        total += _elements(stage.bias) * _size(stage.bias)
    return total


def _size(ref: BufferRef) -> int:
    from ..lowering.ir import element_size

    return element_size(ref.dtype)


def vendor_bytes(stage: Stage) -> int:
    """``2 * arrays`` of the vendor's bandwidth formula (NCSDK 1.x
    ``NetworkStage.getBWs``): ``arrays = in*kh*kw + taps + out*kh*kw`` for a
    convolution, ``in + taps + out`` otherwise, where ``out`` is -- a toolkit
    bug kept here so that the column compares one-to-one -- only the output's
    channel count, not its element count."""
    inp = _elements(stage.input)
    taps = _elements(stage.taps) if stage.taps is not None and \
        stage.taps.location is Location.BLOB else 0
    out = stage.output.dims.z if stage.output is not None else 0
    if stage.op in _CONV_LIKE:
        kh, kw = _kernel(stage)
        arrays = inp * kh * kw + taps + out * kh * kw
    else:
        arrays = inp + taps + out
    return 2 * arrays


def vendor_bandwidth_mb_s(vendor_bytes_: int, time_ms: float) -> float:
    """The vendor's ``BW = (2*arrays / MiB) / (ms / 1000)``."""
    if time_ms <= 0:
        return 0.0
    return vendor_bytes_ / MIB / (time_ms / 1e3)
