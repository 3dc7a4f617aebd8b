r"""Check *your* implementation against the book's reference: a kit for a reader's test suite.

Each ``check_*`` calls the reader's function on a fixed battery of float64 inputs
(:mod:`pgbook.conformance.batteries`: every clip region, the bounds, A = 0, extreme ratios,
masks and ragged lengths, episode ends inside the batch, truncation, equal-reward groups),
converts its output to pgbook's convention under the conventions the reader *states* (sign,
reduction, normaliser, std), and compares the value and the autograd gradient with pgbook's
reference:

* :func:`check_ppo_clip`: ``loss_fn(logp, logp_old, adv) -> scalar`` against
  :func:`pgbook.objectives.ppo_clip` (chapter 8), gradient in logp;
* :func:`check_gae`: ``fn(rewards, values, terminated, truncated, next_values, gamma, lam)
  -> advantages`` against :func:`pgbook.returns.gae` (chapter 6), time- or batch-major;
* :func:`check_grpo_loss`: ``loss_fn(logp, logp_old, logp_ref, adv, mask) -> scalar`` against
  :func:`pgbook.grpo_objectives.grpo` with TRL's ``loss_type`` names (chapters 9, 13);
* :func:`check_kl_penalty`: ``fn(logp, logp_ref[, logp_old]) -> per-sample terms`` against
  :func:`pgbook.kl_estimators.kl_penalty` (chapter 13), gradient in logp;
* :func:`check_group_advantages`: ``fn(rewards) -> advantages`` against
  :func:`pgbook.returns.group_advantages` (chapter 9).

Each returns a :class:`ConformanceReport`; :func:`assert_conforms` raises ``AssertionError``
naming the failing regions (for pytest). A reader's function that raises, returns a non-tensor
or a tensor of the wrong shape fails that case, with the reason in the row's ``note``.

Tolerances (float64 rounding). A case passes when, for its value and its gradient,
max|yours - reference| <= rtol * max(s, max|reference|), s the case's ``scale``: a bound on
the magnitude of the terms the reduction adds up (max |r A| for PPO; T max(|r| + |V| + |V'|)
for GAE; see the batteries). Any float64 evaluation order of a reduction of n <= 64 terms,
each from <= 20 rounded operations (exp of arguments |x| <= 10 included, whose relative error
grows like |x| u), is within (n + 30) u * (sum |terms| / normaliser) <= 94 u s ~ 1.0e-14 s of
the exact value (u = 2^-53; Higham, *Accuracy and Stability*, eq. 4.4); the reference is too,
so two correct implementations differ by at most ~2.1e-14 s. The default rtol = 1e-10 allows
~5000 times that for a reader's algebraic rearrangements (e.g. exp(logp) / exp(logp_old) for
the ratio). Measured: the correct rearrangements in ``tests/test_conformance.py`` (SB3- and
TRL-style code, exp(logp) / exp(logp_old)) stay within 1.4e-16 s, 1.4e-6 of the tolerance,
and the deliberate mistakes there miss by at least 4e-5 s (the symmetric clip under a stated
eps_high), 4e5 times the tolerance. Pass ``rtol`` to tighten or loosen it; float32 code
needs about 1e-5.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .. import _validate as V
from ..grpo_objectives import grpo
from ..kl_estimators import ESTIMATORS, PLACEMENTS, kl_penalty
from ..objectives import ppo_clip
from ..returns import gae, group_advantages, rloo_advantages
from .batteries import GRPO_WIDTH, Case, gae_cases, group_cases, grpo_cases, kl_cases, ppo_cases

__all__ = ["LOSS_TYPES", "CaseResult", "ConformanceReport", "assert_conforms", "check_gae",
           "check_group_advantages", "check_grpo_loss", "check_kl_penalty", "check_ppo_clip"]

#: TRL's GRPO ``loss_type`` -> pgbook's aggregation (:func:`pgbook.grpo_objectives.token_weights`)
LOSS_TYPES = {"grpo": "sequence_mean", "bnpo": "token_mean", "dapo": "token_mean",
              "dr_grpo": "constant"}
SIGNS = ("loss", "objective")
DEFAULT_RTOL = 1e-10


@dataclass(frozen=True)
class CaseResult:
    """One case of a battery: its label and region, the largest value and gradient errors
    (inf where the reader's function failed; the gradient's nan where only values are
    compared), the tolerances they were held to, the verdict."""

    label: str
    region: str
    value_err: float
    grad_err: float
    value_tol: float
    grad_tol: float
    passed: bool
    note: str = ""


@dataclass(frozen=True)
class ConformanceReport:
    """A check's result: one :class:`CaseResult` per case, and the conventions stated."""

    check: str
    conventions: str
    rows: tuple
    rtol: float

    @property
    def passed(self) -> bool:
        return all(row.passed for row in self.rows)

    @property
    def failures(self) -> dict:
        """{region: (failing CaseResult, ...)} in the battery's order; empty when it passed."""
        out: dict = {}
        for row in self.rows:
            if not row.passed:
                out.setdefault(row.region, []).append(row)
        return {region: tuple(rows) for region, rows in out.items()}

    @property
    def failing_regions(self) -> tuple:
        return tuple(self.failures)

    def __str__(self) -> str:
        # The region column is blank where the case is its region's only, same-named case.
        regions = [row.region if row.region != row.label else "" for row in self.rows]
        width = max([4] + [len(row.label) for row in self.rows])
        rwidth = max([6] + [len(r) for r in regions])
        head = (f"{self.check} ({self.conventions}; rtol {self.rtol:.0e}): "
                f"{sum(r.passed for r in self.rows)}/{len(self.rows)} cases conform")
        lines = [head, f"  {'case':<{width}}  {'region':<{rwidth}}  value err   grad err"]
        for row, region in zip(self.rows, regions, strict=True):
            mark = "ok" if row.passed else "FAIL"
            grad = "      n/a" if math.isnan(row.grad_err) else f"{row.grad_err:9.2e}"
            line = (f"  {row.label:<{width}}  {region:<{rwidth}}  {row.value_err:9.2e}  "
                    f"{grad}  {mark}")
            lines.append(line + (f"  {row.note}" if row.note else ""))
        if not self.passed:
            lines.append("  failing regions: " + "; ".join(self.failing_regions))
        return "\n".join(lines)


