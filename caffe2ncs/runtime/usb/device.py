"""Opening a stick and running graphs on it: the NCSDK 1.x API (``mvnc_api.c``,
``mvncapi.py`` v1) on top of :mod:`.link` and :mod:`.boot`.

Typical use (what ``caffe2ncs run --device ncs`` does)::

    from caffe2ncs.runtime.usb import open_device

    with open_device(firmware="/usr/local/lib/mvnc/MvNCAPI.mvcmd") as dev:
        with dev.allocate_graph(graph_bytes) as graph:
            result = graph.infer(input_fp16_hwc)
    result.output          # numpy float16, 1-D
    result.stage_times_ms  # numpy float32, one per stage

Semantics follow libmvnc 1.x:

* **open**: on the first open in this process, reset booted sticks that nobody
  holds (stale ones left by a crashed program); pick the stick (by port path, or
  the first free unbooted NCS), boot it with the firmware, wait up to 15 s for
  it to re-appear as 03e7:f63b and answer WAITING.
* **allocate_graph**: one graph per device; wait for WAITING (10 s), send the
  graph as "blobFile", then allocate "auxBuffer" by sending 224 + 4·nstages zero
  bytes.
* **load_tensor**: before the first one, send "config" (10 int32); then send the
  fp16 input to "input1"/"input2" alternately (double buffering: two inferences
  may be queued), with hostready = 1 when the stick was idle, which starts it.
* **get_result**: read "output" (2·noutputs bytes), retrying every 1 ms for up
  to 15 s while the stick refuses with a permit other than 0xABCD (= not ready);
  then read "auxBuffer" (with hostready = 1 when a second inference is queued,
  which starts it).  A non-empty debug text is the firmware's own error
  (:class:`MyriadError`, the toolkit's "[Error 25] Myriad Error").
* **deallocate**: host-side only (libmvnc sends nothing).
* **close**: send RESET (the stick reboots into its ROM), release it, wait 0.5 s.

Every failure raises a :class:`caffe2ncs.errors.DeviceError` naming the stick;
after one, close the device (the ``with`` block does) and open it again.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import weakref
from collections.abc import Iterable
from typing import Any

import numpy as np

from ...errors import DeviceError
from . import constants as C
from .backend import resolve_backend
from .boot import reset_all, reset_booted, same_port, send_firmware, wait_for, wait_unbooted
from .discovery import StickInfo, find_sticks
from .errors import (
    BootError,
    DeviceBusyError,
    DeviceNotFoundError,
    DeviceTimeoutError,
    MyriadError,
)
from .firmware import Firmware, load_firmware
from .graphinfo import GraphInfo, graph_info
from .link import PermitRefusedError, UsbLink
from .timing import Clock, SystemClock, Timeouts

_REGISTRY_LOCK = threading.RLock()
#: Devices open in this process, by (backend id, port path): libmvnc's ``devices``
#: list, used to refuse a second open and to skip our own sticks when resetting.
_OPEN: weakref.WeakValueDictionary[tuple[int, str], Device] = weakref.WeakValueDictionary()
#: Backends on which the first-use reset of stale sticks already ran (weakly held,
#: so that a new backend object never inherits an old one's state).
_RESET_DONE: weakref.WeakSet[Any] = weakref.WeakSet()
_RESET_DONE_IDS: set[tuple[str, int]] = set()  # for backends that cannot be weakly referenced


def _first_use(backend: Any) -> bool:
    """True the first time a backend is seen (the caller holds _REGISTRY_LOCK)."""
    try:
        if backend in _RESET_DONE:
            return False
        _RESET_DONE.add(backend)
    except TypeError:  # a backend object that cannot be weakly referenced
        key = ("id", id(backend))
        if key in _RESET_DONE_IDS:
            return False
        _RESET_DONE_IDS.add(key)
    return True


def _status_name(value: int) -> str:
    try:
        return f"{C.MyriadStatus(value).name} (0x{value:02X})"
    except ValueError:
        return f"0x{value:X}"


@dataclasses.dataclass
class DeviceOptions:
    """The v1 device options (``mvncSetDeviceOption``); libmvnc's defaults.

    They reach the stick in the "config" buffer before the first inference.
    """

    temp_lim_upper: float = C.DEFAULT_TEMP_LIM_UPPER
    temp_lim_lower: float = C.DEFAULT_TEMP_LIM_LOWER
    backoff_time_normal: int = C.DEFAULT_BACKOFF_TIME_NORMAL
    backoff_time_high: int = C.DEFAULT_BACKOFF_TIME_HIGH
    backoff_time_critical: int = C.DEFAULT_BACKOFF_TIME_CRITICAL
    temperature_debug: int = C.DEFAULT_TEMPERATURE_DEBUG


@dataclasses.dataclass(frozen=True)
class Result:
    """One inference's output and the auxBuffer that came with it."""

    #: fp16 values, 1-D (``noutputs`` of them), as the stick returned them (HWC order).
    output: np.ndarray
    #: float32 milliseconds per stage, in graph order (v1 ``GraphOption.TIME_TAKEN``).
    stage_times_ms: np.ndarray
    #: 25 float32 thermal values (v1 ``DeviceOption.THERMAL_STATS``).
    thermal_stats: np.ndarray
    #: v1 ``DeviceOption.THERMAL_THROTTLING_LEVEL``.
    throttle_level: int
    #: The firmware's debug text (v1 ``GraphOption.DEBUG_INFO``); empty when all went well.
    debug_message: str
    #: Whatever was passed to :meth:`Graph.load_tensor` for this input.
    user_obj: Any = None

    @property
    def total_ms(self) -> float:
        return float(np.sum(self.stage_times_ms, dtype=np.float64))


