"""Reading and writing .caffemodel files (caffe2ncs.model.caffemodel, .weights).

Round trips are checked bit for bit; files in the older layouts (4-D
num/channels/height/width blobs, V1 ``layers``, unpacked and double data)
are made with protobuf itself, as Caffe made them; OpenCV's independent
importer must accept what we write and compute what numpy computes.
"""

from __future__ import annotations

import mmap
import os
import struct

import numpy as np
import pytest

from caffe2ncs._proto import caffe_pb2 as pb
from caffe2ncs.errors import CaffemodelError, InputFileError
from caffe2ncs.model import InputForm, load, loads
from caffe2ncs.model.caffemodel import parse_caffemodel, read_caffemodel, write_caffemodel
from caffe2ncs.model.frozen import unwrap
from caffe2ncs.model.weights import save_caffemodel, synthesize
from conftest import corpus_path

cv2 = pytest.importorskip("cv2")

SMALL = '''name: "small"
input: "data"
input_shape { dim: 1 dim: 2 dim: 6 dim: 6 }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 3 kernel_size: 3 pad: 1 } }
layer { name: "bn" type: "BatchNorm" bottom: "conv" top: "conv" batch_norm_param { eps: 0.001 } }
layer { name: "scale" type: "Scale" bottom: "conv" top: "conv" scale_param { bias_term: true } }
layer { name: "relu" type: "ReLU" bottom: "conv" top: "conv" }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip" type: "InnerProduct" bottom: "pool" top: "ip" inner_product_param { num_output: 4 } }
layer { name: "prob" type: "Softmax" bottom: "ip" top: "prob" }
'''


@pytest.fixture
def small(tmp_path):
    """(prototxt path, caffemodel path, the loaded net with weights) for SMALL."""
    proto = tmp_path / "small.prototxt"
    proto.write_text(SMALL)
    model = tmp_path / "small.caffemodel"
    save_caffemodel(load(proto), model, seed=7)
    return proto, model, load(proto, model)


# ---------------------------------------------------------------------------
# Round trip
# ---------------------------------------------------------------------------


def test_random_weights_load_back_bit_identically(small, tmp_path):
    proto, model, net = small
    expected = synthesize(load(proto), seed=7)
    assert set(net.weights) == set(expected) == {"conv", "bn", "scale", "ip"}
    for name, blobs in expected.items():
        got = net.weights[name]
        assert [b.shape for b in got] == [b.shape for b in blobs]
        assert all(g.dtype == np.float32 for g in got)
        assert all(np.array_equal(g, b) for g, b in zip(got, blobs))
        # bit-identical, NaN-safe
        assert all(g.tobytes() == b.tobytes() for g, b in zip(got, blobs))
    assert net.weights_path == str(model)
    # writing what was read gives the same bytes
    again = tmp_path / "again.caffemodel"
    save_caffemodel(net, again, weights=dict(net.weights))
    assert again.read_bytes() == model.read_bytes()
    # and the seed decides the weights
    other = tmp_path / "other.caffemodel"
    save_caffemodel(load(proto), other, seed=8)
    assert other.read_bytes() != model.read_bytes()
    save_caffemodel(load(proto), other, seed=7)
    assert other.read_bytes() == model.read_bytes()


def test_written_file_is_a_valid_net_parameter(small):
    _, model, _ = small
    msg = pb.NetParameter.FromString(model.read_bytes())
    assert msg.name == "small"
    # the whole network, as Caffe writes it: inputs, and every layer
    assert list(msg.input) == ["data"] and list(msg.input_shape[0].dim) == [1, 2, 6, 6]
    assert [layer.name for layer in msg.layer] == ["conv", "bn", "scale", "relu", "pool", "ip", "prob"]
    assert [len(layer.blobs) for layer in msg.layer] == [2, 3, 2, 0, 0, 2, 0]
    conv = msg.layer[0]
    assert conv.type == "Convolution" and conv.convolution_param.num_output == 3
    assert [list(b.shape.dim) for b in conv.blobs] == [[3, 2, 3, 3], [3]]
    assert len(conv.blobs[0].data) == 54
    # protobuf's own decoding agrees with our zero-copy reader
    net = load(model.with_name("small.prototxt"), model)
    assert np.array_equal(np.asarray(conv.blobs[0].data, np.float32).reshape(3, 2, 3, 3),
                          net.weights["conv"][0])


