"""List the Neural Compute Sticks attached over USB.

For each stick: its name (the USB port path, "1.2" = port 2 of the hub on port
1, which is also how the other commands select a stick), the bus, whether its
firmware is running (booted) or not, the model and the USB ids.  Listing never
changes a stick's state.  No stick, or no USB library at all, is not an error:
the command says so and exits 0.
"""

from __future__ import annotations

import argparse
import json

HELP = "list attached Neural Compute Sticks (USB)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--json",
        action="store_true",
        help="print a JSON list (one object per stick) instead of text",
    )


def run(args: argparse.Namespace, console) -> int:
    from ..runtime.usb import constants, scan_devices

    scan = scan_devices()
    if args.json:
        console.print(
            json.dumps([d.to_json() for d in scan.devices], indent=2),
            markup=False,
            highlight=False,
        )
        if scan.no_backend:
            _stderr(scan.no_backend)
        return 0
    if scan.no_backend:
        console.print(
            f"Cannot look for Neural Compute Sticks: {scan.no_backend}.",
            markup=False,
            highlight=False,
        )
        return 0
    if not scan.devices:
        console.print(
            "No Neural Compute Stick found (looked for USB ids 03e7:2150, 03e7:2485 and "
            f"03e7:f63b; USB backend: {scan.backend}).",
            markup=False,
            highlight=False,
        )
        return 0
    n = len(scan.devices)
    console.print(
        f"{n} Neural Compute Stick{'s' if n != 1 else ''} found:", markup=False, highlight=False
    )
    rows = [("NAME", "BUS", "STATE", "MODEL", "USB ID")]
    for d in scan.devices:
        model = d.model or "NCS or NCS2 (not told once booted)"
        rows.append((d.name, "-" if d.bus is None else str(d.bus), d.state, model, d.usb_id))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        line = "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip()
        console.print("  " + line, markup=False, highlight=False)
    if any(d.product_id == constants.PRODUCT_ID_MYRIADX_ROM for d in scan.devices):
        console.print(
            "Note: caffe2ncs runs graphs on NCS (Myriad 2) sticks with the NCSDK 1.x firmware; "
            "the NCS2 (Myriad X) is listed but not supported.",
            markup=False,
            highlight=False,
        )
    return 0


def _stderr(message: str) -> None:
    import sys

    print(f"caffe2ncs devices: {message}", file=sys.stderr)
