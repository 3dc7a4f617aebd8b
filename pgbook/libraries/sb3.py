r"""Stable-Baselines3 2.9.2's advantage estimation, called on the book's inputs (the appendix).

* :func:`sb3_gae`: SB3's own GAE, ``stable_baselines3/common/buffers.py,
  RolloutBuffer.compute_returns_and_advantage``, on a rollout written into a real
  ``RolloutBuffer`` in SB3's layout (``episode_starts[t] = 1`` on the row *after* a done);
* :func:`sb3_gae_fn`: the same, in the signature :func:`pgbook.conformance.check_gae` expects
  (pgbook's flags; a truncated row gets SB3's time-limit bootstrap in its reward);
* :func:`compare_gae`: SB3's buffer against :func:`pgbook.returns.gae` on many random
  rollouts, with or without truncations, and the plausible mistakes;
* :func:`compare_collect_rollouts`: SB3's real ``OnPolicyAlgorithm.collect_rollouts``
  (``stable_baselines3/common/on_policy_algorithm.py``) on a scripted two-env ``DummyVecEnv``
  with terminations and ``TimeLimit`` truncations inside the rollout, against pgbook's GAE
  recomputed from the transitions a wrapper recorded.

SB3 convention (``compute_returns_and_advantage``): with ``nnt_t = 1 - episode_starts[t+1]``
(``1 - dones`` at the last row) and ``V'_t = values[t+1]`` (``last_values`` at the last row),

    delta_t = r_t + gamma V'_t nnt_t - V_t,   A_t = delta_t + gamma lambda nnt_t A_{t+1},
    returns = A + V.

The buffer has one "done" flag: a time-limit truncation is handled upstream, in
``collect_rollouts``, by ``r_t <- r_t + gamma V(s_final)`` on the truncated row (only when
``infos["TimeLimit.truncated"]``, which ``DummyVecEnv.step_wait`` sets to ``truncated and not
terminated``). Then delta_t = r_t + gamma V(s_final) - V_t, pgbook's truncated-row TD error,
and the recursion is cut at the row in both: the advantages are identical in exact arithmetic.

Tolerance (float32; the buffer stores float32 and computes in float32). With u = 2^-24, each
row costs 3 roundings for delta and 3 for the recursion (gamma*lambda, the product, the sum),
so an advantage of an episode of length <= T carries <= (3T + 3) u S of rounding, S =
sum over the column of (|r| + |V| + |V'|) (Higham, *Accuracy and Stability*, eq. 3.4-type
bound); storing r, V, V' in float32 adds <= u S, the reward + gamma V(s_final) of a
truncated row <= u S, and returns = A + V one rounding u |A + V|. :func:`gae_tolerance`
returns (3T + 5) u S per column (plus u |returns| for the returns); pgbook's float64 side
adds ~T 2^-53 S, below float32's resolution, and is left out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .. import _validate as V
from ..returns import gae
from . import torch_defaults

__all__ = ["SCRIPTS", "TIME_LIMIT", "U32", "GaeComparison", "RolloutComparison",
           "compare_collect_rollouts", "compare_gae", "gae_tolerance", "sb3_gae", "sb3_gae_fn"]

#: unit roundoff of float32, 2^-24
U32 = 2.0 ** -24
GAE_VARIANTS = ("correct", "crosses_boundary", "truncation_as_termination")


@dataclass(frozen=True)
class GaeComparison:
    """SB3's advantages next to pgbook's on the same rollouts (time-major, stacked over the
    rollouts along dim 0 of each column block), the max error and the derived tolerance."""

    check: str
    variant: str
    library: torch.Tensor
    reference: torch.Tensor
    max_error: float    #: max |A_sb3 - A_pgbook| over every row
    tolerance: float    #: the smallest column's bound (gae_tolerance)
    advantage_ratio: float  #: max over columns of (max error in the column) / (its bound)
    returns_ratio: float    #: the same for the returns (bound + u |returns|)
    n_rollouts: int

    @property
    def ratio(self) -> float:
        """The worst error over its bound, advantages and returns: passed iff <= 1."""
        return max(self.advantage_ratio, self.returns_ratio)

    @property
    def passed(self) -> bool:
        """Every column's advantages (and returns) within its derived float32 bound."""
        return self.ratio <= 1.0

    def __str__(self) -> str:
        mark = "agrees" if self.passed else "DISAGREES"
        return (f"{self.check} [{self.variant}]: {mark}, max |A_sb3 - A_pgbook| = "
                f"{self.max_error:.1e} (<= {self.advantage_ratio:.1e} x its column's bound; "
                f"smallest bound {self.tolerance:.1e}; {self.n_rollouts} rollouts)")


