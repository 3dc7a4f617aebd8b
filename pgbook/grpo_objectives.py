"""GRPO's objectives and its descendants: one clipped objective, its knobs, and its weight Psi.

Chapters 9 and 13 (``book/09_grpo``, ``book/13_grpo_variants``). Section 1.8 of the source
writes GRPO (Shao et al. 2024, DeepSeekMath) for one prompt q and G sampled answers o_1..o_G
with group-relative advantages A_i (:mod:`pgbook.returns`). Every objective here is a J to
*maximise* with a weight Psi (detached) such that

    grad J = (1/B) sum_i sum_t Psi_{i,t} grad log pi_theta(o_{i,t} | q, o_{i,<t}),

the same gradient as ``policy_gradient_surrogate(logp, Psi)`` (chapter 4's surrogate). The
variants LLM trainers run differ in four knobs of :func:`grpo`, each a parameter:

* ``aggregation`` (:data:`AGGREGATIONS`, :func:`token_weights`): how the token terms are
  averaged: per answer then over answers (GRPO, 1/|o_i|), over every token of the batch (DAPO,
  TRL's ``bnpo``/``dapo``), by a constant (Dr. GRPO), or summed (REINFORCE on log pi(o_i|q));
* ``eps_high``: the clip's upper bound 1 + eps_high (DAPO's clip-higher; default eps);
* ``importance_level`` (:data:`IMPORTANCE_LEVELS`): a ratio per token (GRPO) or GSPO's
  geometric mean per answer;
* ``kl_estimator`` / ``kl_placement``: the KL penalty's estimator k1/k2/k3 and whether it is a
  loss term or a detached reward (:func:`pgbook.kl_estimators.kl_penalty`).

The named variants are :func:`grpo` with their papers' settings: :func:`dr_grpo`,
:func:`dapo`, :func:`gspo`; :func:`cispo` clips the importance weight instead of the
objective; :func:`grpo_sequence` is the source's one-ratio-per-answer form.

Layout: ``logp``, ``logp_old``, ``logp_ref`` and ``mask`` have shape (B, L): row i is one
answer (B = num_prompts * G answers), padded to L tokens. ``logp[i, t]`` is
log pi_theta(o_{i,t} | q, o_{i,<t}) (differentiable); ``logp_old`` (the sampling policy) and
``logp_ref`` (the frozen reference) are constants. ``mask`` (bool, or 0/1) marks the valid
tokens; every row needs at least one, and padded entries may hold any finite number.
``adv`` has shape (B,): one advantage per answer.

The clipped part reuses PPO-Clip (chapter 8): min(r A, clip(r, 1-eps, 1+eps_high) A) is
positively homogeneous in A, so a weighted sum of token terms *is*
:func:`pgbook.objectives.ppo_clip` with the per-token advantage w_{i,t} A_i, and its weight is
:func:`pgbook.objectives.ppo_clip_weight` (1_not-clip r A) with that advantage.
"""

from __future__ import annotations

import torch

from . import _validate as V
from .kl_estimators import ESTIMATORS, PLACEMENTS, kl_k3, kl_penalty
from .objectives import ppo_clip, ppo_clip_weight

__all__ = [
    "AGGREGATIONS",
    "IMPORTANCE_LEVELS",
    "cispo",
    "cispo_weight",
    "dapo",
    "dapo_weight",
    "dr_grpo",
    "dr_grpo_weight",
    "grpo",
    "grpo_sequence",
    "grpo_sequence_weight",
    "grpo_weight",
    "gspo",
    "gspo_weight",
    "token_weights",
]

#: how token terms are averaged (:func:`token_weights`)
AGGREGATIONS = ("sequence_mean", "token_mean", "constant", "sum")
#: where the importance ratio is taken: per token, or GSPO's length-normalised per answer
IMPORTANCE_LEVELS = ("token", "sequence")


# --------------------------------------------------------------------------------------------
# Checks and the aggregation weights.
# --------------------------------------------------------------------------------------------

def _lengths(mask: torch.Tensor) -> torch.Tensor:
    lengths = mask.sum(dim=1)
    empty = torch.nonzero(lengths == 0).flatten().tolist()
    if empty:
        raise ValueError(f"mask row(s) {empty} mark no valid token: every answer needs at least "
                         "one (its end-of-answer token counts)")
    return lengths


