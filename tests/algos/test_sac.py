"""SAC (chapter 11): the soft-optimal spread at a fixed temperature, the automatic temperature,
seeded float32 runs on Pendulum. The squashed policy: tests/test_nets.py."""

import dataclasses

import numpy as np
import pytest
import torch

from pgbook.algos import sac
from pgbook.nets import QEnsemble, SquashedGaussianPolicy

FAST = dict(batch_size=64, hidden=(32, 32), actor_lr=3e-3, critic_lr=3e-3, seed=0)


@pytest.mark.slow
def test_fixed_temperature_gives_the_soft_optimal_spread(bandit):
    """With Q(s, a) = -(a - a*)^2 the soft-optimal policy is pi(a|s) ~ exp(Q / alpha), a
    Gaussian of std sqrt(alpha / 2) = 0.1 for alpha = 0.02 (tanh barely bends it near a*)."""
    h = sac.train(bandit, sac.Config(alpha=0.02, total_steps=800, learning_starts=100, **FAST),
                  progress=False)
    actor, critic = h.models["policy"], h.models["critic"]
    assert isinstance(actor, SquashedGaussianPolicy) and isinstance(critic, QEnsemble)
    assert h.logs["updates"][-1] == h.logs["actor_updates"][-1] == 701
    assert h.logs["alpha"][-1] == 0.02
    s = torch.rand(256, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    best = 0.5 + 0.25 * s[:, :1]
    with torch.no_grad():
        assert (actor.mode(s) - best).abs().mean() < 0.06
        a, _ = actor.sample(s[:1].expand(4000, 2))
        assert 0.07 < a.std().item() < 0.13  # alpha = 0 collapses it to ~0.01
        # one-step episodes: the soft target is y = r, so Q(s, a) = r(s, a)
        for trial in (best, torch.full_like(best, -0.5)):
            err = critic(s, trial) - (-(trial - best) ** 2).squeeze(-1)
            assert err.abs().mean() < 0.1
    assert np.mean(h.episode_returns[-100:]) > -0.05  # random actions score about -0.6


@pytest.mark.slow
@pytest.mark.parametrize("target_entropy, direction", [(-1.0, "down"), (1.0, "up")])
def test_automatic_temperature_moves_toward_the_target_entropy(target_entropy, direction,
                                                                bandit):
    # No density on [-1, 1] has entropy above log 2 = 0.69, so with the target 1.0 the entropy
    # is always short of it and alpha must rise. The near-uniform initial policy has entropy
    # far above -1, so with the target -1 alpha must fall.
    steps = 400 if direction == "down" else 250
    cfg = sac.Config(target_entropy=target_entropy, alpha_lr=1e-2, total_steps=steps,
                     learning_starts=100, **FAST)
    h = sac.train(bandit, cfg, progress=False)
    alphas = h.logs["alpha"]
    assert alphas[0] == 1.0 and len(alphas) == steps
    if direction == "down":
        assert alphas[-1] < 0.3
    else:
        assert alphas[-1] > 1.5


@pytest.mark.slow
def test_seeded_runs_are_identical_on_pendulum():
    cfg = sac.Config(total_steps=400, learning_starts=300, hidden=(16, 16), batch_size=32,
                     seed=2)
    h1 = sac.train("Pendulum-v1", cfg, progress=False)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)  # as a chapter may have it: no effect on training
    try:
        h2 = sac.train("Pendulum-v1", cfg, progress=False)
        assert torch.get_default_dtype() == torch.float64
    finally:
        torch.set_default_dtype(previous)
    assert next(h2.models["policy"].parameters()).dtype == torch.float32
    assert h1.episode_returns == h2.episode_returns and h1.episode_steps == [200, 400]
    assert h1.logs["alpha"] == h2.logs["alpha"] and h1.logs["alpha"][-1] < 1.0
    assert set(h1.logs) == {"critic_loss", "actor_loss", "alpha", "entropy", "updates",
                            "actor_updates"}
    assert h1.env_steps == 400 and set(h1.models) == {"policy", "critic"}
    h3 = sac.train("Pendulum-v1", dataclasses.replace(cfg, seed=3), progress=False)
    assert h3.episode_returns != h1.episode_returns


def test_actor_loss_is_the_mean_of_alpha_log_pi_minus_q():
    g = torch.Generator().manual_seed(0)
    logp, q = torch.randn(50, generator=g), torch.randn(50, generator=g)
    assert torch.allclose(sac.actor_loss(logp, q, 0.3), (0.3 * logp - q).mean())
    assert torch.allclose(sac.actor_loss(logp, q, 0.0), -q.mean())  # alpha = 0: no entropy
    lp = logp.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(sac.actor_loss(lp, q, 0.3), lp)
    assert torch.allclose(grad, torch.full_like(lp, 0.3 / 50))
    with pytest.raises(ValueError, match="alpha"):
        sac.actor_loss(logp, q, -0.1)
    with pytest.raises(ValueError, match="shape mismatch"):
        sac.actor_loss(logp, q[:3], 0.1)
    with pytest.raises(ValueError, match="q"):
        sac.actor_loss(logp, q[:, None], 0.1)


