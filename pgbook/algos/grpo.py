"""GRPO: group-relative advantages, clipped per-token updates and a KL penalty (chapter 9).

Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath; section 1.8 of the source)
on the toy language-model task of :mod:`pgbook.tasks`. Each iteration:

1. draw ``prompts_per_batch`` training prompts and sample G = ``group_size`` answers to each
   from the current policy pi_old (no critic, no value network);
2. score every answer with the verifiable reward and turn the rewards of each group into
   advantages A_i = (r_i - mean) / (std + eps) (:func:`pgbook.returns.group_advantages`);
3. take ``updates_per_batch`` Adam steps (DeepSeekMath's mu) on the clipped objective with the
   k3 penalty towards the frozen reference policy pi_ref (:func:`pgbook.objectives.grpo`):

       J = (1/B) sum_i (1/|o_i|) sum_t [ min(r_{i,t} A_i, clip(r_{i,t}, 1-eps, 1+eps) A_i)
                                          - beta k3_{i,t} ].

``objective="grpo_sequence"`` uses the source's one ratio per answer instead, and
``objective="dr_grpo"`` Dr. GRPO's constant normaliser with unscaled advantages (Liu et al.
2025). Before GRPO starts, a short supervised warm-up (``warmup_steps``) gives a policy that
already succeeds sometimes, so that groups carry signal; the reference policy is a frozen copy
of that starting policy. Accuracy is measured on held-out prompts, one sampled answer each.
Read top to bottom: ``Config``, then ``train``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Literal

import torch
from torch.distributions import kl_divergence
from tqdm import tqdm

from .. import _validate as V
from ..grpo_objectives import dr_grpo, grpo, grpo_sequence
from ..history import History
from ..kl_estimators import kl_k3
from ..objectives import not_clip
from ..returns import group_advantages
from ..tasks import ReverseTask, TinyLM, accuracy, supervised_warm_up
from .run import checked_config, training_run

__all__ = ["Config", "train"]

OBJECTIVES = {"grpo": grpo, "grpo_sequence": grpo_sequence, "dr_grpo": dr_grpo}


@dataclass
class Config:
    """Settings of GRPO on the digit-reversal task. Checked when made: a bad value raises
    ``ValueError`` naming the field."""

    objective: Literal["grpo", "grpo_sequence", "dr_grpo"] = "grpo"
    #: divide advantages by the group's std; None: True, except False for "dr_grpo"
    scale_by_std: bool | None = None
    group_size: int = 8  #: G answers per prompt
    prompts_per_batch: int = 16  #: prompts per iteration (B = prompts_per_batch * G answers)
    updates_per_batch: int = 2  #: clipped Adam steps on each batch (DeepSeekMath's mu)
    clip_eps: float = 0.2  #: eps of the clip, in (0, 1)
    beta: float = 0.04  #: weight of the k3 penalty towards pi_ref (DeepSeekMath: 0.04)
    lr: float = 2e-3  #: Adam step size
    max_grad_norm: float = 1.0  #: clip the gradient's global norm
    iterations: int = 200  #: sampling iterations (each has updates_per_batch steps)
    warmup_steps: int = 50  #: supervised Adam steps before GRPO (0: none)
    warmup_lr: float = 3e-3
    warmup_batch: int = 64
    d_model: int = 32  #: width of the policy's transformer
    min_len: int = 2  #: prompt lengths of the task
    max_len: int = 5
    eval_every: int = 5  #: iterations between held-out evaluations
    eval_prompts: int = 500  #: held-out prompts per evaluation (one sampled answer each)
    target: float | None = 0.95  #: stop once held-out accuracy >= target (None: never)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, "
                             f"got {self.objective!r}")
        if self.scale_by_std is not None and not isinstance(self.scale_by_std, bool):
            raise ValueError(f"scale_by_std must be a bool or None, got {self.scale_by_std!r}")
        V.positive_int(self.group_size, "group_size", minimum=2)
        V.positive_int(self.prompts_per_batch, "prompts_per_batch")
        V.positive_int(self.updates_per_batch, "updates_per_batch")
        V.number(self.clip_eps, "clip_eps", low=0.0, high=1.0, low_open=True, high_open=True)
        V.number(self.beta, "beta", low=0.0)
        V.number(self.lr, "lr", low=0.0, low_open=True)
        V.number(self.max_grad_norm, "max_grad_norm", low=0.0, low_open=True)
        V.positive_int(self.iterations, "iterations")
        V.positive_int(self.warmup_steps, "warmup_steps", minimum=0)
        V.number(self.warmup_lr, "warmup_lr", low=0.0, low_open=True)
        V.positive_int(self.warmup_batch, "warmup_batch")
        V.positive_int(self.d_model, "d_model")
        V.positive_int(self.min_len, "min_len")
        V.positive_int(self.max_len, "max_len", minimum=self.min_len)
        V.positive_int(self.eval_every, "eval_every")
        V.positive_int(self.eval_prompts, "eval_prompts")
        if self.target is not None:
            V.number(self.target, "target", low=0.0, high=1.0)
        V.positive_int(self.seed, "seed", minimum=0)


def train(task: str = "reverse", config: Config | None = None, *,
          progress: bool = True) -> History:
    """Warm up a :class:`pgbook.tasks.TinyLM`, then train it with GRPO.

    ``task`` names the task (only ``"reverse"``: :class:`pgbook.tasks.ReverseTask` with the
    config's prompt lengths; the argument keeps the ``train(env_id, config)`` signature of the
    other trainers). Returns the :class:`pgbook.history.History` with models ``policy`` and
    ``reference`` (the frozen starting policy). Its episodes are the sampled answers (return:
    the reward; env steps: answers sampled so far). Its logs: per iteration ``answers``
    (cumulative), ``train_reward`` (batch mean), ``mean_length`` (tokens, EOS included), ``kl``
    (mean over the batch's answers of sum_t KL(pi_theta || pi_ref) at the visited prefixes,
    exact per token, when the batch was sampled), ``kl_k3`` (the same by k3, as the objective
    sees it), ``outside_clip_range`` (share of valid tokens, or of answers for
    "grpo_sequence", whose ratio left [1-eps, 1+eps] in the last update) and
    ``zero_gradient_fraction`` (the same share with 1_not-clip(r, A_i) = 0, where the clipped
    term passes no gradient; the k3 penalty still pulls on them; chapter 8); per evaluation
    ``eval_iterations`` (0 = before GRPO), ``accuracy`` (held-out prompts, one sampled answer
    each), ``eval_answers`` and ``eval_seconds``; once ``warmup_loss`` per supervised step.
    Seeded by ``config.seed``, deterministic on CPU; the caller's random stream and default
    dtype are left as they were.
    """
    if task != "reverse":
        raise ValueError(f"task must be 'reverse', got {task!r}")
    config = checked_config(config, Config)
    with training_run(config.seed):
        env = ReverseTask(config.min_len, config.max_len)
        gen = torch.Generator().manual_seed(config.seed)
        held_out = env.sample_prompts(config.eval_prompts,
                                      torch.Generator().manual_seed(10_000 + config.seed),
                                      held_out=True)
        policy = TinyLM(config.d_model, max_tokens=2 * env.max_len + 1)
        warmup_losses = supervised_warm_up(policy, env, config.warmup_steps,
                                           batch_size=config.warmup_batch,
                                           lr=config.warmup_lr, generator=gen)
        reference = copy.deepcopy(policy).requires_grad_(False)  # pi_ref: the starting policy
        history = History(task, config, models={"policy": policy, "reference": reference})
        history.logs["warmup_loss"] = list(warmup_losses)
        optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
        objective = OBJECTIVES[config.objective]
        scale = (config.objective != "dr_grpo" if config.scale_by_std is None
                 else config.scale_by_std)
        G, L, answers_so_far = config.group_size, env.answer_len, 0

        def evaluate(iteration: int) -> None:  # held-out accuracy, one sampled answer each
            history.log(eval_iterations=iteration, eval_answers=answers_so_far,
                        accuracy=accuracy(policy, env, held_out), eval_seconds=history.seconds())

        evaluate(0)
        bar = tqdm(total=config.iterations, disable=not progress,
                   desc=f"GRPO ({config.objective})")
        for it in range(1, config.iterations + 1):
            # 1. G answers to each prompt from pi_old, their rewards and group advantages.
            prompts = env.sample_prompts(config.prompts_per_batch, gen).repeat_interleave(G, 0)
            answers = policy.sample(prompts, L)
            mask = env.answer_mask(answers)
            rewards = env.reward(prompts, answers)
            adv = group_advantages(rewards.view(-1, G), scale_by_std=scale).flatten()
            with torch.no_grad():
                dist_old = policy.dist(prompts, answers)
                logp_old = dist_old.log_prob(answers)
                dist_ref = reference.dist(prompts, answers)
                logp_ref = dist_ref.log_prob(answers)
                kl_exact = (kl_divergence(dist_old, dist_ref) * mask).sum(1).mean().item()
                k3 = (kl_k3(logp_old, logp_ref) * mask).sum(1).mean().item()

            # 2. mu clipped steps on the objective (samples from pi_old throughout).
            for _ in range(config.updates_per_batch):
                logp = policy.log_probs(prompts, answers)
                loss = -objective(logp, logp_old, logp_ref, adv, mask, config.clip_eps,
                                  config.beta)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
                optimizer.step()
            with torch.no_grad():  # the clip statistics of the last update (chapter 8)
                log_ratio = (logp - logp_old) * mask
                if config.objective == "grpo_sequence":
                    r, a, valid = log_ratio.sum(1).exp(), adv, torch.ones_like(adv, dtype=bool)
                else:
                    r, a, valid = log_ratio.exp(), adv[:, None].expand_as(log_ratio), mask
                outside = (((r - 1).abs() > config.clip_eps) & valid).sum() / valid.sum()
                zero_grad = (~not_clip(r, a, config.clip_eps) & valid).sum() / valid.sum()

            # 3. Bookkeeping (one "episode" per answer); held-out accuracy every eval_every.
            history.add_episodes(rewards, mask.sum(1),
                                 range(answers_so_far + 1, answers_so_far + len(rewards) + 1))
            answers_so_far += len(rewards)
            history.log(answers=answers_so_far, train_reward=rewards.mean().item(),
                        mean_length=mask.sum(1).double().mean().item(), kl=kl_exact,
                        kl_k3=k3, outside_clip_range=outside.item(),
                        zero_gradient_fraction=zero_grad.item())
            bar.update(1)
            if it % config.eval_every == 0 or it == config.iterations:
                evaluate(it)
                bar.set_postfix(acc=f"{history.logs['accuracy'][-1]:.3f}", kl=f"{kl_exact:.3f}")
                if config.target is not None and history.logs["accuracy"][-1] >= config.target:
                    break
        bar.close()
        return history.finish(answers_so_far)
