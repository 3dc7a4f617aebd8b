"""What a training run leaves behind: one record shared by every trainer, the benchmarks and the
learning-curve plots.

Every trainer in :mod:`pgbook.algos` returns a :class:`History`. Its episode record is the same
for all of them, one entry per finished episode in the order they finished:
``episode_returns``, ``episode_lengths``, ``episode_steps`` (the env step at which the episode
ended, counted over all sub-environments) and ``episode_times`` (wall seconds since the start).
Targets are stated on the mean of the last ``window`` returns (:func:`trailing_means`), and
:meth:`History.reached` says when a run first got there. What is particular to an algorithm
(losses, KL, clip fraction, temperature, accuracy, ...) goes in the plain dict ``logs``, one
list per curve, and the trained networks in ``models``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import torch

from . import _validate as V

__all__ = ["History", "Reached", "trailing_means"]


def trailing_means(values, window: int, *, partial: bool = False) -> np.ndarray:
    """The mean of the last ``window`` values at each index.

    With ``partial=False`` (targets, benchmarks) only full windows count: one mean per index from
    ``window - 1`` on, an empty array if there are fewer values. With ``partial=True``
    (learning-curve figures) the first ``window - 1`` indices get the mean of the values so far,
    so the result has one entry per value. ``values`` must be finite numbers.
    """
    V.positive_int(window, "window")
    V.flag(partial, "partial")
    try:
        x = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("values must be a sequence of numbers") from None
    if x.ndim != 1:
        raise ValueError(f"values must be one-dimensional, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("values contains non-finite values (nan or inf)")
    c = np.cumsum(np.concatenate([[0.0], x]))
    if partial:
        i = np.arange(1, len(x) + 1)
        lo = np.maximum(i - window, 0)
        return (c[i] - c[lo]) / (i - lo)
    if len(x) < window:
        return np.zeros(0)
    return (c[window:] - c[:-window]) / window


class Reached(NamedTuple):
    """When a run's trailing mean first reached its target."""

    env_steps: int  #: env steps run by then
    seconds: float  #: wall seconds since the start
    episodes: int  #: episodes finished by then


@dataclass
class History:
    """The record of one training run (see the module docstring)."""

    env_id: str = ""
    config: object = None
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    episode_steps: list[int] = field(default_factory=list)
    episode_times: list[float] = field(default_factory=list)
    #: per-iteration (or per-update) curves of the algorithm, one list per name
    logs: dict[str, list[float]] = field(default_factory=dict)
    #: the trained networks by role: "policy", "value", "critic", "reference", ...
    models: dict[str, torch.nn.Module] = field(default_factory=dict)
    env_steps: int = 0  #: env steps run in all
    wall_time: float = 0.0  #: wall seconds of the whole run
    start: float = field(default_factory=time.perf_counter)  #: perf_counter() at the start

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str):
            raise ValueError(f"env_id must be a string, got {type(self.env_id).__name__}")

    # ------------------------------------------------------------------ recording
    def seconds(self) -> float:
        """Wall seconds since the run started."""
        return time.perf_counter() - self.start

    def add_episodes(self, returns, lengths, end_steps) -> int:
        """Append finished episodes: their returns (finite numbers), lengths and the env step
        each ended at (integers >= 0), as sequences or 1-D tensors of one length, timed now.
        Returns how many were added."""
        columns = {}
        for name, x in (("returns", returns), ("lengths", lengths), ("end_steps", end_steps)):
            if isinstance(x, torch.Tensor) and x.dim() != 1:
                raise ValueError(f"{name} must be a sequence or a 1-D tensor, got shape "
                                 f"{tuple(x.shape)}")
            if isinstance(x, str) or not isinstance(x, torch.Tensor | Sequence | np.ndarray):
                raise ValueError(f"{name} must be a sequence or a 1-D tensor, got "
                                 f"{type(x).__name__}")
            columns[name] = x.tolist() if isinstance(x, torch.Tensor | np.ndarray) else list(x)
        returns, lengths, end_steps = columns.values()
        if not len(returns) == len(lengths) == len(end_steps):
            raise ValueError(f"returns, lengths and end_steps must have one length, got "
                             f"{len(returns)}, {len(lengths)}, {len(end_steps)}")
        returns = [V.number(r, f"returns[{i}]") for i, r in enumerate(returns)]
        lengths = [V.positive_int(n, f"lengths[{i}]", minimum=0) for i, n in enumerate(lengths)]
        end_steps = [V.positive_int(s, f"end_steps[{i}]", minimum=0)
                     for i, s in enumerate(end_steps)]
        now = self.seconds()
        self.episode_returns += returns
        self.episode_lengths += lengths
        self.episode_steps += end_steps
        self.episode_times += [now] * len(returns)
        return len(returns)

    def add_batch_episodes(self, batch, steps_before: int) -> int:
        """Append the episodes that ended in a time-major :class:`pgbook.rollout.Batch` collected
        after ``steps_before`` env steps: an episode ending at row t finished at env step
        steps_before + (t + 1) N, N the number of sub-environments. Returns how many."""
        V.positive_int(steps_before, "steps_before", minimum=0)
        if not all(hasattr(batch, a) for a in ("episode_ends", "episode_returns",
                                                "episode_lengths", "num_envs")):
            raise ValueError(f"batch must be a pgbook.rollout.Batch, got {type(batch).__name__}")
        ends = batch.episode_ends
        return self.add_episodes(batch.episode_returns, batch.episode_lengths,
                                 steps_before + (ends[:, 0] + 1) * batch.num_envs)

    def log(self, **values: float) -> None:
        """Append each named value to the curve of that name in ``logs``: a real number or a
        one-element tensor; nan and inf are kept (a loss logged before the first update is
        nan)."""
        for name, value in values.items():
            self.logs.setdefault(name, []).append(V.number(value, name, finite=False))

    def finish(self, env_steps: int) -> History:
        """Set the totals ``env_steps`` and ``wall_time`` at the end of the run; returns self."""
        self.env_steps = V.positive_int(env_steps, "env_steps", minimum=0)
        self.wall_time = self.seconds()
        return self

    # ------------------------------------------------------------------ reading
    def last_mean(self, window: int = 20) -> float:
        """Mean return of the last ``window`` finished episodes (nan until ``window`` ended)."""
        means = trailing_means(self.episode_returns, window)
        return float(means[-1]) if len(means) else float("nan")

    def reached(self, target: float, window: int = 20) -> Reached | None:
        """When the mean of the last ``window`` returns first reached ``target`` (None if it
        never did)."""
        V.number(target, "target")
        hits = np.flatnonzero(trailing_means(self.episode_returns, window) >= target)
        if len(hits) == 0:
            return None
        i = int(hits[0]) + window - 1
        return Reached(self.episode_steps[i], self.episode_times[i], i + 1)

    def best_mean(self, window: int = 20) -> tuple[float, int] | None:
        """The best mean of ``window`` consecutive returns and the env step it was reached at
        (None before ``window`` episodes ended)."""
        means = trailing_means(self.episode_returns, window)
        if len(means) == 0:
            return None
        i = int(np.argmax(means))
        return float(means[i]), self.episode_steps[i + window - 1]

    def target_reached(self) -> bool:
        """True once the config's ``target`` is set and the mean of its last
        ``target_window`` returns reaches it (the early stop of every trainer)."""
        target = getattr(self.config, "target", None)
        return target is not None and self.last_mean(self.config.target_window) >= target
