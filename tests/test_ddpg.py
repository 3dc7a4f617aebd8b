import dataclasses

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from pgbook.algos import ddpg
from pgbook.nets import DeterministicPolicy, QEnsemble, polyak_update

BANDIT = "pgbook-test/ContinuousBandit-v0"


class ContinuousBandit(gym.Env):
    """One-step task: observe s ~ U[-1, 1]^2, act a in [-1, 1], reward -(a - a*(s))^2 with
    a*(s) = 0.5 + 0.25 s_0, then the episode terminates (no bootstrap: Q(s, a) = r(s, a))."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._s = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._s.copy(), {}

    def step(self, action):
        best = 0.5 + 0.25 * self._s[0]
        reward = -float((action[0] - best) ** 2)
        return self._s.copy(), reward, True, False, {}


def register_bandit() -> str:
    if BANDIT not in gym.registry:
        gym.register(BANDIT, entry_point=ContinuousBandit)
    return BANDIT


# ---- networks and target updates ----

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


# ---- the trainer ----

@pytest.mark.parametrize("field, value, match", [
    ("twin", 1, "twin"), ("target_noise", -0.1, "target_noise"), ("policy_delay", 0,
                                                                  "policy_delay"),
    ("gamma", 1.5, "gamma"), ("tau", 0.0, "tau"), ("actor_lr", 0.0, "actor_lr"),
    ("hidden", 64, "hidden"), ("batch_size", 0, "batch_size"), ("learning_starts", 0,
                                                                "learning_starts"),
    ("target_window", 0, "target_window"), ("seed", -1, "seed"),
])
def test_config_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        ddpg.train("Pendulum-v1", ddpg.Config(**{field: value}), progress=False)
    with pytest.raises(ValueError, match="ddpg.Config"):
        ddpg.train("Pendulum-v1", object(), progress=False)


def test_ddpg_preset_switches_off_the_three_td3_changes():
    c = ddpg.Config.ddpg(gamma=0.9)
    assert (c.twin, c.target_noise, c.policy_delay, c.gamma) == (False, 0.0, 1, 0.9)
    td3 = ddpg.Config()
    assert (td3.twin, td3.target_noise > 0, td3.policy_delay) == (True, True, 2)


@pytest.mark.parametrize("make", [ddpg.Config, ddpg.Config.ddpg])
def test_learns_a_one_step_task_and_its_critic_does_not_bootstrap(make):
    env_id = register_bandit()
    cfg = make(total_steps=800, learning_starts=100, batch_size=64, hidden=(32, 32),
               gamma=0.99, actor_lr=3e-3, critic_lr=3e-3, seed=0)
    h = ddpg.train(env_id, cfg, progress=False)
    assert len(h.episode_returns) == 800 and h.updates == 701
    assert h.actor_updates == (351 if cfg.twin else 701)  # policy delay 2 vs 1
    s = torch.rand(256, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    best = (0.5 + 0.25 * s[:, :1])
    with torch.no_grad():
        a = h.actor(s)
        assert (a - best).abs().mean() < 0.1 and (a - best).abs().max() < 0.25
        # terminated after one step: Q(s, a) must equal r(s, a), not r / (1 - gamma)
        for trial in (best, torch.full_like(best, -0.5)):
            q = h.critic(s, trial)
            assert (q - (-(trial - best) ** 2).squeeze(-1)).abs().mean() < 0.15
    assert np.mean(h.episode_returns[-100:]) > -0.03  # random actions score about -0.6


def test_seeded_runs_are_identical_and_pendulum_bookkeeping():
    cfg = ddpg.Config(total_steps=400, learning_starts=300, hidden=(16, 16), batch_size=32,
                      seed=4)
    h1 = ddpg.train("Pendulum-v1", cfg, progress=False)
    h2 = ddpg.train("Pendulum-v1", cfg, progress=False)
    assert h1.episode_returns == h2.episode_returns and len(h1.episode_returns) == 2
    assert h1.episode_steps == [200, 400] and h1.total_env_steps == 400
    assert all(torch.equal(a, b) for a, b in zip(h1.actor.state_dict().values(),
                                                 h2.actor.state_dict().values(),
                                                 strict=True))
    assert np.isfinite(h1.logs["critic_loss"][-1]) and len(h1.logs["critic_loss"]) == 2
    assert h1.cpu_time > 0 and h1.wall_time > 0
    h3 = ddpg.train("Pendulum-v1", dataclasses.replace(cfg, seed=5), progress=False)
    assert h3.episode_returns != h1.episode_returns


def test_history_reached_and_trailing_means():
    h = ddpg.History(episode_returns=[-3.0, -1.0, -2.0, 0.0], episode_steps=[1, 2, 3, 4],
                     episode_times=[0.1, 0.2, 0.3, 0.4], episode_cpu=[0.1, 0.1, 0.2, 0.2])
    assert np.allclose(h.trailing_means(2), [-2.0, -1.5, -1.0])
    assert h.reached(-1.5, window=2) == (3, 0.3, 0.2)
    assert h.reached(0.5, window=2) is None
    assert h.last_mean(2) == -1.0 and np.isnan(h.last_mean(5))
