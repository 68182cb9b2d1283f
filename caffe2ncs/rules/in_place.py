"""NCS43x: in-place layers that the NCSDK turns into separate stages.

ReLU and ELU become post-operations of the stage that produced their input,
Dropout is skipped, and BatchNorm/Scale directly after a convolution are folded
into its weights: all of these may (and usually do) work in place. Any other
layer becomes a stage of its own, and the NCSDK finds a stage's input by the
blob's name, which for an in-place layer is also the name of the layer that
produced it: the lookup finds the producer, and the in-place stage is bypassed.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..fixes.edits import set_string
from ..model.net import Layer
from .base import Change, Diagnostic, Fix, FixAvailability, Rule, Severity
from .context import Context
from .registry import register

_FUSED_IN_PLACE = {"ReLU", "ELU", "Dropout"}
_FOLDABLE = {"BatchNorm", "Scale"}
_CONVS = {"Convolution", "ConvolutionDepthwise", "DepthwiseConvolution"}


def folds_into_conv(ctx: Context, layer: Layer) -> bool:
    """BatchNorm/Scale whose input comes (through other BatchNorm/Scale layers)
    straight from a convolution: the NCSDK folds it into the convolution."""
    current = layer
    while True:
        producer = ctx.net.producer(current, 0) if current.bottoms else None
        if producer is None:
            return False
        if producer.type in _CONVS:
            return True
        if producer.type not in _FOLDABLE:
            return False
        current = producer


def distinct_top_fix(ctx: Context, layer: Layer) -> Fix | None:
    """Give an in-place layer a top of its own and make everything after it read
    (and keep updating in place) that new blob."""
    top = layer.tops[0]
    taken = set(ctx.net.blob_shapes) | {t for lay in ctx.net.excluded for t in lay.tops}
    new = layer.name if layer.name not in taken else f"{top}/{layer.type.lower()}"
    n = 2
    while new in taken:
        new = f"{top}/{layer.type.lower()}{n}"
        n += 1
    node = layer.locate("top", 0)
    if node is None:
        return None
    edits = [set_string(node, new)]
    for later in ctx.net.layers[layer.index + 1:]:
        if top in later.tops and top not in later.bottoms:
            break  # a new, unrelated writer of the old name: it and what follows keep it
        for kind, names in (("bottom", later.bottoms), ("top", later.tops)):
            for i, name in enumerate(names):
                if name != top:
                    continue
                ref = later.locate(kind, i)
                if ref is None:
                    return None
                edits.append(set_string(ref, new))
    changes: tuple[Change, ...] = ()
    make = Fix.safe
    if top in ctx.net.outputs:
        make = Fix.unsafe
        changes = (Change("rename-output", value=(top, new)),)
    return make(f"give {layer.name!r} its own top {new!r}", *edits, changes=changes)


@register
class InPlaceTanhSigmoid(Rule):
    """## What it does
    Finds TanH and Sigmoid layers computed in place (`top` == `bottom`).

    ## Why is this bad?
    The NCSDK errata (1.10 to 2.10): TanH's top and bottom "must have different
    names". The compiler looks up a stage's input by blob name, finds the layer
    that produced the blob first, and the activation is silently bypassed; the
    same happens for Sigmoid. No error — just results without the activation.

    ## Fix
    Gives the layer a top of its own (named after the layer) and makes the layers
    after it read that. Unsafe when the blob is a network output, whose name
    then changes.
    """

    code = "NCS430"
    name = "in-place-tanh-sigmoid"
    severity = Severity.ERROR
    summary = "TanH or Sigmoid computed in place (silently bypassed)"
    fix_availability = FixAvailability.SOMETIMES
    source = "NCSDK errata (TanH in place); TK stage lookup by name"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("TanH", "Sigmoid"):
            if layer.in_place and len(layer.tops) == 1:
                yield ctx.report(
                    self, f"{layer.type} {layer.name!r} works in place on {layer.tops[0]!r}; the "
                    "NCSDK would skip it — give it a top of its own",
                    ctx.anchor(layer, "top", 0), layer=layer, fix=distinct_top_fix(ctx, layer))


@register
class InPlaceSeparateStage(Rule):
    """## What it does
    Finds other layers computed in place that the NCSDK runs as separate stages:
    PReLU, Power, LRN, Softmax, Normalize, Bias, and BatchNorm/Scale that do not
    directly follow a convolution (after a convolution they are folded into it).

    ## Why is this bad?
    The same name lookup that bypasses in-place TanH (NCS430) applies; for these
    layers it has not been confirmed on a device, so this is a warning.

    ## Fix
    Gives the layer a top of its own, as NCS430 does.
    """

    code = "NCS431"
    name = "in-place-separate-stage"
    severity = Severity.WARNING
    summary = "in-place layer that becomes a separate NCSDK stage"
    fix_availability = FixAvailability.SOMETIMES
    source = "TK stage lookup by name (code-derived; unverified on hardware)"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.net.layers:
            if not layer.in_place or len(layer.tops) != 1:
                continue
            if layer.type in _FUSED_IN_PLACE or layer.type in ("TanH", "Sigmoid"):
                continue
            if layer.type in _FOLDABLE and folds_into_conv(ctx, layer):
                continue
            if layer.type not in ("PReLU", "Power", "LRN", "Softmax", "Normalize", "Bias",
                                  "BatchNorm", "Scale", "Eltwise", "Crop", "Flatten", "Reshape"):
                continue
            yield ctx.report(
                self, f"{layer.type} {layer.name!r} works in place on {layer.tops[0]!r} but becomes "
                "a stage of its own; the NCSDK may bypass it — give it a top of its own",
                ctx.anchor(layer, "top", 0), layer=layer, fix=distinct_top_fix(ctx, layer))
