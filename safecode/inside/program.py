"""The program's processes, inside the container: run as part of the supervisor's source (engine/shipping.py joins
them), in the supervisor. Each program runs in a child forked before its go line is read, so it never holds the end
token; the helpers that move its input, files and output run in processes of their own, so none of it stays in the
supervisor's memory, from which the next program's process is forked.
"""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # in the container, these come in this same source
    from .files import read_line, receive_files, relay_stdin
    from .between import time
    from .supervisor import MARK, run_main


class Program:
    """The next program's process, forked before its go line is read (so it never holds the end token), with the
    process that relays its stdin. Both wait for a word from the supervisor."""

    def __init__(self, prctl):
        stdin, self.stdin = os.pipe()
        release, self.release = os.pipe()
        control, self.control = os.pipe()
        self.received, files_done = os.pipe()
        self.pid = fork()
        if self.pid == 0:
            for fd in (self.stdin, self.release, control, self.control, self.received, files_done):
                os.close(fd)
            if os.read(release, 1) != b"g":
                os._exit(0)
            os.dup2(stdin, 0)
            for fd in (stdin, release):
                os.close(fd)
            become_program(prctl)
        self.relay = fork()
        if self.relay == 0:  # the files first (from stdin, when not mounted), then the program's stdin
            for fd in (stdin, release, self.release, self.control, self.received):
                os.close(fd)
            receive_files(int(read_line(control)))
            os.write(files_done, b"1")
            relay_stdin(self.stdin)
        for fd in (stdin, self.stdin, release, control, files_done):
            os.close(fd)

    def start(self, files_size):
        """Have the files received, say so to the host, and let the program run."""
        os.write(self.control, b"%d\n" % files_size)
        if os.read(self.received, 1) != b"1":
            os._exit(1)  # the relay died: the container cannot go on
        os.write(1, MARK + b"A")
        os.write(self.release, b"g")
        self.close()

    def close(self):
        """Close our ends of its pipes, once: after start(), or when a session comes instead (its cells must not
        inherit them)."""
        for fd in (self.control, self.received, self.release):
            os.close(fd)

    def wait(self):
        """Its wait status and rusage, once it has ended; processes it orphaned are reaped meanwhile."""
        while True:
            pid, status, usage = os.wait4(-1, 0)
            if pid == self.pid:
                return status, usage


def fork(tries=100):
    """os.fork, tried again for a second while the kernel says EAGAIN: after a program that took all the memory or
    processes, gVisor gives them back a moment later."""
    for _ in range(tries - 1):
        try:
            return os.fork()
        except BlockingIOError:
            time.sleep(0.01)
    return os.fork()


def become_program(prctl):
    """In the program's own process, just before main.py: signals and dumpability as `python main.py` has them."""
    import _signal  # type: ignore[import-not-found]

    _signal.signal(_signal.SIGINT, _signal.default_int_handler)
    _signal.signal(_signal.SIGALRM, _signal.SIG_DFL)
    if prctl is not None:
        prctl(4, 1, 0, 0, 0)  # PR_SET_DUMPABLE, as after exec
    run_main()


def in_helper(work, *args):
    """Run `work` in a process of its own, so that what it reads never stays in our memory; True if it ended well."""
    pid = fork()
    if pid == 0:
        work(*args)
        os._exit(0)
    return os.waitpid(pid, 0)[1] == 0
