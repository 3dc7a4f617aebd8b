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
step (update-to-data ratio 1). Read top to bottom: ``Config``, then ``train``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.distributions import Independent, Normal
from tqdm import tqdm

from .. import _validate as V
from ..history import History
from ..nets import DeterministicPolicy, QEnsemble, UniformPolicy, clip_to_box, polyak_update
from ..replay import ReplayBuffer
from ..rollout import Collector
from .run import check_replay_settings, checked_config, training_run

__all__ = ["Config", "NoisyActor", "train"]


@dataclass
class Config:
    """Settings of DDPG/TD3. The defaults are TD3 tuned for Pendulum-v1. Checked when made: a
    bad value raises ``ValueError`` naming the field."""

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

    def __post_init__(self) -> None:
        check_replay_settings(self)  # the fields every trainer shares
        if not isinstance(self.twin, bool):
            raise ValueError(f"twin must be a bool, got {self.twin!r}")
        V.number(self.target_noise, "target_noise", low=0.0)
        V.number(self.noise_clip, "noise_clip", low=0.0)
        V.positive_int(self.policy_delay, "policy_delay")
        V.number(self.explore_noise, "explore_noise", low=0.0)
        V.number(self.tau, "tau", low=0.0, high=1.0, low_open=True)



class NoisyActor:
    """Exploration policy a = mu_theta(s) + eps, eps ~ N(0, (std * half-width)^2), as an object
    with ``dist(obs)`` for :class:`pgbook.rollout.Collector` (which clips a to the box)."""

    def __init__(self, actor: DeterministicPolicy, std: float) -> None:
        self.actor, self.std = actor, V.number(std, "std", low=0.0, low_open=True)

    def dist(self, obs: torch.Tensor) -> Independent:
        mu = self.actor(obs)
        return Independent(Normal(mu, (self.std * self.actor.scale).expand_as(mu)), 1)


def train(env_id: str = "Pendulum-v1", config: Config | None = None, *,
          progress: bool = True,
          callback: Callable[[int, History], None] | None = None) -> History:
    """Train a deterministic actor and its critic(s) on ``env_id`` (a 1-D Box action space)
    with TD3 (or DDPG, ``Config.ddpg()``); returns the :class:`pgbook.history.History` with
    models ``policy`` (the actor) and ``critic`` (the :class:`QEnsemble`) and, per finished
    episode, the logs ``critic_loss``, ``actor_loss`` (latest values), ``updates`` (critic
    gradient steps so far) and ``actor_updates`` (fewer with a policy delay).

    ``callback(step, history)``, if given, runs after each finished episode is recorded, with
    the env step and the live ``history``, whose ``models`` are the networks being trained
    (chapter 10 compares the critic's estimate with Monte-Carlo returns this way). It must not
    change them or draw from torch's global random stream, or the run changes.

    Seeded by ``config.seed`` and deterministic on CPU for a fixed thread count; the caller's
    random stream is left as it was, and the networks are float32 whatever its default dtype.
    """
    config = checked_config(config, Config)
    if callback is not None and not callable(callback):
        raise ValueError(f"callback must be None or callable, got {type(callback).__name__}")
    with training_run(config.seed, env_id) as envs:
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
        history = History(env_id, config, models={"policy": actor, "critic": critic})
        stats = {"critic_loss": float("nan"), "actor_loss": float("nan"), "updates": 0,
                 "actor_updates": 0}
        bar = tqdm(total=config.total_steps, disable=not progress,
                   desc=f"{'TD3' if config.twin else 'DDPG'} {env_id}")
        for step in range(1, config.total_steps + 1):
            # 1. One env step (uniform actions during warm-up); store what the env received.
            batch = collector.collect_steps(warmup if step <= config.learning_starts
                                            else explore, 1)
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
                if stats["updates"] % config.policy_delay == 0:
                    actor_loss = -critic(data.obs, actor(data.obs))[0].mean()
                    actor_opt.zero_grad()
                    actor_loss.backward()
                    actor_opt.step()
                    stats["actor_loss"] = actor_loss.item()
                    stats["actor_updates"] += 1
                    # 4. Target networks follow slowly: w' <- (1 - tau) w' + tau w.
                    polyak_update(actor_target, actor, config.tau)
                    polyak_update(critic_target, critic, config.tau)
                stats["updates"] += 1

            bar.update(1)
            ended = len(batch.episode_returns)
            if ended:
                history.add_episodes(batch.episode_returns, batch.episode_lengths, [step] * ended)
                for _ in range(ended):
                    history.log(**stats)
                if callback is not None:
                    callback(step, history)
                bar.set_postfix(ret=f"{history.last_mean(config.target_window):.1f}")
                if history.target_reached():
                    break
        bar.close()
        return history.finish(step)
