"""The rows of the gradient table, built by one short function per algorithm group (chapter 12).

Each group's rows pair the source's weight Psi as written (``form="source"``) with the book's
(``"book"``), or are marked ``"source = book"`` where the source's form is exact. GRPO's rows
say what each one is instead: the objective with one ratio per answer (the source's) or per
token (DeepSeekMath's), each with the k3 penalty GRPO implements, and k3's weight checked
against the source's KL (``"k3 vs source"``, expected to fail: k3 is not an estimator of that
gradient) and against the KL it does differentiate to (``"k3, other KL"``). A row's
objective and weight are the algorithm's own, from :mod:`pgbook.objectives`,
:mod:`pgbook.grpo_objectives` and :class:`pgbook.mdp.TabularMDP`, written in the models of its
setting (:mod:`pgbook.table.settings`); its SymPy check is one of :mod:`pgbook.table.identities`.
The rows of GRPO's descendants (chapter 13) are built in :mod:`pgbook.table.descendants` and
form the last group; :func:`groups` names the groups and ``check_all(group=...)`` checks one.
"""

from __future__ import annotations

from functools import cache

import torch
from torch.distributions import Categorical, kl_divergence

from ..grpo_objectives import grpo, grpo_sequence, grpo_sequence_weight, grpo_weight
from ..kl_estimators import kl_k3_weight, kl_weight
from ..objectives import (
    a2c_weight,
    actor_critic_weight,
    dpg,
    dpg_gradient,
    ppo_clip,
    ppo_clip_weight,
    ratio,
    sac_policy,
    sac_policy_weight,
    trpo,
    trpo_weight,
)
from ..returns import reward_to_go
from . import identities as sym
from .descendants import GROUP as DESCENDANTS
from .descendants import descendant_rows
from .framework import Row, RowReport, check
from .settings import (
    CATEGORICAL,
    DETERMINISTIC,
    EPS,
    SAMPLES,
    SQUASHED_GAUSSIAN,
    TABULAR,
    TOKENS,
    book_mdp,
    deterministic_policy,
    dpg_critic,
    gaussian_actions,
    policy_jacobians,
    sample_log_probs,
    squashed_actor,
)

__all__ = ["check_all", "groups", "row", "rows"]


# ---- on-policy rows: the tabular MDP (chapters 3, 5, 6, 11) -----------------------------------

def _J(theta, *_):
    return book_mdp().J(theta)


def _J_soft(theta, alpha, *_):
    return book_mdp().J(theta, alpha=float(alpha))


def _tabular(key, algorithm, form, psi, psi_source, weight, holds, sympy, chapter, *,
             objective=_J, against="J exact") -> Row:
    return Row(key, algorithm, form, psi, against, psi_source, chapter, TABULAR, objective,
               weight, holds, sympy)


def _along(values):
    return book_mdp().along_trajectories(values)


def _pg_rows() -> list[Row]:
    """(0.6) with R(tau), and the reward-to-go with and without gamma^t."""
    mdp = book_mdp()
    rewards, g, T = mdp.trajectories.rewards, mdp.gamma, mdp.horizon
    return [
        _tabular("pg", "PG theorem (0.6)", "source = book", "R(τ)", "R(τ)",
                 lambda th, *_: mdp.returns()[:, None].expand(len(rewards), T), True,
                 sym.pg_theorem_identity, "3"),
        _tabular("rtg-code", "reward-to-go", "common code", "G_t", "(not in the source)",
                 lambda th, *_: reward_to_go(rewards, g), False,
                 lambda: sym.reward_to_go_identity(False), "3, 5"),
        _tabular("rtg", "reward-to-go", "book", "γ^t G_t", "(not in the source)",
                 lambda th, *_: reward_to_go(rewards, g, discount_from_start=True), True,
                 lambda: sym.reward_to_go_identity(True), "3, 5"),
    ]


