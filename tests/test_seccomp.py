"""safecode's seccomp profile: what it closes, proven from inside a sandbox on every wall, cold and warm."""

import json
import textwrap

import pytest

from safecode import Limits, Sandbox, build_args, execute
from safecode.engine import seccomp
from safecode.engine.endpoint import Endpoint

# x86_64 numbers of each call the profile closes (and of those no sandbox ever had), called with arguments that do
# no harm; refused means EPERM or ENOSYS, from the filter before the kernel looks at the arguments.
CLOSED = {
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "userfaultfd": 323, "keyctl": 250,
    "add_key": 248, "request_key": 249, "bpf": 321, "perf_event_open": 298, "mount": 165, "umount2": 166,
    "kexec_load": 246, "open_by_handle_at": 304, "name_to_handle_at": 303, "memfd_create": 319, "memfd_secret": 447,
    "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71, "shmget": 29, "shmat": 30, "shmctl": 31, "shmdt": 67,
    "semget": 64, "semop": 65, "semctl": 66, "semtimedop": 220, "mq_open": 240, "mq_unlink": 241,
    "io_setup": 206, "io_destroy": 207, "io_getevents": 208, "io_submit": 209, "io_cancel": 210,
    "vmsplice": 278, "splice": 275, "tee": 276, "modify_ldt": 154, "process_vm_readv": 310,
    "process_vm_writev": 311, "adjtimex": 159, "clock_adjtime": 305, "fanotify_init": 300, "fanotify_mark": 301,
    "remap_file_pages": 216, "process_mrelease": 448, "setns": 308, "pivot_root": 155, "chroot": 161,
    "init_module": 175, "reboot": 169, "swapon": 167, "acct": 163, "lookup_dcookie": 212,
}
PROBE = """
import ctypes, errno, json, os, platform, socket
assert platform.machine() == "x86_64", platform.machine()
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long

def said(result):
    return "ok" if result != -1 else errno.errorcode.get(ctypes.get_errno(), str(ctypes.get_errno()))

def call(number, *args):
    ctypes.set_errno(0)
    return said(libc.syscall(number, *[ctypes.c_long(arg) for arg in args]))

found = {name: call(number, 0, 0, 0, 0, 0, 0) for name, number in CLOSED.items()}
found["unshare(CLONE_NEWUSER)"] = call(272, 0x10000000)
child = os.fork()
if child == 0:
    import time
    time.sleep(30)
    os._exit(0)
ctypes.set_errno(0)
found["ptrace(ATTACH, child)"] = said(libc.ptrace(16, child, 0, 0))
os.kill(child, 9)
os.waitpid(child, 0)
for family in (16, 38, 40):  # netlink, AF_ALG, vsock
    try:
        socket.socket(family, socket.SOCK_RAW if family == 16 else socket.SOCK_SEQPACKET).close()
        found[f"socket({family})"] = "ok"
    except OSError as error:
        found[f"socket({family})"] = errno.errorcode.get(error.errno)
print(json.dumps(found))
print("still here")
"""
REFUSED = ("EPERM", "ENOSYS")
# What a Python program needs still works under the profile.
NEEDED = """
import asyncio, concurrent.futures, hashlib, multiprocessing, os, socket, subprocess, sys, threading
said = []
thread = threading.Thread(target=lambda: said.append("thread"))
thread.start()
thread.join()
context = multiprocessing.get_context("fork")
mine, theirs = context.Pipe()
process = context.Process(target=lambda end: end.send("process"), args=(theirs,))
process.start()
said.append(mine.recv())
process.join()
said.append(subprocess.run([sys.executable, "-c", "print('subprocess')"], capture_output=True, text=True).stdout.strip())

async def child():
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", "print('asyncio')", stdout=asyncio.subprocess.PIPE)
    return (await proc.communicate())[0].decode().strip()

said.append(asyncio.run(child()))
one, other = socket.socketpair()
one.send(b"socketpair")
said.append(other.recv(20).decode())
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen()
socket.create_connection(server.getsockname()).close()
said.append("loopback")
with concurrent.futures.ThreadPoolExecutor(4) as pool:
    said.append(str(sum(pool.map(abs, range(10)))))
said.append(hashlib.sha256(b"x").hexdigest()[:4])
print(" ".join(said))
"""


