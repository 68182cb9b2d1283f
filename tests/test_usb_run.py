"""Running graphs on a (simulated) stick: the v1 API semantics and the exact
sequence of link commands libmvnc 1.x sends."""

from __future__ import annotations

import re
import struct

import numpy as np
import pytest
from usbsim import make_graph, make_rig
from usbsim.toy import expected_output, expected_times

from caffe2ncs.errors import GraphFileError
from caffe2ncs.runtime.usb import DeviceBusyError, DeviceOptions, Result, open_device

STATUS, RESET, SET, GET = 0, 1, 2, 3


def link_commands(stick):
    """The headers after the boot's status polls, without status polls."""
    return [h for h in stick.headers if h[0] != STATUS]


def test_full_run_returns_the_executors_output_and_stage_times(tmp_path):
    rig = make_rig(tmp_path)
    graph = make_graph(5, (3, 2, 4))
    x = np.linspace(-1, 1, 8 * 8 * 3).astype(np.float16).reshape(8, 8, 3)
    with open_device(**rig.device_kwargs()) as dev:
        with dev.allocate_graph(graph) as g:
            assert (g.nstages, g.noutputs) == (5, 24)
            t0 = rig.clock.monotonic()
            result = g.infer(x)
            waited = rig.clock.monotonic() - t0
    assert isinstance(result, Result)
    assert result.output.dtype == np.float16 and result.output.shape == (24,)
    np.testing.assert_array_equal(result.output, expected_output(graph, x.tobytes()))
    assert result.stage_times_ms.dtype == np.float32
    np.testing.assert_array_equal(result.stage_times_ms, np.float32(expected_times(graph)))
    assert result.total_ms == pytest.approx(sum(expected_times(graph)))
    assert result.debug_message == ""
    np.testing.assert_array_equal(result.thermal_stats, np.arange(40, 65, dtype=np.float32))
    assert result.throttle_level == 0
    # The host waited (polling "output") for the simulated inference time.
    assert waited >= result.total_ms / 1000
    assert rig.stick.runs == [("input1", x.tobytes())]
    assert rig.protocol_errors() == []


def test_command_sequence_matches_libmvnc(tmp_path):
    rig = make_rig(tmp_path)
    graph = make_graph(3, (2, 3, 4))
    x = np.ones((4, 4, 3), np.float16)
    with open_device(**rig.device_kwargs()) as dev:
        g = dev.allocate_graph(graph)
        g.infer(x)
    cmds = link_commands(rig.stick)
    # Between the SET of input1 and the successful GET of output the host may
    # retry GET output (refused while running); collapse those retries.
    collapsed = [c for i, c in enumerate(cmds) if not (i and c == cmds[i - 1])]
    assert collapsed == [
        (SET, 0, len(graph), 0, "blobFile"),
        (SET, 0, 224 + 4 * 3, 0, "auxBuffer"),
        (SET, 0, 40, 0, "config"),
        (SET, 1, 4 * 4 * 3 * 2, 0, "input1"),
        (GET, 0, 2 * 24, 0, "output"),
        (GET, 0, 224 + 4 * 3, 0, "auxBuffer"),
        (RESET, 0, 0, 0, ""),
    ]
    assert rig.stick.graph == graph
    assert rig.stick.aux_size == 224 + 12
    assert rig.stick.link_timeouts == {10000}
    assert rig.protocol_errors() == []


def test_status_is_checked_before_the_graph_is_sent(tmp_path):
    rig = make_rig(tmp_path)
    with open_device(**rig.device_kwargs()) as dev:
        n = len(rig.stick.headers)
        dev.allocate_graph(make_graph())
        assert rig.stick.headers[n][0] == STATUS
        assert rig.stick.headers[n + 1][4] == "blobFile"


