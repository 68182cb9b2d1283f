"""Run a compiled graph file on one input and show the result: on a Neural
Compute Stick (NCSDK 1.x graphs) or in caffe2ncs's fp16 emulator of the stick.

The input is an image (PNG, PPM/PGM or BMP), preprocessed as mvNCCheck did:
read as RGB in 0..1, resized to the network's input (bilinear), multiplied by
--scale, channels swapped by --channel-swap (default 2,1,0: RGB to Caffe's
BGR), minus --mean.  Or a .npy array holding the input tensor itself, in the
device's order HxWxC (what the SDK's LoadTensor takes) or CxHxW with --layout
chw; it is not resized, and only the options given explicitly are applied.

For a classification-like output (1x1xN) the top --top scores are listed, with
names from --labels (one per line).  --output saves the output as the device
returns it -- flat, in the device's HWC order -- as a float32 .npy.
"""

from __future__ import annotations

import argparse
import time

HELP = "run a graph file on an image or .npy input (stick or fp16 emulator)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..runtime.usb.options import add_stick_arguments

    parser.add_argument("graph", help="an NCSDK graph file (from caffe2ncs build or mvNCCompile)")
    parser.add_argument("--input", "-i", required=True, metavar="FILE",
                        help="an image (PNG, PPM/PGM, BMP) or a .npy tensor")
    add_preprocessing_arguments(parser, "preprocessing (mvNCCheck's -S, -cs, -M)")
    out = parser.add_argument_group("output")
    out.add_argument("--labels", metavar="FILE",
                     help="class names, one per line, in output order")
    out.add_argument("--top", type=_positive, default=5, metavar="N",
                     help="how many top scores to list (default 5)")
    out.add_argument("--output", "-o", metavar="OUT.npy",
                     help="save the output (flat, device HWC order) as float32 .npy")
    parser.add_argument("--device", choices=("auto", "emulator", "ncs"), default="auto",
                        help="where to run: a stick (ncs; NCSDK 1.x graphs only), the fp16 "
                             "emulator, or auto (a stick when one is attached and the graph "
                             "can run on it, else the emulator; default)")
    add_stick_arguments(parser)


def add_preprocessing_arguments(parser: argparse.ArgumentParser, title: str) -> None:
    """``--scale``, ``--channel-swap``, ``--mean``, ``--layout``: how an image or
    .npy ``--input`` becomes the graph's input (run and verify).  Each defaults
    to None, so that a caller can tell whether it was given; :func:`load_input`
    applies the defaults."""
    pre = parser.add_argument_group(title)
    pre.add_argument("--scale", "-S", type=float, metavar="S",
                     help="multiply the 0..1 image by S (e.g. 255 for 0..255 networks); "
                          "default 1")
    pre.add_argument("--channel-swap", "--cs", metavar="I,J,K",
                     help="channel order, as mvNCCheck's -cs (default for 3-channel images: "
                          "2,1,0 = RGB to BGR; 0,1,2 keeps RGB)")
    pre.add_argument("--mean", "-M", metavar="M",
                     help="subtract a number, one number per channel ('104,117,123', in the "
                          "network's channel order) or a Caffe mean .npy")
    pre.add_argument("--layout", choices=("hwc", "chw"),
                     help="axis order of a .npy input (default hwc, the device's order)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def run(args: argparse.Namespace, console) -> int:
    import numpy as np

    from ..errors import UsageError
    from ..lowering.graphfile import load_graph

    graph = load_graph(args.graph)
    if graph.input is None or graph.output is None:
        from ..errors import GraphFileError

        raise GraphFileError("the graph has no network input or output", args.graph)
    x, how = load_input(args, graph.input.shape_hwc)
    labels = read_labels(args.labels) if args.labels else None
    n_out = graph.output.elements
    if labels is not None and len(labels) != n_out:
        raise UsageError(f"{args.labels} has {len(labels)} labels but the graph outputs "
                         f"{n_out} values")
    device, note = choose_device(args, graph)
    if note:
        from ..cli import make_console, warn

        warn(make_console(getattr(args, "color", "auto"), stderr=True), note)

    t0 = time.perf_counter()
    if device == "emulator":
        from ..runtime.emulator import Emulator

        output = Emulator(graph, path=args.graph).run(x)
        where, stage_ms = "fp16 emulator", None
    else:
        from ..runtime.usb import run_graph
        from ..runtime.usb.options import stick_kwargs

        with open(args.graph, "rb") as f:
            blob = f.read()
        result = run_graph(blob, [x.astype(np.float16)], **stick_kwargs(args))[0]
        output, stage_ms = result.output, result.total_ms
        where = f"Neural Compute Stick{f' {args.stick}' if args.stick else ''}"
    seconds = time.perf_counter() - t0

    if args.output:
        save_output(args.output, output)
    report(console, args, graph, how, where, output, labels, seconds, stage_ms)
    return 0


# ------------------------------------------------------------------------- input


def load_input(args, shape_hwc):
    """The network input (float32 HWC) and a description of how it was made."""
    from pathlib import Path

    from ..errors import InputFileError
    from ..runtime import images

    path = Path(args.input)
    if not path.exists():
        raise InputFileError("no such file", path)
    if path.is_dir():
        raise InputFileError("is a directory, not an input file", path)
    with open(path, "rb") as f:
        head = f.read(16)
    options = images.Preprocessing(
        scale=1.0 if args.scale is None else args.scale,
        channel_swap=(images.parse_channel_swap(args.channel_swap)
                      if args.channel_swap is not None else None),
        mean=images.parse_mean(args.mean) if args.mean is not None else None)
    h, w, c = shape_hwc
    if images.sniff(head) == "npy" or path.suffix.lower() == ".npy":
        layout = args.layout or "hwc"
        x = options.apply(images.tensor_from_npy(path, shape_hwc, layout))
        return x, f"{path.name} ({layout} array){_describe(options)}"
    img = images.load_image(path)
    if options.channel_swap is None and c == 3:
        options = images.Preprocessing(options.scale, (2, 1, 0), options.mean)
    x = images.preprocess(img, shape_hwc, options)
    size = f"{img.shape[0]}x{img.shape[1]}"
    resized = f", resized from {size}" if (img.shape[0], img.shape[1]) != (h, w) else ""
    return x, f"{path.name} (image{resized}){_describe(options)}"


def _describe(options) -> str:
    parts = []
    if options.scale != 1:
        parts.append(f"scale {options.scale:g}")
    if options.channel_swap is not None:
        parts.append(f"channel swap {','.join(map(str, options.channel_swap))}")
    if options.mean is not None:
        import numpy as np

        mean = np.asarray(options.mean).reshape(-1)
        parts.append("mean " + ",".join(f"{v:g}" for v in mean))
    return f", {', '.join(parts)}" if parts else ""


def read_labels(path) -> list[str]:
    from ..errors import unreadable

    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError as err:
        raise unreadable(err, path, "labels") from None
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]


