"""The sandbox image: what the offline build adds, and that the standard library is whole inside it."""

import io
import tarfile

import pytest

from safecode import execute
from safecode import image


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
    containers_before = image.engine.docker("ps", "--all", "--quiet").stdout.split()
    try:
        assert image.ensure_image(name, rebuild=True) == "built"
        assert image.engine.docker("ps", "--all", "--quiet").stdout.split() == containers_before  # no build leftovers
        result = execute("import os, pwd; print(pwd.getpwuid(10001).pw_name, os.getuid() >= 100000)", image=name)
        assert result.stdout == "sandbox True\n"
        user = image.engine.docker("image", "inspect", "--format", "{{.Config.User}}", name).stdout.strip()
        assert user == f"{image.USER_ID}:{image.USER_ID}"
    finally:
        image.engine.docker("rmi", "--force", name)


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
    proc = image.engine.docker("image", "inspect", "--format", "{{.Config.User}}", image.default_image())
    assert proc.stdout.strip() == f"{image.USER_ID}:{image.USER_ID}"
