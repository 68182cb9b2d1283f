"""The long fuzz runs behind ``benchmarks/fuzz_<format>.py``.

The parent process starts a worker process that generates input after input
(``random.Random(f"{seed}:{index}")``, so any input can be regenerated from
its index) and runs it through the format's target (``tests/fuzz_support.py``).
Before each input the worker tells the parent its index; after it, the
outcome and the CPU and wall time it took.  The parent

* kills a worker whose input has not finished after ``--kill-after`` seconds
  of wall time and records a hang (restarting after it);
* records a hang for any input that took more than ``--hang`` seconds of CPU
  time (CPU, not wall: the runs are meant to go at ``nice`` priority on a busy
  machine, where wall time measures the neighbours);
* records a crash when the worker dies (a segfault, the kernel's OOM killer);
* records as a finding every exception other than ``Caffe2NcsError`` (and the
  fix engine's broken promises);
* reads the worker's peak resident memory (``VmHWM``) and fails above
  ``--max-rss-mb``; the worker also runs under an address-space limit so that
  a runaway allocation becomes a ``MemoryError`` finding instead of swapping.

Every finding is saved in ``--crash-dir`` as ``<format>-<index>.bin`` (the
input) and ``.txt`` (what happened); ``--replay FILE`` runs one saved input in
this process.  The summary printed at the end gives the counts, outcomes, the
slowest input and the peak RSS; the exit code is 1 when anything was found.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import random
import resource
import signal
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE.parent))

#: Address-space limit of the worker (a safety net; peak RSS is what is judged).
WORKER_ADDRESS_SPACE = 6 * 1024**3


def _rss_peak_kb(pid: int | None = None) -> int:
    try:
        with open(f"/proc/{pid or 'self'}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    if pid is None:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return 0


def _worker(fmt: str, seed: int, start: int, stop: int, conn, crash_dir: str,
            max_rss_mb: float) -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        resource.setrlimit(resource.RLIMIT_AS, (WORKER_ADDRESS_SPACE, WORKER_ADDRESS_SPACE))
    except (ValueError, OSError):
        pass
    import warnings

    from fuzz_support import Fuzzer

    # numpy's overflow/NaN warnings from the emulator on garbage weights are
    # expected; only exceptions count.
    warnings.simplefilter("ignore", RuntimeWarning)
    fuzzer = Fuzzer(fmt)
    over = _rss_peak_kb() / 1024 > max_rss_mb
    for i in range(start, stop):
        rnd = random.Random(f"{seed}:{i}")
        value = fuzzer.generate(rnd)
        conn.send(("start", i))
        c0, w0 = time.process_time(), time.perf_counter()
        error = None
        try:
            outcome = fuzzer.run(value)
        except BaseException as exc:  # noqa: BLE001 - every escape is a finding
            if isinstance(exc, KeyboardInterrupt):
                raise
            outcome = f"FINDING {type(exc).__name__}"
            error = traceback.format_exc()
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        rss = _rss_peak_kb()
        if not over and rss / 1024 > max_rss_mb:
            over = True  # the first input that took the peak over the limit
            outcome = "FINDING memory"
            error = (error or "") + f"memory: the worker's peak RSS rose to {rss / 1024:.0f} MB\n"
        if error is not None:
            _save(crash_dir, fmt, i, value, error)
        conn.send(("done", i, outcome, cpu, wall, rss))
    conn.send(("end", _rss_peak_kb()))
    fuzzer.close()


def _save(crash_dir: str, fmt: str, index: int, value, what: str) -> str:
    from fuzz_support import Fuzzer

    os.makedirs(crash_dir, exist_ok=True)
    base = os.path.join(crash_dir, f"{fmt}-{index}")
    with open(base + ".bin", "wb") as f:
        f.write(Fuzzer.to_bytes(value))
    if fmt == "caffemodel":
        with open(base + ".prototxt", "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(value[0])
    with open(base + ".txt", "w") as f:
        f.write(what)
    return base


def _regenerate(fmt: str, seed: int, index: int):
    from fuzz_support import Fuzzer

    fuzzer = Fuzzer(fmt)
    try:
        return fuzzer.generate(random.Random(f"{seed}:{index}"))
    finally:
        fuzzer.close()


def run(fmt: str, n: int, seed: int, crash_dir: str, hang: float, kill_after: float,
        max_rss_mb: float, progress: float) -> int:
    ctx = mp.get_context("spawn")
    workers: list = []
    # SIGTERM (a killed run) takes the worker down too, through the finally below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        return _run(ctx, workers, fmt, n, seed, crash_dir, hang, kill_after, max_rss_mb, progress)
    finally:
        for proc in workers:
            if proc.is_alive():
                proc.kill()
                proc.join()


def _run(ctx, workers, fmt, n, seed, crash_dir, hang, kill_after, max_rss_mb, progress) -> int:
    counts: Counter = Counter()
    findings: list[str] = []
    hangs: list[str] = []
    done = 0
    next_index = 0
    max_cpu = (0.0, -1)
    max_wall = (0.0, -1)
    peak_kb = 0
    jump = (0, -1)  # the largest rise of the peak RSS, and the input that caused it
    last_rss = 0  # the worker's peak RSS after the previous input
    t_start = time.perf_counter()
    last_report = t_start
    while next_index < n:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(fmt, seed, next_index, n, child, crash_dir, max_rss_mb),
                           daemon=True)
        proc.start()
        workers.append(proc)
        last_rss = 0  # a new worker: its first input sets the baseline
        child.close()
        current = None
        started_at = 0.0
        while True:
            wait = kill_after - (time.perf_counter() - started_at) if current is not None else 60.0
            ready = parent.poll(max(0.0, wait))
            peak_kb = max(peak_kb, _rss_peak_kb(proc.pid))
            if not ready:
                if current is not None and time.perf_counter() - started_at >= kill_after:
                    proc.kill()
                    proc.join()
                    base = _save(crash_dir, fmt, current, _regenerate(fmt, seed, current),
                                 f"hang: no result after {kill_after:.0f} s of wall time\n")
                    hangs.append(f"input {current}: killed after {kill_after:.0f} s ({base}.bin)")
                    counts["HANG"] += 1
                    done += 1
                    next_index = current + 1
                    break
                if not proc.is_alive():
                    break
                continue
            try:
                msg = parent.recv()
            except EOFError:
                proc.join()
                if current is not None:
                    base = _save(crash_dir, fmt, current, _regenerate(fmt, seed, current),
                                 f"crash: the worker died (exit code {proc.exitcode})\n")
                    findings.append(f"input {current}: worker died, exit code {proc.exitcode} "
                                    f"({base}.bin)")
                    counts["CRASH"] += 1
                    done += 1
                    next_index = current + 1
                break
            if msg[0] == "start":
                current, started_at = msg[1], time.perf_counter()
            elif msg[0] == "done":
                _, i, outcome, cpu, wall, rss = msg
                current = None
                done += 1
                next_index = i + 1
                if last_rss and rss - last_rss > jump[0]:
                    jump = (rss - last_rss, i)
                last_rss = rss
                peak_kb = max(peak_kb, rss)
                counts[outcome] += 1
                if outcome.startswith("FINDING"):
                    findings.append(f"input {i}: {outcome} ({crash_dir}/{fmt}-{i}.bin)")
                if cpu > max_cpu[0]:
                    max_cpu = (cpu, i)
                if wall > max_wall[0]:
                    max_wall = (wall, i)
                if cpu > hang:
                    base = _save(crash_dir, fmt, i, _regenerate(fmt, seed, i),
                                 f"hang: {cpu:.2f} s of CPU time (limit {hang} s)\n")
                    hangs.append(f"input {i}: {cpu:.2f} s CPU ({base}.bin)")
                now = time.perf_counter()
                if progress and now - last_report >= progress:
                    last_report = now
                    print(f"[{now - t_start:7.0f} s] {done}/{n} inputs, {len(findings)} finding(s), "
                          f"{len(hangs)} hang(s), max CPU {max_cpu[0]:.3f} s, "
                          f"peak RSS {peak_kb / 1024:.0f} MB", flush=True)
            elif msg[0] == "end":
                peak_kb = max(peak_kb, msg[1])
                proc.join()
                next_index = n
                break
        parent.close()
    elapsed = time.perf_counter() - t_start
    peak_mb = peak_kb / 1024
    rss_ok = peak_mb <= max_rss_mb
    print(f"fuzz {fmt}: seed {seed}, {done} inputs in {elapsed:.0f} s "
          f"({done / max(elapsed, 1e-9):.0f}/s)")
    print(f"outcomes   {' '.join(f'{k}={v}' for k, v in counts.most_common())}")
    print(f"findings   {len(findings)} (exceptions other than Caffe2NcsError, broken fix "
          f"promises, worker crashes)")
    for line in findings[:20]:
        print(f"  {line}")
    print(f"hangs      {len(hangs)} (over {hang} s CPU, or no answer in {kill_after:.0f} s)")
    for line in hangs[:20]:
        print(f"  {line}")
    print(f"max time   {max_cpu[0]:.3f} s CPU (input {max_cpu[1]}), "
          f"{max_wall[0]:.3f} s wall (input {max_wall[1]})")
    print(f"peak RSS   {peak_mb:.0f} MB of the worker (limit {max_rss_mb:.0f} MB): "
          f"{'ok' if rss_ok else 'OVER'}; largest rise +{jump[0] / 1024:.0f} MB (input {jump[1]})")
    ok = not findings and not hangs and rss_ok
    print("result     " + ("PASS" if ok else "FAIL") + (f" (inputs saved in {crash_dir})"
                                                       if not ok else ""))
    return 0 if ok else 1


def replay(fmt: str, path: str) -> int:
    from fuzz_support import Fuzzer

    data = Path(path).read_bytes()
    fuzzer = Fuzzer(fmt)
    if fmt == "caffemodel":
        text = Path(path).with_suffix(".prototxt").read_text(encoding="utf-8",
                                                             errors="surrogateescape")
        value = (text, data)
    elif fmt in ("ncsdk1", "ncsdk2"):
        value = data
    elif fmt == "fix":
        value = (data.decode("utf-8", errors="surrogateescape"), False)
    else:
        value = data.decode("utf-8", errors="surrogateescape")
    c0 = time.process_time()
    outcome = fuzzer.run(value)
    if fmt == "fix":
        outcome += ", " + fuzzer.run((value[0], True))
    print(f"{path}: {outcome} in {time.process_time() - c0:.3f} s CPU, "
          f"peak RSS {_rss_peak_kb() / 1024:.0f} MB")
    return 0


def main(fmt: str, argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=f"Fuzz caffe2ncs's {fmt} handling "
                                     "(see benchmarks/fuzzrun.py).")
    parser.add_argument("-n", "--inputs", type=int, default=100_000,
                        help="inputs to run (default 100000)")
    parser.add_argument("--seed", type=int, default=1, help="generator seed (default 1)")
    parser.add_argument("--crash-dir", default=f"fuzz-findings-{fmt}",
                        help="where to save findings (default fuzz-findings-<format>)")
    parser.add_argument("--hang", type=float, default=5.0,
                        help="CPU seconds per input counted as a hang (default 5)")
    parser.add_argument("--kill-after", type=float, default=60.0,
                        help="wall seconds after which a stuck input is killed (default 60)")
    parser.add_argument("--max-rss-mb", type=float, default=1024.0,
                        help="peak worker RSS that fails the run (default 1024 MB)")
    parser.add_argument("--progress", type=float, default=300.0,
                        help="seconds between progress lines (0: none; default 300)")
    parser.add_argument("--replay", metavar="FILE", help="run one saved input here and exit")
    args = parser.parse_args(argv)
    if args.replay:
        return replay(fmt, args.replay)
    return run(fmt, args.inputs, args.seed, args.crash_dir, args.hang, args.kill_after,
               args.max_rss_mb, args.progress)
