"""A uniform experience-replay buffer for off-policy actor-critics (chapters 10 and 11).

DDPG, TD3 and SAC learn from transitions (s, a, r, s', terminated) collected by *older*
policies. Their critics regress Q(s, a) on the one-step target

    y = r + gamma * (1 - terminated) * Q_target(s', a'),     a' from the current policy at s',

which is valid whatever policy chose a, so every transition ever seen can be reused. The
buffer keeps the last ``capacity`` of them in preallocated tensors (a ring: the oldest is
overwritten first) and returns uniformly sampled mini-batches.

Terminated, not done
--------------------
Only ``terminated`` (s' is a terminal state, its value is 0) is stored. An episode cut by a
time limit (``truncated``, e.g. Pendulum-v1 after 200 steps) did *not* reach a terminal state:
its s' still has a value, and the target must bootstrap from it. Storing ``terminated or
truncated`` instead would tell the critic that the last state of every Pendulum episode is
worth nothing, a bias the critic then propagates backwards. Rows of a
:class:`pgbook.rollout.Batch` already carry the true s' (the final observation) in
``next_obs``, so :meth:`ReplayBuffer.add_batch` stores them as they are.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from . import _validate as V
from .rollout import Batch

__all__ = ["ReplayBuffer", "Transitions"]


class Transitions(NamedTuple):
    """A mini-batch of B transitions (s, a, r, s', terminated)."""

    obs: torch.Tensor  #: (B, obs_dim) s
    actions: torch.Tensor  #: (B, act_dim) a, as the environment received it
    rewards: torch.Tensor  #: (B,) r
    next_obs: torch.Tensor  #: (B, obs_dim) s' (the true next state, also at a time limit)
    terminated: torch.Tensor  #: (B,) float, 1.0 where s' is terminal (no bootstrap), else 0.0


class ReplayBuffer:
    """The last ``capacity`` transitions in a ring of preallocated float tensors.

    ``add`` appends B transitions at once (oldest overwritten first once full); ``sample``
    draws ``batch_size`` of the stored ones uniformly with replacement, from ``generator`` if
    given (else torch's global generator), so a seeded run samples the same mini-batches.
    """

    def __init__(self, obs_dim: int, act_dim: int, capacity: int = 100_000,
                 dtype: torch.dtype = torch.float32) -> None:
        self.obs_dim = V.positive_int(obs_dim, "obs_dim")
        self.act_dim = V.positive_int(act_dim, "act_dim")
        self.capacity = V.positive_int(capacity, "capacity")
        if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
            raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
        self.dtype = dtype
        self.obs = torch.zeros(capacity, obs_dim, dtype=dtype)
        self.actions = torch.zeros(capacity, act_dim, dtype=dtype)
        self.rewards = torch.zeros(capacity, dtype=dtype)
        self.next_obs = torch.zeros(capacity, obs_dim, dtype=dtype)
        self.terminated = torch.zeros(capacity, dtype=dtype)
        self.pos = 0  #: where the next transition goes
        self.size = 0  #: how many are stored (<= capacity)
        self.added = 0  #: how many were ever added

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return (f"ReplayBuffer(obs_dim={self.obs_dim}, act_dim={self.act_dim}, "
                f"capacity={self.capacity}, size={self.size})")

    def add(self, obs: torch.Tensor, actions: torch.Tensor, rewards: torch.Tensor,
            next_obs: torch.Tensor, terminated: torch.Tensor) -> None:
        """Append B >= 1 transitions: obs, next_obs (B, obs_dim); actions (B, act_dim);
        rewards (B,); terminated (B,) bool (True where s' is terminal; never for time limits).
        """
        V.tensor(obs, "obs", ndim=2, nonempty=True)
        V.tensor(next_obs, "next_obs", ndim=2)
        V.tensor(actions, "actions", ndim=2)
        V.tensor(rewards, "rewards", ndim=1)
        V.tensor(terminated, "terminated", ndim=1, floating=False)
        if terminated.dtype != torch.bool:
            raise ValueError(f"terminated must have dtype torch.bool, got {terminated.dtype}")
        B = obs.shape[0]
        expected = {"obs": (B, self.obs_dim), "next_obs": (B, self.obs_dim),
                    "actions": (B, self.act_dim), "rewards": (B,), "terminated": (B,)}
        given = {"obs": obs, "next_obs": next_obs, "actions": actions, "rewards": rewards,
                 "terminated": terminated}
        for name, shape in expected.items():
            if tuple(given[name].shape) != shape:
                raise ValueError(f"{name} must have shape {shape} (B={B} rows of obs), "
                                 f"got {tuple(given[name].shape)}")
        if B > self.capacity:  # only the last `capacity` rows would survive
            given = {k: v[B - self.capacity:] for k, v in given.items()}
            B = self.capacity
        idx = (self.pos + torch.arange(B)) % self.capacity
        for name, value in given.items():
            getattr(self, name)[idx] = value.to(self.dtype)
        self.pos = (self.pos + B) % self.capacity
        self.size = min(self.size + B, self.capacity)
        self.added += B

    def add_batch(self, batch: Batch) -> None:
        """Append the valid rows of a :class:`pgbook.rollout.Batch` (time-major, (T, N, ...)),
        row by row in time order, storing ``terminated`` but not ``truncated`` (nothing if no
        row is valid)."""
        if not isinstance(batch, Batch):
            raise ValueError(f"batch must be a pgbook.rollout.Batch, got {type(batch).__name__}")
        if batch.actions.dim() != 3:
            raise ValueError("batch must come from a continuous (Box) action space: actions "
                             f"of shape (T, N, act_dim), got {tuple(batch.actions.shape)}")
        mask = batch.valid
        if not bool(mask.any()):
            return
        self.add(batch.obs[mask], batch.actions[mask], batch.rewards[mask],
                 batch.next_obs[mask], batch.terminated[mask])

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> Transitions:
        """``batch_size`` stored transitions drawn uniformly with replacement."""
        V.positive_int(batch_size, "batch_size")
        if self.size == 0:
            raise ValueError("cannot sample from an empty ReplayBuffer; add transitions first")
        V.generator(generator)
        idx = torch.randint(self.size, (batch_size,), generator=generator)
        return Transitions(self.obs[idx], self.actions[idx], self.rewards[idx],
                           self.next_obs[idx], self.terminated[idx])
