"""pgbook.grpo_objectives (chapter 9): GRPO, its one-ratio-per-answer form and Dr. GRPO by hand
and against autograd, padding, bad input."""

import math

import pytest
import torch
from grpo_batches import random_grpo_batch

from pgbook import grpo_objectives, kl_estimators, objectives
from pgbook.grpo_objectives import (
    dr_grpo,
    dr_grpo_weight,
    grpo,
    grpo_sequence,
    grpo_sequence_weight,
    grpo_weight,
)
from pgbook.objectives import policy_gradient_surrogate

D = torch.float64
L = math.log


def test_grpo_names_live_in_grpo_objectives_only():
    """pgbook.objectives does not re-export GRPO's objectives (no import cycle); kl_k3 lives
    in pgbook.kl_estimators, beside k1, k2 and the KL weights, and GRPO uses that one."""
    for name in grpo_objectives.__all__:
        assert not hasattr(objectives, name), name
    assert "kl_k3" in kl_estimators.__all__ and "kl_k3" not in grpo_objectives.__all__
    assert not hasattr(objectives, "kl_k3")
    assert grpo_objectives.kl_k3 is kl_estimators.kl_k3


# ---- GRPO: a hand-computed batch --------------------------------------------------------------
# Two answers, eps = 0.2. Answer 0 (A = +1) has 2 tokens, ratios 1.5, 0.9 (then padding);
# answer 1 (A = -2) has 3 tokens, ratios 0.5, 1.0, 1.3. logp_old = 0, so logp = log r.
RATIOS = torch.tensor([[1.5, 0.9, 1.0], [0.5, 1.0, 1.3]], dtype=D)
MASK = torch.tensor([[True, True, False], [True, True, True]])
ADV = torch.tensor([1.0, -2.0], dtype=D)
# pi_ref / pi_theta = 2 at answer 0, token 0; 1 elsewhere.
RHO = torch.tensor([[2.0, 1.0, 1.0], [1.0, 1.0, 1.0]], dtype=D)


def _batch():
    logp = torch.log(RATIOS)
    return logp, torch.zeros_like(logp), logp + torch.log(RHO), ADV, MASK


def test_grpo_hand_value():
    # clip terms: answer 0: min(1.5, 1.2) = 1.2, min(0.9, 0.9) = 0.9          -> mean 1.05
    #             answer 1: min(-1, -1.6) = -1.6, -2, min(-2.6, -2.4) = -2.6  -> mean -6.2/3
    k3 = 2 - L(2) - 1
    for beta in (0.0, 0.1):
        expected = ((1.05 - beta * k3 / 2) + (-6.2 / 3)) / 2
        assert grpo(*_batch(), 0.2, beta).item() == pytest.approx(expected, abs=1e-13)


def test_grpo_weight_hand_value():
    # 1_not-clip r A / |o_i|: answer 0: (0, 0.9) / 2; answer 1: (0, -2, 1.3 * -2) / 3.
    # k3 part: -beta (1 - rho) / |o_i| = +beta / 2 at answer 0, token 0.
    beta = 0.1
    expected = torch.tensor([[0.0 + beta / 2, 0.45, 0.0],
                             [0.0, -2.0 / 3, -2.6 / 3]], dtype=D)
    assert torch.allclose(grpo_weight(*_batch(), 0.2, beta), expected, atol=1e-14)


def test_grpo_sequence_hand_value():
    # R_0 = 1.5 * 0.9 = 1.35 > 1.2 with A > 0: clipped, 1.2. R_1 = 0.65 < 0.8 with A < 0:
    # clipped, 0.8 * -2 = -1.6. Sequence rho_0 = 2 (k3 = 1 - log 2), rho_1 = 1.
    for beta in (0.0, 0.3):
        expected = (1.2 - beta * (1 - L(2)) - 1.6) / 2
        assert grpo_sequence(*_batch(), 0.2, beta).item() == pytest.approx(expected, abs=1e-13)
    w = grpo_sequence_weight(*_batch(), 0.2, 0.3)
    # both answers clipped: only the k3 part, -beta (1 - rho_i) on every valid token
    expected = torch.tensor([[0.3, 0.3, 0.0], [0.0, 0.0, 0.0]], dtype=D)
    assert torch.allclose(w, expected, atol=1e-14)


