import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn
from torch.distributions import Categorical, Independent, Normal

from pgbook.nets import MLP, CategoricalPolicy, GaussianPolicy, ValueNet, policy_for


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