def gae_tolerance(rewards: torch.Tensor, values: torch.Tensor,
                  next_values: torch.Tensor) -> torch.Tensor:
    r"""The float32 bound (3T + 5) u S_n of the module docstring, one per column n (shape
    ``rewards.shape[1:]``): S_n = sum_t (|r| + |V| + |V'|) of column n, u = 2^-24."""
    V.tensor(rewards, "rewards", ndim=2)
    V.tensor(values, "values", ndim=2)
    V.tensor(next_values, "next_values", ndim=2)
    V.same_shape(rewards=rewards, values=values, next_values=next_values)
    T = rewards.shape[0]
    if T == 0:
        raise ValueError("rewards must have at least one row")
    S = (rewards.abs() + values.abs() + next_values.abs()).sum(0)
    return (3 * T + 5) * U32 * S


def _space():
    from gymnasium import spaces
    return (spaces.Box(-np.inf, np.inf, (1,), np.float32), spaces.Discrete(2))


@torch_defaults
def sb3_gae(rewards, values, episode_starts, last_values, dones, gamma: float,
            lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""SB3's ``RolloutBuffer.compute_returns_and_advantage(last_values, dones)`` (SB3 2.9.2)
    on a rollout in SB3's layout: ``rewards``, ``values``, ``episode_starts`` (T, N)
    (``episode_starts[t, n] = 1`` when row t starts an episode, i.e. row t - 1 was done),
    ``last_values`` and ``dones`` (N,) for the observation after the last row. The arrays are
    written into a real ``RolloutBuffer`` (float32). Returns (advantages, returns) as float64
    tensors (T, N) holding SB3's float32 numbers."""
    from stable_baselines3.common.buffers import RolloutBuffer

    rewards = V.tensor(rewards, "rewards", ndim=2)
    values = V.tensor(values, "values", ndim=2)
    starts = V.mask(episode_starts, "episode_starts", ndim=2)
    V.same_shape(rewards=rewards, values=values, episode_starts=starts)
    T, N = rewards.shape
    if T == 0 or N == 0:
        raise ValueError(f"rewards must be a non-empty (T, N) rollout, got {tuple(rewards.shape)}")
    last_values = V.tensor(last_values, "last_values", ndim=1)
    dones = V.mask(dones, "dones", ndim=1)
    if last_values.shape[0] != N or dones.shape[0] != N:
        raise ValueError(f"last_values and dones must have shape ({N},), got "
                         f"{tuple(last_values.shape)} and {tuple(dones.shape)}")
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    lam = V.number(lam, "lam", low=0.0, high=1.0)
    obs_space, act_space = _space()
    buf = RolloutBuffer(T, obs_space, act_space, device="cpu", gae_lambda=lam, gamma=gamma,
                        n_envs=N)
    buf.rewards[:] = rewards.numpy()
    buf.values[:] = values.numpy()
    buf.episode_starts[:] = starts.numpy()
    buf.compute_returns_and_advantage(last_values.to(torch.float32), dones.numpy())
    return (torch.from_numpy(buf.advantages.astype(np.float64)),
            torch.from_numpy(buf.returns.astype(np.float64)))


def _to_sb3(rewards, terminated, truncated, next_values, gamma):
    """pgbook's flags -> SB3's buffer inputs, as collect_rollouts builds them: the time-limit
    bootstrap r + gamma V(s_final) on rows truncated and not terminated; done = either flag;
    episode_starts[t + 1] = done[t] (row 0: 0, read by nothing)."""
    bootstrap = truncated & ~terminated
    r = torch.where(bootstrap, rewards + gamma * next_values, rewards)
    done = terminated | truncated
    starts = torch.cat([torch.zeros_like(done[:1]), done[:-1]])
    return r, starts, next_values[-1], done[-1]


@torch_defaults
def sb3_gae_fn(rewards, values, terminated, truncated, next_values, gamma, lam):
    r"""SB3's GAE in :func:`pgbook.conformance.check_gae`'s signature (time-major (T, N)):
    pgbook's ``terminated``/``truncated`` flags and ``next_values`` are turned into what
    ``collect_rollouts`` hands the buffer (see :func:`_to_sb3`), then :func:`sb3_gae` runs.
    SB3 reads ``values[t + 1]`` (not ``next_values[t]``) inside an episode: the battery's
    next_values equal values[t + 1] there. Returns SB3's advantages (float64 tensor)."""
    rewards = V.tensor(rewards, "rewards", ndim=2)
    V.tensor(next_values, "next_values", ndim=2)
    terminated = V.mask(terminated, "terminated", ndim=2)
    truncated = V.mask(truncated, "truncated", ndim=2)
    V.same_shape(rewards=rewards, next_values=next_values, terminated=terminated,
                 truncated=truncated)
    if rewards.shape[0] == 0:
        raise ValueError("rewards must have at least one row")
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    r, starts, last, dones = _to_sb3(rewards, terminated, truncated, next_values, gamma)
    return sb3_gae(r, values, starts, last, dones, gamma, lam)[0]


def _pgbook_gae(variant, r, v, term, trunc, nv, gamma, lam):
    """pgbook's side, correct or with one of the plausible mistakes."""
    if variant == "crosses_boundary":   # ignores every episode end: runs on across it
        none = torch.zeros_like(term)
        nxt = torch.cat([v[1:], nv[-1:]])
        return gae(r, v, none, none, gamma, lam, next_values=nxt)
    if variant == "truncation_as_termination":   # no bootstrap at a time limit
        return gae(r, v, term | trunc, torch.zeros_like(trunc), gamma, lam, next_values=nv)
    return gae(r, v, term, trunc, gamma, lam, next_values=nv)


def _random_rollout(g, T, N, truncation):
    """Float32-representable rewards and values in [-1, 1], episode ends at random rows
    (probability 0.2 per row; with ``truncation`` half of them truncated, some both)."""
    def rnd(*shape):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1).float().double()
    r, v = rnd(T, N), rnd(T, N)
    ends = torch.rand(T, N, generator=g) < 0.2
    kind = torch.rand(T, N, generator=g)
    term = ends & ((kind < 0.5) | (not truncation))
    trunc = ends & (kind >= 0.4) & truncation
    nv = torch.cat([v[1:], rnd(1, N)])
    nv = torch.where(ends, 2 * rnd(T, N), nv)   # V(s_final) where an episode ended
    return r, v, term, trunc, nv


