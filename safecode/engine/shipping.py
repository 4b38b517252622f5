"""What the host ships into every container from safecode/inside/: the supervisor, and a session's kernel.

The container's command line carries only bootstrap.py, a few lines, so `ps` on the host stays readable; the
supervisor's source follows on the container's stdin, ahead of anything else. That source is files.py, preload.py,
between.py, program.py and supervisor.py joined in one namespace, with the modules the program may import from it
(display machinery and the plot backend) as text in MODULES ahead of them. Nothing under inside/ is imported here: it is read as text, and runs only there.
"""

import pathlib
from typing import List, Sequence

INSIDE = pathlib.Path(__file__).resolve().parent.parent / "inside"


def _text(name: str) -> str:
    return (INSIDE / name).read_text(encoding="utf-8")


BOOTSTRAP = _text("bootstrap.py")
MODULES = {"safecode_display": _text("display.py"), "safecode_plots": _text("plots.py")}
SUPERVISOR = (f"MODULES = {MODULES!r}\n" + "\n".join(_text(name) for name in (
    "files.py", "preload.py", "between.py", "program.py", "supervisor.py"))).encode("utf-8")
KERNEL = _text("kernel.py").encode("utf-8")


def supervisor_command(token: str, out_bytes: int, preload: Sequence[str], sent_files: bool) -> List[str]:
    """The container's command: the bootstrap, which then reads SUPERVISOR (to be sent first on stdin)."""
    return ["python3", "-c", BOOTSTRAP, str(len(SUPERVISOR)), token, str(out_bytes), ",".join(preload),
            str(int(sent_files))]
