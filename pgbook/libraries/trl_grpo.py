r"""TRL's GRPO trainer (TRL 1.16.0) called on pgbook's inputs: loss, advantages, k3's gradient.

Everything calls TRL's own code in ``trl/trainer/grpo_trainer.py`` (TRL 1.16.0, transformers
5.25.0), on a language model built from a config (nothing is downloaded):

* :func:`compare_loss`: ``GRPOTrainer._compute_loss`` (the unbound method, on a stand-in
  object carrying the attributes it reads) for each ``loss_type`` and
  ``importance_sampling_level``, value and gradient in the model's parameters, against
  :func:`pgbook.grpo_objectives.grpo` (or :func:`pgbook.grpo_objectives.cispo`) on log-probs
  pgbook computes from the same model;
* :func:`compare_group_advantages`: TRL's advantage lines (``_generate_and_score_completions``,
  lines 2763-2787, with TRL's ``trl.trainer.utils.nanstd``) against
  :func:`pgbook.returns.group_advantages`;
* :func:`stand_in`: the trainer object those calls run on (also used by
  :mod:`pgbook.libraries.trl_logps`, which hands TRL's loss the log-probabilities directly).

TRL minimises: its loss is -J. Its per-token log-probs come from its fused LM head
(``trl/trainer/utils.py, add_fused_lm_head``; ``trl/kernels/chunked_logprob.py,
ChunkedLogProbFunction``), which accumulates the log-softmax in float32 even for a float64
model, so the model comparisons hold to float32 bounds (see :func:`compare_loss`).
"""

from __future__ import annotations

import contextlib
import inspect
import math
import types
import warnings
from collections import defaultdict
from dataclasses import dataclass

import torch

from .. import _validate as V
from ..grpo_objectives import IMPORTANCE_LEVELS, cispo, grpo, token_weights
from ..kl_estimators import kl_k3
from ..returns import group_advantages
from . import torch_defaults

__all__ = ["ADVANTAGE_LINES", "LOSS_TYPES", "VARIANTS", "AdvantageComparison", "LossComparison",
           "compare_group_advantages", "compare_loss", "stand_in", "tiny_lm"]

#: TRL loss_type -> (pgbook aggregation, pgbook function); sapo and vespo have no pgbook twin
LOSS_TYPES = {"grpo": "sequence_mean", "bnpo": "token_mean", "dapo": "token_mean",
              "dr_grpo": "constant", "luspo": "sum", "cispo": "token_mean"}
#: pgbook-side variants: the right conventions, and plausible mistakes
VARIANTS = ("correct", "wrong_aggregation", "k3_swapped", "kl_ratio_dropped", "no_temperature")
_WRONG_AGG = {"sequence_mean": "token_mean", "token_mean": "sequence_mean",
              "constant": "sequence_mean", "sum": "sequence_mean"}
U64, U32 = 2.0**-53, 2.0**-24
D = torch.float64


