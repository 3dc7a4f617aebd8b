"""Surrogate objectives J whose autograd gradient is a policy-gradient estimator.

This module is the source article's gradient table in code. Each function returns a scalar J
to *maximise*; its gradient is the estimator the chapter derives. Weights Psi are treated as
constants (detached), so autograd differentiates only log pi.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from . import _validate as V
from .returns import discount_by_step

__all__ = [
    "a2c",
    "a2c_weight",
    "actor_critic",
    "actor_critic_weight",
    "adapt_kl_beta",
    "dpg",
    "dpg_gradient",
    "not_clip",
    "policy_gradient_surrogate",
    "ppo_clip",
    "ppo_clip_weight",
    "ppo_penalty",
    "ratio",
    "sac_policy",
    "sac_policy_weight",
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
    ``mask``: optional (N, T) of 0/1 (or bool) marking valid steps of episodes shorter than T.
    """
    V.tensor(logp, "logp", ndim=2, nonempty=True)
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
        mask = V.mask(mask, "mask")
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
        V.tensor(t, name, nonempty=True)
    V.same_shape(**tensors)


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


def not_clip(ratio: torch.Tensor, adv: torch.Tensor, eps: float,
             eps_high: float | None = None) -> torch.Tensor:
    r"""The source's indicator 1_not-clip of section 1.8 (chapter 8), as a bool tensor:

        1_not-clip(r, A) = (A >= 0 and r <= 1 + eps_high) or (A < 0 and r >= 1 - eps),

    with eps_high = eps unless given (DAPO's clip-higher, chapter 13, has eps_high > eps).
    It is 1 exactly where min(r A, clip(r, 1-eps, 1+eps_high) A) takes its unclipped branch
    r A: inside [1-eps, 1+eps_high], *and* outside it on the pessimistic side (A >= 0 with
    r < 1-eps; A < 0 with r > 1+eps_high). d/dr of the PPO-Clip objective is 1_not-clip * A
    away from the two bounds (proved region by region in :func:`pgbook.piecewise.not_clip`).
    """
    _check_samples(ratio=ratio, adv=adv)
    eps, eps_high = V.clip_bounds(eps, eps_high)
    if bool((ratio < 0).any()):
        raise ValueError("ratio must be >= 0 everywhere (a ratio of probabilities)")
    return ((adv >= 0) & (ratio <= 1 + eps_high)) | ((adv < 0) & (ratio >= 1 - eps))


def ppo_clip(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
             eps: float, eps_high: float | None = None) -> torch.Tensor:
    r"""The PPO-Clip objective of section 1.8 (chapter 8), the J to maximise:

        L^CLIP(theta) = E_t[ min( r_t A_t, clip(r_t, 1 - eps, 1 + eps_high) A_t ) ],

    with eps_high = eps unless given (the asymmetric clip of DAPO, chapter 13).

    Written with ``torch.min`` and ``torch.clamp`` as common implementations do. Autograd gives
    d/dr = 1_not-clip * A away from the boundaries. At r = 1 +- eps exactly, ``torch.clamp``
    passes gradient 1 and ``torch.min`` gives half of the gradient to each side of the tie,
    so autograd returns A there: the one-sided derivative from inside [1-eps, 1+eps], which
    is also what the source's closed inequalities in 1_not-clip say (chapter 8 shows it).
    """
    _check_samples(logp=logp, logp_old=logp_old, adv=adv)
    eps, eps_high = V.clip_bounds(eps, eps_high)
    r = ratio(logp, logp_old)
    adv = adv.detach()
    return torch.min(r * adv, torch.clamp(r, 1 - eps, 1 + eps_high) * adv).mean()


def ppo_clip_weight(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
                    eps: float, eps_high: float | None = None) -> torch.Tensor:
    r"""The score weight of PPO-Clip, the source's gradient row for PPO-Clip (chapter 8):

        Psi_t = 1_not-clip(r_t, A_t) r_t(theta) A_t     (detached),

    so that grad ppo_clip(logp, logp_old, adv, eps, eps_high) = mean(Psi * grad logp) wherever
    r is not exactly on a bound r = 1 - eps or 1 + eps_high (and there too with torch's
    autograd, see :func:`ppo_clip`).
    """
    _check_samples(logp=logp, logp_old=logp_old, adv=adv)
    eps, eps_high = V.clip_bounds(eps, eps_high)
    r = ratio(logp, logp_old).detach()
    return (not_clip(r, adv, eps, eps_high).to(r.dtype) * r * adv).detach()


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
    # A KL divergence is >= 0; allow only the rounding of its float evaluation (64 ulps at 1).
    if kl.numel() and kl.min().item() < -64 * torch.finfo(kl.dtype).eps:
        raise ValueError(f"kl must hold per-sample KL divergences (>= 0), got a minimum of "
                         f"{kl.min().item():.3g}")
    return (ratio(logp, logp_old) * adv.detach() - beta * kl).mean()