def test_zero_weights(small, tmp_path):
    proto, _, _ = small
    path = tmp_path / "zeros.caffemodel"
    save_caffemodel(load(proto), path, seed=None)
    net = load(proto, path)
    assert all(not b.any() for blobs in net.weights.values() for b in blobs)


def test_weight_arrays_are_views_of_the_mapped_file(small):
    _, model, net = small
    weights = net.weights["ip"][0]
    base = weights
    while isinstance(base, np.ndarray):
        base = base.base
    assert isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap)
    assert not weights.flags.owndata and not weights.flags.writeable
    # the bytes in the file at the array's place are the array's bytes
    data = model.read_bytes()
    raw = weights.tobytes()
    assert data.count(raw) == 1
    mapped = np.frombuffer(base.obj, dtype=np.uint8)
    assert np.shares_memory(weights, mapped)


def test_reading_a_large_caffemodel_does_not_copy_its_weights(tmp_path):
    """A 64 MB blob: reading it must not allocate anything near that."""
    import tracemalloc

    text = ('input: "data"\ninput_shape { dim: 1 dim: 4096 }\n'
            'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
            'inner_product_param { num_output: 4096 } }\n')
    proto = tmp_path / "big.prototxt"
    proto.write_text(text)
    model = tmp_path / "big.caffemodel"
    weights = np.full((4096, 4096), 0.5, dtype=np.float32)
    write_caffemodel(model, [(unwrap(load(proto).layers[0].param), [weights, np.zeros(4096, np.float32)])])
    assert model.stat().st_size > 64 * 2**20
    tracemalloc.start()
    try:
        net = load(proto, model)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20
    assert net.weights["ip"][0].shape == (4096, 4096)
    assert float(net.weights["ip"][0][4095, 4095]) == 0.5


# ---------------------------------------------------------------------------
# OpenCV accepts what we write, and computes what numpy computes
# ---------------------------------------------------------------------------


