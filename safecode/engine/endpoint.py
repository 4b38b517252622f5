"""Which container engine runs the sandboxes, how to reach it, and which OCI runtime it starts them with.

The engine is the `docker` CLI (a local engine, another over ssh:// or tcp://, or a Docker context) or the `podman`
CLI, always driven with the same hardened flags. What differs between them is decided here, once:

- the CLI's own arguments that pick the engine (`-H HOST`, `--context NAME`);
- whether the engine sees this machine's files. A local engine gets the code through a read-only bind mount; an
  engine elsewhere would mount a folder of *its* machine, so the code goes through the container's stdin instead;
- podman's names for images built here (`localhost/NAME`: a bare name makes podman ask a registry).
"""

import json
import os
import pathlib
import re
from dataclasses import dataclass
from typing import List, Optional

ENGINES = ("docker", "podman")
_LOCAL_SCHEMES = ("unix://", "npipe://")
_REMOTE_SCHEMES = ("ssh://", "tcp://", "http://", "https://")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class Endpoint:
    """An engine to run sandboxes on, and the walls it puts around them. The defaults mean what `docker` alone means:
    DOCKER_HOST and DOCKER_CONTEXT are honoured, then the CLI's current context. `runtime` None is the engine's
    default runtime; `seccomp` None is safecode's own profile, "engine" the engine's default, else a profile's path
    (seccomp.py reads and checks it)."""

    engine: str = "docker"
    host: Optional[str] = None
    context: Optional[str] = None
    runtime: Optional[str] = None
    seccomp: Optional[str] = None

    def __post_init__(self):
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {', '.join(ENGINES)}, not {self.engine!r}")
        if self.host is not None:
            if not isinstance(self.host, str) or not self.host.startswith(_LOCAL_SCHEMES + _REMOTE_SCHEMES):
                raise ValueError(f"host must be an engine address such as 'ssh://user@host' or "
                                 f"'unix:///var/run/docker.sock', not {self.host!r}")
        for name in ("context", "runtime"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not _NAME.match(value)):
                raise ValueError(f"{name} must be a name such as 'default' or 'runsc', not {value!r}")
        if self.seccomp is not None and (not isinstance(self.seccomp, str) or not self.seccomp.strip()):
            raise ValueError(f"seccomp must be 'engine' or the path of a seccomp profile, not {self.seccomp!r}")
        if self.host is not None and self.context is not None:
            raise ValueError("give host or context, not both: a context names a host already")
        if self.engine == "podman" and (self.host or self.context):
            raise ValueError("remote engines are reached through docker (host= or context=); podman runs locally")

    @property
    def cli(self) -> List[str]:
        """The start of every command line for this engine."""
        if self.host is not None:
            return [self.engine, "--host", self.host]
        if self.context is not None:
            return [self.engine, "--context", self.context]
        if self.engine == "podman" and self.runtime == "runsc":
            # Docker passes gVisor these flags from daemon.json; podman needs them here. Without the first gVisor
            # tries to set up networking in the host's namespace and fails (the sandbox has no network either way);
            # without the second it ignores the container's seccomp profile.
            return [self.engine, "--runtime-flag", "network=none", "--runtime-flag", "oci-seccomp"]
        return [self.engine]

    @property
    def local(self) -> bool:
        """Whether the engine runs on this machine, so that it can mount this machine's folders."""
        if self.engine == "podman":
            return True
        if self.host is not None:
            return self.host.startswith(_LOCAL_SCHEMES)
        return _context_is_local(self.context, os.environ.get("DOCKER_HOST"), os.environ.get("DOCKER_CONTEXT"),
                                 os.environ.get("DOCKER_CONFIG"))

    def image_ref(self, image: str) -> str:
        """How this engine names `image`: podman names images built or loaded here localhost/NAME."""
        if self.engine != "podman":
            return image
        first = image.split("/", 1)[0]
        if "/" in image and ("." in first or ":" in first or first == "localhost"):
            return image
        return f"localhost/{image}"

    def describe(self) -> str:
        """A short human name: 'docker', 'docker at ssh://me@box (runsc)', 'podman'."""
        where = f" at {self.host}" if self.host else f" in context {self.context}" if self.context else ""
        return f"{self.engine}{where}" + (f" ({self.runtime})" if self.runtime else "")


def _context_is_local(context, docker_host, docker_context, docker_config):
    """Where `docker` goes without -H: the environment's DOCKER_HOST, then the context named or current.

    Read from the CLI's own files (config.json, meta.json of each context) rather than by asking the CLI, which would
    cost a process start on every container start.
    """
    if context is None and docker_host:
        return docker_host.startswith(_LOCAL_SCHEMES)
    config = pathlib.Path(docker_config or pathlib.Path.home() / ".docker")
    if context is None:
        context = docker_context
    if context is None:
        try:
            context = json.loads((config / "config.json").read_text()).get("currentContext")
        except (OSError, ValueError, AttributeError):
            context = None
    if not context or context == "default":
        return True
    for meta in (config / "contexts" / "meta").glob("*/meta.json"):
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        if data.get("Name") == context:
            host = data.get("Endpoints", {}).get("docker", {}).get("Host", "")
            return host.startswith(_LOCAL_SCHEMES)
    return False  # a context we cannot read: deliver through stdin, which works everywhere
