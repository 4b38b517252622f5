"""An image built with packages is checked before it is returned: every top-level module of every distribution it
adds, and the base's preload list, imported in a hardened container of the new image. A package whose code does
not import there (a binary built against another numpy, say) makes the build a SafecodeError naming it, and the
image is removed: no image is handed out that cannot do what it was built for.
"""

import json
import os
import subprocess
import tempfile
import uuid
from typing import Dict, List

from . import cli
from .args import build_args
from .container import UID_BASE
from ..errors import SafecodeError
from ..limits import Limits

CHECK_TIMEOUT = 600  # seconds the imports may take (the scientific stack at half a CPU takes tens)
LIMITS = Limits(timeout=CHECK_TIMEOUT, memory="2g", cpus=1.0, scratch="64m")
# Each name imported in turn; what failed, and why, printed as JSON.
IMPORTS = """
import importlib, json, sys
failed = {}
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except BaseException as error:
        failed[name] = f"{type(error).__name__}: {error}"[:500]
print(json.dumps(failed))
"""


def top_level_modules(site: str) -> Dict[str, str]:
    """module -> distribution, for every distribution unpacked under `site`: from its top_level.txt, else from its
    RECORD (packages, single-file modules and extension modules at the top)."""
    found: Dict[str, str] = {}
    for entry in sorted(os.listdir(site)):
        if not entry.endswith(".dist-info"):
            continue
        dist = entry[: -len(".dist-info")].rsplit("-", 1)[0]
        folder = os.path.join(site, entry)
        if os.path.exists(os.path.join(folder, "top_level.txt")):
            with open(os.path.join(folder, "top_level.txt"), encoding="utf-8") as file:
                names = [line.strip().replace("/", ".") for line in file]
        else:
            with open(os.path.join(folder, "RECORD"), encoding="utf-8") as file:
                names = [_module(line.split(",", 1)[0]) for line in file]
        for name in names:
            if name and name.replace(".", "").replace("_", "").isalnum() and not name[0].isdigit():
                found.setdefault(name, dist)
    return found


def _module(path):
    """The top-level module a RECORD path belongs to, or None (metadata, data, a .pth file, a folder of vendored
    libraries, anything else)."""
    head, _, rest = path.partition("/")
    name = head if rest else head[:-3] if head.endswith(".py") else head.split(".", 1)[0] if head.endswith(".so") else ""
    return name if name.isidentifier() and name != "__pycache__" else None  # not numpy.libs, a folder of libraries


def check_imports(image: str, modules: Dict[str, str], preload, endpoint, replaced: List[str]) -> None:
    """Import `modules` (module -> distribution) and `preload` in a sandbox of `image`; SafecodeError if one fails."""
    names = sorted(modules) + [name for name in preload if name not in modules]
    container = f"safecode-{uuid.uuid4().hex[:16]}"
    try:
        with tempfile.TemporaryDirectory(prefix="safecode-packages-") as app:  # /app, as a run has it
            os.chmod(app, 0o755)
            argv = build_args(app if endpoint.local else None, name=container, uid=UID_BASE, image=image,
                              limits=LIMITS, command=["python3", "-c", IMPORTS, *names], endpoint=endpoint)
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                  timeout=CHECK_TIMEOUT)
        failed = json.loads(proc.stdout.strip().splitlines()[-1])
    except subprocess.TimeoutExpired:
        cli.remove(container, endpoint=endpoint)
        raise SafecodeError(f"the packages of {image} did not finish importing in {CHECK_TIMEOUT} s") from None
    except (ValueError, IndexError):
        raise SafecodeError(f"the packages of {image} could not be imported: {proc.stderr.strip()[-500:]}") from None
    if not failed:
        return
    said = "; ".join(f"{name} ({modules.get(name, 'the base')}): {why}" for name, why in sorted(failed.items()))
    hint = ""
    if replaced:
        hint = (f". To satisfy the request, pip replaced what the base has ({', '.join(replaced)}), and the base's own "
                f"packages built against it no longer import: build on a plainer base (--from), or pin the package "
                f"to a version that works with the base's")
    raise SafecodeError(f"{image} was not kept: its packages do not import: {said}{hint}")
