"""What only a warm pool can get wrong: reuse, idle containers that die or hang, closing, threads, crashes."""

import contextlib
import signal
import tempfile
import time

import pytest

from conftest import caller_process, echoes_at_once, end_process, wait_for_no_containers, wait_ready
from safecode import ImageNotFound, Sandbox
from safecode import engine
from safecode.engine.leftovers import remove_stale_code_dirs

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]


def test_warm_runs_are_warm_and_correct():
    with Sandbox(warm=2) as sandbox:
        wait_ready(sandbox, 2)
        results = [sandbox.execute(f"print({i} * 2)") for i in range(2)]
        assert [r.stdout for r in results] == ["0\n", "2\n"]
        assert sandbox.stats()["warm"] == 2 and sandbox.stats()["cold"] == 0
        wait_ready(sandbox, 2)  # both were replaced


def test_programs_that_fill_stderr_at_once_run_once_each_warm():
    """The acknowledgement must not wait behind the program's stderr (test_protocol has the mechanism): once, such a
    program's container was taken for stuck, discarded, and the program run a second time, cold."""
    code = "import os\nos.write(2, b'e' * 300_000)\nprint('out')"
    with Sandbox(warm=1, reuse=100) as sandbox:
        wait_ready(sandbox)
        for _ in range(40):
            result = sandbox.execute(code)
            assert (result.stdout, result.stderr) == ("out\n", "e" * 300_000), str(result)[:300]
        stats = sandbox.stats()
    assert stats["warm"] == 40 and stats["cold"] == 0 and stats["unfit"] == 0, stats


def test_no_program_sees_what_another_left():
    with Sandbox(warm=2) as sandbox:
        wait_ready(sandbox, 2)
        first = sandbox.execute(
            """
import socket, subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])  # a process left behind
print(socket.gethostname())
"""
        )
        wait_ready(sandbox, 2)
        second = sandbox.execute(
            """
import os, socket
cmdlines = [open(f"/proc/{pid}/cmdline", "rb").read() for pid in os.listdir("/proc") if pid.isdigit()]
print(socket.gethostname())
print(sum(b"sleep" in line for line in cmdlines), sorted(os.listdir("/app")), os.listdir("/tmp"))
"""
        )
        assert sandbox.stats()["warm"] == 2
    first_host = first.stdout.strip()
    second_host, seen = second.stdout.splitlines()
    assert first_host and first_host != second_host  # a different container
    assert seen == "0 ['main.py'] []"


def test_time_limit_counts_from_the_handover():
    with Sandbox(warm=1, timeout=1) as sandbox:
        wait_ready(sandbox, 1)
        time.sleep(2)  # idle longer than the time limit
        result = sandbox.execute("import time; time.sleep(0.5); print('in time')")
        assert result.ok and result.stdout == "in time\n" and sandbox.stats()["warm"] == 1


def test_a_container_that_died_while_idle_is_never_handed_out():
    with Sandbox(warm=1) as sandbox:
        wait_ready(sandbox, 1)
        (idle,) = sandbox._pool._ready  # a look inside: its client says it ended a moment after the engine does
        engine.docker("kill", idle.name)
        deadline = time.monotonic() + 10
        while idle.name in engine.ours() or idle.proc.poll() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        taken = sandbox._pool.take()
        try:
            assert taken is None or taken.name != idle.name  # the dead one was dropped, not returned
        finally:
            if taken:
                taken.discard()
        result = sandbox.execute("print('fine')")
        assert result.ok and result.stdout == "fine\n"


def test_a_container_that_dies_while_idle_is_replaced_without_waiting_for_a_caller():
    with Sandbox(warm=2) as sandbox:
        wait_ready(sandbox, 2)
        first = set(engine.ours())
        victim = sorted(first)[0]
        engine.docker("kill", victim)
        deadline = time.monotonic() + 20
        while True:  # no program is run: the pool notices by itself
            now = set(engine.ours())
            if victim not in now and len(now) == 2 and sandbox.stats()["ready"] == 2:
                break
            assert time.monotonic() < deadline, f"not replaced: {now}, {sandbox.stats()}"
            time.sleep(0.1)
        assert len(now - first) == 1  # one new container in the dead one's place


