#!/usr/bin/env python3
"""Write ``docs/compatibility.md``: for every corpus network, what ``check``
finds, whether it builds for each NCSDK generation, and whether the built
graph computes what the network computes.

For each ``shared/corpus/*.prototxt`` (read in place, never copied):

* **findings**: ``caffe2ncs check`` with the default settings for the target
  (NCSDK 2.x; the 1.x column uses its own findings), counted by severity and
  by code;
* **builds**: what ``caffe2ncs build --target T`` does: refused when the checks
  for T report an error (the first error codes are shown), else lowered and
  encoded (seeded random weights);
* **verify**: the NCSDK 2.x graph run in caffe2ncs's fp16 device emulator
  against the fp32 reference executor (``caffe2ncs.runtime.reference``) on the
  same seeded random weights and a seeded random input in [0, 1), judged with
  mvNCCheck's metrics and thresholds (``caffe2ncs.runtime.metrics.compare``).
  ``caffe2ncs verify`` (not on main when this script was written) makes the
  same comparison; the column says which was used.

    python scripts/compatibility.py                  # rewrite docs/compatibility.md
    python scripts/compatibility.py --no-verify      # findings and builds only (fast)
    python scripts/compatibility.py --output FILE

It takes several minutes (the emulator and the reference run every network).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))

SEED = 1


def find_corpus() -> Path:
    env = os.environ.get("CAFFE2NCS_CORPUS")
    if env:
        return Path(env)
    for parent in REPO.parents:
        if (parent / "shared" / "corpus").is_dir():
            return parent / "shared" / "corpus"
    return REPO.parent / "shared" / "corpus"


def findings(path: Path, target: str):
    from caffe2ncs.rules.base import Severity
    from caffe2ncs.rules.runner import check_path
    from caffe2ncs.rules.settings import Settings

    report = check_path(str(path), Settings().with_cli(target=target))
    if report.error is not None:
        return None, report.error
    diags = report.diagnostics
    errors = [d for d in diags if d.severity >= Severity.ERROR or d.fatal]
    warnings = [d for d in diags if d.severity == Severity.WARNING and not d.fatal]
    return (errors, warnings, diags), None


def codes(diags) -> str:
    counts = Counter(d.code for d in diags)
    return ", ".join(f"{c}×{n}" if n > 1 else c for c, n in sorted(counts.items()))


def build(path: Path, target: str, result) -> tuple[str, object]:
    """What ``build --target T`` does: ('yes ...' | 'after fix ...' | 'no: ...',
    (net, Lowered) or None).  When the checks report errors, the safe fixes of
    ``caffe2ncs fix`` are applied (in memory) and the result checked again."""
    from caffe2ncs.errors import Caffe2NcsError
    from caffe2ncs.fixes.engine import fix_text
    from caffe2ncs.lowering.emit import graph_bytes
    from caffe2ncs.lowering.lower import lower_network
    from caffe2ncs.model import loads
    from caffe2ncs.model.weights import synthesize
    from caffe2ncs.rules.base import Severity
    from caffe2ncs.rules.settings import Settings

    if result is None:
        return "no: unreadable", None
    text = path.read_text(encoding="utf-8", errors="surrogateescape")
    errors = result[0]
    how = "yes"
    if errors:
        fixed = fix_text(text, str(path), Settings().with_cli(target=target))
        left = [d for d in fixed.remaining if d.severity >= Severity.ERROR or d.fatal]
        if left:
            shown = list(dict.fromkeys(d.code for d in left))
            return "no: " + ", ".join(shown[:3]) + (" …" if len(shown) > 3 else ""), None
        text, how = fixed.text, "after `fix`"
    try:
        net = loads(text, path=str(path))
        lowered = lower_network(net, target=target, weights=synthesize(net, SEED))
        size = len(graph_bytes(lowered.graph, target))
    except Caffe2NcsError as err:
        return f"no: {err.message[:70]}", None
    return f"{how} ({len(lowered.graph.stages)} stages, {size / 2**20:.1f} MiB)", (net, lowered)


def verify(built) -> str:
    """The emulator against the reference, with mvNCCheck's metrics."""
    import numpy as np

    from caffe2ncs.errors import Caffe2NcsError
    from caffe2ncs.model.weights import synthesize
    from caffe2ncs.runtime import reference
    from caffe2ncs.runtime.emulator import Emulator, output_hwc
    from caffe2ncs.runtime.metrics import compare

    net, lowered = built
    if lowered.input is None or len(net.inputs) != 1:
        return "n/a (not one input)"
    if any(layer.type == "DetectionOutput" and lowered.output in layer.tops for layer in net.layers):
        # the device returns a count row then keep_top_k rows, Caffe only the
        # detections; with random weights the detections are noise anyway
        return "n/a (DetectionOutput)"
    spec = next(s for s in net.inputs if s.name == lowered.input)
    rng = np.random.default_rng(SEED)
    x = rng.random((1, *spec.shape[1:]), dtype=np.float32)
    try:
        weights = synthesize(net, SEED)
        expected = reference.run(net, {spec.name: x}, weights, outputs=[lowered.output])
        emu = Emulator(lowered.graph)
        chw = x[0]
        hwc = np.transpose(chw, (1, 2, 0)) if chw.ndim == 3 else chw.reshape(emu.input_shape)
        got = output_hwc(lowered.graph, emu.run(hwc)).astype(np.float32)
    except Caffe2NcsError as err:
        return f"not run: {err.message[:60]}"
    want = expected[lowered.output][0]
    want = np.transpose(want, (1, 2, 0)) if want.ndim == 3 else want.reshape(got.shape)
    if want.size != got.size:
        return f"not compared: shapes {got.shape} vs {want.shape}"
    result = compare(got.reshape(-1), want.reshape(-1))
    worst = max((m for m in result.metrics if m.threshold is not None),
                key=lambda m: m.value / m.threshold if m.threshold else m.value)
    verdict = "pass" if result.passed else "FAIL"
    note = ""
    if result.has_nan:
        # Is it the network (on these weights), not the emulator? fp16 tops out at 65504.
        values = reference.run(net, {spec.name: x}, weights, keep_all=True)
        peak = max(float(np.abs(v).max()) for v in values.values() if v.size)
        if peak > 65504:
            note = (f"; the fp32 reference itself reaches {peak:.2g}, beyond fp16's 65504, "
                    "with these random weights")
    return f"{verdict} ({worst.name.lower()} {worst.value:.2g}%{note})"


