"""`python -m safecode doctor`: check on the real host that Docker answers and the sandbox really holds."""

import json
import shutil

from . import engine
from .errors import SafecodeError
from .image import built
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
_FILTERS = """
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
try:
    label = open("/proc/self/attr/current").read().strip("\\0\\n ") or "none"
except OSError:
    label = "none"
print(status["Seccomp"].strip(), label)
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


def _check_cli():
    if not shutil.which("docker"):
        return False, engine.NO_CLI
    proc = engine.docker("--version", timeout=10)
    return proc.returncode == 0, proc.stdout.strip() or proc.stderr.strip()


def _check_daemon():
    proc = engine.docker("version", "--format", "{{.Server.Version}}", timeout=10)
    if proc.returncode:
        return False, proc.stderr.strip()
    return True, f"Docker Engine {proc.stdout.strip()}"


def _check_engine(sandbox):
    proc = engine.docker("info", "--format", "{{json .}}", timeout=20)
    if proc.returncode:
        return False, proc.stderr.strip()
    info = json.loads(proc.stdout)
    default = info.get("DefaultRuntime", "?")
    runtimes = ", ".join(name + (" (default)" if name == default else "") for name in sorted(info.get("Runtimes", {})))
    security = ", ".join(option.replace("name=", "") for option in info.get("SecurityOptions") or []) or "none"
    return True, f"runtimes: {runtimes}; security options: {security}"


def _check_filters(sandbox):
    """The engine's word is not proof: look from inside a sandbox at its seccomp mode and AppArmor label."""
    result = Sandbox(image=sandbox.image).execute(_FILTERS)
    mode, _, label = result.stdout.strip().partition(" ")
    if mode != "2":
        return False, f"no seccomp filter in the sandbox (Seccomp: {mode or '?'}) {result.stderr.strip()[-200:]}"
    apparmor = "no AppArmor profile" if label in ("none", "unconfined") else f"AppArmor profile {label}"
    return True, f"seccomp filter active (mode 2); {apparmor}"


def _check_image(sandbox):
    if engine.image_exists(sandbox.image):
        others = [name for name in built() if name != sandbox.image]
        return True, sandbox.image + (f" (also built: {', '.join(others)})" if others else "")
    return False, f"{sandbox.image} is missing: build it with 'python -m safecode image --image {sandbox.image}'"


def _probe(code, expected, **limits):
    def check(sandbox):
        result = Sandbox(image=sandbox.image, **limits).execute(code)
        got = result.stdout.strip()
        if got == expected:
            return True, got
        return False, f"expected {expected!r}, got {got!r} ({result.status}) {result.stderr.strip()[-200:]}"

    return check


def _check_memory(sandbox):
    result = Sandbox(image=sandbox.image, memory="64m").execute(_MEMORY)
    if result.oom_killed:
        return True, "512 MiB in a 64m sandbox: killed by the OOM killer"
    return False, f"512 MiB allocated in a 64m sandbox ({result.status}) {result.stdout.strip()}"


def _check_timeout(sandbox):
    before = set(engine.ours())
    result = Sandbox(image=sandbox.image, timeout=1).execute("while True: pass")
    left = set(engine.ours()) - before
    if result.timed_out and not left:
        return True, f"stopped after {result.duration:.1f} s and removed"
    return False, f"timed_out={result.timed_out}, containers left: {sorted(left)}"


CHECKS = [
    ("docker CLI", lambda sandbox: _check_cli()),
    ("Docker daemon", lambda sandbox: _check_daemon()),
    ("engine", _check_engine),
    ("sandbox image", _check_image),
    ("hello run", _probe("print('hello')", "hello")),
    ("network blocked", _probe(_NETWORK, "blocked")),
    ("filesystem read-only (/, /tmp, /app, /dev/shm)", _probe(_READ_ONLY, "read-only")),
    ("not root, no capabilities", _probe(_IDENTITY, "user nocaps")),
    ("system call filter (seccomp), AppArmor", _check_filters),
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
        if not ok and title in ("docker CLI", "Docker daemon", "sandbox image"):
            break  # nothing further can run
    verdict = "all checks passed: the sandbox holds" if not failed else f"{failed} check(s) failed"
    out(verdict)
    return not failed
