"""safecode ships py.typed: its annotations must hold up under a type checker, as a user's mypy will read them."""

import subprocess
import sys

import pytest


def test_mypy_accepts_the_package_and_a_typical_caller(tmp_path):
    pytest.importorskip("mypy", reason="make test installs mypy into its virtualenv")
    caller = tmp_path / "caller.py"
    caller.write_text(
        "import asyncio\n"
        "from safecode import AsyncSandbox, Output, Result, Sandbox, execute, stream\n"
        "result: Result = execute('print(1)', timeout=2.5)\n"
        "code: 'int | None' = result.exit_code\n"
        "for item in stream('print(1)'):\n"
        "    if isinstance(item, Output):\n"
        "        text: str = item.text\n"
        "async def main() -> Result:\n"
        "    async with AsyncSandbox(warm=1) as sandbox:\n"
        "        return await sandbox.execute('print(1)')\n"
        "with Sandbox(warm=2) as sandbox:\n"
        "    ok: bool = sandbox.execute('print(1)').ok\n"
        "far = Sandbox(runtime='runsc', host='ssh://me@box', warm=1)\n"
        "near = Sandbox(engine='podman', context=None)\n"
    )
    for target in (["-p", "safecode"], [str(caller)]):
        proc = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", *target],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0, proc.stdout + proc.stderr
