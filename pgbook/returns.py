"""Returns of reward sequences: the discounted return R(tau) of (0.1) and the reward-to-go.

Rewards are indexed from the step that earns them: ``rewards[..., t]`` is r_{t+1}, the reward
received after taking a_t in s_t, as in the source article's trajectory
tau = (s_0, a_0, r_1, s_1, ..., a_{T-1}, r_T, s_T).

Two layouts
-----------
* **Per trajectory, (N, T) or (T,)**: :func:`discounted_return` and :func:`reward_to_go`.
  Row i is one whole trajectory from its first step; every row has the same length T (pad with
  zero rewards and a mask for shorter episodes). This is the layout of the tabular MDP.
* **Time-major rollouts, (T, N) or (T,)**: :func:`reward_to_go_batched`,
  :func:`episode_return_batched` and :func:`discount_by_step`. Column n is the stream of
  transitions of sub-environment n of a vector env (:mod:`pgbook.rollout`); several episodes
  follow one another in a column. Row t of column n is a *real* transition
  (s_t, a_t, r_{t+1}, s_{t+1}); the flags say how it ended:

  - ``terminated[t, n]``: s_{t+1} is terminal. Nothing follows: the return after it is 0.
  - ``truncated[t, n]``: the episode was cut after this step (a time limit). The return after
    it is V(s_{t+1}), taken from ``bootstrap[t, n]`` when given, else 0 (then the result is the
    return actually observed, which underestimates the return of the unfinished episode).
  - both flags set: terminated wins (no bootstrap).
  - the row after a terminated or truncated row starts a new episode; returns never cross it.
  - the last row of the batch: an episode still running there is cut off by the batch like a
    truncated one and bootstraps from ``bootstrap[T-1, n]`` when given.

  ``bootstrap[t, n]`` is the value V(s_{t+1}) of each row's *next* observation; it is read only
  where the episode is cut (truncated, or the last row), so a rollout can pass the values of
  all next observations. The generalised advantage estimate of chapter 6 uses the same layout
  and the same (T, N) next values.
"""

from __future__ import annotations

import torch

from . import _validate as V

__all__ = [
    "discount_by_step",
    "discounted_return",
    "episode_return_batched",
    "reward_to_go",
    "reward_to_go_batched",
]


def _discounts(gamma: float, length: int, like: torch.Tensor) -> torch.Tensor:
    return gamma ** torch.arange(length, dtype=like.dtype, device=like.device)


