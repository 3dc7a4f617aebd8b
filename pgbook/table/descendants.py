"""The gradient table's rows for GRPO's descendants: Dr. GRPO, DAPO, GSPO, CISPO and RLOO
(chapters 12 and 13), and the setting they are checked in.

Each variant has a row of its paper's weight Psi, with an objective and weight from
:mod:`pgbook.grpo_objectives` and a reference Psi written out again here with plain torch
(no pgbook objective or weight), and, where a plausible misreading teaches something, a row of
that misreading, expected to fail:

* ``dr-grpo`` / ``dr-grpo-len``: the constant normaliser 1/C, against GRPO's 1/|o_i|;
* ``dapo`` / ``dapo-sym``: clip-higher (eps = 0.2, eps_high = 0.28) and the token mean, against
  the symmetric indicator (wrong on 1+eps < r <= 1+eps_high with A > 0);
* ``gspo`` / ``gspo-tok``: one length-normalised ratio s_i per answer, shared by its tokens,
  against the per-token ratio r_{i,t};
* ``cispo`` / ``cispo-no-sg``: sg(clip(r)) A log pi, and the same surrogate without the
  stop-gradient (autograd then also differentiates the clip);
* ``rloo``: REINFORCE summed over an answer's tokens with leave-one-out advantages.

:data:`ANSWERS` is :data:`pgbook.table.settings.TOKENS`'s batch made for these rows: 8 answers
(two groups of G = 4) with token ratios in every region of both clips (within 1e-7 of
1 - eps, 1 + eps, 1 + eps_high on both sides, and one in DAPO's band (1.2, 1.28) for an answer
with A > 0 and one with A < 0), answers whose GSPO ratio s_i sits in every region of GSPO's
[1 - 3e-4, 1 + 4e-4], and edge cases: on-policy, all answers of full length, a group with
equal rewards. Every identity is sum over (i, t) of Psi_{i,t} (e_a - pi(.|s)) / B.
"""

from __future__ import annotations

import torch

from ..grpo_objectives import (
    cispo,
    cispo_weight,
    dapo,
    dapo_weight,
    dr_grpo,
    dr_grpo_weight,
    grpo,
    grpo_weight,
    gspo,
    gspo_weight,
)
from ..returns import rloo_advantages
from . import descendant_identities as sym
from .framework import Row, Setting
from .settings import EPS, TOKENS, random_policy_samples, sample_log_probs

__all__ = ["ANSWERS", "EPS_HIGH", "GROUP", "GROUP_SIZE", "GSPO_EPS", "GSPO_EPS_HIGH",
           "descendant_rows"]

f64 = torch.float64
EPS_HIGH = 0.28  # DAPO's clip-higher bound (and CISPO's), with eps = EPS = 0.2
GSPO_EPS, GSPO_EPS_HIGH = 3e-4, 4e-4  # GSPO's ranges (Zheng et al. 2025)
GROUP_SIZE = 4  # G: the 8 answers of a case are two groups of 4 (RLOO's leave-one-out)
GROUP = "GRPO's descendants"  # the name of these rows' group in pgbook.table.groups

_B, _L = 8, 5


