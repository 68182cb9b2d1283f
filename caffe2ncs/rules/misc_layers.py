"""NCS42x: parameters of the other supported layers."""

from __future__ import annotations

from collections.abc import Iterator

from ..sdk import sdk_error
from .base import Diagnostic, Rule, Severity
from .context import Context
from .registry import register


@register
class CropFromData(Rule):
    """## What it does
    Finds Crop layers that take their reference size from the network input.

    ## Why is this bad?
    The NCSDK documentation: "Crop layer cannot take reference size layer from
    input: 'data'". FCN's final `score` crop is the classic case.

    ## What to do
    Crop with explicit offsets to a fixed size (the input size is fixed anyway),
    e.g. by reading the reference from a layer that has the input's size.
    """

    code = "NCS420"
    name = "crop-reference-is-input"
    severity = Severity.ERROR
    summary = "Crop takes its reference size from the network input"
    source = "NCSDK Caffe Support page, known issues"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Crop"):
            if len(layer.bottoms) >= 2 and ctx.net.is_input(layer.bottoms[1]):
                yield ctx.report(self, f"Crop {layer.name!r} takes its reference size from the "
                                 f"input {layer.bottoms[1]!r}, which the NCSDK does not support",
                                 ctx.anchor(layer, "bottom", 1), layer=layer)


@register
class CropBatchAxis(Rule):
    """## What it does
    Finds Crop layers that crop the batch axis (`axis: 0`).

    ## Why is this bad?
    The NCSDK refuses them with `[Error 24]`: its graphs have no batch axis.
    """

    code = "NCS421"
    name = "crop-batch-axis"
    severity = Severity.ERROR
    summary = "Crop on the batch axis"
    sdk_error = sdk_error(24)

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Crop"):
            if layer.param.crop_param.axis == 0:
                yield ctx.report(self, f"Crop {layer.name!r} crops from axis 0 (the batch)",
                                 ctx.anchor(layer, "crop_param", "axis"), layer=layer)


@register
class SoftmaxAxis(Rule):
    """## What it does
    Finds Softmax layers over an axis other than 1 or 2.

    ## Why is this bad?
    The NCSDK's softmax stage works along channels or height only; other axes stop
    the compiler with `[Error 4] … Axis parameter value …`.
    """

    code = "NCS422"
    name = "softmax-axis"
    severity = Severity.ERROR
    summary = "Softmax over an axis other than 1 or 2"
    sdk_error = sdk_error(4, "Axis parameter value")

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Softmax"):
            axis = layer.param.softmax_param.axis
            shape = ctx.in_shape(layer)
            if shape is not None and axis < 0:
                axis += len(shape)
            if axis not in (1, 2):
                yield ctx.report(self, f"Softmax {layer.name!r} works along axis {axis}; the NCSDK "
                                 "supports axis 1 or 2", ctx.anchor(layer, "softmax_param", "axis"),
                                 layer=layer)


@register
class PermuteBatchAxis(Rule):
    """## What it does
    Finds Permute layers that move the batch axis, and (for NCSDK 2.x) Permute
    layers whose `order` does not list all four axes.

    ## Why is this bad?
    NCSDK 1.12: "Permute on batch axis is not supported"; 2.05 also requires four
    `order` entries.
    """

    code = "NCS423"
    name = "permute-batch-axis"
    severity = Severity.ERROR
    summary = "Permute that moves the batch axis (or, for 2.x, lacks 4 axes)"
    source = "TK CaffeParser Permute"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Permute"):
            order = list(layer.param.permute_param.order)
            where = ctx.anchor(layer, "permute_param", "order", 0) or \
                ctx.anchor(layer, "permute_param")
            if order and order[0] != 0:
                yield ctx.report(self, f"Permute {layer.name!r} moves the batch axis (order "
                                 f"{order}); the NCSDK cannot", where, layer=layer)
            elif ctx.target == "ncsdk2" and len(order) != 4:
                yield ctx.report(self, f"Permute {layer.name!r} lists {len(order)} axes; NCSDK 2.x "
                                 "needs all four", where, layer=layer)