def test_temperature_loss_gradient_is_alpha_times_entropy_minus_target():
    """dJ/dbeta = alpha (H_hat - H_target), H_hat = -mean(logp): positive (alpha falls) while
    the entropy is above the target, negative below, zero on it (eq-11-alpha)."""
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        log_alpha = torch.randn((), generator=g, dtype=torch.float64).requires_grad_(True)
        logp = 2 * torch.randn(32, generator=g, dtype=torch.float64)
        target = torch.randn((), generator=g).item()
        (grad,) = torch.autograd.grad(sac.temperature_loss(log_alpha, logp, target), log_alpha)
        expected = log_alpha.exp() * (-logp.mean() - target)
        assert torch.allclose(grad, expected, atol=1e-14)
        # the target's sign flipped is a different gradient (unless the target is 0)
        (wrong,) = torch.autograd.grad(sac.temperature_loss(log_alpha, logp, -target), log_alpha)
        assert not torch.allclose(wrong, expected, atol=1e-6)
    on_target = torch.tensor(0.0, requires_grad=True)
    (grad,) = torch.autograd.grad(sac.temperature_loss(on_target, torch.ones(8), -1.0), on_target)
    assert grad == 0
    logp = torch.zeros(4, requires_grad=True)  # logp is treated as a constant
    sac.temperature_loss(on_target, logp, -1.0).backward()
    assert logp.grad is None
    with pytest.raises(ValueError, match="log_alpha"):
        sac.temperature_loss(torch.zeros(1), torch.ones(8), -1.0)
    with pytest.raises(ValueError, match="at least one"):
        sac.temperature_loss(torch.tensor(0.0), torch.ones(0), -1.0)
    with pytest.raises(ValueError, match="target_entropy"):
        sac.temperature_loss(torch.tensor(0.0), torch.ones(8), float("nan"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1])
def test_the_sources_actor_without_entropy_is_caught(seed, monkeypatch):
    """Chapter 11's training check separates SAC's actor from the source's Q_w - V actor,
    whose expected gradient is that of -E[Q] (no alpha log pi term). Measured after 2,000
    env steps of Pendulum with the chapter's settings (300 warm-up steps), seeds 0-3: alpha
    0.319-0.337 and entropy 0.05-0.30 for the right actor; alpha 12.3-33.8 and entropy -41.3
    to -2.8 for the source's (its entropy collapses and alpha grows without bound)."""
    cfg = sac.Config(total_steps=2000, seed=seed)
    right = sac.train("Pendulum-v1", cfg, progress=False)
    monkeypatch.setattr(sac, "actor_loss", lambda logp, q, alpha: -q.mean())
    wrong = sac.train("Pendulum-v1", cfg, progress=False)
    assert right.logs["alpha"][-1] < 0.6 and right.logs["entropy"][-1] > -1.0
    assert wrong.logs["alpha"][-1] > 2.0 and wrong.logs["entropy"][-1] < -2.0


def test_the_critic_target_is_soft(idle):
    """y = r + gamma (1 - d) [min_j Q_j'(s', a') - alpha log pi(a'|s')]. With zero reward and
    no terminal states only the -alpha log pi term tells alpha = 50 from alpha = 0 in the critic's
    first losses: about 5e3 against 0.5 (a target without the term gives 0.5 for both)."""
    losses = {}
    for alpha in (0.0, 50.0):
        cfg = sac.Config(alpha=alpha, gamma=0.9, total_steps=20, learning_starts=10,
                         batch_size=8, hidden=(8, 8), seed=0)
        losses[alpha] = sac.train(idle, cfg, progress=False).logs["critic_loss"][1:]
    assert all(0.0 < loss < 5.0 for loss in losses[0.0])
    assert all(loss > 100 * max(losses[0.0]) for loss in losses[50.0])


def test_soft_target_hand_values_and_bad_input():
    """y = r + gamma (1 - d) (next_q - alpha next_logp), by hand; no bootstrap after d = 1."""
    D = torch.float64
    r, d = torch.tensor([1.0, -2.0], dtype=D), torch.tensor([0.0, 1.0], dtype=D)
    q, logp = torch.tensor([3.0, 5.0], dtype=D), torch.tensor([-1.5, 0.5], dtype=D)
    y = sac.soft_target(r, d, q, logp, 0.2, 0.9)
    assert y.tolist() == pytest.approx([1.0 + 0.9 * (3.0 + 0.2 * 1.5), -2.0])
    ok = dict(rewards=r, terminated=d, next_q=q, next_logp=logp, alpha=0.2, gamma=0.9)
    bad = {"rewards": r[:1], "terminated": torch.tensor([0.0, 0.5], dtype=D),
           "next_q": torch.tensor([float("nan"), 1.0], dtype=D), "next_logp": logp[None],
           "alpha": -0.1, "gamma": 1.5}
    for name, value in bad.items():
        with pytest.raises(ValueError, match=name if name != "rewards" else "shape"):
            sac.soft_target(**(ok | {name: value}))
