"""The package's layout is its design: code inside the container apart, layers that import only what is below them."""

import ast
import importlib.util
import pathlib
import sys
import sysconfig

import pytest

import safecode
from safecode.engine.shipping import MODULES

pytestmark = pytest.mark.pure

PACKAGE = pathlib.Path(safecode.__file__).resolve().parent
# Each layer may import only from the layers before it (and from its own package). inside/ imports nothing of ours.
LAYERS = ("", "engine", "reader", "faces")
MAX_MODULE_LINES, MAX_CLASS_LINES = 300, 160


def modules():
    return sorted(PACKAGE.rglob("*.py"))


def layer(path):
    """The layer a module belongs to: "" for the shared values at the top, else its subpackage's name."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ""


def imports(path):
    """(absolute module name, line) of every import that runs: not those under `if TYPE_CHECKING:`."""
    package = ["safecode", *path.relative_to(PACKAGE).parts[:-1]]
    found = []

    def visit(node):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            return
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(part for part in (base, node.module or "") if part)
            if node.module is None:  # from . import x: x is a module of that package, or a name in it
                found.extend((f"{module}.{alias.name}", node.lineno) for alias in node.names)
            else:
                found.append((module, node.lineno))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def is_standard_library(name):
    top = name.split(".")[0]
    if top in sys.builtin_module_names:
        return True
    spec = importlib.util.find_spec(top)
    if spec is None or spec.origin is None:
        return False
    stdlib = pathlib.Path(sysconfig.get_paths()["stdlib"]).resolve()
    origin = pathlib.Path(spec.origin).resolve() if spec.origin not in ("built-in", "frozen") else stdlib
    return origin == stdlib or stdlib in origin.parents and "site-packages" not in origin.parts


def test_code_inside_the_container_imports_nothing_of_safecode_and_only_the_standard_library():
    inside = [path for path in modules() if layer(path) == "inside"]
    assert {path.name for path in inside} >= {"bootstrap.py", "supervisor.py", "files.py", "kernel.py"}
    for path in inside:
        for name, line in imports(path):
            if path.name == "plots.py" and name.startswith("matplotlib") or name in MODULES:
                continue  # matplotlib's backend (only matplotlib loads it); the modules shipped beside it
            assert name.split(".")[0] != "safecode", f"{path.name}:{line} imports {name}"
            assert is_standard_library(name), f"{path.name}:{line} imports {name}, outside the standard library"


def test_the_host_never_imports_code_meant_for_the_container():
    for path in modules():
        if layer(path) != "inside":
            for name, line in imports(path):
                assert not name.startswith("safecode.inside"), f"{path}:{line} imports {name}"


def test_each_layer_imports_only_the_layers_below_it():
    for path in modules():
        here = layer(path)
        if here == "inside" or path.parent == PACKAGE and path.name in ("__init__.py", "__main__.py"):
            continue  # the package's front door names what the faces offer
        for name, line in imports(path):
            if not name.startswith("safecode.") or name.startswith("safecode.inside"):
                continue
            parts = name.split(".")[1:]
            target = parts[0] if parts[0] in LAYERS and len(parts) > 1 or (PACKAGE / parts[0]).is_dir() else ""
            assert LAYERS.index(target) <= LAYERS.index(here), f"{path.relative_to(PACKAGE)}:{line} reaches up: {name}"


def test_no_import_cycles():
    def key(path):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        return ".".join(("safecode",) + (parts[:-1] if parts[-1] == "__init__" else parts))

    graph = {key(path): set() for path in modules()}
    for path in modules():
        for name, _ in imports(path):
            while name and name not in graph:  # `from .x import y` names y, which may be a name in module x
                name = name.rpartition(".")[0]
            if name and name != key(path):
                graph[key(path)].add(name)
    # A package's __init__ imports its own modules; those may still import names from it. Cycles only between the rest.
    state = {}

    def walk(node, trail):
        state[node] = "open"
        for target in graph[node]:
            if target in ("safecode", *(f"safecode.{name}" for name in LAYERS if name)) and target in node:
                continue
            if state.get(target) == "open":
                raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(target):] + [target]))
            if target not in state:
                walk(target, trail + [target])
        state[node] = "done"

    for node in graph:
        if node not in state:
            walk(node, [node])


def test_modules_and_classes_stay_small():
    for path in modules():
        source = path.read_text(encoding="utf-8")
        assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{path.relative_to(PACKAGE)} is over {MAX_MODULE_LINES} lines"
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef):
                size = node.end_lineno - node.lineno + 1
                assert size <= MAX_CLASS_LINES, f"{path.relative_to(PACKAGE)}: class {node.name} is {size} lines"


def test_the_command_line_shows_a_short_bootstrap_and_the_supervisor_comes_on_stdin():
    from safecode.engine.shipping import BOOTSTRAP, SUPERVISOR, supervisor_command

    command = supervisor_command("token", 0, ("numpy", "pandas"), False)
    assert command[:3] == ["python3", "-c", BOOTSTRAP] and len(BOOTSTRAP) < 500 and BOOTSTRAP.count("\n") <= 10
    assert command[3] == str(len(SUPERVISOR)) and command[6] == "numpy,pandas"
    compile(SUPERVISOR, "<supervisor>", "exec")  # one source, in one namespace
    assert b"def send_files" in SUPERVISOR and b"def preload" in SUPERVISOR and b"safecode_plots" in SUPERVISOR
