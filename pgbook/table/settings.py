"""The six settings of the gradient table: where each row's expectation lives (chapter 12).

* :data:`TABULAR`: the book's MDP (:meth:`pgbook.mdp.TabularMDP.default`); J is the exact
  objective (0.1) (or its soft version), E[...] is the exact sum over all trajectories
  (:meth:`~pgbook.mdp.TabularMDP.expected_score_weighted`). Chapters 3, 5, 6, 11.
* :data:`SAMPLES` / :data:`TOKENS`: a tabular softmax policy and a fixed batch of samples
  (answers of tokens for GRPO); the identity is grad J = (1/B) sum_i sum_t Psi_{i,t}
  (e_a - pi(.|s)) at every sample (chapters 7-9). Ratios sit near, never on, r = 1 +- eps.
* :data:`CATEGORICAL`: one distribution over K outcomes, exact expectations (GRPO's KL term).
* :data:`SQUASHED_GAUSSIAN`: SAC's tanh-Gaussian actor in a few states; expectations over the
  Gaussian noise by Gauss-Hermite quadrature (exact to ~1e-13 for the smooth integrands here).
* :data:`DETERMINISTIC`: DPG, a deterministic policy mu_theta(s) and a critic Q(s, a)
  (chapter 10); its expectation is that of the Gaussian policy N(mu_theta(s), sigma^2 I).

The public functions are the models of the settings that the rows' objectives and weights
are written in (:mod:`pgbook.table.groups`).
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Normal, TanhTransform

from .. import _validate as V
from ..mdp import TabularMDP
from .framework import Setting

__all__ = [
    "CATEGORICAL",
    "DETERMINISTIC",
    "EPS",
    "SAMPLES",
    "SQUASHED_GAUSSIAN",
    "TABULAR",
    "TOKENS",
    "book_mdp",
    "deterministic_policy",
    "dpg_critic",
    "gaussian_actions",
    "policy_jacobians",
    "random_policy_samples",
    "sample_log_probs",
    "squashed_actor",
]

f64 = torch.float64
EPS = 0.2  # PPO / GRPO clip range in every check


def _tensor_of_shape(x, name: str, shape: tuple[int, ...]) -> torch.Tensor:
    V.tensor(x, name)
    if tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    return x


# ---- tabular ----------------------------------------------------------------------------------

@cache
def book_mdp() -> TabularMDP:
    """The book's MDP of (0.1)-(0.2) (:meth:`pgbook.mdp.TabularMDP.default`), one instance per
    process so its enumerated trajectories are built once."""
    return TabularMDP.default()


def _tabular_cases(gen: torch.Generator, n: int) -> list[tuple]:
    """(theta (S, A), alpha, critic error eps (T, S, A), baseline error eta (T+1, S))."""
    mdp = book_mdp()
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
    return book_mdp().expected_score_weighted(theta, psi)


# ---- samples and tokens -----------------------------------------------------------------------

_N_STATES, _N_ACTIONS = 3, 4  # the tabular softmax policy of the sample settings


def random_policy_samples(gen: torch.Generator, i: int, shape: tuple[int, ...],
                          ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Case i of a sample setting: logits theta (3 states x 4 actions; scaled by 3 on odd i,
    for nearly deterministic policies) and random states and actions of ``shape``, drawn in
    that order from ``gen``."""
    theta = torch.randn(_N_STATES, _N_ACTIONS, generator=gen, dtype=f64) * (1 + 2 * (i % 2))
    states = torch.randint(0, _N_STATES, shape, generator=gen)
    actions = torch.randint(0, _N_ACTIONS, shape, generator=gen)
    return theta, states, actions


def sample_log_probs(theta: torch.Tensor, states: torch.Tensor,
                     actions: torch.Tensor) -> torch.Tensor:
    """log pi_theta(a|s) = theta[s, a] - log sum_b exp(theta[s, b]) of each sample under the
    tabular softmax policy (chapter 1), shaped like ``states``; differentiable in theta."""
    V.tensor(theta, "theta", ndim=2)
    for name, index, size in (("states", states, theta.shape[0]),
                              ("actions", actions, theta.shape[1])):
        V.tensor(index, name, floating=False)
        if index.dtype != torch.long or bool(((index < 0) | (index >= size)).any()):
            raise ValueError(f"{name} must be a long tensor of indices in [0, {size})")
    V.same_shape(states=states, actions=actions)
    return torch.log_softmax(theta, -1)[states, actions]


