r"""An answer model: exact expectations of GRPO-family gradients over every group (chapter 13).

One prompt, K possible answers; answer k has a length ell_k (tokens) and a reward r_k, and the
policy is a softmax over whole answers, pi_k = softmax(theta)_k, so that
grad log pi_k = e_k - pi and the true gradient of J = sum_k pi_k r_k is

    grad J = sum_k pi_k (r_k - J) grad log pi_k.                              (eq. 13.1)

A trainer samples N groups of G answers, turns each group's rewards into advantages A_i and
takes, at theta = theta_old (every ratio 1), the step

    g = sum_{groups} sum_i (A_i / (B n_i)) grad log pi(o_i),     B = N G answers,

where n_i is the aggregation's per-answer divisor (:func:`pgbook.grpo_objectives.token_weights`:
|o_i|, the batch's mean length, a constant C, or 1). Its expectation is a sum over the K^(NG)
possible batches, computed here exactly (float64; every term is a product of at most NG + 2
roundings), and written as

    E[g] = sum_k beta_k pi_k (r_k - J) grad log pi_k,                           (eq. 13.2)

so beta_k = 1 for every k is an unbiased estimate of grad J, a constant beta_k a rescaled one,
and a beta_k that depends on ell_k (or on the sign of r_k - J) a biased one: the length bias
Dr. GRPO describes (Liu et al. 2025). :func:`expected_step` returns the coefficients
c_k = E[sum_i 1{o_i = k} A_i / (B n_i)] (so E[g] = sum_k c_k grad log pi_k) and the beta_k.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch

from . import _validate as V
from .grpo_objectives import token_weights
from .returns import group_advantages, informative_groups, rloo_advantages

__all__ = ["ADVANTAGES", "FILTERS", "AnswerModel", "ExpectedStep", "expected_step"]

#: the advantage of each answer in its group (:mod:`pgbook.returns`)
ADVANTAGES = ("group_std", "group_mean", "rloo")
#: what happens to a group whose rewards are all equal (DAPO's dynamic sampling)
FILTERS = ("keep", "drop", "resample")


@dataclass(frozen=True)
class AnswerModel:
    """K answers with ``lengths`` (positive ints) and ``rewards``, and the policy's
    ``probs`` (a probability vector, all entries > 0); all three of length K >= 2."""

    probs: tuple[float, ...]
    lengths: tuple[int, ...]
    rewards: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("probs", "lengths", "rewards"):
            value = getattr(self, name)
            if not isinstance(value, (tuple, list)) or len(value) < 2:
                raise ValueError(f"{name} must be a tuple of at least 2 numbers, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        if not len(self.probs) == len(self.lengths) == len(self.rewards):
            raise ValueError(f"probs, lengths and rewards must have one entry per answer, got "
                             f"{len(self.probs)}, {len(self.lengths)}, {len(self.rewards)}")
        for i, p in enumerate(self.probs):
            V.number(p, f"probs[{i}]", low=0.0, high=1.0, low_open=True)
        if abs(sum(self.probs) - 1) > 1e-12:
            raise ValueError(f"probs must sum to 1, got {sum(self.probs)!r}")
        for i, ell in enumerate(self.lengths):
            V.positive_int(ell, f"lengths[{i}]")
        for i, r in enumerate(self.rewards):
            V.number(r, f"rewards[{i}]")

    @property
    def J(self) -> float:
        """The expected reward sum_k pi_k r_k."""
        return sum(p * r for p, r in zip(self.probs, self.rewards, strict=True))

    def true_gradient_coefficients(self) -> torch.Tensor:
        """pi_k (r_k - J), (K,) float64: grad J = sum_k of these times grad log pi_k (13.1)."""
        p, r = (torch.tensor(x, dtype=torch.float64) for x in (self.probs, self.rewards))
        return p * (r - self.J)

    def score_matrix(self) -> torch.Tensor:
        """(K, K) float64: row k is grad_theta log pi_k = e_k - pi for the softmax policy."""
        p = torch.tensor(self.probs, dtype=torch.float64)
        return torch.eye(len(p), dtype=torch.float64) - p[None]


@dataclass(frozen=True)
class ExpectedStep:
    """What :func:`expected_step` returns: ``coefficients`` c_k (K,), E[g] = sum_k c_k grad
    log pi_k; ``beta`` (K,), c_k / (pi_k (r_k - J)), NaN where r_k = J; ``gradient`` (K,),
    E[g] in theta-space; ``informative`` the probability that a batch has every group
    informative."""

    coefficients: torch.Tensor
    beta: torch.Tensor
    gradient: torch.Tensor
    informative: float


def _advantages(rewards: torch.Tensor, advantage: str) -> torch.Tensor:
    if advantage == "rloo":
        return rloo_advantages(rewards)
    return group_advantages(rewards, 0.0, scale_by_std=advantage == "group_std")


def expected_step(model: AnswerModel, group_size: int, *, advantage: str = "group_std",
                  aggregation: str = "sequence_mean", normalizer: float | None = None,
                  num_groups: int = 1, filter: str = "keep") -> ExpectedStep:
    r"""The exact expectation of the step g of the module docstring (eq. 13.2) over all
    K^(num_groups * group_size) batches, with the advantage of :data:`ADVANTAGES` (GRPO's std
    with eps = 0, Dr. GRPO's centred reward, RLOO's leave-one-out), the ``aggregation`` and
    ``normalizer`` of :func:`pgbook.grpo_objectives.token_weights`, and ``filter`` for groups
    with equal rewards: ``"keep"`` them (their advantages are 0, their tokens still count in a
    mean), ``"drop"`` them from the batch (B and the token mean shrink; an all-dropped batch
    takes no step), or ``"resample"`` until every group is informative (DAPO's dynamic
    sampling: the expectation conditioned on that event). Cost K^(NG) batches: keep it below
    a few hundred thousand.
    """
    if not isinstance(model, AnswerModel):
        raise ValueError(f"model must be an AnswerModel, got {type(model).__name__}")
    G = V.positive_int(group_size, "group_size", minimum=2)
    N = V.positive_int(num_groups, "num_groups")
    if advantage not in ADVANTAGES:
        raise ValueError(f"advantage must be one of {ADVANTAGES}, got {advantage!r}")
    if filter not in FILTERS:
        raise ValueError(f"filter must be one of {FILTERS}, got {filter!r}")
    K = len(model.probs)
    if K ** (N * G) > 500_000:
        raise ValueError(f"K^(num_groups * group_size) = {K}^{N * G} batches is too many to "
                         "enumerate (limit 500,000)")
    probs = torch.tensor(model.probs, dtype=torch.float64)
    rewards = torch.tensor(model.rewards, dtype=torch.float64)
    lengths = torch.tensor(model.lengths, dtype=torch.float64)
    if aggregation == "constant":  # the check of token_weights: C >= the longest answer
        token_weights(torch.ones(1, int(lengths.max())), "constant", normalizer=normalizer)
        C = lengths.max().item() if normalizer is None else float(normalizer)
    else:
        token_weights(torch.ones(1, 1), aggregation, normalizer=normalizer)
    idx = torch.tensor(list(itertools.product(range(K), repeat=N * G))).view(-1, N, G)
    M = idx.shape[0]
    p_batch = probs[idx].prod(dim=2).prod(dim=1)  # (M,)
    keep = informative_groups(rewards[idx].view(M * N, G)).view(M, N)
    p_informative = p_batch[keep.all(dim=1)].sum().item()
    adv = _advantages(rewards[idx].view(M * N, G), advantage).view(M, N, G)
    counted = keep if filter == "drop" else torch.ones_like(keep)  # groups in B and the mean
    B = G * counted.sum(dim=1).to(torch.float64)  # (M,) answers in the batch
    ell = lengths[idx]  # (M, N, G)
    if aggregation == "sequence_mean":
        n = ell
    elif aggregation == "token_mean":
        tokens = (ell * counted[:, :, None]).sum(dim=(1, 2))
        mean_length = torch.where(tokens > 0, tokens / B.clamp(min=1), 1.0)  # 1: no step
        n = mean_length[:, None, None].expand_as(ell)
    elif aggregation == "constant":
        n = torch.full_like(ell, C)
    else:
        n = torch.ones_like(ell)
    step = adv / (B.clamp(min=1)[:, None, None] * n) * counted[:, :, None]  # A_i / (B n_i)
    weight = p_batch.clone()
    if filter == "resample":
        if p_informative == 0:
            raise ValueError("no batch has every group informative: resampling never ends")
        weight = torch.where(keep.all(dim=1), p_batch, 0.0) / p_informative
    coefficients = torch.zeros(K, dtype=torch.float64)
    coefficients.index_add_(0, idx.flatten(), (weight[:, None, None] * step).flatten())
    true = model.true_gradient_coefficients()
    beta = torch.where(true != 0, coefficients / torch.where(true != 0, true, 1.0),
                       torch.full_like(true, float("nan")))
    return ExpectedStep(coefficients, beta, coefficients @ model.score_matrix(), p_informative)
