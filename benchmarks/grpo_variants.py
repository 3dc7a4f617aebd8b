"""GRPO's descendants on one shared config (chapter 13's training cell), over several seeds.

``python -m benchmarks.grpo_variants [--seeds 5] [--mode target|length] [--iterations N]``

* ``--mode target`` (default): each variant trains on ``reverse_long`` (answers may run to
  three times the longest correct one) with early stopping at held-out accuracy ``--target``.
  Per seed: reached?, answers sampled to the target (env steps, discarded answers included),
  wall and CPU seconds (CPU time, one thread, is what a shared machine does not inflate), and
  the mean length of the correct and of the incorrect answers sampled in the
  last ``LAST`` iterations; then, on 2,000 fresh held-out prompts, the trained policy's wrong
  answers' mean excess length (|o| - |correct o|) and the share of wrong-and-too-long answers.
* ``--mode length``: no early stop, ``--iterations`` iterations; the length of the incorrect
  answers at the start (first ``LAST`` iterations) and at the end (last ``LAST``), to test
  Dr. GRPO's claim (Liu et al. 2025) that GRPO's 1/|o_i| lets wrong answers grow.

Besides the six variants, one deliberately broken one goes through the same check:
``broken_sign`` is GRPO with the advantages' sign flipped (it must miss the target), and
``broken_cispo_no_sg`` is CISPO without the stop-gradient on its clipped weight. The ablation
``grpo_constant`` is GRPO with only its 1/|o_i| replaced by Dr. GRPO's constant (std-scaled
advantages and beta = 0.04 kept), to attribute a length difference to the normaliser.
"""

from __future__ import annotations

import argparse
import ast
import statistics
import sys
import time

import torch

from pgbook.algos import grpo
from pgbook.returns import group_advantages
from pgbook.tasks import ReverseTask

#: the config every variant shares (the chapter's training cell)
SHARED = dict(lr=3e-3, iterations=60, eval_every=5, eval_prompts=300, target=0.8)
VARIANTS = ["grpo", "dr_grpo", "dapo", "gspo", "cispo", "rloo"]
BROKEN = ["broken_sign", "broken_cispo_no_sg"]
#: one ingredient changed: GRPO with only 1/|o_i| replaced by Dr. GRPO's constant 1/L
ABLATIONS = {"grpo_constant": dict(objective="grpo", aggregation="constant")}
LAST = 5  #: iterations the "final" lengths average over


def _cispo_without_stop_gradient(logp, logp_old, adv, mask, *, eps_high, eps=None,
                                 aggregation="token_mean", normalizer=None):
    """The plausible wrong CISPO: the clipped weight clip(r) left differentiable."""
    mask = mask.bool()
    zero = torch.zeros((), dtype=logp.dtype)
    logp, logp_old = torch.where(mask, logp, zero), torch.where(mask, logp_old, zero)
    r = torch.exp(logp - logp_old)
    w = r.clamp(max=1 + eps_high) if eps is None else r.clamp(1 - eps, 1 + eps_high)
    return (w * adv[:, None] * logp * mask).sum() / mask.sum()  # no .detach() on w


def _wrong_answer_excess(history, n: int = 2000) -> tuple[float | None, float]:
    """The trained policy's wrong answers on ``n`` fresh held-out prompts: their mean length
    minus the correct answer's length (the length bias without the mix of prompt lengths), and
    the share of all answers that are wrong and longer than the correct one."""
    config, policy = history.config, history.models["policy"]
    budget = config.answer_budget or grpo.TASKS["reverse_long"](config.max_len)
    task = ReverseTask(config.min_len, config.max_len, answer_budget=budget)
    prompts = task.sample_prompts(n, torch.Generator().manual_seed(777), held_out=True)
    with torch.random.fork_rng():
        torch.manual_seed(777)
        answers = policy.sample(prompts, task.answer_len)
    wrong = task.reward(prompts, answers) == 0
    extra = (task.answer_mask(answers).sum(1) - task.answer_mask(task.solutions(prompts)).sum(1))
    longer = (wrong & (extra > 0)).double().mean().item()
    return (extra[wrong].double().mean().item() if wrong.any() else None), longer


def _config(name: str, seed: int, overrides: dict) -> grpo.Config:
    if name == "broken_sign":
        return grpo.Config(objective="grpo", advantage="broken_sign", seed=seed, **overrides)
    if name == "broken_cispo_no_sg":
        return grpo.Config(objective="cispo", seed=seed, **overrides)
    if name in ABLATIONS:
        return grpo.Config(**ABLATIONS[name], seed=seed, **overrides)
    return grpo.Config(objective=name, seed=seed, **overrides)


