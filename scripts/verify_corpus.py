"""Verify every corpus network on the fp16 emulator and write the results table
``docs/verify-results.md``.

    .venv/bin/python scripts/verify_corpus.py            # rewrite the table
    .venv/bin/python scripts/verify_corpus.py --check    # exit 1 if it is stale
    .venv/bin/python scripts/verify_corpus.py resnet50   # print some networks' rows

For each corpus prototxt (``shared/corpus``, read in place): the network as it
is or, when that does not build, after ``caffe2ncs fix --unsafe-fixes`` (in
memory); seeded random weights (:func:`caffe2ncs.runtime.verify.synthetic_weights`:
He-normal, BatchNorm statistics of the layers' real inputs); a seeded random
input in [-1, 1), as mvNCCheck's default; built for NCSDK 2.x with 12 SHAVEs
and compared by :func:`caffe2ncs.runtime.verify.verify_network` -- the
network's output and the blobs :func:`blobs_to_compare` adds.

A failed threshold goes into the table only with evidence that it is an effect
of fp16 arithmetic, computed here (:func:`explain`); ``tests/test_verify_corpus.py``
re-runs every network and fails when a result differs from the table or a
failure is unexplained.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TABLE = REPO / "docs" / "verify-results.md"
sys.path.insert(0, str(REPO / "tests"))

# conftest pins BLAS to one thread before numpy loads, as in the test that
# re-checks this table: the thread count changes the order of the sums, and
# so some fp16 roundings
from conftest import CORPUS, corpus_files  # noqa: E402

import numpy as np  # noqa: E402

WEIGHT_SEED = 1
INPUT_SEED = 0
TARGET = "ncsdk2"
SHAVES = 12
#: "built" column values
AS_IS, FIXED = "as is", "after fix"


@dataclass(frozen=True)
class Check:
    """One compared blob of one network."""

    blob: str
    kind: str  # "values" or "detections"
    #: (metric name, value in percent, passed) for the four thresholds
    metrics: tuple[tuple[str, float, bool], ...]
    #: why a threshold fails, and whether that is shown to be an fp16 effect
    why: str = ""
    explained: bool = True

    @property
    def passed(self) -> bool:
        return all(ok for _, _, ok in self.metrics)

    @property
    def failed(self) -> tuple[str, ...]:
        return tuple(name for name, _, ok in self.metrics if not ok)


@dataclass(frozen=True)
class Outcome:
    network: str
    built: str  # AS_IS, FIXED, or "no"
    reason: str = ""  # why it does not build
    checks: tuple[Check, ...] = ()


# ------------------------------------------------------------------------ running


def candidates(path: Path):
    """``(net, how)`` for the network as it is, then after the unsafe fixes,
    when it loads and the first passes of the lowering accept it; and the last
    refusal (what still blocks it after the fixes)."""
    from caffe2ncs.errors import Caffe2NcsError
    from caffe2ncs.fixes.engine import fix_text
    from caffe2ncs.lowering.netgraph import build
    from caffe2ncs.model.loader import loads
    from caffe2ncs.rules.settings import Settings

    text = path.read_text(encoding="utf-8", errors="replace")
    found, error = [], None
    for how in (AS_IS, FIXED):
        if how == FIXED:
            text = fix_text(text, str(path), Settings(unsafe_fixes=True), unsafe=True).text
        try:
            net = loads(text, path=str(path))
            build(net, None, any_batch=True)  # the cheap part of the lowering's refusals
            found.append((net, how))
        except Caffe2NcsError as err:
            error = err
    return found, error


def _message(err) -> str:
    text = " ".join(getattr(err, "message", str(err)).split())
    return text if len(text) <= 160 else text[:157] + "..."


def fingerprint(net) -> str:
    """A digest of everything the verification of ``net`` depends on: its
    inputs' and blobs' shapes for one image, and every layer's definition.
    Corpus networks with the same fingerprint (the same network saved with
    another batch size or in the old layer format) verify alike."""
    import hashlib

    from caffe2ncs.model.frozen import unwrap

    digest = hashlib.sha256()
    for spec in net.inputs:
        digest.update(repr((spec.name, tuple(spec.shape or ())[1:])).encode())
    for layer in net.layers:
        digest.update(unwrap(layer.param).SerializeToString(deterministic=True))
        shapes = net.layer_shapes[layer.index]
        for shape in (*shapes.inputs, *shapes.outputs):
            digest.update(repr(tuple(shape or ())[1:]).encode())
    return digest.hexdigest()


def blobs_to_compare(net) -> list[str | None]:
    """The network's output (None: verify's default); for a Softmax output
    also its input, the logits (the errors of a few large probabilities are a
    noisy summary of the device's accuracy); for a DetectionOutput its three
    inputs (the list of boxes says little about the numbers behind them)."""
    blobs: list[str | None] = [None]
    producers = net.producers(net.outputs[0]) if net.outputs else []
    if producers and producers[-1].type in ("Softmax", "DetectionOutput"):
        blobs += [b for b in producers[-1].bottoms if not net.is_input(b)]
    return blobs


def run_network(path: Path):
    """``(outcome, net, weights, input, verifications)`` for one corpus file."""
    from caffe2ncs.errors import UnsupportedNetworkError
    from caffe2ncs.runtime.verify import (
        input_shape_hwc,
        random_input,
        synthetic_weights,
        verify_network,
    )

    found, error = candidates(path)
    for net, how in found:
        x = random_input(input_shape_hwc(net), INPUT_SEED)
        weights = synthetic_weights(net, WEIGHT_SEED, x)
        try:
            runs = [verify_network(net, weights=weights, input_hwc=x, target=TARGET,
                                   shaves=SHAVES, output=blob) for blob in blobs_to_compare(net)]
        except UnsupportedNetworkError as err:  # refused by a later pass of the lowering
            error = err
            continue
        checks = tuple(check_of(v, runs) for v in runs)
        return Outcome(path.stem, how, "", checks), net, weights, x, runs
    return Outcome(path.stem, "no", _message(error)), None, None, None, []


def outcome(path: Path) -> Outcome:
    return run_network(path)[0]


def check_of(v, runs) -> Check:
    metrics = tuple((m.name, m.value, m.passed) for m in v.comparison.metrics
                    if m.threshold is not None)
    if v.comparison.has_nan:
        metrics = tuple((name, value, False) for name, value, _ in metrics)
    kind = "detections" if v.detections else "values"
    if v.passed:
        return Check(v.output, kind, metrics)
    explained, why = explain(v, runs)
    return Check(v.output, kind, metrics, why, explained)


# ----------------------------------------------------------------------- evidence


def explain(v, runs) -> tuple[bool, str]:
    """Why ``v`` fails a threshold, and whether that is shown to be an effect of
    fp16 arithmetic rather than of a lowering or emulator bug."""
    if v.detections:
        return explain_detections(v)
    result, expected = v.result, v.expected
    if not np.all(np.isfinite(result)) and np.all(np.abs(expected) < 65504):
        return False, "the device output has inf/NaN where the reference is finite"
    if np.any(np.abs(expected) >= 65504):
        return True, ("fp16 overflow: the expected output reaches "
                      f"{float(np.max(np.abs(expected))):.3g}, beyond fp16's 65504")
    return False, "unexplained numerical difference"


def explain_detections(v) -> tuple[bool, str]:
    """A detection check failing on order: show that every detection the device
    lists out of place has an expected score closer to another matched
    detection's than the device's own score error -- a near-tie that fp16
    scores cannot resolve, not a wrong box."""
    from caffe2ncs.runtime.metrics import (
        detection_rows,
        match_detections,
        out_of_place,
        result_order,
    )

    a = detection_rows(v.result, device=True)
    b = detection_rows(v.expected, device=False)
    pairs, _ = match_detections(a, b)
    failed = {m.name for m in v.comparison.failed()}
    reasons, explained = [], True
    if pairs:
        score_error = max(abs(a[j, 2] - b[i, 2]) for i, j in pairs)
        spacing = float(np.spacing(np.float16(max(abs(b[i, 2]) for i, _ in pairs))))
    else:
        score_error = spacing = 0.0
    if "Out-of-order detections" in failed:
        sequence = result_order(a, pairs)
        moved = out_of_place(sequence)
        gaps = []
        for p in moved:
            i = sequence[p]
            same = [k for k, _ in pairs if k != i and b[k, 1] == b[i, 1]]
            gaps.append(min((abs(b[i, 2] - b[k, 2]) for k in same), default=math.inf))
        widest = max(gaps, default=0.0)
        ok = widest <= score_error
        explained &= ok
        reasons.append(
            f"out of order: {len(moved)} of {len(pairs)} matched detections; each one's "
            f"expected score is within {widest:.2g} of another detection's (largest gap), "
            f"{'below' if ok else 'ABOVE'} the device's score error {score_error:.2g} "
            f"(fp16 spacing at the top score: {spacing:.2g}): near-ties fp16 scores cannot order")
    for name in failed - {"Out-of-order detections"}:
        explained = False
        reasons.append(f"{name}: no fp16 explanation computed")
    return explained, "; ".join(reasons)


# --------------------------------------------------------------------------- table

HEADER = """\
# `caffe2ncs verify` on the corpus

Generated by `scripts/verify_corpus.py`; do not edit by hand.  Run it again
after a change to the lowering, the emulator or the reference:
`tests/test_verify_corpus.py` re-runs every network and fails when a row no
longer holds.

Every corpus network that builds -- as it is, or else after
`caffe2ncs fix --unsafe-fixes` -- is built for NCSDK 2.x with 12 SHAVEs, run
on the fp16 emulator and compared with the fp32 reference executor, as
`caffe2ncs verify` does.  Compared: the network's output; for a Softmax output
also its input (the logits); for an SSD network, whose output is a list of
boxes, also the three inputs of its DetectionOutput.  Weights: seeded random
(seed {weight_seed}), He-normal for convolutions and fully-connected layers,
BatchNorm statistics measured on the layers' real inputs
(`caffe2ncs.runtime.verify.synthetic_weights`).  Input: uniform in [-1, 1)
(seed {input_seed}), rounded to fp16, the same for both sides.  The test also
checks that the reference equals OpenCV's `cv2.dnn` forward of the same
prototxt and weights on the same input, to 1e-4 of the largest value.

For `values` rows the four metric columns are mvNCCheck's, in percent of the
largest expected magnitude: max error (pass if ≤ 2), mean error (≤ 1), wrong
values, i.e. more than 2 % off (must be 0), and L2 error (≤ 1).  For
`detections` rows: detection count difference (≤ 2), unmatched detections
(≤ 2), detections out of order (≤ 10) and multiple matches (≤ 10), where a
match has the same label and a score and coordinates within 0.01
(`caffe2ncs.runtime.metrics.compare_detections`).  A failing value is marked
✗, and a failure is listed only with evidence, computed by the script, that
fp16 arithmetic causes it (the "why" column).

The values are one sample of the device's rounding noise: another BLAS (or
another thread count) sums in another order, which moves some fp16 roundings
by one unit, and the errors of a few large probabilities then change by up to
an order of magnitude (measured: 8x between one and two BLAS threads on
ResNet-152's `prob`); the logits' errors move by less than 1.5x.

"""


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf"
    if value == 0:
        return "0"
    return f"{value:.3g}"


def render(outcomes: list[Outcome]) -> str:
    lines = [HEADER.format(weight_seed=WEIGHT_SEED, input_seed=INPUT_SEED)]
    built = [o for o in outcomes if o.built != "no"]
    failing = [o for o in built if not all(c.passed for c in o.checks)]
    lines.append(f"{len(outcomes)} networks; {len(built)} build; "
                 f"{len(built) - len(failing)} pass every check.\n")
    lines.append("| network | built | blob | check | max / count | mean / unmatched "
                 "| wrong / order | L2 / multiple | result | why |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    for o in built:
        for c in o.checks:
            cells = [f"{_fmt(v)}{'' if ok else ' ✗'}" for _, v, ok in c.metrics]
            result = "pass" if c.passed else "FAIL: " + ", ".join(c.failed)
            lines.append(f"| {o.network} | {o.built} | `{c.blob}` | {c.kind} | "
                         f"{' | '.join(cells)} | {result} | {_cell(c.why)} |")
    lines.append("\n## Networks that do not build\n")
    lines.append("| network | why (the lowering's message) |")
    lines.append("|---|---|")
    for o in outcomes:
        if o.built == "no":
            lines.append(f"| {o.network} | {_cell(o.reason)} |")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


@dataclass(frozen=True)
class Row:
    """One check row of the table, as parsed back."""

    network: str
    built: str
    blob: str
    kind: str
    values: tuple[float, ...]
    failed: tuple[str, ...]


def parse(text: str) -> tuple[dict[str, list[Row]], dict[str, str]]:
    """The table's check rows per network, and the non-building networks' reasons."""
    rows: dict[str, list[Row]] = {}
    refused: dict[str, str] = {}
    for line in text.splitlines():
        if not line.startswith("| ") or line.startswith(("| network", "|---")):
            continue
        cells = [c.strip().replace("\\|", "|") for c in _split(line)]
        if len(cells) == 2:
            refused[cells[0]] = cells[1]
            continue
        network, built, blob, kind, *values, result, _why = cells
        failed = tuple(result.removeprefix("FAIL: ").split(", ")) if result != "pass" else ()
        numbers = tuple(float(v.replace(" ✗", "")) for v in values)
        rows.setdefault(network, []).append(Row(network, built, blob.strip("`"), kind, numbers,
                                                failed))
    return rows, refused


def _split(line: str) -> list[str]:
    cells, current, i = [], "", 1
    while i < len(line):
        if line[i] == "\\" and line[i + 1:i + 2] == "|":
            current += "\\|"
            i += 2
            continue
        if line[i] == "|":
            cells.append(current)
            current = ""
        else:
            current += line[i]
        i += 1
    return cells


# ---------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("networks", nargs="*", help="corpus names (default: all, and write "
                                                     "the table)")
    parser.add_argument("--check", action="store_true",
                        help="compare with the table instead of writing it; exit 1 if stale")
    args = parser.parse_args(argv)
    files = corpus_files()
    if not files:
        print(f"corpus not found at {CORPUS}", file=sys.stderr)
        return 2
    if args.networks:
        files = [f for f in files if f.stem in args.networks]
    outcomes = []
    for path in files:
        o = outcome(path)
        outcomes.append(o)
        status = o.built if o.built == "no" else (
            "pass" if all(c.passed for c in o.checks) else "FAIL")
        print(f"{o.network:40s} {status}", file=sys.stderr, flush=True)
    text = render(outcomes)
    if args.networks:
        print(text)
        return 0
    if args.check:
        fresh = TABLE.is_file() and TABLE.read_text(encoding="utf-8") == text
        print("docs/verify-results.md is " + ("up to date" if fresh else "stale"))
        return 0 if fresh else 1
    TABLE.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