def decode_aux(aux: bytes, nstages: int) -> tuple[str, np.ndarray, int, np.ndarray]:
    """auxBuffer -> (debug text, thermal stats, throttle level, stage times)."""
    dbg_end = C.DEBUG_BUFFER_SIZE
    thermal_end = dbg_end + C.THERMAL_BUFFER_SIZE
    throttle_end = thermal_end + C.THROTTLE_SIZE
    debug = aux[:dbg_end].split(b"\0", 1)[0].decode("utf-8", "replace")
    thermal = np.frombuffer(aux[dbg_end:thermal_end], dtype="<f4").astype(np.float32)
    throttle = int.from_bytes(aux[thermal_end:throttle_end], "little", signed=True)
    times = np.frombuffer(
        aux[throttle_end : throttle_end + C.STAGE_TIME_SIZE * nstages], dtype="<f4"
    ).astype(np.float32)
    return debug, thermal, throttle, times


def tensor_bytes(tensor: Any) -> bytes:
    """The bytes to send for an input: fp16, in the array's (C) order.

    The caller provides the layout the graph expects (HWC, channel-minor, for
    NCSDK graphs).  Integer and other float arrays are converted to fp16; raw
    bytes are sent as they are.
    """
    if isinstance(tensor, (bytes, bytearray, memoryview)):
        data = bytes(tensor)
    else:
        arr = np.asarray(tensor)
        if arr.dtype != np.float16:
            if arr.dtype.kind not in "fiub":
                raise TypeError(f"cannot send a {arr.dtype} array to the stick (expected fp16)")
            arr = arr.astype(np.float16)
        data = np.ascontiguousarray(arr).tobytes()
    if len(data) < 2 or len(data) % 2:
        raise ValueError(
            f"an input tensor of {len(data)} bytes is not a whole number of fp16 values"
        )
    return data


