"""The PPO-Clip trainer (chapter 8): determinism, logs, the options, a smoke run that learns."""

import math

import pytest

from pgbook.algos import ppo

SMOKE = dict(num_envs=4, num_steps=64, epochs=4, minibatch_size=64, total_steps=16 * 256)
LOGS = {"env_steps", "loss", "grad_norm", "entropy", "value_loss", "approx_kl", "clip_fraction",
        "explained_variance", "lr", "clip_eps", "epochs_run"}


@pytest.mark.slow
def test_ppo_smoke_learns_and_logs():
    h = ppo.train("CartPole-v1", ppo.Config(seed=0, total_steps=20 * 256), progress=False)
    steps = h.logs["env_steps"]
    n = len(steps)
    assert n == 20 and steps[-1] == 20 * 256 == h.env_steps
    assert set(h.logs) == LOGS and set(h.models) == {"policy", "value"}
    for name, log in h.logs.items():
        assert len(log) == n, name
    logs = h.logs
    assert all(k >= 0 for k in logs["approx_kl"])          # (r-1) - log r >= 0 term by term
    assert all(0 <= c <= 1 for c in logs["clip_fraction"])
    lr = logs["lr"]
    assert lr[0] == 1e-3 and all(a > b for a, b in zip(lr, lr[1:], strict=False))
    assert logs["clip_eps"][0] == 0.2
    assert logs["clip_eps"][-1] == pytest.approx(0.2 * (1 - 19 / 20))
    assert logs["entropy"][-1] < logs["entropy"][0] <= math.log(2) + 1e-6
    early, late = h.episode_returns[:20], h.episode_returns[-10:]
    assert sum(late) / len(late) > 1.8 * sum(early) / len(early), (early, late)


def test_ppo_options_run_and_target_kl_stops_epochs():
    config = ppo.Config(seed=1, clip_value=0.2, ent_coef=0.01, target_kl=1e-4,
                        anneal_lr=False, anneal_clip=False, max_grad_norm=None,
                        normalize_advantage=False, **{**SMOKE, "total_steps": 3 * 256})
    h = ppo.train("CartPole-v1", config, progress=False)
    assert h.logs["lr"] == [1e-3] * 3 and h.logs["clip_eps"] == [0.2] * 3
    assert all(e < config.epochs for e in h.logs["epochs_run"])  # the KL limit cut them short


def test_ppo_is_deterministic_and_stops_at_target():
    config = ppo.Config(seed=2, **{**SMOKE, "total_steps": 2 * 256})
    h1 = ppo.train("CartPole-v1", config, progress=False)
    h2 = ppo.train("CartPole-v1", config, progress=False)
    assert h1.episode_returns == h2.episode_returns and h1.logs["loss"] == h2.logs["loss"]
    assert h1.logs["approx_kl"] == h2.logs["approx_kl"] and h1.logs == h2.logs
    h3 = ppo.train("CartPole-v1", ppo.Config(seed=2, target=10.0, target_window=5, **SMOKE),
                   progress=False)
    assert len(h3.logs["env_steps"]) == 1 and h3.last_mean(5) >= 10  # random play averages ~20
