"""The executor: prepares every stage once, then runs the stages in file order
against one :class:`~.memory.Memory`, the way the firmware does.

Per stage: read the inputs (fp16, through their descriptors), compute in
float32 (the stage's kernel module), apply the fused post-operation, round to
fp16 and store through the output descriptor -- at its offset, with its strides
(:mod:`.numerics` has the numerical model).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
import time
from dataclasses import dataclass

import numpy as np

from ...limits import check_deadline
from ...errors import Caffe2NcsError, GraphFileError, UnsupportedNetworkError
from ...lowering.ir import Graph, Op, Stage
from .memory import FP16, Memory, Workspace, check_activation, constant_arrays, fp16_to_float32
from .numerics import apply_post_op, check_post_op
from .stage import Compute, StageSpec

#: The kernel modules, one per stage type (or tight family).
KERNEL_MODULES = (
    "op_convolution", "op_depthwise_convolution", "op_deconvolution", "op_pooling",
    "op_fully_connected", "op_softmax", "op_lrn", "op_inner_lrn", "op_eltwise", "op_scale",
    "op_prelu", "op_sigmoid", "op_tanh", "op_power", "op_square", "op_rsqrt", "op_copy",
    "op_crop", "op_reshape", "op_to_plane_major", "op_permute", "op_normalize",
    "op_prior_box", "op_detection_output",
)


def _load_kernels() -> dict[Op, object]:
    table = {}
    for name in KERNEL_MODULES:
        module = importlib.import_module(f"{__package__}.{name}")
        for op in module.OPS:
            table[op] = module
    return table


KERNELS = _load_kernels()

#: Every stage type the emulator executes.
SUPPORTED_OPS = frozenset(KERNELS)


@dataclass(frozen=True)
class StageRecord:
    """One stage of a traced run."""

    index: int
    stage: Stage
    #: What the stage stored, as fp16 ``(H, W, C)`` (a copy, before any later
    #: stage overwrote its buffer; for one branch of an implicit concat, only
    #: that branch's channels).
    output: np.ndarray
    #: Host wall-clock seconds the emulator spent on the stage (not the device's time).
    seconds: float


@dataclass(frozen=True)
class Trace:
    """The result of :meth:`Emulator.trace`."""

    #: What the device returns: 1-D fp16, ``Graph.output.elements`` values, HWC order.
    output: np.ndarray
    stages: tuple[StageRecord, ...]


def stage_label(index: int, stage: Stage) -> str:
    name = f" {stage.name!r}" if stage.name else ""
    return f"stage {index}{name} ({stage.op.value})"


class Emulator:
    """A graph ready to run: every stage validated, every weight decoded once.

    ``Emulator(graph)`` raises :class:`~caffe2ncs.errors.UnsupportedNetworkError`
    for a stage type, post-operation or parameter combination it cannot execute
    and :class:`~caffe2ncs.errors.GraphFileError` for inconsistent buffers,
    naming the stage (and ``path``, the graph file, if given).  ``run`` and
    ``trace`` are then thread-compatible: each call has its own memory.
    """

    def __init__(self, graph: Graph, *, path: str | os.PathLike[str] | None = None) -> None:
        self.graph = graph
        self.path = os.fspath(path) if path is not None else None
        if graph.input is None or graph.output is None:
            raise GraphFileError("the graph has no stage reading the network input or none "
                                 "writing the network output", self.path)
        self._constants = constant_arrays(graph)
        self._spare_lock = threading.Lock()
        self._spare_scratch: np.ndarray | None = None  # reused by the next run
        self._spare_workspace: Workspace | None = None
        self._plans: list[Compute] = []
        for index, stage in enumerate(graph.stages):
            with self._blame(index, stage):
                self._plans.append(self._prepare(index, stage))

    # -------------------------------------------------------------- description

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of the network input."""
        return self.graph.input.shape_hwc

    @property
    def output_shape(self) -> tuple[int, int, int]:
        """``(H, W, C)`` of the network output (C from the output's x stride)."""
        return self.graph.output.shape_hwc

    @property
    def output_elements(self) -> int:
        return self.graph.output.elements

    # -------------------------------------------------------------------- runs

    def run(self, input_hwc: np.ndarray) -> np.ndarray:
        """Run one inference; returns the output as the device returns it:
        1-D fp16, :attr:`output_elements` values in the output's memory (HWC) order."""
        mem = self._memory(input_hwc)
        for index, stage in enumerate(self.graph.stages):
            self._step(mem, index, stage)
        self._release(mem)
        return mem.output.copy()

    def trace(self, input_hwc: np.ndarray) -> Trace:
        """Like :meth:`run`, also keeping every stage's output and host time."""
        mem = self._memory(input_hwc)
        records = []
        for index, stage in enumerate(self.graph.stages):
            t0 = time.perf_counter()
            self._step(mem, index, stage)
            seconds = time.perf_counter() - t0
            written = mem.view(stage.output, "output").copy()
            records.append(StageRecord(index, stage, written, seconds))
        self._release(mem)
        return Trace(mem.output.copy(), tuple(records))

    # ---------------------------------------------------------------- internals

    def _memory(self, input_hwc: np.ndarray) -> Memory:
        x = as_input(input_hwc, self.input_shape)
        with self._spare_lock:
            scratch, self._spare_scratch = self._spare_scratch, None
            workspace, self._spare_workspace = self._spare_workspace, None
        return Memory(self.graph, x, self._constants, self.path, scratch, workspace)

    def _release(self, mem: Memory) -> None:
        with self._spare_lock:
            self._spare_scratch = mem.scratch
            self._spare_workspace = mem.workspace

    def _prepare(self, index: int, stage: Stage) -> Compute:
        module = KERNELS.get(stage.op)
        if module is None:
            raise UnsupportedNetworkError(
                f"the emulator does not execute {stage.op.value} stages (it executes: "
                f"{', '.join(sorted(o.value for o in SUPPORTED_OPS))})")
        check_post_op(stage.post_op, stage.pre_op)
        spec = StageSpec(index, stage, self.graph, self._constants)
        check_activation(spec.ref("input"), "input", None)
        check_activation(spec.ref("output"), "output", None)
        return module.prepare(spec)

    def _step(self, mem: Memory, index: int, stage: Stage) -> None:
        check_deadline(f"emulating stage {index}")
        with self._blame(index, stage):
            result = self._plans[index](mem)
            if getattr(result, "dtype", None) == FP16:  # exact fp16 values (see stage.py): stored as they are
                if stage.post_op.op in (Op.NONE, Op.BIAS):
                    mem.write(stage.output, result, "output")
                    return
                result = fp16_to_float32(result)
            result = np.asarray(result, np.float32)
            if stage.post_op.op is Op.RELU:  # the same numbers, faster (store_relu)
                mem.write(stage.output, result, "output", relu=True)
                return
            with np.errstate(all="ignore"):
                result = apply_post_op(result, stage.post_op)
            mem.write(stage.output, result, "output")

    @contextlib.contextmanager
    def _blame(self, index: int, stage: Stage):
        """Prefix errors with the stage they come from; name the graph file."""
        try:
            yield
        except Caffe2NcsError as err:
            if not getattr(err, "_stage_named", False):
                err.message = f"{stage_label(index, stage)}: {err.message}"
                err._stage_named = True
                err.args = (err.format(),)
            if self.path is not None:
                err.with_path(self.path)
            raise


def as_input(values: np.ndarray, shape_hwc: tuple[int, int, int]) -> np.ndarray:
    """The network input as fp16 ``(H, W, C)``: from an array of that shape (any
    float dtype, rounded to nearest fp16), or of the same values flattened."""
    from .errors import InputShapeError

    arr = np.asarray(values)
    if arr.dtype.kind not in "fiub":
        raise InputShapeError(f"the input must be numbers, not {arr.dtype}")
    h, w, c = shape_hwc
    shape = arr.shape
    while arr.ndim > 3 and arr.shape[0] == 1:  # a batch of one
        arr = arr[0]
    if arr.shape == (h, w, c) or arr.shape == (h * w * c,) or (c == 1 and arr.shape == (h, w)):
        with np.errstate(over="ignore"):
            return arr.astype(FP16).reshape(h, w, c)
    raise InputShapeError(f"the graph takes a {h}x{w}x{c} (HxWxC) input, got an array of "
                          f"shape {'x'.join(map(str, shape))}")
