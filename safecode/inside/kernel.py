"""A session's kernel: run inside the container by the supervisor (supervisor.py), which passes itself as `sv`.

Sent by the host after the ready mark, in place of a go line, and run in the supervisor's process: cells then run
one after another in one namespace, as in a notebook, and the value of a cell's last expression is shown: as a
display when it has a richer form than text, else as the interactive interpreter prints it. The host speaks on stdin, the kernel answers as for a single run:

    stdin:  <code bytes> <stdin bytes> <seconds> <files bytes>\\n<code><stdin><files>
                                          a cell, its standard input, time limit and files (if not mounted)
    stdout: <mark>A                                               the cell starts
    ... its output, then stderr's and stdout's end marks (exit status 0, or 1 after an exception; marked with the
        session's end token, which the host sends after idle and lifetime), and with scratch
        on, the files of out/ that are new or changed since the last cell.

SIGINT (which the host sends through Docker when a cell runs past its limit) raises KeyboardInterrupt in the cell.
SystemExit ends the session, as it ends the interpreter. The session also ends by itself, with its container: at
end of stdin (the host is gone), after `idle` seconds without a cell, after `lifetime` seconds in all however busy
(a cell in flight then ends with a word on stderr, and ends the session), and when a cell runs `BACKSTOP` seconds
past its own limit even if the host is gone. One timer (SIGALRM) keeps all three.
"""

import os
import sys
import time

BACKSTOP = 5


def serve(sv):
    """Run cells until the session ends; never returns."""
    import _signal  # type: ignore[import-not-found]
    import ast
    import builtins
    import io
    import linecache
    import traceback

    idle, lifetime, token = sv.read_line().split()
    idle, lifetime, end = float(idle), float(lifetime), b"\0" + token
    ends = time.monotonic() + lifetime
    main = type(sys)("__main__")
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    builtins.display = sv.display
    sys.argv[:], sys.path[0] = [""], "/app"
    os.chdir("/app")
    seen = {}
    cell = {"before": None}  # the CPU times at the start of the cell in flight, if any

    def finish(status, leaving):
        """The cell's end marks (and, with scratch, its new files); the session ends with it when `leaving`."""
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        used = sum(os.times()[:4]) - sum(cell["before"][:4])  # user and system, its own and its children's
        cpu = min(int(used * 1e6), 10**12 - 1)
        peak = min(resource_peak(), 10**12 - 1)
        os.write(2, end + b"E%012d%012d%d" % (cpu, peak, leaving))
        os.write(1, end + b"E%03d" % (status & 0xFF))
        if sv.OUT_BYTES:
            sv.send_files(sv.OUT_BYTES, seen)
        if leaving:
            os._exit(0)

    def timer(signum, frame):
        """The session's lifetime is over, or a cell ran BACKSTOP seconds past its limit and the host did not stop
        it: the session ends now, with its container. A cell in flight says why and ends the session."""
        if cell["before"] is None:
            os._exit(0)
        if time.monotonic() >= ends - 0.01:
            os.write(2, b"\nsafecode: the session reached its lifetime of %gs and has ended\n" % lifetime)
        finish(1, True)

    _signal.signal(_signal.SIGALRM, timer)
    os.write(1, sv.MARK + b"A")  # the session is open
    for number in range(1, 1 << 62):
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # an interrupt that comes late finds no cell to stop
        cell["before"] = None
        arm(_signal, min(idle, ends - time.monotonic()))  # no cell in time: the session ends, and the container
        code_size, stdin_size, limit, files_size = sv.read_line().split()
        arm(_signal, min(float(limit) + BACKSTOP, ends - time.monotonic()))
        source = sv.read_exactly(int(code_size)).decode("utf-8", "replace")
        sys.stdin = io.TextIOWrapper(io.BytesIO(sv.read_exactly(int(stdin_size))), encoding="utf-8")
        sv.receive_files(int(files_size))
        cell["before"] = os.times()
        os.write(1, sv.MARK + b"A")
        status, leaving = 0, None
        try:
            _signal.signal(_signal.SIGINT, _signal.default_int_handler)
            run_cell(ast, linecache, main, source, f"<cell {number}>")
        except SystemExit as done:
            leaving = done
        except BaseException as error:  # KeyboardInterrupt included: the cell ends, the session goes on
            _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
            frames = error.__traceback__
            while frames is not None and not frames.tb_frame.f_code.co_filename.startswith("<cell "):
                frames = frames.tb_next  # the traceback starts in the cell, not in this kernel
            traceback.print_exception(type(error), error, frames)
            status = 1
        _signal.signal(_signal.SIGINT, _signal.SIG_IGN)
        sv.show_open_figures()
        if leaving is not None:
            status = sv.exit_status(leaving)
        finish(status, leaving is not None)
    os._exit(0)


def run_cell(ast, linecache, main, source, name):
    """Run one cell in `main`'s namespace. The value of a last expression is shown: as a display when it has a form
    richer than text (a DataFrame's table), else as the interactive interpreter prints it, on stdout."""
    linecache.cache[name] = (len(source), None, source.splitlines(True), name)  # so that tracebacks show the lines
    tree = ast.parse(source, name, "exec")
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, name, "exec"), main.__dict__)
    if last is not None:
        value = eval(compile(ast.Expression(last.value), name, "eval"), main.__dict__)
        import safecode_display  # type: ignore[import-not-found]  # shipped beside this (supervisor.py)

        safecode_display.show_result(value)


def arm(signals, seconds):
    """SIGALRM in `seconds` (to the millisecond); at once when that time has passed already."""
    if seconds <= 0:
        os.kill(os.getpid(), signals.SIGALRM)
    signals.setitimer(signals.ITIMER_REAL, max(seconds, 0.001))


def resource_peak():
    """This process's peak resident memory in bytes: the session's, as cells share it."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0
