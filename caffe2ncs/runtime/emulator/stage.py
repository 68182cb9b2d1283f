"""What a kernel module sees of its stage while it prepares: the stage, the
graph's constants, and helpers to decode parameters with clear errors.

Every kernel module (``op_*.py``) defines ``OPS`` (the :class:`Op` values it
executes) and ``prepare(spec) -> compute``.  ``prepare`` validates the stage's
parameters and decodes its weights once; ``compute(memory)`` reads the stage's
inputs from :class:`~.memory.Memory` and returns the stage's result as a
float32 ``(H, W, C)`` array shaped like its output buffer, **before** the
post-operation and the fp16 rounding, which the executor applies to every
stage alike (:mod:`.numerics`).  A kernel whose result is exactly fp16 values
(max pooling of fp16 inputs) may return it as an fp16 array instead: with no
rounding to do, the executor stores it as it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ...errors import GraphFileError
from ...lowering.ir import BufferRef, Graph, Location, Stage
from .memory import Memory

Compute = Callable[[Memory], np.ndarray]


@dataclass(frozen=True)
class StageSpec:
    index: int
    stage: Stage
    graph: Graph
    #: Every constant as a 1-D fp16 array (see :func:`.memory.constant_arrays`).
    constants: dict[str, np.ndarray]

    @property
    def op(self):
        return self.stage.op

    def ref(self, slot: str) -> BufferRef:
        """The buffer in ``slot``; a missing one is a :class:`GraphFileError`."""
        ref = getattr(self.stage, slot)
        if ref is None or ref.location is Location.NONE:
            raise GraphFileError(f"has no {slot} buffer, which a {self.op.value} stage needs")
        return ref

    def has(self, slot: str) -> bool:
        ref = getattr(self.stage, slot)
        return ref is not None and ref.location is not Location.NONE

    @property
    def out_hwc(self) -> tuple[int, int, int]:
        """The output buffer's ``(H, W, C)``."""
        x, y, z = self.ref("output").dims
        return (y, x, z)

    @property
    def in_hwc(self) -> tuple[int, int, int]:
        x, y, z = self.ref("input").dims
        return (y, x, z)

    def constant(self, slot: str, count: int, dtype: str = "<f2") -> np.ndarray:
        """The first ``count`` values of the constant in ``slot`` (fp16 by default),
        as float32 for fp16 data.  The constant must be a BLOB holding that many."""
        ref = self.ref(slot)
        if ref.location is not Location.BLOB:
            raise GraphFileError(f"its {slot} must be a constant of the data section, "
                                 f"not the {ref.location.value} buffer")
        raw = self.constants[ref.constant]
        data = raw.view(np.uint8).view(np.dtype(dtype))
        if data.size < count:
            raise GraphFileError(f"its {slot} constant {ref.constant!r} holds "
                                 f"{raw.size * 2} bytes; the stage needs {count} "
                                 f"{np.dtype(dtype).name} values "
                                 f"({count * np.dtype(dtype).itemsize} bytes)")
        values = data[:count]
        return values.astype(np.float32) if values.dtype.kind == "f" else values.copy()

    def bias(self, channels: int) -> np.ndarray | None:
        """The per-output-channel bias (float32), or None without a bias buffer."""
        if not self.has("bias"):
            return None
        return self.constant("bias", channels)


def same_shape(spec: StageSpec) -> tuple[int, int, int]:
    """Check that input and output have the same ``(H, W, C)``; return it."""
    if spec.in_hwc != spec.out_hwc:
        h, w, c = spec.in_hwc
        ho, wo, co = spec.out_hwc
        raise GraphFileError(f"a {spec.op.value} stage keeps its input's shape, but the input "
                             f"is {h}x{w}x{c} and the output {ho}x{wo}x{co} (HxWxC)")
    return spec.in_hwc


def elementwise(spec: StageSpec, fn: Callable[[np.ndarray], np.ndarray]) -> Compute:
    """The compute function of a stage applying ``fn`` (float32 -> float32) to
    every element of its input."""
    same_shape(spec)

    def compute(mem):
        with np.errstate(all="ignore"):
            return fn(mem.read(spec.stage.input, "input"))

    return compute
