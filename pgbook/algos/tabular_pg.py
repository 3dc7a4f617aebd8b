"""Gradient ascent (0.9) on the tabular MDP, with the exact gradient or the sampled one (0.7).

Chapters 1-3 end with this trainer: the exact gradient ``TabularMDP.grad_J`` shows what
gradient ascent does in the ideal case, and the Monte-Carlo estimator (0.7) shows the same
ascent with noise. The "expected" estimator is the sampled estimator's mean, summed exactly
over all trajectories: with a wrong per-step weight it shows where that weight leads without
sampling noise (chapter 3). Read top to bottom: ``Config``, ``History``, ``step_weights``,
``train``.
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

WEIGHTINGS = ("return", "discounted_reward_to_go", "reward_to_go", "undiscounted_return",
              "first_step_return")


@dataclass
class Config:
    """Settings of the tabular policy-gradient trainer, checked when made (``ValueError`` naming
    the field)."""

    #: "exact": grad J; "sampled": the estimate (0.7) from ``batch_size`` trajectories;
    #: "expected": E[(0.7)] summed exactly over all trajectories, for the chosen ``weighting``
    #: (equal to grad J for the two exact weightings, not for the others).
    estimator: Literal["exact", "sampled", "expected"] = "exact"
    #: "return": Psi_t = R(tau) as in (0.7); "discounted_reward_to_go": Psi_t = gamma^t G_t, the
    #: exact weighting (chapter 3); "reward_to_go": Psi_t = G_t, what most code uses, which is
    #: not the gradient when gamma < 1. The names match :mod:`pgbook.algos.reinforce`. Two
    #: more are wrong on purpose, negative controls for chapter 3: "undiscounted_return",
    #: Psi_t = sum_t r_{t+1} (gamma dropped from R), and "first_step_return", Psi_0 = R(tau) and
    #: Psi_t = 0 for t >= 1 (only the first action's score).
    weighting: Literal["return", "discounted_reward_to_go", "reward_to_go",
                       "undiscounted_return", "first_step_return"] = "return"
    lr: float = 0.5  #: alpha in (0.9)
    iterations: int = 100
    batch_size: int = 16  #: trajectories per sampled gradient
    init_scale: float = 0.0  #: initial logits ~ N(0, init_scale^2); 0 gives the uniform policy
    seed: int = 0

    def __post_init__(self) -> None:
        if self.estimator not in ("exact", "sampled", "expected"):
            raise ValueError("estimator must be 'exact' or 'sampled' (or 'expected'), got "
                             f"{self.estimator!r}")
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be {', '.join(map(repr, WEIGHTINGS))}, got "
                             f"{self.weighting!r}")
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


def step_weights(rewards: torch.Tensor, gamma: float, weighting: str) -> torch.Tensor:
    """Psi_{i,t} of (0.7) for rewards of shape (N, T), by ``Config.weighting`` (see there):
    shape (N,) for the two whole-trajectory returns (the same weight at every step), else
    (N, T)."""
    V.tensor(rewards, "rewards", ndim=2)
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    if weighting not in WEIGHTINGS:
        raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
    if weighting in ("return", "undiscounted_return", "first_step_return"):
        total = discounted_return(rewards, 1.0 if weighting == "undiscounted_return" else gamma)
        if weighting != "first_step_return":
            return total
        psi = torch.zeros_like(rewards)
        psi[:, 0] = total
        return psi
    return reward_to_go(rewards, gamma,
                        discount_from_start=(weighting == "discounted_reward_to_go"))


def train(mdp: TabularMDP, config: Config | None = None, *, progress: bool = False) -> History:
    """Run ``config.iterations`` steps of theta <- theta + lr * g   (0.9).

    g is the exact gradient of J, the (0.7) estimate from ``batch_size`` sampled trajectories,
    or that estimate's exact expectation (``estimator="expected"``). J(theta) is recorded
    exactly after every step, so curves are noise-free measurements of a noisy (or exact) ascent.
    """
    if not isinstance(mdp, TabularMDP):
        raise ValueError(f"mdp must be a TabularMDP, got {type(mdp).__name__}")
    config = Config() if config is None else config
    if not isinstance(config, Config):
        raise ValueError(f"config must be a tabular_pg.Config, got {type(config).__name__}")
    generator = torch.Generator().manual_seed(config.seed)
    theta = mdp.random_theta(generator, config.init_scale)
    history = History()
    all_weights = step_weights(mdp.trajectories.rewards, mdp.gamma, config.weighting)
    start = time.perf_counter()
    with torch.no_grad():
        history.J.append(mdp.J(theta).item())
    for _ in tqdm(range(config.iterations), disable=not progress, desc="tabular PG"):
        if config.estimator == "exact":
            grad = mdp.grad_J(theta)
        elif config.estimator == "expected":
            grad = mdp.expected_score_weighted(theta, all_weights)
        else:
            batch = mdp.sample(theta, config.batch_size, generator)
            weights = step_weights(batch.rewards, mdp.gamma, config.weighting)
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
