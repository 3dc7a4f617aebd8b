"""pgbook.objectives: the policy-gradient surrogate, the actor-critic and A2C weights (chapter 6),
the ratio, TRPO, PPO-Clip and PPO-Penalty (chapters 7-8) with their score weights, the k3
estimator of the KL and the KL weights (chapter 9), DPG (chapter 10) and SAC's policy objective
(chapter 11)."""


import pytest
import torch

from pgbook.checks import exact_log
from pgbook.objectives import (
    a2c,
    a2c_weight,
    actor_critic,
    actor_critic_weight,
    adapt_kl_beta,
    dpg,
    dpg_gradient,
    not_clip,
    policy_gradient_surrogate,
    ppo_clip,
    ppo_clip_weight,
    ppo_penalty,
    ratio,
    sac_policy,
    sac_policy_weight,
    trpo,
    trpo_weight,
)

D = torch.float64


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


# ---- chapters 7 and 8: ratio, TRPO, PPO-Clip, PPO-Penalty -------------------------------------
D = torch.float64
# One sample per region: A > 0 then A < 0, each with r below, at 1, above [0.8, 1.2].
R6 = torch.tensor([0.5, 1.0, 1.5, 0.5, 1.0, 1.5], dtype=D)
A6 = torch.tensor([1.0, 1.0, 1.0, -1.0, -1.0, -1.0], dtype=D)


def _logp_for(r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """logp, logp_old with exp(logp - logp_old) == r to the last bit (logp_old = 0)."""
    logp = exact_log(r)
    assert torch.equal(torch.exp(logp), r)
    return logp, torch.zeros_like(r)


def test_ratio_hand_values_and_detached_old():
    logp = torch.log(torch.tensor([0.2, 0.5], dtype=D)).requires_grad_(True)
    logp_old = torch.log(torch.tensor([0.4, 0.25], dtype=D)).requires_grad_(True)
    r = ratio(logp, logp_old)
    assert torch.allclose(r, torch.tensor([0.5, 2.0], dtype=D), atol=1e-15)
    r.sum().backward()
    assert logp_old.grad is None  # the behaviour policy is a constant
    assert torch.allclose(logp.grad, r.detach(), atol=1e-15)  # grad r = r grad log pi


def test_trpo_hand_values_and_weight():
    logp, logp_old = _logp_for(R6)
    assert trpo(logp, logp_old, A6).item() == pytest.approx(0.0, abs=1e-15)
    adv = torch.tensor([2.0, 1.0, -1.0, 0.5, 0.0, 3.0], dtype=D)
    expected = (R6 * adv).mean().item()  # (1 + 1 - 1.5 + 0.25 + 0 + 4.5) / 6
    assert trpo(logp, logp_old, adv).item() == pytest.approx(expected, rel=1e-14)
    assert expected == pytest.approx(5.25 / 6, rel=1e-14)
    assert torch.allclose(trpo_weight(logp, logp_old, adv), R6 * adv, atol=1e-15)


def test_ppo_clip_hand_values_and_indicator():
    logp, logp_old = _logp_for(R6)
    # A > 0: min(.5,.8)=.5, 1, min(1.5,1.2)=1.2; A < 0: min(-.5,-.8)=-.8, -1, min(-1.5,-1.2)=-1.5
    assert ppo_clip(logp, logp_old, A6, 0.2).item() == pytest.approx(-0.6 / 6, rel=1e-14)
    expected = torch.tensor([True, True, False, False, True, True])
    assert torch.equal(not_clip(R6, A6, 0.2), expected)
    assert torch.allclose(ppo_clip_weight(logp, logp_old, A6, 0.2),
                          torch.tensor([0.5, 1.0, 0.0, 0.0, -1.0, -1.5], dtype=D), atol=1e-15)


def test_not_clip_boundaries_and_zero_advantage():
    r = torch.tensor([0.8, 1.2, 0.8, 1.2, 1.7, 0.1], dtype=D)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0, 0.0, 0.0], dtype=D)
    # closed inequalities: r <= 1 + eps for A >= 0, r >= 1 - eps for A < 0; A = 0 counts as >= 0
    assert not_clip(r, adv, 0.2).tolist() == [True, True, True, True, False, True]


