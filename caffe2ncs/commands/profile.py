"""Per-layer cost of a network on the Neural Compute Stick (NCS1, Myriad 2):
MFLOPs, bandwidth and time per layer, in the shape of the vendor's mvNCProfile
table.

Without a stick (the default, --device model) the times are predicted by a
cost model calibrated on the vendor's published GoogLeNet profile; with
--device ncs the graph runs on an attached stick and the measured per-stage
times are shown next to the predictions.  The input is a Caffe prototxt
(lowered as `caffe2ncs build` would) or a compiled NCSDK graph file.
--json prints one JSON object; --html writes a self-contained report with the
network drawn as a graph.  See docs/profile.md.
"""

from __future__ import annotations

import argparse
import json

HELP = "per-layer MFLOPs, bandwidth and time on the NCS (predicted, or measured on a stick)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..runtime.usb.options import add_stick_arguments

    parser.add_argument("network", help="a Caffe prototxt or an NCSDK graph file")
    parser.add_argument("weights", nargs="?", help="the .caffemodel (prototxt input only; "
                        "the times do not depend on the weights)")
    parser.add_argument("--shaves", "-s", type=int, metavar="N",
                        help="SHAVE processors, 1-12 (default: the graph file's, or 12)")
    parser.add_argument("--html", metavar="REPORT", help="write a self-contained HTML report")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (shape in docs/profile.md)")
    parser.add_argument("--device", choices=("model", "ncs"), default="model",
                        help="model: predict without a stick (default); ncs: measure on a stick")
    add_stick_arguments(parser)


def run(args: argparse.Namespace, console) -> int:
    from ..errors import UsageError
    from ..profile import DEFAULT_MODEL, build_profile, load_input
    from ..profile.constants import MAX_SHAVES

    if args.shaves is not None and not 1 <= args.shaves <= MAX_SHAVES:
        raise UsageError(f"--shaves must be between 1 and {MAX_SHAVES}, got {args.shaves}")
    src = load_input(args.network, args.weights, args.shaves or MAX_SHAVES)
    graph = src.graph
    shaves = graph.shave_count if args.shaves is None else args.shaves
    costs = DEFAULT_MODEL.estimate(graph, shaves)
    measured = None
    if args.device == "ncs":
        measured = _measure(src, graph, shaves, args)
    profile = build_profile(graph, costs, source=args.network, kind=src.kind, shaves=shaves,
                            net=src.net, measured_ms=measured, stage_layers=src.stage_layers)
    if args.html:
        from ..profile.report_html import write_report

        try:
            write_report(profile, args.html, DEFAULT_MODEL.as_dict())
        except OSError as err:
            from ..errors import InputFileError

            raise InputFileError(f"cannot write the report: {err.strerror}", args.html) from None
    if args.json:
        print(json.dumps(profile.to_json(DEFAULT_MODEL.as_dict()), indent=2))
    else:
        _print_table(profile, console)
        if args.html:
            console.print(f"HTML report written to {args.html}", markup=False, highlight=False)
    return 0


def _measure(src, graph, shaves: int, args) -> list[float]:
    """Run the graph twice on a stick (the first run warms it up, as mvNCProfile
    does) and return the second run's per-stage times."""
    import numpy as np

    from ..errors import DeviceError
    from ..lowering.graphfile import write_graph
    from ..lowering.ir import GraphFormat
    from ..runtime.usb import run_graph
    from ..runtime.usb.options import stick_kwargs

    if src.kind == "graph" and graph.format is GraphFormat.NCSDK1 and \
            shaves == graph.shave_count:
        with open(src.path, "rb") as f:
            blob = f.read()
    else:
        # The stick link speaks NCSDK 1.x: convert (2.x file, prototxt, other -s).
        blob = write_graph(graph.replace(shave_count=shaves), GraphFormat.NCSDK1)
    inp = graph.input
    if inp is None:
        raise DeviceError("the graph reads no network input; nothing to run", src.path)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, size=inp.shape_hwc).astype(np.float16)
    results = run_graph(blob, [x, x], **stick_kwargs(args))
    times = results[-1].stage_times_ms
    if len(times) != len(graph.stages):
        raise DeviceError(f"the stick reported {len(times)} stage times for a graph of "
                          f"{len(graph.stages)} stages", src.path)
    return [float(t) for t in times]


def _print_table(p, console) -> None:
    from rich.table import Table

    measured = p.mode == "ncs"
    what = ("measured on the stick" if measured else
            "predicted by the cost model (no stick used)")
    table = Table(title="Detailed Per Layer Profile", caption=f"{p.shaves} SHAVEs, times {what}",
                  show_footer=True, box=None, header_style="bold", pad_edge=False)
    table.add_column("#", justify="right", footer="")
    table.add_column("Name", footer="Total inference time")
    table.add_column("MFLOPs", justify="right", footer=f"{p.total_mflops:.3f}")
    table.add_column("Bandwidth MB/s", justify="right", footer="")
    table.add_column("time (ms)", justify="right", footer=f"{p.total_ms:.2f}")
    if measured:
        table.add_column("predicted (ms)", justify="right", footer=f"{p.predicted_total_ms:.2f}")
    for r in p.rows:
        cells = [str(r.index), r.name, f"{r.mflops:.3f}", f"{r.bandwidth_mb_s:.2f}",
                 f"{r.time_ms:.2f}"]
        if measured:
            cells.append(f"{r.predicted_ms:.2f}")
        table.add_row(*cells)
    console.print(table, markup=False, highlight=False)