def adapt_kl_beta(beta: float, kl: float, kl_target: float, *, tolerance: float = 1.5,
                  factor: float = 2.0) -> float:
    r"""The adaptive penalty rule of PPO-Penalty (chapter 8; Schulman et al. 2017, sec. 4):

        d = measured mean KL(pi_old || pi_new) after an update;
        beta <- beta / factor   if d < kl_target / tolerance   (the step was too timid),
        beta <- beta * factor   if d > kl_target * tolerance   (the step went too far),
        beta unchanged          otherwise.

    The paper uses tolerance 1.5 and factor 2; both must exceed 1 (with 1 the band is empty
    or beta never moves).
    """
    beta = V.number(beta, "beta", low=0.0, low_open=True)
    kl = V.number(kl, "kl", low=0.0)
    kl_target = V.number(kl_target, "kl_target", low=0.0, low_open=True)
    tolerance = V.number(tolerance, "tolerance", low=1.0, low_open=True)
    factor = V.number(factor, "factor", low=1.0, low_open=True)
    if kl < kl_target / tolerance:
        return beta / factor
    if kl > kl_target * tolerance:
        return beta * factor
    return beta


# ============================================================================================
# Actor-critic (0.10), A2C (0.12), SAC, the KL terms and DPG (chapters 6, 9-12).
# ============================================================================================

def _check_table(x: torch.Tensor, name: str) -> torch.Tensor:
    return V.tensor(x, name, ndim=2, nonempty=True)


def _step_weight(x: torch.Tensor, name: str, gamma: float | None) -> torch.Tensor:
    """gamma^t x_{i,t} (``gamma`` given) or x (``None``), detached: Psi of (0.10) and (0.12)."""
    _check_table(x, name)
    if gamma is None:
        return x.detach()
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    steps = torch.arange(x.shape[1]).expand(x.shape)
    return discount_by_step(x.detach(), gamma, steps)


def actor_critic_weight(q: torch.Tensor, *, gamma: float | None = None) -> torch.Tensor:
    r"""The score weight of the actor-critic form (0.10) (chapter 6), detached, shape (N, T):

        Psi_t = gamma^t Q(s_t, a_t)     (``gamma`` given: the exact weight of step t),
        Psi_t = Q(s_t, a_t)             (``gamma=None``: the source's (0.10) as written).

    ``q`` holds Q(s_t, a_t) along N trajectories of T steps (column t = step t). With the true
    Q_t of the current policy, E[sum_t grad log pi(a_t|s_t) gamma^t Q_t] = grad J exactly; without
    gamma^t (and gamma < 1) it is not, and neither is it with a learned Q_w whose error depends on
    the action (chapter 6).
    """
    return _step_weight(q, "q", gamma)


