"""pgbook's trainers side by side with Stable-Baselines3: ``python -m benchmarks --against sb3``.

Each registered pair (:data:`PAIRS`) names a pgbook benchmark of :data:`benchmarks.REGISTRY`
and the SB3 (or sb3-contrib) algorithm with rl-zoo's settings for the same environment
(``hyperparams/<algo>.yml`` of rl-baselines3-zoo: the CartPole-v1 entries of PPO, A2C and TRPO,
the Pendulum-v1 entries of TD3 and SAC). For every seed the two libraries run one after the
other (interleaved, so that a slow spell of the machine hits both), each in a fresh Python
process with ``--threads`` torch threads, and each run stops at the target: the mean return of
the last ``window`` finished episodes (CartPole-v1 475 over 20, Pendulum-v1 -200 over 10), or
at the budget (rl-zoo's ``n_timesteps`` for SB3, the benchmark's for pgbook).

Reported per seed and as medians: env steps to the target, wall seconds to the target (from
just before the environments and the model are built), and the ratios pgbook / SB3. A run that
misses the target is reported as "not reached", never as a number. In a median over seeds it
counts as slower than every run that reached the target (its steps to the target lie beyond
the budget), and the median says how many reached, e.g. "58,623 (9/10 reached)"; when half of
the runs or more missed, the median is undefined and only the count is given, with no ratio.

Every :class:`Run` also carries its episode record (the env step at which each finished episode
ended and its return), so a run's learning curve can be drawn without training again.
:func:`save_results` writes the runs, their table, the pairs' settings, the machine and versions
and the command that reproduces them to one JSON file (``python -m benchmarks --against sb3
NAME ... --save`` writes ``benchmarks/results/against_sb3.json``, which the book's Benchmarks
page reads); :func:`load_results` reads it back.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PAIRS", "RESULTS", "Pair", "Run", "load_results", "median_to_target", "run_one",
           "save_results", "side_by_side", "side_by_side_table"]

#: Where ``--save`` writes the side-by-side results (the book's Benchmarks page reads it).
RESULTS = Path(__file__).resolve().parent / "results" / "against_sb3.json"


def _linear(start: float):
    """rl-zoo's ``lin_<x>``: x times the fraction of training left (1 -> 0)."""
    def schedule(progress_remaining: float) -> float:
        return progress_remaining * start
    return schedule


@dataclass(frozen=True)
class Pair:
    """A pgbook benchmark and its SB3 counterpart with rl-zoo's settings."""

    benchmark: str  #: the name in benchmarks.REGISTRY
    sb3_algo: str  #: "PPO", "A2C", "TD3", "SAC" (stable_baselines3) or "TRPO" (sb3_contrib)
    env_id: str
    n_envs: int
    budget: int  #: rl-zoo's n_timesteps
    kwargs: dict = field(default_factory=dict)  #: the algorithm's keyword arguments
    target: float = 475.0
    window: int = 20


PAIRS: dict[str, Pair] = {
    "ppo": Pair("ppo", "PPO", "CartPole-v1", 8, 100_000, dict(
        n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
        learning_rate=("lin", 1e-3), clip_range=("lin", 0.2))),
    "a2c": Pair("a2c", "A2C", "CartPole-v1", 8, 500_000, dict(ent_coef=0.0)),
    "trpo": Pair("trpo", "TRPO", "CartPole-v1", 2, 100_000, dict(
        n_steps=512, batch_size=512, cg_damping=1e-3, gae_lambda=0.98, gamma=0.99,
        learning_rate=1e-3, n_critic_updates=20)),
    "td3": Pair("td3", "TD3", "Pendulum-v1", 1, 20_000, dict(
        gamma=0.98, buffer_size=200_000, learning_starts=10_000, action_noise=("normal", 0.1),
        gradient_steps=1, train_freq=1, learning_rate=1e-3,
        policy_kwargs=dict(net_arch=[400, 300])), target=-200.0, window=10),
    "sac": Pair("sac", "SAC", "Pendulum-v1", 1, 20_000, dict(learning_rate=1e-3),
                target=-200.0, window=10),
}


