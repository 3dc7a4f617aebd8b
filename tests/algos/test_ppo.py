"""The PPO-Clip trainer (chapter 8): determinism, logs, the options, a smoke run that learns,
and its two clip statistics on a crafted batch."""

import math

import pytest
import torch

from pgbook.algos import ppo
from pgbook.checks import exact_log
from pgbook.objectives import ppo_clip

SMOKE = dict(num_envs=4, num_steps=64, epochs=4, minibatch_size=64, total_steps=16 * 256)
LOGS = {"env_steps", "loss", "grad_norm", "entropy", "value_loss", "approx_kl",
        "outside_clip_range", "zero_gradient_fraction", "explained_variance", "lr", "clip_eps",
        "epochs_run"}
PER_EPOCH = {"epoch_approx_kl", "epoch_max_ratio_deviation"}


def test_clip_counts_on_a_crafted_batch():
    eps = 0.2
    # (r, A): optimistic side clipped, pessimistic side kept, inside, the two closed
    # boundaries of 1_not-clip, and A = 0 far out
    rows = [(1.5, 1.0), (0.5, 1.0), (0.5, -1.0), (1.5, -1.0), (1.0, 1.0), (1.1, -1.0),
            (1 + eps, 1.0), (1 - eps, -1.0), (2.0, 0.0)]
    r = torch.tensor([x for x, _ in rows], dtype=torch.float64)
    adv = torch.tensor([a for _, a in rows], dtype=torch.float64)
    outside, zero = ppo.clip_counts(r, adv, eps)
    # |r - 1| > eps: rows 0-3 and 8; 1_not-clip = 0: rows 0, 2 and 8
    assert (outside.item(), zero.item()) == (5, 3)
    # the zero count is what autograd says: the samples with A != 0 and no gradient
    logp = exact_log(r).requires_grad_(True)  # exp(logp) == r to the last bit
    (grad,) = torch.autograd.grad(ppo_clip(logp, torch.zeros_like(r), adv, eps), logp)
    assert ((grad == 0) & (adv != 0)).sum().item() == zero.item() - 1  # minus the A = 0 row
    # the usual "clip fraction" |r - 1| > eps also counts the pessimistic side, whose
    # gradient is in full
    assert grad[1] != 0 and grad[3] != 0 and outside > zero
    with pytest.raises(ValueError, match="eps"):
        ppo.clip_counts(r, adv, 1.5)


def test_clip_counts_with_clip_higher():
    """Two bounds: 1 - 0.2 below, 1 + 0.28 above; r = 1.25 is inside (kept) for A > 0."""
    r = torch.tensor([1.25, 1.3, 0.75, 1.25, 0.79], dtype=torch.float64)
    adv = torch.tensor([1.0, 1.0, -1.0, -1.0, 1.0], dtype=torch.float64)
    outside, zero = ppo.clip_counts(r, adv, 0.2, 0.28)
    assert (outside.item(), zero.item()) == (3, 2)  # rows 1, 2, 4 outside; 1 and 2 no gradient
    assert ppo.clip_counts(r, adv, 0.2)[1].item() == 3  # symmetric: 1.25 > 1.2 clipped too
    with pytest.raises(ValueError, match="eps_high"):
        ppo.clip_counts(r, adv, 0.2, 0.0)
    with pytest.raises(ValueError, match="clip_eps_high"):
        ppo.Config(clip_eps_high=-0.1)


def test_clip_eps_high_default_is_the_symmetric_clip_bit_for_bit():
    """clip_eps_high=None and clip_eps_high=clip_eps give the same run; 0.28 another."""
    base = dict(seed=1, **{**SMOKE, "total_steps": 2 * 256, "epochs": 10})
    h_none = ppo.train("CartPole-v1", ppo.Config(**base), progress=False)
    h_same = ppo.train("CartPole-v1", ppo.Config(clip_eps_high=0.2, **base), progress=False)
    h_high = ppo.train("CartPole-v1", ppo.Config(clip_eps_high=0.28, **base), progress=False)
    assert h_none.logs == h_same.logs
    assert h_none.logs["loss"] != h_high.logs["loss"]


@pytest.mark.slow
def test_ppo_smoke_learns_and_logs():
    h = ppo.train("CartPole-v1", ppo.Config(seed=0, total_steps=20 * 256), progress=False)
    steps = h.logs["env_steps"]
    n = len(steps)
    assert n == 20 and steps[-1] == 20 * 256 == h.env_steps
    assert set(h.logs) == LOGS | PER_EPOCH and set(h.models) == {"policy", "value"}
    for name in LOGS:
        assert len(h.logs[name]) == n, name
    logs = h.logs
    for name in PER_EPOCH:
        assert len(logs[name]) == sum(logs["epochs_run"]) == 20 * 20, name
    assert all(k >= 0 for k in logs["approx_kl"] + logs["epoch_approx_kl"])  # (r-1) - log r >= 0
    assert all(0 <= z <= o <= 1 for z, o in zip(logs["zero_gradient_fraction"],
                                                logs["outside_clip_range"], strict=True))
    assert sum(logs["zero_gradient_fraction"]) < sum(logs["outside_clip_range"])
    lr = logs["lr"]
    assert lr[0] == ppo.Config.lr == 2e-3 and all(a > b for a, b in zip(lr, lr[1:], strict=False))
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
    assert h.logs["lr"] == [2e-3] * 3 and h.logs["clip_eps"] == [0.2] * 3
    assert all(e < config.epochs for e in h.logs["epochs_run"])  # the KL limit cut them short
    assert len(h.logs["epoch_approx_kl"]) == sum(h.logs["epochs_run"])


def test_ppo_is_deterministic_and_stops_at_target():
    config = ppo.Config(seed=2, **{**SMOKE, "total_steps": 2 * 256})
    h1 = ppo.train("CartPole-v1", config, progress=False)
    h2 = ppo.train("CartPole-v1", config, progress=False)
    assert h1.episode_returns == h2.episode_returns and h1.logs["loss"] == h2.logs["loss"]
    assert h1.logs["approx_kl"] == h2.logs["approx_kl"] and h1.logs == h2.logs
    h3 = ppo.train("CartPole-v1", ppo.Config(seed=2, target=10.0, target_window=5, **SMOKE),
                   progress=False)
    assert len(h3.logs["env_steps"]) == 1 and h3.last_mean(5) >= 10  # random play averages ~20
