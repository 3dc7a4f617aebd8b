"""What every trainer in :mod:`pgbook.algos` does the same way, and nothing else: check its
``Config``, and run inside :func:`training_run` (a seeded, float32, self-cleaning run).

A trainer reads::

    def train(env_id="CartPole-v1", config=None, *, progress=True) -> History:
        config = checked_config(config, Config)
        with training_run(config.seed, env_id, config.num_envs) as envs:
            ...  # the algorithm, top to bottom
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from .. import _validate as V
from ..nets import default_dtype
from ..rollout import make_envs

__all__ = ["check_replay_settings", "check_run_settings", "checked_config", "training_run"]


#: fields that several trainers' configs share, checked wherever a config has them
_POSITIVE_INTS = ("num_envs", "num_steps")
_UNIT_INTERVAL = ("gamma", "gae_lambda")
_STEP_SIZES = ("lr", "value_lr", "actor_lr", "critic_lr", "alpha_lr")
_FLAGS = ("normalize_advantage",)


def check_run_settings(config) -> None:
    """The checks every trainer's ``Config.__post_init__`` shares, each raising ``ValueError``
    that names the field: ``total_steps``, ``target`` (optional), ``target_window`` and ``seed``
    always; where the config has them, ``hidden`` (a non-empty tuple of widths), ``num_envs``
    and ``num_steps`` (positive integers), ``gamma`` and ``gae_lambda`` (in [0, 1]), the step
    sizes ``lr``, ``value_lr``, ``actor_lr``, ``critic_lr``, ``alpha_lr`` (> 0),
    ``max_grad_norm`` (None or > 0) and ``normalize_advantage`` (a bool)."""
    hidden = getattr(config, "hidden", ())
    if hasattr(config, "hidden") and (not isinstance(hidden, tuple) or not hidden
                                      or not all(isinstance(h, int) and h > 0 for h in hidden)):
        raise ValueError(f"hidden must be a non-empty tuple of positive widths, got {hidden!r}")
    present = [name for name in (*_POSITIVE_INTS, *_UNIT_INTERVAL, *_STEP_SIZES, *_FLAGS,
                                 "max_grad_norm") if hasattr(config, name)]
    for name in present:
        value = getattr(config, name)
        if name in _POSITIVE_INTS:
            V.positive_int(value, name)
        elif name in _UNIT_INTERVAL:
            V.number(value, name, low=0.0, high=1.0)
        elif name in _STEP_SIZES or (name == "max_grad_norm" and value is not None):
            V.number(value, name, low=0.0, low_open=True)
        elif name in _FLAGS and not isinstance(value, bool):
            raise ValueError(f"{name} must be a bool, got {value!r}")
    V.positive_int(config.total_steps, "total_steps")
    if config.target is not None:
        V.number(config.target, "target")
    V.positive_int(config.target_window, "target_window")
    V.positive_int(config.seed, "seed", minimum=0)


def check_replay_settings(config) -> None:
    """:func:`check_run_settings` and the fields of the off-policy trainers (TD3, SAC):
    ``batch_size``, ``buffer_size`` and ``learning_starts``, positive integers."""
    V.positive_int(config.batch_size, "batch_size")
    V.positive_int(config.buffer_size, "buffer_size")
    V.positive_int(config.learning_starts, "learning_starts")
    check_run_settings(config)


def checked_config(config, config_type: type):
    """``config_type()`` if ``config`` is None, ``config`` itself if it is a ``config_type``
    (already validated when it was made), else ``ValueError``."""
    if config is None:
        return config_type()
    if not isinstance(config, config_type):
        kind = f"{config_type.__module__.rsplit('.', 1)[-1]}.{config_type.__name__}"
        raise ValueError(f"config must be a {kind}, got {type(config).__name__}")
    return config


@contextmanager
def training_run(seed: int, env_id: str | None = None, num_envs: int = 1) -> Iterator:
    """Run a trainer reproducibly, whatever the caller's global torch state; yields the envs.

    ``num_envs`` SAME_STEP Gymnasium envs of ``env_id`` are made first (none, and None is
    yielded, if ``env_id`` is None, e.g. for the language-model task). Inside, torch's global RNG
    is forked and seeded with ``seed`` (the caller's random stream is left untouched) and the
    default dtype is float32, so networks are built and trained the same way even when a chapter
    works in float64 for its exact checks. On exit the dtype is restored and the envs are closed.
    The run is deterministic on CPU for a fixed thread count.
    """
    V.positive_int(seed, "seed", minimum=0)
    envs = None if env_id is None else make_envs(env_id, num_envs)
    try:
        with torch.random.fork_rng(devices=[]), default_dtype(torch.float32):
            torch.manual_seed(seed)
            yield envs
    finally:
        if envs is not None:
            envs.close()
