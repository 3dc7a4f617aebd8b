"""pgbook.rollout: every row of a time-major batch is a real transition across autoresets,
episode records, whole-episode quotas, values and log-probabilities, seeding."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from pgbook.nets import CategoricalPolicy, GaussianPolicy, ValueNet
from pgbook.rollout import Collector, make_envs

SEED = 3
LIMIT = 15  # a short time limit, so one batch has both terminations and truncations


@pytest.fixture
def setup():
    torch.manual_seed(0)
    envs = make_envs("CartPole-v1", 3, max_episode_steps=LIMIT)
    yield envs, CategoricalPolicy(4, 2, hidden=(8,))
    envs.close()


def replay(batches, n):
    """Replay column n's actions in a plain single env seeded like sub-env n; check each row."""
    env = gym.make("CartPole-v1", max_episode_steps=LIMIT)
    obs, _ = env.reset(seed=SEED + n)
    kinds = set()
    for b in batches:
        for t in range(b.num_steps):
            assert np.array_equal(b.obs[t, n].numpy(), obs), f"row {t}: s_t differs"
            obs, r, term, trunc, _ = env.step(int(b.actions[t, n]))
            assert b.rewards[t, n].item() == r
            assert (b.terminated[t, n].item(), b.truncated[t, n].item()) == (term, trunc)
            # s_{t+1} is the true next observation, also (especially) at the end of an episode
            assert np.array_equal(b.next_obs[t, n].numpy(), obs), f"row {t}: s_t+1 differs"
            if term or trunc:
                kinds.add("terminated" if term else "truncated")
                obs, _ = env.reset()  # the next row is the first step of a new episode
    return kinds


def rows_of_episodes(b, n):
    """Split column n's valid rows into episodes at terminated/truncated rows."""
    episodes, current = [], []
    for t in range(b.num_steps):
        if b.valid[t, n]:
            current.append(t)
            if b.dones[t, n]:
                episodes.append(current)
                current = []
    return episodes, current


def test_every_row_is_a_real_transition_across_autoresets_and_batches(setup):
    envs, pi = setup
    c = Collector(envs, seed=SEED)
    first, second = c.collect_steps(pi, 40), c.collect_steps(pi, 25)
    assert first.obs.shape == (40, 3, 4) and first.actions.shape == (40, 3)
    assert first.valid.all() and second.valid.all()
    assert first.env_steps == 120
    kinds = set().union(*(replay([first, second], n) for n in range(3)))
    assert kinds == {"terminated", "truncated"}  # both kinds of boundary were crossed


def test_recorded_episode_returns_are_sums_of_their_rows(setup):
    envs, pi = setup
    b = Collector(envs, seed=SEED).collect_steps(pi, 60)
    expected = []
    for n in range(3):
        episodes, _ = rows_of_episodes(b, n)
        expected += [(ep[-1], n, b.rewards[ep, n].sum().item(), len(ep)) for ep in episodes]
        for ep in episodes:  # episode_step counts 0, 1, ... within each episode
            assert b.episode_step[ep, n].tolist() == list(range(len(ep)))
    expected.sort()
    got = sorted(zip(b.episode_ends[:, 0].tolist(), b.episode_ends[:, 1].tolist(),
                     b.episode_returns.tolist(), b.episode_lengths.tolist(), strict=True))
    assert got == expected and len(got) >= 6


def test_collect_episodes_runs_a_fixed_quota_of_whole_episodes_per_env(setup):
    envs, pi = setup
    c = Collector(envs, seed=SEED)
    c.collect_steps(pi, 7)  # leaves episodes half-way: collect_episodes must start afresh
    b = c.collect_episodes(pi, 7)  # quotas 3, 2, 2
    assert len(b.episode_returns) == 7
    assert (b.episode_step[0] == 0).all()
    for n, quota in enumerate([3, 2, 2]):
        episodes, unfinished = rows_of_episodes(b, n)
        assert len(episodes) == quota and unfinished == []
        last = episodes[-1][-1]
        assert b.valid[: last + 1, n].all() and not b.valid[last + 1:, n].any()
        ends = b.episode_ends[b.episode_ends[:, 1] == n, 0].tolist()
        assert ends == [ep[-1] for ep in episodes]
    # the batch stops as soon as the slowest env meets its quota
    assert b.valid[-1].any()
    assert b.rewards[b.valid].sum().item() == pytest.approx(b.episode_returns.sum().item())
    assert b.episode_lengths.sum().item() == b.valid.sum().item()


