"""make bench: safecode's latency and throughput beside a raw `docker run` with the same flags, in one run.

Samples are interleaved (ours, raw, ours, raw, ...) so that a noisy machine slows both alike; compare the
ratios, not the absolute numbers.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from safecode import Sandbox, build_args, engine  # noqa: E402
from safecode.container import UID_BASE  # noqa: E402

CODE = "print(2+2)"


def raw_runner(sandbox, code_dir):
    """A plain `docker run --rm` with exactly safecode's flags: the floor we are measured against."""
    counter = iter(range(10**9))

    def run():
        name = f"safecode-bench-raw-{os.getpid()}-{next(counter)}"
        argv = build_args(code_dir, name=name, uid=UID_BASE + 1, limits=sandbox.limits, image=sandbox.image)
        proc = subprocess.run(argv, capture_output=True, timeout=60)
        assert proc.stdout == b"4\n", proc.stderr

    return run


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def throughput(function, runs, workers):
    start = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: function(), range(runs)))
    return runs / (time.perf_counter() - start)


def refilled(sandbox, wait=30):
    """Wait until the sandbox's pool is full again."""
    deadline = time.monotonic() + wait
    while sandbox.stats()["ready"] < sandbox.warm and time.monotonic() < deadline:
        time.sleep(0.01)


def idle_memory(sandbox):
    """What `docker stats` says each idle ready container of a full pool uses (median)."""
    refilled(sandbox)
    time.sleep(1)
    names = engine.ours()
    proc = engine.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", *names)
    usages = sorted(line.split("/")[0].strip() for line in proc.stdout.splitlines() if line.strip())
    return usages[len(usages) // 2] if usages else "unknown"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=30, help="latency samples of each (default 30)")
    parser.add_argument("--runs", type=int, default=24, help="runs per throughput round (default 24)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved throughput rounds (default 2)")
    args = parser.parse_args()

    sandbox = Sandbox()
    warm = Sandbox(warm=4)

    def runner(box):
        def run():
            result = box.execute(CODE)
            assert result.stdout == "4\n", result

        return run

    with tempfile.TemporaryDirectory(prefix="safecode-bench-") as code_dir:
        os.chmod(code_dir, 0o755)
        with open(os.path.join(code_dir, "main.py"), "w") as file:
            file.write(CODE)
        os.chmod(file.name, 0o644)
        contenders = {
            "safecode warm": runner(warm),
            "safecode cold": runner(sandbox),
            "raw docker run": raw_runner(sandbox, code_dir),
        }

        for function in contenders.values():  # warm the page cache and the daemon
            function()
        latency = {name: [] for name in contenders}
        for _ in range(args.samples):
            for name, function in contenders.items():
                refilled(warm)  # the pool's own starts must not slow whoever is timed next
                latency[name].append(timed(function))
        rate = {name: [] for name in contenders}
        for _ in range(args.rounds):
            for name, function in contenders.items():
                refilled(warm)
                rate[name].append(throughput(function, args.runs, 4))

    idle = idle_memory(warm)
    stats = warm.stats()
    warm.close()

    raw = "raw docker run"
    raw_median = statistics.median(latency[raw])
    raw_rate = statistics.median(rate[raw])
    print(f"print(2+2), {args.samples} interleaved samples each; {args.rounds}x{args.runs} runs at concurrency 4")
    print(f"{'':16} {'median ms':>10} {'p90 ms':>8} {'vs raw':>7} {'runs/s @4':>10} {'vs raw':>7}")
    for name in contenders:
        median = statistics.median(latency[name])
        per_second = statistics.median(rate[name])
        print(
            f"{name:16} {median * 1000:10.1f} {percentile(latency[name], 0.9) * 1000:8.1f} "
            f"{median / raw_median:7.2f} {per_second:10.2f} {per_second / raw_rate:7.2f}"
        )
    print(f"warm runs served by a pooled container: {stats['warm']}, by a cold fallback: {stats['cold']}")
    print(f"memory of one idle ready container: {idle}")


if __name__ == "__main__":
    main()
