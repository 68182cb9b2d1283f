"""NCS2xx: layer types the NCSDK cannot compile, and layers that only make
sense while training."""

from __future__ import annotations

from collections.abc import Iterator

from ..fixes.edits import delete_node, insert_line_after, rename_reads, set_string
from ..model.net import Layer, LayerSpelling
from ..sdk import LOSS_LAYERS, DATA_LAYERS, SUPPORTED_LAYERS, TRAINING_ONLY, WORKAROUNDS, sdk_error
from .base import Change, Diagnostic, Edit, Fix, FixAvailability, Rule, Severity
from .context import Context
from .registry import register

_DEPTHWISE_TYPES = ("DepthwiseConvolution", "ConvolutionDepthwise")


@register
class UnsupportedLayerType(Rule):
    """## What it does
    Finds layers whose type the NCSDK's Caffe compiler does not know.

    ## Why is this bad?
    mvNCCompile stops at the first one with `[Error 4] Toolkit Error: Stage Type
    Not Supported: <type>` (NCSDK 2.x's new parser: a bare `KeyError`). The
    supported types are Bias, ELU, PReLU, ReLU, Scale, Sigmoid, TanH,
    InnerProduct, BatchNorm, LRN, Concat, Eltwise, Flatten, Reshape, Slice,
    Softmax, Convolution, Deconvolution, Pooling and, since NCSDK 1.11, Permute,
    Normalize, PriorBox, DetectionOutput, Crop and Power. Layers from Caffe forks
    (Upsample, ShuffleChannel, Interp, Reorg, Region, custom depthwise
    convolutions, …) are not.

    ## What to do
    The message suggests the usual workaround for well-known types.

    ## Fix
    For the custom depthwise types (`DepthwiseConvolution`,
    `ConvolutionDepthwise`), which compute exactly a grouped convolution with one
    group per channel, an unsafe fix changes the type to `Convolution` and sets
    `group` to the number of channels (unsafe: it relies on the fork's layer
    being that convolution; its weights have the same layout). For `Split`, a
    safe fix removes the layer and makes its readers read its bottom.
    """

    code = "NCS201"
    name = "unsupported-layer-type"
    severity = Severity.ERROR
    summary = "layer type the NCSDK does not support"
    fix_availability = FixAvailability.SOMETIMES
    sdk_error = sdk_error(4)
    source = "NCSDK Caffe Support page (supported layers); TK CaffeParser"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.net.layers:
            t = layer.type
            if t in SUPPORTED_LAYERS or t in TRAINING_ONLY or t == "Python":
                continue
            hint = WORKAROUNDS.get(t)
            message = f"layer {layer.name!r} has type {t!r}, which the NCSDK does not support"
            if hint:
                message += f"; {hint}"
            fix = None
            if t in _DEPTHWISE_TYPES:
                fix = _depthwise_fix(ctx, layer)
            elif t == "Split":
                fix = _split_fix(ctx, layer)
            yield ctx.report(self, message, ctx.anchor(layer, "type"), layer=layer, fix=fix)


def _depthwise_fix(ctx: Context, layer: Layer) -> Fix | None:
    shape = ctx.in_shape(layer)
    type_node = layer.locate("type")
    conv = layer.locate("convolution_param")
    if shape is None or len(shape) < 2 or type_node is None or conv is None or \
            layer.spelling is not LayerSpelling.LAYER:
        return None
    channels = shape[1]
    cp = layer.param.convolution_param
    if channels < 1:
        return None
    edits = [set_string(type_node, "Convolution")]
    if layer.type == "ConvolutionDepthwise":
        # The fork's layer makes `channels` outputs whatever num_output says; a
        # Convolution needs num_output to say it.
        if cp.num_output != channels:
            num_output = conv.get("num_output")
            if num_output is None:
                return None
            edits.append(Edit(num_output.vstart, num_output.end, str(channels)))
    elif cp.num_output % channels:
        return None
    group = conv.get("group")
    if group is not None:
        if cp.group != channels:
            edits.append(Edit(group.vstart, group.end, str(channels)))
    else:
        anchor = conv.get("num_output") or (conv.children[-1] if conv.children else None)
        if anchor is None:
            return None
        edits.append(insert_line_after(ctx.text, anchor, f"group: {channels}"))
    return Fix.unsafe(f"make it a Convolution with group: {channels}", *edits, changes=(
        Change("retype-layer", layer.name, "Convolution"),
        Change("set-param", layer.name, ("convolution_param.group", channels))))