def assert_conforms(report: ConformanceReport) -> None:
    """Raise ``AssertionError`` listing the failing regions (and the table) unless every case
    of ``report`` passed: the one line a reader's pytest test needs."""
    if not isinstance(report, ConformanceReport):
        raise ValueError(f"report must be a ConformanceReport, got {type(report).__name__}")
    if not report.passed:
        raise AssertionError(f"{report.check} does not conform in "
                             f"{len(report.failures)} region(s): "
                             f"{', '.join(report.failing_regions)}\n{report}")


# --------------------------------------------------------------------------------------------
# The runner: call both functions on a case, compare value and gradient.
# --------------------------------------------------------------------------------------------

def _fresh(case: Case, grad_names) -> dict:
    """A private copy of the case's inputs (the reader may not spoil them), with grad on."""
    return {k: v.detach().clone().requires_grad_(k in grad_names and v.is_floating_point())
            for k, v in case.inputs.items()}


def _grads(out: torch.Tensor, inputs: dict, grad_names) -> list:
    leaves = [inputs[n] for n in grad_names]
    if not out.requires_grad:
        return [torch.zeros_like(x) for x in leaves]
    got = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
    return [torch.zeros_like(x) if g is None else g for x, g in zip(leaves, got, strict=True)]


def _max_err(a: list, b: list) -> float:
    return max((x.detach() - y.detach()).abs().max().item() if x.numel() else 0.0
               for x, y in zip(a, b, strict=True))


