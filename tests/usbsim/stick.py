"""The device side of a simulated Neural Compute Stick (NCS, Myriad 2).

This models what the host sees of a stick at the USB level, following the
NCSDK 1.x sources (``shared/spec/ncsdk-reference.md`` section 6).  The protocol
numbers are written out here on purpose instead of importing the host's
constants, so that a wrong constant on the host side shows up as a failing test.

Life of a stick:

* **ROM** (03e7:2150, or 2485 for an NCS2): one configuration, interface 0, bulk
  endpoints 0x01 OUT / 0x81 IN with ``wMaxPacketSize`` 512.  Everything written
  to the OUT endpoint is firmware.  Once exactly the expected image has arrived
  (byte for byte), the stick leaves the bus and re-appears ``boot_delay_s``
  later as 03e7:f63b, with a new address (and on ``booted_bus`` if set, as a
  USB 3 reconnection does; at ``booted_port_path`` if set).  A wrong image never boots.
* **booted** (03e7:f63b): speaks the 1.x link.  64-byte headers on 0x01; status
  INITIALIZED for ``init_s`` after boot, then WAITING; RUNNING while an inference
  runs (its duration is the sum of the executor's stage times, on the clock);
  FINISHED while a result is unread.  SET/GET are answered with the permit
  0xABCD, or with :data:`NOT_READY_PERMIT` when "output" is not ready yet (an
  assumption: the real firmware's refusal value is not public; the host retries
  on any value other than 0xABCD, as libmvnc does).  Buffers: blobFile, config,
  auxBuffer, input1/input2 (double buffered: an input sent with hostready = 1
  starts at once, one sent with hostready = 0 waits until the host reads the
  auxBuffer with hostready = 1), output, optimizationList.  RESET sends it back
  to ROM after ``reset_delay_s``.
* **unplugged**: gone from the bus; every handle fails with "no device".

The simulator records what the host did (``headers``, ``boot_chunks``,
``boot_timeouts``, ``link_timeouts``, ``link_out_sizes``, ``runs``, ``config``),
what it reported back (``results``) and every deviation from the protocol in
``protocol_errors``: tests assert that list stays empty.

Faults (:class:`Faults`) are one-shot unless noted.
"""

from __future__ import annotations

import collections
import dataclasses
import errno
import math
import struct
from typing import Any

import usb.core

from .executor import Executor

VID = 0x03E7
PID_MYRIAD2_ROM = 0x2150
PID_MYRIADX_ROM = 0x2485
PID_BOOTED = 0xF63B

HEADER = struct.Struct("<BBHII52s")  # usbHeader_t, 64 bytes
U32 = struct.Struct("<I")
CMD_STATUS, CMD_RESET, CMD_SET, CMD_GET = 0, 1, 2, 3
NOT_INIT, INITIALIZED, WAITING, RUNNING, FINISHED, PENDING = 0, 0x11, 0x22, 0x33, 0x44, 0x55
PERMIT = 0xABCD
#: What this simulator answers when "output" is not ready (the real value is not public).
NOT_READY_PERMIT = 0x0000
#: What the wrong-permit fault answers.
WRONG_PERMIT = 0xDEAD

AUX_HEADER = 120 + 100 + 4  # debug text, thermal floats, throttle int
CONFIG_SIZE = 40  # 10 x int32
OPTLIST_SIZE = 40 * 50
INPUT_NAMES = ("input1", "input2")

ROM, BOOTED, ABSENT = "rom", "booted", "absent"


def parse_graph(graph: bytes) -> tuple[int, int]:
    """(nstages, noutputs) of a 1.x graph, read the way the firmware would need to:
    16-bit stage count at 240, last 227-byte stage's outputDimX/Y at +136 and
    outputStrideX at +172, after the 264-byte header."""
    if len(graph) < 264 + 227 or graph[36] != 2:
        raise ValueError("not an NCSDK 1.x graph")
    nstages = graph[240] | (graph[241] << 8)
    base = 264 + 227 * (nstages - 1)
    x, y = struct.unpack_from("<II", graph, base + 136)
    (stride,) = struct.unpack_from("<I", graph, base + 172)
    return nstages, x * y * stride // 2


def no_device() -> usb.core.USBError:
    return usb.core.USBError("No such device (it may have been disconnected)", -4, errno.ENODEV)


def timed_out() -> usb.core.USBTimeoutError:
    return usb.core.USBTimeoutError("Operation timed out", -7, errno.ETIMEDOUT)


