"""One figure style for every chapter: learning curves and objective-vs-iteration plots."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch

__all__ = ["STYLE", "objective_curves", "use_style"]

#: Matplotlib settings shared by every figure of the book.
STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 110,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
}


def use_style() -> None:
    """Apply :data:`STYLE` to matplotlib's global settings (chapters call it once)."""
    plt.rcParams.update(STYLE)


def objective_curves(curves: Mapping[str, Sequence[float] | torch.Tensor], *,
                     target: float | None = None, xlabel: str = "iteration",
                     ylabel: str = r"$J(\theta)$", title: str | None = None, ax=None):
    """Plot one or more curves (name -> values per iteration) with an optional target line.

    Returns the matplotlib Figure.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty mapping from label to a sequence of values")
    for label, values in curves.items():
        if len(values) == 0:
            raise ValueError(f"curve {label!r} is empty")
    with plt.rc_context(STYLE):
        if ax is None:
            fig, ax = plt.subplots()
        else:
            fig = ax.figure
        for label, values in curves.items():
            y = values.tolist() if isinstance(values, torch.Tensor) else list(values)
            ax.plot(range(len(y)), y, label=label)
        if target is not None:
            ax.axhline(target, color="0.3", linestyle="--", linewidth=1, label=f"target {target:g}")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        ax.legend()
        fig.tight_layout()
    return fig
