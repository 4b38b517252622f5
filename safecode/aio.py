"""The asyncio face: the same runs as Sandbox, awaited. The event loop never waits on Docker.

Each run is the blocking Sandbox.stream iterated on a thread of its own, which hands every event to the loop with
`call_soon_threadsafe`: one reading loop serves both faces. Cancelling the awaiting task flips the run's cancel
switch, which wakes that thread at once; it removes the container, and the task goes on only when that is done.
"""

import asyncio
from typing import Any, AsyncIterator, Dict, Optional

from .limits import Limits
from .result import Result
from .sandbox import Files, Input, Sandbox
from .stream import Event


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

    async def execute(self, code: str, *, stdin: Input = "", timeout: Optional[float] = None, files: Files = None,
                      scratch: Optional[str] = None) -> Result:
        """Run `code` as Sandbox.execute does; return its Result."""
        async for item in self.stream(code, stdin=stdin, timeout=timeout, files=files, scratch=scratch):
            if isinstance(item, Result):
                return item
        raise AssertionError("a stream always ends with its Result")

    async def stream(self, code: str, *, stdin: Input = "", timeout: Optional[float] = None, files: Files = None,
                     scratch: Optional[str] = None) -> AsyncIterator[Event]:
        """Yield Output pieces as the program writes them, then its Result, as Sandbox.stream does."""
        run = self.sandbox.stream(code, stdin=stdin, timeout=timeout, files=files, scratch=scratch)
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
    if "warm" in sandbox:
        raise TypeError("warm is a keyword of AsyncSandbox: a pool serves many runs, not one")
    return await AsyncSandbox(**sandbox).execute(code, stdin=stdin, files=files)
