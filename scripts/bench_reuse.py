"""make bench, this round's part: reuse (many programs per warm container) and grading, beside what they replace.

- sustained: `print(2+2)` at 4 at a time through Sandbox(warm=4, reuse=100), Sandbox(warm=4) and a raw `docker run`
  with the same flags, in interleaved rounds; the same under gVisor (reuse against reuse=1);
- idle: one program at a time in a reused warm container against a fresh warm one, and what clearing costs;
- memory: an idle container after 100 programs against a fresh one;
- grading: one program against 50 I/O cases, the cost of a case beyond the program's own run.
"""

import statistics
import threading
import time

from safecode import Case, Sandbox, engine
from bench_common import CODE, ms, percentile, refilled, runner, table, timed

POOL, REUSE, ROUNDS = 4, 100, 2


def throughput(function, calls, workers=POOL):
    """Runs a second, calling `function` `calls` times from `workers` threads."""
    left, lock = iter(range(calls)), threading.Lock()

    def work():
        while True:
            with lock:
                if next(left, None) is None:
                    return
            function()

    start = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return calls / (time.perf_counter() - start)


def sustained(calls, raw, runtime=None):
    """Runs a second of each contender, `calls` in all, in ROUNDS interleaved rounds."""
    where = {"runtime": runtime} if runtime else {}
    contenders = {f"reuse={REUSE}": Sandbox(warm=POOL, reuse=REUSE, **where), "reuse=1": Sandbox(warm=POOL, **where)}
    functions = {name: runner(box) for name, box in contenders.items()}
    if raw is not None:
        functions["raw docker run"] = raw
    rates = {name: [] for name in functions}
    try:
        for box in contenders.values():
            refilled(box, wait=120)
        for _ in range(ROUNDS):
            for name, function in functions.items():
                if name in contenders:
                    refilled(contenders[name], wait=120)
                rates[name].append(throughput(function, calls // ROUNDS))
        stats = {name: box.stats() for name, box in contenders.items()}
    finally:
        for box in contenders.values():
            box.close()
    return {name: statistics.mean(rate) for name, rate in rates.items()}, stats


def idle(samples):
    """One program at a time: a reused warm container, a fresh warm one; and from a reused run's end to ready."""
    reused, fresh = Sandbox(warm=1, reuse=10 * samples), Sandbox(warm=1)
    times, clearing = {"fresh warm": [], "reused warm": []}, []
    try:
        run_reused, run_fresh = runner(reused), runner(fresh)
        refilled(reused)
        run_reused()
        for _ in range(samples):
            refilled(fresh)
            times["fresh warm"].append(timed(run_fresh))
            refilled(reused)
            times["reused warm"].append(timed(run_reused))
            clearing.append(timed(lambda: refilled(reused)))
        return times, clearing, reused.stats()
    finally:
        reused.close()
        fresh.close()


def memory_after(programs):
    """`docker stats` memory of an idle container after `programs` programs, and of a fresh one."""
    with Sandbox(warm=1, reuse=programs + 10) as reused, Sandbox(warm=1) as fresh:
        for _ in range(programs):
            refilled(reused)
            runner(reused)()
        refilled(reused)
        refilled(fresh)
        time.sleep(1)
        names = {"after": reused._pool.names, "fresh": fresh._pool.names}  # the bench's look inside
        found = {}
        for kind, pool in names.items():
            proc = engine.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", *pool)
            found[kind] = proc.stdout.split("/")[0].strip() or "unknown"
        return found


def grading(cases=50, samples=5):
    """One program's own run, and a check of it against `cases` I/O cases: seconds each, median of `samples`."""
    code = "a, b = map(int, input().split())\nprint(a + b)"
    made = [Case(stdin=f"{n} {n}", expected=str(2 * n)) for n in range(cases)]
    with Sandbox(warm=1, reuse=10 * cases * samples) as sandbox:
        one, many = [], []
        for _ in range(samples):
            refilled(sandbox)
            one.append(timed(lambda: sandbox.execute(code, stdin="1 2")))
            refilled(sandbox)
            report = []
            many.append(timed(lambda: report.append(sandbox.check(code, made))))
            assert report[0].ok, report[0]
    return statistics.median(one), statistics.median(many)


def report(calls, samples, raw):
    rates, stats = sustained(calls, raw)
    print(f"\nReuse, sustained: {calls} {CODE} at {POOL} at a time, {ROUNDS} interleaved rounds (runs a second)")
    for name, rate in rates.items():
        print(f"{name:16} {rate:8.1f} runs/s  {rate / rates['reuse=1']:6.2f}x reuse=1  "
              f"{rate / rates.get('raw docker run', rate):6.2f}x raw")
    fallbacks = ", ".join(f"{name} {box['cold']}" for name, box in stats.items())
    print(f"cold fallbacks: {fallbacks}")
    if "runsc" in engine.runtimes():
        gvisor, _ = sustained(calls // 2, None, runtime="runsc")
        print(f"gVisor, {calls // 2} calls: " + ", ".join(f"{name} {rate:.1f} runs/s" for name, rate in gvisor.items())
              + f"; reuse/reuse=1 {gvisor[f'reuse={REUSE}'] / gvisor['reuse=1']:.2f}x")
    times, clearing, _ = idle(samples)
    print(f"\nReuse, idle: one program at a time, {samples} interleaved samples each")
    table(times, "fresh warm", width=16)
    print(f"clearing between programs (the end of a run to ready again, off the caller's path): median "
          f"{ms(statistics.median(clearing)).strip()} ms, p90 {ms(percentile(clearing, 0.9)).strip()} ms")
    memory = memory_after(100)
    print(f"memory of an idle container after 100 programs: {memory['after']}; fresh: {memory['fresh']}")
    one, many = grading()
    print(f"\nGrading: one program against 50 I/O cases: {many * 1000:.0f} ms; its own run {one * 1000:.1f} ms; "
          f"a case beyond the run costs {(many / 50 - one) * 1000:.1f} ms (target: under 5 ms)")
