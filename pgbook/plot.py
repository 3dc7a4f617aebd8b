"""One figure style for every chapter: learning curves, objective-vs-iteration plots and the
box-and-arrow diagrams of the source's figures (chapters 1 and 12)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
from cycler import cycler
from matplotlib.axes import Axes
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

from . import _validate as V
from .history import trailing_means

__all__ = ["LINESTYLES", "PALETTE", "STYLE", "Box", "arrow", "box", "diagram",
           "learning_curve", "objective_curves", "styled", "use_style"]

#: The Okabe-Ito palette (colour-blind safe), without its black and yellow; each colour is
#: paired with a line style, so curves differ in two ways.
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1, 1, 1)), (0, (1, 1)))

#: Matplotlib settings shared by every figure of the book.
STYLE = {
    "axes.prop_cycle": cycler(color=PALETTE) + cycler(linestyle=LINESTYLES),
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


@contextmanager
def styled() -> Iterator[None]:
    """Draw inside :data:`STYLE` without breaking figure display in notebooks.

    ``plt.rc_context`` restores *every* rcParam on exit, ``interactive`` included. When the
    first figure of a Jupyter kernel is created inside it, the inline backend switches
    interactive mode on during the call, the exit switches it back off, and from then on no
    figure of the notebook is displayed (matplotlib 3.11, matplotlib-inline). We keep the
    interactive state that holds at the end of the block.
    """
    with plt.rc_context(STYLE):
        try:
            yield
        finally:
            interactive = plt.isinteractive()
    plt.interactive(interactive)


def use_style() -> None:
    """Apply :data:`STYLE` to matplotlib's global settings (chapters call it once). In a
    notebook, figures are then shown as SVG (sharp at any zoom, text drawn as paths so it
    looks the same without the fonts; the HTML book uses it) and
    PNG (the LaTeX build uses it)."""
    plt.rcParams.update(STYLE)
    try:
        from IPython import get_ipython
        from matplotlib_inline.backend_inline import set_matplotlib_formats
    except ImportError:
        return
    if get_ipython() is not None:
        set_matplotlib_formats("svg", "png")


def objective_curves(curves: Mapping[str, Sequence[float] | torch.Tensor], *,
                     target: float | None = None, xlabel: str = "iteration",
                     ylabel: str = r"$J(\theta)$", title: str | None = None, ax=None):
    """Plot one or more curves (name -> finite values per iteration) with an optional target
    line. Returns the matplotlib Figure.
    """
    if not isinstance(curves, Mapping) or not curves:
        raise ValueError("curves must be a non-empty mapping from label to a sequence of values")
    ys = {label: _curve(values, f"curves[{label!r}]") for label, values in curves.items()}
    if target is not None:
        target = V.number(target, "target")
    _check_axes(ax, allow_none=True)
    with styled():
        if ax is None:
            fig, ax = plt.subplots()
        else:
            fig = ax.figure
        for label, y in ys.items():
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


def _curve(values, name: str) -> np.ndarray:
    """``values`` (a sequence of numbers or a 1-D tensor) as a non-empty finite 1-D array."""
    try:
        y = np.asarray(values.tolist() if isinstance(values, torch.Tensor) else list(values),
                       dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a sequence of numbers") from None
    if y.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {y.shape}")
    if len(y) == 0:
        raise ValueError(f"{name} is empty")
    if not np.isfinite(y).all():
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return y


def _check_axes(ax, *, allow_none: bool = False) -> None:
    if not (isinstance(ax, Axes) or (allow_none and ax is None)):
        raise ValueError(f"ax must be a matplotlib Axes{' or None' if allow_none else ''}, "
                         f"got {type(ax).__name__}")


def _smoothed_run(history, window: int, x: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(x of each finished episode, trailing moving average of the returns) of one History."""
    returns = getattr(history, "episode_returns", None)
    xs = getattr(history, "episode_steps" if x == "steps" else "episode_times", None)
    if returns is None or xs is None:
        raise ValueError(f"{name} must be a training History with episode_returns and "
                         f"episode_{x if x == 'steps' else 'times'}, got {type(history).__name__}")
    returns, xs = np.asarray(returns, dtype=np.float64), np.asarray(xs, dtype=np.float64)
    if returns.ndim != 1 or len(returns) == 0:
        raise ValueError(f"{name} has no finished episodes to plot")
    if xs.shape != returns.shape:
        raise ValueError(f"{name}: {len(xs)} episode {x} for {len(returns)} episode returns")
    if not (np.isfinite(returns).all() and np.isfinite(xs).all()):
        raise ValueError(f"{name} contains non-finite episode returns or {x}")
    if (np.diff(xs) < 0).any():
        raise ValueError(f"{name}: episode {x} must be non-decreasing")
    return xs, trailing_means(returns, window, partial=True)