def _compare(case: Case, reference, reader, grad_names, rtol) -> CaseResult:
    inputs = _fresh(case, grad_names)
    ref = reference(inputs)
    ref_grads = _grads(ref, inputs, grad_names)
    value_tol = rtol * max(case.scale, ref.detach().abs().max().item())
    grad_tol = rtol * max([case.scale] + [g.abs().max().item() for g in ref_grads if g.numel()])
    inputs = _fresh(case, grad_names)
    try:
        out = reader(inputs)
    except Exception as err:  # noqa: BLE001 - the reader's failure is the finding
        note = f"raised {type(err).__name__}: {str(err)[:80]}"
        return CaseResult(case.label, case.region, math.inf, math.inf, value_tol, grad_tol,
                          False, note)
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(ref.shape):
        got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        return CaseResult(case.label, case.region, math.inf, math.inf, value_tol, grad_tol,
                          False, f"returned {got}, expected a tensor of shape {tuple(ref.shape)}")
    out = out.to(ref.dtype)
    value_err = _max_err([out], [ref])
    if not grad_names:  # values only (GAE without check_grad, group advantages)
        return CaseResult(case.label, case.region, value_err, math.nan, value_tol, math.nan,
                          value_err <= value_tol)
    grad_err = _max_err(_grads(out, inputs, grad_names), ref_grads)
    passed = value_err <= value_tol and grad_err <= grad_tol
    return CaseResult(case.label, case.region, value_err, grad_err, value_tol, grad_tol, passed)


def _run(check, conventions, cases, reference, reader, grad_names, rtol) -> ConformanceReport:
    rows = tuple(_compare(c, reference, reader, grad_names, rtol) for c in cases)
    return ConformanceReport(check, conventions, rows, rtol)


def _common(fn, fn_name, rtol, seed):
    if not callable(fn):
        raise ValueError(f"{fn_name} must be callable, got {type(fn).__name__}")
    V.positive_int(seed, "seed", minimum=0)
    return V.number(rtol, "rtol", low=0.0, low_open=True)


def _to_objective(out, sign, reduction, count):
    """The reader's scalar as pgbook's J: negate a loss, divide a sum by the sample count."""
    if not isinstance(out, torch.Tensor):
        return out
    out = -out if sign == "loss" else out
    return out / count if reduction == "sum" else out


# --------------------------------------------------------------------------------------------
# The checks.
# --------------------------------------------------------------------------------------------

def check_ppo_clip(loss_fn: Callable, *, eps: float = 0.2, eps_high: float | None = None,
                   sign: str = "loss", reduction: str = "mean", seed: int = 0,
                   rtol: float = DEFAULT_RTOL) -> ConformanceReport:
    r"""Check ``loss_fn(logp, logp_old, adv) -> scalar`` against PPO-Clip (chapter 8):

        J = (1/n) sum_k min(r_k A_k, clip(r_k, 1-eps, 1+eps_high) A_k),  r = exp(logp - logp_old),

    (:func:`pgbook.objectives.ppo_clip`), value and gradient in ``logp``, on
    :func:`~pgbook.conformance.batteries.ppo_cases`. The arguments are 1-D float64 tensors of
    one shape; bind eps yourself (e.g. ``functools.partial``). Conventions: ``sign="loss"``
    (you return -J, to minimise) or ``"objective"`` (J); ``reduction="mean"`` or ``"sum"``
    (n J); ``eps_high`` the upper bound (None: eps). At r exactly on a bound the reference
    is torch's autograd of min/clamp, the derivative from inside the range.
    """
    rtol = _common(loss_fn, "loss_fn", rtol, seed)
    eps, eps_high = V.clip_bounds(eps, eps_high)
    sign, reduction = V.choice(sign, "sign", SIGNS), V.choice(reduction, "reduction",
                                                            ("mean", "sum"))
    cases = ppo_cases(eps, eps_high, seed)

    def reference(x):
        return ppo_clip(x["logp"], x["logp_old"], x["adv"], eps, eps_high)

    def reader(x):
        out = loss_fn(x["logp"], x["logp_old"], x["adv"])
        return _to_objective(out, sign, reduction, x["logp"].numel())

    conventions = f"eps={eps:g}, eps_high={eps_high:g}, sign={sign}, reduction={reduction}"
    return _run("check_ppo_clip", conventions, cases, reference, reader, ["logp"], rtol)


