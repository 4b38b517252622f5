"""One sandbox container from start to end: the time limit, the output limit and the clean-up, all in this one place.

Every run is a container of the supervisor (safecode/supervisor.py): started, ready, handed exactly one program,
then removed. A cold run hands the program over as soon as its container is ready; a warm pool (pool.py) hands it
to one started earlier. Either way the result is known the moment the program ends, from the supervisor's end
marks, and the container's teardown happens off the caller's path.

The `docker run` client is only a messenger: killing it does not stop its container. So whenever a run ends early
(time limit, output limit, or an exception in the caller such as Ctrl-C), the client is killed first, so it can no
longer start a container it has only created, and then the container is removed by name.
"""

import os
import pathlib
import secrets
import selectors
import shutil
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from . import engine
from .command import SCRIPT, build_args
from .errors import DockerError, DockerUnavailable
from .result import Result

CHUNK = 32 * 1024
START_TIMEOUT = 60.0  # seconds for Docker to start a container and the interpreter in it
ACK_GRACE = 2.0  # seconds a ready container has to acknowledge a program before it counts as stuck
BACKSTOP = 5.0  # seconds past the time limit after which the supervisor ends the container by itself
TEARDOWN_TIMEOUT = 10.0  # seconds a finished container has to go away by itself before it is removed by force
UID_BASE = 100_000  # unprivileged ids from here on; each container gets its own
SUPERVISOR = (pathlib.Path(__file__).parent / "supervisor.py").read_text(encoding="utf-8")

_teardowns = ThreadPoolExecutor(max_workers=4, thread_name_prefix="safecode-teardown")


class Stuck(Exception):
    """A ready container did not take its program: it has been discarded and the program never ran."""


class _Output:
    """stdout and stderr as they arrive, with one byte budget shared by both."""

    def __init__(self, limit):
        self.room = limit
        self.streams = {"stdout": bytearray(), "stderr": bytearray()}
        self.truncated = False

    def add(self, stream, data):
        """Keep what fits; False once the budget is spent."""
        if len(data) > self.room:
            data = data[: self.room]
            self.truncated = True
        self.streams[stream] += data
        self.room -= len(data)
        return not self.truncated

    def text(self, stream):
        return self.streams[stream].decode("utf-8", "replace")


class _Stream:
    """One output stream of the container: passes the program's bytes on and finds the supervisor's end mark."""

    def __init__(self, name, end, status_size):
        self.name, self.end, self.size = name, end, len(end) + status_size
        self.held = b""  # bytes that may be the start of the end mark
        self.status = None  # what followed the end mark, once found
        self.closed = False

    def feed(self, chunk):
        """The program's bytes in `chunk` that are certain not to be part of the end mark."""
        data = self.held + chunk
        at = data.find(self.end)
        if at >= 0:
            if len(data) - at >= self.size:
                self.status, self.held = data[at + len(self.end) : at + self.size], b""
            else:
                self.held = data[at:]
            return data[:at]
        keep = 0
        if b"\0" in data[-(len(self.end) - 1) :]:  # the mark starts with NUL: most chunks end with none
            keep = next((k for k in range(min(len(self.end) - 1, len(data)), 0, -1) if data.endswith(self.end[:k])), 0)
        self.held = data[len(data) - keep :]
        return data[: len(data) - keep]

    def flush(self):
        """At the end of the stream: what was held back was the program's after all."""
        held, self.held = self.held, b""
        return held

    @property
    def done(self):
        return self.closed or self.status is not None


