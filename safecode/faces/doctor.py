"""`python -m safecode doctor`: check on the real host that Docker answers and the sandbox really holds."""

import dataclasses
import json
import shutil

from .. import engine
from ..errors import SafecodeError
from ..engine import seccomp
from ..engine.image import built
from ..engine.packages import packages_of
from .sandbox import Sandbox

# Each probe prints one word the check expects; anything else means the wall did not hold.
_NETWORK = """
import socket
try:
    socket.create_connection(("1.1.1.1", 53), timeout=2)
    print("open")
except OSError:
    print("blocked")
"""
_READ_ONLY = """
for path in ("/tmp/x", "/app/x", "/dev/shm/x", "/x"):
    try:
        open(path, "w").close()
        print("writable", path)
        break
    except OSError:
        pass
else:
    print("read-only")
"""
_IDENTITY = """
import os
caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm", "CapBnd"))]
print("root" if os.getuid() == 0 else "user", "caps" if any(int(c, 16) for c in caps) else "nocaps")
"""
_MEMORY = "x = bytearray(512 * 1024 * 1024)\nprint('allocated')"
# Calls safecode's profile refuses and engines' defaults have let through; open: the kernel looked at the arguments.
_SYSCALLS = """
import ctypes, errno, platform
numbers = {"x86_64": (425, 319, 101, 272), "aarch64": (425, 279, 117, 97)}[platform.machine()]
libc = ctypes.CDLL(None, use_errno=True)
for name, number in zip(("io_uring_setup", "memfd_create", "ptrace", "unshare"), numbers):
    ctypes.set_errno(0)
    done = libc.syscall(number, 0x10000000 if name == "unshare" else 0, 0, 0, 0) != -1
    print(name, "open" if done or ctypes.get_errno() not in (errno.EPERM, errno.ENOSYS) else "refused")
"""
DOCKER_DEFAULT_ALLOWS = 301  # Docker's default profile before v25, 64-bit x86, no capabilities (README)
GVISOR_RELEASE = "4.4.0"  # the kernel release gVisor tells its programs
_FILTERS = """
import platform
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
try:
    label = open("/proc/self/attr/current").read().strip("\\0\\n ") or "none"
except OSError:
    label = "none"
print(platform.release(), status["Seccomp"].strip(), label)
"""
_PROCESSES = """
import threading, time
count = 0
try:
    for _ in range(1000):
        threading.Thread(target=time.sleep, args=(5,), daemon=True).start()
        count += 1
except RuntimeError:
    pass
print("capped" if count < 1000 else "uncapped")
"""


def _like(sandbox, **limits):
    """A sandbox on the same engine, runtime and image as `sandbox`, with `limits` of its own."""
    return Sandbox(image=sandbox.image, **dataclasses.asdict(sandbox.endpoint), **limits)


def _check_cli(sandbox):
    where = sandbox.endpoint
    if not shutil.which(where.engine):
        return False, engine.no_cli(where)
    proc = engine.docker("--version", timeout=10, endpoint=where)
    return proc.returncode == 0, proc.stdout.strip() or proc.stderr.strip()


def _check_daemon(sandbox):
    where = sandbox.endpoint
    proc = engine.docker("version", "--format", "{{.Server.Version}}", timeout=20, endpoint=where)
    if proc.returncode:
        return False, proc.stderr.strip()
    how = "its read-only mount" if where.local else "stdin (it cannot see this machine's folders)"
    return True, f"{where.describe()}, engine {proc.stdout.strip()}; code reaches /app through {how}"


def _check_engine(sandbox):
    where = sandbox.endpoint
    proc = engine.docker("info", "--format", "{{json .}}", timeout=20, endpoint=where)
    if proc.returncode:
        return False, proc.stderr.strip()
    info = json.loads(proc.stdout)
    if where.engine == "podman":
        host = info.get("host", {})
        security = host.get("security", {})
        options = [name for name, on in (("seccomp", security.get("seccompEnabled")),
                                         ("apparmor", security.get("apparmorEnabled")),
                                         ("selinux", security.get("selinuxEnabled"))) if on]
        default, names = host.get("ociRuntime", {}).get("name", "?"), engine.runtimes(where)
    else:
        options = [option.replace("name=", "") for option in info.get("SecurityOptions") or []]
        default, names = info.get("DefaultRuntime", "?"), sorted(info.get("Runtimes", {}))
    runtimes = ", ".join(name + (" (default)" if name == default else "") for name in names)
    chosen = where.runtime or default
    if chosen not in names and where.runtime:
        return False, f"no runtime {chosen!r} here; it has: {runtimes}"
    security = ", ".join(options) or "none"
    return True, (f"runs sandboxes with {chosen}; runtimes: {runtimes}; security options: {security}; "
                  f"{_PIDS_MEANING['runsc' if chosen == 'runsc' else 'runc']}")


_PIDS_MEANING = {
    "runc": "the process limit counts the program's processes and threads (the container's pids cgroup)",
    "runsc": "the process limit counts the program's processes and threads inside gVisor (their nproc limit); the "
             "container's pids cgroup counts gVisor's own host tasks, capped apart (past it the sandbox gives up)",
}


