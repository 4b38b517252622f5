"""The public entry points: a Sandbox holds limits, an image and perhaps a warm pool; execute() and stream() run
one program, session() many cells."""

import collections
import dataclasses
import re
import threading
import time
import weakref
from typing import Any, BinaryIO, Dict, Mapping, Optional, Sequence, Union

from ..cancel import Cancel
from ..engine.container import Stuck, start_ready
from ..engine.endpoint import Endpoint
from ..errors import DockerError
from ..files import files_in
from ..engine.image import default_image, scientific_preload
from ..engine.leftovers import sweep_once
from ..limits import Limits
from ..engine.pool import Pool
from ..engine.seccomp import load as load_profile
from ..result import Result
from ..verdicts import Case, Compare, Report
from ..reader.run import events, input_source, program_source
from .grading import Grading
from .session import IDLE, LIFETIME, Session
from .stream import Stream

Input = Union[str, bytes, BinaryIO]
Files = Optional[Mapping[str, Union[bytes, str]]]
_MODULE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class Sandbox(Grading):
    """Runs programs in fresh hardened containers, each with the same limits and image.

    With `warm=N` it keeps up to N containers started ahead of time, so a program starts in milliseconds rather
    than in the few hundred Docker needs; each runs one program, or up to `reuse` of them. Close it (or use `with`)
    to remove them; they are also removed at interpreter exit, and end by themselves if this process dies.

    Where they run: `runtime` picks the engine's OCI runtime ("runsc" for gVisor; default: the engine's own);
    `engine="podman"` drives podman instead of docker; `host` ("ssh://user@box") or `context` (a Docker context)
    an engine elsewhere, which gets the code through the container's stdin rather than a mounted folder.
    `seccomp` picks the system calls a program may make: safecode's own profile by default (narrower than the
    engine's: no io_uring, ptrace, memfd, netlink, ...), "engine" for the engine's default (wider: a program then
    reaches more of the host's kernel), or the path of a profile of your own.

    `reuse` (with `warm`) lets each pooled container run up to that many programs in turn, each in a fresh process:
    far more programs a second, for programs of one source that you trust with each other (your own batch, one
    model's samples), never for strangers sharing a server. Nothing of a program reaches the next (processes,
    files, input, output, what it changed of the container), but they share the container and its user id.

    `preload` (with `warm`) names modules each warm container imports before it takes a program, so that the
    program's own imports of them cost nothing; a scientific image preloads its stack unless told otherwise. The
    first container starts before the Sandbox is made: a module that cannot be imported is PreloadFailed then.
    """

    def __init__(
        self,
        *,
        timeout: float = Limits.timeout,
        memory: str = Limits.memory,
        cpus: float = Limits.cpus,
        pids: int = Limits.pids,
        max_output: int = Limits.max_output,
        max_code: int = Limits.max_code,
        max_files: int = Limits.max_files,
        scratch: Optional[str] = Limits.scratch,
        image: Optional[str] = None,
        warm: int = 0,
        runtime: Optional[str] = None,
        engine: str = "docker",
        host: Optional[str] = None,
        context: Optional[str] = None,
        seccomp: Optional[str] = None,
        preload: Optional[Sequence[str]] = None,
        reuse: int = 1,
    ) -> None:
        self.limits = Limits(
            timeout=timeout, memory=memory, cpus=cpus, pids=pids, max_output=max_output, max_code=max_code,
            max_files=max_files, scratch=scratch,
        )
        if image is not None and (not isinstance(image, str) or not image.strip()):
            raise ValueError(f"image must be an image name, not {image!r}")
        if isinstance(warm, bool) or not isinstance(warm, int) or warm < 0:
            raise ValueError(f"warm must be a whole number of containers, 0 or more, not {warm!r}")
        if isinstance(reuse, bool) or not isinstance(reuse, int) or reuse < 1:
            raise ValueError(f"reuse must be a whole number of programs per container, 1 or more, not {reuse!r}")
        if reuse > 1 and not warm:
            raise ValueError("reuse is for warm containers: give warm=N too")
        self.endpoint = Endpoint(engine=engine, host=host, context=context, runtime=runtime, seccomp=seccomp)
        load_profile(seccomp)  # an unreadable or invalid profile is an error now, before any container starts
        self.image = image or default_image()
        self.warm, self.reuse = warm, reuse
        self.preload = _modules(preload, warm) if preload is not None else scientific_preload(self.image)
        sweep_once()  # code folders that a killed caller left, once their container is gone
        first = start_ready(self.limits, self.image, self.endpoint, preload=self.preload) if preload else None
        self._pool = Pool(warm, self.limits, self.image, self.endpoint, self.preload, first, reuse) if warm else None
        self._closer = weakref.finalize(self, self._pool.close) if self._pool else None
        self._runs: "collections.Counter[str]" = collections.Counter()
        self._runs_lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"Sandbox(image={self.image!r}, warm={self.warm}, engine={self.endpoint.describe()!r}, "
                f"limits={self.limits!r})")

    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Remove every pooled container. Later programs still run, cold."""
        if self._closer:
            self._closer()

    def stats(self) -> Dict[str, Any]:
        """Programs handed to a warm container and to a cold one so far, and how many of the warm ones ran in a
        container that had run a program before (reuse); containers ready now; pooled containers that were unfit
        when a program came for them (dead, talking, or not taking it), each of which made its program run cold;
        and `unfit_reasons`, the latest reasons a pooled container was found unfit or could not come back."""
        with self._runs_lock:
            return {"warm": self._runs["warm"], "cold": self._runs["cold"], "reused": self._runs["reused"],
                    "ready": self._pool.ready if self._pool else 0,
                    "unfit": self._runs["stuck"] + (self._pool.unfit if self._pool else 0),
                    "unfit_reasons": list(self._pool.reasons) if self._pool else []}

    def execute(self, code: str, *, stdin: Input = "", timeout: Optional[float] = None, files: Files = None,
                scratch: Optional[str] = None) -> Result:
        """Run `code` as /app/main.py with `stdin` as its standard input; return a Result.

        `stdin` is text, bytes, or a binary file whose contents are forwarded as they can be read (a pipe, a
        terminal). `files` maps relative paths to bytes or text, put read-only beside main.py. `timeout` and
        `scratch`, if given, replace the sandbox's own for this run only.
        """
        with self.stream(code, stdin=stdin, timeout=timeout, files=files, scratch=scratch) as run:
            return run.result()

    def stream(self, code: str, *, stdin: Input = "", timeout: Optional[float] = None, files: Files = None,
               scratch: Optional[str] = None) -> Stream:
        """Run `code` as `execute` does, yielding its output as it comes: Output pieces and Displays, then the Result.

        Bad arguments raise here, before Docker is touched; the container starts when iteration does.
        """
        started = time.monotonic()
        changes: Dict[str, Any] = {name: value for name, value in (("timeout", timeout), ("scratch", scratch))
                                   if value is not None}
        limits = dataclasses.replace(self.limits, **changes) if changes else self.limits
        source = program_source(code, limits)
        checked = files_in(files, limits.max_files)
        cancel = Cancel()
        return Stream(self._events(source, checked, input_source(stdin), limits, started, cancel), cancel)

    def session(self, *, idle: float = IDLE, lifetime: float = LIFETIME) -> Session:
        """A Session: cells that keep their state, in one container with this sandbox's limits (warm if ready)."""
        return Session(self, idle=idle, lifetime=lifetime)

    def _events(self, source, files, stdin, limits, started, cancel):
        try:
            container, deadline = self._take(limits, cancel, lambda box: box.hand_over(
                source, files, limits.timeout, cancel, has_stdin=not isinstance(stdin, bytes) or bool(stdin)))
            yield from events(container, deadline, stdin=stdin, max_output=limits.max_output, started=started,
                              cancel=cancel)
        finally:
            cancel.close()

    def _take(self, limits, cancel, hand_over):
        """A container that has taken its work, and what `hand_over(container)` said: warm when one is ready."""
        # A pooled container has the sandbox's own scratch space; a run that asks for another runs cold.
        pool = self._pool if limits.scratch == self.limits.scratch else None
        container = pool.take(cancel=cancel) if pool else None
        if container is not None:
            try:
                said = hand_over(container)
                self._count("warm")
                if container.runs > 1:
                    self._count("reused")
                return container, said
            except Stuck as stuck:
                self._count("stuck")  # it never took the work, and is gone: start one
                pool.reasons.append(str(stuck))
        container = start_ready(limits, self.image, self.endpoint, cancel)
        try:
            said = hand_over(container)
        except Stuck as stuck:
            raise DockerError(-1, f"a new sandbox container did not take its work ({stuck})", container.argv) from None
        self._count("cold")
        return container, said

    def _count(self, kind):
        with self._runs_lock:
            self._runs[kind] += 1


