"""make bench: safecode's latency and throughput beside a raw `docker run` with the same flags, in one run.

Samples are interleaved (ours, raw, ours, raw, ...) so that a noisy machine slows both alike; compare the
ratios, not the absolute numbers. Three views:
- idle: one call at a time with the warm pool refilled before each (the flattering figure);
- first output: from calling stream("print(1, flush=True)") to the first piece in the caller's hands;
- sustained: calls back to back from 1 and 4 threads, the pool refilling only as fast as Docker starts containers
  (the unflattering figure: what a busy service sees).
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from safecode import Output, Sandbox, build_args, engine  # noqa: E402
from safecode.engine import image  # noqa: E402
from safecode.engine.endpoint import Endpoint  # noqa: E402
from safecode.errors import SafecodeError  # noqa: E402
from safecode.engine.container import UID_BASE  # noqa: E402

CODE = "print(2+2)"
FIRST = "print(1, flush=True)"
POOL = 4
SCIENTIFIC = f"{image.REPOSITORY}:3.13-scientific"
CHART = """
import pandas as pd
import matplotlib.pyplot as plt
df = pd.DataFrame({"x": range(50), "y": [i * i for i in range(50)]})
df.plot(x="x", y="y")
plt.savefig("out/chart.png")
"""


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


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def sustained(function, calls, workers):
    """Call `function` `calls` times, back to back from `workers` threads: each call's latency, and calls a second."""
    latencies, lock, left = [], threading.Lock(), iter(range(calls))

    def worker():
        while True:
            with lock:
                if next(left, None) is None:
                    return
            took = timed(function)
            with lock:
                latencies.append(took)

    start = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, calls / (time.perf_counter() - start)


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


def scientific(samples):
    """A DataFrame and one chart, warm and cold, interleaved: medians in seconds."""
    limits = dict(image=SCIENTIFIC, memory=image.SCIENTIFIC_MEMORY, scratch="32m", timeout=60)
    cold, warm = Sandbox(**limits), Sandbox(warm=1, **limits)
    times = {"warm": [], "cold": []}
    try:
        for _ in range(samples):
            for name, box in (("warm", warm), ("cold", cold)):
                refilled(warm, wait=60)
                result = box.execute(CHART)
                assert result.ok and "chart.png" in result.files, result
                times[name].append(result.duration)
    finally:
        warm.close()
    return times, warm.stats()


def cells(samples):
    """A trivial cell in a live session beside a warm execute, interleaved: latencies in seconds."""
    times = {"session cell": [], "warm execute": []}
    with Sandbox(warm=1) as box, box.session() as live:
        for _ in range(samples):
            refilled(box)
            times["warm execute"].append(timed(lambda: box.execute("x = 1")))
            times["session cell"].append(timed(lambda: live.execute("x = 1")))
    return times


def walls(samples):
    """Each wall cold and warm (a pool of 1, refilled before each), interleaved: latencies in seconds by name.

    runc and gVisor on the local engine, podman, and a second engine over ssh:// (tests/second_engine.py; needs
    root), its cold runs with and without SSH connection reuse. A wall that is not here is left out, and said so.
    """
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from second_engine import SecondEngine

    found, missing, remote = {"runc": {}}, [], None
    if "runsc" in engine.runtimes():
        found["gVisor (runsc)"] = {"runtime": "runsc"}
    else:
        missing.append("gVisor: the engine has no runsc (scripts/ensure-docker registers it)")
    try:
        image.ensure_image(endpoint=Endpoint(engine="podman"))
        found["podman"] = {"engine": "podman"}
    except SafecodeError as error:
        missing.append(f"podman: {error}")
    try:
        remote = SecondEngine(image.default_image())
        found["ssh://"] = {"host": remote.host}
    except (RuntimeError, OSError, subprocess.CalledProcessError, SafecodeError) as error:
        missing.append(f"ssh://: {error}")
    times = {}
    path = os.environ["PATH"]
    try:
        if remote:
            os.environ["PATH"] = remote.env_path
        boxes = {name: (Sandbox(**where), Sandbox(warm=1, **where)) for name, where in found.items()}
        try:
            for _ in range(samples):
                for name, (cold, warm) in boxes.items():
                    refilled(warm, wait=60)
                    times.setdefault(f"{name} warm", []).append(timed(runner(warm)))
                    times.setdefault(f"{name} cold", []).append(timed(runner(cold)))
                    if name == "ssh://":
                        os.environ["PATH"] = remote.env_path_no_reuse
                        times.setdefault("ssh:// cold, no reuse", []).append(timed(runner(cold)))
                        os.environ["PATH"] = remote.env_path
        finally:
            for _, warm in boxes.values():
                warm.close()
    finally:
        os.environ["PATH"] = path
        if remote:
            remote.close()
    return times, missing


def profiles(samples):
    """print(2+2) cold and warm under safecode's seccomp profile and under the engine's default, interleaved."""
    boxes = {name: (Sandbox(seccomp=choice), Sandbox(warm=1, seccomp=choice))
             for name, choice in (("safecode's profile", None), ("engine default", "engine"))}
    times = {}
    try:
        for _ in range(samples):
            for name, (cold, warm) in boxes.items():
                refilled(warm)
                times.setdefault(f"{name} warm", []).append(timed(runner(warm)))
                times.setdefault(f"{name} cold", []).append(timed(runner(cold)))
    finally:
        for _, warm in boxes.values():
            warm.close()
    return times


def table(times, base, width=24):
    """Median and p90 of each row in ms, and its median relative to the row named `base`."""
    print(f"{'':{width}} {'median ms':>9} {'p90 ms':>8} {'vs ' + base:>{max(7, len(base) + 3)}}")
    for name, samples in times.items():
        median = statistics.median(samples)
        print(f"{name:{width}} {ms(median)} {ms(percentile(samples, 0.9))} "
              f"{median / statistics.median(times[base]):{max(7, len(base) + 3)}.2f}")


def runner(box):
    def run():
        result = box.execute(CODE)
        assert result.stdout == "4\n", result

    return run


def ms(seconds):
    return f"{seconds * 1000:8.1f}"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=30, help="idle and first-output samples of each (default 30)")
    parser.add_argument("--calls", type=int, default=40, help="calls per sustained round (default 40)")
    parser.add_argument("--charts", type=int, default=8, help="scientific samples of each (default 8)")
    parser.add_argument("--walls", type=int, default=12, help="samples of each wall, cold and warm (default 12)")
    args = parser.parse_args()

    sandbox = Sandbox()
    warm = Sandbox(warm=POOL)

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

    cell = cells(args.samples)
    print(f"\nSessions: a trivial cell (x = 1) in a live session beside a warm execute, {args.samples} samples each")
    table(cell, "warm execute", width=16)

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


if __name__ == "__main__":
    main()
