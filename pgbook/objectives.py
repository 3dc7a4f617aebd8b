"""Surrogate objectives J whose autograd gradient is a policy-gradient estimator.

This module is the source article's gradient table in code. Each function returns a scalar J
to *maximise*; its gradient is the estimator the chapter derives. Weights Psi are treated as
constants (detached), so autograd differentiates only log pi.
"""

from __future__ import annotations

import torch

from . import _validate as V

__all__ = [
    "adapt_kl_beta",
    "not_clip",
    "policy_gradient_surrogate",
    "ppo_clip",
    "ppo_clip_weight",
    "ppo_penalty",
    "ratio",
    "trpo",
    "trpo_weight",
]


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


# --------------------------------------------------------------------------------------------
# Chapters 7 and 8: the ratio r_t(theta), TRPO's surrogate, PPO-Clip and PPO-Penalty.
#
# Every function below takes per-sample tensors of one shape (a flat batch of (s_t, a_t)
# pairs, or any shape): ``logp`` = log pi_theta(a_t|s_t) (differentiable), ``logp_old`` =
# log pi_theta_old(a_t|s_t) and ``adv`` = A_t^{pi_old} (both treated as constants), and
# returns the sample mean, the E_t[...] of section 1.8 of the source.
# --------------------------------------------------------------------------------------------

def _check_samples(**tensors: torch.Tensor) -> None:
    """Every argument a finite floating tensor with at least one element, all of one shape."""
    for name, t in tensors.items():
        V.tensor(t, name)
        if t.numel() == 0:
            raise ValueError(f"{name} must not be empty")
    V.same_shape(**tensors)


def _check_eps(eps) -> float:
    return V.number(eps, "eps", low=0.0, high=1.0, low_open=True, high_open=True)


def ratio(logp: torch.Tensor, logp_old: torch.Tensor) -> torch.Tensor:
    r"""The probability ratio of section 1.8 (chapter 7),

        r_t(theta) = pi_theta(a_t|s_t) / pi_theta_old(a_t|s_t) = exp(logp - logp_old),

    computed from log-probabilities (a ratio of tiny probabilities would underflow).
    ``logp_old`` is detached: it is the behaviour policy's number, not a function of theta.
    Its gradient is grad r = r grad log pi_theta (chapter 7).
    """
    _check_samples(logp=logp, logp_old=logp_old)
    return torch.exp(logp - logp_old.detach())


