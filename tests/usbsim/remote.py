"""A simulated USB bus that outlives the programs using it, like a real one.

A stick plugged into a real machine keeps its state between programs: a CLI
run that fails leaves it as it was (booted, still claimed until the process
exits, or stalled), and the next run has to cope.  To test that with real CLI
subprocesses, the simulated sticks live in the test process, behind a
:class:`StickServer`, and each subprocess reaches them through
:class:`RemoteBackend` - a pyusb backend (the lowest layer, where libusb would
be) that forwards every backend call over a local socket.  The host code in
the subprocess sees an ordinary pyusb backend.

What the operating system does for a real device is done here too: when a
program exits (its connection closes) its handles are closed, which releases
the interfaces it had claimed.

Usage (see ``tests/test_usb_cli.py``)::

    with StickServer(SimBackend([stick], clock=RealClock())) as server:
        env = server.env()   # CAFFE2NCS_PYUSB_BACKEND=usbsim.factories:remote, ...
        run_cli("run", ..., env=env)
        with server.lock:    # to look at or change a stick while programs run
            stick.faults.unplug_on_run = True

Every call is served under ``server.lock``, one at a time, so the sticks need
no locking of their own.  Anything unexpected on the server side (a bug in the
simulator, an executor that broke its contract) is kept in ``server.errors``
and reaches the client as an error that is not a USB error.
"""

from __future__ import annotations

import os
import secrets
import threading
import traceback
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

import usb.backend
import usb.core

from .backend import SimBackend

ADDRESS_ENV = "USBSIM_SERVER"
AUTHKEY_ENV = "USBSIM_AUTHKEY"

#: The backend calls forwarded (those :class:`usbsim.backend.SimBackend` implements).
_CALLS = (
    "get_configuration_descriptor",
    "get_interface_descriptor",
    "get_endpoint_descriptor",
    "open_device",
    "close_device",
    "set_configuration",
    "get_configuration",
    "set_interface_altsetting",
    "claim_interface",
    "release_interface",
    "bulk_write",
    "bulk_read",
)


class _Session:
    """One client program: the devices and handles it has been given."""

    def __init__(self) -> None:
        self.objects: dict[int, Any] = {}
        self.handles: dict[int, Any] = {}
        self._next = 0

    def add(self, obj: Any) -> int:
        self._next += 1
        self.objects[self._next] = obj
        return self._next


class StickServer:
    """Serves a :class:`SimBackend` to :class:`RemoteBackend` clients in other processes."""

    def __init__(self, backend: SimBackend) -> None:
        self.backend = backend
        self.lock = threading.RLock()
        self.errors: list[str] = []
        self.authkey = secrets.token_bytes(16)
        self._listener = Listener(family="AF_UNIX", authkey=self.authkey)
        self.address: str = self._listener.address
        self._closing = False
        self._threads: list[threading.Thread] = []
        self._conns: list[Connection] = []
        self._acceptor = threading.Thread(target=self._accept, name="usbsim-server", daemon=True)
        self._acceptor.start()

    # -- life ------------------------------------------------------------------

    def __enter__(self) -> StickServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def env(self) -> dict[str, str]:
        """The environment a CLI subprocess needs to use this bus."""
        tests = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        path = os.pathsep.join(filter(None, [tests, os.environ.get("PYTHONPATH")]))
        return {
            "PYTHONPATH": path,
            "CAFFE2NCS_PYUSB_BACKEND": "usbsim.factories:remote",
            ADDRESS_ENV: self.address,
            AUTHKEY_ENV: self.authkey.hex(),
        }

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        try:  # wake the acceptor up
            Client(self.address, family="AF_UNIX", authkey=self.authkey).close()
        except OSError:
            pass
        self._acceptor.join(timeout=5)
        self._listener.close()
        for conn in list(self._conns):
            conn.close()
        for t in self._threads:
            t.join(timeout=1)

    # -- serving ---------------------------------------------------------------

    def _accept(self) -> None:
        while not self._closing:
            try:
                conn = self._listener.accept()
            except Exception:  # noqa: BLE001 - closed, or a client that failed authentication
                continue
            if self._closing:
                conn.close()
                break
            self._conns.append(conn)
            t = threading.Thread(target=self._serve, args=(conn,), name="usbsim-client", daemon=True)
            self._threads.append(t)
            t.start()

    def _serve(self, conn: Connection) -> None:
        session = _Session()
        try:
            while True:
                try:
                    op, args = conn.recv()
                except (EOFError, OSError):
                    break
                with self.lock:
                    reply = self._call(session, op, args)
                try:
                    conn.send(reply)
                except OSError:
                    break
        finally:
            # The program exited: the operating system closes its handles, which
            # releases every interface it claimed.
            with self.lock:
                for handle in session.handles.values():
                    self.backend.close_device(handle)
            conn.close()

    def _call(self, session: _Session, op: str, args: tuple) -> tuple:
        b = self.backend
        try:
            if op == "enumerate_devices":
                return ("ok", [(session.add(d), d.desc) for d in b.enumerate_devices()])
            if op not in _CALLS:
                raise AssertionError(f"unknown backend call {op!r}")
            target = session.objects[args[0]]
            rest = list(args[1:])
            if op == "bulk_read":  # (ep, intf, size, timeout): the client sends the size
                import array

                buff = array.array("B", bytes(rest[2]))
                n = b.bulk_read(target, rest[0], rest[1], buff, rest[3])
                return ("ok", bytes(buff[:n]))
            result = getattr(b, op)(target, *rest)
            if op == "open_device":
                key = session.add(result)
                session.handles[key] = result
                return ("ok", key)
            if op == "close_device":
                session.handles.pop(args[0], None)
            return ("ok", result)
        except usb.core.USBTimeoutError as err:
            return ("timeout", err.strerror, err.backend_error_code, err.errno)
        except usb.core.USBError as err:
            return ("usberror", err.strerror, err.backend_error_code, err.errno)
        except (IndexError, ValueError) as err:  # descriptor look-ups pyusb may probe
            return (type(err).__name__, str(err))
        except Exception:  # noqa: BLE001 - a bug on the simulator's side: keep it for the test
            text = traceback.format_exc()
            self.errors.append(text)
            return ("internal", text)


