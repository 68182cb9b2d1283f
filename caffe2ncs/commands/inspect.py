"""Show what an NCSDK graph file contains: its header and, stage by stage, the
operation, the tensor shapes in and out, kernel/stride/padding, the fused
post-operation and where each buffer lives.  Reads both NCSDK 1.x and 2.x
files, ours and the vendor's.

With --json the same information is printed as one JSON object whose shape is
documented in docs/graph-format.md ("caffe2ncs inspect --json").
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

HELP = "show the header and stages of an NCSDK graph file"

#: Bumped when the JSON shape changes incompatibly.
JSON_SCHEMA_VERSION = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("graph", help="a graph file written by mvNCCompile or caffe2ncs build")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (shape documented in docs/graph-format.md)")


def run(args: argparse.Namespace, console) -> int:
    from ..lowering.graphfile import load_graph

    graph = load_graph(args.graph)
    report = graph_to_dict(graph, path=args.graph, file_size=os.path.getsize(args.graph))
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_text(report, console)
    return 0


# ---------------------------------------------------------------------------- JSON


def graph_to_dict(graph, path: str | None = None, file_size: int | None = None) -> dict[str, Any]:
    """The ``inspect --json`` object for ``graph`` (read from ``path``, ``file_size`` bytes)."""
    from ..lowering.graphfile.codes import OP_CODES

    codes = OP_CODES[graph.format]
    offsets = graph.constant_offsets
    header: dict[str, Any]
    if graph.format.value == "ncsdk1":
        h = graph.ncsdk1
        header = {"report_dir": h.report_dir, "first_shave": h.first_shave,
                  "last_shave": h.first_shave + graph.shave_count - 1,
                  "leon_mem_location": h.leon_mem_location, "leon_mem_size": h.leon_mem_size,
                  "dma_agent": h.dma_agent}
    else:
        h = graph.ncsdk2
        header = {"elf": vars(h.elf).copy(),
                  "permutation": list(h.permutation) if h.permutation is not None else None}
    return {
        "inspect_schema": JSON_SCHEMA_VERSION,
        "file": None if path is None else str(path),
        "format": graph.format.value,
        "format_version": "{}.{}".format(*graph.version),
        "description": graph.format.description,
        "file_size": file_size,
        "name": graph.name,
        "shave_count": graph.shave_count,
        "header": header,
        "input": _tensor(graph.input),
        "output": _tensor(graph.output),
        "scratch_size": graph.scratch_size,
        "data_size": sum(c.size for c in graph.constants),
        "constants": [{"name": c.name, "offset": offsets[c.name], "size": c.size,
                       "dtype": c.dtype} for c in graph.constants],
        "stages": [_stage(i, s, codes) for i, s in enumerate(graph.stages)],
    }


def _tensor(t) -> dict[str, Any] | None:
    if t is None:
        return None
    return {"dims": list(t.dims), "strides": list(t.strides), "shape_hwc": list(t.shape_hwc),
            "elements": t.elements, "dtype": t.dtype.value, "order": t.order.value}


def _buffer(ref) -> dict[str, Any] | None:
    if ref is None:
        return None
    return {"location": ref.location.value, "work_index": ref.work_index or None,
            "offset": ref.offset, "constant": ref.constant, "dims": list(ref.dims),
            "strides": list(ref.strides), "dtype": ref.dtype.value, "order": ref.order.value}


def _params(params) -> dict[str, Any] | None:
    if params is None:
        return None
    out = {}
    for k, v in vars(params).items():
        out[k] = v.value if hasattr(v, "value") else v
    return out


def _stage(i: int, s, codes) -> dict[str, Any]:
    from ..lowering.ir import BUFFER_SLOTS

    post = s.post_op
    return {
        "index": i,
        "name": s.name,
        "op": s.op.value,
        "op_code": codes.get(s.op),
        "implementation": s.implementation,
        "params": _params(s.params),
        "buffers": {slot: _buffer(getattr(s, slot)) for slot in BUFFER_SLOTS},
        "pre_op": s.pre_op.value,
        "post_op": {"op": post.op.value, "param": post.param, "param_float": post.param_float,
                    "stride_x": post.stride_x, "stride_y": post.stride_y},
        "precision": s.precision.value,
        "ncsdk1_window": _params(s.ncsdk1_window),
    }


# ---------------------------------------------------------------------------- text


def _hwc(dims: list[int] | None) -> str:
    if not dims:
        return "-"
    x, y, z = dims
    return f"{y}x{x}x{z}"


def _where(buf: dict[str, Any] | None) -> str:
    if buf is None:
        return "-"
    loc = buf["location"]
    if loc == "blob":
        return buf["constant"]
    if loc == "work":
        return f"work{buf['work_index']}@{buf['offset']}"
    return loc if not buf["offset"] else f"{loc}+{buf['offset']}"


_SHORT = {"input": "in", "output": "out", "taps": "taps", "bias": "bias", "op_params": "params"}


def _print_text(report: dict[str, Any], console) -> None:
    from rich.markup import escape
    from rich.table import Table

    def fmt_tensor(t):
        if t is None:
            return "-"
        return f"{_hwc(t['dims'])} (HxWxC, {t['elements']} {t['dtype']}, {t['order']})"

    size = f", {report['file_size']} bytes" if report["file_size"] is not None else ""
    console.print(f"[bold]{escape(report['file'] or '<graph>')}[/bold]: "
                  f"{report['description']}{size}, {len(report['stages'])} stages, "
                  f"{report['shave_count']} SHAVE{'s' if report['shave_count'] != 1 else ''}")
    if report["name"]:
        console.print(f"name: {escape(report['name'])}")
    console.print(f"input:  {fmt_tensor(report['input'])}")
    console.print(f"output: {fmt_tensor(report['output'])}")
    console.print(f"data section: {len(report['constants'])} constants, {report['data_size']} "
                  f"bytes; scratch: {report['scratch_size']} bytes")

    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col in ("#", "name", "op", "in", "out", "kernel", "stride", "pad", "post-op", "buffers"):
        table.add_column(col, no_wrap=col != "buffers")
    for st in report["stages"]:
        p = st["params"] or {}
        kernel = stride = pad = "-"
        if "kernel_x" in p:
            kernel = f"{p['kernel_y']}x{p['kernel_x']}"
            if p.get("dilation", 1) != 1:
                kernel += f" d{p['dilation']}"
            stride = f"{p['stride_y']}x{p['stride_x']}"
            pad = f"{p['pad_y']}x{p['pad_x']} {p['pad_style']}"
        extra = {k: v for k, v in p.items()
                 if k not in ("kernel_x", "kernel_y", "stride_x", "stride_y", "pad_x", "pad_y",
                              "pad_style", "dilation")}
        op = st["op"] + ("".join(f" {k}={v:g}" if isinstance(v, float) else f" {k}={v}"
                                 for k, v in extra.items()))
        post = st["post_op"]
        post_text = post["op"]
        if post["op"] in ("leaky_relu", "elu", "relu_x"):
            post_text += f"({post['param_float']:g})"
        bufs = st["buffers"]
        where = " ".join(f"{_SHORT[slot]}={_where(b)}" for slot, b in bufs.items()
                         if b is not None)
        table.add_row(str(st["index"]), escape(st["name"]), escape(op),
                      _hwc(bufs["input"]["dims"] if bufs["input"] else None),
                      _hwc(bufs["output"]["dims"] if bufs["output"] else None),
                      kernel, stride, pad, post_text, escape(where))
    console.print(table)
