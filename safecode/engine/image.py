"""The sandbox images: their names, and how to make each exist (from python:*-slim, or offline from Debian).

Four variants, by tag: 3.11 (Debian bookworm), 3.13 (Debian trixie), and a scientific one of each with numpy,
pandas, matplotlib and pillow. Any other name is built as the default variant.
"""

import contextlib
import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile
import time
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

from . import cli
from .endpoint import Endpoint
from ..errors import DockerError, SafecodeError
from ..limits import Limits

REPOSITORY = "safecode-sandbox"
DEFAULT_IMAGE = f"{REPOSITORY}:3.11"
BASE_IMAGE = "python:3.11-slim"
USER_ID = 10001  # the image's default user; each run also picks its own id
SCIENTIFIC_PIP = ("numpy", "pandas", "matplotlib", "pillow")
SCIENTIFIC_DEBIAN = ("python3-numpy", "python3-pandas", "python3-matplotlib", "python3-pil")
SCIENTIFIC_PRELOAD = ("numpy", "pandas", "pandas.plotting._matplotlib", "matplotlib.pyplot")
SCIENTIFIC_MEMORY = "512m"  # importing pandas and matplotlib alone takes about 110 MB: 128m is too tight


@dataclass(frozen=True)
class Variant:
    """One kind of sandbox image: its Python, the Debian release it comes from offline, and what it adds."""

    python: str
    suite: str
    packages: Tuple[str, ...]  # Debian's: the whole standard library but Tk, and tzdata for zoneinfo
    scientific: bool = False

    @property
    def base(self):
        """The image to build from where a registry answers."""
        return f"python:{self.python}-slim"

    @property
    def recipe(self):
        """What the image is made of, in a few letters: an image whose label differs is built anew."""
        return hashlib.sha256(repr((self, RECIPE)).encode()).hexdigest()[:12]


# What the manylinux policy lets a binary wheel assume besides the C library (libstdc++, libgcc_s for every C++
# extension; X11 and GLib's), so that PyPI's wheels import. All but libGL.so.1: it brings Mesa and LLVM (over 100 MB,
# more than the image); GL wheels have headless variants (opencv-python-headless).
_MANYLINUX = ("libstdc++6", "libgcc-s1", "libx11-6", "libxext6", "libxrender1", "libice6", "libsm6")
_BOOKWORM = ("python3", "libc-bin", "python3-distutils", "python3-lib2to3", "python3-venv", "tzdata",
             *_MANYLINUX, "libglib2.0-0")
_TRIXIE = ("python3", "libc-bin", "python3-venv", "tzdata", *_MANYLINUX, "libglib2.0-0t64")  # no distutils past 3.11
VARIANTS: Dict[str, Variant] = {
    "3.11": Variant("3.11", "bookworm", _BOOKWORM),
    "3.11-scientific": Variant("3.11", "bookworm", _BOOKWORM + SCIENTIFIC_DEBIAN, scientific=True),
    "3.13": Variant("3.13", "trixie", _TRIXIE),
    "3.13-scientific": Variant("3.13", "trixie", _TRIXIE + SCIENTIFIC_DEBIAN, scientific=True),
}
IMAGES = tuple(f"{REPOSITORY}:{tag}" for tag in VARIANTS)
RECIPE = 2  # raised when what goes into every image changes
RECIPE_LABEL = "safecode.recipe"


def variant(image: str) -> Variant:
    """The variant an image name asks for, by its tag; the default one for any other name."""
    return VARIANTS.get(image.rsplit(":", 1)[-1] if ":" in image else "", VARIANTS["3.11"])


def is_scientific(image: str) -> bool:
    return variant(image).scientific and image.startswith(REPOSITORY + ":")


def scientific_preload(image: str) -> tuple:
    """What a warm container of `image` imports ahead unless told otherwise: a scientific image's stack."""
    return SCIENTIFIC_PRELOAD if is_scientific(image) else ()