@dataclasses.dataclass
class Faults:
    #: Answer this permit (0xDEAD) to the next SET or GET header naming this buffer.
    wrong_permit_for: str | None = None
    #: Send only half of the next GET of this buffer, then nothing.
    short_read_for: str | None = None
    #: The next inference never finishes ("output" stays not ready forever,
    #: until :meth:`SimStick.finish_now`).
    never_finish: bool = False
    #: Unplug the stick when the next inference starts.
    unplug_on_run: bool = False
    #: Put this text in the debug area of the next result (a firmware error).
    device_error: str | None = None
    #: Persistent: the stick stops answering (every transfer times out).
    stall: bool = False
    #: The stick stops answering when the next inference starts (sets ``stall``).
    stall_on_run: bool = False
    #: Persistent: another program holds interface 0 (claims fail with EBUSY).
    held_by_other_program: bool = False
    #: Persistent: opening fails with "access denied" (no udev rule).
    access_denied: bool = False
    #: The stick drops off the bus during its last firmware chunk (libusb
    #: reports "no device" for that write), then boots normally.
    vanish_on_last_boot_chunk: bool = False


@dataclasses.dataclass
class Job:
    input_name: str
    output: bytes
    times: list[float]
    debug: str
    ready_at: float
    output_read: bool = False


