"""The program's processes, inside the container: run as part of the supervisor's source (engine/shipping.py joins
them), in the supervisor. Each program runs in a child forked before its go line is read, so it never holds the end
token; the helpers that move its input, files and output run in processes of their own, so none of it stays in the
supervisor's memory, from which the next program's process is forked.
"""

import os

TYPE_CHECKING = False
if TYPE_CHECKING:  # in the container, these come in this same source
    from .files import receive_files, relay_stdin
    from .between import gc, time
    from .supervisor import MARK, run_main


class Program:
    """The next program's process, forked before its go line is read (so it never holds the end token); it waits for
    a word from the supervisor. Its files (when sent) and its stdin (when there is any) are moved by a helper process
    forked only then, so that none of them passes through the supervisor's memory."""

    def __init__(self, prctl):
        stdin, self.stdin = os.pipe()
        release, self.release = os.pipe()
        gc.freeze()  # what we hold is not the program's: its exit's flush of open files looks at its objects alone
        self.pid = fork()
        if self.pid == 0:
            os.close(self.stdin)
            os.close(self.release)
            if os.read(release, 1) != b"g":
                os._exit(0)
            os.dup2(stdin, 0)
            os.close(stdin)
            os.close(release)
            become_program(prctl)
        os.close(stdin)
        os.close(release)

    def start(self, files_size, has_stdin):
        """Have its files received and its stdin relayed (by a helper), say so to the host, and let it run."""
        if files_size or has_stdin:
            received, done = os.pipe()
            if fork() == 0:  # the files first (from stdin, when not mounted), then the program's stdin
                os.close(received)
                os.close(self.release)
                receive_files(files_size)
                os.write(done, b"1")
                relay_stdin(self.stdin) if has_stdin else os._exit(0)
            os.close(done)
            if os.read(received, 1) != b"1":
                os._exit(1)  # the helper died: the container cannot go on
            os.close(received)
        os.write(1, MARK + b"A")
        os.write(self.release, b"g")
        self.close()  # the program sees the end of its stdin when the helper ends (at once, when it has none)

    def close(self):
        """Close our ends of its pipes, once: after start(), or when a session comes instead (its cells must not
        inherit them)."""
        os.close(self.stdin)
        os.close(self.release)

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
