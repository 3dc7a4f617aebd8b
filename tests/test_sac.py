import dataclasses

import numpy as np
import pytest
import torch
from test_ddpg import register_bandit  # the one-step continuous bandit (tests/test_ddpg.py)

from pgbook.algos import sac
from pgbook.nets import QEnsemble, SquashedGaussianPolicy

FAST = dict(batch_size=64, hidden=(32, 32), actor_lr=3e-3, critic_lr=3e-3, seed=0)


@pytest.mark.parametrize("field, value, match", [
    ("alpha", -0.1, "alpha"), ("init_alpha", 0.0, "init_alpha"), ("target_entropy", "x",
                                                                   "target_entropy"),
    ("gamma", -0.5, "gamma"), ("tau", 2.0, "tau"), ("alpha_lr", 0.0, "alpha_lr"),
    ("hidden", (), "hidden"), ("buffer_size", 0, "buffer_size"), ("total_steps", 0,
                                                                  "total_steps"),
    ("target", float("nan"), "target"),
])
def test_config_validation(field, value, match):
    with pytest.raises(ValueError, match=match):
        sac.train("Pendulum-v1", sac.Config(**{field: value}), progress=False)
    with pytest.raises(ValueError, match="sac.Config"):
        sac.train("Pendulum-v1", dataclasses.replace, progress=False)


def test_fixed_temperature_gives_the_soft_optimal_spread():
    """With Q(s, a) = -(a - a*)^2 the soft-optimal policy is pi(a|s) ~ exp(Q / alpha), a
    Gaussian of std sqrt(alpha / 2) = 0.1 for alpha = 0.02 (tanh barely bends it near a*)."""
    h = sac.train(register_bandit(), sac.Config(alpha=0.02, total_steps=800,
                                                learning_starts=100, **FAST), progress=False)
    assert isinstance(h.actor, SquashedGaussianPolicy) and isinstance(h.critic, QEnsemble)
    assert h.updates == h.actor_updates == 701 and h.logs["alpha"][-1] == 0.02
    s = torch.rand(256, 2, generator=torch.Generator().manual_seed(0)) * 2 - 1
    best = 0.5 + 0.25 * s[:, :1]
    with torch.no_grad():
        assert (h.actor.mode(s) - best).abs().mean() < 0.06
        a, _ = h.actor.sample(s[:1].expand(4000, 2))
        assert 0.07 < a.std().item() < 0.13  # alpha = 0 collapses it to ~0.01
        # one-step episodes: the soft target is y = r, so Q(s, a) = r(s, a)
        for trial in (best, torch.full_like(best, -0.5)):
            err = h.critic(s, trial) - (-(trial - best) ** 2).squeeze(-1)
            assert err.abs().mean() < 0.1
    assert np.mean(h.episode_returns[-100:]) > -0.05  # random actions score about -0.6


@pytest.mark.parametrize("target_entropy, direction", [(-1.0, "down"), (1.0, "up")])
def test_automatic_temperature_moves_toward_the_target_entropy(target_entropy, direction):
    # No density on [-1, 1] has entropy above log 2 = 0.69, so with the target 1.0 the entropy
    # is always short of it and alpha must rise. The near-uniform initial policy has entropy
    # far above -1, so with the target -1 alpha must fall.
    steps = 400 if direction == "down" else 250
    cfg = sac.Config(target_entropy=target_entropy, alpha_lr=1e-2, total_steps=steps,
                     learning_starts=100, **FAST)
    h = sac.train(register_bandit(), cfg, progress=False)
    alphas = h.logs["alpha"]
    assert alphas[0] == 1.0 and len(alphas) == steps
    if direction == "down":
        assert alphas[-1] < 0.3
    else:
        assert alphas[-1] > 1.5


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
    assert next(h2.actor.parameters()).dtype == torch.float32
    assert h1.episode_returns == h2.episode_returns and h1.episode_steps == [200, 400]
    assert h1.logs["alpha"] == h2.logs["alpha"] and h1.logs["alpha"][-1] < 1.0
    assert set(h1.logs) == {"critic_loss", "actor_loss", "alpha", "entropy"}
    h3 = sac.train("Pendulum-v1", dataclasses.replace(cfg, seed=3), progress=False)
    assert h3.episode_returns != h1.episode_returns
