"""Grading's pure part (verdicts.py), with no Docker: cases, comparisons, and the verdict on a Result."""

import dataclasses

import pytest

from safecode import Case, Result, Verdict
from safecode.verdicts import check_cases, check_compare, judge, program_for, run_verdict

pytestmark = pytest.mark.pure

RUN = Result(stdout="", stderr="", exit_code=0, status="ok", timed_out=False, oom_killed=False, truncated=False,
             duration=0.01)


def ran(**changes):
    return dataclasses.replace(RUN, **changes)


@pytest.mark.parametrize("compare, expected, actual, same", [
    ("lines", "1\n2\n", "1  \n2\t\n\n\n", True),
    ("lines", "1\n2", " 1\n2", False),  # leading whitespace counts
    ("lines", "a\n\nb", "a\nb", False),  # blank lines inside count
    ("exact", "1\n", "1\n", True),
    ("exact", "1\n", "1", False),
    ("tokens", "1 2.0000001\n3", "1\n2 3", True),
    ("tokens", "1e9", "1000000001", True),  # relative
    ("tokens", "0.5", "0.50001", False),
    ("tokens", "nan", "nan", True),  # the same token
    ("tokens", "abc", "ABC", False),
    (lambda expected, actual: actual.lower() == expected, "yes", "YES", True),
])
def test_comparisons(compare, expected, actual, same):
    verdict, message, _ = judge(Case(expected=expected), ran(stdout=actual), "", compare)
    assert (verdict is Verdict.accepted) == same and bool(message) != same


def test_a_wrong_answer_says_the_first_differing_line():
    _, message, _ = judge(Case(expected="1\n2\n3"), ran(stdout="1\n5\n3"), "")
    assert message == "line 2: expected '2', got '5'"
    _, message, _ = judge(Case(expected="1\n2\n3"), ran(stdout="1\n2"), "")
    assert message == "2 lines where 3 were expected"


@pytest.mark.parametrize("result, verdict", [
    (ran(status="timeout", exit_code=None, timed_out=True), Verdict.time_limit),
    (ran(status="oom", exit_code=None, oom_killed=True), Verdict.memory_limit),
    (ran(status="output_limit", exit_code=None, truncated=True), Verdict.output_limit),
    (ran(status="sandbox_error", exit_code=None), Verdict.sandbox_error),
    (ran(status="error", exit_code=1, stderr="  File \"main.py\", line 1\n    x(\n     ^\nSyntaxError: '(' was never closed\n"),
     Verdict.syntax_error),
    (ran(status="error", exit_code=1, stderr="Traceback (most recent call last):\n  ...\nSyntaxError: bad\n"),
     Verdict.runtime_error),  # raised while running (compile() of bad code), not main.py's own
    (ran(status="error", exit_code=1, stderr="Traceback (most recent call last):\nZeroDivisionError: division by zero\n"),
     Verdict.runtime_error),
    (ran(status="error", exit_code=3), Verdict.runtime_error),
])
def test_limits_and_errors(result, verdict):
    assert judge(Case(expected="x"), result, "")[0] is verdict


@pytest.mark.parametrize("stderr, message", [
    ("Traceback (most recent call last):\n  File \"/app/main.py\", line 7, in <module>\n    os.fork()\n"
     "BlockingIOError: [Errno 11] Resource temporarily unavailable\nTraceback (most recent call last):\n"
     "  File \"/app/main.py\", line 7, in <module>\n", "BlockingIOError: [Errno 11] Resource temporarily unavailable"),
    ("Traceback (most recent call last):\n  File \"/app/main.py\", line 1\nKeyError: 'k'\n    os.fork()\n",
     "KeyError: 'k'"),
    ("a note the program wrote\n", "exit status 1"),  # no traceback: nothing is taken for an exception
])
def test_the_exception_is_named_even_when_tracebacks_interleave(stderr, message):
    """A fork bomb's processes write their tracebacks at once, and the last may be cut short by the clean-up."""
    verdict, said = run_verdict(ran(status="error", exit_code=1, stderr=stderr))
    assert (verdict, said) == (Verdict.runtime_error, message)


def test_a_test_passes_only_with_its_own_mark_at_the_end():
    case = Case(test="assert f() == 1")
    program, mark = program_for("def f(): return 1", case)
    assert program.startswith("def f(): return 1") and "assert f() == 1" in program and mark in program
    assert program_for("x", case)[1] != mark  # a new mark every time
    verdict, _, result = judge(case, ran(stdout=f"out\n\n{mark}\n"), mark)
    assert verdict is Verdict.accepted and result.stdout == "out\n"  # the mark is not the program's output
    for stdout in ("", "out\n", f"{mark}\nmore\n", "safecode-case-passed-" + "0" * 32 + "\n"):
        assert judge(case, ran(stdout=stdout), mark)[0] is Verdict.runtime_error  # exit 0, but not at the end
    failed = ran(status="error", exit_code=1, stderr="Traceback (most recent call last):\nAssertionError: 2 != 1\n")
    assert judge(case, failed, mark)[:2] == (Verdict.wrong_answer, "AssertionError: 2 != 1")
    assert judge(case, ran(stdout=f"\n{mark}\n", exit_code=1, status="error"), mark)[0] is Verdict.runtime_error


@pytest.mark.parametrize("make, message", [
    (lambda: Case(), "neither"),
    (lambda: Case(expected="1", test="assert 1"), "both"),
    (lambda: Case(test=b"assert 1"), "test must be Python source"),
    (lambda: Case(expected=1), "expected output must be str"),
    (lambda: Case(stdin=None, expected=""), "stdin must be str"),
    (lambda: check_cases([]), "no cases"),
    (lambda: check_cases([{"stdin": ""}]), "must be a Case"),
    (lambda: check_compare("fuzzy"), "compare must be one of"),
])
def test_bad_input_is_a_value_error(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_verdicts_are_strings_and_cases_are_frozen():
    assert Verdict.wrong_answer == "wrong_answer" and str(Verdict.time_limit) == "time_limit"
    with pytest.raises(dataclasses.FrozenInstanceError):
        Case(expected="1").stdin = "2"
