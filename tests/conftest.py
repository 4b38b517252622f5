"""Shared fixtures. Docker tests run against a real engine; they skip without one, except under CI=true."""

import os
import time

import pytest

from safecode import engine, ensure_image
from safecode.errors import SafecodeError


def _engine_answers():
    try:
        return engine.docker("info", timeout=15).returncode == 0
    except SafecodeError:
        return False


@pytest.fixture(scope="session")
def _docker_session():
    if not _engine_answers():
        if os.environ.get("CI") == "true":
            pytest.fail("no Docker Engine answers, and under CI=true the Docker tests must run")
        pytest.skip("no Docker Engine answers (run scripts/ensure-docker, or start Docker)")
    ensure_image()
    left = engine.ours()
    assert not left, f"safecode containers were already running before the tests: {left}"


def wait_for_no_containers(seconds=5.0):
    """Our containers still on the host after a removal that may still be in progress."""
    deadline = time.monotonic() + seconds
    while (left := engine.ours()) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


@pytest.fixture
def docker(_docker_session):
    """Use in every test that touches Docker: afterwards, not one container of ours may remain."""
    yield
    left = wait_for_no_containers()
    if left:
        engine.remove(*left, attempts=1)
    assert not left, f"containers left behind: {left}"


@pytest.fixture(scope="session")
def web():
    """examples/web/server.py, loaded as a module (an example, not part of the package)."""
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "examples", "web", "server.py")
    spec = importlib.util.spec_from_file_location("safecode_web_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