def default_memory(image: str) -> str:
    """The memory a run in `image` gets unless told otherwise: more for the scientific images than the seeds' 128m."""
    return SCIENTIFIC_MEMORY if is_scientific(image) else Limits.memory
PASSWD = f"sandbox:x:{USER_ID}:{USER_ID}:sandbox:/tmp:/usr/sbin/nologin\n"
GROUP = f"sandbox:x:{USER_ID}:\n"
# An exec-form RUN (a JSON list) needs no shell or useradd in the base, only python3.
ADD_USER = ["python3", "-c", f"open('/etc/passwd', 'a').write({PASSWD!r}); open('/etc/group', 'a').write({GROUP!r})"]


def base_image(kind: Optional[Variant] = None) -> str:
    """The image to build from where a registry answers: $SAFECODE_BASE_IMAGE, or the variant's python:*-slim."""
    return os.environ.get("SAFECODE_BASE_IMAGE") or (kind or VARIANTS["3.11"]).base


def dockerfile(base: str, kind: Optional[Variant] = None) -> str:
    """The Dockerfile that adds the sandbox user (and, for a scientific variant, its packages) to `base`."""
    install = ""
    if kind is not None and kind.scientific:
        pip = ["python3", "-m", "pip", "install", "--no-cache-dir", *SCIENTIFIC_PIP]
        install = f"RUN {json.dumps(pip)}\n"
    libraries = ["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *_MANYLINUX]
    # python:*-slim lacks libstdc++ and the rest; another base named by $SAFECODE_BASE_IMAGE is taken as it is
    apt = "".join(f"RUN {json.dumps(command)}\n" for command in libraries) if base == (kind or VARIANTS["3.11"]).base \
        else ""
    recipe = f"LABEL {RECIPE_LABEL}={kind.recipe}\n" if kind is not None else ""
    return (f"FROM {base}\nUSER root\n{apt}{install}RUN {json.dumps(ADD_USER)}\nUSER {USER_ID}:{USER_ID}\n"
            f"WORKDIR /app\n{recipe}")


def default_image() -> str:
    """The image a Sandbox runs unless told otherwise: $SAFECODE_IMAGE, or safecode's own."""
    return os.environ.get("SAFECODE_IMAGE") or DEFAULT_IMAGE


def ensure_image(image: Optional[str] = None, *, rebuild: bool = False,
                 log: Callable[[str], None] = lambda line: None, endpoint: Endpoint = cli.LOCAL) -> str:
    """Make `image` exist on the engine; return how: "present", "built", "built offline" or "copied".

    It is built from the base image where that is on the host or can be pulled, else offline from Debian. For
    another engine (podman, a remote one) it is made on the local Docker engine and copied over with save | load.
    """
    image = image or default_image()
    if endpoint != cli.LOCAL:
        if not rebuild and current(image, endpoint):
            return "present"
        ensure_image(image, rebuild=rebuild, log=log)
        with replacing(image, endpoint):
            copy_image(image, endpoint, log=log)
        return "copied"
    if not rebuild and current(image):
        return "present"
    with replacing(image):
        return _build(image, log)


@contextlib.contextmanager
def replacing(image, endpoint=cli.LOCAL):
    """Around a build of `image`: the image it replaces, left with no name, is removed (unless a container uses it)."""
    old = cli.image_id(image, endpoint)
    try:
        yield
    finally:
        if old and cli.image_id(image, endpoint) != old:
            cli.docker("rmi", old, endpoint=endpoint)


def _build(image, log):
    kind = variant(image)
    base = base_image(kind)
    if not cli.image_exists(base):
        pull = cli.docker("pull", base, timeout=600)
        if pull.returncode:
            log(f"cannot pull {base} ({pull.stderr.strip()}); building {image} offline from Debian packages")
            build_offline(image, log=log)
            return "built offline"
    log(f"building {image} from {base}")
    build = cli.docker("build", "--force-rm", "--tag", image, "-", input=dockerfile(base, kind), timeout=1800)
    if build.returncode:
        raise DockerError(build.returncode, build.stderr, ["docker", "build"])
    return "built"


def current(image, endpoint=cli.LOCAL):
    """Whether `image` is on the engine and, if it is one of safecode's own, made by today's recipe."""
    labels = cli.image_labels(image, endpoint)
    if labels is None:
        return False
    return not image.startswith(REPOSITORY + ":") or labels.get(RECIPE_LABEL) == variant(image).recipe


def copy_image(image, endpoint, *, log=lambda line: None):
    """`docker save IMAGE | <endpoint> load`: the local engine's image onto another engine."""
    log(f"copying {image} to {endpoint.describe()}")
    save = subprocess.Popen(["docker", "save", image], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        load = subprocess.run([*endpoint.cli, "load"], stdin=save.stdout, capture_output=True, text=True,
                              errors="replace", timeout=900)
    finally:
        save.stdout.close()
        save_errors = save.stderr.read().decode(errors="replace")
        save.stderr.close()
        save.wait()
    if save.returncode or load.returncode:
        raise DockerError(save.returncode or load.returncode, save_errors + load.stderr,
                          ["docker", "save", image, "|", *endpoint.cli, "load"])


def build_offline(image, *, log=lambda line: None):
    """Build the image from Debian packages with mmdebstrap and `docker import`; no registry needed."""
    with tempfile.TemporaryDirectory(prefix="safecode-image-") as tmp:
        rootfs = os.path.join(tmp, "rootfs.tar")
        argv = offline_argv(variant(image), rootfs)
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
        libraries = _add_user(rootfs)
        changes = [f"USER {USER_ID}:{USER_ID}", "WORKDIR /app", "ENV PATH=/usr/local/bin:/usr/bin:/bin",
                   'CMD ["python3"]', f"LABEL {RECIPE_LABEL}={variant(image).recipe}"]
        if libraries:  # no package scripts ran: the BLAS/LAPACK alternatives links are missing; point at them
            changes.append(f"ENV LD_LIBRARY_PATH={':'.join(libraries)}")
        imported = cli.docker(
            "import", *[arg for change in changes for arg in ("--change", change)], rootfs, image, timeout=600,
        )
        if imported.returncode:
            raise DockerError(imported.returncode, imported.stderr, ["docker", "import"])
        log(f"built {image} in {time.monotonic() - started:.0f} s")


def offline_argv(kind: Variant, rootfs: str) -> list:
    """The mmdebstrap command that writes `kind`'s root file system, from Debian's packages, into `rootfs`."""
    argv = ["mmdebstrap", "--variant=extract", "--include=" + ",".join(kind.packages)]
    if kind.suite != "bookworm":  # trixie is merged-/usr: without the hook, /usr/bin/python3 finds no loader
        argv.append("--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr")
    return argv + [kind.suite, rootfs]


def built() -> list:
    """safecode's own images that are on the Docker host."""
    return [image for image in IMAGES if cli.image_exists(image)]


def _add_user(rootfs):
    """Add /etc/passwd and /etc/group naming the sandbox user; mmdebstrap's extract variant makes none.

    Returns the BLAS and LAPACK folders the tree holds (./usr/lib/<arch>/blas and lapack), for the loader's path.
    """
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/usr/sbin/nologin\n" + PASSWD,
        "etc/group": "root:x:0:\n" + GROUP,
    }
    with tarfile.open(rootfs, "a") as tar:
        names = [name.rstrip("/") for name in tar.getnames()]
        libraries = sorted({"/" + name.lstrip("./") for name in names
                            if name.count("/") == 4 and name.startswith("./usr/lib/") and
                            name.rsplit("/", 1)[1] in ("blas", "lapack")})
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo("./" + path)
            info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return libraries
