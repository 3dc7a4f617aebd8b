"""benchmarks.against_sb3: the side-by-side runner's table, its interleaving, and one real
short run of each library (the full runs belong to `python -m benchmarks --against sb3`)."""

import pytest

from benchmarks import against_sb3
from benchmarks.against_sb3 import PAIRS, Run, run_one, side_by_side, side_by_side_table

pytest.importorskip("stable_baselines3")


def _run(library, seed, steps, seconds, name="ppo"):
    return Run(library, name, seed, 475.0, 20, steps, seconds, steps or 100_000)


def test_table_reports_medians_ratios_and_misses_as_such():
    runs = [_run("sb3", 0, 30_000, 10.0), _run("pgbook", 0, 24_000, 4.0),
            _run("sb3", 1, 20_000, 8.0), _run("pgbook", 1, 16_000, 6.0),
            _run("sb3", 2, 40_000, 12.0), _run("pgbook", 2, 20_000, 5.0)]
    table = side_by_side_table(runs)
    # medians 30,000 / 20,000 steps, 10.0 / 5.0 s: ratios 0.67 and 0.50
    assert "| ppo | CartPole-v1, 475 over 20 | 30,000 | 20,000 | 0.67 | 10.0 | 5.0 | 0.50 |" \
        in table
    missed = side_by_side_table(runs[:4] + [_run("sb3", 2, 40_000, 12.0),
                                            _run("pgbook", 2, None, None)])
    assert "2/3 reached" in missed and "not reached" in missed
    assert "| 0.67 |" not in missed  # no ratio over seeds where a run missed


def test_runs_interleave_seed_by_seed_each_in_its_own_process(monkeypatch):
    calls = []

    def fake(library, name, seed, threads, budget, target):
        calls.append((name, seed, library))
        return _run(library, seed, 1000, 1.0, name)

    monkeypatch.setattr(against_sb3, "_in_fresh_process", fake)
    side_by_side(["ppo", "trpo"], [0, 1])
    assert calls == [("ppo", 0, "sb3"), ("ppo", 0, "pgbook"), ("ppo", 1, "sb3"),
                     ("ppo", 1, "pgbook"), ("trpo", 0, "sb3"), ("trpo", 0, "pgbook"),
                     ("trpo", 1, "sb3"), ("trpo", 1, "pgbook")]


def test_every_pair_names_a_registered_benchmark_with_its_target():
    from benchmarks import REGISTRY

    for name, pair in PAIRS.items():
        bench = REGISTRY[pair.benchmark]
        assert (bench.env_id, bench.target, bench.window) == (pair.env_id, pair.target,
                                                              pair.window), name


@pytest.mark.slow
@pytest.mark.parametrize("library", ["sb3", "pgbook"])
def test_a_short_real_run_stops_at_a_low_target(library):
    run = run_one(library, "trpo", 0, budget=4096, target=25.0)
    assert run.steps is not None and run.steps <= run.total_steps <= 4096 + 2048
    assert run.seconds > 0
    missed = run_one(library, "trpo", 0, budget=1024, target=500.0)  # 500 > CartPole's cap
    assert missed.steps is None and missed.seconds is None


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="library"):
        run_one("cleanrl", "ppo", 0)
    with pytest.raises(ValueError, match="name"):
        run_one("sb3", "reinforce", 0)
    with pytest.raises(ValueError, match="seed"):
        run_one("sb3", "ppo", -1)