def learning_curve(histories, target: float | None = None, *, window: int = 20,
                   band: str = "minmax", x: str = "steps", extend: str = "hold",
                   num_points: int = 200, title: str | None = None, ax=None,
                   center: str = "mean"):
    """Episode return against env steps (or wall seconds) for one or more groups of runs.

    ``histories``: a History, a list of Histories (seeds of one setting), or a mapping
    label -> History or list of Histories, e.g. ``{"no baseline": hs0, "value baseline": hs1}``.
    A History is any object with ``episode_returns`` and ``episode_steps`` (and
    ``episode_times`` for ``x="seconds"``), as every ``pgbook.algos`` trainer returns.

    Each run's returns are smoothed by a trailing moving average over the last ``window``
    episodes (fewer at the start), plotted at the step each episode finished. Several runs are
    drawn on a common grid of ``num_points`` points as one line, their ``center`` at each point
    (``"mean"`` or ``"median"`` over runs), with a band: ``"minmax"`` (min to max over runs),
    ``"std"`` (mean +- one standard deviation, whichever the center) or ``"none"``. A run that
    ended earlier than others (e.g. stopped at its target) keeps its last value to the end
    with ``extend="hold"``; with ``extend="cut"`` the group's curve stops where its first run
    ended. ``target`` draws a dashed horizontal line. Returns the matplotlib Figure.
    """
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    if band not in ("minmax", "std", "none"):
        raise ValueError(f"band must be 'minmax', 'std' or 'none', got {band!r}")
    if x not in ("steps", "seconds"):
        raise ValueError(f"x must be 'steps' or 'seconds', got {x!r}")
    if extend not in ("hold", "cut"):
        raise ValueError(f"extend must be 'hold' or 'cut', got {extend!r}")
    if center not in ("mean", "median"):
        raise ValueError(f"center must be 'mean' or 'median', got {center!r}")
    if not isinstance(num_points, int) or isinstance(num_points, bool) or num_points < 2:
        raise ValueError(f"num_points must be an integer >= 2, got {num_points!r}")
    if target is not None and (isinstance(target, bool) or not isinstance(target, int | float)
                               or not np.isfinite(target)):
        raise ValueError(f"target must be a finite number or None, got {target!r}")
    if isinstance(histories, Mapping):
        if not histories:
            raise ValueError("histories must not be an empty mapping")
        groups = dict(histories)
    else:
        groups = {None: histories}
    for label, runs in list(groups.items()):
        runs = list(runs) if isinstance(runs, list | tuple) else [runs]
        if not runs:
            raise ValueError(f"group {label!r} has no histories")
        groups[label] = runs

    with styled():
        if ax is None:
            fig, ax = plt.subplots()
        else:
            fig = ax.figure
        for label, runs in groups.items():
            curves = [_smoothed_run(h, window, x, f"history {i} of group {label!r}")
                      for i, h in enumerate(runs)]
            if len(curves) == 1:
                xs, ys = curves[0]
                ax.plot(xs, ys, label=label)
                continue
            end = (min if extend == "cut" else max)(c[0][-1] for c in curves)
            grid = np.linspace(min(c[0][0] for c in curves), end, num_points)
            ys = np.full((len(curves), num_points), np.nan)
            for k, (xs, y) in enumerate(curves):
                idx = np.searchsorted(xs, grid, side="right") - 1  # last episode at or before
                ys[k, idx >= 0] = y[idx[idx >= 0]]
            present = ~np.isnan(ys).all(0)
            grid, ys = grid[present], ys[:, present]
            mean = np.nanmean(ys, 0)
            (line,) = ax.plot(grid, mean if center == "mean" else np.nanmedian(ys, 0),
                              label=label if label is None else f"{label} ({len(runs)} runs)")
            if band == "minmax":
                ax.fill_between(grid, np.nanmin(ys, 0), np.nanmax(ys, 0),
                                color=line.get_color(), alpha=0.2, linewidth=0)
            elif band == "std":
                std = np.nanstd(ys, 0)
                ax.fill_between(grid, mean - std, mean + std, color=line.get_color(),
                                alpha=0.2, linewidth=0)
        if target is not None:
            ax.axhline(target, color="0.3", linestyle="--", linewidth=1, label=f"target {target:g}")
        ax.set_xlabel("env steps" if x == "steps" else "wall time (s)")
        ax.set_ylabel(f"episode return (mean of last {window})")
        if title:
            ax.set_title(title)
        if any(label is not None for label in groups) or target is not None:
            ax.legend()
        fig.tight_layout()
    return fig