def _split_fix(ctx: Context, layer: Layer) -> Fix | None:
    if len(layer.bottoms) != 1 or layer.node is None:
        return None
    source = layer.bottoms[0]
    edits = [delete_node(ctx.text, layer.node)]
    for top in dict.fromkeys(layer.tops):  # a top listed twice is renamed once
        if top in ctx.net.outputs:
            return None
        readers = ctx.net.readers(layer, top)
        if not bypass_keeps_values(ctx, layer, readers):
            return None
        edits.extend(rename_reads(ctx.net, readers, top, source))
    return Fix.safe(f"remove the Split; its readers read {source!r} directly", *edits,
                    changes=(Change("remove-layer", layer.name),))


def bypass_keeps_values(ctx: Context, layer: Layer, readers: list[Layer]) -> bool:
    """Whether ``readers`` of ``layer``'s output would see the same values if they
    read ``layer``'s bottom instead: true unless a layer between ``layer`` and the
    last reader writes that bottom again (e.g. an in-place ReLU on it)."""
    if not readers:
        return True
    source = layer.bottoms[0]
    last = max(r.index for r in readers)
    for other in ctx.net.layers[layer.index + 1:last]:
        if source in other.tops:
            return False
    # a reader that writes the bottom in place must be the last to read it
    return all(source not in r.tops or r.index == last for r in readers)


@register
class TrainingOnlyLayer(Rule):
    """## What it does
    Finds layers that only exist for training: data layers (`Data`, `ImageData`,
    `HDF5Data`, `MemoryData`, `DummyData`, …), losses (`SoftmaxWithLoss`, …),
    `Accuracy` and `Silence`, in a network meant for inference.

    ## Why is this bad?
    The NCSDK does no training; its parser knows none of these types and stops
    with `[Error 4]`. A deploy file should not contain them: this usually means
    the training prototxt was given instead of the deploy one.

    ## Fix
    An unsafe fix deletes losses, metrics and Silence layers when nothing reads
    what they produce (unsafe: the network's outputs change). A data layer is
    replaced by `input:` + `input_shape` with the shape it produces, when that
    shape is written in the file (`DummyData`, `MemoryData`, `ImageData` with
    `new_height`/`new_width`, or a `crop_size`) and nothing but training-only
    layers reads its other tops (the labels); unsafe because the values fed to
    the network are no longer read and transformed by the layer.
    """

    code = "NCS202"
    name = "training-only-layer"
    severity = Severity.ERROR
    summary = "training-only layer (data layer, loss, Accuracy, Silence)"
    fix_availability = FixAvailability.SOMETIMES
    sdk_error = sdk_error(4)

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.net.layers:
            if layer.type not in TRAINING_ONLY:
                continue
            kind = ("data layer" if layer.type in DATA_LAYERS else
                    "loss" if layer.type in LOSS_LAYERS else "training-only layer")
            fix = None
            if layer.type in DATA_LAYERS:
                fix = _data_layer_fix(ctx, layer)
            elif layer.node is not None and not any(
                    ctx.net.readers(layer, top) for top in layer.tops):
                fix = Fix.unsafe(f"delete {layer.type} layer {layer.name!r}",
                                 delete_node(ctx.text, layer.node),
                                 changes=(Change("remove-layer", layer.name),))
            yield ctx.report(
                self, f"layer {layer.name!r} is a {kind} ({layer.type}), which only makes sense "
                "for training; use the network's deploy prototxt", ctx.anchor(layer, "type"),
                layer=layer, fix=fix)


def data_shape(ctx: Context, layer: Layer) -> tuple[int, ...] | None:
    """The shape of a data layer's first top, when the file says it."""
    shape = ctx.out_shape(layer)
    if shape is not None:
        return tuple(shape)
    p = layer.param
    crop = p.transform_param.crop_size if p.HasField("transform_param") else 0
    if layer.type == "ImageData":
        ip = p.image_data_param
        h, w = (crop, crop) if crop else (ip.new_height, ip.new_width)
        if h and w:
            return (ip.batch_size or 1, 3 if ip.is_color else 1, h, w)
    return None