def _modules(preload, warm):
    """The module names to preload, checked: only warm containers preload."""
    if isinstance(preload, str) or not all(isinstance(name, str) and _MODULE.match(name) for name in preload):
        raise ValueError(f"preload must be a list of module names, such as ['sympy', 'sklearn'], not {preload!r}")
    if preload and not warm:
        raise ValueError("preload is for warm containers: give warm=N too")
    return tuple(preload)


def _one_run(sandbox, what):
    for name, purpose in (("warm", "a pool serves many runs"), ("preload", "it is for warm containers"),
                          ("reuse", "it is for warm containers")):
        if name in sandbox:
            raise TypeError(f"{name} is a keyword of Sandbox: {purpose}, not {what}")


def execute(code: str, *, stdin: Input = "", files: Files = None, **sandbox) -> Result:
    """Run `code` once in a fresh sandbox; returns a Result.

    Keywords: `stdin` and `files`, as Sandbox.execute takes them, and those of Sandbox but `warm`, `preload` and
    `reuse`: the
    limits
    (timeout, memory, cpus, pids, max_output, max_code, max_files, scratch), image, and where and how it runs
    (runtime, engine, host, context, seccomp).
    """
    with stream(code, stdin=stdin, files=files, **sandbox) as run:
        return run.result()


def check(code: str, cases: Sequence[Case], *, compare: Compare = "lines", stop_on_failure: bool = False,
          files: Files = None, **sandbox) -> Report:
    """Run `code` against `cases` in a sandbox of its own (one container, each case in a fresh process); a Report.

    Takes the keywords of Sandbox.check and the limits and placement of execute()."""
    _one_run(sandbox, "one program's cases")
    with Sandbox(**sandbox) as made:
        return made.check(code, cases, compare=compare, stop_on_failure=stop_on_failure, files=files)


def session(*, idle: float = IDLE, lifetime: float = LIFETIME, **sandbox) -> Session:
    """A Session in a sandbox of its own; takes the keywords of Sandbox but `warm` and `preload`."""
    _one_run(sandbox, "one session: take sessions from a Sandbox(warm=N)")
    return Sandbox(**sandbox).session(idle=idle, lifetime=lifetime)


def stream(code: str, *, stdin: Input = "", files: Files = None, **sandbox) -> Stream:
    """Run `code` once in a fresh sandbox, yielding Output pieces and Displays as they come and then the Result.

    Takes the keywords of execute(): `stdin`, `files`, and those of Sandbox but `warm` and `preload`.
    """
    _one_run(sandbox, "one run")
    return Sandbox(**sandbox).stream(code, stdin=stdin, files=files)
