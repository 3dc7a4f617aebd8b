"""The TRPO trainer (chapter 7): every step inside the trust region, determinism, a smoke run
that improves. Conjugate gradient and Fisher-vector products: tests/test_trust_region.py."""

import pytest

from pgbook.algos import trpo

SMOKE = dict(num_envs=4, num_steps=128, total_steps=6 * 512, value_epochs=5,
             value_minibatch_size=256)
LOGS = {"env_steps", "loss", "grad_norm", "entropy", "value_loss", "explained_variance", "kl",
        "improvement", "step_fraction", "natural_grad_norm"}


@pytest.mark.slow
def test_trpo_smoke_improves_and_respects_the_trust_region():
    h = trpo.train("CartPole-v1", trpo.Config(seed=0, **SMOKE), progress=False)
    assert len(h.logs["env_steps"]) == 6 and h.logs["env_steps"][-1] == 6 * 512 == h.env_steps
    assert set(h.logs) == LOGS and set(h.models) == {"policy", "value"}
    assert all(len(curve) == 6 for curve in h.logs.values())
    assert all(0 <= kl <= h.config.max_kl for kl in h.logs["kl"])
    assert all(f > 0 for f in h.logs["step_fraction"])  # the line search accepted every time
    assert all(g > 0 for g in h.logs["improvement"])
    early, late = h.episode_returns[:10], h.episode_returns[-10:]
    assert sum(late) / 10 > 1.5 * sum(early) / 10, (early, late)


def test_trpo_is_deterministic():
    config = trpo.Config(seed=3, **{**SMOKE, "total_steps": 1024})
    h1 = trpo.train("CartPole-v1", config, progress=False)
    h2 = trpo.train("CartPole-v1", config, progress=False)
    assert h1.episode_returns == h2.episode_returns and h1.logs["kl"] == h2.logs["kl"]
    assert h1.logs["loss"] == h2.logs["loss"] and h1.logs == h2.logs
