"""What a rule sees: the loaded network, its text, the settings, and helpers
to turn a place in the file into a :class:`~caffe2ncs.rules.base.Diagnostic`."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property

from ..model.net import Layer, Net
from ..model.source import SourceText, Span
from ..model.textformat import Node
from .base import Diagnostic, Fix, Rule, Severity
from .settings import Settings

Where = Node | Span | None


class Context:
    """Everything a rule's ``check`` needs.  Rules must not mutate anything."""

    def __init__(self, net: Net, path: str, settings: Settings) -> None:
        self.net = net
        self.path = path
        self.settings = settings

    @property
    def target(self) -> str:
        """The SDK generation checked against: ``ncsdk1`` or ``ncsdk2``."""
        return self.settings.target

    @property
    def source(self) -> SourceText | None:
        return self.net.source

    @property
    def text(self) -> str:
        return self.net.source.text if self.net.source is not None else ""

    # -- building diagnostics ------------------------------------------------

    def span_of(self, where: Where) -> Span | None:
        """The span a finding highlights: a scalar field whole (``kernel_size: 11``),
        a message field by its first line (``layer {``)."""
        if where is None:
            return None
        if isinstance(where, Span):
            return where
        if where.children is not None:
            return Span(where.start, where.vstart + 1)
        return Span(where.start, where.end)

    def report(
        self,
        rule: Rule | type[Rule],
        message: str,
        where: Where,
        *,
        layer: Layer | str | None = None,
        fix: Fix | None = None,
        severity: Severity | None = None,
        fatal: bool = False,
    ) -> Diagnostic:
        span = self.span_of(where)
        source = self.source
        if span is not None and source is not None:
            line, col = source.line_col(span.start)
            end_line, end_col = source.line_col(span.end)
            offsets = (span.start, span.end)
        else:
            line, col, end_line, end_col, offsets = 1, 1, 1, 1, None
        name = layer.name if isinstance(layer, Layer) else layer
        return Diagnostic(
            code=rule.code,
            name=rule.name,
            severity=severity if severity is not None else rule.severity,
            message=message,
            path=self.path,
            line=line,
            column=col,
            end_line=end_line,
            end_column=end_col,
            span=offsets,
            layer=name,
            fix=fix,
            fatal=fatal,
        )

    # -- places in a layer ----------------------------------------------------

    def anchor(self, layer: Layer, *path: str | int) -> Where:
        """The most precise node for a finding about ``layer``: the field at
        ``path`` when it is written in the file, else the layer's ``type``
        (or its block)."""
        if path:
            node = layer.locate(*path)
            if node is not None:
                return node
        return layer.locate("type") or layer.node

    # -- network helpers shared by several rules --------------------------------

    @cached_property
    def output_layers(self) -> list[Layer]:
        """Layers that write a network output (the last writer of each)."""
        out = []
        for blob in self.net.outputs:
            writers = self.net.producers(blob)
            if writers:
                out.append(writers[-1])
        return out

    def in_shape(self, layer: Layer, i: int = 0):
        shapes = self.net.layer_shapes[layer.index].inputs
        return shapes[i] if i < len(shapes) else None

    def out_shape(self, layer: Layer, i: int = 0):
        shapes = self.net.layer_shapes[layer.index].outputs
        return shapes[i] if i < len(shapes) else None

    def layers_of(self, *types: str) -> Iterable[Layer]:
        wanted = set(types)
        return (layer for layer in self.net.layers if layer.type in wanted)