class Device:
    """A Neural Compute Stick (NCS, Myriad 2) driven over the NCSDK 1.x link.

    ``name`` is the USB port path ("1.2", as ``caffe2ncs devices`` shows it, or
    "BUS-PATH" like "1-1.2"); ``None`` takes the first free NCS.  ``firmware`` is
    the path of ``MvNCAPI.mvcmd`` (default: ``$CAFFE2NCS_FIRMWARE``).  ``backend``
    is a pyusb backend (default: see :mod:`.backend`).  ``timeouts`` and ``clock``
    replace the protocol's time limits (default: libmvnc's, changed by
    ``$CAFFE2NCS_USB_TIMEOUTS``) and the clock used to wait.
    """

    def __init__(
        self,
        name: str | None = None,
        *,
        firmware: str | os.PathLike[str] | None = None,
        backend: Any = None,
        timeouts: Timeouts | None = None,
        clock: Clock | None = None,
        options: DeviceOptions | None = None,
        reset_stale: bool = True,
    ) -> None:
        self.requested_name = name
        self.options = options or DeviceOptions()
        self.timeouts = timeouts or Timeouts.from_env()
        self.clock: Clock = clock or SystemClock()
        self._firmware_arg = firmware
        self._backend_arg = backend
        self._reset_stale = reset_stale
        self._lock = threading.RLock()
        self._backend: Any = None
        self._link: UsbLink | None = None
        self._key: tuple[int, str] | None = None
        self._graph: Graph | None = None
        self._failed: DeviceError | None = None
        #: The booted stick (03e7:f63b) once open.
        self.info: StickInfo | None = None
        #: Name of the stick (port path) once open, else the requested name.
        self.name: str = name or "(any)"
        #: From the last result's auxBuffer (v1 THERMAL_STATS / THERMAL_THROTTLING_LEVEL).
        self.thermal_stats: np.ndarray | None = None
        self.throttle_level: int = 0
        self._optimisations: list[str] | None = None

    # -- context manager ------------------------------------------------------

    def __enter__(self) -> Device:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "open" if self.is_open else "closed"
        return f"<Device {self.name} {state}>"

    @property
    def is_open(self) -> bool:
        return self._link is not None

    # -- open ------------------------------------------------------------------

    def open(self) -> Device:
        """Boot the stick and connect (``mvncOpenDevice``)."""
        if self.is_open:
            return self
        firmware = load_firmware(self._firmware_arg)  # before touching USB
        backend = resolve_backend(self._backend_arg).backend
        self._backend = backend
        with _REGISTRY_LOCK:
            if self._reset_stale and _first_use(backend):
                reset_all(
                    backend, self.timeouts, self.clock, skip=lambda i: self._is_ours(backend, i)
                )
            dev, info = self._select(backend)
            if info.product_id == C.PRODUCT_ID_BOOTED:
                # Booted but not ours: stale (left by a program that died) or held by
                # another program.  Reset it if we can, then boot it afresh.
                reset_booted(dev, info, self.timeouts)
                self.clock.sleep(self.timeouts.close_settle_s)
                dev, info = wait_unbooted(
                    backend, info, self.timeouts, self.clock, self.timeouts.reset_wait_s
                )
            self._boot(backend, dev, info, firmware)
        return self

    def _is_ours(self, backend: Any, info: StickInfo) -> bool:
        return (id(backend), info.name) in _OPEN

    def _select(self, backend: Any) -> tuple[Any, StickInfo]:
        """The stick to boot: the one named, or the first free NCS."""
        t = self.timeouts

        def pick(sticks: list[tuple[Any, StickInfo]]):
            if self.requested_name is not None:
                named = [s for s in sticks if s[1].matches(self.requested_name)]
                return named[0] if named else None
            free = [s for s in sticks if not self._is_ours(backend, s[1])]
            for wanted in (C.PRODUCT_ID_MYRIAD2_ROM, C.PRODUCT_ID_BOOTED):
                for s in free:
                    if s[1].product_id == wanted:
                        return s
            return None

        found = pick(find_sticks(backend))
        if found is None:
            # libmvnc's wait_findopen: the stick may still be re-enumerating (for
            # example right after a close, which resets it).
            self.clock.sleep(t.boot_find_initial_delay_s)
            found = wait_for(backend, pick, t.boot_find_s, t.boot_find_poll_s, self.clock)
        if found is None:
            raise self._not_found(find_sticks(backend))
        dev, info = found
        if info.product_id == C.PRODUCT_ID_MYRIADX_ROM:
            raise DeviceNotFoundError(
                f"the stick {info.name} is an NCS2 (Myriad X); caffe2ncs drives NCS (Myriad 2) "
                "sticks with the NCSDK 1.x firmware, which does not run on the NCS2"
            )
        if self._is_ours(backend, info):
            raise DeviceBusyError(f"the stick {info.name} is already open in this program")
        return dev, info

    def _not_found(self, sticks: list[tuple[Any, StickInfo]]) -> DeviceError:
        infos = [i for _, i in sticks]
        if self.requested_name is not None:
            have = ", ".join(f"{i.name} ({i.state} {i.model or 'stick'})" for i in infos) or "none"
            return DeviceNotFoundError(
                f"no stick at USB port {self.requested_name} (attached sticks: {have}); "
                "'caffe2ncs devices' lists them"
            )
        ncs2 = [i for i in infos if i.product_id == C.PRODUCT_ID_MYRIADX_ROM]
        if infos and len(ncs2) == len(infos):
            return DeviceNotFoundError(
                f"only an NCS2 (Myriad X) is attached ({', '.join(i.name for i in ncs2)}); "
                "caffe2ncs drives NCS (Myriad 2) sticks with the NCSDK 1.x firmware"
            )
        if infos:
            return DeviceBusyError(
                "every attached Neural Compute Stick is already open in this program"
            )
        return DeviceNotFoundError(
            "no Neural Compute Stick found (USB 03e7:2150 or 03e7:f63b); is it plugged in? "
            "'caffe2ncs devices' lists what is attached"
        )

    def _boot(self, backend: Any, dev: Any, info: StickInfo, firmware: Firmware) -> None:
        t = self.timeouts
        send_firmware(dev, info, firmware.data, t)
        start = self.clock.monotonic()
        deadline = start + t.reenumeration_s
        last_status: int | None = None
        while True:
            booted = [
                s
                for s in find_sticks(backend, (C.PRODUCT_ID_BOOTED,))
                if not self._is_ours(backend, s[1])
            ]
            # Our stick at its port path (libmvnc: usblink_open(name)); failing that,
            # after a while, any booted stick nobody holds, in case the path changed.
            candidates = [s for s in booted if same_port(s[1], info)]
            if (
                not candidates
                and self.clock.monotonic() - start >= t.reenumeration_other_ports_after_s
            ):
                candidates = booted
            for bdev, binfo in candidates:
                try:
                    link = UsbLink.open(bdev, binfo.name, t)
                except DeviceError:
                    continue
                try:
                    status = link.status()
                except DeviceError:
                    link.close()
                    continue
                if status == C.MyriadStatus.WAITING:
                    self._attach(backend, link, binfo)
                    return
                last_status = status
                link.close()
            if self.clock.monotonic() >= deadline:
                break
            self.clock.sleep(t.reenumeration_poll_s)
        if last_status is not None:
            raise BootError(
                f"the stick {info.name} booted but did not become ready within "
                f"{t.reenumeration_s:g} s (its status stayed {_status_name(last_status)}); "
                "is the firmware the NCSDK 1.x MvNCAPI.mvcmd?"
            )
        raise BootError(
            f"the stick {info.name} did not come back as a booted stick (03e7:f63b) within "
            f"{t.reenumeration_s:g} s after the firmware ({firmware.path}) was sent; is it the "
            "NCSDK 1.x MvNCAPI.mvcmd? Unplug and replug the stick before trying again"
        )

    def _attach(self, backend: Any, link: UsbLink, info: StickInfo) -> None:
        self._link = link
        self.info = info
        self.name = info.name
        self._failed = None
        self._key = (id(backend), info.name)
        _OPEN[self._key] = self

    # -- close -----------------------------------------------------------------

    def close(self) -> None:
        """Reset the stick (it reboots into its ROM, ready to be opened again),
        release it and wait 0.5 s (``mvncCloseDevice``).  Never raises."""
        with self._lock:
            link = self._link
            if link is None:
                return
            if self._graph is not None:
                self._graph._invalidate("the device was closed")
                self._graph = None
            try:
                link.reset()
            except DeviceError:
                pass  # gone or not answering: nothing more we can do from here
            finally:
                link.close()
                self._link = None
                with _REGISTRY_LOCK:
                    if self._key is not None and _OPEN.get(self._key) is self:
                        del _OPEN[self._key]
                self._key = None
            self.clock.sleep(self.timeouts.close_settle_s)

    # -- link access -------------------------------------------------------------

    def _require(self) -> UsbLink:
        if self._link is None:
            raise RuntimeError("the device is not open; call open() first")
        if self._failed is not None:
            raise DeviceError(
                f"the stick {self.name} failed earlier ({self._failed.message}); close it and "
                "open it again"
            )
        return self._link

    def _fail(self, err: DeviceError) -> DeviceError:
        self._failed = err
        return err

    def status(self) -> int:
        """The stick's raw status (:class:`MyriadStatus` value)."""
        with self._lock:
            link = self._require()
            try:
                return link.status()
            except DeviceError as err:
                raise self._fail(err) from None

    def _wait_status(
        self, link: UsbLink, accept: tuple[int, ...], timeout_s: float, what: str
    ) -> int:
        deadline = self.clock.monotonic() + timeout_s
        while True:
            status = link.status()
            if status in accept:
                return status
            if self.clock.monotonic() >= deadline:
                wanted = " or ".join(_status_name(a) for a in accept)
                raise DeviceTimeoutError(
                    f"the stick {self.name} did not become {wanted} within {timeout_s:g} s "
                    f"{what} (status {_status_name(status)})"
                )
            self.clock.sleep(self.timeouts.status_poll_s)

    # -- graphs ----------------------------------------------------------------

    def allocate_graph(self, graph: bytes | bytearray | memoryview) -> Graph:
        """Send a 1.x graph file to the stick (``mvncAllocateGraph``).

        Raises :class:`caffe2ncs.errors.GraphFileError` for a file libmvnc would
        reject, :class:`DeviceBusyError` when a graph is already allocated.
        """
        data = bytes(graph)
        info = graph_info(data)
        with self._lock:
            link = self._require()
            if self._graph is not None:
                raise DeviceBusyError(
                    f"the stick {self.name} already has a graph; deallocate it first "
                    "(one graph per device with the NCSDK 1.x firmware)"
                )
            try:
                self._wait_status(
                    link,
                    (C.MyriadStatus.WAITING,),
                    self.timeouts.allocate_status_s,
                    "before the graph was sent",
                )
                link.set_data(C.BUFFER_BLOB, data, host_ready=False)
                link.set_data(C.BUFFER_AUX, bytes(info.aux_size), host_ready=False)
            except DeviceError as err:
                raise self._fail(err) from None
            self._graph = Graph(self, info)
            return self._graph

    def optimisation_list(self) -> list[str]:
        """The firmware's optimised kernels (v1 ``DeviceOption.OPTIMISATION_LIST``),
        asked for once and cached, as libmvnc does."""
        if self._optimisations is not None:
            return list(self._optimisations)
        with self._lock:
            link = self._require()
            if self._graph is not None and self._graph.queued:
                raise RuntimeError(
                    "cannot ask for the optimisation list while inferences are queued"
                )
            config = [0] * C.CONFIG_INTS
            config[0] = C.CONFIG_VERSION
            config[1] = C.CONFIG_QUERY_OPTIMISATIONS
            try:
                link.set_data(C.BUFFER_CONFIG, C.CONFIG_STRUCT.pack(*config), host_ready=True)
                self._wait_status(
                    link,
                    (C.MyriadStatus.WAITING, C.MyriadStatus.FINISHED),
                    self.timeouts.result_s,
                    "while preparing the optimisation list",
                )
                raw = link.get_data(C.BUFFER_OPTIMISATION_LIST, C.OPTIMISATION_LIST_SIZE)
                config[1] = 0
                link.set_data(C.BUFFER_CONFIG, C.CONFIG_STRUCT.pack(*config), host_ready=False)
            except DeviceError as err:
                raise self._fail(err) from None
            if self._graph is not None:
                # libmvnc leaves the zeroed config on the stick; make the next
                # inference send the graph's real one again.
                self._graph._started = False
            names = []
            for i in range(C.MAX_OPTIMISATIONS):
                entry = raw[i * C.OPTIMISATION_NAME_LEN : (i + 1) * C.OPTIMISATION_NAME_LEN]
                entry = entry.split(C.OPTIMISATION_TERMINATOR, 1)[0].split(b"\0", 1)[0]
                if entry:
                    names.append(entry.decode("ascii", "replace"))
            self._optimisations = names
            return list(names)

    def _config(self, graph: Graph) -> bytes:
        o = self.options
        return C.CONFIG_STRUCT.pack(
            C.CONFIG_VERSION,
            0,  # query disable
            graph.iterations,
            int(o.temp_lim_upper),  # C float -> int conversion: truncation
            int(o.temp_lim_lower),
            o.backoff_time_normal,
            o.backoff_time_high,
            o.backoff_time_critical,
            o.temperature_debug,
            graph.network_throttle,
        )


