"""REINFORCE: Monte-Carlo policy gradient on whole episodes, with optional baselines.

Chapters 4 and 5. One gradient step per batch of E whole episodes, ascending the estimator

    g = (1/E) sum_{i=1}^E sum_t grad_theta log pi_theta(a_t^i | s_t^i) Psi_t^i       (0.7)/(0.8)

with a weight Psi chosen by ``Config.weighting`` and ``Config.baseline``:

* ``weighting="return"``: Psi_t = R(tau^i), the whole episode's return, exactly (0.7)/(0.8).
* ``weighting="reward_to_go"``: Psi_t = G_t = sum_{k>=t} gamma^{k-t} r_{k+1}; past rewards
  dropped (chapter 5). What most code calls REINFORCE.
* ``weighting="discounted_reward_to_go"``: Psi_t = gamma^t G_t, the weight of the exact
  gradient of the discounted objective (chapter 3, "In the source"). The tabular trainer
  :mod:`pgbook.algos.tabular_pg` uses the same three names; with gamma = 1 the last two
  coincide.
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
then ``train``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from tqdm import tqdm

from .. import _validate as V
from ..history import History
from ..nets import ValueNet, policy_for
from ..returns import discount_by_step, episode_return_batched, reward_to_go_batched
from ..rollout import Collector
from .run import check_run_settings, checked_config, training_run

__all__ = ["Config", "train"]


@dataclass
class Config:
    """Settings of REINFORCE. The defaults are the plain estimator (0.8): Psi_t = R(tau).
    Checked when made: a bad value raises ``ValueError`` naming the field."""

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

    def __post_init__(self) -> None:
        check_run_settings(self)  # the fields every trainer shares
        if self.weighting not in ("return", "reward_to_go", "discounted_reward_to_go"):
            raise ValueError("weighting must be 'return', 'reward_to_go' or "
                             f"'discounted_reward_to_go', got {self.weighting!r}")
        if self.baseline not in ("none", "batch_mean", "value"):
            raise ValueError(f"baseline must be 'none', 'batch_mean' or 'value', "
                             f"got {self.baseline!r}")
        if not isinstance(self.normalize, bool):
            raise ValueError(f"normalize must be a bool, got {self.normalize!r}")
        V.positive_int(self.value_epochs, "value_epochs")
        V.positive_int(self.episodes_per_batch, "episodes_per_batch", minimum=self.num_envs)


def train(env_id: str = "CartPole-v1", config: Config | None = None, *,
          progress: bool = True) -> History:
    """Train a policy on ``env_id`` with REINFORCE; returns the :class:`pgbook.history.History`
    with models ``policy`` (and ``value`` for ``baseline="value"``) and, per iteration, the logs
    ``env_steps``, ``loss`` (the surrogate's negative), ``grad_norm`` (before clipping),
    ``entropy`` and ``value_loss`` (nan without a value baseline). Seeded by ``config.seed``,
    deterministic on CPU for a fixed thread count; the caller's random stream is left as it was.
    """
    config = checked_config(config, Config)
    with training_run(config.seed, env_id, config.num_envs) as envs:
        collector = Collector(envs, seed=config.seed)
        policy = policy_for(envs.single_observation_space, envs.single_action_space,
                            config.hidden)
        optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
        models = {"policy": policy}
        if config.baseline == "value":
            value = models["value"] = ValueNet(envs.single_observation_space.shape[0],
                                               config.hidden)
            value_optimizer = torch.optim.Adam(value.parameters(), lr=config.value_lr)
        max_norm = config.max_grad_norm if config.max_grad_norm is not None else float("inf")
        history = History(env_id, config, models=models)
        steps = 0
        bar = tqdm(total=config.total_steps, disable=not progress, desc=f"REINFORCE {env_id}")
        while steps < config.total_steps:
            # 1. Sample E whole episodes with the current policy.
            batch = collector.collect_episodes(policy, config.episodes_per_batch)
            history.add_batch_episodes(batch, steps)
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
            grad_norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), max_norm)
            optimizer.step()

            # 4. Fit the value baseline to the reward-to-go (regression, squared error).
            value_loss = float("nan")
            if config.baseline == "value":
                for _ in range(config.value_epochs):
                    v_loss = (value(obs) - G).pow(2).mean()
                    value_optimizer.zero_grad()
                    v_loss.backward()
                    value_optimizer.step()
                value_loss = v_loss.item()

            history.log(env_steps=steps, loss=loss.item(), grad_norm=grad_norm.item(),
                        entropy=dist.entropy().mean().item(), value_loss=value_loss)
            bar.update(min(batch.env_steps, config.total_steps - bar.n))
            bar.set_postfix(ret=f"{history.last_mean(config.target_window):.1f}")
            if history.target_reached():
                break
        bar.close()
        return history.finish(steps)
