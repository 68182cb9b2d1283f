"""NCS40x: Concat and Slice, which the NCSDK implements without copying, by
letting producers write into, and consumers read from, parts of one buffer."""

from __future__ import annotations

from collections.abc import Iterator

from ..fixes.edits import delete_node, indentation, newline_of, requote
from ..model.net import Layer
from .base import Change, Diagnostic, Edit, Fix, FixAvailability, Rule, Severity
from .context import Context
from .registry import register


def concat_axis(ctx: Context, layer: Layer) -> int | None:
    cp = layer.param.concat_param
    shape = ctx.in_shape(layer)
    rank = len(shape) if shape is not None else 4
    axis = cp.concat_dim if cp.HasField("concat_dim") else cp.axis
    if not -rank <= axis < rank:
        return None
    return axis + rank if axis < 0 else axis


@register
class ConcatAxis(Rule):
    """## What it does
    Finds Concat layers joining along an axis other than channels (1) or height (2).

    ## Why is this bad?
    The NCSDK implements Concat by having the producers write side by side into
    one buffer; it can only do that along channels or height. Other axes stop the
    compiler with `Exception: Concat on axis N not implemented`.
    """

    code = "NCS401"
    name = "concat-axis"
    severity = Severity.ERROR
    summary = "Concat along an axis other than 1 (channels) or 2 (height)"
    source = "TK CaffeParser: 'Concat on axis N not implemented'"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Concat"):
            axis = concat_axis(ctx, layer)
            if axis is not None and axis not in (1, 2):
                yield ctx.report(self, f"Concat {layer.name!r} joins along axis {axis}; the NCSDK "
                                 "only concatenates along channels (1) or height (2)",
                                 ctx.anchor(layer, "concat_param", "axis")
                                 or ctx.anchor(layer, "concat_param", "concat_dim"), layer=layer)


@register
class NestedConcat(Rule):
    """## What it does
    Finds a Concat whose input is itself the output of a Concat.

    ## Why is this bad?
    The NCSDK's implicit concatenation cannot nest: the compiler crashes with
    `AttributeError: 'list' object has no attribute 'concat_axis'` (reported for
    PeleeNet).

    ## Fix
    An unsafe fix flattens the two into one: the outer Concat reads the inner
    one's inputs directly and the inner Concat is deleted. It is offered only
    when both join along the same axis and nothing but the outer Concat reads
    the inner one: otherwise the inner Concat stays, and its inputs would then
    feed two concatenations (NCS403), which the NCSDK cannot do either (this is
    the case of DenseNet, whose dense blocks need explicit copies). Unsafe
    because the inner Concat's output no longer exists as a blob.
    """

    code = "NCS402"
    name = "nested-concat"
    severity = Severity.ERROR
    summary = "Concat reading the output of another Concat"
    fix_availability = FixAvailability.SOMETIMES
    source = "Robert-JunWang/Pelee#29"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        net = ctx.net
        for layer in ctx.layers_of("Concat"):
            for i, bottom in enumerate(layer.bottoms):
                inner = net.producer(layer, i)
                if inner is None or inner.type != "Concat":
                    continue
                fix = self._fix(ctx, layer, i, inner)
                yield ctx.report(
                    self, f"Concat {layer.name!r} reads {bottom!r}, the output of Concat "
                    f"{inner.name!r}; the NCSDK cannot nest concatenations",
                    ctx.anchor(layer, "bottom", i), layer=layer, fix=fix)

    def _fix(self, ctx: Context, outer: Layer, i: int, inner: Layer) -> Fix | None:
        if concat_axis(ctx, outer) != concat_axis(ctx, inner) or concat_axis(ctx, outer) is None:
            return None
        node = outer.locate("bottom", i)
        if node is None or inner.node is None or outer.bottoms.count(outer.bottoms[i]) > 1:
            return None
        readers = ctx.net.readers(inner, inner.tops[0])
        if readers != [outer] or inner.tops[0] in ctx.net.outputs or len(inner.tops) != 1:
            return None  # the inner Concat must stay: flattening would feed two concats
        # the inner Concat's inputs must still hold the same values where the outer reads them
        for other in ctx.net.layers[inner.index + 1:outer.index]:
            if any(b in other.tops for b in inner.bottoms):
                return None
        text = ctx.text
        nl = newline_of(text)
        indent = indentation(text, node.start)
        sources = [requote(node.value, b) for b in inner.bottoms]
        replacement = f"{nl}{indent}".join(f"bottom: {s}" for s in sources)
        edits = [Edit(node.start, node.end, replacement), delete_node(text, inner.node)]
        return Fix.unsafe(f"read {', '.join(inner.bottoms)} directly instead of {inner.name!r}",
                          *edits, changes=(Change("flatten-concat", outer.name, inner.name),
                                           Change("remove-layer", inner.name)))


