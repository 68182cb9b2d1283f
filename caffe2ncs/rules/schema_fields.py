"""NCS21x: fields and values the Caffe schema does not know."""

from __future__ import annotations

from collections.abc import Iterator

from ..sdk import sdk_error
from .base import Diagnostic, Rule, Severity
from .context import Context
from .registry import register

# Fields from well-known Caffe forks, and what they belong to.
_FORK_FIELDS = {
    "upsample_param": "the Upsample layer of YOLO/SegNet forks",
    "shuffle_channel_param": "the ShuffleChannel layer of ShuffleNet forks",
    "interp_param": "the Interp layer of PSPNet/DeepLab forks",
    "reorg_param": "the Reorg layer of YOLOv2 forks",
    "region_param": "the Region layer of YOLOv2 forks",
    "roi_pooling_param": "the ROIPooling layer of Faster R-CNN's Caffe",
    "bn_param": "the BN layer of the ENet/SegNet forks",
    "ceil_mode": "a pooling option of several forks (BVLC uses round_mode)",
    "scale_train": "a Dropout option of Faster R-CNN's Caffe",
    "yolo_detection_output_param": "the YoloDetectionOutput layer of MobileNet-YOLO forks",
    "yolov3_detection_output_param": "the Yolov3DetectionOutput layer of MobileNet-YOLO forks",
}


def _owner(ctx: Context, node) -> str | None:
    for layer in ctx.net.layers:
        if layer.node is not None and layer.node.start <= node.start < layer.node.end:
            return layer.name
    return None


@register
class UnknownField(Rule):
    """## What it does
    Finds fields that neither BVLC Caffe nor SSD Caffe (the Caffe the NCSDK
    installs) define.

    ## Why is this bad?
    mvNCCompile reads the prototxt with that Caffe's protobuf schema, which
    rejects any unknown field: `[Error 3] Setup Error: Caffe Syntax Error`
    (protobuf: `Message type "caffe.LayerParameter" has no field named …`).
    Such fields usually come from a Caffe fork (Upsample's `upsample_param`,
    pooling's `ceil_mode`, …) and go with layers the NCSDK does not support.

    ## What to do
    Remove the field, or replace the fork's layer by standard ones.
    """

    code = "NCS210"
    name = "unknown-field"
    severity = Severity.ERROR
    summary = "field unknown to the Caffe schema (a fork's field)"
    sdk_error = sdk_error(3)

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        for unknown in ctx.net.unknown:
            if unknown.reason != "field":
                continue
            node = unknown.node
            origin = _FORK_FIELDS.get(node.name)
            message = f"{unknown.message_type} has no field {node.name!r} in BVLC or SSD Caffe"
            if origin:
                message += f" (it belongs to {origin})"
            yield ctx.report(self, message, node.name_span, layer=_owner(ctx, node))


@register
class UnknownEnumValue(Rule):
    """## What it does
    Finds enum fields set to a value the schema does not define (e.g.
    `pool: MAXIMUM`).

    ## Why is this bad?
    Caffe's protobuf parser rejects the file: `[Error 3] Setup Error: Caffe
    Syntax Error`.
    """

    code = "NCS211"
    name = "unknown-enum-value"
    severity = Severity.ERROR
    summary = "enum field set to an unknown value"
    sdk_error = sdk_error(3)

    def check(self, ctx: Context) -> Iterator[Diagnostic]:
        from .._proto import caffe_pb2 as pb

        for unknown in ctx.net.unknown:
            if unknown.reason != "enum value":
                continue
            node = unknown.node
            desc = getattr(pb, unknown.message_type, None)
            allowed = ""
            if desc is not None:
                fd = desc.DESCRIPTOR.fields_by_name.get(node.name)
                if fd is not None and fd.enum_type is not None:
                    allowed = f" (one of {', '.join(v.name for v in fd.enum_type.values)})"
            yield ctx.report(self, f"{node.value!r} is not a value of {node.name!r}{allowed}",
                             node, layer=_owner(ctx, node))
