"""The PPO-Clip trainer (chapter 8): validation, determinism, logs, a smoke run that learns."""

import math
from types import SimpleNamespace

import pytest
import torch

from pgbook.algos import ppo

SMOKE = dict(num_envs=4, num_steps=64, epochs=4, minibatch_size=64, total_steps=16 * 256)


@pytest.mark.parametrize("kwargs, match", [
    (dict(minibatch_size=100), "minibatch_size=100 must divide"),
    (dict(clip_eps=1.0), "clip_eps must be <"),
    (dict(clip_eps=0.0), "clip_eps must be >"),
    (dict(gae_lambda=1.5), "gae_lambda must be <= 1"),
    (dict(clip_value=0.0), "clip_value must be >"),
    (dict(anneal_lr=1), "anneal_lr must be a bool"),
    (dict(hidden=[64]), "hidden must be a non-empty tuple"),
    (dict(epochs=0), "epochs must be >= 1"),
])
def test_ppo_config_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ppo.Config(**kwargs).validate()


def test_ppo_train_rejects_other_configs():
    with pytest.raises(ValueError, match="config must be a ppo.Config"):
        ppo.train("CartPole-v1", config=object(), progress=False)


def test_ppo_smoke_learns_and_logs():
    h = ppo.train("CartPole-v1", ppo.Config(seed=0, total_steps=20 * 256), progress=False)
    n = len(h.env_steps)
    assert n == 20 and h.env_steps[-1] == 20 * 256
    for log in (h.approx_kl, h.clip_fraction, h.explained_variance, h.lr, h.clip_eps,
                h.epochs_run, h.entropy, h.value_loss, h.loss, h.grad_norm, h.wall):
        assert len(log) == n
    assert all(k >= 0 for k in h.approx_kl)          # (r-1) - log r >= 0 term by term
    assert all(0 <= c <= 1 for c in h.clip_fraction)
    assert h.lr[0] == 1e-3 and all(a > b for a, b in zip(h.lr, h.lr[1:], strict=False))
    assert h.clip_eps[0] == 0.2 and h.clip_eps[-1] == pytest.approx(0.2 * (1 - 19 / 20))
    assert h.entropy[-1] < h.entropy[0] <= math.log(2) + 1e-6
    early, late = h.episode_returns[:20], h.episode_returns[-10:]
    assert sum(late) / len(late) > 1.8 * sum(early) / len(early), (early, late)


def test_ppo_options_run_and_target_kl_stops_epochs():
    config = ppo.Config(seed=1, clip_value=0.2, ent_coef=0.01, target_kl=1e-4,
                        anneal_lr=False, anneal_clip=False, max_grad_norm=None,
                        normalize_advantage=False, **{**SMOKE, "total_steps": 3 * 256})
    h = ppo.train("CartPole-v1", config, progress=False)
    assert h.lr == [1e-3] * 3 and h.clip_eps == [0.2] * 3
    assert all(e < config.epochs for e in h.epochs_run)  # the KL limit cut the epochs short


def test_ppo_is_deterministic_and_stops_at_target():
    config = ppo.Config(seed=2, **{**SMOKE, "total_steps": 2 * 256})
    h1 = ppo.train("CartPole-v1", config, progress=False)
    h2 = ppo.train("CartPole-v1", config, progress=False)
    assert h1.episode_returns == h2.episode_returns and h1.loss == h2.loss
    assert h1.approx_kl == h2.approx_kl
    h3 = ppo.train("CartPole-v1", ppo.Config(seed=2, target=10.0, target_window=5, **SMOKE),
                   progress=False)
    assert len(h3.env_steps) == 1 and h3.last_mean(5) >= 10  # random play averages ~20


def test_history_log_iteration_rejects_unknown_logs():
    h = ppo.History()
    batch = SimpleNamespace(episode_returns=torch.tensor([10.0, 20.0]))
    h.log_iteration(256, batch, 0.5, approx_kl=0.01, loss=-1.0)
    assert (h.env_steps, h.mean_return, h.approx_kl, h.loss) == ([256], [15.0], [0.01], [-1.0])
    with pytest.raises(ValueError, match="no per-iteration log 'kl'"):
        h.log_iteration(512, batch, 1.0, kl=0.1)