def test_a_container_that_hangs_while_idle_is_replaced_and_the_program_still_runs():
    with Sandbox(warm=1) as sandbox:
        wait_ready(sandbox, 1)
        (name,) = engine.ours()
        engine.docker("pause", name)
        result = sandbox.execute("print('ran elsewhere')")
        assert result.ok and result.stdout == "ran elsewhere\n"
        stats = sandbox.stats()
        assert stats == {"warm": 0, "cold": 1, "reused": 0, "ready": stats["ready"], "unfit": 1,
                         "unfit_reasons": [f"{name} did not take its program"]}  # why, too
        deadline = time.monotonic() + 15
        while name in engine.ours():  # the paused one is removed, off the caller's path
            assert time.monotonic() < deadline, f"{name} was not removed"
            time.sleep(0.1)


def test_many_threads_share_one_pool_without_cross_talk():
    with Sandbox(warm=2) as sandbox:
        wait_ready(sandbox, 2)
        printed = echoes_at_once(sandbox, 8)
        stats = sandbox.stats()
    assert printed == {i: f"{i} in{i}\n" for i in range(8)}
    assert stats["warm"] + stats["cold"] == 8 and stats["warm"] >= 2


def test_close_removes_every_pooled_container_and_later_runs_are_cold():
    sandbox = Sandbox(warm=3)
    wait_ready(sandbox, 3)
    assert len(engine.ours()) == 3
    sandbox.close()
    assert engine.ours() == []  # close() waits for them
    assert sandbox.execute("print(1)").stdout == "1\n" and sandbox.stats()["cold"] == 1


def test_a_missing_image_is_a_clear_error_warm_too():
    with Sandbox(warm=2, image="safecode-no-such-image:0") as sandbox:
        with pytest.raises(ImageNotFound):
            sandbox.execute("print(1)")


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.3])
def test_closing_a_pool_that_is_still_starting_leaves_nothing(tmp_path, monkeypatch, delay):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    sandbox = Sandbox(warm=4)
    time.sleep(delay)  # whatever state its containers are in
    sandbox.close()
    assert engine.ours() == []
    assert list(tmp_path.iterdir()) == []


def test_invalid_pool_size():
    for warm in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="warm"):
            Sandbox(warm=warm)


CALLER = """
import sys, time
from safecode import Sandbox
sandbox = Sandbox(warm=2)
while sandbox.stats()["ready"] < 2:
    time.sleep(0.02)
print("ready", flush=True)
sys.stdin.readline()  # the test has counted the containers: go on
if sys.argv[1] == "hang":
    time.sleep(600)
if sys.argv[1] == "loop":
    print("running", flush=True)
    sandbox.execute("while True: pass", timeout=120)
"""


@contextlib.contextmanager
def caller(tmp_path, mode):
    """A process that fills a pool of 2, waits for the word, then exits, hangs or runs a program forever."""
    process = caller_process(tmp_path, CALLER, mode)
    try:
        assert process.stdout.readline() == b"ready\n"
        assert len(engine.ours()) == 2
        process.stdin.write(b"go\n")
        process.stdin.flush()
        yield process
    finally:
        end_process(process)


def test_interpreter_exit_removes_the_pool(tmp_path):
    with caller(tmp_path, "exit") as process:
        assert process.wait(timeout=30) == 0
        assert engine.ours() == []  # removed before the interpreter exited


def test_pooled_containers_end_by_themselves_when_their_owner_is_killed(tmp_path):
    with caller(tmp_path, "hang") as process:
        process.send_signal(signal.SIGKILL)  # no clean-up code runs
        process.wait()
        assert wait_for_no_containers(seconds=10) == []
        assert remove_stale_code_dirs(min_age=0) >= 2  # what `safecode cleanup` removes after such a crash


def test_ctrl_c_during_a_warm_run_removes_every_container(tmp_path):
    with caller(tmp_path, "loop") as process:
        assert process.stdout.readline() == b"running\n"
        time.sleep(1)  # the program is running in one pooled container; a replacement is starting
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) != 0  # KeyboardInterrupt
        assert engine.ours() == []  # the running one was stopped, and the pool removed at exit
