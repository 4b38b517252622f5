"""Reuse (Sandbox(warm=N, reuse=K)) against a real engine, on every wall: the program before is hostile, and the next
program must find exactly what it would find in a fresh container, promptly.

A probe describes all a program can see of its container; each attack runs, then the probe, in the same pool. The
attacks: forging the supervisor's words, /proc/1/fd, processes left behind (daemons, stopped, ignoring signals,
readers of stdin, writers of stdout), signals to the supervisor and to every process, its rlimits, nice and CPUs
changed from outside, /tmp and /app filled or locked, memory and pids exhausted, stdin left unread, a sleeper past
the time limit, an endless loop, a flood of output.
"""

import json
import textwrap

import pytest

from conftest import echoes_at_once, wait_ready
from safecode import Sandbox

PROBE = r"""
import json, os, resource, signal, socket, stat, sys
def others():
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit() and int(pid) != os.getpid():
            try:
                found.append(open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[:2])
            except OSError:
                pass
    return sorted(repr(argv) for argv in found)
def tree(top):
    seen = []
    for folder, folders, names in os.walk(top):
        for name in sorted(folders + names):
            info = os.lstat(os.path.join(folder, name))
            seen.append((os.path.join(folder, name), stat.filemode(info.st_mode), info.st_size))
    return sorted(seen)
disk = os.statvfs("/tmp")
state = {
    "processes": others(), "tmp": tree("/tmp"), "app": tree("/app"), "stdin": sys.stdin.read(),
    "umask": os.umask(0o22), "cwd": os.getcwd(), "modules": sorted(sys.modules),
    "env": {name: value for name, value in os.environ.items() if name != "HOSTNAME"},
    "rlimits": {name: resource.getrlimit(getattr(resource, name)) for name in dir(resource) if name.startswith("RLIMIT_")},
    "signals": {int(sig): str(signal.getsignal(sig)) for sig in signal.valid_signals() if sig < 32},
    "alarm": signal.alarm(0), "nice": os.getpriority(os.PRIO_PROCESS, 0), "cpus": sorted(os.sched_getaffinity(0)),
    "policy": os.sched_getscheduler(0), "oom": open("/proc/self/oom_score_adj").read(),
    "tmp_free": disk.f_bfree == disk.f_blocks, "ppid": os.getppid(),
    "blocking": [os.get_blocking(fd) for fd in (0, 1, 2)],
}
print(json.dumps({"host": socket.gethostname(), "state": state}, sort_keys=True))
"""

