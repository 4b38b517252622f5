"""Shared fixtures. Docker tests run against a real engine; they skip without one, except under CI=true."""

import collections
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

import pytest

import safecode
from safecode import Sandbox, engine, ensure_image
from safecode.engine.endpoint import Endpoint
from safecode.errors import SafecodeError
from safecode.engine.image import default_image
from safecode.engine.ending import TEARDOWN_TIMEOUT
from safecode.engine.leftovers import stray_gvisor_processes
from second_engine import SecondEngine


ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
# The folder safecode was imported from: the checkout, or site-packages when the installed copy is under test.
PACKAGE_PARENT = str(pathlib.Path(safecode.__file__).resolve().parent.parent)
if os.environ.get("SAFECODE_TEST_INSTALLED") == "1" and PACKAGE_PARENT == ROOT:
    raise RuntimeError(f"SAFECODE_TEST_INSTALLED=1, but safecode was imported from the checkout {ROOT}")


def caller_process(tmp_path, source, *args):
    """A separate Python process running `source` with the safecode under test, its standard streams piped."""
    script = tmp_path / "caller.py"
    script.write_text(source)
    return subprocess.Popen(
        [sys.executable, str(script), *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": PACKAGE_PARENT},
    )


def end_process(process):
    """Kill a process of the tests' if it still runs, and close its pipes."""
    process.kill()
    process.wait()
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def _engine_answers():
    try:
        return engine.docker("info", timeout=15).returncode == 0
    except SafecodeError:
        return False


def _unavailable(what, how):
    """Skip a test whose engine is not here; under CI=true, fail it: CI must test every engine for real."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what}, and under CI=true its tests must run")
    pytest.skip(f"{what} ({how})")


@pytest.fixture(scope="session")
def _docker_session():
    if not _engine_answers():
        _unavailable("no Docker Engine answers", "run scripts/ensure-docker, or start Docker")
    ensure_image()
    left = engine.ours()
    hint = "stop whatever runs safecode here (the demo?), or run 'python -m safecode cleanup'"
    assert not left, f"safecode containers were already running before the tests: {left}; {hint}"
    assert not code_folders(), f"code folders were already there before the tests: {code_folders()}; {hint}"
    yield
    POOLS.close()


def wait_for_no_containers(seconds=5.0, endpoint=engine.LOCAL, kept=frozenset):
    """Our containers (but those `kept()` names, asked each time: a pool may start one meanwhile) still on the
    engine after a removal that may still be in progress."""
    deadline = time.monotonic() + seconds
    while (left := unkept(engine.ours(endpoint), kept)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def folders_left(kept):
    """The code folders whose container no pool holds (each folder is named after its container)."""
    found = {"-".join(folder.name.split("-")[:2]): folder for folder in code_folders()}
    return [found[name] for name in unkept(list(found), kept)]


def unkept(names, kept):
    """`names` but those a pool holds: asked after listing them, so that one the pool started meanwhile is its."""
    held = kept()
    return [name for name in names if name not in held]


def wait_ready(sandbox, count=1, seconds=30):
    """Wait until `sandbox`'s pool has `count` ready containers."""
    deadline = time.monotonic() + seconds
    while sandbox.stats()["ready"] < count:
        assert time.monotonic() < deadline, f"the pool never had {count} ready containers"
        time.sleep(0.02)


def echoes_at_once(sandbox, count):
    """`count` programs through `sandbox` at once, each on a thread of its own, each printing its number and its
    stdin: what each printed, by number."""
    printed = {}

    def one(i):
        printed[i] = sandbox.execute(f"import sys; print({i}, sys.stdin.read())", stdin=f"in{i}").stdout

    threads = [threading.Thread(target=one, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return printed


def container_exists(container_id, endpoint=engine.LOCAL):
    """True while a container with this id (or id prefix, such as a program's hostname) exists."""
    return bool(engine.docker("ps", "--all", "--quiet", "--filter", f"id={container_id}",
                              endpoint=endpoint).stdout.strip())


def code_folders():
    """The code folders of our containers in the temp dir (each is named after its container)."""
    return sorted(pathlib.Path(tempfile.gettempdir()).glob("safecode-" + "[0-9a-f]" * 16 + "-*"))


def assert_nothing_left(endpoint=engine.LOCAL):
    kept = POOLS.idle_names  # the warm pools kept for the next test (on this engine or another): accounted for
    left = unkept(wait_for_no_containers(endpoint=endpoint, kept=kept), kept)
    if left:
        engine.remove(*left, attempts=1, endpoint=endpoint)
    assert not left, f"containers left behind on {endpoint.describe()}: {left}"
    if endpoint.runtime == "runsc":
        deadline = time.monotonic() + 5
        while (stray := stray_gvisor_processes(min_age=0)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not stray, f"gVisor processes left behind with no container: {stray}"
    deadline = time.monotonic() + TEARDOWN_TIMEOUT + 1  # teardowns off the caller's path may still be removing theirs
    while (folders := folders_left(kept)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not folders, f"code folders left behind: {folders}"


@pytest.fixture(scope="module")
def no_containers_after_module(_docker_session):
    """For a module whose server keeps a warm pool between tests: what must be gone is checked once it stopped."""
    yield
    assert_nothing_left()


@pytest.fixture
def docker(_docker_session):
    """Use in every test that touches Docker: afterwards, not one container or code folder of ours may remain."""
    yield
    assert_nothing_left()


@pytest.fixture(scope="session")
def web():
    """examples/web/server.py, loaded as a module (an example, not part of the package)."""
    import importlib.util

    path = os.path.join(os.path.dirname(__file__), "..", "examples", "web", "server.py")
    spec = importlib.util.spec_from_file_location("safecode_web_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class WarmPools:
    """Warm sandboxes kept from one test to the next, so that a warm run takes a container that is ready already,
    as in real use, instead of paying a pool's start and close in every test; each container runs up to REUSE of
    the tests' programs in turn (reuse), so every warm test is also a test that nothing crosses between programs. At most a few live at once; a test
    that does not run programs through `runs` or `wall_runs` starts with none (see `no_pools_unless_warm_runs`), and
    the per-test leak checks count the containers they hold (ready, or starting) as accounted for."""

    SIZE = 4
    REUSE = 50  # programs per kept container: the tests' own warm runs are one trust domain, and reuse them

    def __init__(self):
        self._pools = collections.OrderedDict()

    def get(self, options):
        key = repr(sorted(options.items()))
        if key in self._pools:
            self._pools.move_to_end(key)
        else:
            self._pools[key] = Sandbox(warm=1, reuse=self.REUSE, **options)
            while len(self._pools) > self.SIZE:
                self._pools.popitem(last=False)[1].close()
        return self._pools[key]

    def idle_names(self):
        """The containers that the pools hold, ready or starting."""
        return {name for sandbox in self._pools.values() for name in sandbox._pool.names}  # a test's look inside

    def close(self):
        while self._pools:
            self._pools.popitem()[1].close()


POOLS = WarmPools()
POOL_USERS = {"runs", "wall_runs", "open_session"}  # the fixtures that take warm containers from POOLS


@pytest.fixture(autouse=True)
def no_pools_unless_warm_runs(request):
    """Kept pools serve only tests that take warm containers through POOL_USERS, and not those marked
    `own_pools` (a test of temp dirs, say, whose pool must start and end within it)."""
    if not POOL_USERS & set(request.fixturenames) or request.node.get_closest_marker("own_pools"):
        POOLS.close()
    yield


class Runs:
    """Runs each program cold, through safecode.execute or stream, or warm, through a Sandbox(warm=1) whose pool
    has a ready container, checked to have run nothing cold: kept from test to test (POOLS), or the run's own for a
    test marked `own_pools`. Keywords of a run go to it; the rest make the sandbox."""

    PER_RUN = ("stdin", "files", "timeout")

    def __init__(self, kind, where=None, own_pools=False):
        self.kind = kind
        self.where = where or {}  # the keywords that pick the engine and runtime: see `wall`
        self.own_pools = own_pools
        self._streams = []

    def execute(self, code, **options):
        options = {**self.where, **options}
        if self.kind == "cold":
            return safecode.execute(textwrap.dedent(code), **options)
        sandbox, per_run = self._warm(options)
        before = sandbox.stats()
        try:
            return sandbox.execute(textwrap.dedent(code), **per_run)
        finally:
            self._done(sandbox, before)

    def stream(self, code, **options):
        options = {**self.where, **options}
        if self.kind == "cold":
            return safecode.stream(textwrap.dedent(code), **options)
        sandbox, per_run = self._warm(options)
        self._streams.append((sandbox, sandbox.stats()))
        return sandbox.stream(textwrap.dedent(code), **per_run)

    def session(self, **options):
        """A session: of its own sandbox (cold), or one that took a pooled container that was ready (warm); the
        keywords `idle` and `lifetime` go to the session, the rest make the sandbox. The caller closes it."""
        options = {**self.where, **options}
        if self.kind == "cold":
            return safecode.session(**options)
        per_session = {key: options.pop(key) for key in ("idle", "lifetime") if key in options}
        sandbox, _ = self._warm(options)
        before = sandbox.stats()["warm"]
        made = sandbox.session(**per_session)
        assert sandbox.stats()["warm"] == before + 1, "the session did not come from the pool"
        return made

    def close(self):
        for sandbox, before in self._streams:
            self._done(sandbox, before)

    def _warm(self, options):
        per_run = {key: options.pop(key) for key in self.PER_RUN if key in options}
        sandbox = Sandbox(warm=1, **options) if self.own_pools else POOLS.get(options)
        wait_ready(sandbox, seconds=60)
        return sandbox, per_run

    def _done(self, sandbox, before):
        stats = sandbox.stats()
        if self.own_pools:
            sandbox.close()
        assert stats["cold"] == before["cold"], f"a warm run ran cold: {stats}"


@pytest.fixture(params=["cold", "warm"])
def runs(request):
    """Each test that takes it runs twice: its programs cold, then warm (see Runs)."""
    made = Runs(request.param, own_pools=bool(request.node.get_closest_marker("own_pools")))
    yield made
    made.close()


# Walls: the same runner tests under each runtime and engine safecode supports ------------------------------

WALLS = ("runc", "runsc", "podman", "ssh")


@pytest.fixture(scope="session")
def runsc_wall(_docker_session):
    if "runsc" not in engine.runtimes():
        _unavailable("the Docker Engine has no runsc runtime", "run scripts/ensure-docker as root to register it")
    return {"runtime": "runsc"}


@pytest.fixture(scope="session")
def podman_wall(_docker_session):
    if not shutil.which("podman"):
        _unavailable("podman is not installed", "apt-get install podman catatonit")
    where = Endpoint(engine="podman")
    ensure_image(endpoint=where)
    assert not engine.ours(where), "safecode containers were already running in podman before the tests"
    return {"engine": "podman"}


@pytest.fixture(scope="session")
def second_engine(_docker_session):
    """A second Docker Engine, reached over ssh:// (second_engine.py); PATH reaches it for the whole session."""
    interfaces = sorted(os.listdir("/sys/class/net"))
    try:
        made = SecondEngine(default_image())
    except (RuntimeError, OSError, subprocess.CalledProcessError, SafecodeError) as error:
        _unavailable(f"no second engine could be started: {error}", "run as root with openssh-server installed")
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("PATH", made.env_path)
            yield made
    finally:
        made.close()
    assert sorted(os.listdir("/sys/class/net")) == interfaces, "the second engine changed the host's network"


@pytest.fixture(scope="session")
def ssh_wall(second_engine):
    return {"host": second_engine.host}


# The two ways code reaches /app: a local engine's read-only mount, a remote engine's stdin.
DELIVERIES = ("runc", "ssh")


def on_wall(request, name):
    """The keywords that send runs to the wall `name`; afterwards nothing of ours may be left there either."""
    where = request.getfixturevalue(f"{name}_wall") if name != "runc" else {}
    yield where
    assert_nothing_left(Endpoint(**where))


@pytest.fixture(params=WALLS)
def wall(request, docker):
    """The keywords that send a test's runs to one wall: runc (the engine's default), gVisor, podman, or a
    remote engine over ssh://. A test module may narrow the list by defining its own `wall` (e.g. DELIVERIES)."""
    yield from on_wall(request, request.param)


@pytest.fixture(params=["cold", "warm"])
def wall_runs(request, wall):
    """Runs (see `runs`) on each wall in turn."""
    made = Runs(request.param, wall, own_pools=bool(request.node.get_closest_marker("own_pools")))
    yield made
    made.close()
