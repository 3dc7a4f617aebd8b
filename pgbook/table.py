"""The book's gradient table in code (chapter 12, ``book/12_unified``).

The source ends section 1.8 with one table: for each algorithm a gradient of the form

    grad J(theta) = E[ sum_t grad_theta log pi_theta(a_t | s_t) * Psi_t ]

with its own weight Psi (DPG apart). Here every line of that table is a :class:`Row`: the
objective J the algorithm differentiates, the weight Psi the book derives for it (and, where
the source's form is imprecise, a second row with the source's Psi), a :class:`Setting` that
draws random float64 inputs (with the edge cases the chapters single out) and writes
E[sum grad log pi * Psi] with the *closed-form* score or an exact expectation, and the SymPy
identity the chapter proved. :func:`check` compares autograd of J with that expression on every
input (:func:`pgbook.checks.compare_gradients`) and reports the worst error.

Settings (where the expectation lives):

* ``tabular``: the book's MDP (:meth:`pgbook.mdp.TabularMDP.default`); J is the exact objective
  (0.1) (or its soft version), E[...] is the exact sum over all trajectories
  (:meth:`~pgbook.mdp.TabularMDP.expected_score_weighted`). Rows: the policy gradient theorem,
  reward-to-go, actor-critic (0.10), A2C (0.12), SAC's soft policy gradient (chapters 3, 5, 6, 11).
* ``samples`` / ``tokens``: a tabular softmax policy and a fixed batch of samples (answers of
  tokens for GRPO); J is the algorithm's surrogate objective from :mod:`pgbook.objectives`,
  and the identity is grad J = (1/B) sum_i sum_t Psi_{i,t} (e_{a} - pi(.|s)) at every sample
  (chapters 7-9). Samples sit near, never on, the clip boundaries r = 1 +- eps.
* ``categorical``: one distribution over K outcomes, exact expectations: GRPO's KL term.
* ``squashed_gaussian``: SAC's tanh-Gaussian actor in a few states; expectations over the
  Gaussian noise by Gauss-Hermite quadrature (exact to ~1e-13 for the smooth integrands here).
* ``deterministic``: DPG, a deterministic policy mu_theta(s) and a critic Q(s, a) (chapter 10).

The objectives and weights of the rows all live in :mod:`pgbook.objectives` (the ones first
written for this table: ``actor_critic``, ``a2c``, ``soft_values``, ``soft_J``,
``soft_policy_gradient_weight``, ``sac_policy``, ``sac_policy_weight``, ``kl_weight``,
``kl_k3_weight``, ``dpg``, ``dpg_gradient``) and are re-exported here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import sympy as sp
import torch
import torch.nn.functional as F
from torch.distributions import Categorical, Normal, TanhTransform, kl_divergence

from . import _validate as V
from .checks import ErrorReport, compare_values
from .mdp import TabularMDP
from .objectives import (  # the rows' objectives and weights; re-exported here
    a2c,
    a2c_weight,
    actor_critic,
    actor_critic_weight,
    dpg,
    dpg_gradient,
    grpo,
    grpo_sequence,
    grpo_sequence_weight,
    grpo_weight,
    kl_k3_weight,
    kl_weight,
    ppo_clip,
    ppo_clip_weight,
    ratio,
    sac_policy,
    sac_policy_weight,
    soft_J,
    soft_policy_gradient_weight,
    soft_values,
    trpo,
    trpo_weight,
)
from .returns import reward_to_go
from .symbolic import (
    assert_identical,
    decide_branches,
    derivative_on_region,
    ppo_clip_objective,
    ppo_clip_regions,
    simplify_difference,
    softmax,
    softmax_score,
)
from .symbolic import not_clip as not_clip_sym

__all__ = [
    "Row",
    "RowReport",
    "Setting",
    "a2c",
    "a2c_weight",
    "actor_critic",
    "actor_critic_weight",
    "check",
    "check_all",
    "dpg",
    "dpg_gradient",
    "kl_k3_weight",
    "kl_weight",
    "render",
    "row",
    "rows",
    "sac_policy",
    "sac_policy_weight",
    "soft_J",
    "soft_policy_gradient_weight",
    "soft_values",
]

f64 = torch.float64


# ============================================================================================
# Rows, settings and checks.
# ============================================================================================

@dataclass(frozen=True)
class Setting:
    """Where a row's expectation lives: random inputs and E[sum grad log pi * Psi].

    ``cases(generator, n)`` returns n random cases and then the setting's fixed edge cases, each
    a tuple whose first entry is the float64 parameter theta that autograd differentiates.
    ``score_weighted(psi, *case)`` returns E[sum_t grad_theta log pi * Psi] (or its sample mean),
    shaped like theta, with the closed-form score or an exact expectation.
    """

    name: str
    description: str
    cases: Callable[[torch.Generator, int], list[tuple]]
    score_weighted: Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Row:
    """One line of the gradient table.

    ``key``: short id; ``algorithm``; ``form``: "source" (the source's Psi as written), "book"
    (the corrected or completed Psi), "source = book", or another reading; ``psi``: the weight
    this row checks, in plain text, and ``against``: the J whose gradient it is compared with;
    ``psi_source``: the source's weight as written. ``objective(*case)``: scalar J, autograd in
    case[0]; ``weight(*case)``: Psi (None for rows without a weight, which give
    ``closed_form(*case)`` instead). ``holds``: whether the book claims the identity (the
    source's imprecise forms are expected to fail). ``sympy()``: True if the chapter's SymPy
    identity for this row has residual exactly 0, False if the residual is provably non-zero
    (None: no SymPy check). ``atol``, ``rtol``: the tolerance of the autograd check.
    """

    key: str
    algorithm: str
    form: str
    psi: str
    against: str
    psi_source: str
    chapter: str
    setting: Setting
    objective: Callable[..., torch.Tensor]
    weight: Callable[..., torch.Tensor] | None
    holds: bool
    sympy: Callable[[], bool] | None = None
    closed_form: Callable[..., torch.Tensor] | None = None
    atol: float = 1e-11
    rtol: float = 0.0

    def gradient(self, *case) -> torch.Tensor:
        """The right-hand side: E[sum grad log pi * Psi] in the row's setting (or the closed
        form of a row without a weight). Some settings differentiate inside (the exact
        expectation of :meth:`~pgbook.mdp.TabularMDP.expected_score_weighted`, grad_a Q), so
        this runs with grad enabled (``compare_gradients`` calls it under ``no_grad``); the
        result is detached."""
        with torch.enable_grad():
            if self.weight is None:
                return self.closed_form(*case).detach()
            return self.setting.score_weighted(self.weight(*case), *case).detach()


@dataclass(frozen=True)
class RowReport:
    """The result of :func:`check`: the autograd comparison (``error``; ``max_rel_err`` over the
    cases with a non-negligible gradient) and the SymPy verdict of a row."""

    row: Row
    error: ErrorReport
    max_rel_err: float
    sympy: bool | None

    @property
    def holds(self) -> bool:
        """True if autograd of J matched E[grad log pi * Psi] on every case."""
        return self.error.passed

    @property
    def as_claimed(self) -> bool:
        """True if the numbers (and SymPy) agree with what the book claims about the row."""
        return self.holds == self.row.holds and self.sympy in (None, self.row.holds)

    def __str__(self) -> str:
        return render([self])


def check(row: Row, n: int = 200, *, seed: int = 0, sympy: bool = True) -> RowReport:
    """Check one row: autograd of ``row.objective`` with respect to case[0] against
    ``row.gradient`` on ``n`` random float64 cases (seeded) plus the setting's edge cases
    (:func:`pgbook.checks.compare_values`), and the SymPy identity if ``sympy``.

    Returns a :class:`RowReport`; raises nothing when the identity fails (a row of the source's
    form is expected to fail): compare ``report.holds`` with ``row.holds``, or read
    ``report.as_claimed``. The relative error is taken over the cases whose gradient is not
    negligible (max entry >= 1e-8): at nearly deterministic policies the gradient is ~1e-17 and
    both sides are rounding noise.
    """
    if not isinstance(row, Row):
        raise ValueError(f"row must be a table.Row, got {type(row).__name__}")
    n = V.positive_int(n, "n")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    autograd, closed = [], []
    for case in row.setting.cases(torch.Generator().manual_seed(seed), n):
        theta = case[0].detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(row.objective(theta, *case[1:]), theta)
        autograd.append(grad)
        closed.append(row.gradient(*case))
    error = compare_values(autograd, closed, name=row.key, atol=row.atol, rtol=row.rtol,
                           verbose=False, raise_on_fail=False)
    rel = [((a - e).abs().max() / e.abs().max()).item() for a, e in zip(autograd, closed,
                                                                      strict=True)
           if e.abs().max() >= 1e-8]
    verdict = row.sympy() if (sympy and row.sympy is not None) else None
    return RowReport(row, error, max(rel, default=0.0), verdict)


def check_all(n: int = 200, *, seed: int = 0, sympy: bool = True) -> list[RowReport]:
    """:func:`check` every row of :func:`rows`, in order."""
    return [check(r, n, seed=seed, sympy=sympy) for r in rows()]


def _bucket(x: float, bound: float) -> str:
    """A deterministic rendering: '< bound' below it, else two significant digits."""
    return f"< {bound:.0e}" if x < bound else f"{x:.2g}"


def render(reports: list[RowReport]) -> str:
    """The gradient table as fixed-width text with rounded errors (deterministic for nbval),
    narrow enough for a book page (about 80 characters).

    Rows are grouped under their algorithm. Each row takes two lines: its key, form, number of
    cases, max abs and rel error (below the row's tolerance shown as '< tol'), the autograd
    verdict (with the number of failing cases), the SymPy residual (0, != 0, or -) and whether
    all of it is what the book claims ('yes'/'NO'); then the weight Psi and the J it is the
    gradient of.
    """
    if not reports or not all(isinstance(r, RowReport) for r in reports):
        raise ValueError("reports must be a non-empty list of RowReport (from check)")
    head = ("row", "form", "n", "abs err", "rel err", "autograd", "SymPy", "claimed")
    cells = []
    for rep in reports:
        r, e = rep.row, rep.error
        verdict = "holds" if rep.holds else f"fails {e.n_failed}/{e.n_cases}"
        sym = {None: "-", True: "0", False: "!= 0"}[rep.sympy]
        cells.append((r.key, r.form, str(e.n_cases), _bucket(e.max_abs_err, max(r.atol, 1e-12)),
                      _bucket(rep.max_rel_err, 1e-8), verdict, sym,
                      "yes" if rep.as_claimed else "NO"))
    widths = [max(len(x[i]) for x in [head, *cells]) for i in range(len(head))]
    fmt = "  " + " ".join(f"{{:{'>' if i in (2, 3, 4) else '<'}{w}}}"
                          for i, w in enumerate(widths))
    out = [fmt.format(*head), "  " + " ".join("-" * w for w in widths)]
    indent = " " * (3 + widths[0])
    group = None
    for rep, cell in zip(reports, cells, strict=True):
        if rep.row.algorithm != group:
            group = rep.row.algorithm
            out.append(group)
        out.append(fmt.format(*cell))
        out.append(f"{indent}Ψ = {rep.row.psi};  grad of {rep.row.against}")
    return "\n".join(line.rstrip() for line in out)


# --------------------------------------------------------------------------------------------
# Settings.
# --------------------------------------------------------------------------------------------

@cache
def _mdp() -> TabularMDP:
    return TabularMDP.default()


def _tabular_cases(gen: torch.Generator, n: int) -> list[tuple]:
    """(theta (S, A), alpha, critic error eps (T, S, A), baseline error eta (T+1, S))."""
    mdp = _mdp()
    S, A, T = mdp.n_states, mdp.n_actions, mdp.horizon

    def extras():
        alpha = 0.1 + 0.9 * torch.rand((), generator=gen, dtype=f64)
        eps = torch.randn(T, S, A, generator=gen, dtype=f64)
        eta = torch.cat([torch.randn(T, S, generator=gen, dtype=f64), torch.zeros(1, S, dtype=f64)])
        return alpha, eps, eta

    cases = [(mdp.random_theta(gen, 1.0 if i % 2 == 0 else 4.0), *extras()) for i in range(n)]
    edges = [torch.zeros(S, A, dtype=f64),                               # ties everywhere
             torch.tensor([[20.0, -20.0], [-20.0, 20.0]], dtype=f64),     # nearly deterministic
             torch.tensor([[30.0, 30.0], [-30.0, -30.0]], dtype=f64),     # large tied logits
             torch.tensor([[0.0, 0.0], [25.0, -25.0]], dtype=f64)]        # one tied, one extreme
    return cases + [(theta, *extras()) for theta in edges]


def _tabular_score_weighted(psi, theta, *_):
    return _mdp().expected_score_weighted(theta, psi)


_N_STATES, _N_ACTIONS = 3, 4  # the tabular softmax policy of the sample settings


def _sample_logp(theta: torch.Tensor, states: torch.Tensor, actions: torch.Tensor):
    """log pi_theta(a|s) of each sample under the tabular softmax policy, shape of states."""
    return torch.log_softmax(theta, -1)[states, actions]


def _sample_score_weighted(psi, theta, states, actions, *_):
    """(1/B) sum_{i,...} Psi_i (e_{a_i} - pi(.|s_i)) in row s_i: the closed-form softmax score
    (chapter 1), B = number of samples (or answers) along dim 0."""
    pi = torch.softmax(theta, -1)
    score = F.one_hot(actions, theta.shape[1]).to(f64) - pi[states]
    out = torch.zeros_like(theta)
    out.index_add_(0, states.reshape(-1), (psi[..., None] * score).reshape(-1, theta.shape[1]))
    return out / states.shape[0]


_EPS = 0.2  # PPO / GRPO clip range in every check


def _ratio_targets(gen: torch.Generator, B: int) -> torch.Tensor:
    """Ratios in every region of PPO-Clip: spread over (0.05, 3), and within 1e-7 (relative)
    of 1 - eps and 1 + eps on both sides, never exactly on them (chapter 8)."""
    r = 0.2 + 1.6 * torch.rand(B, generator=gen, dtype=f64)
    near = torch.tensor([1 - _EPS, 1 + _EPS], dtype=f64)
    side = torch.tensor([1 - 1e-7, 1 + 1e-7], dtype=f64)
    r[:4] = (near[:, None] * side[None]).reshape(-1)
    r[4], r[5], r[6] = 1.0, 0.05, 3.0
    return r[torch.randperm(B, generator=gen)]


def _advantages(gen: torch.Generator, shape) -> torch.Tensor:
    adv = torch.randn(shape, generator=gen, dtype=f64)
    adv.view(-1)[:2] = 0.0  # zero advantages
    return adv


def _samples_cases(gen: torch.Generator, n: int) -> list[tuple]:
    """(theta (3, 4), states (B,), actions (B,), logp_old (B,), adv (B,)), B = 16."""
    B = 16
    out = []
    for i in range(n + 2):
        theta = torch.randn(_N_STATES, _N_ACTIONS, generator=gen, dtype=f64) * (1 + 2 * (i % 2))
        states = torch.randint(0, _N_STATES, (B,), generator=gen)
        actions = torch.randint(0, _N_ACTIONS, (B,), generator=gen)
        r = _ratio_targets(gen, B)
        adv = _advantages(gen, (B,))
        if i == n:      # edge case: on-policy, r = 1 everywhere
            r = torch.ones(B, dtype=f64)
        if i == n + 1:  # edge case: every advantage 0
            adv = torch.zeros(B, dtype=f64)
        logp_old = _sample_logp(theta, states, actions) - torch.log(r)
        out.append((theta, states, actions, logp_old, adv))
    return out


def _tokens_cases(gen: torch.Generator, n: int) -> list[tuple]:
    """GRPO batches: (theta, states (B, L), actions (B, L), logp_old, logp_ref (B, L), adv (B,),
    mask (B, L) bool, beta), B = 6 answers of at most L = 5 tokens."""
    B, L = 6, 5
    out = []
    for i in range(n + 1):
        theta = torch.randn(_N_STATES, _N_ACTIONS, generator=gen, dtype=f64) * (1 + 2 * (i % 2))
        states = torch.randint(0, _N_STATES, (B, L), generator=gen)
        actions = torch.randint(0, _N_ACTIONS, (B, L), generator=gen)
        lengths = torch.randint(1, L + 1, (B,), generator=gen)
        lengths[0] = 1
        mask = torch.arange(L)[None] < lengths[:, None]
        logp = _sample_logp(theta, states, actions)
        token_log_ratio = 0.2 * torch.randn(B, L, generator=gen, dtype=f64)
        if i == n:  # edge case: on-policy (r = 1) and pi_ref = pi_theta (rho = 1)
            token_log_ratio = torch.zeros(B, L, dtype=f64)
        logp_old = logp - token_log_ratio
        logp_ref = logp + (0.0 if i == n else 0.5 * torch.randn(B, L, generator=gen, dtype=f64))
        adv = _advantages(gen, (B,))
        beta = 0.5 * torch.rand((), generator=gen, dtype=f64)
        out.append((theta, states, actions, logp_old, logp_ref, adv, mask, beta))
    return out


_K = 5  # outcomes of the categorical setting


def _categorical_cases(gen: torch.Generator, n: int) -> list[tuple]:
    """(z (K,), z_ref (K,), beta): logits of pi_theta and pi_ref over K outcomes."""
    cases = []
    for i in range(n):
        scale = 1.0 if i % 2 == 0 else 3.0
        cases.append((scale * torch.randn(_K, generator=gen, dtype=f64),
                      scale * torch.randn(_K, generator=gen, dtype=f64),
                      0.01 + torch.rand((), generator=gen, dtype=f64)))
    z = torch.linspace(-2, 2, _K, dtype=f64)
    beta = torch.tensor(0.1, dtype=f64)
    cases += [(z.clone(), z.clone(), beta),                        # pi_theta = pi_ref
              (10 * z, -10 * z, beta),                             # nearly disjoint
              (torch.zeros(_K, dtype=f64), 5 * z, beta)]           # uniform vs peaked
    return cases


def _categorical_score_weighted(psi, z, *_):
    """sum_o pi(o) Psi(o) (e_o - pi): the exact expectation with the softmax score."""
    pi = torch.softmax(z, -1)
    return (pi * psi) @ (torch.eye(len(z), dtype=f64) - pi)


_HERMITE_NODES = 100


@cache
def _hermite(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gauss-Hermite nodes x_k and weights w_k / sqrt(pi): E[f(z)], z ~ N(0, 1), is
    approximately sum_k w_k f(sqrt(2) x_k)."""
    x, w = np.polynomial.hermite.hermgauss(n)
    return torch.tensor(x, dtype=f64), torch.tensor(w / math.sqrt(math.pi), dtype=f64)


def _squashed_cases(gen: torch.Generator, n: int) -> list[tuple]:
    """(theta (S, 2) = (m, log sigma) per state, critic coefficients (S, 4), alpha), S = 4;
    sigma in [0.08, 0.5], where 100-node quadrature of the tanh-squashed integrands is exact to
    ~1e-13."""
    S = 4
    cases = []
    for _ in range(n):
        m = -2 + 4 * torch.rand(S, generator=gen, dtype=f64)
        log_sigma = -2.5 + 1.8 * torch.rand(S, generator=gen, dtype=f64)
        coef = torch.randn(S, 4, generator=gen, dtype=f64)
        alpha = 0.05 + torch.rand((), generator=gen, dtype=f64)
        cases.append((torch.stack([m, log_sigma], -1), coef, alpha))
    edge = torch.tensor([[0.0, -0.7], [2.0, -2.5], [-2.0, -0.7], [0.0, -2.5]], dtype=f64)
    cases.append((edge, torch.ones(S, 4, dtype=f64), torch.tensor(0.2, dtype=f64)))
    return cases


def _squashed_nodes(theta):
    """Pre-squash u = m + sigma sqrt(2) x_k (S, K), action tanh(u), quadrature weights (S, K)."""
    x, w = _hermite(_HERMITE_NODES)
    m, sigma = theta[:, :1], theta[:, 1:].exp()
    u = m + sigma * math.sqrt(2) * x
    S = theta.shape[0]
    return u, torch.tanh(u), (w / S).expand(S, -1)


def _squashed_log_prob(theta, u, a):
    """log pi(a|s) of a = tanh(u), u ~ N(m, sigma^2): torch.distributions' Normal and the
    TanhTransform's log|det J| (computed from u, so no atanh of a rounded +-1)."""
    base = Normal(theta[:, :1], theta[:, 1:].exp())
    return base.log_prob(u) - TanhTransform().log_abs_det_jacobian(u, a)


def _squashed_critic(a, coef):
    return coef[:, :1] + coef[:, 1:2] * a + coef[:, 2:3] * a**2 + coef[:, 3:4] * torch.sin(3 * a)


def _squashed_score_weighted(psi, theta, *_):
    """sum_{s,k} w_k/S Psi_{s,k} grad_theta log pi(a_k|s) with the closed-form Gaussian score in
    (m, log sigma) at u_k (chapter 1); the tanh Jacobian does not depend on theta at fixed u."""
    u, _a, w = _squashed_nodes(theta)
    m, sigma = theta[:, :1], theta[:, 1:].exp()
    z = (u - m) / sigma
    score = torch.stack([z / sigma, z**2 - 1], -1)  # (S, K, 2)
    return ((w * psi)[..., None] * score).sum(1)


_DS, _DA = 3, 2  # state and action dimensions of the deterministic setting


def _mu(theta, states):
    """mu_theta(s) = tanh(W s + b), theta = (W flattened, b): (B, ds) -> (B, da)."""
    W = theta[: _DA * _DS].reshape(_DA, _DS)
    return torch.tanh(states @ W.T + theta[_DA * _DS:])


def _dpg_critic(K, M, C, quadratic):
    """Q(s, a) = -(a - g(s))^T M (a - g(s)) + (C s)^T a [+ 0.5 sin(a_0 a_1 + s_0)], g = tanh(Ks)."""
    def critic(states, actions):
        d = actions - torch.tanh(states @ K.T)
        q = -torch.einsum("bi,ij,bj->b", d, M, d) + ((states @ C.T) * actions).sum(-1)
        if not quadratic:
            q = q + 0.5 * torch.sin(actions[:, 0] * actions[:, 1] + states[:, 0])
        return q
    return critic


def _deterministic_cases(gen: torch.Generator, n: int) -> list[tuple]:
    """(theta (8,), states (B, 3), K (2, 3), M (2, 2) positive definite, C (2, 3), sigma), B = 8."""
    B = 8
    cases = []
    for i in range(n):
        theta = torch.randn(_DA * _DS + _DA, generator=gen, dtype=f64) * (1 + (i % 2))
        states = torch.randn(B, _DS, generator=gen, dtype=f64)
        K = torch.randn(_DA, _DS, generator=gen, dtype=f64)
        L_ = torch.randn(_DA, _DA, generator=gen, dtype=f64)
        M = L_ @ L_.T + 0.1 * torch.eye(_DA, dtype=f64)
        C = torch.randn(_DA, _DS, generator=gen, dtype=f64)
        sigma = 0.05 + torch.rand((), generator=gen, dtype=f64)
        cases.append((theta, states, K, M, C, sigma))
    theta0 = torch.zeros(_DA * _DS + _DA, dtype=f64)
    cases.append((theta0, torch.zeros(B, _DS, dtype=f64), torch.zeros(_DA, _DS, dtype=f64),
                  torch.eye(_DA, dtype=f64), torch.zeros(_DA, _DS, dtype=f64),
                  torch.tensor(1.0, dtype=f64)))  # edge: at the critic's maximum, gradient 0
    return cases


def _policy_jacobians(theta, states):
    """d mu_theta(s_b) / d theta in closed form, (B, da, d): with mu = tanh(W s + b),
    d mu_i / d W_jk = 1[i = j] (1 - mu_i^2) s_k and d mu_i / d b_j = 1[i = j] (1 - mu_i^2)."""
    slope = 1 - _mu(theta, states) ** 2                                    # (B, da)
    eye = torch.eye(_DA, dtype=theta.dtype)
    d_w = slope[:, :, None, None] * eye[None, :, :, None] * states[:, None, None, :]
    d_b = slope[:, :, None] * eye[None]
    return torch.cat([d_w.reshape(len(states), _DA, _DA * _DS), d_b], -1)


def _action_gradients(critic, states, actions):
    """grad_a Q(s_b, a) at the given actions: (B, da) (each Q depends on its own a only)."""
    a = actions.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(states, a).sum(), a)
    return g


def _gaussian_nodes_2d(n: int = 3):
    """Tensor-product Gauss-Hermite nodes (n^2, 2) for z ~ N(0, I_2) (scaled by sqrt 2) and
    their weights (n^2,): exact for polynomials of degree <= 2n - 1 in each coordinate."""
    x, w = _hermite(n)
    zx, zy = torch.meshgrid(math.sqrt(2) * x, math.sqrt(2) * x, indexing="ij")
    return torch.stack([zx.reshape(-1), zy.reshape(-1)], -1), (w[:, None] * w[None]).reshape(-1)


# --------------------------------------------------------------------------------------------
# SymPy identities (cached: each runs once per process).
# --------------------------------------------------------------------------------------------

@cache
def _sym_mdp():
    """The tabular MDP in the coordinates u_s = pi(0|s) (chapter 6): trajectory probabilities
    are polynomials; grad J in the logits via d u_s / d theta_{s,a} = +-u_s (1 - u_s)."""
    mdp = _mdp()
    S, A = mdp.n_states, mdp.n_actions
    u = sp.symbols("u_0 u_1", positive=True)
    pi = sp.Matrix([[u[s], 1 - u[s]] for s in range(S)])
    p = mdp._trajectory_probs_pi(pi)

    def grad(J):
        J = sp.expand(J)
        return sp.Matrix(S, A, lambda s, a: sp.expand((1 - 2 * a) * J.diff(u[s]) * u[s]
                                                       * (1 - u[s])))

    grad_J = grad(sum(pp * R for pp, R in zip(p, mdp.returns_exact(), strict=True)))
    return mdp, u, pi, p, grad, grad_J


def _sym_verdict(diff: sp.Matrix, what: str) -> bool:
    """True if every entry of ``diff`` expands to 0. Otherwise evaluate it at an exact point
    (u = (1/3, 2/3), alpha = 1/2, each L_{s,a} = log pi(a|s) there, every other symbol a distinct
    rational) and return False if an entry is non-zero to 30 digits."""
    diff = diff.applyfunc(sp.expand)
    if all(e == 0 for e in diff):
        return True
    mdp, u, pi, *_ = _sym_mdp()
    point = {u[0]: sp.Rational(1, 3), u[1]: sp.Rational(2, 3),
             sp.Symbol("alpha", positive=True): sp.Rational(1, 2)}
    for s in range(mdp.n_states):
        for a in range(mdp.n_actions):
            point[sp.Symbol(f"L_{s}{a}", real=True)] = sp.log(pi[s, a].subs(point))
    others = sorted(set().union(*(e.free_symbols for e in diff)) - set(point), key=str)
    point.update({x: sp.Rational(1, k + 2) for k, x in enumerate(others)})
    if not _nonzero_at(diff, point):
        raise AssertionError(f"{what}: residual neither 0 nor provably non-zero")
    return False


def _nonzero_at(diff: sp.Matrix, point: dict) -> bool:
    """True if some entry of ``diff`` is provably non-zero at an exact ``point`` (30 digits)."""
    return any(abs(sp.N(e.subs(point), 30)) > 1e-20 for e in diff)


def _sym_returns(discount_from_start: bool) -> bool:
    """grad J - E[sum_t score_t Psi_t] with Psi_t = gamma^t G_t or G_t, over all 128
    trajectories (chapters 3 and 5)."""
    mdp, u, pi, _p, _grad, grad_J = _sym_mdp()
    T, g = mdp.horizon, mdp.gamma_exact
    psi = []
    for r in mdp.trajectories.rewards_exact:
        G = [sum(g ** (k - t) * r[k] for k in range(t, T)) for t in range(T)]
        psi.append([g**t * G[t] if discount_from_start else G[t] for t in range(T)])
    return _sym_verdict(grad_J - mdp.expected_score_weighted_sym(pi, psi), "returns")


def _sym_return_whole() -> bool:
    """(0.6): grad J - E[sum_t score_t R(tau)] over all 128 trajectories (chapter 3)."""
    mdp, u, pi, _p, _grad, grad_J = _sym_mdp()
    return _sym_verdict(grad_J - mdp.expected_score_weighted_sym(pi, mdp.returns_exact()),
                        "(0.6)")


def _state_form(values, discount: bool) -> sp.Matrix:
    """E[sum_t score_t Psi_t(s_t, a_t)] for Psi_t = [gamma^t] values[t, s, a], grouped by
    (t, s, a): sum_t [gamma^t] sum_s d_t(s) sum_a pi(a|s) values (e_a - pi(.|s)) in row s, with
    the occupancies d_t of :meth:`~pgbook.mdp.TabularMDP.state_occupancy_sym` (chapter 6)."""
    mdp, u, pi, *_ = _sym_mdp()
    T, S, A, g = mdp.horizon, mdp.n_states, mdp.n_actions, mdp.gamma_exact
    d = mdp.state_occupancy_sym(pi)
    return sp.Matrix(S, A, lambda s, b: sum(
        (g**t if discount else 1) * d[t, s] * pi[s, a] * values[t, s, a]
        * ((1 if a == b else 0) - pi[s, b]) for t in range(T) for a in range(A)))


def _sym_values(kind: str, discount: bool, error: str | None = None) -> bool:
    """grad J - E[sum_t score_t Psi_t] for Psi_t = [gamma^t] Q_t, A_t, Q_t + eps_t(s, a) (a
    learned critic with symbolic errors) or Q_t - V_t - eta_t(s) (a learned baseline)."""
    mdp, u, pi, _p, _grad, grad_J = _sym_mdp()
    T, S, A = mdp.horizon, mdp.n_states, mdp.n_actions
    Q, V_ = mdp.q_values_sym(pi), mdp.state_values_sym(pi)

    def value(t, s, a):
        if error == "eps":
            return Q[t, s, a] + sp.Symbol(f"epsilon_{t}{s}{a}", real=True)
        if error == "eta":
            return Q[t, s, a] - V_[t, s] - sp.Symbol(f"eta_{t}{s}", real=True)
        return Q[t, s, a] - (V_[t, s] if kind == "A" else 0)

    values = sp.Array([[[value(t, s, a) for a in range(A)] for s in range(S)] for t in range(T)])
    return _sym_verdict(grad_J - _state_form(values, discount), f"{kind} {error}")


@cache
def _sym_soft():
    """SAC's soft objective on the tabular MDP, as a polynomial (chapter 11).

    In the u coordinates, with a symbol L_{s,a} standing for log pi(a|s): J_soft is a polynomial
    in (u, L, alpha), and its logit gradient follows from the chain rule with
    d u_s / d theta_{s,b} = +-u_s (1 - u_s) and d L_{s,a} / d theta_{s,b} = 1[a = b] - pi(b|s)
    (the softmax score). An identity that holds for independent symbols L holds in particular
    at L = log pi. Returns (alpha, L, grad J_soft, Q^soft (T, S, A), V^soft (T+1, S)).
    """
    mdp, u, pi, p, _grad, _ = _sym_mdp()
    S, A, T, g = mdp.n_states, mdp.n_actions, mdp.horizon, mdp.gamma_exact
    alpha = sp.Symbol("alpha", positive=True)
    L = sp.Matrix(S, A, lambda s, a: sp.Symbol(f"L_{s}{a}", real=True))
    table = mdp.trajectories
    J = 0
    for i, pp in enumerate(p):
        s, a = table.states[i].tolist(), table.actions[i].tolist()
        J += pp * sum(g**t * (table.rewards_exact[i][t] - alpha * L[s[t], a[t]])
                      for t in range(T))
    J = sp.expand(J)
    grad_J = sp.Matrix(S, A, lambda s, b: sp.expand(
        (1 - 2 * b) * J.diff(u[s]) * u[s] * (1 - u[s])
        + sum(J.diff(L[s, a]) * ((1 if a == b else 0) - pi[s, b]) for a in range(A))))
    V_next = [sp.Integer(0)] * S
    qs, vs = [], [V_next]
    for _ in range(T):
        Q = [[sp.expand(sum(mdp.P_exact[(s, a, s2)] * (mdp.R_exact[(s, a, s2)] + g * V_next[s2])
                            for s2 in range(S))) for a in range(A)] for s in range(S)]
        V_next = [sp.expand(sum(pi[s, a] * (Q[s][a] - alpha * L[s, a]) for a in range(A)))
                  for s in range(S)]
        qs.append(Q)
        vs.append(V_next)
    return alpha, L, grad_J, sp.Array(qs[::-1]), sp.Array(vs[::-1])


def _sym_soft_residual_zero(entropy: bool, discount: bool) -> bool:
    """grad J_soft - E[sum_t score_t Psi_t] for Psi_t = [gamma^t] (Q^soft - [alpha L] - V^soft)."""
    mdp, *_ = _sym_mdp()
    alpha, L, grad_J, Q, V_ = _sym_soft()
    T, S, A = mdp.horizon, mdp.n_states, mdp.n_actions
    values = sp.Array([[[Q[t, s, a] - (alpha * L[s, a] if entropy else 0) - V_[t, s]
                         for a in range(A)] for s in range(S)] for t in range(T)])
    return _sym_verdict(grad_J - _state_form(values, discount), "soft policy gradient")


def _sym_ratio() -> bool:
    """grad_z r = r grad_z log pi for r = softmax(z)_a / p_old (chapter 7), K = 3, every a."""
    z = sp.symbols("z_0:3", real=True)
    p_old = sp.Symbol("p_old", positive=True)
    for a in range(3):
        r = softmax(z)[a] / p_old
        assert_identical(sp.Matrix([r.diff(zj) for zj in z]), r * softmax_score(z, a),
                         what="grad r = r grad log pi")
    return True


@cache
def _clip_derivatives():
    """d/dr of the PPO-Clip objective on each region of :func:`ppo_clip_regions` (chapter 8)."""
    r = sp.Symbol("r", positive=True)
    A = sp.Symbol("A", real=True)
    eps = sp.Symbol("epsilon", positive=True)
    objective = ppo_clip_objective(r, A, eps)
    regions = ppo_clip_regions(r, A, eps)
    return r, A, eps, [(reg, derivative_on_region(objective, r, reg)) for reg in regions]


def _sym_clip(indicator: str) -> bool:
    """True iff d/dr objective = indicator * A on every region: the source's 1_not-clip
    (chapter 8) or 'r inside the clip range' (the misreading)."""
    r, A, eps, derivs = _clip_derivatives()
    if indicator == "not_clip":
        ind = not_clip_sym(r, A, eps)
    else:
        ind = sp.Piecewise((1, (r >= 1 - eps) & (r <= 1 + eps)), (0, True))
    for reg, d in derivs:
        value = decide_branches((ind * A).subs(reg.substitution))
        if value.has(sp.Piecewise) or simplify_difference(d, value) != 0:
            return False
    return True


@cache
def _sym_grpo() -> bool:
    """GRPO's clipped part is PPO-Clip's (its region proof), and d k3 / d log pi = 1 - rho."""
    lp, lr = sp.symbols("l l_ref", real=True)
    k3 = sp.exp(lr - lp) - (lr - lp) - 1
    assert_identical(k3.diff(lp), 1 - sp.exp(lr - lp), what="d k3 / d log pi")
    return _sym_clip("not_clip")


def _sym_kl(weight: str, direction: str) -> bool:
    """E_{o~pi}[Psi(o) grad_z log pi(o)] against grad_z of a KL, K = 3 outcomes (chapter 9).

    pi = (p_0, p_1, 1 - p_0 - p_1) and pi_ref = (q_0, q_1, 1 - q_0 - q_1), with symbols L_o, M_o
    for log pi(o), log pi_ref(o); the logit gradient by the chain rule through the softmax
    (d pi_o / d z_j = pi_o (1[o = j] - pi_j), d L_o / d z_j = 1[o = j] - pi_j). True if the
    difference cancels to 0; False if it is non-zero at pi = (1/2, 1/3, 1/6), pi_ref uniform.
    """
    p0, p1, q0, q1 = sp.symbols("p_0 p_1 q_0 q_1", positive=True)
    pi, ref = [p0, p1, 1 - p0 - p1], [q0, q1, 1 - q0 - q1]
    L = sp.symbols("L_0:3", real=True)
    M = sp.symbols("M_0:3", real=True)
    P = sp.symbols("P_0:3", positive=True)  # pi as independent symbols for the chain rule
    if direction == "theta||ref":
        kl = sum(P[o] * (L[o] - M[o]) for o in range(3))
    else:
        kl = sum(ref[o] * (M[o] - L[o]) for o in range(3))
    on_pi = dict(zip(P, pi, strict=True))

    def d_dz(j):
        return sum(kl.diff(P[o]).subs(on_pi) * pi[o] * ((1 if o == j else 0) - pi[j])
                   + kl.diff(L[o]).subs(on_pi) * ((1 if o == j else 0) - pi[j])
                   for o in range(3))

    psi = [1 - ref[o] / pi[o] for o in range(3)] if weight == "k3" else [L[o] - M[o]
                                                                       for o in range(3)]
    diff = sp.Matrix([sp.cancel(sp.expand(d_dz(j) - sum(
        pi[o] * psi[o] * ((1 if o == j else 0) - pi[j]) for o in range(3)))) for j in range(3)])
    if all(e == 0 for e in diff):
        return True
    point = {p0: sp.Rational(1, 2), p1: sp.Rational(1, 3), q0: sp.Rational(1, 3),
             q1: sp.Rational(1, 3)}
    point.update({L[o]: sp.log(pi[o].subs(point)) for o in range(3)})
    point.update({M[o]: sp.log(ref[o].subs(point)) for o in range(3)})
    if not _nonzero_at(diff, point):
        raise AssertionError("KL gradient: residual neither 0 nor provably non-zero")
    return False


def _gaussian_expectation(expr, z):
    """E over z ~ N(0, 1) of a polynomial in z, from the moments E[z^j] = (j - 1)!! (even j)."""
    poly = sp.Poly(sp.expand(expr), z)
    return sp.Add(*(c * (sp.factorial2(j - 1) if j % 2 == 0 else 0) for (j,), c in poly.terms()))


def _sym_reparameterisation(entropy: bool) -> bool:
    """Pathwise gradient of E[Q(a) - alpha log N(a; m, sigma)] (a = m + sigma z, quartic Q) vs
    the score-function form with Psi = Q - alpha log pi (entropy) or Q alone (the source)."""
    z = sp.Symbol("z", real=True)
    m, ls, x = sp.symbols("m log_sigma x", real=True)
    alpha = sp.Symbol("alpha", positive=True)
    q = sp.symbols("q_0:5", real=True)
    Q = sum(q[j] * x**j for j in range(5))
    sigma = sp.exp(ls)
    log_pi = -(x - m) ** 2 / (2 * sigma**2) - ls - sp.log(2 * sp.pi) / 2
    f = Q - alpha * log_pi
    on_path = f.subs(x, m + sigma * z)
    pathwise = sp.Matrix([_gaussian_expectation(sp.expand(on_path.diff(v)), z) for v in (m, ls)])
    psi = (Q - alpha * log_pi) if entropy else Q
    score = sp.Matrix([(x - m) / sigma**2, (x - m) ** 2 / sigma**2 - 1])
    sf = (psi * score).subs(x, m + sigma * z)
    sf = sp.Matrix([_gaussian_expectation(sp.expand(e), z) for e in sf])
    return all(simplify_difference(a, b) == 0 for a, b in zip(pathwise, sf, strict=True))


def _sym_dpg_chain_rule() -> bool:
    """grad_theta Q(s, mu_theta(s)) = grad_theta mu * grad_a Q for an undefined Q (chapter 10)."""
    s, a1, a2 = sp.symbols("s a_1 a_2", real=True)
    theta = sp.symbols("theta_0:3", real=True)
    mu = sp.Matrix([theta[0] + theta[1] * s, sp.tanh(theta[2] * s)])
    Q = sp.Function("Q")
    lhs = sp.Matrix([Q(s, *mu).diff(th) for th in theta])
    grad_a = sp.Matrix([Q(s, a1, a2).diff(a) for a in (a1, a2)]).subs({a1: mu[0], a2: mu[1]})
    assert_identical(lhs, mu.jacobian(theta).T * grad_a, what="DPG chain rule")
    return True


def _sym_dpg_gaussian() -> bool:
    """E_{a~N(mu, sigma^2)}[grad log pi * Q(a)] = grad mu * Q'(mu) for a quadratic Q, every sigma
    (chapter 10, the sigma -> 0 limit that is exact here)."""
    z, a, s = sp.symbols("z a s", real=True)
    sigma = sp.Symbol("sigma", positive=True)
    th0, th1 = sp.symbols("theta_0 theta_1", real=True)
    mu = th0 + sp.tanh(th1 * s)
    q = [sp.Function(f"q_{j}")(s) for j in range(3)]
    Q = q[0] + q[1] * a + q[2] * a**2
    log_pi = -(a - mu) ** 2 / (2 * sigma**2) - sp.log(sigma) - sp.log(2 * sp.pi) / 2
    sf = sp.Matrix([_gaussian_expectation((log_pi.diff(th) * Q).subs(a, mu + sigma * z), z)
                    for th in (th0, th1)])
    dpg_ = sp.Matrix([mu.diff(th) for th in (th0, th1)]) * Q.diff(a).subs(a, mu)
    assert_identical(sf, dpg_, what="Gaussian PG = DPG for quadratic Q")
    return True


# --------------------------------------------------------------------------------------------
# The rows.
# --------------------------------------------------------------------------------------------

def _settings() -> dict[str, Setting]:
    return {
        "tabular": Setting("tabular", "the book's MDP (2 states, 2 actions, T = 3, gamma = 9/10); "
                           "exact sums over all 128 trajectories", _tabular_cases,
                           _tabular_score_weighted),
        "samples": Setting("samples", "16 samples of a tabular softmax policy (3 states, "
                           "4 actions); closed-form score", _samples_cases,
                           _sample_score_weighted),
        "tokens": Setting("tokens", "6 answers of 1-5 tokens from a tabular softmax policy; "
                          "closed-form score", _tokens_cases, _sample_score_weighted),
        "categorical": Setting("categorical", "one softmax distribution over 5 outcomes; exact "
                               "expectations", _categorical_cases, _categorical_score_weighted),
        "squashed_gaussian": Setting("squashed_gaussian", "tanh-Gaussian policy in 4 states; "
                                     "100-node Gauss-Hermite quadrature", _squashed_cases,
                                     _squashed_score_weighted),
        "deterministic": Setting("deterministic", "mu_theta(s) = tanh(W s + b), 2-D actions, "
                                 "8 states; Gauss-Hermite for the Gaussian row",
                                 _deterministic_cases, None),
    }


@cache
def rows() -> tuple[Row, ...]:
    """Every row of the book's gradient table, in the order of the source's table (chapter 12).

    Rows come in groups per algorithm: the source's Psi as written (``form="source"``), then the
    book's (``"book"``); ``"source = book"`` where the source's form is exact.
    """
    mdp = _mdp()
    st = _settings()
    g = mdp.gamma
    table = mdp.trajectories

    def J(theta, *_):
        return mdp.J(theta)

    def J_soft(theta, alpha, *_):
        return soft_J(mdp, theta, float(alpha))

    def along(values):
        return mdp.along_trajectories(values)

    def tab(key, algorithm, form, psi, psi_source, weight, holds, sympy, chapter,
            objective=J, against="J exact"):
        return Row(key, algorithm, form, psi, against, psi_source, chapter, st["tabular"],
                   objective, weight, holds, sympy)

    out = [
        tab("pg", "PG theorem (0.6)", "source = book", "R(τ)", "R(τ)",
            lambda th, *_: mdp.returns()[:, None].expand(len(table), mdp.horizon), True,
            _sym_return_whole, "3"),
        tab("rtg-code", "reward-to-go", "common code", "G_t", "(not in the source)",
            lambda th, *_: reward_to_go(table.rewards, g), False,
            lambda: _sym_returns(False), "3, 5"),
        tab("rtg", "reward-to-go", "book", "γ^t G_t", "(not in the source)",
            lambda th, *_: reward_to_go(table.rewards, g, discount_from_start=True), True,
            lambda: _sym_returns(True), "3, 5"),
        tab("ac-src", "actor-critic (0.10)", "source", "Q_t(s_t,a_t)", "Q_w(s_t,a_t)",
            lambda th, *_: actor_critic_weight(along(mdp.q_values(th))), False,
            lambda: _sym_values("Q", False), "6"),
        tab("ac", "actor-critic (0.10)", "book", "γ^t Q_t(s_t,a_t)", "Q_w(s_t,a_t)",
            lambda th, *_: actor_critic_weight(along(mdp.q_values(th)), gamma=g), True,
            lambda: _sym_values("Q", True), "6"),
        tab("ac-Qw", "actor-critic (0.10)", "learned Q_w", "γ^t (Q_t + ε_t)(s_t,a_t)",
            "Q_w(s_t,a_t)",
            lambda th, alpha, eps, eta: actor_critic_weight(along(mdp.q_values(th) + eps),
                                                            gamma=g), False,
            lambda: _sym_values("Q", True, "eps"), "6"),
        tab("a2c-src", "A2C (0.12)", "source", "A_t(s_t,a_t)", "A(s_t,a_t)",
            lambda th, *_: a2c_weight(along(mdp.advantages(th))), False,
            lambda: _sym_values("A", False), "6"),
        tab("a2c", "A2C (0.12)", "book", "γ^t A_t(s_t,a_t)", "A(s_t,a_t)",
            lambda th, *_: a2c_weight(along(mdp.advantages(th)), gamma=g), True,
            lambda: _sym_values("A", True), "6"),
        tab("a2c-Vw", "A2C (0.12)", "learned V_w", "γ^t (Q_t - V_t - η_t)(s_t,a_t)", "A(s_t,a_t)",
            lambda th, alpha, eps, eta: a2c_weight(
                along(mdp.q_values(th)) - along(mdp.state_values(th) + eta)[:, :-1], gamma=g),
            True, lambda: _sym_values("Q", True, "eta"), "6"),
        tab("sac-src", "SAC", "source", "Q^soft_t - V^soft_t", "Q_w - V",
            lambda th, alpha, *_: a2c_weight(
                along(soft_values(mdp, th, float(alpha))[0])
                - along(soft_values(mdp, th, float(alpha))[1])[:, :-1]).detach(), False,
            lambda: _sym_soft_residual_zero(entropy=False, discount=False), "11",
            objective=J_soft, against="J_soft exact"),
        tab("sac", "SAC", "book", "γ^t (Q^soft_t - α log π - V^soft_t)", "Q_w - V",
            lambda th, alpha, *_: soft_policy_gradient_weight(mdp, th, float(alpha)), True,
            lambda: _sym_soft_residual_zero(entropy=True, discount=True), "11",
            objective=J_soft, against="J_soft exact"),
    ]

    # SAC's actor as SAC computes it: reparameterised tanh-Gaussian, quadrature expectations.
    def sac_actor_objective(theta, coef, alpha):
        u, a, w = _squashed_nodes(theta)
        return sac_policy(_squashed_critic(a, coef), _squashed_log_prob(theta, u, a),
                          float(alpha), weights=w)

    def sac_actor_weight(entropy):
        def weight(theta, coef, alpha):
            u, a, w = _squashed_nodes(theta.detach())
            q = _squashed_critic(a, coef)
            logp = _squashed_log_prob(theta.detach(), u, a)
            soft_v = (w * (q - float(alpha) * logp)).sum(1, keepdim=True) * theta.shape[0]
            if entropy:  # Psi = Q - alpha log pi - V_soft(s)
                return sac_policy_weight(q, logp, float(alpha), baseline=soft_v)
            return (q - soft_v).detach()  # the source: Q_w - V
        return weight

    for key, form, psi, entropy in (
            ("sac-actor-src", "source", "Q_w - V, score fn.", False),
            ("sac-actor", "book", "Q_w - α log π - V, score fn.", True)):
        out.append(Row(key, "SAC actor, tanh-Gaussian", form, psi, "E[Q_w - α log π], pathwise",
                       "Q_w - V", "11", st["squashed_gaussian"], sac_actor_objective,
                       sac_actor_weight(entropy), entropy,
                       (lambda e=entropy: _sym_reparameterisation(e)), atol=1e-10))

    # TRPO and PPO-Clip: surrogate objectives on a batch of samples.
    def samples_row(key, algorithm, form, psi, psi_source, objective, weight, holds, sympy,
                    chapter):
        def obj(theta, states, actions, logp_old, adv):
            return objective(_sample_logp(theta, states, actions), logp_old, adv)

        def wt(theta, states, actions, logp_old, adv):
            return weight(_sample_logp(theta, states, actions), logp_old, adv)

        return Row(key, algorithm, form, psi, "surrogate", psi_source, chapter, st["samples"],
                   obj, wt, holds, sympy)

    def inside_clip_weight(logp, logp_old, adv):
        r = ratio(logp, logp_old).detach()
        return (((r >= 1 - _EPS) & (r <= 1 + _EPS)).to(f64) * r * adv).detach()

    out += [
        samples_row("trpo", "TRPO", "source = book", "r_t A_t", "r_t(θ) A_t", trpo,
                    trpo_weight, True, _sym_ratio, "7"),
        samples_row("ppo", "PPO-Clip", "source = book", "1_nc r_t A_t", "1_nc r_t A_t",
                    lambda lp, lo, ad: ppo_clip(lp, lo, ad, _EPS),
                    lambda lp, lo, ad: ppo_clip_weight(lp, lo, ad, _EPS), True,
                    lambda: _sym_clip("not_clip"), "8"),
        samples_row("ppo-inside", "PPO-Clip", "words: inside", "1[|r_t-1| ≤ ε] r_t A_t",
                    "1_nc r_t A_t", lambda lp, lo, ad: ppo_clip(lp, lo, ad, _EPS),
                    inside_clip_weight, False, lambda: _sym_clip("inside"), "8"),
    ]

    # GRPO: per-answer (source) and per-token (paper) forms, then the KL term exactly.
    def token_row(key, form, psi, objective, weight):
        def obj(theta, states, actions, logp_old, logp_ref, adv, mask, beta):
            return objective(_sample_logp(theta, states, actions), logp_old, logp_ref, adv, mask,
                             _EPS, float(beta))

        def wt(theta, states, actions, logp_old, logp_ref, adv, mask, beta):
            return weight(_sample_logp(theta, states, actions), logp_old, logp_ref, adv, mask,
                          _EPS, float(beta))

        return Row(key, "GRPO", form, psi, "surrogate, k3 KL",
                   "1_nc(i) r_i A_i - β∇KL(π‖π_ref)", "9", st["tokens"], obj, wt, True,
                   _sym_grpo)

    out += [
        token_row("grpo-seq", "source", "1_nc r_i A_i - β(1-ρ_i)", grpo_sequence,
                  grpo_sequence_weight),
        token_row("grpo-tok", "paper", "(1_nc r_it A_i - β(1-ρ_it))/|o_i|", grpo,
                  grpo_weight),
    ]

    def neg_kl(direction):
        def obj(z, z_ref, beta):
            p, q = Categorical(logits=z), Categorical(logits=z_ref)
            kl = kl_divergence(p, q) if direction == "theta||ref" else kl_divergence(q, p)
            return -beta * kl
        return obj

    def kl_row(key, form, psi, direction, weight_fn, holds, weight_name):
        def wt(z, z_ref, beta):
            return -beta * weight_fn(torch.log_softmax(z, -1), torch.log_softmax(z_ref, -1))
        against = "-β KL(π‖π_ref)" if direction == "theta||ref" else "-β KL(π_ref‖π)"
        return Row(key, "GRPO KL term", form, psi, against, "-β∇KL(π‖π_ref)", "9",
                   st["categorical"], neg_kl(direction), wt, holds,
                   (lambda: _sym_kl(weight_name, direction)))

    out += [
        kl_row("kl-k3-src", "source", "-β(1-ρ)  [k3]", "theta||ref", kl_k3_weight, False,
               "k3"),
        kl_row("kl-k3", "book", "-β(1-ρ)  [k3]", "ref||theta", kl_k3_weight, True, "k3"),
        kl_row("kl", "book", "-β log(π/π_ref)", "theta||ref", kl_weight, True, "log-ratio"),
    ]

    # DPG: no weight; the chain rule, and the Gaussian policy gradient it is the limit of.
    def dpg_objective(quadratic):
        def obj(theta, states, K, M, C, sigma):
            return dpg(_dpg_critic(K, M, C, quadratic), states, _mu(theta, states))
        return obj

    def dpg_closed_form(theta, states, K, M, C, sigma):
        critic = _dpg_critic(K, M, C, False)
        return dpg_gradient(_policy_jacobians(theta, states),
                            _action_gradients(critic, states, _mu(theta, states)))

    def gaussian_nodes(theta, states, sigma):
        z, w = _gaussian_nodes_2d()
        mu = _mu(theta, states)
        return mu, mu[:, None] + sigma * z[None], w  # (B, da), (B, k, da), (k,)

    def gaussian_weight(theta, states, K, M, C, sigma):
        _, a, _ = gaussian_nodes(theta, states, float(sigma))
        B, k, da = a.shape
        critic = _dpg_critic(K, M, C, True)
        return critic(states.repeat_interleave(k, 0), a.reshape(B * k, da)).reshape(B, k)

    def gaussian_score_weighted(psi, theta, states, K, M, C, sigma):
        mu, a, w = gaussian_nodes(theta, states, float(sigma))
        jac = _policy_jacobians(theta, states)                              # (B, da, d)
        score = torch.einsum("bmd,bkm->bkd", jac, (a - mu[:, None]) / float(sigma) ** 2)
        return torch.einsum("k,bk,bkd->d", w, psi, score) / states.shape[0]

    gaussian = Setting("deterministic", st["deterministic"].description,
                       _deterministic_cases, gaussian_score_weighted)
    out += [
        Row("dpg", "DPG", "source = book", "none: ∇_θμ ∇_aQ_w", "Q_w(s, μ_θ(s))",
            "∇_θμ(s) ∇_aQ_w|a=μ(s)", "10", st["deterministic"], dpg_objective(False), None,
            True, _sym_dpg_chain_rule, closed_form=dpg_closed_form),
        Row("dpg-gauss", "DPG", "Gaussian σ>0", "Q_w(s,a), a ~ N(μ_θ(s), σ²I)",
            "Q_w(s, μ_θ(s)), quadratic", "∇_θμ(s) ∇_aQ_w|a=μ(s)", "10", gaussian,
            dpg_objective(True), gaussian_weight, True, _sym_dpg_gaussian, atol=1e-10),
    ]
    return tuple(out)


def row(key: str) -> Row:
    """The row of :func:`rows` with this key (e.g. ``"ppo"``, ``"a2c-src"``)."""
    for r in rows():
        if r.key == key:
            return r
    raise ValueError(f"no row with key {key!r}; keys: {[r.key for r in rows()]}")