def _numpy_forward(net, x: np.ndarray) -> np.ndarray:
    w, b = (a.astype(np.float64) for a in net.weights["conv"])
    padded = np.pad(x.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    conv = np.zeros((1, 3, 6, 6))
    for o in range(3):
        for i in range(6):
            for j in range(6):
                conv[0, o, i, j] = np.sum(padded[0, :, i:i + 3, j:j + 3] * w[o]) + b[o]
    mean, var, factor = (a.astype(np.float64) for a in net.weights["bn"])
    scale = 0.0 if factor[0] == 0 else 1.0 / factor[0]
    conv = (conv - (mean * scale)[None, :, None, None]) / np.sqrt(var * scale + 0.001)[None, :, None, None]
    gamma, beta = (a.astype(np.float64) for a in net.weights["scale"])
    conv = conv * gamma[None, :, None, None] + beta[None, :, None, None]
    conv = np.maximum(conv, 0)
    pool = conv.reshape(1, 3, 3, 2, 3, 2).max(axis=(3, 5))
    w, b = (a.astype(np.float64) for a in net.weights["ip"])
    ip = pool.reshape(1, -1) @ w.T + b
    e = np.exp(ip - ip.max())
    return e / e.sum()


def test_opencv_accepts_our_caffemodel_and_matches_numpy(small):
    proto, model, net = small
    cvnet = cv2.dnn.readNetFromCaffe(str(proto), str(model))
    assert list(cvnet.getLayerNames())[-1] == "prob"
    x = np.random.default_rng(3).normal(size=(1, 2, 6, 6)).astype(np.float32)
    cvnet.setInput(x)
    got = cvnet.forward()
    expected = _numpy_forward(net, x)
    assert got.shape == (1, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
    # and OpenCV reads back exactly the weights we wrote
    conv = cvnet.getLayer(cvnet.getLayerId("conv"))
    np.testing.assert_array_equal(conv.blobs[0], net.weights["conv"][0])


def test_opencv_accepts_a_corpus_net_with_our_caffemodel(tmp_path):
    proto = corpus_path("squeezenet_v1.1.prototxt")
    net = load(proto)
    model = tmp_path / "squeezenet.caffemodel"
    save_caffemodel(net, model, seed=1)
    cvnet = cv2.dnn.readNetFromCaffe(str(proto), str(model))
    x = np.random.default_rng(0).uniform(0, 1, size=(1, 3, 227, 227)).astype(np.float32)
    cvnet.setInput(x)
    prob = cvnet.forward()
    assert prob.shape == (1, 1000, 1, 1)
    assert np.isfinite(prob).all() and abs(float(prob.sum()) - 1.0) < 1e-3
    loaded = load(proto, model)
    np.testing.assert_array_equal(
        cvnet.getLayer(cvnet.getLayerId("conv10")).blobs[0], loaded.weights["conv10"][0])


# ---------------------------------------------------------------------------
# Older layouts, made with protobuf as Caffe made them
# ---------------------------------------------------------------------------


def _blob(values: np.ndarray, legacy: tuple | None = None, doubles=False) -> pb.BlobProto:
    blob = pb.BlobProto()
    if legacy is not None:
        blob.num, blob.channels, blob.height, blob.width = legacy
    else:
        blob.shape.dim.extend(values.shape)
    if doubles:
        blob.double_data.extend(values.astype(np.float64).ravel().tolist())
    else:
        blob.data.extend(values.astype(np.float32).ravel().tolist())
    return blob


IP_NET = ('input: "data"\ninput_shape { dim: 2 dim: 3 }\n'
          'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
          'inner_product_param { num_output: 4 } }\n')


def test_legacy_4d_blob_shapes_are_accepted_and_reshaped(tmp_path):
    w = np.arange(12, dtype=np.float32).reshape(4, 3)
    b = np.array([1, 2, 3, 4], dtype=np.float32)
    msg = pb.NetParameter(name="old")
    layer = msg.layer.add(name="ip", type="InnerProduct")
    layer.blobs.append(_blob(w, legacy=(1, 1, 4, 3)))
    layer.blobs.append(_blob(b, legacy=(1, 1, 1, 4)))
    path = tmp_path / "old.caffemodel"
    path.write_bytes(msg.SerializeToString())
    net = loads(IP_NET, caffemodel=str(path))
    weights, bias = net.weights["ip"]
    assert weights.shape == (4, 3) and bias.shape == (4,)
    assert np.array_equal(weights, w) and np.array_equal(bias, b)
    assert not weights.flags.writeable
    # the model itself keeps the 4-D shape it stored
    assert [a.shape for a in read_caffemodel(path).layers[0].blobs] == [(1, 1, 4, 3), (1, 1, 1, 4)]


def test_v1_layers_caffemodel(tmp_path):
    w = np.linspace(-1, 1, 12, dtype=np.float32).reshape(4, 3)
    b = np.zeros(4, dtype=np.float32)
    msg = pb.NetParameter(name="v1")
    layer = msg.layers.add(name="ip", type=pb.V1LayerParameter.INNER_PRODUCT)
    layer.bottom.append("data")
    layer.top.append("ip")
    layer.inner_product_param.num_output = 4
    layer.blobs_lr.extend([1, 2])
    layer.blobs.append(_blob(w, legacy=(1, 1, 4, 3)))
    layer.blobs.append(_blob(b, legacy=(1, 1, 1, 4)))
    relu = msg.layers.add(name="relu", type=pb.V1LayerParameter.RELU)
    relu.bottom.append("ip")
    relu.top.append("ip")
    msg.input.append("data")
    msg.input_dim.extend([2, 3, 1, 1])
    path = tmp_path / "v1.caffemodel"
    path.write_bytes(msg.SerializeToString())

    model = read_caffemodel(path)
    assert [(layer.param.name, layer.param.type, layer.v1) for layer in model.layers] == [
        ("ip", "InnerProduct", True), ("relu", "ReLU", True)]
    assert [p.lr_mult for p in model.layers[0].param.param] == [1, 2]
    # with a prototxt
    net = loads(IP_NET, caffemodel=model)
    assert np.array_equal(net.weights["ip"][0], w)
    # alone, as a network (V1 upgraded, 4-D input_dim kept)
    alone = load(path)
    assert [(layer.name, layer.type) for layer in alone.layers] == [("ip", "InnerProduct"), ("relu", "ReLU")]
    assert [(i.name, i.shape, i.form) for i in alone.inputs] == [("data", (2, 3, 1, 1), InputForm.BINARY)]
    assert alone.blob_shapes["ip"] == (2, 4)
    assert np.array_equal(alone.weights["ip"][0], w)
    assert alone.document is None and alone.layers[0].node is None
    assert alone.layers[0].locate("name") is None and alone.position(None) is None


def test_v0_layers_caffemodel_with_blobs_inside_the_v0_layer(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    msg = pb.NetParameter(name="v0")
    entry = msg.layers.add()
    entry.layer.name = "fc"
    entry.layer.type = "innerproduct"
    entry.layer.num_output = 2
    entry.layer.biasterm = False
    entry.layer.blobs.append(_blob(w, legacy=(1, 1, 2, 3)))
    entry.bottom.append("data")
    entry.top.append("fc")
    path = tmp_path / "v0.caffemodel"
    path.write_bytes(msg.SerializeToString())
    net = loads('input: "data"\ninput_shape { dim: 1 dim: 3 }\n'
                'layer { name: "fc" type: "InnerProduct" bottom: "data" top: "fc" '
                'inner_product_param { num_output: 2 bias_term: false } }\n', caffemodel=str(path))
    (weights,) = net.weights["fc"]
    assert np.array_equal(weights, w)


def test_unpacked_and_double_data(tmp_path):
    w = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    b = np.array([0.5, -1.5, 2.25, 3], dtype=np.float32)
    msg = pb.NetParameter()
    layer = msg.layer.add(name="ip", type="InnerProduct")
    layer.blobs.append(_blob(w, doubles=True))
    # the bias as an unpacked repeated float (tag per value), as old writers did
    shape = pb.BlobShape(dim=[4]).SerializeToString()
    unpacked = bytes([0x3a, len(shape)]) + shape + b"".join(
        bytes([0x2d]) + struct.pack("<f", v) for v in b)
    blob_field = bytes([0x3a, len(unpacked)]) + unpacked  # LayerParameter.blobs = 7
    data = msg.SerializeToString()
    # append the bias blob to the (only) layer: rewrite the layer's length
    layer_bytes = layer.SerializeToString() + blob_field
    data = bytes([0xa2, 0x06]) + _varint(len(layer_bytes)) + layer_bytes  # NetParameter.layer = 100
    path = tmp_path / "mixed.caffemodel"
    path.write_bytes(data)
    net = loads(IP_NET, caffemodel=str(path))
    weights, bias = net.weights["ip"]
    np.testing.assert_array_equal(weights, w)  # doubles become float32
    np.testing.assert_array_equal(bias, b)
    assert weights.dtype == bias.dtype == np.float32


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def test_parse_from_bytes(small):
    _, model, net = small
    parsed = parse_caffemodel(model.read_bytes(), "mem")
    assert parsed.path == "mem" and parsed.size == model.stat().st_size
    assert [layer.param.name for layer in parsed.layers] == [
        "conv", "bn", "scale", "relu", "pool", "ip", "prob"]
    assert list(parsed.net.input) == ["data"] and not parsed.net.layer
    assert np.array_equal(parsed.by_name()["ip"].blobs[0], net.weights["ip"][0])


# ---------------------------------------------------------------------------
# Mismatches between prototxt and caffemodel
# ---------------------------------------------------------------------------


def test_weights_count_mismatch(small, tmp_path):
    proto, model, _ = small
    changed = tmp_path / "nobias.prototxt"
    changed.write_text(SMALL.replace("num_output: 4 }", "num_output: 4 bias_term: false }"))
    with pytest.raises(CaffemodelError) as info:
        load(changed, model)
    err = info.value
    assert err.message == (
        "layer 'ip' (InnerProduct): the caffemodel has 2 blob(s), the prototxt needs 1 (weights); "
        "were they made for different networks (e.g. before/after merging BatchNorm)?")
    assert (err.path, err.line, err.column) == (str(changed), 11, 1)
    lenient = load(changed, model, strict=False)
    (problem,) = lenient.problems
    assert (problem.code, problem.layer, problem.fatal) == ("weights-count", "ip", True)
    assert "ip" not in lenient.weights or len(lenient.weights["ip"]) == 2


def test_weights_shape_mismatch(small, tmp_path):
    _, model, _ = small
    changed = tmp_path / "wider.prototxt"
    changed.write_text(SMALL.replace("num_output: 3 kernel_size: 3", "num_output: 5 kernel_size: 3"))
    with pytest.raises(CaffemodelError) as info:
        load(changed, model)
    err = info.value
    assert err.message == ("layer 'conv' (Convolution): caffemodel weights is 3x2x3x3, "
                           "the prototxt needs 5x2x3x3")
    assert (err.path, err.line) == (str(changed), 4)
    problems = load(changed, model, strict=False).problems
    assert [(p.code, p.layer) for p in problems] == [
        ("weights-shape", "conv"), ("weights-shape", "bn"), ("weights-shape", "scale"),
        ("weights-shape", "ip")]


def test_weights_missing_for_some_layers(small, tmp_path):
    proto, model, net = small
    partial = tmp_path / "partial.caffemodel"
    write_caffemodel(partial, [(unwrap(net.layer("conv").param), net.weights["conv"])])
    with pytest.raises(CaffemodelError) as info:
        load(proto, partial)
    assert info.value.message == (
        "layer 'bn' (BatchNorm) has no weights in the caffemodel partial.caffemodel, which has "
        "weights for only 1 of the 4 layers that need them; is the file truncated, or for another "
        "network?")
    assert info.value.line == 6
    problems = load(proto, partial, strict=False).problems
    assert [(p.code, p.layer) for p in problems] == [
        ("weights-missing", "bn"), ("weights-missing", "scale"), ("weights-missing", "ip")]


def test_caffemodel_for_another_network(small, tmp_path):
    proto, _, _ = small
    other = tmp_path / "lenet.caffemodel"
    lenet = loads(IP_NET)
    save_caffemodel(lenet, other, seed=1)
    renamed = tmp_path / "renamed.prototxt"
    renamed.write_text(SMALL.replace('name: "ip"', 'name: "fc"'))
    with pytest.raises(CaffemodelError, match=r"the caffemodel lenet.caffemodel has weights for none "
                                              r"of the 4 layer\(s\) that need them \(e.g. 'conv'\); "
                                              r"is it for another network\?"):
        load(renamed, other)


def test_extra_caffemodel_layers_are_ignored(small, tmp_path):
    proto, model, _ = small
    fewer = tmp_path / "fewer.prototxt"
    fewer.write_text(SMALL.split('layer { name: "ip"')[0])
    net = load(fewer, model)
    assert set(net.weights) == {"conv", "bn", "scale"}


def test_lone_caffemodel_loads_as_a_network(small, tmp_path):
    proto, _, with_weights = small
    # A caffemodel as Caffe's Net::ToProto writes it: every layer, with blobs.
    msg = pb.NetParameter(name="small")
    msg.input.append("data")
    msg.input_shape.add().dim.extend([1, 2, 6, 6])
    for layer in with_weights.layers:
        entry = msg.layer.add()
        entry.CopyFrom(layer.param.mutable())
        for arr in with_weights.weights.get(layer.name, ()):
            entry.blobs.append(_blob(np.asarray(arr)))
    path = tmp_path / "full.caffemodel"
    path.write_bytes(msg.SerializeToString())
    net = load(path)
    assert net.path == str(path) and net.weights_path == str(path)
    assert net.name == "small" and net.document is None
    assert [layer.name for layer in net.layers] == [layer.name for layer in with_weights.layers]
    assert [(i.name, i.shape, i.form) for i in net.inputs] == [("data", (1, 2, 6, 6), InputForm.BINARY)]
    assert dict(net.blob_shapes) == dict(with_weights.blob_shapes)
    for name, blobs in with_weights.weights.items():
        assert all(np.array_equal(a, b) for a, b in zip(net.weights[name], blobs))
    assert net.problems == ()


def test_our_caffemodel_loads_alone_as_the_same_network(small):
    proto, model, with_weights = small
    net = load(model)
    assert [(layer.name, layer.type, layer.bottoms, layer.tops) for layer in net.layers] == [
        (layer.name, layer.type, layer.bottoms, layer.tops) for layer in with_weights.layers]
    assert [(i.name, i.shape, i.form) for i in net.inputs] == [("data", (1, 2, 6, 6), InputForm.BINARY)]
    assert dict(net.blob_shapes) == dict(with_weights.blob_shapes)
    assert net.layer("conv").param == with_weights.layer("conv").param
    for name, blobs in with_weights.weights.items():
        assert all(np.array_equal(a, b) for a, b in zip(net.weights[name], blobs))


def test_caffemodel_file_errors(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        read_caffemodel(tmp_path / "missing.caffemodel")
    with pytest.raises(InputFileError, match="is a directory"):
        read_caffemodel(tmp_path)
    empty = tmp_path / "empty.caffemodel"
    empty.write_bytes(b"")
    with pytest.raises(CaffemodelError, match="the caffemodel is empty"):
        read_caffemodel(empty)
    junk = tmp_path / "junk.caffemodel"
    junk.write_bytes(b"\x00\x01\x02\x03")
    with pytest.raises(CaffemodelError) as info:
        read_caffemodel(junk)
    assert info.value.path == str(junk)
    assert info.value.message == "invalid field number 0 in the network; the file is corrupt (at byte 0)"


def test_blob_shape_disagreeing_with_its_data(tmp_path):
    msg = pb.NetParameter()
    layer = msg.layer.add(name="ip", type="InnerProduct")
    blob = layer.blobs.add()
    blob.shape.dim.extend([4, 3])
    blob.data.extend([0.0] * 11)
    path = tmp_path / "bad.caffemodel"
    path.write_bytes(msg.SerializeToString())
    with pytest.raises(CaffemodelError) as info:
        read_caffemodel(path)
    assert info.value.message.startswith(
        "layer 'ip' blob 0: shape 4x3 holds 12 values but the blob stores 11 (at byte ")


def test_write_is_atomic_and_leaves_no_temporary_on_failure(tmp_path):
    path = tmp_path / "w.caffemodel"
    path.write_bytes(b"old")

    def layers():
        yield pb.LayerParameter(name="a"), [np.zeros(2, np.float32)]
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        write_caffemodel(path, layers())
    assert path.read_bytes() == b"old"
    assert sorted(os.listdir(tmp_path)) == ["w.caffemodel"]
