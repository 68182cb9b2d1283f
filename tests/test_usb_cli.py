"""The stick path of the CLI end to end: real ``caffe2ncs`` subprocesses talking
through pyusb to a simulated stick that runs the graph files it receives with
caffe2ncs's fp16 emulator.

The stick lives in this process behind a :class:`usbsim.remote.StickServer`;
each CLI run reaches it through a pyusb backend named by
``CAFFE2NCS_PYUSB_BACKEND`` (the layer where libusb would be), so the stick keeps
its state from one run to the next, as a real one does: every fault below is
followed by a run that must succeed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import CORPUS, REPO, run_cli
from usbsim import RealClock, SimBackend, SimStick, emulator_executor, make_firmware
from usbsim.remote import StickServer

from caffe2ncs.lowering.graphfile import load_graph

#: Three small corpus networks of different shapes and layer mixes.
NETWORKS = ("lenet", "cifar10_quick", "squeezenet_v1.1")
MATMUL = "Matmul scratch memory [112640] lower than required [165392]"
NOLIBUSB = REPO / "tests" / "nolibusb"


@pytest.fixture(scope="module")
def graphs(tmp_path_factory) -> dict[str, Path]:
    """The corpus networks, made acceptable with ``caffe2ncs fix -o`` (the corpus
    is read in place, never changed) and compiled with ``caffe2ncs build`` for
    NCSDK 1.x (seeded random weights, so the outputs mean something)."""
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not found at {CORPUS}")
    out = tmp_path_factory.mktemp("graphs")
    built = {}
    for name in NETWORKS:
        src = CORPUS / f"{name}.prototxt"
        if not src.is_file():
            pytest.skip(f"corpus file {src.name} not found in {CORPUS}")
        fixed = out / f"{name}.prototxt"
        r = run_cli("fix", src, "-o", fixed)
        assert r.returncode in (0, 1) and fixed.is_file(), r.stderr
        graph = out / f"{name}.graph"
        r = run_cli("build", fixed, "--target", "ncsdk1", "--random-weights", "7", "-o", graph)
        assert r.returncode == 0, r.stdout + r.stderr
        built[name] = graph
    return built


@pytest.fixture(scope="module")
def inputs(graphs, tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("inputs")
    made = {}
    for i, (name, graph) in enumerate(graphs.items()):
        shape = load_graph(graph).input.shape_hwc
        made[name] = out / f"{name}.npy"
        np.save(made[name], np.random.default_rng(i).uniform(-1, 1, shape).astype(np.float32))
    return made


@dataclasses.dataclass
class Bus:
    server: StickServer
    stick: SimStick
    firmware: Path
    tmp: Path

    def env(self, **extra: str) -> dict[str, str]:
        return {**self.server.env(), "CAFFE2NCS_FIRMWARE": str(self.firmware), **extra}

    def results(self) -> int:
        with self.server.lock:
            return len(self.stick.results)


@pytest.fixture
def bus(tmp_path):
    """One NCS at port 1.2, unbooted, running the emulator; the firmware it boots
    with is a stand-in image (the real one is never shipped)."""
    firmware = tmp_path / "MvNCAPI.mvcmd"
    firmware.write_bytes(make_firmware())
    stick = SimStick((1, 2), 1, firmware=firmware.read_bytes(), executor=emulator_executor,
                     boot_delay_s=0.05, reset_delay_s=0.05, init_s=0.01)
    with StickServer(SimBackend([stick], clock=RealClock())) as server:
        yield Bus(server, stick, firmware, tmp_path)
        assert server.errors == []
        assert stick.protocol_errors == []


def run_graph(bus: Bus, graph: Path, x: Path, device: str = "ncs", out: Path | None = None,
              **env: str) -> subprocess.CompletedProcess:
    args = ["run", graph, "-i", x, "--device", device]
    if out is not None:
        args += ["-o", out]
    return run_cli(*args, env=bus.env(**env), timeout=120)


_EMULATOR_OUTPUTS: dict[tuple[Path, Path], bytes] = {}


def emulator_output(bus: Bus, graph: Path, x: Path) -> bytes:
    """The .npy that ``run --device emulator -o`` writes (once per graph and input)."""
    key = (graph, x)
    if key not in _EMULATOR_OUTPUTS:
        out = bus.tmp / f"{graph.stem}.emulator.npy"
        r = run_graph(bus, graph, x, "emulator", out)
        assert r.returncode == 0, r.stderr
        assert "device: fp16 emulator" in r.stdout
        _EMULATOR_OUTPUTS[key] = out.read_bytes()
    return _EMULATOR_OUTPUTS[key]


def assert_runs_on_the_stick(bus: Bus, graph: Path, x: Path) -> None:
    """A following run on the stick succeeds, with the emulator's output."""
    before = bus.results()
    out = bus.tmp / f"{graph.stem}.ncs.npy"
    r = run_graph(bus, graph, x, "ncs", out)
    assert r.returncode == 0, r.stderr
    assert "device: Neural Compute Stick" in r.stdout
    assert bus.results() == before + 1
    assert out.read_bytes() == emulator_output(bus, graph, x)


