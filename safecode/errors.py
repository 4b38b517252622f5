"""Errors for what is not the program's fault. The program's own failures are a Result."""


class SafecodeError(Exception):
    """Base class of every error safecode raises."""


class DockerUnavailable(SafecodeError):
    """The docker CLI is missing, or the Docker daemon does not answer."""


class ImageNotFound(SafecodeError):
    """The sandbox image is not on the Docker host (safecode never pulls)."""

    def __init__(self, image):
        self.image = image
        super().__init__(
            f"sandbox image {image!r} not found; build it with "
            f"'python -m safecode image' (or 'make image')"
        )


class CodeTooLarge(SafecodeError, ValueError):
    """The code is over the size limit; checked before Docker is touched."""

    def __init__(self, size, limit):
        self.size = size
        self.limit = limit
        super().__init__(f"code is {size} bytes, over the limit of {limit} bytes")


class DockerError(SafecodeError):
    """Docker itself failed (exit 125/126/127 with its own message), not the program."""

    def __init__(self, returncode, stderr, args=()):
        self.returncode = returncode
        self.stderr = stderr
        self.cmd = list(args)
        super().__init__(returncode, stderr)

    def __str__(self):
        return f"docker failed with exit code {self.returncode}: {self.stderr.strip()}"


class Cancelled(SafecodeError):
    """The run was cancelled from another thread (Stream.cancel()); its container is gone by the time this is seen."""


class InvalidFile(SafecodeError, ValueError):
    """A file handed to the program has a name or size safecode refuses; checked before Docker is touched."""

    def __init__(self, name, problem):
        self.name = name
        self.problem = problem
        super().__init__(f"file {name!r} {problem}")


class SessionEnded(SafecodeError):
    """The session is over (closed, timed out, idle too long, out of memory): it runs no more cells."""


class PreloadFailed(SafecodeError):
    """A module a Sandbox was told to preload cannot be imported in its image (said when the Sandbox starts)."""
