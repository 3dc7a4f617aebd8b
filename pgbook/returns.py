"""Returns of reward sequences: the discounted return R(tau) of (0.1) and the reward-to-go.

Rewards are indexed from the step that earns them: ``rewards[..., t]`` is r_{t+1}, the reward
received after taking a_t in s_t, as in the source article's trajectory
tau = (s_0, a_0, r_1, s_1, ..., a_{T-1}, r_T, s_T).
"""

from __future__ import annotations

import torch

from . import _validate as V

__all__ = ["discounted_return", "reward_to_go"]


def _discounts(gamma: float, length: int, like: torch.Tensor) -> torch.Tensor:
    return gamma ** torch.arange(length, dtype=like.dtype, device=like.device)


def discounted_return(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    r"""R(tau) = sum_{t=0}^{T-1} gamma^t r_{t+1}   (the return inside (0.1)).

    ``rewards`` has shape (T,) or (N, T); the result has shape () or (N,).
    """
    V.tensor(rewards, "rewards", ndim=(1, 2))
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    return (rewards * _discounts(gamma, rewards.shape[-1], rewards)).sum(-1)


def reward_to_go(rewards: torch.Tensor, gamma: float, *,
                 discount_from_start: bool = False) -> torch.Tensor:
    r"""The reward-to-go at every step t, shape like ``rewards``.

    * ``discount_from_start=False`` (the usual code): G_t = sum_{k>=t} gamma^{k-t} r_{k+1}.
    * ``discount_from_start=True`` (what the exact gradient weights step t by):
      gamma^t G_t = sum_{k>=t} gamma^k r_{k+1}.

    Only the second makes E[sum_t grad log pi(a_t|s_t) Psi_t] equal grad J when gamma < 1
    (chapter 3, "In the source").
    """
    V.tensor(rewards, "rewards", ndim=(1, 2))
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    T = rewards.shape[-1]
    out = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in range(T - 1, -1, -1):
        running = rewards[..., t] + gamma * running
        out[..., t] = running
    if discount_from_start:
        out = out * _discounts(gamma, T, rewards)
    return out
