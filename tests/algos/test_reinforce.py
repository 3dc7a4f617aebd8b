"""REINFORCE (chapters 0-5): the first loss is the chapter's estimator, every setting runs,
runs are seeded, the early stop, and learning on CartPole."""

import numpy as np
import pytest
import torch

from pgbook.algos import reinforce
from pgbook.algos.run import training_run
from pgbook.nets import policy_for
from pgbook.rollout import Collector

LOGS = {"env_steps", "loss", "grad_norm", "entropy", "value_loss"}


@pytest.mark.slow
def test_reinforce_with_a_value_baseline_learns_cartpole_quickly():
    cfg = reinforce.Config(weighting="reward_to_go", baseline="value", total_steps=12_000, seed=0)
    h = reinforce.train("CartPole-v1", cfg, progress=False)
    first, last = np.mean(h.episode_returns[:20]), h.last_mean(20)
    assert first < 40 and last > first + 60, (first, last)
    steps = h.logs["env_steps"]
    assert steps[-1] >= 12_000 and steps == sorted(steps) and h.env_steps == steps[-1]
    assert set(h.models) == {"policy", "value"}


@pytest.mark.slow
def test_plain_reinforce_improves():
    h = reinforce.train("CartPole-v1", reinforce.Config(total_steps=12_000, seed=0),
                        progress=False)
    first, last = np.mean(h.episode_returns[:20]), h.last_mean(20)
    assert last > first + 15, (first, last)
    assert set(h.models) == {"policy"}


@pytest.mark.slow
def test_same_seed_same_history_and_the_callers_rng_is_untouched():
    cfg = reinforce.Config(total_steps=2_000, seed=4, baseline="value")
    torch.manual_seed(123)
    a = reinforce.train("CartPole-v1", cfg, progress=False)
    after = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(after, torch.rand(3))  # train() forked the global RNG
    b = reinforce.train("CartPole-v1", cfg, progress=False)
    assert a.episode_returns == b.episode_returns and a.episode_steps == b.episode_steps
    assert a.logs["loss"] == b.logs["loss"] and a.logs["grad_norm"] == b.logs["grad_norm"]
    assert a.logs["value_loss"] == b.logs["value_loss"] and a.logs == b.logs
    c = reinforce.train("CartPole-v1", reinforce.Config(total_steps=2_000, seed=5),
                        progress=False)
    assert c.episode_returns != a.episode_returns


@pytest.mark.parametrize("weighting", ["return", "reward_to_go"])
def test_first_loss_is_the_estimator_of_the_chapter(weighting):
    """Rebuild the first batch as train() does (same seeds, same order) and compute
    -(1/E) sum_i sum_t log pi(a_t|s_t) Psi_t by hand, one episode at a time."""
    cfg = reinforce.Config(weighting=weighting, gamma=0.9, total_steps=1, seed=7,
                           episodes_per_batch=6, num_envs=3)
    h = reinforce.train("CartPole-v1", cfg, progress=False)
    with training_run(cfg.seed, "CartPole-v1", cfg.num_envs) as envs:
        policy = policy_for(envs.single_observation_space, envs.single_action_space, cfg.hidden)
        batch = Collector(envs, seed=cfg.seed).collect_episodes(policy, cfg.episodes_per_batch)
    total = 0.0
    with torch.no_grad():
        for n in range(cfg.num_envs):
            rows = batch.valid[:, n].nonzero().flatten()
            ends = batch.dones[rows, n].nonzero().flatten().tolist()
            for start, end in zip([0] + [e + 1 for e in ends[:-1]], ends, strict=True):
                idx = rows[start:end + 1]
                r = batch.rewards[idx, n].double()
                discounts = cfg.gamma ** torch.arange(len(r), dtype=torch.float64)
                if weighting == "return":
                    psi = (r * discounts).sum().expand(len(r))
                else:
                    psi = torch.stack([(r[t:] * discounts[: len(r) - t]).sum()
                                       for t in range(len(r))])
                logp = policy.dist(batch.obs[idx, n]).log_prob(batch.actions[idx, n])
                total += (logp.double() * psi).sum().item()
    assert h.logs["loss"][0] == pytest.approx(-total / cfg.episodes_per_batch, rel=1e-5)
    assert sum(h.episode_lengths) == batch.valid.sum().item()


@pytest.mark.parametrize("weighting", ["return", "reward_to_go", "discounted_reward_to_go"])
@pytest.mark.parametrize("baseline", ["none", "batch_mean", "value"])
def test_every_setting_runs(weighting, baseline):
    cfg = reinforce.Config(weighting=weighting, baseline=baseline, gamma=0.99, normalize=True,
                           max_grad_norm=0.5, total_steps=300, num_envs=2,
                           episodes_per_batch=2)
    h = reinforce.train("CartPole-v1", cfg, progress=False)
    assert set(h.logs) == LOGS
    assert len({len(curve) for curve in h.logs.values()}) == 1 and len(h.logs["loss"]) >= 1
    assert len(h.episode_returns) == len(h.episode_steps) == len(h.episode_times)
    assert np.isfinite(h.logs["loss"]).all()
    assert np.isnan(h.logs["value_loss"]).all() == (baseline != "value")


def test_stops_at_the_target():
    cfg = reinforce.Config(total_steps=50_000, target=30.0, target_window=10, seed=1)
    h = reinforce.train("CartPole-v1", cfg, progress=False)
    assert h.env_steps < 50_000 and h.logs["env_steps"][-1] == h.env_steps
    assert h.last_mean(10) >= 30.0
    hit = h.reached(30.0, window=10)
    assert hit.env_steps <= h.env_steps and 0 <= hit.seconds <= h.wall_time
    assert hit.episodes <= len(h.episode_returns)