def trpo(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    r"""TRPO's surrogate objective (section 1.8; chapter 7), the J to maximise:

        L(theta) = E_t[ r_t(theta) A_t^{pi_old} ]    (sample mean).

    Its gradient is E_t[grad log pi_theta(a_t|s_t) r_t(theta) A_t], the source's "TRPO" row,
    and at theta = theta_old (r = 1) it equals the policy gradient. TRPO does not ascend it
    freely: it maximises L subject to KL(pi_old || pi_theta) <= delta (:mod:`pgbook.algos.trpo`).
    """
    _check_samples(logp=logp, logp_old=logp_old, adv=adv)
    return (ratio(logp, logp_old) * adv.detach()).mean()


def trpo_weight(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor) -> torch.Tensor:
    r"""The score weight of TRPO's surrogate, Psi_t = r_t(theta) A_t (detached), so that

        grad trpo(logp, logp_old, adv) = mean(Psi * grad logp)      (chapter 7).
    """
    _check_samples(logp=logp, logp_old=logp_old, adv=adv)
    return (ratio(logp, logp_old) * adv).detach()


def not_clip(ratio: torch.Tensor, adv: torch.Tensor, eps: float) -> torch.Tensor:
    r"""The source's indicator 1_not-clip of section 1.8 (chapter 8), as a bool tensor:

        1_not-clip(r, A) = (A >= 0 and r <= 1 + eps) or (A < 0 and r >= 1 - eps).

    It is 1 exactly where min(r A, clip(r, 1-eps, 1+eps) A) takes its unclipped branch r A:
    inside [1-eps, 1+eps], *and* outside it on the pessimistic side (A >= 0 with r < 1-eps;
    A < 0 with r > 1+eps). d/dr of the PPO-Clip objective is 1_not-clip * A away from
    r = 1 +- eps (proved region by region in :func:`pgbook.symbolic.not_clip`).
    """
    _check_samples(ratio=ratio, adv=adv)
    eps = _check_eps(eps)
    if bool((ratio < 0).any()):
        raise ValueError("ratio must be >= 0 everywhere (a ratio of probabilities)")
    return ((adv >= 0) & (ratio <= 1 + eps)) | ((adv < 0) & (ratio >= 1 - eps))


def ppo_clip(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
             eps: float) -> torch.Tensor:
    r"""The PPO-Clip objective of section 1.8 (chapter 8), the J to maximise:

        L^CLIP(theta) = E_t[ min( r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t ) ].

    Written with ``torch.min`` and ``torch.clamp`` as common implementations do. Autograd gives
    d/dr = 1_not-clip * A away from the boundaries. At r = 1 +- eps exactly, ``torch.clamp``
    passes gradient 1 and ``torch.min`` gives half of the gradient to each side of the tie,
    so autograd returns A there: the one-sided derivative from inside [1-eps, 1+eps], which
    is also what the source's closed inequalities in 1_not-clip say (chapter 8 shows it).
    """
    _check_samples(logp=logp, logp_old=logp_old, adv=adv)
    eps = _check_eps(eps)
    r = ratio(logp, logp_old)
    adv = adv.detach()
    return torch.min(r * adv, torch.clamp(r, 1 - eps, 1 + eps) * adv).mean()


def ppo_clip_weight(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
                    eps: float) -> torch.Tensor:
    r"""The score weight of PPO-Clip, the source's gradient row for PPO-Clip (chapter 8):

        Psi_t = 1_not-clip(r_t, A_t) r_t(theta) A_t     (detached),

    so that grad ppo_clip(logp, logp_old, adv, eps) = mean(Psi * grad logp) wherever r is not
    exactly on a boundary r = 1 +- eps (and there too with torch's autograd, see
    :func:`ppo_clip`).
    """
    _check_samples(logp=logp, logp_old=logp_old, adv=adv)
    eps = _check_eps(eps)
    r = ratio(logp, logp_old).detach()
    return (not_clip(r, adv, eps).to(r.dtype) * r * adv).detach()


def ppo_penalty(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
                kl: torch.Tensor, beta: float) -> torch.Tensor:
    r"""The PPO-Penalty objective (section 1.8; chapter 8), the J to maximise:

        L^KLPEN(theta) = E_t[ r_t(theta) A_t - beta KL(pi_old(.|s_t) || pi_theta(.|s_t)) ].

    ``kl`` holds the per-sample KL divergences (differentiable in theta; e.g.
    ``torch.distributions.kl_divergence(old_dist, new_dist)``), ``beta >= 0`` the penalty
    coefficient, adapted between updates by :func:`adapt_kl_beta`.
    """
    _check_samples(logp=logp, logp_old=logp_old, adv=adv, kl=kl)
    beta = V.number(beta, "beta", low=0.0)
    return (ratio(logp, logp_old) * adv.detach() - beta * kl).mean()


def adapt_kl_beta(beta: float, kl: float, kl_target: float, *, tolerance: float = 1.5,
                  factor: float = 2.0) -> float:
    r"""The adaptive penalty rule of PPO-Penalty (chapter 8; Schulman et al. 2017, sec. 4):

        d = measured mean KL(pi_old || pi_new) after an update;
        beta <- beta / factor   if d < kl_target / tolerance   (the step was too timid),
        beta <- beta * factor   if d > kl_target * tolerance   (the step went too far),
        beta unchanged          otherwise.

    The paper uses tolerance 1.5 and factor 2.
    """
    beta = V.number(beta, "beta", low=0.0, low_open=True)
    kl = V.number(kl, "kl", low=0.0)
    kl_target = V.number(kl_target, "kl_target", low=0.0, low_open=True)
    tolerance = V.number(tolerance, "tolerance", low=1.0)
    factor = V.number(factor, "factor", low=1.0)
    if kl < kl_target / tolerance:
        return beta / factor
    if kl > kl_target * tolerance:
        return beta * factor
    return beta


# Chapter 9: GRPO's objectives live in pgbook.grpo_objectives (which imports PPO-Clip from here).
from .grpo_objectives import (  # noqa: E402
    dr_grpo,  # noqa: F401
    dr_grpo_weight,  # noqa: F401
    grpo,  # noqa: F401
    grpo_sequence,  # noqa: F401
    grpo_sequence_weight,  # noqa: F401
    grpo_weight,  # noqa: F401
    kl_k3,  # noqa: F401
)