class _Remote:
    """A device or handle on the server, by its number in this program's session."""

    def __init__(self, key: int, desc: Any = None) -> None:
        self.key = key
        self.desc = desc


class RemoteBackend(usb.backend.IBackend):
    """A pyusb backend whose devices are on a :class:`StickServer`'s bus."""

    def __init__(self, address: str, authkey: bytes) -> None:
        super().__init__()
        self._conn = Client(address, family="AF_UNIX", authkey=authkey)
        self._lock = threading.Lock()

    def _rpc(self, op: str, *args: Any) -> Any:
        with self._lock:
            self._conn.send((op, args))
            reply = self._conn.recv()
        kind = reply[0]
        if kind == "ok":
            return reply[1]
        if kind == "timeout":
            raise usb.core.USBTimeoutError(reply[1], reply[2], reply[3])
        if kind == "usberror":
            raise usb.core.USBError(reply[1], reply[2], reply[3])
        if kind == "IndexError":
            raise IndexError(reply[1])
        if kind == "ValueError":
            raise ValueError(reply[1])
        raise RuntimeError(f"the simulated USB bus failed:\n{reply[1]}")

    def enumerate_devices(self):
        return iter([_Remote(key, desc) for key, desc in self._rpc("enumerate_devices")])

    def get_device_descriptor(self, dev: _Remote):
        return dev.desc

    def get_parent(self, dev: _Remote):
        return None

    def open_device(self, dev: _Remote) -> _Remote:
        return _Remote(self._rpc("open_device", dev.key))

    def bulk_write(self, handle: _Remote, ep: int, intf: int, data, timeout: int) -> int:
        return self._rpc("bulk_write", handle.key, ep, intf, bytes(data), timeout)

    def bulk_read(self, handle: _Remote, ep: int, intf: int, buff, timeout: int) -> int:
        data = self._rpc("bulk_read", handle.key, ep, intf, len(buff), timeout)
        buff[: len(data)] = type(buff)("B", data)
        return len(data)


def _forward(op: str):
    def call(self: RemoteBackend, obj: _Remote, *args: Any) -> Any:
        return self._rpc(op, obj.key, *args)

    call.__name__ = op
    return call


for _op in _CALLS:
    if _op not in RemoteBackend.__dict__:
        setattr(RemoteBackend, _op, _forward(_op))


def connect_from_environment() -> RemoteBackend:
    """The backend for the server named by ``USBSIM_SERVER`` / ``USBSIM_AUTHKEY``."""
    try:
        address = os.environ[ADDRESS_ENV]
        authkey = bytes.fromhex(os.environ[AUTHKEY_ENV])
    except KeyError as err:
        raise usb.core.NoBackendError(f"{err.args[0]} is not set: no simulated bus") from None
    return RemoteBackend(address, authkey)
