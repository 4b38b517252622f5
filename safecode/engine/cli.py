"""Talking to the engine through its CLI (docker, or podman) for everything but the hot path, and reading the
engine's own failures."""

import json
import shutil
import subprocess
import time

from .args import LABEL
from .endpoint import Endpoint
from ..errors import DockerError, DockerUnavailable, ImageNotFound, PreloadFailed

LOCAL = Endpoint()
REMOVE_TIMEOUT = 15  # seconds an engine has to remove a container before it counts as not answering
REMOVE_ATTEMPTS = 5  # calls made for a name not found, in case its creation is still in flight

START_HINT = (
    "start the Docker daemon (e.g. 'sudo systemctl start docker', or 'sudo scripts/ensure-docker' "
    "in a safecode checkout) or point DOCKER_HOST at one"
)
_UNREACHABLE = (
    "Cannot connect to the Docker daemon",
    "error during connect",
    "permission denied while trying to connect",
)
_LOST = _UNREACHABLE + ("error waiting for container", "dial-stdio")
_NO_RUNTIME = ("unknown runtime specified", "unknown or invalid runtime name", "runtime not found")


def no_cli(endpoint):
    """What to say when the engine's command is not installed."""
    package = "podman" if endpoint.engine == "podman" else "docker.io"
    return f"the '{endpoint.engine}' command was not found; install it (e.g. 'apt-get install {package}')"


def docker(*args, timeout=30, input=None, endpoint=LOCAL):
    """Run `docker ARGS` (or podman's, per `endpoint`), return the CompletedProcess (text); DockerUnavailable if
    the engine cannot answer."""
    argv = [*endpoint.cli, *map(str, args)]
    try:
        proc = subprocess.run(
            argv, input=input, stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True, text=True, errors="replace", timeout=timeout,
        )
    except FileNotFoundError:
        raise DockerUnavailable(no_cli(endpoint)) from None
    except subprocess.TimeoutExpired:
        raise DockerUnavailable(f"'{endpoint.engine} {args[0]}' ({endpoint.describe()}) did not answer in {timeout} s; "
                                f"{START_HINT}") from None
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


def connection_lost(stderr, endpoint, name):
    """The error for a run whose `docker run` client lost its engine mid-run (its last words on stderr), or None.

    The container is asked to go at once through a new connection; if none can be made, the supervisor's own
    alarm ends it 5 s past its time limit.
    """
    words = next((line for line in reversed(stderr.splitlines()) if any(sign in line for sign in _LOST)), None)
    if words is None:
        return None
    try:
        remove(name, attempts=1, endpoint=endpoint)
    except DockerUnavailable:
        pass
    return DockerUnavailable(f"the connection to {endpoint.describe()} was lost during the run: {words.strip()}")


def run_failure(returncode, stderr, argv, image, endpoint=LOCAL, memory="?"):
    """The error for a `docker run` whose container ended before safecode's supervisor was ready.

    Nothing of the program has run yet, so the failure is Docker's own: exit 125 (daemon or CLI error),
    126 (cannot invoke) or 127 (not found), with the reason on stderr.
    """
    if "No such image" in stderr or "image not known" in stderr:
        return ImageNotFound(image)
    preload = next((line for line in stderr.splitlines() if line.startswith("safecode: cannot preload ")), None)
    if preload:
        return PreloadFailed(f"{preload[len('safecode: '):]} (in {image})")
    if endpoint.runtime and (any(sign in stderr.lower() for sign in _NO_RUNTIME)
                             or "oci runtime" in stderr.lower() and "not found" in stderr):
        return DockerError(returncode, f"the engine has no runtime {endpoint.runtime!r}; it has: "
                                       f"{', '.join(runtimes(endpoint)) or 'none it would name'}", argv)
    if returncode == 137 or "exit status 137" in stderr:
        wall = "gVisor and the interpreter" if endpoint.runtime == "runsc" else "the interpreter"
        return DockerError(returncode, f"the sandbox ran out of memory before its program could start: {memory} is "
                                       f"too little for {wall}; give it more memory", argv)
    reason = stderr or "the sandbox container ended before it was ready"
    return _unreachable(stderr) or DockerError(returncode, reason, argv)


def runtimes(endpoint=LOCAL):
    """The names of the OCI runtimes the engine can start containers with."""
    if endpoint.engine == "podman":  # podman runs locally and finds a runtime by its command's name
        return [name for name in ("crun", "runc", "runsc") if shutil.which(name)]
    proc = docker("info", "--format", "{{json .Runtimes}}", endpoint=endpoint, timeout=20)
    try:
        return sorted(json.loads(proc.stdout)) if proc.returncode == 0 else []
    except ValueError:
        return []


# podman's `rm --force` sends SIGTERM and waits 10 s before SIGKILL; the supervisor, PID 1, ignores SIGTERM.
NOW = {"podman": ("--time", "0")}


def remove(*names, attempts=REMOVE_ATTEMPTS, endpoint=LOCAL):
    """Kill and remove containers by name, waiting a little for one whose creation may still be in flight.

    A `docker run` client killed while the engine creates its container leaves that creation going: the container
    appears later, created and never started. So a name not found yet is asked for again, 0.1 s later, then 0.2,
    0.4 and 0.8 (1.5 s in all, on a busy engine); a container that exists is removed at the first call. One that
    said it was ready has been made: `attempts=1` for it, as not found then means gone (by itself, as a session
    whose kernel ended goes). (A start that is merely cancelled is not killed at all: see Container.wait_ready.)
    """
    pending = list(names)
    for attempt in range(attempts):
        if not pending:
            return
        proc = docker("rm", "--force", *NOW.get(endpoint.engine, ()), *pending, endpoint=endpoint,
                      timeout=REMOVE_TIMEOUT)
        pending = [name for name in pending if f"No such container: {name}" in proc.stderr
                   or "no such container" in proc.stderr.lower() and name in proc.stderr]
        if pending and attempt + 1 < attempts:
            time.sleep(0.1 * 2**attempt)


def ours(endpoint=LOCAL):
    """Names of every container of ours on the engine, running or not."""
    proc = docker("ps", "--all", "--filter", f"label={LABEL}", "--format", "{{.Names}}", endpoint=endpoint)
    if proc.returncode:
        raise DockerError(proc.returncode, proc.stderr, ["docker", "ps"])
    return proc.stdout.split()


def image_id(image, endpoint=LOCAL):
    """The id of `image` on the engine, or "" when it is not there."""
    proc = docker("image", "inspect", "--format", "{{.Id}}", endpoint.image_ref(image), endpoint=endpoint)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def image_labels(image, endpoint=LOCAL):
    """The labels of `image` on the engine ({} when it has none), or None when it is not there."""
    proc = docker("image", "inspect", "--format", "{{json .Config.Labels}}", endpoint.image_ref(image),
                  endpoint=endpoint)
    if proc.returncode:
        return None
    try:
        return json.loads(proc.stdout) or {}
    except ValueError:
        return {}


def image_exists(image, endpoint=LOCAL):
    """True when `image` is on the engine."""
    return bool(image_id(image, endpoint))
