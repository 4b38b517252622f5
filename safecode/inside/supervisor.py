"""Runs inside every sandbox container as its PID 1 and the program's parent: started by bootstrap.py (`python3 -c
<bootstrap> <size> <token> <out-bytes> <preload> <sent-files>`), which reads this source from stdin, joined after
files.py, preload.py and between.py, with the modules shipped as text (MODULES: the display machinery and the plot
backend) ahead of them.

It says it is ready, waits for the host's go line, runs /app/main.py in a forked child exactly as `python main.py`
would, and then tells the host how the program ended, so the host knows the result at once rather than when `docker
run` returns after teardown. A container may run several programs, one after another (reuse): then the supervisor
clears everything the program left (between.py) and is ready again.

    stdout: <mark>R               ready (once the interpreter is up, and again after each program that is not the last)
    stdin:  g<seconds> <n> <last> <token> <in>\\n
                                  go: run main.py; end on your own after <seconds> if the host has not stopped it. n
                                  bytes of files for /app follow (files.py), 0 when the host mounted them; <last> 1
                                  when no program follows; <token> marks this program's end (below); <in> 1 when
                                  the program has stdin, which follows as frames: d<size>\\n<bytes>, and e\\n
    stdout: <mark>A               acknowledged; main.py starts now
    stderr: <end>E<cpu><mem><L>   the program has ended: nothing of its stderr follows. Its CPU time in microseconds
                                  and peak resident memory in bytes, 12 digits each (from wait4's rusage); L is 1 when
                                  the container ends with it
    stdout: <end>E<nnn>           the program has ended with exit status nnn (000-255): nothing of its stdout follows
    stdin:  x<token>\\n           the host's end of this program's turn (only when L was 0): all before it is dropped

<mark> is a NUL byte and the container's token, known to its programs (their displays are framed with it); <end> is
a NUL byte and the program's own token, which no program's process ever holds: the program is forked before the go
line is read, and its input, files and output never pass through the supervisor's memory (helper processes move
them). So no program can forge its own end, or speak for the program after it.

With scratch on (<out-bytes> above 0), the files the program left under /app/out follow its exit status on stdout,
up to <out-bytes> bytes, each as F<name length:4><name><size:8><bytes>; a word on what was left out as
S<length:4><text>; and Z at the end (lengths big-endian). Links, fifos, sockets and devices are never followed or
opened. Before that, every process the program left behind is killed, so nothing else writes on the way.

A session's host sends s<length> and the session kernel's source (kernel.py) instead of a go line.

End of stdin instead of a go line means the host is gone: the supervisor exits and the container goes with it.
Only modules loaded at start-up (os, sys, io, stat) are used before the fork, so the program starts from an
interpreter as fresh as `python main.py`;
unless <preload> names modules (comma-separated: a warm container's, such as the scientific stack), which are
imported ahead so that the program's own imports of them cost nothing; if one cannot be, the supervisor says why
on stderr instead of being ready, and ends.
"""

import os
import sys

MARK = b"\0" + sys.argv[1].encode()
OUT_BYTES = int(sys.argv[2])
PRELOAD = [name for name in sys.argv[3].split(",") if name]
SENT_FILES = sys.argv[4] == "1"  # /app is an empty tmpfs, and the files come on stdin (a remote engine)
SCRIPT = "/app/main.py"
TYPE_CHECKING = False
if TYPE_CHECKING:  # in the container, files.py and preload.py come first in this same source, MODULES ahead of them
    from .between import BACKSTOP, clear_processes, end_of_turn, restore, seal, time, traits, wipe
    from .files import APP, OUT, prepare_app, read_exactly, read_line, receive_files, send_files, whole_writes
    from .preload import preload
    from .program import Program, in_helper

    MODULES: dict = {}


class Shipped:
    """The import system's finder and loader for the modules shipped as text (MODULES): safecode_display, and the
    plot backend safecode_plots."""

    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name in MODULES:
            return sys.modules["_frozen_importlib"].spec_from_loader(name, cls)
        return None

    @staticmethod
    def create_module(spec):
        return None

    @staticmethod
    def exec_module(module):
        exec(compile(MODULES[module.__name__], f"<{module.__name__}>", "exec"), module.__dict__)
        module.MARK = MARK  # how the display module marks its frames

def run_main():
    """In the child: run main.py as __main__, as the interpreter does for `python main.py`. Never returns."""
    if not PRELOAD:
        execute_main()
    try:
        execute_main()
    except SystemExit as done:
        exit_quickly(done)


