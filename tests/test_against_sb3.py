"""benchmarks.against_sb3: the side-by-side runner's table, its interleaving, its results file
(``--save``) and one real short run of each library (the full runs belong to
`python -m benchmarks --against sb3`)."""

import json

import pytest

import benchmarks.__main__ as cli
from benchmarks import against_sb3
from benchmarks.against_sb3 import (
    PAIRS,
    RESULTS,
    Run,
    load_results,
    run_one,
    save_results,
    side_by_side,
    side_by_side_table,
)

pytest.importorskip("stable_baselines3")


def _run(library, seed, steps, seconds, name="ppo"):
    return Run(library, name, seed, 475.0, 20, steps, seconds, steps or 100_000,
               [10 * (i + 1) for i in range(3)], [9.5, 20.0, 31.125])


def test_table_reports_medians_ratios_and_misses_as_such():
    runs = [_run("sb3", 0, 30_000, 10.0), _run("pgbook", 0, 24_000, 4.0),
            _run("sb3", 1, 20_000, 8.0), _run("pgbook", 1, 16_000, 6.0),
            _run("sb3", 2, 40_000, 12.0), _run("pgbook", 2, 20_000, 5.0)]
    table = side_by_side_table(runs)
    # medians 30,000 / 20,000 steps, 10.0 / 5.0 s: ratios 0.67 and 0.50
    assert "| ppo | CartPole-v1, 475 over 20 | 30,000 | 20,000 | 0.67 | 10.0 | 5.0 | 0.50 |" \
        in table
    # one miss of three: it counts as slower than the others, the median is the larger of the
    # two that reached (24,000), and the row says so
    missed = side_by_side_table(runs[:4] + [_run("sb3", 2, 40_000, 12.0),
                                            _run("pgbook", 2, None, None)])
    assert "| 24,000 (2/3 reached) | 0.80 | 10.0 | 6.0 (2/3 reached) | 0.60 |" in missed
    assert "not reached" in missed
    # two misses of three: the median is undefined, no number and no ratio
    most = side_by_side_table(runs[:2] + [_run("sb3", 1, 20_000, 8.0),
                                          _run("pgbook", 1, None, None),
                                          _run("sb3", 2, 40_000, 12.0),
                                          _run("pgbook", 2, None, None)])
    assert "| 1/3 reached | - |" in most and "| 0.67 |" not in most


def test_median_to_target_counts_a_miss_as_slowest():
    assert against_sb3.median_to_target([3, None, 1]) == 3
    assert against_sb3.median_to_target([3, None, 1, 2]) == 2.5
    assert against_sb3.median_to_target([None, None, 1, 2]) is None
    assert against_sb3.median_to_target([None, 1]) is None


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


def test_two_jobs_start_in_the_interleaved_order_and_return_in_it(monkeypatch):
    import threading
    import time

    started, running, most = [], [0], [0]
    lock = threading.Lock()

    def fake(library, name, seed, threads, budget, target):
        with lock:
            started.append((name, seed, library))
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05 if library == "sb3" else 0.01)  # SB3's runs finish last
        with lock:
            running[0] -= 1
        return _run(library, seed, 1000, 1.0, name)

    monkeypatch.setattr(against_sb3, "_in_fresh_process", fake)
    runs = side_by_side(["ppo"], [0, 1, 2], jobs=2)
    order = [("ppo", s, lib) for s in (0, 1, 2) for lib in ("sb3", "pgbook")]
    assert [(r.name, r.seed, r.library) for r in runs] == order
    assert started[:2] == order[:2] and most[0] == 2  # two at a time, never more
    with pytest.raises(ValueError, match="jobs"):
        side_by_side(["ppo"], [0], jobs=0)


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
    # its episodes: the trailing mean of the last 20 first reaches 25 at the episode ending at
    # run.steps (CartPole's returns are whole numbers, so the 3-decimal rounding is exact)
    steps, returns = run.episode_steps, run.episode_returns
    assert len(steps) == len(returns) >= 20 and steps == sorted(steps) and steps[-1] <= 4096 + 2048
    first = next(i for i in range(19, len(returns)) if sum(returns[i - 19:i + 1]) / 20 >= 25.0)
    assert steps[first] == run.steps
    missed = run_one(library, "trpo", 0, budget=1024, target=500.0)  # 500 > CartPole's cap
    assert missed.steps is None and missed.seconds is None


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="library"):
        run_one("cleanrl", "ppo", 0)
    with pytest.raises(ValueError, match="name"):
        run_one("sb3", "reinforce", 0)
    with pytest.raises(ValueError, match="seed"):
        run_one("sb3", "ppo", -1)