@register
class BlobInTwoConcats(Rule):
    """## What it does
    Finds a layer output that two different Concat layers read.

    ## Why is this bad?
    With implicit concatenation, a producer writes its output straight into the
    Concat's buffer, so it can only be part of one: the compiler stops with "A
    layer cannot be part of multiple concats".

    ## What to do
    Add an explicit copy (e.g. a Power layer with default parameters) in front of
    one of the Concats.
    """

    code = "NCS403"
    name = "blob-in-two-concats"
    severity = Severity.ERROR
    summary = "one layer output feeds two Concat layers"
    source = "TK NetworkStage.concat: 'A layer cannot be part of multiple concats'"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        net = ctx.net
        seen: dict[tuple[int, str], Layer] = {}
        for layer in ctx.layers_of("Concat"):
            for i, bottom in enumerate(layer.bottoms):
                key = (net.bottom_producers[layer.index][i], bottom)
                if key[0] < -1:
                    continue
                first = seen.get(key)
                if first is None:
                    seen[key] = layer
                elif first is not layer:
                    yield ctx.report(
                        self, f"{bottom!r} feeds both Concat {first.name!r} and Concat "
                        f"{layer.name!r}; in the NCSDK an output can be part of one concatenation "
                        "only", ctx.anchor(layer, "bottom", i), layer=layer)


@register
class SliceWithoutPoints(Rule):
    """## What it does
    Finds Slice layers without `slice_point` (an equal split), or slicing along
    an axis other than channels.

    ## Why is this bad?
    The NCSDK turns a Slice into channel offsets for its consumers. It only
    honours the channel axis, and computes the offsets from the explicit
    `slice_point` values: an equal split without them is mis-computed, silently.

    ## What to do
    Write the split points out (`slice_point: 16 slice_point: 32` …).
    """

    code = "NCS404"
    name = "slice-without-points"
    severity = Severity.ERROR
    summary = "Slice without slice_point, or not along channels"
    source = "TK CaffeParser Slice handling (code-derived)"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Slice"):
            sp = layer.param.slice_param
            shape = ctx.in_shape(layer)
            rank = len(shape) if shape is not None else 4
            axis = sp.slice_dim if sp.HasField("slice_dim") else sp.axis
            axis = axis + rank if axis < 0 else axis
            if axis != 1:
                yield ctx.report(self, f"Slice {layer.name!r} splits axis {axis}; the NCSDK only "
                                 "slices along channels (axis 1)",
                                 ctx.anchor(layer, "slice_param", "axis"), layer=layer)
            elif not len(sp.slice_point) and len(layer.tops) > 1:
                size = f" (e.g. every {shape[1] // len(layer.tops)} channels)" \
                    if shape is not None and len(layer.tops) else ""
                yield ctx.report(self, f"Slice {layer.name!r} splits evenly without slice_point; "
                                 f"the NCSDK needs the points written out{size}",
                                 ctx.anchor(layer, "slice_param"), layer=layer)
