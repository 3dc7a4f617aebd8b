"""Small networks for policies and values: an MLP, categorical and Gaussian policies, V(s).

A policy here is a module with a method ``dist(obs)`` that returns a ``torch.distributions``
object for pi_theta(. | s); sampling, log pi(a|s) and the entropy all come from that object,
never from hand-written densities. Its score function grad_theta log pi(a|s) is what every
policy-gradient estimator multiplies by a weight Psi (chapter 1; (0.6)-(0.8)).

Initialisation follows common practice for policy gradients (CleanRL, SB3): orthogonal weights,
gain sqrt(2) in hidden layers, a small output gain (0.01) for policy heads so the initial
policy is close to uniform (categorical) or to N(0, I) (Gaussian), gain 1 for value heads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import Categorical, Independent, Normal

from . import _validate as V

__all__ = ["MLP", "CategoricalPolicy", "GaussianPolicy", "ValueNet", "policy_for"]


def _check_hidden(hidden) -> tuple[int, ...]:
    if isinstance(hidden, int) or not isinstance(hidden, Sequence):
        raise ValueError(f"hidden must be a sequence of layer widths such as (64, 64), "
                         f"got {hidden!r}")
    return tuple(V.positive_int(h, "hidden width") for h in hidden)


def _check_obs(obs, obs_dim: int, weight: torch.Tensor) -> torch.Tensor:
    """Check an observation tensor of shape (..., obs_dim), e.g. (obs_dim,), (B, obs_dim) or
    (T, N, obs_dim), and cast it to the weights' dtype."""
    if not isinstance(obs, torch.Tensor):
        raise ValueError(f"obs must be a torch.Tensor, got {type(obs).__name__}")
    if obs.dim() == 0 or obs.shape[-1] != obs_dim:
        raise ValueError(f"obs must have shape (..., {obs_dim}), e.g. ({obs_dim},) or "
                         f"(B, {obs_dim}), got {tuple(obs.shape)}")
    if not obs.is_floating_point():
        raise ValueError(f"obs must have a floating dtype, got {obs.dtype}")
    return obs.to(weight.dtype)


class MLP(nn.Module):
    r"""A multilayer perceptron x -> W_L phi(... phi(W_1 x + b_1) ...) + b_L.

    ``in_dim`` inputs, ``out_dim`` outputs, hidden layers of the widths in ``hidden`` with the
    activation phi (a module class, e.g. ``nn.Tanh``). Weights are orthogonal with gain
    ``hidden_gain`` (default sqrt(2)) in hidden layers and ``out_gain`` in the last; biases 0.
    ``forward`` maps (..., in_dim) to (..., out_dim).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (64, 64),
                 activation: type[nn.Module] = nn.Tanh, *, out_gain: float = 1.0,
                 hidden_gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.in_dim = V.positive_int(in_dim, "in_dim")
        self.out_dim = V.positive_int(out_dim, "out_dim")
        widths = (self.in_dim, *_check_hidden(hidden), self.out_dim)
        if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
            raise ValueError(f"activation must be an nn.Module class such as nn.Tanh, "
                             f"got {activation!r}")
        out_gain = V.number(out_gain, "out_gain", low=0.0)
        hidden_gain = V.number(hidden_gain, "hidden_gain", low=0.0)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            linear = nn.Linear(a, b)
            last = i == len(widths) - 2
            nn.init.orthogonal_(linear.weight, gain=out_gain if last else hidden_gain)
            nn.init.zeros_(linear.bias)
            layers.append(linear)
            if not last:
                layers.append(activation())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() == 0 or x.shape[-1] != self.in_dim:
            raise ValueError(f"x must have shape (..., {self.in_dim}), got {tuple(x.shape)}")
        return self.layers(x)


class CategoricalPolicy(nn.Module):
    r"""Softmax policy pi_theta(a|s) = exp(f_theta(s)_a) / sum_b exp(f_theta(s)_b) over n actions.

    f_theta is an :class:`MLP` producing logits; ``dist(obs)`` returns
    ``Categorical(logits=f_theta(obs))``, the softmax policy of chapter 1 with a network in place
    of the table.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64),
                 activation: type[nn.Module] = nn.Tanh) -> None:
        super().__init__()
        self.obs_dim = V.positive_int(obs_dim, "obs_dim")
        self.n_actions = V.positive_int(n_actions, "n_actions", minimum=2)
        self.logits = MLP(obs_dim, n_actions, hidden, activation, out_gain=0.01)

    def dist(self, obs: torch.Tensor) -> Categorical:
        """pi_theta(. | obs) for obs of shape (..., obs_dim); the batch shape is obs's leading
        shape: () for one observation, (B,) for B of them."""
        obs = _check_obs(obs, self.obs_dim, self.logits.layers[0].weight)
        return Categorical(logits=self.logits(obs), validate_args=False)

    def forward(self, obs: torch.Tensor) -> Categorical:
        return self.dist(obs)