def exit_quickly(done):
    """End as the interpreter would, but without tearing down every module (a second at half a CPU with pandas).

    What a program can see of the interpreter's shutdown is kept: threads joined, atexit handlers run, every open
    file flushed, the exit status and message of SystemExit. Only objects' __del__ at exit do not run.
    """
    import atexit
    import gc
    import io

    threading = sys.modules.get("threading")
    if threading is not None:
        threading._shutdown()
    atexit._run_exitfuncs()
    code = exit_status(done)
    for stream in gc.get_objects():
        try:
            if isinstance(stream, io.IOBase) and not stream.closed:
                stream.flush()
        except Exception:
            pass
    os._exit(code)


def exit_status(done):
    """The exit status a SystemExit means, its message printed as the interpreter prints it."""
    code = done.code
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        return 1
    return (code or 0) & 0xFF


def display(*objects, **options):
    """IPython's display(), a builtin in every sandbox: safecode_display does the work, imported on first use."""
    import safecode_display  # type: ignore[import-not-found]  # shipped as text (MODULES)

    safecode_display.display(*objects, **options)


def show_open_figures():
    """The figures a program (or a cell) left open become displays, as a notebook shows them under it."""
    plots = sys.modules.get("safecode_plots")
    if plots is not None and "matplotlib.pyplot" in sys.modules:
        try:
            plots.show_figures()
        except Exception:
            pass


def execute_main():
    """Run main.py as __main__; ends with SystemExit, as the interpreter does for `python main.py`."""
    import builtins

    sys.argv[:] = ["main.py"]
    sys.path[0] = "/app"
    try:  # if the memory limit is reached, the kernel kills the program rather than its supervisor
        with open("/proc/self/oom_score_adj", "w") as file:
            file.write("1000")
    except OSError:
        pass
    builtins.display = display
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
    finally:
        show_open_figures()
    sys.exit(0)  # and the interpreter's own shutdown joins threads, runs atexit handlers, flushes output


def clean(was):
    """Clear what the program left; what could not be, in words, or None."""
    try:
        if OUT_BYTES:
            wipe("/tmp")
            os.mkdir(OUT, 0o700)
        if SENT_FILES:
            os.chmod(APP, 0o755)
            wipe(APP)
            prepare_app(OUT_BYTES)
    except OSError as error:
        return f"its files could not all be removed ({error})"
    return restore(was)


def main():
    whole_writes()
    os.environ.setdefault("MPLBACKEND", "module://safecode_plots")
    sys.meta_path.append(Shipped)
    sealed, prctl = seal()
    if OUT_BYTES:
        os.mkdir(OUT, 0o700)
    if SENT_FILES:
        prepare_app(OUT_BYTES)
    if PRELOAD:
        preload(PRELOAD)
    try:
        was = traits()
    except OSError:  # a seccomp profile of the caller's may refuse what reuse needs to check: then no reuse
        was, sealed = None, False
    while True:
        program = Program(prctl)  # forked first: a program that comes at once does not wait for it
        os.write(1, MARK + b"R")
        serve(program, sealed, was)


def serve(program, sealed, was):
    """Run one program (or become a session); return when the container may take another."""
    import _signal  # type: ignore[import-not-found]  # loaded at start-up already

    line = read_line()
    if line.startswith(b"s"):  # a session: its kernel comes next, and then cells
        program.close()
        clear_processes()
        namespace = {}
        exec(read_exactly(int(line[1:])), namespace)
        namespace["serve"](sys.modules[__name__])
    if not line.startswith(b"g"):
        os._exit(0)
    seconds, size, last, token, has_stdin = line[1:].split()
    end = b"\0" + token
    program.start(int(size), has_stdin == b"1")
    BACKSTOP[0] = time.monotonic() + float(seconds)  # then SIGALRM ends us, and the container with us
    _signal.setitimer(_signal.ITIMER_REAL, float(seconds))
    status, usage = program.wait()
    _signal.setitimer(_signal.ITIMER_REAL, 0)
    BACKSTOP[0] = float("inf")
    code = os.waitstatus_to_exitcode(status)
    code = 128 - code if code < 0 else code  # killed by signal N: 128+N, as a shell and Docker report it
    leaving = last == b"1" or not sealed
    if not clear_processes():
        leaving = True  # a process that would not die: no program may follow it here
    for fd in (1, 2):  # shared with the program, which may have made them non-blocking (for us, and the next)
        os.set_blocking(fd, True)
    cpu = min(int((usage.ru_utime + usage.ru_stime) * 1e6), 10**12 - 1)
    os.write(2, end + b"E%012d%012d%d" % (cpu, min(usage.ru_maxrss * 1024, 10**12 - 1), leaving))  # maxrss: KiB
    os.write(1, end + b"E%03d" % (code & 0xFF))
    if OUT_BYTES:
        in_helper(send_files, OUT_BYTES)
    if leaving or not end_of_turn(b"x" + token + b"\n"):
        os._exit(0)
    why = clean(was)
    if why:
        os.write(2, f"safecode: this container cannot take another program: {why}\n".encode())
        os._exit(0)


main()
