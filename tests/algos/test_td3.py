"""TD3 and DDPG (chapter 10): the DDPG preset, learning a one-step task with a critic that does
not bootstrap, seeded runs and the bookkeeping on Pendulum. Networks and Polyak averaging:
tests/test_nets.py."""

import dataclasses

import numpy as np
import pytest
import torch

from pgbook.algos import td3
from pgbook.nets import DeterministicPolicy, QEnsemble


def test_ddpg_preset_switches_off_the_three_td3_changes():
    c = td3.Config.ddpg(gamma=0.9)
    assert (c.twin, c.target_noise, c.policy_delay, c.gamma) == (False, 0.0, 1, 0.9)
    default = td3.Config()
    assert (default.twin, default.target_noise > 0, default.policy_delay) == (True, True, 2)


@pytest.mark.slow
@pytest.mark.parametrize("make", [td3.Config, td3.Config.ddpg], ids=["td3", "ddpg"])
def test_learns_a_one_step_task_and_its_critic_does_not_bootstrap(make, bandit):
    cfg = make(total_steps=800, learning_starts=100, batch_size=64, hidden=(32, 32),
               gamma=0.99, actor_lr=3e-3, critic_lr=3e-3, seed=0)
    h = td3.train(bandit, cfg, progress=False)
    assert len(h.episode_returns) == 800 and h.logs["updates"][-1] == 701
    assert h.logs["actor_updates"][-1] == (351 if cfg.twin else 701)  # policy delay 2 vs 1
    actor, critic = h.models["policy"], h.models["critic"]
    assert isinstance(actor, DeterministicPolicy) and isinstance(critic, QEnsemble)
    assert critic.n == (2 if cfg.twin else 1)
    s = torch.rand(256, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    best = (0.5 + 0.25 * s[:, :1])
    with torch.no_grad():
        a = actor(s)
        assert (a - best).abs().mean() < 0.1 and (a - best).abs().max() < 0.25
        # terminated after one step: Q(s, a) must equal r(s, a), not r / (1 - gamma)
        for trial in (best, torch.full_like(best, -0.5)):
            q = critic(s, trial)
            assert (q - (-(trial - best) ** 2).squeeze(-1)).abs().mean() < 0.15
    assert np.mean(h.episode_returns[-100:]) > -0.03  # random actions score about -0.6


@pytest.mark.slow
def test_seeded_runs_are_identical_and_pendulum_bookkeeping():
    cfg = td3.Config(total_steps=400, learning_starts=300, hidden=(16, 16), batch_size=32,
                     seed=4)
    h1 = td3.train("Pendulum-v1", cfg, progress=False)
    h2 = td3.train("Pendulum-v1", cfg, progress=False)
    assert h1.episode_returns == h2.episode_returns and len(h1.episode_returns) == 2
    assert h1.episode_steps == [200, 400] and h1.env_steps == 400
    assert all(torch.equal(a, b) for a, b in zip(h1.models["policy"].state_dict().values(),
                                                 h2.models["policy"].state_dict().values(),
                                                 strict=True))
    assert np.isfinite(h1.logs["critic_loss"][-1]) and len(h1.logs["critic_loss"]) == 2
    assert set(h1.logs) == {"critic_loss", "actor_loss", "updates", "actor_updates"}
    assert h1.logs["updates"] == [0.0, 101.0]  # no update before learning_starts = 300
    assert h1.wall_time > 0 and h1.episode_times == sorted(h1.episode_times)
    h3 = td3.train("Pendulum-v1", dataclasses.replace(cfg, seed=5), progress=False)
    assert h3.episode_returns != h1.episode_returns


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_twin_target_is_pessimistic(idle, seed):
    """TD3 change 1, y = r + gamma (1 - d) min_j Q_j'(s', a'): on a task whose true Q is 0
    everywhere (and every target bootstraps), the min drives both critics below 0, about
    -0.02 to -0.03 after these 100 updates; the max would drive them above, about +0.1 (the
    overestimation TD3 corrects)."""
    cfg = td3.Config(gamma=0.9, tau=0.1, critic_lr=1e-2, hidden=(16, 16), batch_size=16,
                     learning_starts=20, total_steps=120, seed=seed)
    h = td3.train(idle, cfg, progress=False)
    s = torch.rand(256, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        q = h.models["critic"](s, h.models["policy"](s))  # (2, 256)
    assert q.shape == (2, 256) and (q.mean(1) < -0.005).all()


def test_callback_sees_each_episode_and_the_live_networks_without_changing_the_run():
    cfg = td3.Config(total_steps=400, learning_starts=300, hidden=(8,), batch_size=16, seed=1)
    seen = []

    def callback(step, history):
        seen.append((step, len(history.episode_returns), history.models["policy"],
                     history.models["critic"](torch.zeros(1, 3), torch.zeros(1, 1)).detach()))

    h = td3.train("Pendulum-v1", cfg, progress=False, callback=callback)
    plain = td3.train("Pendulum-v1", cfg, progress=False)
    assert [s[:2] for s in seen] == [(200, 1), (400, 2)]
    assert all(s[2] is h.models["policy"] for s in seen)  # the network being trained, not a copy
    assert not torch.equal(seen[0][3], seen[1][3])  # the critic was updated in between
    assert h.episode_returns == plain.episode_returns
    for a, b in zip(h.models["critic"].parameters(), plain.models["critic"].parameters(),
                    strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("bad", [1, "f", [print]])
def test_callback_must_be_callable(bad):
    with pytest.raises(ValueError, match="callback"):
        td3.train("Pendulum-v1", td3.Config(total_steps=10), progress=False, callback=bad)
