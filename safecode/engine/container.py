"""A sandbox container from its start to its programs: started, ready, handed a program (or a session's kernel), and,
with reuse, ready again for the next. How it ends is ending.py's; what its bytes mean after the hand-over is
reader/protocol.py's.

A cold run hands the program over as soon as its container is ready; a warm pool (pool.py) hands it to one started
earlier, and takes it back between programs. The handshake: the supervisor says <mark>R when it is up (and again
once a program's traces are cleared), and <mark>A when it has taken its work. Each program ends with marks made of
its own end token, which the host makes for it and no program ever holds; the host ends a program's turn by
sending that token back, and the supervisor drops whatever came before it on stdin.
"""

import os
import secrets
import subprocess
import tempfile
import time
import uuid

from . import cli
from .args import SCRIPT, build_args
from .between import READY, Between, clear_code
from .ending import TEARDOWN_TIMEOUT, Ending
from .leftovers import code_dir_prefix
from .shipping import SUPERVISOR, supervisor_command
from .turns import turn
from ..errors import Cancelled, DockerError, DockerUnavailable
from ..files import OUT, pack_tree, write_tree

START_TIMEOUT = 60.0  # seconds for Docker to start a container and the interpreter in it
ACK_GRACE = 2.0  # seconds a ready container has to acknowledge a program before it counts as stuck
SESSION_GRACE = 5.0  # seconds a ready container has to start a session's kernel
BACKSTOP = 5.0  # seconds past the time limit after which the supervisor ends the container by itself
UID_BASE = 100_000  # unprivileged ids from here on; each container gets its own


class Stuck(Exception):
    """A ready container did not take its program: it has been discarded and the program never ran."""


class Container(Ending, Between):
    """A started supervisor container, waiting for its program (or, with reuse, for each of several in turn).

    The code and files go to /app through a folder of ours mounted read-only when the engine is local, and through
    stdin when it is not (`code_dir` None). With scratch on, /app/out is a link to /tmp/out, so that one tmpfs of
    the scratch size holds both; `preload` names modules the supervisor imports ahead (for warm containers: a cold
    run would wait for them).
    """

    def __init__(self, limits, image, endpoint, preload=(), name=None):
        self.image = image
        self.runs_left = 1  # programs it may still run, one after another (a reusing pool raises it)
        self.runs = 0  # programs handed to it so far
        self.recycle = None  # what takes it back after a program that leaves it running (a pool's)
        self.end = b""  # the end token of its program in flight
        self.endpoint = endpoint
        self.out_bytes = limits.scratch_bytes
        self.memory = limits.memory
        self.max_output = limits.max_output
        self.early = b""  # stderr read while waiting for an acknowledgement: its program's, for its reader
        self.name = name or new_name()
        token = secrets.token_hex(16)
        self.mark = b"\0" + token.encode()
        self.code_dir = tempfile.mkdtemp(prefix=code_dir_prefix(self.name)) if endpoint.local else None
        try:
            if self.code_dir is not None:
                os.chmod(self.code_dir, 0o755)  # whatever the caller's umask: the container's own uid must read it
                if self.out_bytes:
                    os.symlink("/tmp/out", os.path.join(self.code_dir, OUT))
            self.argv = build_args(
                self.code_dir, name=self.name, uid=UID_BASE + secrets.randbelow(1 << 24), limits=limits,
                image=image, command=supervisor_command(token, self.out_bytes, preload, self.code_dir is None),
                endpoint=endpoint,
            )
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True,  # Ctrl-C reaches us, not the client: we stop the container ourselves
            )
        except FileNotFoundError:
            self._remove_code()
            raise DockerUnavailable(cli.no_cli(endpoint)) from None
        except BaseException:
            self._remove_code()
            raise
        try:
            self.send(SUPERVISOR)  # what the bootstrap on its command line reads first (shipping.py)
        except BrokenPipeError:
            pass  # the client has ended already: wait_ready reads why

    # Before the program ------------------------------------------------------------------------------------

    def wait_ready(self, timeout=START_TIMEOUT, cancel=None):
        """Block until the supervisor is up; on Docker's own failure raise its error and clean up."""
        try:
            said = self._read(len(self.mark) + 1, time.monotonic() + timeout, cancel)
        except Cancelled:
            # A start in flight is let end by itself (at end of stdin the supervisor exits, and --rm removes the
            # container): killing its client could leave a container that the engine creates after we looked.
            self.close_idle()
            self.teardown()
            raise
        except BaseException:
            self.stop()
            raise
        if said == self.mark + READY:
            self.started = True
            return
        if said is None:
            self.stop()
            raise DockerError(-1, f"the sandbox container did not start within {timeout:g} s", self.argv)
        try:  # it ended before it was ready: let the client finish saying why
            self.proc.wait(TEARDOWN_TIMEOUT)
        except subprocess.TimeoutExpired:
            pass
        stderr = self.drain(self.proc.stderr, 64 * 1024).decode("utf-8", "replace")
        self.stop()
        raise cli.run_failure(self.proc.returncode, stderr, self.argv, self.image, self.endpoint, self.memory)

    def hand_over(self, source, files, timeout, cancel=None, has_stdin=True):
        """Give the program (main.py and its checked `files`) to the supervisor, saying whether stdin frames follow;
        return the run's deadline, which counts from this moment. Stuck (the container discarded) if it does not
        take it."""
        self.runs, self.runs_left = self.runs + 1, self.runs_left - 1
        self.end = secrets.token_hex(16).encode()
        try:
            if self.code_dir is not None and self.runs > 1:
                clear_code(self.code_dir)
            delivered = self.files_message({**files, SCRIPT: source})
        except BaseException:
            self.stop()
            raise
        handed = time.monotonic()
        go = b"g%.3f %d %d %s %d\n" % (timeout + BACKSTOP, len(delivered), self.runs_left == 0, self.end, has_stdin)
        self._give(go + delivered, ACK_GRACE, cancel, "its program")
        return handed + timeout

    def files_message(self, files, replace=False):
        """Put checked `files` in /app: into the mounted folder now (returning b""), or as bytes for the supervisor
        to receive on stdin when the engine cannot mount it."""
        if self.code_dir is None:
            return pack_tree(files)
        write_tree(self.code_dir, files, replace=replace)
        return b""

    def open_session(self, kernel, idle, lifetime):
        """Turn this ready container into a session: send the kernel instead of a program. Stuck (the container
        discarded) if it does not take it."""
        self.end = secrets.token_hex(16).encode()
        self._give(b"s%d\n" % len(kernel) + kernel + b"%r %r %s\n" % (float(idle), float(lifetime), self.end),
                   SESSION_GRACE, None, "the session")

    def _give(self, message, wait, cancel, what):
        """Send `message` and wait for the acknowledgement. On Stuck the container is discarded, on any other
        exception stopped."""
        try:
            try:
                self.send(message)
            except BrokenPipeError:
                raise Stuck(f"{self.name} is gone") from None
            if not self.read_ack(wait, cancel):
                raise Stuck(f"{self.name} did not take {what}")
        except Stuck:
            self.discard()
            raise
        except BaseException:
            self.stop()
            raise


def new_name():
    return f"safecode-{uuid.uuid4().hex[:16]}"


def start_ready(limits, image, endpoint, cancel=None, preload=(), name=None):
    """A new container, started and ready for its program (what a cold run waits for, and a pool keeps)."""
    with turn(cancel):
        container = Container(limits, image, endpoint, preload, name)
        container.wait_ready(cancel=cancel)
        return container
