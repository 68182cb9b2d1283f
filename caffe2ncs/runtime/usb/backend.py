"""Choosing the pyusb backend (the USB library pyusb talks through).

In order:

1. a backend object passed by the caller (any ``usb.backend.IBackend``);
2. the factory named by ``CAFFE2NCS_PYUSB_BACKEND=module:callable`` - a hook for
   alternative USB stacks (and for running the CLI against a simulated stick):
   the callable is called with no arguments and returns a backend, or ``None`` /
   raises ``usb.core.NoBackendError`` when it has none;
3. pyusb's own choice (libusb 1.0, OpenUSB, libusb 0.1, whichever loads);
4. the libusb bundled by the ``libusb-package`` wheel (a dependency of caffe2ncs).

If none works, :func:`resolve_backend` raises :class:`NoUsbBackendError`, whose
message says how to get libusb.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from typing import Any

from ...errors import UsageError
from . import constants as C
from .errors import LIBUSB_HELP, NoUsbBackendError


@dataclasses.dataclass(frozen=True)
class BackendChoice:
    backend: Any
    #: Where it came from, for messages: "libusb1", "libusb1 from libusb-package", ...
    description: str


def resolve_backend(backend: Any = None) -> BackendChoice:
    """The backend to use; raises :class:`NoUsbBackendError` when there is none."""
    if backend is not None:
        return BackendChoice(backend, _describe(backend, "given by the caller"))
    spec = os.environ.get(C.BACKEND_ENV, "").strip()
    if spec:
        return _from_factory(spec)
    reasons = []
    choice = _pyusb_default(reasons)
    if choice is None:
        choice = _libusb_package(reasons)
    if choice is None:
        detail = f" ({'; '.join(reasons)})" if reasons else ""
        raise NoUsbBackendError(
            f"no USB backend: pyusb could not load libusb{detail}; to talk to a stick, "
            + LIBUSB_HELP
        )
    return choice


def _describe(backend: Any, origin: str) -> str:
    mod = type(backend).__module__
    name = mod.rsplit(".", 1)[-1] if mod.startswith("usb.backend.") else type(backend).__name__
    return f"{name} {origin}"


def _pyusb_default(reasons: list[str]) -> BackendChoice | None:
    """The first backend ``usb.core.find`` would pick, without raising."""
    import usb.backend.libusb0 as libusb0
    import usb.backend.libusb1 as libusb1
    import usb.backend.openusb as openusb

    for module in (libusb1, openusb, libusb0):  # usb.core.find's order
        try:
            found = module.get_backend()
        except Exception as err:  # a broken library on the path; try the next one
            reasons.append(f"{module.__name__}: {err}")
            continue
        if found is not None:
            return BackendChoice(found, module.__name__.rsplit(".", 1)[-1])
    reasons.append("no system libusb found")
    return None


def _libusb_package(reasons: list[str]) -> BackendChoice | None:
    try:
        import libusb_package
    except ImportError:
        reasons.append("libusb-package is not installed")
        return None
    try:
        found = libusb_package.get_libusb1_backend()
    except Exception as err:
        reasons.append(f"libusb-package: {err}")
        return None
    if found is None:
        reasons.append("libusb-package has no library for this platform")
        return None
    return BackendChoice(found, "libusb1 from libusb-package")


def _from_factory(spec: str) -> BackendChoice:
    import usb.core

    where = f"{C.BACKEND_ENV}={spec!r}"
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise UsageError(f"{where}: expected 'module:callable', e.g. 'mypkg.usbstack:backend'")
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as err:
        raise UsageError(f"{where}: cannot import {module_name!r}: {err}") from None
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise UsageError(f"{where}: {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(target):
        raise UsageError(f"{where}: {attr_path!r} is not callable")
    try:
        backend = target()
    except usb.core.NoBackendError as err:
        raise NoUsbBackendError(
            f"no USB backend: the factory named by {where} found none ({err}); unset "
            f"{C.BACKEND_ENV} to use libusb, or " + LIBUSB_HELP
        ) from None
    except Exception as err:
        raise NoUsbBackendError(
            f"no USB backend: the factory named by {where} failed ({type(err).__name__}: {err})"
        ) from None
    if backend is None:
        raise NoUsbBackendError(
            f"no USB backend: the factory named by {where} returned None; unset "
            f"{C.BACKEND_ENV} to use libusb, or " + LIBUSB_HELP
        )
    return BackendChoice(backend, _describe(backend, f"from {C.BACKEND_ENV}"))
