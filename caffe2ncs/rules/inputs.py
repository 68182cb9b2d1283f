"""NCS1xx: how the network declares its input.

The NCSDK's Caffe parser wants exactly one input, called ``data``, with batch
size 1, declared at the top of the file as ``input: "data"`` followed by
``input_shape { dim: 1 dim: C dim: H dim: W }``.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..fixes.edits import (
    blob_references, comments_in, delete_node, indent_unit, indentation, line_end, line_start,
    newline_of, requote, set_string,
)
from ..model.net import InputForm, InputSpec
from ..model.textformat import Node
from ..sdk import DATA_LAYERS, sdk_error
from .base import Change, Diagnostic, Edit, Fix, FixAvailability, Rule, Severity
from .context import Context
from .registry import register


def _shape_text(shape) -> str:
    return "x".join(map(str, shape)) if shape is not None else "?"


@register
class MultipleInputs(Rule):
    """## What it does
    Finds networks that declare more than one input.

    ## Why is this bad?
    The NCSDK feeds exactly one tensor to the network ("The number of inputs
    must be 1"). Its Caffe parser only reads the first input shape; a layer
    reading a second input fails to compile with `[Error 17] … Missing link`.

    ## Example
    Faster R-CNN declares `data` and `im_info`: it cannot run on the stick
    as one graph.

    ## What to do
    Split the network: run the part that depends only on the image on the
    stick and feed its output, with the other inputs, to the rest on the host.
    """

    code = "NCS101"
    name = "multiple-inputs"
    severity = Severity.ERROR
    summary = "network declares more than one input"
    sdk_error = sdk_error(17)
    source = "NCSDK Caffe Support page: 'The number of inputs must be 1'"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        inputs = ctx.net.inputs
        if len(inputs) <= 1:
            return
        names = ", ".join(repr(i.name) for i in inputs)
        for spec in inputs[1:]:
            yield ctx.report(
                self, f"network has {len(inputs)} inputs ({names}); the NCSDK takes exactly one, "
                f"so {spec.name!r} cannot be fed", spec.node or spec.layer_node, layer=spec.layer_name)


def _batch_node(spec: InputSpec) -> Node | None:
    """The node holding the batch dimension of an input."""
    if spec.shape_node is None:
        return None
    if spec.form is InputForm.INPUT_DIM:
        return spec.shape_node  # the first input_dim of this input
    dims = spec.shape_node.all("dim")
    return dims[0] if dims else None


@register
class BatchNotOne(Rule):
    """## What it does
    Finds inputs whose first dimension (the batch size) is not 1.

    ## Why is this bad?
    The stick runs one image per inference. mvNCCompile stops with
    `[Error 24] Toolkit Error: >1 image inference not supported.` (later SDKs:
    "Inference with Batching of images is not supported."). Deploy files from
    model zoos often keep the batch of 10 used for oversampled testing.

    ## Example
    ```
    input_param { shape: { dim: 10 dim: 3 dim: 224 dim: 224 } }
    ```
    ## Fix
    Sets the batch dimension to 1. The fix is unsafe when a Reshape layer spells
    the batch out explicitly (its first dim is not 0 or -1), since that layer must
    then be edited too.
    """

    code = "NCS102"
    name = "batch-not-one"
    severity = Severity.ERROR
    summary = "input batch size is not 1"
    fix_availability = FixAvailability.ALWAYS
    sdk_error = sdk_error(24)
    source = "NCSDK Caffe Support page; TK CaffeParser batch check"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for spec in ctx.net.inputs:
            if spec.shape is None or not spec.shape or spec.shape[0] == 1:
                continue
            node = _batch_node(spec)
            fix = None
            if node is not None and node.children is None:
                explicit = [layer for layer in ctx.net.layers if layer.type == "Reshape"
                            and len(layer.param.reshape_param.shape.dim)
                            and layer.param.reshape_param.axis == 0
                            and layer.param.reshape_param.shape.dim[0] not in (0, -1)]
                make = Fix.unsafe if explicit else Fix.safe
                title = "set the batch size to 1"
                if explicit:
                    title += f" (also edit Reshape layer {explicit[0].name!r}, which spells it out)"
                fix = make(title, Edit(node.vstart, node.end, "1"),
                           changes=(Change("set-batch", value=1),))
            yield ctx.report(
                self, f"input {spec.name!r} has batch size {spec.shape[0]} "
                f"(shape {_shape_text(spec.shape)}); the stick runs one image at a time",
                node or spec.shape_node or spec.node, layer=spec.layer_name, fix=fix)


@register
class InputNotNamedData(Rule):
    """## What it does
    Finds a network input that is not called `data`.

    ## Why is this bad?
    mvNCCompile feeds the network by writing `net.blobs['data']`; any other name
    fails with a `KeyError` before anything is compiled (the documentation:
    "Input should be always called 'data'").

    ## Fix
    Renames the input to `data` everywhere it is referenced: the `input:` (or the
    Input layer's `top:`) and every `bottom:` that reads it. Not offered when a
    blob called `data` already exists.
    """

    code = "NCS103"
    name = "input-not-named-data"
    severity = Severity.ERROR
    summary = "the network input is not called 'data'"
    fix_availability = FixAvailability.SOMETIMES
    source = "NCSDK Caffe Support page, known issues"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        net = ctx.net
        if not net.inputs or any(spec.name == "data" for spec in net.inputs):
            return
        spec = net.inputs[0]
        fix = None
        taken = "data" in net.blob_shapes or any("data" in layer.tops for layer in net.excluded)
        if not taken and spec.node is not None:
            edits = [set_string(spec.node, "data")]
            for node in blob_references(net, spec.name):
                edits.append(set_string(node, "data"))
            fix = Fix.safe(f"rename input {spec.name!r} to 'data' and every reference to it",
                           *_unique(edits), changes=(Change("rename-input", value=(spec.name, "data")),))
        yield ctx.report(self, f"the input is called {spec.name!r}; the NCSDK requires 'data'",
                         spec.node or spec.layer_node, layer=spec.layer_name, fix=fix)


def _unique(edits: list[Edit]) -> list[Edit]:
    seen = {}
    for e in edits:
        seen[(e.start, e.end)] = e
    return list(seen.values())


@register
class InputLayerForm(Rule):
    """## What it does
    Finds inputs declared as an `Input` layer with `input_param`.

    ## Why is this bad?
    The NCSDK documentation states this form is not supported: the input must be
    declared as `input:` + `input_shape` at the top of the file. (Some SDK
    versions read an `Input` layer that comes first, but the batch check was
    skipped for it in early releases and an `Input` layer that is not first
    gives `[Error 20] Input Layer must be in an input_shape construct`.)

    ## Example
    ```
    layer {
      name: "data"
      type: "Input"
      top: "data"
      input_param { shape: { dim: 10 dim: 3 dim: 224 dim: 224 } }
    }
    ```
    becomes
    ```
    input: "data"
    input_shape {
      dim: 10
      dim: 3
      dim: 224
      dim: 224
    }
    ```
    (NCS102 then sets the batch to 1.)

    ## Fix
    Replaces the layer by the top-level form, placed before the first layer;
    comments inside the layer block are kept.
    """

    code = "NCS104"
    name = "input-layer"
    severity = Severity.ERROR
    summary = "input declared with an Input layer (input_param)"
    fix_availability = FixAvailability.ALWAYS
    sdk_error = sdk_error(20)
    source = "NCSDK Caffe Support page: the Input layer form is not supported"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        done: set[int] = set()
        for spec in ctx.net.inputs:
            if spec.form is not InputForm.INPUT_PARAM or spec.layer_node is None:
                continue
            node = spec.layer_node
            if id(node) in done:
                continue
            done.add(id(node))
            specs = [s for s in ctx.net.inputs if s.layer_node is node]
            fix = self._fix(ctx, node, specs)
            yield ctx.report(
                self, f"input {', '.join(repr(s.name) for s in specs)} is declared with an Input "
                "layer; the NCSDK wants 'input:' + 'input_shape' at the top of the file",
                node.get("type") or node, layer=spec.layer_name, fix=fix)

    def _fix(self, ctx: Context, node: Node, specs: list[InputSpec]) -> Fix | None:
        if any(s.shape is None for s in specs):
            return None
        text = ctx.text
        nl = newline_of(text)
        unit = indent_unit(text)
        first_layer = _first_layer_node(ctx)
        target = first_layer if first_layer is not None else node
        indent = indentation(text, target.start)
        lines = [f"{indent}{c}" for c in comments_in(text, node.start, node.end)]
        for spec in specs:
            lines.append(f"{indent}input: {requote(_quote_style(node), spec.name)}")
            lines.append(f"{indent}input_shape {{")
            lines.extend(f"{indent}{unit}dim: {d}" for d in spec.shape)
            lines.append(f"{indent}}}")
        block = nl.join(lines)
        if target is node:
            start = line_start(text, node.start)
            end = line_end(text, node.end)
            if text[node.end:end].strip():
                # something follows the closing brace on its line: keep it
                return Fix.safe("declare the input with input: and input_shape",
                                Edit(node.start, node.end, block.lstrip()))
            trailing = text[end - 1:end] == "\r"
            return Fix.safe("declare the input with input: and input_shape",
                            Edit(start, end - (1 if trailing else 0), block))
        # The Input layer is not the first layer: delete it, insert before the first one.
        start = line_start(text, target.start)
        return Fix.safe("declare the input with input: and input_shape before the first layer",
                        Edit(start, start, block + nl), delete_node(text, node, keep_comments=False))


def _quote_style(node: Node) -> str:
    top = node.get("top")
    return top.value if top is not None else '"'


def _first_layer_node(ctx: Context) -> Node | None:
    doc = ctx.net.document
    if doc is None:
        return None
    for child in doc.fields:
        if child.name in ("layer", "layers"):
            return child
    return None


@register
class InputDimForm(Rule):
    """## What it does
    Finds inputs declared with the deprecated `input_dim` fields.

    ## Why is this bad?
    The NCSDK's Caffe parser only reads `input_shape`; with `input_dim` it stops
    with `[Error 20] Toolkit Error: Input Layer must be in an input_shape
    construct.`

    ## Example
    ```
    input: "data"
    input_dim: 1
    input_dim: 3
    input_dim: 224
    input_dim: 224
    ```
    becomes
    ```
    input: "data"
    input_shape {
      dim: 1
      dim: 3
      dim: 224
      dim: 224
    }
    ```
    ## Fix
    Replaces the `input_dim` fields by one `input_shape` block per input, where
    the first `input_dim` was.
    """

    code = "NCS105"
    name = "input-dim-form"
    severity = Severity.ERROR
    summary = "input declared with deprecated input_dim fields"
    fix_availability = FixAvailability.SOMETIMES
    sdk_error = sdk_error(20)
    source = "TK CaffeParser: only input_shape is read"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        net = ctx.net
        specs = [s for s in net.inputs if s.form is InputForm.INPUT_DIM]
        if not specs or net.document is None:
            return
        dims = net.document.root.all("input_dim")
        fix = None
        if dims and len(dims) == 4 * len([s for s in net.inputs if s.form is InputForm.INPUT_DIM]) \
                and all(s.shape is not None for s in specs):
            fix = self._fix(ctx, dims, specs)
        yield ctx.report(
            self, f"input {', '.join(repr(s.name) for s in specs)} is declared with input_dim; "
            "the NCSDK only reads input_shape", dims[0] if dims else specs[0].node, fix=fix)

    def _fix(self, ctx: Context, dims: list[Node], specs: list[InputSpec]) -> Fix:
        text = ctx.text
        nl = newline_of(text)
        unit = indent_unit(text)
        indent = indentation(text, dims[0].start)
        lines = []
        for spec in specs:
            lines.append("input_shape {" if not lines else f"{indent}input_shape {{")
            lines.extend(f"{indent}{unit}dim: {d}" for d in spec.shape)
            lines.append(f"{indent}}}")
        block = nl.join(lines)
        edits = [Edit(dims[0].start, dims[0].end, block)]
        for node in dims[1:]:
            edits.append(delete_node(text, node))
        return Fix.safe("replace input_dim by input_shape", *edits)


@register
class InputLayerNotFirst(Rule):
    """## What it does
    Finds an `Input` layer that is not the first layer of the file.

    ## Why is this bad?
    The NCSDK's parser only recognises an `Input` layer in first position; anywhere
    else compilation stops with `[Error 20] Input Layer must be in an input_shape
    construct.`

    ## Fix
    NCS104's fix (declaring the input at the top of the file) resolves this too.
    """

    code = "NCS106"
    name = "input-layer-not-first"
    severity = Severity.ERROR
    summary = "Input layer is not the first layer"
    sdk_error = sdk_error(20)
    source = "TK CaffeParser: `if layers[0].type == 'Input'`"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        seen = set()
        for spec in ctx.net.inputs:
            if spec.form is InputForm.INPUT_PARAM and spec.layer_position and \
                    id(spec.layer_node) not in seen:
                seen.add(id(spec.layer_node))
                yield ctx.report(
                    self, f"Input layer {spec.layer_name!r} is layer #{spec.layer_position + 1} "
                    "of the file; the NCSDK only accepts an Input layer in first position",
                    spec.layer_node, layer=spec.layer_name)


@register
class NoInput(Rule):
    """## What it does
    Finds networks that declare no input at all: no `input:`, no `Input` layer.

    ## Why is this bad?
    Training definitions take their input from data layers (`Data`, `ImageData`,
    …) which read a database or a list of files; the NCSDK needs the shape of
    the single input tensor it will be given, and stops with `[Error 20] Input
    Layer must be in an input_shape construct.`

    ## What to do
    Use the network's deploy prototxt, or replace the data layer by
    `input: "data"` + `input_shape { … }` with the shape the data layer produced.
    """

    code = "NCS107"
    name = "no-input"
    severity = Severity.ERROR
    summary = "network declares no input"
    sdk_error = sdk_error(20)

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        net = ctx.net
        if net.inputs:
            return
        data = [layer for layer in net.layers if layer.type in DATA_LAYERS]
        hint = (f"; it reads data through {data[0].type} layer {data[0].name!r} — use the deploy "
                "prototxt, or declare input: \"data\" + input_shape instead") if data else ""
        where = ctx.anchor(data[0]) if data else (net.layers[0].node if net.layers else None)
        yield ctx.report(self, f"the network declares no input{hint}", where,
                         layer=data[0] if data else None)


@register
class InputWithoutShape(Rule):
    """## What it does
    Finds an `input:` with no dimensions (neither `input_shape` nor `input_dim`).

    ## Why is this bad?
    Such files come from caffemodels of 2014 and earlier, whose shapes were given
    elsewhere; the NCSDK cannot size the network without them.

    ## What to do
    Add `input_shape { dim: 1 dim: C dim: H dim: W }` after the `input:`.
    """

    code = "NCS108"
    name = "input-without-shape"
    severity = Severity.ERROR
    summary = "input has no dimensions"
    sdk_error = sdk_error(20)

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for spec in ctx.net.inputs:
            if spec.form is InputForm.NO_SHAPE:
                yield ctx.report(self, f"input {spec.name!r} has no dimensions", spec.node, layer=spec.layer_name)