class SimStick:
    """One simulated stick on a port of a :class:`usbsim.backend.SimBackend`.

    ``firmware`` is the image the ROM expects (it boots only after receiving
    exactly these bytes); ``executor`` runs graphs (see :mod:`usbsim.executor`).
    """

    def __init__(
        self,
        port_path: tuple[int, ...] = (1,),
        bus: int = 1,
        *,
        firmware: bytes | None = None,
        executor: Executor | None = None,
        model: str = "ncs",
        booted: bool = False,
        max_packet_size: int = 512,
        boot_delay_s: float = 0.8,
        reset_delay_s: float = 0.3,
        init_s: float = 0.05,
        booted_bus: int | None = None,
        booted_port_path: tuple[int, ...] | None = None,
        thermal: tuple[float, ...] = tuple(40.0 + i for i in range(25)),
        throttle_level: int = 0,
        optimisations: tuple[str, ...] = (
            "opt_conv_3_3_1_1_generic",
            "opt_maxpool_2_2_2_2_generic",
        ),
    ) -> None:
        if model not in ("ncs", "ncs2"):
            raise ValueError(model)
        self.rom_port_path = tuple(port_path)
        self.booted_port_path = (
            tuple(booted_port_path) if booted_port_path is not None else self.rom_port_path
        )
        self.rom_bus = bus
        self.booted_bus = booted_bus if booted_bus is not None else bus
        self.firmware = firmware
        self.executor = executor
        self.model = model
        self.max_packet_size = max_packet_size
        self.boot_delay_s = boot_delay_s
        self.reset_delay_s = reset_delay_s
        self.init_s = init_s
        self.thermal = thermal
        self.throttle_level = throttle_level
        self.optimisations = optimisations
        self.faults = Faults()
        self.backend: Any = None  # set by SimBackend.add

        # bus presence
        self.mode = BOOTED if booted else ROM
        self.plugged = True
        self.incarnation = 0
        self.address = 0
        self._pending: tuple[str, float] | None = None
        self.claimed_by: Any = None

        # observations
        self.boot_chunks: list[int] = []
        self.boot_timeouts: list[int] = []
        self.link_timeouts: set[int] = set()
        self.link_out_sizes: list[int] = []
        self.headers: list[tuple[int, int, int, int, str]] = []
        self.protocol_errors: list[str] = []
        self.runs: list[tuple[str, bytes]] = []
        #: Every inference whose auxBuffer the host read: output, stage times and
        #: debug text exactly as the stick reported them.
        self.results: list[Job] = []
        self.boots = 0
        self.resets = 0
        self.set_configurations: list[int] = []

        self._clear_rom()
        self._clear_link()
        if booted:
            self.booted_at = -math.inf  # long booted: already WAITING

    # -- helpers -------------------------------------------------------------

    @property
    def clock(self):
        return self.backend.clock

    def now(self) -> float:
        return self.clock.monotonic()

    def error(self, text: str) -> None:
        self.protocol_errors.append(text)

    @property
    def pid(self) -> int:
        if self.mode == BOOTED:
            return PID_BOOTED
        return PID_MYRIAD2_ROM if self.model == "ncs" else PID_MYRIADX_ROM

    @property
    def bus(self) -> int:
        return self.booted_bus if self.mode == BOOTED else self.rom_bus

    @property
    def port_path(self) -> tuple[int, ...]:
        return self.booted_port_path if self.mode == BOOTED else self.rom_port_path

    @property
    def present(self) -> bool:
        self.tick()
        return self.plugged and self.mode != ABSENT

    def _clear_rom(self) -> None:
        self._fw = bytearray()
        self._fw_bad = False

    def _clear_link(self) -> None:
        self.booted_at = self.now() if self.backend is not None else 0.0
        self._tx: collections.deque[bytes] = collections.deque()
        self._payload: tuple[str, int, bytearray, bool] | None = None
        self.graph: bytes | None = None
        self.nstages = 0
        self.noutputs = 0
        self.aux_size: int | None = None
        self.config: tuple[int, ...] | None = None
        self.inputs: dict[str, bytes] = {}
        self.queue: collections.deque[str] = collections.deque()
        self.job: Job | None = None
        self.optlist_ready = False

    def attach(self, backend: Any) -> None:
        self.backend = backend
        self.address = backend.next_address()
        if self.mode == BOOTED:
            self.booted_at = -math.inf

    # -- presence on the bus -------------------------------------------------

    def tick(self) -> None:
        """Apply a scheduled re-appearance whose time has come."""
        if self._pending is not None and self.plugged:
            mode, at = self._pending
            if self.now() >= at:
                self._pending = None
                self._appear(mode)

    def _appear(self, mode: str) -> None:
        self.mode = mode
        self.incarnation += 1
        self.address = self.backend.next_address()
        self.claimed_by = None
        if mode == BOOTED:
            self.boots += 1
            self._clear_link()
        else:
            self._clear_rom()

    def _vanish(self, then: str, delay: float) -> None:
        """Leave the bus (handles go stale) and come back as ``then`` after ``delay``."""
        self.mode = ABSENT
        self.incarnation += 1
        self.claimed_by = None
        self._pending = (then, self.now() + delay)

    def unplug(self) -> None:
        self.plugged = False
        self.mode = ABSENT
        self.incarnation += 1
        self.claimed_by = None
        self._pending = None

    def replug(self) -> None:
        """Plug it back in: a fresh, unbooted stick (the power cycle also ends a stall)."""
        self.plugged = True
        self.faults.stall = False
        self._pending = None
        self._appear(ROM)
        self._clear_link()

    def boot_by_other_program(self) -> None:
        """Re-appear at once as a booted, ready stick, as if another program had
        booted it (combine with ``faults.held_by_other_program``)."""
        self.plugged = True
        self._pending = None
        self._appear(BOOTED)
        self.booted_at = -math.inf

    def valid(self, incarnation: int) -> bool:
        self.tick()
        return self.plugged and self.mode != ABSENT and incarnation == self.incarnation

    def finish_now(self) -> None:
        """Let the running inference finish at once (ends a ``never_finish``)."""
        if self.job is not None:
            self.job.ready_at = min(self.job.ready_at, self.now())

    # -- status ----------------------------------------------------------------

    def status(self) -> int:
        now = self.now()
        if now < self.booted_at + self.init_s:
            return INITIALIZED
        if self.job is not None:
            return FINISHED if now >= self.job.ready_at else RUNNING
        if self.optlist_ready:
            return FINISHED
        return WAITING

    # -- endpoint OUT ------------------------------------------------------------

    def out(self, data: bytes, timeout_ms: int) -> int:
        if self.faults.stall:
            self.clock.sleep(timeout_ms / 1000)
            raise timed_out()
        if self.mode == ROM:
            return self._rom_out(data, timeout_ms)
        self.link_timeouts.add(timeout_ms)
        self.link_out_sizes.append(len(data))
        if self._payload is not None:
            return self._payload_out(data)
        if self._tx:
            self.error(f"new header while {sum(map(len, self._tx))} reply bytes were unread")
            self._tx.clear()
        if len(data) != HEADER.size:
            self.error(f"expected a 64-byte header, got a {len(data)}-byte transfer")
            return len(data)
        cmd, host_ready, reserved, length, offset, raw = HEADER.unpack(data)
        name_bytes = raw.split(b"\0", 1)[0]
        if raw[len(name_bytes) :].strip(b"\0"):
            self.error(f"header name not NUL-padded: {raw!r}")
        name = name_bytes.decode("ascii", "replace")
        self.headers.append((cmd, host_ready, length, offset, name))
        if reserved:
            self.error(f"reserved header field is {reserved}, not 0")
        if cmd == CMD_STATUS:
            self._tx.append(U32.pack(self.status()))
        elif cmd == CMD_RESET:
            self.resets += 1
            self._vanish(ROM, self.reset_delay_s)
        elif cmd == CMD_SET:
            self._set_header(name, length, offset, bool(host_ready))
        elif cmd == CMD_GET:
            self._get(name, length, offset, bool(host_ready))
        else:
            self.error(f"unknown command {cmd}")
        return len(data)

    def _rom_out(self, data: bytes, timeout_ms: int) -> int:
        self.boot_chunks.append(len(data))
        self.boot_timeouts.append(timeout_ms)
        if self.model != "ncs" or self.firmware is None:
            self._fw_bad = True
            self.error("firmware sent to a ROM that expects none (NCS2, or no firmware configured)")
            return len(data)
        self._fw += data
        expected = self.firmware
        if not expected.startswith(bytes(self._fw)):
            if not self._fw_bad:
                self.error(
                    f"firmware differs from the expected image (after {len(self._fw)} bytes)"
                )
            self._fw_bad = True
        if not self._fw_bad and len(self._fw) == len(expected):
            self._vanish(BOOTED, self.boot_delay_s)
            if self.faults.vanish_on_last_boot_chunk:
                self.faults.vanish_on_last_boot_chunk = False
                raise no_device()
        return len(data)

    def _payload_out(self, data: bytes) -> int:
        name, length, buf, host_ready = self._payload
        buf += data
        if len(buf) > length:
            self.error(f"'{name}': {len(buf)} bytes sent for a {length}-byte SET")
        if len(buf) >= length:
            self._payload = None
            self._store(name, bytes(buf[:length]), host_ready)
        return len(data)

    # -- SET ---------------------------------------------------------------------

    def _set_header(self, name: str, length: int, offset: int, host_ready: bool) -> None:
        if self.faults.wrong_permit_for == name:
            self.faults.wrong_permit_for = None
            self._tx.append(U32.pack(WRONG_PERMIT))
            return
        if offset:
            self.error(f"SET '{name}' with offset {offset}")
        ok = True
        if name == "blobFile":
            if self.status() != WAITING:
                self.error(f"blobFile sent while the status is 0x{self.status():02X}, not WAITING")
        elif name == "auxBuffer":
            if self.graph is None:
                self.error("auxBuffer sent before blobFile")
            elif length != AUX_HEADER + 4 * self.nstages:
                self.error(f"auxBuffer of {length} bytes, expected {AUX_HEADER + 4 * self.nstages}")
        elif name == "config":
            if length != CONFIG_SIZE:
                self.error(f"config of {length} bytes, expected {CONFIG_SIZE}")
        elif name in INPUT_NAMES:
            if self.graph is None:
                self.error(f"{name} sent with no graph")
            if self.config is None:
                self.error(f"{name} sent before any config")
        else:
            ok = False
            self.error(f"SET of unknown buffer '{name}'")
        if not ok:
            self._tx.append(U32.pack(NOT_READY_PERMIT))
            return
        self._tx.append(U32.pack(PERMIT))
        if length == 0:
            self._store(name, b"", host_ready)
        else:
            self._payload = (name, length, bytearray(), host_ready)

    def _store(self, name: str, data: bytes, host_ready: bool) -> None:
        if name == "blobFile":
            self.graph = data
            self.job = None
            self.queue.clear()
            try:
                self.nstages, self.noutputs = parse_graph(data)
            except ValueError:
                self.error("blobFile is not a 1.x graph")
                self.nstages = self.noutputs = 0
        elif name == "auxBuffer":
            self.aux_size = len(data)
            if any(data):
                self.error("auxBuffer allocation is not all zeros")
        elif name == "config":
            self.config = struct.unpack("<10i", data)
            if self.config[0] != 1:
                self.error(f"config version {self.config[0]}, expected 1")
            if self.config[1] == 1 and host_ready:
                self.optlist_ready = True
            elif self.config[1] == 0:
                self.optlist_ready = False
        elif name in INPUT_NAMES:
            self.inputs[name] = data
            if host_ready:
                if self.job is not None:
                    self.error(f"{name} sent with hostready while an inference is in progress")
                    self.queue.append(name)
                else:
                    self._start(name)
            else:
                if self.job is None:
                    self.error(
                        f"{name} sent with hostready 0 while the stick is idle (never starts)"
                    )
                self.queue.append(name)

    def _start(self, name: str) -> None:
        if self.executor is None:
            raise AssertionError("simulated stick has no executor; pass SimStick(executor=...)")
        if self.graph is None:
            self.error(f"inference of {name} started with no graph")
            return
        data = self.inputs[name]
        self.runs.append((name, data))
        # The inference starts now; an executor that really computes (the
        # emulator) spends its time inside this call, which on a real clock is
        # part of the inference's duration, not added to it.
        started = self.now()
        output, times, debug = self.executor(self.graph, data)
        times = [float(t) for t in times]
        assert len(output) == 2 * self.noutputs, (
            f"executor returned {len(output)} bytes, the graph's output is {2 * self.noutputs}"
        )
        assert len(times) == self.nstages, (
            f"executor returned {len(times)} stage times for {self.nstages} stages"
        )
        if self.faults.device_error is not None:
            debug, self.faults.device_error = self.faults.device_error, None
        ready_at = max(self.now(), started + sum(times) / 1000.0)
        if self.faults.never_finish:
            self.faults.never_finish = False
            ready_at = math.inf
        self.job = Job(name, bytes(output), times, debug, ready_at)
        if self.faults.unplug_on_run:
            self.faults.unplug_on_run = False
            self.unplug()
        if self.faults.stall_on_run:
            self.faults.stall_on_run = False
            self.faults.stall = True

    # -- GET -----------------------------------------------------------------------

    def _get(self, name: str, length: int, offset: int, host_ready: bool) -> None:
        if self.faults.wrong_permit_for == name:
            self.faults.wrong_permit_for = None
            self._tx.append(U32.pack(WRONG_PERMIT))
            return
        if name == "output":
            job = self.job
            if job is None:
                self.error("GET output with no inference")
                self._tx.append(U32.pack(NOT_READY_PERMIT))
                return
            if self.now() < job.ready_at:
                self._tx.append(U32.pack(NOT_READY_PERMIT))
                return
            if length != len(job.output) or offset:
                self.error(
                    f"GET output of {length} bytes at {offset}; it is {len(job.output)} bytes"
                )
            data = job.output[offset : offset + length].ljust(length, b"\0")
            job.output_read = True
            self._reply(name, data)
        elif name == "auxBuffer":
            job = self.job
            if job is None or not job.output_read:
                self.error("GET auxBuffer before the output was read")
            if length != AUX_HEADER + 4 * self.nstages or offset:
                self.error(f"GET auxBuffer of {length} bytes at {offset}")
            self._reply(name, self._aux(job, length))
            if job is not None:
                self.results.append(job)
            self.job = None
            if host_ready:
                if self.queue:
                    self._start(self.queue.popleft())
                else:
                    self.error("auxBuffer read with hostready but no input is queued")
            elif self.queue:
                self.error(
                    "auxBuffer read without hostready while an input is queued (never starts)"
                )
        elif name == "optimizationList":
            if not self.optlist_ready:
                self.error("GET optimizationList before config asked for it")
            if length != OPTLIST_SIZE:
                self.error(f"GET optimizationList of {length} bytes")
            raw = bytearray(OPTLIST_SIZE)
            for i, opt in enumerate(self.optimisations):
                entry = opt.encode() + b"~"
                raw[i * 50 : i * 50 + len(entry)] = entry
            self._reply(name, bytes(raw[:length]))
        else:
            self.error(f"GET of unknown buffer '{name}'")
            self._tx.append(U32.pack(NOT_READY_PERMIT))

    def _reply(self, name: str, data: bytes) -> None:
        self._tx.append(U32.pack(PERMIT))
        if self.faults.short_read_for == name:
            self.faults.short_read_for = None
            data = data[: len(data) // 2]
        if data:
            self._tx.append(data)

    def _aux(self, job: Job | None, length: int) -> bytes:
        debug = (job.debug if job else "").encode("utf-8")[:119]
        times = job.times if job else [0.0] * self.nstages
        raw = (
            debug.ljust(120, b"\0")
            + struct.pack("<25f", *self.thermal)
            + struct.pack("<i", self.throttle_level)
            + struct.pack(f"<{len(times)}f", *times)
        )
        return raw[:length].ljust(length, b"\0")

    # -- endpoint IN -----------------------------------------------------------------

    def in_(self, size: int, timeout_ms: int) -> bytes:
        if self.mode == BOOTED:
            self.link_timeouts.add(timeout_ms)
        if self.faults.stall or self.mode != BOOTED or not self._tx:
            self.clock.sleep(timeout_ms / 1000)
            raise timed_out()
        msg = self._tx[0]
        n = min(size, len(msg))
        if n < len(msg):
            self._tx[0] = msg[n:]
        else:
            self._tx.popleft()
        return msg[:n]
