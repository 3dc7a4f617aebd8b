"""The GRPO trainer (chapter 9) on the digit-reversal task: a smoke run that improves held-out
accuracy with its logs, determinism, the variants, the early stop. The objectives:
tests/test_grpo_objectives.py; the task and its model: tests/test_tasks.py."""

import pytest
import torch

from pgbook.algos import grpo
from pgbook.tasks import ReverseTask, TinyLM

FAST = dict(min_len=2, max_len=4, warmup_steps=40, prompts_per_batch=8, group_size=6,
            eval_prompts=300, eval_every=5, target=None)
PER_ITERATION = {"answers", "train_reward", "mean_length", "kl", "kl_k3", "outside_clip_range",
                 "zero_gradient_fraction"}
PER_EVALUATION = {"eval_iterations", "accuracy", "eval_answers", "eval_seconds"}


@pytest.mark.slow
def test_smoke_run_improves_held_out_accuracy():
    config = grpo.Config(iterations=25, **FAST)
    h = grpo.train("reverse", config, progress=False)
    logs = h.logs
    assert set(logs) == PER_ITERATION | PER_EVALUATION | {"warmup_loss"}
    assert len(logs["warmup_loss"]) == config.warmup_steps
    start, final = logs["accuracy"][0], logs["accuracy"][-1]
    assert 0.0 < start < 0.6  # the warm-up leaves something to learn
    assert final >= start + 0.25, logs["accuracy"]
    n = len(logs["train_reward"])
    assert n == 25 and all(len(logs[name]) == n for name in PER_ITERATION)
    assert logs["answers"][-1] == 25 * 8 * 6 == len(h.episode_returns) == h.episode_steps[-1]
    assert h.env_steps == 25 * 8 * 6
    assert logs["eval_iterations"] == [0, 5, 10, 15, 20, 25]
    assert logs["eval_answers"] == [0] + [logs["answers"][i - 1] for i in (5, 10, 15, 20, 25)]
    seconds = logs["eval_seconds"]
    assert len(seconds) == 6 and seconds == sorted(seconds)
    assert logs["kl"][0] == pytest.approx(0.0, abs=1e-12)  # the first batch comes from pi_ref
    assert logs["kl"][-1] > 0 and all(k >= 0 for k in logs["kl_k3"])
    assert all(2 <= m <= 5 for m in logs["mean_length"])  # 1..4 digits and EOS, mostly
    assert all(0 <= z <= o <= 1 for z, o in zip(logs["zero_gradient_fraction"],
                                                logs["outside_clip_range"], strict=True))
    assert set(h.models) == {"policy", "reference"}
    assert not any(p.requires_grad for p in h.models["reference"].parameters())
    # the episodes are the sampled answers, scored by the task the trainer builds
    task = ReverseTask(config.min_len, config.max_len)
    assert set(h.episode_returns) <= {0.0, 1.0}
    assert all(1 <= length <= task.answer_len for length in h.episode_lengths)


def test_deterministic_and_leaves_global_rng_alone():
    config = grpo.Config(iterations=3, **FAST)
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = grpo.train("reverse", config, progress=False)
    after = torch.rand(1)
    b = grpo.train("reverse", config, progress=False)
    assert torch.equal(before, after)
    assert a.logs["accuracy"] == b.logs["accuracy"]
    assert a.logs["train_reward"] == b.logs["train_reward"] and a.logs["kl"] == b.logs["kl"]
    assert isinstance(a.models["policy"], TinyLM)
    for p, q in zip(a.models["policy"].parameters(), b.models["policy"].parameters(),
                    strict=True):
        assert torch.equal(p, q)


@pytest.mark.parametrize("objective", ["grpo_sequence", "dr_grpo"])
def test_variants_run(objective):
    h = grpo.train("reverse", grpo.Config(objective=objective, iterations=3, **FAST),
                   progress=False)
    assert len(h.logs["train_reward"]) == 3
    # 1_not-clip = 0 only outside the clip range: a subset
    assert all(0 <= z <= o <= 1 for z, o in zip(h.logs["zero_gradient_fraction"],
                                                h.logs["outside_clip_range"], strict=True))


def test_early_stop_at_target():
    config = grpo.Config(iterations=50, **{**FAST, "target": 0.0})
    h = grpo.train("reverse", config, progress=False)
    assert h.logs["eval_iterations"] == [0, 5] and len(h.logs["train_reward"]) == 5
