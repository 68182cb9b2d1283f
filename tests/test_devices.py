"""``caffe2ncs devices`` in a subprocess, against the simulated bus
(``CAFFE2NCS_PYUSB_BACKEND=usbsim.factories:...``), the machine's real one, and
a machine without libusb (``tests/nolibusb``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli

TESTS = Path(__file__).resolve().parent


def devices(*args: str, factory: str | None = None,
            pythonpath: Path = TESTS) -> subprocess.CompletedProcess:
    """Run ``caffe2ncs devices ARGS`` in a fresh interpreter, on the simulated
    sticks of ``usbsim.factories:FACTORY`` (none without ``factory``)."""
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(pythonpath),
                                                      os.environ.get("PYTHONPATH")])),
           "CAFFE2NCS_PYUSB_BACKEND": f"usbsim.factories:{factory}" if factory else ""}
    return run_cli("devices", *args, env=env)


def test_lists_sticks_as_text():
    r = devices(factory="mixed")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "3 Neural Compute Sticks found:"
    assert lines[1].split() == ["NAME", "BUS", "STATE", "MODEL", "USB", "ID"]
    assert lines[2].split() == ["1.2", "1", "unbooted", "NCS", "(Myriad", "2)", "03e7:2150"]
    assert lines[3].split() == ["1.3", "1", "unbooted", "NCS2", "(Myriad", "X)", "03e7:2485"]
    assert lines[4].split()[:3] == ["4", "2", "booted"] and lines[4].endswith("03e7:f63b")
    assert "NCS2 (Myriad X) is listed but not supported" in r.stdout
    assert r.stderr == ""


def test_lists_sticks_as_json():
    r = devices("--json", factory="mixed")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [
        (d["name"], d["bus"], d["state"], d["model"], d["vendor_id"], d["product_id"]) for d in data
    ] == [
        ("1.2", 1, "unbooted", "NCS (Myriad 2)", "03e7", "2150"),
        ("1.3", 1, "unbooted", "NCS2 (Myriad X)", "03e7", "2485"),
        ("4", 2, "booted", None, "03e7", "f63b"),
    ]
    assert all(
        set(d)
        == {"name", "bus", "port_path", "address", "state", "model", "vendor_id", "product_id"}
        for d in data
    )


def test_one_stick_singular():
    r = devices(factory="one_ncs")
    assert r.returncode == 0
    assert r.stdout.splitlines()[0] == "1 Neural Compute Stick found:"
    assert "not supported" not in r.stdout


def test_no_stick_is_a_friendly_line_and_exit_0():
    r = devices(factory="empty")
    assert r.returncode == 0
    assert r.stdout.startswith("No Neural Compute Stick found")
    assert "03e7:2150" in r.stdout
    j = devices("--json", factory="empty")
    assert j.returncode == 0 and json.loads(j.stdout) == []


@pytest.mark.parametrize("factory", ["no_backend", "returns_none"])
def test_no_usb_backend_says_how_to_get_one_and_exits_0(factory):
    r = devices(factory=factory)
    assert r.returncode == 0
    assert r.stdout.startswith("Cannot look for Neural Compute Sticks: no USB backend")
    assert "pip install libusb-package" in r.stdout and "package manager" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    j = devices("--json", factory=factory)
    assert j.returncode == 0 and json.loads(j.stdout) == []
    assert "pip install libusb-package" in j.stderr


def test_machine_without_libusb_says_how_to_get_it_and_exits_0():
    """No stick and no libusb at all: ``tests/nolibusb`` makes the subprocess's
    Python find no USB library (the shared-library lookup pyusb uses) and no
    libusb-package, so the real backend search runs and comes up empty."""
    r = devices(pythonpath=TESTS / "nolibusb")
    assert r.returncode == 0, r.stderr
    assert r.stderr == "" and "Traceback" not in r.stdout
    text = " ".join(r.stdout.split())
    assert text.startswith("Cannot look for Neural Compute Sticks: no USB backend: pyusb could "
                           "not load libusb (no system libusb found; libusb-package is not "
                           "installed); to talk to a stick, install libusb 1.0")
    assert "sudo apt install libusb-1.0-0" in text and "brew install libusb" in text
    assert "pip install libusb-package" in text
    j = devices("--json", pythonpath=TESTS / "nolibusb")
    assert j.returncode == 0 and json.loads(j.stdout) == []
    assert "no system libusb found" in j.stderr and "pip install libusb-package" in j.stderr


def test_bad_backend_spec_is_a_usage_error():
    r = devices(factory="does_not_exist")
    assert r.returncode == 2
    assert "CAFFE2NCS_PYUSB_BACKEND" in r.stderr and "does_not_exist" in r.stderr
    assert "Traceback" not in r.stderr


def test_real_bus_of_this_machine():
    # No stick here normally; with one plugged in this lists it.  Either way exit 0.
    r = devices("--json")
    assert r.returncode == 0, r.stderr
    for d in json.loads(r.stdout):
        assert d["vendor_id"] == "03e7" and d["product_id"] in ("2150", "2485", "f63b")


def test_help_shows_the_json_option():
    r = devices("--help")
    assert r.returncode == 0
    assert "--json" in r.stdout
