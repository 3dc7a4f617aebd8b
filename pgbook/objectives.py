"""Surrogate objectives J whose autograd gradient is a policy-gradient estimator.

This module is the source article's gradient table in code. Each function returns a scalar J
to *maximise*; its gradient is the estimator the chapter derives. Weights Psi are treated as
constants (detached), so autograd differentiates only log pi.
"""

from __future__ import annotations

import torch

from . import _validate as V

__all__ = ["policy_gradient_surrogate"]


def policy_gradient_surrogate(logp: torch.Tensor, weights: torch.Tensor,
                              mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""The Monte-Carlo policy-gradient surrogate of (0.7):

        L(theta) = (1/N) sum_{i=1}^N sum_t mask_{i,t} log pi_theta(a_t^i | s_t^i) Psi_{i,t},

    so that grad L = (1/N) sum_i sum_t grad log pi(a_t^i|s_t^i) Psi_{i,t}, the estimator (0.7)
    when Psi_{i,t} = R(tau^i), and the reward-to-go estimator when Psi is the reward-to-go.

    ``logp``: (N, T) log-probabilities of the taken actions (differentiable).
    ``weights``: (N, T), or (N,) for one weight per trajectory such as R(tau); detached here.
    ``mask``: optional (N, T) of 0/1 marking valid steps of episodes shorter than T.
    """
    V.tensor(logp, "logp", ndim=2)
    V.tensor(weights, "weights", ndim=(1, 2))
    if weights.dim() == 1:
        if weights.shape[0] != logp.shape[0]:
            raise ValueError(f"weights of shape {tuple(weights.shape)} must have one entry per "
                             f"trajectory, logp has shape {tuple(logp.shape)}")
        weights = weights[:, None].expand_as(logp)
    V.same_shape(logp=logp, weights=weights)
    if mask is None:
        mask = torch.ones_like(logp)
    else:
        V.tensor(mask, "mask", floating=False)
        V.same_shape(logp=logp, mask=mask)
        mask = mask.to(logp.dtype)
    return (mask * logp * weights.detach()).sum(-1).mean()
