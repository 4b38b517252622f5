"""Talking to Docker through its CLI for everything but the hot path, and reading Docker's own failures."""

import subprocess
import time

from .command import LABEL
from .errors import DockerError, DockerUnavailable, ImageNotFound

START_HINT = (
    "start the Docker daemon (e.g. 'sudo systemctl start docker', or 'sudo scripts/ensure-docker' "
    "in a safecode checkout) or point DOCKER_HOST at one"
)
NO_CLI = "the 'docker' command was not found; install the Docker CLI (e.g. 'apt-get install docker.io')"
_UNREACHABLE = (
    "Cannot connect to the Docker daemon",
    "error during connect",
    "permission denied while trying to connect",
)


def docker(*args, timeout=30, input=None):
    """Run `docker ARGS`, return the CompletedProcess (text); DockerUnavailable if Docker cannot answer."""
    argv = ["docker", *map(str, args)]
    try:
        proc = subprocess.run(
            argv, input=input, stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True, text=True, errors="replace", timeout=timeout,
        )
    except FileNotFoundError:
        raise DockerUnavailable(NO_CLI) from None
    except subprocess.TimeoutExpired:
        raise DockerUnavailable(f"'docker {args[0]}' did not answer in {timeout} s; {START_HINT}") from None
    unreachable = _unreachable(proc.stderr)
    if proc.returncode and unreachable:
        raise unreachable
    return proc


def _unreachable(stderr):
    for marker in _UNREACHABLE:
        if marker in stderr:
            line = next(line for line in stderr.splitlines() if marker in line)
            hint = "add your user to the 'docker' group" if "permission denied" in marker else START_HINT
            return DockerUnavailable(f"{line.strip()} -- {hint}")
    return None


def run_failure(returncode, stderr, argv, image):
    """The error for a `docker run` whose container ended before safecode's supervisor was ready.

    Nothing of the program has run yet, so the failure is Docker's own: exit 125 (daemon or CLI error),
    126 (cannot invoke) or 127 (not found), with the reason on stderr.
    """
    if "No such image" in stderr:
        return ImageNotFound(image)
    reason = stderr or "the sandbox container ended before it was ready"
    return _unreachable(stderr) or DockerError(returncode, reason, argv)


def remove(*names, attempts=3):
    """Kill and remove containers by name, waiting a little for one whose creation may still be in flight."""
    pending = list(names)
    for attempt in range(attempts):
        if not pending:
            return
        proc = docker("rm", "--force", *pending)
        pending = [name for name in pending if f"No such container: {name}" in proc.stderr]
        if pending and attempt + 1 < attempts:
            time.sleep(0.2)


def ours():
    """Names of every container of ours on the Docker host, running or not."""
    proc = docker("ps", "--all", "--filter", f"label={LABEL}", "--format", "{{.Names}}")
    if proc.returncode:
        raise DockerError(proc.returncode, proc.stderr, ["docker", "ps"])
    return proc.stdout.split()


def image_exists(image):
    """True when `image` is on the Docker host."""
    return docker("image", "inspect", "--format", "{{.Id}}", image).returncode == 0
