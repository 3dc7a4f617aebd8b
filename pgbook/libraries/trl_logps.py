r"""TRL's GRPO loss (TRL 1.16.0) on log-probabilities it is handed: its KL term's expected
gradient by exact enumeration, and the loss as a conformance ``loss_fn``.

The stand-in trainer of :func:`pgbook.libraries.trl_grpo.stand_in` gets a
``_get_per_token_logps_and_entropies`` that returns the given log-probabilities, so every
line of ``GRPOTrainer._compute_loss`` after it (ratio, clip, k3 and its importance weight,
the ``loss_type`` reduction) is TRL's own, and the float32 LM head is bypassed: these checks
hold to float64 bounds.

* :func:`k3_gradient_exact`: E_{o ~ pi}[grad of TRL's KL term] over every answer of a
  one-token categorical, with ``use_bias_correction_kl`` on (TRL's default: k3 r, grad
  KL(pi || ref)) or off (k3, grad KL(ref || pi));
* :func:`trl_grpo_loss_fn`: ``(logp, logp_old, logp_ref, adv, mask) -> loss`` for
  :func:`pgbook.conformance.check_grpo_loss`; :func:`conformance_report` runs it.
"""

from __future__ import annotations

import types
from dataclasses import dataclass

import torch

from .. import _validate as V
from ..grpo_objectives import IMPORTANCE_LEVELS
from . import torch_defaults
from .trl_grpo import U64, D, stand_in

__all__ = ["CONFORMANCE_LOSS_TYPES", "KLGradient", "conformance_report", "k3_gradient_exact",
           "trl_grpo_loss_fn"]

#: the loss types pgbook.conformance.check_grpo_loss knows
CONFORMANCE_LOSS_TYPES = ("grpo", "bnpo", "dapo", "dr_grpo")


# --------------------------------------------------------------------------------------------
# TRL's k3 term: its expected gradient, by enumeration.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KLGradient:
    """E_{o~pi}[grad of TRL's KL term] (every answer enumerated) against the two candidate
    gradients; ``err_ref_pi`` against grad KL(pi_ref || pi), ``err_pi_ref`` against
    grad KL(pi || pi_ref), and the tolerance. ``direction`` is the one claimed:
    "KL(pi||ref)" with ``bias_correction_kl`` (k3 r), "KL(ref||pi)" without (k3)."""

    vocab: int
    bias_correction_kl: bool
    err_ref_pi: float
    err_pi_ref: float
    tol: float

    @property
    def direction(self) -> str:
        return "KL(pi||ref)" if self.bias_correction_kl else "KL(ref||pi)"

    @property
    def ratio(self) -> float:
        """The error from the claimed direction's gradient over its bound."""
        return (self.err_pi_ref if self.bias_correction_kl else self.err_ref_pi) / self.tol

    @property
    def wrong_ratio(self) -> float:
        """The error from the other direction's gradient over the bound (must exceed 1)."""
        return (self.err_ref_pi if self.bias_correction_kl else self.err_pi_ref) / self.tol

    @property
    def passed(self) -> bool:
        """The expected gradient is the claimed direction's and not the other's."""
        return self.ratio <= 1.0 < self.wrong_ratio

    def __str__(self) -> str:
        mark = "holds" if self.passed else "FAILS"
        kl = "k3 x r" if self.bias_correction_kl else "k3"
        return (f"E[grad TRL {kl}], vocabulary {self.vocab}: grad {self.direction} {mark}; "
                f"from grad KL(ref || pi) {self.err_ref_pi:.1e}, from grad KL(pi || ref) "
                f"{self.err_pi_ref:.1e} (tolerance {self.tol:.1e})")


def _patched(tr, logp):
    """Make the stand-in's ``_get_per_token_logps_and_entropies`` return ``logp``."""
    def fake(self, *args, **kwargs):
        return logp, torch.zeros_like(logp), None
    tr._get_per_token_logps_and_entropies = types.MethodType(fake, tr)
    return tr


def _trl_call(tr, logp, logp_old, logp_ref, adv, mask):
    B, L = logp.shape
    inputs = dict(prompt_ids=torch.zeros(B, 1, dtype=torch.long),
                  prompt_mask=torch.ones(B, 1, dtype=torch.long),
                  completion_ids=torch.zeros(B, L, dtype=torch.long),
                  completion_mask=mask.to(logp.dtype), advantages=adv,
                  old_per_token_logps=logp_old, ref_per_token_logps=logp_ref,
                  num_items_in_batch=mask.to(logp.dtype).sum())
    return _patched(tr, logp)._compute_loss(None, inputs)


