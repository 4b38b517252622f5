"""Runs inside every sandbox container (as `python3 -c <this file> <token>`), as the program's parent.

It says it is ready, waits for the host's go line, acknowledges it, runs /app/main.py in a forked child exactly
as `python main.py` would, and then tells the host how the program ended, so the host knows the result at once
rather than when `docker run` returns after teardown. Its messages on stdout/stderr start with a NUL byte and a
random token, only so that no ordinary output is mistaken for them: a program that forges one changes nothing
but its own result, because every container runs one program and is then removed.

    stdout: <mark>R              ready (sent once the interpreter is up)
    stdin:  g<seconds>\\n         go: run main.py; stop on your own after <seconds> if the host has not
    stdout: <mark>A              acknowledged; main.py starts now. Then the program's stdin follows on stdin.
    stderr: <mark>E              the program has ended: nothing of its stderr follows
    stdout: <mark>E<nnn>         the program has ended with exit status nnn (000-255): nothing of its stdout follows

End of stdin instead of a go line means the host is gone: the supervisor exits and the container goes with it.
Only os and sys are used before the fork, so the program starts from an interpreter as fresh as `python main.py`.
"""

import os
import sys

MARK = b"\0" + sys.argv[1].encode()
SCRIPT = "/app/main.py"


def run_main():
    """In the child: run main.py as __main__, as the interpreter does for `python main.py`. Never returns."""
    import builtins

    sys.argv[:] = ["main.py"]
    sys.path[0] = "/app"
    try:  # if the memory limit is reached, the kernel kills the program rather than its supervisor
        with open("/proc/self/oom_score_adj", "w") as file:
            file.write("1000")
    except OSError:
        pass
    main = type(sys)("__main__")
    main.__file__, main.__cached__, main.__builtins__ = SCRIPT, None, builtins
    main.__spec__, main.__package__ = None, None
    main.__loader__ = sys.modules["_frozen_importlib_external"].SourceFileLoader("__main__", SCRIPT)
    sys.modules["__main__"] = main
    try:
        with open(SCRIPT, "rb") as file:
            code = compile(file.read(), SCRIPT, "exec")
    except BaseException as error:  # SyntaxError, or ValueError for NUL bytes: no traceback, as python prints it
        sys.excepthook(type(error), error.with_traceback(None), None)
        sys.exit(1)
    try:
        exec(code, main.__dict__)
    except SystemExit:
        raise  # the interpreter prints a message if there is one, and exits with its status
    except BaseException as error:
        error.with_traceback(error.__traceback__.tb_next)  # the traceback starts in main.py, not here
        sys.excepthook(type(error), error, error.__traceback__)
        sys.exit(1)
    sys.exit(0)  # and the interpreter's own shutdown joins threads, runs atexit handlers, flushes output


def read_line():
    line = b""
    while not line.endswith(b"\n"):
        byte = os.read(0, 1)  # byte by byte: whatever follows the go line is the program's stdin, unread
        if not byte:
            os._exit(0)
        line += byte
    return line


def main():
    os.write(1, MARK + b"R")
    line = read_line()
    if not line.startswith(b"g"):
        os._exit(0)
    deadline = float(line[1:])
    os.write(1, MARK + b"A")
    child = os.fork()
    if child == 0:
        run_main()
    import _signal  # type: ignore[import-not-found]  # loaded at start-up already; `signal` would import enum, 50 ms at half a CPU

    _signal.alarm(max(1, int(deadline + 0.999)))  # a backstop: SIGALRM ends us, and the container with us
    _, status = os.waitpid(child, 0)
    code = os.waitstatus_to_exitcode(status)
    code = 128 - code if code < 0 else code  # killed by signal N: 128+N, as a shell and Docker report it
    os.write(2, MARK + b"E")
    os.write(1, MARK + b"E%03d" % (code & 0xFF))
    os._exit(0)


main()
