import math

import pytest
import torch

from pgbook.returns import group_advantages

D = torch.float64


def test_hand_values_population_std():
    r = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]], dtype=D)
    a = group_advantages(r, eps=0.0)
    s = math.sqrt(3) / 4  # population std of (1, 1, 1, 0)
    expected = torch.tensor([[1.0, -1.0, 1.0, -1.0],
                             [0.25 / s, 0.25 / s, 0.25 / s, -0.75 / s]], dtype=D)
    assert torch.allclose(a, expected, atol=1e-15)
    # eps enters the denominator once: (r - mean) / (std + eps)
    a_eps = group_advantages(r, eps=0.5)
    assert torch.allclose(a_eps[0], torch.tensor([0.5, -0.5, 0.5, -0.5], dtype=D), atol=1e-15)


def test_unbiased_std_and_dr_grpo_centring():
    r = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=D)
    a = group_advantages(r, eps=0.0, unbiased=True)  # std with G - 1 = 0.5
    assert torch.allclose(a, torch.tensor([[0.5, 0.5, 0.5, -1.5]], dtype=D), atol=1e-15)
    centred = group_advantages(r, scale_by_std=False)
    assert torch.equal(centred, torch.tensor([[0.25, 0.25, 0.25, -0.75]], dtype=D))


@pytest.mark.parametrize("eps", [0.0, 1e-4])
@pytest.mark.parametrize("value", [0.0, 1.0, 0.1, -3.7])
def test_equal_rewards_give_exact_zeros(eps, value):
    r = torch.full((2, 5), value, dtype=D)
    for scale in (True, False):
        a = group_advantages(r, eps=eps, scale_by_std=scale)
        assert torch.equal(a, torch.zeros_like(r))
        assert not torch.isnan(a).any()


def test_only_the_constant_group_is_zeroed():
    r = torch.tensor([[0.3, 0.3, 0.3], [0.0, 1.0, 2.0]], dtype=D)
    a = group_advantages(r, eps=0.0)
    assert torch.equal(a[0], torch.zeros(3, dtype=D))
    assert torch.allclose(a[1], torch.tensor([-1.0, 0.0, 1.0], dtype=D) / math.sqrt(2 / 3))


def test_zero_mean_unit_mean_square_shift_and_scale_invariance(gen):
    r = torch.randn(50, 8, dtype=D, generator=gen)
    a = group_advantages(r, eps=0.0)
    assert torch.allclose(a.mean(1), torch.zeros(50, dtype=D), atol=1e-14)
    assert torch.allclose(a.pow(2).mean(1), torch.ones(50, dtype=D), atol=1e-12)
    shifted = group_advantages(r + 3.5, eps=0.0)
    scaled = group_advantages(4.0 * r, eps=0.0)
    assert torch.allclose(shifted, a, atol=1e-12)
    assert torch.allclose(scaled, a, atol=1e-12)
    # scaling is not exactly invariant once eps > 0 (eps does not scale); shifting still is
    assert not torch.allclose(group_advantages(1e-3 * r, eps=1e-4), a, atol=1e-3)
    assert torch.allclose(group_advantages(r - 2.0, eps=1e-4), group_advantages(r, eps=1e-4))


@pytest.mark.parametrize("rewards, kwargs, match", [
    (torch.zeros(4), {}, "rewards must have 2"),
    (torch.zeros(3, 1), {}, "at least 2 answers"),
    (torch.zeros(0, 4), {}, "at least one group"),
    (torch.zeros(2, 4, dtype=torch.long), {}, "floating"),
    (torch.full((2, 4), float("nan")), {}, "non-finite"),
    (torch.zeros(2, 4), {"eps": -1e-3}, "eps must be >= 0"),
    (torch.zeros(2, 4), {"eps": float("inf")}, "eps must be finite"),
    (torch.zeros(2, 4), {"scale_by_std": 1}, "scale_by_std must be a bool"),
    (torch.zeros(2, 4), {"unbiased": "yes"}, "unbiased must be a bool"),
    ([[1.0, 0.0]], {}, "torch.Tensor"),
])
def test_bad_input(rewards, kwargs, match):
    with pytest.raises(ValueError, match=match):
        group_advantages(rewards, **kwargs)
