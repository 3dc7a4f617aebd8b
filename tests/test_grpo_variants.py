"""pgbook.grpo_objectives, chapter 13's knobs: aggregation, clip-higher, GSPO's sequence ratio,
the KL estimator and placement, CISPO; each against a by-hand formula written with loops,
against autograd, and the wrong variant that the same check rejects."""

import itertools
import math

import pytest
import torch
from grpo_batches import random_grpo_batch

from pgbook.grpo_objectives import (
    AGGREGATIONS,
    IMPORTANCE_LEVELS,
    cispo,
    cispo_weight,
    dapo,
    dapo_weight,
    grpo,
    grpo_sequence,
    grpo_sequence_weight,
    grpo_weight,
    gspo,
    gspo_weight,
    token_weights,
)
from pgbook.objectives import ppo_clip_weight

D = torch.float64




def _clip(x, lo, hi):
    return min(max(x, lo), hi)


def _by_hand(logp, logp_old, logp_ref, adv, mask, eps, eps_high, beta, aggregation, level,
             estimator, placement, C=None):
    """The value of J with Python floats and loops (the objective, not its gradient)."""
    B, T = logp.shape
    ell = [int(m) for m in mask.sum(1)]
    total = sum(ell)
    C = T if C is None else C
    J = 0.0
    for i in range(B):
        n = {"sequence_mean": ell[i], "token_mean": total / B, "constant": C, "sum": 1}[aggregation]
        if level == "sequence":
            s = torch.exp((logp[i] - logp_old[i])[mask[i]].mean()).item()
        for t in range(T):
            if not mask[i, t]:
                continue
            r = s if level == "sequence" else torch.exp(logp[i, t] - logp_old[i, t]).item()
            a = adv[i].item()
            c = min(r * a, _clip(r, 1 - eps, 1 + eps_high) * a)
            d = (logp[i, t] - logp_ref[i, t]).item()
            k = {"k1": d, "k2": d * d / 2, "k3": math.expm1(-d) + d}[estimator]
            if placement == "reward":  # sg(k) logp: the value of the surrogate
                k = k * logp[i, t].item()
            J += (c - beta * k) / (B * n)
    return J


KNOBS = list(itertools.product(AGGREGATIONS, IMPORTANCE_LEVELS, ("k1", "k2", "k3"),
                               ("loss", "reward")))


@pytest.mark.parametrize("aggregation, level, estimator, placement", KNOBS)
def test_value_by_hand_and_gradient_is_the_weight(gen, aggregation, level, estimator, placement):
    worst = 0.0
    for _ in range(10):
        logp, logp_old, logp_ref, adv, mask = random_grpo_batch(gen)
        kw = dict(eps_high=0.28, aggregation=aggregation, importance_level=level,
                  kl_estimator=estimator, kl_placement=placement)
        x = logp.clone().requires_grad_(True)
        J = grpo(x, logp_old, logp_ref, adv, mask, 0.2, 0.1, **kw)
        expected = _by_hand(logp, logp_old, logp_ref, adv, mask, 0.2, 0.28, 0.1, aggregation,
                            level, estimator, placement)
        assert J.item() == pytest.approx(expected, abs=1e-13)
        (g,) = torch.autograd.grad(J, x)
        psi = grpo_weight(logp, logp_old, logp_ref, adv, mask, 0.2, 0.1, **kw)
        worst = max(worst, (g - psi / logp.shape[0]).abs().max().item())
    assert worst < 1e-15


def test_token_weights_sums_and_shape(gen):
    _, _, _, _, mask = random_grpo_batch(gen)
    B, L = mask.shape
    ell = mask.sum(1).double()
    w = {a: token_weights(mask, a, dtype=D) for a in AGGREGATIONS}
    assert w["sequence_mean"].sum(1).allclose(torch.full((B,), 1 / B, dtype=D))  # 1/B each
    assert w["token_mean"].sum().item() == pytest.approx(1.0)
    n_tokens = int(ell.sum())
    assert torch.allclose(w["token_mean"][mask], torch.full((n_tokens,), 1 / n_tokens, dtype=D))
    assert w["constant"].sum().item() == pytest.approx(ell.sum().item() / (B * L))
    assert w["sum"].sum(1).allclose(ell / B)
    for a in AGGREGATIONS:
        assert torch.equal(w[a][~mask], torch.zeros_like(w[a][~mask]))
    assert token_weights(mask, "constant", normalizer=12, dtype=D).sum().item() == pytest.approx(
        ell.sum().item() / (B * 12))