def test_dr_grpo_hand_value():
    expected = ((1.2 + 0.9) + (-1.6 - 2.0 - 2.6)) / 3 / 2  # default C = L = 3, beta = 0
    assert dr_grpo(*_batch(), 0.2, 0.0).item() == pytest.approx(expected, abs=1e-13)
    expected_c = ((1.2 + 0.9) + (-1.6 - 2.0 - 2.6)) / 10 / 2
    assert dr_grpo(*_batch(), 0.2, 0.0, normalizer=10).item() == pytest.approx(expected_c)


# ---- identities on random batches -------------------------------------------------------------



@pytest.mark.parametrize("objective, weight, kwargs", [
    (grpo, grpo_weight, {}),
    (grpo_sequence, grpo_sequence_weight, {}),
    (dr_grpo, dr_grpo_weight, {}),
    (dr_grpo, dr_grpo_weight, {"normalizer": 7.5}),
])
def test_autograd_equals_weight(gen, objective, weight, kwargs):
    for _ in range(50):
        logp, logp_old, logp_ref, adv, mask = random_grpo_batch(gen)
        logp = logp.requires_grad_(True)
        (g,) = torch.autograd.grad(objective(logp, logp_old, logp_ref, adv, mask, 0.2, 0.1,
                                             **kwargs), logp)
        psi = weight(logp, logp_old, logp_ref, adv, mask, 0.2, 0.1, **kwargs)
        assert not psi.requires_grad
        assert torch.allclose(g, psi / logp.shape[0], atol=1e-14)
        (g2,) = torch.autograd.grad(policy_gradient_surrogate(logp, psi), logp)
        assert torch.allclose(g, g2, atol=1e-14)
        assert torch.equal(psi[~mask], torch.zeros_like(psi[~mask]))


def test_naive_per_token_formula(gen):
    logp, logp_old, logp_ref, adv, mask = random_grpo_batch(gen, spread=0.5)
    r = torch.exp(logp - logp_old)
    A = adv[:, None]
    clip = torch.min(r * A, torch.clamp(r, 0.8, 1.2) * A)
    rho = torch.exp(logp_ref - logp)
    k3 = rho - torch.log(rho) - 1
    m = mask.to(D)
    naive = (((clip - 0.05 * k3) * m).sum(1) / m.sum(1)).mean()
    assert grpo(logp, logp_old, logp_ref, adv, mask, 0.2, 0.05).item() == pytest.approx(
        naive.item(), abs=1e-13)


def test_dr_grpo_equals_grpo_when_every_answer_has_length_c(gen):
    logp, logp_old, logp_ref, adv, _ = random_grpo_batch(gen)
    mask = torch.ones_like(logp, dtype=torch.bool)
    a = grpo(logp, logp_old, logp_ref, adv, mask, 0.2, 0.1)
    b = dr_grpo(logp, logp_old, logp_ref, adv, mask, 0.2, 0.1)  # C = L = every length
    assert a.item() == pytest.approx(b.item(), abs=1e-14)


def test_at_theta_old_the_summed_form_is_the_sequence_form(gen):
    """r = 1, beta = 0: both gradients are A_i sum_t grad logp_{i,t}; GRPO's is that / |o_i|."""
    logp, _, logp_ref, adv, mask = random_grpo_batch(gen)
    w_seq = grpo_sequence_weight(logp, logp, logp_ref, adv, mask, 0.2, 0.0)
    w_dr = grpo_weight(logp, logp, logp_ref, adv, mask, 0.2, 0.0, aggregation="sum")
    w_grpo = grpo_weight(logp, logp, logp_ref, adv, mask, 0.2, 0.0)
    assert torch.allclose(w_seq, w_dr, atol=1e-15)
    assert torch.allclose(w_grpo, w_dr / mask.sum(1, keepdim=True), atol=1e-15)


