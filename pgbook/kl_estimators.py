r"""The KL estimators k1, k2, k3 and the ways a trainer uses them (chapters 9 and 13).

A trainer that keeps pi_theta near a reference pi_ref cannot sum KL(pi_theta || pi_ref) over a
language model's vocabulary at every prefix, so it evaluates an estimator on the sampled tokens
o (Schulman 2020, "Approximating KL divergence"), with d = log pi_theta(o) - log pi_ref(o):

    k1 = d,            k2 = d^2 / 2,            k3 = rho - log rho - 1 = exp(-d) - 1 + d,

where rho = pi_ref(o) / pi_theta(o). For o ~ pi_theta, k1 and k3 are unbiased for
KL(pi_theta || pi_ref) and k2 is not (it is unbiased for E[d^2] / 2, which agrees with the KL
to second order near pi_ref). What the penalty *differentiates to* depends on more than the
estimator (chapter 13's table, each cell proved):

* ``placement="loss"``: the estimator is a term of the objective and autograd differentiates
  it with the sample held fixed; ``placement="reward"``: it is detached and enters like a
  reward, multiplying the score, sg(k) grad log pi_theta (REINFORCE-style, as with a KL
  penalty folded into the reward);
* the samples' policy: pi_theta itself (on-policy) or pi_old, with or without the importance
  weight r = pi_theta / pi_old (``logp_old`` given: TRL's ``use_bias_correction_kl``
  multiplies the loss term by r, with its gradient).

:func:`kl_penalty` returns the per-sample term whose autograd gradient is the one a trainer
computes; the objective to maximise subtracts beta times its mean. :func:`kl_weight` and
:func:`kl_k3_weight` are the score weights Psi of the two chapter 9 rows.
"""

from __future__ import annotations

import torch

from . import _validate as V

__all__ = ["ESTIMATORS", "PLACEMENTS", "kl_k1", "kl_k2", "kl_k3", "kl_k3_weight", "kl_penalty",
           "kl_weight"]

#: the estimators, by name (Schulman 2020)
ESTIMATORS = ("k1", "k2", "k3")
#: where the penalty goes: a term of the loss, or a detached reward that multiplies the score
PLACEMENTS = ("loss", "reward")


def _check_pair(logp, logp_ref):
    V.tensor(logp, "logp", nonempty=True)
    V.tensor(logp_ref, "logp_ref", nonempty=True)
    V.same_shape(logp=logp, logp_ref=logp_ref)


