"""Rollouts of a policy in a Gymnasium vector env, collected into a time-major batch.

Autoreset: SAME_STEP
--------------------
A vector env resets a sub-environment by itself when its episode ends. Gymnasium 1.x has two
ways to do that, and a rollout that ignores which one is in force mixes episodes silently:

* ``NEXT_STEP`` (Gymnasium's default): the step that ends an episode returns the final
  observation; the *next* call to ``step`` ignores the action, resets, and returns the reset
  observation with reward 0 and both flags False. That call is not a transition of the MDP and
  would have to be masked out of every loss and every return.
* ``SAME_STEP`` (used here): the step that ends an episode resets at once; it returns the reset
  observation and puts the final observation in ``info["final_obs"]``. Every call to ``step``
  is then one real transition (s_t, a_t, r_{t+1}, s_{t+1}) per sub-environment.

:func:`make_envs` builds a SAME_STEP ``SyncVectorEnv`` wrapped in ``RecordEpisodeStatistics``,
and :class:`Collector` refuses any other autoreset mode. Row t of a :class:`Batch` is therefore
always a real transition; ``next_obs[t]`` is the true s_{t+1} (the final observation when the
episode ended at t), and the row after a terminated/truncated row is the first step of the next
episode. This is the layout of :mod:`pgbook.returns` (``reward_to_go_batched`` and friends).

Two ways to collect
-------------------
* :meth:`Collector.collect_steps`: a fixed number of steps per sub-environment, continuing the
  episodes in progress from the previous call (A2C, PPO). Episodes cut by the end of the batch
  are bootstrapped from ``next_values``.
* :meth:`Collector.collect_episodes`: whole episodes (REINFORCE). All sub-environments are
  reset, and sub-environment n runs a quota of episodes fixed *in advance*
  (``episodes`` split as evenly as possible). Rows after an env has met its quota are marked
  ``valid=False``. Stopping instead "when E episodes have finished, in any env" and dropping the
  unfinished ones would keep short episodes more often than long ones: a biased sample of
  pi_theta's episodes, and a biased gradient.

Env steps are counted as transitions simulated: T * N per batch, including the invalid rows of
``collect_episodes`` (the environment did simulate them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import gymnasium as gym
import numpy as np
import torch
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
from gymnasium.wrappers.vector import RecordEpisodeStatistics

from . import _validate as V

__all__ = ["Batch", "Collector", "make_envs"]


def make_envs(env_id: str, num_envs: int = 1, **env_kwargs) -> VectorEnv:
    """``num_envs`` copies of ``env_id`` in a SAME_STEP ``SyncVectorEnv`` with episode statistics.

    ``env_kwargs`` go to ``gymnasium.make`` for every copy. Seed it through
    :class:`Collector` (``envs.reset(seed=s)`` seeds copy i with s + i).
    """
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env_id must be a non-empty string, got {env_id!r}")
    V.positive_int(num_envs, "num_envs")
    envs = gym.make_vec(env_id, num_envs, vectorization_mode="sync",
                        vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **env_kwargs)
    return RecordEpisodeStatistics(envs)


@dataclass
class Batch:
    """A time-major rollout: T steps of N sub-environments. Tensors are (T, N, ...).

    Row t of column n is the transition (s_t, a_t, r_{t+1}, s_{t+1}) of sub-environment n.
    """

    obs: torch.Tensor  #: (T, N, obs_dim) s_t, where a_t was taken
    actions: torch.Tensor  #: (T, N) for discrete actions, (T, N, act_dim) for continuous ones
    logp: torch.Tensor  #: (T, N) log pi(a_t | s_t) of the policy that acted (no grad)
    rewards: torch.Tensor  #: (T, N) r_{t+1}, float32
    terminated: torch.Tensor  #: (T, N) bool: s_{t+1} is terminal
    truncated: torch.Tensor  #: (T, N) bool: the episode was cut after this step (time limit)
    next_obs: torch.Tensor  #: (T, N, obs_dim) s_{t+1}: the final observation where done
    valid: torch.Tensor  #: (T, N) bool: the row belongs to the batch (False past a quota)
    episode_step: torch.Tensor  #: (T, N) int64: t within the row's episode (0 at its start)
    values: torch.Tensor | None = None  #: (T, N) V(s_t) if a value net was given
    next_values: torch.Tensor | None = None  #: (T, N) V(s_{t+1}): bootstrap at cuts
    #: returns and lengths (from RecordEpisodeStatistics) of the episodes that ended in a valid
    #: row, in the order they ended; ``episode_ends[i] = (t, n)`` is that row.
    episode_returns: torch.Tensor = field(default_factory=lambda: torch.zeros(0))
    episode_lengths: torch.Tensor = field(default_factory=lambda: torch.zeros(0, dtype=torch.long))
    episode_ends: torch.Tensor = field(
        default_factory=lambda: torch.zeros(0, 2, dtype=torch.long))

    @property
    def num_steps(self) -> int:
        """T, the number of vector steps."""
        return self.rewards.shape[0]

    @property
    def num_envs(self) -> int:
        """N, the number of sub-environments."""
        return self.rewards.shape[1]

    @property
    def env_steps(self) -> int:
        """Transitions simulated for this batch, T * N (valid or not)."""
        return self.rewards.numel()

    @property
    def dones(self) -> torch.Tensor:
        """(T, N) bool: the episode ended at this row (terminated or truncated)."""
        return self.terminated | self.truncated


def _find_episode_statistics(envs) -> bool:
    env = envs
    while isinstance(env, VectorWrapper):
        if isinstance(env, RecordEpisodeStatistics):
            return True
        env = env.env
    return False


class Collector:
    """Runs a policy in a SAME_STEP vector env (see :func:`make_envs`) and returns Batches.

    ``seed`` seeds the first reset (sub-environment i gets seed + i); later resets continue
    each sub-environment's own random stream, so a run is reproducible from ``seed`` and the
    torch seed that drives the policy's sampling. A policy is any object with ``dist(obs)``
    returning a ``torch.distributions`` distribution (:mod:`pgbook.nets`).
    """

    def __init__(self, envs: VectorEnv, seed: int = 0) -> None:
        if not isinstance(envs, VectorEnv):
            raise ValueError(f"envs must be a gymnasium VectorEnv, got {type(envs).__name__}; "
                             "build one with pgbook.rollout.make_envs")
        mode = envs.metadata.get("autoreset_mode")
        if mode != AutoresetMode.SAME_STEP:
            raise ValueError(f"envs must use autoreset_mode=SAME_STEP, got {mode}; with "
                             "NEXT_STEP every episode end is followed by a non-transition "
                             "(see the pgbook.rollout docstring); build envs with make_envs")
        if not _find_episode_statistics(envs):
            raise ValueError("envs must be wrapped in "
                             "gymnasium.wrappers.vector.RecordEpisodeStatistics")
        self.envs = envs
        self.seed = V.positive_int(seed, "seed", minimum=0)
        self.num_envs = envs.num_envs
        self._seeded = False
        self._obs: np.ndarray | None = None
        self._episode_step = np.zeros(self.num_envs, dtype=np.int64)
        self._discrete = isinstance(envs.single_action_space, gym.spaces.Discrete)

    def _reset(self) -> None:
        seed = None if self._seeded else self.seed
        self._obs, _ = self.envs.reset(seed=seed)
        self._seeded = True
        self._episode_step[:] = 0

    def _check_args(self, policy, value) -> None:
        if not callable(getattr(policy, "dist", None)):
            raise ValueError("policy must have a dist(obs) method returning a "
                             "torch.distributions distribution (see pgbook.nets)")
        if value is not None and not callable(value):
            raise ValueError("value must be callable: obs (B, obs_dim) -> V(s) (B,)")

    def _run(self, policy, value, num_steps: int | None, quota: np.ndarray | None,
             max_steps: int) -> Batch:
        """Step all sub-environments: ``num_steps`` times, or until each has met its quota."""
        envs, N = self.envs, self.num_envs
        cols: dict[str, list] = {k: [] for k in ("obs", "actions", "logp", "rewards", "term",
                                                 "trunc", "next_obs", "valid", "step")}
        finished = np.zeros(N, dtype=np.int64)  # episodes completed per sub-environment
        ep_returns, ep_lengths, ep_ends = [], [], []
        low = high = None
        if not self._discrete:
            low, high = envs.single_action_space.low, envs.single_action_space.high
        t = 0
        while True:
            if num_steps is not None and t == num_steps:
                break
            if quota is not None and (finished >= quota).all():
                break
            if t * N >= max_steps:
                raise RuntimeError(f"episodes did not finish within max_steps={max_steps} env "
                                   "steps; does the environment have a time limit?")
            obs = torch.as_tensor(self._obs, dtype=torch.float32)
            with torch.no_grad():
                dist = policy.dist(obs)
                action = dist.sample()
                logp = dist.log_prob(action)
            env_action = action.numpy()
            if not self._discrete:  # act within the bounds; keep the sampled a for log pi(a|s)
                env_action = np.clip(env_action, low, high)
            next_obs, reward, term, trunc, info = envs.step(env_action)
            done = term | trunc
            true_next = np.array(next_obs, copy=True)
            if done.any():  # SAME_STEP: next_obs is already the reset obs; s_{t+1} is in info
                for n in np.flatnonzero(info["_final_obs"]):
                    true_next[n] = info["final_obs"][n]
            valid = np.ones(N, dtype=bool) if quota is None else finished < quota
            if "episode" in info:
                for n in np.flatnonzero(info["_episode"] & valid):
                    ep_returns.append(float(info["episode"]["r"][n]))
                    ep_lengths.append(int(info["episode"]["l"][n]))
                    ep_ends.append((t, int(n)))
            for key, x in (("obs", obs), ("actions", action), ("logp", logp),
                           ("rewards", reward), ("term", term), ("trunc", trunc),
                           ("next_obs", true_next), ("valid", valid),
                           ("step", self._episode_step.copy())):
                cols[key].append(torch.as_tensor(x))
            finished += done
            self._episode_step = np.where(done, 0, self._episode_step + 1)
            self._obs = next_obs
            t += 1

        batch = Batch(
            obs=torch.stack(cols["obs"]),
            actions=torch.stack(cols["actions"]),
            logp=torch.stack(cols["logp"]),
            rewards=torch.stack(cols["rewards"]).to(torch.float32),
            terminated=torch.stack(cols["term"]).to(torch.bool),
            truncated=torch.stack(cols["trunc"]).to(torch.bool),
            next_obs=torch.stack(cols["next_obs"]).to(torch.float32),
            valid=torch.stack(cols["valid"]),
            episode_step=torch.stack(cols["step"]).to(torch.long),
            episode_returns=torch.tensor(ep_returns, dtype=torch.float32),
            episode_lengths=torch.tensor(ep_lengths, dtype=torch.long),
            episode_ends=torch.tensor(ep_ends, dtype=torch.long).reshape(-1, 2),
        )
        if value is not None:
            with torch.no_grad():
                T = batch.num_steps
                batch.values = value(batch.obs.reshape(T * N, -1)).reshape(T, N)
                batch.next_values = value(batch.next_obs.reshape(T * N, -1)).reshape(T, N)
        return batch

    def collect_steps(self, policy, num_steps: int, value=None) -> Batch:
        """``num_steps`` steps of every sub-environment, continuing the episodes in progress.

        The first call resets the envs with the collector's seed. All rows are valid. With a
        value net, ``values`` and ``next_values`` are filled (bootstrap for truncated rows and
        for the episodes still running at the end of the batch).
        """
        self._check_args(policy, value)
        V.positive_int(num_steps, "num_steps")
        if self._obs is None:
            self._reset()
        return self._run(policy, value, num_steps, None, max_steps=num_steps * self.num_envs)

    def collect_episodes(self, policy, episodes: int, value=None, *,
                         max_steps: int = 10_000_000) -> Batch:
        """``episodes`` whole episodes from freshly reset sub-environments.

        Sub-environment n runs ``episodes // N`` episodes, plus one for the first
        ``episodes % N`` of them. Its rows after its last episode are ``valid=False``; the batch
        ends when every sub-environment has met its quota, so every valid row belongs to a
        complete episode (terminated or truncated by the env's time limit). Raises
        ``RuntimeError`` after ``max_steps`` env steps without finishing.
        """
        self._check_args(policy, value)
        V.positive_int(episodes, "episodes")
        if episodes < self.num_envs:
            raise ValueError(f"episodes must be >= num_envs={self.num_envs} (each "
                             f"sub-environment runs at least one episode), got {episodes}")
        V.positive_int(max_steps, "max_steps")
        quota = np.full(self.num_envs, episodes // self.num_envs)
        quota[: episodes % self.num_envs] += 1
        self._reset()
        return self._run(policy, value, None, quota, max_steps)