def _sample_score_weighted(psi, theta, states, actions, *_):
    """(1/B) sum_{i,...} Psi_i (e_{a_i} - pi(.|s_i)) in row s_i: the closed-form softmax score
    (chapter 1), B = number of samples (or answers) along dim 0."""
    pi = torch.softmax(theta, -1)
    score = F.one_hot(actions, theta.shape[1]).to(f64) - pi[states]
    out = torch.zeros_like(theta)
    out.index_add_(0, states.reshape(-1), (psi[..., None] * score).reshape(-1, theta.shape[1]))
    return out / states.shape[0]


def _ratio_targets(gen: torch.Generator, B: int) -> torch.Tensor:
    """Ratios in every region of PPO-Clip: spread over (0.05, 3), and within 1e-7 (relative)
    of 1 - eps and 1 + eps on both sides, never exactly on them (chapter 8)."""
    r = 0.2 + 1.6 * torch.rand(B, generator=gen, dtype=f64)
    near = torch.tensor([1 - EPS, 1 + EPS], dtype=f64)
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
        theta, states, actions = random_policy_samples(gen, i, (B,))
        r = _ratio_targets(gen, B)
        adv = _advantages(gen, (B,))
        if i == n:      # edge case: on-policy, r = 1 everywhere
            r = torch.ones(B, dtype=f64)
        if i == n + 1:  # edge case: every advantage 0
            adv = torch.zeros(B, dtype=f64)
        logp_old = sample_log_probs(theta, states, actions) - torch.log(r)
        out.append((theta, states, actions, logp_old, adv))
    return out


def _tokens_cases(gen: torch.Generator, n: int) -> list[tuple]:
    """GRPO batches: (theta, states (B, L), actions (B, L), logp_old, logp_ref (B, L), adv (B,),
    mask (B, L) bool, beta), B = 6 answers of at most L = 5 tokens."""
    B, L = 6, 5
    out = []
    for i in range(n + 1):
        theta, states, actions = random_policy_samples(gen, i, (B, L))
        lengths = torch.randint(1, L + 1, (B,), generator=gen)
        lengths[0] = 1
        mask = torch.arange(L)[None] < lengths[:, None]
        logp = sample_log_probs(theta, states, actions)
        token_log_ratio = 0.2 * torch.randn(B, L, generator=gen, dtype=f64)
        if i == n:  # edge case: on-policy (r = 1) and pi_ref = pi_theta (rho = 1)
            token_log_ratio = torch.zeros(B, L, dtype=f64)
        logp_old = logp - token_log_ratio
        logp_ref = logp + (0.0 if i == n else 0.5 * torch.randn(B, L, generator=gen, dtype=f64))
        adv = _advantages(gen, (B,))
        beta = 0.5 * torch.rand((), generator=gen, dtype=f64)
        out.append((theta, states, actions, logp_old, logp_ref, adv, mask, beta))
    return out


# ---- categorical ------------------------------------------------------------------------------

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


# ---- squashed Gaussian ------------------------------------------------------------------------

_HERMITE_NODES = 100
_SQUASHED_STATES = 4


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
    S = _SQUASHED_STATES
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