def assert_device_error(r: subprocess.CompletedProcess, pattern: str) -> str:
    """Exit 3 (a device failure), one line on stderr, no traceback."""
    assert r.returncode == 3, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert re.search(pattern, lines[0]), lines[0]
    return lines[0]


# ---------------------------------------------------------------------- same output


@pytest.mark.parametrize("name", NETWORKS)
def test_stick_output_is_the_emulators_byte_for_byte(bus, graphs, inputs, name):
    graph, x = graphs[name], inputs[name]
    on_stick = bus.tmp / "ncs.npy"
    r = run_graph(bus, graph, x, "ncs", on_stick)
    assert r.returncode == 0, r.stderr
    assert "device: Neural Compute Stick" in r.stdout
    assert on_stick.read_bytes() == emulator_output(bus, graph, x)
    # It really went over the link: the stick received this graph file and this
    # input (fp16, HWC), and reported one time per stage.
    with bus.server.lock:
        assert bus.stick.graph == graph.read_bytes()
        [(slot, sent)] = bus.stick.runs
        [result] = bus.stick.results
    assert slot == "input1"
    want = np.load(x).astype(np.float16)
    assert np.array_equal(np.frombuffer(sent, "<f2").reshape(want.shape), want)
    assert len(result.times) == len(load_graph(graph).stages)
    total = re.search(r"stick's stage times: ([0-9.]+) ms", r.stdout)
    assert total and float(total[1]) == pytest.approx(sum(result.times), abs=0.006)


# ----------------------------------------------------------------------- --device auto


def test_auto_prefers_the_stick_when_one_is_attached(bus, graphs, inputs):
    graph, x = graphs["lenet"], inputs["lenet"]
    out = bus.tmp / "auto.npy"
    r = run_cli("run", graph, "-i", x, "-o", out, env=bus.env())
    assert r.returncode == 0, r.stderr
    assert "device: Neural Compute Stick" in r.stdout
    assert bus.results() == 1
    assert out.read_bytes() == emulator_output(bus, graph, x)


def test_auto_uses_the_emulator_without_a_stick(bus, graphs, inputs):
    graph, x = graphs["lenet"], inputs["lenet"]
    with bus.server.lock:
        bus.stick.unplug()
    r = run_cli("run", graph, "-i", x, env=bus.env())
    assert r.returncode == 0, r.stderr
    assert "device: fp16 emulator" in r.stdout
    # ... and --device ncs then says there is no stick (after looking for 0.2 s
    # instead of libmvnc's 2 s).
    assert_device_error(run_graph(bus, graph, x, CAFFE2NCS_USB_TIMEOUTS="boot_find_s=0.2"),
                        r"no Neural Compute Stick found")
    with bus.server.lock:
        bus.stick.replug()
    r = run_cli("run", graph, "-i", x, env=bus.env())
    assert r.returncode == 0 and "device: Neural Compute Stick" in r.stdout, r.stderr


