"""The supervisor's preload, inside the container: a warm container imports the modules its Sandbox names (the
scientific stack, in a scientific image) before the program comes, so that the program's own imports cost nothing.

Runs as part of the supervisor's source (engine/shipping.py joins them). A module that cannot be imported is said
to the host, which refuses the container, rather than handing a program a container that lacks what was promised.
"""

import sys


def preload(names):
    """Import `names` now; on failure say why on stderr and end, before the container is ready."""
    for name in names:
        try:
            __import__(name)
        except BaseException as error:  # ImportError, or anything the module itself raised
            sys.stderr.write(f"safecode: cannot preload {name}: {type(error).__name__}: {error}\n"[:2000])
            sys.stderr.flush()
            raise SystemExit(1)
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:  # one small drawing loads the fonts and the renderer, as a program's first chart would
        try:
            import io

            figure = pyplot.figure()
            figure.text(0.5, 0.5, "warm")
            figure.savefig(io.BytesIO(), format="png")
            pyplot.close(figure)
        except Exception:
            pass