def squashed_actor(theta: torch.Tensor,
                   coef: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """SAC's tanh-Gaussian actor on the quadrature nodes of the squashed-Gaussian setting.

    ``theta`` (S, 2) holds (m, log sigma) per state, ``coef`` (S, 4) the critic
    Q_w(s, a) = c_0 + c_1 a + c_2 a^2 + c_3 sin(3a). With u_k = m + sigma sqrt(2) x_k
    (Gauss-Hermite nodes x_k) and a_k = tanh(u_k), returns (Q_w(s, a_k), log pi(a_k|s), w_k/S),
    each (S, K), where log pi(a|s) = log N(u; m, sigma^2) - log|d tanh(u)/du| (torch's Normal and
    TanhTransform, from u so no atanh of a rounded +-1). Differentiable in theta through a_k
    (the reparameterisation of chapter 11), so sum w (Q - alpha log pi) is SAC's actor objective.
    """
    V.tensor(theta, "theta", ndim=2)
    if theta.shape[1] != 2:
        raise ValueError(f"theta must have shape (S, 2), got {tuple(theta.shape)}")
    _tensor_of_shape(coef, "coef", (theta.shape[0], 4))
    u, a, w = _squashed_nodes(theta)
    q = coef[:, :1] + coef[:, 1:2] * a + coef[:, 2:3] * a**2 + coef[:, 3:4] * torch.sin(3 * a)
    base = Normal(theta[:, :1], theta[:, 1:].exp())
    return q, base.log_prob(u) - TanhTransform().log_abs_det_jacobian(u, a), w


def _squashed_score_weighted(psi, theta, *_):
    """sum_{s,k} w_k/S Psi_{s,k} grad_theta log pi(a_k|s) with the closed-form Gaussian score in
    (m, log sigma) at u_k (chapter 1); the tanh Jacobian does not depend on theta at fixed u."""
    u, _a, w = _squashed_nodes(theta)
    m, sigma = theta[:, :1], theta[:, 1:].exp()
    z = (u - m) / sigma
    score = torch.stack([z / sigma, z**2 - 1], -1)  # (S, K, 2)
    return ((w * psi)[..., None] * score).sum(1)


# ---- deterministic ----------------------------------------------------------------------------

_DS, _DA = 3, 2  # state and action dimensions of the deterministic setting
_D = _DA * _DS + _DA  # parameters of mu_theta


def _check_policy_input(theta, states) -> None:
    _tensor_of_shape(theta, "theta", (_D,))
    V.tensor(states, "states", ndim=2)
    if states.shape[1] != _DS:
        raise ValueError(f"states must have shape (B, {_DS}), got {tuple(states.shape)}")


def _mu(theta, states):
    W = theta[: _DA * _DS].reshape(_DA, _DS)
    return torch.tanh(states @ W.T + theta[_DA * _DS:])


def deterministic_policy(theta: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """mu_theta(s) = tanh(W s + b), theta = (W flattened (2 x 3), b (2)): (B, 3) -> (B, 2), the
    deterministic policy of DPG (chapter 10); differentiable in theta."""
    _check_policy_input(theta, states)
    return _mu(theta, states)


def policy_jacobians(theta: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    """d mu_theta(s_b) / d theta of :func:`deterministic_policy` in closed form, (B, 2, 8):
    d mu_i / d W_jk = 1[i = j] (1 - mu_i^2) s_k and d mu_i / d b_j = 1[i = j] (1 - mu_i^2)."""
    _check_policy_input(theta, states)
    slope = 1 - _mu(theta, states) ** 2                                    # (B, da)
    eye = torch.eye(_DA, dtype=theta.dtype)
    d_w = slope[:, :, None, None] * eye[None, :, :, None] * states[:, None, None, :]
    d_b = slope[:, :, None] * eye[None]
    return torch.cat([d_w.reshape(len(states), _DA, _DA * _DS), d_b], -1)


def dpg_critic(K: torch.Tensor, M: torch.Tensor, C: torch.Tensor, *, quadratic: bool):
    """The critic of the deterministic setting, as a function (states (B, 3), actions (B, 2)) ->
    (B,):

        Q(s, a) = -(a - g(s))^T M (a - g(s)) + (C s)^T a [+ 0.5 sin(a_0 a_1 + s_0)],

    g(s) = tanh(K s), with K (2, 3), M (2, 2) and C (2, 3); the sine term only if not
    ``quadratic`` (for a quadratic Q the Gaussian policy gradient equals the DPG, chapter 10).
    """
    _tensor_of_shape(K, "K", (_DA, _DS))
    _tensor_of_shape(M, "M", (_DA, _DA))
    _tensor_of_shape(C, "C", (_DA, _DS))
    if not isinstance(quadratic, bool):
        raise ValueError(f"quadratic must be a bool, got {quadratic!r}")

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
        theta = torch.randn(_D, generator=gen, dtype=f64) * (1 + (i % 2))
        states = torch.randn(B, _DS, generator=gen, dtype=f64)
        K = torch.randn(_DA, _DS, generator=gen, dtype=f64)
        L_ = torch.randn(_DA, _DA, generator=gen, dtype=f64)
        M = L_ @ L_.T + 0.1 * torch.eye(_DA, dtype=f64)
        C = torch.randn(_DA, _DS, generator=gen, dtype=f64)
        sigma = 0.05 + torch.rand((), generator=gen, dtype=f64)
        cases.append((theta, states, K, M, C, sigma))
    theta0 = torch.zeros(_D, dtype=f64)
    cases.append((theta0, torch.zeros(B, _DS, dtype=f64), torch.zeros(_DA, _DS, dtype=f64),
                  torch.eye(_DA, dtype=f64), torch.zeros(_DA, _DS, dtype=f64),
                  torch.tensor(1.0, dtype=f64)))  # edge: at the critic's maximum, gradient 0
    return cases


def _gaussian_nodes_2d(n: int = 3):
    """Tensor-product Gauss-Hermite nodes (n^2, 2) for z ~ N(0, I_2) (scaled by sqrt 2) and
    their weights (n^2,): exact for polynomials of degree <= 2n - 1 in each coordinate."""
    x, w = _hermite(n)
    zx, zy = torch.meshgrid(math.sqrt(2) * x, math.sqrt(2) * x, indexing="ij")
    return torch.stack([zx.reshape(-1), zy.reshape(-1)], -1), (w[:, None] * w[None]).reshape(-1)


def gaussian_actions(theta: torch.Tensor, states: torch.Tensor,
                     sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The Gaussian policy a ~ N(mu_theta(s), sigma^2 I) around :func:`deterministic_policy`, on
    a 3 x 3 Gauss-Hermite grid: (mu (B, 2), a_k = mu + sigma z_k (B, 9, 2), weights w_k (9,)),
    so E[f(a)] = sum_k w_k f(a_k), exactly for f of degree <= 5 in each coordinate."""
    _check_policy_input(theta, states)
    sigma = V.number(sigma, "sigma", low=0.0, low_open=True)
    z, w = _gaussian_nodes_2d()
    mu = _mu(theta, states)
    return mu, mu[:, None] + sigma * z[None], w


def _gaussian_score_weighted(psi, theta, states, K, M, C, sigma):
    """(1/B) sum_{b,k} w_k Psi_{b,k} grad_theta log N(a_k; mu_theta(s_b), sigma^2 I), with the
    closed-form score (d mu / d theta)^T (a - mu) / sigma^2 (chapter 1)."""
    mu, a, w = gaussian_actions(theta, states, float(sigma))
    jac = policy_jacobians(theta, states)                                  # (B, da, d)
    score = torch.einsum("bmd,bkm->bkd", jac, (a - mu[:, None]) / float(sigma) ** 2)
    return torch.einsum("k,bk,bkd->d", w, psi, score) / states.shape[0]


# ---- the six settings -------------------------------------------------------------------------

TABULAR = Setting("tabular", "the book's MDP (2 states, 2 actions, T = 3, gamma = 9/10); exact "
                  "sums over all 128 trajectories", _tabular_cases, _tabular_score_weighted)
SAMPLES = Setting("samples", "16 samples of a tabular softmax policy (3 states, 4 actions); "
                  "closed-form score", _samples_cases, _sample_score_weighted)
TOKENS = Setting("tokens", "6 answers of 1-5 tokens from a tabular softmax policy; closed-form "
                 "score", _tokens_cases, _sample_score_weighted)
CATEGORICAL = Setting("categorical", "one softmax distribution over 5 outcomes; exact "
                      "expectations", _categorical_cases, _categorical_score_weighted)
SQUASHED_GAUSSIAN = Setting("squashed_gaussian", "tanh-Gaussian policy in 4 states; 100-node "
                            "Gauss-Hermite quadrature", _squashed_cases, _squashed_score_weighted)
DETERMINISTIC = Setting("deterministic", "mu_theta(s) = tanh(W s + b), 2-D actions, 8 states; "
                        "Gauss-Hermite for the Gaussian row", _deterministic_cases,
                        _gaussian_score_weighted)
