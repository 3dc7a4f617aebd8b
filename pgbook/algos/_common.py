"""What every trainer in :mod:`pgbook.algos` does the same way: check the run settings, make
the envs, and run reproducibly whatever the caller's global torch state."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import numpy as np
import torch

from .. import _validate as V
from ..rollout import make_envs


@contextmanager
def isolated_run(seed: int, dtype: torch.dtype = torch.float32) -> Iterator[None]:
    """Run a trainer reproducibly, whatever the caller's global torch state.

    Inside: torch's global RNG is forked and seeded with ``seed`` (the caller's random stream is
    left untouched), and the default dtype is ``dtype``, so networks are built and trained the
    same way even when a chapter has switched to float64 for its exact checks. Both are
    restored on exit.
    """
    previous = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        torch.set_default_dtype(dtype)
        try:
            yield
        finally:
            torch.set_default_dtype(previous)


def trailing_means(values, window: int) -> np.ndarray:
    """The mean of the last ``window`` values at each index from ``window - 1`` on (an empty
    array if there are fewer values): the "last-20-episode mean" every target is stated in."""
    x = np.asarray(values, dtype=np.float64)
    if len(x) < window:
        return np.zeros(0)
    c = np.cumsum(np.concatenate([[0.0], x]))
    return (c[window:] - c[:-window]) / window


def check_run_settings(config) -> None:
    """The checks every trainer's ``Config`` shares: ``hidden`` (a non-empty tuple of widths, if
    the config has one), ``total_steps``, ``target`` (optional), ``target_window`` and ``seed``.
    Raises ``ValueError`` naming the field."""
    hidden = getattr(config, "hidden", ())
    if hasattr(config, "hidden") and (not isinstance(hidden, tuple) or not hidden
                                      or not all(isinstance(h, int) and h > 0 for h in hidden)):
        raise ValueError(f"hidden must be a non-empty tuple of positive widths, got {hidden!r}")
    V.positive_int(config.total_steps, "total_steps")
    if config.target is not None:
        V.number(config.target, "target")
    V.positive_int(config.target_window, "target_window")
    V.positive_int(config.seed, "seed", minimum=0)


def run_trainer(body: Callable, env_id: str, config, config_type: type, progress: bool):
    """Check ``config`` (default ``config_type()``), make ``config.num_envs`` SAME_STEP envs
    (one if the config has no ``num_envs``), and return ``body(env_id, envs, config, progress)``
    run inside :func:`isolated_run`; the envs are closed afterwards.

    The run is seeded by ``config.seed`` and deterministic on CPU for a fixed thread count.
    """
    config = config_type() if config is None else config
    if not isinstance(config, config_type):
        kind = f"{config_type.__module__.rsplit('.', 1)[-1]}.{config_type.__name__}"
        raise ValueError(f"config must be a {kind}, got {type(config).__name__}")
    config.validate()
    envs = make_envs(env_id, getattr(config, "num_envs", 1))
    try:
        with isolated_run(config.seed):
            return body(env_id, envs, config, progress)
    finally:
        envs.close()