def _data_layer_fix(ctx: Context, layer: Layer) -> Fix | None:
    from ..fixes.edits import indent_unit, indentation, line_start, newline_of, requote

    net = ctx.net
    if net.inputs or layer.node is None or not layer.tops or layer.spelling is not LayerSpelling.LAYER:
        return None
    others = [lay for lay in net.layers if lay.type in DATA_LAYERS]
    if others != [layer] or any(r.type not in TRAINING_ONLY for top in layer.tops[1:]
                                for r in net.readers(layer, top)):
        return None
    shape = data_shape(ctx, layer)
    top_node = layer.locate("top", 0)
    if shape is None or not shape or top_node is None:
        return None
    text = ctx.text
    nl = newline_of(text)
    unit = indent_unit(text)
    first = next(child for child in net.document.fields if child.name in ("layer", "layers"))
    indent = indentation(text, first.start)
    top = layer.tops[0]
    lines = [f"{indent}input: {requote(top_node.value, top)}", f"{indent}input_shape {{"]
    lines += [f"{indent}{unit}dim: {d}" for d in shape]
    lines.append(f"{indent}}}")
    start = line_start(text, first.start)
    edits = [delete_node(text, layer.node)]
    if first is layer.node:
        # replace the layer where it stands (keeping its comments)
        deletion = edits[0]
        kept = deletion.content
        edits = [Edit(deletion.start, deletion.end, kept + nl.join(lines) + nl)]
    else:
        edits.insert(0, Edit(start, start, nl.join(lines) + nl))
    return Fix.unsafe(f"replace {layer.type} layer {layer.name!r} by input {top!r} "
                      f"({'x'.join(map(str, shape))})", *edits,
                      changes=(Change("layer-to-input", layer.name, top),))


@register
class DropoutNotInPlace(Rule):
    """## What it does
    Finds `Dropout` layers whose top differs from their bottom.

    ## Why is this bad?
    At inference Dropout does nothing, and the NCSDK's parser simply skips Dropout
    layers. When the layer is in place (`top` == `bottom`) that is harmless; when
    it is not, its top is never produced and the next layer fails with
    `[Error 17] … Could not build graph. Missing link: <top>`.

    ## Fix
    Removes the layer and makes its readers read its bottom instead. Unsafe when
    it is the last layer writing a network output (whose name then changes), or
    when its bottom is written again (e.g. by an in-place ReLU) before all its
    readers have read it.
    """

    code = "NCS203"
    name = "dropout-not-in-place"
    severity = Severity.ERROR
    summary = "Dropout layer that is not in place"
    fix_availability = FixAvailability.ALWAYS
    sdk_error = sdk_error(17)
    source = "TK CaffeParser skips Dropout (`continue`)"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Dropout"):
            if layer.in_place or len(layer.bottoms) != 1 or len(layer.tops) != 1:
                continue
            top, bottom = layer.tops[0], layer.bottoms[0]
            fix = None
            if layer.node is not None:
                readers = ctx.net.readers(layer, top)
                edits = [delete_node(ctx.text, layer.node)]
                edits += rename_reads(ctx.net, readers, top, bottom)
                changes = [Change("remove-layer", layer.name)]
                make = Fix.safe
                if top in ctx.net.outputs and not any(
                        top in later.tops for later in ctx.net.layers[layer.index + 1:]):
                    # the Dropout writes the network's output, which becomes its bottom
                    make = Fix.unsafe
                    changes.append(Change("rename-output", value=(top, bottom)))
                if not bypass_keeps_values(ctx, layer, readers):
                    make = Fix.unsafe
                fix = make(f"remove the Dropout; its readers read {bottom!r}", *edits,
                           changes=tuple(changes))
            yield ctx.report(
                self, f"Dropout {layer.name!r} writes {top!r} instead of working in place on "
                f"{bottom!r}; the NCSDK skips Dropout, so {top!r} would never be produced",
                ctx.anchor(layer, "top", 0), layer=layer, fix=fix)


