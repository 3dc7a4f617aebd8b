"""GRPO's objectives: the per-token clipped objective, the k3 KL estimator, and two variants.

Chapter 9 (``book/09_grpo``). Section 1.8 of the source writes GRPO (Shao et al. 2024,
DeepSeekMath) for one prompt q and G sampled answers o_1..o_G with group-relative advantages
A_i (:func:`pgbook.returns.group_advantages`). This module gives three readings of it; each is
a J to *maximise* with a weight Psi (detached) such that

    grad J = (1/B) sum_i sum_t Psi_{i,t} grad log pi_theta(o_{i,t} | q, o_{i,<t}),

the same gradient as ``policy_gradient_surrogate(logp, Psi)`` (chapter 4's surrogate):

* :func:`grpo` / :func:`grpo_weight`: the paper's form (eq. 3 of DeepSeekMath), a ratio per
  *token* and the average over each answer's tokens, 1/|o_i|;
* :func:`grpo_sequence` / :func:`grpo_sequence_weight`: the source's form, one ratio per
  *answer*, pi_theta(o_i|q) / pi_old(o_i|q);
* :func:`dr_grpo` / :func:`dr_grpo_weight`: Dr. GRPO (Liu et al. 2025), per-token ratio but a
  constant normaliser in place of 1/|o_i| (use it with ``group_advantages(...,
  scale_by_std=False)``).

Layout: ``logp``, ``logp_old``, ``logp_ref`` and ``mask`` have shape (B, L): row i is one
answer (B = num_prompts * G answers), padded to L tokens. ``logp[i, t]`` is
log pi_theta(o_{i,t} | q, o_{i,<t}) (differentiable); ``logp_old`` (the sampling policy) and
``logp_ref`` (the frozen reference) are constants. ``mask`` (bool, or 0/1) marks the valid
tokens; every row needs at least one, and padded entries may hold any finite number.
``adv`` has shape (B,): one advantage per answer.

The clipped part reuses PPO-Clip (chapter 8): min(r A, clip(r, 1-eps, 1+eps) A) is positively
homogeneous in A, so GRPO's token average *is* :func:`pgbook.objectives.ppo_clip` over the
tokens with the per-token advantage A_i / |o_i|, and its weight is
:func:`pgbook.objectives.ppo_clip_weight` (1_not-clip r A) with that advantage.
"""

from __future__ import annotations

import torch

from . import _validate as V
from .kl_estimators import kl_k3
from .objectives import ppo_clip, ppo_clip_weight

__all__ = [
    "dr_grpo",
    "dr_grpo_weight",
    "grpo",
    "grpo_sequence",
    "grpo_sequence_weight",
    "grpo_weight",
]


# --------------------------------------------------------------------------------------------
# Checks and the pieces shared by the three forms.
# --------------------------------------------------------------------------------------------

def _check(logp, logp_old, logp_ref, adv, mask, eps, beta):
    """Validate a GRPO batch; return (logp, logp_old, logp_ref) zeroed at padding, the bool
    mask, the number of valid tokens per answer (B,), and eps, beta."""
    for name, t in (("logp", logp), ("logp_old", logp_old), ("logp_ref", logp_ref)):
        V.tensor(t, name, ndim=2)
    V.same_shape(logp=logp, logp_old=logp_old, logp_ref=logp_ref)
    if logp.numel() == 0:
        raise ValueError(f"logp must have at least one answer and one token, got shape "
                         f"{tuple(logp.shape)}")
    V.tensor(adv, "adv", ndim=1)
    if adv.shape[0] != logp.shape[0]:
        raise ValueError(f"adv must have one advantage per answer: shape ({logp.shape[0]},) for "
                         f"logp of shape {tuple(logp.shape)}, got {tuple(adv.shape)}")
    mask = V.mask(mask, "mask", ndim=2)
    V.same_shape(logp=logp, mask=mask)
    lengths = mask.sum(dim=1)
    empty = torch.nonzero(lengths == 0).flatten().tolist()
    if empty:
        raise ValueError(f"mask row(s) {empty} mark no valid token: every answer needs at least "
                         "one (its end-of-answer token counts)")
    eps = V.number(eps, "eps", low=0.0, high=1.0, low_open=True, high_open=True)
    beta = V.number(beta, "beta", low=0.0)
    zero = torch.zeros((), dtype=logp.dtype)
    # Padding holds arbitrary finite numbers; zero them so exp() in the ratio cannot overflow.
    logp, logp_old, logp_ref = (torch.where(mask, x, zero) for x in (logp, logp_old, logp_ref))
    return logp, logp_old, logp_ref, mask, lengths.to(logp.dtype), eps, beta


