"""A second Docker Engine reached over ssh://, on this machine: what the tests and the bench call a remote engine.

A `dockerd` of its own (socket, data root, exec root, pid file, no bridge, no iptables, its own network namespace)
and an `sshd` bound to 127.0.0.1 with keys made for it alone, whose sessions find that dockerd through SetEnv
DOCKER_HOST. The Docker CLI reaches it with `-H ssh://root@127.0.0.1:PORT`; its `ssh` is given the keys and
connection reuse (ControlMaster) by a wrapper first on PATH, as a user's ~/.ssh/config would. Everything is stopped
and removed on close: containers, both daemons, the SSH master connection, keys and data root.
"""

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from safecode.engine.endpoint import Endpoint
from safecode.engine.image import copy_image

SSHD = "/usr/sbin/sshd"


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SecondEngine:
    """Start with SecondEngine(); `host` is its ssh:// address and `env_path` the PATH that reaches it. close()."""

    def __init__(self, image):
        if os.geteuid() != 0 or not shutil.which("dockerd") or not os.path.exists(SSHD):
            raise RuntimeError("a second engine needs root, dockerd and sshd (apt-get install openssh-server)")
        self.dir = tempfile.mkdtemp(prefix="sc-e2-")  # short: unix socket paths are limited to 107 bytes
        self._processes = []
        try:
            self._start_dockerd()
            self._start_sshd()
            copy_image(image, Endpoint(host=self.socket))  # straight to its socket, as safecode's own copy
        except BaseException:
            self.close()
            raise

    def path(self, name):
        return os.path.join(self.dir, name)

    @property
    def socket(self):
        return "unix://" + self.path("docker.sock")

    def _start_dockerd(self):
        with open(self.path("daemon.json"), "w") as file:
            file.write('{"log-driver": "json-file", "log-opts": {"max-size": "1m", "max-file": "2"}}\n')
        log = open(self.path("dockerd.log"), "wb")
        # In a network namespace of its own: a dockerd without a bridge deletes the host's docker0 at start, which
        # would cut the first engine's bridge network (docker build uses it). Its socket is a file: reachable still.
        self._dockerd = subprocess.Popen(
            ["unshare", "--net", "--", "dockerd", "--config-file", self.path("daemon.json"), "--host", self.socket,
             "--data-root", self.path("data"), "--exec-root", self.path("x"), "--pidfile", self.path("docker.pid"),
             "--bridge=none", "--iptables=false"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
        )
        log.close()
        self._processes.append(self._dockerd)
        deadline = time.monotonic() + 60
        while subprocess.run(["docker", "-H", self.socket, "info"], capture_output=True).returncode:
            if self._dockerd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the second dockerd did not start: see {self.path('dockerd.log')}")
            time.sleep(0.2)

    def _start_sshd(self):
        for key in ("host_key", "user_key"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.path(key)], check=True)
        shutil.copy(self.path("user_key.pub"), self.path("authorized_keys"))
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation folder
        self.port = _free_port()
        with open(self.path("sshd_config"), "w") as file:
            file.write(
                f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.path('host_key')}\n"
                f"PidFile {self.path('sshd.pid')}\nAuthorizedKeysFile {self.path('authorized_keys')}\n"
                "PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
                f"UsePAM no\nStrictModes no\nSetEnv DOCKER_HOST={self.socket}\n"
            )
        self._sshd = subprocess.Popen([SSHD, "-D", "-f", self.path("sshd_config"), "-E", self.path("sshd.log")],
                                      stdin=subprocess.DEVNULL, start_new_session=True)
        self._processes.append(self._sshd)
        with open(self.path("host_key.pub")) as key, open(self.path("known_hosts"), "w") as known:
            known.write(f"[127.0.0.1]:{self.port} {key.read()}")
        with open(self.path("ssh_config"), "w") as file:
            file.write(
                f"Host 127.0.0.1\n  User root\n  Port {self.port}\n  IdentityFile {self.path('user_key')}\n"
                f"  IdentitiesOnly yes\n  UserKnownHostsFile {self.path('known_hosts')}\n"
                "  StrictHostKeyChecking yes\n  BatchMode yes\n"
                f"  ControlMaster auto\n  ControlPath {self.path('cm-%C')}\n  ControlPersist 120\n"
            )
        for folder, options in (("bin", ""), ("bin-no-reuse", " -o ControlMaster=no -o ControlPath=none")):
            os.makedirs(self.path(folder))
            with open(self.path(f"{folder}/ssh"), "w") as file:
                file.write(f'#!/bin/sh\nexec /usr/bin/ssh -F {self.path("ssh_config")}{options} "$@"\n')
            os.chmod(self.path(f"{folder}/ssh"), 0o755)
        self.host = f"ssh://root@127.0.0.1:{self.port}"
        self.env_path = self.path("bin") + os.pathsep + os.environ.get("PATH", "")
        # the same, but every ssh connection made anew (for the bench: what connection reuse saves)
        self.env_path_no_reuse = self.path("bin-no-reuse") + os.pathsep + os.environ.get("PATH", "")
        deadline = time.monotonic() + 20
        while self.docker("info").returncode:
            if self._sshd.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"sshd does not let docker through: see {self.path('sshd.log')}")
            time.sleep(0.2)

    def docker(self, *args, **options):
        """`docker -H ssh://...` as a user with our ssh config would run it."""
        return subprocess.run(["docker", "-H", self.host, *args], capture_output=True, text=True,
                              env={**os.environ, "PATH": self.env_path}, **options)

    def stop_answering(self):
        """Freeze the second dockerd: it accepts nothing more until thawed (close() thaws and stops it)."""
        os.kill(self._dockerd.pid, signal.SIGSTOP)

    def drop_connections(self):
        """Cut every SSH connection to it, as a network failure would: kill our sshd's per-connection processes."""
        with open(f"/proc/{self._sshd.pid}/task/{self._sshd.pid}/children") as file:
            for pid in file.read().split():
                os.kill(int(pid), signal.SIGKILL)

    def answer_again(self):
        """Thaw a frozen dockerd."""
        os.kill(self._dockerd.pid, signal.SIGCONT)

    def close(self):
        """Remove its containers, stop both daemons and the SSH master, and remove every file."""
        if hasattr(self, "_dockerd") and self._dockerd.poll() is None:
            os.kill(self._dockerd.pid, signal.SIGCONT)
            names = subprocess.run(["docker", "-H", self.socket, "ps", "-aq"], capture_output=True, text=True,
                                   timeout=30).stdout.split()
            if names:
                subprocess.run(["docker", "-H", self.socket, "rm", "-f", *names], capture_output=True, timeout=60)
        if os.path.exists(self.path("ssh_config")):
            subprocess.run(["/usr/bin/ssh", "-F", self.path("ssh_config"), "-O", "exit", "127.0.0.1"],
                           capture_output=True, timeout=10)
        for process in reversed(self._processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