def _runs():
    return [_run("sb3", 0, 30_000, 10.0), _run("pgbook", 0, 24_000, 4.0),
            _run("sb3", 0, 16_000, 70.0, "td3"), _run("pgbook", 0, 6_000, 10.0, "td3")]


def test_results_file_round_trip(tmp_path):
    runs, provenance = _runs(), {"date": "2026-12-06", "torch_threads": 1}
    path = save_results(tmp_path / "sub" / "r.json", runs, provenance, "python -m benchmarks x")
    data = json.loads(path.read_text())
    assert list(data) == ["provenance", "command", "pairs", "runs", "table"]
    assert data["pairs"]["td3"]["env_id"] == "Pendulum-v1" and data["pairs"]["ppo"]["n_envs"] == 8
    assert json.loads(json.dumps(data["pairs"])) == data["pairs"]  # JSON-able, kwargs as text
    assert data["runs"][1]["episode_returns"] == [9.5, 20.0, 31.125]
    loaded = load_results(path)
    assert loaded["runs"] == runs and loaded["provenance"] == provenance
    assert loaded["table"] == side_by_side_table(runs) and loaded["command"].endswith(" x")


def test_load_results_rejects_what_is_not_a_results_file(tmp_path):
    good = json.loads(save_results(tmp_path / "good.json", _runs(), {}, "c").read_text())
    with pytest.raises(ValueError, match="path"):
        load_results(tmp_path / "missing.json")
    (tmp_path / "text.json").write_text("not json")
    with pytest.raises(ValueError, match="path"):
        load_results(tmp_path / "text.json")
    (tmp_path / "no_runs.json").write_text(json.dumps({k: v for k, v in good.items()
                                                       if k != "runs"}))
    with pytest.raises(ValueError, match="path.*'runs'"):
        load_results(tmp_path / "no_runs.json")
    good["runs"][0].pop("episode_steps")
    (tmp_path / "old_run.json").write_text(json.dumps(good))
    with pytest.raises(ValueError, match="path.*every run"):
        load_results(tmp_path / "old_run.json")
    with pytest.raises(ValueError, match="path"):
        load_results(3)
    with pytest.raises(ValueError, match="runs"):
        save_results(tmp_path / "x.json", [], {}, "c")
    with pytest.raises(ValueError, match="command"):
        save_results(tmp_path / "x.json", _runs(), {}, "")


def test_cli_save_writes_the_results_file_with_the_command(monkeypatch, tmp_path, capsys):
    calls = []

    def fake(names, seeds, **kwargs):
        calls.append((names, seeds))
        return [r for r in _runs() if r.name in names]

    monkeypatch.setattr(cli, "side_by_side", fake)
    argv = ["--against", "sb3", "ppo", "td3", "--seeds", "1", "--save-to", str(tmp_path / "r.json")]
    assert cli.main(argv) == 0
    assert calls == [(["ppo", "td3"], [0])]
    data = load_results(tmp_path / "r.json")
    assert data["command"] == "python -m benchmarks " + " ".join(argv)
    assert data["runs"] == _runs() and data["table"] in capsys.readouterr().out  # printed too
    for key in ("date", "pgbook_commit", "jobs", "cpu", "python", "torch", "stable_baselines3",
                "sb3_contrib", "gymnasium"):
        assert key in data["provenance"], key
    with pytest.raises(SystemExit):  # --save goes with --against
        cli.main(["ppo", "--save"])


@pytest.mark.parametrize("name", ["against_sb3.json", "against_sb3_amd_2026-12-07.json",
                                  "against_sb3_amd_2026-12-08.json"])
def test_the_stored_results_files_load_and_their_tables_are_their_runs(name):
    data = load_results(RESULTS.parent / name)
    assert data["table"] == side_by_side_table(data["runs"])
    assert {r.name for r in data["runs"]} == set(data["pairs"])
    assert all(r.steps is not None for r in data["runs"] if r.library == "pgbook")
