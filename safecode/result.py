"""The outcome of one run: a frozen value, whatever happened to the program."""

import base64
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional, Tuple, Union

TEXT_TYPES = ("text/plain", "text/html", "text/markdown", "text/latex", "image/svg+xml", "application/json")
BINARY_TYPES = ("image/png", "image/jpeg", "application/pdf")


def _form(mime: str) -> Any:
    return property(lambda self: self.data.get(mime), doc=f"The {mime} form, or None.")


@dataclass(frozen=True)
class Display:
    """One rich result, as a notebook shows it: `data` maps MIME types to the forms the program gave, str for text
    types (application/json as its JSON text) and bytes for binary ones (image/png, image/jpeg, application/pdf).

    Everything in it is the program's: never render its HTML or SVG in a page of yours unconfined (see README).
    """

    data: Mapping[str, Union[str, bytes]]

    text = _form("text/plain")
    html = _form("text/html")
    markdown = _form("text/markdown")
    latex = _form("text/latex")
    svg = _form("image/svg+xml")
    json = _form("application/json")
    png = _form("image/png")
    jpeg = _form("image/jpeg")

    def as_json(self) -> Dict[str, str]:
        """The forms as JSON takes them, as the web API and `--json` give them: binary ones in base64."""
        return {mime: base64.b64encode(value).decode() if isinstance(value, bytes) else value
                for mime, value in self.data.items()}

    def __repr__(self) -> str:
        forms = ", ".join(f"{mime!r}: " + (f"<{len(value)} bytes>" if isinstance(value, bytes) else
                                            repr(value if len(value) <= 60 else value[:57] + "..."))
                          for mime, value in self.data.items())
        return f"Display({{{forms}}})"


@dataclass(frozen=True)
class Result:
    """What a program did. `status` names the first of: timeout, output_limit, oom, sandbox_error (the sandbox
    itself ended before the program did: its runtime gave up, as gVisor does at the process limit), error, ok."""

    stdout: str
    stderr: str
    exit_code: "int | None"  # None when the program was killed before it exited
    status: str
    timed_out: bool = False
    oom_killed: bool = False
    truncated: bool = False
    duration: float = 0.0  # seconds, wall clock, as seen by the caller
    cpu_time: Optional[float] = None  # CPU seconds the program used (user + system); None when it was stopped
    peak_memory: Optional[int] = None  # bytes: the program's peak resident memory; None when it was stopped
    files: Dict[str, bytes] = field(default_factory=dict)  # what the program left in /app/out (scratch on)
    files_left_out: Tuple[str, ...] = ()  # what of /app/out did not come back, and why
    displays: Tuple[Display, ...] = ()  # what the program displayed (display(), charts, a cell's rich result), in order
    displays_left_out: Tuple[str, ...] = ()  # what of them did not come back, and why
    session_ended: bool = False  # a session's cell only: this cell ended its session (see Session)

    @property
    def ok(self):
        """True when the program ran to the end and exited 0."""
        return self.status == "ok"


def stop_reason(result, limits):
    """One sentence on why the sandbox stopped the program, or "" when it ran to its end."""
    if result.timed_out:
        unit = "second" if limits.timeout == 1 else "seconds"
        return f"Execution timed out after {limits.timeout:g} {unit}."
    if result.truncated:
        return f"Output went over {limits.max_output} bytes; the program was stopped."
    if result.oom_killed:
        return f"Out of memory: the program was killed at the {limits.memory} limit."
    if result.status == "sandbox_error":
        return ("The sandbox ended before the program did: its runtime gave up (under gVisor, this is what "
                f"reaching the limit of {limits.pids} processes does).")
    return ""
