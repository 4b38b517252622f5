"""python -m safecode check PROGRAM.py... --cases CASES: a teacher's grader on the command line.

CASES is a JSONL file (one object a line, with the fields of Case) or a folder in the judges' layout: NAME.in with
NAME.out or NAME.ans. One program shows a table of its cases; many, one row each (and `--json`, one object each).
The exit status is 0 only when every program passed every case.
"""

import json
import os
import sys

from ..limits import Limits
from ..verdicts import COMPARES, Case
from .evaluate import Progress, read_jsonl
from .sandbox import Sandbox

FIELDS = ("stdin", "expected", "test", "timeout", "name")


def add_command(commands):
    check = commands.add_parser("check", help="grade programs against test cases (a JSONL file, or NAME.in/NAME.out)")
    check.add_argument("programs", nargs="+", metavar="PROGRAM.py")
    check.add_argument("--cases", required=True, help="a JSONL file of cases, or a folder of NAME.in and NAME.out")
    check.add_argument("--compare", choices=COMPARES, default="lines", help="how output is compared (default lines)")
    check.add_argument("--timeout", type=float, default=Limits.timeout, help="seconds per case (default %(default)s)")
    check.add_argument("--stop-on-failure", action="store_true", help="a program's first failed case ends its check")
    check.add_argument("--json", action="store_true", help="one JSON object per program")
    check.add_argument("--workers", type=int, default=2, help="programs checked at once (default %(default)s)")
    check.add_argument("--image", default=None, help="the sandbox image")
    check.set_defaults(command=_check)


def load_cases(path):
    """The cases in a JSONL file or a judges' folder; ValueError saying what is wrong."""
    if os.path.isdir(path):
        names = sorted(name[:-3] for name in os.listdir(path) if name.endswith(".in"))
        cases = []
        for name in names:
            answer = next((os.path.join(path, name + end) for end in (".out", ".ans")
                           if os.path.isfile(os.path.join(path, name + end))), None)
            if answer is None:
                raise ValueError(f"{path}: {name}.in has no {name}.out or {name}.ans")
            cases.append(Case(stdin=_text(os.path.join(path, name + ".in")), expected=_text(answer), name=name))
        if not cases:
            raise ValueError(f"{path}: no NAME.in files")
        return cases
    cases = []
    for number, item in enumerate(read_jsonl(path), 1):
        unknown = set(item) - set(FIELDS)
        if unknown:
            raise ValueError(f"{path}, case {number}: unknown fields {', '.join(sorted(unknown))} (a case has "
                             f"{', '.join(FIELDS)})")
        try:
            cases.append(Case(**{"name": str(number), **item}))
        except ValueError as error:
            raise ValueError(f"{path}, case {number}: {error}") from None
    if not cases:
        raise ValueError(f"{path}: no cases")
    return cases


def _text(path):
    with open(path, encoding="utf-8", errors="replace") as file:
        return file.read()


def _check(args):
    cases = load_cases(args.cases)
    programs = [(path, _text(path)) for path in args.programs]
    if args.workers < 1:
        raise ValueError("--workers must be at least 1")
    progress = Progress(len(programs) if len(programs) > 1 else 0)
    every = True
    with Sandbox(warm=args.workers, timeout=args.timeout, image=args.image) as sandbox:
        reports = sandbox.check_many(((code, cases) for _, code in programs), compare=args.compare,
                                     stop_on_failure=args.stop_on_failure)
        for (path, _), report in zip(programs, reports):
            every = every and report.ok
            progress.step()
            if args.json:
                print(json.dumps(report_json(path, report)), flush=True)
            elif len(programs) == 1:
                _table(report)
            else:
                print(f"{report.passed}/{report.total}  {report.verdict:<14} {path}", flush=True)
    progress.done()
    return 0 if every else 1


def report_json(path, report):
    return {"program": path, "verdict": report.verdict.value, "passed": report.passed, "total": report.total,
            "cases": [{"name": result.case.name, "verdict": result.verdict.value, "message": result.message,
                       "duration_ms": round(result.result.duration * 1000)} for result in report.cases]}


def _table(report):
    rows = [(result.case.name or str(number), result.verdict.value, f"{result.result.duration * 1000:.0f} ms",
             result.message) for number, result in enumerate(report.cases, 1)]
    widths = [max(len(row[column]) for row in rows + [("case", "verdict", "time", "")]) for column in range(3)]
    for row in [("case", "verdict", "time", "message")] + rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[3])
    print(f"{report.passed}/{report.total} passed: {report.verdict}", file=sys.stderr)
