"""The fixed input batteries of :mod:`pgbook.conformance`: deterministic float64 cases, each
labelled with the region of the formula it exercises.

Every builder returns a list of :class:`Case`. A case is one call of the reader's function:
its ``inputs`` (tensors, in pgbook's layout), a ``label`` naming the case and the ``region``
it belongs to (several cases may share a region, e.g. an extreme ratio r = 1e3 with A < 0
lies in the region "A<0, r>1+eps_high"), and a ``scale``: a bound on the magnitude of the
terms the reduction adds up (so that a tolerance relative to it is a rounding bound, see
:mod:`pgbook.conformance`). The seeds are fixed: the same call gives the same tensors.

Region names use eps_high for the upper clip bound; it equals eps unless a check states it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import _validate as V

__all__ = ["GRPO_WIDTH", "Case", "gae_cases", "group_cases", "grpo_cases", "kl_cases",
           "ppo_cases", "exact_log_ratio"]

D = torch.float64
#: the padded width L of every GRPO case (the longest answer has L tokens)
GRPO_WIDTH = 6
#: the clip regions of PPO-Clip and GRPO, in the order a report lists them
CLIP_REGIONS = ("A>0, r<1-eps", "A>0, inside", "A>0, r>1+eps_high",
                "A<0, r<1-eps", "A<0, inside", "A<0, r>1+eps_high")


@dataclass(frozen=True)
class Case:
    """One call of the reader's function: a label, its region, the inputs and the scale."""

    label: str
    region: str
    inputs: dict
    scale: float


def _rand(g: torch.Generator, shape, low: float, high: float) -> torch.Tensor:
    return low + (high - low) * torch.rand(shape, generator=g, dtype=D)


def _seed(seed) -> torch.Generator:
    return torch.Generator().manual_seed(V.positive_int(seed, "seed", minimum=0))


def exact_log_ratio(r: float) -> float:
    """A float x with ``torch.exp(x) == r`` exactly in float64 (x = log r or a neighbour), so
    that a ratio computed as exp(logp - logp_old) with logp_old = 0 lands *on* a clip bound."""
    r = V.number(r, "r", low=0.0, low_open=True)
    x = math.log(r)
    for _ in range(8):
        e = torch.exp(torch.tensor(x, dtype=D)).item()
        if e == r:
            return x
        x = math.nextafter(x, math.inf if e < r else -math.inf)
    raise ValueError(f"r: no float64 x has exp(x) == {r!r} exactly")


# --------------------------------------------------------------------------------------------
# PPO-Clip: one case per clip region, the boundaries, A = 0, extreme ratios.
# --------------------------------------------------------------------------------------------

def _ratio_ranges(eps: float, eps_high: float) -> dict:
    low, high = 1 - eps, 1 + eps_high
    return {"r<1-eps": (0.3 * low, 0.95 * low), "r>1+eps_high": (1.05 * high, 3.0 * high)}


def _inside(eps: float, eps_high: float, n: int) -> torch.Tensor:
    """n ratios spread over the open range (1-eps, 1+eps_high), with two of them in the
    asymmetric band (1+eps, 1+eps_high) whenever eps_high > eps."""
    low, high = 1 - eps, 1 + eps_high
    grid = [low + (high - low) * k / (n - 1) for k in range(1, n - 1)]
    if eps_high > eps:
        grid += [1 + eps + (eps_high - eps) * f for f in (1 / 3, 2 / 3)]
    else:
        grid += [1.0, 1 + 0.5 * eps]
    return torch.tensor(grid, dtype=D)


def _ppo_case(label, region, r, adv, logp_old) -> Case:
    logp = logp_old + torch.log(r)
    actual = torch.exp(logp - logp_old)
    scale = max(1.0, (actual * adv).abs().max().item())
    return Case(label, region, {"logp": logp, "logp_old": logp_old, "adv": adv}, scale)


