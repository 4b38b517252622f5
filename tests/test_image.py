"""The sandbox image: what the offline build adds, and that the standard library is whole inside it."""

import io
import tarfile

import pytest

from safecode import engine, execute
from safecode.engine import image


@pytest.mark.pure
def test_add_user_appends_passwd_and_group(tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        info = tarfile.TarInfo("./usr/bin/python3")
        tar.addfile(info, io.BytesIO(b""))
    image._add_user(str(rootfs))
    with tarfile.open(rootfs) as tar:
        names = tar.getnames()
        passwd = tar.extractfile("./etc/passwd").read().decode()
    assert names == ["./usr/bin/python3", "./etc/passwd", "./etc/group"]
    assert f"sandbox:x:{image.USER_ID}:{image.USER_ID}:" in passwd


@pytest.mark.pure
def test_dockerfile_builds_from_the_seeds_base_with_a_user(monkeypatch):
    monkeypatch.delenv("SAFECODE_BASE_IMAGE", raising=False)
    text = image.dockerfile(image.base_image())
    assert text.startswith("FROM python:3.11-slim\n")
    assert f"USER {image.USER_ID}:{image.USER_ID}" in text


@pytest.mark.docker
@pytest.mark.usefixtures("docker")
def test_build_from_a_base_image_on_the_host(monkeypatch):
    """The registry branch, end to end, from a base that is already here (as after `docker load`)."""
    monkeypatch.setenv("SAFECODE_BASE_IMAGE", image.DEFAULT_IMAGE)  # any image with python3 will do
    name = "safecode-test-built:1"
    containers_before = engine.docker("ps", "--all", "--quiet").stdout.split()
    try:
        assert image.ensure_image(name, rebuild=True) == "built"
        assert engine.docker("ps", "--all", "--quiet").stdout.split() == containers_before  # no build leftovers
        result = execute("import os, pwd; print(pwd.getpwuid(10001).pw_name, os.getuid() >= 100000)", image=name)
        assert result.stdout == "sandbox True\n"
        user = engine.docker("image", "inspect", "--format", "{{.Config.User}}", name).stdout.strip()
        assert user == f"{image.USER_ID}:{image.USER_ID}"
    finally:
        engine.docker("rmi", "--force", name)


@pytest.mark.docker
@pytest.mark.usefixtures("docker")
def test_whole_standard_library_imports():
    result = execute(
        """
import importlib, sys
skip = {"tkinter", "turtle", "turtledemo", "idlelib", "antigravity", "this", "msilib"}  # Tk, Windows, jokes
missing = []
for name in sorted(sys.stdlib_module_names):
    if name in skip or name.startswith(("_", "msvcrt", "nt", "win", "_win")):
        continue
    try:
        importlib.import_module(name)
    except ImportError as error:
        if "Windows" not in str(error) and "windows" not in str(error):
            missing.append(f"{name}: {error}")
print(sys.version_info[:2], missing)
""",
        timeout=30,
        memory="256m",
    )
    assert result.stdout.strip() == "(3, 11) []", result.stdout + result.stderr


@pytest.mark.docker
@pytest.mark.usefixtures("docker")
def test_image_has_a_non_root_default_user():
    proc = engine.docker("image", "inspect", "--format", "{{.Config.User}}", image.default_image())
    assert proc.stdout.strip() == f"{image.USER_ID}:{image.USER_ID}"


# The variants ------------------------------------------------------------------------------------------------


@pytest.mark.pure
def test_variants_by_tag():
    assert image.variant("safecode-sandbox:3.13").suite == "trixie"
    assert image.variant("safecode-sandbox:3.11-scientific").scientific
    assert image.variant("my-own:latest") == image.VARIANTS["3.11"]
    assert image.is_scientific("safecode-sandbox:3.13-scientific") and not image.is_scientific("x:3.13-scientific")
    assert image.default_memory("safecode-sandbox:3.11-scientific") == "512m"
    assert image.default_memory("safecode-sandbox:3.13") == image.default_memory("mine:1") == "128m"


@pytest.mark.pure
def test_offline_builds_trixie_with_merged_usr_and_the_scientific_stack():
    argv = image.offline_argv(image.VARIANTS["3.13-scientific"], "/tmp/rootfs.tar")
    assert "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr" in argv and argv[-2:] == ["trixie", "/tmp/rootfs.tar"]
    assert "python3-pandas" in argv[2] and "python3-distutils" not in argv[2]
    assert not any("hook" in arg for arg in image.offline_argv(image.VARIANTS["3.11"], "r.tar"))


@pytest.mark.pure
def test_scientific_dockerfile_installs_with_pip():
    text = image.dockerfile("python:3.13-slim", image.VARIANTS["3.13-scientific"])
    assert text.startswith("FROM python:3.13-slim\n") and '"pip", "install"' in text and '"pandas"' in text


@pytest.mark.pure
def test_blas_and_lapack_folders_are_found_for_the_loader(tmp_path):
    rootfs = tmp_path / "rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        for name in ("./usr/lib/x86_64-linux-gnu/blas", "./usr/lib/x86_64-linux-gnu/lapack", "./usr/lib/python3"):
            info = tarfile.TarInfo(name)
            info.type = tarfile.DIRTYPE
            tar.addfile(info)
    assert image._add_user(str(rootfs)) == ["/usr/lib/x86_64-linux-gnu/blas", "/usr/lib/x86_64-linux-gnu/lapack"]


PROBE = """
import sys
print(sys.version_info[:2])
import numpy, pandas, matplotlib, PIL
print(numpy.linalg.inv(numpy.eye(3)).sum(), pandas.DataFrame({"a": [1, 2]}).a.sum())
"""


@pytest.mark.docker
@pytest.mark.usefixtures("docker")
@pytest.mark.parametrize("name, version", [("3.13", "(3, 13)"), ("3.11-scientific", "(3, 11)"),
                                           ("3.13-scientific", "(3, 13)")])
def test_each_variant_builds_and_runs_its_python(name, version):
    full = f"{image.REPOSITORY}:{name}"
    assert image.ensure_image(full) in ("present", "built", "built offline")
    result = execute(PROBE, image=full, memory=image.SCIENTIFIC_MEMORY, scratch="16m", timeout=60)
    lines = result.stdout.splitlines()
    assert lines[0] == version
    if name.endswith("scientific"):
        assert lines[1] == "3.0 3", result.stderr  # numpy finds its BLAS and LAPACK
    else:
        assert "No module named 'numpy'" in result.stderr
