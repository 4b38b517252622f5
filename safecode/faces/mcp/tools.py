"""The tools the MCP server offers a model — run_python and end_session — over one Sandbox shared by every client.

A call's arguments are checked here, and a bad one is a tool result with isError whose text says what is wrong (so
that a model can correct itself); so is what is not the program's fault (no engine, no image, the server busy),
with how to fix it. A run's Result becomes MCP content in content.py.
"""

import dataclasses
import re

from ...engine.image import REPOSITORY, variant
from ...engine.packages import packages_of
from ...errors import Cancelled, DockerUnavailable, ImageNotFound, InvalidFile, SafecodeError, SessionEnded
from ...reader.protocol import Output
from ...result import Display
from ..gate import Busy, RunGate
from .content import OUTPUT_SCHEMA, answer

CANCELLED = object()  # a call cancelled by its client: nothing is sent for it
QUEUE_WAIT = 15.0  # seconds a call may wait for a run slot
SESSION_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
ARGUMENTS = ("code", "stdin", "timeout", "files", "session")


class ToolError(Exception):
    """A call that ends as a tool result with isError: bad arguments, or a sandbox that is not there."""

    def __init__(self, text):
        super().__init__(text)
        self.result = {"content": [{"type": "text", "text": text}], "isError": True}


class Tools:
    """run_python and end_session over `sandbox`: at most `max_runs` programs at once (the rest wait QUEUE_WAIT,
    then are told the server is busy), and at most `max_sessions` sessions per connection."""

    names = ("run_python", "end_session")

    def __init__(self, sandbox, *, max_runs, max_sessions, queue_wait=QUEUE_WAIT):
        self.sandbox, self.max_sessions, self.queue_wait = sandbox, max_sessions, queue_wait
        self.gate = RunGate(max_runs)
        self.definitions = [self._run_python(), self._end_session()]

    def call(self, connection, name, arguments, progress, begin):
        if not isinstance(arguments, dict):
            raise ToolError("The arguments must be an object, such as {\"code\": \"print(1)\"}.")
        if name == "end_session":
            session = _session_name(arguments, required=True)
            ended = connection.end_session(session)
            text = f"Session {session!r} ended." if ended else f"There is no session {session!r} on this connection."
            return {"content": [{"type": "text", "text": text}], "structuredContent": {"session": session,
                                                                                      "ended": ended},
                    "isError": not ended}
        fields, session = self._fields(arguments)
        try:
            release = self.gate.acquire(self.queue_wait)
        except Busy:
            raise ToolError(f"The server is running {self.gate.slots} programs already; try again in a moment.")
        try:
            target = connection.session(session, create=True) if session else self.sandbox
            result = None
            with target.stream(**fields) as run:
                if not begin(run):
                    return CANCELLED
                for event in run:
                    if isinstance(event, Output):
                        progress(event.text)
                    elif isinstance(event, Display):
                        progress(f"[display: {', '.join(event.data)}]\n")
                    else:
                        result = event
        except Cancelled:
            return CANCELLED
        except SessionEnded:
            connection.end_session(session)
            raise ToolError(f"Session {session!r} has ended (idle too long, out of its lifetime, or a cell ended it); "
                            "the next call with that name starts a new one.") from None
        except InvalidFile as error:
            raise ToolError(f"Bad files: {error}.") from None
        except SafecodeError as error:
            raise ToolError(_not_the_programs_fault(error)) from None
        finally:
            release()
        if session and result.session_ended:
            connection.end_session(session)
        return answer(result, dataclasses.replace(self.sandbox.limits, timeout=fields["timeout"]), session)

    def _fields(self, arguments):
        """The keywords of stream() the arguments ask for, and the session's name; ToolError saying what is wrong."""
        unknown = sorted(set(arguments) - set(ARGUMENTS))
        if unknown:
            raise ToolError(f"Unknown argument {unknown[0]!r}; run_python takes {', '.join(ARGUMENTS)}.")
        code = arguments.get("code")
        if not isinstance(code, str) or not code.strip():
            raise ToolError("\"code\" is required: a string of Python source, such as \"print(2 + 2)\".")
        stdin = arguments.get("stdin", "")
        if not isinstance(stdin, str):
            raise ToolError("\"stdin\" must be a string.")
        limit = self.sandbox.limits.timeout
        timeout = arguments.get("timeout", limit)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < float("inf"):
            raise ToolError(f"\"timeout\" must be a positive number of seconds, at most {limit:g}.")
        files = arguments.get("files", {})
        if not isinstance(files, dict) or not all(isinstance(text, str) for text in files.values()):
            raise ToolError("\"files\" must be an object of file names to their text, such as {\"data.csv\": \"a,b\\n1,2\\n\"}.")
        fields = {"code": code, "stdin": stdin, "timeout": min(float(timeout), limit), "files": files}
        return fields, _session_name(arguments, required=False)

    def _describe(self):
        image, limits = self.sandbox.image, self.sandbox.limits
        own = image.startswith(REPOSITORY + ":")
        python = f"Python {variant(image).python}" if own else "Python"
        try:
            added = [package.split("==")[0] for package in packages_of(image, self.sandbox.endpoint)]
        except SafecodeError:  # no engine answers yet: the first call will say so
            added = []
        scientific = ["numpy", "pandas", "matplotlib", "pillow"] if own and variant(image).scientific else []
        names = scientific + added
        packages = f" plus {', '.join(names[:-1])} and {names[-1]}" if len(names) > 1 else \
            f" plus {names[0]}" if names else ""
        scratch = (f" It may write files under /tmp and out/ ({limits.scratch} in all); what it leaves in out/ comes "
                   "back." if limits.scratch else " Nothing in it is writable.")
        return (
            f"Run {python} code in a fresh, hardened sandbox and get back what it printed, the pictures it showed and "
            f"the files it made. The sandbox has the standard library{packages}, and nothing else: no network at "
            f"all, no pip, no internet. Each call may take at most {limits.timeout:g} s (ask for less with "
            f"timeout), {limits.memory} of memory, half a CPU, {limits.pids} processes and {limits.max_output} bytes "
            f"of output.{scratch} Files given in `files` are put beside the program, read-only: open('data.csv'). "
            "To show a chart, call plt.show() or leave the figure open: it comes back as a PNG image; display(obj) "
            "shows an object's rich form (a DataFrame as a table). Without `session` every call starts from nothing; "
            "with the same `session` name, calls share variables, imports and files, as notebook cells do, and a "
            "cell's last expression is shown. End a session with end_session when done."
        )

    def _run_python(self):
        limit = self.sandbox.limits.timeout
        return {
            "name": "run_python",
            "title": "Run Python",
            "description": self._describe(),
            "inputSchema": {
                "type": "object",
                "properties": {
                    "code": {"type": "string", "description": "The Python program, or notebook cell, to run."},
                    "stdin": {"type": "string", "description": "The program's standard input."},
                    "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": limit,
                                "description": f"Seconds the program may run (at most {limit:g})."},
                    "files": {"type": "object", "additionalProperties": {"type": "string"},
                              "description": "Text files put beside the program, read-only: name -> content."},
                    "session": {"type": "string", "pattern": SESSION_NAME.pattern,
                                "description": "A name of your choice: calls with the same name share their state."},
                },
                "required": ["code"],
                "additionalProperties": False,
            },
            "outputSchema": OUTPUT_SCHEMA,
            "annotations": {"title": "Run Python", "readOnlyHint": False, "destructiveHint": False,
                            "idempotentHint": False, "openWorldHint": False},
        }

    @staticmethod
    def _end_session():
        return {
            "name": "end_session",
            "title": "End a Python session",
            "description": "End a session that run_python started: its variables and files are gone, its sandbox "
                           "removed. Sessions also end by themselves when idle for 5 minutes.",
            "inputSchema": {"type": "object", "properties": {"session": {"type": "string"}},
                            "required": ["session"], "additionalProperties": False},
            "outputSchema": {"type": "object", "properties": {"session": {"type": "string"},
                                                              "ended": {"type": "boolean"}},
                             "required": ["session", "ended"]},
            "annotations": {"title": "End a Python session", "readOnlyHint": False, "destructiveHint": True,
                            "idempotentHint": True, "openWorldHint": False},
        }


def _session_name(arguments, required):
    session = arguments.get("session")
    if session is None and not required:
        return None
    if not isinstance(session, str) or not SESSION_NAME.match(session):
        raise ToolError("\"session\" must be a name of 1 to 64 letters, digits, '.', '_' or '-', such as \"analysis\".")
    return session


def _not_the_programs_fault(error):
    if isinstance(error, ImageNotFound):
        return (f"The sandbox image is missing: {error}. Build it on the server's machine with "
                f"'python -m safecode image --image {error.image}', or name another with SAFECODE_IMAGE.")
    if isinstance(error, DockerUnavailable):
        return (f"The sandbox is not available: {error}. The server needs a running container engine: start "
                "Docker, or give the server DOCKER_HOST in the \"env\" of its MCP configuration.")
    return f"The sandbox failed: {error}"
