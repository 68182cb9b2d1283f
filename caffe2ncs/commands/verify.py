"""Check that a network computes on the Neural Compute Stick what it computes in
Caffe, as the NCSDK's mvNCCheck did: build the graph (in memory), run it on a
stick or in caffe2ncs's fp16 emulator of one, run the Caffe network itself in
fp32 on the host (caffe2ncs's reference executor), and compare the outputs.

Prints the top scores of both and mvNCCheck's metrics, each with its
threshold and pass/fail: the largest error (at most 2 % of the largest
expected magnitude), the mean error (1 %), the share of values more than 2 %
off (none) and the L2 error (1 %).  An SSD network's list of boxes is checked
by detections instead (count, unmatched boxes, order, multiple matches).
Exit status 1 when a threshold fails.

Without a caffemodel (and none named like the prototxt beside it) the weights
are seeded random ones: the check then tests the tools' arithmetic on this
network, not a trained model.  Without --input the input is seeded random
numbers in [-1, 1), as mvNCCheck used without -i.  An image or .npy input is
read and preprocessed as by `caffe2ncs run`.
"""

from __future__ import annotations

import argparse

HELP = "compare the stick's (or emulator's) result with Caffe's fp32 result, like mvNCCheck"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..runtime.usb.options import add_stick_arguments
    from .run import add_preprocessing_arguments

    parser.add_argument("prototxt", help="the network definition (.prototxt)")
    parser.add_argument("caffemodel", nargs="?",
                        help="its weights (default: <prototxt name>.caffemodel next to it, if "
                             "there is one; else seeded random weights)")
    parser.add_argument("--input", "-i", metavar="FILE",
                        help="an image (PNG, PPM/PGM, BMP) or a .npy tensor (default: seeded "
                             "random numbers in [-1, 1))")
    add_preprocessing_arguments(parser, "preprocessing of --input (as caffe2ncs run; "
                                        "mvNCCheck's -S, -cs, -M)")
    parser.add_argument("--target", choices=("ncsdk1", "ncsdk2"),
                        help="the NCSDK generation to build for (default: the configured target, "
                             "else ncsdk2; ncsdk1 with --device ncs)")
    parser.add_argument("--shaves", "-s", type=int, default=12, metavar="N",
                        help="SHAVE processors the graph uses, 1-12 (default: 12)")
    parser.add_argument("--device", choices=("auto", "emulator", "ncs"), default="auto",
                        help="where the graph runs: a stick (ncs; NCSDK 1.x graphs), the fp16 "
                             "emulator, or auto (a stick when one is attached, the target is "
                             "ncsdk1 and there is firmware; else the emulator; default)")
    parser.add_argument("--output-node", "-on", metavar="BLOB",
                        help="compare this blob instead of the network's output (mvNCCheck's -on)")
    parser.add_argument("--seed", type=int, default=0, metavar="N",
                        help="seed of the random weights and the random input (default: 0)")
    parser.add_argument("--top", type=int, default=5, metavar="N",
                        help="how many top scores to list (default 5)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_stick_arguments(parser)


def run(args: argparse.Namespace, console) -> int:
    import os

    from ..cli import make_console
    from ..cli import warn as _warn
    from ..errors import EXIT_FINDINGS, EXIT_OK, UsageError
    from ..model.loader import load
    from ..runtime.verify import input_shape_hwc, random_input, synthetic_weights, verify_network

    err = make_console(getattr(args, "color", "auto"), stderr=True)
    if not 1 <= args.shaves <= 12:
        raise UsageError(f"--shaves must be 1 to 12 (the NCS has 12 SHAVE processors), "
                         f"got {args.shaves}")
    if args.seed < 0:
        raise UsageError("--seed takes a non-negative number")
    if args.top < 1:
        raise UsageError("--top must be at least 1")
    given = [name for name, value in (("--scale", args.scale), ("--channel-swap",
                                                                args.channel_swap),
                                      ("--mean", args.mean), ("--layout", args.layout))
             if value is not None]
    if given and not args.input:
        verb = "applies" if len(given) == 1 else "apply"
        raise UsageError(f"{', '.join(given)} only {verb} to --input; without --input the input "
                         f"is random numbers, which are not preprocessed")
    target = args.target or ("ncsdk1" if args.device == "ncs" else _configured_target(args))
    if args.device == "ncs" and target != "ncsdk1":
        raise UsageError("--device ncs runs NCSDK 1.x graphs only (caffe2ncs drives sticks over "
                         "the NCSDK 1.x USB link): use --target ncsdk1, or --device emulator")

    warnings: list[str] = []
    caffemodel = args.caffemodel
    if caffemodel is None:
        sibling = os.path.splitext(args.prototxt)[0] + ".caffemodel"
        if os.path.isfile(sibling):
            caffemodel = sibling
    net = load(args.prototxt, caffemodel)

    shape = input_shape_hwc(net)
    if args.input:
        from .run import load_input

        x, how = load_input(args, shape)
    else:
        x = random_input(shape, args.seed)
        how = f"random numbers in [-1, 1), seed {args.seed} (no --input given)"
    if caffemodel is None:
        weights = synthetic_weights(net, args.seed, x)
        weights_how = (f"seeded random weights (seed {args.seed}; no caffemodel given or found "
                       f"beside the prototxt)")
        warnings.append("no caffemodel: checking with seeded random weights (He-normal, "
                        "BatchNorm statistics of this input), which tests the build and the "
                        "device's arithmetic on this network, not a trained model")
    else:
        weights = None
        weights_how = caffemodel

    device, note = _choose_device(args, target)
    if note:
        warnings.append(note)
    from ..runtime.usb.options import stick_kwargs

    v = verify_network(net, weights=weights, input_hwc=x, seed=args.seed, target=target,
                       shaves=args.shaves, output=args.output_node, device=device,
                       stick_options=stick_kwargs(args))
    warnings += v.warnings
    if args.json:
        _print_json(console, args, v, how, weights_how, warnings)
    else:
        for message in warnings:
            _warn(err, message)
        _report(console, args, v, how, weights_how)
    return EXIT_OK if v.passed else EXIT_FINDINGS


def _configured_target(args) -> str:
    from ..rules.settings import settings_for

    return settings_for(args.prototxt, None, False).target


def _choose_device(args, target: str) -> tuple[str, str | None]:
    if args.device in ("emulator", "ncs"):
        return args.device, None
    if target != "ncsdk1":
        return "emulator", None
    from .run import auto_device

    return auto_device(args)


# ------------------------------------------------------------------------- output


def _pct(value: float) -> str:
    import math

    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf"
    return f"{value:.4g} %"


def _report(console, args, v, how: str, weights_how: str) -> None:
    from rich.markup import escape

    def say(text: str = "", style: str | None = None) -> None:
        text = escape(text)
        console.print(f"[{style}]{text}[/{style}]" if style else text, highlight=False)

    c = v.comparison
    n = v.expected.size
    say(f"network:  {v.network} ({args.prototxt}), compared blob {v.output!r} "
        f"({n} value{'s' if n != 1 else ''})")
    say(f"weights:  {weights_how}")
    h, w, ch = v.input_hwc.shape
    say(f"input:    {h}x{w}x{ch} (HxWxC), {how}")
    say(f"graph:    {v.target.description}, {v.shaves} SHAVE{'s' if v.shaves != 1 else ''}, "
        f"{v.stages} stages, built in memory ({v.seconds.get('build', 0) * 1000:.0f} ms)")
    timing = f"{v.seconds.get('device', 0) * 1000:.1f} ms"
    if v.stick_ms is not None:
        timing += f", stick's stage times {v.stick_ms:.2f} ms"
    say(f"result:   {v.device} ({timing})")
    say(f"expected: fp32 reference executor, Caffe's semantics "
        f"({v.seconds.get('reference', 0) * 1000:.1f} ms)")
    say()
    if v.detections:
        _report_detections(say, v, args.top)
    else:
        result_top, expected_top = v.top(args.top)
        say(f"top {len(result_top)}    result (device)             expected (fp32)")
        for rank, ((ri, rv), (ei, ev)) in enumerate(zip(result_top, expected_top), 1):
            say(f"  {rank:<5d} {ri:>7d}  {rv:<16.6g}  {ei:>7d}  {ev:<16.6g}")
        say()
    width = max(len(m.name) for m in c.metrics)
    say(f"{'check':{width}s}  {'value':>12s}  {'threshold':>10s}  result")
    for m in c.metrics:
        if m.threshold is None:
            value = f"{m.value:.6g}"
            say(f"{m.name:{width}s}  {value:>12s}  {'(none)':>10s}")
            continue
        verdict = "pass" if m.passed else "FAIL"
        say(f"{m.name:{width}s}  {_pct(m.value):>12s}  {'<= ' + _pct(m.threshold):>10s}  "
            f"{verdict}", None if m.passed else "bold red")
    if v.detections:
        say(f"(percentages of the {int(c.reference_magnitude)} expected detections; a match has "
            f"the same label, score and coordinates within 0.01)")
    else:
        say(f"(errors relative to the largest expected magnitude, {c.reference_magnitude:.6g}; "
            f"a wrong value is more than 2 % of it off)")
    if c.has_nan:
        say("the result holds NaN", "bold red")
    say()
    if v.passed:
        say(f"PASS: {v.device} and the fp32 reference agree within every threshold.",
            "bold green")
    else:
        failed = ", ".join(m.name for m in c.failed()) or "NaN in the result"
        say(f"FAIL: {failed}.", "bold red")


def _report_detections(say, v, top: int) -> None:
    from ..runtime.metrics import detection_rows

    result = detection_rows(v.result, device=True)
    expected = detection_rows(v.expected, device=False)
    say(f"detections: {len(result)} on the device, {len(expected)} expected; the first {top} "
        f"of each (label, score, xmin, ymin, xmax, ymax):")
    for name, rows in (("result", result), ("expected", expected)):
        for row in rows[:top]:
            say(f"  {name:9s} {int(row[1]):4d}  {row[2]:.4f}  " +
                "  ".join(f"{c:.4f}" for c in row[3:7]))
    say()


def _print_json(console, args, v, how: str, weights_how: str, warnings: list[str]) -> None:
    import json
    import math

    def clean(value):
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)  # "nan", "inf": JSON has no such numbers
        if isinstance(value, dict):
            return {k: clean(x) for k, x in value.items()}
        if isinstance(value, list | tuple):
            return [clean(x) for x in value]
        return value

    data = v.as_dict(args.top)
    data.update(prototxt=args.prototxt, weights=weights_how, input=how, warnings=warnings)
    console.file.write(json.dumps(clean(data), indent=2) + "\n")
