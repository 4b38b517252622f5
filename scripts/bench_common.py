"""What every part of `make bench` measures with: timing, percentiles, a refilled pool, a table of ratios."""

import statistics
import threading
import time

CODE = "print(2+2)"


def timed(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def percentile(samples, fraction):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def refilled(sandbox, wait=30):
    """Wait until the sandbox's pool is full again."""
    deadline = time.monotonic() + wait
    while sandbox.stats()["ready"] < sandbox.warm and time.monotonic() < deadline:
        time.sleep(0.01)


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
