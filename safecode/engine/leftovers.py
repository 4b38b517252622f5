"""What a crash can leave on this machine, and its removal: code folders, and gVisor's processes.

Code folders: a caller killed outright (kill -9) leaves its code folder in the temp dir.

Each code folder is named after its container and the process that made it: safecode-<container>-<pid>-<random>.
A folder is stale when its container is gone, the process that made it is gone too, and it is old enough not to
belong to a container some process is creating right now. The first sandbox of each process sweeps them, in the
background; `python -m safecode cleanup` does it on demand.

gVisor: a runsc container that fails to start can leave its `runsc-sandbox` and `runsc-gofer` host processes alive
with no container to show for them. `cleanup` finds them by the container id in their bundle path and kills them.
"""

import os
import pathlib
import re
import signal
import shutil
import tempfile
import threading
import time

from . import cli
from ..errors import SafecodeError

PATTERN = "safecode-" + "[0-9a-f]" * 16 + "-*"
MIN_AGE = 60.0  # seconds
GVISOR = ("runsc-sandbox", "runsc-gofer")
_CONTAINER_ID = re.compile(r"/([0-9a-f]{64})(?:/|$|\s)")

_sweep_lock = threading.Lock()
_swept = threading.Event()


def code_dir_prefix(container):
    """The start of the name of the code folder of `container`, made by this process."""
    return f"{container}-{os.getpid()}-"


def remove_stale_code_dirs(min_age=MIN_AGE):
    """Remove the stale code folders in the temp dir; return how many were removed."""
    live = set(cli.ours())
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


def stray_gvisor_processes(min_age=MIN_AGE):
    """(pid, container id) of each gVisor host process whose container no longer exists on the local engine."""
    found = []
    for proc in pathlib.Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if os.fsdecode(argv[0]) not in GVISOR or _age(proc) < min_age:
                continue
        except OSError:
            continue
        match = _CONTAINER_ID.search(os.fsdecode(b" ".join(argv)))
        if match:
            found.append((int(proc.name), match.group(1)))
    if not found:
        return []
    existing = set(cli.docker("ps", "--all", "--quiet", "--no-trunc").stdout.split())
    return [(pid, container) for pid, container in found if container not in existing]


def kill_stray_gvisor_processes(min_age=MIN_AGE):
    """Kill gVisor's leftover host processes; return how many were killed."""
    killed = 0
    for pid, _ in stray_gvisor_processes(min_age):
        try:
            os.kill(pid, signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, PermissionError):
            pass
    return killed


def _age(proc):
    """Seconds since the process started."""
    ticks = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[19])
    uptime = float(pathlib.Path("/proc/uptime").read_text().split()[0])
    return uptime - ticks / os.sysconf("SC_CLK_TCK")
