"""NCS41x: element-wise layers."""

from __future__ import annotations

from collections.abc import Iterator

from .base import Diagnostic, Rule, Severity
from .context import Context
from .registry import register


@register
class EltwiseTooManyInputs(Rule):
    """## What it does
    Finds Eltwise layers with more than three bottoms.

    ## Why is this bad?
    The NCSDK builds an element-wise stage from at most three inputs; more stop
    the compiler with `Exception: Layer with N inputs not supported`.

    ## What to do
    Chain several Eltwise layers of two or three inputs each.
    """

    code = "NCS410"
    name = "eltwise-too-many-inputs"
    severity = Severity.ERROR
    summary = "Eltwise layer with more than 3 inputs"
    source = "TK CaffeParser: 'Layer with N inputs not supported'"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Eltwise"):
            if len(layer.bottoms) > 3:
                yield ctx.report(self, f"Eltwise {layer.name!r} has {len(layer.bottoms)} inputs; "
                                 "the NCSDK takes at most 3", ctx.anchor(layer, "bottom", 3),
                                 layer=layer)


@register
class EltwiseCoeff(Rule):
    """## What it does
    Finds Eltwise SUM layers with `coeff` values other than 1.

    ## Why is this bad?
    The NCSDK's Caffe parser ignores `coeff`: a weighted sum, or a subtraction
    written as `coeff: 1 coeff: -1`, silently becomes a plain sum. No error, just
    wrong results.

    ## What to do
    Fold the coefficient into the layer producing that input (scale its weights
    and bias), or insert a Power/Scale layer with the coefficient before the sum.
    """

    code = "NCS411"
    name = "eltwise-coeff"
    severity = Severity.ERROR
    summary = "Eltwise SUM with coefficients (ignored by the NCSDK)"
    source = "TK CaffeParser: Eltwise coeff not read (code-derived)"

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for layer in ctx.layers_of("Eltwise"):
            ep = layer.param.eltwise_param
            coeffs = list(ep.coeff)
            if ep.operation == 1 and coeffs and any(c != 1 for c in coeffs):  # SUM
                yield ctx.report(
                    self, f"Eltwise {layer.name!r} weights its inputs by {coeffs}; the NCSDK ignores "
                    "coeff and adds them plainly", ctx.anchor(layer, "eltwise_param", "coeff", 0),
                    layer=layer)
