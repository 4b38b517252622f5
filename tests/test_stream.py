"""stream() against a real Docker Engine, warm and cold: output as it comes, and an early exit that leaves nothing."""

import gc
import os
import threading
import time

import pytest

from conftest import container_exists
from safecode import Cancelled, Output, Result, stream

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]

SLOW = """
    import socket, sys, time
    print(socket.gethostname(), flush=True)
    time.sleep(0.6)
    print("to stderr", file=sys.stderr, flush=True)
    time.sleep(0.6)
    print("last")
"""
ENDLESS = "import socket, time\nprint(socket.gethostname(), flush=True)\nwhile True: time.sleep(0.05)\n"


@pytest.fixture
def open_stream(runs):
    """stream(), cold; or Sandbox.stream through a pool with a ready container, checked to have been used warm."""
    return runs.stream


def collect(items):
    """Each item with the seconds since the first one was asked for."""
    started = time.monotonic()
    return [(time.monotonic() - started, item) for item in items]


def test_pieces_come_as_written_and_join_into_the_result(open_stream):
    timed = collect(open_stream(SLOW))
    pieces = [item for _, item in timed[:-1]]
    result = timed[-1][1]
    assert isinstance(result, Result) and result.ok
    assert all(isinstance(piece, Output) for piece in pieces)
    assert "".join(p.text for p in pieces if p.stream == "stdout") == result.stdout
    assert "".join(p.text for p in pieces if p.stream == "stderr") == result.stderr == "to stderr\n"
    assert [p.stream for p in pieces if p.text.strip()] == ["stdout", "stderr", "stdout"]
    first, last = timed[0][0], timed[-1][0]
    assert last - first >= 1.0, "the first piece came only at the end"


def test_order_across_streams_is_the_programs(open_stream):
    code = """
        import sys, time
        for i in range(4):
            print("out", i, flush=True)
            time.sleep(0.05)
            print("err", i, file=sys.stderr, flush=True)
            time.sleep(0.05)
    """
    runs = []  # consecutive pieces of one stream, joined (print writes its words and its newline apart)
    for item in open_stream(code):
        if isinstance(item, Output):
            if runs and runs[-1][0] == item.stream:
                runs[-1][1] += item.text
            else:
                runs.append([item.stream, item.text])
    assert runs == [[s, f"{s[3:]} {i}\n"] for i in range(4) for s in ("stdout", "stderr")]


def first_line(run):
    item = next(run)
    assert isinstance(item, Output) and item.stream == "stdout"
    return item.text.strip()


def test_break_kills_the_container_at_once(open_stream):
    run = open_stream(ENDLESS)
    for item in run:
        host = item.text.strip()
        break
    run.close()  # what a for loop's owner does by dropping it; done here so the check below is not racing GC
    assert not container_exists(host)


def test_an_exception_in_the_loop_kills_the_container(open_stream):
    with pytest.raises(ZeroDivisionError):
        with open_stream(ENDLESS) as run:
            host = first_line(run)
            1 / 0
    assert not container_exists(host)


def test_a_dropped_stream_is_collected_and_its_container_removed(open_stream):
    run = open_stream(ENDLESS)
    host = first_line(run)
    del run
    gc.collect()
    assert not container_exists(host)


def test_cancel_from_another_thread(open_stream):
    run = open_stream(ENDLESS)
    host = first_line(run)
    threading.Timer(0.3, run.cancel).start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        for _ in run:
            pass
    assert time.monotonic() - started < 1.5
    assert not container_exists(host)


def test_output_cap_holds(open_stream):
    items = list(open_stream("while True: print('x' * 999)", max_output=50_000))
    result = items[-1]
    assert result.status == "output_limit" and result.truncated
    assert sum(len(item.text) for item in items[:-1]) == len(result.stdout) == 50_000


def test_time_limit_holds_and_keeps_partial_output(open_stream):
    items = list(open_stream("print('before', flush=True)\nwhile True: pass", timeout=1))
    result = items[-1]
    assert result.timed_out and result.stdout == "before\n" and 1 <= result.duration < 5
    assert "".join(item.text for item in items[:-1]) == "before\n"


def test_stdin_from_a_pipe_is_forwarded_as_it_comes(open_stream):
    read_end, write_end = os.pipe()
    code = """
        import sys
        for line in sys.stdin:
            print("got", line.strip(), flush=True)
        print("eof")
    """
    with os.fdopen(read_end, "rb") as source, open_stream(code, stdin=source) as run:
        os.write(write_end, b"one\n")
        answer = ""
        while not answer.endswith("\n"):  # print writes its words apart: pieces until the line is whole
            answer += next(run).text
        assert answer == "got one\n"  # the program answered before its input ended
        os.write(write_end, b"two\n")
        os.close(write_end)
        rest = list(run)
    assert rest[-1].stdout == "got one\ngot two\neof\n"


def test_stdin_from_a_regular_file(open_stream, tmp_path):
    path = tmp_path / "input.txt"
    path.write_bytes(b"line\n" * 100_000)
    with open(path, "rb") as source:
        items = list(open_stream("import sys; print(sum(1 for _ in sys.stdin))", stdin=source))
    assert items[-1].stdout == "100000\n"


def test_bad_arguments_raise_before_docker_is_touched():
    with pytest.raises(TypeError):
        stream(b"print(1)")
    with pytest.raises(TypeError, match="stdin"):
        stream("print(1)", stdin=42)
