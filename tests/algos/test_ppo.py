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


@pytest.mark.parametrize("minibatch_size", [256, 128])
def test_epoch_logs_are_the_displacement_after_each_epoch(monkeypatch, minibatch_size):
    """``epoch_approx_kl`` and ``epoch_max_ratio_deviation`` are the whole batch's statistics at
    the parameters each epoch left: recomputed here from the optimizer's own steps. With one
    minibatch per epoch the trainer reuses the next epoch's forward pass for them (and the
    final one after the last epoch); with two it runs one of its own."""
    batches, states = [], []  # each rollout's batch; the policy after every optimizer step
    collect = ppo.Collector.collect_steps

    def recording_collect(self, policy, *args, **kwargs):
        batch = collect(self, policy, *args, **kwargs)
        batches.append(batch)
        return batch

    monkeypatch.setattr(ppo.Collector, "collect_steps", recording_collect)
    step = torch.optim.Adam.step
    policies = []

    def recording_step(self, *args, **kwargs):
        out = step(self, *args, **kwargs)
        states.append([p.detach().clone() for p in policies[0].parameters()])
        return out

    monkeypatch.setattr(torch.optim.Adam, "step", recording_step)
    policy_for = ppo.policy_for

    def recording_policy_for(*args, **kwargs):
        policies.append(policy_for(*args, **kwargs))
        return policies[-1]

    monkeypatch.setattr(ppo, "policy_for", recording_policy_for)
    config = ppo.Config(seed=4, num_envs=8, num_steps=32, epochs=3,
                        minibatch_size=minibatch_size, total_steps=2 * 256)
    h = ppo.train("CartPole-v1", config, progress=False)
    steps_per_epoch = 256 // minibatch_size
    policy = policies[0]
    expected_kl, expected_dev = [], []
    for it, batch in enumerate(batches):
        obs, actions = batch.obs.flatten(0, 1), batch.actions.flatten(0, 1)
        for epoch in range(config.epochs):
            last_step = (it * config.epochs + epoch + 1) * steps_per_epoch - 1
            with torch.no_grad():
                for p, saved in zip(policy.parameters(), states[last_step], strict=True):
                    p.copy_(saved)
                log_ratio = policy.dist(obs).log_prob(actions) - batch.logp.flatten()
            expected_kl.append((log_ratio.exp() - 1 - log_ratio).mean().item())
            expected_dev.append((log_ratio.exp() - 1).abs().max().item())
    assert len(states) == len(batches) * config.epochs * steps_per_epoch
    assert h.logs["epoch_max_ratio_deviation"] == expected_dev  # a max: exact in any order
    # a mean of 256 float32 terms in another order: within 256 roundings of the terms' scale
    bound = 256 * torch.finfo(torch.float32).eps
    for got, want in zip(h.logs["epoch_approx_kl"], expected_kl, strict=True):
        assert want > 0 and abs(got - want) <= bound * want