@register
class DropoutInPlace(Rule):
    """## What it does
    Finds in-place `Dropout` layers.

    ## Why is this bad?
    It is not: Dropout is the identity at inference and the NCSDK skips it. This
    opt-in rule (select it with `--select NCS204` or `extend-select`) reports it
    for information, with a fix that removes the dead layer from the deploy file.
    """

    code = "NCS204"
    name = "dropout-in-place"
    severity = Severity.INFO
    summary = "in-place Dropout layer (skipped at inference)"
    fix_availability = FixAvailability.ALWAYS
    default_enabled = False

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Dropout"):
            if not layer.in_place:
                continue
            fix = None
            if layer.node is not None:
                fix = Fix.safe(f"remove Dropout layer {layer.name!r}",
                               delete_node(ctx.text, layer.node),
                               changes=(Change("remove-layer", layer.name),))
            yield ctx.report(self, f"Dropout {layer.name!r} does nothing at inference; the NCSDK "
                             "skips it", ctx.anchor(layer, "type"), layer=layer, fix=fix)


@register
class PythonLayer(Rule):
    """## What it does
    Finds `Python` layers.

    ## Why is this bad?
    A Python layer runs arbitrary code from a module named in the file. The NCSDK
    cannot compile it (`[Error 4]`), and caffe2ncs never imports or runs it: a
    model file must not be able to execute code on your machine.

    ## What to do
    Run the layer's computation on the host, before or after the part of the
    network that runs on the stick.
    """

    code = "NCS205"
    name = "python-layer"
    severity = Severity.ERROR
    summary = "Python layer (arbitrary code; never imported)"
    sdk_error = sdk_error(4)

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Python"):
            pp = layer.param.python_param
            where = f" ({pp.module}.{pp.layer})" if pp.module or pp.layer else ""
            yield ctx.report(
                self, f"layer {layer.name!r} is a Python layer{where}; the NCSDK cannot compile "
                "it, and caffe2ncs does not import it", ctx.anchor(layer, "type"), layer=layer)


@register
class LearnedBias(Rule):
    """## What it does
    Finds `Bias` layers with a single bottom (a learned bias).

    ## Why is this bad?
    The NCSDK's legacy Caffe parser treats every Bias layer as an element-wise
    sum of its bottoms; with one bottom (the bias being a learned blob) the stage
    is built without the bias.

    ## What to do
    Fold the bias into the preceding convolution or inner product (its bias
    term), or use a `Scale` layer with `bias_term: true` and unit scale.
    """

    code = "NCS206"
    name = "learned-bias"
    severity = Severity.ERROR
    summary = "Bias layer with a learned bias (one bottom)"
    source = "TK CaffeParser: Bias handled as Eltwise sum"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Bias"):
            if len(layer.bottoms) == 1:
                yield ctx.report(
                    self, f"Bias {layer.name!r} adds a learned bias, which the NCSDK's Caffe parser "
                    "does not apply; fold it into the previous layer's bias term",
                    ctx.anchor(layer, "type"), layer=layer)


@register
class LegacyLayersFormat(Rule):
    """## What it does
    Finds networks written with the 2014 `layers { type: CONVOLUTION … }` blocks
    (or the 2013 V0 format).

    ## Why is this bad?
    Caffe upgrades these when it loads a network, but the NCSDK parses the
    prototxt itself and only looks at `layer` blocks: it sees no layers at all
    and crashes (`IndexError: list index out of range` at
    `if layers[0].type == 'Input'`).

    ## What to do
    Convert the file with Caffe's `upgrade_net_proto_text` tool, or rewrite the
    blocks: `layers` → `layer`, `type: CONVOLUTION` → `type: "Convolution"`,
    `blobs_lr`/`weight_decay` → `param { lr_mult decay_mult }`.
    """

    code = "NCS207"
    name = "legacy-layers-format"
    severity = Severity.ERROR
    summary = "network uses the legacy 'layers' format"
    source = "TK CaffeParser reads NetParameter.layer only"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        doc = ctx.net.document
        if doc is None:
            return
        first = doc.root.get("layers") and doc.root.all("layers")[0]
        if first is None:
            return
        count = len(doc.root.all("layers"))
        era = "V0 (2013)" if first.get("layer") is not None else "V1 (2014)"
        yield ctx.report(
            self, f"the network uses {count} legacy {era} 'layers' block(s); the NCSDK only reads "
            "'layer' blocks and would see an empty network", first)