def test_padding_values_and_mask_dtype_do_not_matter(gen):
    logp, logp_old, logp_ref, adv, mask = random_grpo_batch(gen)
    junk = 50 * torch.randn(logp.shape, dtype=D, generator=gen)
    noisy = [torch.where(mask, x, junk) for x in (logp, logp_old, logp_ref)]
    for f in (grpo, grpo_sequence, dr_grpo, grpo_weight, grpo_sequence_weight, dr_grpo_weight):
        a = f(logp, logp_old, logp_ref, adv, mask, 0.2, 0.1)
        b = f(*noisy, adv, mask, 0.2, 0.1)
        c = f(logp, logp_old, logp_ref, adv, mask.long(), 0.2, 0.1)
        d = f(logp, logp_old, logp_ref, adv, mask.to(D), 0.2, 0.1)
        assert torch.isfinite(b).all()
        for other in (b, c, d):
            assert torch.allclose(a, other, atol=1e-14)


def test_clip_boundary_follows_ppo_clip_weight():
    # r exactly 1 + eps (eps = 0.5: exp(log 1.5) == 1.5 in float64 is not guaranteed, so build
    # logp_old from logp and check that autograd and the weight agree whatever side r lands on)
    logp = torch.tensor([[L(1.5), L(0.5)]], dtype=D, requires_grad=True)
    logp_old = torch.zeros(1, 2, dtype=D)
    for a in (1.0, -1.0):
        adv = torch.tensor([a], dtype=D)
        mask = torch.ones(1, 2, dtype=torch.bool)
        (g,) = torch.autograd.grad(grpo(logp, logp_old, logp_old, adv, mask, 0.5, 0.0), logp)
        w = grpo_weight(logp, logp_old, logp_old, adv, mask, 0.5, 0.0)
        assert torch.allclose(g, w, atol=1e-15)


# ---- bad input --------------------------------------------------------------------------------

def _args(**override):
    logp, logp_old, logp_ref, adv, mask = _batch()
    args = dict(logp=logp, logp_old=logp_old, logp_ref=logp_ref, adv=adv, mask=MASK.clone(),
                eps=0.2, beta=0.1)
    args.update(override)
    return args


@pytest.mark.parametrize("override, match", [
    ({"logp_old": torch.zeros(2, 4, dtype=D)}, "shape mismatch"),
    ({"logp_ref": torch.zeros(3, 3, dtype=D)}, "shape mismatch"),
    ({"adv": torch.zeros(3, dtype=D)}, "one advantage per answer"),
    ({"adv": torch.zeros(2, 1, dtype=D)}, "adv must have 1"),
    ({"mask": torch.ones(2, 2, dtype=torch.bool)}, "shape mismatch"),
    ({"mask": torch.tensor([[True, True, False], [False, False, False]])}, r"mask row\(s\) \[1\]"),
    ({"mask": torch.tensor([[1, 2, 0], [1, 1, 1]])}, "only 0 and 1"),
    ({"mask": torch.full((2, 3), 0.5, dtype=D)}, "only 0 and 1"),
    ({"eps": 0.0}, "eps must be > 0"),
    ({"eps": 1.0}, "eps must be < 1"),
    ({"eps": -0.2}, "eps must be > 0"),
    ({"beta": -0.01}, "beta must be >= 0"),
    ({"beta": float("nan")}, "beta must be finite"),
    ({"logp": torch.tensor([[0.0, float("nan"), 0.0], [0.0, 0.0, 0.0]], dtype=D)}, "logp contains"),
    ({"logp_ref": torch.full((2, 3), -float("inf"), dtype=D)}, "logp_ref contains non-finite"),
    ({"adv": torch.tensor([1.0, float("inf")], dtype=D)}, "adv contains non-finite"),
    ({"logp": torch.zeros(3, dtype=D)}, "logp must have 2"),
    ({"logp": torch.zeros(2, 3, dtype=torch.long)}, "logp must have a floating"),
])
@pytest.mark.parametrize("fn", [grpo, grpo_weight, grpo_sequence, grpo_sequence_weight, dr_grpo,
                                dr_grpo_weight])
