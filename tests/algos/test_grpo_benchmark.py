"""benchmarks/grpo_variants.py, the measurement behind chapter 13's training cell: one short
run per kind of variant, and the broken variants patched in only for their own run."""

import pytest

from benchmarks import grpo_variants as bench
from pgbook.algos import grpo

SHORT = dict(iterations=2, eval_every=1, eval_prompts=50, warmup_steps=10, prompts_per_batch=4,
             group_size=4, min_len=2, max_len=3)


@pytest.mark.parametrize("name", ["broken_sign", "broken_cispo_no_sg", "grpo_constant"])
def test_run_one_reports_a_row_and_restores_the_trainer(name):
    cispo, advantages = grpo.cispo, dict(grpo.ADVANTAGES)
    row = bench.run_one(name, 0, SHORT, target=0.0)
    assert grpo.cispo is cispo and grpo.ADVANTAGES == advantages
    assert row["reached"] and row["steps"] == 0  # accuracy >= 0 at the first evaluation
    assert row["iterations"] == 1  # stopped at the first evaluation after training
    assert row["answers"] >= 16 and 0.0 <= row["overrun"] <= 1.0
    assert "broken_sign" in bench.table([row]) or name != "broken_sign"


@pytest.mark.slow
def test_the_broken_variants_change_the_update():
    # the same seed and config: a broken variant must not reproduce the correct one's run
    # (the KL to the reference after 3 iterations fingerprints the policy's path)
    rows = {n: bench.run_one(n, 0, {**SHORT, "iterations": 3, "warmup_steps": 40}, target=None)
            for n in ["grpo", "broken_sign", "cispo", "broken_cispo_no_sg"]}
    assert rows["grpo"]["final_kl"] > 0 and rows["cispo"]["final_kl"] > 0
    for good, bad in [("grpo", "broken_sign"), ("cispo", "broken_cispo_no_sg")]:
        assert rows[good]["final_kl"] != rows[bad]["final_kl"]
    # and the same variant twice does reproduce it: the comparison above can fail
    again = bench.run_one("grpo", 0, {**SHORT, "iterations": 3, "warmup_steps": 40}, target=None)
    assert again["final_kl"] == rows["grpo"]["final_kl"]