def run_one(name: str, seed: int, overrides: dict, target: float | None) -> dict:
    """Train one variant once, stopping at held-out accuracy ``target`` (None: never); the
    numbers of one table row."""
    original_cispo = grpo.cispo
    grpo.ADVANTAGES["broken_sign"] = lambda r: -group_advantages(r)
    if name == "broken_cispo_no_sg":
        grpo.cispo = _cispo_without_stop_gradient
    try:
        start, cpu_start = time.perf_counter(), time.process_time()
        config = _config(name, seed, {**overrides, "target": target})
        h = grpo.train("reverse_long", config, progress=False)
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    finally:
        grpo.cispo = original_cispo
        del grpo.ADVANTAGES["broken_sign"]
    logs = h.logs
    excess, overrun = _wrong_answer_excess(h)
    hit = None if target is None else next(
        (i for i, a in enumerate(logs["accuracy"]) if a >= target), None)

    def mean_of(name: str, part: slice) -> float | None:
        values = [x for x in logs[name][part] if x is not None]
        return statistics.fmean(values) if values else None

    return dict(name=name, seed=seed, reached=hit is not None,
                steps=None if hit is None else int(logs["eval_answers"][hit]),
                seconds=None if hit is None else logs["eval_seconds"][hit], wall=wall, cpu=cpu,
                iterations=len(logs["train_reward"]), final_accuracy=logs["accuracy"][-1],
                final_kl=logs["kl"][-1],
                correct_end=mean_of("length_correct", slice(-LAST, None)),
                incorrect_start=mean_of("length_incorrect", slice(0, LAST)),
                incorrect_end=mean_of("length_incorrect", slice(-LAST, None)),
                answers=int(logs["answers"][-1]), excess=excess, overrun=overrun)


def _f(x, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def table(rows: list[dict]) -> str:
    lines = ["| variant | seed | reached | answers to target | s to target | wall s | cpu s "
             "| iters | final acc | len correct (end) | len incorrect (start -> end) "
             "| wrong: excess length | wrong and longer |",
             "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['seed']} | {'yes' if r['reached'] else 'no'} "
                     f"| {_f(r['steps'], ',d')} | {_f(r['seconds'], '.1f')} | {r['wall']:.1f} "
                     f"| {r['cpu']:.1f} "
                     f"| {r['iterations']} | {r['final_accuracy']:.3f} "
                     f"| {_f(r['correct_end'], '.2f')} "
                     f"| {_f(r['incorrect_start'], '.2f')} -> {_f(r['incorrect_end'], '.2f')} "
                     f"| {_f(r['excess'], '+.2f')} | {r['overrun']:.3f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.grpo_variants",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--mode", choices=("target", "length"), default="target")
    parser.add_argument("--variants", nargs="+", default=VARIANTS + BROKEN,
                        choices=sorted({*VARIANTS, *BROKEN, *ABLATIONS, *grpo.PRESETS}))
    parser.add_argument("--target", type=float, default=SHARED["target"])
    parser.add_argument("--iterations", type=int, default=SHARED["iterations"])
    parser.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                        help="override shared Config fields, e.g. lr=3e-3 d_model=32")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # pay torch._dynamo's import first
    overrides = {**SHARED, "iterations": args.iterations}
    for item in args.set:
        field, value = item.split("=", 1)
        overrides[field] = ast.literal_eval(value)  # a number, None, True or False
    target = args.target if args.mode == "target" else None
    overrides["target"] = target
    print(f"# shared: {overrides}", file=sys.stderr)
    rows = []
    for name in args.variants:
        for seed in range(args.seeds):
            row = run_one(name, seed, overrides, target)
            print(f"  {name} seed {seed}: reached {row['reached']} at {row['steps']} answers, "
                  f"wall {row['wall']:.1f} s, cpu {row['cpu']:.1f} s, "
                  f"iters {row['iterations']}, acc "
                  f"{row['final_accuracy']:.3f}, len incorrect {_f(row['incorrect_start'], '.2f')}"
                  f" -> {_f(row['incorrect_end'], '.2f')}, excess {_f(row['excess'], '+.2f')}, "
                  f"longer {row['overrun']:.3f}", file=sys.stderr, flush=True)
            rows.append(row)
    print(f"torch threads: 1; shared config: {overrides}; task reverse_long\n")
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