def test_not_clip_is_not_the_inside_indicator(gen):
    r = torch.rand(2000, dtype=D, generator=gen) * 2
    adv = torch.randn(2000, dtype=D, generator=gen)
    inside = (r >= 0.8) & (r <= 1.2)
    pessimistic = ((adv >= 0) & (r < 0.8)) | ((adv < 0) & (r > 1.2))
    assert torch.equal(not_clip(r, adv, 0.2), inside | pessimistic)
    assert pessimistic.sum() > 100  # the difference is not empty


def _grad_wrt_logp(fn, logp, *args):
    logp = logp.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(fn(logp, *args), logp)
    return g


@pytest.mark.parametrize("eps", [0.1, 0.2, 0.3])
def test_weight_identities_random_all_regions(gen, eps):
    n = 500
    logp_old = torch.randn(n, dtype=D, generator=gen) - 1
    logp = logp_old + 0.6 * torch.randn(n, dtype=D, generator=gen)  # r spread over all regions
    adv = torch.randn(n, dtype=D, generator=gen)
    r = torch.exp(logp - logp_old)
    assert (r < 1 - eps).any() and (r > 1 + eps).any() and ((r - 1).abs() < eps).any()
    g_trpo = _grad_wrt_logp(trpo, logp, logp_old, adv)
    assert torch.allclose(g_trpo, trpo_weight(logp, logp_old, adv) / n, atol=1e-15, rtol=1e-13)
    g_clip = _grad_wrt_logp(ppo_clip, logp, logp_old, adv, eps)
    assert torch.allclose(g_clip, ppo_clip_weight(logp, logp_old, adv, eps) / n, atol=1e-15,
                          rtol=1e-13)


def test_weight_identity_holds_exactly_on_the_boundaries():
    """At r = 1 +- eps exactly, torch.clamp passes gradient 1 and torch.min splits the tie in
    half, so autograd returns A: the source's closed-inequality indicator."""
    r = torch.tensor([0.8, 1.2, 0.8, 1.2], dtype=D)
    adv = torch.tensor([2.0, 2.0, -3.0, -3.0], dtype=D)
    logp, logp_old = _logp_for(r)
    g = _grad_wrt_logp(ppo_clip, logp, logp_old, adv, 0.2)
    assert torch.equal(g * 4, ppo_clip_weight(logp, logp_old, adv, 0.2))
    assert torch.equal(g * 4, r * adv)  # indicator 1 at all four boundary points


def test_trpo_gradient_at_theta_old_is_the_policy_gradient_surrogate(gen):
    logits = torch.randn(50, 3, dtype=D, generator=gen, requires_grad=True)
    actions = torch.randint(0, 3, (50,), generator=gen)
    adv = torch.randn(50, dtype=D, generator=gen)
    logp = torch.log_softmax(logits, -1).gather(-1, actions[:, None])[:, 0]
    (g_trpo,) = torch.autograd.grad(trpo(logp, logp.detach(), adv), logits, retain_graph=True)
    (g_pg,) = torch.autograd.grad(policy_gradient_surrogate(logp[None], adv[None]) / 50, logits)
    assert torch.allclose(g_trpo, g_pg, atol=1e-15)


def test_ppo_penalty_value_and_gradient():
    logp, logp_old = _logp_for(R6)
    kl = torch.tensor([0.1, 0.0, 0.2, 0.3, 0.0, 0.4], dtype=D)
    val = ppo_penalty(logp, logp_old, A6, kl, beta=2.0)
    assert val.item() == pytest.approx((0.0 - 2.0 * 1.0) / 6, rel=1e-14)
    assert ppo_penalty(logp, logp_old, A6, kl, 0.0).item() == pytest.approx(
        trpo(logp, logp_old, A6).item(), abs=1e-15)
    kl = kl.clone().requires_grad_(True)
    ppo_penalty(logp, logp_old, A6, kl, beta=2.0).backward()
    assert torch.allclose(kl.grad, torch.full((6,), -2.0 / 6, dtype=D))