def _token_form(logp, logp_old, logp_ref, adv, mask, eps, beta, norm, weight):
    """Per-token ratio, each answer's tokens weighted by 1/norm_i: J (or Psi if ``weight``)."""
    token_adv = adv.detach()[:, None] * mask / norm[:, None]  # A_i / norm_i, 0 at padding
    if weight:
        psi_clip = ppo_clip_weight(logp, logp_old, token_adv, eps)
        rho = torch.exp(logp_ref - logp).detach()  # d k3 / d logp = 1 - rho
        return (psi_clip - beta * (1 - rho) * mask / norm[:, None]).detach()
    L = logp.shape[1]
    clipped = L * ppo_clip(logp, logp_old, token_adv, eps)  # (1/B) sum_i sum_t c_{i,t} / norm_i
    kl = ((kl_k3(logp, logp_ref) * mask).sum(dim=1) / norm).mean()
    return clipped - beta * kl


def _sequence_form(logp, logp_old, logp_ref, adv, mask, eps, beta, weight):
    seq, seq_old, seq_ref = (x.sum(dim=1) for x in (logp, logp_old, logp_ref))
    if weight:
        psi = ppo_clip_weight(seq, seq_old, adv, eps) - beta * (1 - torch.exp(seq_ref - seq))
        return (psi.detach()[:, None] * mask).detach()
    return ppo_clip(seq, seq_old, adv, eps) - beta * kl_k3(seq, seq_ref).mean()


# --------------------------------------------------------------------------------------------
# The paper's GRPO: per-token ratio, 1/|o_i|.
# --------------------------------------------------------------------------------------------

def grpo(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor, adv: torch.Tensor,
         mask: torch.Tensor, eps: float, beta: float) -> torch.Tensor:
    r"""GRPO's objective as DeepSeekMath defines it (its eq. 3; source section 1.8; chapter 9):

        J = (1/B) sum_i (1/|o_i|) sum_t mask_{i,t} [ min(r_{i,t} A_i,
                clip(r_{i,t}, 1-eps, 1+eps) A_i) - beta k3_{i,t} ],

    with the per-token ratio r_{i,t} = pi_theta(o_{i,t}|q,o_{i,<t}) / pi_old(o_{i,t}|q,o_{i,<t}),
    k3_{i,t} = :func:`kl_k3` of the token's log-probabilities under pi_theta and pi_ref, and
    |o_i| = sum_t mask_{i,t}. Shapes and conventions: see the module docstring. The source
    writes one ratio per answer instead: :func:`grpo_sequence`.
    """
    logp, logp_old, logp_ref, mask, lengths, eps, beta = _check(logp, logp_old, logp_ref, adv,
                                                                mask, eps, beta)
    return _token_form(logp, logp_old, logp_ref, adv, mask, eps, beta, lengths, weight=False)


def grpo_weight(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor,
                adv: torch.Tensor, mask: torch.Tensor, eps: float, beta: float) -> torch.Tensor:
    r"""The score weight of :func:`grpo`, shape (B, L), detached (chapter 9):

        Psi_{i,t} = (mask_{i,t} / |o_i|) [ 1_not-clip(r_{i,t}, A_i) r_{i,t} A_i
                                           - beta (1 - rho_{i,t}) ],

    rho_{i,t} = pi_ref / pi_theta of the token, so that grad grpo(...) =
    (1/B) sum_{i,t} Psi_{i,t} grad logp_{i,t}. The first term is the source's GRPO row, token
    by token; the second is what the k3 penalty differentiates to. At r = 1 +- eps exactly it
    follows torch's autograd, as :func:`pgbook.objectives.ppo_clip_weight` does.
    """
    logp, logp_old, logp_ref, mask, lengths, eps, beta = _check(logp, logp_old, logp_ref, adv,
                                                                mask, eps, beta)
    return _token_form(logp, logp_old, logp_ref, adv, mask, eps, beta, lengths, weight=True)


# --------------------------------------------------------------------------------------------
# The source's form: one ratio per answer.
# --------------------------------------------------------------------------------------------

