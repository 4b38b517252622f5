"""make bench: safecode's latency and throughput beside a raw `docker run` with the same flags, in one run.

Samples are interleaved (ours, raw, ours, raw, ...) so that a noisy machine slows both alike; compare the
ratios, not the absolute numbers. Three views:
- idle: one call at a time with the warm pool refilled before each (the flattering figure);
- first output: from calling stream("print(1, flush=True)") to the first piece in the caller's hands;
- sustained: calls back to back from 1 and 4 threads, the pool refilling only as fast as Docker starts containers
  (the unflattering figure: what a busy service sees).
"""

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from safecode import Output, Sandbox, build_args, engine  # noqa: E402
from safecode.engine.container import UID_BASE  # noqa: E402
from bench_common import CODE, ms, percentile, refilled, runner, sustained, table, timed  # noqa: E402
import bench_reuse  # noqa: E402
from bench_more import (  # noqa: E402
    SCIENTIFIC, cells, dataframe_cells, mcp_calls, package_images, profiles, scientific, walls,
)

FIRST = "print(1, flush=True)"
POOL = 4


@contextlib.contextmanager
def code_folder():
    """A folder with main.py, for the raw `docker run` to mount as safecode does."""
    with tempfile.TemporaryDirectory(prefix="safecode-bench-") as code_dir:
        os.chmod(code_dir, 0o755)
        with open(os.path.join(code_dir, "main.py"), "w") as file:
            file.write(CODE)
        os.chmod(file.name, 0o644)
        yield code_dir


def raw_argv(sandbox, code_dir, name):
    return build_args(code_dir, name=name, uid=UID_BASE + 1, limits=sandbox.limits, image=sandbox.image)


def raw_runner(sandbox, code_dir):
    """A plain `docker run --rm` with exactly safecode's flags: the floor we are measured against."""
    counter = iter(range(10**9))

    def run():
        name = f"safecode-bench-raw-{os.getpid()}-{next(counter)}"
        proc = subprocess.run(raw_argv(sandbox, code_dir, name), capture_output=True, timeout=60)
        assert proc.stdout == b"4\n", proc.stderr

    return run


