"""PPO-Clip: several epochs of minibatch ascent on the clipped surrogate (chapter 8).

Each iteration collects T steps from N sub-environments with the current policy pi_old, then
maximises, for ``epochs`` passes over shuffled minibatches,

    L^CLIP(theta) = E_t[ min( r_t A_t, clip(r_t, 1 - eps, 1 + eps) A_t ) ]      (section 1.8)

with r_t = pi_theta(a_t|s_t) / pi_old(a_t|s_t) (:func:`pgbook.objectives.ppo_clip`), minus a
value loss and plus an optional entropy bonus. Its gradient is the source's PPO-Clip row,
E[grad log pi_theta(a_t|s_t) 1_not-clip r_t A_t]. The details that matter in practice
(Engstrom et al. 2020; Huang et al. 2022, "The 37 implementation details of PPO"):

* advantages A_t by GAE(gamma, lambda) over the time-major batch, with truncated episodes
  bootstrapped from V(s_{t+1}) and terminated ones not (chapter 6);
* advantages normalised to mean 0, std 1 *per minibatch* (``normalize_advantage``);
* value targets A_t + V_old(s_t), optionally clipped around V_old like the ratio
  (``clip_value``);
* an entropy bonus (``ent_coef``), global gradient-norm clipping (``max_grad_norm``),
  linear annealing of the learning rate and of eps to 0 over ``total_steps``;
* logged per iteration: the approximate KL E[(r - 1) - log r] (an unbiased, non-negative
  estimator of KL(pi_old || pi_theta)), two clip statistics (:func:`clip_counts`) and the
  explained variance of the value targets; per epoch, how far the policy has moved from
  pi_old on the whole batch (approximate KL and max |r - 1|: the clip bounds neither, chapter
  8). ``target_kl`` optionally stops the epochs early.

The two clip statistics differ. P(|r - 1| > eps), often logged as "clip fraction", counts every
ratio outside the clip range, also those on the pessimistic side (A > 0 with r < 1 - eps,
A < 0 with r > 1 + eps) where the min keeps r A and the sample's gradient is in full. The
samples that really pass no gradient are those with 1_not-clip = 0 (A > 0 with r > 1 + eps,
A < 0 with r < 1 - eps), a subset.

The defaults are rl-zoo's tuned CartPole-v1 settings for Stable-Baselines3 (8 envs x 32 steps,
one minibatch of 256, 20 epochs, gamma 0.98, lambda 0.8, eps 0.2 annealed, separate 64-64 tanh
policy and value networks sharing one Adam) with one change: the step size starts at 2e-3, not
rl-zoo's 1e-3 (annealed linearly to 0 over ``total_steps`` either way). rl-zoo tuned for the
return at the end of 100k steps; the book's benchmark counts the env steps to a last-20 mean of
475, and there the larger step is what pays. Measured over seeds 0-9 (``python -m benchmarks
ppo``, one torch thread, 2-core Intel Xeon, 2026-12-06): a median of 32,384 env steps with
1e-3, 23,012 with 2e-3 (18,304 over seeds 10-19, never used to choose), every seed reaching the
target. Measured and not taken (median over seeds 0-4 unless said): 10 epochs (44,904 over
seeds 0-9 at 1e-3; 36,784 at 2e-3), no gradient clipping (41,872), gamma 0.99 with lambda 0.95
(35,416), rollouts of 8 x 64 (35,632 at 2e-3), no advantage normalisation (31,240 at 2e-3).
Measured on a 2-core AMD EPYC on 2026-12-07 (seeds 0-9, where the default's median is 25,732)
and not taken: the step size 3e-3 (21,092, with a slowest seed of 64,104 against the default's
39,792; the same default gives 23,012 on the Intel machine, so a gain of this size is within
what the CPU alone moves, and it would not bring the wall-time ratio near 0.5), the KL target
``target_kl`` 0.02 (32,716), 0.05 (25,608; 22,256 at 3e-3; 23,896 at 4e-3), 0.1 at 3e-3
(21,132; slowest 49,264), 10 epochs at 4e-3 or 6e-3 (32,956 and 31,760), 5 epochs at 8e-3 (2
of 10 seeds missed the target). The KL target rarely stops the epochs at these settings, so
none of them cuts the gradient steps per env step much. Network size, on a faster 2-core AMD
EPYC on 2026-12-08 (default: 25,732 env steps and 5.0 s over seeds 0-9, 21,792 and 3.9 s over
seeds 10-19): 32-32 gave 24,908 and 3.9 s on seeds 0-9 but 25,912 and 3.9 s on seeds 10-19,
128-128 22,188 and 5.1 s (24,600 and 6.1 s), 16-16 33,140, one layer of 64 40,788; none is
ahead on both halves. Per env step this trainer and SB3's do the same work (the same
networks, 20 passes over one minibatch of 256 per 256 steps); pgbook's costs less wall time
(0.84 of SB3's per env step in the medians of that machine's side-by-side run,
``benchmarks/results/against_sb3_amd_2026-12-08.json``), in part because an epoch that is one
minibatch needs no forward pass of its own for the per-epoch logs (:func:`_update`). So PPO's
wall-time lead over SB3 is its lead in env steps times about 0.85. ``benchmarks/README.md``
has the side-by-side runs against SB3. Read top to bottom: ``Config``, ``_update`` (the
epochs of one iteration), then ``train``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from tqdm import tqdm

from .. import _validate as V
from ..history import History
from ..nets import ValueNet, policy_for
from ..objectives import not_clip, ppo_clip
from ..returns import gae
from ..rollout import Collector
from .run import check_run_settings, checked_config, training_run

__all__ = ["Config", "clip_counts", "train"]


@dataclass
class Config:
    """Settings of PPO-Clip. Defaults: rl-zoo's CartPole-v1 hyperparameters with the step size
    doubled to 2e-3 (see module).
    Checked when made: a bad value raises ``ValueError`` naming the field."""

    num_envs: int = 8  #: N sub-environments
    num_steps: int = 32  #: T steps per sub-environment per iteration (batch = N * T)
    epochs: int = 20  #: passes over the batch per iteration
    minibatch_size: int = 256  #: must divide N * T
    gamma: float = 0.98
    gae_lambda: float = 0.8
    clip_eps: float = 0.2  #: eps of the clip, in (0, 1): the lower bound 1 - eps
    #: the upper bound 1 + clip_eps_high (None: clip_eps, the symmetric clip; DAPO's
    #: clip-higher, chapter 13); annealed with clip_eps
    clip_eps_high: float | None = None
    anneal_clip: bool = True  #: eps (and eps_high) decay linearly to 0 over ``total_steps``
    lr: float = 2e-3  #: Adam step size (policy and value share it); rl-zoo's is 1e-3
    anneal_lr: bool = True  #: the step size decays linearly to 0 over ``total_steps``
    normalize_advantage: bool = True  #: per minibatch, mean 0 and std 1
    vf_coef: float = 0.5  #: weight of the value loss
    clip_value: float | None = None  #: clip V around V_old by this much (None: no clipping)
    ent_coef: float = 0.0  #: weight of the entropy bonus
    max_grad_norm: float | None = 0.5  #: clip the global gradient norm (None: no clipping)
    target_kl: float | None = None  #: stop the epochs once the approximate KL exceeds it
    hidden: tuple[int, ...] = (64, 64)  #: hidden widths of the policy and value MLPs
    total_steps: int = 100_000  #: env-step budget (and the horizon of the annealing)
    target: float | None = None  #: stop once the mean of the last ``target_window`` returns >= it
    target_window: int = 20
    seed: int = 0

    def __post_init__(self) -> None:
        check_run_settings(self)  # the fields every trainer shares
        V.positive_int(self.epochs, "epochs")
        V.positive_int(self.minibatch_size, "minibatch_size")
        batch = self.num_envs * self.num_steps
        if batch % self.minibatch_size:
            raise ValueError(f"minibatch_size={self.minibatch_size} must divide the batch "
                             f"num_envs * num_steps = {batch}")
        V.number(self.clip_eps, "clip_eps", low=0.0, high=1.0, low_open=True, high_open=True)
        if self.clip_eps_high is not None:
            V.number(self.clip_eps_high, "clip_eps_high", low=0.0, low_open=True)
        V.number(self.vf_coef, "vf_coef", low=0.0)
        V.number(self.ent_coef, "ent_coef", low=0.0)
        for name in ("anneal_clip", "anneal_lr"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        for name in ("clip_value", "target_kl"):
            if getattr(self, name) is not None:
                V.number(getattr(self, name), name, low=0.0, low_open=True)


def clip_counts(ratio: torch.Tensor, adv: torch.Tensor, eps: float,
                eps_high: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The two clip statistics of a batch (chapter 8), as counts (0-dim integer tensors):

        outside = #{t : r_t < 1 - eps or r_t > 1 + eps_high}   the ratio left the clip range;
        zero    = #{t : 1_not-clip(r_t, A_t) = 0}   the clipped objective passes no gradient:
                  A_t >= 0 with r_t > 1 + eps_high, or A_t < 0 with r_t < 1 - eps

    (eps_high = eps unless given).

    ``zero`` counts a subset of ``outside``: outside the range on the pessimistic side the min
    keeps r_t A_t, and the sample's gradient r_t A_t grad log pi is in full
    (:func:`pgbook.objectives.not_clip`). ``ratio`` and ``adv`` as for ``not_clip``.
    """
    zero = ~not_clip(ratio, adv, eps, eps_high)  # validates ratio, adv, eps and eps_high
    if eps_high is None:
        return ((ratio - 1).abs() > eps).sum(), zero.sum()
    return ((ratio < 1 - eps) | (ratio > 1 + eps_high)).sum(), zero.sum()


