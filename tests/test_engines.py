"""What differs between walls, against the real engines: gVisor's kernel and limits, podman's names, a remote engine
that sees none of our files, and engines that stop answering. (The runner's whole suite runs on every wall too:
test_execute.py, test_files.py and test_sessions.py.)"""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import PACKAGE_PARENT, assert_nothing_left, code_folders
from safecode import DockerError, DockerUnavailable, ImageNotFound, Sandbox, engine, execute
from safecode.engine.endpoint import Endpoint
from safecode.engine.leftovers import kill_stray_gvisor_processes, stray_gvisor_processes
from safecode.result import stop_reason

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]

KERNEL = "import platform; print(platform.release())"


# gVisor --------------------------------------------------------------------------------------------------------

def test_under_runsc_the_program_meets_gvisors_kernel(runsc_wall):
    assert execute(KERNEL, **runsc_wall).stdout == "4.4.0\n"
    assert execute(KERNEL).stdout.strip() == os.uname().release  # runc: the host's own


@pytest.mark.parametrize("runtime", ["runc", "runsc"])
def test_the_process_limit_means_the_programs_processes_under_both_runtimes(runsc_wall, runtime):
    # Under gVisor, Docker's pids limit counts gVisor's own host tasks; the program's processes meet its nproc limit
    code = ("import os, time\nfor _ in range(30):\n    if os.fork() == 0:\n        time.sleep(3); os._exit(0)\n"
            "print('30')")
    limited = execute(code, runtime=runtime, pids=8)
    assert limited.status == "error" and "BlockingIOError" in limited.stderr
    assert execute(code, runtime=runtime, pids=64, memory="512m").stdout == "30\n"


def test_a_sandbox_that_ends_before_its_program_says_so(runsc_wall):
    # Only gVisor lets a program end its supervisor: under runc the supervisor is PID 1, which drops every signal a
    # program sends it, and even an operator's SIGTERM (test_reuse.py tries them all). The reading is the host's.
    result = execute("import os, signal, time\nos.kill(os.getppid(), signal.SIGTERM)\ntime.sleep(5)", **runsc_wall)
    assert result.status == "sandbox_error" and result.exit_code is None and not result.oom_killed
    assert "The sandbox ended before the program did" in stop_reason(result, Sandbox().limits)


def test_a_failed_runsc_start_is_a_clear_error_and_leaves_no_gvisor_process(runsc_wall):
    for memory in ("8m", "16m"):  # gVisor itself does not start in 8 MiB, nor the interpreter beside it in 16
        with pytest.raises(DockerError, match=f"ran out of memory before its program could start: {memory} is too "
                                              "little for gVisor and the interpreter"):
            execute("print(1)", memory=memory, **runsc_wall)
    assert_nothing_left(Endpoint(**runsc_wall))