def test_default_config_values(tmp_path):
    rig = make_rig(tmp_path)
    with open_device(**rig.device_kwargs()) as dev, dev.allocate_graph(make_graph()) as g:
        g.infer(np.zeros(12, np.float16))
    # [version, query disable, iterations, temp upper, temp lower, backoff normal,
    #  backoff high, backoff critical, temperature debug, network throttle]
    assert rig.stick.config == (1, 0, 1, 95, 85, 0, 100, 10000, 0, 1)


def test_options_reach_the_stick(tmp_path):
    rig = make_rig(tmp_path)
    opts = DeviceOptions(
        temp_lim_upper=90.9, temp_lim_lower=70.2, backoff_time_high=50, temperature_debug=1
    )
    with (
        open_device(**rig.device_kwargs(options=opts)) as dev,
        dev.allocate_graph(make_graph()) as g,
    ):
        g.iterations = 3
        g.network_throttle = 0
        g.infer(np.zeros(12, np.float16))
        g.infer(np.zeros(12, np.float16))
    assert rig.stick.config == (1, 0, 3, 90, 70, 0, 50, 10000, 1, 0)
    # config goes once, before the first input (send_opt_data when !g->started)
    assert [h[4] for h in rig.stick.headers].count("config") == 1


def test_double_buffered_inputs(tmp_path):
    rig = make_rig(tmp_path)
    graph = make_graph(2, (1, 1, 4))
    a, b, c = (np.full(6, v, np.float16) for v in (1, 2, 3))
    with open_device(**rig.device_kwargs()) as dev, dev.allocate_graph(graph) as g:
        g.load_tensor(a, "A")
        g.load_tensor(b, "B")
        with pytest.raises(RuntimeError, match="already queued"):
            g.load_tensor(c)
        ra = g.get_result()
        g.load_tensor(c, "C")
        rb = g.get_result()
        rc = g.get_result()
        with pytest.raises(RuntimeError, match="without a queued inference"):
            g.get_result()
    assert [r.user_obj for r in (ra, rb, rc)] == ["A", "B", "C"]
    for r, x in ((ra, a), (rb, b), (rc, c)):
        np.testing.assert_array_equal(r.output, expected_output(graph, x.tobytes()))
    sets = [(h[1], h[4]) for h in rig.stick.headers if h[0] == SET and h[4].startswith("input")]
    # hostready only when the stick was idle; inputs alternate between the two slots
    assert sets == [(1, "input1"), (0, "input2"), (0, "input1")]
    aux_reads = [h[1] for h in rig.stick.headers if h[0] == GET and h[4] == "auxBuffer"]
    # hostready on the auxBuffer read starts the queued input
    assert aux_reads == [1, 1, 0]
    assert [name for name, _ in rig.stick.runs] == ["input1", "input2", "input1"]
    assert rig.protocol_errors() == []


def test_float_and_integer_inputs_are_sent_as_fp16(tmp_path):
    rig = make_rig(tmp_path)
    with open_device(**rig.device_kwargs()) as dev, dev.allocate_graph(make_graph()) as g:
        g.infer(np.array([0.5, 1.25, -3.0], np.float32))
        g.infer([1, 2, 3])
        g.infer(np.array([1.0, 2.0], np.float16).tobytes())
        with pytest.raises(ValueError, match="whole number of fp16"):
            g.load_tensor(b"\x00\x01\x02")
        with pytest.raises(TypeError):
            g.load_tensor(np.array(["a"]))
    sent = [data for _, data in rig.stick.runs]
    assert sent[0] == np.array([0.5, 1.25, -3.0], "<f2").tobytes()
    assert sent[1] == np.array([1, 2, 3], "<f2").tobytes()
    assert sent[2] == np.array([1.0, 2.0], "<f2").tobytes()


