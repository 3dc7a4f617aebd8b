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
    "batch_normalized_advantages",
    "discount_by_step",
    "discounted_return",
    "episode_return_batched",
    "gae",
    "group_advantages",
    "informative_groups",
    "reward_to_go",
    "reward_to_go_batched",
    "rloo_advantages",
]


def _discounts(gamma: float, length: int, like: torch.Tensor) -> torch.Tensor:
    return gamma ** torch.arange(length, dtype=like.dtype, device=like.device)


def _check_trajectories(rewards) -> None:
    """Validate the per-trajectory layout, (T,) or (N, T) with T >= 1 steps."""
    V.tensor(rewards, "rewards", ndim=(1, 2))
    if rewards.shape[-1] == 0:
        raise ValueError(f"rewards must have at least one step, got shape {tuple(rewards.shape)}")


def discounted_return(rewards: torch.Tensor, gamma: float) -> torch.Tensor:
    r"""R(tau) = sum_{t=0}^{T-1} gamma^t r_{t+1}   (the return inside (0.1)).

    ``rewards`` has shape (T,) or (N, T) with T >= 1; the result has shape () or (N,).
    """
    _check_trajectories(rewards)
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
    _check_trajectories(rewards)
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    V.flag(discount_from_start, "discount_from_start")
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
    V.tensor(values, "values", nonempty=True)
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    V.int_tensor(episode_step, "episode_step")
    V.same_shape(values=values, episode_step=episode_step)
    if bool((episode_step < 0).any()):
        raise ValueError("episode_step must be >= 0 everywhere")
    return values * torch.pow(torch.as_tensor(gamma, dtype=values.dtype), episode_step)


def gae(rewards: torch.Tensor, values: torch.Tensor, terminated: torch.Tensor,
        truncated: torch.Tensor, gamma: float, lam: float, *,
        next_values: torch.Tensor | None = None,
        last_value: torch.Tensor | None = None) -> torch.Tensor:
    r"""Generalised advantage estimates A_t^{GAE(gamma, lambda)} of a time-major rollout.

    With the TD error  delta_t = r_{t+1} + gamma * V(s_{t+1}) * (1 - terminated_t) - V(s_t),

        A_t = delta_t + gamma * lambda * (1 - done_t) * A_{t+1},   done_t = terminated or truncated,

    summed backwards inside each episode (Schulman et al. 2016; chapter 6). lambda = 0 gives the
    one-step TD error delta_t; lambda = 1 gives the Monte-Carlo advantage G_t - V(s_t), with G_t
    the reward-to-go bootstrapped where the episode is cut (:func:`reward_to_go_batched`).
    ``A_t + V(s_t)`` is the lambda-return, the usual critic target.

    Where V(s_{t+1}) comes from (see the module docstring for the layout):

    * ``next_values`` (T, ...) if given: V of every row's true next observation (the final
      observation where the episode ended), as :class:`pgbook.rollout.Batch` records it;
    * otherwise ``values[t + 1]`` for t < T - 1, and ``last_value`` (shape ``values.shape[1:]``)
      for the last row. A row truncated *inside* the batch then has no value for its final
      observation, and this raises ``ValueError`` rather than guessing.

    A terminated row never bootstraps. Returns a tensor shaped like ``rewards``.
    """
    gamma = _check_batched(rewards, terminated, truncated, gamma, None)
    lam = V.number(lam, "lam", low=0.0, high=1.0)
    V.tensor(values, "values")
    V.same_shape(rewards=rewards, values=values)
    T = rewards.shape[0]
    if next_values is not None:
        V.tensor(next_values, "next_values")
        V.same_shape(rewards=rewards, next_values=next_values)
    else:
        if last_value is None:
            raise ValueError("give last_value (V of the observation after the last row) "
                             "or next_values")
        if not isinstance(last_value, torch.Tensor):
            last_value = torch.as_tensor(last_value, dtype=values.dtype)
        V.tensor(last_value, "last_value")
        if tuple(last_value.shape) != tuple(values.shape[1:]):
            raise ValueError(f"last_value must have shape {tuple(values.shape[1:])}, got "
                             f"{tuple(last_value.shape)}")
        if bool((truncated[:-1] & ~terminated[:-1]).any()):
            raise ValueError("a row truncated inside the batch needs the value of its final "
                             "observation: pass next_values")
        next_values = torch.cat([values[1:], last_value.to(values.dtype)[None]], dim=0)
    not_terminal = (~terminated).to(values.dtype)
    continues = (~(terminated | truncated)).to(values.dtype)
    delta = rewards + gamma * next_values * not_terminal - values
    advantages = torch.empty_like(delta)
    running = torch.zeros_like(delta[0])
    for t in range(T - 1, -1, -1):
        running = delta[t] + gamma * lam * continues[t] * running
        advantages[t] = running
    return advantages