def ppo_cases(eps: float = 0.2, eps_high: float | None = None, seed: int = 0, *,
              n: int = 8) -> list[Case]:
    """PPO-Clip's battery (1-D tensors logp, logp_old, adv of n samples each, or 8 at a bound):

    * the six clip regions "A>0, r<1-eps", "A>0, inside", "A>0, r>1+eps_high" and the same for
      A<0 (inside ratios include two in (1+eps, 1+eps_high) when eps_high > eps);
    * "A=0" (ratios in every zone), "r=1-eps exactly", "r=1+eps_high exactly" (logp_old = 0 and
      exp(logp) equal to the bound in float64, A of both signs);
    * the extreme ratios r = 1e3 and r = 1e-3 with each sign of A, labelled as such and
      counted in the clip region they lie in.
    """
    eps, eps_high = V.clip_bounds(eps, eps_high)
    n = V.positive_int(n, "n", minimum=4)
    g = _seed(seed)
    ranges = _ratio_ranges(eps, eps_high)
    cases = []
    for sign, name in ((1.0, "A>0"), (-1.0, "A<0")):
        for zone in ("r<1-eps", "inside", "r>1+eps_high"):
            r = _inside(eps, eps_high, n) if zone == "inside" else _rand(g, n, *ranges[zone])
            adv = sign * _rand(g, r.shape[0], 0.1, 2.0)
            region = f"{name}, {zone}"
            cases.append(_ppo_case(region, region, r, adv, _rand(g, r.shape[0], -3.0, -0.5)))
    r = torch.cat([_rand(g, 3, *ranges["r<1-eps"]), _inside(eps, eps_high, 4),
                   _rand(g, 3, *ranges["r>1+eps_high"])])
    cases.append(_ppo_case("A=0", "A=0", r, torch.zeros_like(r), _rand(g, r.shape[0], -3, -0.5)))
    adv = torch.tensor([1.5, 0.5, 0.1, 2.0, -1.5, -0.5, -0.1, -2.0], dtype=D)
    for bound, region in ((1 - eps, "r=1-eps exactly"), (1 + eps_high, "r=1+eps_high exactly")):
        logp = torch.full((8,), exact_log_ratio(bound), dtype=D)
        cases.append(Case(region, region, {"logp": logp, "logp_old": torch.zeros(8, dtype=D),
                                           "adv": adv.clone()}, max(1.0, 2.0 * bound)))
    for r_value, zone in ((1e3, "r>1+eps_high"), (1e-3, "r<1-eps")):
        if zone == "r>1+eps_high" and r_value <= 1.05 * (1 + eps_high):
            continue
        for sign, name in ((1.0, "A>0"), (-1.0, "A<0")):
            r = torch.full((4,), r_value, dtype=D)
            adv = sign * _rand(g, 4, 0.1, 2.0)
            cases.append(_ppo_case(f"extreme ratio r={r_value:g}, {name}", f"{name}, {zone}", r,
                                   adv, _rand(g, 4, -3.0, -0.5)))
    return cases


# --------------------------------------------------------------------------------------------
# GAE: time-major (T, N) rollouts with episode ends, truncation and the batch's last row.
# --------------------------------------------------------------------------------------------

def _gae_case(g, label, T, N, ends, *, terminated_at_end=True, truncate=False,
              both=False) -> Case:
    """Rows ends[n] of column n end an episode (terminated, truncated or both); next_values
    holds V of every row's true next observation: values[t + 1] inside an episode, the value
    of the final observation (a fresh number) where an episode ends, a value at the last row."""
    rewards, values = _rand(g, (T, N), -1.0, 1.0), _rand(g, (T, N), -1.0, 1.0)
    next_values = torch.cat([values[1:], _rand(g, (1, N), -1.0, 1.0)])
    terminated = torch.zeros(T, N, dtype=torch.bool)
    truncated = torch.zeros(T, N, dtype=torch.bool)
    for n, t in enumerate(ends):
        next_values[t, n] = _rand(g, (), 1.0, 2.0) * (1 if n % 2 else -1)
        (truncated if truncate else terminated)[t, n] = True
        if both:
            truncated[t, n] = True
    if terminated_at_end:
        terminated[T - 1] = True
    scale = max(1.0, T * (rewards.abs() + values.abs() + next_values.abs()).max().item())
    inputs = {"rewards": rewards, "values": values, "terminated": terminated,
              "truncated": truncated, "next_values": next_values}
    return Case(label, label, inputs, scale)