def test_adapt_kl_beta_rule():
    assert adapt_kl_beta(1.0, kl=0.001, kl_target=0.01) == 0.5      # < target / 1.5
    assert adapt_kl_beta(1.0, kl=0.02, kl_target=0.01) == 2.0       # > target * 1.5
    assert adapt_kl_beta(1.0, kl=0.01, kl_target=0.01) == 1.0
    assert adapt_kl_beta(1.0, kl=0.015, kl_target=0.01) == 1.0      # the band is closed
    with pytest.raises(ValueError, match="kl_target must be >"):
        adapt_kl_beta(1.0, 0.01, 0.0)
    with pytest.raises(ValueError, match="beta must be >"):
        adapt_kl_beta(0.0, 0.01, 0.01)


def test_objectives_differentiate_only_logp():
    logp = torch.zeros(3, dtype=D, requires_grad=True)
    logp_old = torch.zeros(3, dtype=D, requires_grad=True)
    adv = torch.ones(3, dtype=D, requires_grad=True)
    (ppo_clip(logp, logp_old, adv, 0.2) + trpo(logp, logp_old, adv)).backward()
    assert logp_old.grad is None and adv.grad is None and logp.grad is not None


def test_float32_works():
    logp = torch.zeros(4, requires_grad=True)
    v = ppo_clip(logp, torch.zeros(4), torch.ones(4), 0.2)
    assert v.dtype == torch.float32 and v.item() == 1.0


Z3 = torch.zeros(3, dtype=D)


@pytest.mark.parametrize("fn, args, match", [
    (trpo, (Z3, torch.zeros(2, dtype=D), Z3), "shape mismatch"),
    (ppo_clip, (Z3, Z3, torch.zeros(3, 1, dtype=D), 0.2), "shape mismatch"),
    (ppo_clip, (Z3, Z3, Z3, 0.0), "eps must be >"),
    (ppo_clip, (Z3, Z3, Z3, 1.0), "eps must be <"),
    (ppo_clip_weight, (Z3, Z3, Z3, -0.1), "eps must be >"),
    (ppo_clip, (Z3, Z3, Z3, float("nan")), "eps must be finite"),
    (trpo, (Z3, Z3, torch.tensor([0.0, float("nan"), 0.0], dtype=D)), "adv contains non-finite"),
    (ratio, (torch.tensor([float("inf")]), torch.zeros(1)), "logp contains non-finite"),
    (trpo, (Z3, Z3, torch.zeros(3, dtype=torch.long)), "adv must have a floating dtype"),
    (trpo, (torch.zeros(0), torch.zeros(0), torch.zeros(0)), "must not be empty"),
    (not_clip, (torch.tensor([-0.5]), torch.ones(1), 0.2), "ratio must be >= 0"),
    (not_clip, (torch.ones(2), torch.ones(3), 0.2), "shape mismatch"),
    (ppo_penalty, (Z3, Z3, Z3, torch.zeros(2, dtype=D), 1.0), "shape mismatch"),
    (ppo_penalty, (Z3, Z3, Z3, Z3, -1.0), "beta must be >= 0"),
    (ratio, ([0.0], Z3), "logp must be a torch.Tensor"),
])
def test_objectives_validate(fn, args, match):
    with pytest.raises(ValueError, match=match):
        fn(*args)


# ---- actor-critic and A2C weights ---------------------------------------------------------------

def test_actor_critic_weight_hand_values():
    q = torch.tensor([[1.0, 2.0, 4.0]], dtype=D)
    assert torch.equal(actor_critic_weight(q), q)
    assert torch.allclose(actor_critic_weight(q, gamma=0.5), torch.tensor([[1.0, 1, 1]], dtype=D))
    assert torch.equal(a2c_weight(q, gamma=0.5), actor_critic_weight(q, gamma=0.5))


