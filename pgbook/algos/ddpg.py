"""DDPG and TD3: deterministic policy gradients with a learned critic and experience replay.

Chapter 10. The actor is a deterministic policy a = mu_theta(s) (:class:`DeterministicPolicy`);
it ascends the deterministic policy gradient (DPG, Silver et al. 2014)

    grad_theta J = E_s[ grad_theta mu_theta(s)^T grad_a Q_w(s, a) |_{a = mu_theta(s)} ],

i.e. autograd of the actor loss -mean_s Q_w(s, mu_theta(s)) through the critic. The critic
Q_w(s, a) (:class:`QEnsemble` with n = 1 or 2) regresses on one-step targets from a replay buffer
(:mod:`pgbook.replay`):

    y = r + gamma * (1 - terminated) * Q_w'(s', mu_theta'(s')),

where w', theta' are *target networks*, Polyak averages w' <- (1 - tau) w' + tau w
(:func:`polyak_update`). That is DDPG (Lillicrap et al. 2015). TD3 (Fujimoto et al. 2018) makes
three changes, each a switch in :class:`Config`:

1. ``twin=True``: two critics, and the target takes the *smaller* of the two target critics,
   y = r + gamma (1 - terminated) min_j Q_{w_j'}(s', a'), against Q-overestimation.
2. ``target_noise > 0``: target policy smoothing, a' = clip(mu_theta'(s') + clip(eps, -c, c)),
   eps ~ N(0, target_noise^2) (in units of the action half-width), so the target does not
   exploit narrow peaks of the critic.
3. ``policy_delay = d > 1``: the actor and the target networks are updated once every d critic
   updates.

``Config()`` is TD3; ``Config.ddpg()`` switches the three changes off. Exploration adds
N(0, explore_noise^2) (half-width units) to mu_theta(s); the first ``learning_starts`` steps act
uniformly at random. Transitions come from :class:`pgbook.rollout.Collector` (one SAME_STEP
env, so a time-limit cut stores the true s' and bootstraps from it); one gradient step per env
step (update-to-data ratio 1). :mod:`pgbook.algos.sac` reuses this module's ``History``,
``UniformPolicy`` and config checks. Read top to bottom: ``Config``, ``History``, ``train``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch.distributions import Independent, Normal, Uniform
from tqdm import tqdm

from .. import _validate as V
from ..nets import DeterministicPolicy, QEnsemble, polyak_update
from ..replay import ReplayBuffer
from ..rollout import Collector
from ._common import check_run_settings, run_trainer

__all__ = ["Config", "History", "NoisyActor", "UniformPolicy", "check_common", "clip_to_box",
           "train"]


@dataclass
class Config:
    """Settings of DDPG/TD3. The defaults are TD3 tuned for Pendulum-v1."""

    twin: bool = True  #: TD3 change 1: two critics, min in the target
    target_noise: float = 0.2  #: TD3 change 2: target smoothing std (half-width units; 0: off)
    noise_clip: float = 0.5  #: clip of the smoothing noise (half-width units)
    policy_delay: int = 2  #: TD3 change 3: actor/target update every d critic updates (1: off)
    explore_noise: float = 0.1  #: std of the exploration noise (half-width units)
    gamma: float = 0.98
    tau: float = 0.01  #: Polyak step of the target networks
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    hidden: tuple[int, ...] = (64, 64)  #: hidden widths of actor and critics (ReLU)
    batch_size: int = 128
    buffer_size: int = 100_000
    learning_starts: int = 1000  #: uniform random actions (and no updates) before this step
    total_steps: int = 20_000  #: env-step budget (one update per env step after the start)
    target: float | None = None  #: stop once the mean of the last ``target_window`` returns >= it
    target_window: int = 10
    seed: int = 0

    @classmethod
    def ddpg(cls, **overrides) -> Config:
        """DDPG: one critic, no target smoothing, actor updated every step."""
        return cls(**{"twin": False, "target_noise": 0.0, "policy_delay": 1, **overrides})

    def validate(self) -> None:
        if not isinstance(self.twin, bool):
            raise ValueError(f"twin must be a bool, got {self.twin!r}")
        V.number(self.target_noise, "target_noise", low=0.0)
        V.number(self.noise_clip, "noise_clip", low=0.0)
        V.positive_int(self.policy_delay, "policy_delay")
        V.number(self.explore_noise, "explore_noise", low=0.0)
        V.number(self.gamma, "gamma", low=0.0, high=1.0)
        V.number(self.tau, "tau", low=0.0, high=1.0, low_open=True)
        V.number(self.actor_lr, "actor_lr", low=0.0, low_open=True)
        V.number(self.critic_lr, "critic_lr", low=0.0, low_open=True)
        check_common(self)


def check_common(config) -> None:
    """Checks shared by the off-policy configs (this module's and :mod:`pgbook.algos.sac`)."""
    V.positive_int(config.batch_size, "batch_size")
    V.positive_int(config.buffer_size, "buffer_size")
    V.positive_int(config.learning_starts, "learning_starts")
    check_run_settings(config)


@dataclass
class History:
    """What happened during training.

    Per finished episode (in the order they finished): ``episode_returns``,
    ``episode_steps`` (global env step at which it finished), ``episode_times`` (wall seconds
    since the start), ``episode_cpu`` (CPU seconds of this process, user + system, since the
    start: on a shared machine the fairer clock) and ``logs``, the latest training statistics
    at that moment (``critic_loss``, ``actor_loss``, and for SAC ``alpha``, ``entropy``).
    """

    env_id: str = ""
    config: object = None
    episode_returns: list[float] = field(default_factory=list)
    episode_steps: list[int] = field(default_factory=list)
    episode_times: list[float] = field(default_factory=list)
    episode_cpu: list[float] = field(default_factory=list)
    logs: dict[str, list[float]] = field(default_factory=dict)
    updates: int = 0  #: gradient steps of the critic(s)
    actor_updates: int = 0  #: gradient steps of the actor (fewer with a policy delay)
    total_env_steps: int = 0  #: env steps run in all
    wall_time: float = 0.0
    cpu_time: float = 0.0
    actor: torch.nn.Module | None = None  #: the trained policy
    critic: torch.nn.Module | None = None  #: the trained QEnsemble
    _clock: tuple[float, float] = (0.0, 0.0)

    def start_clock(self) -> None:
        """Start the wall and CPU clocks that episodes and totals are measured from."""
        self._clock = (time.perf_counter(), time.process_time())

    def record(self, batch, step: int, stats: dict[str, float]) -> bool:
        """Log the episodes that ended in ``batch`` (a one-step :class:`Batch`) at env step
        ``step``, with the current training ``stats``; True if one ended. Also updates the
        totals ``total_env_steps``, ``wall_time``, ``cpu_time``."""
        self.total_env_steps = step
        self.wall_time = time.perf_counter() - self._clock[0]
        self.cpu_time = time.process_time() - self._clock[1]
        for ret in batch.episode_returns.tolist():
            self.episode_returns.append(ret)
            self.episode_steps.append(step)
            self.episode_times.append(self.wall_time)
            self.episode_cpu.append(self.cpu_time)
            for key, value in stats.items():
                self.logs.setdefault(key, []).append(value)
        return len(batch.episode_returns) > 0

    def trailing_means(self, window: int = 10) -> np.ndarray:
        """Mean of the last ``window`` returns after each episode from the ``window``-th on."""
        V.positive_int(window, "window")
        x = np.asarray(self.episode_returns, dtype=np.float64)
        if len(x) < window:
            return np.zeros(0)
        c = np.cumsum(np.concatenate([[0.0], x]))
        return (c[window:] - c[:-window]) / window

    def last_mean(self, window: int = 10) -> float:
        """Mean return of the last ``window`` finished episodes (nan if fewer finished)."""
        means = self.trailing_means(window)
        return float(means[-1]) if len(means) else float("nan")

    def reached(self, target: float, window: int = 10) -> tuple[int, float, float] | None:
        """(env steps, wall seconds, CPU seconds) when the mean of the last ``window`` returns
        first reached ``target``, or None if it never did."""
        V.number(target, "target")
        hits = np.flatnonzero(self.trailing_means(window) >= target)
        if len(hits) == 0:
            return None
        i = int(hits[0]) + window - 1
        return self.episode_steps[i], self.episode_times[i], self.episode_cpu[i]

    def done(self) -> bool:
        """True once the config's target is set and the last-``target_window`` mean reaches it."""
        target, window = self.config.target, self.config.target_window
        return target is not None and self.last_mean(window) >= target


class UniformPolicy:
    """Uniform random actions on the box [low, high] (the warm-up before ``learning_starts``);
    ``dist(obs)`` has the batch shape of ``obs`` like the policies of :mod:`pgbook.nets`."""

    def __init__(self, low, high) -> None:
        self.low = torch.as_tensor(low, dtype=torch.float32)
        self.high = torch.as_tensor(high, dtype=torch.float32)

    def dist(self, obs: torch.Tensor) -> Independent:
        shape = (*obs.shape[:-1], *self.low.shape)
        return Independent(Uniform(self.low.expand(shape), self.high.expand(shape)), 1)


class NoisyActor:
    """Exploration policy a = mu_theta(s) + eps, eps ~ N(0, (std * half-width)^2), as an object
    with ``dist(obs)`` for :class:`pgbook.rollout.Collector` (which clips a to the box)."""

    def __init__(self, actor: DeterministicPolicy, std: float) -> None:
        self.actor, self.std = actor, V.number(std, "std", low=0.0, low_open=True)

    def dist(self, obs: torch.Tensor) -> Independent:
        mu = self.actor(obs)
        return Independent(Normal(mu, (self.std * self.actor.scale).expand_as(mu)), 1)


def clip_to_box(action: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Clamp each action dimension into [low_i, high_i]."""
    return torch.maximum(torch.minimum(action, high), low)


def train(env_id: str = "Pendulum-v1", config: Config | None = None, *,
          progress: bool = True) -> History:
    """Train a deterministic actor and its critic(s) on ``env_id`` (a 1-D Box action space)
    with DDPG or TD3; returns the :class:`History`.

    Seeded by ``config.seed`` and deterministic on CPU for a fixed thread count. Torch's
    global random state is forked, so the caller's stream is left as it was, and the networks
    are float32 whatever the caller's default dtype.
    """
    return run_trainer(_train, env_id, config, Config, progress)


def _train(env_id: str, envs, config: Config, progress: bool) -> History:
    space = envs.single_action_space
    obs_dim, act_dim = envs.single_observation_space.shape[0], space.shape[0]
    low, high = torch.as_tensor(space.low), torch.as_tensor(space.high)
    actor = DeterministicPolicy(obs_dim, act_dim, config.hidden, low=low, high=high)
    critic = QEnsemble(obs_dim, act_dim, config.hidden, n=2 if config.twin else 1)
    actor_target, critic_target = copy.deepcopy(actor), copy.deepcopy(critic)
    actor_opt = torch.optim.Adam(actor.parameters(), lr=config.actor_lr, fused=True)
    critic_opt = torch.optim.Adam(critic.parameters(), lr=config.critic_lr, fused=True)
    buffer = ReplayBuffer(obs_dim, act_dim, config.buffer_size)
    collector = Collector(envs, seed=config.seed)
    generator = torch.Generator().manual_seed(config.seed)  # mini-batch sampling
    warmup, explore = UniformPolicy(low, high), NoisyActor(actor, config.explore_noise)
    half, smooth_clip = actor.scale, config.noise_clip * actor.scale

    history = History(env_id=env_id, config=config, actor=actor, critic=critic)
    stats = {"critic_loss": float("nan"), "actor_loss": float("nan")}
    name = "TD3" if config.twin else "DDPG"
    bar = tqdm(total=config.total_steps, disable=not progress, desc=f"{name} {env_id}")
    history.start_clock()
    for step in range(1, config.total_steps + 1):
        # 1. One env step (uniform actions during warm-up); store what the env received.
        batch = collector.collect_steps(warmup if step <= config.learning_starts else explore, 1)
        batch.actions = clip_to_box(batch.actions, low, high)
        buffer.add_batch(batch)

        if step >= config.learning_starts:
            data = buffer.sample(config.batch_size, generator)
            # 2. Critic(s): regress Q_j(s, a) on y = r + gamma (1 - d) min_j Q_j'(s', a').
            with torch.no_grad():
                next_action = actor_target(data.next_obs)
                if config.target_noise > 0:  # TD3 change 2: target policy smoothing
                    noise = torch.randn_like(next_action) * config.target_noise * half
                    noise = clip_to_box(noise, -smooth_clip, smooth_clip)
                    next_action = clip_to_box(next_action + noise, low, high)
                # TD3 change 1: the smaller of the two target critics (DDPG has only one)
                next_q = critic_target(data.next_obs, next_action).min(0).values
                y = data.rewards + config.gamma * (1 - data.terminated) * next_q
            # sum over critics j of the mean squared error of Q_j (shape (n, B) vs (B,))
            critic_loss = ((critic(data.obs, data.actions) - y) ** 2).mean(1).sum()
            critic_opt.zero_grad()
            critic_loss.backward()
            critic_opt.step()
            stats["critic_loss"] = critic_loss.item()

            # 3. Actor, every policy_delay-th update (TD3 change 3): descend -Q_1(s, mu(s)).
            #    Autograd through the critic computes the DPG grad mu_theta^T grad_a Q_1.
            if history.updates % config.policy_delay == 0:
                actor_loss = -critic(data.obs, actor(data.obs))[0].mean()
                actor_opt.zero_grad()
                actor_loss.backward()
                actor_opt.step()
                stats["actor_loss"] = actor_loss.item()
                history.actor_updates += 1
                # 4. Target networks follow slowly: w' <- (1 - tau) w' + tau w.
                polyak_update(actor_target, actor, config.tau)
                polyak_update(critic_target, critic, config.tau)
            history.updates += 1

        bar.update(1)
        if history.record(batch, step, stats):
            bar.set_postfix(ret=f"{history.last_mean(config.target_window):.1f}")
            if history.done():
                break
    bar.close()
    return history
