"""Code folders that a caller killed outright (kill -9) left in the temp dir, and their removal.

Each code folder is named after its container and the process that made it: safecode-<container>-<pid>-<random>.
A folder is stale when its container is gone, the process that made it is gone too, and it is old enough not to
belong to a container some process is creating right now. The first sandbox of each process sweeps them, in the
background; `python -m safecode cleanup` does it on demand.
"""

import os
import pathlib
import shutil
import tempfile
import threading
import time

from . import engine
from .errors import SafecodeError

PATTERN = "safecode-" + "[0-9a-f]" * 16 + "-*"
MIN_AGE = 60.0  # seconds

_sweep_lock = threading.Lock()
_swept = threading.Event()


def code_dir_prefix(container):
    """The start of the name of the code folder of `container`, made by this process."""
    return f"{container}-{os.getpid()}-"


def remove_stale_code_dirs(min_age=MIN_AGE):
    """Remove the stale code folders in the temp dir; return how many were removed."""
    live = set(engine.ours())
    removed = 0
    for path in pathlib.Path(tempfile.gettempdir()).glob(PATTERN):
        parts = path.name.split("-")
        container, owner = "-".join(parts[:2]), parts[2] if len(parts) == 4 else ""
        try:
            stale = (path.is_dir() and container not in live and not _alive(owner)
                     and time.time() - path.stat().st_mtime >= min_age)
        except FileNotFoundError:
            continue
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed


def sweep_once():
    """Remove stale code folders on a background thread, once per process; quietly, if Docker does not answer."""
    with _sweep_lock:
        if _swept.is_set():
            return
        _swept.set()
    threading.Thread(target=_sweep, name="safecode-sweep", daemon=True).start()


def _sweep():
    try:
        remove_stale_code_dirs()
    except (SafecodeError, OSError):
        pass


def _alive(pid):
    """Whether the process that made a folder still runs; folders of older versions name none: age alone decides."""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's: alive
        pass
    return True
