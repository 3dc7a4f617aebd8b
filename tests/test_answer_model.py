"""pgbook.answer_model (chapter 13): exact expectations of the GRPO-family step over all groups,
against the true gradient (13.1), against the objectives' own weights, and wrong variants."""

import itertools

import pytest
import torch

from pgbook.answer_model import AnswerModel, expected_step
from pgbook.grpo_objectives import grpo_weight
from pgbook.returns import group_advantages, rloo_advantages

D = torch.float64
PROTOTYPE = AnswerModel(probs=(0.4, 0.3, 0.2, 0.1), lengths=(1, 3, 2, 6), rewards=(1, 1, 0, 0))


def _random_models(n=12, seed=0):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(n):
        K = int(torch.randint(2, 5, (1,), generator=gen))
        p = torch.rand(K, generator=gen, dtype=D) + 0.1
        p = (p / p.sum()).tolist()
        p[-1] = 1 - sum(p[:-1])
        lengths = torch.randint(1, 7, (K,), generator=gen).tolist()
        rewards = torch.randint(0, 3, (K,), generator=gen).double().tolist()
        if len(set(rewards)) == 1:
            rewards[0] += 1.0
        yield AnswerModel(tuple(p), tuple(lengths), tuple(rewards))


def _finite(beta):
    return beta[torch.isfinite(beta)]


def test_prototype_weights():
    """beta_k = 0.75 / ell_k (GRPO's 1/|o_i|), 0.09375 = 0.75 / 8 (Dr. GRPO, C = 8), 1 (RLOO)."""
    lengths = torch.tensor(PROTOTYPE.lengths, dtype=D)
    grpo = expected_step(PROTOTYPE, 4, advantage="group_mean")
    assert torch.allclose(grpo.beta, 0.75 / lengths, atol=1e-15)
    dr = expected_step(PROTOTYPE, 4, advantage="group_mean", aggregation="constant",
                       normalizer=8)
    assert torch.allclose(dr.beta, torch.full_like(dr.beta, 0.09375), atol=1e-15)
    rloo = expected_step(PROTOTYPE, 4, advantage="rloo", aggregation="sum")
    assert torch.allclose(rloo.beta, torch.ones_like(rloo.beta), atol=1e-14)
    assert torch.allclose(rloo.gradient, PROTOTYPE.true_gradient_coefficients()
                          @ PROTOTYPE.score_matrix(), atol=1e-15)


@pytest.mark.parametrize("G", [2, 3, 4])
def test_rloo_is_unbiased_and_the_mean_baseline_is_not(G):
    for model in _random_models():
        rloo = expected_step(model, G, advantage="rloo", aggregation="sum")
        assert torch.allclose(_finite(rloo.beta), torch.ones(1, dtype=D), atol=1e-13)
        mean = expected_step(model, G, advantage="group_mean", aggregation="sum")
        assert torch.allclose(_finite(mean.beta), torch.full((1,), 1 - 1 / G, dtype=D),
                              atol=1e-13)
        assert (_finite(mean.beta) - 1).abs().min() > 0.4 / G  # the wrong claim "unbiased"


def test_sequence_mean_is_length_biased_and_the_constant_is_not():
    for model in _random_models():
        ell = torch.tensor(model.lengths, dtype=D)
        seq = expected_step(model, 3, advantage="group_mean")
        ok = torch.isfinite(seq.beta)
        assert torch.allclose(seq.beta[ok], (2 / 3) / ell[ok], atol=1e-13)
        const = expected_step(model, 3, advantage="group_mean", aggregation="constant")
        assert torch.allclose(const.beta[ok], (2 / 3) / ell.max(), atol=1e-13)
    # the wrong claim "sequence_mean is flat" fails on the prototype (lengths differ)
    beta = expected_step(PROTOTYPE, 4, advantage="group_mean").beta
    assert beta.max() / beta.min() == pytest.approx(6.0)