@dataclass(frozen=True)
class Run:
    """One library's run of one seed."""

    library: str  #: "sb3" or "pgbook"
    name: str
    seed: int
    target: float
    window: int
    steps: int | None  #: env steps when the trailing mean first reached the target (None: never)
    seconds: float | None  #: wall seconds at that point
    total_steps: int  #: env steps the run used
    #: env steps at which each finished episode ended (for SB3: the step its info appeared)
    episode_steps: list[int] = field(default_factory=list)
    episode_returns: list[float] = field(default_factory=list)  #: each one's return, 3 decimals


def _sb3_kwargs(pair: Pair, env) -> dict:
    import numpy as np
    from stable_baselines3.common.noise import NormalActionNoise

    kwargs = {}
    for key, value in pair.kwargs.items():
        if isinstance(value, tuple) and value[0] == "lin":
            value = _linear(value[1])
        elif key == "action_noise":
            n = env.action_space.shape[-1]
            value = NormalActionNoise(np.zeros(n), value[1] * np.ones(n))
        kwargs[key] = value
    return kwargs


def _run_sb3(pair: Pair, seed: int, budget: int, target: float) -> Run:
    import sb3_contrib
    import stable_baselines3
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    class StopAtTarget(BaseCallback):
        def __init__(self):
            super().__init__()
            self.returns: list[float] = []
            self.steps: list[int] = []
            self.hit: tuple[int, float] | None = None

        def _on_step(self) -> bool:
            for info in self.locals["infos"]:
                if "episode" in info:
                    self.returns.append(float(info["episode"]["r"]))
                    self.steps.append(int(self.num_timesteps))
            last = self.returns[-pair.window:]
            if len(last) == pair.window and sum(last) / pair.window >= target:
                self.hit = (self.num_timesteps, time.perf_counter() - start)
                return False
            return True

    start = time.perf_counter()
    env = make_vec_env(pair.env_id, n_envs=pair.n_envs, seed=seed)
    module = sb3_contrib if pair.sb3_algo == "TRPO" else stable_baselines3
    algo = getattr(module, pair.sb3_algo)
    model = algo("MlpPolicy", env, seed=seed, verbose=0, **_sb3_kwargs(pair, env))
    callback = StopAtTarget()
    model.learn(total_timesteps=budget, callback=callback)
    steps, seconds = callback.hit if callback.hit else (None, None)
    return Run("sb3", pair.benchmark, seed, target, pair.window, steps, seconds,
               int(model.num_timesteps), callback.steps, [round(r, 3) for r in callback.returns])


def _run_pgbook(pair: Pair, seed: int, budget: int | None, target: float) -> Run:
    from . import run

    start = time.perf_counter()
    (result,) = run(pair.benchmark, [seed], target=target, total_steps=budget)
    history = result.history
    # A History's clock starts once the trainer has built its envs and nets (5-10 ms later);
    # count from before they are built, as the SB3 side does.
    seconds = None if result.seconds is None else result.seconds + (history.start - start)
    return Run("pgbook", pair.benchmark, seed, target, pair.window, result.steps, seconds,
               result.total_steps, [int(s) for s in history.episode_steps],
               [round(float(r), 3) for r in history.episode_returns])


def run_one(library: str, name: str, seed: int, *, threads: int = 1,
            budget: int | None = None, target: float | None = None) -> Run:
    """One run in this process: ``library`` "sb3" or "pgbook", pair ``name``, ``seed``;
    ``budget`` overrides the env-step budget (rl-zoo's n_timesteps for SB3, the benchmark's
    total_steps for pgbook), ``target`` the pair's target."""
    import torch

    if library not in ("sb3", "pgbook"):
        raise ValueError(f"library must be 'sb3' or 'pgbook', got {library!r}")
    if name not in PAIRS:
        raise ValueError(f"name must be one of {tuple(PAIRS)}, got {name!r}")
    if not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    pair = PAIRS[name]
    torch.set_num_threads(threads)
    torch.optim.Adam([torch.zeros(1, requires_grad=True)])  # pay torch._dynamo's import first
    target = pair.target if target is None else float(target)
    if library == "sb3":
        return _run_sb3(pair, seed, pair.budget if budget is None else budget, target)
    return _run_pgbook(pair, seed, budget, target)


