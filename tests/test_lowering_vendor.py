"""Lowering against the real NCSDK 2.05 graph files (``shared/ncsdk-samples``).

Those were compiled from TensorFlow (conv -> ReLU -> flatten -> fully connected
[-> sigmoid]).  The same network written in Caffe, with the weights taken back
out of the vendor's file, must lower to the vendor's bytes - except the fields
where TensorFlow and Caffe differ: the pad style (TF "valid"/"same" vs
"caffe") and, for TF "same", the pad amounts.  Everything else - header,
stage records, descriptors, work-buffer layout, constants and their padding,
the orphan dilation constant, the relocation table - is identical.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import sample_dirs

from caffe2ncs.lowering import lower
from caffe2ncs.lowering.graphfile import load_graph, write_graph
from caffe2ncs.lowering.graphfile.ncsdk2_layout import STAGE_SECTION_HEADER, stage_size
from caffe2ncs.lowering.ir import Op, PadStyle
from caffe2ncs.model.loader import loads

#: Byte offsets of padX, padY, padStyle inside a convolution record.
PAD_FIELDS = (28, 32, 36)


def _comparable():
    """The samples made only of convolutions (+ReLU), one FC and an optional sigmoid."""
    params = []
    for folder in sample_dirs():
        g = load_graph(folder / "graph.mv")
        ops = [s.op for s in g.stages]
        if ops[-1] is Op.SIGMOID:
            ops = ops[:-1]
        if ops[-1] is Op.FULLY_CONNECTED and set(ops[:-1]) == {Op.CONVOLUTION}:
            params.append(pytest.param(folder, id=folder.name))
    if not params:
        return [pytest.param(None, marks=pytest.mark.skip(reason="vendor samples not found"))]
    return params


@pytest.mark.parametrize("folder", _comparable())
def test_caffe_twin_of_a_vendor_graph_lowers_to_its_bytes(folder) -> None:
    theirs = (folder / "graph.mv").read_bytes()
    vg = load_graph(folder / "graph.mv")
    x, y, c = vg.input.dims
    layers, weights, bottom = [], {}, "data"
    for i, st in enumerate(vg.stages):
        name = f"s{i}"
        if st.op is Op.CONVOLUTION:
            p = st.params
            kk, cin, k = st.taps.dims
            ox, oy = st.output.dims.x, st.output.dims.y
            # Caffe's symmetric pad giving the vendor's output size
            pad = next(q for q in range(p.kernel_x) if (st.input.dims.x + 2 * q - p.kernel_x)
                       // p.stride_x + 1 == ox and (st.input.dims.y + 2 * q - p.kernel_y)
                       // p.stride_y + 1 == oy)
            layers.append(f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" '
                          f'top: "{name}" convolution_param {{ num_output: {k} kernel_size: '
                          f'{p.kernel_x} stride: {p.stride_x} pad: {pad} }} }}')
            if st.post_op.op is Op.RELU:
                layers.append(f'layer {{ name: "r{i}" type: "ReLU" bottom: "{name}" '
                              f'top: "{name}" }}')
            taps = vg.constant(st.taps.constant).array()[:kk * cin * k].astype(np.float32)
            w = taps.reshape(p.kernel_y, p.kernel_x, cin, k).transpose(3, 2, 0, 1)
            b = vg.constant(st.bias.constant).array()[:k].astype(np.float32)
            weights[name] = (np.ascontiguousarray(w), b)
        elif st.op is Op.FULLY_CONNECTED:
            prev = vg.stages[i - 1].output.dims  # (W, H, C) of the conv output
            _, n, k = st.taps.dims
            layers.append(f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" '
                          f'top: "{name}" inner_product_param {{ num_output: {k} }} }}')
            taps = vg.constant(st.taps.constant).array()[:n * k].astype(np.float32)
            # the vendor's taps are (H, W, C, K); Caffe's weights (K, C*H*W)
            w = taps.reshape(prev.y, prev.x, prev.z, k).transpose(3, 2, 0, 1).reshape(k, n)
            b = vg.constant(st.bias.constant).array()[:k].astype(np.float32)
            weights[name] = (np.ascontiguousarray(w), b)
        else:
            layers.append(f'layer {{ name: "{name}" type: "Sigmoid" bottom: "{bottom}" '
                          f'top: "{name}" }}')
        bottom = name
    text = (f'name: "twin" input: "data" input_shape {{ dim: 1 dim: {c} dim: {y} dim: {x} }}\n'
            + "\n".join(layers))
    graph = lower(loads(text), target="ncsdk2", shaves=vg.shave_count, weights=weights)
    ours = write_graph(graph, "ncsdk2")
    assert len(ours) == len(theirs)

    allowed = set()
    record = int.from_bytes(theirs[54:58], "little") + STAGE_SECTION_HEADER
    for st in vg.stages:
        if st.op is Op.CONVOLUTION:
            allowed |= {record + f + j for f in PAD_FIELDS for j in range(4)}
        record += stage_size(st.op, st.post_op.op)
    diff = {i for i in range(len(ours)) if ours[i] != theirs[i]}
    assert diff <= allowed, sorted(diff - allowed)[:20]
    # and the pad style is the only difference for TF "valid"
    for st, mine in zip(vg.stages, graph.stages, strict=True):
        if st.op is Op.CONVOLUTION and st.params.pad_style is PadStyle.TF_VALID:
            assert (mine.params.pad_x, mine.params.pad_y) == (0, 0)
