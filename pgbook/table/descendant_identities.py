"""The SymPy identities of the gradient table's rows for GRPO's descendants (chapters 12, 13).

Each function returns True when the row's claim reduces to an exact 0, False when the
residual is provably non-zero (evaluated at an exact point to 30 digits), and raises
``AssertionError`` when it is neither, as :mod:`pgbook.table.identities` does:

* :func:`aggregation_identity`: a batch's token terms weighted by w_{i,t} have the weight
  Psi_{i,t} = B w_{i,t} times the term's derivative; the aggregations of
  :func:`pgbook.grpo_objectives.token_weights` (DAPO's token mean, Dr. GRPO's constant C)
  against the weight another aggregation claims (GRPO's 1/|o_i|);
* :func:`dapo_identity`: the clip-higher derivative d/dr min(r A, clip(r, 1-eps, 1+eps_high) A)
  = 1_not-clip(r, A) A, region by region (:func:`pgbook.piecewise.prove_clip_derivative`
  with eps_high), against the symmetric indicator (which misses 1+eps < r < 1+eps_high, A > 0);
* :func:`gspo_identity`: d s_i / d log pi_{i,t} = s_i / |o_i| for GSPO's geometric-mean ratio,
  against the per-token ratio r_{i,t} / |o_i|;
* :func:`cispo_identity`: d/d log pi of sg(clip(r)) A log pi is clip(r) A; without the
  stop-gradient the clip's slope adds r A log pi inside the clip range;
* :func:`rloo_identity`: E[A_i^LOO grad log pi(o_i)] = grad J exactly for G = 2 answers of a
  3-answer softmax model, against the group mean's (1 - 1/G) grad J; and
  A_i^LOO = G/(G-1) (r_i - mean r) for G = 4.
"""

from __future__ import annotations

import itertools
from functools import cache

import sympy as sp

from .. import _validate as V
from ..piecewise import (
    Region,
    clip,
    decide_branches,
    derivative_on_region,
    not_clip,
    ppo_clip_regions,
    prove_clip_derivative,
)
from ..symbolic import simplify_difference, softmax, softmax_score
from .identities import grpo_identity

__all__ = [
    "AGGREGATION_CLAIMS",
    "aggregation_identity",
    "cispo_identity",
    "dapo_identity",
    "dr_grpo_identity",
    "gspo_identity",
    "rloo_identity",
]

#: the aggregations :func:`aggregation_identity` knows (as in pgbook.grpo_objectives)
AGGREGATION_CLAIMS = ("sequence_mean", "token_mean", "constant")

_LENGTHS = (1, 2, 3)  # answer lengths of the symbolic batch


def _decide(residuals, points, what: str) -> bool:
    """True if every residual is exactly 0; False if one is provably non-zero at one of the
    exact ``points`` (each a substitution; branches decided there); else AssertionError."""
    residuals = [sp.sympify(e) for e in residuals]
    if all(not e.has(sp.Piecewise) and simplify_difference(e, 0) == 0 for e in residuals):
        return True
    for e in residuals:
        for point in points:
            value = decide_branches(e.subs(point))
            value = value.subs({d: 1 for d in value.atoms(sp.Derivative)})
            if not value.has(sp.Piecewise) and abs(sp.N(value, 30)) > 1e-20:
                return False
    raise AssertionError(f"{what}: residual neither 0 nor provably non-zero")


# ---- aggregation ---------------------------------------------------------------------------

def aggregation_identity(aggregation: str, claimed: str) -> bool:
    """J = sum_{i,t} w_{i,t} f_{i,t}(l_{i,t}) over B = 3 answers of lengths 1, 2, 3, each token
    term an undefined function f of its log-probability l, and w of ``aggregation``
    (:func:`pgbook.grpo_objectives.token_weights`: 1/(B |o_i|), 1/sum_j |o_j|, or 1/(B C)
    with a symbol C >= 3). True iff B dJ/dl_{i,t} = Psi_{i,t} with the weight of ``claimed``:
    f' / |o_i| (GRPO), B f' / sum_j |o_j| (DAPO) or f' / C (Dr. GRPO), for every token.
    A mismatch is shown non-zero at f' = 1, C = 4 (chapter 13, "Aggregation")."""
    V.choice(aggregation, "aggregation", AGGREGATION_CLAIMS)
    V.choice(claimed, "claimed", AGGREGATION_CLAIMS)
    C = sp.Symbol("C", positive=True)
    B, total = len(_LENGTHS), sum(_LENGTHS)

    def factor(kind, n):  # B w_{i,t} for an answer of length n
        return {"sequence_mean": sp.Integer(1) / n, "token_mean": sp.Integer(B) / total,
                "constant": 1 / C}[kind]

    tokens = [(i, t) for i, n in enumerate(_LENGTHS) for t in range(n)]
    lp = {k: sp.Symbol(f"l_{k[0]}{k[1]}", real=True) for k in tokens}
    f = {k: sp.Function(f"f_{k[0]}{k[1]}")(lp[k]) for k in tokens}
    J = sum(factor(aggregation, _LENGTHS[i]) / B * f[(i, t)] for i, t in tokens)
    residuals = [B * J.diff(lp[k]) - factor(claimed, _LENGTHS[k[0]]) * f[k].diff(lp[k])
                 for k in tokens]
    return _decide(residuals, [{C: 4}], f"aggregation {aggregation} vs {claimed}")