def check_gae(fn: Callable, *, gamma: float = 0.99, lam: float = 0.95,
              layout: str = "time_major", check_grad: bool = False, seed: int = 0,
              rtol: float = DEFAULT_RTOL) -> ConformanceReport:
    r"""Check ``fn(rewards, values, terminated, truncated, next_values, gamma, lam) ->
    advantages`` against GAE (Schulman et al. 2016; chapter 6; :func:`pgbook.returns.gae`):

        delta_t = r_{t+1} + gamma V(s_{t+1}) (1 - terminated_t) - V(s_t),
        A_t = delta_t + gamma lambda (1 - done_t) A_{t+1},  done = terminated or truncated,

    with ``next_values[t]`` = V of row t's true next observation (the final observation where
    an episode ended), read wherever the row does not terminate: a truncated row bootstraps
    from it, and so does the last row of the batch. ``layout="time_major"``: tensors of shape
    (T, N), rows are time steps (pgbook's, and SB3's rollout buffer); ``"batch_major"``: (N, T)
    and you return (N, T). ``terminated``/``truncated`` are bool tensors; the rest float64.
    ``check_grad=True`` also compares the gradient of sum(A) in ``values`` and
    ``next_values`` (for GAE computed with autograd on; most code runs it under no_grad).
    Battery: :func:`~pgbook.conformance.batteries.gae_cases`.
    """
    rtol = _common(fn, "fn", rtol, seed)
    gamma = V.number(gamma, "gamma", low=0.0, high=1.0)
    lam = V.number(lam, "lam", low=0.0, high=1.0)
    layout = V.choice(layout, "layout", ("time_major", "batch_major"))
    V.flag(check_grad, "check_grad")

    def reference(x):
        return gae(x["rewards"], x["values"], x["terminated"], x["truncated"], gamma, lam,
                   next_values=x["next_values"])

    def reader(x):
        names = ("rewards", "values", "terminated", "truncated", "next_values")
        args = [x[n] if layout == "time_major" else x[n].T.contiguous() for n in names]
        out = fn(*args, gamma, lam)
        if layout == "batch_major" and isinstance(out, torch.Tensor) and out.dim() == 2:
            out = out.T
        return out

    grad_names = ["values", "next_values"] if check_grad else []
    conventions = f"gamma={gamma:g}, lam={lam:g}, layout={layout}"
    return _run("check_gae", conventions, gae_cases(seed), reference, reader, grad_names, rtol)