def gae_cases(seed: int = 0, *, T: int = 8, N: int = 3) -> list[Case]:
    """GAE's battery, time-major (T, N) with N columns (sub-environments):

    * "one episode, terminated at the last row": no other flag;
    * "episode ends inside the batch": column n terminates at a row inside the batch and a new
      episode follows (its first value is not the final observation's);
    * "truncation with bootstrap": the same rows truncated, next_values holding V of the
      final observation (which must be bootstrapped, and not be followed across);
    * "terminated and truncated both set": both flags on those rows (terminated wins);
    * "last row cut off": no flag at all; the running episode bootstraps from
      next_values[T - 1].
    Rows 1..T-2 end the episodes, one per column (column n at row 1 + n mod (T-2)).
    """
    T = V.positive_int(T, "T", minimum=4)
    N = V.positive_int(N, "N")
    g = _seed(seed)
    ends = [1 + (2 * n + 1) % (T - 2) for n in range(N)]
    return [
        _gae_case(g, "one episode, terminated at the last row", T, N, []),
        _gae_case(g, "episode ends inside the batch", T, N, ends),
        _gae_case(g, "truncation with bootstrap", T, N, ends, truncate=True),
        _gae_case(g, "terminated and truncated both set", T, N, ends, both=True),
        _gae_case(g, "last row cut off", T, N, [], terminated_at_end=False),
    ]


# --------------------------------------------------------------------------------------------
# GRPO: (B, L) answers, ragged or not, per clip region, an equal-reward group, the KL term.
# --------------------------------------------------------------------------------------------

def _grpo_case(g, label, ratios, adv, lengths, *, kl=False) -> Case:
    B, L = len(lengths), GRPO_WIDTH
    mask = torch.arange(L)[None, :] < torch.tensor(lengths)[:, None]
    lo, hi = ratios
    r = _rand(g, (B, L), lo, hi)
    logp_old = _rand(g, (B, L), -3.0, -0.5)
    logp = logp_old + torch.log(r)
    logp_ref = logp_old + _rand(g, (B, L), -1.0, 1.0) if kl else logp.clone()
    # Padding holds arbitrary finite numbers: a reader who forgets the mask sees them.
    for x in (logp, logp_old, logp_ref):
        x[~mask] = _rand(g, int((~mask).sum()), -5.0, 5.0)
    d = (logp - logp_ref)[mask].abs().max().item()
    scale = max(1.0, (r[mask] * adv.abs().max()).max().item(), math.exp(d))
    return Case(label, label, {"logp": logp, "logp_old": logp_old, "logp_ref": logp_ref, "adv": adv,
                               "mask": mask}, scale)


def grpo_cases(eps: float = 0.2, eps_high: float | None = None, seed: int = 0) -> list[Case]:
    """GRPO's battery: B answers of up to L = :data:`GRPO_WIDTH` tokens, shape (B, L), adv (B,),
    a bool mask; padded entries hold random finite numbers. Regions:

    * "all answers same length" and "ragged lengths" (lengths 6, 1, 3, 5): ratios inside the
      clip range, advantages of both signs, logp_ref = logp;
    * the four clipped regions "A>0, r<1-eps", ..., "A<0, r>1+eps_high" (every token of
      every answer in it, all answers of length L) and "A>0, inside", "A<0, inside";
    * "equal-reward group": two groups of 4, the first with every advantage 0;
    * "KL term, logp_ref != logp": log(pi/pi_ref) in (-1, 1) at every token (this is where
      beta and the KL estimator act; elsewhere logp_ref = logp).
    """
    eps, eps_high = V.clip_bounds(eps, eps_high)
    g = _seed(seed)
    ranges = _ratio_ranges(eps, eps_high)
    inside = (1 - 0.9 * eps, 1 + 0.9 * eps_high)
    mixed = torch.tensor([1.2, -0.4, 0.7, -1.5], dtype=D)
    full = [GRPO_WIDTH] * 4
    cases = [_grpo_case(g, "all answers same length", inside, mixed.clone(), full),
             _grpo_case(g, "ragged lengths", inside, mixed.clone(), [6, 1, 3, 5])]
    for sign, name in ((1.0, "A>0"), (-1.0, "A<0")):
        for zone in ("r<1-eps", "inside", "r>1+eps_high"):
            zone_range = inside if zone == "inside" else ranges[zone]
            cases.append(_grpo_case(g, f"{name}, {zone}", zone_range,
                                    sign * _rand(g, 4, 0.1, 2.0), full))
    adv = torch.cat([torch.zeros(4, dtype=D), mixed])
    cases.append(_grpo_case(g, "equal-reward group", inside, adv, [GRPO_WIDTH] * 8))
    cases.append(_grpo_case(g, "KL term, logp_ref != logp", inside, mixed.clone(), full,
                            kl=True))
    return cases


