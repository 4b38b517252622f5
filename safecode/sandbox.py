"""The public entry points: a Sandbox holds limits and an image; execute() runs one program."""

import contextlib
import dataclasses
import os
import secrets
import shutil
import tempfile
import uuid

from . import runner
from .command import SCRIPT, build_args
from .errors import CodeTooLarge
from .image import default_image
from .limits import Limits

UID_BASE = 100_000  # unprivileged ids from here on; each run gets its own


class Sandbox:
    """Runs programs in fresh hardened containers, each with the same limits and image."""

    def __init__(
        self,
        *,
        timeout=Limits.timeout,
        memory=Limits.memory,
        cpus=Limits.cpus,
        pids=Limits.pids,
        max_output=Limits.max_output,
        max_code=Limits.max_code,
        image=None,
    ):
        self.limits = Limits(
            timeout=timeout, memory=memory, cpus=cpus, pids=pids, max_output=max_output, max_code=max_code
        )
        if image is not None and (not isinstance(image, str) or not image.strip()):
            raise ValueError(f"image must be an image name, not {image!r}")
        self.image = image or default_image()

    def __repr__(self):
        return f"Sandbox(image={self.image!r}, limits={self.limits!r})"

    def execute(self, code, *, stdin="", timeout=None):
        """Run `code` as /app/main.py with `stdin` as its standard input; return a Result.

        `timeout`, if given, replaces the sandbox's own for this run only.
        """
        limits = self.limits if timeout is None else dataclasses.replace(self.limits, timeout=timeout)
        source = _encode("code", code)
        if len(source) > limits.max_code:
            raise CodeTooLarge(len(source), limits.max_code)
        data = _encode("stdin", stdin)
        name = f"safecode-{uuid.uuid4().hex[:16]}"
        with _code_dir(source) as code_dir:
            argv = build_args(
                code_dir, name=name, uid=UID_BASE + secrets.randbelow(1 << 24), limits=limits,
                image=self.image, stdin=bool(data),
            )
            return runner.run(
                argv, name=name, image=self.image, stdin=data,
                timeout=limits.timeout, max_output=limits.max_output,
            )


def execute(
    code,
    *,
    stdin="",
    timeout=Limits.timeout,
    memory=Limits.memory,
    cpus=Limits.cpus,
    pids=Limits.pids,
    max_output=Limits.max_output,
    max_code=Limits.max_code,
    image=None,
):
    """Run `code` once in a fresh sandbox; each keyword overrides one limit. Returns a Result."""
    sandbox = Sandbox(
        timeout=timeout, memory=memory, cpus=cpus, pids=pids, max_output=max_output, max_code=max_code,
        image=image,
    )
    return sandbox.execute(code, stdin=stdin)


def _encode(what, value):
    if what == "stdin" and isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        kinds = "str or bytes" if what == "stdin" else "str"
        raise TypeError(f"{what} must be {kinds}, not {type(value).__name__}; e.g. execute('print(1)')")
    return value.encode("utf-8")


@contextlib.contextmanager
def _code_dir(source):
    """A fresh host folder holding only main.py, readable by the sandbox's user, removed in every case."""
    path = tempfile.mkdtemp(prefix="safecode-")
    try:
        script = os.path.join(path, SCRIPT)
        with open(script, "xb") as file:
            file.write(source)
        os.chmod(script, 0o644)  # whatever the caller's umask: the run's own uid must read it
        os.chmod(path, 0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
