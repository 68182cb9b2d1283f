"""Tests for our Caffe schema (proto/caffe.proto) and its generated stubs.

What is checked:

* the committed stubs are what proto/caffe.proto compiles to (byte for byte
  with the pinned generator; descriptor-equal with any protoc);
* field numbers, types and defaults that everyone depends on;
* every real-world prototxt in the corpus parses, and the only fields the
  schema does not know are the fork-specific ones we leave out on purpose;
* the binary format round-trips, including pre-2015 4-D blobs;
* OpenCV's independent Caffe importer loads a caffemodel we wrote and
  computes the same numbers as numpy;
* the module coexists with another tool's caffe_pb2 in one process.
"""

from __future__ import annotations

import filecmp
import pickle
import struct
import subprocess
import sys
import textwrap
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
from google.protobuf import descriptor_pb2, text_format

from caffe2ncs._proto import caffe_pb2 as pb
from conftest import REPO, corpus_params, corpus_path

PROTO_DIR = REPO / "proto"
STUB_DIR = REPO / "caffe2ncs" / "_proto"
GENERATE = PROTO_DIR / "generate"
PINNED_GRPCIO_TOOLS = "1.62.3"
# The name under which the schema is registered in protobuf's descriptor pool.
POOL_NAME = "caffe2ncs/_proto/caffe.proto"


def _grpcio_tools_version() -> str | None:
    try:
        return metadata.version("grpcio-tools")
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------------------
# The stubs are not stale
# ---------------------------------------------------------------------------


def test_generate_script_is_executable():
    assert GENERATE.is_file()
    assert GENERATE.stat().st_mode & 0o111, "proto/generate must be executable"
    assert GENERATE.read_text().startswith("#!")