def test_auto_says_why_it_passes_over_a_stick_without_firmware(bus, graphs, inputs):
    """A stick is attached but there is no firmware to boot it: auto runs the
    emulator, and says so on stderr rather than leaving the user to wonder."""
    graph, x = graphs["lenet"], inputs["lenet"]
    r = run_cli("run", graph, "-i", x, env=bus.env(CAFFE2NCS_FIRMWARE=""))
    assert r.returncode == 0, r.stderr
    assert "device: fp16 emulator" in r.stdout
    assert "warning: a Neural Compute Stick is attached, but there is no firmware" in r.stderr
    assert "--firmware or CAFFE2NCS_FIRMWARE" in r.stderr
    assert bus.results() == 0
    # verify takes the same decision, and lists the note with its other warnings
    v = run_cli("verify", graph.with_suffix(".prototxt"), "--target", "ncsdk1", "--json",
                env=bus.env(CAFFE2NCS_FIRMWARE=""))
    assert v.returncode == 0, v.stderr
    result = json.loads(v.stdout)
    assert any("there is no firmware" in w for w in result["warnings"]), result["warnings"]
    assert bus.results() == 0


def test_auto_uses_the_emulator_without_libusb(graphs, inputs, tmp_path):
    """On a machine without libusb (``tests/nolibusb``: pyusb finds no USB library
    and libusb-package is not installed) auto runs the emulator, and an explicit
    --device ncs says how to get libusb."""
    firmware = tmp_path / "MvNCAPI.mvcmd"
    firmware.write_bytes(make_firmware())
    env = {"PYTHONPATH": str(NOLIBUSB), "CAFFE2NCS_PYUSB_BACKEND": "",
           "CAFFE2NCS_FIRMWARE": str(firmware)}
    r = run_cli("run", graphs["lenet"], "-i", inputs["lenet"], env=env)
    assert r.returncode == 0, r.stderr
    assert "device: fp16 emulator" in r.stdout
    r = run_cli("run", graphs["lenet"], "-i", inputs["lenet"], "--device", "ncs", env=env)
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stderr
    assert "no USB backend" in r.stderr and "pip install libusb-package" in r.stderr


# ---------------------------------------------------------------------------- faults


def test_unplugged_mid_run(bus, graphs, inputs):
    graph, x = graphs["lenet"], inputs["lenet"]
    with bus.server.lock:
        bus.stick.faults.unplug_on_run = True
    assert_device_error(run_graph(bus, graph, x),
                        r"the stick 1\.2 disappeared from the USB bus while reading 'output'")
    with bus.server.lock:
        bus.stick.replug()
    assert_runs_on_the_stick(bus, graph, x)


def test_result_never_comes(bus, graphs, inputs):
    graph, x = graphs["lenet"], inputs["lenet"]
    with bus.server.lock:
        bus.stick.faults.never_finish = True
    t0 = time.monotonic()
    assert_device_error(run_graph(bus, graph, x, CAFFE2NCS_USB_TIMEOUTS="result_s=1"),
                        r"the stick 1\.2 returned no result within 1 s")
    assert time.monotonic() - t0 >= 1.0
    # Closing reset the stick, which comes back unbooted: the next run just works.
    assert_runs_on_the_stick(bus, graph, x)


def test_stick_stops_answering(bus, graphs, inputs):
    graph, x = graphs["lenet"], inputs["lenet"]
    limits = "link_transfer_ms=300"
    with bus.server.lock:
        bus.stick.faults.stall_on_run = True
    assert_device_error(run_graph(bus, graph, x, CAFFE2NCS_USB_TIMEOUTS=limits),
                        r"the stick 1\.2 did not answer within 0\.3 s while reading 'output' \(20 bytes\); "
                        r"if it keeps failing, unplug the stick")
    # Still hung: the next run says so (and does not hang itself).
    assert_device_error(run_graph(bus, graph, x, CAFFE2NCS_USB_TIMEOUTS=limits),
                        r"the stick 1\.2 did not answer within 0\.3 s while asking it to reset")
    with bus.server.lock:
        bus.stick.replug()  # what the message asks for
    assert_runs_on_the_stick(bus, graph, x)


