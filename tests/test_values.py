"""Limits, results and errors: plain values, no Docker."""

import dataclasses
import math

import pytest

from safecode import CodeTooLarge, DockerError, Limits, Result, SafecodeError, Sandbox, execute
from safecode import engine
from safecode.errors import DockerUnavailable, ImageNotFound
from safecode.result import stop_reason

pytestmark = pytest.mark.pure


def test_defaults_are_the_seeds_limits():
    limits = Limits()
    assert (limits.timeout, limits.memory, limits.cpus, limits.pids) == (10, "128m", 0.5, 64)
    assert limits.max_output == 1_000_000


@pytest.mark.parametrize(
    "field, value",
    [
        ("timeout", 0), ("timeout", -1), ("timeout", math.nan), ("timeout", math.inf), ("timeout", "10"),
        ("timeout", True), ("memory", "lots"), ("memory", "1k"), ("memory", "-5m"), ("memory", ""),
        ("memory", None), ("memory", "12 parsecs"), ("cpus", 0), ("cpus", math.nan), ("pids", 0),
        ("pids", 1.5), ("max_output", 0), ("max_code", -1),
    ],
)
def test_invalid_limits_raise_value_error(field, value):
    with pytest.raises(ValueError, match=field if field != "memory" else "memory"):
        Limits(**{field: value})


@pytest.mark.parametrize("memory, normal", [("128m", "128m"), ("1G", "1g"), ("256MiB", "256mib"), (" 64m ", "64m")])
def test_memory_sizes_docker_accepts(memory, normal):
    assert Limits(memory=memory).memory == normal


def test_limits_are_frozen_and_replaceable():
    limits = Limits()
    with pytest.raises(dataclasses.FrozenInstanceError):
        limits.timeout = 1
    assert dataclasses.replace(limits, timeout=2).timeout == 2


def test_sandbox_validates_and_names_its_image(monkeypatch):
    monkeypatch.delenv("SAFECODE_IMAGE", raising=False)
    assert Sandbox().image == "safecode-sandbox:3.11"
    assert Sandbox(image="mine:1").image == "mine:1"
    monkeypatch.setenv("SAFECODE_IMAGE", "from-env:2")
    assert Sandbox().image == "from-env:2"
    assert Sandbox(memory="256m").limits.memory == "256m"
    with pytest.raises(ValueError):
        Sandbox(timeout=-1)
    with pytest.raises(ValueError):
        Sandbox(image="")


def test_result_is_frozen_and_ok_means_status_ok():
    result = Result(stdout="4\n", stderr="", exit_code=0, status="ok", duration=0.1)
    assert result.ok
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.stdout = ""
    assert not dataclasses.replace(result, status="error", exit_code=1).ok


def test_stop_reasons_match_the_seeds():
    limits = Limits()
    timed_out = Result("", "", None, "timeout", timed_out=True)
    assert stop_reason(timed_out, limits) == "Execution timed out after 10 seconds."
    assert "memory" in stop_reason(Result("", "", None, "oom", oom_killed=True), limits).lower()
    assert "output" in stop_reason(Result("", "", None, "output_limit", truncated=True), limits).lower()
    assert stop_reason(Result("", "", 1, "error"), limits) == ""


def test_errors_share_one_base():
    for error in (DockerUnavailable("x"), ImageNotFound("img"), CodeTooLarge(2, 1), DockerError(125, "x")):
        assert isinstance(error, SafecodeError)
    assert isinstance(CodeTooLarge(2, 1), ValueError)
    assert "safecode image" in str(ImageNotFound("img"))


def test_bad_code_is_refused_before_docker_is_touched(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # any docker call would raise DockerUnavailable
    with pytest.raises(TypeError, match="str"):
        execute(b"print(1)")
    with pytest.raises(TypeError):
        execute(None)
    with pytest.raises(TypeError):
        execute("print(1)", stdin=5)
    with pytest.raises(CodeTooLarge) as caught:
        execute("#" * 101, max_code=100)
    assert (caught.value.size, caught.value.limit) == (101, 100)


@pytest.mark.parametrize(
    "code, stderr, expected",
    [
        (125, "docker: Error response from daemon: No such image: x:1.\n", ImageNotFound),
        (125, "docker: Cannot connect to the Docker daemon at unix:///x. Is it running?\n", DockerUnavailable),
        (125, "docker: permission denied while trying to connect to the Docker daemon socket\n", DockerUnavailable),
        (127, 'docker: Error response from daemon: ... exec: "python3": executable file not found\n', DockerError),
        (1, "", DockerError),
    ],
)
def test_a_container_that_ends_before_it_is_ready_is_dockers_failure(code, stderr, expected):
    failure = engine.cli.run_failure(code, stderr, ["docker", "run"], "x:1")
    assert type(failure) is expected and failure.__class__ is not SafecodeError
    if expected is DockerError:
        assert failure.returncode == code and str(failure)
    if expected is DockerUnavailable:
        assert "--" in str(failure)  # the line, then how to fix it


@pytest.mark.parametrize("field, value", [("timeout", 0), ("timeout", -1), ("scratch", "0"), ("scratch", "lots")])
def test_a_bad_per_run_limit_is_refused_not_ignored(field, value):
    with pytest.raises(ValueError, match=field):
        Sandbox().execute("print(1)", **{field: value})