@torch_defaults
def compare_gae(*, n_rollouts: int = 50, T: int = 16, n_envs: int = 4, gamma: float = 0.99,
                lam: float = 0.95, truncation: bool = False, variant: str = "correct",
                seed: int = 0) -> GaeComparison:
    r"""SB3's ``RolloutBuffer.compute_returns_and_advantage`` against pgbook's
    :func:`~pgbook.returns.gae` on ``n_rollouts`` random (T, n_envs) rollouts with several
    episodes ending inside each. ``truncation=True`` makes some ends time-limit truncations:
    SB3 then gets collect_rollouts' r + gamma V(s_final) and a done, pgbook the truncated flag
    and ``next_values`` (the module docstring shows the two are the same algebra). pgbook's
    ``variant``: "correct"; "crosses_boundary" (GAE that ignores episode ends) or
    "truncation_as_termination" (no bootstrap at a time limit), the mistakes that must fail.
    Tolerance: :func:`gae_tolerance` per column (``ratio`` = worst error / its bound)."""
    n_rollouts = V.positive_int(n_rollouts, "n_rollouts")
    T = V.positive_int(T, "T", minimum=2)
    n_envs = V.positive_int(n_envs, "n_envs", minimum=2)
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    lam = V.number(lam, "lam", low=0.0, high=1.0)
    truncation = V.flag(truncation, "truncation")
    variant = V.choice(variant, "variant", GAE_VARIANTS)
    g = torch.Generator().manual_seed(V.positive_int(seed, "seed", minimum=0))
    libs, refs, worst, worst_ret, tol_min, abs_err = [], [], 0.0, 0.0, float("inf"), 0.0
    for _ in range(n_rollouts):
        r, v, term, trunc, nv = _random_rollout(g, T, n_envs, truncation)
        r32, starts, last, dones = _to_sb3(r, term, trunc, nv, gamma)
        adv, ret = sb3_gae(r32, v, starts, last, dones, gamma, lam)
        ref = _pgbook_gae(variant, r, v, term, trunc, nv, gamma, lam)
        tol = gae_tolerance(r, v, nv)
        err = ((adv - ref).abs().max(0).values / tol).max().item()
        ret_err = ((ret - ref - v).abs().max(0).values
                   / (tol + U32 * (ref + v).abs().max(0).values)).max().item()
        worst, worst_ret = max(worst, err), max(worst_ret, ret_err)
        tol_min = min(tol_min, tol.min().item())
        abs_err = max(abs_err, (adv - ref).abs().max().item())
        libs.append(adv)
        refs.append(ref)
    return GaeComparison("SB3 RolloutBuffer GAE vs pgbook.returns.gae"
                         + (" (truncations)" if truncation else ""), variant,
                         torch.cat(libs), torch.cat(refs), abs_err, tol_min, worst, worst_ret,
                         n_rollouts)


