"""NCS44x: the network's output."""

from __future__ import annotations

from collections.abc import Iterator

from ..fixes.edits import set_string
from ..model.params import expected_blob_shapes
from ..sdk import sdk_error
from .base import Change, Diagnostic, Fix, FixAvailability, Rule, Severity
from .context import Context
from .registry import register


@register
class OutputNameMismatch(Rule):
    """## What it does
    Finds an output layer (the last layer writing a network output) whose name
    differs from its top.

    ## Why is this bad?
    mvNCCompile processes layers until it reaches the layer whose *name* equals
    the output *blob* (`-on`, by default the network's first output). When they
    differ it warns `Output layer's name (…) must match its top (…)`, and either
    stops at the wrong layer — e.g. before an in-place ReLU, which is then
    silently dropped — or fails with `[Error 17] … Missing link` (reported for
    MobileNetV2-SSDLite's `conv_2/sum` writing `conv_2`).

    ## Fix
    Renames the layer to its top. Safe for layers without weights; unsafe for
    layers with weights, because a caffemodel matches weights by layer name and
    would no longer supply them. Not offered when another layer already has that
    name.
    """

    code = "NCS440"
    name = "output-name-mismatch"
    severity = Severity.ERROR
    summary = "output layer's name differs from its top"
    fix_availability = FixAvailability.SOMETIMES
    sdk_error = sdk_error(37)
    source = "TK CaffeParser (stops at the layer named like the output); chuanqi305/MobileNetv2-SSDLite#10"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        names = {layer.name for layer in ctx.net.layers}
        for layer in ctx.output_layers:
            outs = [t for t in layer.tops if t in ctx.net.outputs]
            if not outs or layer.name in outs:
                continue
            top = outs[0]
            fix = None
            node = layer.locate("name")
            if node is not None and top not in names:
                learned = expected_blob_shapes(layer, ctx.net.layer_shapes[layer.index].inputs)
                make = Fix.unsafe if learned else Fix.safe
                fix = make(f"rename layer {layer.name!r} to {top!r}", set_string(node, top),
                           changes=(Change("rename-layer", layer.name, top),))
            yield ctx.report(
                self, f"output layer {layer.name!r} writes {top!r}; the NCSDK needs the output "
                "layer's name to equal its top", node or ctx.anchor(layer, "type"), layer=layer,
                fix=fix)


@register
class MultipleOutputs(Rule):
    """## What it does
    Finds networks with more than one output (blobs nothing reads).

    ## Why is this bad?
    The NCSDK compiles the network up to one output node (the first, unless
    `-on` names another) and returns that tensor only; the other outputs are
    silently not computed. Multi-scale detectors (YOLOv3, SSD without its
    DetectionOutput) and HED are typical.

    ## What to do
    Compile one graph per output, or concatenate the outputs into one blob.
    """

    code = "NCS441"
    name = "multiple-outputs"
    severity = Severity.ERROR
    summary = "network has more than one output"
    source = "TK mvNCCompile: a single output node (-on)"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        outputs = ctx.net.outputs
        if len(outputs) <= 1:
            return
        listed = ", ".join(repr(o) for o in outputs)
        for blob in outputs[1:]:
            writers = ctx.net.producers(blob)
            if not writers:
                continue
            layer = writers[-1]
            yield ctx.report(
                self, f"the network has {len(outputs)} outputs ({listed}); the NCSDK returns only "
                f"{outputs[0]!r}, so {blob!r} would not be computed",
                ctx.anchor(layer, "top", list(layer.tops).index(blob)), layer=layer)
