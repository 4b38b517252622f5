"""`make bench`, past the runner itself: sessions, walls and system-call profiles, the scientific image, displays,
the MCP server, and images with packages. Each function returns samples, interleaved so that a noisy machine slows
every contender alike."""

import json
import os
import subprocess
import sys
import time

from bench_common import refilled, runner, timed
from safecode import Sandbox, engine
from safecode.engine import image
from safecode.engine.endpoint import Endpoint
from safecode.errors import SafecodeError

SCIENTIFIC = f"{image.REPOSITORY}:3.13-scientific"
CHART = """
import pandas as pd
import matplotlib.pyplot as plt
df = pd.DataFrame({"x": range(50), "y": [i * i for i in range(50)]})
df.plot(x="x", y="y")
plt.savefig("out/chart.png")
"""


def scientific(samples):
    """A DataFrame and one chart, warm and cold, interleaved: medians in seconds."""
    limits = dict(image=SCIENTIFIC, memory=image.SCIENTIFIC_MEMORY, scratch="32m", timeout=60)
    cold, warm = Sandbox(**limits), Sandbox(warm=1, **limits)
    times = {"warm": [], "cold": []}
    try:
        for _ in range(samples):
            for name, box in (("warm", warm), ("cold", cold)):
                refilled(warm, wait=60)
                result = box.execute(CHART)
                assert result.ok and "chart.png" in result.files, result
                times[name].append(result.duration)
    finally:
        warm.close()
    return times, warm.stats()


def cells(samples):
    """A trivial cell in a live session beside a warm execute, interleaved: latencies in seconds."""
    times = {"session cell": [], "warm execute": []}
    with Sandbox(warm=1) as box, box.session() as live:
        for _ in range(samples):
            refilled(box)
            times["warm execute"].append(timed(lambda: box.execute("x = 1")))
            times["session cell"].append(timed(lambda: live.execute("x = 1")))
    return times


def walls(samples):
    """Each wall cold and warm (a pool of 1, refilled before each), interleaved: latencies in seconds by name.

    runc and gVisor on the local engine, podman, and a second engine over ssh:// (tests/second_engine.py; needs
    root), its cold runs with and without SSH connection reuse. A wall that is not here is left out, and said so.
    """
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests"))
    from second_engine import SecondEngine

    found, missing, remote = {"runc": {}}, [], None
    if "runsc" in engine.runtimes():
        found["gVisor (runsc)"] = {"runtime": "runsc"}
    else:
        missing.append("gVisor: the engine has no runsc (scripts/ensure-docker registers it)")
    try:
        image.ensure_image(endpoint=Endpoint(engine="podman"))
        found["podman"] = {"engine": "podman"}
    except SafecodeError as error:
        missing.append(f"podman: {error}")
    try:
        remote = SecondEngine(image.default_image())
        found["ssh://"] = {"host": remote.host}
    except (RuntimeError, OSError, subprocess.CalledProcessError, SafecodeError) as error:
        missing.append(f"ssh://: {error}")
    times = {}
    path = os.environ["PATH"]
    try:
        if remote:
            os.environ["PATH"] = remote.env_path
        boxes = {name: (Sandbox(**where), Sandbox(warm=1, **where)) for name, where in found.items()}
        try:
            for _ in range(samples):
                for name, (cold, warm) in boxes.items():
                    refilled(warm, wait=60)
                    times.setdefault(f"{name} warm", []).append(timed(runner(warm)))
                    times.setdefault(f"{name} cold", []).append(timed(runner(cold)))
                    if name == "ssh://":
                        os.environ["PATH"] = remote.env_path_no_reuse
                        times.setdefault("ssh:// cold, no reuse", []).append(timed(runner(cold)))
                        os.environ["PATH"] = remote.env_path
        finally:
            for _, warm in boxes.values():
                warm.close()
    finally:
        os.environ["PATH"] = path
        if remote:
            remote.close()
    return times, missing


