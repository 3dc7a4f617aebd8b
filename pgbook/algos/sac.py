"""SAC: soft actor-critic with twin critics, target networks and an automatic temperature.

Chapter 11. SAC (Haarnoja et al. 2018) maximises the entropy-regularised return
sum_t E[r_{t+1} + alpha H(pi(.|s_t))]. Its three losses, each one gradient step per env step
on a mini-batch from the replay buffer (:mod:`pgbook.replay`):

* Critics (twin, as in TD3): regress Q_j(s, a), j = 1, 2, on the *soft* target

      y = r + gamma (1 - terminated) [ min_j Q_j'(s', a') - alpha log pi_phi(a'|s') ],
      a' ~ pi_phi(.|s'),

  where Q_j' are Polyak-averaged target critics (:func:`polyak_update`).
* Actor: minimise the policy objective

      J_pi(phi) = E_s E_{a ~ pi_phi}[ alpha log pi_phi(a|s) - min_j Q_j(s, a) ],

  with the *reparameterised* sample a = c + h tanh(m_phi(s) + sigma_phi(s) eps), eps ~ N(0, I)
  (:class:`SquashedGaussianPolicy`), so autograd differentiates through the sample; chapter 11
  shows this gradient agrees in expectation with the score-function one and has far lower
  variance.
* Temperature (``alpha=None``, automatic): minimise J(alpha) = E_s E_{a ~ pi}[ -alpha
  (log pi(a|s) + H_target) ] over log alpha, whose gradient in alpha is H(pi) - H_target
  estimated by -log pi(a|s) - H_target: alpha falls while the policy's entropy exceeds the
  target (default H_target = -act_dim) and rises when it is below.

Env steps, warm-up and replay are as in :mod:`pgbook.algos.td3`: one env step and one update of
each loss per step after ``learning_starts`` uniform random steps.

The defaults are tuned for Pendulum-v1: 64-64 ReLU networks, batch 128, tau 0.01, Adam 1e-3 for
all three losses, and 300 warm-up steps (1.5 episodes of uniform actions; Stable-Baselines3
starts learning after 100, TD3 here after 1,000). The warm-up was 1,000 until the side-by-side
runs against SB3 (``benchmarks/README.md``): the critics need far fewer random transitions than
that, and every warm-up step is a step not learned from. Measured over seeds 0-9
(``python -m benchmarks sac``, one torch thread, 2-core Intel Xeon, 2026-12-06), the median env
steps to a last-10 mean of -200 went from 5,100 (1,000 warm-up steps) to 4,400 (300), every seed
reaching it. Measured and not taken (medians over seeds 0-4; 300 warm-up steps unless said):
100 warm-up steps (4,600), batch 256 (4,600), tau 0.02 (4,200; 4,400 over seeds 0-9, no gain),
gamma 0.98 (4,400), step sizes 2e-3 (4,400). Read top to bottom: ``Config``, then ``train``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import torch
from tqdm import tqdm

from .. import _validate as V
from ..history import History
from ..nets import QEnsemble, SquashedGaussianPolicy, UniformPolicy, polyak_update
from ..replay import ReplayBuffer
from ..rollout import Collector
from .run import check_replay_settings, checked_config, training_run

__all__ = ["Config", "actor_loss", "soft_target", "temperature_loss", "train"]


@dataclass
class Config:
    """Settings of SAC, tuned for Pendulum-v1. Checked when made: a bad value raises
    ``ValueError`` naming the field."""

    alpha: float | None = None  #: fixed temperature; None tunes it automatically
    init_alpha: float = 1.0  #: starting temperature when tuned
    target_entropy: float | None = None  #: H_target; None gives -act_dim
    gamma: float = 0.99
    tau: float = 0.01  #: Polyak step of the target critics
    actor_lr: float = 1e-3
    critic_lr: float = 1e-3
    alpha_lr: float = 1e-3
    hidden: tuple[int, ...] = (64, 64)  #: hidden widths of actor and critics (ReLU)
    batch_size: int = 128
    buffer_size: int = 100_000
    learning_starts: int = 300  #: uniform random actions (and no updates) before this step
    total_steps: int = 20_000  #: env-step budget (one update per env step after the start)
    target: float | None = None  #: stop once the mean of the last ``target_window`` returns >= it
    target_window: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        check_replay_settings(self)  # the fields every trainer shares
        if self.alpha is not None:
            V.number(self.alpha, "alpha", low=0.0)
        V.number(self.init_alpha, "init_alpha", low=0.0, low_open=True)
        if self.target_entropy is not None:
            V.number(self.target_entropy, "target_entropy")
        V.number(self.tau, "tau", low=0.0, high=1.0, low_open=True)


def actor_loss(logp: torch.Tensor, q: torch.Tensor, alpha: float) -> torch.Tensor:
    r"""SAC's actor loss on a mini-batch, the sample mean of (eq-11-jpi) of chapter 11:

        J_pi = (1/N) sum_n [ alpha log pi_phi(a_n|s_n) - Q(s_n, a_n) ],

    with ``logp`` (N,) = log pi_phi(a_n|s_n) and ``q`` (N,) = min_j Q_j(s_n, a_n) at
    reparameterised actions a_n (autograd then gives the gradient (eq-11-rp)); ``alpha`` >= 0
    is the temperature. The source's weight Q - V has no ``alpha log pi`` term: its expected
    gradient is that of ``-q.mean()`` alone (chapter 11, "In the source").
    """
    V.tensor(logp, "logp", ndim=1)
    V.tensor(q, "q", ndim=1)
    V.same_shape(logp=logp, q=q)
    alpha = V.number(alpha, "alpha", low=0.0)
    return (alpha * logp - q).mean()


def soft_target(rewards: torch.Tensor, terminated: torch.Tensor, next_q: torch.Tensor,
                next_logp: torch.Tensor, alpha: float, gamma: float) -> torch.Tensor:
    r"""The critics' regression target, one sample of the soft Bellman backup of
    (def-11-maxent) in chapter 11, Q(s, a) = r + gamma E_{s'}[V(s')] with
    V(s') = E_{a'~pi}[Q(s', a') - alpha log pi(a'|s')]:

        y_n = r_n + gamma (1 - d_n) [ next_q_n - alpha next_logp_n ],

    with ``next_q`` (N,) = min_j Q_j'(s'_n, a'_n) of the target critics at a fresh
    a'_n ~ pi(.|s'_n), ``next_logp`` (N,) = log pi(a'_n|s'_n), ``terminated`` (N,) of 0/1
    (no bootstrap after a termination; a time-limit truncation bootstraps), ``alpha`` >= 0 the
    temperature. E[y | s, a, s'] = r + gamma (1 - d) V(s'): the -alpha log pi term carries
    the later steps' entropy bonuses into Q (chapter 11 checks this mean against quadrature).
    """
    for name, x in (("rewards", rewards), ("terminated", terminated), ("next_q", next_q),
                    ("next_logp", next_logp)):
        V.tensor(x, name, ndim=1, nonempty=True)
    V.same_shape(rewards=rewards, terminated=terminated, next_q=next_q, next_logp=next_logp)
    if not bool(((terminated == 0) | (terminated == 1)).all()):
        raise ValueError("terminated must hold only 0 and 1")
    alpha = V.number(alpha, "alpha", low=0.0)
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    soft_v = next_q - alpha * next_logp
    return rewards + gamma * (1 - terminated) * soft_v


def temperature_loss(log_alpha: torch.Tensor, logp: torch.Tensor,
                     target_entropy: float) -> torch.Tensor:
    r"""The temperature's loss, the sample mean of (eq-11-alpha) of chapter 11, in beta = log alpha:

        J(beta) = -(1/N) sum_n e^beta (log pi(a_n|s_n) + H_target),
        dJ/dbeta = e^beta (H_hat - H_target),  H_hat = -(1/N) sum_n log pi(a_n|s_n),

    so a descent step lowers alpha while the estimated entropy H_hat exceeds the target and
    raises it while H_hat is below. ``log_alpha`` is a 0-dim tensor (the trained parameter);
    ``logp`` (N,) is treated as a constant (detached here).
    """
    V.tensor(log_alpha, "log_alpha", ndim=0)
    V.tensor(logp, "logp", ndim=1)
    if logp.numel() == 0:
        raise ValueError("logp must hold at least one log-probability")
    target_entropy = V.number(target_entropy, "target_entropy")
    return -(log_alpha.exp() * (logp.detach() + target_entropy)).mean()


def train(env_id: str = "Pendulum-v1", config: Config | None = None, *,
          progress: bool = True) -> History:
    """Train a tanh-squashed Gaussian policy and twin critics on ``env_id`` (a 1-D Box action
    space) with SAC; returns the :class:`pgbook.history.History` with models ``policy`` and
    ``critic`` and, per finished episode, the logs ``critic_loss``, ``actor_loss``, ``alpha``,
    ``entropy`` (latest values), ``updates`` and ``actor_updates`` (gradient steps so far).

    Seeded by ``config.seed`` and deterministic on CPU for a fixed thread count; the caller's
    random stream is left as it was, and the networks are float32 whatever its default dtype.
    """
    config = checked_config(config, Config)
    with training_run(config.seed, env_id) as envs:
        space = envs.single_action_space
        obs_dim, act_dim = envs.single_observation_space.shape[0], space.shape[0]
        policy = SquashedGaussianPolicy(obs_dim, act_dim, config.hidden, low=space.low,
                                        high=space.high)
        critic = QEnsemble(obs_dim, act_dim, config.hidden, n=2)  # twin Q_1, Q_2
        critic_target = copy.deepcopy(critic)
        actor_opt = torch.optim.Adam(policy.parameters(), lr=config.actor_lr, fused=True)
        critic_opt = torch.optim.Adam(critic.parameters(), lr=config.critic_lr, fused=True)
        auto = config.alpha is None
        log_alpha = torch.tensor(math.log(config.init_alpha), requires_grad=True)  # if auto
        alpha_opt = torch.optim.Adam([log_alpha], lr=config.alpha_lr, fused=True)
        target_entropy = (-float(act_dim) if config.target_entropy is None
                          else config.target_entropy)
        buffer = ReplayBuffer(obs_dim, act_dim, config.buffer_size)
        collector = Collector(envs, seed=config.seed)
        generator = torch.Generator().manual_seed(config.seed)  # mini-batch sampling
        warmup = UniformPolicy(space.low, space.high)
        history = History(env_id, config, models={"policy": policy, "critic": critic})
        alpha = config.init_alpha if auto else config.alpha
        stats = {"critic_loss": float("nan"), "actor_loss": float("nan"), "alpha": alpha,
                 "entropy": float("nan"), "updates": 0, "actor_updates": 0}
        bar = tqdm(total=config.total_steps, disable=not progress, desc=f"SAC {env_id}")
        for step in range(1, config.total_steps + 1):
            # 1. One env step (uniform actions during warm-up), stored in the replay buffer.
            batch = collector.collect_steps(warmup if step <= config.learning_starts
                                            else policy, 1)
            buffer.add_batch(batch)

            if step >= config.learning_starts:
                data = buffer.sample(config.batch_size, generator)
                # 2. Critics: regress Q_j(s, a) on the soft target
                #    y = r + gamma (1 - d) [min_j Q_j'(s', a') - alpha log pi(a'|s')].
                with torch.no_grad():
                    next_action, next_logp = policy.sample(data.next_obs)
                    next_q = critic_target(data.next_obs, next_action).min(0).values
                    y = soft_target(data.rewards, data.terminated, next_q, next_logp, alpha,
                                    config.gamma)
                critic_loss = ((critic(data.obs, data.actions) - y) ** 2).mean(1).sum()
                critic_opt.zero_grad()
                critic_loss.backward()
                critic_opt.step()

                # 3. Actor: J_pi = E[alpha log pi(a|s) - min_j Q_j(s, a)] with a reparameterised
                #    a = c + h tanh(m + sigma eps): autograd flows through the sample into Q.
                action, logp = policy.sample(data.obs)
                q_pi = critic(data.obs, action).min(0).values
                loss_pi = actor_loss(logp, q_pi, alpha)
                actor_opt.zero_grad()
                loss_pi.backward()
                actor_opt.step()

                # 4. Temperature: J(alpha) = E[-alpha (log pi + H_target)], a step on log alpha.
                if auto:
                    loss_alpha = temperature_loss(log_alpha, logp, target_entropy)
                    alpha_opt.zero_grad()
                    loss_alpha.backward()
                    alpha_opt.step()
                    alpha = log_alpha.exp().item()

                # 5. Target critics follow slowly: w' <- (1 - tau) w' + tau w.
                polyak_update(critic_target, critic, config.tau)
                stats.update(critic_loss=critic_loss.item(), actor_loss=loss_pi.item(),
                             alpha=alpha, entropy=-logp.mean().item(),
                             updates=stats["updates"] + 1,
                             actor_updates=stats["actor_updates"] + 1)

            bar.update(1)
            ended = len(batch.episode_returns)
            if ended:
                history.add_episodes(batch.episode_returns, batch.episode_lengths, [step] * ended)
                for _ in range(ended):
                    history.log(**stats)
                bar.set_postfix(ret=f"{history.last_mean(config.target_window):.1f}",
                                alpha=f"{alpha:.3f}")
                if history.target_reached():
                    break
        bar.close()
        return history.finish(step)