def _answer_norms(mask, aggregation, normalizer, dtype) -> torch.Tensor:
    """n_i (B,) with w_{i,t} = mask_{i,t} / (B n_i): |o_i|, the mean length, C, or 1."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if normalizer is not None and aggregation != "constant":
        raise ValueError(f"normalizer is the constant of aggregation='constant'; got normalizer="
                         f"{normalizer!r} with aggregation={aggregation!r}")
    lengths = _lengths(mask).to(dtype)
    B, L = mask.shape
    if aggregation == "sequence_mean":
        return lengths
    if aggregation == "token_mean":
        return torch.full((B,), lengths.sum().item() / B, dtype=dtype)
    if aggregation == "sum":
        return torch.ones(B, dtype=dtype)
    C = L if normalizer is None else V.number(normalizer, "normalizer", low=0.0, low_open=True)
    if C < lengths.max().item():
        raise ValueError(f"normalizer must be at least the longest answer "
                         f"({int(lengths.max().item())} tokens), got {C}")
    return torch.full((B,), float(C), dtype=dtype)


def token_weights(mask: torch.Tensor, aggregation: str, *, normalizer: float | None = None,
                  dtype: torch.dtype | None = None) -> torch.Tensor:
    r"""The weight w_{i,t} each valid token's term gets in J = sum_{i,t} w_{i,t} c_{i,t}
    (chapter 13, "Aggregation"), shape (B, L), 0 at padding; w_{i,t} = mask_{i,t} / (B n_i):

    * ``"sequence_mean"`` (GRPO, DeepSeekMath eq. 3): n_i = |o_i|, the mean over each
      answer's tokens, then over the B answers;
    * ``"token_mean"`` (DAPO, Yu et al. 2025 eq. 8; TRL's ``bnpo`` and ``dapo``):
      n_i = (1/B) sum_j |o_j|, i.e. w = 1 / sum_j |o_j|, one mean over every token of the batch;
    * ``"constant"`` (Dr. GRPO, Liu et al. 2025): n_i = C = ``normalizer`` (default L, the
      padded width; TRL uses ``max_completion_length``, which a batch may be padded to less
      than). C must be at least the longest answer (else it is not a budget);
    * ``"sum"`` (REINFORCE on the whole answer; RLOO, Ahmadian et al. 2024): n_i = 1, so
      sum_t w log pi(o_{i,t}|...) = log pi(o_i|q) / B.

    ``mask`` (B, L) bool or 0/1, every row with a valid token. ``normalizer`` only with
    ``"constant"``. ``dtype`` defaults to torch's default dtype.
    """
    mask = V.mask(mask, "mask", ndim=2)
    if mask.shape[0] == 0:
        raise ValueError(f"mask must have at least one answer, got shape {tuple(mask.shape)}")
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    norms = _answer_norms(mask, aggregation, normalizer, dtype)
    return mask.to(dtype) / (mask.shape[0] * norms[:, None])


def _check(logp, logp_old, logp_ref, adv, mask, eps, eps_high, beta):
    """Validate a GRPO batch; return (logp, logp_old, logp_ref) zeroed at padding, the bool
    mask, and the checked eps, eps_high, beta. ``logp_ref`` may be None (no KL term)."""
    pairs = [("logp", logp), ("logp_old", logp_old)]
    if logp_ref is not None:
        pairs.append(("logp_ref", logp_ref))
    for name, t in pairs:
        V.tensor(t, name, ndim=2)
    V.same_shape(**dict(pairs))
    if logp.numel() == 0:
        raise ValueError(f"logp must have at least one answer and one token, got shape "
                         f"{tuple(logp.shape)}")
    V.tensor(adv, "adv", ndim=1)
    if adv.shape[0] != logp.shape[0]:
        raise ValueError(f"adv must have one advantage per answer: shape ({logp.shape[0]},) for "
                         f"logp of shape {tuple(logp.shape)}, got {tuple(adv.shape)}")
    mask = V.mask(mask, "mask", ndim=2)
    V.same_shape(logp=logp, mask=mask)
    _lengths(mask)
    eps, eps_high = V.clip_bounds(eps, eps_high)
    beta = V.number(beta, "beta", low=0.0)
    zero = torch.zeros((), dtype=logp.dtype)
    # Padding holds arbitrary finite numbers; zero it so exp() in the ratio cannot overflow.
    logp, logp_old = (torch.where(mask, x, zero) for x in (logp, logp_old))
    if logp_ref is not None:
        logp_ref = torch.where(mask, logp_ref, zero)
    return logp, logp_old, logp_ref, mask, eps, eps_high, beta


def _check_knobs(aggregation, importance_level, kl_estimator, kl_placement):
    if aggregation not in AGGREGATIONS:
        raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")
    if importance_level not in IMPORTANCE_LEVELS:
        raise ValueError(f"importance_level must be one of {IMPORTANCE_LEVELS}, "
                         f"got {importance_level!r}")
    if kl_estimator not in ESTIMATORS:
        raise ValueError(f"kl_estimator must be one of {ESTIMATORS}, got {kl_estimator!r}")
    if kl_placement not in PLACEMENTS:
        raise ValueError(f"kl_placement must be one of {PLACEMENTS}, got {kl_placement!r}")


def _kl_score_weight(logp, logp_ref, estimator, placement):
    """d(kl_penalty)/d logp, elementwise, in closed form (the sample held fixed)."""
    d = logp - logp_ref
    if placement == "reward":  # sg(k) logp
        return {"k1": d, "k2": 0.5 * d**2, "k3": torch.expm1(-d) + d}[estimator]
    return {"k1": torch.ones_like(d), "k2": d, "k3": -torch.expm1(-d)}[estimator]


# --------------------------------------------------------------------------------------------
# The general clipped objective and its weight.
# --------------------------------------------------------------------------------------------

def _objective(logp, logp_old, logp_ref, adv, mask, eps, eps_high, beta, norms, level,
               estimator, placement, ratio_weight, *, weight: bool):
    """J = (1/B) sum_{i,t} (mask / n_i) [clip term - beta q_{i,t} k_{i,t}], or Psi (B, L) if
    ``weight``; q = 1, or the clip term's ratio (r_{i,t} or s_i) with ``ratio_weight``."""
    L = logp.shape[1]
    adv = adv.detach()
    if level == "token":
        token_adv = adv[:, None] * mask / norms[:, None]  # A_i / n_i, 0 at padding
        if weight:
            psi = ppo_clip_weight(logp, logp_old, token_adv, eps, eps_high)
        else:  # (1/B) sum_{i,t} c_{i,t} / n_i
            clipped = L * ppo_clip(logp, logp_old, token_adv, eps, eps_high)
    else:  # GSPO: s_i = exp(mean_t (logp - logp_old)), one clip per answer
        lengths = mask.sum(dim=1).to(logp.dtype)
        mean, mean_old = logp.sum(1) / lengths, logp_old.sum(1) / lengths
        answer_adv = adv * lengths / norms  # (1/B) sum_i (|o_i| / n_i) f_i
        if weight:
            psi_answer = ppo_clip_weight(mean, mean_old, answer_adv, eps, eps_high)
            psi = psi_answer[:, None] * mask / lengths[:, None]
        else:
            clipped = ppo_clip(mean, mean_old, answer_adv, eps, eps_high)
    if logp_ref is None or beta == 0:
        return psi.detach() if weight else clipped
    w = mask / norms[:, None]
    k = kl_penalty(logp, logp_ref, estimator=estimator, placement=placement)
    if ratio_weight:  # the clip term's own ratio, with its gradient (placement "loss" only)
        log_q = logp - logp_old if level == "token" else (mean - mean_old)[:, None]
        q = torch.exp(log_q)
    if weight:
        kl_psi = _kl_score_weight(logp, logp_ref, estimator, placement) * w
        if ratio_weight:  # d(q k)/d logp: q (k + k') per token; s_i k' + s_i/|o_i| sum_t w k
            kl_psi = q * kl_psi + (q * k * w if level == "token" else
                                   q * mask / lengths[:, None] * (k * w).sum(1, keepdim=True))
        return (psi - beta * kl_psi).detach()
    if ratio_weight:
        k = q * k
    return clipped - beta * ((k * mask).sum(dim=1) / norms).mean()


def _grpo(logp, logp_old, logp_ref, adv, mask, eps, beta, eps_high, aggregation, normalizer,
          importance_level, kl_estimator, kl_placement, kl_ratio_weight, weight):
    _check_knobs(aggregation, importance_level, kl_estimator, kl_placement)
    V.flag(kl_ratio_weight, "kl_ratio_weight")
    if kl_ratio_weight and kl_placement != "loss":
        raise ValueError(f"kl_ratio_weight weights the KL term in the loss: it needs "
                         f"kl_placement='loss', got {kl_placement!r}")
    logp, logp_old, logp_ref, mask, eps, eps_high, beta = _check(
        logp, logp_old, logp_ref, adv, mask, eps, eps_high, beta)
    norms = _answer_norms(mask, aggregation, normalizer, logp.dtype)
    return _objective(logp, logp_old, logp_ref, adv, mask, eps, eps_high, beta, norms,
                      importance_level, kl_estimator, kl_placement, kl_ratio_weight,
                      weight=weight)


def grpo(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor, adv: torch.Tensor,
         mask: torch.Tensor, eps: float, beta: float, *, eps_high: float | None = None,
         aggregation: str = "sequence_mean", normalizer: float | None = None,
         importance_level: str = "token", kl_estimator: str = "k3",
         kl_placement: str = "loss", kl_ratio_weight: bool = False) -> torch.Tensor:
    r"""GRPO's objective (DeepSeekMath eq. 3; source section 1.8; chapters 9 and 13):

        J = sum_i sum_t w_{i,t} [ min(r_{i,t} A_i, clip(r_{i,t}, 1-eps, 1+eps_high) A_i)
                                  - beta k_{i,t} ],

    with the defaults DeepSeekMath's: w_{i,t} = mask_{i,t} / (B |o_i|) (``aggregation``, see
    :func:`token_weights`), the per-token ratio r_{i,t} = pi_theta(o_{i,t}|q,o_{i,<t}) /
    pi_old(o_{i,t}|q,o_{i,<t}), eps_high = eps, and k_{i,t} = k3 of the token's log-probabilities
    under pi_theta and pi_ref in the loss (``kl_estimator``, ``kl_placement``:
    :func:`pgbook.kl_estimators.kl_penalty`). ``importance_level="sequence"`` replaces every
    r_{i,t} of answer i by GSPO's s_i = exp((1/|o_i|) sum_t log r_{i,t}) (:func:`gspo`).
    ``kl_ratio_weight=True`` multiplies each token's k by that same ratio, r_{i,t} (or s_i),
    with its gradient: beta r k, whose expected gradient under pi_old is grad KL(pi || ref)
    for k1 and k3 (chapter 13's table; DeepSeek-V3.2's unbiased KL, TRL's
    ``use_bias_correction_kl``, on by default there); it needs ``kl_placement="loss"``.
    Shapes and conventions: see the module docstring. The source's one ratio per answer:
    :func:`grpo_sequence`.
    """
    return _grpo(logp, logp_old, logp_ref, adv, mask, eps, beta, eps_high, aggregation,
                 normalizer, importance_level, kl_estimator, kl_placement, kl_ratio_weight,
                 weight=False)


def grpo_weight(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor,
                adv: torch.Tensor, mask: torch.Tensor, eps: float, beta: float, *,
                eps_high: float | None = None, aggregation: str = "sequence_mean",
                normalizer: float | None = None, importance_level: str = "token",
                kl_estimator: str = "k3", kl_placement: str = "loss",
                kl_ratio_weight: bool = False) -> torch.Tensor:
    r"""The score weight of :func:`grpo`, shape (B, L), detached (chapters 9 and 13):

        Psi_{i,t} = B w_{i,t} [ 1_not-clip(r_{i,t}, A_i) r_{i,t} A_i - beta g_{i,t} ]   (token)
        Psi_{i,t} = B W_i 1_not-clip(s_i, A_i) s_i A_i mask_{i,t} / |o_i|
                    - beta B w_{i,t} g_{i,t}                                       (sequence)

    with W_i = sum_t w_{i,t}, and g the derivative of the KL term in log pi_theta of the token
    with the sample fixed: 1 (k1), log(pi/pi_ref) (k2), 1 - rho (k3) in the loss, or the
    estimator's value in the reward (rho = pi_ref / pi_theta). With the defaults,
    Psi = (mask/|o_i|) [1_not-clip r A - beta (1 - rho)]: the source's GRPO row token by token,
    plus what k3 differentiates to. GSPO's line follows from grad s_i = s_i (1/|o_i|) sum_t
    grad logp_{i,t}: every token of an answer gets the same weight. At a ratio exactly on a
    bound it follows torch's autograd, as :func:`pgbook.objectives.ppo_clip_weight` does.
    With ``kl_ratio_weight`` the KL part beta B w_{i,t} g_{i,t} becomes beta B w_{i,t} r_{i,t}
    (g_{i,t} + k_{i,t}) (grad r = r grad logp), and at the sequence level beta B [w_{i,t} s_i
    g_{i,t} + s_i (mask_{i,t}/|o_i|) sum_t' w_{i,t'} k_{i,t'}] (grad s_i reaches every token).
    """
    return _grpo(logp, logp_old, logp_ref, adv, mask, eps, beta, eps_high, aggregation,
                 normalizer, importance_level, kl_estimator, kl_placement, kl_ratio_weight,
                 weight=True)


# --------------------------------------------------------------------------------------------
# The source's form: one ratio per answer.
# --------------------------------------------------------------------------------------------

def _sequence_form(logp, logp_old, logp_ref, adv, mask, eps, beta, eps_high, weight):
    logp, logp_old, logp_ref, mask, eps, eps_high, beta = _check(
        logp, logp_old, logp_ref, adv, mask, eps, eps_high, beta)
    seq, seq_old, seq_ref = (x.sum(dim=1) for x in (logp, logp_old, logp_ref))
    if weight:
        psi = (ppo_clip_weight(seq, seq_old, adv, eps, eps_high)
               - beta * (1 - torch.exp(seq_ref - seq)))
        return (psi.detach()[:, None] * mask).detach()
    return ppo_clip(seq, seq_old, adv, eps, eps_high) - beta * kl_k3(seq, seq_ref).mean()


def grpo_sequence(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor,
                  adv: torch.Tensor, mask: torch.Tensor, eps: float, beta: float, *,
                  eps_high: float | None = None) -> torch.Tensor:
    r"""GRPO as the source writes it (section 1.8; chapter 9), one ratio per answer:

        J = (1/B) sum_i [ min(R_i A_i, clip(R_i, 1-eps, 1+eps_high) A_i) - beta k3_i ],
        R_i = pi_theta(o_i|q) / pi_old(o_i|q) = exp(sum_t mask_{i,t} (logp - logp_old)_{i,t}),

    and k3_i = :func:`kl_k3` of the whole answer's log-probabilities, an unbiased estimate of
    the sequence-level KL(pi_theta(.|q) || pi_ref(.|q)) (the source leaves the KL's estimator
    unspecified). This is PPO-Clip with each answer as one action
    (:func:`pgbook.objectives.ppo_clip` on the answers' log-probabilities). The clip acts on a
    product of |o_i| token ratios, so long answers leave [1-eps, 1+eps] first (GSPO's
    geometric mean, :func:`gspo`, takes the |o_i|-th root).
    """
    return _sequence_form(logp, logp_old, logp_ref, adv, mask, eps, beta, eps_high,
                          weight=False)


def grpo_sequence_weight(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor,
                         adv: torch.Tensor, mask: torch.Tensor, eps: float, beta: float, *,
                         eps_high: float | None = None) -> torch.Tensor:
    r"""The score weight of :func:`grpo_sequence`, shape (B, L), detached:

        Psi_{i,t} = mask_{i,t} [ 1_not-clip(R_i, A_i) R_i A_i - beta (1 - rho_i) ],

    the same for every token of answer i (rho_i = pi_ref(o_i|q) / pi_theta(o_i|q)), because
    grad log pi_theta(o_i|q) = sum_t grad logp_{i,t}. This is the source's GRPO row
    (1/G) sum_i grad log pi(o_i|q) 1_not-clip(i) r_i A_i, plus what k3 differentiates to.
    """
    return _sequence_form(logp, logp_old, logp_ref, adv, mask, eps, beta, eps_high,
                          weight=True)


# --------------------------------------------------------------------------------------------
# The named variants: Dr. GRPO, DAPO, GSPO.
# --------------------------------------------------------------------------------------------

def dr_grpo(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor,
            adv: torch.Tensor, mask: torch.Tensor, eps: float, beta: float, *,
            normalizer: float | None = None) -> torch.Tensor:
    r"""Dr. GRPO's objective (Liu et al. 2025, "GRPO done right", arXiv 2503.20783; ch. 9, 13):

        J = (1/B) sum_i (1/C) sum_t mask_{i,t} [ min(r_{i,t} A_i, clip(r_{i,t}, 1-eps, 1+eps) A_i)
                                                 - beta k3_{i,t} ],

    :func:`grpo` with ``aggregation="constant"``: 1/|o_i| replaced by one constant 1/C
    (``normalizer``, at least the longest answer; default L, the padded width, which is the
    generation budget when every batch is padded to it, as in the authors' code and the
    book's trainer). With the advantages A_i = r_i - mean(r) of
    ``group_advantages(..., scale_by_std=False)`` its gradient at theta = theta_old is
    (1 - 1/G)/C times an unbiased policy gradient: no answer gains or loses weight because of
    its length. C must not depend on the batch: a batch padded only to its own longest answer
    makes the default L vary with the batch and brings a length bias back (chapter 13 shows
    it exactly); pass the budget as ``normalizer`` then. (Liu et al. also drop the KL term;
    beta = 0.)
    """
    return grpo(logp, logp_old, logp_ref, adv, mask, eps, beta, aggregation="constant",
                normalizer=normalizer)


def dr_grpo_weight(logp: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor,
                   adv: torch.Tensor, mask: torch.Tensor, eps: float, beta: float, *,
                   normalizer: float | None = None) -> torch.Tensor:
    r"""The score weight of :func:`dr_grpo`, shape (B, L), detached:

        Psi_{i,t} = (mask_{i,t} / C) [ 1_not-clip(r_{i,t}, A_i) r_{i,t} A_i
                                       - beta (1 - rho_{i,t}) ].
    """
    return grpo_weight(logp, logp_old, logp_ref, adv, mask, eps, beta, aggregation="constant",
                       normalizer=normalizer)


def dapo(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, *,
         eps: float = 0.2, eps_high: float = 0.28) -> torch.Tensor:
    r"""DAPO's objective (Yu et al. 2025, arXiv 2503.14476, eq. 8; chapter 13):

        J = (1 / sum_i |o_i|) sum_i sum_t mask_{i,t} min(r_{i,t} A_i,
                                                         clip(r_{i,t}, 1-eps, 1+eps_high) A_i),

    :func:`grpo` with the token mean over the batch, the asymmetric clip ("clip-higher",
    eps = 0.2, eps_high = 0.28) and no KL term. Its other two changes act on the batch, not on
    J: dynamic sampling (:func:`pgbook.returns.informative_groups`) and the overlong-answer
    reward shaping (not used here).
    """
    return grpo(logp, logp_old, None, adv, mask, eps, 0.0, eps_high=eps_high,
                aggregation="token_mean")


def dapo_weight(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
                mask: torch.Tensor, *, eps: float = 0.2, eps_high: float = 0.28) -> torch.Tensor:
    r"""The score weight of :func:`dapo`, shape (B, L), detached:

        Psi_{i,t} = (B mask_{i,t} / sum_j |o_j|) 1_not-clip(r_{i,t}, A_i) r_{i,t} A_i,

    with 1_not-clip of the asymmetric range [1 - eps, 1 + eps_high].
    """
    return grpo_weight(logp, logp_old, None, adv, mask, eps, 0.0, eps_high=eps_high,
                       aggregation="token_mean")


def gspo(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, *,
         eps: float = 3e-4, eps_high: float = 4e-4) -> torch.Tensor:
    r"""GSPO's objective (Zheng et al. 2025, arXiv 2507.18071, eqs. 5-7; chapter 13):

        J = (1/B) sum_i min(s_i A_i, clip(s_i, 1-eps, 1+eps_high) A_i),
        s_i = (pi_theta(o_i|q) / pi_old(o_i|q))^(1/|o_i|) = exp((1/|o_i|) sum_t log r_{i,t}),

    one length-normalised ratio per answer, clipped per answer (the paper's ranges: 3e-4 and
    4e-4, two orders of magnitude below a token ratio's, since s_i is a geometric mean), no KL.
    :func:`grpo` with ``importance_level="sequence"``.
    """
    return grpo(logp, logp_old, None, adv, mask, eps, 0.0, eps_high=eps_high,
                importance_level="sequence")


def gspo_weight(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
                mask: torch.Tensor, *, eps: float = 3e-4, eps_high: float = 4e-4) -> torch.Tensor:
    r"""The score weight of :func:`gspo`, shape (B, L), detached (GSPO eq. 10):

        Psi_{i,t} = 1_not-clip(s_i, A_i) s_i A_i mask_{i,t} / |o_i|,

    the same for every token of an answer: grad s_i = s_i (1/|o_i|) sum_t grad logp_{i,t}.
    """
    return grpo_weight(logp, logp_old, None, adv, mask, eps, 0.0, eps_high=eps_high,
                       importance_level="sequence")


# --------------------------------------------------------------------------------------------
# CISPO: clip the importance weight, keep every token's gradient.
# --------------------------------------------------------------------------------------------

def _cispo(logp, logp_old, adv, mask, eps_high, eps, aggregation, normalizer, weight):
    if eps is None:
        eps_high = V.number(eps_high, "eps_high", low=0.0, low_open=True)
        logp, logp_old, _, mask, _, _, _ = _check(logp, logp_old, None, adv, mask, 0.5, None, 0.0)
    else:
        logp, logp_old, _, mask, eps, eps_high, _ = _check(logp, logp_old, None, adv, mask, eps,
                                                           eps_high, 0.0)
    norms = _answer_norms(mask, aggregation, normalizer, logp.dtype)
    low = 0.0 if eps is None else 1 - eps
    clipped = torch.exp(logp - logp_old).clamp(low, 1 + eps_high).detach()
    psi = (clipped * adv.detach()[:, None] * mask / norms[:, None]).detach()
    return psi if weight else (psi * logp).sum() / logp.shape[0]


def cispo(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor, mask: torch.Tensor, *,
          eps_high: float, eps: float | None = None, aggregation: str = "token_mean",
          normalizer: float | None = None) -> torch.Tensor:
    r"""CISPO's objective (MiniMax-M1, arXiv 2506.13585, eq. 4; chapter 13):

        J = sum_i sum_t w_{i,t} sg(clip(r_{i,t}, 1-eps, 1+eps_high)) A_i log pi_theta(o_{i,t}|...),

    REINFORCE with a clipped, detached importance weight: the clip bounds the weight but, unlike
    PPO-Clip's, never removes a token's gradient. w is :func:`token_weights` (default the token
    mean over the batch, as in the paper); ``eps=None`` (the paper's choice) sets no lower
    bound. The value is a surrogate (its gradient is the point), not an estimate of J.
    """
    return _cispo(logp, logp_old, adv, mask, eps_high, eps, aggregation, normalizer, False)


def cispo_weight(logp: torch.Tensor, logp_old: torch.Tensor, adv: torch.Tensor,
                 mask: torch.Tensor, *, eps_high: float, eps: float | None = None,
                 aggregation: str = "token_mean",
                 normalizer: float | None = None) -> torch.Tensor:
    r"""The score weight of :func:`cispo`, shape (B, L), detached:

        Psi_{i,t} = B w_{i,t} clip(r_{i,t}, 1-eps, 1+eps_high) A_i,

    nonzero wherever A_i is, including the regions where PPO-Clip's 1_not-clip is 0.
    """
    return _cispo(logp, logp_old, adv, mask, eps_high, eps, aggregation, normalizer, True)
