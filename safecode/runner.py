"""Running one container: the time limit, the output limit and the clean-up, all in this one place.

The `docker run` client is only a messenger: killing it does not stop its container. So whenever a run
ends early (time limit, output limit, or an exception in the caller such as Ctrl-C), the client is killed
first, so it can no longer start a container it has only created, and then the container is removed by name.
"""

import os
import selectors
import subprocess
import time

from . import engine
from .errors import DockerUnavailable
from .result import Result

CHUNK = 32 * 1024


class _Output:
    """stdout and stderr as they arrive, with one byte budget shared by both."""

    def __init__(self, limit):
        self.room = limit
        self.streams = {"stdout": bytearray(), "stderr": bytearray()}
        self.truncated = False

    def add(self, stream, chunk):
        """Keep what fits; False once the budget is spent."""
        if len(chunk) > self.room:
            chunk = chunk[: self.room]
            self.truncated = True
        self.streams[stream] += chunk
        self.room -= len(chunk)
        return not self.truncated

    def text(self, stream):
        return self.streams[stream].decode("utf-8", "replace")


def run(argv, *, name, image, stdin=b"", timeout, max_output):
    """Run `argv` (a `docker run` for container `name`) and return its Result; nothing is left behind."""
    start = time.monotonic()
    output = _Output(max_output)
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C reaches us, not the client: we stop the container ourselves
        )
    except FileNotFoundError:
        raise DockerUnavailable(engine.NO_CLI) from None
    stopped = None
    try:
        stopped = _pump(proc, stdin, output, start + timeout)
        if stopped is None:
            try:
                proc.wait(max(0.0, start + timeout - time.monotonic()))
            except subprocess.TimeoutExpired:
                stopped = "timeout"
    finally:
        if proc.returncode is None:
            _stop(proc, name, output)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe:
                pipe.close()
    duration = time.monotonic() - start

    stdout, stderr = output.text("stdout"), output.text("stderr")
    if stopped is None:
        failure = engine.run_failure(proc.returncode, stdout, stderr, argv, image)
        if failure:
            raise failure
    # Exit 137 is SIGKILL. We did not send it, so it was the kernel's OOM killer (or the program itself).
    oom_killed = stopped is None and proc.returncode == 137
    if stopped or oom_killed:
        status, exit_code = stopped or "oom", None
    else:
        status, exit_code = ("ok" if proc.returncode == 0 else "error"), proc.returncode
    return Result(
        stdout=stdout,
        stderr=stderr,
        exit_code=exit_code,
        status=status,
        timed_out=stopped == "timeout",
        oom_killed=oom_killed,
        truncated=output.truncated,
        duration=duration,
    )


def _pump(proc, data, output, deadline):
    """Feed stdin and collect output until both streams end; "timeout" or "output_limit" if stopped early."""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, "stdout")
        selector.register(proc.stderr, selectors.EVENT_READ, "stderr")
        if data:
            os.set_blocking(proc.stdin.fileno(), False)
            selector.register(proc.stdin, selectors.EVENT_WRITE)
            pending = memoryview(data)
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "timeout"
            for key, _ in selector.select(remaining):
                if key.fileobj is proc.stdin:
                    try:
                        pending = pending[os.write(key.fd, pending[:CHUNK]) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # the program stopped reading: fine
                        pending = pending[:0]
                    if not pending:
                        selector.unregister(proc.stdin)
                        proc.stdin.close()
                    continue
                chunk = os.read(key.fd, CHUNK)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif not output.add(key.data, chunk):
                    return "output_limit"
    return None


def _stop(proc, name, output):
    """Kill the client, then the container; keep whatever output was already on its way."""
    proc.kill()
    proc.wait()
    try:
        engine.remove(name)
    finally:
        for stream, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            if not pipe.closed:
                os.set_blocking(pipe.fileno(), False)
                _drain(pipe, stream, output)


def _drain(pipe, stream, output):
    while not output.truncated:
        try:
            chunk = os.read(pipe.fileno(), CHUNK)
        except BlockingIOError:
            return
        if not chunk or not output.add(stream, chunk):
            return
