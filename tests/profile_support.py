"""Shared helpers of the profiler's tests: the vendor's GoogLeNet table and
the lowering as the profiler uses it."""

from __future__ import annotations

import pytest
from conftest import SHARED, corpus_path

VENDOR_TABLE = SHARED / "spec" / "googlenet-profile-ncs1.tsv"
GOOGLENET = "ncappzoo_googlenet_input_shape.prototxt"


def lowered_with_layers(net):
    """``(graph, stage_layers, which)``: the lowering's graph for NCSDK 1.x at
    12 SHAVEs and its stage -> Caffe layers map, what ``caffe2ncs profile``
    uses (``which`` names the lowering, for messages)."""
    from caffe2ncs.profile.source import lower_net

    graph, stage_layers = lower_net(net, None, 12)
    return graph, stage_layers, "caffe2ncs.lowering"


def lowered(net):
    """``(graph, which)``, see :func:`lowered_with_layers`."""
    graph, _, which = lowered_with_layers(net)
    return graph, which


def vendor_rows():
    from caffe2ncs.profile.calibrate import read_vendor_table

    if not VENDOR_TABLE.is_file():
        pytest.skip(f"the vendor's GoogLeNet table is not at {VENDOR_TABLE}")
    return read_vendor_table(VENDOR_TABLE)


def googlenet():
    """``(net, graph, which)`` for the NCS GoogLeNet (batch 1, input_shape)."""
    net, graph, _, which = googlenet_with_layers()
    return net, graph, which


def googlenet_with_layers():
    """``(net, graph, stage_layers, which)``, see :func:`lowered_with_layers`."""
    from caffe2ncs.model import load

    net = load(corpus_path(GOOGLENET))
    graph, stage_layers, which = lowered_with_layers(net)
    return net, graph, stage_layers, which
