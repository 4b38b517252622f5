"""Files in, scratch space and files out: names checked before Docker, walls that hold, bounded returns."""

import os
import time

import pytest

from conftest import DELIVERIES, on_wall, wait_ready
from safecode import InvalidFile, SafecodeError, Sandbox, execute
from safecode.files import MAX_FILES, write_tree

# Names and limits, before Docker is touched ------------------------------------------------------------------

BAD_NAMES = [
    ("/etc/passwd", "absolute"), ("../x", "'..'"), ("a/../../b", "'..'"), ("a//b", "empty part"), ("", "empty"),
    ("a\0b", "control"), ("a\nb", "control"), ("a\x1bb", "control"), ("a\\b", "backslash"), ("main.py", "program"),
    ("out/x.csv", "out/"), ("out", "out/"), ("x" * 300, "over 255"), ("d/" * 600 + "x", "over 1024"), ("./a", "'.'"),
]


@pytest.mark.pure
@pytest.mark.parametrize("name, problem", BAD_NAMES)
def test_each_bad_name_is_refused_before_docker(name, problem, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")  # no docker CLI: only a check before Docker can answer
    with pytest.raises(InvalidFile) as caught:
        execute("print(1)", files={name: "x"})
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, SafecodeError)
    assert repr(name) in str(caught.value) and problem in str(caught.value)


