"""The asyncio face against a real Docker Engine: awaited runs, cancellation, and a loop that never waits."""

import asyncio
import gc
import sys
import time

import pytest

from conftest import container_exists
from safecode import AsyncSandbox, Output, Result, aexecute, engine

pytestmark = [pytest.mark.docker, pytest.mark.usefixtures("docker")]

ENDLESS = "import socket, time\nprint(socket.gethostname(), flush=True)\nwhile True: time.sleep(0.05)\n"


def run(coroutine):
    return asyncio.run(coroutine)


async def ready(sandbox, count=1):
    deadline = time.monotonic() + 30
    while sandbox.stats()["ready"] < count:
        assert time.monotonic() < deadline, "the pool never filled"
        await asyncio.sleep(0.02)


def test_aexecute():
    result = run(aexecute("print(input()[::-1])", stdin="stressed\n"))
    assert result.ok and result.stdout == "desserts\n"


def test_async_sandbox_warm_execute_and_stream():
    async def main():
        async with AsyncSandbox(warm=2, timeout=5) as sandbox:
            await ready(sandbox, 2)
            result = await sandbox.execute("print(6 * 7)")
            items = [item async for item in sandbox.stream("import sys; print('a'); print('b', file=sys.stderr)")]
            return result, items, sandbox.stats()

    result, items, stats = run(main())
    assert result.stdout == "42\n"
    assert isinstance(items[-1], Result) and items[-1].stdout == "a\n" and items[-1].stderr == "b\n"
    assert all(isinstance(item, Output) for item in items[:-1])
    assert stats["warm"] == 2 and stats["cold"] == 0


async def first_host(sandbox, started):
    """Start ENDLESS in a task; return the task and the container's hostname once the program runs."""
    async def consume():
        async for item in sandbox.stream(ENDLESS):
            started.set_result(item.text.strip()) if not started.done() else None

    task = asyncio.ensure_future(consume())
    return task, await started


@pytest.mark.parametrize("warm", [0, 1])
def test_task_cancel_kills_the_container_within_a_second(warm):
    async def main():
        async with AsyncSandbox(warm=warm) as sandbox:
            await ready(sandbox, warm)
            task, host = await first_host(sandbox, asyncio.get_running_loop().create_future())
            cancelled = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return host, time.monotonic() - cancelled

    host, took = run(main())
    assert took < 1.0
    assert not container_exists(host)


def test_wait_for_timeout_leaves_nothing():
    async def main():
        started = time.monotonic()
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(aexecute("while True: pass"), 1.5)
        return time.monotonic() - started

    assert run(main()) < 2.5
    assert engine.ours() == []


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.timeout is new in Python 3.11")
def test_asyncio_timeout_leaves_nothing():
    async def main():
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(1.5):
                await aexecute("while True: pass")

    run(main())
    assert engine.ours() == []


def test_leaving_async_for_early_removes_the_container():
    async def main():
        async with AsyncSandbox() as sandbox:
            async for item in sandbox.stream(ENDLESS):
                host = item.text.strip()
                break
            await asyncio.sleep(0.5)  # the loop closes the abandoned generator on its next turns
            return host

    assert not container_exists(run(main()))


def test_the_loop_never_waits_with_100_runs_in_flight():
    async def main():
        lateness = []

        async def ticker(stop):
            while not stop.is_set():
                before = time.monotonic()
                await asyncio.sleep(0.01)
                lateness.append(time.monotonic() - before - 0.01)

        stop = asyncio.Event()
        tick = asyncio.ensure_future(ticker(stop))
        async with AsyncSandbox(warm=4, reuse=5, timeout=60) as sandbox:  # 20 containers: starts, reuse and runs
            results = await asyncio.gather(*(sandbox.execute(f"print({i})") for i in range(100)))
        stop.set()
        await tick
        return results, lateness

    gc.freeze()  # pytest's own large heap would make each full collection a pause of its own, in any thread
    try:
        results, lateness = run(main())
    finally:
        gc.unfreeze()
    assert [r.stdout for r in results] == [f"{i}\n" for i in range(100)]
    print(f"the loop was late by {max(lateness) * 1000:.1f} ms at most, over {len(lateness)} ticks")
    assert len(lateness) > 100 and max(lateness) < 0.05, f"the loop was late by {max(lateness) * 1000:.0f} ms"


def test_async_sessions_keep_state_and_end_cleanly():
    async def main():
        async with AsyncSandbox(warm=1) as sandbox:
            await ready(sandbox)
            async with sandbox.session() as live:
                await live.execute("x = 41")
                pieces = [item async for item in live.stream("print(x + 1)")]
                opened = await sandbox.session()
                other = await opened.execute("print('x' in globals())")
                await opened.close()
                return pieces[-1].stdout, other.stdout, live.alive

    assert run(main()) == ("42\n", "False\n", True)
