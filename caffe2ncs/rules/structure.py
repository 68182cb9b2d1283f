"""NCS9xx: networks Caffe itself (and therefore the NCSDK) cannot build.

These come from the loader's graph checks (``Net.problems``). The ones marked
fatal make Caffe refuse the file outright; ``check`` still reports every other
finding but exits 2 for such a file, like for a syntax error.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..sdk import sdk_error
from .base import Diagnostic, Rule, Severity
from .context import Context
from .registry import register


class _ProblemRule(Rule):
    """Reports the loader's problems with the given codes."""

    problem_codes: tuple[str, ...] = ()
    suppressible = False

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for problem in ctx.net.problems:
            if problem.code in self.problem_codes:
                yield ctx.report(self, problem.message, problem.node, layer=problem.layer,
                                 fatal=problem.fatal)


@register
class MissingBottom(_ProblemRule):
    """## What it does
    Finds layers reading a blob that no input or layer produces.

    ## Why is this bad?
    Caffe refuses the network ("Unknown bottom blob"); the NCSDK fails with
    `[Error 17] … Could not build graph. Missing link`. Usually a typo, or a
    layer removed without rewiring what read it.
    """

    code = "NCS901"
    name = "missing-bottom"
    severity = Severity.ERROR
    summary = "layer reads a blob nothing produces"
    sdk_error = sdk_error(17)
    problem_codes = ("missing-bottom",)


@register
class BottomBeforeTop(_ProblemRule):
    """## What it does
    Finds layers reading a blob that only a later layer produces.

    ## Why is this bad?
    Caffe builds layers in file order, so the blob does not exist yet when the
    layer is set up ("Unknown bottom blob"). Move the producer above it.
    """

    code = "NCS902"
    name = "bottom-before-top"
    severity = Severity.ERROR
    summary = "layer reads a blob before it is produced"
    problem_codes = ("bottom-order",)


@register
class Cycle(_ProblemRule):
    """## What it does
    Finds layers whose inputs depend on their own outputs.

    ## Why is this bad?
    A network is a directed acyclic graph; Caffe cannot order a cycle.
    """

    code = "NCS903"
    name = "cycle"
    severity = Severity.ERROR
    summary = "layers form a cycle"
    problem_codes = ("cycle",)


@register
class DuplicateTop(_ProblemRule):
    """## What it does
    Finds a blob written by two layers that are not in-place updates of it.

    ## Why is this bad?
    Caffe refuses the network: "Top blob … produced by multiple sources".
    """

    code = "NCS904"
    name = "duplicate-top"
    severity = Severity.ERROR
    summary = "blob produced by two layers"
    problem_codes = ("duplicate-top",)


@register
class ShapeMismatch(_ProblemRule):
    """## What it does
    Finds layers whose parameters do not fit the shapes of their inputs:
    a convolution whose output would be empty, a Concat of inputs that differ
    outside the concatenation axis, an Eltwise of different shapes, a Reshape
    that changes the element count, an invalid Slice, and so on.

    ## Why is this bad?
    Caffe stops with a failed CHECK when it sets the network up; the NCSDK,
    which builds the network with Caffe first, cannot compile it. Shapes after
    such a layer are unknown, so other rules may miss problems further on.
    """

    code = "NCS905"
    name = "shape-mismatch"
    severity = Severity.ERROR
    summary = "layer parameters do not fit its input shapes"
    problem_codes = ("shape",)


@register
class BlobTooLarge(_ProblemRule):
    """## What it does
    Finds blobs with more than 2^31 − 1 elements, negative dimensions, or more
    than 32 axes.

    ## Why is this bad?
    Caffe cannot allocate them ("blob size exceeds INT_MAX"); caffe2ncs never
    tries.
    """

    code = "NCS906"
    name = "blob-too-large"
    severity = Severity.ERROR
    summary = "blob with an absurd shape"
    problem_codes = ("too-large", "bad-input-shape")


@register
class BadInputSpec(_ProblemRule):
    """## What it does
    Finds inconsistent input declarations: a count of `input_dim` values that is
    not 4 per input, a number of `input_shape` blocks different from the number of
    inputs, both forms at once, an Input layer whose shapes do not match its
    tops, or an input declared twice.

    ## Why is this bad?
    Caffe refuses such a file ("Incorrect input blob dimension specifications").
    """

    code = "NCS907"
    name = "bad-input-declaration"
    severity = Severity.ERROR
    summary = "inconsistent input declaration"
    problem_codes = ("input-spec", "duplicate-input")


@register
class DuplicateLayerName(_ProblemRule):
    """## What it does
    Finds two layers with the same name.

    ## Why is this bad?
    Caffe accepts it, but weights in a caffemodel are matched to layers by name,
    so both layers get the same weights (or one gets none); the NCSDK also names
    its stages after layers.
    """

    code = "NCS908"
    name = "duplicate-layer-name"
    severity = Severity.WARNING
    summary = "two layers share a name"
    problem_codes = ("duplicate-layer-name",)


@register
class MixedLayerSpellings(_ProblemRule):
    """## What it does
    Finds files that mix `layer { }` blocks with legacy `layers { }` blocks.

    ## Why is this bad?
    Caffe refuses to upgrade such a file: "Refusing to upgrade inconsistent
    NetParameter input; the definition includes both 'layer' and 'layers'
    fields".
    """

    code = "NCS909"
    name = "mixed-layer-spellings"
    severity = Severity.ERROR
    summary = "file mixes 'layer' and legacy 'layers' blocks"
    problem_codes = ("mixed-layer-spellings",)


@register
class LegacyUpgradeProblem(_ProblemRule):
    """## What it does
    Reports V0 (2013-format) fields that do not apply to their layer's type, and
    unknown V0 layer types.

    ## Why is this bad?
    Caffe's upgrade drops them with "Unknown parameter … for layer type …" and
    marks the network as not fully compatible.
    """

    code = "NCS910"
    name = "legacy-upgrade-problem"
    severity = Severity.WARNING
    summary = "V0 field or type that does not upgrade cleanly"
    problem_codes = ("v0-upgrade",)


@register
class EmptyNetwork(Rule):
    """## What it does
    Finds files that define no layers at all.

    ## Why is this bad?
    There is nothing to compile; the NCSDK crashes on it with `IndexError: list
    index out of range`.
    """

    code = "NCS911"
    name = "empty-network"
    severity = Severity.ERROR
    summary = "network with no layers"
    suppressible = False

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        if not ctx.net.layers and not ctx.net.excluded:
            doc = ctx.net.document
            where = doc.fields[0] if doc is not None and doc.fields else None
            yield ctx.report(self, "the file defines no layers", where)


@register
class SyntaxError_(Rule):
    """## What it does
    Reports text that is not valid protobuf text format, or values of the wrong
    type for their field (e.g. a string where a number belongs).

    ## Why is this bad?
    Neither Caffe nor caffe2ncs can read the file (`[Error 3] Setup Error: Caffe
    Syntax Error`). No other rule can run on it.
    """

    code = "NCS999"
    name = "syntax-error"
    severity = Severity.ERROR
    summary = "the file is not valid prototxt"
    sdk_error = sdk_error(3)
    suppressible = False

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        return iter(())  # reported by the runner, which cannot load the file
