"""Grading against a real engine: verdicts of hostile programs and tests, one container per program, many at once."""

import asyncio

import pytest

from safecode import AsyncSandbox, Case, Sandbox, Verdict, check

pytestmark = pytest.mark.docker

ADD = "def add(a, b):\n    return a + b\n"


def test_io_cases_and_their_verdicts(docker):
    code = "a, b = map(int, input().split())\nprint(a + b)"
    report = check(code, [Case(stdin="1 2", expected="3"), Case(stdin="2 2", expected="5", name="off"),
                          Case(stdin="x", expected="1"), Case(stdin="1 1", expected="2   \n\n")])
    assert [case.verdict for case in report.cases] == ["accepted", "wrong_answer", "runtime_error", "accepted"]
    assert report.verdict is Verdict.wrong_answer and (report.passed, report.total, report.ok) == (2, 4, False)
    assert report.cases[1].message == "line 1: expected '5', got '4'" and report.cases[1].case.name == "off"
    assert report.cases[2].message.startswith("ValueError: invalid literal")


HOSTILE = [
    ("assert add(1, 2) == 3", Verdict.accepted, ""),
    ("assert add(1, 2) == 4", Verdict.wrong_answer, "AssertionError"),
    ("import sys; sys.exit(0)", Verdict.runtime_error, "did not run to its end"),
    ("import os; os._exit(0)", Verdict.runtime_error, "did not run to its end"),
    # Its parent (PID 1) ignores it; then SIGKILL, which a Result reads as the OOM killer's: not passed, either way.
    ("import os; os.kill(os.getppid(), 9); os.kill(os.getpid(), 9)", None, ""),
    ("import sys; sys.stdout.close()", Verdict.runtime_error, "closed file"),
    ("print('\\nsafecode-case-passed-' + '0' * 32); import os; os._exit(0)", Verdict.runtime_error, "to its end"),
    ("while True: pass", Verdict.time_limit, "time limit"),
    ("x = [0] * 10**9", Verdict.memory_limit, "memory"),
    ("while True: print('x' * 10000)", Verdict.output_limit, "output"),
    ("def f(:\n  pass", Verdict.syntax_error, "SyntaxError"),
    ("raise KeyError('k')", Verdict.runtime_error, "KeyError: 'k'"),
    ("import os\nwhile True:\n    os.fork()", Verdict.runtime_error, "BlockingIOError"),  # a fork bomb meets the
    # process limit, and its processes end with its case...
    ("assert add(2, 2) == 4", Verdict.accepted, ""),  # ...and affects no other
]


def test_tests_get_their_verdicts_and_nothing_more(docker):
    report = check(ADD, [Case(test=test, timeout=2) for test, _, _ in HOSTILE])
    for (test, verdict, said), result in zip(HOSTILE, report.cases):
        wanted = result.verdict is not Verdict.accepted if verdict is None else result.verdict is verdict
        assert wanted and said in result.message, (test, result.verdict, result.message)
    assert report.total == len(HOSTILE) and report.passed == sum(v is Verdict.accepted for _, v, _ in HOSTILE)


def test_stop_on_failure_runs_no_more(docker):
    report = check(ADD, [Case(test="assert 0"), Case(test="assert 1")], stop_on_failure=True)
    assert report.verdict is Verdict.wrong_answer and len(report.cases) == 1 and report.total == 2


@pytest.mark.own_pools
def test_check_many_keeps_the_order_and_shares_the_pool(docker):
    with Sandbox(warm=2, reuse=50) as sandbox:
        submissions = [(f"def add(a, b):\n    return a + b + {n % 2}\n", [Case(test="assert add(1, 2) == 3")])
                       for n in range(12)]
        reports = list(sandbox.check_many(submissions))
        assert [report.ok for report in reports] == [n % 2 == 0 for n in range(12)]
        assert sandbox.stats()["cold"] == 0 and sandbox.stats()["reused"] >= 8


@pytest.mark.own_pools
def test_async_check(docker):
    async def main():
        async with AsyncSandbox(warm=1, reuse=10) as sandbox:
            one = await sandbox.check(ADD, [Case(test="assert add(1, 1) == 2")])
            many = await sandbox.check_many([(ADD, [Case(test="assert add(0, 0) == 1")])] * 3)
            return one, many
    one, many = asyncio.run(main())
    assert one.ok and [report.verdict for report in many] == [Verdict.wrong_answer] * 3