def test_actor_critic_surrogate_gradient(gen):
    logits = torch.randn(4, 3, 2, dtype=D, generator=gen, requires_grad=True)
    actions = torch.randint(0, 2, (4, 3), generator=gen)
    logp = torch.log_softmax(logits, -1).gather(-1, actions[..., None])[..., 0]
    q = torch.randn(4, 3, dtype=D, generator=gen)
    (g,) = torch.autograd.grad(actor_critic(logp, q, gamma=0.9), logits)
    score = torch.nn.functional.one_hot(actions, 2).double() - torch.softmax(logits.detach(), -1)
    psi = q * 0.9 ** torch.arange(3, dtype=D)
    assert torch.allclose(g, score * psi[..., None] / 4, atol=1e-14)
    assert a2c(logp, q).item() == pytest.approx(actor_critic(logp, q).item())


@pytest.mark.parametrize("q, gamma, match", [
    (torch.zeros(3, dtype=D), None, "2 dimension"),
    (torch.zeros(2, 3, dtype=D), 1.5, "gamma must be <= 1"),
    (torch.zeros(0, 3, dtype=D), None, "must not be empty"),
])
def test_actor_critic_weight_validates(q, gamma, match):
    with pytest.raises(ValueError, match=match):
        actor_critic_weight(q, gamma=gamma)


# ---- SAC's policy objective ------------------------------------------------------------------

def test_sac_policy_and_its_weight():
    q = torch.tensor([1.0, 3.0], dtype=D)
    logp = torch.tensor([-1.0, -2.0], dtype=D)
    assert sac_policy(q, logp, 0.5).item() == pytest.approx((1.5 + 4.0) / 2)
    w = torch.tensor([0.25, 0.75], dtype=D)
    assert sac_policy(q, logp, 0.5, weights=w).item() == pytest.approx(0.25 * 1.5 + 0.75 * 4.0)
    psi = sac_policy_weight(q, logp, 0.5, baseline=torch.tensor(1.0, dtype=D))
    assert torch.equal(psi, torch.tensor([0.5, 3.0], dtype=D))
    with pytest.raises(ValueError, match="sum to 1"):
        sac_policy(q, logp, 0.5, weights=torch.tensor([0.5, 0.6], dtype=D))
    with pytest.raises(ValueError, match="alpha must be >= 0"):
        sac_policy_weight(q, logp, -0.1)
    with pytest.raises(ValueError, match="broadcast"):
        sac_policy_weight(q, logp, 0.1, baseline=torch.zeros(3, dtype=D))


# ---- DPG ---------------------------------------------------------------------------------------

def test_dpg_gradient_hand_example():
    # mu_theta(s) = theta_0 + theta_1 s (m = 1, d = 2), Q(s, a) = -(a - 2)^2 at s = 3, theta = 0:
    # grad_theta mu = (1, 3), grad_a Q = -2 (0 - 2) = 4, so the DPG is (4, 12).
    jac = torch.tensor([[[1.0, 3.0]]], dtype=D)
    grad_a = torch.tensor([[4.0]], dtype=D)
    assert torch.equal(dpg_gradient(jac, grad_a), torch.tensor([4.0, 12.0], dtype=D))
    theta = torch.zeros(2, dtype=D, requires_grad=True)
    states = torch.tensor([[3.0]], dtype=D)
    actions = (theta[0] + theta[1] * states[:, :1])
    J = dpg(lambda s, a: -(a[:, 0] - 2) ** 2, states, actions)
    (g,) = torch.autograd.grad(J, theta)
    assert torch.equal(g, torch.tensor([4.0, 12.0], dtype=D))


def test_dpg_validates():
    with pytest.raises(ValueError, match="callable"):
        dpg(None, torch.zeros(2, 1, dtype=D), torch.zeros(2, 1, dtype=D))
    with pytest.raises(ValueError, match="same number"):
        dpg(lambda s, a: a[:, 0], torch.zeros(2, 1, dtype=D), torch.zeros(3, 1, dtype=D))
    with pytest.raises(ValueError, match="shape \\(2,\\)"):
        dpg(lambda s, a: a, torch.zeros(2, 1, dtype=D), torch.zeros(2, 1, dtype=D))
    with pytest.raises(ValueError, match="must be \\(B, m, d\\)"):
        dpg_gradient(torch.zeros(2, 1, 3, dtype=D), torch.zeros(2, 2, dtype=D))
