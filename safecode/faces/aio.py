"""The asyncio face: the same runs as Sandbox, awaited. The event loop never waits on Docker.

Each run is the blocking Sandbox.stream iterated on a thread of its own, which hands every event to the loop with
`call_soon_threadsafe`: one reading loop serves both faces. Cancelling the awaiting task flips the run's cancel
switch, which wakes that thread at once; it removes the container, and the task goes on only when that is done.
"""

import asyncio
from typing import Any, AsyncIterator, Dict, List, Optional

from ..limits import Limits
from ..result import Result
from ..verdicts import Report
from .sandbox import Files, Input, Sandbox
from .session import IDLE, LIFETIME, Session
from .stream import Event, Stream


class AsyncSandbox:
    """A Sandbox for asyncio code: `await sandbox.execute(...)`, `async for item in sandbox.stream(...)`.

    Takes the keywords of Sandbox, `warm=N` included; `async with AsyncSandbox(warm=4) as sandbox:` closes the pool.
    """

    def __init__(self, **keywords) -> None:
        self.sandbox = Sandbox(**keywords)

    @property
    def limits(self) -> Limits:
        return self.sandbox.limits

    @property
    def image(self) -> str:
        return self.sandbox.image

    @property
    def warm(self) -> int:
        return self.sandbox.warm

    def stats(self) -> Dict[str, int]:
        return self.sandbox.stats()

    def __repr__(self) -> str:
        return f"Async{self.sandbox!r}"

    async def __aenter__(self) -> "AsyncSandbox":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        """Remove every pooled container (waited for on a thread, not on the loop)."""
        await asyncio.get_running_loop().run_in_executor(None, self.sandbox.close)

    async def check(self, code: str, cases, **options) -> Report:
        """Sandbox.check, awaited (on a thread: the loop never waits on Docker)."""
        return await asyncio.get_running_loop().run_in_executor(None, lambda: self.sandbox.check(code, cases,
                                                                                                 **options))

    async def check_many(self, submissions, **options) -> List[Report]:
        """Sandbox.check_many, awaited: the Reports in the order given."""
        return await asyncio.get_running_loop().run_in_executor(
            None, lambda: list(self.sandbox.check_many(submissions, **options)))

    async def execute(self, code: str, *, stdin: Input = "", timeout: Optional[float] = None, files: Files = None,
                      scratch: Optional[str] = None) -> Result:
        """Run `code` as Sandbox.execute does; return its Result."""
        return await _last(self.stream(code, stdin=stdin, timeout=timeout, files=files, scratch=scratch))

    async def stream(self, code: str, *, stdin: Input = "", timeout: Optional[float] = None, files: Files = None,
                     scratch: Optional[str] = None) -> AsyncIterator[Event]:
        """Yield Output pieces and Displays as the program makes them, then its Result, as Sandbox.stream does."""
        async for item in _events(self.sandbox.stream(code, stdin=stdin, timeout=timeout, files=files,
                                                      scratch=scratch)):
            yield item

    def session(self, *, idle: float = IDLE, lifetime: float = LIFETIME) -> "AsyncSession":
        """An AsyncSession: `async with sandbox.session() as s:`, or `s = await sandbox.session()`."""
        return AsyncSession(self.sandbox, idle=idle, lifetime=lifetime)


class AsyncSession:
    """A Session for asyncio code: opened by `await` or `async with`, cells awaited or iterated with `async for`."""

    def __init__(self, sandbox: Sandbox, *, idle: float = IDLE, lifetime: float = LIFETIME) -> None:
        self._open = lambda: sandbox.session(idle=idle, lifetime=lifetime)
        self.session: Optional[Session] = None

    def __await__(self):
        return self._opened().__await__()

    async def _opened(self) -> "AsyncSession":
        if self.session is None:  # starting a container blocks: on a thread, not on the loop
            self.session = await asyncio.get_running_loop().run_in_executor(None, self._open)
        return self

    @property
    def alive(self) -> bool:
        return self.session is not None and self.session.alive

    async def __aenter__(self) -> "AsyncSession":
        return await self._opened()

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def close(self) -> None:
        if self.session is not None:
            await asyncio.get_running_loop().run_in_executor(None, self.session.close)

    async def execute(self, code: str, *, stdin="", timeout: Optional[float] = None, files: Files = None) -> Result:
        """Run one cell as Session.execute does; its Result."""
        return await _last(self.stream(code, stdin=stdin, timeout=timeout, files=files))

    async def stream(self, code: str, *, stdin="", timeout: Optional[float] = None,
                     files: Files = None) -> AsyncIterator[Event]:
        """Yield a cell's Output pieces and Displays as they come, then its Result, as Session.stream does."""
        await self._opened()
        assert self.session is not None
        async for item in _events(self.session.stream(code, stdin=stdin, timeout=timeout, files=files)):
            yield item


async def _last(events: AsyncIterator[Event]) -> Result:
    """The Result that ends a stream of events."""
    async for item in events:
        if isinstance(item, Result):
            return item
    raise AssertionError("a stream always ends with its Result")


async def _events(run: Stream) -> AsyncIterator[Event]:
    """The events of a blocking Stream, iterated on a thread of its own and handed to the event loop."""
    loop = asyncio.get_running_loop()
    queue: "asyncio.Queue[Any]" = asyncio.Queue()

    def deliver(item):
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            run.cancel()

    run.forward(deliver)
    ended = False
    try:
        while True:
            item = await queue.get()
            ended = isinstance(item, (Result, BaseException))
            if isinstance(item, BaseException):
                raise item
            yield item
            if ended:
                return
    finally:
        if not ended:
            run.cancel()
            while not isinstance(await queue.get(), (Result, BaseException)):
                pass  # the thread's last word comes after the container is gone


async def aexecute(code: str, *, stdin: Input = "", files: Files = None, **sandbox) -> Result:
    """Run `code` once in a fresh sandbox without blocking the event loop; takes the keywords of execute()."""
    for name in ("warm", "preload"):
        if name in sandbox:
            raise TypeError(f"{name} is a keyword of AsyncSandbox: a pool serves many runs, not one")
    return await AsyncSandbox(**sandbox).execute(code, stdin=stdin, files=files)