def _in_fresh_process(library: str, name: str, seed: int, threads: int,
                      budget: int | None, target: float | None) -> Run:
    args = [sys.executable, "-m", "benchmarks.against_sb3", library, name, str(seed),
            str(threads), json.dumps(budget), json.dumps(target)]
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{library} {name} seed {seed} failed:\n{done.stderr[-2000:]}")
    return Run(**json.loads(done.stdout.strip().splitlines()[-1]))


def side_by_side(names: list[str], seeds: list[int], *, threads: int = 1,
                 budget: int | None = None, target: float | None = None,
                 on_run=None, jobs: int = 1) -> list[Run]:
    """Every pair in ``names`` on every seed, SB3 then pgbook, each run in a fresh process.

    ``jobs`` runs at a time (each its own process with ``threads`` torch threads): the runs are
    started in the interleaved order (pair by pair, seed by seed, SB3 before pgbook), so with
    ``jobs=2`` on two cores a seed's two runs mostly share the machine with each other.
    Returned in that order whatever the order of finishing."""
    from concurrent.futures import ThreadPoolExecutor

    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be an int >= 1, got {jobs!r}")
    order = [(library, name, seed) for name in names for seed in seeds
             for library in ("sb3", "pgbook")]

    def one(task: tuple[str, str, int]) -> Run:
        run = _in_fresh_process(*task, threads, budget, target)
        if on_run is not None:
            on_run(run)
        return run

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        return list(pool.map(one, order))


def _fmt(x, spec: str) -> str:
    return "not reached" if x is None else format(x, spec)


def median_to_target(values: list) -> float | None:
    """The median over seeds of steps (or seconds) to the target, a run that missed it counting
    as slower than every run that reached it (its steps to the target lie beyond the budget);
    None when that leaves the median undefined (half of the runs or more missed)."""
    m = statistics.median([math.inf if v is None else v for v in values])
    return None if math.isinf(m) else m


def _median(values: list, spec: str) -> str:
    m, reached = median_to_target(values), sum(v is not None for v in values)
    if m is None:
        return f"{reached}/{len(values)} reached"
    missed = "" if reached == len(values) else f" ({reached}/{len(values)} reached)"
    return format(m, spec) + missed


def _ratio(ours: list, theirs: list) -> str:
    mine, other = median_to_target(ours), median_to_target(theirs)
    return "-" if mine is None or other is None else f"{mine / other:.2f}"