def profiles(samples):
    """print(2+2) cold and warm under safecode's seccomp profile and under the engine's default, interleaved."""
    boxes = {name: (Sandbox(seccomp=choice), Sandbox(warm=1, seccomp=choice))
             for name, choice in (("safecode's profile", None), ("engine default", "engine"))}
    times = {}
    try:
        for _ in range(samples):
            for name, (cold, warm) in boxes.items():
                refilled(warm)
                times.setdefault(f"{name} warm", []).append(timed(runner(warm)))
                times.setdefault(f"{name} cold", []).append(timed(runner(cold)))
    finally:
        for _, warm in boxes.values():
            warm.close()
    return times


def dataframe_cells(samples):
    """A warm scientific session cell ending in df.head(), an HTML display, beside one that shows nothing."""
    times = {"df.head() not shown": [], "df.head() shown": []}
    with Sandbox(warm=1, image=SCIENTIFIC, memory=image.SCIENTIFIC_MEMORY, timeout=60) as box:
        refilled(box, wait=60)
        with box.session() as live:
            live.execute("import pandas as pd\ndf = pd.DataFrame({'x': range(100), 'y': range(100)})\ndf.head()")
            for _ in range(samples):
                times["df.head() not shown"].append(timed(lambda: live.execute("_ = df.head()")))
                times["df.head() shown"].append(timed(lambda: live.execute("df.head()")))
    return times


def mcp_calls(samples):
    """print(1) through `python -m safecode mcp` over stdio, warm, beside a warm Sandbox.execute, interleaved."""
    root = os.path.join(os.path.dirname(__file__), "..")
    server = subprocess.Popen([sys.executable, "-m", "safecode", "mcp", "--warm", "1", "--max-runs", "1"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              env={**os.environ, "PYTHONPATH": root})
    ids = iter(range(1, 10**9))

    def request(method, params):
        server.stdin.write(json.dumps({"jsonrpc": "2.0", "id": next(ids), "method": method, "params": params})
                           .encode() + b"\n")
        server.stdin.flush()
        return json.loads(server.stdout.readline())

    def call():
        answer = request("tools/call", {"name": "run_python", "arguments": {"code": "print(1)"}})
        assert answer["result"]["structuredContent"]["stdout"] == "1\n", answer

    times = {"Sandbox.execute warm": [], "MCP run_python warm": []}
    try:
        request("initialize", {"protocolVersion": "2025-11-25", "capabilities": {},
                               "clientInfo": {"name": "bench", "version": "1"}})
        with Sandbox(warm=1) as box:
            call()
            for _ in range(samples):
                refilled(box)
                time.sleep(0.5)  # the server's own pool refills too
                times["Sandbox.execute warm"].append(timed(lambda: box.execute("print(1)")))
                time.sleep(0.5)
                times["MCP run_python warm"].append(timed(call))
    finally:
        server.stdin.close()
        server.wait(30)
    return times


def package_images(samples):
    """sympy: its image's first build and a cached one, then `import sympy` warm-preloaded beside cold."""
    from safecode import build_image

    started = time.perf_counter()
    name = build_image(["sympy"], rebuild=True)
    first = time.perf_counter() - started
    started = time.perf_counter()
    build_image(["sympy"])
    cached = time.perf_counter() - started
    code = "import sympy\nprint(sympy.__version__)"
    times = {"import sympy cold": [], "import sympy warm, preloaded": []}
    try:
        cold = Sandbox(image=name, timeout=60)
        with Sandbox(image=name, timeout=60, warm=1, preload=["sympy"]) as warm:
            for _ in range(samples):
                refilled(warm, wait=60)
                times["import sympy warm, preloaded"].append(timed(lambda: warm.execute(code)))
                times["import sympy cold"].append(timed(lambda: cold.execute(code)))
    finally:
        engine.docker("rmi", "--force", name)
    return first, cached, times