def raw_first_output(sandbox, code_dir):
    """Seconds from starting a raw `docker run` to the first byte of its output."""
    name = f"safecode-bench-first-{os.getpid()}-{time.monotonic_ns()}"
    started = time.perf_counter()
    proc = subprocess.Popen(raw_argv(sandbox, code_dir, name), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    proc.stdout.read(1)
    took = time.perf_counter() - started
    proc.communicate(timeout=60)
    return took


def first_output(sandbox):
    """Seconds from calling stream() to the first Output in our hands."""
    started = time.perf_counter()
    with sandbox.stream(FIRST) as run:
        for item in run:
            if isinstance(item, Output):
                took = time.perf_counter() - started
                break
    return took


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
    parser.add_argument("--samples", type=int, default=30, help="idle and first-output samples of each (default 30)")
    parser.add_argument("--calls", type=int, default=40, help="calls per sustained round (default 40)")
    parser.add_argument("--charts", type=int, default=8, help="scientific samples of each (default 8)")
    parser.add_argument("--walls", type=int, default=12, help="samples of each wall, cold and warm (default 12)")
    parser.add_argument("--reuse-calls", type=int, default=200, help="calls per reuse contender (default 200)")
    parser.add_argument("--only", choices=["reuse"], help="run only this round's part")
    args = parser.parse_args()

    sandbox = Sandbox()
    if args.only == "reuse":
        with code_folder() as code_dir:
            bench_reuse.report(args.reuse_calls, args.samples, raw_runner(sandbox, code_dir))
        return
    warm = Sandbox(warm=POOL)

    with code_folder() as code_dir:
        contenders = {
            "safecode warm": runner(warm),
            "safecode cold": runner(sandbox),
            "raw docker run": raw_runner(sandbox, code_dir),
        }
        firsts = {
            "safecode warm": lambda: first_output(warm),
            "safecode cold": lambda: first_output(sandbox),
            "raw docker run": lambda: raw_first_output(sandbox, code_dir),
        }

        for function in contenders.values():  # warm the page cache and the daemon
            function()
        latency = {name: [] for name in contenders}
        first = {name: [] for name in contenders}
        for _ in range(args.samples):
            for name in contenders:
                refilled(warm)  # the pool's own starts must not slow whoever is timed next
                latency[name].append(timed(contenders[name]))
                refilled(warm)
                first[name].append(firsts[name]())
        steady = {}
        for workers in (1, 4):
            for name, function in contenders.items():
                refilled(warm)  # every contender starts from the same state: a full pool, then no waiting
                steady[name, workers] = sustained(function, args.calls, workers)

    idle = idle_memory(warm)
    stats = warm.stats()
    warm.close()

    raw = "raw docker run"
    print(f"print(2+2); {args.samples} interleaved samples each; warm = Sandbox(warm={POOL})")
    print("\nIdle: one call at a time, the pool refilled before each")
    print(f"{'':16} {'median ms':>9} {'p90 ms':>8} {'vs raw':>7}")
    for name in contenders:
        median = statistics.median(latency[name])
        print(f"{name:16} {ms(median)} {ms(percentile(latency[name], 0.9))} "
              f"{median / statistics.median(latency[raw]):7.2f}")
    print(f"\nFirst output: from calling stream({FIRST!r}) to the first piece in hand")
    print(f"{'':16} {'median ms':>9} {'p90 ms':>8} {'vs raw':>7}")
    for name in contenders:
        median = statistics.median(first[name])
        print(f"{name:16} {ms(median)} {ms(percentile(first[name], 0.9))} {median / statistics.median(first[raw]):7.2f}")
    print(f"\nSustained: {args.calls} calls back to back, the pool refilling only as fast as Docker starts containers")
    print(f"{'':16} {'threads':>7} {'min ms':>8} {'median ms':>9} {'p90 ms':>8} {'runs/s':>7} {'vs raw':>7}")
    for workers in (1, 4):
        for name in contenders:
            samples, rate = steady[name, workers]
            print(f"{name:16} {workers:7d} {ms(min(samples))} {ms(statistics.median(samples))} "
                  f"{ms(percentile(samples, 0.9))} {rate:7.2f} {rate / steady[raw, workers][1]:7.2f}")
    print(f"\nwarm runs served by a pooled container: {stats['warm']}, by a cold fallback: {stats['cold']}")
    print(f"memory of one idle ready container: {idle}")

    with code_folder() as code_dir:
        bench_reuse.report(args.reuse_calls, args.samples, raw_runner(sandbox, code_dir))

    cell = cells(args.samples)
    print(f"\nSessions: a trivial cell (x = 1) in a live session beside a warm execute, {args.samples} samples each")
    table(cell, "warm execute", width=16)

    print(f"\nMCP: run_python of print(1) over stdio, warm, beside a warm Sandbox.execute, {args.samples} samples each")
    calls = mcp_calls(args.samples)
    table(calls, "Sandbox.execute warm")
    added = statistics.median(calls["MCP run_python warm"]) - statistics.median(calls["Sandbox.execute warm"])
    print(f"the protocol adds {added * 1000:.1f} ms at the median (target: under 3 ms)")

    print(f"\nSystem call filter: {CODE} under safecode's seccomp profile and the engine's default, cold and warm, "
          f"{args.walls} interleaved samples each")
    table(profiles(args.walls), "engine default cold")

    wall, missing = walls(args.walls)
    print(f"\nWalls: {CODE}, each wall cold and warm (a pool of 1, refilled), {args.walls} interleaved samples each")
    table(wall, "runc cold")
    for line in missing:
        print(f"left out: {line}")

    if not engine.image_exists(SCIENTIFIC):
        print(f"\nScientific: skipped, {SCIENTIFIC} is not built (python -m safecode image --image {SCIENTIFIC})")
        return
    charts, chart_stats = scientific(args.charts)
    warm_median, cold_median = statistics.median(charts["warm"]), statistics.median(charts["cold"])
    print(f"\nScientific: a DataFrame and one chart saved, {SCIENTIFIC}, {args.charts} interleaved samples each")
    print(f"{'':16} {'median ms':>9} {'p90 ms':>8} {'vs cold':>7}")
    for name in ("warm", "cold"):
        median = statistics.median(charts[name])
        print(f"safecode {name:7} {ms(median)} {ms(percentile(charts[name], 0.9))} {median / cold_median:7.2f}")
    print(f"warm/cold: {warm_median / cold_median:.3f} (target: at most 0.1); "
          f"warm runs served by a pooled container: {chart_stats['warm']} of {args.charts}")

    first, cached, imports = package_images(args.charts)
    print(f"\nPackages: an image with sympy, {args.charts} interleaved samples of importing it")
    print(f"first build {first:.1f} s, cached {cached * 1000:.0f} ms ({cached / first:.4f} of the first)")
    table(imports, "import sympy cold", width=30)
    ratio = statistics.median(imports["import sympy warm, preloaded"]) / statistics.median(imports["import sympy cold"])
    print(f"warm/cold: {ratio:.3f} (target: at most 0.1)")

    shown = dataframe_cells(args.samples)
    print(f"\nDisplays: a warm scientific session cell ending in df.head(), its HTML table shown or not, "
          f"{args.samples} interleaved samples each")
    table(shown, "df.head() not shown")
    cost = statistics.median(shown["df.head() shown"]) - statistics.median(shown["df.head() not shown"])
    print(f"the display costs {cost * 1000:.1f} ms (target: under 10 ms)")


if __name__ == "__main__":
    main()
