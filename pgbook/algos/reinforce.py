"""REINFORCE: Monte-Carlo policy gradient on whole episodes, with optional baselines.

Chapters 4 and 5. One gradient step per batch of E whole episodes, ascending the estimator

    g = (1/E) sum_{i=1}^E sum_t grad_theta log pi_theta(a_t^i | s_t^i) Psi_t^i       (0.7)/(0.8)

with a weight Psi chosen by ``Config.weighting`` and ``Config.baseline``:

* ``weighting="return"``: Psi_t = R(tau^i), the whole episode's return, exactly (0.7)/(0.8).
* ``weighting="reward_to_go"``: Psi_t = G_t = sum_{k>=t} gamma^{k-t} r_{k+1}; past rewards
  dropped (chapter 5). What most code calls REINFORCE.
* ``weighting="discounted_reward_to_go"``: Psi_t = gamma^t G_t, the weight of the exact
  gradient of the discounted objective (chapter 3, "In the source"). (The tabular trainer
  ``pgbook.algos.tabular_pg`` calls this one "reward_to_go"; with gamma = 1 they coincide.)
* ``baseline``: subtract b(s_t) from the return part of Psi (before any gamma^t): ``"none"``;
  ``"batch_mean"``, the mean of Psi over the batch's steps (a constant; strictly it depends on
  the batch, an O(1/E) bias); ``"value"``, a learned V_phi(s_t) (:class:`pgbook.nets.ValueNet`),
  fitted to the reward-to-go by ``value_epochs`` Adam steps on the squared error after each
  policy step. E[grad log pi(a|s) b(s)] = 0, so no state-only baseline adds bias (chapter 5).
* ``normalize=True`` centres and scales Psi over the batch to mean 0, std 1 (common practice,
  not part of the estimator: it changes the step size from batch to batch).

Returns are Monte Carlo: an episode cut by the env's time limit keeps the return it observed
(the time limit is part of the task), so no value is bootstrapped here.

Episodes come from :meth:`pgbook.rollout.Collector.collect_episodes` (SAME_STEP vector env,
fixed per-env quotas, so long episodes are not under-sampled). Env steps count every simulated
transition, including those a sub-environment runs after its quota while the others finish
(about a third of them early in training with 8 envs and 8 episodes per batch; the transitions
actually used are ``sum(history.episode_lengths)``). Read top to bottom: ``Config``,
``History``, ``train``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from tqdm import tqdm

from .. import _validate as V
from ..nets import ValueNet, policy_for
from ..returns import discount_by_step, episode_return_batched, reward_to_go_batched
from ..rollout import Collector
from ._common import check_run_settings, run_trainer, trailing_means

__all__ = ["Config", "History", "train"]


@dataclass
class Config:
    """Settings of REINFORCE. The defaults are the plain estimator (0.8): Psi_t = R(tau)."""

    weighting: Literal["return", "reward_to_go", "discounted_reward_to_go"] = "return"
    baseline: Literal["none", "batch_mean", "value"] = "none"
    normalize: bool = False  #: standardise Psi over the batch (not part of (0.8))
    #: CartPole's episodes end (time limit 500): its objective is the undiscounted return
    gamma: float = 1.0
    lr: float = 1e-2  #: Adam step size for the policy (the alpha of (0.9), adapted by Adam)
    value_lr: float = 1e-2  #: Adam step size for the value baseline
    value_epochs: int = 5  #: value-net gradient steps per batch (baseline="value")
    episodes_per_batch: int = 8  #: E in (0.7)
    num_envs: int = 8  #: sub-environments stepping in parallel
    hidden: tuple[int, ...] = (32, 32)  #: hidden widths of the policy and value MLPs
    max_grad_norm: float | None = None  #: clip the policy gradient's norm (None: no clipping)
    total_steps: int = 150_000  #: env-step budget (simulated transitions)
    target: float | None = None  #: stop once the mean of the last ``target_window`` returns >= it
    target_window: int = 20
    seed: int = 0

    def validate(self) -> None:
        if self.weighting not in ("return", "reward_to_go", "discounted_reward_to_go"):
            raise ValueError("weighting must be 'return', 'reward_to_go' or "
                             f"'discounted_reward_to_go', got {self.weighting!r}")
        if self.baseline not in ("none", "batch_mean", "value"):
            raise ValueError(f"baseline must be 'none', 'batch_mean' or 'value', "
                             f"got {self.baseline!r}")
        if not isinstance(self.normalize, bool):
            raise ValueError(f"normalize must be a bool, got {self.normalize!r}")
        V.number(self.gamma, "gamma", low=0.0, high=1.0)
        V.number(self.lr, "lr", low=0.0, low_open=True)
        V.number(self.value_lr, "value_lr", low=0.0, low_open=True)
        V.positive_int(self.value_epochs, "value_epochs")
        V.positive_int(self.num_envs, "num_envs")
        V.positive_int(self.episodes_per_batch, "episodes_per_batch", minimum=self.num_envs)
        if self.max_grad_norm is not None:
            V.number(self.max_grad_norm, "max_grad_norm", low=0.0, low_open=True)
        check_run_settings(self)


@dataclass
class History:
    """What happened during training.

    Per finished episode (in the order they finished): ``episode_returns``,
    ``episode_lengths``, ``episode_steps`` (global env step at which it finished) and
    ``episode_times`` (wall seconds since the start, taken when its batch was collected).
    Per iteration: ``env_steps`` (cumulative, after the iteration), ``mean_return``, ``loss``
    (the surrogate's negative), ``grad_norm`` (before clipping), ``entropy``, ``value_loss``
    and ``wall`` (cumulative seconds).
    """

    env_id: str = ""
    config: Config | None = None
    episode_returns: list[float] = field(default_factory=list)
    episode_lengths: list[int] = field(default_factory=list)
    episode_steps: list[int] = field(default_factory=list)
    episode_times: list[float] = field(default_factory=list)
    env_steps: list[int] = field(default_factory=list)
    mean_return: list[float] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    grad_norm: list[float] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)
    value_loss: list[float] = field(default_factory=list)
    wall: list[float] = field(default_factory=list)
    wall_time: float = 0.0
    policy: torch.nn.Module | None = None
    value: torch.nn.Module | None = None

    def last_mean(self, k: int = 20) -> float:
        """Mean return of the last ``k`` finished episodes (nan if none finished)."""
        V.positive_int(k, "k")
        return float(np.mean(self.episode_returns[-k:])) if self.episode_returns else float("nan")

    def reached(self, target: float, window: int = 20) -> tuple[int, float] | None:
        """(env steps, seconds) when the mean of the last ``window`` returns first reached
        ``target``, or None if it never did."""
        V.number(target, "target")
        V.positive_int(window, "window")
        hits = np.flatnonzero(trailing_means(self.episode_returns, window) >= target)
        if len(hits) == 0:
            return None
        i = int(hits[0]) + window - 1
        return self.episode_steps[i], self.episode_times[i]

    def best_mean(self, window: int = 20) -> tuple[float, int] | None:
        """The best mean of ``window`` consecutive returns and the env step it was reached at."""
        V.positive_int(window, "window")
        means = trailing_means(self.episode_returns, window)
        if len(means) == 0:
            return None
        i = int(np.argmax(means))
        return float(means[i]), self.episode_steps[i + window - 1]


def train(env_id: str = "CartPole-v1", config: Config | None = None, *,
          progress: bool = True) -> History:
    """Train a policy on ``env_id`` with REINFORCE; returns the :class:`History`.

    Seeded by ``config.seed`` and deterministic on CPU for a fixed thread count. Torch's
    global random state is forked, so the caller's stream is left as it was.
    """
    return run_trainer(_train, env_id, config, Config, progress)


def _train(env_id: str, envs, config: Config, progress: bool) -> History:
    collector = Collector(envs, seed=config.seed)
    policy = policy_for(envs.single_observation_space, envs.single_action_space, config.hidden)
    optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
    value = value_optimizer = None
    if config.baseline == "value":
        value = ValueNet(envs.single_observation_space.shape[0], config.hidden)
        value_optimizer = torch.optim.Adam(value.parameters(), lr=config.value_lr)

    history = History(env_id=env_id, config=config, policy=policy, value=value)
    steps, start = 0, time.perf_counter()
    bar = tqdm(total=config.total_steps, disable=not progress, desc=f"REINFORCE {env_id}")
    while steps < config.total_steps:
        # 1. Sample E whole episodes with the current policy.
        batch = collector.collect_episodes(policy, config.episodes_per_batch)
        now = time.perf_counter() - start
        ends = batch.episode_ends
        history.episode_returns += batch.episode_returns.tolist()
        history.episode_lengths += batch.episode_lengths.tolist()
        history.episode_steps += (steps + (ends[:, 0] + 1) * batch.num_envs).tolist()
        history.episode_times += [now] * len(ends)
        steps += batch.env_steps

        # 2. The weights Psi_t of (0.7)/(0.8), on the batch's valid rows.
        flags = (batch.rewards, batch.terminated, batch.truncated, config.gamma)
        G = reward_to_go_batched(*flags)
        base = episode_return_batched(*flags) if config.weighting == "return" else G
        mask = batch.valid
        obs, actions = batch.obs[mask], batch.actions[mask]
        G, psi = G[mask], base[mask]
        if config.baseline == "batch_mean":
            psi = psi - psi.mean()
        elif config.baseline == "value":
            with torch.no_grad():
                psi = psi - value(obs)
        if config.weighting == "discounted_reward_to_go":
            psi = discount_by_step(psi, config.gamma, batch.episode_step[mask])
        if config.normalize:
            psi = (psi - psi.mean()) / (psi.std() + 1e-8)

        # 3. One gradient-ascent step on the surrogate (1/E) sum log pi(a_t|s_t) Psi_t.
        dist = policy.dist(obs)
        surrogate = (dist.log_prob(actions) * psi).sum() / config.episodes_per_batch
        loss = -surrogate
        optimizer.zero_grad()
        loss.backward()
        max_norm = config.max_grad_norm if config.max_grad_norm is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), max_norm)
        optimizer.step()

        # 4. Fit the value baseline to the reward-to-go (regression, squared error).
        value_loss = float("nan")
        if value is not None:
            for _ in range(config.value_epochs):
                v_loss = (value(obs) - G).pow(2).mean()
                value_optimizer.zero_grad()
                v_loss.backward()
                value_optimizer.step()
            value_loss = v_loss.item()

        history.env_steps.append(steps)
        history.mean_return.append(batch.episode_returns.mean().item())
        history.loss.append(loss.item())
        history.grad_norm.append(grad_norm.item())
        history.entropy.append(dist.entropy().mean().item())
        history.value_loss.append(value_loss)
        history.wall.append(time.perf_counter() - start)
        bar.update(min(batch.env_steps, config.total_steps - bar.n))
        bar.set_postfix(ret=f"{history.last_mean(config.target_window):.1f}")
        if (config.target is not None and len(history.episode_returns) >= config.target_window
                and history.last_mean(config.target_window) >= config.target):
            break
    bar.close()
    history.wall_time = time.perf_counter() - start
    return history