@torch_defaults
def k3_gradient_exact(vocab: int = 8, *, seed: int = 0,
                      bias_correction_kl: bool = True) -> KLGradient:
    r"""The expected gradient of TRL's KL term under on-policy sampling, exactly.

    A one-token answer o ~ pi_theta = softmax(theta) over ``vocab`` tokens, pi_ref =
    softmax(theta_ref). For each o, TRL's ``_compute_loss`` (loss_type "grpo", beta = 1,
    A = 0, logp_old = logp: the clip term is 0) returns k3(o) = exp(ref_o - logp_o) -
    (ref_o - logp_o) - 1, times r = exp(logp - sg(logp)) (value 1, gradient grad log pi)
    with ``bias_correction_kl`` (TRL's default). Without it the gradient, o held fixed, is
    (1 - rho(o)) grad log pi(o), rho = pi_ref/pi, and sum_o pi(o)(1 - rho(o)) grad log pi(o)
    = -sum_o pi_ref(o) grad log pi(o) = grad KL(pi_ref || pi) = pi - pi_ref (chapter 13's
    table, cell (k3, loss, on-policy)). With it the gradient gains k3(o) grad log pi(o), and
    the sum is grad sum_o pi(o) k3(o) = grad KL(pi || pi_ref) (cell (k3, loss, weight r)):
    the direction whose value k3 estimates. Tolerance: vocab terms of float64 rounding,
    each <= 8 u64 m with m = 1 + max_o pi(o) (k3(o) + |1 - rho(o)|) bounding a term's size:
    tol = 8 (vocab + 8) m u64.
    """
    vocab = V.positive_int(vocab, "vocab", minimum=2)
    seed = V.positive_int(seed, "seed", minimum=0)
    V.flag(bias_correction_kl, "bias_correction_kl")
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(vocab, generator=g, dtype=D).requires_grad_(True)
    ref = torch.log_softmax(torch.randn(vocab, generator=g, dtype=D), -1)
    tr = stand_in("grpo", 1.0, 0.2, None, "token", None, None, bias_correction_kl)
    logpi = torch.log_softmax(theta, -1)
    expected = torch.zeros(vocab, dtype=D)
    one = torch.ones(1, 1, dtype=D)
    for o in range(vocab):
        lp = torch.log_softmax(theta, -1)[o].reshape(1, 1)
        loss = _trl_call(tr, lp, lp.detach(), ref[o].reshape(1, 1), torch.zeros(1, dtype=D),
                         one)
        (grad,) = torch.autograd.grad(loss, theta)
        expected += logpi[o].exp().detach() * grad
    pi = logpi.exp().detach()
    ref_pi = pi - ref.exp()
    theta2 = theta.detach().requires_grad_(True)
    lp2 = torch.log_softmax(theta2, -1)
    (pi_ref,) = torch.autograd.grad((lp2.exp() * (lp2 - ref)).sum(), theta2)
    with torch.no_grad():
        d = ref - logpi
        size = 1 + (pi * (torch.expm1(d) - d + (1 - d.exp()).abs())).max().item()
    return KLGradient(vocab, bias_correction_kl, (expected - ref_pi).abs().max().item(),
                      (expected - pi_ref).abs().max().item(), 8 * (vocab + 8) * size * U64)


# --------------------------------------------------------------------------------------------
# Conformance: TRL's loss code as a reader's loss_fn.
# --------------------------------------------------------------------------------------------

def trl_grpo_loss_fn(loss_type: str = "grpo", *, eps: float = 0.2,
                     eps_high: float | None = None, beta: float = 0.0,
                     bias_correction_kl: bool = True, max_completion_length: int = 8,
                     importance_level: str = "token"):
    r"""TRL 1.16.0's ``GRPOTrainer._compute_loss`` as ``loss_fn(logp, logp_old, logp_ref, adv,
    mask) -> loss`` (the signature of :func:`pgbook.conformance.check_grpo_loss`): a stand-in
    trainer whose ``_get_per_token_logps_and_entropies`` returns the given ``logp``, so
    every line after it (ratio, clip, k3, the ``loss_type`` reduction) is TRL's own. TRL
    minimises: the result is -J (``sign="loss"``). ``mask`` (B, L) 0/1 or bool.
    ``bias_correction_kl``: TRL's ``use_bias_correction_kl`` (its default True: k3 r)."""
    V.choice(loss_type, "loss_type", CONFORMANCE_LOSS_TYPES)
    V.flag(bias_correction_kl, "bias_correction_kl")
    eps, eps_high = V.clip_bounds(eps, eps_high)
    beta = V.number(beta, "beta", low=0.0)
    mcl = V.positive_int(max_completion_length, "max_completion_length")
    importance_level = V.choice(importance_level, "importance_level", IMPORTANCE_LEVELS)

    @torch_defaults
    def loss_fn(logp, logp_old, logp_ref, adv, mask):
        tr = stand_in(loss_type, beta, eps, eps_high, importance_level, mcl, None,
                       bias_correction_kl)
        return _trl_call(tr, logp, logp_old, logp_ref, adv, mask)

    return loss_fn


@torch_defaults
def conformance_report(loss_type: str = "grpo", *, stated: str | None = None,
                       beta: float = 0.0, bias_correction_kl: bool = True,
                       stated_ratio_weight: bool | None = None, eps: float = 0.2,
                       eps_high: float | None = None):
    """:func:`pgbook.conformance.check_grpo_loss` on :func:`trl_grpo_loss_fn` (``loss_type``,
    ``bias_correction_kl``) under the conventions ``stated`` and ``stated_ratio_weight``
    (default: TRL's own; a different one is a wrongly stated convention, which must fail).
    max_completion_length = 8."""
    from ..conformance import check_grpo_loss

    loss_type = V.choice(loss_type, "loss_type", CONFORMANCE_LOSS_TYPES)
    stated = loss_type if stated is None else V.choice(stated, "stated",
                                                      CONFORMANCE_LOSS_TYPES)
    V.flag(bias_correction_kl, "bias_correction_kl")
    weight = bias_correction_kl if stated_ratio_weight is None else V.flag(
        stated_ratio_weight, "stated_ratio_weight")
    fn = trl_grpo_loss_fn(loss_type, eps=eps, eps_high=eps_high, beta=beta,
                          bias_correction_kl=bias_correction_kl)
    return check_grpo_loss(fn, loss_type=stated, eps=eps, eps_high=eps_high, beta=beta,
                           kl_ratio_weight=weight,
                           max_completion_length=8 if stated == "dr_grpo" else None)