@pytest.mark.parametrize("kwargs, match", [
    ({"aggregation": "mean"}, "aggregation must be one of"),
    ({"aggregation": "token_mean", "normalizer": 8}, "normalizer is the constant"),
    ({"aggregation": "constant", "normalizer": 2}, "normalizer must be at least the longest"),
    ({"aggregation": "constant", "normalizer": 0}, "normalizer must be > 0"),
    ({"aggregation": "sum", "dtype": torch.long}, "dtype must be a floating"),
    ({"aggregation": "sum", "mask": torch.zeros(0, 3)}, "at least one answer"),
    ({"aggregation": "sum", "mask": torch.tensor([[1, 0], [0, 0]])}, r"mask row\(s\) \[1\]"),
])
def test_token_weights_bad_input(kwargs, match):
    args = {"mask": torch.tensor([[1, 1, 1], [1, 0, 0]]), **kwargs}
    with pytest.raises(ValueError, match=match):
        token_weights(**args)


@pytest.mark.parametrize("kwargs, match", [
    ({"eps_high": 0.0}, "eps_high must be > 0"),
    ({"eps_high": -0.1}, "eps_high must be > 0"),
    ({"eps": 1.0}, "eps must be < 1"),
    ({"importance_level": "answer"}, "importance_level must be one of"),
    ({"kl_estimator": "k4"}, "kl_estimator must be one of"),
    ({"kl_placement": "advantage"}, "kl_placement must be one of"),
    ({"aggregation": "bnpo"}, "aggregation must be one of"),
])
@pytest.mark.parametrize("fn", [grpo, grpo_weight])
def test_grpo_knobs_bad_input(gen, fn, kwargs, match):
    logp, logp_old, logp_ref, adv, mask = random_grpo_batch(gen)
    args = {"eps": 0.2, **kwargs}
    with pytest.raises(ValueError, match=match):
        fn(logp, logp_old, logp_ref, adv, mask, beta=0.1, **args)


# ---- clip-higher: the band between the bounds --------------------------------------------------

def test_clip_higher_keeps_the_band_that_the_symmetric_clip_drops():
    """A > 0 and 1.2 < r <= 1.28: DAPO's weight is r A / n (n = 4 tokens), the symmetric
    clip's is 0."""
    r = torch.tensor([[1.1, 1.25, 1.27, 1.3]], dtype=D)
    logp, logp_old = torch.log(r), torch.zeros(1, 4, dtype=D)
    adv, mask = torch.ones(1, dtype=D), torch.ones(1, 4, dtype=torch.bool)
    asym = dapo_weight(logp, logp_old, adv, mask)
    sym = dapo_weight(logp, logp_old, adv, mask, eps_high=0.2)
    assert torch.allclose(asym, torch.tensor([[1.1, 1.25, 1.27, 0.0]], dtype=D) / 4)
    assert torch.allclose(sym, torch.tensor([[1.1, 0.0, 0.0, 0.0]], dtype=D) / 4)
    x = logp.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(dapo(x, logp_old, adv, mask), x)
    assert torch.allclose(g, asym)  # B = 1


# ---- GSPO: one ratio per answer, the same weight on each of its tokens --------------------------

def test_gspo_weight_is_shared_by_an_answers_tokens(gen):
    for _ in range(20):
        logp, logp_old, _, adv, mask = random_grpo_batch(gen, spread=1e-3)
        psi = gspo_weight(logp, logp_old, adv, mask)
        ell = mask.sum(1, keepdim=True)
        s = torch.exp(((logp - logp_old) * mask).sum(1) / ell[:, 0])
        inside = ((adv >= 0) & (s <= 1 + 4e-4)) | ((adv < 0) & (s >= 1 - 3e-4))
        expected = (inside * s * adv)[:, None] * mask / ell
        assert torch.allclose(psi, expected, atol=1e-15)
        x = logp.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(gspo(x, logp_old, adv, mask), x)
        assert torch.allclose(g, psi / logp.shape[0], atol=1e-15)
        # the per-token weight (GRPO's) is not GSPO's once the token ratios differ
        token = ppo_clip_weight(logp, logp_old, adv[:, None].expand_as(logp), 3e-4, 4e-4)
        assert not torch.allclose(token * mask / ell, psi, atol=1e-6)


