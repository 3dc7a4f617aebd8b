"""A2C (chapter 6): the first update by hand (n-step advantage and TD error), every setting
runs, runs are seeded and float32, the early stop, and learning on CartPole."""

import numpy as np
import pytest
import torch

from pgbook.algos import a2c
from pgbook.algos.run import training_run
from pgbook.nets import ValueNet, policy_for
from pgbook.rollout import Collector

LOGS = {"env_steps", "loss", "value_loss", "entropy", "grad_norm", "explained_variance"}


@pytest.mark.slow
def test_a2c_learns_cartpole_quickly():
    h = a2c.train("CartPole-v1", a2c.Config(total_steps=25_000, seed=0), progress=False)
    first, last = np.mean(h.episode_returns[:20]), h.last_mean(20)
    assert first < 40 and last > first + 80, (first, last)
    steps = h.logs["env_steps"]
    assert steps[-1] >= 25_000 and steps == sorted(steps) and h.env_steps == steps[-1]
    assert h.episode_steps == sorted(h.episode_steps)
    assert len(h.logs["explained_variance"]) == len(steps)


@pytest.mark.slow
def test_same_seed_same_history_and_the_callers_rng_is_untouched():
    cfg = a2c.Config(total_steps=3_000, seed=4)
    torch.manual_seed(123)
    a = a2c.train("CartPole-v1", cfg, progress=False)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))  # train() forked the global RNG
    b = a2c.train("CartPole-v1", cfg, progress=False)
    assert a.episode_returns == b.episode_returns and a.episode_steps == b.episode_steps
    assert a.logs["loss"] == b.logs["loss"] and a.logs["value_loss"] == b.logs["value_loss"]
    assert a.logs["grad_norm"] == b.logs["grad_norm"] and a.logs == b.logs
    c = a2c.train("CartPole-v1", a2c.Config(total_steps=3_000, seed=5), progress=False)
    assert c.episode_returns != a.episode_returns


@pytest.mark.parametrize("gae_lambda", [1.0, 0.0])
def test_first_update_uses_the_n_step_advantage_or_the_td_error(gae_lambda):
    """Rebuild the first batch as train() does (same seeds, same order) and compute the actor
    and critic losses by hand, one sub-environment and one step at a time: lambda = 1 is the
    n-step advantage bootstrapped at the end of the batch, lambda = 0 the TD error."""
    cfg = a2c.Config(num_envs=3, num_steps=40, gamma=0.9, gae_lambda=gae_lambda,
                     normalize_advantage=False, total_steps=1, seed=7)
    h = a2c.train("CartPole-v1", cfg, progress=False)
    with training_run(cfg.seed, "CartPole-v1", cfg.num_envs) as envs:
        policy = policy_for(envs.single_observation_space, envs.single_action_space, cfg.hidden)
        value = ValueNet(envs.single_observation_space.shape[0], cfg.hidden)
        batch = Collector(envs, seed=cfg.seed).collect_steps(policy, cfg.num_steps, value=value)
    assert batch.terminated.any(), "the batch should contain an episode end"
    actor, critic = 0.0, 0.0
    g = cfg.gamma
    with torch.no_grad():
        for n in range(cfg.num_envs):
            v = value(batch.obs[:, n]).double()
            v_next = value(batch.next_obs[:, n]).double()
            for t in range(cfg.num_steps):
                if gae_lambda == 0.0:
                    boot = 0.0 if batch.terminated[t, n] else v_next[t].item()
                    target = batch.rewards[t, n].item() + g * boot
                else:
                    target, k = 0.0, t
                    while True:  # sum rewards to the episode's end or the batch's end
                        target += g ** (k - t) * batch.rewards[k, n].item()
                        if batch.terminated[k, n]:
                            break
                        if batch.truncated[k, n] or k == cfg.num_steps - 1:
                            target += g ** (k - t + 1) * v_next[k].item()
                            break
                        k += 1
                adv = target - v[t].item()
                logp = policy.dist(batch.obs[t, n]).log_prob(batch.actions[t, n]).item()
                actor += -logp * adv
                critic += (v[t].item() - target) ** 2
    count = cfg.num_envs * cfg.num_steps
    assert h.logs["loss"][0] == pytest.approx(actor / count, rel=1e-4, abs=1e-6)
    assert h.logs["value_loss"][0] == pytest.approx(critic / count, rel=1e-4)


@pytest.mark.parametrize("kwargs", [
    dict(optimizer="rmsprop", lr=7e-4, num_envs=8, num_steps=5, gae_lambda=1.0,
         normalize_advantage=False),
    dict(ent_coef=0.01, max_grad_norm=None),
    dict(vf_coef=0.0, gamma=1.0),
])
def test_every_setting_runs(kwargs):
    h = a2c.train("CartPole-v1", a2c.Config(total_steps=600, **kwargs), progress=False)
    assert set(h.logs) == LOGS
    n = len(h.logs["env_steps"])
    assert n >= 1 and all(len(curve) == n for curve in h.logs.values())
    assert len(h.episode_returns) == len(h.episode_steps) == len(h.episode_times)
    assert np.isfinite(h.logs["loss"]).all() and np.isfinite(h.logs["value_loss"]).all()


@pytest.mark.slow
def test_continuous_actions_run():
    h = a2c.train("Pendulum-v1", a2c.Config(total_steps=2_000, num_envs=2), progress=False)
    assert len(h.episode_returns) == 2 * (2_000 // (2 * 200))
    assert np.isfinite(h.logs["loss"]).all()


def test_stops_at_the_target():
    cfg = a2c.Config(total_steps=50_000, target=60.0, target_window=10, seed=1)
    h = a2c.train("CartPole-v1", cfg, progress=False)
    assert h.env_steps < 50_000 and h.logs["env_steps"][-1] == h.env_steps
    assert h.last_mean(10) >= 60.0
    hit = h.reached(60.0, window=10)
    assert hit.env_steps <= h.env_steps and 0 <= hit.seconds <= h.wall_time
    assert hit.episodes <= len(h.episode_returns)


def test_float64_caller_gets_float32_networks_and_keeps_its_dtype():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        h = a2c.train("CartPole-v1", a2c.Config(total_steps=300), progress=False)
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(previous)
    assert set(h.models) == {"policy", "value"}
    assert all(p.dtype == torch.float32 for p in h.models["policy"].parameters())
    assert all(p.dtype == torch.float32 for p in h.models["value"].parameters())


def test_the_entropy_bonus_keeps_the_policy_spread():
    """loss = actor + c_v critic - c_H H: with a large c_H the policy stays near uniform (entropy
    near log 2 = 0.693 on CartPole's two actions) and ends above the run without the bonus; with
    the bonus's sign flipped it collapses (entropy 0.35 after these ten updates)."""
    entropy = {}
    for ent_coef in (0.0, 1.0):
        cfg = a2c.Config(num_envs=2, num_steps=8, ent_coef=ent_coef, lr=1e-2,
                         total_steps=16 * 10, seed=0)
        entropy[ent_coef] = a2c.train("CartPole-v1", cfg, progress=False).logs["entropy"]
    assert min(entropy[1.0]) > 0.67
    assert entropy[1.0][-1] > entropy[0.0][-1] + 0.04