def test_one_graph_per_device_and_deallocate_frees_it(tmp_path):
    rig = make_rig(tmp_path)
    g1, g2 = make_graph(2, (1, 1, 2)), make_graph(3, (2, 2, 2))
    with open_device(**rig.device_kwargs()) as dev:
        first = dev.allocate_graph(g1)
        with pytest.raises(DeviceBusyError, match="one graph per device"):
            dev.allocate_graph(g2)
        blob_sets = sum(1 for h in rig.stick.headers if h[4] == "blobFile")
        first.deallocate()
        assert (
            sum(1 for h in rig.stick.headers if h[4] == "blobFile") == blob_sets
        )  # host side only
        with pytest.raises(RuntimeError, match="deallocated"):
            first.load_tensor(np.zeros(2, np.float16))
        second = dev.allocate_graph(g2)
        r = second.infer(np.ones(4, np.float16))
        assert r.output.shape == (8,) and r.stage_times_ms.shape == (3,)
    assert rig.stick.graph == g2
    assert rig.protocol_errors() == []


def test_bad_graph_is_refused_before_anything_is_sent(tmp_path):
    rig = make_rig(tmp_path)
    bad = bytearray(make_graph())
    bad[36] = 3
    with open_device(**rig.device_kwargs()) as dev:
        n = len(rig.stick.headers)
        with pytest.raises(GraphFileError):
            dev.allocate_graph(bytes(bad))
        assert len(rig.stick.headers) == n
        dev.allocate_graph(make_graph())  # the device is still fine


def test_large_graph_is_sent_in_10_mib_transfers(tmp_path):
    rig = make_rig(tmp_path)
    graph = make_graph(1, (1, 1, 2), data=bytes(23 * 1024 * 1024))
    with open_device(**rig.device_kwargs()) as dev:
        n = len(rig.stick.link_out_sizes)
        dev.allocate_graph(graph)
        sizes = rig.stick.link_out_sizes[n:]
    mib = 1024 * 1024
    assert 10 * mib in sizes and max(sizes) == 10 * mib
    assert rig.stick.graph == graph and rig.protocol_errors() == []


def test_optimisation_list(tmp_path):
    rig = make_rig(tmp_path, optimisations=("opt_conv_1_1_1_1_a", "opt_fc_b"))
    with open_device(**rig.device_kwargs()) as dev:
        assert dev.optimisation_list() == ["opt_conv_1_1_1_1_a", "opt_fc_b"]
        n = len(rig.stick.headers)
        assert dev.optimisation_list() == ["opt_conv_1_1_1_1_a", "opt_fc_b"]  # cached
        assert len(rig.stick.headers) == n
        g = dev.allocate_graph(make_graph())
        r = g.infer(np.zeros(4, np.float16))
        assert r.output.size == 24
    configs = [h for h in rig.stick.headers if h[4] == "config"]
    assert [c[1] for c in configs] == [1, 0, 0]  # query (hostready), query off, graph config
    assert rig.stick.config == (1, 0, 1, 95, 85, 0, 100, 10000, 0, 1)
    assert rig.protocol_errors() == []


def test_thermal_data_is_kept_on_the_device(tmp_path):
    rig = make_rig(tmp_path, throttle_level=2, thermal=tuple(float(i) for i in range(25)))
    with open_device(**rig.device_kwargs()) as dev:
        assert dev.thermal_stats is None
        dev.allocate_graph(make_graph()).infer(np.zeros(4, np.float16))
        assert dev.throttle_level == 2
        np.testing.assert_array_equal(dev.thermal_stats, np.arange(25, dtype=np.float32))


def test_aux_buffer_layout_is_decoded_at_the_documented_offsets():
    from caffe2ncs.runtime.usb.device import decode_aux

    aux = (
        b"Matmul scratch memory [112640] lower than required [165392]".ljust(120, b"\0")
        + struct.pack("<25f", *range(25))
        + struct.pack("<i", 3)
        + struct.pack("<2f", 1.5, 2.5)
    )
    debug, thermal, throttle, times = decode_aux(aux, 2)
    assert debug == "Matmul scratch memory [112640] lower than required [165392]"
    assert thermal.tolist() == list(range(25)) and throttle == 3 and times.tolist() == [1.5, 2.5]


