"""matplotlib's backend inside the sandbox, imported there as the module `safecode_plots` (MPLBACKEND names it).

Shipped as text with the supervisor and loaded by its finder for shipped modules (supervisor.py). The figures a
program shows (plt.show()) or leaves open at its end (or a cell's) become image/png displays, in order with its
output, and are closed: one copy of each, with no scratch space needed.
"""

from matplotlib._pylab_helpers import Gcf  # type: ignore[import-not-found]
from matplotlib.backends.backend_agg import (  # type: ignore[import-not-found]  # noqa: F401
    FigureCanvasAgg as FigureCanvas, FigureManager,
)

import safecode_display  # type: ignore[import-not-found]


def show_figures():
    for manager in Gcf.get_all_fig_managers():
        safecode_display.display(manager.canvas.figure)
    Gcf.destroy_all()


def show(*args, **kwargs):
    show_figures()
