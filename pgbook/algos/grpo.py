"""GRPO and its descendants on the digit-reversal task (chapters 9 and 13).

Group Relative Policy Optimization (Shao et al. 2024, DeepSeekMath; section 1.8 of the source)
on the toy language-model task of :mod:`pgbook.tasks`. Each iteration:

1. draw ``prompts_per_batch`` training prompts and sample G = ``group_size`` answers to each
   from the current policy pi_old (no critic, no value network); with dynamic sampling
   (``filter_groups``, DAPO) drop the groups whose rewards are all equal and sample more
   prompts until ``prompts_per_batch`` informative groups are in hand;
2. score every answer with the verifiable reward and turn the rewards of each group into
   advantages, by default A_i = (r_i - mean) / (std + eps) (:mod:`pgbook.returns`);
3. take ``updates_per_batch`` Adam steps (DeepSeekMath's mu) on the clipped objective with the
   k3 penalty towards the frozen reference policy pi_ref (:mod:`pgbook.grpo_objectives`):

       J = (1/B) sum_i (1/|o_i|) sum_t [ min(r_{i,t} A_i, clip(r_{i,t}, 1-eps, 1+eps) A_i)
                                          - beta k3_{i,t} ].

``Config.objective`` picks one of the presets of :data:`PRESETS`; the fields that default to
None take the preset's value, and setting one explicitly changes only that ingredient:

* ``"grpo"``: DeepSeekMath (Shao et al. 2024, eq. 3), the loop above (chapter 9);
* ``"grpo_sequence"``: the source's section 1.8, one ratio pi_theta(o_i|q) / pi_old(o_i|q);
* ``"dr_grpo"``: Dr. GRPO (Liu et al. 2025): the constant 1/L (L = answer budget) in place of
  1/|o_i|, advantages r_i - mean (no std), beta = 0;
* ``"dapo"``: DAPO (Yu et al. 2025): clip [1 - 0.2, 1 + 0.28], one token mean over the batch,
  beta = 0, dynamic sampling (no overlong shaping);
* ``"gspo"``: GSPO (Zheng et al. 2025): ratio exp(mean_t log-ratio) per answer, clip
  [1 - 3e-4, 1 + 4e-4], beta = 0;
* ``"cispo"``: CISPO (MiniMax-M1, 2025): REINFORCE weighted by sg(min(r, 1 + eps_high)), token
  mean, beta = 0;
* ``"rloo"``: RLOO (Kool et al. 2019; Ahmadian et al. 2024): leave-one-out advantages,
  REINFORCE on log pi(o_i|q) summed over tokens, beta = 0.

Before GRPO
starts, a short supervised warm-up (``warmup_steps``) gives a policy that already succeeds
sometimes, so that groups carry signal; the reference policy is a frozen copy of that starting
policy. Accuracy is measured on held-out prompts, one sampled answer each.
Read top to bottom: ``PRESETS``, ``Config``, the three steps, then ``train``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, fields

import torch
from torch.distributions import kl_divergence
from tqdm import tqdm

from .. import _validate as V
from ..grpo_objectives import AGGREGATIONS, IMPORTANCE_LEVELS, cispo, grpo, grpo_sequence
from ..history import History
from ..kl_estimators import ESTIMATORS, PLACEMENTS, kl_k3
from ..objectives import not_clip
from ..returns import (
    batch_normalized_advantages,
    group_advantages,
    informative_groups,
    rloo_advantages,
)
from ..tasks import ReverseTask, TinyLM, accuracy, supervised_warm_up
from .run import checked_config, training_run

__all__ = ["ADVANTAGES", "PRESETS", "TASKS", "Config", "Variant", "train"]

#: advantage estimators: DeepSeekMath's (r - mean)/std, Dr. GRPO's r - mean, RLOO's
#: leave-one-out r_i - mean_{j != i} r_j, REINFORCE++'s batch-normalised advantage
ADVANTAGES = {"group_std": lambda r: group_advantages(r),
              "group_mean": lambda r: group_advantages(r, scale_by_std=False),
              "rloo": rloo_advantages, "batch_std": batch_normalized_advantages}

#: the tasks :func:`train` knows: the answer budget each gives when ``Config.answer_budget`` is
#: None (None: the task's default, max_len + 1; "reverse_long": three times that,
#: room for wrong answers to run long: the length bias of chapter 13 shows more clearly at 3x
#: than at 2x, see benchmarks/README.md)
TASKS = {"reverse": lambda max_len: None, "reverse_long": lambda max_len: 3 * (max_len + 1)}

_GRPO = dict(loss="grpo", advantage="group_std", aggregation="sequence_mean",
             importance_level="token", clip_eps=0.2, eps_high=None, beta=0.04,
             kl_estimator="k3", kl_placement="loss", filter_groups=False)

#: Each objective's ingredients. ``loss`` is the function of :mod:`pgbook.grpo_objectives` the
#: trainer calls; eps_high None means the clip is symmetric (eps_high = clip_eps), except for
#: "cispo", where clip_eps None means no lower bound on the weight. A field a loss does not
#: read is absent from its preset, and setting it is an error.
PRESETS: dict[str, dict] = {
    # DeepSeekMath (Shao et al. 2024, eq. 3): per-token ratio, 1/|o_i| per answer, std-scaled
    # group advantages, k3 penalty with beta 0.04 in the loss.
    "grpo": _GRPO,
    # The source's section 1.8: one ratio per answer, pi_theta(o_i|q) / pi_old(o_i|q).
    "grpo_sequence": dict(loss="grpo_sequence", advantage="group_std", clip_eps=0.2, beta=0.04,
                          filter_groups=False),
    # Dr. GRPO (Liu et al. 2025, "Understanding R1-Zero-like training"): a constant normaliser
    # (the answer budget L) in place of 1/|o_i|, advantages not divided by the std, no KL.
    "dr_grpo": {**_GRPO, "aggregation": "constant", "advantage": "group_mean", "beta": 0.0},
    # DAPO (Yu et al. 2025): clip-higher (0.2 / 0.28), one token mean over the whole batch, no
    # KL, dynamic sampling (groups with all-equal rewards dropped and resampled). Its overlong
    # reward shaping is not included.
    "dapo": {**_GRPO, "aggregation": "token_mean", "eps_high": 0.28, "beta": 0.0,
             "filter_groups": True},
    # GSPO (Zheng et al. 2025): one ratio per answer, the geometric mean
    # s_i = exp(mean_t (logp - logp_old)), clipped to [1 - 3e-4, 1 + 4e-4]; no KL.
    "gspo": {**_GRPO, "importance_level": "sequence", "clip_eps": 3e-4, "eps_high": 4e-4,
             "beta": 0.0},
    # CISPO (MiniMax-M1, 2025): J = sum_t w sg(clip(r, ., 1 + eps_high)) A logp, token mean, no
    # lower bound on the weight, no KL. The paper gives no eps_high; 0.28 is DAPO's bound.
    "cispo": dict(loss="cispo", advantage="group_std", aggregation="token_mean", clip_eps=None,
                  eps_high=0.28, filter_groups=False),
    # RLOO (Ahmadian et al. 2024): leave-one-out advantages, REINFORCE on log pi(o_i|q) (tokens
    # summed, 1/B), clipped only on the later updates of a batch; no KL.
    "rloo": {**_GRPO, "aggregation": "sum", "advantage": "rloo", "beta": 0.0},
}


@dataclass(frozen=True)
class Variant:
    """A config's objective with every ingredient resolved (:meth:`Config.variant`); the
    fields a loss does not read are None."""

    loss: str
    advantage: str
    aggregation: str | None
    importance_level: str | None
    clip_eps: float | None
    eps_high: float | None
    beta: float | None
    kl_estimator: str | None
    kl_placement: str | None
    filter_groups: bool


#: the Config fields that default to None = "the preset's value"
_INGREDIENTS = tuple(f.name for f in fields(Variant) if f.name != "loss")


@dataclass
class Config:
    """Settings of GRPO (or a descendant) on the digit-reversal task. Checked when made: a bad
    value raises ``ValueError`` naming the field. The ingredient fields (``advantage`` to
    ``filter_groups``) default to None, the value of the ``objective``'s preset
    (:data:`PRESETS`); :meth:`variant` resolves them."""

    objective: str = "grpo"  #: a key of PRESETS
    advantage: str | None = None  #: a key of ADVANTAGES
    aggregation: str | None = None  #: grpo_objectives.AGGREGATIONS: weight of each token
    importance_level: str | None = None  #: "token" ratio, or GSPO's "sequence" ratio
    clip_eps: float | None = None  #: eps (lower bound of the clip), in (0, 1)
    eps_high: float | None = None  #: upper bound 1 + eps_high (None in the preset: = clip_eps)
    beta: float | None = None  #: weight of the KL penalty towards pi_ref (DeepSeekMath: 0.04)
    kl_estimator: str | None = None  #: "k1", "k2" or "k3" (kl_estimators.ESTIMATORS)
    kl_placement: str | None = None  #: "loss" or "reward" (kl_estimators.PLACEMENTS)
    filter_groups: bool | None = None  #: DAPO's dynamic sampling
    max_sampling_rounds: int = 10  #: with filter_groups: rounds of prompts per iteration at most
    group_size: int = 8  #: G answers per prompt
    prompts_per_batch: int = 16  #: prompts per iteration (B = prompts_per_batch * G answers)
    updates_per_batch: int = 2  #: clipped Adam steps on each batch (DeepSeekMath's mu)
    lr: float = 2e-3  #: Adam step size
    max_grad_norm: float = 1.0  #: clip the gradient's global norm
    iterations: int = 200  #: sampling iterations (each has updates_per_batch steps)
    warmup_steps: int = 50  #: supervised Adam steps before GRPO (0: none)
    warmup_lr: float = 3e-3
    warmup_batch: int = 64
    d_model: int = 32  #: width of the policy's transformer
    min_len: int = 2  #: prompt lengths of the task
    max_len: int = 5
    answer_budget: int | None = None  #: tokens an answer may have (None: the task's default)
    eval_every: int = 5  #: iterations between held-out evaluations
    eval_prompts: int = 500  #: held-out prompts per evaluation (one sampled answer each)
    target: float | None = 0.95  #: stop once held-out accuracy >= target (None: never)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in PRESETS:
            raise ValueError(f"objective must be one of {', '.join(PRESETS)}, "
                             f"got {self.objective!r}")
        preset = PRESETS[self.objective]
        for name in _INGREDIENTS:
            if getattr(self, name) is not None and name not in preset:
                raise ValueError(f"{name} does not apply to objective={self.objective!r} "
                                 f"(its loss {preset['loss']!r} has no such ingredient)")
        choices = {"advantage": tuple(ADVANTAGES), "aggregation": AGGREGATIONS,
                   "importance_level": IMPORTANCE_LEVELS, "kl_estimator": ESTIMATORS,
                   "kl_placement": PLACEMENTS}
        for name, allowed in choices.items():
            if getattr(self, name) is not None and getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, "
                                 f"got {getattr(self, name)!r}")
        if self.clip_eps is not None:
            V.number(self.clip_eps, "clip_eps", low=0.0, high=1.0, low_open=True,
                     high_open=True)
        if self.eps_high is not None:
            V.number(self.eps_high, "eps_high", low=0.0, low_open=True)
        if self.beta is not None:
            V.number(self.beta, "beta", low=0.0)
        if self.filter_groups is not None:
            V.flag(self.filter_groups, "filter_groups")
        V.positive_int(self.max_sampling_rounds, "max_sampling_rounds")
        V.positive_int(self.group_size, "group_size", minimum=2)
        V.positive_int(self.prompts_per_batch, "prompts_per_batch")
        V.positive_int(self.updates_per_batch, "updates_per_batch")
        V.number(self.lr, "lr", low=0.0, low_open=True)
        V.number(self.max_grad_norm, "max_grad_norm", low=0.0, low_open=True)
        V.positive_int(self.iterations, "iterations")
        V.positive_int(self.warmup_steps, "warmup_steps", minimum=0)
        V.number(self.warmup_lr, "warmup_lr", low=0.0, low_open=True)
        V.positive_int(self.warmup_batch, "warmup_batch")
        V.positive_int(self.d_model, "d_model")
        V.positive_int(self.min_len, "min_len")
        V.positive_int(self.max_len, "max_len", minimum=self.min_len)
        if self.answer_budget is not None:
            V.positive_int(self.answer_budget, "answer_budget", minimum=self.max_len + 1)
        V.positive_int(self.eval_every, "eval_every")
        V.positive_int(self.eval_prompts, "eval_prompts")
        if self.target is not None:
            V.number(self.target, "target", low=0.0, high=1.0)
        V.positive_int(self.seed, "seed", minimum=0)

    def variant(self) -> Variant:
        """The objective's ingredients: each explicit field, else the preset's value (and a
        symmetric clip, eps_high = clip_eps, when neither gives eps_high)."""
        preset = PRESETS[self.objective]
        values = {name: getattr(self, name) if getattr(self, name) is not None
                  else preset.get(name) for name in _INGREDIENTS}
        if values["eps_high"] is None and preset["loss"] == "grpo":
            values["eps_high"] = values["clip_eps"]
        return Variant(loss=preset["loss"], **values)


# --------------------------------------------------------------------------------------------
# 1. Sampling: G answers per prompt, with DAPO's dynamic sampling if asked for.
# --------------------------------------------------------------------------------------------

def _sample_groups(policy: TinyLM, env: ReverseTask, config: Config, filter_groups: bool,
                   gen: torch.Generator):
    """Sample groups of G answers until ``prompts_per_batch`` groups are collected (without
    filtering: one round). With ``filter_groups``, a group whose rewards are all equal is
    dropped, and rounds of ``prompts_per_batch`` prompts go on until that many informative
    groups are in hand or ``max_sampling_rounds`` rounds were sampled (then the informative
    groups so far, or the last round's groups if there is none, are trained on).

    Returns the trained batch (prompts, answers, mask, rewards) and every sampled answer's
    (rewards, lengths): env steps count the discarded answers too."""
    G, n = config.group_size, config.prompts_per_batch
    kept, sampled = [], []
    for _ in range(config.max_sampling_rounds if filter_groups else 1):
        prompts = env.sample_prompts(n, gen).repeat_interleave(G, 0)
        answers = policy.sample(prompts, env.answer_len)
        mask = env.answer_mask(answers)
        rewards = env.reward(prompts, answers)
        sampled.append((rewards, mask.sum(1)))
        batch = (prompts, answers, mask, rewards)
        if filter_groups:
            keep = informative_groups(rewards.view(-1, G)).repeat_interleave(G)
            batch = tuple(x[keep] for x in batch)
        if batch[0].shape[0]:
            kept.append(batch)
        if sum(b[0].shape[0] for b in kept) >= n * G:
            break
    if not kept:  # no informative group within the cap: zero advantages, only the KL acts
        kept = [(prompts, answers, mask, rewards)]
    batch = tuple(torch.cat(parts)[:n * G] for parts in zip(*kept, strict=True))
    return batch, tuple(torch.cat(parts) for parts in zip(*sampled, strict=True))


# --------------------------------------------------------------------------------------------
# 2. The objective of the variant, and its clip statistics.
# --------------------------------------------------------------------------------------------

def _objective(v: Variant, logp, logp_old, logp_ref, adv, mask) -> torch.Tensor:
    """J to maximise (:mod:`pgbook.grpo_objectives`) for the resolved variant ``v``."""
    if v.loss == "grpo_sequence":
        return grpo_sequence(logp, logp_old, logp_ref, adv, mask, v.clip_eps, v.beta)
    if v.loss == "cispo":
        return cispo(logp, logp_old, adv, mask, eps_high=v.eps_high, eps=v.clip_eps,
                     aggregation=v.aggregation)
    return grpo(logp, logp_old, logp_ref, adv, mask, v.clip_eps, v.beta, eps_high=v.eps_high,
                aggregation=v.aggregation, importance_level=v.importance_level,
                kl_estimator=v.kl_estimator, kl_placement=v.kl_placement)


@torch.no_grad()
def _clip_statistics(v: Variant, logp, logp_old, adv, mask) -> tuple[float, float]:
    """Share of the ratios outside [1 - eps, 1 + eps_high] (tokens, or answers for one ratio
    per answer), and the share with 1_not-clip(r, A) = 0, where the clipped term passes no
    gradient (chapter 8; CISPO's clipped weight always passes one, so 0 there)."""
    log_ratio = (logp - logp_old) * mask
    if v.loss == "grpo_sequence":  # the source's product of token ratios
        r, a, valid = log_ratio.sum(1).exp(), adv, torch.ones_like(adv, dtype=bool)
    elif v.importance_level == "sequence":  # GSPO's geometric mean
        r, a = (log_ratio.sum(1) / mask.sum(1)).exp(), adv
        valid = torch.ones_like(adv, dtype=bool)
    else:
        r, a, valid = log_ratio.exp(), adv[:, None].expand_as(log_ratio), mask
    lo = float("inf") if v.clip_eps is None else v.clip_eps
    hi = v.clip_eps if v.eps_high is None else v.eps_high
    outside = ((((r - 1) > hi) | ((1 - r) > lo)) & valid).sum() / valid.sum()
    if v.loss == "cispo":
        return outside.item(), 0.0
    zero_grad = (~not_clip(r, a, v.clip_eps, hi) & valid).sum() / valid.sum()
    return outside.item(), zero_grad.item()


def _mean_or_none(x: torch.Tensor) -> float | None:
    return x.double().mean().item() if x.numel() else None


# --------------------------------------------------------------------------------------------
# 3. The training loop.
# --------------------------------------------------------------------------------------------

def train(task: str = "reverse", config: Config | None = None, *,
          progress: bool = True) -> History:
    """Warm up a :class:`pgbook.tasks.TinyLM`, then train it with the config's objective.

    ``task`` names the task (:data:`TASKS`): ``"reverse"`` is :class:`pgbook.tasks.ReverseTask`
    with the config's prompt lengths and ``answer_budget``; ``"reverse_long"`` the same with a
    budget of 3 (max_len + 1) tokens unless the config sets one, so wrong answers can run
    longer than any correct one. Returns the :class:`pgbook.history.History` with models
    ``policy`` and ``reference`` (the frozen starting policy). Its episodes are the sampled
    answers, discarded ones included (return: the reward; env steps: answers sampled so far).
    Its logs: per iteration ``answers`` (cumulative answers sampled), ``batch_answers``
    (answers in this iteration's update: fewer than sampled under dynamic sampling),
    ``train_reward`` and ``mean_length`` (tokens, EOS included) over the answers sampled this
    iteration, ``length_correct`` / ``length_incorrect`` (mean length of the sampled answers
    with reward 1 / 0; None, not NaN, in an iteration that has none), ``kl`` (mean over the
    batch's answers of sum_t KL(pi_theta || pi_ref) at the visited prefixes, exact per token,
    when the batch was sampled), ``kl_k3`` (the same by k3), ``outside_clip_range`` and
    ``zero_gradient_fraction`` (:func:`_clip_statistics` of the last update); per evaluation
    ``eval_iterations`` (0 = before training), ``accuracy`` (held-out prompts, one sampled
    answer each), ``eval_answers`` and ``eval_seconds``; once ``warmup_loss`` per supervised
    step. Seeded by ``config.seed``, deterministic on CPU; the caller's random stream and
    default dtype are left as they were.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(map(repr, TASKS))}, got {task!r}")
    config = checked_config(config, Config)
    v = config.variant()
    with training_run(config.seed):
        budget = (TASKS[task](config.max_len) if config.answer_budget is None
                  else config.answer_budget)
        env = ReverseTask(config.min_len, config.max_len, answer_budget=budget)
        gen = torch.Generator().manual_seed(config.seed)
        held_out = env.sample_prompts(config.eval_prompts,
                                      torch.Generator().manual_seed(10_000 + config.seed),
                                      held_out=True)
        policy = TinyLM(config.d_model, max_tokens=env.max_len + env.answer_len)
        warmup_losses = supervised_warm_up(policy, env, config.warmup_steps,
                                           batch_size=config.warmup_batch,
                                           lr=config.warmup_lr, generator=gen)
        reference = copy.deepcopy(policy).requires_grad_(False)  # pi_ref: the starting policy
        history = History(task, config, models={"policy": policy, "reference": reference})
        history.logs["warmup_loss"] = list(warmup_losses)
        optimizer = torch.optim.Adam(policy.parameters(), lr=config.lr)
        G, answers_so_far = config.group_size, 0

        def evaluate(iteration: int) -> None:  # held-out accuracy, one sampled answer each
            history.log(eval_iterations=iteration, eval_answers=answers_so_far,
                        accuracy=accuracy(policy, env, held_out), eval_seconds=history.seconds())

        evaluate(0)
        bar = tqdm(total=config.iterations, disable=not progress,
                   desc=f"GRPO ({config.objective})")
        for it in range(1, config.iterations + 1):
            # 1. G answers to each prompt from pi_old, their rewards and advantages.
            (prompts, answers, mask, rewards), (all_rewards, all_lengths) = _sample_groups(
                policy, env, config, v.filter_groups, gen)
            adv = ADVANTAGES[v.advantage](rewards.view(-1, G)).flatten()
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
                loss = -_objective(v, logp, logp_old, logp_ref, adv, mask)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), config.max_grad_norm)
                optimizer.step()
            outside, zero_grad = _clip_statistics(v, logp, logp_old, adv, mask)

            # 3. Bookkeeping (one "episode" per sampled answer); held-out accuracy.
            n = len(all_rewards)
            history.add_episodes(all_rewards, all_lengths,
                                 range(answers_so_far + 1, answers_so_far + n + 1))
            answers_so_far += n
            history.log(answers=answers_so_far, batch_answers=len(rewards),
                        train_reward=all_rewards.mean().item(),
                        mean_length=all_lengths.double().mean().item(), kl=kl_exact,
                        kl_k3=k3, outside_clip_range=outside, zero_gradient_fraction=zero_grad)
            correct = all_rewards == 1
            for name, lengths in (("length_correct", all_lengths[correct]),
                                  ("length_incorrect", all_lengths[~correct])):
                history.logs.setdefault(name, []).append(_mean_or_none(lengths))  # None: none
            bar.update(1)
            if it % config.eval_every == 0 or it == config.iterations:
                evaluate(it)
                bar.set_postfix(acc=f"{history.logs['accuracy'][-1]:.3f}", kl=f"{kl_exact:.3f}")
                if config.target is not None and history.logs["accuracy"][-1] >= config.target:
                    break
        bar.close()
        return history.finish(answers_so_far)