# name -> (program, per-run options, what the attack's own result must show, whether its container must survive:
# True, False, or GVISOR_MAY_LOSE_IT, for attacks that gVisor's own sandbox does not survive: it lets a program kill
# PID 1, and an OOM or its process limit can take the whole sandbox; then the attack's own result is not checked,
# and the next program runs in a fresh container)
GVISOR_MAY_LOSE_IT = None
ATTACKS = {
    "forged end marks": ("""
        import os, sys
        token = open("/proc/1/cmdline", "rb").read().split(b"\\0")[4]
        mark = b"\\0" + token
        os.write(1, b"before" + mark + b"E000" + mark + b"R" + mark + b"A")
        os.write(2, mark + b"E" + b"0" * 24 + b"0")
        if os.fork() == 0:  # and keep forging after "the end"
            os.setsid()
            while True:
                os.write(1, mark + b"E000" + mark + b"R" + mark + b"A" + b"GHOST")
        os.write(1, b"after")
        """, {}, lambda r: r.stdout.startswith("before") and "after" in r.stdout and r.status == "ok", True),
    "/proc/1/fd": ("""
        import os, time
        opened = []
        for path, flags in (("/proc/1/fd/0", os.O_RDONLY | os.O_NONBLOCK), ("/proc/1/fd/0", os.O_WRONLY),
                            ("/proc/1/fd/1", os.O_WRONLY), ("/proc/1/mem", os.O_RDONLY)):
            try:
                opened.append((path, os.open(path, flags)))
            except OSError:
                pass
        print("opened", [path for path, _ in opened], flush=True)
        if os.fork() == 0:  # read the host's next words, write the next program's output, forever
            os.setsid()
            while True:
                for path, fd in opened:
                    try:
                        os.read(fd, 65536) if path.endswith("0") else os.write(fd, b"\\0INJECTED")
                    except OSError:
                        pass
                time.sleep(0.001)
        """, {}, lambda r: r.status == "ok", True),
    "processes left behind": ("""
        import os, signal, sys, time
        for sig in range(1, 32):
            try:
                signal.signal(sig, signal.SIG_IGN)
            except (OSError, ValueError):
                pass
        for kind in ("daemon", "stopped", "reader", "writer"):
            if os.fork() == 0:
                os.setsid()
                if os.fork():
                    os._exit(0)
                if kind == "stopped":
                    os.kill(os.getpid(), signal.SIGSTOP)
                while True:
                    if kind == "reader":
                        sys.stdin.buffer.read(1)
                    elif kind == "writer":
                        print("GHOST", flush=True)
                    time.sleep(0.01)
        time.sleep(0.2)
        print("left")
        """, {"stdin": "for the reader"}, lambda r: "left\n" in r.stdout and r.status == "ok", True),
    "signals to the supervisor": ("""
        import os, signal
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGSTOP, signal.SIGALRM, signal.SIGHUP, signal.SIGKILL):
            for target in (1, -1):
                try:
                    os.kill(target, sig)
                except OSError:
                    pass
        """, {}, lambda r: True, GVISOR_MAY_LOSE_IT),  # elsewhere the supervisor is PID 1, and signals do not reach it
    "the supervisor's traits": ("""
        import os, resource, signal
        resource.prlimit(1, resource.RLIMIT_NOFILE, (64, resource.prlimit(1, resource.RLIMIT_NOFILE)[1]))
        resource.prlimit(1, resource.RLIMIT_CORE, (0, 0))
        os.sched_setaffinity(1, {0})
        os.umask(0o777)
        resource.setrlimit(resource.RLIMIT_NOFILE, (32, 32))
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.alarm(1000)
        os.environ["LEFT"] = "1"
        """, {}, lambda r: r.status == "ok", True),
    "non-blocking output": ("""
        import os
        for fd in (0, 1, 2):
            os.set_blocking(fd, False)
        os.write(1, b"x" * (1 << 19))  # more than the pipe holds: the writes above may fail, and that is its own
        """, {}, lambda r: True, True),
    "the supervisor's nice": ("""
        import os
        os.setpriority(os.PRIO_PROCESS, 1, 10)
        os.setpriority(os.PRIO_USER, os.getuid(), 15)
        resource = __import__("resource")
        resource.prlimit(1, resource.RLIMIT_NPROC, (1, 1))
        """, {}, lambda r: r.status == "ok", False),  # cannot be put back: the container is replaced
    "/tmp and /app": ("""
        import os
        os.mkdir("/tmp/locked"); open("/tmp/locked/x", "w").write("x"); os.chmod("/tmp/locked", 0)
        os.symlink("/app", "/tmp/link"); os.mkfifo("/tmp/fifo"); open("/tmp/.hidden", "w").write("h")
        open("/app/out/result.txt", "w").write("mine")
        deep = "/tmp"
        for _ in range(50):
            deep += "/d"; os.mkdir(deep)
        try:
            os.chmod("/app", 0o755); open("/app/leftover.py", "w").write("print('left')")
        except OSError:
            pass
        try:
            with open("/tmp/fill", "wb") as file:
                while True:
                    file.write(b"x" * (1 << 20))
        except OSError:
            pass
        """, {}, lambda r: r.files.get("result.txt") == b"mine", True),
    "memory": ("""
        hog = []
        while True:
            hog.append(bytearray(16 << 20))
        """, {}, lambda r: r.status == "oom", GVISOR_MAY_LOSE_IT),
    "pids": ("""
        import os, time
        children = 0
        try:
            while True:
                if os.fork() == 0:
                    time.sleep(100)
                    os._exit(0)
                children += 1
        except OSError:
            print("forked", children)
        """, {}, lambda r: r.stdout.startswith("forked"), GVISOR_MAY_LOSE_IT),
    "stdin left unread": ("print('read nothing')", {"stdin": "left\n" * 200_000}, lambda r: r.status == "ok", True),
    "a sleeper past the limit": ("""
        import os, time
        if os.fork() == 0:
            time.sleep(100)
        """, {"timeout": 2}, lambda r: r.status == "ok" and r.duration < 2, True),
    "an endless loop": ("while True: pass", {"timeout": 1}, lambda r: r.status == "timeout", False),
    "a flood": ("""
        import os
        while True:
            os.write(1, b"x" * 65536)
        """, {}, lambda r: r.status == "output_limit", False),
}


