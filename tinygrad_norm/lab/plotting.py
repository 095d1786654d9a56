"""The two matplotlib calls every experiment's figures share.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot: no global
state, no display needed) and written like every other result of the lab:
atomically, so an interrupted run never leaves half a PNG behind.
"""
from .._atomic import atomic_write


def new_figure(figsize):
    """An empty Figure of `figsize` inches on the Agg canvas."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def save_figure(fig, out, name, dpi):
    """Lay `fig` out tightly and write it to out/name as PNG (atomically); returns name."""
    fig.tight_layout()
    atomic_write(out / name, lambda fh: fig.savefig(fh, format="png", dpi=dpi))
    return name
