"""The sandbox image: its name, and how to make it exist (from python:3.11-slim, or offline from Debian)."""

import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
from typing import Callable, Optional

from . import engine
from .errors import DockerError, SafecodeError

DEFAULT_IMAGE = "safecode-sandbox:3.11"
BASE_IMAGE = "python:3.11-slim"
USER_ID = 10001  # the image's default user; each run also picks its own id
# The whole standard library but Tk, and tzdata for zoneinfo.
DEBIAN_PACKAGES = ("python3", "libc-bin", "python3-distutils", "python3-lib2to3", "python3-venv", "tzdata")
PASSWD = f"sandbox:x:{USER_ID}:{USER_ID}:sandbox:/tmp:/usr/sbin/nologin\n"
GROUP = f"sandbox:x:{USER_ID}:\n"
# An exec-form RUN (a JSON list) needs no shell or useradd in the base, only python3.
ADD_USER = ["python3", "-c", f"open('/etc/passwd', 'a').write({PASSWD!r}); open('/etc/group', 'a').write({GROUP!r})"]


def base_image():
    """The image to build from where a registry answers: $SAFECODE_BASE_IMAGE, or python:3.11-slim."""
    return os.environ.get("SAFECODE_BASE_IMAGE") or BASE_IMAGE


def dockerfile(base):
    """The Dockerfile that adds the sandbox user to `base`."""
    return f"FROM {base}\nUSER root\nRUN {json.dumps(ADD_USER)}\nUSER {USER_ID}:{USER_ID}\nWORKDIR /app\n"


def default_image() -> str:
    """The image a Sandbox runs unless told otherwise: $SAFECODE_IMAGE, or safecode's own."""
    return os.environ.get("SAFECODE_IMAGE") or DEFAULT_IMAGE


def ensure_image(image: Optional[str] = None, *, rebuild: bool = False,
                 log: Callable[[str], None] = lambda line: None) -> str:
    """Make `image` exist on the Docker host; return how: "present", "built" or "built offline".

    It is built from the base image where that is on the host or can be pulled, else offline from Debian.
    """
    image = image or default_image()
    if not rebuild and engine.image_exists(image):
        return "present"
    base = base_image()
    if not engine.image_exists(base):
        pull = engine.docker("pull", base, timeout=600)
        if pull.returncode:
            log(f"cannot pull {base} ({pull.stderr.strip()}); building {image} offline from Debian packages")
            build_offline(image, log=log)
            return "built offline"
    log(f"building {image} from {base}")
    build = engine.docker("build", "--force-rm", "--tag", image, "-", input=dockerfile(base), timeout=600)
    if build.returncode:
        raise DockerError(build.returncode, build.stderr, ["docker", "build"])
    return "built"


def build_offline(image, *, log=lambda line: None):
    """Build the image from Debian packages with mmdebstrap and `docker import`; no registry needed."""
    with tempfile.TemporaryDirectory(prefix="safecode-image-") as tmp:
        rootfs = os.path.join(tmp, "rootfs.tar")
        suite = _debian_suite()
        argv = ["mmdebstrap", "--variant=extract", "--include=" + ",".join(DEBIAN_PACKAGES), suite, rootfs]
        log(" ".join(argv))
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=900)
        except FileNotFoundError:
            raise SafecodeError(
                f"cannot build {image}: {base_image()} cannot be pulled and mmdebstrap is not installed "
                "(apt-get install mmdebstrap)"
            ) from None
        if proc.returncode:
            raise SafecodeError(f"mmdebstrap failed:\n{proc.stderr[-2000:]}")
        _add_user(rootfs)
        imported = engine.docker(
            "import",
            "--change", f"USER {USER_ID}:{USER_ID}",
            "--change", "WORKDIR /app",
            "--change", "ENV PATH=/usr/local/bin:/usr/bin:/bin",
            "--change", 'CMD ["python3"]',
            rootfs, image,
            timeout=600,
        )
        if imported.returncode:
            raise DockerError(imported.returncode, imported.stderr, ["docker", "import"])
        log(f"built {image} in {time.monotonic() - started:.0f} s")


def _debian_suite():
    """The host's Debian release (the packages it can reach), or bookworm elsewhere."""
    try:
        with open("/etc/os-release") as file:
            fields = dict(line.rstrip("\n").split("=", 1) for line in file if "=" in line)
    except OSError:
        return "bookworm"
    if fields.get("ID", "").strip('"') != "debian":
        return "bookworm"
    return fields.get("VERSION_CODENAME", "").strip('"') or "bookworm"


def _add_user(rootfs):
    """Add /etc/passwd and /etc/group naming the sandbox user; mmdebstrap's extract variant makes none."""
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/usr/sbin/nologin\n" + PASSWD,
        "etc/group": "root:x:0:\n" + GROUP,
    }
    with tarfile.open(rootfs, "a") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo("./" + path)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