def _actor_critic_rows() -> list[Row]:
    """(0.10) with the true Q_t, with and without gamma^t, and with a learned critic Q_t + eps."""
    mdp = book_mdp()
    g = mdp.gamma
    return [
        _tabular("ac-src", "actor-critic (0.10)", "source", "Q_t(s_t,a_t)", "Q_w(s_t,a_t)",
                 lambda th, *_: actor_critic_weight(_along(mdp.q_values(th))), False,
                 lambda: sym.value_identity("Q", False), "6"),
        _tabular("ac", "actor-critic (0.10)", "book", "γ^t Q_t(s_t,a_t)", "Q_w(s_t,a_t)",
                 lambda th, *_: actor_critic_weight(_along(mdp.q_values(th)), gamma=g), True,
                 lambda: sym.value_identity("Q", True), "6"),
        _tabular("ac-Qw", "actor-critic (0.10)", "learned Q_w", "γ^t (Q_t + ε_t)(s_t,a_t)",
                 "Q_w(s_t,a_t)",
                 lambda th, alpha, eps, eta: actor_critic_weight(_along(mdp.q_values(th) + eps),
                                                                 gamma=g), False,
                 lambda: sym.value_identity("Q", True, "eps"), "6"),
    ]


def _a2c_rows() -> list[Row]:
    """(0.12) with the true A_t, with and without gamma^t, and with a learned baseline V_t + eta."""
    mdp = book_mdp()
    g = mdp.gamma
    return [
        _tabular("a2c-src", "A2C (0.12)", "source", "A_t(s_t,a_t)", "A(s_t,a_t)",
                 lambda th, *_: a2c_weight(_along(mdp.advantages(th))), False,
                 lambda: sym.value_identity("A", False), "6"),
        _tabular("a2c", "A2C (0.12)", "book", "γ^t A_t(s_t,a_t)", "A(s_t,a_t)",
                 lambda th, *_: a2c_weight(_along(mdp.advantages(th)), gamma=g), True,
                 lambda: sym.value_identity("A", True), "6"),
        _tabular("a2c-Vw", "A2C (0.12)", "learned V_w", "γ^t (Q_t - V_t - η_t)(s_t,a_t)",
                 "A(s_t,a_t)",
                 lambda th, alpha, eps, eta: a2c_weight(
                     _along(mdp.q_values(th)) - _along(mdp.state_values(th) + eta)[:, :-1],
                     gamma=g), True, lambda: sym.value_identity("Q", True, "eta"), "6"),
    ]


def _sac_rows() -> list[Row]:
    """SAC's soft policy gradient (eq-12-soft-pg) on the tabular MDP: the source's Q - V and
    the book's gamma^t (Q^soft - alpha log pi - V^soft)."""
    mdp = book_mdp()

    def source_weight(th, alpha, *_):
        a = float(alpha)
        return a2c_weight(_along(mdp.q_values(th, alpha=a))
                          - _along(mdp.state_values(th, alpha=a))[:, :-1]).detach()

    return [
        _tabular("sac-src", "SAC", "source", "Q^soft_t - V^soft_t", "Q_w - V", source_weight,
                 False, lambda: sym.soft_value_identity(entropy=False, discount=False), "11",
                 objective=_J_soft, against="J_soft exact"),
        _tabular("sac", "SAC", "book", "γ^t (Q^soft_t - α log π - V^soft_t)", "Q_w - V",
                 lambda th, alpha, *_: mdp.soft_policy_gradient_weight(th, float(alpha)), True,
                 lambda: sym.soft_value_identity(entropy=True, discount=True), "11",
                 objective=_J_soft, against="J_soft exact"),
    ]


# ---- SAC's actor as SAC computes it: reparameterised tanh-Gaussian (chapter 11) ----------------

def _sac_actor_objective(theta, coef, alpha):
    q, logp, w = squashed_actor(theta, coef)
    return sac_policy(q, logp, float(alpha), weights=w)


def _sac_actor_weight(entropy: bool):
    def weight(theta, coef, alpha):
        q, logp, w = squashed_actor(theta.detach(), coef)
        soft_v = (w * (q - float(alpha) * logp)).sum(1, keepdim=True) * theta.shape[0]
        if entropy:  # Psi = Q - alpha log pi - V_soft(s)
            return sac_policy_weight(q, logp, float(alpha), baseline=soft_v)
        return (q - soft_v).detach()  # the source: Q_w - V
    return weight