def test_values_and_bootstrap_values(setup):
    envs, pi = setup
    v = ValueNet(4, hidden=(8,))
    b = Collector(envs, seed=SEED).collect_steps(pi, 40, value=v)
    with torch.no_grad():
        assert torch.allclose(b.values, v(b.obs))
        assert torch.allclose(b.next_values, v(b.next_obs))
    assert b.truncated.any()
    assert b.values.shape == b.next_values.shape == (40, 3)
    assert Collector(envs, seed=SEED).collect_steps(pi, 5).values is None


def test_logp_is_the_log_prob_of_the_policy_that_acted(setup):
    envs, pi = setup
    b = Collector(envs, seed=SEED).collect_steps(pi, 20)
    with torch.no_grad():
        assert torch.allclose(b.logp, pi.dist(b.obs).log_prob(b.actions))


def test_same_seeds_give_the_same_batch():
    def run():
        torch.manual_seed(1)
        envs = make_envs("CartPole-v1", 2)
        pi = CategoricalPolicy(4, 2, hidden=(8,))
        b = Collector(envs, seed=5).collect_episodes(pi, 4)
        envs.close()
        return b
    a, b = run(), run()
    for field in ("obs", "actions", "rewards", "terminated", "valid", "episode_returns"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field


def test_continuous_actions_are_clipped_for_the_env_but_stored_as_sampled():
    torch.manual_seed(0)
    envs = make_envs("Pendulum-v1", 2)
    pi = GaussianPolicy(3, 1, hidden=(8,), log_std_init=1.5)  # std 4.5 on [-2, 2]
    b = Collector(envs, seed=0).collect_steps(pi, 30)
    envs.close()
    assert b.actions.shape == (30, 2, 1) and b.logp.shape == (30, 2)
    assert b.actions.abs().max() > 2.0
    with torch.no_grad():
        assert torch.allclose(b.logp, pi.dist(b.obs).log_prob(b.actions))


def test_rejects_next_step_autoreset_and_missing_statistics():
    from gymnasium.wrappers.vector import RecordEpisodeStatistics
    next_step = RecordEpisodeStatistics(gym.make_vec("CartPole-v1", 2, vectorization_mode="sync"))
    with pytest.raises(ValueError, match="SAME_STEP"):
        Collector(next_step)
    bare = gym.make_vec("CartPole-v1", 2, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    with pytest.raises(ValueError, match="RecordEpisodeStatistics"):
        Collector(bare)
    with pytest.raises(ValueError, match="VectorEnv"):
        Collector(gym.make("CartPole-v1"))
    next_step.close()
    bare.close()


@pytest.mark.parametrize("call, match", [
    (lambda c, pi: c.collect_steps(pi, 0), "num_steps"),
    (lambda c, pi: c.collect_episodes(pi, 2), "episodes must be >= num_envs"),
    (lambda c, pi: c.collect_episodes(pi, 3, max_steps=0), "max_steps"),
    (lambda c, pi: c.collect_steps(lambda obs: obs, 5), "dist"),
    (lambda c, pi: c.collect_steps(pi, 5, value=3.0), "value must be callable"),
])
def test_bad_arguments_raise_value_error(setup, call, match):
    envs, pi = setup
    with pytest.raises(ValueError, match=match):
        call(Collector(envs), pi)
    with pytest.raises(ValueError, match="seed"):
        Collector(envs, seed=-1)
    with pytest.raises(ValueError, match="env_id"):
        make_envs("", 2)
