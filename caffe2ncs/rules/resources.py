"""NCS50x: what the stick has room for.

The estimates follow the NCSDK toolkit's own arithmetic (``ncsdk-reference.md``
§3): the graph file is a header, 227 bytes per stage and every constant buffer
as fp16 padded to 64 bytes; each intermediate ("work") buffer costs
``align64(C·H·W·2 + 2·pad)`` bytes with ``pad = 2·(W+1)·C·2`` because
convolutions may write up to two rows and columns outside their output.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from ..model.net import Layer
from ..model.params import expected_blob_shapes
from ..sdk import (
    MATMUL_SCRATCH_BYTES, MAX_GRAPH_BYTES, MAX_OUTPUT_ELEMENTS, MAX_WORK_BYTES, RADIX_MAX, sdk_error,
)
from .base import Diagnostic, Rule, Severity
from .context import Context
from .in_place import folds_into_conv
from .registry import register

_MIB = 1024 * 1024
_HEADER_BYTES = 264
_STAGE_BYTES = 227
# Layers that never become a stage of their own.
_NO_STAGE = {"Input", "Dropout", "Concat", "Slice", "Split", "Silence"}
_POST_OPS = {"ReLU", "ELU"}
_CONVS = {"Convolution", "ConvolutionDepthwise", "DepthwiseConvolution"}


def align64(n: int) -> int:
    return (n + 63) // 64 * 64


def _count(shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


@dataclass
class Estimate:
    stages: int
    constant_bytes: int
    graph_bytes: int
    work_bytes: int
    work_buffers: list[tuple[str, int]]  # (layer, bytes), largest first


def becomes_stage(ctx: Context, layer: Layer) -> bool:
    if layer.type in _NO_STAGE:
        return False
    if layer.type in _POST_OPS:
        producer = ctx.net.producer(layer, 0) if layer.bottoms else None
        return producer is None  # a ReLU on the input itself is a stage
    if layer.type in ("BatchNorm", "Scale") and folds_into_conv(ctx, layer):
        return False
    return True


def estimate(ctx: Context) -> Estimate:
    net = ctx.net
    stages = 0
    constants = 0
    for layer in net.layers:
        if not becomes_stage(ctx, layer):
            continue
        shapes = net.layer_shapes[layer.index]
        blobs = expected_blob_shapes(layer, shapes.inputs) or []
        groups = 1
        if layer.type in _CONVS:
            cp = layer.param.convolution_param
            x = shapes.inputs[0] if shapes.inputs else None
            depthwise = layer.type == "ConvolutionDepthwise" or (
                x is not None and len(x) > 1 and cp.group == x[1])
            groups = 1 if depthwise else max(1, cp.group)
        stages += groups
        for shape in blobs:
            per_group = _count(shape) // groups
            constants += groups * align64(2 * per_group)
        if layer.type in _CONVS and len(blobs) == 1:  # the folded BN bias: one per output
            constants += align64(2 * blobs[0][0])
        constants += 64  # op parameters (dilation, LRN constants, …)
    header = _HEADER_BYTES + (_STAGE_BYTES * stages + 7) // 8 * 8
    work: dict[str, int] = {}
    outputs = set(net.outputs)
    concat_inputs: set[tuple[int, str]] = set()
    for layer in ctx.layers_of("Concat"):
        for i, b in enumerate(layer.bottoms):
            concat_inputs.add((net.bottom_producers[layer.index][i], b))
    for layer in net.layers:
        if layer.in_place:
            continue
        if not (becomes_stage(ctx, layer) or layer.type in _POST_OPS or layer.type == "Concat"):
            continue
        for top, shape in zip(layer.tops, net.layer_shapes[layer.index].outputs):
            if shape is None or top in outputs or (layer.index, top) in concat_inputs:
                continue
            if len(shape) == 4:
                _, c, h, w = shape
            else:
                c, h, w = _count(shape[1:]) if len(shape) > 1 else 1, 1, 1
            pad = (RADIX_MAX // 2) * (w + 1) * c * 2
            work[layer.name] = work.get(layer.name, 0) + align64(c * h * w * 2 + 2 * pad)
    ranked = sorted(work.items(), key=lambda kv: -kv[1])
    return Estimate(stages, constants, header + constants, sum(work.values()), ranked)


@register
class GraphTooLarge(Rule):
    """## What it does
    Estimates the size of the compiled graph file (mostly the weights, as fp16)
    and reports networks over 320 MB.

    ## Why is this bad?
    mvNCCompile refuses them: `[Error 35] Setup Error: Not enough resources on
    Myriad to process this network.` The estimate uses the toolkit's own
    formula: a header, 227 bytes per stage, and every constant buffer in fp16
    padded to 64 bytes.
    """

    code = "NCS501"
    name = "graph-too-large"
    severity = Severity.ERROR
    summary = "estimated graph file of 320 MB or more"
    sdk_error = sdk_error(35)
    source = "TK FileIO.estimate_file_size"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        est = estimate(ctx)
        if est.graph_bytes >= MAX_GRAPH_BYTES:
            yield ctx.report(self, f"the graph file would be about {est.graph_bytes / _MIB:.0f} MiB "
                             f"({est.stages} stages); the NCSDK's limit is 320 MiB",
                             _first(ctx))


@register
class WorkBuffersTooLarge(Rule):
    """## What it does
    Adds up the intermediate buffers the compiled network needs and reports
    networks needing 100 MB or more.

    ## Why is this bad?
    The toolkit allocates every intermediate result in one work area, each
    buffer over-allocated by two rows and columns on every side (convolutions
    write outside their outputs), and refuses the network beyond 100 MB:
    `[Error 35] Setup Error: Not enough resources on Myriad to process this
    network.` Large inputs (e.g. 500x500 segmentation networks) hit it.

    ## What to do
    Use a smaller input size.
    """

    code = "NCS502"
    name = "work-buffers-too-large"
    severity = Severity.ERROR
    summary = "intermediate buffers of 100 MB or more"
    sdk_error = sdk_error(35)
    source = "TK FileIO.get_zero_buffer"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        est = estimate(ctx)
        if est.work_bytes >= MAX_WORK_BYTES:
            top = ", ".join(f"{name} {size / _MIB:.1f} MiB" for name, size in est.work_buffers[:3])
            yield ctx.report(self, f"the intermediate buffers need about {est.work_bytes / _MIB:.0f} "
                             f"MiB (largest: {top}); the NCSDK's limit is 100 MiB", _first(ctx))


@register
class MatmulScratchRisk(Rule):
    """## What it does
    A heuristic: flags matrix-multiplication-backed layers (InnerProduct,
    Deconvolution) whose inner dimension, in fp16 and double-buffered, does not
    fit the 112640 bytes of scratch memory the firmware gives matrix
    multiplications.

    ## Why is this bad?
    Such layers may fail at run time — not at compile time — with
    `[Error 25] Myriad Error: "Matmul scratch memory [112640] lower than required
    [N]"`. The firmware's formula for "required" is not public, so this is an
    estimate (4 bytes per element of the inner dimension); it is set so that the
    vendor-validated networks (VGG-16's 25088-input fc6 included) pass. Treat a
    finding as "test this layer on a device".
    """

    code = "NCS503"
    name = "matmul-scratch-risk"
    severity = Severity.WARNING
    summary = "layer may exceed the 112 KB matmul scratch memory (heuristic)"
    sdk_error = "[Error 25] Myriad Error: Matmul scratch memory lower than required"
    source = "NCSDK Caffe Support page (Error 25); heuristic estimate"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("InnerProduct", "Deconvolution"):
            shape = ctx.in_shape(layer)
            if shape is None:
                continue
            if layer.type == "InnerProduct":
                axis = layer.param.inner_product_param.axis
                axis = axis + len(shape) if axis < 0 else axis
                inner = _count(shape[axis:])
            else:
                cp = layer.param.convolution_param
                k = list(cp.kernel_size) or [cp.kernel_h or 1, cp.kernel_w or 1]
                kh, kw = (k[0], k[-1])
                inner = cp.num_output * kh * kw
            need = 4 * inner
            if need > MATMUL_SCRATCH_BYTES:
                yield ctx.report(
                    self, f"{layer.type} {layer.name!r} multiplies over {inner} values; by estimate "
                    f"it needs ~{need} bytes of matmul scratch, more than the {MATMUL_SCRATCH_BYTES} "
                    "the firmware has (heuristic — check on a device)", ctx.anchor(layer, "type"),
                    layer=layer)


@register
class OutputTooLarge(Rule):
    """## What it does
    Finds networks whose output has more than 64 Mi elements.

    ## Why is this bad?
    The NCSDK 1.x host library refuses to allocate such a graph (it reads the
    output size from the last stage and caps it at 64 Mi elements).
    """

    code = "NCS504"
    name = "output-too-large"
    severity = Severity.ERROR
    summary = "output tensor larger than 64 Mi elements"
    source = "libmvnc 1.x mvncAllocateGraph"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for blob in ctx.net.outputs[:1]:
            shape = ctx.net.blob_shapes.get(blob)
            if shape is not None and _count(shape) > MAX_OUTPUT_ELEMENTS:
                writers = ctx.net.producers(blob)
                where = ctx.anchor(writers[-1], "top", 0) if writers else None
                yield ctx.report(self, f"output {blob!r} has {_count(shape)} elements; the NCSDK "
                                 f"host library takes at most {MAX_OUTPUT_ELEMENTS}", where,
                                 layer=writers[-1] if writers else None)


def _first(ctx: Context):
    doc = ctx.net.document
    if doc is None or not doc.fields:
        return None
    for node in doc.fields:
        if node.name in ("layer", "layers", "input"):
            return node
    return doc.fields[0]