def dr_grpo_identity(claimed: str) -> bool:
    """Dr. GRPO's weight (Liu et al. 2025): the constant normaliser, Psi = (1_nc r A - beta
    (1 - rho)) / C (``claimed="constant"``), or GRPO's 1/|o_i| claimed for it
    (``"sequence_mean"``, False). The token term's derivative is GRPO's
    (:func:`pgbook.table.identities.grpo_identity`)."""
    V.choice(claimed, "claimed", ("constant", "sequence_mean"))
    return grpo_identity() and aggregation_identity("constant", claimed)


# ---- the asymmetric clip -------------------------------------------------------------------

@cache
def _asymmetric_clip():
    """prove_clip_derivative with eps_high a positive symbol (raises unless every region
    holds), and its regions."""
    r = sp.Symbol("r", positive=True)
    A = sp.Symbol("A", real=True)
    eps, eps_high = sp.Symbol("epsilon", positive=True), sp.Symbol("epsilon_high", positive=True)
    proof = prove_clip_derivative(r, A, eps, eps_high)
    return r, A, eps, eps_high, proof, ppo_clip_regions(r, A, eps, eps_high)


#: exact points in each region's parameters: eps = 1/5, eps_high = 7/25 (DAPO's 0.2, 0.28),
#: |A| = 1 and three positions u along the region (at u = 9 the middle region's r is 1.232)
_CLIP_POINTS = [{sp.Symbol("e", positive=True): sp.Rational(1, 4),
                 sp.Symbol("epsilon_high", positive=True): sp.Rational(7, 25),
                 sp.Symbol("a", positive=True): 1, sp.Symbol("u", positive=True): u}
                for u in (sp.Rational(1, 9), 1, 9)]


def dapo_identity(indicator: str) -> bool:
    """DAPO's clip-higher weight (Yu et al. 2025, eq. 8; chapter 13): the derivative of
    min(r A, clip(r, 1-eps, 1+eps_high) A), proved on every region of
    :func:`pgbook.piecewise.ppo_clip_regions` with eps_high, equals 1_not-clip(r, A; eps,
    eps_high) A (``indicator="asymmetric"``, True) and not the symmetric indicator of PPO
    (``"symmetric"``: 0 on 1+eps < r <= 1+eps_high with A > 0, where the derivative is A);
    and its token mean has Psi = B f' / sum_j |o_j| (:func:`aggregation_identity`)."""
    V.choice(indicator, "indicator", ("asymmetric", "symmetric"))
    r, A, eps, eps_high, proof, regions = _asymmetric_clip()
    ind = not_clip(r, A, eps, eps_high if indicator == "asymmetric" else None)
    residuals = [proof.derivatives[reg.name].subs(reg.substitution)
                 - decide_branches((ind * A).subs(reg.substitution)) for reg in regions]
    clip_ok = _decide(residuals, _CLIP_POINTS, f"DAPO clip, {indicator} indicator")
    return clip_ok and aggregation_identity("token_mean", "token_mean")


# ---- GSPO ----------------------------------------------------------------------------------

def gspo_identity(ratio: str) -> bool:
    """GSPO's weight (Zheng et al. 2025, eq. 10; chapter 13). With s = exp((1/n) sum_t
    (l_t - l_old,t)) for answers of n = 1, 2, 3 tokens: d(s A)/d l_t = s A / n, the same for
    every token (``ratio="sequence"``, True), not the per-token r_t A / n with
    r_t = exp(l_t - l_old,t) (``"token"``, False for n >= 2); the clip acts on s with
    d/ds min(s A, clip(s) A) = 1_not-clip(s, A) A (the asymmetric clip proof)."""
    V.choice(ratio, "ratio", ("sequence", "token"))
    _asymmetric_clip()  # the clip's derivative in s, region by region (raises if wrong)
    A = sp.Symbol("A", real=True)
    residuals, point = [], {A: 1}
    for n in _LENGTHS:
        lp = sp.symbols(f"l_1:{n + 1}", real=True)
        lo = sp.symbols(f"lold_1:{n + 1}", real=True)
        s = sp.exp(sum(a - b for a, b in zip(lp, lo, strict=True)) / n)
        for t in range(n):
            claim = s if ratio == "sequence" else sp.exp(lp[t] - lo[t])
            residuals.append((s * A).diff(lp[t]) - claim * A / n)
        point.update({x: sp.Rational(k + 1, 2) for k, x in enumerate(lp)})
        point.update({x: 0 for x in lo})
    return _decide(residuals, [point], f"GSPO, {ratio} ratio")