@pytest.mark.skipif(
    _grpcio_tools_version() != PINNED_GRPCIO_TOOLS,
    reason=f"byte-identical regeneration needs grpcio-tools=={PINNED_GRPCIO_TOOLS} "
    f"(installed: {_grpcio_tools_version()})",
)
def test_stubs_are_byte_identical_to_a_fresh_generation(tmp_path):
    result = subprocess.run(
        [sys.executable, str(GENERATE), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    for name in ("caffe_pb2.py", "caffe_pb2.pyi"):
        fresh = tmp_path / "caffe2ncs" / "_proto" / name
        assert fresh.is_file(), result.stdout
        assert filecmp.cmp(fresh, STUB_DIR / name, shallow=False), (
            f"caffe2ncs/_proto/{name} is stale: run proto/generate and commit the result"
        )


def test_generate_refuses_an_unpinned_generator(tmp_path):
    """Run the script with a fake grpcio-tools distribution of another version."""
    fake = tmp_path / "site"
    dist = fake / "grpcio_tools-9.9.9.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: grpcio-tools\nVersion: 9.9.9\n")
    code = textwrap.dedent(f"""
        import sys, runpy
        sys.path.insert(0, {str(fake)!r})
        sys.argv = [{str(GENERATE)!r}, "--out", {str(tmp_path / "out")!r}]
        runpy.run_path({str(GENERATE)!r}, run_name="__main__")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "grpcio-tools 9.9.9 is installed" in result.stderr
    assert PINNED_GRPCIO_TOOLS in result.stderr
    assert not (tmp_path / "out").exists(), "nothing may be generated with the wrong version"


def _normalised(fdp: descriptor_pb2.FileDescriptorProto) -> descriptor_pb2.FileDescriptorProto:
    """Remove what differs between protoc outputs without changing the schema.

    --descriptor_set_out adds json_name, and protoc versions spell float
    defaults differently ("0.999" vs "0.999000013"); proto2 may or may not be
    spelled out in `syntax`.
    """
    out = descriptor_pb2.FileDescriptorProto()
    out.CopyFrom(fdp)
    if out.syntax == "proto2":
        out.ClearField("syntax")

    def fix(message):
        for field in message.field:
            field.ClearField("json_name")
            if field.HasField("default_value") and field.type == descriptor_pb2.FieldDescriptorProto.TYPE_FLOAT:
                value = struct.unpack("<f", struct.pack("<f", float(field.default_value)))[0]
                field.default_value = repr(value)
            elif field.HasField("default_value") and field.type == descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE:
                field.default_value = repr(float(field.default_value))
        for nested in message.nested_type:
            fix(nested)

    for message in out.message_type:
        fix(message)
    return out


def test_embedded_descriptor_equals_the_schema(tmp_path):
    """Version-free staleness check: compile proto/caffe.proto with whatever
    protoc is installed and compare descriptors, not bytes."""
    pytest.importorskip("grpc_tools", reason="grpcio-tools (any version) is needed to compile the schema")
    out = tmp_path / "caffe.desc"
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-Icaffe2ncs/_proto=proto",
         f"--descriptor_set_out={out}", "proto/caffe.proto"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    compiled = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
    assert len(compiled.file) == 1
    embedded = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)
    assert embedded.name == compiled.file[0].name == POOL_NAME
    assert _normalised(embedded) == _normalised(compiled.file[0]), (
        "caffe2ncs/_proto/caffe_pb2.py does not match proto/caffe.proto: run proto/generate"
    )


def test_stub_was_made_by_the_pinned_generator():
    header = (STUB_DIR / "caffe_pb2.py").read_text().splitlines()[:6]
    assert "# Protobuf Python Version: 4.25.1" in header
    assert f"# source: {POOL_NAME}" in header


_FILE_PROTO = descriptor_pb2.FileDescriptorProto.FromString(pb.DESCRIPTOR.serialized_pb)


def _field_proto(message: str, field: str) -> descriptor_pb2.FieldDescriptorProto:
    (msg,) = [m for m in _FILE_PROTO.message_type if m.name == message]
    (fld,) = [f for f in msg.field if f.name == field]
    return fld


def test_schema_identity():
    assert pb.DESCRIPTOR.name == POOL_NAME
    assert pb.DESCRIPTOR.package == "caffe2ncs_caffe"
    assert _FILE_PROTO.syntax in ("", "proto2")  # protoc omits the default, proto2
    assert not pb.ConvolutionParameter().HasField("num_output")  # proto2 presence
    assert pb.NetParameter.DESCRIPTOR.full_name == "caffe2ncs_caffe.NetParameter"
    # Classes must name their real module, or pickling messages breaks.
    assert pb.NetParameter.__module__ == "caffe2ncs._proto.caffe_pb2"


def test_messages_pickle():
    net = pb.NetParameter(name="p", input=["data"])
    net.layer.add(name="c", type="Convolution").convolution_param.num_output = 3
    assert pickle.loads(pickle.dumps(net)) == net


def test_coexists_with_another_caffe_pb2():
    """Another tool's caffe_pb2 registers "caffe.proto" with package "caffe";
    ours must load beside it, in either import order, without mixing types."""
    code = textwrap.dedent("""
        import sys
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
        def load_theirs():
            fdp = descriptor_pb2.FileDescriptorProto(name="caffe.proto", package="caffe", syntax="proto2")
            m = fdp.message_type.add(name="NetParameter")
            m.field.add(name="name", number=1, type=9, label=1)
            m.field.add(name="other", number=2, type=9, label=1)
            fd = descriptor_pool.Default().AddSerializedFile(fdp.SerializeToString())
            return message_factory.GetMessageClass(fd.message_types_by_name["NetParameter"])
        if sys.argv[1] == "theirs-first":
            Theirs = load_theirs()
            from caffe2ncs._proto import caffe_pb2
        else:
            from caffe2ncs._proto import caffe_pb2
            Theirs = load_theirs()
        assert Theirs.DESCRIPTOR.full_name == "caffe.NetParameter"
        assert caffe_pb2.NetParameter.DESCRIPTOR.full_name == "caffe2ncs_caffe.NetParameter"
        assert "other" in Theirs.DESCRIPTOR.fields_by_name
        assert "layer" in caffe_pb2.NetParameter.DESCRIPTOR.fields_by_name
        print("coexist-ok")
    """)
    for order in ("theirs-first", "ours-first"):
        result = subprocess.run([sys.executable, "-c", code, order], cwd=REPO,
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0 and "coexist-ok" in result.stdout, (order, result.stderr)


# ---------------------------------------------------------------------------
# Field numbers: facts that every Caffe model file depends on
# ---------------------------------------------------------------------------

LAYER_PARAMETER_FIELDS = {
    "name": 1, "type": 2, "bottom": 3, "top": 4, "loss_weight": 5, "param": 6,
    "blobs": 7, "include": 8, "exclude": 9, "phase": 10, "propagate_down": 11,
    "transform_param": 100, "loss_param": 101, "accuracy_param": 102,
    "argmax_param": 103, "concat_param": 104, "contrastive_loss_param": 105,
    "convolution_param": 106, "data_param": 107, "dropout_param": 108,
    "dummy_data_param": 109, "eltwise_param": 110, "exp_param": 111,
    "hdf5_data_param": 112, "hdf5_output_param": 113, "hinge_loss_param": 114,
    "image_data_param": 115, "infogain_loss_param": 116, "inner_product_param": 117,
    "lrn_param": 118, "memory_data_param": 119, "mvn_param": 120,
    "pooling_param": 121, "power_param": 122, "relu_param": 123,
    "sigmoid_param": 124, "softmax_param": 125, "slice_param": 126,
    "tanh_param": 127, "threshold_param": 128, "window_data_param": 129,
    "python_param": 130, "prelu_param": 131, "spp_param": 132,
    "reshape_param": 133, "log_param": 134, "flatten_param": 135,
    "reduction_param": 136, "embed_param": 137, "tile_param": 138,
    "batch_norm_param": 139, "elu_param": 140, "bias_param": 141,
    "scale_param": 142, "input_param": 143, "crop_param": 144,
    "parameter_param": 145, "recurrent_param": 146, "swish_param": 147,
    "clip_param": 148,
    # SSD Caffe
    "annotated_data_param": 200, "multibox_loss_param": 201, "permute_param": 202,
    "prior_box_param": 203, "detection_output_param": 204,
    "detection_evaluate_param": 205, "norm_param": 206, "video_data_param": 207,
}

V1_LAYER_PARAMETER_FIELDS = {
    "layer": 1, "bottom": 2, "top": 3, "name": 4, "type": 5, "blobs": 6,
    "blobs_lr": 7, "weight_decay": 8, "concat_param": 9, "convolution_param": 10,
    "data_param": 11, "dropout_param": 12, "hdf5_data_param": 13,
    "hdf5_output_param": 14, "image_data_param": 15, "infogain_loss_param": 16,
    "inner_product_param": 17, "lrn_param": 18, "pooling_param": 19,
    "window_data_param": 20, "power_param": 21, "memory_data_param": 22,
    "argmax_param": 23, "eltwise_param": 24, "threshold_param": 25,
    "dummy_data_param": 26, "accuracy_param": 27, "hinge_loss_param": 29,
    "relu_param": 30, "slice_param": 31, "include": 32, "exclude": 33,
    "mvn_param": 34, "loss_weight": 35, "transform_param": 36, "tanh_param": 37,
    "sigmoid_param": 38, "softmax_param": 39, "contrastive_loss_param": 40,
    "exp_param": 41, "loss_param": 42, "param": 1001, "blob_share_mode": 1002,
}

# (message, field) -> (number, label, type, packed), checked on the
# FileDescriptorProto embedded in the stub (stable across protobuf runtimes).
F = descriptor_pb2.FieldDescriptorProto
R, O, Q = F.LABEL_REPEATED, F.LABEL_OPTIONAL, F.LABEL_REQUIRED
T = F
SPOT_CHECKS = {
    ("NetParameter", "name"): (1, O, T.TYPE_STRING, False),
    ("NetParameter", "layers"): (2, R, T.TYPE_MESSAGE, False),
    ("NetParameter", "input"): (3, R, T.TYPE_STRING, False),
    ("NetParameter", "input_dim"): (4, R, T.TYPE_INT32, False),
    ("NetParameter", "force_backward"): (5, O, T.TYPE_BOOL, False),
    ("NetParameter", "state"): (6, O, T.TYPE_MESSAGE, False),
    ("NetParameter", "debug_info"): (7, O, T.TYPE_BOOL, False),
    ("NetParameter", "input_shape"): (8, R, T.TYPE_MESSAGE, False),
    ("NetParameter", "layer"): (100, R, T.TYPE_MESSAGE, False),
    ("BlobShape", "dim"): (1, R, T.TYPE_INT64, True),
    ("BlobProto", "num"): (1, O, T.TYPE_INT32, False),
    ("BlobProto", "channels"): (2, O, T.TYPE_INT32, False),
    ("BlobProto", "height"): (3, O, T.TYPE_INT32, False),
    ("BlobProto", "width"): (4, O, T.TYPE_INT32, False),
    ("BlobProto", "data"): (5, R, T.TYPE_FLOAT, True),
    ("BlobProto", "diff"): (6, R, T.TYPE_FLOAT, True),
    ("BlobProto", "shape"): (7, O, T.TYPE_MESSAGE, False),
    ("BlobProto", "double_data"): (8, R, T.TYPE_DOUBLE, True),
    ("BlobProto", "double_diff"): (9, R, T.TYPE_DOUBLE, True),
    ("ConvolutionParameter", "num_output"): (1, O, T.TYPE_UINT32, False),
    ("ConvolutionParameter", "pad"): (3, R, T.TYPE_UINT32, False),
    ("ConvolutionParameter", "kernel_size"): (4, R, T.TYPE_UINT32, False),
    ("ConvolutionParameter", "group"): (5, O, T.TYPE_UINT32, False),
    ("ConvolutionParameter", "stride"): (6, R, T.TYPE_UINT32, False),
    ("ConvolutionParameter", "pad_h"): (9, O, T.TYPE_UINT32, False),
    ("ConvolutionParameter", "kernel_w"): (12, O, T.TYPE_UINT32, False),
    ("ConvolutionParameter", "stride_w"): (14, O, T.TYPE_UINT32, False),
    ("ConvolutionParameter", "engine"): (15, O, T.TYPE_ENUM, False),
    ("ConvolutionParameter", "axis"): (16, O, T.TYPE_INT32, False),
    ("ConvolutionParameter", "force_nd_im2col"): (17, O, T.TYPE_BOOL, False),
    ("ConvolutionParameter", "dilation"): (18, R, T.TYPE_UINT32, False),
    ("PoolingParameter", "global_pooling"): (12, O, T.TYPE_BOOL, False),
    ("PoolingParameter", "round_mode"): (13, O, T.TYPE_ENUM, False),
    ("InnerProductParameter", "transpose"): (6, O, T.TYPE_BOOL, False),
    ("InfogainLossParameter", "axis"): (2, O, T.TYPE_INT32, False),
    ("ClipParameter", "min"): (1, Q, T.TYPE_FLOAT, False),
    ("ClipParameter", "max"): (2, Q, T.TYPE_FLOAT, False),
    ("SwishParameter", "beta"): (1, O, T.TYPE_FLOAT, False),
    ("ParamSpec", "lr_mult"): (3, O, T.TYPE_FLOAT, False),
    ("ParamSpec", "decay_mult"): (4, O, T.TYPE_FLOAT, False),
    ("TransformationParameter", "resize_param"): (8, O, T.TYPE_MESSAGE, False),
    ("TransformationParameter", "emit_constraint"): (10, O, T.TYPE_MESSAGE, False),
    ("TransformationParameter", "crop_h"): (11, O, T.TYPE_UINT32, False),
    ("TransformationParameter", "distort_param"): (13, O, T.TYPE_MESSAGE, False),
    ("TransformationParameter", "expand_param"): (14, O, T.TYPE_MESSAGE, False),
    ("PriorBoxParameter", "min_size"): (1, R, T.TYPE_FLOAT, False),
    ("PriorBoxParameter", "variance"): (6, R, T.TYPE_FLOAT, False),
    ("PriorBoxParameter", "offset"): (13, O, T.TYPE_FLOAT, False),
    ("DetectionOutputParameter", "nms_param"): (4, O, T.TYPE_MESSAGE, False),
    ("DetectionOutputParameter", "code_type"): (6, O, T.TYPE_ENUM, False),
    ("DetectionOutputParameter", "keep_top_k"): (7, O, T.TYPE_INT32, False),
    ("DetectionOutputParameter", "confidence_threshold"): (9, O, T.TYPE_FLOAT, False),
    ("MultiBoxLossParameter", "use_prior_for_nms"): (23, O, T.TYPE_BOOL, False),
    ("NormalizeParameter", "across_spatial"): (1, O, T.TYPE_BOOL, False),
    ("NormalizeParameter", "eps"): (4, O, T.TYPE_FLOAT, False),
    ("PermuteParameter", "order"): (1, R, T.TYPE_UINT32, False),
    ("AnnotatedDataParameter", "anno_type"): (3, O, T.TYPE_ENUM, False),
    ("V0LayerParameter", "blobs"): (50, R, T.TYPE_MESSAGE, False),
    ("V0LayerParameter", "k"): (22, O, T.TYPE_FLOAT, False),
    ("V0LayerParameter", "det_crop_mode"): (59, O, T.TYPE_STRING, False),
    ("V0LayerParameter", "hdf5_output_param"): (1001, O, T.TYPE_MESSAGE, False),
    ("SolverParameter", "random_seed"): (20, O, T.TYPE_INT64, False),
    ("SolverParameter", "type"): (40, O, T.TYPE_STRING, False),
    ("SolverParameter", "layer_wise_reduce"): (41, O, T.TYPE_BOOL, False),
    ("SolverParameter", "weights"): (42, R, T.TYPE_STRING, False),
    ("SolverState", "minimum_loss"): (5, O, T.TYPE_FLOAT, False),
}


def test_layer_parameter_numbers_are_exact():
    fields = pb.LayerParameter.DESCRIPTOR.fields_by_name
    assert {name: f.number for name, f in fields.items()} == LAYER_PARAMETER_FIELDS


def test_v1_layer_parameter_numbers_are_exact():
    fields = pb.V1LayerParameter.DESCRIPTOR.fields_by_name
    assert {name: f.number for name, f in fields.items()} == V1_LAYER_PARAMETER_FIELDS


@pytest.mark.parametrize(("message", "field"), sorted(SPOT_CHECKS), ids=lambda v: v)
def test_field_spot_check(message, field):
    number, label, ftype, packed = SPOT_CHECKS[(message, field)]
    proto = _field_proto(message, field)
    assert (proto.number, proto.label, proto.type) == (number, label, ftype)
    assert proto.options.packed is packed
    # The runtime descriptor agrees with the embedded one.
    assert getattr(pb, message).DESCRIPTOR.fields_by_name[field].number == number


def test_defaults_that_change_results():
    conv = pb.ConvolutionParameter()
    assert (conv.bias_term, conv.group, conv.axis, conv.pad_h) == (True, 1, 1, 0)
    pool = pb.PoolingParameter()
    assert (pool.pool, pool.stride, pool.pad, pool.round_mode) == (
        pb.PoolingParameter.MAX, 1, 0, pb.PoolingParameter.CEIL)
    assert pb.BatchNormParameter().eps == pytest.approx(1e-5)
    assert pb.BatchNormParameter().moving_average_fraction == pytest.approx(0.999)
    lrn = pb.LRNParameter()
    assert (lrn.local_size, lrn.alpha, lrn.beta, lrn.k) == (5, 1.0, 0.75, 1.0)
    assert pb.EltwiseParameter().operation == pb.EltwiseParameter.SUM
    assert pb.FillerParameter().type == "constant"
    assert pb.FillerParameter().std == 1.0
    assert pb.NetState().phase == pb.TEST
    assert pb.PriorBoxParameter().flip is True and pb.PriorBoxParameter().clip is False
    assert pb.PriorBoxParameter().offset == 0.5
    assert pb.DetectionOutputParameter().code_type == pb.PriorBoxParameter.CORNER
    assert pb.DetectionOutputParameter().keep_top_k == -1
    assert pb.NonMaximumSuppressionParameter().nms_threshold == pytest.approx(0.3)
    assert pb.NormalizeParameter().eps == pytest.approx(1e-10)
    assert pb.SolverParameter().solver_mode == pb.SolverParameter.GPU


def test_enum_values():
    assert pb.Phase.Value("TRAIN") == 0 and pb.Phase.Value("TEST") == 1
    assert pb.PoolingParameter.RoundMode.Value("FLOOR") == 1
    assert pb.PriorBoxParameter.CodeType.Value("CENTER_SIZE") == 2
    assert pb.EltwiseParameter.EltwiseOp.Value("MAX") == 2
    layer_type = pb.V1LayerParameter.LayerType
    assert layer_type.Value("CONVOLUTION") == 4
    assert layer_type.Value("INNER_PRODUCT") == 14
    assert layer_type.Value("DECONVOLUTION") == 39
    assert layer_type.Value("ABSVAL") == 35
    assert len(layer_type.keys()) == 40


def test_fork_specific_fields_are_left_out():
    """These collide between forks; see the header of proto/caffe.proto."""
    layer = pb.LayerParameter.DESCRIPTOR.fields_by_name
    for name in ("upsample_param", "interp_param", "shuffle_channel_param",
                 "roi_pooling_param", "region_param", "reorg_param", "proposal_param"):
        assert name not in layer
    assert "ceil_mode" not in pb.PoolingParameter.DESCRIPTOR.fields_by_name
    solver = pb.SolverParameter.DESCRIPTOR.fields_by_name
    assert "eval_type" not in solver and "ap_version" not in solver
    # No number is used twice and none are in protobuf's reserved range.
    for message in pb.DESCRIPTOR.message_types_by_name.values():
        numbers = [f.number for f in message.fields]
        assert len(numbers) == len(set(numbers)), message.name
        assert not any(19000 <= n <= 19999 for n in numbers), message.name


# ---------------------------------------------------------------------------
# The corpus of real prototxts
# ---------------------------------------------------------------------------

# Every field the schema does not know in the corpus, as Message.field.  All of
# them come from forks whose numbering conflicts with other forks.
EXPECTED_UNKNOWN_FIELDS = {
    "DropoutParameter.scale_train",               # py-faster-rcnn
    "LayerParameter.bn_param",                    # SegNet/ENet "BN" layer
    "LayerParameter.region_param",                # YOLOv2 ports
    "LayerParameter.reorg_param",                 # YOLOv2 ports
    "LayerParameter.roi_pooling_param",           # py-faster-rcnn
    "LayerParameter.shuffle_channel_param",       # ShuffleNet ports
    "LayerParameter.upsample_param",              # YOLOv3 / ENet ports
    "LayerParameter.yolo_detection_output_param",  # MobileNet-YOLO
    "LayerParameter.yolov3_detection_output_param",  # MobileNet-YOLO
    "PoolingParameter.ceil_mode",                 # OpenCV / Caffe forks
}


def unknown_fields(text: str, descriptor=pb.NetParameter.DESCRIPTOR) -> list[str]:
    """Every field name in `text` that the schema does not define, as
    "Message.field", in order of appearance.  Contents of unknown fields are
    skipped, not inspected.  Uses only the public text_format.Tokenizer."""
    tok = text_format.Tokenizer(text.splitlines())
    found: list[str] = []

    def skip_scalar():
        if tok.token[:1] in ("'", '"'):
            while tok.token[:1] in ("'", '"'):  # adjacent strings concatenate
                tok.NextToken()
        else:
            tok.NextToken()

    def skip_value():
        if tok.TryConsume("["):
            if not tok.TryConsume("]"):
                while True:
                    skip_scalar()
                    if tok.TryConsume("]"):
                        break
                    tok.Consume(",")
        else:
            skip_scalar()

    def block(message):
        close = ">" if tok.TryConsume("<") else "}"
        if close == "}":
            tok.Consume("{")
        fields(message, close)
        tok.Consume(close)

    def fields(message, close):
        while not (tok.AtEnd() if close is None else tok.LookingAt(close)):
            name = tok.ConsumeIdentifierOrNumber()
            field = message.fields_by_name.get(name) if message is not None else None
            if message is not None and field is None:
                found.append(f"{message.name}.{name}")
            if field is not None and field.message_type is not None:
                tok.TryConsume(":")
                block(field.message_type)
            elif field is not None:
                tok.Consume(":")
                skip_value()
            elif tok.TryConsume(":") and not tok.LookingAt("{") and not tok.LookingAt("<"):
                skip_value()
            else:
                block(None)
            if not tok.TryConsume(","):
                tok.TryConsume(";")

    fields(descriptor, None)
    return found


def test_unknown_field_finder():
    text = """
        name: 'n'  # single quotes are fine
        input: "a" "b"
        input_dim: [1, 3, 8, 8]
        bogus_scalar: 3;
        layer {
          name: "p" type: "Pooling"
          pooling_param { pool: MAX ceil_mode: false kernel_size: 2 }
          upsample_param < scale: 2 nested { deeper: "x" } >
          top: "p",
        }
        bogus_block: { layer { name: "not looked at" } }
    """
    assert unknown_fields(text) == [
        "NetParameter.bogus_scalar",
        "PoolingParameter.ceil_mode",
        "LayerParameter.upsample_param",
        "NetParameter.bogus_block",
    ]
    assert unknown_fields("layer { name: 'x' }") == []


@pytest.mark.parametrize("path", corpus_params())
def test_corpus_prototxt_parses(path):
    text = path.read_text()
    unknown = unknown_fields(text)
    assert set(unknown) <= EXPECTED_UNKNOWN_FIELDS, f"unexpected unknown fields: {set(unknown) - EXPECTED_UNKNOWN_FIELDS}"
    net = text_format.Parse(text, pb.NetParameter(), allow_unknown_field=True)
    assert len(net.layer) + len(net.layers) > 0
    if not unknown:
        # Without fork-specific fields the strict parser must accept it too.
        assert text_format.Parse(text, pb.NetParameter()) == net


def test_corpus_unknown_fields_are_exactly_the_expected_ones():
    params = corpus_params()
    if params[0].values[0] is None:
        pytest.skip(params[0].marks[0].kwargs["reason"])
    seen = set()
    for param in params:
        seen.update(unknown_fields(param.values[0].read_text()))
    assert seen == EXPECTED_UNKNOWN_FIELDS


def test_corpus_single_quoted_strings():
    net = text_format.Parse(corpus_path("faster_rcnn_zf_test.prototxt").read_text(),
                            pb.NetParameter(), allow_unknown_field=True)
    proposal = next(layer for layer in net.layer if layer.name == "proposal")
    assert proposal.type == "Python"
    assert list(proposal.bottom)[:2] == ["rpn_cls_prob_reshape", "rpn_bbox_pred"]


def test_corpus_input_param_with_colon():
    net = text_format.Parse(corpus_path("se_resnet50.prototxt").read_text(), pb.NetParameter())
    data = net.layer[0]
    assert data.type == "Input"
    assert list(data.input_param.shape[0].dim) == [1, 3, 224, 224]


def test_corpus_v1_layers():
    net = text_format.Parse(corpus_path("vgg16_v1layers.prototxt").read_text(), pb.NetParameter())
    assert not net.layer and net.layers
    kinds = {layer.type for layer in net.layers}
    assert pb.V1LayerParameter.CONVOLUTION in kinds
    assert pb.V1LayerParameter.INNER_PRODUCT in kinds


def test_corpus_ssd_layers():
    net = text_format.Parse(corpus_path("mobilenet_ssd_voc_deploy.prototxt").read_text(), pb.NetParameter())
    kinds = [layer.type for layer in net.layer]
    assert {"PriorBox", "Permute", "DetectionOutput"} <= set(kinds)
    out = next(layer for layer in net.layer if layer.type == "DetectionOutput").detection_output_param
    assert out.num_classes == 21
    assert out.code_type == pb.PriorBoxParameter.CENTER_SIZE
    assert out.nms_param.nms_threshold == pytest.approx(0.45)
    prior = next(layer for layer in net.layer if layer.type == "PriorBox").prior_box_param
    assert len(prior.variance) == 4


# ---------------------------------------------------------------------------
# Binary format
# ---------------------------------------------------------------------------


def test_wire_round_trip_conv_with_weights():
    rng = np.random.default_rng(0)
    weights = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    bias = rng.standard_normal(4).astype(np.float32)

    net = pb.NetParameter(name="rt")
    conv = net.layer.add(name="conv1", type="Convolution", bottom=["data"], top=["conv1"])
    conv.convolution_param.num_output = 4
    conv.convolution_param.kernel_size.append(3)
    conv.convolution_param.pad.append(1)
    conv.param.add(lr_mult=1.0, decay_mult=1.0)
    for array in (weights, bias):
        blob = conv.blobs.add()
        blob.shape.dim.extend(array.shape)
        blob.data.extend(array.ravel().tolist())

    data = net.SerializeToString()
    back = pb.NetParameter.FromString(data)
    assert back == net
    assert back.SerializeToString() == data
    got = np.asarray(back.layer[0].blobs[0].data, dtype=np.float32).reshape(tuple(back.layer[0].blobs[0].shape.dim))
    np.testing.assert_array_equal(got, weights)
    # layer is field 100 (length-delimited): tag varint 0xa2 0x06.
    assert data.startswith(b"\x0a\x02rt\xa2\x06")


def test_blob_data_is_packed_on_the_wire():
    blob = pb.BlobProto(data=[1.0, 2.0])
    assert blob.SerializeToString() == b"\x2a\x08" + struct.pack("<2f", 1.0, 2.0)
    shape = pb.BlobShape(dim=[1, 3])
    assert shape.SerializeToString() == b"\x0a\x02\x01\x03"


def test_old_style_4d_blob_decodes():
    """A BlobProto as written by 2014-era Caffe: num/channels/height/width and
    no shape.  Hand-encoded, once with packed and once with unpacked floats
    (proto2 readers must accept both)."""
    values = [0.5, -1.0, 2.0, 4.0, 8.0, 16.0]
    header = b"\x08\x01" b"\x10\x02" b"\x18\x03" b"\x20\x01"  # num=1 channels=2 height=3 width=1
    packed = header + b"\x2a" + bytes([4 * len(values)]) + struct.pack(f"<{len(values)}f", *values)
    unpacked = header + b"".join(b"\x2d" + struct.pack("<f", v) for v in values)
    for raw in (packed, unpacked):
        blob = pb.BlobProto.FromString(raw)
        assert not blob.HasField("shape")
        assert (blob.num, blob.channels, blob.height, blob.width) == (1, 2, 3, 1)
        assert list(blob.data) == values


def test_v1_layer_on_the_wire():
    layer = pb.V1LayerParameter(name="c", type=pb.V1LayerParameter.CONVOLUTION,
                                blobs_lr=[1.0, 2.0], weight_decay=[1.0, 0.0])
    raw = layer.SerializeToString()
    assert b"\x28\x04" in raw  # field 5 (type) varint = 4
    assert pb.V1LayerParameter.FromString(raw) == layer
    # A whole V1 net inside NetParameter.layers (field 2).
    net = pb.NetParameter(layers=[layer])
    assert net.SerializeToString().startswith(b"\x12")


# ---------------------------------------------------------------------------
# OpenCV: an independent reader of both formats
# ---------------------------------------------------------------------------

ORACLE_PROTOTXT = """\
name: "oracle"
layer {
  name: "data"
  type: "Input"
  top: "data"
  input_param { shape { dim: 1 dim: 3 dim: 8 dim: 8 } }
}
layer {
  name: "conv"
  type: "Convolution"
  bottom: "data"
  top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 }
}
layer {
  name: "relu"
  type: "ReLU"
  bottom: "conv"
  top: "conv"
}
layer {
  name: "ip"
  type: "InnerProduct"
  bottom: "conv"
  top: "ip"
  inner_product_param { num_output: 5 }
}
"""


def _numpy_forward(x, conv_w, conv_b, ip_w, ip_b):
    x = x.astype(np.float64)
    n, _, h, w = x.shape
    k = conv_w.shape[2]
    out = np.zeros((n, conv_w.shape[0], h - k + 1, w - k + 1))
    for i in range(h - k + 1):
        for j in range(w - k + 1):
            patch = x[:, :, i:i + k, j:j + k]
            out[:, :, i, j] = np.einsum("nchw,ochw->no", patch, conv_w) + conv_b
    out = np.maximum(out, 0.0)
    return out.reshape(n, -1) @ ip_w.astype(np.float64).T + ip_b


@pytest.mark.parametrize("prototxt_source", ["handwritten", "ours"])
def test_opencv_loads_our_caffemodel(tmp_path, prototxt_source):
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless<5 is the oracle")
    if not hasattr(cv2, "dnn") or not hasattr(cv2.dnn, "readNetFromCaffe"):
        pytest.skip(f"OpenCV {cv2.__version__} has no Caffe importer (removed in OpenCV 5)")

    rng = np.random.default_rng(1234)
    conv_w = rng.uniform(-0.5, 0.5, (4, 3, 3, 3)).astype(np.float32)
    conv_b = rng.uniform(-0.5, 0.5, 4).astype(np.float32)
    ip_w = rng.uniform(-0.5, 0.5, (5, 4 * 6 * 6)).astype(np.float32)
    ip_b = rng.uniform(-0.5, 0.5, 5).astype(np.float32)
    x = rng.uniform(-1.0, 1.0, (1, 3, 8, 8)).astype(np.float32)

    model = pb.NetParameter(name="oracle")
    conv = model.layer.add(name="conv", type="Convolution")
    for array in (conv_w, conv_b):  # modern blobs: BlobShape
        blob = conv.blobs.add()
        blob.shape.dim.extend(array.shape)
        blob.data.extend(array.ravel().tolist())
    ip = model.layer.add(name="ip", type="InnerProduct")
    for array in (ip_w, ip_b):  # legacy blobs: num/channels/height/width
        blob = ip.blobs.add(num=1, channels=1, height=1 if array.ndim == 1 else array.shape[0],
                            width=array.shape[-1])
        blob.data.extend(array.ravel().tolist())
    caffemodel = tmp_path / "oracle.caffemodel"
    caffemodel.write_bytes(model.SerializeToString())

    if prototxt_source == "handwritten":
        text = ORACLE_PROTOTXT
    else:  # our text output must be readable by another Caffe reader too
        text = text_format.MessageToString(text_format.Parse(ORACLE_PROTOTXT, pb.NetParameter()))
    prototxt = tmp_path / "oracle.prototxt"
    prototxt.write_text(text)

    net = cv2.dnn.readNetFromCaffe(str(prototxt), str(caffemodel))
    net.setInput(x)
    got = net.forward("ip")
    expected = _numpy_forward(x, conv_w, conv_b, ip_w, ip_b)
    assert got.shape == (1, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
