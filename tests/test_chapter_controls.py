"""Chapters 4 and 5's training targets against the mistakes they are chosen to reject.

Each test runs a chapter's training check, with the chapter's settings, on the wrong variant
the chapter discusses, and requires the check to fail (issue 12: a training target that the
broken algorithm also reaches is a defect). Slow: several CartPole runs each.
"""

from __future__ import annotations

import functools

import pytest
import torch

from pgbook.algos import reinforce

pytestmark = pytest.mark.slow

# chapter 4, "A target for (0.7) itself": seeds 0-2, last-20 mean >= 60 within 20,000 steps
CH4 = dict(gamma=1.0, lr=0.01, episodes_per_batch=8, num_envs=8, hidden=(32, 32),
           target_window=20, weighting="return", total_steps=20_000, target=60.0)
# chapter 5, "Target: it learns faster": seeds 0-4, last-20 mean >= 300 within 30,000 steps
CH5 = dict(weighting="reward_to_go", gamma=0.99, lr=1e-2, value_lr=1e-2, value_epochs=30,
           episodes_per_batch=8, num_envs=8, total_steps=30_000)


def _chapter_4_target_met(**changes) -> bool:
    runs = [reinforce.train("CartPole-v1", reinforce.Config(**{**CH4, "seed": s, **changes}),
                            progress=False) for s in range(3)]
    return all((hit := h.reached(60.0, window=20)) is not None and hit.env_steps <= 20_000
               for h in runs)


def _chapter_5_target_met(**changes) -> bool:
    runs = [reinforce.train("CartPole-v1", reinforce.Config(**{**CH5, "seed": s, **changes}),
                            progress=False) for s in range(5)]
    return all((hit := h.reached(300.0, window=20)) is not None and hit.env_steps <= 30_000
               for h in runs)


def test_chapter_4_target_rejects_the_flipped_sign(monkeypatch):
    """A step along -g_N (descent on J, the sign forgotten) fails chapter 4's target for the
    plain estimator (0.7); the right sign meets it."""
    assert _chapter_4_target_met()
    monkeypatch.setattr(torch.optim, "Adam", functools.partial(torch.optim.Adam, maximize=True))
    assert not _chapter_4_target_met()


def test_chapter_5_target_rejects_an_inert_baseline():
    """A value net that never learns (step size 1e-12: it stays near its initial output 0)
    fails chapter 5's target; the learned baseline meets it."""
    assert _chapter_5_target_met(baseline="value")
    assert not _chapter_5_target_met(baseline="value", value_lr=1e-12)
    assert not _chapter_5_target_met(baseline="none")
