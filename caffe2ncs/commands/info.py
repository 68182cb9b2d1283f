"""Show what a network is: its inputs, layers by type, every blob's inferred
shape, its parameter count and the size of its weights as fp16 (what the
stick stores).  With ``--json`` the same as a stable JSON document."""

from __future__ import annotations

import argparse

HELP = "show a network's inputs, layers, blob shapes and weight size"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prototxt", help="the network definition (.prototxt, or a lone .caffemodel)")
    parser.add_argument("caffemodel", nargs="?", help="its weights (.caffemodel), optional")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def summarize(net) -> dict:
    """The JSON document of ``info --json`` (keys are a stable interface)."""
    from ..model.params import expected_blob_shapes, parameter_count

    layers = []
    total = 0
    complete = True
    counts: dict[str, int] = {}
    for layer in net.layers:
        counts[layer.type] = counts.get(layer.type, 0) + 1
        shapes = net.layer_shapes[layer.index]
        blobs = net.weights.get(layer.name)
        if blobs is not None:
            n_params: int | None = sum(int(b.size) for b in blobs)
        else:
            expected = expected_blob_shapes(layer, shapes.inputs)
            n_params = parameter_count(expected) if expected is not None else None
        if n_params:
            total += n_params
        elif n_params is None:
            complete = False
        where = net.position(layer.node)
        layers.append({
            "name": layer.name,
            "type": layer.type,
            "bottoms": list(layer.bottoms),
            "tops": list(layer.tops),
            "output_shapes": [_shape(s) for s in shapes.outputs],
            "parameters": n_params,
            "line": where[0] if where else None,
        })
    return {
        "file": net.path,
        "weights": net.weights_path,
        "name": net.name,
        "format": str(net.spelling),
        "inputs": {i.name: _shape(i.shape) for i in net.inputs},
        "input_forms": {i.name: str(i.form) for i in net.inputs},
        "blobs": {name: _shape(s) for name, s in net.blob_shapes.items()},
        "layers": layers,
        "layer_counts": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
        "outputs": list(net.outputs),
        "parameters": total,
        #: false when some layer's parameter count is unknown ("parameters" is then a minimum)
        "parameters_known": complete,
        "fp16_weight_bytes": 2 * total,
        "problems": [
            {"code": p.code, "message": p.message, "layer": p.layer,
             "line": (net.position(p.node) or (None,))[0], "fatal": p.fatal}
            for p in net.problems
        ],
    }


def _shape(shape):
    return list(shape) if shape is not None else None


def run(args: argparse.Namespace, console) -> int:
    from ..model import load

    net = load(args.prototxt, args.caffemodel)
    doc = summarize(net)
    if args.json:
        import json

        console.file.write(json.dumps(doc, indent=2) + "\n")
        return 0
    _print(doc, console)
    return 0


def _fmt(shape) -> str:
    if shape is None:
        return "?"
    return "x".join(map(str, shape)) if shape else "scalar"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{n} B"
        n /= 1024
    return str(n)  # pragma: no cover


def _print(doc: dict, console) -> None:
    from rich.markup import escape

    title = f"[bold]{escape(doc['file'] or '')}[/bold]"
    if doc["name"]:
        title += f"  network [bold]{escape(doc['name'])}[/bold]"
    console.print(title)
    if not doc["layers"] and not doc["inputs"]:
        console.print("an empty network: no inputs and no layers")
    else:
        _print_body(doc, console)
    for problem in doc["problems"]:
        where = f"line {problem['line']}: " if problem["line"] else ""
        console.print(f"[yellow]warning:[/yellow] {escape(where + problem['message'])}")


def _print_body(doc: dict, console) -> None:
    from rich.markup import escape
    from rich.table import Table

    at_least = "" if doc["parameters_known"] else "at least "
    console.print(f"{len(doc['layers'])} layers ('{doc['format']}' blocks); "
                  f"{at_least}{doc['parameters']:,} parameters, "
                  f"{at_least}{_size(doc['fp16_weight_bytes'])} as fp16"
                  + ("" if doc["weights"] else " (sizes from the prototxt)"))
    for name, shape in doc["inputs"].items():
        console.print(f"input  [bold]{escape(name)}[/bold]  {_fmt(shape)}  "
                      f"(declared with {doc['input_forms'][name]})")
    for name in doc["outputs"]:
        console.print(f"output [bold]{escape(name)}[/bold]  {_fmt(doc['blobs'].get(name))}")
    counts = ", ".join(f"{t} {n}" for t, n in doc["layer_counts"].items())
    console.print(f"layer types: {escape(counts)}")
    table = Table(show_edge=False, pad_edge=False, box=None, header_style="bold")
    for col, justify in (("#", "right"), ("layer", "left"), ("type", "left"),
                         ("bottoms → tops", "left"), ("output shape", "left"),
                         ("params", "right"), ("line", "right")):
        table.add_column(col, justify=justify)
    for i, layer in enumerate(doc["layers"]):
        table.add_row(
            str(i), escape(layer["name"]), escape(layer["type"]),
            escape(f"{', '.join(layer['bottoms'])} → {', '.join(layer['tops'])}"),
            ", ".join(_fmt(s) for s in layer["output_shapes"]),
            "?" if layer["parameters"] is None else f"{layer['parameters']:,}",
            str(layer["line"] or ""),
        )
    console.print(table)
