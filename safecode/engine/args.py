"""The `docker run` argument list: a pure function, so the hardening can be read and tested without Docker."""

from typing import List, Optional

from .endpoint import Endpoint
from .seccomp import profile_path
from ..files import SCRIPT
from ..limits import Limits

LABEL = "safecode"  # every container of ours carries --label safecode=1
WORKDIR = "/app"
OPEN_FILES = 256
FILE_SIZE = 1 << 20  # bytes a file may grow to without scratch space (nothing is writable then: a second wall)
# Under gVisor, Docker's pids limit counts gVisor's own host tasks (about 40 at rest, about 5 more per process the
# program starts), not the program's: past it the whole sandbox gives up. This keeps about `pids` processes for it.
GVISOR_TASKS, GVISOR_TASKS_PER_PROCESS = 64, 8


def host_pids(limits: Limits, endpoint: Endpoint) -> int:
    """Docker's --pids-limit for `limits.pids` processes: the same number, but under gVisor (see GVISOR_TASKS)."""
    if endpoint.runtime == "runsc":
        return GVISOR_TASKS + GVISOR_TASKS_PER_PROCESS * limits.pids
    return limits.pids


def seccomp_option(endpoint: Endpoint) -> List[str]:
    """The --security-opt that names the seccomp profile; none for the engine's own default."""
    path = profile_path(endpoint.seccomp)
    return ["--security-opt", f"seccomp={path}"] if path is not None else []


def build_args(
    code_dir: Optional[str], *, name: str, uid: int, limits: Limits, image: str,
    command: Optional[List[str]] = None, endpoint: Endpoint = Endpoint(),
) -> List[str]:
    """Return the argument list that runs `command` (default: python3 main.py) in a hardened container.

    `code_dir` is the host folder holding main.py, mounted read-only at /app. None, for an engine that cannot see
    this machine's folders, gives /app as a tmpfs that only the container's user may write, sized for the code
    and files, which safecode's supervisor receives on stdin, writes and makes read-only. `uid` is an unprivileged
    user id for this container only, so the per-user process limit below is its own. Standard input is always
    attached: safecode's supervisor takes its go, then the program's stdin, through it.
    """
    if command is None:
        command = ["python3", SCRIPT]
    file_size = limits.scratch_bytes or FILE_SIZE
    if code_dir is not None:
        code = ["-v", f"{code_dir}:{WORKDIR}:ro"]  # the code, read-only too
    else:
        size = limits.max_code + limits.max_files + (1 << 20)
        code = ["--tmpfs", f"{WORKDIR}:rw,noexec,nosuid,nodev,size={size},mode=0755,uid={uid},gid={uid}"]
    args = [
        # The seeds' flags, in their order.
        *endpoint.cli, "run", "--rm",            # the daemon removes it when it ends
        "--network", "none",                     # no way out, no way in
        "--memory", limits.memory,
        "--cpus", str(limits.cpus),
        "--pids-limit", host_pids(limits, endpoint),  # a fork bomb stops here
        "--read-only",                           # root filesystem read-only
        *code,
        "-w", WORKDIR,
        # What the seeds lack.
        "--name", name,                          # so we can kill it: killing the client does not
        "--label", f"{LABEL}=1",                 # so `safecode cleanup` finds ours after a crash
        "--pull", "never",                       # only the image we built or were given
        "--memory-swap", limits.memory,          # equal to memory: no swap to escape into
        # No --init: safecode's supervisor is PID 1 (it reaps orphans), so no program can signal it or open its
        # stdin and stdout through /proc/1/fd, as it could Docker's init's (inside/between.py).
        "--ipc", "none",                         # no /dev/shm: no writable scratch space at all
        "--cap-drop", "ALL",
        "--security-opt", "no-new-privileges",   # no setuid way back to root
        *seccomp_option(endpoint),               # fewer system calls than the engine's default (seccomp.py)
        "--user", f"{uid}:{uid}",                # never root
        "--log-driver", "none",                  # output flows to us only, never into a log on disk
        "--ulimit", f"nofile={OPEN_FILES}:{OPEN_FILES}",
        "--ulimit", f"nproc={limits.pids}:{limits.pids}",
        "--ulimit", "core=0:0",
        "--ulimit", f"fsize={file_size}:{file_size}",
        "--env", "PYTHONUNBUFFERED=1",           # output printed before a kill is not lost in a buffer
        "--env", "PYTHONDONTWRITEBYTECODE=1",
        "-i",                                    # stdin: the supervisor's go, then the program's input
    ]
    if endpoint.runtime is not None:
        args += ["--runtime", endpoint.runtime]
    if limits.scratch is not None:               # writable space, counted in the memory limit (tmpfs is RAM)
        args += [
            "--tmpfs", f"/tmp:rw,noexec,nosuid,nodev,size={limits.scratch},mode=1777",
            "--env", "HOME=/tmp",                # where libraries keep their caches and settings
        ]
    else:  # gVisor mounts a writable tmpfs of its own on /tmp when nothing is there: something read-only is
        args += ["--tmpfs", "/tmp:ro,noexec,nosuid,nodev,size=4k,mode=0555"]
    args.append(endpoint.image_ref(image))
    args.extend(command)
    return [str(arg) for arg in args]
