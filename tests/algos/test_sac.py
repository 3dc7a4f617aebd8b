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
