"""pgbook.history: the trailing mean every target is stated in, and the one History every
trainer returns (episode record, logs, last_mean / reached / best_mean)."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from pgbook.history import History, Reached, trailing_means


def direct_trailing_means(values, window, partial=False):
    """The mean of values[i - window + 1 .. i] at each index i, one slice at a time."""
    out = []
    for i in range(len(values)):
        lo = i - window + 1
        if lo < 0 and not partial:
            continue
        out.append(float(np.mean(values[max(lo, 0):i + 1])))
    return np.array(out)


# ---- trailing_means ---------------------------------------------------------------------------

@pytest.mark.parametrize("window", [1, 2, 5, 7, 20])
@pytest.mark.parametrize("partial", [False, True])
def test_trailing_means_match_a_direct_loop(window, partial):
    values = np.random.default_rng(window).normal(size=20).tolist()
    got = trailing_means(values, window, partial=partial)
    expected = direct_trailing_means(values, window, partial)
    assert got.shape == ((20,) if partial else (20 - window + 1,))
    assert np.allclose(got, expected, rtol=0, atol=1e-12)


def test_trailing_means_by_hand():
    assert np.allclose(trailing_means([-3.0, -1.0, -2.0, 0.0], 2), [-2.0, -1.5, -1.0])
    assert trailing_means([1.0, 2.0, 3.0], 3).tolist() == [2.0]
    # partial: the first window - 1 entries average what there is so far
    assert np.allclose(trailing_means([1.0, 2.0, 3.0, 4.0], 3, partial=True),
                       [1.0, 1.5, 2.0, 3.0])
    assert trailing_means(torch.tensor([1.0, 3.0]), 2).tolist() == [2.0]  # tensors too


def test_trailing_means_with_fewer_values_than_the_window():
    assert trailing_means([1.0, 2.0], 3).shape == (0,)
    assert trailing_means([], 3).shape == (0,)
    assert trailing_means([1.0, 2.0], 3, partial=True).tolist() == [1.0, 1.5]
    assert trailing_means([], 3, partial=True).shape == (0,)


@pytest.mark.parametrize("args, match", [
    (([1.0, 2.0], 0), "window must be >= 1"),
    (([1.0, 2.0], 1.5), "window must be an integer"),
    (([[1.0, 2.0]], 1), "one-dimensional"),
])
def test_trailing_means_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        trailing_means(*args)


# ---- History: reading the episode record -----------------------------------------------------

def five_episodes() -> History:
    return History(episode_returns=[1.0, 2.0, 3.0, 10.0, 0.0],
                   episode_steps=[5, 9, 20, 30, 31],
                   episode_times=[0.1, 0.2, 0.3, 0.4, 0.5])


def test_last_mean_is_nan_until_a_full_window_ended():
    h = five_episodes()
    assert h.last_mean(2) == 5.0 and h.last_mean(5) == 3.2 and h.last_mean(1) == 0.0
    assert np.isnan(h.last_mean(6)) and np.isnan(h.last_mean(100))
    assert np.isnan(History().last_mean()) and np.isnan(h.last_mean())  # default window 20


def test_reached_and_best_mean_on_hand_made_records():
    h = five_episodes()
    # trailing means of 2: 1.5, 2.5, 6.5, 5.0 (ending at episodes 2, 3, 4, 5)
    hit = h.reached(6.0, window=2)
    assert hit == Reached(env_steps=30, seconds=0.4, episodes=4) and isinstance(hit, Reached)
    assert h.reached(6.5, window=2) == (30, 0.4, 4)  # >= target: reaching it exactly counts
    assert h.reached(7.0, window=2) is None
    assert h.reached(1.5, window=2) == (9, 0.2, 2)  # the first full window already
    assert h.best_mean(window=2) == (6.5, 30)
    assert h.best_mean(window=5) == (3.2, 31)
    assert h.best_mean(window=1) == (10.0, 30)
    assert History().best_mean() is None and History().reached(0.0) is None


def test_the_window_boundary():
    """A window counts only once it is full: the 3.0 of episode 3 alone does not reach 3.0 with
    a window of 3, and a window longer than the record gives nothing."""
    h = History(episode_returns=[3.0, 0.0, 3.0, 3.0, 3.0], episode_steps=[1, 2, 3, 4, 5],
                episode_times=[0.1, 0.2, 0.3, 0.4, 0.5])
    assert h.reached(3.0, window=1) == (1, 0.1, 1)
    assert h.reached(3.0, window=3) == (5, 0.5, 5)  # episodes 3-5; 1-3 and 2-4 average < 3
    assert h.reached(2.0, window=3) == (3, 0.3, 3)  # episodes 1-3 average exactly 2
    assert h.reached(0.0, window=5) == (5, 0.5, 5)
    assert h.reached(0.0, window=6) is None and h.best_mean(window=6) is None
    assert h.best_mean(window=3) == (3.0, 5)
    assert np.isnan(h.last_mean(6)) and h.last_mean(5) == pytest.approx(2.4)


def test_target_reached_reads_the_config():
    h = five_episodes()
    assert not h.target_reached()  # no config: no target
    h.config = SimpleNamespace(target=None, target_window=2)
    assert not h.target_reached()
    h.config = SimpleNamespace(target=5.0, target_window=2)
    assert h.target_reached()  # last two: (10 + 0) / 2 = 5
    h.config = SimpleNamespace(target=5.0, target_window=6)
    assert not h.target_reached()  # fewer episodes than the window


@pytest.mark.parametrize("call, match", [
    (lambda h: h.last_mean(0), "window"),
    (lambda h: h.last_mean(2.0), "window"),
    (lambda h: h.reached(1.0, window=0), "window"),
    (lambda h: h.reached(float("nan")), "target"),
    (lambda h: h.reached("high"), "target"),
    (lambda h: h.best_mean(window=-1), "window"),
])
def test_reading_rejects_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call(five_episodes())


# ---- History: recording ------------------------------------------------------------------------

def test_add_episodes_appends_in_order_and_times_them_now():
    h = History("Env-v0", config=None)
    assert h.add_episodes([1, 2.5], torch.tensor([3, 4]), torch.tensor([10, 20])) == 2
    assert h.add_episodes(torch.tensor([-1.0]), [7], [27]) == 1
    assert h.add_episodes([], [], []) == 0
    assert h.episode_returns == [1.0, 2.5, -1.0]
    assert h.episode_lengths == [3, 4, 7] and h.episode_steps == [10, 20, 27]
    assert all(type(r) is float for r in h.episode_returns)
    assert all(type(n) is int for n in h.episode_lengths + h.episode_steps)
    times = h.episode_times
    assert len(times) == 3 and times[0] == times[1] <= times[2] <= h.seconds()
    with pytest.raises(ValueError, match="one length, got 2, 1, 2"):
        h.add_episodes([1.0, 2.0], [3], [4, 5])
    assert len(h.episode_returns) == 3  # nothing was added


def test_add_batch_episodes_puts_each_episode_at_its_env_step():
    """With N sub-environments, an episode ending at row t of a batch collected after
    `before` env steps ends at env step before + (t + 1) N."""
    batch = SimpleNamespace(num_envs=3, episode_ends=torch.tensor([[0, 2], [4, 0], [4, 1]]),
                            episode_returns=torch.tensor([10.0, 20.0, 30.0]),
                            episode_lengths=torch.tensor([1, 5, 2]))
    h = History()
    assert h.add_batch_episodes(batch, 600) == 3
    assert h.episode_steps == [603, 615, 615]
    assert h.episode_returns == [10.0, 20.0, 30.0] and h.episode_lengths == [1, 5, 2]
    empty = SimpleNamespace(num_envs=3, episode_ends=torch.zeros(0, 2, dtype=torch.long),
                            episode_returns=torch.zeros(0), episode_lengths=torch.zeros(0))
    assert h.add_batch_episodes(empty, 700) == 0 and len(h.episode_steps) == 3


def test_add_batch_episodes_on_a_real_rollout():
    from pgbook.nets import CategoricalPolicy
    from pgbook.rollout import Collector, make_envs

    torch.manual_seed(0)
    envs = make_envs("CartPole-v1", 2, max_episode_steps=10)
    try:
        batch = Collector(envs, seed=0).collect_steps(CategoricalPolicy(4, 2, hidden=(8,)), 25)
    finally:
        envs.close()
    h = History()
    n = h.add_batch_episodes(batch, 100)
    assert n == len(batch.episode_returns) >= 4
    rows = batch.episode_ends[:, 0]
    assert h.episode_steps == (100 + 2 * (rows + 1)).tolist()
    assert sum(h.episode_lengths) <= batch.env_steps


def test_log_and_finish():
    h = History()
    h.log(loss=1, kl=0.5)
    h.log(loss=torch.tensor(2.0))
    assert h.logs == {"loss": [1.0, 2.0], "kl": [0.5]}
    assert all(type(v) is float for v in h.logs["loss"])
    assert h.finish(1234) is h
    assert h.env_steps == 1234 and type(h.env_steps) is int and h.wall_time >= 0.0
    assert History().logs == {} and History().models == {} and History().env_steps == 0