def _clip_bounds(config: Config, remaining: float) -> tuple[float, float | None]:
    """(eps, eps_high) of this iteration: annealed by ``remaining`` if ``anneal_clip``."""
    scale = remaining if config.anneal_clip else 1.0
    high = None if config.clip_eps_high is None else config.clip_eps_high * scale
    return config.clip_eps * scale, high


def _approx_kl(log_ratio: torch.Tensor) -> torch.Tensor:
    """E[(r - 1) - log r], the approximate KL(pi_old || pi_theta) of the samples."""
    return (log_ratio.exp() - 1 - log_ratio).mean()


def _displacement(log_ratio: torch.Tensor) -> dict[str, float]:
    """The per-epoch logs: how far pi_theta has moved from pi_old on the whole batch."""
    return {"epoch_approx_kl": _approx_kl(log_ratio).item(),
            "epoch_max_ratio_deviation": (log_ratio.exp() - 1).abs().max().item()}


def _update(config: Config, policy, value, optimizer: torch.optim.Optimizer, batch: dict,
            eps: float, eps_high: float | None, history: History) -> dict[str, float]:
    """Step 3 of an iteration: ``epochs`` passes of minibatch ascent on
    L^CLIP - vf_coef * value loss + ent_coef * entropy over the flat ``batch`` (obs, actions,
    logp_old, v_old, adv, returns). Logs the per-epoch displacement into ``history``; returns
    the iteration's other logs, those of :func:`train` from ``loss`` to
    ``explained_variance``, and ``epochs_run``."""
    obs, actions, logp_old, v_old, adv, returns = (
        batch[k] for k in ("obs", "actions", "logp_old", "v_old", "adv", "returns"))
    params = [p for group in optimizer.param_groups for p in group["params"]]
    max_norm = config.max_grad_norm if config.max_grad_norm is not None else float("inf")
    # With one minibatch per epoch (the default), the next epoch's forward pass is the whole
    # batch at the parameters this epoch left: its log-ratios give the epoch's displacement
    # log without a forward pass of their own.
    one_minibatch = config.minibatch_size == len(adv)
    explained = 1 - (returns - v_old).var() / returns.var().clamp_min(1e-12)
    pending = False  # the last epoch's displacement is still to be logged
    log_ratios, advantages = [], []  # at which each step's gradient was taken
    epochs_run = 0
    for _ in range(config.epochs):
        epochs_run += 1
        for idx in torch.randperm(len(adv)).split(config.minibatch_size):
            dist = policy.dist(obs[idx])
            logp = dist.log_prob(actions[idx])
            log_ratios.append((logp - logp_old[idx]).detach())
            if pending:
                history.log(**_displacement(log_ratios[-1]))
                pending = False
            a = adv[idx]
            if config.normalize_advantage:
                a = (a - a.mean()) / (a.std() + 1e-8)
            advantages.append(a)
            surrogate = ppo_clip(logp, logp_old[idx], a, eps, eps_high)
            v = value(obs[idx])
            value_loss = (v - returns[idx]).pow(2)
            if config.clip_value is not None:
                v_clipped = v_old[idx] + (v - v_old[idx]).clamp(-config.clip_value,
                                                                config.clip_value)
                value_loss = torch.max(value_loss, (v_clipped - returns[idx]).pow(2))
            loss = -surrogate + config.vf_coef * value_loss.mean()
            if config.ent_coef > 0:
                loss = loss - config.ent_coef * dist.entropy().mean()
            optimizer.zero_grad()
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
            optimizer.step()
        pending = one_minibatch
        if not one_minibatch:
            with torch.no_grad():
                history.log(**_displacement(policy.dist(obs).log_prob(actions) - logp_old))
        # the last minibatch's approximate KL, before its step
        if config.target_kl is not None and _approx_kl(log_ratios[-1]).item() > config.target_kl:
            break
    with torch.no_grad():  # pi_theta after the update, on the whole batch
        dist = policy.dist(obs)
        if pending:
            history.log(**_displacement(dist.log_prob(actions) - logp_old))
        entropy = dist.entropy().mean().item()
    # the clip statistics over all steps, each with the ratio its gradient was taken at
    outside, zero_grad = clip_counts(torch.cat(log_ratios).exp(), torch.cat(advantages), eps,
                                     eps_high)
    samples = epochs_run * len(adv)
    return {"loss": loss.item(), "grad_norm": grad_norm.item(), "entropy": entropy,
            "value_loss": value_loss.mean().item(),
            "approx_kl": _approx_kl(log_ratios[-1]).item(),
            "outside_clip_range": outside.item() / samples,
            "zero_gradient_fraction": zero_grad.item() / samples,
            "explained_variance": explained.item(), "epochs_run": epochs_run}


