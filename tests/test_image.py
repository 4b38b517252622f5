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
def test_dockerfile_builds_from_the_seeds_base_with_a_user():
    assert image.DOCKERFILE.startswith("FROM python:3.11-slim\n")
    assert f"USER {image.USER_ID}:{image.USER_ID}" in image.DOCKERFILE


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