def _sac_actor_rows() -> list[Row]:
    """The pathwise gradient of E[Q_w - alpha log pi] against the score-function form."""
    return [Row(key, "SAC actor, tanh-Gaussian", form, psi, "E[Q_w - α log π], pathwise",
                "Q_w - V", "11", SQUASHED_GAUSSIAN, _sac_actor_objective,
                _sac_actor_weight(entropy), entropy,
                (lambda e=entropy: sym.reparameterisation_identity(e)), atol=1e-10)
            for key, form, psi, entropy in (
                ("sac-actor-src", "source", "Q_w - V, score fn.", False),
                ("sac-actor", "book", "Q_w - α log π - V, score fn.", True))]


# ---- the ratio family: surrogate objectives on a batch of samples (chapters 7-9) --------------

def _not_clip_by_hand(r, adv):
    """1_not-clip of (eq-08-indicator), written out again for the rows' references: 1 unless
    the clip is active on the pessimistic side (A >= 0 and r > 1 + eps, or A < 0 and r < 1 -
    eps). The table's ratios never sit on r = 1 +- eps."""
    return (((adv >= 0) & (r <= 1 + EPS)) | ((adv < 0) & (r >= 1 - EPS))).to(r.dtype)


def _trpo_by_hand(theta, states, actions, logp_old, adv):
    """Psi_t = r_t A_t, r_t = pi_theta(a_t|s_t) / pi_old(a_t|s_t)."""
    return torch.exp(sample_log_probs(theta, states, actions) - logp_old) * adv


def _ppo_by_hand(theta, states, actions, logp_old, adv):
    """Psi_t = 1_not-clip(r_t, A_t) r_t A_t."""
    r = torch.exp(sample_log_probs(theta, states, actions) - logp_old)
    return _not_clip_by_hand(r, adv) * r * adv


def _grpo_token_by_hand(theta, states, actions, logp_old, logp_ref, adv, mask, beta):
    """Psi_{i,t} = mask (1_nc(r_it, A_i) r_it A_i - beta (1 - pi_ref / pi_theta)) / |o_i|."""
    logp, m = sample_log_probs(theta, states, actions), mask.to(torch.float64)
    r, rho, A = torch.exp(logp - logp_old), torch.exp(logp_ref - logp), adv[:, None]
    return m * (_not_clip_by_hand(r, A) * r * A - beta * (1 - rho)) / m.sum(1, keepdim=True)


def _grpo_answer_by_hand(theta, states, actions, logp_old, logp_ref, adv, mask, beta):
    """Psi_{i,t} = mask (1_nc(R_i, A_i) R_i A_i - beta (1 - rho_i)) with the answer's ratios
    R_i = prod_t r_it and rho_i = prod_t pi_ref / pi_theta."""
    logp, m = sample_log_probs(theta, states, actions), mask.to(torch.float64)
    R, rho = torch.exp(((logp - logp_old) * m).sum(1)), torch.exp(((logp_ref - logp) * m).sum(1))
    return m * (_not_clip_by_hand(R, adv) * R * adv - beta * (1 - rho))[:, None]


def _samples_row(key, algorithm, form, psi, psi_source, objective, weight, holds, sympy,
                 chapter, reference=None) -> Row:
    def obj(theta, states, actions, logp_old, adv):
        return objective(sample_log_probs(theta, states, actions), logp_old, adv)

    def wt(theta, states, actions, logp_old, adv):
        return weight(sample_log_probs(theta, states, actions), logp_old, adv)

    return Row(key, algorithm, form, psi, "surrogate", psi_source, chapter, SAMPLES, obj, wt,
               holds, sympy, reference=reference)


def _inside_clip_weight(logp, logp_old, adv):
    """The misreading of 1_not-clip as 'r inside [1 - eps, 1 + eps]'."""
    r = ratio(logp, logp_old).detach()
    return (((r >= 1 - EPS) & (r <= 1 + EPS)).to(r.dtype) * r * adv).detach()


def _trpo_ppo_rows() -> list[Row]:
    """TRPO's r A and PPO-Clip's 1_not-clip r A, and the 'inside the clip range' reading."""
    def clip_objective(lp, lo, ad):
        return ppo_clip(lp, lo, ad, EPS)

    return [
        _samples_row("trpo", "TRPO", "source = book", "r_t A_t", "r_t(θ) A_t", trpo,
                     trpo_weight, True, sym.ratio_identity, "7", _trpo_by_hand),
        _samples_row("ppo", "PPO-Clip", "source = book", "1_nc r_t A_t", "1_nc r_t A_t",
                     clip_objective, lambda lp, lo, ad: ppo_clip_weight(lp, lo, ad, EPS), True,
                     lambda: sym.clip_identity("not_clip"), "8", _ppo_by_hand),
        _samples_row("ppo-inside", "PPO-Clip", "words: inside", "1[|r_t-1| ≤ ε] r_t A_t",
                     "1_nc r_t A_t", clip_objective, _inside_clip_weight, False,
                     lambda: sym.clip_identity("inside"), "8"),
    ]