class Container:
    """A started supervisor container, waiting for exactly one program."""

    def __init__(self, limits, image):
        self.image = image
        self.name = f"safecode-{uuid.uuid4().hex[:16]}"
        token = secrets.token_hex(16)
        self.mark = b"\0" + token.encode()
        self.code_dir = tempfile.mkdtemp(prefix=f"{self.name}-")  # named after it, so `cleanup` can match them
        try:
            os.chmod(self.code_dir, 0o755)  # whatever the caller's umask: the container's own uid must read it
            self.argv = build_args(
                self.code_dir, name=self.name, uid=UID_BASE + secrets.randbelow(1 << 24), limits=limits,
                image=image, command=["python3", "-c", SUPERVISOR, token],
            )
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C reaches us, not the client: we stop the container ourselves
            )
        except FileNotFoundError:
            shutil.rmtree(self.code_dir, ignore_errors=True)
            raise DockerUnavailable(engine.NO_CLI) from None
        except BaseException:
            shutil.rmtree(self.code_dir, ignore_errors=True)
            raise
        self.killed = False  # whether we killed the client: then its container may still exist

    # Before the program ------------------------------------------------------------------------------------

    def wait_ready(self, timeout=START_TIMEOUT):
        """Block until the supervisor is up; on Docker's own failure raise its error and clean up."""
        try:
            said = self._read(len(self.mark) + 1, time.monotonic() + timeout)
        except BaseException:
            self.stop()
            raise
        if said == self.mark + b"R":
            return
        if said is None:
            self.stop()
            raise DockerError(-1, f"the sandbox container did not start within {timeout:g} s", self.argv)
        try:  # it ended before it was ready: let the client finish saying why
            self.proc.wait(TEARDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        stderr = self._drain(self.proc.stderr, 64 * 1024).decode("utf-8", "replace")
        self.stop()
        raise engine.run_failure(self.proc.returncode, stderr, self.argv, self.image)

    def idle_ok(self):
        """A ready container that is still running and has said nothing since: fit to be handed a program."""
        if self.proc.poll() is not None:
            return False
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            selector.register(self.proc.stderr, selectors.EVENT_READ)
            return not selector.select(0)

    # The program -------------------------------------------------------------------------------------------

    def run(self, source, *, stdin, timeout, max_output, started):
        """Hand over `source` and `stdin`, collect the Result; the time limit counts from the handover.

        Raises Stuck, after discarding this container, when it does not take the program.
        """
        try:
            deadline = self._hand_over(source, timeout)
            stopped, output, streams = self._collect(stdin, deadline, max_output)
            if stopped:
                self._kill_client()
                for stream in streams:
                    if not stream.done:  # what the program printed just before the kill is kept
                        pipe = getattr(self.proc, stream.name)
                        output.add(stream.name, stream.feed(self._drain(pipe)) + stream.flush())
                self.stop()
                return _result(output, stopped, None, started)
            status = streams[0].status  # stdout's end mark carries the exit status
            if status is not None:
                _teardowns.submit(self.teardown)  # the program has ended; the container's teardown is not our wait
                return _result(output, None, int(status) if status.isdigit() else None, started)
            # No end mark: the supervisor itself was killed (the memory limit, or the program killed it).
            try:
                self.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.stop()
                return _result(output, "timeout", None, started)
            self.stop()
            return _result(output, None, self.proc.returncode, started)
        except Stuck:
            self.discard()
            raise
        except BaseException:
            self.stop()
            raise

    def _hand_over(self, source, timeout):
        script = os.path.join(self.code_dir, SCRIPT)
        with open(script, "xb") as file:
            file.write(source)
        os.chmod(script, 0o644)
        handed = time.monotonic()
        try:
            os.write(self.proc.stdin.fileno(), b"g%.3f\n" % (timeout + BACKSTOP))
        except BrokenPipeError:
            raise Stuck(f"{self.name} is gone") from None
        if self._read(len(self.mark) + 1, handed + ACK_GRACE) != self.mark + b"A":
            raise Stuck(f"{self.name} did not take its program")
        return handed + timeout

    def _collect(self, data, deadline, max_output):
        """Feed stdin and read both streams until the end marks; stopped is "timeout", "output_limit" or None."""
        output = _Output(max_output)
        streams = (_Stream("stdout", self.mark + b"E", 3), _Stream("stderr", self.mark + b"E", 0))
        with selectors.DefaultSelector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ, streams[0])
            selector.register(self.proc.stderr, selectors.EVENT_READ, streams[1])
            if data:
                os.set_blocking(self.proc.stdin.fileno(), False)
                selector.register(self.proc.stdin, selectors.EVENT_WRITE)
                pending = memoryview(data)
            else:
                self.proc.stdin.close()
            while not all(stream.done for stream in streams):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return "timeout", output, streams
                for key, _ in selector.select(remaining):
                    if key.fileobj is self.proc.stdin:
                        try:
                            pending = pending[os.write(key.fd, pending[:CHUNK]) :]
                        except BlockingIOError:
                            continue
                        except BrokenPipeError:  # the program stopped reading: fine
                            pending = pending[:0]
                        if not pending:
                            selector.unregister(self.proc.stdin)
                            self.proc.stdin.close()
                        continue
                    stream = key.data
                    chunk = os.read(key.fd, CHUNK)
                    if not chunk:
                        stream.closed = True
                        kept = output.add(stream.name, stream.flush())
                    else:
                        kept = output.add(stream.name, stream.feed(chunk))
                    if not kept:
                        return "output_limit", output, streams
                    if stream.done:
                        selector.unregister(key.fileobj)
        return None, output, streams

    # Reading and clean-up ----------------------------------------------------------------------------------

    def _read(self, size, deadline):
        """Exactly `size` bytes of stdout, or fewer at its end; None if they did not come by `deadline`."""
        data = b""
        fd = self.proc.stdout.fileno()
        with selectors.DefaultSelector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            while len(data) < size:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    return None
                chunk = os.read(fd, size - len(data))
                if not chunk:
                    break
                data += chunk
        return data

    def _drain(self, pipe, limit=CHUNK):
        """What can be read from a pipe now, without waiting, up to `limit` bytes."""
        if pipe.closed:
            return b""
        os.set_blocking(pipe.fileno(), False)
        data = b""
        while len(data) < limit:
            try:
                chunk = os.read(pipe.fileno(), limit - len(data))
            except BlockingIOError:
                break
            if not chunk:
                break
            data += chunk
        return data

    def _kill_client(self):
        """Kill the `docker run` client if it still runs. A client that ended by itself took its container along."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.killed = True

    def stop(self):
        """Stop now: kill the client, remove the container by name, remove the code; safe to call twice."""
        try:
            self._kill_client()
            if self.killed:
                engine.remove(self.name)
                self.killed = False
        finally:
            self._close()

    def discard(self):
        """Stop a container that will not run a program, off the caller's path."""
        _teardowns.submit(self.stop)

    def close_idle(self):
        """End a ready container gracefully: closing its stdin makes the supervisor, and the container, exit."""
        self.proc.stdin.close()

    def teardown(self):
        """Let a container that has finished, or was told to, end by itself; then make sure it is gone."""
        deadline = time.monotonic() + TEARDOWN_TIMEOUT
        try:
            while self.proc.poll() is None and time.monotonic() < deadline:
                self._drain(self.proc.stdout, 1 << 20)  # never let a full pipe hold the client up
                self._drain(self.proc.stderr, 1 << 20)
                time.sleep(0.01)
        finally:
            self.stop()

    def _close(self):
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            pipe.close()
        shutil.rmtree(self.code_dir, ignore_errors=True)