@register
class ScaleTwoInputs(Rule):
    """## What it does
    Finds Scale layers with two bottoms (a per-channel scale computed by the
    network, as in squeeze-and-excitation blocks).

    ## Why is this bad?
    The NCSDK 2.10 errata: "A Caffe Scale layer only supports 1 input tensor". A
    warning, as errata go: check it on a device.
    """

    code = "NCS424"
    name = "scale-two-inputs"
    severity = Severity.WARNING
    summary = "Scale layer with two inputs (errata)"
    source = "NCSDK 2.10 errata #17"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Scale"):
            if len(layer.bottoms) > 1:
                yield ctx.report(self, f"Scale {layer.name!r} takes its scale from a second input "
                                 f"({layer.bottoms[1]!r}); the errata say only one input is "
                                 "supported", ctx.anchor(layer, "bottom", 1), layer=layer)


@register
class FcInputNotMultipleOf8(Rule):
    """## What it does
    Finds InnerProduct layers whose input size is not a multiple of 8.

    ## Why is this bad?
    NCSDK 1.09 erratum: fully connected layers "may produce erroneous results if
    input size is not a multiple of 8". A warning: verify on a device.
    """

    code = "NCS425"
    name = "fc-input-not-multiple-of-8"
    severity = Severity.WARNING
    summary = "InnerProduct input size not a multiple of 8 (errata)"
    source = "NCSDK 1.09 errata #8"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("InnerProduct"):
            shape = ctx.in_shape(layer)
            if shape is None:
                continue
            axis = layer.param.inner_product_param.axis
            axis = axis + len(shape) if axis < 0 else axis
            size = 1
            for d in shape[axis:]:
                size *= d
            if size % 8:
                yield ctx.report(self, f"InnerProduct {layer.name!r} has {size} inputs, not a "
                                 "multiple of 8; the errata warn of wrong results",
                                 ctx.anchor(layer, "type"), layer=layer)


@register
class NormalizeOptions(Rule):
    """## What it does
    Finds SSD Normalize layers with `across_spatial: true` or
    `channel_shared: true`, with `target = "ncsdk2"`.

    ## Why is this bad?
    The NCSDK 2.x parser raises an exception for either option; only the
    per-position, per-channel L2 normalisation SSD uses is supported.
    """

    code = "NCS426"
    name = "normalize-options"
    severity = Severity.ERROR
    summary = "Normalize with across_spatial or channel_shared (NCSDK 2.x)"
    source = "TK2 CaffeParser Normalize"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        if ctx.target != "ncsdk2":
            return
        for layer in ctx.layers_of("Normalize"):
            np_ = layer.param.norm_param
            bad = [name for name in ("across_spatial", "channel_shared") if getattr(np_, name)]
            if bad:
                yield ctx.report(self, f"Normalize {layer.name!r} sets {' and '.join(bad)}; NCSDK "
                                 "2.x only supports both false", ctx.anchor(layer, "norm_param", bad[0])
                                 or ctx.anchor(layer, "norm_param"), layer=layer)


@register
class ReshapeRank(Rule):
    """## What it does
    Finds Reshape layers whose `shape` does not have 3 or 4 dims, or which use
    `axis`/`num_axes`.

    ## Why is this bad?
    The NCSDK's reshape stage takes a 3- or 4-entry `shape` (its first entry, the
    batch, is ignored) and reads neither `axis` nor `num_axes`.
    """

    code = "NCS427"
    name = "reshape-form"
    severity = Severity.ERROR
    summary = "Reshape the NCSDK cannot express"
    source = "TK CaffeParser Reshape"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Reshape"):
            rp = layer.param.reshape_param
            dims = list(rp.shape.dim)
            if len(dims) not in (3, 4):
                yield ctx.report(self, f"Reshape {layer.name!r} has {len(dims)} dims; the NCSDK "
                                 "takes 3 or 4", ctx.anchor(layer, "reshape_param", "shape")
                                 or ctx.anchor(layer, "reshape_param"), layer=layer)
            elif rp.axis != 0 or rp.num_axes != -1:
                yield ctx.report(self, f"Reshape {layer.name!r} uses axis/num_axes, which the NCSDK "
                                 "ignores", ctx.anchor(layer, "reshape_param", "axis")
                                 or ctx.anchor(layer, "reshape_param", "num_axes"), layer=layer)