def _near(gen, bounds) -> torch.Tensor:
    """One of ``bounds`` times (1 -+ 1e-7), at random: within 1e-7 of a kink, never on it."""
    k = int(torch.randint(0, 2 * len(bounds), (), generator=gen))
    return torch.tensor(bounds[k // 2] * (1 - 1e-7 if k % 2 == 0 else 1 + 1e-7), dtype=f64)


def _log_ratios(gen, lengths, adv) -> torch.Tensor:
    """Token log-ratios log(pi_theta / pi_old) (B, L): 0.2 N(0, 1), then answer 1 (A > 0) and
    answer 2 (A < 0) start with a ratio in DAPO's band, answers 3, 4 with one within 1e-7 of a
    token bound, and answers 5-7 have GSPO ratios s_i within 1e-7 of GSPO's bounds or spread
    over [1 - 6e-4, 1 + 8e-4] (tokens 1e-3 apart around them)."""
    x = 0.2 * torch.randn(_B, _L, generator=gen, dtype=f64)
    band = 1 + EPS + 1e-3 + (EPS_HIGH - EPS - 2e-3) * torch.rand(2, generator=gen, dtype=f64)
    x[1, 0], x[2, 0] = band.log()
    for i in (3, 4):
        x[i, 0] = _near(gen, (1 - EPS, 1 + EPS, 1 + EPS_HIGH)).log()
    for i in (5, 6, 7):
        n = int(lengths[i])
        noise = 1e-3 * torch.randn(n, generator=gen, dtype=f64)
        if i == 7:
            s = 1 - 2 * GSPO_EPS + 4 * (GSPO_EPS + GSPO_EPS_HIGH) * torch.rand((), generator=gen,
                                                                             dtype=f64) / 2
        else:
            s = _near(gen, (1 - GSPO_EPS, 1 + GSPO_EPS_HIGH))
        x[i, :n] = noise - noise.mean() + s.log()
    return x


def _answers_cases(gen: torch.Generator, n: int) -> list[tuple]:
    """(theta, states (B, L), actions (B, L), logp_old, logp_ref (B, L), adv (B,), mask (B, L),
    beta), B = 8 answers of 1-5 tokens; then three edge cases (see the module docstring). For
    the RLOO row ``adv`` holds the rewards of two groups of 4."""
    out = []
    for i in range(n + 3):
        theta, states, actions = random_policy_samples(gen, i, (_B, _L))
        lengths = torch.randint(1, _L + 1, (_B,), generator=gen)
        lengths[0] = 1
        if i == n + 1:  # edge case: every answer of the full length L (= Dr. GRPO's C)
            lengths[:] = _L
        adv = torch.randn(_B, generator=gen, dtype=f64)
        adv[0], adv[1], adv[2] = 0.0, adv[1].abs() + 0.1, -adv[2].abs() - 0.1
        if i == n + 2:  # edge case: the first group's rewards all equal
            adv[:GROUP_SIZE] = 0.7
        log_ratio = _log_ratios(gen, lengths, adv)
        logp = sample_log_probs(theta, states, actions)
        logp_ref = logp + 0.5 * torch.randn(_B, _L, generator=gen, dtype=f64)
        if i == n:  # edge case: on-policy (r = 1) and pi_ref = pi_theta (rho = 1)
            log_ratio, logp_ref = torch.zeros(_B, _L, dtype=f64), logp.clone()
        beta = 0.5 * torch.rand((), generator=gen, dtype=f64)
        out.append((theta, states, actions, logp - log_ratio, logp_ref, adv,
                    torch.arange(_L)[None] < lengths[:, None], beta))
    return out


ANSWERS = Setting("answers", "8 answers (2 groups of 4) of 1-5 tokens from a tabular softmax "
                  "policy, ratios in every region of both clips; closed-form score",
                  _answers_cases, TOKENS.score_weighted)


# ---- the weights by hand: plain torch, no pgbook objective or weight ----------------------

def _parts(theta, states, actions, logp_old, mask):
    """log pi (B, L), the ratio r_{i,t}, the float mask and the lengths |o_i| (B, 1)."""
    logp, m = sample_log_probs(theta, states, actions), mask.to(f64)
    r = torch.exp(torch.where(mask, logp - logp_old, torch.zeros((), dtype=f64)))
    return logp, r, m, m.sum(1, keepdim=True)


def _nc(r, adv, low, high):
    """1_not-clip with the range [1 - low, 1 + high]: 1 unless (A >= 0, r > 1 + high) or
    (A < 0, r < 1 - low)."""
    return (((adv >= 0) & (r <= 1 + high)) | ((adv < 0) & (r >= 1 - low))).to(f64)


def _dr_grpo_by_hand(length_norm: bool):
    """Psi = m (1_nc r A - beta (1 - rho)) / C with C = L, or / |o_i| (GRPO's, wrong here)."""
    def psi(theta, states, actions, logp_old, logp_ref, adv, mask, beta):
        logp, r, m, n = _parts(theta, states, actions, logp_old, mask)
        rho = torch.exp(torch.where(mask, logp_ref - logp, torch.zeros((), dtype=f64)))
        A = adv[:, None]
        term = _nc(r, A, EPS, EPS) * r * A - float(beta) * (1 - rho)
        return m * term / (n if length_norm else mask.shape[1])
    return psi


def _dapo_by_hand(high: float):
    """Psi = B m 1_nc(r, A; eps, high) r A / sum_j |o_j|: high = eps_high (DAPO's) or eps."""
    def psi(theta, states, actions, logp_old, logp_ref, adv, mask, beta):
        _, r, m, n = _parts(theta, states, actions, logp_old, mask)
        A = adv[:, None]
        return len(adv) * m * _nc(r, A, EPS, high) * r * A / n.sum()
    return psi


def _gspo_by_hand(per_token: bool):
    """Psi = 1_nc(s_i, A_i) s_i A_i m / |o_i| with s_i = exp(sum_t m log r / |o_i|), the same
    for every token of answer i; or with r_{i,t} in place of s_i (wrong)."""
    def psi(theta, states, actions, logp_old, logp_ref, adv, mask, beta):
        _, r, m, n = _parts(theta, states, actions, logp_old, mask)
        s = r if per_token else torch.exp((m * r.log()).sum(1, keepdim=True) / n)
        A = adv[:, None]
        return m * _nc(s, A, GSPO_EPS, GSPO_EPS_HIGH) * s * A / n
    return psi


def _cispo_by_hand(theta, states, actions, logp_old, logp_ref, adv, mask, beta):
    """Psi = B m min(r, 1 + eps_high) A / sum_j |o_j| (no lower bound, token mean)."""
    _, r, m, n = _parts(theta, states, actions, logp_old, mask)
    return len(adv) * m * torch.clamp(r, max=1 + EPS_HIGH) * adv[:, None] / n.sum()


def _cispo_no_sg(theta, states, actions, logp_old, logp_ref, adv, mask, beta):
    """CISPO's surrogate with the stop-gradient left out: (1/sum|o|) sum m clip(r) A log pi,
    differentiated through clip(r) too."""
    logp, m = sample_log_probs(theta, states, actions), mask.to(f64)
    r = torch.exp(torch.where(mask, logp - logp_old, torch.zeros((), dtype=f64)))
    return (m * torch.clamp(r, max=1 + EPS_HIGH) * adv[:, None] * logp).sum() / m.sum()


def _loo_by_hand(rewards):
    """A_i = r_i - (1/(G-1)) sum_{j != i} r_j within each group of G."""
    g = rewards.reshape(-1, GROUP_SIZE)
    return (g - (g.sum(1, keepdim=True) - g) / (GROUP_SIZE - 1)).reshape(-1)


def _rloo_by_hand(theta, states, actions, logp_old, logp_ref, adv, mask, beta):
    """Psi = m A_i^LOO: REINFORCE on log pi(o_i|q) = sum_t log pi(o_{i,t}|...)."""
    return mask.to(f64) * _loo_by_hand(adv)[:, None]


# ---- the rows -------------------------------------------------------------------------------

def _row(key, algorithm, form, psi, objective, weight, holds, sympy, reference=None, *,
         against="surrogate") -> Row:
    def lp(case):
        return sample_log_probs(case[0], case[1], case[2])

    return Row(key, algorithm, form, psi, against, "(not in the source)", "13", ANSWERS,
               lambda *case: objective(lp(case), *case[3:]),
               lambda *case: weight(lp(case), *case[3:]), holds, sympy, reference=reference)


def _dr_grpo_rows() -> list[Row]:
    def objective(lp, lo, lr, ad, mask, beta):
        return dr_grpo(lp, lo, lr, ad, mask, EPS, float(beta))

    def weight(lp, lo, lr, ad, mask, beta):
        return dr_grpo_weight(lp, lo, lr, ad, mask, EPS, float(beta))

    wrong = _dr_grpo_by_hand(length_norm=True)
    return [
        _row("dr-grpo", "Dr. GRPO", "paper", "(1_nc r_it A_i - β(1-ρ_it))/C", objective, weight,
             True, lambda: sym.dr_grpo_identity("constant"), _dr_grpo_by_hand(False),
             against="surrogate, k3 KL"),
        Row("dr-grpo-len", "Dr. GRPO", "GRPO's 1/|o_i|", "(1_nc r_it A_i - β(1-ρ_it))/|o_i|",
            "surrogate, k3 KL", "(not in the source)", "13", ANSWERS,
            lambda *case: objective(sample_log_probs(*case[:3]), *case[3:]), wrong, False,
            lambda: sym.dr_grpo_identity("sequence_mean")),
    ]


def _dapo_rows() -> list[Row]:
    def objective(lp, lo, lr, ad, mask, beta):
        return dapo(lp, lo, ad, mask, eps=EPS, eps_high=EPS_HIGH)

    def weight(lp, lo, lr, ad, mask, beta):
        return dapo_weight(lp, lo, ad, mask, eps=EPS, eps_high=EPS_HIGH)

    return [
        _row("dapo", "DAPO", "paper", "1_nc(ε, ε_high) r_it A_i B/Σ|o_j|", objective, weight, True,
             lambda: sym.dapo_identity("asymmetric"), _dapo_by_hand(EPS_HIGH)),
        Row("dapo-sym", "DAPO", "symmetric 1_nc", "1_nc(ε, ε) r_it A_i B/Σ|o_j|", "surrogate",
            "(not in the source)", "13", ANSWERS,
            lambda *case: objective(sample_log_probs(*case[:3]), *case[3:]), _dapo_by_hand(EPS),
            False, lambda: sym.dapo_identity("symmetric")),
    ]


def _gspo_rows() -> list[Row]:
    def objective(lp, lo, lr, ad, mask, beta):
        return gspo(lp, lo, ad, mask, eps=GSPO_EPS, eps_high=GSPO_EPS_HIGH)

    def weight(lp, lo, lr, ad, mask, beta):
        return gspo_weight(lp, lo, ad, mask, eps=GSPO_EPS, eps_high=GSPO_EPS_HIGH)

    return [
        _row("gspo", "GSPO", "paper", "1_nc s_i A_i / |o_i|", objective, weight, True,
             lambda: sym.gspo_identity("sequence"), _gspo_by_hand(False)),
        Row("gspo-tok", "GSPO", "per-token ratio", "1_nc r_it A_i / |o_i|", "surrogate",
            "(not in the source)", "13", ANSWERS,
            lambda *case: objective(sample_log_probs(*case[:3]), *case[3:]),
            _gspo_by_hand(True), False, lambda: sym.gspo_identity("token")),
    ]


def _cispo_rows() -> list[Row]:
    def objective(lp, lo, lr, ad, mask, beta):
        return cispo(lp, lo, ad, mask, eps_high=EPS_HIGH)

    def weight(lp, lo, lr, ad, mask, beta):
        return cispo_weight(lp, lo, ad, mask, eps_high=EPS_HIGH)

    return [
        _row("cispo", "CISPO", "paper", "clip(r_it) A_i B/Σ|o_j|", objective, weight, True,
             lambda: sym.cispo_identity(True), _cispo_by_hand),
        Row("cispo-no-sg", "CISPO", "no stop-gradient", "clip(r_it) A_i B/Σ|o_j|",
            "surrogate without sg", "(not in the source)", "13", ANSWERS, _cispo_no_sg,
            lambda *case: weight(sample_log_probs(*case[:3]), *case[3:]), False,
            lambda: sym.cispo_identity(False)),
    ]


def _rloo_rows() -> list[Row]:
    """RLOO on-policy: GRPO's clipped objective with the "sum" aggregation at pi_old = pi_theta
    (r = 1, inside the clip) is REINFORCE on log pi(o_i|q), with A = rloo_advantages."""
    def adv_of(rewards):
        return rloo_advantages(rewards.reshape(-1, GROUP_SIZE)).reshape(-1)

    def objective(lp, lo, lr, ad, mask, beta):
        return grpo(lp, lp.detach(), None, adv_of(ad), mask, EPS, 0.0, aggregation="sum")

    def weight(lp, lo, lr, ad, mask, beta):
        return grpo_weight(lp, lp.detach(), None, adv_of(ad), mask, EPS, 0.0, aggregation="sum")

    return [_row("rloo", "RLOO", "paper", "A_i^LOO, summed over t", objective, weight, True,
                 lambda: sym.rloo_identity("leave-one-out"), _rloo_by_hand,
                 against="REINFORCE, on-policy")]


def descendant_rows() -> list[Row]:
    """The rows of GRPO's descendants, in the order Dr. GRPO, DAPO, GSPO, CISPO, RLOO (see the
    module docstring); :func:`pgbook.table.groups.rows` appends them to the table."""
    return [*_dr_grpo_rows(), *_dapo_rows(), *_gspo_rows(), *_cispo_rows(), *_rloo_rows()]
