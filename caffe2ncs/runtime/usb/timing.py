"""Time limits and the clock the USB runtime waits with.

Every wait in the runtime goes through a :class:`Clock` and every limit comes
from a :class:`Timeouts`, so that tests (and impatient users) can replace both:
a simulated stick shares a virtual clock with the host, and a 15 s timeout then
takes no real time at all.
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Mapping
from typing import Protocol

from . import constants as C


class Clock(Protocol):
    """What the runtime needs of a clock: a monotonic time and a way to wait."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock (``time.monotonic`` / ``time.sleep``)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


@dataclasses.dataclass(frozen=True)
class Timeouts:
    """The protocol's time limits; the defaults are libmvnc 1.x's (see constants).

    USB transfer limits are in milliseconds because that is what pyusb takes;
    the rest are seconds.  Use :func:`dataclasses.replace` to change one, or
    set ``CAFFE2NCS_USB_TIMEOUTS`` (:meth:`from_env`) for the command line.
    """

    #: Every transfer of the link (``USB_TIMEOUT``).
    link_transfer_ms: int = C.LINK_TIMEOUT_MS
    #: Every firmware chunk while booting (``DEFAULT_WRITE_TIMEOUT``).
    boot_chunk_ms: int = C.BOOT_WRITE_TIMEOUT_MS
    #: Looking for the unbooted stick before booting (``DEFAULT_CONNECT_TIMEOUT``).
    boot_find_s: float = C.BOOT_FIND_TIMEOUT_S
    boot_find_poll_s: float = C.BOOT_FIND_POLL_S
    boot_find_initial_delay_s: float = C.BOOT_FIND_INITIAL_DELAY_S
    #: Booted stick re-appearing as 03e7:f63b and answering WAITING.
    reenumeration_s: float = C.REENUMERATION_TIMEOUT_S
    reenumeration_poll_s: float = C.REENUMERATION_POLL_S
    reenumeration_other_ports_after_s: float = C.REENUMERATION_OTHER_PORTS_AFTER_S
    #: Waiting for WAITING before a graph is sent.
    allocate_status_s: float = C.ALLOCATE_STATUS_TIMEOUT_S
    status_poll_s: float = C.STATUS_POLL_S
    #: Waiting for a result (and for the optimisation list).
    result_s: float = C.RESULT_TIMEOUT_S
    result_poll_s: float = C.RESULT_POLL_S
    #: Waiting for reset sticks to come back as 03e7:2150.
    reset_poll_s: float = C.RESET_ALL_POLL_S
    reset_iterations: int = C.RESET_ALL_ITERATIONS
    #: Pause after the RESET that closes a device.
    close_settle_s: float = C.CLOSE_SETTLE_S

    @property
    def reset_wait_s(self) -> float:
        return self.reset_poll_s * self.reset_iterations

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Timeouts:
        """The defaults, changed by ``CAFFE2NCS_USB_TIMEOUTS`` when it is set:
        comma-separated ``field=value`` pairs naming fields of this class, e.g.
        ``result_s=60,link_transfer_ms=20000``.  Raises :class:`UsageError`
        (naming the variable) for an unknown field or a value that is not a
        positive number."""
        from ...errors import UsageError

        env = os.environ if environ is None else environ
        spec = env.get(C.TIMEOUTS_ENV, "").strip()
        if not spec:
            return cls()
        fields = {f.name: f for f in dataclasses.fields(cls)}
        changes: dict[str, float | int] = {}
        for item in filter(None, (part.strip() for part in spec.split(","))):
            name, sep, text = item.partition("=")
            name, text = name.strip(), text.strip()
            if not sep or name not in fields:
                raise UsageError(
                    f"{C.TIMEOUTS_ENV}: {item!r} is not 'limit=value' with a known limit "
                    f"({', '.join(fields)})"
                )
            integral = fields[name].type in ("int", int)
            try:
                value = int(text) if integral else float(text)
            except ValueError:
                kind = "a whole number" if integral else "a number"
                raise UsageError(f"{C.TIMEOUTS_ENV}: {name} must be {kind}, got {text!r}") from None
            if not value > 0 or value == float("inf"):
                raise UsageError(f"{C.TIMEOUTS_ENV}: {name} must be positive, got {text!r}")
            changes[name] = value
        return dataclasses.replace(cls(), **changes)


def seconds(ms: int) -> str:
    """``10000`` -> ``"10 s"``; ``2000`` -> ``"2 s"``; ``250`` -> ``"0.25 s"``."""
    return f"{ms / 1000:g} s"