# ---- the real collect_rollouts on a scripted env -------------------------------------------

#: per env: the scripted episode lengths (the env terminates after that many steps); with
#: the TimeLimit of 5 a script longer than 5 is truncated, and a script of exactly 5 ends
#: terminated *and* truncated (DummyVecEnv then reports no time limit: no bootstrap).
SCRIPTS = ((3, 7, 2, 5, 9, 4, 8), (6, 1, 5, 4, 9, 2, 3))
TIME_LIMIT = 5


def _scripted_env(episodes, log):
    import gymnasium as gym

    class Scripted(gym.Env):
        """Deterministic: obs = (t / 4, k / 8, 1), reward = (1 + t + 2 k mod 5) / 8 (exact
        in float32), terminates after episodes[k] steps; the action is ignored."""
        observation_space = gym.spaces.Box(-10.0, 10.0, (3,), np.float32)
        action_space = gym.spaces.Discrete(2)

        def __init__(self):
            self.k, self.t = -1, 0

        def _obs(self):
            return np.array([self.t / 4, (self.k % 16) / 8, 1.0], np.float32)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.k, self.t = self.k + 1, 0
            return self._obs(), {}

        def step(self, action):
            reward = (1 + (self.t + 2 * self.k) % 5) / 8
            self.t += 1
            done = self.t >= episodes[self.k % len(episodes)]
            return self._obs(), reward, done, False, {}

    class Recorder(gym.Wrapper):
        """Records (s_t, r_{t+1}, terminated, truncated, s_{t+1}) of every real step."""

        def reset(self, **kw):
            self.obs, info = self.env.reset(**kw)
            return self.obs, info

        def step(self, action):
            obs, r, term, trunc, info = self.env.step(action)
            log.append((self.obs, r, term, trunc, obs))
            self.obs = obs
            return obs, r, term, trunc, info

    return Recorder(gym.wrappers.TimeLimit(Scripted(), TIME_LIMIT))