def actor_critic(logp: torch.Tensor, q: torch.Tensor, *, gamma: float | None = None,
                 mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""The actor-critic surrogate of (0.10) (chapter 6), the J whose gradient is the estimator:

        L(theta) = (1/N) sum_i sum_t mask_{i,t} log pi_theta(a_t^i|s_t^i) Psi_{i,t},
        Psi = :func:`actor_critic_weight` (q, gamma=gamma),

    so grad L = (1/N) sum_i sum_t grad log pi Psi. ``logp``, ``q`` (and ``mask``): shape (N, T).
    Pass ``gamma`` for the exact gamma^t weighting, ``None`` for the source's form.
    """
    _check_table(logp, "logp")
    return policy_gradient_surrogate(logp, actor_critic_weight(q, gamma=gamma), mask)


def a2c_weight(adv: torch.Tensor, *, gamma: float | None = None) -> torch.Tensor:
    r"""The score weight of A2C's form (0.12) (chapter 6), detached, shape (N, T):

        Psi_t = gamma^t A(s_t, a_t)   (``gamma`` given),   Psi_t = A(s_t, a_t)   (``None``).

    With the true advantage A_t = Q_t - V_t (0.11), and also with Q_t - V_w,t for *any* state
    baseline V_w, E[sum_t grad log pi Psi_t] = grad J exactly when gamma^t is kept.
    """
    return _step_weight(adv, "adv", gamma)


def a2c(logp: torch.Tensor, adv: torch.Tensor, *, gamma: float | None = None,
        mask: torch.Tensor | None = None) -> torch.Tensor:
    r"""A2C's policy surrogate (0.12) (chapter 6): (1/N) sum_i sum_t mask log pi * Psi with
    Psi = :func:`a2c_weight` (adv, gamma=gamma). Shapes (N, T)."""
    _check_table(logp, "logp")
    return policy_gradient_surrogate(logp, a2c_weight(adv, gamma=gamma), mask)


def sac_policy(q: torch.Tensor, logp: torch.Tensor, alpha: float, *,
               weights: torch.Tensor | None = None) -> torch.Tensor:
    r"""SAC's actor objective (chapter 11), to *maximise* (SAC minimises its negative):

        J_pi(theta) = E_s E_{a ~ pi_theta(.|s)} [ Q_w(s, a) - alpha log pi_theta(a|s) ]
                    ~ sum_k w_k [ q_k - alpha logp_k ],

    evaluated on *reparameterised* actions a_k = a_theta(s_k, eps_k) (``rsample``; for the tanh-
    Gaussian a = tanh(m_theta(s) + sigma_theta(s) eps)), so that ``q`` = Q_w(s_k, a_k) and ``logp``
    = log pi_theta(a_k|s_k) are differentiable in theta through the action: autograd gives the
    pathwise gradient SAC follows. ``weights``: probability weights of the samples (quadrature
    or importance weights, same shape, sum 1); default 1/n each. The score-function form of the
    same gradient has weight :func:`sac_policy_weight`.
    """
    V.tensor(q, "q", nonempty=True)
    V.tensor(logp, "logp")
    V.same_shape(q=q, logp=logp)
    alpha = V.number(alpha, "alpha", low=0.0)
    if weights is None:
        weights = torch.full_like(q, 1.0 / q.numel())
    else:
        V.tensor(weights, "weights")
        V.same_shape(q=q, weights=weights)
        if bool((weights < 0).any()) or abs(weights.sum().item() - 1) > 1e-9:
            raise ValueError("weights must be non-negative and sum to 1")
    return (weights.detach() * (q - alpha * logp)).sum()


def sac_policy_weight(q: torch.Tensor, logp: torch.Tensor, alpha: float, *,
                      baseline: torch.Tensor | None = None) -> torch.Tensor:
    r"""The score-function weight of SAC's actor objective (chapter 11), detached:

        Psi = Q_w(s, a) - alpha log pi_theta(a|s) - b(s),

    so that E_{a~pi}[grad log pi(a|s) Psi] = grad_theta E_{a~pi}[Q_w(s, a) - alpha log pi(a|s)] for
    any baseline b(s) (default 0): differentiating log pi inside the expectation adds
    -alpha E[grad log pi] = 0. The source's SAC row has Psi = Q_w - V, without the
    -alpha log pi term: that is the gradient of E[Q_w] alone, and misses alpha grad H(pi).
    """
    V.tensor(q, "q", nonempty=True)
    V.tensor(logp, "logp")
    V.same_shape(q=q, logp=logp)
    alpha = V.number(alpha, "alpha", low=0.0)
    psi = q - alpha * logp
    if baseline is not None:
        V.tensor(baseline, "baseline")
        try:
            psi = psi - baseline
        except RuntimeError:
            raise ValueError(f"baseline of shape {tuple(baseline.shape)} does not broadcast "
                             f"against q of shape {tuple(q.shape)}") from None
        if psi.shape != q.shape:
            raise ValueError(f"baseline of shape {tuple(baseline.shape)} must broadcast to q's "
                             f"shape {tuple(q.shape)}")
    return psi.detach()


def dpg(critic: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], states: torch.Tensor,
        actions: torch.Tensor) -> torch.Tensor:
    r"""DPG's actor objective (chapter 10), to maximise:

        J(theta) = (1/B) sum_b Q_w(s_b, mu_theta(s_b)),

    with ``actions`` = mu_theta(states) differentiable in theta and ``critic(states, actions)``
    returning Q_w for each of the B states, shape (B,). Its gradient (chain rule) is
    :func:`dpg_gradient`: no score function and no weight Psi; the policy has no density.
    """
    if not callable(critic):
        raise ValueError("critic must be a callable (states, actions) -> values of shape (B,)")
    V.tensor(states, "states", ndim=2)
    V.tensor(actions, "actions", ndim=2)
    if states.shape[0] != actions.shape[0] or states.shape[0] == 0:
        raise ValueError(f"states {tuple(states.shape)} and actions {tuple(actions.shape)} must "
                         "have the same number B >= 1 of rows")
    q = critic(states, actions)
    if not isinstance(q, torch.Tensor) or tuple(q.shape) != (states.shape[0],):
        raise ValueError(f"critic must return a tensor of shape ({states.shape[0]},)")
    return q.mean()


def dpg_gradient(policy_jacobians: torch.Tensor, action_gradients: torch.Tensor) -> torch.Tensor:
    r"""The deterministic policy gradient (Silver et al. 2014; chapter 10), closed form:

        grad J = (1/B) sum_b grad_theta mu_theta(s_b) grad_a Q_w(s_b, a)|_{a = mu_theta(s_b)},

    with ``policy_jacobians`` (B, m, d), the Jacobians d mu / d theta (so grad_theta mu is their
    transpose, d x m), and ``action_gradients`` (B, m) with B >= 1. Returns (d,).
    """
    V.tensor(policy_jacobians, "policy_jacobians", ndim=3, nonempty=True)
    V.tensor(action_gradients, "action_gradients", ndim=2)
    if policy_jacobians.shape[:2] != action_gradients.shape:
        raise ValueError(f"policy_jacobians {tuple(policy_jacobians.shape)} must be (B, m, d) "
                         f"for action_gradients of shape (B, m) = "
                         f"{tuple(action_gradients.shape)}")
    return torch.einsum("bmd,bm->d", policy_jacobians, action_gradients) / policy_jacobians.shape[0]
