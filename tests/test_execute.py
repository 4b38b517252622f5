"""execute() against a real Docker Engine: the seeds' examples and every way a run can go wrong."""

import contextlib
import os
import signal
import threading
import time

import pytest

from safecode import DockerError, DockerUnavailable, ImageNotFound, Sandbox, execute
from safecode import engine
from conftest import caller_process, end_process, wait_for_no_containers
from safecode.engine.container import start_ready
from safecode.engine.image import DEFAULT_IMAGE
from safecode.engine.leftovers import remove_stale_code_dirs
from safecode.limits import Limits

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]


@pytest.fixture
def run(wall_runs):
    """execute(), cold; or the same program through a warm Sandbox, checked to have really used a pooled container;
    each under runc, gVisor, podman and a remote engine over ssh:// (see conftest's `wall`)."""
    return wall_runs.execute


# The seeds' examples -----------------------------------------------------------------------------


def test_hello(run):
    result = run("print(2+2)")
    assert (result.stdout, result.stderr, result.exit_code, result.status) == ("4\n", "", 0, "ok")
    assert result.ok and not (result.timed_out or result.oom_killed or result.truncated)
    assert 0 < result.duration < 10


def test_cpu_time_and_peak_memory_are_the_programs(run):
    result = run(
        """
        import time
        block = bytearray(60 << 20)  # touched: resident
        started = time.process_time()
        while time.process_time() - started < 0.3:
            pass
        """
    )
    assert result.ok, result.stderr
    assert 0.3 <= result.cpu_time < 2.0
    assert 60 << 20 <= result.peak_memory < 128 << 20
    stopped = run("while True: pass", timeout=0.5)
    assert stopped.cpu_time is None and stopped.peak_memory is None  # killed by us: nobody measured the end


def test_range(run):
    assert run("for i in range(1, 11): print(i)").stdout == "".join(f"{i}\n" for i in range(1, 11))


def test_infinite_loop_times_out_with_partial_output(run):
    result = run(
        """
        import sys
        print("before", flush=True)
        print("to stderr", file=sys.stderr)
        while True:
            pass
        """,
        timeout=1,
    )
    assert result.timed_out and result.status == "timeout" and result.exit_code is None
    assert result.stdout == "before\n" and result.stderr == "to stderr\n"
    assert 1 <= result.duration < 7


def test_memory_bomb_is_oom_killed(run):
    result = run('x = "a" * 1000000000\nprint("done")')
    assert result.oom_killed and result.status == "oom" and result.exit_code is None
    assert "done" not in result.stdout


def test_memory_limit_is_the_one_asked_for(run):
    code = "x = bytearray(200 * 1024 * 1024)\nprint('fits')"
    assert run(code).oom_killed
    assert run(code, memory="400m").stdout == "fits\n"


def test_network_is_blocked(run):
    result = run(
        """
        import socket
        try:
            socket.gethostbyname("example.com")
        except OSError as error:
            print("dns", type(error).__name__)
        try:
            socket.create_connection(("1.1.1.1", 80), timeout=2)
        except OSError as error:
            print("tcp", type(error).__name__)
        import os
        print(sorted(os.listdir("/sys/class/net")))
        try:
            socket.if_nameindex()  # asks the kernel through a netlink socket, which the seccomp profile refuses
        except OSError:
            print("no netlink")
        """
    )
    assert result.stdout.splitlines() == ["dns gaierror", "tcp OSError", "['lo']", "no netlink"]


def test_nothing_is_writable(run):
    """One program tries every place (a container each would prove no more: none is written to before the next)."""
    result = run(
        """
        for path in ("/tmp/test.txt", "/app/test.txt", "/app/main.py", "/dev/shm/x", "/test.txt"):
            try:
                open(path, "w").write("hello")
                print("wrote", path)
            except OSError as error:  # read-only, no such folder, or not allowed
                print(type(error).__name__)
        """
    )
    assert result.ok and "wrote" not in result.stdout and len(result.stdout.splitlines()) == 5, result.stdout
    assert set(result.stdout.split()) <= {"OSError", "FileNotFoundError", "PermissionError"}


def test_not_root_and_no_capabilities(run, wall):
    result = run(
        """
        import os
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        print(os.getuid(), os.getgid(), status["CapEff"].strip(), status["CapBnd"].strip(), status.get("NoNewPrivs"))
        """
    )
    uid, gid, effective, bounding, no_new_privs = result.stdout.split()
    assert int(uid) >= 100_000 and uid == gid
    assert int(effective, 16) == 0 and int(bounding, 16) == 0
    assert no_new_privs == ("None" if wall.get("runtime") == "runsc" else "1")  # gVisor's kernel does not say


@pytest.mark.own_pools  # programs that reuse one container share its user id, by design: a pool of reuse=1 here
def test_each_run_has_its_own_user(run):
    uids = {run("import os; print(os.getuid())").stdout for _ in range(2)}
    assert len(uids) == 2