def _recompute(policy, logs, last_obs, gamma, lam, variant):
    """pgbook's GAE from the recorded transitions. V is SB3's own policy evaluated as
    collect_rollouts does: one batch of the N envs' observations per row (and for the
    observation after the last row), one observation at a time for a final observation."""
    T, N = len(logs[0]), len(logs)
    obs = np.stack([np.stack([logs[n][t][0] for n in range(N)]) for t in range(T)])
    with torch.no_grad():
        values = torch.stack([policy.predict_values(torch.as_tensor(o)).flatten()
                              for o in obs]).double()
        last = policy.predict_values(torch.as_tensor(last_obs)).flatten().double()
        finals = torch.tensor([[policy.predict_values(torch.as_tensor(logs[n][t][4][None]))
                                .item() for n in range(N)] for t in range(T)],
                              dtype=torch.float64)
    r = torch.tensor([[logs[n][t][1] for n in range(N)] for t in range(T)], dtype=torch.float64)
    term = torch.tensor([[logs[n][t][2] for n in range(N)] for t in range(T)])
    trunc = torch.tensor([[logs[n][t][3] for n in range(N)] for t in range(T)])
    nv = torch.cat([values[1:], last[None]])
    nv = torch.where(term | trunc, finals, nv)
    ref = _pgbook_gae(variant, r, values, term, trunc, nv, gamma, lam)
    return ref, values, r, term, trunc, nv


@dataclass(frozen=True)
class RolloutComparison(GaeComparison):
    """:class:`GaeComparison` of SB3's real collect_rollouts, with what the rollout held."""

    values_error: float = 0.0
    n_terminated: int = 0
    n_truncated: int = 0
    n_both: int = 0


@torch_defaults
def compare_collect_rollouts(*, n_steps: int = 24, gamma: float = 0.9, lam: float = 0.8,
                             value_bias: float = 3.0, variant: str = "correct",
                             seed: int = 0) -> RolloutComparison:
    r"""SB3's real ``OnPolicyAlgorithm.collect_rollouts`` of a PPO (``MlpPolicy``, net_arch
    [16, 16]) on a ``DummyVecEnv`` of two scripted envs (:data:`SCRIPTS`, ``TimeLimit`` 5:
    terminations, truncations and both inside the rollout), against pgbook's
    :func:`~pgbook.returns.gae` recomputed from the transitions a wrapper recorded (raw
    rewards, both flags, the final observations), with V from the same policy. The value
    head's bias is set to ``value_bias`` so that V(s_final), the bootstrap at issue, is not
    near 0 as at initialisation. ``variant`` as in :func:`compare_gae`. Tolerance:
    :func:`gae_tolerance` (the rewards k/8 are exact in float32). ``values_error`` is
    max |V recomputed - buffer.values| (the same float32 forward passes: expected 0)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    n_steps = V.positive_int(n_steps, "n_steps", minimum=2)
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    lam = V.number(lam, "lam", low=0.0, high=1.0)
    value_bias = V.number(value_bias, "value_bias")
    variant = V.choice(variant, "variant", GAE_VARIANTS)
    seed = V.positive_int(seed, "seed", minimum=0)
    logs = [[] for _ in SCRIPTS]
    venv = DummyVecEnv([lambda s=s, log=log: _scripted_env(s, log)
                        for s, log in zip(SCRIPTS, logs, strict=True)])
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=n_steps * len(SCRIPTS),
                gamma=gamma, gae_lambda=lam, seed=seed, device="cpu",
                policy_kwargs={"net_arch": [16, 16]})
    with torch.no_grad():
        model.policy.value_net.bias.fill_(value_bias)
    _, callback = model._setup_learn(n_steps * len(SCRIPTS))
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_steps)
    buf = model.rollout_buffer
    last_obs = model._last_obs
    ref, values, r, term, trunc, nv = _recompute(model.policy, logs, last_obs, gamma, lam,
                                                 variant)
    lib = torch.from_numpy(buf.advantages.astype(np.float64))
    ret = torch.from_numpy(buf.returns.astype(np.float64))
    tol = gae_tolerance(r, values, nv)
    err = ((lib - ref).abs().max(0).values / tol).max().item()
    ret_err = ((ret - ref - values).abs().max(0).values
               / (tol + U32 * (ref + values).abs().max(0).values)).max().item()
    values_error = (torch.from_numpy(buf.values.astype(np.float64)) - values).abs().max().item()
    tmin = tol.min().item()
    return RolloutComparison("SB3 collect_rollouts vs pgbook.returns.gae", variant, lib, ref,
                             (lib - ref).abs().max().item(), tmin, err, ret_err, 1,
                             values_error,
                             int((term & ~trunc).sum()), int((trunc & ~term).sum()),
                             int((term & trunc).sum()))