def group_advantages(rewards: torch.Tensor, eps: float = 1e-4, *, scale_by_std: bool = True,
                     unbiased: bool = False) -> torch.Tensor:
    r"""Group-relative advantages of GRPO (section 1.8 of the source; chapter 9).

    ``rewards`` has shape (num_groups, G): row j holds the rewards r_1..r_G of the G answers
    sampled for prompt q_j. Every answer's advantage is its reward measured against its own
    group, with no learned critic:

        A_i = (r_i - mean(r)) / (std(r) + eps)          (DeepSeekMath, Shao et al. 2024)

    * **std convention**: ``std`` is the population standard deviation over the G answers,
      sqrt((1/G) sum_i (r_i - mean)^2), so that with eps = 0 every group's advantages have
      mean 0 and mean square 1. ``unbiased=True`` divides by G - 1 instead (``torch.std``'s
      default, which TRL's GRPO trainer uses).
    * ``scale_by_std=False`` gives the Dr. GRPO advantage A_i = r_i - mean(r) (Liu et al.
      2025): no division, so groups whose rewards barely differ are not up-weighted.
    * A group whose rewards are all equal carries no signal: its advantages are exactly 0
      (never NaN, whatever eps, including eps = 0).

    The advantages sum to 0 in each group and do not change when every reward is shifted
    (r -> r + c) or, with eps = 0, scaled (r -> s r, s > 0); chapter 9 proves both in SymPy.
    Returns a tensor of the shape of ``rewards``.
    """
    _check_groups(rewards)
    eps = V.number(eps, "eps", low=0.0)
    V.flag(scale_by_std, "scale_by_std")
    V.flag(unbiased, "unbiased")
    centred, constant = _centre_groups(rewards)
    if not scale_by_std:
        return torch.where(constant, torch.zeros_like(centred), centred)
    std = rewards.std(dim=1, keepdim=True, correction=1 if unbiased else 0)
    # Equal rewards: the mean may differ from them in the last bit; the group's answer is 0.
    safe = torch.where(constant, torch.ones_like(std), std + eps)
    return torch.where(constant, torch.zeros_like(centred), centred / safe)


def _check_groups(rewards) -> None:
    V.tensor(rewards, "rewards", ndim=2)
    if rewards.shape[0] == 0:
        raise ValueError(f"rewards must have at least one group, got shape {tuple(rewards.shape)}")
    if rewards.shape[1] < 2:
        raise ValueError("each group needs at least 2 answers (rewards of shape (num_groups, G) "
                         f"with G >= 2), got shape {tuple(rewards.shape)}")


def _centre_groups(rewards: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """r - (the group's mean), and bool (num_groups, 1): the groups whose rewards are equal."""
    centred = rewards - rewards.mean(dim=1, keepdim=True)
    constant = (rewards == rewards[:, :1]).all(dim=1, keepdim=True)
    return centred, constant


def rloo_advantages(rewards: torch.Tensor) -> torch.Tensor:
    r"""REINFORCE leave-one-out advantages (Kool et al. 2019; Ahmadian et al. 2024; chapter 13):

        A_i = r_i - (1/(G-1)) sum_{j != i} r_j = (G/(G-1)) (r_i - mean(r)),

    for ``rewards`` of shape (num_groups, G), G >= 2. The baseline of answer i uses only the
    other answers, which are independent of o_i, so E[A_i grad log pi(o_i|q)] = grad J exactly:
    the group mean's baseline includes r_i itself and gives (1 - 1/G) grad J (chapter 13 proves
    both over all K^G groups of an answer model). Equal rewards give exactly 0.
    """
    _check_groups(rewards)
    G = rewards.shape[1]
    others = (rewards.sum(dim=1, keepdim=True) - rewards) / (G - 1)
    _, constant = _centre_groups(rewards)
    return torch.where(constant, torch.zeros_like(rewards), rewards - others)


def batch_normalized_advantages(rewards: torch.Tensor, eps: float = 1e-4) -> torch.Tensor:
    r"""REINFORCE++-baseline advantages (Hu 2025, arXiv 2501.03262; chapter 13): subtract each
    group's mean, then divide by the standard deviation over the *whole batch*:

        A~_i = r_i - mean(group of i),    A_i = A~_i / (std_{all answers}(A~) + eps),

    (population std over every answer of every group). Unlike GRPO's per-group std
    (:func:`group_advantages`), one scale for the batch: a group whose rewards barely differ is
    not up-weighted, so the direction of the summed gradient is the centred one's (Dr. GRPO's),
    only rescaled. ``rewards`` (num_groups, G), G >= 2. A batch of all-equal groups gives 0.
    """
    _check_groups(rewards)
    eps = V.number(eps, "eps", low=0.0)
    centred, constant = _centre_groups(rewards)
    centred = torch.where(constant, torch.zeros_like(centred), centred)
    std = centred.pow(2).mean().sqrt()
    if std.item() == 0:
        return centred
    return centred / (std + eps)


def informative_groups(rewards: torch.Tensor) -> torch.Tensor:
    r"""Bool (num_groups,): the groups whose rewards are not all equal (DAPO's dynamic sampling,
    Yu et al. 2025, eq. 11: keep a group only if 0 < #correct < G; chapter 13).

    A group with equal rewards has every advantage exactly 0 under GRPO, Dr. GRPO and RLOO
    (:func:`group_advantages`, :func:`rloo_advantages`): it adds nothing to the gradient's sum
    but, under a token or answer *mean*, it adds to the denominator.
    """
    _check_groups(rewards)
    return ~_centre_groups(rewards)[1][:, 0]
