"""NCS32x: pooling parameters."""

from __future__ import annotations

from collections.abc import Iterator

from ..model.frozen import unwrap
from ..model.shapes import ShapeError, pooling_geometry
from ..sdk import sdk_error
from .base import Diagnostic, Rule, Severity
from .context import Context
from .registry import register


@register
class StochasticPooling(Rule):
    """## What it does
    Finds `pool: STOCHASTIC` pooling layers.

    ## Why is this bad?
    Stochastic pooling has no NCSDK stage: `[Error 4] Toolkit Error: Stage Type
    Not Supported: Stochastic Pooling`. (At test time Caffe's stochastic pooling
    is a weighted average; retrain or replace it by average pooling.)
    """

    code = "NCS320"
    name = "stochastic-pooling"
    severity = Severity.ERROR
    summary = "stochastic pooling"
    sdk_error = sdk_error(4, "Stochastic Pooling")

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Pooling"):
            if layer.param.pooling_param.pool == 2:  # STOCHASTIC
                yield ctx.report(self, f"pooling {layer.name!r} is STOCHASTIC, which the NCSDK "
                                 "cannot run", ctx.anchor(layer, "pooling_param", "pool"), layer=layer)


@register
class FloorRoundMode(Rule):
    """## What it does
    Finds pooling layers with `round_mode: FLOOR` whose output size differs from
    what Caffe's default (ceil) rounding gives.

    ## Why is this bad?
    The NCSDK ignores `round_mode` and always sizes pooling outputs with Caffe's
    ceil rule, so such a layer silently produces a larger map than the network
    was trained with, and everything after it is shifted or fails.
    """

    code = "NCS321"
    name = "floor-round-mode"
    severity = Severity.ERROR
    summary = "pooling round_mode FLOOR, which the NCSDK ignores"
    source = "TK CaffeParser: output size always uses the ceil rule"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Pooling"):
            param = unwrap(layer.param)
            pp = param.pooling_param
            if not pp.HasField("round_mode") or pp.round_mode != 1 or pp.global_pooling:
                continue
            shape = ctx.in_shape(layer)
            if shape is None or len(shape) != 4:
                continue
            as_ncsdk = type(param)()
            as_ncsdk.CopyFrom(param)
            as_ncsdk.pooling_param.ClearField("round_mode")
            try:
                *_, floor = pooling_geometry(param, layer, shape[2], shape[3])
                *_, ceil = pooling_geometry(as_ncsdk, layer, shape[2], shape[3])
            except ShapeError:
                continue  # shape inference reports it
            if floor != ceil:
                yield ctx.report(
                    self, f"pooling {layer.name!r} rounds down to {floor[0]}x{floor[1]}, but the "
                    f"NCSDK ignores round_mode and produces {ceil[0]}x{ceil[1]}",
                    ctx.anchor(layer, "pooling_param", "round_mode"), layer=layer)


@register
class ShrinkingPool(Rule):
    """## What it does
    Finds max pooling with a 2x2 kernel and stride 1 and no padding, the pattern
    of darknet's "same" max pooling in converted YOLO models.

    ## Why is this bad?
    Darknet pads such a pooling so the map keeps its size (13x13 stays 13x13);
    Caffe, and so the NCSDK, shrink it by one (13x13 becomes 12x12). The
    converted network then computes something else than the original, and a
    later concatenation with an unshrunk map fails. A warning: it is what Caffe
    computes, but rarely what the model author meant.
    """

    code = "NCS322"
    name = "shrinking-stride-1-pooling"
    severity = Severity.WARNING
    summary = "2x2 stride-1 max pooling shrinks the map (darknet conversions)"
    source = "pitfall: TinyYOLOv2 prototxts for the NCS (pool6 kernel 2 stride 1)"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Pooling"):
            pp = layer.param.pooling_param
            if pp.global_pooling or pp.pool != 0:
                continue
            if pp.kernel_size == 2 and pp.stride == 1 and not pp.pad and not pp.HasField("pad_h"):
                shape = ctx.in_shape(layer)
                size = f" ({shape[2]}x{shape[3]} becomes {shape[2] - 1}x{shape[3] - 1})" \
                    if shape is not None and len(shape) == 4 else ""
                yield ctx.report(self, f"max pooling {layer.name!r} (2x2, stride 1, no pad) shrinks "
                                 f"the map by one{size}; darknet's keeps the size",
                                 ctx.anchor(layer, "pooling_param", "kernel_size"), layer=layer)
