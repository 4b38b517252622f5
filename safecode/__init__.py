"""safecode: run untrusted Python in a throw-away, hardened Docker container.

    >>> from safecode import execute
    >>> execute("print(2+2)").stdout
    '4\\n'
"""

from .command import build_args
from .errors import CodeTooLarge, DockerError, DockerUnavailable, ImageNotFound, SafecodeError
from .image import DEFAULT_IMAGE, default_image, ensure_image
from .limits import Limits
from .result import Result
from .sandbox import Sandbox, execute

__all__ = [
    "CodeTooLarge",
    "DEFAULT_IMAGE",
    "DockerError",
    "DockerUnavailable",
    "ImageNotFound",
    "Limits",
    "Result",
    "SafecodeError",
    "Sandbox",
    "build_args",
    "default_image",
    "ensure_image",
    "execute",
]
