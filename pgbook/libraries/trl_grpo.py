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
* :func:`k3_gradient_exact`: the expected gradient of TRL's k3 term under on-policy sampling,
  by enumerating every answer of a one-token categorical: grad KL(pi_ref || pi);
* :func:`trl_grpo_loss_fn`: TRL's ``_compute_loss`` as ``(logp, logp_old, logp_ref, adv, mask)
  -> loss`` for :func:`pgbook.conformance.check_grpo_loss` (:func:`conformance_report`).

TRL minimises: its loss is -J. Its per-token log-probs come from its fused LM head
(``trl/trainer/utils.py, add_fused_lm_head``; ``trl/kernels/chunked_logprob.py,
ChunkedLogProbFunction``), which accumulates the log-softmax in float32 even for a float64
model, so the model comparisons hold to float32 bounds (see :func:`compare_loss`); the
conformance and enumeration checks bypass the head and hold to float64 bounds.
"""

from __future__ import annotations

import contextlib
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

__all__ = ["LOSS_TYPES", "VARIANTS", "AdvantageComparison", "KLGradient", "LossComparison",
           "compare_group_advantages", "compare_loss", "conformance_report",
           "k3_gradient_exact", "tiny_lm", "trl_grpo_loss_fn"]

#: TRL loss_type -> (pgbook aggregation, pgbook function); sapo and vespo have no pgbook twin
LOSS_TYPES = {"grpo": "sequence_mean", "bnpo": "token_mean", "dapo": "token_mean",
              "dr_grpo": "constant", "luspo": "sum", "cispo": "token_mean"}
#: pgbook-side variants: the right conventions, and plausible mistakes
VARIANTS = ("correct", "wrong_aggregation", "k3_swapped", "no_temperature")
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


def _choice(x, name, options):
    if not isinstance(x, str) or x not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {x!r}")
    return x


def _stand_in(loss_type, beta, eps, eps_high, level, max_completion_length, model):
    """A GRPOTrainer without __init__, carrying exactly what ``_compute_loss`` reads (TRL's
    own defaults: no delta, no entropy mask or bonus, no vLLM, one process and one
    accumulation step, train mode)."""
    with _quiet_import():
        from trl.trainer.grpo_trainer import GRPOTrainer

    tr = object.__new__(GRPOTrainer)
    acc = types.SimpleNamespace(autocast=contextlib.nullcontext, num_processes=1,
                                gather=lambda x: x, reduce=lambda x, reduction="sum": x,
                                gather_for_metrics=lambda x: x, is_main_process=True)
    tr.__dict__.update(
        beta=beta, loss_type=loss_type, epsilon_low=eps,
        epsilon_high=eps if eps_high is None else eps_high, importance_sampling_level=level,
        args=types.SimpleNamespace(use_bias_correction_kl=False, delta=None,
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
        return (f"TRL {self.loss_type} ({self.importance_level}, beta {self.beta:g}) "
                f"[{self.variant}]: {mark}, value error {self.value_err:.1e} (tolerance "
                f"{self.value_tol:.1e}), gradient error {self.grad_err:.1e} (tolerance "
                f"{self.grad_tol:.1e})")


def _pgbook_loss(lp, batch, loss_type, level, beta, eps, eps_high, mcl, variant):
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
    J = grpo(lp, old, ref, adv, mask, eps, kl_beta, eps_high=eps_high, aggregation=agg,
             normalizer=norm, importance_level=level)
    if variant == "k3_swapped":  # exp(logp - ref) - (logp - ref) - 1: the other direction
        w = token_weights(mask, agg, normalizer=norm, dtype=D)
        J = J - beta * (w * kl_k3(ref, lp) * mask).sum()
    return -J


@torch_defaults
def compare_loss(loss_type: str, *, importance_level: str = "token", beta: float = 0.0,
                 variant: str = "correct", eps: float = 0.2, eps_high: float | None = None,
                 temperature: float = 0.7, max_completion_length: int = 8, seed: int = 0,
                 model=None) -> LossComparison:
    r"""TRL's ``GRPOTrainer._compute_loss`` (TRL 1.16.0) against pgbook's -J on one batch.

    TRL: ``per_token_loss = -min(r A, clip(r, 1-eps_low, 1+eps_high) A) + beta k3`` with
    k3 = exp(ref - logp) - (ref - logp) - 1, reduced by ``loss_type``: grpo (mean per answer,
    then over answers), bnpo (over the batch's tokens), dr_grpo (sum / (B
    max_completion_length)), dapo (sum / ``num_items_in_batch``, the global token count
    across processes, here one process: bnpo's), luspo (per answer sum, then mean), cispo
    (-sg(min(r, eps_high)) A logp, token mean). pgbook: :func:`pgbook.grpo_objectives.grpo`
    with the aggregation of :data:`LOSS_TYPES` (:func:`~pgbook.grpo_objectives.cispo` with
    pgbook's eps_high = TRL's epsilon_high - 1) on log-probs of ``_own_logp`` (logits / T).
    ``variant`` (:data:`VARIANTS`) puts a plausible mistake on pgbook's side.

    Tolerances (float32 head): each TRL log-prob z_o/T - lse(z/T) is accumulated in float32,
    so |err_t| <= delta_t = u32 (3 max_v |z_v/T| + V + 4) (u32 = 2^-24: one rounding of each
    logit, V + 2 in the sum of exps, 2 in the subtractions). value_tol = sum_t |dL/dlogp_t|
    delta_t + 64 u64 (first order). grad_tol = 2 n delta_max max|grad| (n valid tokens: each
    token's contribution to the gradient is perturbed relatively by <= 2 delta, its
    probabilities and its weight): a first-order estimate, not a rigorous bound.
    """
    loss_type = _choice(loss_type, "loss_type", LOSS_TYPES)
    importance_level = _choice(importance_level, "importance_level", IMPORTANCE_LEVELS)
    beta = V.number(beta, "beta", low=0.0)
    variant = _choice(variant, "variant", VARIANTS)
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
    tr = _stand_in(loss_type, beta, eps, eps_high, importance_level, mcl, model)
    trl_loss = tr._compute_loss(model, batch)
    g_trl = torch.autograd.grad(trl_loss, params, allow_unused=True)
    T = 1.0 if variant == "no_temperature" else temperature
    args = (batch["prompt_ids"], batch["prompt_mask"], batch["completion_ids"],
            batch["completion_mask"])
    lp = _own_logp(model, *args, T)
    lp_leaf = lp.detach().requires_grad_(True)
    ours = _pgbook_loss(lp, batch, loss_type, importance_level, beta, eps, eps_high, mcl,
                        variant)
    g_ours = torch.autograd.grad(ours, params, allow_unused=True)
    dl = torch.autograd.grad(_pgbook_loss(lp_leaf, batch, loss_type, importance_level, beta,
                                          eps, eps_high, mcl, "correct"), lp_leaf)[0]
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
        loss_type, importance_level, beta, variant, trl_loss.item(), ours.item(),
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

    @property
    def ratio(self) -> float:
        """The error over its bound: passed iff <= 1."""
        return self.max_err / self.tol

    @property
    def passed(self) -> bool:
        return self.ratio <= 1.0

    def __str__(self) -> str:
        mark = "agrees" if self.passed else "DISAGREES"
        return (f"TRL advantages (scale_rewards={self.scale_rewards}) vs group_advantages("
                f"unbiased={self.unbiased}): {mark}, max error {self.max_err:.1e} "
                f"(tolerance {self.tol:.1e})")


def _trl_advantages(rewards, scale_rewards):
    """TRL 1.16.0 ``_generate_and_score_completions`` lines 2763-2787 (sum_then_normalize),
    verbatim in meaning, with TRL's own ``nanstd`` (Bessel-corrected: count / (count - 1))."""
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
    ``scale_rewards="batch"`` has no pgbook twin and is not compared. Tolerance: the
    centring rounds by <= 4 u64 max|r| and the division by std + 1e-4 amplifies that by
    1 / (s_min + 1e-4) (s_min the smallest std of a non-constant group), the std's own
    rounding (<= 8 u64 relative) adds 8 u64 max|A|: tol = 64 u64 (max|A| + max|r| / s_min).
    With scaling, TRL's ``nanstd`` divides the integer counts, count / (count - 1), in
    torch's default dtype float32 (``trl/trainer/utils.py, nanstd``), so the Bessel factor
    4/3 is rounded to float32: relative error <= u32 in the variance, u32 / 2 in the std and
    in A: tol += u32 max|A| / 2.
    """
    scale_rewards = _choice(scale_rewards, "scale_rewards", ("group", "none"))
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
                               (ours - theirs).abs().max().item(), tol)


# --------------------------------------------------------------------------------------------
# TRL's k3 term: its expected gradient, by enumeration.
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KLGradient:
    """E_{o~pi}[grad of TRL's k3 loss term] (every answer enumerated) against the two
    candidate gradients; ``err_ref_pi`` against grad KL(pi_ref || pi), ``err_pi_ref`` against
    grad KL(pi || pi_ref), and the tolerance."""

    vocab: int
    err_ref_pi: float
    err_pi_ref: float
    tol: float

    @property
    def ratio(self) -> float:
        """The error from grad KL(ref || pi) over its bound."""
        return self.err_ref_pi / self.tol

    @property
    def passed(self) -> bool:
        """The expected gradient is grad KL(ref || pi) and not grad KL(pi || ref)."""
        return self.err_ref_pi <= self.tol < self.err_pi_ref

    def __str__(self) -> str:
        mark = "holds" if self.passed else "FAILS"
        return (f"E[grad TRL k3], vocabulary {self.vocab}: {mark}; from grad KL(ref || pi) "
                f"{self.err_ref_pi:.1e}, from grad KL(pi || ref) {self.err_pi_ref:.1e} "
                f"(tolerance {self.tol:.1e})")


def _patched(tr, logp):
    """Make the stand-in's ``_get_per_token_logps_and_entropies`` return ``logp``."""
    def fake(self, *args, **kwargs):
        return logp, torch.zeros_like(logp), None
    tr._get_per_token_logps_and_entropies = types.MethodType(fake, tr)
    return tr


def _trl_call(tr, logp, logp_old, logp_ref, adv, mask):
    B, L = logp.shape
    inputs = dict(prompt_ids=torch.zeros(B, 1, dtype=torch.long),
                  prompt_mask=torch.ones(B, 1, dtype=torch.long),
                  completion_ids=torch.zeros(B, L, dtype=torch.long),
                  completion_mask=mask.to(logp.dtype), advantages=adv,
                  old_per_token_logps=logp_old, ref_per_token_logps=logp_ref,
                  num_items_in_batch=mask.to(logp.dtype).sum())
    return _patched(tr, logp)._compute_loss(None, inputs)


@torch_defaults
def k3_gradient_exact(vocab: int = 8, *, seed: int = 0) -> KLGradient:
    r"""The expected gradient of TRL's KL term under on-policy sampling, exactly.

    A one-token answer o ~ pi_theta = softmax(theta) over ``vocab`` tokens, pi_ref =
    softmax(theta_ref). For each o, TRL's ``_compute_loss`` (loss_type "grpo", beta = 1,
    A = 0, logp_old = logp: the clip term is 0) returns k3(o) = exp(ref_o - logp_o) -
    (ref_o - logp_o) - 1; its gradient in theta, o held fixed, is (1 - pi_ref(o)/pi(o))
    grad log pi(o). Summing pi(o) times that over all o gives
    sum_o (pi(o) - pi_ref(o)) grad log pi(o) = -sum_o pi_ref(o) grad log pi(o)
    = grad KL(pi_ref || pi) = pi - pi_ref (chapter 13; pgbook.kl_table's cell
    (k3, loss, on) -> KL(ref||pi)), not grad KL(pi || pi_ref) (the value's target).
    Tolerance: vocab terms of float64 rounding, each <= 8 u64 (|pi - ref| <= 1):
    tol = 8 (vocab + 8) u64.
    """
    vocab = V.positive_int(vocab, "vocab", minimum=2)
    seed = V.positive_int(seed, "seed", minimum=0)
    g = torch.Generator().manual_seed(seed)
    theta = torch.randn(vocab, generator=g, dtype=D).requires_grad_(True)
    ref = torch.log_softmax(torch.randn(vocab, generator=g, dtype=D), -1)
    tr = _stand_in("grpo", 1.0, 0.2, None, "token", None, None)
    logpi = torch.log_softmax(theta, -1)
    expected = torch.zeros(vocab, dtype=D)
    one = torch.ones(1, 1, dtype=D)
    for o in range(vocab):
        lp = torch.log_softmax(theta, -1)[o].reshape(1, 1)
        loss = _trl_call(tr, lp, lp.detach(), ref[o].reshape(1, 1), torch.zeros(1, dtype=D),
                         one)
        (grad,) = torch.autograd.grad(loss, theta)
        expected += logpi[o].exp().detach() * grad
    pi = logpi.exp().detach()
    ref_pi = pi - ref.exp()
    theta2 = theta.detach().requires_grad_(True)
    lp2 = torch.log_softmax(theta2, -1)
    (pi_ref,) = torch.autograd.grad((lp2.exp() * (lp2 - ref)).sum(), theta2)
    return KLGradient(vocab, (expected - ref_pi).abs().max().item(),
                      (expected - pi_ref).abs().max().item(), 8 * (vocab + 8) * U64)


# --------------------------------------------------------------------------------------------
# Conformance: TRL's loss code as a reader's loss_fn.
# --------------------------------------------------------------------------------------------

def trl_grpo_loss_fn(loss_type: str = "grpo", *, eps: float = 0.2,
                     eps_high: float | None = None, beta: float = 0.0,
                     max_completion_length: int = 8, importance_level: str = "token"):
    r"""TRL 1.16.0's ``GRPOTrainer._compute_loss`` as ``loss_fn(logp, logp_old, logp_ref, adv,
    mask) -> loss`` (the signature of :func:`pgbook.conformance.check_grpo_loss`): a stand-in
    trainer whose ``_get_per_token_logps_and_entropies`` returns the given ``logp``, so
    every line after it (ratio, clip, k3, the ``loss_type`` reduction) is TRL's own. TRL
    minimises: the result is -J (``sign="loss"``). ``mask`` (B, L) 0/1 or bool."""
    _choice(loss_type, "loss_type", ("grpo", "bnpo", "dapo", "dr_grpo"))
    eps, eps_high = V.clip_bounds(eps, eps_high)
    beta = V.number(beta, "beta", low=0.0)
    mcl = V.positive_int(max_completion_length, "max_completion_length")
    importance_level = _choice(importance_level, "importance_level", IMPORTANCE_LEVELS)

    @torch_defaults
    def loss_fn(logp, logp_old, logp_ref, adv, mask):
        tr = _stand_in(loss_type, beta, eps, eps_high, importance_level, mcl, None)
        return _trl_call(tr, logp, logp_old, logp_ref, adv, mask)

    return loss_fn


@torch_defaults
def conformance_report(loss_type: str = "grpo", *, stated: str | None = None,
                       beta: float = 0.0, eps: float = 0.2, eps_high: float | None = None):
    """:func:`pgbook.conformance.check_grpo_loss` on :func:`trl_grpo_loss_fn` (``loss_type``)
    under the conventions ``stated`` (default: the same loss_type; a different one is a
    wrongly stated convention, which must fail). max_completion_length = 8."""
    from ..conformance import check_grpo_loss

    loss_type = _choice(loss_type, "loss_type", ("grpo", "bnpo", "dapo", "dr_grpo"))
    stated = loss_type if stated is None else _choice(stated, "stated",
                                                      ("grpo", "bnpo", "dapo", "dr_grpo"))
    fn = trl_grpo_loss_fn(loss_type, eps=eps, eps_high=eps_high, beta=beta)
    return check_grpo_loss(fn, loss_type=stated, eps=eps, eps_high=eps_high, beta=beta,
                           max_completion_length=8 if stated == "dr_grpo" else None)
