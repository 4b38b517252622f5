"""Which system calls a sandboxed program may ask of the kernel: safecode's own seccomp profile (seccomp.json here),
the engine's default, or a profile of the caller's.

safecode's profile is an allow-list: the engine's default profile (Docker's, for a container without capabilities)
less what a Python program never needs and an attacker of the host's kernel would like: io_uring, Linux AIO, memfd,
SysV and POSIX message queues and shared memory, ptrace and process_vm_*, splice/tee/vmsplice, modify_ldt,
name_to_handle_at, the clock-adjusting calls, and every socket family but Unix, IPv4 and IPv6 (no netlink, no
AF_ALG, no vsock). Namespaces stay closed as in Docker's: clone only without namespace flags, no unshare or setns;
clone3, whose flags a filter cannot see, fails with ENOSYS so that the C library falls back to clone. It does so as
SCMP_ACT_TRACE with no tracer (ptrace is closed): gVisor ignores a rule's errno and would say EPERM, which breaks
every thread.
Only 64-bit x86 and ARM calls are allowed: a 32-bit system call from a 64-bit program is refused too.
The docker CLI reads the profile file and sends its content, so a remote engine enforces the same filter.
"""

import json
import pathlib
from typing import List, Optional

PROFILE = pathlib.Path(__file__).resolve().with_name("seccomp.json")
ENGINE = "engine"  # the engine's own default profile instead of safecode's


def profile_path(choice: Optional[str]) -> Optional[str]:
    """The profile file for `choice` (None: safecode's own); None for the engine's own default."""
    if choice == ENGINE:
        return None
    return str(PROFILE if choice is None else pathlib.Path(choice).expanduser().resolve())


def load(choice: Optional[str]) -> Optional[dict]:
    """The profile `choice` names, read and checked; None for the engine's default. ValueError when it is unreadable
    or not a seccomp profile, said before any container starts."""
    path = profile_path(choice)
    if path is None:
        return None
    try:
        profile = json.loads(pathlib.Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"seccomp profile {choice!r} cannot be read: {error}") from None
    except ValueError as error:
        raise ValueError(f"seccomp profile {choice!r} is not JSON: {error}") from None
    problem = _problem(profile)
    if problem:
        raise ValueError(f"seccomp profile {choice!r} is not a seccomp profile: {problem}")
    return profile


def _problem(profile):
    if not isinstance(profile, dict):
        return "not a JSON object"
    if not isinstance(profile.get("defaultAction"), str):
        return "no defaultAction"
    rules = profile.get("syscalls", [])
    if not isinstance(rules, list):
        return "syscalls is not a list"
    for rule in rules:
        if not isinstance(rule, dict) or not isinstance(rule.get("action"), str):
            return "a rule without an action"
        names = rule.get("names", [rule.get("name")])
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            return "a rule whose names are not a list of strings"
    return None


def allowed(profile: dict) -> List[str]:
    """The system calls a profile allows, wholly or for some arguments (rules that depend on capabilities or on
    other architectures than 64-bit x86 left out: a sandbox has no capabilities)."""
    names = set()
    for rule in profile.get("syscalls", []):
        if rule.get("action") != "SCMP_ACT_ALLOW":
            continue
        includes = rule.get("includes", {})
        if includes.get("caps") or includes.get("arches") and "amd64" not in includes["arches"]:
            continue
        names.update(rule.get("names", [rule.get("name")]))
    return sorted(names) if profile.get("defaultAction") != "SCMP_ACT_ALLOW" else []