def test_cleanup_finds_and_kills_gvisors_processes_whose_container_is_gone(runsc_wall):
    with Sandbox(warm=1, **runsc_wall) as sandbox:
        deadline = time.monotonic() + 30
        while not sandbox.stats()["ready"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        live = {container for _, container in stray_gvisor_processes(min_age=0)}
        assert not live, "gVisor processes of a running container are not stray"
        gone = "ab" * 32  # the id of no container: such processes are what a failed start leaves
        sleeper = ["-c", "import time; time.sleep(60)", f"--bundle=/run/x/moby/{gone}/"]
        other, renamed = (subprocess.Popen([name, *sleeper], executable="/usr/bin/python3", stdin=subprocess.DEVNULL)
                          for name in ("python3", "runsc-gofer"))  # gVisor's processes are known by their argv[0]
        try:
            deadline = time.monotonic() + 5
            while (renamed.pid, gone) not in stray_gvisor_processes(min_age=0):
                assert time.monotonic() < deadline, "the stray gVisor process was not found"
                time.sleep(0.05)
            assert kill_stray_gvisor_processes(min_age=0) == 1
            assert renamed.wait(5) == -signal.SIGKILL
            assert other.poll() is None, "a process that is not gVisor's was killed"
        finally:
            for process in (other, renamed):
                process.kill()
                process.wait()
        assert sandbox.execute("print('still warm')").stdout == "still warm\n"


def test_an_unknown_runtime_is_a_clear_error_naming_the_engines_own():
    with pytest.raises(DockerError, match=r"no runtime 'nosuch'; it has: .*runc"):
        execute("print(1)", runtime="nosuch")


# Podman --------------------------------------------------------------------------------------------------------

def test_podman_runs_are_podmans_own(podman_wall):
    with Sandbox(**podman_wall).stream("import socket, time\nprint(socket.gethostname(), flush=True)\n"
                                       "time.sleep(30)") as run:
        host = next(iter(run)).text.strip()
        listed = subprocess.run(["podman", "ps", "--quiet", "--filter", f"id={host}"], capture_output=True,
                                text=True).stdout
        assert listed.strip(), "the program's container is not podman's"
        docker = engine.docker("ps", "--quiet", "--filter", f"id={host}").stdout
        assert not docker.strip()


def test_podman_runs_gvisor_too(podman_wall, runsc_wall):
    assert execute(KERNEL, **podman_wall, **runsc_wall).stdout == "4.4.0\n"
    with pytest.raises(DockerError, match="no runtime 'nosuch'; it has: .*runc"):
        execute("print(1)", runtime="nosuch", **podman_wall)
    assert_nothing_left(Endpoint(**podman_wall, **runsc_wall))


def test_podman_missing_image_is_a_clear_error(podman_wall):
    with pytest.raises(ImageNotFound):
        execute("print(1)", image="safecode-no-such-image:1", **podman_wall)


# A remote engine -----------------------------------------------------------------------------------------------

def test_a_remote_engines_programs_get_their_code_through_stdin_and_see_no_folder_of_ours(ssh_wall, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with Sandbox(**ssh_wall).stream(
        "import os\nprint(sorted(os.listdir('/app')), open('/app/d/x').read())\n"
        "print([line.split()[2] for line in open('/proc/mounts') if line.split()[1] == '/app'])\n"
        "import time\ntime.sleep(0.5)\nprint('done')", files={"d/x": "y"},
    ) as run:
        next(iter(run))
        assert list(tmp_path.iterdir()) == [], "a code folder was made for an engine that cannot see it"
        result = run.result()
    assert result.stdout == "['d', 'main.py'] y\n['tmpfs']\ndone\n"
    assert execute("print(sorted(__import__('os').listdir('/app')))").stdout == "['main.py']\n"


def test_a_docker_context_and_docker_host_reach_the_remote_engine(second_engine, ssh_wall, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    made = subprocess.run(["docker", "context", "create", "far", "--docker", f"host={second_engine.host}"],
                          capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    code = "import socket; print(socket.gethostname())"
    for keywords, env in (({"context": "far"}, {}), ({}, {"DOCKER_CONTEXT": "far"}),
                          ({}, {"DOCKER_HOST": second_engine.host})):
        with monkeypatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            assert not Endpoint(**keywords).local
            with Sandbox(**keywords).stream(code + "\nimport time\ntime.sleep(30)") as run:
                host = next(iter(run)).text.strip()
                assert second_engine.docker("ps", "--quiet", "--filter", f"id={host}").stdout.strip()


def test_the_command_line_reaches_a_remote_engine(ssh_wall):
    proc = subprocess.run(
        [sys.executable, "-m", "safecode", "run", "--host", ssh_wall["host"], "--json", "-c", KERNEL],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": PACKAGE_PARENT}, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "ok"


def test_an_engine_that_stops_answering_mid_run_is_a_clear_error_not_a_hang(second_engine, ssh_wall, monkeypatch):
    monkeypatch.setattr(engine.cli, "REMOVE_TIMEOUT", 3)  # the patience is not what is tested: 3 s, not 15
    started = time.monotonic()
    try:
        with pytest.raises((DockerUnavailable, DockerError)) as raised:
            with Sandbox(**ssh_wall).stream("import time\nprint('on', flush=True)\ntime.sleep(60)", timeout=2) as run:
                next(iter(run))
                second_engine.stop_answering()
                run.result()
        assert "did not answer in 3 s" in str(raised.value)
        assert time.monotonic() - started < 30
    finally:
        second_engine.answer_again()
    # The container ends by itself (the supervisor's backstop), however long its engine was away
    deadline = time.monotonic() + 30
    while engine.ours(Endpoint(**ssh_wall)):
        assert time.monotonic() < deadline, "the container outlived its backstop"
        time.sleep(0.5)
    assert not code_folders()


def test_a_connection_lost_mid_run_is_a_clear_error_and_the_container_goes(second_engine, ssh_wall):
    with pytest.raises(DockerUnavailable, match="connection to docker at ssh://.* was lost during the run"):
        with Sandbox(**ssh_wall).stream("import time\nprint('on', flush=True)\ntime.sleep(60)", timeout=30) as run:
            next(iter(run))
            second_engine.drop_connections()
            run.result()
    assert not engine.ours(Endpoint(**ssh_wall)), "the container was not removed through a new connection"
