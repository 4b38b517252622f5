"""Sessions against a real Docker Engine: state kept from cell to cell, and every limit still holding."""

import gc
import signal
import time

import pytest

from conftest import (DELIVERIES, Runs, caller_process, container_exists, end_process, on_wall,
                      wait_for_no_containers)
from safecode import Output, Result, SessionEnded, session
from safecode.engine.endpoint import Endpoint
from safecode.engine.leftovers import remove_stale_code_dirs

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]


@pytest.fixture(params=DELIVERIES)
def wall(request, docker):
    """A cell's files reach /app through a mounted folder (local engine) or through stdin (remote engine)."""
    yield from on_wall(request, request.param)


@pytest.fixture(params=["cold", "warm"])
def open_session(request, wall):
    """A session of its own sandbox (cold), or one taken from a pool with a ready container (warm), on a local and
    on a remote engine (see conftest's Runs.session); `open_session.endpoint` is where its containers are."""
    runs, sessions = Runs(request.param, wall), []

    def start(**options):
        sessions.append(runs.session(**options))
        return sessions[-1]

    start.endpoint = Endpoint(**wall)
    yield start
    for each in sessions:
        each.close()


def host_of(live):
    return live.execute("import socket; print(socket.gethostname())").stdout.strip()


def test_state_persists_and_the_last_expression_is_shown(open_session):
    with open_session() as live:
        assert live.execute("x = 41\nimport math\ndef triple(v):\n    return v * 3").stdout == ""
        assert live.execute("print(x + 1)").stdout == "42\n"
        assert live.execute("triple('ab')").stdout == "'ababab'\n"  # as the interactive interpreter shows it
        assert live.execute("math.floor(2.5)\nNone").stdout == ""  # only the last expression, and None is not shown
        assert live.execute("x = 1; x").stdout == "1\n"
        result = live.execute("print(input()[::-1])", stdin="stressed\n")
        assert result.ok and result.stdout == "desserts\n" and result.cpu_time is not None
        assert result.peak_memory > 1 << 20


def test_errors_show_the_cells_own_traceback_and_the_session_goes_on(open_session):
    with open_session() as live:
        failed = live.execute("def f():\n    return 1 / 0\nf()")
        assert failed.status == "error" and failed.exit_code == 1
        assert failed.stderr.startswith("Traceback (most recent call last):\n  File \"<cell 1>\", line 3")
        assert "ZeroDivisionError" in failed.stderr and "kernel" not in failed.stderr
        assert "SyntaxError" in live.execute("x = (").stderr
        assert live.execute("print('still here')").stdout == "still here\n" and live.alive


def test_files_in_and_files_in_scratch_persist(open_session):
    with open_session(scratch="8m") as live:
        live.execute("rows = open('data.csv').read().split()", files={"data.csv": "a\nb"})
        live.execute("open('/tmp/keep.txt', 'w').write(str(len(rows)))\nwritten = open('out/first.txt', 'w').write('1')")
        second = live.execute("print(open('/tmp/keep.txt').read(), open('data.csv').read() == 'a\\nb')\n"
                              "written = open('out/second.txt', 'w').write('2')")
        assert second.stdout == "2 True\n"
        assert second.files == {"second.txt": b"2"}  # only what is new or changed since the last cell


def test_two_sessions_see_nothing_of_each_other(open_session):
    with open_session(scratch="8m") as one, open_session(scratch="8m") as two:
        one.execute("secret = 'one'\nopen('/tmp/mine', 'w').write('one')")
        seen = two.execute("import os\nprint('secret' in globals(), os.path.exists('/tmp/mine'))")
        assert seen.stdout == "False False\n" and host_of(one) != host_of(two)


def test_a_cell_past_its_limit_is_interrupted_and_the_session_goes_on(open_session):
    with open_session() as live:
        live.execute("kept = 'yes'")
        result = live.execute("import time\nprint('working', flush=True)\nwhile True: time.sleep(0.01)", timeout=1)
        assert result.timed_out and result.status == "timeout" and not result.session_ended
        assert result.stdout == "working\n" and "KeyboardInterrupt" in result.stderr
        assert live.alive and live.execute("kept").stdout == "'yes'\n"


def test_a_cell_that_ignores_the_interrupt_ends_the_session(open_session):
    live = open_session()
    host = host_of(live)
    started = time.monotonic()
    result = live.execute("import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True: pass", timeout=1)
    took = time.monotonic() - started
    assert result.timed_out and result.session_ended and not live.alive
    assert 1 <= took < 1 + 1 + 1.5  # its limit, the grace second, and Docker's word
    assert not container_exists(host, open_session.endpoint)
    with pytest.raises(SessionEnded):
        live.execute("print(1)")


