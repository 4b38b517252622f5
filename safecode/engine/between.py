"""A container between two programs: its words that it is ready and that it took its work, whether an idle one is
fit to take a program, and, with reuse, the end of a program's turn: the host sends the program's end token back,
and the supervisor, once it has cleared what the program left (inside/between.py), says it is ready again.
"""

import os
import selectors
import shutil
import time

from .ending import CHUNK, Selector
from ..files import OUT

READY = b"R"  # the supervisor's word that it is up, or ready again after a program
ACK = b"A"  # its word that it has taken its work
CLEAN_TIMEOUT = 10.0  # seconds a reused container has to clear a program's traces and be ready again


class Between:
    """The part of a Container (container.py) that speaks between programs: the words that say it is ready, that
    it took its work, that a program's turn is over. Uses its `proc`, `mark`, `end`, `max_output`, `early`, and what
    Ending gives (drain, kill_client, stop)."""

    @property
    def end_mark(self):
        """What marks the end of its program in flight: a NUL byte and the program's own token."""
        return b"\0" + self.end

    def unfit(self):
        """Why a ready container is not fit to be handed a program (it ended, or said something since), or None.

        Its supervisor writes nothing on stderr before a program, so what is there is the client's own chatter (an
        ssh warning on a remote engine, say): dropped, so that it never reads as the program's stderr.
        """
        if self.proc.poll() is not None:
            return f"it ended (status {self.proc.returncode}) while idle"
        with Selector() as selector:
            selector.register(self.proc.stdout, selectors.EVENT_READ)
            selector.register(self.proc.stderr, selectors.EVENT_READ)
            said = {key.fileobj for key, _ in selector.select(0)}
        if self.proc.stderr in said and not self.drain(self.proc.stderr, 64 * 1024):
            return "its stderr closed while idle"  # the client is ending
        if self.proc.stdout in said:
            return f"it said {self.drain(self.proc.stdout, 200)!r} while idle"
        if self.proc.poll() is not None:
            return f"it ended (status {self.proc.returncode}) while idle"
        return None

    def take_back(self):
        """End the turn of a program that left this container running, and wait until it is ready for the next:
        None when it is, else why it is not (it is then stopped)."""
        deadline = time.monotonic() + CLEAN_TIMEOUT
        try:
            self._send_by(b"x" + self.end + b"\n", deadline)  # the pipe may be full of stdin the program left
            said = self._read(len(self.mark) + 1, deadline, None)
        except OSError as error:
            said = f"{error}".encode()
        if said == self.mark + READY:
            return None
        self.kill_client()
        why = self.drain(self.proc.stderr, 2000).decode("utf-8", "replace").strip().splitlines()
        self.stop()
        return why[-1] if why else f"it was not ready again within {CLEAN_TIMEOUT:g} s ({said!r})"

    def _send_by(self, data, deadline):
        """Write all of `data` to the container's stdin by `deadline` (TimeoutError if not); then it blocks again."""
        fd = self.proc.stdin.fileno()
        os.set_blocking(fd, False)
        view = memoryview(data)
        with Selector() as selector:
            selector.register(fd, selectors.EVENT_WRITE)
            while view:
                if not selector.select(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError("its stdin was not read")
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    pass
        os.set_blocking(fd, True)

    def send(self, data):
        """Write all of `data` to the container's stdin."""
        view = memoryview(data)
        while view:
            view = view[os.write(self.proc.stdin.fileno(), view) :]

    def read_ack(self, wait, cancel=None):
        """True when the supervisor (or a session's kernel) acknowledges within `wait` seconds.

        The program starts as soon as the acknowledgement is written, and may fill its stderr at once. The engine's
        client passes both streams on in one sequence, and stops passing on stdout, the acknowledgement included,
        while it cannot write stderr: so stderr is read meanwhile, into `early`, where the run's reader finds it
        first (as much as its output limit can hold; past that the run stops anyway)."""
        return self._read(len(self.mark) + 1, time.monotonic() + wait, cancel, keep_stderr=True) == self.mark + ACK

    def _keep_early(self, selector):
        """Read what stderr has into `early`, up to the output limit and a chunk (past it, read and dropped)."""
        try:
            chunk = os.read(self.proc.stderr.fileno(), CHUNK)
        except BlockingIOError:  # left non-blocking by a drain, and nothing there after all
            return
        self.early += chunk[: max(0, self.max_output + CHUNK - len(self.early))]
        if not chunk:
            selector.unregister(self.proc.stderr)

    def _read(self, size, deadline, cancel, keep_stderr=False):
        """Exactly `size` bytes of stdout, or fewer at its end; None if they did not come by `deadline`."""
        data = b""
        fd = self.proc.stdout.fileno()
        with Selector() as selector:
            selector.register(fd, selectors.EVENT_READ)
            if keep_stderr:
                selector.register(self.proc.stderr, selectors.EVENT_READ)
            if cancel is not None:
                selector.register(cancel, selectors.EVENT_READ)
            while len(data) < size:
                remaining = deadline - time.monotonic()
                ready = {key.fileobj for key, _ in selector.select(remaining)} if remaining > 0 else set()
                if cancel is not None:
                    cancel.check()
                if not ready:
                    return None
                if self.proc.stderr in ready:
                    self._keep_early(selector)
                if fd in ready:
                    chunk = os.read(fd, size - len(data))
                    if not chunk:
                        break
                    data += chunk
        return data


def clear_code(folder):
    """Empty a reused container's code folder (the link to its scratch space stays) for its next program."""
    for entry in list(os.scandir(folder)):
        if entry.name == OUT and entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
