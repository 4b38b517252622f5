"""python -m safecode, run as a user would run it."""

import fcntl
import json
import os
import pty
import select
import subprocess
import sys
import termios
import time

import pytest

from conftest import end_process

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]


def safecode(*args, input="", env=None):
    return subprocess.run(
        [sys.executable, "-m", "safecode", *args], input=input, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})},
    )


def test_version():
    from safecode import __version__

    proc = subprocess.run([sys.executable, "-m", "safecode", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout == f"safecode {__version__}\n"


def test_piped_stdin_is_the_programs(tmp_path):
    script = tmp_path / "rev.py"
    script.write_text("print(input()[::-1])")
    proc = subprocess.run(f"echo abc | {sys.executable} -m safecode run {script}", shell=True,
                          capture_output=True, text=True, timeout=120)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "cba\n", "")


def test_output_appears_as_it_is_printed(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text("import time\nprint('first')\ntime.sleep(2)\nprint('second')")
    proc = subprocess.Popen([sys.executable, "-m", "safecode", "run", str(script)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout.readline() == b"first\n"
        first = time.monotonic()
        assert proc.stdout.readline() == b"second\n"
        assert time.monotonic() - first > 1.5  # the first line was shown well before the program ended
        assert proc.wait(timeout=30) == 0
    finally:
        end_process(proc)


class Terminal:
    """`python -m safecode run SCRIPT` on a pseudo-terminal of its own, as a person at a terminal runs it."""

    def __init__(self, script):
        self.master, slave = pty.openpty()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "safecode", "run", str(script)], stdin=slave, stdout=slave, stderr=slave,
            start_new_session=True, preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(slave)
        self.screen = b""

    def wait_for(self, text, seconds=30):
        deadline = time.monotonic() + seconds
        while text.encode() not in self.screen:
            assert time.monotonic() < deadline, f"waited for {text!r}; the screen shows {self.screen!r}"
            if select.select([self.master], [], [], 0.1)[0]:
                try:
                    self.screen += os.read(self.master, 4096)
                except OSError:  # the other side closed
                    time.sleep(0.1)

    def type(self, keys):
        os.write(self.master, keys.encode())

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        os.close(self.master)


@pytest.fixture
def terminal(tmp_path):
    terminals = []

    def open_terminal(program):
        script = tmp_path / "program.py"
        script.write_text(program)
        terminals.append(Terminal(script))
        return terminals[-1]

    yield open_terminal
    for each in terminals:
        each.close()


def test_input_reads_what_the_person_types_line_by_line(terminal):
    screen = terminal("name = input('name? ')\nprint('hello', name)\nage = int(input('age? '))\nprint(age + 1)\n")
    screen.wait_for("name? ")
    screen.type("Ada\n")
    screen.wait_for("hello Ada")  # answered before the next line is typed
    screen.wait_for("age? ")
    screen.type("41\n")
    screen.wait_for("42")
    assert screen.proc.wait(timeout=30) == 0


def test_ctrl_c_ends_the_program_and_its_container(terminal):
    screen = terminal("import time\nprint('running', flush=True)\nwhile True: time.sleep(1)\n")
    screen.wait_for("running")
    screen.type("\x03")  # what Ctrl-C sends: the terminal turns it into SIGINT for the foreground process
    assert screen.proc.wait(timeout=30) == 130
    # the `docker` fixture asserts that no container remains


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
    assert set(result) >= {"stderr", "exit_code", "timed_out", "oom_killed", "truncated", "duration", "cpu_time", "peak_memory"}


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


PROFILE_HOLDS = ("safecode's profile allows 260 calls (Docker's default: 301); refused from inside: io_uring_setup, "
                 "memfd_create, ptrace, unshare")


def test_doctor_passes_on_this_host():
    proc = safecode("doctor")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all checks passed" in proc.stdout and "FAIL" not in proc.stdout
    assert proc.stdout.count("[ok]") == 13
    assert "runs sandboxes with runc" in proc.stdout and "runc (default)" in proc.stdout
    assert PROFILE_HOLDS in proc.stdout
    assert "seccomp filter active (mode 2)" in proc.stdout and "through its read-only mount" in proc.stdout
    assert "counts the program's processes and threads (the container's pids cgroup)" in proc.stdout


def test_doctor_under_gvisor_proves_its_kernel_and_says_what_the_process_limit_means(runsc_wall):
    proc = safecode("doctor", "--runtime", "runsc")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("[ok]") == 13 and "runs sandboxes with runsc" in proc.stdout
    assert "the program runs on gVisor's kernel" in proc.stdout and PROFILE_HOLDS in proc.stdout
    assert "the container's pids cgroup counts gVisor's own host tasks" in proc.stdout


def test_doctor_on_podman_and_on_a_remote_engine(podman_wall, ssh_wall):
    podman = safecode("doctor", "--engine", "podman")
    assert podman.returncode == 0 and "podman, engine 4" in podman.stdout, podman.stdout + podman.stderr
    assert PROFILE_HOLDS in podman.stdout
    remote = safecode("doctor", "--host", ssh_wall["host"])
    assert remote.returncode == 0, remote.stdout + remote.stderr
    assert "code reaches /app through stdin" in remote.stdout and remote.stdout.count("[ok]") == 13
    assert PROFILE_HOLDS in remote.stdout  # the CLI sent the profile's content to the engine over SSH


def test_doctor_shows_the_engines_default_is_wider():
    proc = safecode("doctor", "--seccomp", "engine")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "the engine's default profile (wider than safecode's); open from inside: io_uring_setup" in proc.stdout
    bad = safecode("run", "--seccomp", "/nonexistent/profile.json", "-c", "print(1)")
    assert bad.returncode == 2 and "cannot be read" in bad.stderr and "Traceback" not in bad.stderr


def test_doctor_fails_without_a_daemon_or_with_an_unknown_runtime():
    proc = safecode("doctor", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert proc.returncode == 1 and "[FAIL] engine:" in proc.stdout
    proc = safecode("doctor", "--runtime", "nosuch")
    assert proc.returncode == 1 and "no runtime 'nosuch' here; it has:" in proc.stdout and "runsc" in proc.stdout


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
    from safecode.engine.leftovers import remove_stale_code_dirs

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(gone.stdout)  # a process that has ended
    old = time.time() - 3600
    stale = tmp_path / "safecode-0123456789abcdef-x1y2"  # an older version's folder, long unused: age decides
    killed = tmp_path / f"safecode-00112233445566aa-{dead_pid}-k1"  # its maker was killed, its container is gone
    running = tmp_path / f"safecode-00112233445566bb-{os.getpid()}-r1"  # its maker runs: never another's to remove
    other = tmp_path / "safecode-image-abc"  # not a code folder
    fresh = tmp_path / "safecode-fedcba9876543210-q"  # young: its container may be starting right now
    for path in (stale, killed, running, other, fresh):
        path.mkdir()
    for path in (stale, killed, running, other):
        os.utime(path, (old, old))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with Sandbox(warm=1) as sandbox:
        while sandbox.stats()["ready"] < 1:
            time.sleep(0.02)
        (live,) = [path for path in tmp_path.iterdir() if path.name.startswith(sandbox._pool._ready[0].name)]
        os.utime(live, (old, old))  # old, but its container is alive
        remove_stale_code_dirs()  # (the process's first sandbox may have swept them already, in the background)
        assert not stale.exists() and not killed.exists()
        assert live.exists() and running.exists() and other.exists() and fresh.exists()
        assert sandbox.execute("print('still fine')").stdout == "still fine\n"
    running.rmdir()


def test_a_new_process_sweeps_what_a_killed_one_left(tmp_path):
    """No `cleanup` needed: the next process that starts a sandbox removes a killed caller's stale folder."""
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    killed = tmp_path / f"safecode-00112233445566cc-{int(gone.stdout)}-k2"
    killed.mkdir()
    os.utime(killed, (0, 0))
    proc = safecode("run", "-c", "import time; time.sleep(1); print('ran')", env={"TMPDIR": str(tmp_path)})
    assert proc.stdout == "ran\n" and not killed.exists()


def test_cleanup_command_removes_containers_and_stale_folders(tmp_path):
    stale = tmp_path / "safecode-0123456789abcdef-x1y2"
    stale.mkdir()
    os.utime(stale, (0, 0))
    proc = safecode("cleanup", env={"TMPDIR": str(tmp_path)})
    assert proc.returncode == 0 and "removed 0 container(s) from docker\nremoved 1 stale code folder(s)" in proc.stdout
    assert not stale.exists()


def test_files_in_scratch_and_files_out(tmp_path):
    data = tmp_path / "numbers.csv"
    data.write_text("1\n2\n3\n")
    out = tmp_path / "results"
    proc = safecode(
        "run", "--file", str(data), "--file", f"input/renamed.csv={data}", "--scratch", "8m", "--out", str(out),
        "-c", "import os\nprint(sorted(os.listdir('.')), sum(map(int, open('input/renamed.csv'))))\n"
              "os.makedirs('out/deep')\nopen('out/deep/total.txt', 'w').write('6')\nos.symlink('/etc', 'out/etc')",
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "['input', 'main.py', 'numbers.csv', 'out'] 6\n"
    assert (out / "deep" / "total.txt").read_text() == "6" and not (out / "etc").exists()
    assert "not returned from out/: 'etc': a link, not returned" in proc.stderr


def test_out_refuses_to_write_through_a_link_outside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "results"
    out.mkdir()
    (out / "sub").symlink_to(outside)
    proc = safecode("run", "--scratch", "8m", "--out", str(out), "-c",
                    "import os\nos.makedirs('out/sub')\nopen('out/sub/x.txt', 'w').write('x')")
    assert proc.returncode == 2 and "outside" in proc.stderr and "Traceback" not in proc.stderr
    assert list(outside.iterdir()) == []


def test_bad_file_arguments_are_clear_errors(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("x")
    proc = safecode("run", "-c", "print(1)", "--file", f"../up.csv={data}")
    assert proc.returncode == 2 and "'..'" in proc.stderr and "Traceback" not in proc.stderr


DISPLAYS = (
    "class Table:\n"
    "    def _repr_html_(self):\n"
    "        return '<table><tr><td>1</td></tr></table>'\n"
    "    def __repr__(self):\n"
    "        return 'Table(1)'\n"
    "print('before')\n"
    "display(Table())\n"
    "print('after')\n"
    "display({'image/png': b'PNG bytes'}, raw=True)\n"
)


def test_displays_print_their_text_where_they_came_and_out_writes_each_rich_form_without_scratch(tmp_path):
    proc = safecode("run", "--out", str(tmp_path / "out"), "-c", DISPLAYS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "before\nTable(1)\nafter\n"  # the picture has no text to print
    written = {path.name: path.read_bytes() for path in (tmp_path / "out").iterdir()}
    assert written == {"display-1.html": b"<table><tr><td>1</td></tr></table>", "display-2.png": b"PNG bytes"}
    result = json.loads(safecode("run", "--json", "-c", DISPLAYS).stdout)
    assert result["displays"] == [{"text/html": "<table><tr><td>1</td></tr></table>", "text/plain": "Table(1)"},
                                  {"image/png": "UE5HIGJ5dGVz"}]
    assert result["stdout"] == "before\nafter\n" and result["displays_left_out"] == []


def test_json_carries_the_files_in_base64():
    proc = safecode("run", "--json", "--scratch", "8m", "-c", "open('out/a.bin', 'wb').write(bytes([0, 255]))")
    result = json.loads(proc.stdout)
    assert result["files"] == {"a.bin": "AP8="} and result["files_left_out"] == []
