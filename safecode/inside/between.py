"""Between two programs in one container (reuse), inside it: the walls that keep the program before from reaching the
next. Runs as part of the supervisor's source (engine/shipping.py joins them), in the supervisor: PID 1.

What the program before could have reached, and what this does about each:
- the supervisor's memory, descriptors and signals: the supervisor is PID 1 (the kernel drops the signals a process
  of its container sends it) and not dumpable (its /proc files are root's: no /proc/1/mem, no /proc/1/fd).
  gVisor still opens /proc/1/fd: so the host's word that a program's turn is over carries the end token, which no
  program ever had (engine/container.py), and whatever else is on stdin before it is dropped unread.
- its processes: killed and reaped until none is left (as PID 1, every process here is a child of ours).
- its files: /tmp (scratch) and a sent /app are emptied, never following a link.
- what it could change of the supervisor from outside (prlimit, setpriority, sched_setaffinity, sched_setscheduler):
  compared with what it was at start, put back, and if it cannot be, the container ends rather than pass it on.
"""

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:  # loaded by seal(), kept out of sys.modules; in_helper comes in the same source
    import gc
    import resource
    import time

    from .program import in_helper

PR_SET_DUMPABLE = 4
CLEAR_WAIT = 2.0  # seconds the program's processes have to be gone once killed
BACKSTOP = [float("inf")]  # when the program in flight must be over (time.monotonic()), even if the host is gone


def seal():
    """Make the supervisor a wall for reuse; False if it cannot be one (then each container runs one program).

    Returns the prctl function too: the program's own process is made dumpable again, as `python main.py` is. The
    modules this needs stay out of sys.modules: the program imports them afresh, as it would in `python main.py`.
    """
    import _signal  # type: ignore[import-not-found]  # loaded at start-up already

    global gc, resource, time

    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # a program's kill(1, SIGINT) must not reach us
    _signal.signal(_signal.SIGALRM, backstop)  # PID 1 ignores a signal's default action: a handler it must be
    before = set(sys.modules)
    import gc
    import resource
    import time

    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
        sealed = os.getpid() == 1 and prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except Exception:
        prctl, sealed = None, False
    for name in set(sys.modules) - before:
        del sys.modules[name]
    return sealed, prctl


def backstop(signum, frame):
    """SIGALRM: the program in flight is past its backstop, so the container ends. A program can send SIGALRM too:
    then it is not time yet, and nothing happens."""
    if time.monotonic() >= BACKSTOP[0]:
        os._exit(1)


def traits():
    """What a process of this container may change of the supervisor from outside it."""
    limits = {name: resource.getrlimit(getattr(resource, name)) for name in dir(resource) if name.startswith("RLIMIT_")}
    return {"rlimits": limits, "nice": os.getpriority(os.PRIO_PROCESS, 0), "cpus": os.sched_getaffinity(0),
            "policy": os.sched_getscheduler(0)}


def restore(was):
    """Put the supervisor's traits back as `was`; what could not be, in words, or None."""
    now = traits()
    if now == was:  # the usual case: nothing to put back
        return None
    for name, value in was["rlimits"].items():
        if now["rlimits"][name] != value:
            try:
                resource.setrlimit(getattr(resource, name), value)
            except (OSError, ValueError):
                pass
    for change in (lambda: os.setpriority(os.PRIO_PROCESS, 0, was["nice"]),
                   lambda: os.sched_setaffinity(0, was["cpus"]),
                   lambda: os.sched_setscheduler(0, was["policy"], os.sched_param(0))):
        try:
            change()
        except OSError:
            pass
    now = traits()
    changed = [name for name in was if now[name] != was[name]]
    return f"the program changed the supervisor's {', '.join(changed)}" if changed else None


def clear_processes():
    """Kill every process but this one and reap them all; False if one would not go."""
    deadline = time.monotonic() + CLEAR_WAIT
    while True:
        try:
            os.kill(-1, 9)  # every process we may signal, but us
        except OSError:
            pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            return True  # no child left: as PID 1, no process left at all
        if time.monotonic() > deadline:
            return False
        time.sleep(0.001)


def wipe(top):
    """Remove everything under the folder `top`, never following a link; the folder stays."""
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        _wipe(fd)
    finally:
        os.close(fd)


def _wipe(folder):
    for entry in list(os.scandir(folder)):
        if entry.is_dir(follow_symlinks=False):
            os.chmod(entry.name, 0o700, dir_fd=folder)  # no link (just seen), and nothing runs to swap one in
            inner = os.open(entry.name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
            try:
                _wipe(inner)
            finally:
                os.close(inner)
            os.rmdir(entry.name, dir_fd=folder)
        else:
            os.unlink(entry.name, dir_fd=folder)


def end_of_turn(word):
    """Read the host's end of a program's turn, `word`: at once when it is all there is (the usual case), else through
    a helper that drops whatever comes before it (input the program left), so that none of that stays in our memory.
    False at end of stdin."""
    start = bytearray(len(word))
    got = os.readv(0, [start])  # into a buffer of ours, emptied below: no copy of the program's input is left
    if got == len(word) and start == word:
        return True
    try:
        return bool(got) and in_helper(drain_until, word, memoryview(start)[:got])
    finally:
        start[:] = bytes(len(word))


def drain_until(word, start=b""):
    """Read stdin until `word`, dropping all before it, from what was read already (`start`); exit 1 at end of stdin.

    Never reads past the word: what follows it is the host's next message."""
    seen = bytes(start)
    while seen != word:
        have = next(k for k in range(min(len(seen), len(word) - 1), -1, -1) if seen.endswith(word[:k]))
        chunk = os.read(0, len(word) - have)
        if not chunk:
            os._exit(1)
        seen = seen[len(seen) - have :] + chunk
