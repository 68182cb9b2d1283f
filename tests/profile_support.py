"""Shared helpers of the profiler's tests: the vendor's GoogLeNet table and a
lowering (the real one when this branch has it, else the stand-in)."""

from __future__ import annotations

import pytest
from conftest import SHARED, corpus_path

VENDOR_TABLE = SHARED / "spec" / "googlenet-profile-ncs1.tsv"
GOOGLENET = "ncappzoo_googlenet_input_shape.prototxt"


def real_lower():
    """``caffe2ncs.lowering.lower``, or None while it has not landed."""
    try:
        from caffe2ncs.lowering import lower  # type: ignore[attr-defined]
    except ImportError:
        return None
    return lower


def lowered_with_layers(net):
    """``(graph, stage_layers, which)``: the real lowering's graph and its
    stage -> Caffe layers map (what ``caffe2ncs profile`` uses), or the
    stand-in's graph and None (its stages are named after their layers)."""
    if real_lower() is not None:
        from caffe2ncs.profile.source import lower_net

        graph, stage_layers = lower_net(net, None, 12)
        return graph, stage_layers, "caffe2ncs.lowering"
    from profile_netir import lower_for_tests

    return (lower_for_tests(net), None,
            "tests/profile_netir.py (stand-in: no lowering on this branch)")


def lowered(net):
    """``(graph, which)``: the real lowering's graph, or the stand-in's."""
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