def kl_k1(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    r"""The k1 estimator of KL(pi_theta || pi_ref), elementwise (Schulman 2020; chapter 13):

        k1 = log pi_theta(o) - log pi_ref(o),

    unbiased for o ~ pi_theta but of either sign per sample. Its gradient as implemented is the
    score grad log pi_theta(o), whose expectation on-policy is 0: k1 in the loss does nothing
    on average (chapter 13). ``logp_ref`` is detached.
    """
    _check_pair(logp, logp_ref)
    return logp - logp_ref.detach()


def kl_k2(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    r"""The k2 estimator, elementwise (Schulman 2020; chapter 13):

        k2 = (log pi_theta(o) - log pi_ref(o))^2 / 2,

    >= 0 but biased for KL(pi_theta || pi_ref). Its gradient as implemented, (log pi_theta -
    log pi_ref) grad log pi_theta(o), has on-policy expectation grad KL(pi_theta || pi_ref)
    exactly: the estimator with the wrong value and the right gradient (chapter 13).
    """
    _check_pair(logp, logp_ref)
    return 0.5 * (logp - logp_ref.detach()) ** 2


def kl_k3(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    r"""The k3 estimator of KL(pi_theta || pi_ref), elementwise (Schulman 2020; chapter 9):

        k3 = rho - log rho - 1,    rho = pi_ref(o) / pi_theta(o) = exp(logp_ref - logp),

    for samples o ~ pi_theta. It is >= 0 everywhere, and E_{o~pi_theta}[k3] = KL(pi_theta ||
    pi_ref) exactly. Its gradient *as implemented* (o fixed, ``logp_ref`` a constant) is
    (1 - rho) grad log pi_theta(o), whose expectation is grad KL(pi_ref || pi_theta), the other
    direction (chapter 9, "In the source"). Computed as expm1(d) - d with d = logp_ref - logp.
    """
    _check_pair(logp, logp_ref)
    d = logp_ref.detach() - logp
    return torch.expm1(d) - d


def kl_weight(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    r"""The score weight of KL(pi_theta || pi_ref) (chapter 9), detached:

        Psi(o) = log pi_theta(o) - log pi_ref(o),

    so that E_{o~pi_theta}[grad log pi_theta(o) Psi(o)] = grad_theta KL(pi_theta || pi_ref) (the
    term E[grad log pi] from differentiating log pi_theta inside the KL is 0). A penalty
    -beta KL(pi_theta || pi_ref), as the source writes GRPO's, has weight -beta Psi.
    """
    _check_pair(logp, logp_ref)
    return (logp - logp_ref).detach()


def kl_k3_weight(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    r"""The score weight that autograd gives GRPO's k3 penalty (chapter 9), detached:

        d k3 / d log pi_theta(o) = 1 - rho,    rho = pi_ref(o) / pi_theta(o),

    for k3 = rho - log rho - 1 (:func:`kl_k3`) with the sample o fixed.
    Its expectation E_{o~pi_theta}[grad log pi_theta(o) (1 - rho)] = -sum_o pi_ref(o) grad log
    pi_theta(o) = grad KL(pi_ref || pi_theta): the *other* direction. k3 estimates the value of
    KL(pi_theta || pi_ref) without bias, but its gradient as implemented does not estimate that
    KL's gradient (:func:`kl_weight` does).
    """
    _check_pair(logp, logp_ref)
    return (1 - torch.exp(logp_ref - logp)).detach()


_ESTIMATOR_FNS = {"k1": kl_k1, "k2": kl_k2, "k3": kl_k3}


def kl_penalty(logp: torch.Tensor, logp_ref: torch.Tensor, *, estimator: str, placement: str,
               logp_old: torch.Tensor | None = None) -> torch.Tensor:
    r"""The per-sample KL penalty term as a trainer differentiates it (chapter 13).

    With k = k1, k2 or k3 (``estimator``) of (``logp``, ``logp_ref``) and, when ``logp_old`` is
    given, the importance weight r = exp(logp - logp_old) (with its gradient):

    * ``placement="loss"``: k, or r k with ``logp_old``; the gradient is grad k (or
      grad(r k) = r k grad log pi + r grad k);
    * ``placement="reward"``: sg(k) logp, or sg(k) r with ``logp_old``; the gradient is
      sg(k) grad log pi (or sg(k) r grad log pi). The value is a surrogate, not an estimate of
      the KL; only its gradient means something.

    The objective to maximise subtracts beta times the (masked) mean of this term. Expected
    gradients, for samples from pi_theta (or from pi_old with ``logp_old``), proved exactly in
    chapter 13: loss k1 -> 0, loss k2 -> grad KL(pi||ref), loss k3 -> grad KL(ref||pi); loss
    r k1 and r k3 -> grad KL(pi||ref); reward k1 -> grad KL(pi||ref). Raises ``ValueError``
    naming the argument for an unknown estimator or placement, or tensors that do not match.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    k = _ESTIMATOR_FNS[estimator](logp, logp_ref)
    weight = None
    if logp_old is not None:
        V.tensor(logp_old, "logp_old", nonempty=True)
        V.same_shape(logp=logp, logp_old=logp_old)
        weight = torch.exp(logp - logp_old.detach())
    if placement == "loss":
        return k if weight is None else weight * k
    return k.detach() * (logp if weight is None else weight)
