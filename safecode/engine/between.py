"""A container between two programs: whether an idle one is fit to take a program, and, with reuse, the end of a
program's turn: the host sends the program's end token back, and the supervisor, once it has cleared what the
program left (inside/between.py), says it is ready again.
"""

import os
import selectors
import shutil
import time

from .ending import Selector
from ..files import OUT

READY = b"R"  # the supervisor's word that it is up, or ready again after a program
CLEAN_TIMEOUT = 10.0  # seconds a reused container has to clear a program's traces and be ready again


class Between:
    """The part of a Container (container.py) that speaks between programs. Uses its `proc`, `mark`, `end`, and
    what Ending gives (drain, kill_client, stop) and Container's `_read`."""

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


def clear_code(folder):
    """Empty a reused container's code folder (the link to its scratch space stays) for its next program."""
    for entry in list(os.scandir(folder)):
        if entry.name == OUT and entry.is_symlink():
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path)
        else:
            os.unlink(entry.path)
