"""Trainers at full budget against the performance anchors (DESIGN.md, section 8).

``python -m benchmarks reinforce --seeds 3`` trains each registered setting once per seed and
prints a markdown table: per seed, the env steps and wall seconds at which the mean return of
the last ``window`` finished episodes first reached the target (or the best such mean within the
budget), and the median over seeds.

To add an algorithm, register a :class:`Benchmark` in :data:`REGISTRY`: its ``train(env_id,
config, progress=...)`` must return a :class:`pgbook.history.History` (every ``pgbook.algos``
trainer does), and ``config`` must be a dataclass with
a ``seed`` field; the runner replaces the seed. Give the config its early stop at the target, if
the algorithm has one, so a run stops once it gets there.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pgbook.algos import a2c, grpo, ppo, reinforce, sac, td3, trpo
from pgbook.history import History

__all__ = ["REGISTRY", "Benchmark", "Result", "evaluate", "markdown_table", "register", "run"]


@dataclass(frozen=True)
class Benchmark:
    """One trainer with its full-budget config, environment and target."""

    train: Callable[..., Any]  #: train(env_id, config, progress=bool) -> History
    config: Any  #: a dataclass instance with a ``seed`` field
    env_id: str
    target: float
    window: int  #: the target is on the mean return of the last ``window`` episodes
    note: str = ""


@dataclass
class Result:
    """The outcome of one seed."""

    name: str
    env_id: str
    target: float
    window: int
    seed: int
    steps: int | None  #: env steps when the trailing mean first reached the target (None: never)
    seconds: float | None  #: wall seconds at that point
    best: float  #: best trailing mean within the run
    best_steps: int  #: env steps at which the best trailing mean was reached
    total_steps: int  #: env steps the run used
    wall: float  #: wall seconds of the whole run
    history: History | None = dataclasses.field(default=None, repr=False)  #: the run itself


REGISTRY: dict[str, Benchmark] = {}


def register(name: str, benchmark: Benchmark) -> None:
    """Add ``benchmark`` under ``name`` (a new name: re-registering is a mistake)."""
    if not isinstance(benchmark, Benchmark):
        raise ValueError(f"benchmark must be a Benchmark, got {type(benchmark).__name__}")
    if name in REGISTRY:
        raise ValueError(f"benchmark {name!r} is already registered")
    REGISTRY[name] = benchmark


register("reinforce", Benchmark(
    reinforce.train,
    reinforce.Config(total_steps=1_000_000, target=475.0, target_window=20),
    "CartPole-v1", 475.0, 20,
    "the plain estimator (0.8): Psi = R(tau), no baseline, gamma = 1"))
register("reinforce_value", Benchmark(
    reinforce.train,
    reinforce.Config(weighting="reward_to_go", baseline="value", total_steps=500_000,
                     target=475.0, target_window=20),
    "CartPole-v1", 475.0, 20,
    "reward-to-go with a learned value baseline, gamma = 1"))
register("td3", Benchmark(
    td3.train,
    td3.Config(total_steps=50_000, target=-200.0, target_window=10),
    "Pendulum-v1", -200.0, 10,
    "TD3 (pgbook.algos.td3 defaults): 64x64 ReLU nets, batch 128, tau 0.01, 1,000 warm-up "
    "steps, one update per env step"))
register("sac", Benchmark(
    sac.train,
    sac.Config(total_steps=50_000, target=-200.0, target_window=10),
    "Pendulum-v1", -200.0, 10,
    "SAC (pgbook.algos.sac defaults): 64x64 ReLU nets, batch 128, tau 0.01, automatic alpha, "
    "300 warm-up steps, one update per env step"))


def _grpo_held_out(task: str, config: grpo.Config, progress: bool = False) -> History:
    """GRPO's run with its held-out accuracy as the "return": one point per evaluation, at the
    number of answers sampled so far (the env steps of a language-model task)."""
    logs = grpo.train(task, config, progress=progress).logs
    held_out = History(task, config, env_steps=int(logs["answers"][-1]))
    held_out.episode_returns, held_out.episode_steps = logs["accuracy"], logs["eval_answers"]
    held_out.episode_times = logs["eval_seconds"]
    return held_out


for _objective in ("grpo", "grpo_sequence", "dr_grpo"):
    register(_objective, Benchmark(
        _grpo_held_out,
        grpo.Config(objective=_objective, iterations=400, target=0.9),
        "reverse", 0.9, 1,
        f"{_objective} on digit reversal (pgbook.tasks): held-out accuracy (500 prompts, one "
        "sampled answer each, every 5 iterations) >= 0.9; steps = answers sampled after a "
        "50-step supervised warm-up"))


register("ppo", Benchmark(
    ppo.train,
    ppo.Config(total_steps=100_000, target=475.0, target_window=20),
    "CartPole-v1", 475.0, 20,
    "PPO-Clip (pgbook.algos.ppo defaults: rl-zoo's SB3 CartPole settings with lr 2e-3): 8 envs "
    "x 32 steps, 20 epochs of one 256-minibatch, lr 2e-3 and eps 0.2 annealed over 100k steps"))
register("trpo", Benchmark(
    trpo.train,
    trpo.Config(total_steps=200_000, target=475.0, target_window=20),
    "CartPole-v1", 475.0, 20,
    "TRPO (pgbook.algos.trpo defaults): 8 envs x 128 steps, delta 0.005, 15 CG iterations, "
    "damping 1e-3, critic Adam 3e-3 x 20 epochs"))

register("a2c", Benchmark(
    a2c.train,
    a2c.Config(total_steps=500_000, target=475.0, target_window=20),
    "CartPole-v1", 475.0, 20,
    "A2C (pgbook.algos.a2c defaults): 16 envs x 8 steps, GAE lambda 0.95, standardised "
    "advantages, Adam 2e-3, gradient norm 0.5, separate 64x64 tanh nets"))
register("a2c_sb3", Benchmark(
    a2c.train,
    a2c.Config(num_envs=8, num_steps=5, gae_lambda=1.0, lr=7e-4, optimizer="rmsprop",
               normalize_advantage=False, total_steps=500_000, target=475.0, target_window=20),
    "CartPole-v1", 475.0, 20,
    "A2C with Stable-Baselines3's / rl-zoo's CartPole settings: 8 envs x 5 steps, n-step "
    "advantages (lambda 1), RMSprop 7e-4"))

# The chapters' own training settings, run over several seeds for the seed bands the chapters
# draw from pgbook/data/curves (``--save-curves``; see pgbook.stored_runs).
register("ppo_ch8", Benchmark(
    ppo.train,
    ppo.Config(target=475.0, total_steps=100_000),
    "CartPole-v1", 475.0, 20,
    "chapter 8's PPO-Clip run: ppo.Config defaults, stopped at the target"))
register("td3_ch10", Benchmark(
    td3.train,
    td3.Config(total_steps=7_600, target_window=10),
    "Pendulum-v1", -200.0, 10,
    "chapter 10's TD3 run: td3.Config defaults, 7,600 env steps, no early stop"))
register("sac_ch11", Benchmark(
    sac.train,
    sac.Config(total_steps=10_000, target=-200.0, target_window=10),
    "Pendulum-v1", -200.0, 10,
    "chapter 11's SAC run: sac.Config defaults, 10,000 env steps, stopped at the target"))


def evaluate(bench: Benchmark, name: str, seed: int, history: History, wall: float) -> Result:
    """Steps and seconds to the benchmark's target, read off the history's episodes."""
    hit = history.reached(bench.target, bench.window)
    best = history.best_mean(bench.window)
    return Result(name, bench.env_id, bench.target, bench.window, seed,
                  None if hit is None else int(hit.env_steps),
                  None if hit is None else float(hit.seconds),
                  float("nan") if best is None else best[0], 0 if best is None else int(best[1]),
                  int(history.env_steps), wall, history)


def run(name: str, seeds: list[int], *, target: float | None = None,
        total_steps: int | None = None, progress: bool = False,
        on_result: Callable[[Result], None] | None = None) -> list[Result]:
    """Train benchmark ``name`` once per seed; return one :class:`Result` per seed.

    ``target`` and ``total_steps`` override the registered target (and the config's early stop
    ``target`` field, if it has one) and the config's ``total_steps`` budget.
    """
    if name not in REGISTRY:
        raise ValueError(f"unknown benchmark {name!r}; registered: {', '.join(REGISTRY)}")
    bench = REGISTRY[name]
    overrides: dict[str, Any] = {}
    fields = {f.name for f in dataclasses.fields(bench.config)}
    if target is not None:
        bench = dataclasses.replace(bench, target=float(target))
        if "target" in fields:
            overrides["target"] = float(target)
    if total_steps is not None:
        if "total_steps" not in fields:
            raise ValueError(f"the config of {name!r} has no total_steps field")
        overrides["total_steps"] = total_steps
    results = []
    for seed in seeds:
        config = dataclasses.replace(bench.config, seed=seed, **overrides)
        start = time.perf_counter()
        history = bench.train(bench.env_id, config, progress=progress)
        result = evaluate(bench, name, seed, history, time.perf_counter() - start)
        if on_result is not None:
            on_result(result)
        results.append(result)
    return results


def _fmt(x, spec: str) -> str:
    return "not reached" if x is None else format(x, spec)


def markdown_table(results: list[Result]) -> str:
    """One row per seed and a median row per benchmark, as a markdown table."""
    lines = ["| benchmark | env | target | seed | env steps to target | seconds to target "
             "| best mean (at step) | steps run | wall s |",
             "|---|---|---|---|---:|---:|---:|---:|---:|"]
    names = list(dict.fromkeys(r.name for r in results))
    for name in names:
        rows = [r for r in results if r.name == name]
        head = f"| {name} | {rows[0].env_id} | {rows[0].target:g} (last {rows[0].window})"
        for r in rows:
            lines.append(f"{head} | {r.seed} | {_fmt(r.steps, ',d')} | {_fmt(r.seconds, '.1f')} "
                         f"| {r.best:.1f} ({r.best_steps:,d}) | {r.total_steps:,d} "
                         f"| {r.wall:.1f} |")
        reached = [r for r in rows if r.steps is not None]
        if len(reached) == len(rows):
            med_steps = f"{statistics.median(r.steps for r in rows):,.0f}"
            med_secs = f"{statistics.median(r.seconds for r in rows):.1f}"
        else:
            med_steps = med_secs = f"{len(reached)}/{len(rows)} reached"
        lines.append(f"{head} | **median** | **{med_steps}** | **{med_secs}** "
                     f"| {statistics.median(r.best for r in rows):.1f} "
                     f"| {statistics.median(r.total_steps for r in rows):,.0f} "
                     f"| {statistics.median(r.wall for r in rows):.1f} |")
    return "\n".join(lines)