HEADER = """# Compatibility of the corpus networks

The table users look at first: for each real-world deploy prototxt of the
corpus (`shared/corpus/`, {count} networks), what `caffe2ncs check` finds, whether
`caffe2ncs build` makes a graph for NCSDK 2.x and 1.x, and whether that graph,
run in caffe2ncs's fp16 emulator of the stick, computes what the network
computes.

Generated by `python scripts/compatibility.py` ({when}); do not edit by hand.

* **Errors / warnings / codes**: `caffe2ncs check --target ncsdk2` (default
  settings); `rule CODE` explains each code.
* **ncsdk2 / ncsdk1**: `build --target T` with seeded random weights: *yes*
  (with the stage count and the file size) when it builds as it is; *after
  `fix`* when the checks report errors that `caffe2ncs fix` (safe fixes)
  repairs and the fixed file builds; else *no* with the codes of the errors
  left (that make `build` refuse without `--force`), or the reason lowering
  gave.
* **verify**: {verify_how}
"""

VERIFY_HOW = ("the NCSDK 2.x graph run in the fp16 emulator against the fp32 reference "
              "executor, same seeded random weights, a seeded random input in [0, 1), "
              "judged with mvNCCheck's metrics and thresholds "
              "(`caffe2ncs.runtime.metrics.compare`: pass when every metric is under its "
              "threshold); the worst metric relative to its threshold is shown. "
              "`caffe2ncs verify` was not available when this was generated, so the "
              "script makes this comparison itself.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=REPO / "docs" / "compatibility.md")
    parser.add_argument("--no-verify", action="store_true", help="leave the verify column out")
    parser.add_argument("--corpus", type=Path, default=None)
    args = parser.parse_args(argv)
    corpus = args.corpus or find_corpus()
    files = sorted(corpus.glob("*.prototxt"))
    if not files:
        print(f"error: no corpus at {corpus}", file=sys.stderr)
        return 2
    rows = []
    totals = Counter()
    start = time.perf_counter()
    for path in files:
        t0 = time.perf_counter()
        f2, err2 = findings(path, "ncsdk2")
        f1, _ = findings(path, "ncsdk1")
        if f2 is None:
            row = [path.name, "–", "–", f"unreadable: {err2.message[:50]}", "no", "no", "–"]
            rows.append(row)
            continue
        b2, built2 = build(path, "ncsdk2", f2)
        b1, _ = build(path, "ncsdk1", f1)
        v = "–" if args.no_verify else (verify(built2) if built2 is not None else "–")
        errors, warnings, diags = f2
        rows.append([path.name, str(len(errors)), str(len(warnings)), codes(diags) or "–",
                     b2, b1, v])
        totals["ncsdk2"] += not b2.startswith("no")
        totals["ncsdk1"] += not b1.startswith("no")
        totals["ncsdk2 as is"] += b2.startswith("yes")
        totals["clean"] += not errors
        totals["pass"] += v.startswith("pass")
        print(f"{path.name:45s} {time.perf_counter() - t0:6.1f} s  {b2[:20]:20s} {b1[:20]:20s} {v}",
              file=sys.stderr, flush=True)
    cols = ["Network", "Errors", "Warnings", "Codes", "ncsdk2", "ncsdk1"]
    if not args.no_verify:
        cols.append("verify (emulator vs fp32)")
    lines = [HEADER.format(count=len(files), when=time.strftime("%Y-%m-%d"),
                           verify_how=VERIFY_HOW if not args.no_verify else "not run (--no-verify)")]
    lines.append(f"Summary: {totals['clean']} of {len(files)} networks without errors; "
                 f"{totals['ncsdk2']} build for NCSDK 2.x ({totals['ncsdk2 as is']} as they are, the "
                 f"others after `caffe2ncs fix`), {totals['ncsdk1']} for NCSDK 1.x"
                 + ("" if args.no_verify else f"; {totals['pass']} pass verify") + ".\n")
    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for row in rows:
        cells = row[:len(cols)]
        cells[0] = f"`{cells[0]}`"
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    args.output.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.output} ({len(files)} networks, {time.perf_counter() - start:.0f} s)",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