def discounted_return(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    r"""R(tau) = sum_{t=0}^{T-1} gamma^t r_{t+1}   (the return inside (0.1)).

    ``rewards`` has shape (T,) or (N, T); the result has shape () or (N,).
    """
    V.tensor(rewards, "rewards", ndim=(1, 2))
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    return (rewards * _discounts(gamma, rewards.shape[-1], rewards)).sum(-1)


def reward_to_go(rewards: torch.Tensor, gamma: float, *,
                 discount_from_start: bool = False) -> torch.Tensor:
    r"""The reward-to-go at every step t, shape like ``rewards`` ((T,) or (N, T), per trajectory).

    * ``discount_from_start=False`` (the usual code): G_t = sum_{k>=t} gamma^{k-t} r_{k+1}.
    * ``discount_from_start=True`` (what the exact gradient weights step t by):
      gamma^t G_t = sum_{k>=t} gamma^k r_{k+1}.

    Only the second makes E[sum_t grad log pi(a_t|s_t) Psi_t] equal grad J when gamma < 1
    (chapter 3, "In the source").
    """
    V.tensor(rewards, "rewards", ndim=(1, 2))
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    T = rewards.shape[-1]
    out = torch.empty_like(rewards)
    running = torch.zeros_like(rewards[..., 0])
    for t in range(T - 1, -1, -1):
        running = rewards[..., t] + gamma * running
        out[..., t] = running
    if discount_from_start:
        out = out * _discounts(gamma, T, rewards)
    return out


def _check_batched(rewards, terminated, truncated, gamma, bootstrap):
    """Validate the time-major layout shared by the ``*_batched`` functions."""
    V.tensor(rewards, "rewards", ndim=(1, 2))
    if rewards.shape[0] == 0:
        raise ValueError("rewards must have at least one time step, got shape "
                         f"{tuple(rewards.shape)}")
    for name, flag in (("terminated", terminated), ("truncated", truncated)):
        V.tensor(flag, name, floating=False)
        if flag.dtype != torch.bool:
            raise ValueError(f"{name} must have dtype torch.bool, got {flag.dtype}")
    V.same_shape(rewards=rewards, terminated=terminated, truncated=truncated)
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    if bootstrap is not None:
        V.tensor(bootstrap, "bootstrap")
        V.same_shape(rewards=rewards, bootstrap=bootstrap)
        if bootstrap.dtype != rewards.dtype:
            raise ValueError(f"bootstrap must have the dtype of rewards ({rewards.dtype}), "
                             f"got {bootstrap.dtype}")
    return gamma


def reward_to_go_batched(rewards: torch.Tensor, terminated: torch.Tensor,
                         truncated: torch.Tensor, gamma: float, *,
                         bootstrap: torch.Tensor | None = None) -> torch.Tensor:
    r"""The reward-to-go G_t of every row of a time-major rollout, shape (T, N) or (T,).

    Within an episode, G_t = r_{t+1} + gamma G_{t+1}, computed backwards from the episode's end:

        G_t = r_{t+1}                               if the episode terminated at step t,
        G_t = r_{t+1} + gamma * bootstrap_t         if it was truncated at t (or t is the last
                                                    row of the batch), bootstrap_t = V(s_{t+1}),
        G_t = r_{t+1} + gamma * G_{t+1}             otherwise.

    Without ``bootstrap`` the cut-off episodes use 0 in place of V(s_{t+1}). With gamma = 1
    and whole episodes this is the undiscounted reward-to-go, the weight of the estimator that
    drops past rewards from (0.7) (chapter 5). See the module docstring for the layout.
    """
    gamma = _check_batched(rewards, terminated, truncated, gamma, bootstrap)
    T = rewards.shape[0]
    done = terminated | truncated
    # What follows row t inside its episode: gamma * G_{t+1}, or gamma * V(s_{t+1}) at a cut.
    cut_value = torch.zeros_like(rewards) if bootstrap is None else bootstrap * (~terminated)
    out = torch.empty_like(rewards)
    following = cut_value[T - 1]  # the batch ends: every running episode is cut here
    for t in range(T - 1, -1, -1):
        if t < T - 1:
            following = torch.where(done[t], cut_value[t], out[t + 1])
        out[t] = rewards[t] + gamma * following
    return out


def episode_return_batched(rewards: torch.Tensor, terminated: torch.Tensor,
                           truncated: torch.Tensor, gamma: float, *,
                           bootstrap: torch.Tensor | None = None) -> torch.Tensor:
    r"""R(tau) of the episode each row belongs to, broadcast over its rows, shape like ``rewards``.

    R(tau) = sum_{t=0}^{T-1} gamma^t r_{t+1} is the weight of every step in the REINFORCE
    estimator (0.7)/(0.8); it equals the reward-to-go G_0 at the episode's first row. An episode
    starts at row 0 or after a terminated/truncated row. An episode that was already running
    when the batch began is counted from row 0 only, so pass whole episodes
    (:meth:`pgbook.rollout.Collector.collect_episodes`) when R(tau) itself is wanted.
    Cut-off episodes bootstrap as in :func:`reward_to_go_batched`.
    """
    G = reward_to_go_batched(rewards, terminated, truncated, gamma, bootstrap=bootstrap)
    done = terminated | truncated
    out = torch.empty_like(G)
    out[0] = G[0]
    for t in range(1, G.shape[0]):
        out[t] = torch.where(done[t - 1], G[t], out[t - 1])
    return out


def discount_by_step(values: torch.Tensor, gamma: float,
                     episode_step: torch.Tensor) -> torch.Tensor:
    r"""gamma^t * values_t, where t = ``episode_step`` is each row's time step within its episode.

    Applied to the reward-to-go G_t it gives gamma^t G_t = sum_{k>=t} gamma^k r_{k+1}: the weight
    the exact gradient of (0.1) gives step t when gamma < 1, the time-major counterpart of
    ``reward_to_go(..., discount_from_start=True)`` (chapter 3, "In the source"). Rollouts record
    ``episode_step`` (:class:`pgbook.rollout.Batch`), because a batch may begin mid-episode.
    """
    V.tensor(values, "values")
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    V.tensor(episode_step, "episode_step", floating=False)
    dtype = episode_step.dtype
    if dtype.is_floating_point or dtype.is_complex or dtype == torch.bool:
        raise ValueError(f"episode_step must have an integer dtype, got {episode_step.dtype}")
    V.same_shape(values=values, episode_step=episode_step)
    if bool((episode_step < 0).any()):
        raise ValueError("episode_step must be >= 0 everywhere")
    return values * torch.pow(torch.as_tensor(gamma, dtype=values.dtype), episode_step)