# ---- Box-and-arrow diagrams: the source's figures redrawn in code (chapter 12) -------------



@dataclass(frozen=True)
class Box:
    """A box drawn by :func:`box`: its patch and its centre and size (in the axes' units)."""

    patch: FancyBboxPatch
    x: float
    y: float
    width: float
    height: float


def diagram(width: float = 6.4, height: float = 3.0):
    """A blank figure for a box-and-arrow diagram, ``width`` x ``height`` inches.

    The axes' data units are inches (x from 0 to ``width``, y from 0 to ``height``, equal
    aspect), without ticks or frame, so boxes keep their shape. Returns ``(fig, ax)``.
    Fonts follow the global settings (:func:`use_style`).
    """
    width = _positive(width, "width")
    height = _positive(height, "height")
    fig = plt.figure(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_aspect("equal")
    ax.set_axis_off()
    return fig, ax


def box(ax, x: float, y: float, text: str, *, width: float = 1.5, height: float = 0.55,
        color: str = "#e8eef7", edgecolor: str = "0.3", fontsize: float = 9,
        weight: str = "normal", linestyle: str = "-") -> Box:
    """Draw a rounded box centred at (x, y) with ``text`` (may hold $math$ and newlines).

    Returns a :class:`Box` for :func:`arrow` to connect; arrows stop at the box's edge.
    """
    _check_axes(ax)
    x, y = V.number(x, "x"), V.number(y, "y")
    width = _positive(width, "width")
    height = _positive(height, "height")
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    pad = min(0.08, width / 4, height / 4)
    patch = FancyBboxPatch((x - width / 2 + pad, y - height / 2 + pad), width - 2 * pad,
                           height - 2 * pad, boxstyle=f"round,pad={pad}", facecolor=color,
                           edgecolor=edgecolor, linewidth=1.1, linestyle=linestyle)
    ax.add_patch(patch)
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, weight=weight)
    return Box(patch, x, y, width, height)


def arrow(ax, start, end, text: str | None = None, *, color: str = "0.25", rad: float = 0.0,
          fontsize: float = 8, text_offset: tuple[float, float] = (0.0, 0.13),
          linestyle: str = "-", both: bool = False) -> FancyArrowPatch:
    """An arrow from ``start`` to ``end`` (each a :class:`Box` or an (x, y) point).

    Between boxes it runs centre to centre and is clipped at their edges. ``rad`` bends it
    (matplotlib's arc3: 0 is straight, 0.3 a gentle curve to the left of the direction of
    travel); ``text`` is written at the middle of the curve, shifted by ``text_offset``;
    ``both=True`` draws a head at each end.
    """
    def end_point(p, name):
        if isinstance(p, Box):
            return (p.x, p.y), p.patch
        if (isinstance(p, tuple | list) and len(p) == 2
                and all(isinstance(v, int | float) and not isinstance(v, bool) for v in p)):
            return (float(p[0]), float(p[1])), None
        raise ValueError(f"{name} must be a Box or an (x, y) pair of numbers, got {p!r}")

    _check_axes(ax)
    (x1, y1), patch_a = end_point(start, "start")
    (x2, y2), patch_b = end_point(end, "end")
    rad = float(rad)
    artist = FancyArrowPatch((x1, y1), (x2, y2), patchA=patch_a, patchB=patch_b,
                             arrowstyle="<|-|>" if both else "-|>", mutation_scale=12,
                             connectionstyle=f"arc3,rad={rad}", color=color, linewidth=1.2,
                             linestyle=linestyle, shrinkA=2, shrinkB=2)
    ax.add_patch(artist)
    if text:
        # arc3's control point is mid + rad * (dy, -dx); the curve passes halfway to it.
        mx = (x1 + x2) / 2 + rad * (y2 - y1) / 2 + text_offset[0]
        my = (y1 + y2) / 2 - rad * (x2 - x1) / 2 + text_offset[1]
        ax.text(mx, my, text, ha="center", va="center", fontsize=fontsize, color="0.15",
                bbox=dict(boxstyle="round,pad=0.1", facecolor="white", edgecolor="none",
                          alpha=0.85))
    return artist


def _positive(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)
