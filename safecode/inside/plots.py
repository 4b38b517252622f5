"""matplotlib's backend inside the sandbox, imported there as the module `safecode_plots` (MPLBACKEND names it).

Shipped as text with the supervisor and loaded by its finder for shipped modules (supervisor.py). The figures a
program shows (plt.show()) or leaves open are saved as PNGs in /app/out when there is scratch space.
"""

import os

from matplotlib._pylab_helpers import Gcf
from matplotlib.backends.backend_agg import FigureCanvasAgg as FigureCanvas, FigureManager  # noqa: F401


def save_figures():
    if not os.path.isdir("/app/out"):
        return  # no scratch space: nowhere to put them
    for manager in Gcf.get_all_fig_managers():
        number = 1
        while os.path.exists(f"/app/out/figure-{number}.png"):
            number += 1
        manager.canvas.figure.savefig(f"/app/out/figure-{number}.png")
    Gcf.destroy_all()


def show(*args, **kwargs):
    save_figures()
