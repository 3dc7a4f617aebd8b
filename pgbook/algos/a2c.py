"""A2C: synchronous advantage actor-critic (chapter 6).

Each iteration collects n = ``num_steps`` steps from each of N sub-environments with the
current policy (:meth:`pgbook.rollout.Collector.collect_steps`; episodes carry on from one
batch to the next) and takes ONE gradient step on

    L(theta, phi) = - (1/nN) sum_t log pi_theta(a_t|s_t) A_t                     actor, (0.12)
                    + c_v (1/nN) sum_t (V_phi(s_t) - (A_t + V_old(s_t)))^2       critic
                    - c_H (1/nN) sum_t H[pi_theta(. | s_t)]                      entropy bonus

The actor term is the sample version of (0.12) with the critic's advantage estimate A_t in
place of the true A(s_t, a_t), held constant. A_t comes from :func:`pgbook.returns.gae` with
the critic's values V_old recorded in the batch (``next_values`` bootstraps at time-limit
truncations and at the end of the batch, never at a termination):

* ``gae_lambda=1``: the n-step advantage of A3C/A2C (Mnih et al. 2016),
  A_t = r_{t+1} + gamma r_{t+2} + ... + gamma^{k-1} r_{t+k} + gamma^k V(s_{t+k}) - V(s_t),
  where t + k is the end of the batch or the episode, whichever comes first;
* ``gae_lambda < 1`` (default 0.95): GAE(gamma, lambda) within the batch (Schulman et al.
  2016).

The critic regresses V_phi(s_t) on the bootstrapped return A_t + V_old(s_t). Actor and critic
are separate networks (:func:`pgbook.nets.policy_for`, :class:`pgbook.nets.ValueNet`) updated by
one optimizer on the sum above, with the gradient norm clipped to ``max_grad_norm``.

As in every common implementation, the step weight gamma^t of the exact gradient is dropped
(chapter 3, "In the source"), so with gamma < 1 the update is not exactly the gradient of the
discounted objective; the advantage is that a batch may start mid-episode. Env steps count
every simulated transition, n N per iteration.

Measured and not taken (``python -m benchmarks a2c`` settings, one torch thread, 2-core AMD
EPYC, 2026-12-08; the default's median is 93,232 env steps over seeds 0-9 and 72,552 over
seeds 10-19, every seed reaching the target): the step size 3e-3 (79,120 on seeds 0-9;
65,336 on seeds 10-19, where one seed missed the target within 500k steps), 4e-3 (66,112 on
seeds 10-19, one missed), 1e-3 (113,728), hidden layers 32-32 (72,752, slowest seed 317,712)
or 128-128 (97,192, slowest 332,144), 8 sub-environments (75,272). The seeds spread too
widely (27,584 to 148,192 at the default) for ten of them to rank these. Read top to
bottom: ``Config``, then ``train``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from tqdm import tqdm

from .. import _validate as V
from ..history import History
from ..nets import ValueNet, policy_for
from ..returns import gae
from ..rollout import Collector
from .run import check_run_settings, checked_config, training_run

__all__ = ["Config", "train"]


@dataclass
class Config:
    """Settings of A2C. The defaults were tuned on CartPole-v1: a last-20 mean return of 475
    within 95k env steps for each of seeds 0-15, median about 56k (``python -m benchmarks
    a2c``). Stable-Baselines3's A2C with rl-zoo's CartPole settings is ``Config(num_envs=8,
    num_steps=5, gae_lambda=1.0, lr=7e-4, optimizer="rmsprop", normalize_advantage=False)``
    (``python -m benchmarks a2c_sb3``). Checked when made: a bad value raises ``ValueError``."""

    num_envs: int = 16  #: N sub-environments stepping in parallel
    num_steps: int = 8  #: n steps per sub-environment per update (the n of the n-step return)
    gamma: float = 0.99
    gae_lambda: float = 0.95  #: 1: n-step advantages; < 1: GAE(gamma, lambda)
    lr: float = 2e-3  #: step size of the optimizer (actor and critic share it)
    optimizer: Literal["adam", "rmsprop"] = "adam"
    vf_coef: float = 0.5  #: c_v, weight of the value loss
    ent_coef: float = 0.0  #: c_H, weight of the entropy bonus (0: none)
    max_grad_norm: float | None = 0.5  #: clip the global gradient norm (None: no clipping)
    normalize_advantage: bool = True  #: standardise A_t over the batch (not part of (0.12))
    hidden: tuple[int, ...] = (64, 64)  #: hidden widths of the actor and critic MLPs
    total_steps: int = 500_000  #: env-step budget (simulated transitions)
    target: float | None = None  #: stop once the mean of the last ``target_window`` returns >= it
    target_window: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        check_run_settings(self)  # the fields every trainer shares
        if self.optimizer not in ("adam", "rmsprop"):
            raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {self.optimizer!r}")
        V.number(self.vf_coef, "vf_coef", low=0.0)
        V.number(self.ent_coef, "ent_coef", low=0.0)


def train(env_id: str = "CartPole-v1", config: Config | None = None, *,
          progress: bool = True) -> History:
    """Train an actor and a critic on ``env_id`` with A2C; returns the
    :class:`pgbook.history.History` with models ``policy`` and ``value`` and, per update, the
    logs ``env_steps``, ``loss`` (the actor loss -mean(log pi A)), ``value_loss`` (the critic's
    squared error), ``entropy``, ``grad_norm`` (of actor and critic together, before clipping)
    and ``explained_variance`` (1 - Var[target - V] / Var[target] before the update).

    Seeded by ``config.seed`` and deterministic on CPU for a fixed thread count; the caller's
    random stream is left as it was, and the networks are float32 whatever its default dtype.
    """
    config = checked_config(config, Config)
    with training_run(config.seed, env_id, config.num_envs) as envs:
        collector = Collector(envs, seed=config.seed)
        policy = policy_for(envs.single_observation_space, envs.single_action_space,
                            config.hidden)
        value = ValueNet(envs.single_observation_space.shape[0], config.hidden)
        params = [*policy.parameters(), *value.parameters()]
        if config.optimizer == "rmsprop":  # the A2C paper's optimizer, with SB3's settings
            optimizer = torch.optim.RMSprop(params, lr=config.lr, alpha=0.99, eps=1e-5)
        else:
            optimizer = torch.optim.Adam(params, lr=config.lr)
        max_norm = config.max_grad_norm if config.max_grad_norm is not None else float("inf")
        history = History(env_id, config, models={"policy": policy, "value": value})
        steps = 0
        bar = tqdm(total=config.total_steps, disable=not progress, desc=f"A2C {env_id}")
        while steps < config.total_steps:
            # 1. n steps of every sub-environment, with V_old(s_t) and V_old(s_{t+1}) recorded.
            batch = collector.collect_steps(policy, config.num_steps, value=value)
            history.add_batch_episodes(batch, steps)
            steps += batch.env_steps

            # 2. Advantages A_t (n-step or GAE) and the critic's targets A_t + V_old(s_t).
            adv = gae(batch.rewards, batch.values, batch.terminated, batch.truncated,
                      config.gamma, config.gae_lambda, next_values=batch.next_values)
            targets = (adv + batch.values).flatten()
            adv = adv.flatten()
            if config.normalize_advantage:
                adv = (adv - adv.mean()) / (adv.std() + 1e-8)
            v_old = batch.values.flatten()
            explained = 1 - (targets - v_old).var() / targets.var().clamp_min(1e-12)

            # 3. One gradient step on actor loss + c_v critic loss - c_H entropy.
            obs, actions = batch.obs.flatten(0, 1), batch.actions.flatten(0, 1)
            dist = policy.dist(obs)
            actor_loss = -(dist.log_prob(actions) * adv).mean()
            critic_loss = (value(obs) - targets).pow(2).mean()
            entropy = dist.entropy().mean()
            loss = actor_loss + config.vf_coef * critic_loss - config.ent_coef * entropy
            optimizer.zero_grad()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            optimizer.step()

            history.log(env_steps=steps, loss=actor_loss.item(), value_loss=critic_loss.item(),
                        entropy=entropy.item(), grad_norm=grad_norm.item(),
                        explained_variance=explained.item())
            bar.update(min(batch.env_steps, config.total_steps - bar.n))
            if history.episode_returns:
                bar.set_postfix(ret=f"{history.last_mean(config.target_window):.1f}",
                                refresh=False)
            if history.target_reached():
                break
        bar.close()
        return history.finish(steps)