# ------------------------------------------------------------------------ device


def choose_device(args, graph) -> tuple[str, str | None]:
    """``"emulator"`` or ``"ncs"``, from --device and what is attached, and a
    note for the user when ``auto`` passes over an attached stick."""
    from ..errors import UsageError
    from ..lowering.ir import GraphFormat

    runnable = graph.format is GraphFormat.NCSDK1
    if args.device == "emulator":
        return "emulator", None
    if args.device == "ncs":
        if not runnable:
            raise UsageError(
                "is an NCSDK 2.x graph (blob 2.3); caffe2ncs drives sticks over the NCSDK "
                "1.x USB link, which runs NCSDK 1.x graphs only: compile the network for "
                "NCSDK 1.x, or use --device emulator", args.graph)
        return "ncs", None
    # auto
    if not runnable:
        return "emulator", None
    return auto_device(args)


def auto_device(args) -> tuple[str, str | None]:
    """``--device auto`` for an NCSDK 1.x graph: a stick when one is attached
    (the one ``--stick`` names, if given) and there is firmware to boot it
    with, else the emulator -- with a note when a stick is there but there is
    no firmware, so that the user knows why it was not used."""
    from ..errors import UsageError
    from ..runtime.usb import list_devices
    from ..runtime.usb.firmware import firmware_path

    try:
        sticks = list_devices()
    except Exception:  # no usable USB stack: not an error for "auto"
        sticks = []
    if args.stick:
        sticks = [s for s in sticks if s.matches(args.stick)]
    if not sticks:
        return "emulator", None
    try:
        firmware_path(args.firmware)
    except UsageError:
        return "emulator", ("a Neural Compute Stick is attached, but there is no firmware to boot "
                            "it with (--firmware or CAFFE2NCS_FIRMWARE): running in the emulator")
    return "ncs", None


# ------------------------------------------------------------------------ output


def save_output(path, output) -> None:
    import numpy as np

    from ..errors import UsageError

    try:
        with open(path, "wb") as f:
            np.save(f, np.asarray(output, np.float32).reshape(-1))
    except OSError as err:
        raise UsageError(f"cannot write {path}: {err.strerror or err}") from None


def report(console, args, graph, how, where, output, labels, seconds, stage_ms) -> None:
    import numpy as np
    from rich.markup import escape

    def say(text: str = "") -> None:
        console.print(escape(text), highlight=False)

    h, w, c = graph.output.shape_hwc
    values = np.asarray(output, np.float32).reshape(-1)
    say(f"graph:  {args.graph} ({graph.format.description}, {len(graph.stages)} stages)")
    hi, wi, ci = graph.input.shape_hwc
    say(f"input:  {hi}x{wi}x{ci} (HxWxC) from {how}")
    timing = f"{seconds * 1000:.1f} ms"
    if stage_ms is not None:
        timing += f" (stick's stage times: {stage_ms:.2f} ms)"
    say(f"device: {where}, {timing}")
    say(f"output: {h}x{w}x{c} (HxWxC), {values.size} value{'s' if values.size != 1 else ''}")
    finite = values[np.isfinite(values)]
    if finite.size != values.size:
        say(f"        {values.size - finite.size} of them not finite (NaN or inf)")
    classification = values.size > 1 and (labels is not None or (h == 1 and w == 1))
    if classification:
        k = min(args.top, values.size)
        order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[:k]
        say(f"top {k}:")
        width = max(5, len(str(values.size - 1)))
        for rank, i in enumerate(order, 1):
            name = f"  {labels[i]}" if labels is not None else ""
            say(f"  {rank:>2}. {i:>{width}}  {values[i]:.6g}{name}")
    elif values.size <= 16:
        say("values: " + " ".join(f"{v:.6g}" for v in values))
    elif finite.size:
        say(f"min {finite.min():.6g}, max {finite.max():.6g}, mean {finite.mean():.6g}")
    if args.output:
        say(f"saved:  {args.output} (float32, flat, device HWC order)")
