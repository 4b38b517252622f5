"""safecode: run untrusted Python in a throw-away, hardened Docker container.

    >>> from safecode import execute
    >>> execute("print(2+2)").stdout
    '4\\n'
"""

__version__ = "0.2.0"

from .aio import AsyncSandbox, aexecute
from .command import build_args
from .errors import (
    Cancelled, CodeTooLarge, DockerError, DockerUnavailable, ImageNotFound, InvalidFile, SafecodeError, SessionEnded,
)
from .image import DEFAULT_IMAGE, default_image, ensure_image
from .limits import Limits
from .protocol import Output
from .result import Result
from .sandbox import Sandbox, execute, session, stream
from .session import Session
from .stream import Stream

__all__ = [
    "AsyncSandbox",
    "Cancelled",
    "CodeTooLarge",
    "DEFAULT_IMAGE",
    "DockerError",
    "DockerUnavailable",
    "ImageNotFound",
    "InvalidFile",
    "Limits",
    "Output",
    "Result",
    "SafecodeError",
    "Sandbox",
    "Session",
    "SessionEnded",
    "Stream",
    "__version__",
    "aexecute",
    "build_args",
    "default_image",
    "ensure_image",
    "execute",
    "session",
    "stream",
]
