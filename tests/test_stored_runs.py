"""pgbook.stored_runs: the stored seed bands round-trip, match the chapters' configs, and learn."""

import dataclasses

import pytest

from pgbook import history, stored_runs
from pgbook.algos import ppo, sac, td3

#: the config each chapter trains (the chapter asserts the same with check_config)
CHAPTER_CONFIGS = {
    "ppo_ch8": ppo.Config(target=475.0, total_steps=100_000),
    "td3_ch10": td3.Config(total_steps=7_600, target_window=10),
    "sac_ch11": sac.Config(total_steps=10_000, target=-200.0, target_window=10),
}


@pytest.mark.parametrize("name", sorted(CHAPTER_CONFIGS))
def test_stored_runs_match_the_chapter_config_and_have_five_seeds(name):
    stored = stored_runs.load(name)
    stored.check_config(CHAPTER_CONFIGS[name])
    assert stored.seeds == (0, 1, 2, 3, 4) and len(stored.runs) == 5
    assert stored.provenance["pgbook_commit"] != "unknown"
    for run in stored.runs:
        assert len(run.episode_steps) == len(run.episode_returns) > stored.window
        assert run.episode_steps == sorted(run.episode_steps)


@pytest.mark.parametrize("name", sorted(CHAPTER_CONFIGS))
def test_check_config_fails_on_any_changed_field(name):
    stored = stored_runs.load(name)
    config = CHAPTER_CONFIGS[name]
    changed = dataclasses.replace(config, total_steps=config.total_steps + 1)
    with pytest.raises(ValueError, match="total_steps"):
        stored.check_config(changed)
    stored.check_config(dataclasses.replace(config, seed=123))  # the seed does not count


def test_save_then_load_round_trips(tmp_path):
    runs = []
    for seed in (0, 1):
        h = history.History("E", sac.Config(seed=seed))
        h.add_episodes([1.0 + seed, 2.0], [5, 5], [5, 10])
        runs.append(h.finish(10))
    stored_runs.save("toy", runs, env_id="E", target=2.0, window=1, note="n",
                     provenance={"date": "d"}, directory=tmp_path)
    back = stored_runs.load("toy", directory=tmp_path)
    assert back.seeds == (0, 1) and back.provenance == {"date": "d"}
    assert [r.episode_returns for r in back.runs] == [[1.0, 2.0], [2.0, 2.0]]
    assert back.runs[1].reached(2.0, 1).env_steps == 5
    with pytest.raises(ValueError, match="share one config"):
        stored_runs.save("toy", [runs[0], history.History("E", sac.Config(tau=0.5))],
                         env_id="E", target=2.0, window=1, note="n", provenance={},
                         directory=tmp_path)