# ---- CISPO: the clipped weight never vanishes ---------------------------------------------------

def test_cispo_keeps_a_gradient_where_ppo_clip_has_none():
    r = torch.tensor([[0.5, 1.0, 1.5], [0.5, 1.0, 1.5]], dtype=D)
    logp, logp_old = torch.log(r), torch.zeros(2, 3, dtype=D)
    adv, mask = torch.tensor([1.0, -1.0], dtype=D), torch.ones(2, 3, dtype=torch.bool)
    psi = cispo_weight(logp, logp_old, adv, mask, eps_high=0.28, eps=0.2)
    n = 3.0  # the token mean: 6 tokens over B = 2 answers
    expected = torch.tensor([[0.8, 1.0, 1.28], [-0.8, -1.0, -1.28]], dtype=D) / n
    assert torch.allclose(psi, expected)
    ppo = ppo_clip_weight(logp, logp_old, adv[:, None].expand(2, 3), 0.2, 0.28)
    assert ppo[0, 2] == 0 and ppo[1, 0] == 0  # PPO-Clip's zero-gradient regions
    assert (psi != 0).all()
    x = logp.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(cispo(x, logp_old, adv, mask, eps_high=0.28, eps=0.2), x)
    assert torch.allclose(g, psi / 2)
    # no lower bound by default (MiniMax-M1): the weight at r = 0.5 is 0.5, not 0.8
    assert cispo_weight(logp, logp_old, adv, mask, eps_high=0.28)[0, 0] * n == pytest.approx(0.5)


def test_cispo_without_the_stop_gradient_is_another_gradient(gen):
    """The wrong variant: differentiating through clip(r) adds r A 1[inside] to the weight."""
    logp, logp_old, _, adv, mask = random_grpo_batch(gen, spread=0.1)
    x = logp.clone().requires_grad_(True)
    w = token_weights(mask, "token_mean", dtype=D)
    r = torch.exp(x - logp_old)
    wrong = (w * torch.clamp(r, 0, 1.28) * adv[:, None] * x).sum()
    (g_wrong,) = torch.autograd.grad(wrong, x)
    psi = cispo_weight(logp, logp_old, adv, mask, eps_high=0.28)
    assert (g_wrong - psi / logp.shape[0]).abs().max() > 1e-3


@pytest.mark.parametrize("fn", [cispo, cispo_weight])
def test_cispo_bad_input(gen, fn):
    logp, logp_old, _, adv, mask = random_grpo_batch(gen)
    with pytest.raises(ValueError, match="eps_high must be > 0"):
        fn(logp, logp_old, adv, mask, eps_high=0.0)
    with pytest.raises(ValueError, match="eps must be < 1"):
        fn(logp, logp_old, adv, mask, eps_high=0.2, eps=1.5)
    with pytest.raises(ValueError, match="aggregation must be one of"):
        fn(logp, logp_old, adv, mask, eps_high=0.2, aggregation="seq")


def test_the_source_form_takes_the_asymmetric_clip(gen):
    """grpo_sequence with eps_high: autograd = its weight; an answer ratio R in the band
    (1.2, 1.28] with A > 0 keeps its gradient, which the symmetric clip drops."""
    for _ in range(20):
        logp, logp_old, logp_ref, adv, mask = random_grpo_batch(gen, spread=0.1)
        x = logp.clone().requires_grad_(True)
        J = grpo_sequence(x, logp_old, logp_ref, adv, mask, 0.2, 0.1, eps_high=0.28)
        (g,) = torch.autograd.grad(J, x)
        psi = grpo_sequence_weight(logp, logp_old, logp_ref, adv, mask, 0.2, 0.1,
                                   eps_high=0.28)
        assert torch.allclose(g, psi / logp.shape[0], atol=1e-15, rtol=0)
    logp = torch.log(torch.tensor([[1.25, 1.0]], dtype=D))
    zero, adv, mask = torch.zeros(1, 2, dtype=D), torch.ones(1, dtype=D), torch.ones(1, 2)
    high = grpo_sequence_weight(logp, zero, logp, adv, mask, 0.2, 0.0, eps_high=0.28)
    sym = grpo_sequence_weight(logp, zero, logp, adv, mask, 0.2, 0.0)
    assert torch.allclose(high, torch.full((1, 2), 1.25, dtype=D)) and (sym == 0).all()
