"""The docker run argument list, read without Docker."""

import pytest

from safecode import Limits, build_args

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


def test_program_is_not_pid_1():
    assert "--init" in args()


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
    assert "--privileged" not in argv and "--tmpfs" not in argv
    mounts = [value for flag, value in pairs(argv) if flag in ("-v", "--volume", "--mount")]
    assert mounts == ["/tmp/code:/app:ro"]