def test_running_out_of_memory_ends_the_session(open_session):
    live = open_session(memory="64m")
    result = live.execute("x = bytearray(200 << 20)")
    assert result.status == "oom" and result.session_ended and not live.alive
    with pytest.raises(SessionEnded):
        live.execute("print(1)")


def test_a_kernel_killed_by_its_cell_ends_the_session_as_a_sandbox_error(open_session):
    live = open_session()
    # The kernel is PID 1, which drops the signals its own cells send it; a fault still ends it.
    result = live.execute("import ctypes\nctypes.string_at(0)")
    assert result.status == "sandbox_error" and result.exit_code is None and result.session_ended
    assert not live.alive


def test_system_exit_ends_the_session(open_session):
    live = open_session()
    result = live.execute("raise SystemExit(3)")
    assert result.exit_code == 3 and result.session_ended and not live.alive
    with pytest.raises(SessionEnded):
        live.execute("print(1)")


def test_idle_sessions_end_by_themselves(open_session):
    live = open_session(idle=1)
    host = host_of(live)
    deadline = time.monotonic() + 10
    while container_exists(host, open_session.endpoint):
        assert time.monotonic() < deadline, "the idle session went on"
        time.sleep(0.2)
    assert not live.alive
    with pytest.raises(SessionEnded):
        live.execute("print(1)")


def test_a_session_ends_after_its_lifetime_however_busy(open_session):
    live = open_session(lifetime=1)
    result = live.execute("import time\nwhile True: time.sleep(0.1)", timeout=30)
    assert result.session_ended and result.duration < 10


def test_a_rich_last_expression_is_a_display_and_display_works_in_cells(open_session):
    with open_session() as live:
        live.execute("class Html:\n    def _repr_html_(self):\n        return '<p>x</p>'\n"
                     "    def __repr__(self):\n        return 'Html()'")
        result = live.execute("print('a')\ndisplay(1)\nHtml()")
        assert result.stdout == "a\n", result.stderr  # the value's text is in its display: shown once
        assert [display.data for display in result.displays] == [
            {"text/plain": "1"}, {"text/html": "<p>x</p>", "text/plain": "Html()"}]
        assert live.execute("print(repr(_))").stdout == "Html()\n"  # `_` is the last value, as in the REPL
        assert live.execute("import IPython").stderr.endswith("ModuleNotFoundError: No module named 'IPython'\n")


def test_a_lifetime_holds_with_cells_arriving_every_few_tenths_of_a_second(open_session):
    lifetime = 2
    live = open_session(lifetime=lifetime)
    host, opened = host_of(live), time.monotonic()
    ended = None
    while time.monotonic() - opened < 10:
        try:
            result = live.execute("import time\ntime.sleep(0.2)\n1")
        except SessionEnded:
            ended = time.monotonic() - opened
            break
        if result.session_ended:  # the cell in flight when the lifetime ran out says so
            assert f"lifetime of {lifetime}s" in result.stderr and result.status != "ok"
        time.sleep(0.1)
    assert ended is not None and lifetime - 0.5 < ended < lifetime + 1.5, ended  # within a second (and a cell)
    assert not live.alive
    with pytest.raises(SessionEnded):
        live.execute("1")
    assert not container_exists(host, open_session.endpoint)


def test_leaving_a_cell_early_ends_the_session_and_its_container(open_session):
    live = open_session()
    host = host_of(live)
    with live.stream("import time\nprint('on', flush=True)\nwhile True: time.sleep(0.05)") as run:
        assert isinstance(next(run), Output)
    assert not live.alive and not container_exists(host, open_session.endpoint)


def test_close_and_garbage_collection_remove_the_container():
    live = session()
    host = host_of(live)
    live.close()
    live.close()
    assert not container_exists(host)
    dropped = session()
    host = host_of(dropped)
    del dropped
    gc.collect()
    assert not container_exists(host)


def test_a_session_whose_owner_is_killed_ends_by_itself(tmp_path):
    owner = caller_process(
        tmp_path, "from safecode import session\nlive = session()\nlive.execute('x = 1')\nprint('open', flush=True)\n"
                  "import time\ntime.sleep(60)\n",
    )
    try:
        assert owner.stdout.readline() == b"open\n"
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    finally:
        end_process(owner)
    assert wait_for_no_containers(seconds=10) == []  # its stdin closed: the kernel ended, and the container
    assert remove_stale_code_dirs(min_age=0) == 1  # what the next process's sweep removes


def test_a_cell_streams_as_it_runs():
    with session() as live:
        items = list(live.stream("import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.3)"))
        assert isinstance(items[-1], Result) and items[-1].stdout == "0\n1\n2\n"
        assert sum(isinstance(item, Output) for item in items) >= 3


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="idle"):
        session(idle=0)
    with session() as live:
        with pytest.raises(TypeError):
            live.execute(b"print(1)")
        with pytest.raises(ValueError, match="timeout"):
            live.execute("print(1)", timeout=-1)
        assert live.alive
