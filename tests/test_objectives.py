import pytest
import torch

from pgbook.objectives import policy_gradient_surrogate


def test_surrogate_gradient_is_score_times_weight(gen):
    logits = torch.randn(5, 3, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    actions = torch.randint(0, 4, (5, 3), generator=gen)
    logp = torch.log_softmax(logits, -1).gather(-1, actions[..., None])[..., 0]
    w = torch.randn(5, 3, dtype=torch.float64, generator=gen)
    (g,) = torch.autograd.grad(policy_gradient_surrogate(logp, w), logits)
    pi = torch.softmax(logits.detach(), -1)
    score = torch.nn.functional.one_hot(actions, 4).double() - pi
    assert torch.allclose(g, score * w[..., None] / 5, atol=1e-14)


def test_surrogate_per_trajectory_weight_and_mask():
    logp = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    assert policy_gradient_surrogate(logp, torch.tensor([1.0, -1.0], dtype=torch.float64)) == -2
    mask = torch.tensor([[1, 0], [1, 1]])
    val = policy_gradient_surrogate(logp, torch.ones(2, dtype=torch.float64), mask)
    assert val.item() == pytest.approx((1 + 3 + 4) / 2)


def test_surrogate_weights_are_detached():
    logp = torch.zeros(2, 2, dtype=torch.float64, requires_grad=True)
    w = torch.ones(2, 2, dtype=torch.float64, requires_grad=True)
    policy_gradient_surrogate(logp, w).backward()
    assert w.grad is None


@pytest.mark.parametrize("logp, w, mask, match", [
    (torch.zeros(2, 3), torch.zeros(3), None, "one entry per trajectory"),
    (torch.zeros(2, 3), torch.zeros(2, 2), None, "shape mismatch"),
    (torch.zeros(2, 3), torch.zeros(2, 3), torch.ones(2, 2), "shape mismatch"),
    (torch.zeros(6), torch.zeros(6), None, "logp must have 2"),
    (torch.zeros(2, 3), torch.full((2, 3), float("inf")), None, "non-finite"),
])
def test_surrogate_validates(logp, w, mask, match):
    with pytest.raises(ValueError, match=match):
        policy_gradient_surrogate(logp, w, mask)