def test_run_graph_pipelines_inputs_and_closes_the_stick(tmp_path):
    from caffe2ncs.runtime.usb import run_graph

    rig = make_rig(tmp_path)
    graph = make_graph(2, (1, 2, 2))
    xs = [np.full(5, v, np.float16) for v in range(5)]
    results = run_graph(graph, xs, iterations=2, **rig.device_kwargs())
    assert len(results) == 5
    for r, x in zip(results, xs, strict=True):
        np.testing.assert_array_equal(r.output, expected_output(graph, x.tobytes()))
    # Two deep: the second input is sent before the first result is read.
    names = [(h[0], h[4]) for h in rig.stick.headers if h[4] in ("input1", "input2", "output")]
    first_output = names.index((GET, "output"))
    assert names[:first_output] == [(SET, "input1"), (SET, "input2")]
    assert rig.stick.config[2] == 2
    assert rig.stick.resets == 1 and rig.protocol_errors() == []


def test_run_graph_closes_the_stick_on_error(tmp_path):
    from caffe2ncs.runtime.usb import MyriadError, run_graph

    rig = make_rig(tmp_path)
    rig.stick.faults.device_error = "boom"
    with pytest.raises(MyriadError, match='"boom"'):
        run_graph(make_graph(), [np.zeros(3, np.float16)] * 3, **rig.device_kwargs())
    assert rig.stick.resets == 1


def test_stick_options_for_commands():
    import argparse

    from caffe2ncs.runtime.usb.options import add_stick_arguments, stick_kwargs

    p = argparse.ArgumentParser()
    add_stick_arguments(p)
    args = p.parse_args(["--firmware", "/x/MvNCAPI.mvcmd", "--stick", "1.2"])
    assert stick_kwargs(args) == {"name": "1.2", "firmware": "/x/MvNCAPI.mvcmd"}
    assert stick_kwargs(p.parse_args([])) == {"name": None, "firmware": None}


def test_options_module_is_cheap_to_import():
    import subprocess
    import sys

    code = (
        "import sys, caffe2ncs.runtime.usb.options; "
        "print(sorted(m for m in ('numpy', 'usb.core') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_timeouts_from_the_environment(tmp_path, monkeypatch):
    from caffe2ncs.errors import UsageError
    from caffe2ncs.runtime.usb import Device, DeviceTimeoutError, Timeouts

    assert Timeouts.from_env({}) == Timeouts()
    t = Timeouts.from_env({"CAFFE2NCS_USB_TIMEOUTS": " result_s=60, link_transfer_ms=20000 ,"})
    assert (t.result_s, t.link_transfer_ms, t.boot_chunk_ms) == (60.0, 20000, 2000)
    assert isinstance(t.link_transfer_ms, int)
    for spec, text in [
        ("result=3", "'result=3' is not 'limit=value' with a known limit"),
        ("result_s", "'result_s' is not 'limit=value'"),
        ("result_s=soon", "result_s must be a number, got 'soon'"),
        ("link_transfer_ms=1.5", "link_transfer_ms must be a whole number, got '1.5'"),
        ("result_s=0", "result_s must be positive"),
        ("result_s=nan", "result_s must be positive"),
        ("result_s=inf", "result_s must be positive"),
    ]:
        with pytest.raises(UsageError, match="CAFFE2NCS_USB_TIMEOUTS: " + re.escape(text)):
            Timeouts.from_env({"CAFFE2NCS_USB_TIMEOUTS": spec})
    # A Device takes them from the environment unless given its own.
    monkeypatch.setenv("CAFFE2NCS_USB_TIMEOUTS", "result_s=0.5")
    rig = make_rig(tmp_path)
    assert Device(**rig.device_kwargs()).timeouts.result_s == 0.5
    assert Device(**rig.device_kwargs(timeouts=Timeouts())).timeouts.result_s == 15.0
    rig.stick.faults.never_finish = True
    with open_device(**rig.device_kwargs()) as dev, dev.allocate_graph(make_graph()) as g:
        g.load_tensor(np.zeros(3, np.float16))
        with pytest.raises(DeviceTimeoutError, match="no result within 0.5 s"):
            g.get_result()