def _token_row(key, form, psi, objective, weight, reference) -> Row:
    def obj(theta, states, actions, logp_old, logp_ref, adv, mask, beta):
        return objective(sample_log_probs(theta, states, actions), logp_old, logp_ref, adv, mask,
                         EPS, float(beta))

    def wt(theta, states, actions, logp_old, logp_ref, adv, mask, beta):
        return weight(sample_log_probs(theta, states, actions), logp_old, logp_ref, adv, mask,
                      EPS, float(beta))

    return Row(key, "GRPO", form, psi, "surrogate, k3 KL", "1_nc(i) r_i A_i - β∇KL(π‖π_ref)",
               "9", TOKENS, obj, wt, True, sym.grpo_identity, reference=reference)


def _grpo_rows() -> list[Row]:
    """GRPO with one ratio per answer (the source's form) and per token (DeepSeekMath's), each
    with the k3 penalty as implemented and its exact weight."""
    return [
        _token_row("grpo-seq", "per answer", "1_nc r_i A_i - β(1-ρ_i)", grpo_sequence,
                   grpo_sequence_weight, _grpo_answer_by_hand),
        _token_row("grpo-tok", "per token", "(1_nc r_it A_i - β(1-ρ_it))/|o_i|", grpo,
                   grpo_weight, _grpo_token_by_hand),
    ]


def _kl_row(key, form, psi, direction, weight_fn, holds, weight_name) -> Row:
    def objective(z, z_ref, beta):
        p, q = Categorical(logits=z), Categorical(logits=z_ref)
        return -beta * (kl_divergence(p, q) if direction == "theta||ref" else kl_divergence(q, p))

    def weight(z, z_ref, beta):
        return -beta * weight_fn(torch.log_softmax(z, -1), torch.log_softmax(z_ref, -1))

    against = ("-β KL(π‖π_ref), the source's" if direction == "theta||ref"
               else "-β KL(π_ref‖π)")
    return Row(key, "GRPO KL term", form, psi, against, "-β∇KL(π‖π_ref)", "9", CATEGORICAL,
               objective, weight, holds, lambda: sym.kl_identity(weight_name, direction))


def _kl_rows() -> list[Row]:
    """GRPO's KL term exactly: the weight of the k3 penalty GRPO implements, against the
    source's KL(pi || pi_ref) (fails: k3 does not differentiate to it) and against KL(pi_ref || pi)
    (holds), and the weight of the source's KL itself, the log-ratio (holds)."""
    return [
        _kl_row("kl-k3-src", "k3 vs source", "-β(1-ρ)  [k3]", "theta||ref",
                kl_k3_weight, False, "k3"),
        _kl_row("kl-k3", "k3, other KL", "-β(1-ρ)  [k3]", "ref||theta",
                kl_k3_weight, True, "k3"),
        _kl_row("kl", "source = book", "-β log(π/π_ref)", "theta||ref", kl_weight, True,
                "log-ratio"),
    ]


# ---- DPG: no weight (chapter 10) --------------------------------------------------------------

def _action_gradients(critic, states, actions):
    """grad_a Q(s_b, a) at the given actions: (B, da) (each Q depends on its own a only)."""
    a = actions.detach().requires_grad_(True)
    (g,) = torch.autograd.grad(critic(states, a).sum(), a)
    return g


def _dpg_objective(quadratic: bool):
    def objective(theta, states, K, M, C, sigma):
        return dpg(dpg_critic(K, M, C, quadratic=quadratic), states,
                   deterministic_policy(theta, states))
    return objective


def _dpg_closed_form(theta, states, K, M, C, sigma):
    critic = dpg_critic(K, M, C, quadratic=False)
    return dpg_gradient(policy_jacobians(theta, states),
                        _action_gradients(critic, states, deterministic_policy(theta, states)))


