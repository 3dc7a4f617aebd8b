import math

import pytest
import torch
from torch.distributions import Normal, TransformedDistribution

from pgbook.nets import SquashedGaussianPolicy


def _policy(act_dim=2, low=-2.0, high=(1.0, 3.0), dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    pi = SquashedGaussianPolicy(3, act_dim, hidden=(16,), low=low, high=high)
    return pi.to(dtype)


def _change_of_variables(pi, obs, u):
    """log N(u; m, sigma) - sum log(1 - tanh(u)^2) - sum log h, written out (float64)."""
    base = pi.base(obs)
    log_jac = torch.log1p(-torch.tanh(u) ** 2)  # accurate for moderate |u| in float64
    return base.log_prob(u) - log_jac.sum(-1) - pi.scale.log().sum()


def test_log_prob_is_the_change_of_variables_formula():
    pi = _policy()
    obs = torch.randn(500, 3, dtype=torch.float64)
    dist = pi.dist(obs)
    assert isinstance(dist, TransformedDistribution)
    assert dist.batch_shape == (500,) and dist.event_shape == (2,)
    u = pi.base(obs).sample()  # moderate |u|: the written-out formula is accurate here
    a = pi.centre + pi.scale * torch.tanh(u)
    expected = _change_of_variables(pi, obs, u)
    # log_prob of a *fresh* a (no cache): TanhTransform inverts it with atanh
    assert torch.allclose(dist.log_prob(a), expected, atol=1e-8, rtol=1e-8)
    # sample() returns pairs (a, log pi(a|s)) with the log-density of dist()
    a2, logp2 = pi.sample(obs)
    assert a2.shape == (500, 2) and logp2.shape == (500,)
    assert ((a2 >= torch.tensor([-2.0, -2.0])) & (a2 <= torch.tensor([1.0, 3.0]))).all()
    assert torch.allclose(logp2, dist.log_prob(a2.detach().clone()), atol=1e-8, rtol=1e-8)
    # ... also far in the tails, against the cached log_prob of a TransformedDistribution
    with torch.no_grad():
        pi.net.layers[-1].bias[:2] = torch.tensor([25.0, -25.0])
    torch.manual_seed(3)
    a3, logp3 = pi.sample(obs)
    torch.manual_seed(3)
    d3 = pi.dist(obs)
    a4 = d3.rsample()
    assert torch.equal(a3, a4) and torch.allclose(logp3, d3.log_prob(a4), atol=1e-9, rtol=1e-9)
    assert torch.isfinite(logp3).all()


def test_density_integrates_to_one_on_the_box():
    torch.manual_seed(1)
    pi = SquashedGaussianPolicy(2, 1, hidden=(8,), low=-2.0, high=2.0).double()
    obs = torch.randn(4, 2, dtype=torch.float64)
    # integrate over u (a = 2 tanh(u)), i.e. the density in a times da/du, on a fine grid
    u = torch.linspace(-30, 30, 200_001, dtype=torch.float64)
    for s in obs:
        dist = pi.dist(s.expand(len(u), 2))
        a = (2 * torch.tanh(u))[:, None]
        inside = a[:, 0].abs() < 2  # tanh(u) rounds to +-1 far out; there the density is ~0
        dens = dist.log_prob(a.clamp(-2 + 1e-15, 2 - 1e-15)).exp() * 2 * (1 - torch.tanh(u) ** 2)
        total = torch.trapezoid(torch.where(inside, dens, 0.0), u)
        assert abs(total.item() - 1) < 1e-6


def test_log_prob_is_finite_far_in_the_tails_where_the_naive_formula_is_not():
    pi = _policy(act_dim=1, low=-1.0, high=1.0, dtype=torch.float32)
    with torch.no_grad():  # push the pre-squash mean far out: |u| ~ 40
        pi.net.layers[-1].bias.copy_(torch.tensor([40.0, -10.0]))
        pi.net.layers[-1].weight.zero_()
    obs = torch.zeros(1000, 3)
    a, logp = pi.sample(obs)
    assert torch.isfinite(logp).all() and torch.isfinite(a).all()
    u = pi.base(obs).mean
    naive = pi.base(obs).log_prob(u) - torch.log(1 - torch.tanh(u) ** 2).sum(-1)
    assert torch.isinf(naive).all()  # 1 - tanh(40)^2 rounds to 0 in float32
    # the stable form 2 (log 2 - u - softplus(-2u)) matches torch's TanhTransform
    stable = 2 * (math.log(2) - u - torch.nn.functional.softplus(-2 * u))
    jac = torch.distributions.TanhTransform().log_abs_det_jacobian(u, torch.tanh(u))
    assert torch.allclose(jac, stable) and torch.isfinite(stable).all()
    # gradients through a reparameterised sample stay finite too
    a, logp = pi.sample(obs[:8])
    (logp.sum() + a.sum()).backward()
    assert all(torch.isfinite(p.grad).all() for p in pi.parameters())


def test_recomputing_u_from_a_stored_action_is_what_breaks():
    pi = _policy(act_dim=1, low=-1.0, high=1.0, dtype=torch.float32)
    with torch.no_grad():
        pi.net.layers[-1].bias.copy_(torch.tensor([40.0, -10.0]))
        pi.net.layers[-1].weight.zero_()
    obs = torch.zeros(5, 3)
    a, _ = pi.sample(obs)
    stored = a.clone()  # a new tensor: the transforms' cache does not recognise it
    assert not torch.isfinite(pi.dist(obs).log_prob(stored)).all()


def test_gradients_flow_through_rsample_and_std_is_bounded():
    pi = _policy(dtype=torch.float32)
    with torch.no_grad():
        pi.net.layers[-1].bias.fill_(1e4)  # log-std head saturates at log_std_max
    base = pi.base(torch.zeros(2, 3))
    assert torch.allclose(base.stddev, torch.full((2, 2), math.exp(2.0)))
    pi = _policy(dtype=torch.float32)
    a, logp = pi.sample(torch.randn(6, 3))
    (a.sum() + logp.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pi.parameters())
    m = pi.mode(torch.randn(6, 3))
    assert m.shape == (6, 2) and torch.isfinite(m).all()


def test_reparameterised_sample_has_the_policy_law():
    pi = _policy(act_dim=1, low=-1.0, high=1.0)
    obs = torch.zeros(200_000, 3, dtype=torch.float64)
    with torch.no_grad():
        a, _ = pi.sample(obs)
    base = pi.base(obs[:1])
    m, s = base.mean.item(), base.stddev.item()
    # P(a <= tanh(m)) = P(u <= m) = 1/2; P(a <= tanh(m + s)) = Phi(1)
    for q, p in ((math.tanh(m), 0.5), (math.tanh(m + s), Normal(0.0, 1.0).cdf(
            torch.tensor(1.0)).item())):
        freq = (a[:, 0] <= q).double().mean().item()
        assert abs(freq - p) < 5 * math.sqrt(p * (1 - p) / len(a))


def test_bad_arguments():
    with pytest.raises(ValueError, match="high > low"):
        SquashedGaussianPolicy(3, 1, low=1.0, high=1.0)
    with pytest.raises(ValueError, match="finite"):
        SquashedGaussianPolicy(3, 1, low=-math.inf, high=1.0)
    with pytest.raises(ValueError, match="length act_dim"):
        SquashedGaussianPolicy(3, 2, low=[-1.0, -1.0, -1.0], high=1.0)
    with pytest.raises(ValueError, match="log_std_max"):
        SquashedGaussianPolicy(3, 1, log_std_min=0.0, log_std_max=-1.0)
    pi = SquashedGaussianPolicy(3, 1, hidden=(4,))
    with pytest.raises(ValueError, match="obs must have shape"):
        pi.dist(torch.zeros(5, 4))
    with pytest.raises(ValueError, match="floating"):
        pi.sample(torch.zeros(5, 3, dtype=torch.long))