def probe_source():
    return f"CLOSED = {CLOSED!r}\n" + textwrap.dedent(PROBE)


# Without Docker -------------------------------------------------------------------------------------------------

@pytest.mark.pure
def test_the_profile_ships_with_the_package_and_closes_every_call_the_tests_try():
    profile = seccomp.load(None)
    allowed = set(seccomp.allowed(profile))
    assert profile["defaultAction"] == "SCMP_ACT_ERRNO"
    assert not allowed & set(CLOSED), allowed & set(CLOSED)
    assert {"read", "write", "clone", "execve", "futex", "mmap", "socket", "wait4"} <= allowed
    assert not {"unshare", "ptrace", "io_uring_setup"} & allowed
    sockets = [rule["args"][0]["value"] for rule in profile["syscalls"] if rule["names"] == ["socket"]]
    assert sorted(sockets) == [1, 2, 10]  # AF_UNIX, AF_INET, AF_INET6 only
    assert 240 < len(allowed) < 280


@pytest.mark.pure
def test_every_run_names_the_profile_and_engine_leaves_the_engines_own():
    args = build_args("/tmp/x", name="n", uid=123456, limits=Limits(), image="img")
    assert f"seccomp={seccomp.PROFILE}" in args and args[args.index(f"seccomp={seccomp.PROFILE}") - 1] == "--security-opt"
    engine_default = build_args("/tmp/x", name="n", uid=123456, limits=Limits(), image="img",
                                endpoint=Endpoint(seccomp="engine"))
    assert not [arg for arg in engine_default if arg.startswith("seccomp=")]
    assert "no-new-privileges" in engine_default


@pytest.mark.pure
@pytest.mark.parametrize("content, problem", [
    (None, "cannot be read"), ("{not json", "is not JSON"), ("[1, 2]", "not a JSON object"),
    ('{"syscalls": []}', "no defaultAction"), ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": "read"}]}',
                                               "without an action"),
])
def test_an_unreadable_or_invalid_profile_is_refused_before_any_container(tmp_path, content, problem):
    path = tmp_path / "profile.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ValueError, match=problem):
        Sandbox(seccomp=str(path))
    with pytest.raises(ValueError, match="seccomp must be"):
        Sandbox(seccomp="")


# Against the engine, on every wall --------------------------------------------------------------------------------

def test_closed_calls_are_refused_and_the_program_goes_on(wall_runs):
    result = wall_runs.execute(probe_source(), timeout=20)
    assert result.ok, result.stderr
    found = json.loads(result.stdout.splitlines()[0])
    assert {name: said for name, said in found.items() if said not in REFUSED} == {}
    assert result.stdout.splitlines()[1] == "still here"


def test_what_a_python_program_needs_still_works(wall_runs):
    result = wall_runs.execute(NEEDED, timeout=30)
    assert result.ok, result.stderr
    assert result.stdout == "thread process subprocess asyncio socketpair loopback 45 2d71\n"


def test_the_engines_default_is_wider_and_a_profile_of_ones_own_is_enforced(docker, podman_wall, tmp_path):
    found = json.loads(execute(probe_source(), seccomp="engine", timeout=20).stdout.splitlines()[0])
    assert found["io_uring_setup"] not in REFUSED and found["ptrace(ATTACH, child)"] == "ok"  # Docker 20.10's
    found = json.loads(execute(probe_source(), seccomp="engine", timeout=20, **podman_wall).stdout.splitlines()[0])
    assert found["unshare(CLONE_NEWUSER)"] == "ok"  # podman's default lets a program make a user namespace
    profile = seccomp.load(None)
    for rule in profile["syscalls"]:
        rule["names"] = [name for name in rule["names"] if name != "getpriority"]
    path = tmp_path / "no-getpriority.json"
    path.write_text(json.dumps(profile))
    probe = "import os\ntry:\n    print(os.getpriority(os.PRIO_PROCESS, 0))\nexcept OSError as e:\n    print(e.errno)"
    assert execute(probe, seccomp=str(path)).stdout.strip() in ("1", "38")  # EPERM, or ENOSYS
    assert execute(probe).stdout == "0\n"
