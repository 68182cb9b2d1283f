"""Test material for the simulated stick: a deterministic toy executor, synthetic
1.x graph files and firmware images, and a rig that wires them together."""

from __future__ import annotations

import dataclasses
import hashlib
import struct
from pathlib import Path
from typing import Any

import numpy as np

from .backend import SimBackend
from .clock import VirtualClock
from .stick import SimStick, parse_graph


def make_graph(
    nstages: int = 3,
    out_shape: tuple[int, int, int] = (2, 3, 4),
    name: str = "toy",
    data: bytes = b"",
) -> bytes:
    """A syntactically valid NCSDK 1.x graph file (reference section 1.1): the
    264-byte header and ``nstages`` 227-byte stage descriptors; the last stage
    produces ``out_shape`` = (X, Y, Z) fp16 HWC, so the host should read
    ``X * Y * Z`` outputs.  No real network: only the fields the host reads are
    meaningful, plus plausible neighbours."""
    x, y, z = out_shape
    stages = bytearray()
    for i in range(nstages):
        st = bytearray(227)
        st[0:100] = f"stage{i}".encode().ljust(100, b"\0")
        st[100] = 0  # convolution
        struct.pack_into("<I", st, 101, 0x80000000)
        struct.pack_into("<3I", st, 112, 8, 8, 3)  # input dims
        struct.pack_into("<3I", st, 136, x, y, z)  # output dims
        struct.pack_into("<3I", st, 172, 2 * z, 2 * z * x, 2)  # output strides (bytes)
        st[217] = 5  # preOp none
        st[218] = 5  # postOp none
        stages += st
    stages += bytes(-len(stages) % 8)
    header = bytearray(264)
    header[40 : 40 + len(name)] = name.encode()
    struct.pack_into("<I", header, 36, 2)
    struct.pack_into("<I", header, 240, nstages)
    struct.pack_into("<I", header, 244, 264 + len(stages))
    struct.pack_into("<HH", header, 248, 0, 11)
    blob = bytes(header) + bytes(stages) + data
    struct.pack_into("<I", header, 32, len(blob))
    return bytes(header) + bytes(stages) + data


def make_firmware(size: int = 200_000, seed: str = "fw") -> bytes:
    """A stand-in firmware image (not the real one): deterministic bytes of the
    given size, starting like the real image's "MA2x" header."""
    out = bytearray(b"MA2x")
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def expected_output(graph: bytes, input_fp16: bytes) -> np.ndarray:
    """What :func:`toy_executor` computes: ``sum(input) + 0.5 * i`` for output i, fp16."""
    _, noutputs = parse_graph(graph)
    x = np.frombuffer(input_fp16, dtype="<f2").astype(np.float32)
    return (np.float32(x.sum()) + 0.5 * np.arange(noutputs, dtype=np.float32)).astype(np.float16)


def expected_times(graph: bytes) -> list[float]:
    nstages, _ = parse_graph(graph)
    return [1.5 + 0.25 * i for i in range(nstages)]


def toy_executor(graph: bytes, input_fp16: bytes):
    """A deterministic stand-in for the fp16 emulator (see :mod:`usbsim.executor`)."""
    return expected_output(graph, input_fp16).astype("<f2").tobytes(), expected_times(graph), ""


@dataclasses.dataclass
class Rig:
    """A virtual clock, a bus with sticks, and a firmware file that boots them."""

    clock: VirtualClock
    backend: SimBackend
    sticks: list[SimStick]
    firmware: bytes
    firmware_path: Path

    @property
    def stick(self) -> SimStick:
        return self.sticks[0]

    def device_kwargs(self, **extra: Any) -> dict:
        kwargs = dict(firmware=self.firmware_path, backend=self.backend, clock=self.clock)
        kwargs.update(extra)
        return kwargs

    def protocol_errors(self) -> list[str]:
        return [e for s in self.sticks for e in s.protocol_errors]


def make_rig(
    tmp_path: Path, sticks: int | list[dict] = 1, firmware_size: int = 200_000, **stick_kw: Any
) -> Rig:
    clock = VirtualClock()
    firmware = make_firmware(firmware_size)
    fw_path = tmp_path / "MvNCAPI.mvcmd"
    fw_path.write_bytes(firmware)
    specs = [dict() for _ in range(sticks)] if isinstance(sticks, int) else sticks
    made = []
    for i, spec in enumerate(specs):
        kw = dict(port_path=(1, i + 2), firmware=firmware, executor=toy_executor)
        kw.update(stick_kw)
        kw.update(spec)
        made.append(SimStick(**kw))
    backend = SimBackend(made, clock=clock)
    return Rig(clock, backend, made, firmware, fw_path)
