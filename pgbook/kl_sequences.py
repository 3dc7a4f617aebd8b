r"""The KL of whole answers against per-token KL penalties, by exact enumeration (chapter 13).

A language-model trainer penalises each answer token o_t with an estimator of the per-token
KL at its prefix (q, o_<t); the objective it would like to penalise is the KL of the answer
distribution, KL_seq(pi_theta || pi_ref) = sum_o P_theta(o|q) log(P_theta(o|q) / P_ref(o|q)),
P(o|q) = prod_t pi(o_t | q, o_<t). The chain rule of the KL makes them equal in value,

    KL_seq(pi_theta || pi_ref) = E_{o~P_theta}[ sum_t KL(pi_theta(.|q,o_<t) || pi_ref(.|q,o_<t)) ],

but not in gradient: a trainer differentiates each token's term with the sampled prefix held
fixed, and misses the score of the prefix, E[sum_t KL_t sum_{s<t} grad log pi(o_s|o_<s)].
:func:`sequence_kl` computes every expectation exactly on :class:`pgbook.tasks.TinyLM` by
enumerating all answers of a tiny :class:`pgbook.tasks.ReverseTask` (answers of at most
``answer_len`` tokens, ending at the first EOS: 1 + 10 + 100 + 1000 = 1111 for ReverseTask(1,
2)); :func:`sequence_kl_demo` builds the policies deterministically.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import torch
from torch.distributions import kl_divergence

from . import _validate as V
from .kl_estimators import kl_k1, kl_k2, kl_k3
from .tasks import EOS, PAD, ReverseTask, TinyLM

__all__ = ["SequenceKL", "all_answers", "sequence_kl", "sequence_kl_demo"]


@dataclass(frozen=True)
class SequenceKL:
    """Exact values (floats) and gradients (flat float64 vectors over the policy's parameters)
    from :func:`sequence_kl`, averaged over the prompts.

    ``values``: "total probability" (1 up to rounding), "KL_seq(pi||ref)", "E[sum_t KL_t]",
    "E[sum_t k1]", "E[sum_t k2]", "E[sum_t k3]". ``gradients``: "KL_seq(pi||ref)",
    "KL_seq(ref||pi)" (the true gradients, answers' probabilities differentiated), "sum_t
    KL_t, prefixes fixed", "sum_t KL_t(ref||pi), prefixes fixed" (the exact per-token KLs of
    the visited prefixes, differentiated with the answer held fixed), "k1 in the loss", "k2 in
    the loss", "k3 in the loss" (per token, summed over the answer's tokens) and "k1 summed, in
    the reward" (sg(sum_t k1_t) grad log P_theta(o)).
    """

    values: dict
    gradients: dict
    n_answers: int

    def compare(self, a: str, b: str) -> tuple[float, float]:
        """(max |g_a - g_b|, that divided by max(max |g_a|, max |g_b|)) of two gradients."""
        for name, key in (("a", a), ("b", b)):
            if key not in self.gradients:
                raise ValueError(f"{name} must be one of {sorted(self.gradients)}, got {key!r}")
        ga, gb = self.gradients[a], self.gradients[b]
        gap = (ga - gb).abs().max().item()
        scale = max(ga.abs().max().item(), gb.abs().max().item())
        return gap, (gap / scale if scale > 0 else 0.0)


def all_answers(task: ReverseTask) -> torch.Tensor:
    """Every distinct answer of ``task``: token rows of width ``task.answer_len`` over the
    digits and EOS, cut at the first EOS and padded with EOS after it, (n, answer_len) long.
    With L = answer_len there are sum_{j<L} 10^j answers that end with EOS plus 10^L without."""
    if not isinstance(task, ReverseTask):
        raise ValueError(f"task must be a ReverseTask, got {type(task).__name__}")
    if task.answer_len > 4:
        raise ValueError(f"task must have answer_len <= 4 to enumerate, got {task.answer_len}")
    seen = set()
    for row in itertools.product(range(EOS + 1), repeat=task.answer_len):
        cut = list(row[:row.index(EOS) + 1]) if EOS in row else list(row)
        seen.add(tuple(cut + [EOS] * (task.answer_len - len(cut))))
    return torch.tensor(sorted(seen), dtype=torch.long)


def _flat_grad(f: torch.Tensor, params: list) -> torch.Tensor:
    grads = torch.autograd.grad(f, params, retain_graph=True, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                      for g, p in zip(grads, params, strict=True)])


def _one_prompt(policy, reference, task, prompt, answers):
    """The per-answer tensors of one prompt: sequence log-probs, per-token KLs, estimators."""
    prompts = prompt[None].expand(answers.shape[0], -1)
    mask = task.answer_mask(answers).to(torch.float64)
    dist, dist_ref = policy.dist(prompts, answers), reference.dist(prompts, answers)
    lp, lp_ref = dist.log_prob(answers), dist_ref.log_prob(answers).detach()
    kl_t = kl_divergence(dist, _detached(dist_ref))
    kl_rev_t = kl_divergence(_detached(dist_ref), dist)
    return dict(logP=(lp * mask).sum(1), logR=(lp_ref * mask).sum(1), kl=(kl_t * mask).sum(1),
                kl_rev=(kl_rev_t * mask).sum(1),
                **{k: (fn(lp, lp_ref) * mask).sum(1)
                   for k, fn in (("k1", kl_k1), ("k2", kl_k2), ("k3", kl_k3))})


def _detached(dist):
    return type(dist)(logits=dist.logits.detach(), validate_args=False)


def sequence_kl(policy: TinyLM, reference: TinyLM, task: ReverseTask,
                prompts: torch.Tensor) -> SequenceKL:
    r"""Exact expectations over every answer (:func:`all_answers`) for each prompt, averaged
    over the prompts (module docstring). Expected gradients hold the sampled answer fixed:
    sum_o sg(P_theta(o)) grad term(o); the true gradients differentiate P_theta(o) too.

    Run the policies in float64 for the identities to hold to rounding (~1e-15). Raises
    ``ValueError`` naming the argument for a policy that is not a TinyLM, a task that is not a
    ReverseTask with answer_len <= 4, or prompts the task refuses.
    """
    for name, x in (("policy", policy), ("reference", reference)):
        if not isinstance(x, TinyLM):
            raise ValueError(f"{name} must be a TinyLM, got {type(x).__name__}")
    answers = all_answers(task)
    task.check_prompts(prompts)
    params = [p for p in policy.parameters() if p.requires_grad]
    sums: dict = {}
    for prompt in prompts:
        t = _one_prompt(policy, reference, task, prompt, answers)
        P, R = t["logP"].exp(), t["logR"].exp()
        w = P.detach()
        terms = {
            "total probability": P.sum(),
            "KL_seq(pi||ref)": (P * (t["logP"] - t["logR"])).sum(),
            "KL_seq(ref||pi)": (R * (t["logR"] - t["logP"])).sum(),
            "E[sum_t KL_t]": (w * t["kl"]).sum(),
            "sum_t KL_t, prefixes fixed": (w * t["kl"]).sum(),
            "sum_t KL_t(ref||pi), prefixes fixed": (w * t["kl_rev"]).sum(),
            **{f"E[sum_t {k}]": (w * t[k]).sum() for k in ("k1", "k2", "k3")},
            **{f"{k} in the loss": (w * t[k]).sum() for k in ("k1", "k2", "k3")},
            "k1 summed, in the reward": (w * t["k1"].detach() * t["logP"]).sum(),
        }
        for name, f in terms.items():
            value = _flat_grad(f, params) if not name.startswith(("E[", "total")) else None
            old = sums.get(name, (0.0, 0))
            sums[name] = (old[0] + f.item(), old[1] + (value if value is not None else 0))
    n = len(prompts)
    values = {k: v / n for k, (v, g) in sums.items() if k.startswith(("E[", "total", "KL_seq"))}
    gradients = {k: g / n for k, (v, g) in sums.items() if not k.startswith(("E[", "total"))}
    return SequenceKL(values, gradients, int(answers.shape[0]))


def sequence_kl_demo(seed: int = 0, scale: float = 0.5, prompts: torch.Tensor | None = None,
                     ) -> SequenceKL:
    """:func:`sequence_kl` on ReverseTask(1, 2) (answers of <= 3 tokens, 1111 of them) for a
    float64 TinyLM(d_model=16, n_heads=2): the reference is the seeded initialisation
    (``torch.manual_seed(seed)`` inside a forked RNG, so the caller's state is untouched), the
    policy the reference plus ``scale`` times a seeded standard normal perturbation of every
    parameter, so pi_theta != pi_ref. ``prompts`` default: "3" and "47" (left-padded)."""
    V.positive_int(seed, "seed", minimum=0)
    scale = V.number(scale, "scale", low=0.0, low_open=True)
    task = ReverseTask(1, 2)
    if prompts is None:
        prompts = torch.tensor([[PAD, 3], [4, 7]], dtype=torch.long)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        reference = TinyLM(d_model=16, n_heads=2).double().eval()
        policy = TinyLM(d_model=16, n_heads=2).double().eval()
    policy.load_state_dict(reference.state_dict())
    gen = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(scale * torch.randn(p.shape, dtype=p.dtype, generator=gen))
    for p in reference.parameters():
        p.requires_grad_(False)
    return sequence_kl(policy, reference, task, prompts)