# ---- CISPO ---------------------------------------------------------------------------------

def cispo_identity(stop_gradient: bool) -> bool:
    """CISPO's weight (MiniMax-M1 2025, eq. 4; chapter 13): the surrogate sg(c) A l with
    c = clip(r, 0, 1+eps_high), r = exp(l - l_old), l = log pi, has d/dl = c A on both sides of
    1 + eps_high (``stop_gradient=True``, True). Without the stop-gradient, d/dl [c(r(l)) A l]
    = r dc/dr A l + c A adds r A l below 1 + eps_high (``False``: non-zero at l_old = 1/3)."""
    if not isinstance(stop_gradient, bool):
        raise ValueError(f"stop_gradient must be a bool, got {stop_gradient!r}")
    r, l_old = sp.Symbol("r", positive=True), sp.Symbol("l_old", real=True)
    A, eh = sp.Symbol("A", real=True), sp.Symbol("epsilon_high", positive=True)
    u = sp.Symbol("u", positive=True)
    detached = sp.Symbol("c", positive=True)  # the value of sg(clip(r)): a constant in l
    c = clip(r, 0, 1 + eh)
    l_of_r = l_old + sp.log(r)
    residuals = []
    for name, r_value in (("r < 1+eps_high", (1 + eh) / (1 + u)),
                          ("r > 1+eps_high", (1 + eh) * (1 + u))):
        region = Region(name, (r > 0) & (r < 1 + eh) if name[2] == "<" else r > 1 + eh,
                        {r: r_value}, along=u)
        if stop_gradient:  # dl/dr = 1/r, so d/dl = r d/dr at fixed sg(c)
            d = r * (detached * A * l_of_r).diff(r)
            d = decide_branches(d.subs(detached, c).subs(region.substitution))
        else:
            d = r_value * derivative_on_region(c * A * l_of_r, r, region)
        residuals.append(d - decide_branches((c * A).subs(region.substitution)))
    point = {eh: sp.Rational(7, 25), u: 1, A: 1, l_old: sp.Rational(1, 3)}
    return _decide(residuals, [point], f"CISPO, stop_gradient={stop_gradient}")


# ---- RLOO ----------------------------------------------------------------------------------

@cache
def rloo_identity(baseline: str) -> bool:
    """RLOO's weight (Kool et al. 2019; Ahmadian et al. 2024; chapter 13). One prompt, answers
    o in {0, 1, 2} with pi = softmax(z) and rewards R_o (symbols), G = 2 independent answers:
    E[(1/G) sum_i A_i grad_z log pi(o_i)] over all 9 pairs equals grad_z sum_o pi_o R_o
    exactly with the leave-one-out A_i = R_{o_i} - R_{o_j} (``baseline="leave-one-out"``),
    and is (1 - 1/G) grad J with the group mean A_i = R_{o_i} - (R_{o_1} + R_{o_2})/2
    (``"group-mean"``, False). Also A_i^LOO = r_i - (1/(G-1)) sum_{j != i} r_j
    = G/(G-1) (r_i - mean r) for G = 4."""
    V.choice(baseline, "baseline", ("leave-one-out", "group-mean"))
    z = sp.symbols("z_0:3", real=True)
    R = sp.symbols("R_0:3", real=True)
    pi = softmax(z)
    grad_J = sp.Matrix([sum(pi[o] * R[o] for o in range(3)).diff(zj) for zj in z])
    expected = sp.zeros(3, 1)
    for pair in itertools.product(range(3), repeat=2):
        for i, o in enumerate(pair):
            other = R[pair[1 - i]]
            adv = R[o] - (other if baseline == "leave-one-out" else (R[o] + other) / 2)
            expected += pi[pair[0]] * pi[pair[1]] * adv * softmax_score(z, o) / 2
    r4 = sp.symbols("r_1:5", real=True)
    loo = [r4[i] - sum(r4[j] for j in range(4) if j != i) / 3 for i in range(4)]
    algebra = [loo[i] - sp.Rational(4, 3) * (r4[i] - sum(r4) / 4) for i in range(4)]
    point = {**dict(zip(z, (0, 1, 2), strict=True)), **dict(zip(R, (1, 2, 4), strict=True))}
    return _decide([*(grad_J - expected), *algebra], [point], f"RLOO, {baseline} baseline")
