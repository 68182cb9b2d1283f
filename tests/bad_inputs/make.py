#!/usr/bin/env python3
"""Write the bad-input catalogue: every file of ``tests/bad_inputs/`` but this
script and ``expected.toml``.

Prototxts are written out literally below; caffemodels are our writer's
output for ``tiny.prototxt`` (seeded weights) then damaged; graph files are
``caffe2ncs build`` output for ``tiny.prototxt`` then damaged.  Nothing comes
from the corpus or the vendor samples.  The output is deterministic:
``tests/test_bad_input_catalogue.py`` checks that the committed files are what
this script writes.

    python tests/bad_inputs/make.py            # (re)write the files
    python tests/bad_inputs/make.py --check    # exit 1 if any file differs
"""

from __future__ import annotations

import argparse
import dataclasses
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

HEAD = 'name: "tiny"\ninput: "data"\ninput_shape { dim: 1 dim: 3 dim: 8 dim: 8 }\n'

TINY = HEAD + """layer {
  name: "conv"
  type: "Convolution"
  bottom: "data"
  top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 }
}
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer {
  name: "pool"
  type: "Pooling"
  bottom: "conv"
  top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 }
}
layer {
  name: "fc"
  type: "InnerProduct"
  bottom: "pool"
  top: "fc"
  inner_product_param { num_output: 10 }
}
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def relu(name: str, bottom: str, top: str) -> str:
    return f'layer {{ name: "{name}" type: "ReLU" bottom: "{bottom}" top: "{top}" }}\n'


def conv(params: str, name: str = "conv", bottom: str = "data") -> str:
    return (f'layer {{\n  name: "{name}"\n  type: "Convolution"\n  bottom: "{bottom}"\n'
            f'  top: "{name}"\n  convolution_param {{ {params} }}\n}}\n')


PROTOTXTS: dict[str, str | bytes] = {
    "tiny.prototxt": TINY,
    # -- not text / not a network
    "empty.prototxt": "",
    "only-comments.prototxt": "# nothing here\n\n   # but comments\n",
    "binary-junk.prototxt": bytes((i * 7919 + 13) % 256 for i in range(2048)),
    "utf16.prototxt": ("\ufeff" + HEAD).encode("utf-16-le"),
    "nul-bytes.prototxt": HEAD.encode() + b"\x00" * 64,
    # -- malformed text
    "deep-nesting.prototxt": "layer {" * 101 + "}" * 101 + "\n",
    "very-deep-nesting.prototxt": "a {" * 100_000 + "\n",
    "unbalanced-brace.prototxt": HEAD + 'layer {\n  name: "r"\n  type: "ReLU"\n',
    "stray-close-brace.prototxt": HEAD + relu("r", "data", "r") + "}\n",
    "unterminated-string.prototxt": HEAD + 'layer {\n  name: "r\n}\n',
    "bad-number.prototxt": HEAD + conv("num_output: 3x kernel_size: 1"),
    "int64-overflow.prototxt": 'input: "data"\ninput_shape { dim: 1 dim: 99999999999999999999 }\n',
    "string-for-number.prototxt": HEAD + conv('num_output: "4" kernel_size: 1'),
    "duplicate-scalar-field.prototxt": HEAD + conv("num_output: 4 num_output: 5 kernel_size: 1"),
    "invalid-utf8-name.prototxt": HEAD.encode().replace(b'name: "tiny"', b'name: "t\xe9ny"'),
    # -- impossible shapes
    "input-1e12-elements.prototxt": 'input: "data"\ninput_shape { dim: 1 dim: 1000 dim: 1000 '
                                    'dim: 1000000 }\n',
    "negative-dims.prototxt": 'input: "data"\ninput_shape { dim: 1 dim: -3 dim: 8 dim: 8 }\n',
    "too-many-axes.prototxt": 'input: "data"\ninput_shape { ' + "dim: 1 " * 33 + "}\n",
    "input-dim-count.prototxt": 'input: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\n',
    "kernel-zero.prototxt": HEAD + conv("num_output: 4 kernel_size: 0"),
    "kernel-larger-than-input.prototxt": HEAD + conv("num_output: 4 kernel_size: 9"),
    "huge-learned-blob.prototxt": HEAD + 'layer {\n  name: "fc"\n  type: "InnerProduct"\n'
    '  bottom: "data"\n  top: "fc"\n  inner_product_param { num_output: 100000000 }\n}\n',
    "weights-bigger-than-the-stick.prototxt": HEAD + 'layer {\n  name: "fc"\n  type: "InnerProduct"\n'
    '  bottom: "data"\n  top: "fc"\n  inner_product_param { num_output: 1562500 }\n}\n',
    "concat-mismatch.prototxt": HEAD + 'layer { name: "p" type: "Pooling" bottom: "data" top: "p"\n'
    '  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }\n'
    'layer { name: "cat" type: "Concat" bottom: "data" bottom: "p" top: "cat" }\n',
    "eltwise-mismatch.prototxt": HEAD + conv("num_output: 5 kernel_size: 1", "c5") +
    'layer { name: "sum" type: "Eltwise" bottom: "data" bottom: "c5" top: "sum" }\n',
    # -- broken graphs
    "cyclic-graph.prototxt": HEAD + relu("a", "b", "a") + relu("b", "a", "b"),
    "self-loop.prototxt": HEAD + relu("a", "x", "x"),
    "missing-bottom.prototxt": HEAD + relu("a", "nope", "a"),
    "bottom-before-producer.prototxt": HEAD + relu("a", "late", "a") + relu("b", "data", "late"),
    "duplicate-tops.prototxt": HEAD + relu("a", "data", "x") + relu("b", "data", "x"),
    "duplicate-layer-names.prototxt": HEAD + conv("num_output: 4 kernel_size: 3", "conv") +
    conv("num_output: 4 kernel_size: 3", "conv", bottom="conv").replace('top: "conv"', 'top: "conv2"'),
    "mixed-layer-spellings.prototxt": HEAD + relu("a", "data", "a") +
    'layers { name: "b" type: RELU bottom: "a" top: "b" }\n',
    "no-layers-only-input.prototxt": HEAD,
    # -- things a model file must never make the tool do
    "python-layer-os-system.prototxt": HEAD + 'layer {\n  name: "evil"\n  type: "Python"\n'
    '  bottom: "data"\n  top: "evil"\n  python_param {\n    module: "os"\n    layer: "system"\n'
    '    param_str: "touch /tmp/caffe2ncs-was-here"\n  }\n}\n',
    "python-layer-own-module.prototxt": HEAD + 'layer {\n  name: "mine"\n  type: "Python"\n'
    '  bottom: "data"\n  top: "mine"\n  python_param { module: "caffe2ncs_bad_input_probe" '
    'layer: "Probe" }\n}\n',
    "mean-file-etc-passwd.prototxt": 'name: "m"\nlayer {\n  name: "data"\n  type: "Data"\n'
    '  top: "data"\n  transform_param { mean_file: "/etc/passwd" }\n'
    '  data_param { source: "/etc/passwd" batch_size: 1 backend: LMDB }\n}\n' + relu("r", "data", "r"),
    "imagedata-source-etc-shadow.prototxt": 'name: "m"\nlayer {\n  name: "data"\n'
    '  type: "ImageData"\n  top: "data"\n  top: "label"\n  image_data_param { source: '
    '"/etc/shadow" root_folder: "/" batch_size: 1 new_height: 8 new_width: 8 }\n}\n'
    + relu("r", "data", "r"),
    "hdf5-source-etc-passwd.prototxt": 'name: "m"\nlayer {\n  name: "data"\n  type: "HDF5Data"\n'
    '  top: "data"\n  hdf5_data_param { source: "/etc/passwd" batch_size: 1 }\n}\n'
    + relu("r", "data", "r"),
    "include-like-path-in-name.prototxt": HEAD.replace('name: "tiny"', 'name: "../../etc/passwd"')
    + relu("r", "data", "r"),
    "unknown-layer-type.prototxt": HEAD + 'layer { name: "x" type: "NoSuchLayer" bottom: "data" '
    'top: "x" }\n',
}


def _caffemodels(tmp: Path) -> dict[str, bytes]:
    from caffe2ncs._proto import caffe_pb2 as pb
    from caffe2ncs.model import loads
    from caffe2ncs.model.weights import save_caffemodel

    net = loads(TINY, path="tiny.prototxt")
    save_caffemodel(net, tmp / "tiny.caffemodel", seed=7)
    good = (tmp / "tiny.caffemodel").read_bytes()

    def edited(edit) -> bytes:
        msg = pb.NetParameter()
        msg.ParseFromString(good)
        edit(msg)
        return msg.SerializeToString()

    def layer(msg, name):
        return next(x for x in msg.layer if x.name == name)

    def drop_bias(msg):
        del layer(msg, "conv").blobs[1]

    def wrong_shape(msg):
        b = layer(msg, "conv").blobs[0]
        del b.shape.dim[:]
        b.shape.dim.extend([4, 3, 1, 9])

    def nan(msg):
        layer(msg, "conv").blobs[0].data[5] = float("nan")

    def inf(msg):
        layer(msg, "fc").blobs[1].data[0] = float("-inf")

    def extra_blob(msg):
        layer(msg, "fc").blobs.add().CopyFrom(layer(msg, "fc").blobs[1])

    def data_short(msg):
        del layer(msg, "fc").blobs[0].data[-1:]

    def negative_dim(msg):
        b = layer(msg, "conv").blobs[1]
        del b.shape.dim[:]
        b.shape.dim.extend([-4])

    def other_net(msg):
        for x in msg.layer:
            x.name = "other_" + x.name

    # A layer whose name is not UTF-8 (protobuf would not write one): the
    # header of layer 'conv' re-encoded with a \xff in its name.
    def bad_utf8_name() -> bytes:
        msg = pb.NetParameter()
        msg.ParseFromString(good)
        msg.layer[0].name = "conv\u00ff"
        return msg.SerializeToString().replace("conv\u00ff".encode(), b"conv\xff\xfe")

    second_layer = good.index(b"\xa2\x06", good.index(b"\xa2\x06") + 10)
    return {
        "tiny.caffemodel": good,
        "empty.caffemodel": b"",
        "truncated.caffemodel": good[:len(good) // 2],
        "truncated-in-header.caffemodel": good[:3],
        "wrong-blob-count.caffemodel": edited(drop_bias),
        "extra-blob.caffemodel": edited(extra_blob),
        "wrong-blob-shape.caffemodel": edited(wrong_shape),
        "data-shorter-than-shape.caffemodel": edited(data_short),
        "negative-blob-dim.caffemodel": edited(negative_dim),
        "nan-weights.caffemodel": edited(nan),
        "inf-weights.caffemodel": edited(inf),
        "for-another-network.caffemodel": edited(other_net),
        "non-utf8-layer-name.caffemodel": bad_utf8_name(),
        "length-past-end.caffemodel": good[:second_layer] + b"\xa2\x06\xff\xff\xff\xff\x0f"
        + good[second_layer + 4:],
        "bad-wire-type.caffemodel": b"\x0f" + good[1:],
        "varint-never-ends.caffemodel": good[:second_layer] + b"\xa2\x06" + b"\xff" * 11,
        "text-not-caffemodel.caffemodel": TINY.encode(),
        "junk.caffemodel": bytes((i * 104729 + 7) % 251 for i in range(4096)),
    }


def _graphs() -> dict[str, bytes]:
    from caffe2ncs.lowering.emit import graph_bytes
    from caffe2ncs.lowering.graphfile import ncsdk1_layout as L1
    from caffe2ncs.lowering.graphfile import ncsdk2_layout as L2
    from caffe2ncs.lowering.ir import Location
    from caffe2ncs.lowering.lower import lower_network
    from caffe2ncs.model import loads
    from caffe2ncs.model.weights import synthesize

    net = loads(TINY, path="tiny.prototxt")
    weights = synthesize(net, 7)
    g2 = lower_network(net, target="ncsdk2", weights=weights).graph
    g1 = lower_network(net, target="ncsdk1", weights=weights).graph
    v2, v1 = graph_bytes(g2, "ncsdk2"), graph_bytes(g1, "ncsdk1")

    def put(data: bytes, offset: int, value: int) -> bytes:
        buf = bytearray(data)
        struct.pack_into("<I", buf, offset, value)
        return bytes(buf)

    # a stage writing 600 MiB into the scratch area: more than the stick has
    stages = list(g2.stages)
    i = next(k for k, s in enumerate(stages) if s.output.location is Location.WORK)
    stages[i] = dataclasses.replace(stages[i], output=dataclasses.replace(
        stages[i].output, offset=600 * 1024 * 1024))
    huge_scratch = graph_bytes(dataclasses.replace(g2, stages=tuple(stages)), "ncsdk2")

    # a pooling window of 1000x1000 taps
    stages = list(g2.stages)
    j = next(k for k, s in enumerate(stages) if s.op.value == "max_pooling")
    stages[j] = dataclasses.replace(stages[j], params=dataclasses.replace(
        stages[j].params, kernel_x=1000, kernel_y=1000))
    huge_kernel = graph_bytes(dataclasses.replace(g2, stages=tuple(stages)), "ncsdk2")

    return {
        "tiny-ncsdk2.graph": v2,
        "tiny-ncsdk1.graph": v1,
        "empty.graph": b"",
        "junk.graph": bytes((i * 7 + 3) % 256 for i in range(512)),
        "truncated-header.graph": v2[:50],
        "truncated.graph": v2[:len(v2) // 2],
        "truncated-ncsdk1.graph": v1[:len(v1) - 100],
        "stage-section-past-end.graph": put(v2, L2.OFF_STAGE_SECTION, len(v2) + 64),
        "buffer-section-past-end.graph": put(v2, L2.OFF_BUFFER_SECTION, 0xFFFFFF00),
        "file-size-field-wrong.graph": put(v2, L2.OFF_FILE_SIZE, len(v2) * 2),
        "bad-version.graph": put(v2, L2.OFF_MAJOR, 7),
        "stage-count-huge-ncsdk1.graph": put(v1, L1.OFF_STAGE_COUNT, 0xFFFF),
        "data-start-past-end-ncsdk1.graph": put(v1, L1.OFF_DATA_START, len(v1) + 1000),
        "scratch-beyond-device-memory.graph": huge_scratch,
        "pooling-kernel-1000x1000.graph": huge_kernel,
        "prototxt-not-graph.graph": TINY.encode(),
    }


IMAGES = {
    "truncated.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x08",
    "pixel-bomb.ppm": b"P6\n65536 65536\n255\n" + bytes(48),
    "good.ppm": b"P6\n8 8\n255\n" + bytes(range(192)),
}


def build(tmp: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    for name, text in PROTOTXTS.items():
        files[name] = text if isinstance(text, bytes) else text.encode()
    files.update(_caffemodels(tmp))
    files.update(_graphs())
    files.update(IMAGES)
    return files


def main(argv: list[str] | None = None) -> int:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = build(Path(tmp))
    stale = [name for name, data in files.items()
             if not (HERE / name).is_file() or (HERE / name).read_bytes() != data]
    if args.check:
        for name in stale:
            print(f"differs: {name}")
        return 1 if stale else 0
    for name in stale:
        (HERE / name).write_bytes(data := files[name])
        print(f"wrote {name} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