# --------------------------------------------------------------------------------------------
# KL penalties and group advantages.
# --------------------------------------------------------------------------------------------

def kl_cases(seed: int = 0, *, importance_weighted: bool = False, n: int = 8) -> list[Case]:
    """The KL penalty's battery, 1-D tensors of n samples, d = logp - logp_ref:

    "logp = logp_ref (d = 0)", "pi above ref (0 < d < 1)", "pi below ref (-1 < d < 0)",
    "far from ref (|d| in [3, 6])" (both signs). With ``importance_weighted`` every case also
    has ``logp_old`` (log r = logp - logp_old in (-0.5, 0.5)) and one more region,
    "on-policy (logp_old = logp)". Scale: 4 (1 + max|d|) exp(max|d| + max|log r|), a bound on
    |r k| and on |sg(k) r logp| (|logp| <= 4) and their derivatives in logp.
    """
    V.flag(importance_weighted, "importance_weighted")
    n = V.positive_int(n, "n", minimum=2)
    g = _seed(seed)
    sign = torch.tensor([1.0, -1.0], dtype=D).repeat(n)[:n]
    offsets = {"logp = logp_ref (d = 0)": torch.zeros(n, dtype=D),
               "pi above ref (0 < d < 1)": _rand(g, n, 0.05, 1.0),
               "pi below ref (-1 < d < 0)": -_rand(g, n, 0.05, 1.0),
               "far from ref (|d| in [3, 6])": sign * _rand(g, n, 3.0, 6.0)}
    if importance_weighted:
        offsets["on-policy (logp_old = logp)"] = _rand(g, n, -1.0, 1.0)
    cases = []
    for label, d in offsets.items():
        logp = _rand(g, n, -4.0, -0.5)
        inputs = {"logp": logp, "logp_ref": logp - d}
        log_r = torch.zeros(n, dtype=D)
        if importance_weighted:
            if not label.startswith("on-policy"):
                log_r = _rand(g, n, -0.5, 0.5)
            inputs["logp_old"] = logp - log_r
        # |k| <= e^|d| (1 + |d|), times r and, in the reward placement, |logp| <= 4.
        d_max = d.abs().max().item()
        scale = 4.0 * (1 + d_max) * math.exp(d_max + log_r.abs().max().item())
        cases.append(Case(label, label, inputs, scale))
    return cases


def group_cases(seed: int = 0) -> list[Case]:
    """Group advantages' battery, rewards of shape (num_groups, G):

    "distinct rewards" (3 groups of 5), "binary rewards" (0/1, 3 groups of 6),
    "two answers per group" (G = 2), "equal-reward group" (one of three groups all equal, one
    with a single distinct answer)."""
    g = _seed(seed)
    binary = torch.tensor([[1, 0, 0, 1, 1, 0], [0, 0, 0, 0, 0, 1], [1, 1, 1, 1, 0, 1]], dtype=D)
    equal = torch.tensor([[0.5, 0.5, 0.5, 0.5], [0.0, 0.0, 0.0, 1.0], [0.3, -1.0, 2.0, 0.1]],
                         dtype=D)
    rewards = {"distinct rewards": _rand(g, (3, 5), -2.0, 2.0), "binary rewards": binary,
               "two answers per group": _rand(g, (4, 2), -1.0, 1.0),
               "equal-reward group": equal}
    # |A_i| <= sqrt(G - 1) with the population std, <= 2 max|r| without it.
    return [Case(label, label, {"rewards": r},
                 max(1.0, math.sqrt(r.shape[1]), 2 * r.abs().max().item()))
            for label, r in rewards.items()]
