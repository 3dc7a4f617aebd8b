import dataclasses

import pytest
import torch

from pgbook.algos import grpo

FAST = dict(min_len=2, max_len=4, warmup_steps=40, prompts_per_batch=8, group_size=6,
            eval_prompts=300, eval_every=5, target=None)


def test_smoke_run_improves_held_out_accuracy():
    h = grpo.train("reverse", grpo.Config(iterations=25, **FAST), progress=False)
    assert 0.0 < h.start_accuracy < 0.6  # the warm-up leaves something to learn
    assert h.final_accuracy >= h.start_accuracy + 0.25, h.accuracy
    n = len(h.train_reward)
    assert n == 25 and len(h.kl) == len(h.mean_length) == len(h.clip_fraction) == n
    assert h.answers[-1] == 25 * 8 * 6 == len(h.episode_returns) == h.episode_steps[-1]
    assert h.eval_iterations == [0, 5, 10, 15, 20, 25]
    assert h.eval_answers == [0] + [h.answers[i - 1] for i in (5, 10, 15, 20, 25)]
    assert len(h.eval_wall) == 6 and h.eval_wall == sorted(h.eval_wall)
    assert h.kl[0] == pytest.approx(0.0, abs=1e-12)  # the first batch comes from pi_ref itself
    assert h.kl[-1] > 0 and all(k >= 0 for k in h.kl_k3)
    assert all(2 <= m <= 5 for m in h.mean_length)  # 1..4 digits and EOS, mostly


def test_deterministic_and_leaves_global_rng_alone():
    config = grpo.Config(iterations=3, **FAST)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = grpo.train("reverse", config, progress=False)
    after = torch.rand(1)
    b = grpo.train("reverse", config, progress=False)
    assert torch.equal(before, after)
    assert a.accuracy == b.accuracy and a.train_reward == b.train_reward and a.kl == b.kl
    for p, q in zip(a.policy.parameters(), b.policy.parameters(), strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("objective", ["grpo_sequence", "dr_grpo"])
def test_variants_run(objective):
    h = grpo.train("reverse", grpo.Config(objective=objective, iterations=3, **FAST),
                   progress=False)
    assert len(h.train_reward) == 3 and all(0 <= c <= 1 for c in h.clip_fraction)


def test_early_stop_at_target():
    config = grpo.Config(iterations=50, **{**FAST, "target": 0.0})
    h = grpo.train("reverse", config, progress=False)
    assert h.eval_iterations == [0, 5] and len(h.train_reward) == 5


@pytest.mark.parametrize("field, value, match", [
    ("objective", "ppo", "objective must be one of"),
    ("scale_by_std", 1, "scale_by_std must be a bool or None"),
    ("group_size", 1, "group_size must be >= 2"),
    ("clip_eps", 1.0, "clip_eps must be < 1"),
    ("beta", -0.1, "beta must be >= 0"),
    ("lr", 0.0, "lr must be > 0"),
    ("updates_per_batch", 0, "updates_per_batch must be >= 1"),
    ("max_len", 1, "max_len must be >= 2"),
    ("target", 1.5, "target must be <= 1"),
    ("warmup_steps", -1, "warmup_steps must be >= 0"),
])
def test_bad_config(field, value, match):
    config = dataclasses.replace(grpo.Config(), **{field: value})
    with pytest.raises(ValueError, match=match):
        grpo.train("reverse", config, progress=False)


def test_bad_task_and_config_type():
    with pytest.raises(ValueError, match="task must be 'reverse'"):
        grpo.train("CartPole-v1", grpo.Config(), progress=False)
    with pytest.raises(ValueError, match="grpo.Config"):
        grpo.train("reverse", {"iterations": 3}, progress=False)