class GaussianPolicy(nn.Module):
    r"""Diagonal Gaussian policy pi_theta(a|s) = N(a; mu_theta(s), diag(sigma^2)).

    mu_theta is an :class:`MLP`; log sigma is a state-independent parameter (one per action
    dimension, initialised to ``log_std_init``). ``dist(obs)`` returns
    ``Independent(Normal(mu, sigma), 1)``, so ``log_prob(a)`` sums over action dimensions and
    has the batch shape of ``obs``. Actions are unbounded; clip them to the action space in the
    environment, not in the log-probability.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64),
                 activation: type[nn.Module] = nn.Tanh, *, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.obs_dim = V.positive_int(obs_dim, "obs_dim")
        self.act_dim = V.positive_int(act_dim, "act_dim")
        log_std_init = V.number(log_std_init, "log_std_init")
        self.mean = MLP(obs_dim, act_dim, hidden, activation, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), log_std_init))

    def dist(self, obs: torch.Tensor) -> Independent:
        """pi_theta(. | obs) for obs of shape (..., obs_dim); batch shape obs.shape[:-1], event
        shape (act_dim,)."""
        obs = _check_obs(obs, self.obs_dim, self.log_std)
        mu = self.mean(obs)
        return Independent(Normal(mu, self.log_std.exp().expand_as(mu), validate_args=False), 1)

    def forward(self, obs: torch.Tensor) -> Independent:
        return self.dist(obs)


class ValueNet(nn.Module):
    r"""A state-value network V_phi(s): obs of shape (B, obs_dim) -> values of shape (B,).

    Used as a learned baseline b(s) = V_phi(s) (chapter 5) and as the critic (chapter 6).
    In general (..., obs_dim) -> (...): a single observation (obs_dim,) gives a scalar.
    """

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64),
                 activation: type[nn.Module] = nn.Tanh) -> None:
        super().__init__()
        self.obs_dim = V.positive_int(obs_dim, "obs_dim")
        self.net = MLP(obs_dim, 1, hidden, activation, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = _check_obs(obs, self.obs_dim, self.net.layers[0].weight)
        return self.net(obs).squeeze(-1)


def policy_for(observation_space: gym.Space, action_space: gym.Space,
               hidden: Sequence[int] = (64, 64),
               activation: type[nn.Module] = nn.Tanh) -> CategoricalPolicy | GaussianPolicy:
    """A :class:`CategoricalPolicy` for a ``Discrete`` action space, a :class:`GaussianPolicy`
    for a 1-D ``Box``; observations must be a 1-D ``Box``. Pass single-env spaces
    (``envs.single_observation_space``, ``envs.single_action_space``)."""
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"observation_space must be a 1-D Box, got {observation_space}")
    obs_dim = observation_space.shape[0]
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalPolicy(obs_dim, int(action_space.n), hidden, activation)
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return GaussianPolicy(obs_dim, action_space.shape[0], hidden, activation)
    raise ValueError(f"action_space must be Discrete or a 1-D Box, got {action_space}")

