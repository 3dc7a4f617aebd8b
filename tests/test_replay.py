"""pgbook.replay: the ring buffer of the off-policy trainers (chapters 10-11), uniform sampling,
and time-limit states kept as non-terminal."""

import numpy as np
import pytest
import torch

from pgbook.replay import ReplayBuffer, Transitions
from pgbook.rollout import Collector, make_envs


def _rows(start: int, n: int, obs_dim: int = 2, act_dim: int = 1):
    """n transitions whose every field encodes its index i = start..start+n-1."""
    i = torch.arange(start, start + n, dtype=torch.float32)
    return (i[:, None].expand(n, obs_dim).clone(), i[:, None].expand(n, act_dim) * 10,
            -i, i[:, None].expand(n, obs_dim) + 0.5, (i % 2 == 0))


def test_add_fills_in_order_and_the_ring_overwrites_the_oldest():
    buf = ReplayBuffer(2, 1, capacity=5)
    buf.add(*_rows(0, 3))
    assert len(buf) == 3 and buf.pos == 3 and buf.added == 3
    assert buf.rewards[:3].tolist() == [0.0, -1.0, -2.0]
    buf.add(*_rows(3, 4))  # indices 3..6: 5 and 6 overwrite slots 0 and 1
    assert len(buf) == 5 and buf.pos == 2 and buf.added == 7
    assert buf.rewards.tolist() == [-5.0, -6.0, -2.0, -3.0, -4.0]
    assert buf.terminated.tolist() == [0.0, 1.0, 1.0, 0.0, 1.0]  # stored as float 0/1
    assert buf.actions[:, 0].tolist() == [50.0, 60.0, 20.0, 30.0, 40.0]
    # more rows than the capacity at once: only the last `capacity` survive
    buf = ReplayBuffer(2, 1, capacity=3)
    buf.add(*_rows(0, 7))
    assert sorted(buf.rewards.tolist()) == [-6.0, -5.0, -4.0] and buf.pos == 0


def test_sample_returns_consistent_rows_reproducibly():
    buf = ReplayBuffer(2, 1, capacity=100)
    buf.add(*_rows(0, 40))
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    a, b = buf.sample(64, g1), buf.sample(64, g2)
    assert isinstance(a, Transitions)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    i = -a.rewards  # every field of a sampled row belongs to the same transition
    assert torch.equal(a.obs[:, 0], i) and torch.equal(a.actions[:, 0], 10 * i)
    assert torch.equal(a.next_obs[:, 1], i + 0.5)
    assert torch.equal(a.terminated, (i % 2 == 0).float())
    assert a.obs.shape == (64, 2) and a.actions.shape == (64, 1) and a.rewards.shape == (64,)


def test_sampling_is_uniform_over_the_stored_rows():
    buf = ReplayBuffer(1, 1, capacity=8)
    buf.add(*_rows(0, 6, obs_dim=1))
    n = 60_000
    counts = torch.bincount((-buf.sample(n, torch.Generator().manual_seed(0)).rewards).long(),
                            minlength=6).double()
    # each count ~ Binomial(n, 1/6); 4.5 standard deviations (simultaneous over 6 cells)
    sd = np.sqrt(n * (1 / 6) * (5 / 6))
    assert ((counts - n / 6).abs() <= 4.5 * sd).all()
    assert counts.sum() == n  # never an empty slot (rows 6, 7 were never written)


def test_add_batch_keeps_time_limit_states_and_does_not_mark_them_terminal():
    envs = make_envs("Pendulum-v1", 1)
    try:
        collector = Collector(envs, seed=3)

        class Zero:  # a "policy" that always applies torque 0
            def dist(self, obs):
                return torch.distributions.Independent(
                    torch.distributions.Normal(torch.zeros(obs.shape[0], 1), 1e-6), 1)

        batch = collector.collect_steps(Zero(), 201)
    finally:
        envs.close()
    buf = ReplayBuffer(3, 1, capacity=1000)
    buf.add_batch(batch)
    assert len(buf) == 201
    assert bool(batch.truncated[199, 0]) and not bool(batch.terminated[199, 0])
    assert buf.terminated.sum() == 0  # a time limit is not a terminal state
    # s' is the true next state: obs of the next row within the episode ...
    assert torch.equal(buf.next_obs[:199], buf.obs[1:200])
    # ... and at the cut the final observation, not the reset observation of the next episode
    assert torch.equal(buf.next_obs[199], batch.next_obs[199, 0])
    assert not torch.allclose(buf.next_obs[199], buf.obs[200])


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="capacity"):
        ReplayBuffer(2, 1, capacity=0)
    with pytest.raises(ValueError, match="dtype"):
        ReplayBuffer(2, 1, dtype=torch.int64)
    buf = ReplayBuffer(2, 1, capacity=10)
    with pytest.raises(ValueError, match="empty"):
        buf.sample(4)
    obs, act, rew, nxt, term = _rows(0, 3)
    with pytest.raises(ValueError, match="actions must have shape"):
        buf.add(obs, torch.zeros(3, 2), rew, nxt, term)
    with pytest.raises(ValueError, match="rewards must have shape"):
        buf.add(obs, act, torch.zeros(4), nxt, term)
    with pytest.raises(ValueError, match="terminated must have dtype torch.bool"):
        buf.add(obs, act, rew, nxt, term.float())
    with pytest.raises(ValueError, match="non-finite"):
        buf.add(obs, act, rew * float("nan"), nxt, term)
    with pytest.raises(ValueError, match="obs must have 2"):
        buf.add(obs[0], act, rew, nxt, term)
    buf.add(obs, act, rew, nxt, term)
    with pytest.raises(ValueError, match="batch_size"):
        buf.sample(0)
    with pytest.raises(ValueError, match="generator"):
        buf.sample(2, generator=0)
    with pytest.raises(ValueError, match="Batch"):
        buf.add_batch((obs, act))