def check_grpo_loss(loss_fn: Callable, *, loss_type: str = "grpo", eps: float = 0.2,
                    eps_high: float | None = None, beta: float = 0.0, kl_estimator: str = "k3",
                    kl_ratio_weight: bool = False, max_completion_length: int | None = None,
                    sign: str = "loss",
                    mask_dtype: torch.dtype = torch.bool, seed: int = 0,
                    rtol: float = DEFAULT_RTOL) -> ConformanceReport:
    r"""Check ``loss_fn(logp, logp_old, logp_ref, adv, mask) -> scalar`` against GRPO
    (DeepSeekMath eq. 3; chapters 9, 13; :func:`pgbook.grpo_objectives.grpo`):

        J = sum_i sum_t w_{i,t} [min(r A_i, clip(r, 1-eps, 1+eps_high) A_i) - beta k_{i,t}],

    value and gradient in ``logp``. Shapes: logp, logp_old, logp_ref and mask (B, L), adv (B,)
    (TRL's per-token log-probs and ``completion_mask``); padded entries hold arbitrary finite
    numbers. ``loss_type`` in TRL's vocabulary sets w (:data:`LOSS_TYPES`): ``"grpo"`` the mean
    over each answer's tokens then over answers, ``"bnpo"``/``"dapo"`` the mean over every
    token of the batch, ``"dr_grpo"`` the sum divided by B * ``max_completion_length``
    (required; at least :data:`~pgbook.conformance.batteries.GRPO_WIDTH`). ``beta`` and
    ``kl_estimator`` (k1, k2, k3 of log(pi/pi_ref), in the loss) as your loss has them;
    ``kl_ratio_weight=True`` if your loss multiplies each token's k by its ratio r (with its
    gradient: TRL's ``use_bias_correction_kl``, DeepSeek-V3.2's unbiased KL);
    ``sign="loss"`` (you return -J) or ``"objective"``; ``mask_dtype`` torch.bool or a
    floating dtype (0/1). Battery: :func:`~pgbook.conformance.batteries.grpo_cases`.
    """
    rtol = _common(loss_fn, "loss_fn", rtol, seed)
    aggregation = LOSS_TYPES[V.choice(loss_type, "loss_type", LOSS_TYPES)]
    eps, eps_high = V.clip_bounds(eps, eps_high)
    beta = V.number(beta, "beta", low=0.0)
    kl_estimator = V.choice(kl_estimator, "kl_estimator", ESTIMATORS)
    V.flag(kl_ratio_weight, "kl_ratio_weight")
    sign = V.choice(sign, "sign", SIGNS)
    if not isinstance(mask_dtype, torch.dtype) or not (mask_dtype == torch.bool
                                                       or mask_dtype.is_floating_point):
        raise ValueError(f"mask_dtype must be torch.bool or a floating dtype, got {mask_dtype!r}")
    normalizer = None
    if loss_type == "dr_grpo":
        if max_completion_length is None:
            raise ValueError("max_completion_length must be given with loss_type='dr_grpo'")
        normalizer = V.positive_int(max_completion_length, "max_completion_length",
                                    minimum=GRPO_WIDTH)
    elif max_completion_length is not None:
        raise ValueError("max_completion_length is used only with loss_type='dr_grpo', got "
                         f"{max_completion_length!r} with loss_type={loss_type!r}")

    def reference(x):
        return grpo(x["logp"], x["logp_old"], x["logp_ref"], x["adv"], x["mask"], eps, beta,
                    eps_high=eps_high, aggregation=aggregation, normalizer=normalizer,
                    kl_estimator=kl_estimator, kl_ratio_weight=kl_ratio_weight)

    def reader(x):
        out = loss_fn(x["logp"], x["logp_old"], x["logp_ref"], x["adv"], x["mask"].to(mask_dtype))
        return _to_objective(out, sign, "mean", 1)

    conventions = (f"loss_type={loss_type} ({aggregation}), eps={eps:g}, eps_high={eps_high:g}, "
                   f"beta={beta:g}, kl={kl_estimator}{' x r' if kl_ratio_weight else ''}, "
                   f"sign={sign}")
    return _run("check_grpo_loss", conventions, grpo_cases(eps, eps_high, seed), reference,
                reader, ["logp"], rtol)