@pytest.mark.pure
def test_too_many_files_and_too_many_bytes(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(InvalidFile, match="too many"):
        execute("print(1)", files={f"f{i}": "" for i in range(MAX_FILES + 1)})
    with pytest.raises(InvalidFile, match="'b'.*over the limit of 10"):
        execute("print(1)", files={"a": "12345", "b": b"123456"}, max_files=10)
    with pytest.raises(InvalidFile, match="both a file and a folder"):
        execute("print(1)", files={"data": "", "data/a.csv": ""})
    with pytest.raises(TypeError):
        execute("print(1)", files=["a.csv"])
    with pytest.raises(InvalidFile, match="bytes or str"):
        execute("print(1)", files={"a": 5})


@pytest.mark.pure
@pytest.mark.parametrize("scratch", ["", "lots", "0", "512k", -1])
def test_bad_scratch_sizes(scratch):
    with pytest.raises(ValueError, match="scratch"):
        Sandbox(scratch=scratch)


@pytest.mark.pure
def test_write_tree_never_leaves_its_folder(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(outside)
    write_tree(str(root), {"a/b.txt": b"ok"})
    assert (root / "a" / "b.txt").read_bytes() == b"ok"
    with pytest.raises(InvalidFile, match="outside"):
        write_tree(str(root), {"link/x.txt": b"no"})
    (root / "file-link").symlink_to(outside / "target")
    with pytest.raises(OSError):
        write_tree(str(root), {"file-link": b"no"}, replace=True)
    assert list(outside.iterdir()) == []


# Against Docker, warm and cold ---------------------------------------------------------------------------------

def docker(test):
    return pytest.mark.docker(pytest.mark.usefixtures("docker")(test))


@pytest.fixture(params=DELIVERIES)
def wall(request, docker):
    """Files reach /app through a mounted folder (local engine) or through stdin (remote engine): test both."""
    yield from on_wall(request, request.param)


@pytest.fixture
def run(wall_runs):
    """execute() with 16m of scratch unless told otherwise, cold and warm, on a local and a remote engine."""
    return lambda code, **options: wall_runs.execute(code, **{"scratch": "16m", **options})


@docker
def test_files_in_are_beside_main_py_and_read_only(run):
    result = run(
        """
        import os
        print(os.getcwd(), sorted(os.listdir()), open("data.csv").read(), open("data/2024/a.json").read())
        print(open("bytes.bin", "rb").read() == bytes(range(256)))
        try:
            open("data.csv", "a").write("more")
        except OSError:  # PermissionError, or read-only file system: refused either way
            print("refused")
        """,
        files={"data.csv": "a,b\n1,2", "data/2024/a.json": '{"x": 1}', "bytes.bin": bytes(range(256))},
        scratch=None,
    )
    assert result.ok, result.stderr
    assert result.stdout.splitlines() == [
        "/app ['bytes.bin', 'data', 'data.csv', 'main.py'] a,b", '1,2 {"x": 1}', "True", "refused"]


@docker
def test_scratch_is_writable_tmp_and_out_and_nothing_else(run):
    result = run(
        """
        import os, tempfile
        for path in ("/tmp/a", "/app/out/b", "out/c", tempfile.mkstemp()[1]):
            open(path, "w").write("ok")
        for path in ("/app/data.csv", "/app/new", "/x", "/dev/shm/x", "/etc/x"):
            try:
                open(path, "w").write("no")
                print("WROTE", path)
            except OSError:
                pass
        print(os.path.realpath("/app/out"))
        """,
        files={"data.csv": "x"},
    )
    assert result.ok and result.stdout == "/tmp/out\n", result.stdout + result.stderr
    assert result.files == {"b": b"ok", "c": b"ok"}


@docker
def test_scratch_is_noexec_nosuid_nodev_and_one_size_in_all(run):
    result = run(
        """
        import os, subprocess
        for line in open("/proc/mounts"):
            if " /tmp " in line:
                print(sorted(set(line.split()[3].split(",")) & {"noexec", "nosuid", "nodev"}))
        open("/tmp/run.sh", "w").write("#!/bin/sh\\necho ran")
        os.chmod("/tmp/run.sh", 0o755)
        try:
            subprocess.run(["/tmp/run.sh"])
        except PermissionError:
            print("no exec")
        open("/tmp/a", "wb").write(b"x" * (10 << 20))
        try:
            open("/app/out/b", "wb").write(b"x" * (10 << 20))
        except OSError as error:
            print(error.strerror)
        """,
    )
    assert result.stdout.splitlines() == ["['nodev', 'noexec', 'nosuid']", "no exec", "No space left on device"]


@docker
def test_files_out_whatever_the_exit_code(run):
    for ending in ("import sys; sys.exit(3)", "raise ValueError('boom')", "pass"):
        result = run(f"open('out/report.csv', 'w').write('a,b')\n{ending}")
        assert result.files == {"report.csv": b"a,b"} and result.files_left_out == ()
    assert result.ok


@docker
def test_links_fifos_and_bad_names_are_never_returned(run, tmp_path):
    host_file = tmp_path / "host-secret.txt"
    host_file.write_text("the host's")
    result = run(
        f"""
        import os
        os.symlink("/etc/passwd", "out/passwd")
        os.symlink({str(host_file)!r}, "out/host")
        os.symlink("/tmp", "out/dir-link")
        os.mkfifo("out/fifo")
        open("out/new\\nline.txt", "w").write("x")
        open("out/ok.txt", "w").write("ok")
        """
    )
    assert result.ok, result.stderr
    assert result.files == {"ok.txt": b"ok"}
    said = " ".join(result.files_left_out)
    for name in ("passwd", "host", "dir-link", "fifo", "new\\nline.txt"):
        assert name in said
    assert host_file.read_text() == "the host's"


@docker
def test_ten_thousand_files_come_back_bounded_and_fast(run):
    result = run(
        """
        import time
        for i in range(10000):
            open(f"out/f{i:05}", "w").write("x")
        print(time.monotonic())
        """,
        timeout=30,
    )
    after = time.monotonic() - float(result.stdout)  # the host and the container share the monotonic clock
    assert len(result.files) == MAX_FILES and "9000 more files" in result.files_left_out[-1]
    assert after < 1.0, f"the files came {after:.2f} s after the program ended"


@docker
def test_a_file_as_big_as_scratch_comes_back_fast(run):
    result = run(
        """
        import time
        with open("out/big.bin", "wb") as file:
            try:
                file.write(b"x" * (17 << 20))
            except OSError as error:
                print("full")
        print(time.monotonic())
        """,
        timeout=30,
    )
    *said, ended = result.stdout.splitlines()
    after = time.monotonic() - float(ended)
    assert said == ["full"]  # scratch is full: the file is as big as it can get
    assert len(result.files["big.bin"]) >= 15 << 20
    assert after < 1.0, f"the file came {after:.2f} s after the program ended"


@docker
def test_filling_tmp_is_an_ordinary_result(run):
    result = run("data = b'x' * (1 << 20)\nwith open('/tmp/fill', 'wb') as f:\n    while True: f.write(data)")
    assert result.status == "error" and ("No space left on device" in result.stderr or "File too large" in result.stderr)


@docker
def test_scratch_counts_against_memory(run):
    result = run("data = b'x' * (1 << 20)\nwith open('/tmp/fill', 'wb') as f:\n    while True: f.write(data)",
                 scratch="1g", memory="64m")
    assert result.status == "oom" or "MemoryError" in result.stderr or "No space" in result.stderr


@docker
def test_no_files_after_a_timeout(run):
    result = run("open('out/partial', 'w').write('x')\nwhile True: pass", timeout=1)
    assert result.timed_out and result.files == {}
    assert result.files_left_out == ("out/ was not returned: the program was stopped before its end",)


@docker
def test_without_scratch_nothing_is_writable_and_nothing_comes_back(run):
    result = run("import os\nprint(os.path.exists('out'))\nopen('/tmp/x', 'w')", scratch=None)
    assert result.stdout == "False\n" and "Read-only file system" in result.stderr
    assert result.files == {} and result.files_left_out == ()


@docker
def test_a_run_asking_for_other_scratch_runs_cold():
    with Sandbox(warm=1, scratch="8m") as sandbox:
        wait_ready(sandbox)
        result = sandbox.execute("open('out/a', 'w').write('x' * (12 << 20))", scratch="16m")
        assert result.ok and len(result.files["a"]) == 12 << 20
        assert sandbox.stats()["cold"] == 1 and sandbox.stats()["warm"] == 0


@docker
def test_files_in_are_written_for_the_run_only(tmp_path, monkeypatch):
    """The code folder holds main.py and the files only for the run; then it is gone with its container."""
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)
    assert execute("print(open('x/y.txt').read())", files={"x/y.txt": "hi"}).stdout == "hi\n"
    deadline = time.monotonic() + 5
    while os.listdir(tmp_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert os.listdir(tmp_path) == []