def _check_filters(sandbox):
    """The engine's word is not proof: look from inside a sandbox at its kernel, seccomp mode and AppArmor label."""
    result = _like(sandbox).execute(_FILTERS)
    release, mode, label = (result.stdout.split() + ["?", "?", "?"])[:3]
    if release == GVISOR_RELEASE:  # gVisor's kernel answers the program's system calls; the host's never sees them
        return True, "the program runs on gVisor's kernel (a second wall, in user space), not the host's"
    if mode != "2":
        return False, f"no seccomp filter in the sandbox (Seccomp: {mode}) {result.stderr.strip()[-200:]}"
    apparmor = "no AppArmor profile" if label in ("none", "unconfined") else f"AppArmor profile {label}"
    return True, f"host kernel {release}; seccomp filter active (mode 2); {apparmor}"


def _check_syscalls(sandbox):
    """Which profile filters the program's system calls, how many it allows, and proof from inside that it holds."""
    where = sandbox.endpoint
    if where.runtime == "runsc" and where.engine == "docker":
        proc = engine.docker("info", "--format", "{{json .Runtimes.runsc}}", timeout=20, endpoint=where)
        if "--oci-seccomp" not in proc.stdout:
            return False, ("this engine's runsc ignores seccomp profiles: register it with the runtime argument "
                           "--oci-seccomp (scripts/ensure-docker does)")
    result = _like(sandbox).execute(_SYSCALLS)
    calls = dict(line.split() for line in result.stdout.splitlines() if len(line.split()) == 2)
    if not calls:
        return False, f"the probe did not run ({result.status}) {result.stderr.strip()[-200:]}"
    opened = [name for name, said in calls.items() if said == "open"]
    inside = (f"open from inside: {', '.join(opened)}" if opened else f"refused from inside: {', '.join(calls)}")
    if where.seccomp == seccomp.ENGINE:
        return True, f"the engine's default profile (wider than safecode's); {inside}"
    profile = seccomp.load(where.seccomp)
    which = "safecode's profile" if where.seccomp is None else f"profile {where.seccomp}"
    counted = f"{which} allows {len(seccomp.allowed(profile))} calls (Docker's default: {DOCKER_DEFAULT_ALLOWS})"
    if where.seccomp is None and opened:
        return False, f"{counted}, but {inside}"
    return True, f"{counted}; {inside}"


def _check_image(sandbox):
    if engine.image_exists(sandbox.image, sandbox.endpoint):
        others = [name for name in built() if name != sandbox.image] if sandbox.endpoint == engine.LOCAL else []
        added = packages_of(sandbox.image, sandbox.endpoint)
        return True, (sandbox.image + (f" with {', '.join(added)}" if added else "")
                      + (f" (also built: {', '.join(others)})" if others else ""))
    return False, (f"{sandbox.image} is missing: make it with 'python -m safecode image --image {sandbox.image}'"
                   " (for another engine, with the same --engine/--host/--context: it is built here and copied)")


def _probe(code, expected, **limits):
    def check(sandbox):
        result = _like(sandbox, **limits).execute(code)
        got = result.stdout.strip()
        if got == expected:
            return True, got
        return False, f"expected {expected!r}, got {got!r} ({result.status}) {result.stderr.strip()[-200:]}"

    return check


def _check_memory(sandbox):
    result = _like(sandbox, memory="64m").execute(_MEMORY)
    if result.oom_killed:
        return True, "512 MiB in a 64m sandbox: killed by the OOM killer"
    return False, f"512 MiB allocated in a 64m sandbox ({result.status}) {result.stdout.strip()}"


def _check_timeout(sandbox):
    before = set(engine.ours(sandbox.endpoint))
    result = _like(sandbox, timeout=1).execute("while True: pass")
    left = set(engine.ours(sandbox.endpoint)) - before
    if result.timed_out and not left:
        return True, f"stopped after {result.duration:.1f} s and removed"
    return False, f"timed_out={result.timed_out}, containers left: {sorted(left)}"


CHECKS = [
    ("engine CLI", _check_cli),
    ("engine", _check_daemon),
    ("runtimes and security", _check_engine),
    ("sandbox image", _check_image),
    ("hello run", _probe("print('hello')", "hello")),
    ("network blocked", _probe(_NETWORK, "blocked")),
    ("filesystem read-only (/, /tmp, /app, /dev/shm)", _probe(_READ_ONLY, "read-only")),
    ("not root, no capabilities", _probe(_IDENTITY, "user nocaps")),
    ("kernel, system call filter (seccomp), AppArmor", _check_filters),
    ("system calls allowed (seccomp profile)", _check_syscalls),
    ("memory limit enforced", _check_memory),
    ("process limit enforced", _probe(_PROCESSES, "capped")),
    ("timed-out container gone", _check_timeout),
]


def doctor(sandbox=None, *, out=print):
    """Run every check, print a line for each and a verdict; True when all pass."""
    sandbox = sandbox or Sandbox()
    failed = 0
    for title, check in CHECKS:
        try:
            ok, detail = check(sandbox)
        except SafecodeError as error:
            ok, detail = False, str(error)
        failed += not ok
        out(f"[{'ok' if ok else 'FAIL'}] {title}: {detail}")
        if not ok and title in ("engine CLI", "engine", "runtimes and security", "sandbox image"):
            break  # nothing further can run
    verdict = "all checks passed: the sandbox holds" if not failed else f"{failed} check(s) failed"
    out(verdict)
    return not failed