def grpo_sequence(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor,
                  adv: torch.Tensor, mask: torch.Tensor, eps: float,
                  beta: float) -> torch.Tensor:
    r"""GRPO as the source writes it (section 1.8; chapter 9), one ratio per answer:

        J = (1/B) sum_i [ min(R_i A_i, clip(R_i, 1-eps, 1+eps) A_i) - beta k3_i ],
        R_i = pi_theta(o_i|q) / pi_old(o_i|q) = exp(sum_t mask_{i,t} (logp - logp_old)_{i,t}),

    and k3_i = :func:`kl_k3` of the whole answer's log-probabilities, an unbiased estimate of
    the sequence-level KL(pi_theta(.|q) || pi_ref(.|q)) (the source leaves the KL's estimator
    unspecified). This is PPO-Clip with each answer as one action
    (:func:`pgbook.objectives.ppo_clip` on the answers' log-probabilities). The clip acts on a
    product of |o_i| token ratios, so long answers leave [1-eps, 1+eps] first.
    """
    logp, logp_old, logp_ref, mask, _, eps, beta = _check(logp, logp_old, logp_ref, adv, mask,
                                                          eps, beta)
    return _sequence_form(logp, logp_old, logp_ref, adv, mask, eps, beta, weight=False)


def grpo_sequence_weight(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor,
                         adv: torch.Tensor, mask: torch.Tensor, eps: float,
                         beta: float) -> torch.Tensor:
    r"""The score weight of :func:`grpo_sequence`, shape (B, L), detached:

        Psi_{i,t} = mask_{i,t} [ 1_not-clip(R_i, A_i) R_i A_i - beta (1 - rho_i) ],

    the same for every token of answer i (rho_i = pi_ref(o_i|q) / pi_theta(o_i|q)), because
    grad log pi_theta(o_i|q) = sum_t grad logp_{i,t}. This is the source's GRPO row
    (1/G) sum_i grad log pi(o_i|q) 1_not-clip(i) r_i A_i, plus what k3 differentiates to.
    """
    logp, logp_old, logp_ref, mask, _, eps, beta = _check(logp, logp_old, logp_ref, adv, mask,
                                                          eps, beta)
    return _sequence_form(logp, logp_old, logp_ref, adv, mask, eps, beta, weight=True)


# --------------------------------------------------------------------------------------------
# Dr. GRPO: per-token ratio, a constant in place of |o_i|.
# --------------------------------------------------------------------------------------------

def _normalizer(normalizer, logp: torch.Tensor) -> torch.Tensor:
    if normalizer is None:
        normalizer = logp.shape[1]
    normalizer = V.number(normalizer, "normalizer", low=0.0, low_open=True)
    return torch.full((logp.shape[0],), normalizer, dtype=logp.dtype)


def dr_grpo(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor,
            adv: torch.Tensor, mask: torch.Tensor, eps: float, beta: float, *,
            normalizer: float | None = None) -> torch.Tensor:
    r"""Dr. GRPO's objective (Liu et al. 2025, "GRPO done right"; chapter 9):

        J = (1/B) sum_i (1/C) sum_t mask_{i,t} [ min(r_{i,t} A_i, clip(r_{i,t}, 1-eps, 1+eps) A_i)
                                                 - beta k3_{i,t} ],

    :func:`grpo` with the per-answer 1/|o_i| replaced by one constant 1/C (``normalizer``;
    default L, the padded width, i.e. the generation budget, as in the authors' code). With
    the advantages A_i = r_i - mean(r) of ``group_advantages(..., scale_by_std=False)`` its
    gradient at theta = theta_old is (1 - 1/G)/C times an unbiased policy gradient: no answer
    gains or loses weight because of its length. (Liu et al. also drop the KL term; beta = 0.)
    """
    logp, logp_old, logp_ref, mask, _, eps, beta = _check(logp, logp_old, logp_ref, adv, mask,
                                                          eps, beta)
    norm = _normalizer(normalizer, logp)
    return _token_form(logp, logp_old, logp_ref, adv, mask, eps, beta, norm, weight=False)


def dr_grpo_weight(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor,
                   adv: torch.Tensor, mask: torch.Tensor, eps: float, beta: float, *,
                   normalizer: float | None = None) -> torch.Tensor:
    r"""The score weight of :func:`dr_grpo`, shape (B, L), detached:

        Psi_{i,t} = (mask_{i,t} / C) [ 1_not-clip(r_{i,t}, A_i) r_{i,t} A_i
                                       - beta (1 - rho_{i,t}) ].
    """
    logp, logp_old, logp_ref, mask, _, eps, beta = _check(logp, logp_old, logp_ref, adv, mask,
                                                          eps, beta)
    norm = _normalizer(normalizer, logp)
    return _token_form(logp, logp_old, logp_ref, adv, mask, eps, beta, norm, weight=True)