def _gaussian_weight(theta, states, K, M, C, sigma):
    """Psi = Q_w(s, a) at the Gauss-Hermite actions a ~ N(mu_theta(s), sigma^2 I), (B, k)."""
    _, a, _ = gaussian_actions(theta, states, float(sigma))
    B, k, da = a.shape
    critic = dpg_critic(K, M, C, quadratic=True)
    return critic(states.repeat_interleave(k, 0), a.reshape(B * k, da)).reshape(B, k)


def _dpg_rows() -> list[Row]:
    """The chain rule, and the Gaussian policy gradient it is the sigma -> 0 limit of."""
    return [
        Row("dpg", "DPG", "source = book", "none: ∇_θμ ∇_aQ_w", "Q_w(s, μ_θ(s))",
            "∇_θμ(s) ∇_aQ_w|a=μ(s)", "10", DETERMINISTIC, _dpg_objective(False), None, True,
            sym.dpg_chain_rule_identity, closed_form=_dpg_closed_form),
        Row("dpg-gauss", "DPG", "Gaussian σ>0", "Q_w(s,a), a ~ N(μ_θ(s), σ²I)",
            "Q_w(s, μ_θ(s)), quadratic", "∇_θμ(s) ∇_aQ_w|a=μ(s)", "10", DETERMINISTIC,
            _dpg_objective(True), _gaussian_weight, True, sym.dpg_gaussian_identity,
            atol=1e-10),
    ]


# ---- the table --------------------------------------------------------------------------------

#: the row groups of the table, in order: a name and the builder of its rows
_GROUPS = (("on-policy", lambda: [*_pg_rows(), *_actor_critic_rows(), *_a2c_rows(),
                                  *_sac_rows()]),
           ("SAC's actor", _sac_actor_rows),
           ("ratio family", lambda: [*_trpo_ppo_rows(), *_grpo_rows(), *_kl_rows()]),
           ("DPG", _dpg_rows),
           (DESCENDANTS, descendant_rows))


@cache
def _built() -> tuple[tuple[str, tuple[Row, ...]], ...]:
    return tuple((name, tuple(build())) for name, build in _GROUPS)


@cache
def rows() -> tuple[Row, ...]:
    """Every row of the book's gradient table (eq-12-unified), in the order of the source's
    table (chapter 12): PG theorem, reward-to-go, actor-critic, A2C, SAC, SAC's actor, TRPO,
    PPO-Clip, GRPO, GRPO's KL term, DPG; then the rows of GRPO's descendants beyond the source
    (Dr. GRPO, DAPO, GSPO, CISPO, RLOO; chapter 13, :mod:`pgbook.table.descendants`). Built
    once per process."""
    return tuple(r for _, group in _built() for r in group)


def groups() -> dict[str, tuple[str, ...]]:
    """The table's groups in order, each name with its rows' keys: "on-policy" (the tabular
    MDP), "SAC's actor", "ratio family" (TRPO, PPO-Clip, GRPO and its KL term), "DPG" and
    "GRPO's descendants" (chapter 13). ``check_all(group=name)`` checks one of them."""
    return {name: tuple(r.key for r in group) for name, group in _built()}


def row(key: str) -> Row:
    """The row of :func:`rows` with this key (e.g. ``"ppo"``, ``"a2c-src"``)."""
    if not isinstance(key, str):
        raise ValueError(f"key must be a string, got {type(key).__name__}")
    for r in rows():
        if r.key == key:
            return r
    raise ValueError(f"no row with key {key!r}; keys: {[r.key for r in rows()]}")


def check_all(n: int = 200, *, seed: int = 0, sympy: bool = True,
              group: str | None = None) -> list[RowReport]:
    """:func:`~pgbook.table.framework.check` every row of :func:`rows` (or of one of
    :func:`groups`, by name: ``group="GRPO's descendants"`` for chapter 13), in order: autograd
    of J against E[sum_t grad log pi * Psi_t] on ``n`` random cases plus the edge cases, and
    the SymPy identity if ``sympy``."""
    if group is None:
        chosen = rows()
    else:
        names = groups()
        if group not in names:
            raise ValueError(f"group must be one of {list(names)} or None, got {group!r}")
        chosen = tuple(row(k) for k in names[group])
    return [check(r, n, seed=seed, sympy=sympy) for r in chosen]