def test_expectation_matches_the_objectives_weights_batch_by_batch():
    """Sum grpo_weight (at theta = theta_old) over every batch with its probability: the same
    coefficients, for every aggregation; the answer model's n_i is token_weights'."""
    model = AnswerModel((0.5, 0.3, 0.2), (1, 4, 2), (1.0, 0.0, 2.0))
    G, L = 3, 4
    for advantage, aggregation in itertools.product(("group_std", "group_mean", "rloo"),
                                                    ("sequence_mean", "token_mean",
                                                     "constant", "sum")):
        coef = torch.zeros(3, dtype=D)
        for batch in itertools.product(range(3), repeat=G):
            idx = torch.tensor(batch)
            p = torch.tensor(model.probs, dtype=D)[idx].prod()
            r = torch.tensor(model.rewards, dtype=D)[idx][None]
            adv = (rloo_advantages(r) if advantage == "rloo" else
                   group_advantages(r, 0.0, scale_by_std=advantage == "group_std"))[0]
            mask = torch.arange(L)[None] < torch.tensor(model.lengths)[idx][:, None]
            logp = torch.zeros(G, L, dtype=D)
            psi = grpo_weight(logp, logp, logp, adv, mask, 0.2, 0.0, aggregation=aggregation)
            coef.index_add_(0, idx, p * psi[:, 0] / G)  # Psi constant over an answer's tokens
        got = expected_step(model, G, advantage=advantage, aggregation=aggregation)
        assert torch.allclose(got.coefficients, coef, atol=1e-15), (advantage, aggregation)


def test_filtering_rescales_a_sum_but_not_a_token_mean():
    """Equal-reward groups contribute 0: resampling them (two groups per batch) divides a
    sequence-mean, constant or summed step by P(a group is informative) exactly, but a token
    mean over the batch also loses their tokens from its denominator. With one group per
    batch the token mean is rescaled exactly too (the denominator is that group's own)."""
    p_group = expected_step(PROTOTYPE, 4).informative
    # 4^8 batch terms, each |term| <= 1, summed in float64: error <= 4^8 * 2^-52 (about 1.5e-11)
    tol = 4**8 * 2.0**-52
    for aggregation, exact in (("sequence_mean", True), ("constant", True), ("sum", True),
                               ("token_mean", False)):
        kw = dict(advantage="group_mean", aggregation=aggregation)
        keep = expected_step(PROTOTYPE, 4, num_groups=2, **kw)
        res = expected_step(PROTOTYPE, 4, num_groups=2, filter="resample", **kw)
        gap = (res.coefficients - keep.coefficients / p_group).abs().max()
        assert (gap < tol) if exact else (gap > 1e3 * tol), (aggregation, gap)
        one = expected_step(PROTOTYPE, 4, filter="resample", **kw)
        one_keep = expected_step(PROTOTYPE, 4, **kw)
        assert torch.allclose(one.coefficients, one_keep.coefficients / p_group, atol=1e-15)


def test_dropping_within_a_batch_sits_between_keeping_and_resampling():
    kw = dict(advantage="group_mean", num_groups=2)
    keep, drop, res = (expected_step(PROTOTYPE, 4, filter=f, **kw)
                       for f in ("keep", "drop", "resample"))
    assert (keep.beta < drop.beta).all() and (drop.beta < res.beta).all()
    assert res.informative == pytest.approx(keep.informative)
    one = expected_step(PROTOTYPE, 4, advantage="group_mean")
    assert keep.informative == pytest.approx(one.informative**2, abs=1e-15)


@pytest.mark.parametrize("kwargs, match", [
    ({"group_size": 1}, "group_size"),
    ({"advantage": "std"}, "advantage must be one of"),
    ({"filter": "skip"}, "filter must be one of"),
    ({"aggregation": "mean"}, "aggregation must be one of"),
    ({"aggregation": "constant", "normalizer": 5}, "normalizer must be at least"),
    ({"normalizer": 8}, "normalizer is the constant"),
    ({"num_groups": 0}, "num_groups"),
    ({"num_groups": 3, "group_size": 4}, "too many"),
])
def test_bad_input(kwargs, match):
    args = {"group_size": 4, **kwargs}
    with pytest.raises(ValueError, match=match):
        expected_step(PROTOTYPE, **args)


@pytest.mark.parametrize("kwargs, match", [
    ({"probs": (0.5, 0.6)}, "sum to 1"),
    ({"probs": (1.0, 0.0)}, r"probs\[1\] must be > 0"),
    ({"lengths": (1, 0)}, r"lengths\[1\]"),
    ({"rewards": (1.0,)}, "rewards must be a tuple of at least 2"),
    ({"rewards": (1.0, float("nan"))}, r"rewards\[1\]"),
])
def test_bad_model(kwargs, match):
    args = {"probs": (0.5, 0.5), "lengths": (1, 2), "rewards": (1.0, 0.0), **kwargs}
    with pytest.raises(ValueError, match=match):
        AnswerModel(**args)
