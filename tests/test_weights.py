"""Synthetic weights (caffe2ncs.model.weights): shapes, statistics, and that
random networks stay in the float16 range the device computes in."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import corpus_params, corpus_path

from caffe2ncs.model import load, loads
from caffe2ncs.model.weights import residual_branch_scales, save_caffemodel, synthesize
from caffe2ncs.runtime.reference import run, run_layers, supported_types

FP16_MAX = 65504.0


def uniform_inputs(net, seed: int = 12345) -> dict[str, np.ndarray]:
    """Batch-1 inputs uniform in [-1, 1), from a seed of their own (not the
    calibration's)."""
    rng = np.random.default_rng(seed)
    return {s.name: rng.uniform(-1.0, 1.0, (1, *s.shape[1:])).astype(np.float32)
            for s in net.inputs}


def runnable_layers(net) -> list:
    """The layers the reference executor can run from the inputs: all of them,
    or those before a layer it cannot run (a Python layer, YOLO
    post-processing, ENet's BN, ...) that do not depend on one."""
    supported = supported_types()
    available = {s.name for s in net.inputs if s.shape is not None}
    out = []
    for layer in net.layers:
        if layer.type in supported and all(b in available for b in layer.bottoms) and \
                all(s is not None for s in net.layer_shapes[layer.index].outputs):
            out.append(layer)
            available.update(layer.tops)
        else:
            available.difference_update(layer.tops)
    return out


@pytest.mark.parametrize("prototxt", corpus_params())
def test_random_weights_keep_every_corpus_network_in_float16_range(prototxt):
    net = load(prototxt, strict=False)
    if any(s.shape is None for s in net.inputs):
        pytest.skip("an input without a shape")
    weights = synthesize(net, seed=0)
    plan = runnable_layers(net)
    assert plan, "the reference can run none of it"
    worst, where = 0.0, None
    for layer, tops in run_layers(net, uniform_inputs(net), weights,
                                  outputs=[t for layer in plan for t in layer.tops]):
        for name, value in tops.items():
            assert np.all(np.isfinite(value)), f"{layer.name} ({layer.type}): {name} not finite"
            if value.size:
                peak = float(np.max(np.abs(value)))
                if peak > worst:
                    worst, where = peak, f"{name} of {layer.name} ({layer.type})"
    assert worst < FP16_MAX, f"max |activation| {worst:.3g} at {where}"


def test_batchnorm_statistics_match_their_input():
    # The variance is the mean square of what the BatchNorm receives, so its
    # output has a mean square of about 1 on any unit-range input.
    net = loads('input: "d"\ninput_shape { dim: 1 dim: 3 dim: 32 dim: 32 }\n'
                'layer { name: "c" type: "Convolution" bottom: "d" top: "c" '
                'convolution_param { num_output: 16 kernel_size: 3 } }\n'
                'layer { name: "bn" type: "BatchNorm" bottom: "c" top: "b" }\n'
                'layer { name: "c2" type: "Convolution" bottom: "b" top: "c2" '
                'convolution_param { num_output: 8 kernel_size: 1 } }\n'
                'layer { name: "bn2" type: "BatchNorm" bottom: "c2" top: "b2" }\n')
    weights = synthesize(net, seed=3)
    mean, var, factor = weights["bn"]
    assert mean.shape == var.shape == (16,) and factor.tolist() == [1.0]
    assert np.all(var == var[0]) and var[0] > 0
    assert np.max(np.abs(mean)) < 0.5 * np.sqrt(var[0])
    out = run(net, uniform_inputs(net), weights, outputs=["c", "b", "b2"])
    assert var[0] == pytest.approx(float(np.mean(out["c"] ** 2)), rel=0.1)
    for blob in ("b", "b2"):
        assert float(np.mean(out[blob] ** 2)) == pytest.approx(1.0, rel=0.2)


def test_residual_branches_end_in_small_scales():
    net = load(corpus_path("resnet50.prototxt"))
    ends = {net.layers[i].name for i in residual_branch_scales(net)}
    # every bottleneck's last Scale, never the projection shortcut's
    assert ends == {layer.name for layer in net.layers
                    if layer.type == "Scale" and layer.name.endswith("_branch2c")}
    assert len(ends) == 16
    weights = synthesize(net, seed=1)
    gamma = weights["scale2a_branch2c"][0]
    assert 0.1 <= gamma.min() and gamma.max() <= 0.3
    gamma = weights["scale2a_branch1"][0]
    assert 0.8 <= gamma.min() and gamma.max() <= 1.2


def test_residual_nets_stay_order_one():
    # ResNet-152: 50 blocks; without calibrated statistics its activations
    # reached 5e12.
    net = load(corpus_path("resnet152.prototxt"))
    out = run(net, uniform_inputs(net), synthesize(net, seed=2), outputs=["res5c", "fc1000"])
    assert np.max(np.abs(out["res5c"])) < 100
    assert 0.1 < np.std(out["fc1000"]) < 10


def test_bilinear_filler_is_honoured():
    # Caffe's BilinearFiller for a 4x4 kernel (2x upsampling): the outer product
    # of [1, 3, 3, 1] / 4 with itself, in every slice.
    net = loads('input: "d"\ninput_shape { dim: 1 dim: 2 dim: 4 dim: 4 }\n'
                'layer { name: "up" type: "Deconvolution" bottom: "d" top: "u" '
                'convolution_param { num_output: 2 group: 2 kernel_size: 4 stride: 2 pad: 1 '
                'bias_term: false weight_filler { type: "bilinear" } } }\n')
    (w,) = synthesize(net, seed=0)["up"]
    k = np.array([1, 3, 3, 1]) / 4
    np.testing.assert_array_equal(w, np.broadcast_to(np.outer(k, k), (2, 1, 4, 4)))
    x = np.ones((1, 2, 4, 4), np.float32)  # a constant map upsamples to itself inside
    assert np.allclose(run(net, {"d": x}, {"up": (w,)})["u"][:, :, 1:-1, 1:-1], 1.0)


def test_he_fan_in_of_a_deconvolution_counts_the_taps_per_output():
    net = loads('input: "d"\ninput_shape { dim: 1 dim: 64 dim: 16 dim: 16 }\n'
                'layer { name: "up" type: "Deconvolution" bottom: "d" top: "u" '
                'convolution_param { num_output: 32 kernel_size: 4 stride: 2 pad: 1 } }\n')
    (w, b) = synthesize(net, seed=0)["up"]
    assert w.shape == (64, 32, 4, 4)
    # fan-in = 64 channels x 16 taps / 4 (stride area) = 256
    assert np.std(w) == pytest.approx(np.sqrt(2 / 256), rel=0.05)


def test_convolution_depthwise_fork_weights_round_trip(tmp_path):
    # The fork's layer has (C, 1, kh, kw) weights whatever num_output says; a
    # caffemodel holding them loads (it used to be refused as a shape mismatch).
    text = ('input: "d"\ninput_shape { dim: 1 dim: 6 dim: 9 dim: 9 }\n'
            'layer { name: "dw" type: "ConvolutionDepthwise" bottom: "d" top: "y" '
            'convolution_param { num_output: 12 kernel_size: 3 stride: 2 pad: 1 } }\n')
    proto = tmp_path / "dw.prototxt"
    proto.write_text(text)
    net = load(proto)
    weights = synthesize(net, seed=4)
    assert [a.shape for a in weights["dw"]] == [(6, 1, 3, 3), (6,)]
    model = tmp_path / "dw.caffemodel"
    save_caffemodel(net, model, seed=4)
    loaded = load(proto, model)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.weights["dw"], weights["dw"]))
    assert loaded.blob_shapes["y"] == (1, 6, 5, 5)
    x = uniform_inputs(net)["d"]
    y = run(loaded, {"d": x})["y"]
    assert y.shape == (1, 6, 5, 5)
    w, b = weights["dw"]
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))
    want = np.einsum("cij,ncij->nc", w[:, 0], xp[:, :, 4:7, 2:5]) + b  # output pixel (2, 1)
    np.testing.assert_allclose(y[:, :, 2, 1], want, rtol=1e-5)


def test_random_weights_are_seeded_and_per_layer():
    body = ('layer { name: "a" type: "Convolution" bottom: "d" top: "a" '
            'convolution_param { num_output: 4 kernel_size: 3 } }\n'
            'layer { name: "bn" type: "BatchNorm" bottom: "a" top: "a" }\n')
    head = 'input: "d"\ninput_shape { dim: 1 dim: 2 dim: 8 dim: 8 }\n'
    one = synthesize(loads(head + body), seed=9)
    again = synthesize(loads(head + body), seed=9)
    other = synthesize(loads(head + body), seed=10)
    more = synthesize(loads(head + body + 'layer { name: "z" type: "InnerProduct" bottom: "a" '
                            'top: "z" inner_product_param { num_output: 3 } }\n'), seed=9)
    for name in ("a", "bn"):
        assert all(np.array_equal(x, y) for x, y in zip(one[name], again[name]))
        assert all(np.array_equal(x, y) for x, y in zip(one[name], more[name]))
    assert not np.array_equal(one["a"][0], other["a"][0])