def test_host_environment_does_not_reach_the_container(run, monkeypatch):
    monkeypatch.setenv("SAFECODE_TEST_SECRET", "hunter2")
    result = run("import os; print(sorted(os.environ.items()))")
    assert "hunter2" not in result.stdout and "SAFECODE_TEST_SECRET" not in result.stdout


def test_program_runs_as_main_py_in_app(run):
    result = run(
        """
        import os, sys
        print(__name__, sys.argv, sys.path[0], os.getcwd(), __file__, __spec__, __package__)
        print(type(__loader__).__name__, sys.modules["__main__"].__dict__ is globals())
        """
    )
    assert result.stdout == "__main__ ['main.py'] /app /app /app/main.py None None\nSourceFileLoader True\n"


def test_threads_and_atexit_finish_and_output_is_flushed(run):
    result = run(
        """
        import atexit, sys, threading, time
        atexit.register(lambda: print("atexit ran"))
        threading.Thread(target=lambda: (time.sleep(0.3), print("thread finished"))).start()
        sys.stdout.write("no newline at the end")
        """
    )
    assert result.ok and result.stdout == "no newline at the endthread finished\natexit ran\n"


# Exit codes ------------------------------------------------------------------------------------------


EXIT_CODES = [
    ("import sys; sys.exit(3)", 3),
    ("raise ValueError('boom')", 1),
    ("import os; os._exit(42)", 42),
    ("import sys; sys.exit(125)", 125),  # Docker's own codes, used by the program: still the program's
    ("import sys; sys.exit(127)", 127),
    ("import os, signal; os.kill(os.getpid(), signal.SIGTERM)", 143),
    ("syntax error here", 1),
]


def test_exit_codes_are_the_programs(run, wall):
    """Every kind of ending on the engine's default wall; on the others (whose exit status comes back by the same
    supervisor's end mark), an exit and a signal."""
    for code, exit_code in EXIT_CODES if wall == {} else [EXIT_CODES[0], EXIT_CODES[5]]:
        result = run(code)
        assert (result.exit_code, result.status, result.ok) == (exit_code, "error", False), code


def test_traceback_is_pythons_own_and_starts_in_main_py(run):
    result = run("def f():\n    raise KeyError('missing')\nf()")
    assert result.stdout == "" and result.exit_code == 1
    assert result.stderr.startswith('Traceback (most recent call last):\n  File "/app/main.py", line 3, in <module>\n')
    assert result.stderr.endswith("KeyError: 'missing'\n") and "supervisor" not in result.stderr


def test_syntax_error_is_reported_as_python_does(run):
    result = run("print('unclosed'")
    assert result.exit_code == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith('  File "/app/main.py", line 1\n') and "SyntaxError" in result.stderr


def test_sys_exit_with_a_message(run):
    result = run("import sys; sys.exit('bye')")
    assert (result.exit_code, result.stderr) == (1, "bye\n")


# Output -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", ["sys.stdout", "sys.stderr"])
def test_flood_is_cut_at_the_limit(run, stream):
    result = run(f"import sys\nwhile True: print('x' * 1000, file={stream})", max_output=100_000)
    assert result.truncated and result.status == "output_limit" and result.exit_code is None
    assert len(result.stdout) + len(result.stderr) == 100_000
    assert result.duration < 8


def test_flood_on_both_streams_shares_one_budget(run):
    result = run(
        """
        import sys
        while True:
            sys.stdout.write("o" * 4096)
            sys.stderr.write("e" * 4096)
        """,
        max_output=200_000,
    )
    assert result.truncated and len(result.stdout) + len(result.stderr) == 200_000
    # which stream's bytes reach us first is up to Docker's copying; neither may hold the other's
    assert set(result.stdout) <= {"o"} and set(result.stderr) <= {"e"}


def test_output_up_to_the_limit_is_whole(run):
    result = run("print('x' * 99)", max_output=100)
    assert result.ok and not result.truncated and result.stdout == "x" * 99 + "\n"


def test_one_large_write_arrives_whole(run):
    # gVisor's pipes take 64 KiB a write: the program's stdout must write the rest, not drop it
    result = run("import sys\nsys.stdout.write('y' * 300_000)\nsys.stdout.buffer.write(b'z' * 300_000)")
    assert result.ok and result.stdout == "y" * 300_000 + "z" * 300_000


def test_flood_after_timeout_boundary_keeps_memory_bounded(run):
    result = run("import sys\nsys.stdout.write('y' * 50_000_000)", max_output=1_000_000)
    assert result.truncated and len(result.stdout) == 1_000_000


