"""python -m safecode, run as a user would run it."""

import json
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]


def safecode(*args, input=None, env=None):
    return subprocess.run(
        [sys.executable, "-m", "safecode", *args], input=input, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_run_code_mirrors_exit_status():
    proc = safecode("run", "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(4)")
    assert (proc.returncode, proc.stdout, proc.stderr) == (4, "out\n", "err\n")


def test_run_script_with_input(tmp_path):
    script = tmp_path / "script.py"
    script.write_text("print(input()[::-1])")
    proc = safecode("run", str(script), "--input", "-", input="stressed\n")
    assert (proc.returncode, proc.stdout) == (0, "desserts\n")


def test_run_json_prints_the_whole_result():
    proc = safecode("run", "--json", "-c", "print(2+2)")
    result = json.loads(proc.stdout)
    assert proc.returncode == 0
    assert result["stdout"] == "4\n" and result["status"] == "ok" and result["ok"] is True
    assert set(result) >= {"stderr", "exit_code", "timed_out", "oom_killed", "truncated", "duration"}


def test_run_timeout_says_so():
    proc = safecode("run", "--timeout", "1", "-c", "print('partial', flush=True)\nwhile True: pass")
    assert proc.returncode == 124 and proc.stdout == "partial\n"
    assert "timed out after 1 second" in proc.stderr


def test_run_bad_input_is_a_clear_error(tmp_path):
    proc = safecode("run", "--memory", "lots", "-c", "print(1)")
    assert proc.returncode == 2 and "memory" in proc.stderr and "Traceback" not in proc.stderr
    proc = safecode("run", str(tmp_path / "missing.py"))
    assert proc.returncode == 2 and "No such file" in proc.stderr and "Traceback" not in proc.stderr
    proc = safecode("run", "-c", "print(1)", "--image", "safecode-no-such-image:0")
    assert proc.returncode == 2 and "safecode image" in proc.stderr


def test_docker_down_is_a_clear_error():
    proc = safecode("run", "-c", "print(1)", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert proc.returncode == 2 and "Cannot connect" in proc.stderr and "Traceback" not in proc.stderr


def test_doctor_passes_on_this_host():
    proc = safecode("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout and "FAIL" not in proc.stdout
    assert proc.stdout.count("[ok]") == 10


def test_doctor_fails_without_a_daemon():
    proc = safecode("doctor", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert proc.returncode == 1 and "[FAIL] Docker daemon" in proc.stdout


def test_image_is_present_and_cleanup_removes_ours():
    assert safecode("image").stdout.strip().endswith("present")
    name = "safecode-cli-cleanup-test"
    subprocess.run(
        ["docker", "run", "-d", "--name", name, "--label", "safecode=1", "--log-driver", "none",
         "--network", "none", "safecode-sandbox:3.11", "python3", "-c", "import time; time.sleep(60)"],
        check=True, capture_output=True,
    )
    proc = safecode("cleanup")
    assert proc.returncode == 0 and "removed 1 container" in proc.stdout
