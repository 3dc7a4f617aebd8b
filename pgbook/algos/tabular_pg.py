"""Gradient ascent (0.9) on the tabular MDP, with the exact gradient or the sampled one (0.7).

Chapters 1-3 end with this trainer: the exact gradient ``TabularMDP.grad_J`` shows what
gradient ascent does in the ideal case, and the Monte-Carlo estimator (0.7) shows the same
ascent with noise. Read top to bottom: ``Config``, ``History``, ``train``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import torch
from tqdm import tqdm

from .. import _validate as V
from ..mdp import TabularMDP
from ..objectives import policy_gradient_surrogate
from ..returns import discounted_return, reward_to_go


@dataclass
class Config:
    """Settings of the tabular policy-gradient trainer, checked when made (``ValueError`` naming
    the field)."""

    estimator: Literal["exact", "sampled"] = "exact"
    #: "return": Psi_t = R(tau) as in (0.7); "discounted_reward_to_go": Psi_t = gamma^t G_t, the
    #: exact weighting (chapter 3); "reward_to_go": Psi_t = G_t, what most code uses, which is
    #: not the gradient when gamma < 1. The names match :mod:`pgbook.algos.reinforce`.
    weighting: Literal["return", "discounted_reward_to_go", "reward_to_go"] = "return"
    lr: float = 0.5  #: alpha in (0.9)
    iterations: int = 100
    batch_size: int = 16  #: trajectories per sampled gradient
    init_scale: float = 0.0  #: initial logits ~ N(0, init_scale^2); 0 gives the uniform policy
    seed: int = 0

    def __post_init__(self) -> None:
        if self.estimator not in ("exact", "sampled"):
            raise ValueError(f"estimator must be 'exact' or 'sampled', got {self.estimator!r}")
        if self.weighting not in ("return", "discounted_reward_to_go", "reward_to_go"):
            raise ValueError("weighting must be 'return', 'discounted_reward_to_go' or "
                             f"'reward_to_go', got {self.weighting!r}")
        V.number(self.lr, "lr", low=0.0, low_open=True)
        V.positive_int(self.iterations, "iterations")
        V.positive_int(self.batch_size, "batch_size")
        V.number(self.init_scale, "init_scale", low=0.0)
        V.positive_int(self.seed, "seed", minimum=0)


@dataclass
class History:
    """What happened during training: the exact J(theta_k) before every step and at the end.
    (Exact ascent has no episodes, so this is not the episode record of
    :class:`pgbook.history.History` that the environment trainers share.)"""

    J: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    theta: torch.Tensor | None = None
    wall_time: float = 0.0


def train(mdp: TabularMDP, config: Config | None = None, *, progress: bool = False) -> History:
    """Run ``config.iterations`` steps of theta <- theta + lr * g   (0.9).

    g is the exact gradient of J, or the (0.7) estimate from ``batch_size`` sampled
    trajectories. J(theta) is recorded exactly after every step, so curves are noise-free
    measurements of a noisy (or exact) ascent.
    """
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"mdp must be a TabularMDP, got {type(mdp).__name__}")
    config = Config() if config is None else config
    if not isinstance(config, Config):
        raise ValueError(f"config must be a tabular_pg.Config, got {type(config).__name__}")
    generator = torch.Generator().manual_seed(config.seed)
    theta = mdp.random_theta(generator, config.init_scale)
    history = History()
    start = time.perf_counter()
    with torch.no_grad():
        history.J.append(mdp.J(theta).item())
    for _ in tqdm(range(config.iterations), disable=not progress, desc="tabular PG"):
        if config.estimator == "exact":
            grad = mdp.grad_J(theta)
        else:
            batch = mdp.sample(theta, config.batch_size, generator)
            if config.weighting == "return":
                weights = discounted_return(batch.rewards, mdp.gamma)
            else:
                weights = reward_to_go(batch.rewards, mdp.gamma, discount_from_start=(
                    config.weighting == "discounted_reward_to_go"))
            leaf = theta.detach().requires_grad_(True)
            surrogate = policy_gradient_surrogate(mdp.sampled_log_probs(leaf, batch), weights)
            (grad,) = torch.autograd.grad(surrogate, leaf)
        theta = theta + config.lr * grad
        history.grad_norm.append(grad.norm().item())
        with torch.no_grad():
            history.J.append(mdp.J(theta).item())
    history.theta = theta.detach()
    history.wall_time = time.perf_counter() - start
    return history