def test_displays_come_back_in_order_with_the_output_and_need_no_scratch(run):
    result = run(
        """
        class Table:
            def _repr_html_(self):
                return "<table><tr><td>1</td></tr></table>"
            def __repr__(self):
                return "Table(1)"
        print("before")
        display(Table(), {"a": 1})
        print("after")
        for number in range(3):
            display(number)
        """
    )
    assert result.ok and result.stdout == "before\nafter\n", result.stderr
    assert [display.data for display in result.displays] == [
        {"text/html": "<table><tr><td>1</td></tr></table>", "text/plain": "Table(1)"}, {"text/plain": "{'a': 1}"},
        {"text/plain": "0"}, {"text/plain": "1"}, {"text/plain": "2"}]


def test_printed_bytes_cannot_forge_a_display_or_break_the_stream(run):
    result = run(
        r"""
        import os, sys
        fake = b"\0" + os.urandom(16).hex().encode() + b"D000000011" + b"0011" + b'{"text/plain":"x"}'
        sys.stdout.buffer.write(fake + b"\0" * 40 + b"D" + b"tail\n")
        sys.stderr.buffer.write(fake + b"\n")
        display("real")
        print("end")
        """
    )
    assert result.ok and [display.text for display in result.displays] == ["'real'"], result
    assert result.stdout.endswith("tail\nend\n") and '{"text/plain":"x"}' in result.stdout
    assert '{"text/plain":"x"}' in result.stderr


def test_unicode_round_trip(run):
    text = "héllo ✓ 漢字 🐍"
    result = run(f"import sys\nprint({text!r})\nprint(sys.stdin.read())", stdin=text)
    assert result.stdout == f"{text}\n{text}\n"


def test_invalid_utf8_is_replaced(run):
    result = run(r"import sys; sys.stdout.buffer.write(b'ok \xff\xfe end'); sys.stderr.buffer.write(b'\xc3')")
    assert result.stdout == "ok \ufffd\ufffd end" and result.stderr == "\ufffd"


# stdin ---------------------------------------------------------------------------------------------


def test_stdin_text_and_bytes(run):
    echo = "import sys; data = sys.stdin.buffer.read(); print(len(data), data[:5])"
    assert run(echo, stdin="hello world").stdout == "11 b'hello'\n"
    assert run(echo, stdin=b"\x00\x01\x02").stdout == "3 b'\\x00\\x01\\x02'\n"
    assert run(echo).stdout == "0 b''\n"


def test_large_stdin_is_streamed(run):
    data = "line\n" * 400_000  # 2 MB: more than any pipe buffer
    result = run("import sys; print(sum(1 for _ in sys.stdin))", stdin=data)
    assert result.stdout == "400000\n"


def test_large_stdin_the_program_never_reads_does_not_hang(run):
    result = run("print('ignored stdin')", stdin="z" * 5_000_000, timeout=5)
    assert result.ok and result.stdout == "ignored stdin\n"


def test_input_reads_lines(run):
    result = run("name = input(); age = int(input()); print(f'{name} is {age}')", stdin="Ada\n36\n")
    assert result.stdout == "Ada is 36\n"


# Processes -----------------------------------------------------------------------------------------


def test_fork_bomb_is_contained(run, wall):
    result = run(
        """
        import os
        while True:
            try:
                os.fork()
            except OSError:
                pass
        """,
        timeout=1,
    )
    # Under gVisor, each process costs the sandbox's memory and host tasks: the memory limit or the sandbox's own
    # task limit (see command.host_pids) ends it first, and says so.
    assert result.status in (("timeout", "error", "oom", "sandbox_error") if wall.get("runtime") == "runsc"
                             else ("timeout", "error"))
    assert result.duration < 10


def test_pids_limit_caps_threads(run):
    code = """
        import threading, time
        n = 0
        try:
            for _ in range(500):
                threading.Thread(target=time.sleep, args=(3,), daemon=True).start()
                n += 1
        except RuntimeError:
            pass
        print(n)
    """
    assert int(run(code).stdout) < 64
    assert int(run(code, pids=200).stdout) > 100


def test_background_children_die_with_the_program(run):
    result = run(
        """
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        print("parent done")
        """
    )
    assert result.ok and result.duration < 10


# Concurrency and clean-up ---------------------------------------------------------------------------


