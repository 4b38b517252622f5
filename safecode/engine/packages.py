"""Sandbox images with the PyPI packages one asks for, built without running any package's code anywhere.

pip on the host resolves and fetches binary wheels only (`--only-binary :all:`), for the base image's own Python,
ABI and platform, which a probe run in the base (a sandbox like any other) reports. The wheels are unpacked here
(a wheel is a zip file: no setup.py, no build backend, no install script) into a folder that becomes one layer over
the base, in the base's first site-packages folder, so that it comes before the base's own packages. The build runs
`docker build --network none` with a single COPY step, so a failed build leaves no image behind. Packages the base
already has are kept (pinned to its versions while pip resolves), unless the request names another version.

Before it is returned, the image is checked: every module it adds, and the base's preload list, must import in a
sandbox of it (verify.py); if pip had to replace a package of the base to satisfy the request, an image whose base
packages no longer import is refused, saying so.

An image is named after the base image's id and the request, so the same request on the same base is found again
without pip touching the network; its labels keep the resolved versions, which `image --list` and doctor show.
"""

import configparser
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
import zipfile
from typing import Callable, Dict, Iterable, List, Optional

from . import cli
from .args import build_args
from .container import UID_BASE
from .endpoint import Endpoint
from .image import IMAGES, SCIENTIFIC_PIP, default_image, replacing, scientific_preload, variant
from .verify import check_imports, top_level_modules
from ..errors import DockerError, SafecodeError
from ..limits import Limits

REPOSITORY = "safecode-packages"
LABEL = "safecode.packages"  # the resolved set, as JSON: ["name==version", ...]
PIP_TIMEOUT = 900  # seconds pip may take to resolve and fetch
SCRIPTS = "/usr/local/bin"  # where the packages' commands go, on the sandbox's PATH
LAYOUT = 2  # what an image of packages holds (2: their commands too): an image of another layout is built anew
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
# Run in the base image: its Python's version and ABI, its C library, its first site folder, its distributions.
PROBE = """
import importlib.metadata as m, json, platform, site, sys, sysconfig
print(json.dumps({
    "python": "%d.%d" % sys.version_info[:2], "abi": sys.implementation.cache_tag.replace("cpython-", "cp"),
    "machine": platform.machine(), "libc": platform.libc_ver(), "site": site.getsitepackages()[0],
    "installed": {d.metadata["Name"]: d.version for d in m.distributions() if d.metadata["Name"]},
}))
"""


def build_image(packages: Iterable[str] = (), *, requirements: Optional[str] = None, base: Optional[str] = None,
                name: Optional[str] = None, rebuild: bool = False, find_links: Optional[str] = None,
                index: bool = True, engine: str = "docker", host: Optional[str] = None,
                context: Optional[str] = None, log: Callable[[str], None] = lambda line: None) -> str:
    """Make an image of `base` (default: the default image) with `packages` and the lines of the `requirements`
    file; return its name, ready for execute(..., image=...). `find_links` is a folder of wheels for pip, and
    `index=False` keeps pip off every package index; `engine`, `host` and `context` say where, as for Sandbox.
    SafecodeError, with pip's reason, when a package, a version or a wheel for the base's Python and platform
    cannot be had, or the set cannot be resolved."""
    endpoint = Endpoint(engine=engine, host=host, context=context)
    if isinstance(packages, str):
        raise TypeError("packages must be a list of requirements, such as ['sympy==1.13', 'seaborn']")
    request = [str(package).strip() for package in packages if str(package).strip()]
    if requirements is not None:
        try:
            with open(requirements, encoding="utf-8") as file:
                request += [line.split("#", 1)[0].strip() for line in file if line.split("#", 1)[0].strip()]
        except OSError as error:
            raise SafecodeError(f"cannot read the requirements file {requirements}: {error}") from None
    if not request:
        raise ValueError("name at least one package, or a requirements file")
    base = base or default_image()
    base_id = cli.image_id(base, endpoint)
    if not base_id:
        raise SafecodeError(f"the base image {base!r} is not on {endpoint.describe()}: build it with "
                            f"'python -m safecode image --image {base}'")
    key = hashlib.sha256(json.dumps([LAYOUT, base_id, sorted(request), find_links, index]).encode())
    name = name or f"{REPOSITORY}:{key.hexdigest()[:16]}"
    if not rebuild and (cli.image_labels(name, endpoint) or {}).get("safecode.request") == key.hexdigest():
        return name
    info = probe(base, endpoint)
    with tempfile.TemporaryDirectory(prefix="safecode-packages-") as work:
        wheels = fetch(request, info, os.path.join(work, "wheels"), find_links, index, log)
        installed = unpack(wheels, info, os.path.join(work, "context", "site"))
        console_scripts(os.path.join(work, "context", "site"), os.path.join(work, "context", "bin"))
        with open(os.path.join(work, "context", "Dockerfile"), "w") as file:
            file.write(f"FROM {endpoint.image_ref(base)}\nCOPY site {info['site']}\nCOPY bin {SCRIPTS}\n")
        log(f"building {name} on {base} with {', '.join(installed) or 'nothing new'}")
        with replacing(name, endpoint):
            built = cli.docker(
                "build", "--network", "none", "--force-rm", "--tag", endpoint.image_ref(name),
                "--label", f"{LABEL}={json.dumps(installed)}", "--label", f"safecode.base={base}",
                "--label", f"safecode.request={key.hexdigest()}", os.path.join(work, "context"),
                timeout=PIP_TIMEOUT, endpoint=endpoint,
            )
        if built.returncode:
            raise DockerError(built.returncode, built.stderr, ["docker", "build"])
        try:
            base_versions = {_normal(dist): version for dist, version in info["installed"].items()}
            replaced = [package for package in installed if _normal(package.split("==")[0]) in base_versions]
            check_imports(name, top_level_modules(os.path.join(work, "context", "site")), scientific_preload(base),
                          endpoint, replaced)
        except BaseException:
            cli.docker("rmi", "--force", endpoint.image_ref(name), endpoint=endpoint)
            raise
    return name


