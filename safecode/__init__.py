"""safecode: run untrusted Python in a throw-away, hardened Docker container.

Inside the package, three kinds of code in three places, each layer importing only those before it:
the values every part shares (errors, limits, result, files, cancel, verdicts); inside/, what runs in the container
(shipped as text, never imported here); engine/, what talks to the container engine; reader/, the one reader that
turns a container's bytes into events; faces/, what people use (Sandbox, stream, sessions, asyncio, grading, the
command line, the MCP server, the compatible APIs).

    >>> from safecode import execute
    >>> execute("print(2+2)").stdout
    '4\\n'
"""

__version__ = "0.2.0"

from .engine.args import build_args
from .engine.image import DEFAULT_IMAGE, default_image, ensure_image
from .engine.packages import build_image
from .errors import (
    Cancelled, CodeTooLarge, DockerError, DockerUnavailable, ImageNotFound, InvalidFile, PreloadFailed, SafecodeError,
    SessionEnded,
)
from .faces.aio import AsyncSandbox, aexecute
from .faces.sandbox import Sandbox, check, execute, session, stream
from .faces.session import Session
from .faces.stream import Stream
from .limits import Limits
from .reader.protocol import Output
from .result import Display, Result
from .verdicts import Case, CaseResult, Report, Verdict

__all__ = [
    "AsyncSandbox",
    "Cancelled",
    "Case",
    "CaseResult",
    "CodeTooLarge",
    "DEFAULT_IMAGE",
    "Display",
    "DockerError",
    "DockerUnavailable",
    "ImageNotFound",
    "InvalidFile",
    "Limits",
    "Output",
    "PreloadFailed",
    "Report",
    "Result",
    "SafecodeError",
    "Sandbox",
    "Session",
    "SessionEnded",
    "Stream",
    "Verdict",
    "__version__",
    "aexecute",
    "build_args",
    "build_image",
    "check",
    "default_image",
    "ensure_image",
    "execute",
    "session",
    "stream",
]
