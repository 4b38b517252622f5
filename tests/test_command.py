"""The docker run argument list, read without Docker."""

import json

import pytest

from safecode import Limits, build_args
from safecode.engine.endpoint import Endpoint

pytestmark = pytest.mark.pure


def args(**overrides):
    options = dict(name="safecode-test", uid=123456, limits=Limits(), image="img:1")
    options.update(overrides)
    return build_args("/tmp/code", **options)


def pairs(argv):
    """Every (flag, value) pair, so a test can ask for one wherever it stands."""
    return list(zip(argv, argv[1:]))


def test_seeds_flags_are_the_literal_prefix():
    assert args()[:15] == [
        "docker", "run", "--rm", "--network", "none", "--memory", "128m", "--cpus", "0.5",
        "--pids-limit", "64", "--read-only", "-v", "/tmp/code:/app:ro", "-w",
    ]
    assert args()[15] == "/app"


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--memory-swap", "128m"),
        ("--cap-drop", "ALL"),
        ("--security-opt", "no-new-privileges"),
        ("--log-driver", "none"),
        ("--pull", "never"),
        ("--ipc", "none"),
        ("--name", "safecode-test"),
        ("--label", "safecode=1"),
        ("--user", "123456:123456"),
        ("--ulimit", "core=0:0"),
        ("--ulimit", "nofile=256:256"),
        ("--ulimit", "nproc=64:64"),
        ("--ulimit", "fsize=1048576:1048576"),
        ("--env", "PYTHONUNBUFFERED=1"),
    ],
)
def test_hardening_flags(flag, value):
    assert (flag, value) in pairs(args())


def test_supervisor_is_pid_1():
    # Docker's init would be PID 1, run as the program's user: a program could signal it and reach the host through
    # its /proc/1/fd. The supervisor is PID 1 instead (tests/test_reuse.py shows both walls hold).
    assert "--init" not in args()


def test_image_then_command_come_last():
    argv = args()
    assert argv[-3:] == ["img:1", "python3", "main.py"]
    assert args(command=["python3", "-c", "pass"])[-4:] == ["img:1", "python3", "-c", "pass"]


def test_stdin_is_attached_for_the_supervisor():
    argv = args()
    assert argv.index("-i") < argv.index("img:1")
    assert "-t" not in argv and "--tty" not in argv  # no terminal: stdout and stderr stay apart


def test_limits_flow_into_flags():
    limits = Limits(memory="256M", cpus=1.5, pids=10)
    p = pairs(args(limits=limits))
    assert ("--memory", "256m") in p and ("--memory-swap", "256m") in p
    assert ("--cpus", "1.5") in p and ("--pids-limit", "10") in p and ("--ulimit", "nproc=10:10") in p


def test_no_host_environment_and_no_shell():
    argv = args()
    env_values = [value for flag, value in pairs(argv) if flag in ("--env", "-e")]
    assert all("=" in value for value in env_values), "a bare --env NAME would copy the host's value"
    assert all(isinstance(arg, str) for arg in argv)
    assert "sh" not in argv and "-c" not in argv[:-3]


def test_no_writable_mounts_or_privileges():
    argv = args()
    assert "--privileged" not in argv
    mounts = [value for flag, value in pairs(argv) if flag in ("-v", "--volume", "--mount")]
    assert mounts == ["/tmp/code:/app:ro"]
    # gVisor would mount a writable /tmp of its own where nothing is: a read-only one is there under any runtime
    tmpfs = [value for flag, value in pairs(argv) if flag == "--tmpfs"]
    assert tmpfs == ["/tmp:ro,noexec,nosuid,nodev,size=4k,mode=0555"]