def side_by_side_table(runs: list[Run]) -> str:
    """Per seed and median rows, per pair: both libraries' env steps and seconds to the
    target, and the ratios pgbook / SB3 of the medians."""
    lines = ["| algorithm | seed | SB3 env steps | pgbook env steps | SB3 s | pgbook s |",
             "|---|---|---:|---:|---:|---:|"]
    summary = ["| algorithm | task | SB3 env steps | pgbook env steps | steps ratio | SB3 s "
               "| pgbook s | wall-time ratio |", "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name in dict.fromkeys(r.name for r in runs):
        pair, first = PAIRS[name], next(r for r in runs if r.name == name)
        by = {lib: [r for r in runs if r.name == name and r.library == lib]
              for lib in ("sb3", "pgbook")}
        for theirs, ours in zip(by["sb3"], by["pgbook"], strict=True):
            lines.append(f"| {name} | {theirs.seed} | {_fmt(theirs.steps, ',d')} "
                         f"| {_fmt(ours.steps, ',d')} | {_fmt(theirs.seconds, '.1f')} "
                         f"| {_fmt(ours.seconds, '.1f')} |")
        steps = {lib: [r.steps for r in rs] for lib, rs in by.items()}
        secs = {lib: [r.seconds for r in rs] for lib, rs in by.items()}
        summary.append(
            f"| {name} | {pair.env_id}, {first.target:g} over {first.window} "
            f"| {_median(steps['sb3'], ',.0f')} | {_median(steps['pgbook'], ',.0f')} "
            f"| {_ratio(steps['pgbook'], steps['sb3'])} | {_median(secs['sb3'], '.1f')} "
            f"| {_median(secs['pgbook'], '.1f')} | {_ratio(secs['pgbook'], secs['sb3'])} |")
    return "\n".join(summary) + "\n\n" + "\n".join(lines)


_KEYS = ("provenance", "command", "pairs", "runs", "table")


def _pair_record(name: str) -> dict:
    from . import REGISTRY

    pair = PAIRS[name]
    return {"env_id": pair.env_id, "target": pair.target, "window": pair.window,
            "sb3_algo": pair.sb3_algo, "n_envs": pair.n_envs, "budget": pair.budget,
            "pgbook_budget": getattr(REGISTRY[pair.benchmark].config, "total_steps", None),
            "kwargs": repr(pair.kwargs)}


def save_results(path, runs: list[Run], provenance: dict, command: str) -> Path:
    """Write ``runs`` to the JSON file ``path`` (its folder is created) with the keys
    "provenance" (``provenance`` as given: date, machine, versions, commit), "command" (the
    command line that reproduces the runs), "pairs" (per pair name in ``runs``: env_id, target,
    window, sb3_algo, n_envs, budget (rl-zoo's n_timesteps), pgbook_budget and rl-zoo's keyword
    arguments as Python text), "runs" (every Run as a dict, its episodes included, one line
    each) and "table" (:func:`side_by_side_table` of ``runs``). Returns the path."""
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise ValueError(f"path must be a file path, got {path!r}")
    if not isinstance(runs, list | tuple) or not runs or not all(isinstance(r, Run)
                                                                 for r in runs):
        raise ValueError("runs must be a non-empty list of Run")
    if not isinstance(provenance, dict):
        raise ValueError(f"provenance must be a dict, got {type(provenance).__name__}")
    if not isinstance(command, str) or not command.strip():
        raise ValueError(f"command must be a non-empty string, got {command!r}")
    head = {"provenance": provenance, "command": command,
            "pairs": {name: _pair_record(name) for name in dict.fromkeys(r.name for r in runs)}}
    lines = ",\n  ".join(json.dumps(dataclasses.asdict(r)) for r in runs)
    text = (json.dumps(head, indent=1)[:-2] + f',\n "runs": [\n  {lines}\n ],\n "table": '
            + json.dumps(side_by_side_table(list(runs))) + "\n}\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def load_results(path) -> dict:
    """The contents of a file :func:`save_results` wrote, as a dict with its five keys, and
    "runs" as :class:`Run` objects. A missing or unreadable file, or one without those keys or
    with runs that are not Runs, raises ValueError naming ``path``."""
    if not isinstance(path, str | os.PathLike) or not str(path):
        raise ValueError(f"path must be a file path, got {path!r}")
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"path {str(path)!r} is not a readable JSON file: {error}") from None
    missing = [k for k in _KEYS if not isinstance(data, dict) or k not in data]
    if missing:
        raise ValueError(f"path {str(path)!r} has no {', '.join(map(repr, missing))}; "
                         f"a results file has the keys {', '.join(_KEYS)}")
    names = {f.name for f in dataclasses.fields(Run)}
    if not isinstance(data["runs"], list) or not all(
            isinstance(r, dict) and set(r) == names for r in data["runs"]):
        raise ValueError(f"path {str(path)!r}: every run must be a dict with the keys "
                         f"{', '.join(sorted(names))}")
    return {**data, "runs": [Run(**r) for r in data["runs"]]}


if __name__ == "__main__":  # one run, as _in_fresh_process calls it; prints the Run as JSON
    lib, nm, sd, th, bg, tg = sys.argv[1:7]
    out = run_one(lib, nm, int(sd), threads=int(th), budget=json.loads(bg), target=json.loads(tg))
    print(json.dumps(dataclasses.asdict(out)))