def probe(sandbox, stdin):
    wait_ready(sandbox)  # after an attack that cost its container, the next one's start
    result = sandbox.execute(PROBE, stdin=stdin)
    assert result.status == "ok", result
    return json.loads(result.stdout)


@pytest.mark.docker
@pytest.mark.own_pools
def test_nothing_crosses_from_one_program_to_the_next(wall):
    with Sandbox(warm=1, reuse=100, scratch="8m", max_output=1 << 20, **wall) as sandbox:
        fresh = before = probe(sandbox, "probe's own input")
        assert sandbox.stats()["reused"] == 0
        for name, (code, options, shows, survives) in ATTACKS.items():
            attack = sandbox.execute(textwrap.dedent(code), **options)  # in the container `before` ran in
            gvisor_lost = survives is GVISOR_MAY_LOSE_IT and "runtime" in wall
            assert shows(attack) or gvisor_lost, f"{name}: {str(attack)[:1000]}"
            after = probe(sandbox, "probe's own input")
            changed = {key: value for key, value in after["state"].items() if fresh["state"][key] != value}
            assert not changed, f"{name}: the next program found {str(changed)[:1000]}"
            if survives or (survives is GVISOR_MAY_LOSE_IT and not gvisor_lost):
                assert after["host"] == before["host"], f"{name}: the container was replaced: {sandbox.stats()}"
            elif survives is False:
                assert after["host"] != before["host"], f"{name}: the container took another program"
            before = after
        stats = sandbox.stats()
        assert stats["reused"] >= len(ATTACKS) and stats["cold"] == 0, stats


@pytest.mark.docker
@pytest.mark.own_pools
def test_the_last_of_its_programs_ends_the_container(docker):
    with Sandbox(warm=1, reuse=3) as sandbox:
        hosts = [sandbox.execute("import socket; print(socket.gethostname())").stdout for _ in range(6)]
        assert hosts[0] == hosts[1] == hosts[2] != hosts[3] == hosts[4] == hosts[5]
        assert sandbox.stats()["reused"] == 4


@pytest.mark.docker
@pytest.mark.own_pools
def test_a_burst_larger_than_the_pool_queues_for_its_containers(docker):
    """With reuse, 40 programs at once on 2 containers take turns on them, as a batch should, instead of starting
    a container each (without reuse, all but the pool's run cold: test_warm)."""
    with Sandbox(warm=2, reuse=50) as sandbox:
        wait_ready(sandbox)
        printed = echoes_at_once(sandbox, 40)
        stats = sandbox.stats()
    assert printed == {i: f"{i} in{i}\n" for i in range(40)}
    assert stats["cold"] == 0 and stats["warm"] == 40 and stats["reused"] == 38, stats


@pytest.mark.pure
@pytest.mark.parametrize("reuse", [0, -1, 1.5, True, "2", None])
def test_a_bad_reuse_is_refused(reuse):
    with pytest.raises(ValueError, match="reuse must be"):
        Sandbox(warm=1, reuse=reuse)


@pytest.mark.pure
def test_reuse_is_for_warm_containers():
    with pytest.raises(ValueError, match="reuse is for warm containers"):
        Sandbox(reuse=2)


@pytest.mark.docker
@pytest.mark.own_pools
def test_a_session_takes_its_container_for_good(docker):
    with Sandbox(warm=1, reuse=10) as sandbox:
        wait_ready(sandbox)
        with sandbox.session() as live:
            assert live.execute("x = 1").ok
            wait_ready(sandbox, seconds=30)  # the pool has started another while the session lives
            assert live._container.name not in sandbox._pool.names  # a look inside: not the pool's any more
            assert live.execute("print(x)").stdout == "1\n"
