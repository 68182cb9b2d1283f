"""Benchmark: ``caffe2ncs build`` on VGG-16 with a full-size (528 MB) caffemodel.

Writes a VGG-16 deploy prototxt (configuration D, batch 1, ``input_shape``)
and a caffemodel of seeded random weights once, under ``benchmarks/out/``
(git-ignored; reused on later runs), then runs ``caffe2ncs build`` on them in
a subprocess, timing it and reading the child's peak resident set size.

    python benchmarks/build_vgg16.py [--target ncsdk1|ncsdk2] [--runs N]

Targets: at most 10 s and 1.5 GB peak RSS (which counts the caffemodel's pages
the build maps and reads).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
OUT = HERE / "out"
TIME_LIMIT_S = 10.0
RSS_LIMIT_BYTES = 1.5e9

#: (block, convolutions, channels) of VGG-16 configuration D.
BLOCKS = ((1, 2, 64), (2, 2, 128), (3, 3, 256), (4, 3, 512), (5, 3, 512))


def vgg16_prototxt() -> str:
    lines = ['name: "VGG_ILSVRC_16_layers"', 'input: "data"',
             "input_shape { dim: 1 dim: 3 dim: 224 dim: 224 }"]
    bottom = "data"

    def add(text: str) -> None:
        lines.append(text)

    for block, convs, channels in BLOCKS:
        for i in range(1, convs + 1):
            name = f"conv{block}_{i}"
            add(f'layer {{ name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}"\n'
                f"  convolution_param {{ num_output: {channels} pad: 1 kernel_size: 3 }} }}")
            add(f'layer {{ name: "relu{block}_{i}" type: "ReLU" bottom: "{name}" top: "{name}" }}')
            bottom = name
        add(f'layer {{ name: "pool{block}" type: "Pooling" bottom: "{bottom}" top: "pool{block}"\n'
            "  pooling_param { pool: MAX kernel_size: 2 stride: 2 } }")
        bottom = f"pool{block}"
    for name, n in (("fc6", 4096), ("fc7", 4096), ("fc8", 1000)):
        add(f'layer {{ name: "{name}" type: "InnerProduct" bottom: "{bottom}" top: "{name}"\n'
            f"  inner_product_param {{ num_output: {n} }} }}")
        bottom = name
        if name != "fc8":
            add(f'layer {{ name: "relu{name[2:]}" type: "ReLU" bottom: "{name}" top: "{name}" }}')
            add(f'layer {{ name: "drop{name[2:]}" type: "Dropout" bottom: "{name}" top: "{name}"\n'
                "  dropout_param { dropout_ratio: 0.5 } }")
    add('layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }')
    return "\n".join(lines) + "\n"


def prepare() -> tuple[Path, Path]:
    """The prototxt and caffemodel, written on first use."""
    OUT.mkdir(parents=True, exist_ok=True)
    prototxt = OUT / "vgg16.prototxt"
    text = vgg16_prototxt()
    if not prototxt.exists() or prototxt.read_text() != text:
        prototxt.write_text(text)
    model = OUT / "vgg16.caffemodel"
    if not model.exists() or model.stat().st_mtime < prototxt.stat().st_mtime:
        from caffe2ncs.model.loader import load
        from caffe2ncs.model.weights import save_caffemodel

        print(f"writing {model} (random weights, seed 0) ...", flush=True)
        t = time.perf_counter()
        save_caffemodel(load(prototxt), model, seed=0)
        print(f"  {model.stat().st_size / 1e6:.0f} MB in {time.perf_counter() - t:.1f} s",
              flush=True)
    return prototxt, model


def run_build(prototxt: Path, model: Path, target: str) -> tuple[float, int, str]:
    """(seconds, peak RSS in bytes, stdout) of one ``caffe2ncs build`` in a fresh process.

    Each run is a grandchild measured through a small wrapper process, so that
    RUSAGE_CHILDREN holds exactly that build's peak."""
    graph = OUT / f"vgg16.{target}.graph"
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "dt = time.perf_counter() - t\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024\n"
        "sys.stdout.write(f'{dt} {rss} {r.returncode}\\n' + r.stdout + r.stderr)\n"
    )
    cmd = [sys.executable, "-c", code, sys.executable, "-m", "caffe2ncs", "build",
           str(prototxt), str(model), "-o", str(graph), "--target", target]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    head, _, rest = out.partition("\n")
    seconds, rss, rc = head.split()
    if rc != "0":
        raise SystemExit(f"caffe2ncs build failed (exit {rc}):\n{rest}")
    return float(seconds), int(rss), rest.strip()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("ncsdk1", "ncsdk2"), default="ncsdk2")
    parser.add_argument("--runs", type=int, default=1, help="builds to time (the best counts)")
    args = parser.parse_args(argv)
    prototxt, model = prepare()
    # warm the page cache so that the timing measures caffe2ncs, not the disk
    with open(model, "rb") as f:
        while f.read(1 << 24):
            pass
    results = [run_build(prototxt, model, args.target) for _ in range(max(1, args.runs))]
    seconds = min(r[0] for r in results)
    rss = max(r[1] for r in results)
    print(results[-1][2])
    print(f"caffe2ncs build vgg16 ({model.stat().st_size / 1e6:.0f} MB caffemodel, "
          f"{args.target}): {seconds:.2f} s (target <= {TIME_LIMIT_S:.0f} s), "
          f"peak RSS {rss / 1e9:.2f} GB (target <= {RSS_LIMIT_BYTES / 1e9:.1f} GB)")
    ok = seconds <= TIME_LIMIT_S and rss <= RSS_LIMIT_BYTES
    print("OK" if ok else "OVER TARGET")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