def test_runtime_is_passed_and_gvisor_gets_room_for_its_own_tasks():
    assert "--runtime" not in args()
    runsc = args(endpoint=Endpoint(runtime="runsc"), limits=Limits(pids=10))
    assert ("--runtime", "runsc") in pairs(runsc)
    assert ("--pids-limit", "144") in pairs(runsc)  # 64 of gVisor's own tasks, 8 per process of the program's
    assert ("--ulimit", "nproc=10:10") in pairs(runsc)
    assert ("--pids-limit", "10") in pairs(args(endpoint=Endpoint(runtime="runc"), limits=Limits(pids=10)))


def test_a_remote_engine_gets_the_code_in_a_tmpfs_only_the_user_may_write():
    argv = build_args(None, name="n", uid=123456, limits=Limits(max_code=10, max_files=20), image="img:1",
                      endpoint=Endpoint(host="ssh://me@box"))
    assert argv[:4] == ["docker", "--host", "ssh://me@box", "run"]
    assert not [value for flag, value in pairs(argv) if flag in ("-v", "--volume", "--mount")]
    size = 10 + 20 + (1 << 20)
    assert ("--tmpfs", f"/app:rw,noexec,nosuid,nodev,size={size},mode=0755,uid=123456,gid=123456") in pairs(argv)


def test_podman_and_contexts():
    argv = args(endpoint=Endpoint(engine="podman"))
    assert argv[:2] == ["podman", "run"] and argv[-3] == "localhost/img:1"
    assert args(endpoint=Endpoint(context="far"))[:4] == ["docker", "--context", "far", "run"]
    # gVisor's own flags, which Docker takes from daemon.json
    assert args(endpoint=Endpoint(engine="podman", runtime="runsc"))[:6] == [
        "podman", "--runtime-flag", "network=none", "--runtime-flag", "oci-seccomp", "run"]


@pytest.mark.parametrize("image, named", [
    ("img:1", "localhost/img:1"), ("me/img", "localhost/me/img"), ("localhost/img", "localhost/img"),
    ("quay.io/me/img:2", "quay.io/me/img:2"), ("host:5000/img", "host:5000/img"),
])
def test_podman_names_images_built_here_localhost(image, named):
    assert Endpoint(engine="podman").image_ref(image) == named
    assert Endpoint().image_ref(image) == image


@pytest.mark.parametrize("keywords, message", [
    ({"engine": "rkt"}, "engine must be one of docker, podman"),
    ({"host": "box:2375"}, "host must be an engine address"),
    ({"host": "ssh://a", "context": "b"}, "not both"),
    ({"runtime": "runsc; rm -rf /"}, "runtime must be a name"),
    ({"context": ""}, "context must be a name"),
    ({"engine": "podman", "host": "ssh://a"}, "podman runs locally"),
])
def test_bad_endpoints_are_clear_errors(keywords, message):
    with pytest.raises(ValueError, match=message):
        Endpoint(**keywords)


@pytest.mark.parametrize("host, local", [
    ("unix:///var/run/docker.sock", True), ("ssh://me@box", False), ("tcp://127.0.0.1:2375", False),
])
def test_local_or_not_from_the_host(host, local):
    assert Endpoint(host=host).local is local


def test_local_or_not_from_the_environment_and_contexts(tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    assert Endpoint().local
    monkeypatch.setenv("DOCKER_HOST", "ssh://me@box")
    assert not Endpoint().local
    monkeypatch.delenv("DOCKER_HOST")
    meta = tmp_path / "contexts" / "meta" / "abc"
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps({"Name": "far", "Endpoints": {"docker": {"Host": "ssh://me@far"}}}))
    assert not Endpoint(context="far").local
    monkeypatch.setenv("DOCKER_CONTEXT", "far")
    assert not Endpoint().local
    monkeypatch.delenv("DOCKER_CONTEXT")
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "far"}))
    assert not Endpoint().local
    (tmp_path / "config.json").write_text(json.dumps({"currentContext": "default"}))
    assert Endpoint().local
    assert not Endpoint(context="unknown").local  # unreadable: stdin delivery, which works everywhere