def test_stick_left_booted_by_a_failed_run_is_reset_and_reused(bus, graphs, inputs):
    """A stick that hung during a run and then recovered is still booted when the
    next program starts: that program resets it (a stale stick) and boots it."""
    graph, x = graphs["lenet"], inputs["lenet"]
    with bus.server.lock:
        bus.stick.faults.stall_on_run = True
    assert_device_error(run_graph(bus, graph, x, CAFFE2NCS_USB_TIMEOUTS="link_transfer_ms=300"),
                        r"did not answer within 0\.3 s")
    with bus.server.lock:
        bus.stick.faults.stall = False
        assert bus.stick.claimed_by is None  # the failed program's claim ended with it
        resets = bus.stick.resets
    assert_runs_on_the_stick(bus, graph, x)
    with bus.server.lock:
        assert bus.stick.resets >= resets + 1


@pytest.mark.parametrize("buffer", ["blobFile", "input1", "auxBuffer"])
def test_wrong_permit(bus, graphs, inputs, buffer):
    graph, x = graphs["lenet"], inputs["lenet"]
    with bus.server.lock:
        bus.stick.faults.wrong_permit_for = buffer
    assert_device_error(run_graph(bus, graph, x),
                        rf"the stick 1\.2 refused '{buffer}': it answered the permit 0xDEAD "
                        r"instead of 0xABCD")
    assert_runs_on_the_stick(bus, graph, x)


@pytest.mark.parametrize("buffer, size", [("output", 20), ("auxBuffer", 224 + 4 * 7)])
def test_short_read(bus, graphs, inputs, buffer, size):
    graph, x = graphs["lenet"], inputs["lenet"]
    with bus.server.lock:
        bus.stick.faults.short_read_for = buffer
    assert_device_error(run_graph(bus, graph, x, CAFFE2NCS_USB_TIMEOUTS="link_transfer_ms=300"),
                        rf"short read from the stick 1\.2 while reading '{buffer}' \({size} "
                        rf"bytes\): received {size // 2} of {size} bytes, then nothing for 0\.3 s")
    assert_runs_on_the_stick(bus, graph, x)


