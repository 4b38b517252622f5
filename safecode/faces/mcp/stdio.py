"""MCP over stdio: newline-delimited JSON-RPC on stdin and stdout, nothing but protocol on stdout, logs on stderr.

Each request is handled on a thread of its own, so a long call never holds up `ping` or another call. End of stdin,
SIGTERM and Ctrl-C all end the server the same way: every call in flight is cancelled (its container killed),
every session ended, and the process exits within a few seconds.
"""

import json
import os
import signal
import sys
import threading

from .rpc import PARSE_ERROR, Connection, RPCError, decode, error

MAX_MESSAGE = 32 << 20  # bytes in one line; past it the line is refused, never held whole
END_WAIT = 10.0  # seconds the calls in flight have to remove their containers at the end


class Stdio:
    """One client on this process's stdin and stdout."""

    def __init__(self, tools, stdin=None, stdout=None):
        self.connection = Connection(tools)
        self.stdin = stdin if stdin is not None else sys.stdin.buffer.fileno()
        self.stdout = stdout if stdout is not None else sys.stdout.buffer.fileno()
        self._write = threading.Lock()
        self._threads = set()
        self._done = threading.Condition()

    def reply(self, message):
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        with self._write:
            view = memoryview(data)
            try:
                while view:
                    view = view[os.write(self.stdout, view) :]
            except OSError:  # the client is gone: the end of stdin follows
                pass

    def serve(self):
        """Read messages until end of stdin (or SIGTERM, or Ctrl-C); then end everything and return."""
        previous = signal.signal(signal.SIGTERM, _interrupt) if threading.current_thread() is threading.main_thread() \
            else None
        try:
            for line in _lines(self.stdin):
                self._take(line)
        except KeyboardInterrupt:
            pass
        finally:
            self.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)

    def _take(self, line):
        if line is None:
            return self.reply(error(None, PARSE_ERROR, f"Parse error: a message of more than {MAX_MESSAGE} bytes."))
        if not line.strip():
            return None
        try:
            message = decode(line)
        except RPCError as failure:
            return self.reply(error(None, failure.code, failure.message))
        thread = threading.Thread(target=self._handle, args=(message,), name="safecode-mcp-request", daemon=True)
        with self._done:
            self._threads.add(thread)
        thread.start()
        return None

    def _handle(self, message):
        try:
            self.connection.handle(message, self.reply)
        finally:
            with self._done:
                self._threads.discard(threading.current_thread())
                self._done.notify_all()

    def close(self):
        self.connection.close()
        with self._done:
            self._done.wait_for(lambda: not self._threads, END_WAIT)


def _lines(fd):
    """The lines of `fd`, each without its newline; None in place of a line over MAX_MESSAGE (which is skipped)."""
    buffer, skipping = b"", False
    while True:
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            if buffer and not skipping:
                yield buffer
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if skipping:
                skipping = False
                continue
            yield line
        if len(buffer) > MAX_MESSAGE:
            if not skipping:
                yield None
            buffer, skipping = b"", True


def _interrupt(signum, frame):
    raise KeyboardInterrupt