def test_bad_input(override, match, fn):
    with pytest.raises(ValueError, match=match):
        fn(**_args(**override))


def test_bad_normalizer():
    with pytest.raises(ValueError, match="normalizer must be > 0"):
        dr_grpo(**_args(), normalizer=0)
    with pytest.raises(ValueError, match="normalizer must be > 0"):
        dr_grpo_weight(**_args(), normalizer=-1.0)
    with pytest.raises(ValueError, match=r"normalizer must be at least the longest answer \(3"):
        dr_grpo(**_args(), normalizer=2.9)


# ---- kl_ratio_weight: beta r k, TRL's use_bias_correction_kl -----------------------------

@pytest.mark.parametrize("level", ["token", "sequence"])
@pytest.mark.parametrize("aggregation", ["sequence_mean", "token_mean", "sum"])
@pytest.mark.parametrize("estimator", ["k1", "k3"])
def test_ratio_weighted_kl_weight_is_the_autograd_gradient(level, aggregation, estimator):
    gen = torch.Generator().manual_seed(71)
    worst = 0.0
    for _ in range(40):
        logp, logp_old, logp_ref, adv, mask = random_grpo_batch(gen)
        x = logp.clone().requires_grad_(True)
        kw = dict(aggregation=aggregation, importance_level=level, kl_estimator=estimator,
                  kl_ratio_weight=True)
        J = grpo(x, logp_old, logp_ref, adv, mask, 0.2, 0.3, **kw)
        (g,) = torch.autograd.grad(J, x)
        psi = grpo_weight(logp, logp_old, logp_ref, adv, mask, 0.2, 0.3, **kw)
        worst = max(worst, (g - psi / logp.shape[0]).abs().max().item())
    assert worst < 1e-14


def test_ratio_weighted_kl_value_is_r_times_k3_written_out():
    gen = torch.Generator().manual_seed(72)
    for _ in range(20):
        logp, logp_old, logp_ref, adv, mask = random_grpo_batch(gen)
        r = torch.exp(logp - logp_old)
        k3 = torch.exp(logp_ref - logp) - (logp_ref - logp) - 1
        clip = torch.minimum(r * adv[:, None], r.clamp(0.8, 1.2) * adv[:, None])
        by_hand = (((clip - 0.3 * r * k3) * mask).sum(1) / mask.sum(1)).mean()
        J = grpo(logp, logp_old, logp_ref, adv, mask, 0.2, 0.3, kl_ratio_weight=True)
        assert abs(J - by_hand) < 1e-15
        unweighted = grpo(logp, logp_old, logp_ref, adv, mask, 0.2, 0.3)
        assert abs(J - unweighted) > 1e-4  # the weight matters where r != 1


def test_ratio_weight_changes_the_gradient_even_where_r_is_1():
    # on-policy (logp_old = logp) r = 1 in value, but grad r = grad logp: the KL gradient
    # gains k3 per token, the difference between grad KL(ref||pi) and grad KL(pi||ref)
    gen = torch.Generator().manual_seed(73)
    logp, _, logp_ref, adv, mask = random_grpo_batch(gen)
    psi = {w: grpo_weight(logp, logp, logp_ref, adv, mask, 0.2, 1.0, kl_ratio_weight=w)
           for w in (False, True)}
    k3 = torch.exp(logp_ref - logp) - (logp_ref - logp) - 1
    n = mask.sum(1, keepdim=True)
    assert torch.allclose(psi[False] - psi[True], k3 * mask / n, atol=1e-15, rtol=0)