def probe(base, endpoint):
    """What the base image's Python is: asked in a container of it, with every wall a sandbox has."""
    name = f"safecode-{uuid.uuid4().hex[:16]}"
    try:
        with tempfile.TemporaryDirectory(prefix="safecode-packages-") as app:
            os.chmod(app, 0o755)
            argv = build_args(app if endpoint.local else None, name=name, uid=UID_BASE, image=base,
                              limits=Limits(timeout=60, memory="256m"), command=["python3", "-c", PROBE],
                              endpoint=endpoint)
            proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        info = json.loads(proc.stdout)
        info["glibc"] = tuple(int(part) for part in info["libc"][1].split(".")[:2])
    except subprocess.TimeoutExpired:
        cli.remove(name, endpoint=endpoint)
        raise SafecodeError(f"{base!r} did not answer in 120 s") from None
    except (ValueError, KeyError, TypeError, IndexError):
        raise SafecodeError(f"{base!r} is not an image safecode can build on: its Python did not answer "
                            f"({proc.stderr.strip()[-300:] or 'no output'})") from None
    if info["libc"][0] != "glibc":
        raise SafecodeError(f"{base!r} has no GNU C library: manylinux wheels cannot run in it")
    return info


def platforms(info) -> List[str]:
    """The wheel platform tags the base can run: manylinux for its glibc and every older one, newest first."""
    machine, (major, minor) = info["machine"], info["glibc"]
    tags = [f"manylinux_{major}_{older}_{machine}" for older in range(minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    return tags + [f"{alias}_{machine}" for at, alias in legacy.items() if minor >= at]


def fetch(request, info, folder, find_links, index, log) -> List[str]:
    """Binary wheels for `request` and what it needs, for the base's Python and platform; base packages kept."""
    base = {_normal(dist): version.split("+", 1)[0] for dist, version in info["installed"].items()}
    pinned = {dist: version for dist, version in base.items() if not _pins(request, dist)}
    stubs = os.path.join(os.path.dirname(folder), "base")
    _stubs(info["installed"], stubs)
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-input",
            "--only-binary", ":all:", "--python-version", info["python"], "--implementation", "cp",
            "--abi", info["abi"], "--dest", folder, "--retries", "1", "--timeout", "15", "--find-links", stubs]
    for tag in platforms(info):
        argv += ["--platform", tag]
    if find_links:
        argv += ["--find-links", find_links]
    if not index:
        argv.append("--no-index")
    constraints = os.path.join(os.path.dirname(folder), "constraints.txt")
    with open(constraints, "w") as file:
        file.writelines(f"{dist}=={version}\n" for dist, version in sorted(pinned.items()))
    log(f"pip: {' '.join(request)} for Python {info['python']} ({info['abi']}, {info['machine']})")
    proc = _pip(argv + ["--constraint", constraints, *request])
    if proc.returncode and pinned:  # the base's versions are in the way: let pip choose, and shadow them
        shutil.rmtree(folder, ignore_errors=True)  # nothing of the first try is kept
        proc = _pip(argv + list(request))
    if proc.returncode:
        raise SafecodeError(f"pip could not get {' '.join(request)} as binary wheels for Python {info['python']} "
                            f"({info['abi']}, {info['machine']}): {_reason(proc.stdout + proc.stderr)}")
    return [os.path.join(folder, wheel) for wheel in sorted(os.listdir(folder)) if wheel.endswith(".whl")
            and base.get(_normal(wheel.split("-", 1)[0])) != wheel.split("-")[1]]  # what the base has stays


def _stubs(installed, folder):
    """An empty wheel for each distribution the base has, so that pip, which cannot see into the base, finds them
    there: a dependency on one of them is met without fetching it (and its stub is then dropped)."""
    os.makedirs(folder)
    for dist, version in installed.items():
        version = version.split("+", 1)[0]
        if not _NAME.fullmatch(dist) or not re.fullmatch(r"[0-9][0-9a-zA-Z.]*", version):
            continue
        stem = f"{re.sub(r'[-_.]+', '_', dist)}-{version}"
        with zipfile.ZipFile(os.path.join(folder, f"{stem}-py3-none-any.whl"), "w") as wheel:
            wheel.writestr(f"{stem}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
            wheel.writestr(f"{stem}.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: safecode\nRoot-Is-Purelib: true\n"
                                                       "Tag: py3-none-any\n")
            wheel.writestr(f"{stem}.dist-info/RECORD", "")


def _pip(argv):
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=PIP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise SafecodeError(f"pip did not finish in {PIP_TIMEOUT} s") from None


def unpack(wheels, info, site) -> List[str]:
    """Unpack each wheel into `site` as an installer would, without running anything; return name==version of each.
    A member whose path is absolute or climbs out is refused; scripts, headers and data files are left out (the
    commands a distribution declares are written by console_scripts)."""
    installed = []
    for wheel in wheels:
        parts = os.path.basename(wheel).split("-")
        installed.append(f"{parts[0]}=={parts[1]}")
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.infolist():
                path = member.filename
                head, _, rest = path.partition("/")
                if head.endswith(".data"):  # <name>.data/<kind>/...: only the modules are installed
                    kind, _, path = rest.partition("/")
                    if kind not in ("purelib", "platlib") or not path:
                        continue
                if path.startswith("/") or ".." in path.split("/") or "\\" in path:
                    raise SafecodeError(f"{os.path.basename(wheel)} has a file outside its folder: {member.filename!r}")
                target = os.path.join(site, path)
                if member.is_dir():
                    os.makedirs(target, mode=0o755, exist_ok=True)
                    continue
                os.makedirs(os.path.dirname(target), mode=0o755, exist_ok=True)
                with archive.open(member) as source, open(target, "wb") as out:
                    out.write(source.read())
                os.chmod(target, 0o644)
    for folder, _, _ in os.walk(site):
        os.chmod(folder, 0o755)
    return installed


def console_scripts(site, folder):
    """The commands the distributions declare (entry_points.txt, [console_scripts]), written as pip writes them:
    `pylint` runs pylint.run_pylint(). Nothing of the package runs to make them."""
    os.makedirs(folder, mode=0o755)
    for entry in sorted(os.listdir(site)):
        points = os.path.join(site, entry, "entry_points.txt")
        if not entry.endswith(".dist-info") or not os.path.exists(points):
            continue
        parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
        parser.optionxform = str  # type: ignore[assignment,method-assign]  # names as written
        parser.read(points, encoding="utf-8")
        for command, target in (parser.items("console_scripts") if parser.has_section("console_scripts") else []):
            module, _, call = target.partition(":")
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", command) or not all(
                    part.isidentifier() for part in (module.strip().split(".") + call.strip().split("."))):
                continue
            path = os.path.join(folder, command)
            name, call = call.strip().split(".")[0], call.strip()
            with open(path, "w", encoding="utf-8") as script:
                script.write(f"#!/usr/bin/python3\nimport sys\nfrom {module.strip()} import {name}\nsys.exit({call}())\n")
            os.chmod(path, 0o755)


def list_images(endpoint: Endpoint = cli.LOCAL) -> Dict[str, List[str]]:
    """Every safecode image on the engine: its own (with their packages) and those built with packages."""
    found = {name: list(SCIENTIFIC_PIP if variant(name).scientific else ())
             for name in IMAGES if cli.image_exists(name, endpoint)}
    proc = cli.docker("images", "--filter", f"label={LABEL}", "--format", "{{.Repository}}:{{.Tag}}",
                      endpoint=endpoint)
    for name in proc.stdout.split():
        if not name.endswith(":<none>"):
            found[name.split("/", 1)[1] if name.startswith("localhost/") else name] = packages_of(name, endpoint)
    return found


def packages_of(image, endpoint: Endpoint = cli.LOCAL) -> List[str]:
    """The packages an image was built with (its label), or [] for an image built without."""
    try:
        return json.loads((cli.image_labels(image, endpoint) or {}).get(LABEL, "[]"))
    except ValueError:
        return []


def _normal(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(request, dist):
    """Whether the request names `dist` with a version of its own."""
    return any(_NAME.match(line) and _normal(_NAME.match(line).group(1)) == _normal(dist)
               and line[_NAME.match(line).end():].strip() for line in request)


def _reason(output):
    """pip's own words on why, in one line."""
    lines = [line.strip() for line in output.splitlines() if line.strip().startswith("ERROR")]
    line = lines[-1] if lines else (output.strip().splitlines() or ["no reason given"])[-1]
    return line[len("ERROR: "):] if line.startswith("ERROR: ") else line