def test_second_program_opening_a_busy_stick(bus, graphs, inputs):
    graph, x = graphs["lenet"], inputs["lenet"]
    out = bus.tmp / "first.npy"
    with bus.server.lock:
        bus.stick.faults.never_finish = True  # the first run holds the stick until released
    # (a generous result limit: the first run must outwait the second one)
    env = {**os.environ, **bus.env(CAFFE2NCS_USB_TIMEOUTS="result_s=120"), "NO_COLOR": "1"}
    env.pop("FORCE_COLOR", None)
    first = subprocess.Popen([sys.executable, "-m", "caffe2ncs", "run", str(graph), "-i", str(x),
                              "--device", "ncs", "-o", str(out)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while True:
            with bus.server.lock:
                running = bus.stick.job is not None
            if running or first.poll() is not None or time.monotonic() > deadline:
                break
            time.sleep(0.02)
        assert running, first.communicate()
        second = run_graph(bus, graph, x)
        assert_device_error(second, r"the stick 1\.2 is in use by another program")
        with bus.server.lock:
            bus.stick.finish_now()
        stdout, stderr = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, stderr
    assert "device: Neural Compute Stick" in stdout
    assert out.read_bytes() == emulator_output(bus, graph, x)
    assert_runs_on_the_stick(bus, graph, x)


def test_firmware_error_text_is_shown(bus, graphs, inputs):
    graph, x = graphs["lenet"], inputs["lenet"]
    with bus.server.lock:
        bus.stick.faults.device_error = MATMUL
    line = assert_device_error(run_graph(bus, graph, x),
                               r'the stick 1\.2 reported an error: "Matmul scratch memory')
    assert line.endswith(f'"{MATMUL}"')
    assert_runs_on_the_stick(bus, graph, x)


def test_graph_the_stick_cannot_run_is_a_firmware_error(bus, graphs, inputs):
    """The simulated firmware (the emulator) refuses a reorg stage; the reason
    travels back in the auxBuffer's debug text."""
    from test_emulator_graph import single

    from caffe2ncs.lowering.graphfile import write_graph
    from caffe2ncs.lowering.ir import GraphFormat, Op

    g, _ = single(Op.REORG)
    reorg = bus.tmp / "reorg.graph"
    reorg.write_bytes(write_graph(g.graph(), GraphFormat.NCSDK1))
    x = bus.tmp / "reorg.npy"
    np.save(x, np.zeros((4, 4, 2), np.float32))
    assert_device_error(run_graph(bus, reorg, x),
                        r"the stick 1\.2 reported an error: \"stage 0 .*\(reorg\): the emulator "
                        r"does not execute reorg")
    assert_runs_on_the_stick(bus, graphs["lenet"], inputs["lenet"])


def test_bad_timeout_setting_is_a_usage_error(bus, graphs, inputs):
    r = run_graph(bus, graphs["lenet"], inputs["lenet"], CAFFE2NCS_USB_TIMEOUTS="result=3")
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "CAFFE2NCS_USB_TIMEOUTS" in r.stderr and "result_s" in r.stderr
    assert bus.results() == 0


# ---------------------------------------------------------------------------- profile


def test_profile_shows_the_stage_times_the_stick_reported(bus, graphs):
    import json

    graph = graphs["cifar10_quick"]
    nstages = len(load_graph(graph).stages)
    r = run_cli("profile", graph, "--device", "ncs", "--json", env=bus.env())
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    with bus.server.lock:
        results = list(bus.stick.results)
    # mvNCProfile's way: two runs, the second one's times.
    assert len(results) == 2
    reported = np.float32(results[-1].times)
    assert data["mode"] == "ncs" and len(data["layers"]) == nstages
    # (the JSON gives times to the microsecond)
    for key in ("measured_ms", "time_ms"):
        np.testing.assert_allclose([e[key] for e in data["layers"]], reported, rtol=0, atol=1e-6)
    assert data["measured_total_ms"] == pytest.approx(float(reported.sum(dtype=np.float64)),
                                                      rel=1e-6)

    r = run_cli("profile", graph, "--device", "ncs", env=bus.env())
    assert r.returncode == 0, r.stderr
    with bus.server.lock:
        reported = np.float32(bus.stick.results[-1].times)
    assert "measured on the stick" in r.stdout and "predicted (ms)" in r.stdout
    rows = [line.split() for line in r.stdout.splitlines()
            if re.match(r"\d+ +\S+ +[0-9.]+ +[0-9.]+ +[0-9.]+ +[0-9.]+$", line)]
    assert len(rows) == nstages
    # columns: #, name, MFLOPs, bandwidth, time (ms), predicted (ms)
    assert [row[-2] for row in rows] == [f"{t:.2f}" for t in reported]
    total = re.search(r"Total inference time\s+\S+\s+(\S+)", r.stdout)
    assert total and total[1] == f"{float(reported.sum(dtype=np.float64)):.2f}"


def test_profile_on_a_failing_stick_is_a_device_error(bus, graphs):
    with bus.server.lock:
        bus.stick.faults.device_error = MATMUL
    r = run_cli("profile", graphs["cifar10_quick"], "--device", "ncs", env=bus.env())
    assert_device_error(r, re.escape(f'reported an error: "{MATMUL}"'))
