"""pgbook.nets: the MLP, categorical and Gaussian policies, V(s); for the off-policy
actor-critics (chapters 10-11) the deterministic policy, the tanh-squashed Gaussian policy of
SAC (its log-density, tails and gradients), the uniform warm-up policy, the Q ensemble, Polyak
averaging and clipping actions to a box."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Independent, Normal, TransformedDistribution

from pgbook.nets import (
    MLP,
    CategoricalPolicy,
    DeterministicPolicy,
    GaussianPolicy,
    QEnsemble,
    SquashedGaussianPolicy,
    UniformPolicy,
    ValueNet,
    clip_to_box,
    default_dtype,
    policy_for,
    polyak_update,
)


def test_mlp_shapes_and_orthogonal_init():
    torch.manual_seed(0)
    net = MLP(4, 3, hidden=(16, 8), out_gain=0.5)
    assert net(torch.zeros(4)).shape == (3,)
    assert net(torch.zeros(5, 4)).shape == (5, 3)
    assert net(torch.zeros(2, 5, 4)).shape == (2, 5, 3)
    linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(4, 16), (16, 8), (8, 3)]
    assert all(torch.count_nonzero(m.bias) == 0 for m in linears)
    # orthogonal rows (out <= in), scaled by the gain: W W^T = gain^2 I
    W = linears[1].weight.detach()
    assert torch.allclose(W @ W.T, 2.0 * torch.eye(8), atol=1e-5)
    W = linears[2].weight.detach()
    assert torch.allclose(W @ W.T, 0.25 * torch.eye(3), atol=1e-5)
    assert isinstance(MLP(2, 2, activation=nn.ReLU).layers[1], nn.ReLU)
    assert len(list(MLP(2, 2, hidden=()).modules())) == 3  # MLP, Sequential, one Linear


def test_categorical_policy_is_a_torch_categorical_with_the_net_logits():
    torch.manual_seed(0)
    pi = CategoricalPolicy(4, 3, hidden=(16,))
    obs = torch.randn(6, 4)
    dist = pi.dist(obs)
    assert isinstance(dist, Categorical) and dist.batch_shape == (6,)
    a = dist.sample()
    assert a.shape == (6,) and a.dtype == torch.long
    reference = Categorical(logits=pi.logits(obs))
    assert torch.allclose(dist.log_prob(a), reference.log_prob(a))
    assert torch.allclose(dist.log_prob(a), torch.log_softmax(pi.logits(obs), -1)[range(6), a])
    # small output gain: the initial policy is close to uniform
    assert torch.allclose(dist.probs, torch.full((6, 3), 1 / 3), atol=0.02)
    assert pi.dist(obs[0]).batch_shape == ()
    assert pi.dist(obs.reshape(3, 2, 4)).batch_shape == (3, 2)  # time-major (T, N, obs_dim)


def test_gaussian_policy_is_an_independent_normal_with_state_independent_std():
    torch.manual_seed(0)
    pi = GaussianPolicy(3, 2, hidden=(16,), log_std_init=-0.5)
    obs = torch.randn(5, 3)
    dist = pi.dist(obs)
    assert isinstance(dist, Independent)
    assert dist.batch_shape == (5,) and dist.event_shape == (2,)
    a = dist.sample()
    mu, std = pi.mean(obs), torch.full((5, 2), math.exp(-0.5))
    assert torch.allclose(dist.stddev, std)
    assert torch.allclose(dist.log_prob(a), Normal(mu, std).log_prob(a).sum(-1))
    # the log-density of a diagonal Gaussian, written out once to pin the convention
    by_hand = (-0.5 * ((a - mu) / std) ** 2 - torch.log(std) - 0.5 * math.log(2 * math.pi)).sum(-1)
    assert torch.allclose(dist.log_prob(a), by_hand, atol=1e-5)
    # log_std is a parameter and gets a gradient through log_prob
    dist.log_prob(a).sum().backward()
    assert pi.log_std.grad is not None and pi.log_std.grad.shape == (2,)


def test_value_net_shapes():
    v = ValueNet(4, hidden=(8,))
    assert v(torch.zeros(7, 4)).shape == (7,)
    assert v(torch.zeros(4)).shape == ()
    assert v(torch.zeros(3, 2, 4)).shape == (3, 2)


def test_float64_observations_are_cast_to_the_weights_dtype():
    pi = CategoricalPolicy(4, 2)
    assert pi.dist(torch.zeros(3, 4, dtype=torch.float64)).logits.dtype == torch.float32


def test_policy_for_picks_the_distribution_from_the_spaces():
    box = gym.spaces.Box(-1, 1, shape=(4,), dtype=np.float32)
    assert isinstance(policy_for(box, gym.spaces.Discrete(2)), CategoricalPolicy)
    g = policy_for(box, gym.spaces.Box(-2, 2, shape=(3,), dtype=np.float32))
    assert isinstance(g, GaussianPolicy) and g.act_dim == 3
    with pytest.raises(ValueError, match="action_space"):
        policy_for(box, gym.spaces.MultiBinary(3))
    with pytest.raises(ValueError, match="observation_space"):
        policy_for(gym.spaces.Discrete(3), gym.spaces.Discrete(2))


@pytest.mark.parametrize("make, match", [
    (lambda: MLP(0, 2), "in_dim"),
    (lambda: MLP(2, 2.5), "out_dim"),
    (lambda: MLP(2, 2, hidden=64), "hidden"),
    (lambda: MLP(2, 2, hidden=(64, 0)), "hidden width"),
    (lambda: MLP(2, 2, activation=torch.tanh), "activation"),
    (lambda: MLP(2, 2, out_gain=-1.0), "out_gain"),
    (lambda: MLP(3, 2)(torch.zeros(5, 4)), r"x must have shape \(\.\.\., 3\)"),
    (lambda: MLP(3, 2)([0.0, 0.0, 0.0]), "torch.Tensor"),
    (lambda: CategoricalPolicy(4, 1), "n_actions"),
    (lambda: CategoricalPolicy(4, 2).dist(torch.zeros(5, 3)), r"obs must have shape"),
    (lambda: CategoricalPolicy(4, 2).dist(torch.tensor(1.0)), r"obs must have shape"),
    (lambda: CategoricalPolicy(4, 2).dist(torch.zeros(5, 4, dtype=torch.long)), "floating"),
    (lambda: GaussianPolicy(4, 0), "act_dim"),
    (lambda: GaussianPolicy(4, 2, log_std_init=float("nan")), "log_std_init"),
    (lambda: GaussianPolicy(4, 2).dist(np.zeros((1, 4))), "torch.Tensor"),
    (lambda: ValueNet(4)(torch.zeros(5, 2)), r"obs must have shape"),
])
def test_bad_input_raises_value_error_naming_the_problem(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# ---- the tanh-squashed Gaussian policy of SAC -------------------------------------------------

def _squashed(act_dim=2, low=-2.0, high=(1.0, 3.0), dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    pi = SquashedGaussianPolicy(3, act_dim, hidden=(16,), low=low, high=high)
    return pi.to(dtype)


def _change_of_variables(pi, obs, u):
    """log N(u; m, sigma) - sum log(1 - tanh(u)^2) - sum log h, written out (float64)."""
    base = pi.base(obs)
    log_jac = torch.log1p(-torch.tanh(u) ** 2)  # accurate for moderate |u| in float64
    return base.log_prob(u) - log_jac.sum(-1) - pi.scale.log().sum()


def test_log_prob_is_the_change_of_variables_formula():
    pi = _squashed()
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
    pi = _squashed(act_dim=1, low=-1.0, high=1.0, dtype=torch.float32)
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
    pi = _squashed(act_dim=1, low=-1.0, high=1.0, dtype=torch.float32)
    with torch.no_grad():
        pi.net.layers[-1].bias.copy_(torch.tensor([40.0, -10.0]))
        pi.net.layers[-1].weight.zero_()
    obs = torch.zeros(5, 3)
    a, _ = pi.sample(obs)
    stored = a.clone()  # a new tensor: the transforms' cache does not recognise it
    assert not torch.isfinite(pi.dist(obs).log_prob(stored)).all()


def test_gradients_flow_through_rsample_and_std_is_bounded():
    pi = _squashed(dtype=torch.float32)
    with torch.no_grad():
        pi.net.layers[-1].bias.fill_(1e4)  # log-std head saturates at log_std_max
    base = pi.base(torch.zeros(2, 3))
    assert torch.allclose(base.stddev, torch.full((2, 2), math.exp(2.0)))
    pi = _squashed(dtype=torch.float32)
    a, logp = pi.sample(torch.randn(6, 3))
    (a.sum() + logp.sum()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in pi.parameters())
    m = pi.mode(torch.randn(6, 3))
    assert m.shape == (6, 2) and torch.isfinite(m).all()


def test_reparameterised_sample_has_the_policy_law():
    pi = _squashed(act_dim=1, low=-1.0, high=1.0)
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


def test_squashed_gaussian_bad_arguments():
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


# ---- the deterministic policy, the Q ensemble and Polyak averaging --------------------------

def test_polyak_update_by_hand_and_exact_copy_at_tau_one():
    torch.manual_seed(0)
    source, target = nn.Linear(3, 2), nn.Linear(3, 2)
    before = [p.detach().clone() for p in target.parameters()]
    polyak_update(target, source, 0.25)
    for t, b, s in zip(target.parameters(), before, source.parameters(), strict=True):
        assert torch.allclose(t, 0.75 * b + 0.25 * s, atol=1e-7)
    polyak_update(target, source, 1.0)
    assert all(torch.equal(t, s) for t, s in zip(target.parameters(), source.parameters(),
                                                 strict=True))
    # k updates with tau shrink the gap geometrically: (1 - tau)^k
    target = nn.Linear(3, 2)
    gap0 = (target.weight - source.weight).detach().clone()
    for _ in range(10):
        polyak_update(target, source, 0.1)
    assert torch.allclose(target.weight - source.weight, 0.9**10 * gap0, atol=1e-6)


def test_polyak_update_copies_buffers_and_rejects_bad_input():
    a = DeterministicPolicy(3, 1, (4,), low=-2.0, high=2.0)
    b = DeterministicPolicy(3, 1, (4,), low=-1.0, high=3.0)
    polyak_update(b, a, 0.5)
    assert torch.equal(b.centre, a.centre) and torch.equal(b.scale, a.scale)
    with pytest.raises(ValueError, match="tau"):
        polyak_update(b, a, 0.0)
    with pytest.raises(ValueError, match="tau"):
        polyak_update(b, a, 1.5)
    with pytest.raises(ValueError, match="same shapes"):
        polyak_update(nn.Linear(3, 2), nn.Linear(3, 3), 0.5)
    with pytest.raises(ValueError, match="same shapes"):
        polyak_update(nn.Linear(3, 2), nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 2)), 0.5)
    with pytest.raises(ValueError, match="Module"):
        polyak_update(b, "a", 0.5)


def test_q_ensemble_members_are_independent_mlps():
    torch.manual_seed(0)
    q = QEnsemble(3, 2, hidden=(8, 5), n=3)
    obs, act = torch.randn(7, 3), torch.randn(7, 2)
    out = q(obs, act)
    assert out.shape == (3, 7)
    for j in range(3):
        ref = q.member(j)(torch.cat([obs, act], -1)).squeeze(-1)
        assert torch.allclose(out[j], ref, atol=1e-6)
    assert not torch.allclose(out[0], out[1])  # different initial weights
    # orthogonal init per member, like MLP: W^T W = 2 I for the (5 <- 8) hidden layer
    W = q.weights[1][2].detach()  # (in=8, out=5)
    assert torch.allclose(W.T @ W, 2.0 * torch.eye(5), atol=1e-5)
    # gradients of member j's output reach only member j's weights
    out[1].sum().backward()
    assert q.weights[0].grad[0].abs().sum() == 0 and q.weights[0].grad[1].abs().sum() > 0
    with pytest.raises(ValueError, match="act must be a tensor of shape"):
        q(obs, act[:5])
    with pytest.raises(ValueError, match="obs must be a tensor of shape"):
        q(obs[0], act[0])
    with pytest.raises(ValueError, match="j must be"):
        q.member(3)


def test_deterministic_policy_stays_in_its_box():
    torch.manual_seed(0)
    mu = DeterministicPolicy(3, 2, (8,), low=[-2.0, 0.0], high=[2.0, 1.0])
    with torch.no_grad():
        mu.net.layers[-1].weight.mul_(1e3)  # saturate the tanh
    a = mu(torch.randn(500, 3))
    assert a.shape == (500, 2)
    assert (a[:, 0].abs() <= 2).all() and ((a[:, 1] >= 0) & (a[:, 1] <= 1)).all()
    with pytest.raises(ValueError, match="high > low"):
        DeterministicPolicy(3, 1, low=1.0, high=0.0)


# ---- the uniform warm-up policy and clipping to the box ----------------------------------------

def test_uniform_policy_covers_its_box_uniformly():
    pi = UniformPolicy([-2.0, 0.0], [2.0, 1.0])
    dist = pi.dist(torch.zeros(5, 3))
    assert isinstance(dist, Independent)
    assert dist.batch_shape == (5,) and dist.event_shape == (2,)
    assert pi.dist(torch.zeros(4, 6, 3)).batch_shape == (4, 6)  # time-major (T, N, obs_dim)
    assert pi.dist(torch.zeros(3)).batch_shape == ()
    # log density: -log of the box's volume, 4 * 1
    logp = dist.log_prob(torch.tensor([0.5, 0.5]))
    assert torch.allclose(logp, torch.full((5,), -math.log(4)))
    torch.manual_seed(0)
    a = pi.dist(torch.zeros(100_000, 3)).sample()
    assert (a[:, 0] >= -2).all() and (a[:, 0] <= 2).all()
    assert (a[:, 1] >= 0).all() and (a[:, 1] <= 1).all()
    # mean and variance of U[low, high]: (low + high) / 2 and (high - low)^2 / 12
    assert torch.allclose(a.mean(0), torch.tensor([0.0, 0.5]), atol=0.02)
    assert torch.allclose(a.var(0), torch.tensor([16 / 12, 1 / 12]), rtol=0.02)


def test_uniform_policy_rejects_an_empty_box():
    with pytest.raises(ValueError, match="low < high"):
        UniformPolicy([0.0, 1.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="one shape"):
        UniformPolicy([0.0, 0.0], [1.0, 1.0, 1.0])


def test_clip_to_box_clamps_each_dimension_into_its_interval():
    low, high = torch.tensor([-2.0, 0.0]), torch.tensor([2.0, 1.0])
    a = torch.tensor([[-3.0, 0.5], [1.0, 7.0], [2.0, -1e-9], [0.0, 1.0]])
    assert clip_to_box(a, low, high).tolist() == [[-2.0, 0.5], [1.0, 1.0], [2.0, 0.0],
                                                  [0.0, 1.0]]
    inside = torch.tensor([[0.3, 0.2]])
    assert torch.equal(clip_to_box(inside, low, high), inside)
    # gradient 1 inside the box, 0 where clipped (as torch.clamp)
    x = torch.tensor([[-3.0, 0.5]], requires_grad=True)
    clip_to_box(x, low, high).sum().backward()
    assert x.grad.tolist() == [[0.0, 1.0]]


def test_default_dtype_switches_and_restores():
    before = torch.get_default_dtype()
    with default_dtype(torch.float32):
        assert torch.zeros(1).dtype == torch.float32
    assert torch.get_default_dtype() == before
    with pytest.raises(RuntimeError, match="inside"), default_dtype(torch.float16):
        raise RuntimeError("inside")
    assert torch.get_default_dtype() == before  # restored after an error too
    with pytest.raises(ValueError, match="dtype must be a floating torch.dtype"):
        with default_dtype(torch.int64):
            pass


def test_networks_run_under_vmap_and_jacrev():
    """The finiteness check on inputs cannot read values inside torch.func.vmap; it must not
    break the networks there (chapter 5 takes per-sample scores with vmap)."""
    policy = CategoricalPolicy(4, 3)
    obs = torch.randn(6, 4)
    batched = torch.func.vmap(lambda o: policy.dist(o).logits)(obs)
    assert torch.allclose(batched, policy.dist(obs).logits)
    with pytest.raises(ValueError, match="obs contains non-finite"):
        policy.dist(torch.full((6, 4), float("nan")))
