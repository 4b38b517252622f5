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


def test_stale_code_folders_go_and_live_ones_stay(tmp_path, monkeypatch):
    import tempfile
    import time

    from safecode import Sandbox
    from safecode.container import remove_stale_code_dirs

    old = time.time() - 3600
    stale = tmp_path / "safecode-0123456789abcdef-x1y2"  # a folder whose container is long gone
    other = tmp_path / "safecode-image-abc"  # not a code folder
    fresh = tmp_path / "safecode-fedcba9876543210-q"  # young: its container may be starting right now
    for path in (stale, other, fresh):
        path.mkdir()
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with Sandbox(warm=1) as sandbox:
        while sandbox.stats()["ready"] < 1:
            time.sleep(0.02)
        (live,) = [path for path in tmp_path.iterdir() if path.name.startswith(sandbox._pool._ready[0].name)]
        os.utime(live, (old, old))  # old, but its container is alive
        assert remove_stale_code_dirs() == 1
        assert live.exists() and not stale.exists() and other.exists() and fresh.exists()
        assert sandbox.execute("print('still fine')").stdout == "still fine\n"


def test_cleanup_command_removes_containers_and_stale_folders(tmp_path):
    stale = tmp_path / "safecode-0123456789abcdef-x1y2"
    stale.mkdir()
    os.utime(stale, (0, 0))
    proc = safecode("cleanup", env={"TMPDIR": str(tmp_path)})
    assert proc.returncode == 0 and "removed 0 container(s) and 1 stale code folder(s)" in proc.stdout
    assert not stale.exists()