def train(env_id: str = "CartPole-v1", config: Config | None = None, *,
          progress: bool = True) -> History:
    """Train a policy on ``env_id`` with PPO-Clip; returns the :class:`pgbook.history.History`
    with models ``policy`` and ``value`` and, per iteration, the logs ``env_steps``, ``loss``
    (negative clipped surrogate plus value loss, last minibatch), ``grad_norm`` (last minibatch,
    before clipping), ``entropy``, ``value_loss``, ``approx_kl`` (E[(r-1) - log r] on the last
    minibatch, before its step: the number ``target_kl`` is compared with),
    ``outside_clip_range`` (share of samples with |r - 1| > eps) and ``zero_gradient_fraction``
    (share with 1_not-clip = 0), both over all minibatch steps of the update with the ratio at
    which each step's gradient was taken (:func:`clip_counts`), ``explained_variance``
    (1 - Var[target - V] / Var[target] before the update), ``lr``, ``clip_eps`` and
    ``epochs_run``; and per epoch (``sum(epochs_run)`` entries) ``epoch_approx_kl`` and
    ``epoch_max_ratio_deviation``, E[(r-1) - log r] and max |r - 1| over the whole batch
    after the epoch. Seeded by ``config.seed``, deterministic on CPU."""
    config = checked_config(config, Config)
    with training_run(config.seed, env_id, config.num_envs) as envs:
        collector = Collector(envs, seed=config.seed)
        policy = policy_for(envs.single_observation_space, envs.single_action_space,
                            config.hidden)
        value = ValueNet(envs.single_observation_space.shape[0], config.hidden)
        params = [*policy.parameters(), *value.parameters()]
        optimizer = torch.optim.Adam(params, lr=config.lr, eps=1e-5, fused=True)
        history = History(env_id, config, models={"policy": policy, "value": value})
        steps = 0
        bar = tqdm(total=config.total_steps, disable=not progress, desc=f"PPO {env_id}")
        while steps < config.total_steps:
            remaining = 1.0 - steps / config.total_steps  # linear annealing, 1 -> 0
            lr = config.lr * (remaining if config.anneal_lr else 1.0)
            eps, eps_high = _clip_bounds(config, remaining)
            for group in optimizer.param_groups:
                group["lr"] = lr

            # 1. Roll out pi_old: T steps of N envs, with V(s_t) and V(s_{t+1}) for GAE.
            batch = collector.collect_steps(policy, config.num_steps, value)
            history.add_batch_episodes(batch, steps)
            steps += batch.env_steps

            # 2. Advantages by GAE and value targets, then flatten (T, N) to one batch.
            adv = gae(batch.rewards, batch.values, batch.terminated, batch.truncated,
                      config.gamma, config.gae_lambda, next_values=batch.next_values)
            returns = adv + batch.values
            flat = {"obs": batch.obs.flatten(0, 1), "actions": batch.actions.flatten(0, 1),
                    "logp_old": batch.logp.flatten(), "v_old": batch.values.flatten(),
                    "adv": adv.flatten(), "returns": returns.flatten()}

            # 3. Several epochs of minibatch ascent on the clipped surrogate (_update).
            logs = _update(config, policy, value, optimizer, flat, eps, eps_high, history)
            epochs_run = logs.pop("epochs_run")
            history.log(env_steps=steps, **logs, lr=lr, clip_eps=eps, epochs_run=epochs_run)
            bar.update(min(batch.env_steps, config.total_steps - bar.n))
            bar.set_postfix(ret=f"{history.last_mean(config.target_window):.1f}")
            if history.target_reached():
                break
        bar.close()
        return history.finish(steps)