def test_concurrent_runs_do_not_cross_talk(run):
    results = {}

    def one(token):
        results[token] = run(
            f"import sys, time; time.sleep(0.1); print({token!r}, sys.stdin.read())", stdin=token * 3
        )

    threads = [threading.Thread(target=one, args=(f"t{i}",)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for token, result in results.items():
        assert result.stdout == f"{token} {token * 3}\n"


def test_very_short_timeouts_leave_nothing_behind(run):
    for _ in range(3):
        result = run("while True: pass", timeout=0.05)
        assert result.timed_out
    # the `docker` fixture asserts that no container remains


@contextlib.contextmanager
def caller_running_a_loop(tmp_path, timeout):
    """A separate process whose execute() is, right now, running `while True: pass` with this time limit."""
    process = caller_process(
        tmp_path, f"from safecode import execute\nprint('started', flush=True)\n"
                  f"execute('while True: pass', timeout={timeout})\n",
    )
    try:
        assert process.stdout.readline() == b"started\n"
        deadline = time.monotonic() + 20
        while not running_program():  # the program, not just its container, must be running
            assert time.monotonic() < deadline, "the program never started"
            time.sleep(0.05)
        yield process
    finally:
        end_process(process)


def test_ctrl_c_in_the_caller_removes_the_container(tmp_path):
    with caller_running_a_loop(tmp_path, timeout=120) as caller:
        caller.send_signal(signal.SIGINT)
        caller.wait(timeout=20)
        assert b"KeyboardInterrupt" in caller.stderr.read()
    # the `docker` fixture asserts that no container remains


def test_a_killed_caller_leaves_nothing_running_for_long(tmp_path):
    """kill -9 runs no clean-up code: the supervisor's own alarm ends the container soon after its time limit."""
    with caller_running_a_loop(tmp_path, timeout=2) as caller:
        caller.kill()
        caller.wait()
    killed = time.monotonic()
    time.sleep(1)
    assert engine.ours(), "nothing but the alarm should stop a program whose caller is gone"
    assert wait_for_no_containers(seconds=15) == []
    assert time.monotonic() - killed < 2 + 5 + 3  # time limit + the supervisor's backstop + Docker's teardown
    assert remove_stale_code_dirs(min_age=0) >= 1  # what `safecode cleanup` removes after such a crash


def test_a_started_container_that_has_gone_is_asked_for_once_not_waited_for(monkeypatch):
    """A name not found is waited for (1.5 s) only while its creation may be in flight: a container that said it
    was ready and has gone by itself (as a session's goes when its kernel ends) is asked for once."""
    container = start_ready(Limits(), DEFAULT_IMAGE, engine.LOCAL)
    try:
        os.kill(container.proc.pid, signal.SIGSTOP)  # its client stays, while its container goes
        assert engine.docker("rm", "--force", container.name).returncode == 0
        calls = []
        real = engine.cli.docker
        monkeypatch.setattr(engine.cli, "docker", lambda *argv, **options: calls.append(argv) or real(*argv, **options))
        container.stop()
        assert [argv[0] for argv in calls] == ["rm"]
    finally:
        container.stop()


def running_program():
    """True once a container of ours holds its supervisor and the program it forked: two python3 processes."""
    for name in engine.ours():
        if engine.docker("top", name, "-o", "pid,comm").stdout.split().count("python3") >= 2:
            return True
    return False


def test_ps_on_the_host_shows_a_few_lines_not_the_supervisor(docker):
    """The command line carries a short bootstrap; the supervisor's source comes on stdin (engine/shipping.py)."""
    with Sandbox(timeout=30).stream("import time\nprint('up', flush=True)\ntime.sleep(30)") as run:
        assert next(run).text.startswith("up")
        (name,) = engine.ours()
        processes = engine.docker("top", name).stdout.splitlines()[1:]
        supervisor = [line for line in processes if "python3 -c" in line]
        assert supervisor and all(len(line) < 600 for line in processes), processes
        assert "def send_files" not in "".join(processes)


@pytest.mark.own_pools
def test_temp_dirs_are_removed(run, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    run("print(1)")
    run("while True: pass", timeout=0.5)
    with pytest.raises(ImageNotFound):
        execute("print(1)", image="safecode-no-such-image:0")
    deadline = time.monotonic() + 5  # a finished run's teardown happens off the caller's path
    while list(tmp_path.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(tmp_path.iterdir()) == []


# Docker's own failures ------------------------------------------------------------------------------


def test_missing_image_is_a_clear_error():
    with pytest.raises(ImageNotFound, match="safecode image"):
        execute("print(1)", image="safecode-no-such-image:0")


def test_daemon_down(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    with pytest.raises(DockerUnavailable, match="Cannot connect"):
        execute("print(1)")


def test_no_docker_cli(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(DockerUnavailable, match="docker"):
        execute("print(1)")


def test_docker_refusing_a_limit_is_a_docker_error():
    with pytest.raises(DockerError) as caught:
        execute("print(1)", cpus=1000)
    assert caught.value.returncode == 125 and "CPU" in str(caught.value)


def test_sandbox_is_reusable_with_its_limits():
    sandbox = Sandbox(timeout=3, memory="64m")
    assert sandbox.execute("print(1)").stdout == "1\n"
    assert sandbox.execute("x = bytearray(100 * 1024 * 1024)").oom_killed
    assert sandbox.execute("print(input())", stdin="again\n").stdout == "again\n"
