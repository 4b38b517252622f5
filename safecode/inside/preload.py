"""The supervisor's preload, inside the container: in a warm container of a scientific image, the scientific stack
is imported before the program comes, so that the program's own imports of it cost nothing.

Runs as part of the supervisor's source (engine/shipping.py joins them).
"""

import sys

PRELOADED = ("numpy", "pandas", "pandas.plotting._matplotlib", "matplotlib.pyplot")


def preload():
    """Import the scientific stack now, in a warm container, so that the program finds it imported and warm."""
    for name in PRELOADED:
        try:
            __import__(name)
        except Exception:  # not in this image, or broken: the program will see that for itself
            return
    try:  # one small drawing loads the fonts and the renderer, as a program's first chart would
        import io

        pyplot = sys.modules["matplotlib.pyplot"]
        figure = pyplot.figure()
        figure.text(0.5, 0.5, "warm")
        figure.savefig(io.BytesIO(), format="png")
        pyplot.close(figure)
    except Exception:
        pass