@contextlib.contextmanager
def _quiet_import():
    """Importing transformers imports ``tqdm.auto``, which warns once in a notebook without
    ipywidgets ("IProgress not found"); nothing here draws a progress bar."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        yield


def stand_in(loss_type, beta, eps, eps_high, level, max_completion_length, model,
             bias_correction_kl):
    """A GRPOTrainer without __init__, carrying exactly what ``_compute_loss`` reads (TRL's
    own defaults: no delta, no entropy mask or bonus, no vLLM, one process and one
    accumulation step, train mode; ``use_bias_correction_kl`` as given, True in GRPOConfig).
    ``model`` None stands for a model in train mode that is never called (the log-probs are
    handed in). The callers validate the arguments."""
    with _quiet_import():
        from trl.trainer.grpo_trainer import GRPOTrainer

    tr = object.__new__(GRPOTrainer)
    acc = types.SimpleNamespace(autocast=contextlib.nullcontext, num_processes=1,
                                gather=lambda x: x, reduce=lambda x, reduction="sum": x,
                                gather_for_metrics=lambda x: x, is_main_process=True)
    tr.__dict__.update(
        beta=beta, loss_type=loss_type, epsilon_low=eps,
        epsilon_high=eps if eps_high is None else eps_high, importance_sampling_level=level,
        args=types.SimpleNamespace(use_bias_correction_kl=bias_correction_kl, delta=None,
                                   steps_per_generation=1),
        top_entropy_quantile=1.0, aux_loss_enabled=False, off_policy_mask_threshold=None,
        use_vllm=False, vllm_importance_sampling_correction=False,
        model=model if model is not None else types.SimpleNamespace(training=True),
        current_gradient_accumulation_steps=1, max_completion_length=max_completion_length,
        accelerator=acc, _entropy_bonus_enabled=False,
        _metrics={"train": defaultdict(list), "eval": defaultdict(list)})
    return tr


@torch_defaults
def tiny_lm(seed: int = 0, *, temperature: float = 0.7, layers: int = 1):
    """A float64 Llama (transformers ``LlamaConfig``: vocab 32, hidden 16, MLP 32, 2 heads,
    ``layers`` blocks) with random weights from ``seed``, and TRL's fused LM head added
    (``add_fused_lm_head(model, temperature)``, as ``GRPOTrainer.__init__`` does)."""
    seed = V.positive_int(seed, "seed", minimum=0)
    temperature = V.number(temperature, "temperature", low=0.0, low_open=True)
    layers = V.positive_int(layers, "layers")
    with _quiet_import():
        from transformers import LlamaConfig, LlamaForCausalLM
        from trl.trainer.utils import add_fused_lm_head

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32,
                      num_hidden_layers=layers, num_attention_heads=2, num_key_value_heads=2,
                      max_position_embeddings=64)
    model = LlamaForCausalLM(cfg).to(D)
    add_fused_lm_head(model, temperature=temperature, outputs=("log_probs", "entropy"))
    return model


def _batch(model, seed):
    """Prompts of 3 tokens (one left-padded), completions of lengths 5, 1, 3, 4 (right-padded
    to L = 5), advantages of both signs, logp_old and logp_ref moved off the model's logp by
    up to +-0.5 so that ratios fall inside and outside [1 - eps, 1 + eps_high]."""
    g = torch.Generator().manual_seed(seed)
    B, P, L = 4, 3, 5
    prompt_ids = torch.randint(0, 32, (B, P), generator=g)
    prompt_mask = torch.ones(B, P, dtype=torch.long)
    prompt_mask[1, 0] = 0
    completion_ids = torch.randint(0, 32, (B, L), generator=g)
    lengths = torch.tensor([5, 1, 3, 4])
    mask = (torch.arange(L)[None] < lengths[:, None]).long()
    logp = _own_logp(model, prompt_ids, prompt_mask, completion_ids, mask, 1.0).detach()
    shift = (torch.rand(B, L, generator=g, dtype=D) - 0.5)
    return dict(prompt_ids=prompt_ids, prompt_mask=prompt_mask, completion_ids=completion_ids,
                completion_mask=mask, advantages=torch.tensor([1.2, -0.7, 0.9, -1.5], dtype=D),
                old_per_token_logps=(logp + shift) * mask,
                ref_per_token_logps=(logp - 0.6 * shift.flip(0)) * mask,
                num_items_in_batch=mask.sum())


def _own_logp(model, prompt_ids, prompt_mask, completion_ids, mask, temperature):
    """pgbook's forward: log_softmax(logits / T) of each completion token, read at the
    position before it (the shift), 0 at padding."""
    ids = torch.cat([prompt_ids, completion_ids], 1)
    att = torch.cat([prompt_mask, mask], 1)
    P = prompt_ids.shape[1]
    logits = model(input_ids=ids, attention_mask=att).logits[:, P - 1:-1] / temperature
    lp = torch.log_softmax(logits, -1).gather(-1, completion_ids[..., None])[..., 0]
    return lp * mask


@dataclass(frozen=True)
class LossComparison:
    """TRL's loss and pgbook's -J on one batch: values, max gradient error over the model's
    parameters, the derived tolerances, and the verdict."""

    loss_type: str
    importance_level: str
    beta: float
    bias_correction_kl: bool
    variant: str
    trl_value: float
    pgbook_value: float
    value_err: float
    grad_err: float
    value_tol: float
    grad_tol: float

    @property
    def ratio(self) -> float:
        """The worst error over its bound, value or gradient: passed iff <= 1."""
        return max(self.value_err / self.value_tol, self.grad_err / self.grad_tol)

    @property
    def passed(self) -> bool:
        return self.ratio <= 1.0

    def __str__(self) -> str:
        mark = "agrees" if self.passed else "DISAGREES"
        kl = ", k3 x r" if self.beta and self.bias_correction_kl else ""
        return (f"TRL {self.loss_type} ({self.importance_level}, beta {self.beta:g}{kl}) "
                f"[{self.variant}]: {mark}, value error {self.value_err:.1e} (tolerance "
                f"{self.value_tol:.1e}), gradient error {self.grad_err:.1e} (tolerance "
                f"{self.grad_tol:.1e})")


def _pgbook_loss(lp, batch, loss_type, level, beta, eps, eps_high, mcl, bias_correction,
                 variant):
    mask = batch["completion_mask"].bool()
    adv, old, ref = (batch[k] for k in ("advantages", "old_per_token_logps",
                                        "ref_per_token_logps"))
    agg = LOSS_TYPES[loss_type]
    if variant == "wrong_aggregation":
        agg = _WRONG_AGG[agg]
    if loss_type == "cispo":  # TRL clamps the ratio at epsilon_high itself
        J = cispo(lp, old, adv, mask, eps_high=eps_high - 1, aggregation=agg)
        return -J
    norm = mcl if agg == "constant" else None
    kl_beta = 0.0 if variant == "k3_swapped" else beta
    weighted = bias_correction and variant != "kl_ratio_dropped"
    J = grpo(lp, old, ref, adv, mask, eps, kl_beta, eps_high=eps_high, aggregation=agg,
             normalizer=norm, importance_level=level, kl_ratio_weight=weighted)
    if variant == "k3_swapped":  # exp(logp - ref) - (logp - ref) - 1: the other direction
        w = token_weights(mask, agg, normalizer=norm, dtype=D)
        log_q = lp - old if level == "token" else (
            ((lp - old) * mask).sum(1, keepdim=True) / mask.sum(1, keepdim=True))
        q = torch.exp(log_q) if weighted else 1.0
        J = J - beta * (w * q * kl_k3(ref, lp) * mask).sum()
    return -J


@torch_defaults
def compare_loss(loss_type: str, *, importance_level: str = "token", beta: float = 0.0,
                 bias_correction_kl: bool = True, variant: str = "correct", eps: float = 0.2,
                 eps_high: float | None = None,
                 temperature: float = 0.7, max_completion_length: int = 8, seed: int = 0,
                 model=None) -> LossComparison:
    r"""TRL's ``GRPOTrainer._compute_loss`` (TRL 1.16.0) against pgbook's -J on one batch.

    TRL: ``per_token_loss = -min(r A, clip(r, 1-eps_low, 1+eps_high) A) + beta q k3`` with
    k3 = exp(ref - logp) - (ref - logp) - 1 and q = r (the clip term's ratio, s_i at the
    sequence level, with its gradient) when ``bias_correction_kl`` (TRL's
    ``use_bias_correction_kl``, True by default), else q = 1; reduced by ``loss_type``:
    grpo (mean per answer, then over answers), bnpo (over the batch's tokens), dr_grpo (sum / (B
    max_completion_length)), dapo (sum / ``num_items_in_batch``, the global token count
    across processes, here one process: bnpo's), luspo (per answer sum, then mean), cispo
    (-sg(min(r, eps_high)) A logp, token mean). pgbook: :func:`pgbook.grpo_objectives.grpo`
    with the aggregation of :data:`LOSS_TYPES` and ``kl_ratio_weight=bias_correction_kl``
    (:func:`~pgbook.grpo_objectives.cispo` with
    pgbook's eps_high = TRL's epsilon_high - 1) on log-probs of ``_own_logp`` (logits / T).
    ``variant`` (:data:`VARIANTS`) puts a plausible mistake on pgbook's side.

    Tolerances (float32 head): each TRL log-prob z_o/T - lse(z/T) is accumulated in float32,
    so |err_t| <= delta_t = u32 (3 max_v |z_v/T| + V + 4) (u32 = 2^-24: one rounding of each
    logit, V + 2 in the sum of exps, 2 in the subtractions). value_tol = sum_t |dL/dlogp_t|
    delta_t + 64 u64 (first order). grad_tol = 2 n delta_max max|grad| (n valid tokens: each
    token's contribution to the gradient is perturbed relatively by <= 2 delta, its
    probabilities and its weight): a first-order estimate, not a rigorous bound.
    """
    loss_type = V.choice(loss_type, "loss_type", LOSS_TYPES)
    importance_level = V.choice(importance_level, "importance_level", IMPORTANCE_LEVELS)
    beta = V.number(beta, "beta", low=0.0)
    V.flag(bias_correction_kl, "bias_correction_kl")
    variant = V.choice(variant, "variant", VARIANTS)
    eps, eps_high = V.clip_bounds(eps, eps_high)
    temperature = V.number(temperature, "temperature", low=0.0, low_open=True)
    mcl = V.positive_int(max_completion_length, "max_completion_length", minimum=5)
    if loss_type == "cispo" and (beta != 0 or importance_level != "token"):
        raise ValueError("loss_type='cispo' is compared with beta=0 and importance_level="
                         f"'token' only, got beta={beta}, importance_level={importance_level!r}")
    if loss_type == "cispo":
        eps_high = 5.0  # TRL's recommended epsilon_high for cispo: the ratio's cap
    model = tiny_lm(seed, temperature=temperature) if model is None else model
    batch = _batch(model, seed)
    params = [p for p in model.parameters() if p.requires_grad]
    tr = stand_in(loss_type, beta, eps, eps_high, importance_level, mcl, model,
                   bias_correction_kl)
    trl_loss = tr._compute_loss(model, batch)
    g_trl = torch.autograd.grad(trl_loss, params, allow_unused=True)
    T = 1.0 if variant == "no_temperature" else temperature
    args = (batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"],
            batch["completion_mask"])
    lp = _own_logp(model, *args, T)
    lp_leaf = lp.detach().requires_grad_(True)
    ours = _pgbook_loss(lp, batch, loss_type, importance_level, beta, eps, eps_high, mcl,
                        bias_correction_kl, variant)
    g_ours = torch.autograd.grad(ours, params, allow_unused=True)
    dl = torch.autograd.grad(_pgbook_loss(lp_leaf, batch, loss_type, importance_level, beta,
                                          eps, eps_high, mcl, bias_correction_kl, "correct"),
                             lp_leaf)[0]
    with torch.no_grad():
        ids = torch.cat([args[0], args[2]], 1)
        z = model(input_ids=ids, attention_mask=torch.cat([args[1], args[3]], 1)).logits
        zmax = (z[:, args[0].shape[1] - 1:-1].abs().amax(-1) / temperature)
    delta = U32 * (3 * zmax + 32 + 4) * batch["completion_mask"]
    flat = [(a - b).abs().max().item() for a, b in zip(g_trl, g_ours, strict=True)
            if a is not None and b is not None]
    gmax = max(b.abs().max().item() for b in g_ours if b is not None)
    n = int(batch["completion_mask"].sum())
    return LossComparison(
        loss_type, importance_level, beta, bias_correction_kl, variant, trl_loss.item(),
        ours.item(),
        abs(trl_loss.item() - ours.item()), max(flat),
        (dl.abs() * delta).sum().item() + 64 * U64, 2 * n * delta.max().item() * gmax)


# --------------------------------------------------------------------------------------------
# Group advantages.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AdvantageComparison:
    """TRL's advantages and pgbook's on the same rewards (num_groups, G)."""

    scale_rewards: str
    unbiased: bool
    max_err: float
    tol: float
    source_matches: bool  #: TRL's method still holds the transcribed lines (ADVANTAGE_LINES)

    @property
    def ratio(self) -> float:
        """The error over its bound: passed iff <= 1 (and the source still matches)."""
        return self.max_err / self.tol if self.source_matches else math.inf

    @property
    def passed(self) -> bool:
        return self.ratio <= 1.0

    def __str__(self) -> str:
        mark = "agrees" if self.passed else "DISAGREES"
        source = "" if self.source_matches else "; TRL's lines changed"
        return (f"TRL advantages (scale_rewards={self.scale_rewards}) vs group_advantages("
                f"unbiased={self.unbiased}): {mark}, max error {self.max_err:.1e} "
                f"(tolerance {self.tol:.1e}){source}")


#: the lines of ``GRPOTrainer._generate_and_score_completions`` (TRL 1.16.0, 2763-2787) that
#: ``_trl_advantages`` transcribes; the comparison fails if the method no longer holds them
ADVANTAGE_LINES = (
    "mean_grouped_rewards = torch.nanmean(rewards.view(-1, num_generations), dim=1)",
    "std_rewards = nanstd(rewards.view(-1, num_generations), dim=1)",
    "advantages = rewards - mean_grouped_rewards",
    'if self.scale_rewards != "none":',
    "advantages = advantages / (std_rewards + 1e-4)",
)


def _source_matches() -> bool:
    with _quiet_import():
        from trl.trainer.grpo_trainer import GRPOTrainer
    try:
        source = inspect.getsource(GRPOTrainer._generate_and_score_completions)
    except (OSError, TypeError):
        return False
    return all(line in source for line in ADVANTAGE_LINES)


def _trl_advantages(rewards, scale_rewards):
    """TRL 1.16.0 ``_generate_and_score_completions`` lines 2763-2787 (sum_then_normalize),
    transcribed (the method also generates and scores, so it cannot be called alone), with
    TRL's own ``nanstd`` (Bessel-corrected: count / (count - 1)) called."""
    with _quiet_import():
        from trl.trainer.utils import nanstd

    G = rewards.shape[1]
    flat = rewards.reshape(-1)
    mean = torch.nanmean(flat.view(-1, G), dim=1).repeat_interleave(G, dim=0)
    std = nanstd(flat.view(-1, G), dim=1).repeat_interleave(G, dim=0)
    adv = flat - mean
    if scale_rewards != "none":
        adv = adv / (std + 1e-4)
    return torch.nan_to_num(adv, nan=0.0).view_as(rewards)


@torch_defaults
def compare_group_advantages(scale_rewards: str = "group", *, unbiased: bool = True,
                             seed: int = 0) -> AdvantageComparison:
    r"""TRL's A_i = (r_i - mean_G r) / (std_G r + 1e-4), std with Bessel's correction
    (``nanstd``), or A_i = r_i - mean for ``scale_rewards="none"``, against
    :func:`pgbook.returns.group_advantages` (eps=1e-4, ``unbiased``, scale_by_std =
    scale_rewards != "none") on 6 random groups of G = 4 rewards and 2 equal-reward groups
    (both give exactly 0 there: TRL's mean of equal numbers is exact for these values).
    ``scale_rewards="batch"`` has no pgbook twin and is not compared. TRL's lines are
    transcribed (:data:`ADVANTAGE_LINES`, checked in TRL's source on every call: a changed
    line fails the comparison); ``nanstd`` is TRL's. Tolerance: the
    centring rounds by <= 4 u64 max|r| and the division by std + 1e-4 amplifies that by
    1 / (s_min + 1e-4) (s_min the smallest std of a non-constant group), the std's own
    rounding (<= 8 u64 relative) adds 8 u64 max|A|: tol = 64 u64 (max|A| + max|r| / s_min).
    With scaling, TRL's ``nanstd`` divides the integer counts, count / (count - 1), in
    torch's default dtype float32 (``trl/trainer/utils.py, nanstd``), so the Bessel factor
    4/3 is rounded to float32: relative error <= u32 in the variance, u32 / 2 in the std and
    in A: tol += u32 max|A| / 2.
    """
    scale_rewards = V.choice(scale_rewards, "scale_rewards", ("group", "none"))
    unbiased = V.flag(unbiased, "unbiased")
    seed = V.positive_int(seed, "seed", minimum=0)
    g = torch.Generator().manual_seed(seed)
    rewards = torch.cat([torch.rand(6, 4, generator=g, dtype=D),
                         torch.tensor([[1.0] * 4, [0.0] * 4], dtype=D)])
    ours = group_advantages(rewards, 1e-4, scale_by_std=scale_rewards != "none",
                            unbiased=unbiased)
    theirs = _trl_advantages(rewards, scale_rewards)
    s_min = rewards[:6].std(dim=1).min().item()
    a_max = theirs.abs().max().item()
    tol = 64 * U64 * (a_max + rewards.abs().max().item() / s_min)
    if scale_rewards == "group":  # nanstd's count / (count - 1) is a float32 division
        tol += 0.5 * U32 * a_max
    return AdvantageComparison(scale_rewards, unbiased,
                               (ours - theirs).abs().max().item(), tol, _source_matches())