def check_kl_penalty(fn: Callable, *, estimator: str = "k3", placement: str = "loss",
                     importance_weighted: bool = False, reduction: str = "none", seed: int = 0,
                     rtol: float = DEFAULT_RTOL) -> ConformanceReport:
    r"""Check ``fn(logp, logp_ref) -> penalty`` (``fn(logp, logp_ref, logp_old)`` with
    ``importance_weighted``) against :func:`pgbook.kl_estimators.kl_penalty` (Schulman 2020;
    chapter 13), d = logp - logp_ref, rho = exp(-d):

        k1 = d,   k2 = d^2 / 2,   k3 = rho - 1 + d    (the estimator of KL(pi || ref));

    ``placement="loss"``: the term is k (r k with the importance weight r = exp(logp -
    logp_old)), differentiated with the sample fixed; ``"reward"``: sg(k) logp (sg(k) r), a
    surrogate whose gradient is sg(k) grad log pi. The penalty is what a loss *adds*
    (times beta). ``reduction="none"`` (you return the per-sample terms, 1-D), ``"mean"`` or
    ``"sum"``. Value and gradient in ``logp`` are compared. Battery:
    :func:`~pgbook.conformance.batteries.kl_cases`.
    """
    rtol = _common(fn, "fn", rtol, seed)
    estimator = V.choice(estimator, "estimator", ESTIMATORS)
    placement = V.choice(placement, "placement", PLACEMENTS)
    V.flag(importance_weighted, "importance_weighted")
    reduction = V.choice(reduction, "reduction", ("none", "mean", "sum"))
    reduce = {"none": lambda k: k, "mean": torch.mean, "sum": torch.sum}[reduction]

    def reference(x):
        return reduce(kl_penalty(x["logp"], x["logp_ref"], estimator=estimator,
                                 placement=placement, logp_old=x.get("logp_old")))

    def reader(x):
        extra = (x["logp_old"],) if importance_weighted else ()
        return fn(x["logp"], x["logp_ref"], *extra)

    conventions = (f"estimator={estimator}, placement={placement}, "
                   f"importance_weighted={importance_weighted}, reduction={reduction}")
    cases = kl_cases(seed, importance_weighted=importance_weighted)
    return _run("check_kl_penalty", conventions, cases, reference, reader, ["logp"], rtol)


def check_group_advantages(fn: Callable, *, baseline: str = "mean", scale_by_std: bool = True,
                           unbiased: bool = False, eps: float = 1e-4, seed: int = 0,
                           rtol: float = DEFAULT_RTOL) -> ConformanceReport:
    r"""Check ``fn(rewards) -> advantages`` (shape (num_groups, G) both) against GRPO's group
    advantages (DeepSeekMath; chapter 9; :func:`pgbook.returns.group_advantages`):

        A_i = (r_i - mean(r)) / (std(r) + eps)   (``scale_by_std``),   A_i = r_i - mean(r)
        (Dr. GRPO, ``scale_by_std=False``),

    with the population std (``unbiased=False``) or torch.std's default G - 1
    (``unbiased=True``, TRL's); or, with ``baseline="leave_one_out"`` (and
    ``scale_by_std=False``), RLOO's A_i = r_i - mean of the other answers' rewards
    (:func:`pgbook.returns.rloo_advantages`). A group of equal rewards must give 0 within the
    tolerance. Values only. Battery: :func:`~pgbook.conformance.batteries.group_cases`.
    """
    rtol = _common(fn, "fn", rtol, seed)
    baseline = V.choice(baseline, "baseline", ("mean", "leave_one_out"))
    V.flag(scale_by_std, "scale_by_std")
    V.flag(unbiased, "unbiased")
    eps = V.number(eps, "eps", low=0.0)
    if baseline == "leave_one_out" and scale_by_std:
        raise ValueError("scale_by_std must be False with baseline='leave_one_out' (RLOO's "
                         "advantages are not divided by a std)")

    def reference(x):
        if baseline == "leave_one_out":
            return rloo_advantages(x["rewards"])
        return group_advantages(x["rewards"], eps, scale_by_std=scale_by_std, unbiased=unbiased)

    conventions = (f"baseline={baseline}, scale_by_std={scale_by_std}, unbiased={unbiased}, "
                   f"eps={eps:g}")
    return _run("check_group_advantages", conventions, group_cases(seed), reference,
                lambda x: fn(x["rewards"]), [], rtol)