class Graph:
    """A graph allocated on a :class:`Device` (v1 ``Graph``)."""

    def __init__(self, device: Device, info: GraphInfo) -> None:
        self.device = device
        self.info = info
        #: Options sent in "config" before the first inference (v1 GraphOption
        #: ITERATIONS / NETWORK_THROTTLE).
        self.iterations = C.DEFAULT_ITERATIONS
        self.network_throttle = C.DEFAULT_NETWORK_THROTTLE
        self._started = False
        self._input_idx = 0
        self._output_idx = 0
        self._user: list[Any] = [None, None]
        self.queued = 0
        self._dead: str | None = None

    @property
    def nstages(self) -> int:
        return self.info.nstages

    @property
    def noutputs(self) -> int:
        return self.info.noutputs

    def __enter__(self) -> Graph:
        return self

    def __exit__(self, *exc: object) -> None:
        self.deallocate()

    def _invalidate(self, why: str) -> None:
        self._dead = why

    def _check(self) -> UsbLink:
        if self._dead is not None:
            raise RuntimeError(f"the graph cannot be used: {self._dead}")
        return self.device._require()

    def load_tensor(self, tensor: Any, user_obj: Any = None) -> None:
        """Queue one input (``mvncLoadTensor``): fp16, in the graph's input layout
        (HWC for NCSDK graphs).  At most two inferences can be queued."""
        data = tensor_bytes(tensor)
        dev = self.device
        with dev._lock:
            link = self._check()
            if self.queued >= 2:
                raise RuntimeError("two inferences are already queued; call get_result() first")
            try:
                if not self._started:
                    link.set_data(C.BUFFER_CONFIG, dev._config(self), host_ready=False)
                    self._started = True
                name = C.BUFFER_INPUTS[self._input_idx]
                link.set_data(name, data, host_ready=(self.queued == 0))
            except DeviceError as err:
                raise dev._fail(err) from None
            self._user[self._input_idx] = user_obj
            self._input_idx ^= 1
            self.queued += 1

    def get_result(self) -> Result:
        """Wait for the oldest queued inference and return it (``mvncGetResult``).

        Raises :class:`DeviceTimeoutError` after 15 s without a result, and
        :class:`MyriadError` (with the result attached) when the firmware
        reports an error in its debug text.
        """
        dev = self.device
        t = dev.timeouts
        with dev._lock:
            link = self._check()
            if self.queued == 0:
                raise RuntimeError(
                    "get_result() without a queued inference; call load_tensor() first"
                )
            deadline = dev.clock.monotonic() + t.result_s
            refusals = 0
            try:
                while True:
                    try:
                        output = link.get_data(C.BUFFER_OUTPUT, self.info.output_size)
                        break
                    except PermitRefusedError:
                        refusals += 1  # not ready yet: libmvnc retries the same way
                    if dev.clock.monotonic() >= deadline:
                        raise DeviceTimeoutError(
                            f"the stick {dev.name} returned no result within {t.result_s:g} s "
                            f"(it answered 'not ready' {refusals} times); the network may be too "
                            "slow or the firmware hung; close the device (which resets the stick) "
                            "and try again"
                        )
                    dev.clock.sleep(t.result_poll_s)
                aux = link.get_data(C.BUFFER_AUX, self.info.aux_size, host_ready=(self.queued == 2))
            except DeviceError as err:
                self._invalidate(f"the stick failed: {err.message}")
                raise dev._fail(err) from None
            debug, thermal, throttle, times = decode_aux(aux, self.info.nstages)
            user = self._user[self._output_idx]
            self._user[self._output_idx] = None
            self._output_idx ^= 1
            self.queued -= 1
            dev.thermal_stats = thermal
            dev.throttle_level = throttle
            result = Result(
                output=np.frombuffer(output, dtype="<f2").astype(np.float16),
                stage_times_ms=times,
                thermal_stats=thermal,
                throttle_level=throttle,
                debug_message=debug,
                user_obj=user,
            )
            if debug:
                self._invalidate(f"the firmware reported an error: {debug}")
                raise MyriadError(
                    f'the stick {dev.name} reported an error: "{debug}"',
                    debug_message=debug,
                    result=result,
                )
            return result

    def infer(self, tensor: Any) -> Result:
        """``load_tensor`` then ``get_result``."""
        self.load_tensor(tensor)
        return self.get_result()

    def deallocate(self) -> None:
        """Forget the graph (``mvncDeallocateGraph``: host side only, nothing is sent)."""
        dev = self.device
        with dev._lock:
            if dev._graph is self:
                dev._graph = None
            if self._dead is None:
                self._invalidate("it was deallocated")


def open_device(name: str | None = None, **kwargs: Any) -> Device:
    """``Device(name, **kwargs).open()``; use it in a ``with`` block."""
    return Device(name, **kwargs).open()


def run_graph(
    graph: bytes | bytearray | memoryview,
    inputs: Iterable[Any],
    *,
    iterations: int = C.DEFAULT_ITERATIONS,
    network_throttle: int = C.DEFAULT_NETWORK_THROTTLE,
    **device_kwargs: Any,
) -> list[Result]:
    """Open a stick, allocate ``graph``, run every input, close: one
    :class:`Result` per input, in order.

    Inputs are pipelined two deep through the stick's double buffer (the next
    input is sent while the previous one runs).  ``device_kwargs`` are those of
    :class:`Device` (``name``, ``firmware``, ``backend``, ``timeouts``, ...).
    The stick is closed (reset) whatever happens.
    """
    results: list[Result] = []
    with Device(**device_kwargs) as dev, dev.allocate_graph(graph) as g:
        g.iterations = iterations
        g.network_throttle = network_throttle
        for x in inputs:
            if g.queued == 2:
                results.append(g.get_result())
            g.load_tensor(x)
        while g.queued:
            results.append(g.get_result())
    return results