def remove_stale_code_dirs(min_age=60.0):
    """Remove code folders that a process killed outright left behind: their container is gone and they are old.

    Returns how many were removed. The age keeps a folder whose container another process is creating right now.
    """
    live = set(engine.ours())
    removed = 0
    for path in pathlib.Path(tempfile.gettempdir()).glob("safecode-" + "[0-9a-f]" * 16 + "-*"):
        container = path.name.rsplit("-", 1)[0]
        try:
            stale = path.is_dir() and container not in live and time.time() - path.stat().st_mtime >= min_age
        except FileNotFoundError:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def _result(output, stopped, exit_code, started):
    # Exit status 137 is SIGKILL. We did not send it, so it was the kernel's OOM killer (or the program itself).
    oom_killed = stopped is None and exit_code == 137
    if stopped or oom_killed:
        status, exit_code = stopped or "oom", None
    elif exit_code is None:
        status = "error"  # the program forged an end mark with a status that is not a number
    else:
        status = "ok" if exit_code == 0 else "error"
    return Result(
        stdout=output.text("stdout"),
        stderr=output.text("stderr"),
        exit_code=exit_code,
        status=status,
        timed_out=stopped == "timeout",
        oom_killed=oom_killed,
        truncated=output.truncated,
        duration=time.monotonic() - started,
    )
