"""The SymPy identities behind the gradient table's ``SymPy`` column (chapter 12).

Each function proves, for one row, the exact statement grad J = E[sum_t score_t Psi_t] (or the
chain rule of DPG) and returns True when the residual is exactly 0, False when it is provably
non-zero (it is evaluated at an exact point to 30 digits; a residual that is neither raises
``AssertionError``). The SymPy objects they share (the MDP in polynomial coordinates, the soft
objective, the PPO-Clip proof) are built once per process.

The tabular rows work in the coordinates u_s = pi(0|s) of chapter 6, in which trajectory
probabilities (:meth:`pgbook.mdp.TabularMDP.trajectory_probs_of`) and values are polynomials;
the ratio rows use :mod:`pgbook.symbolic`'s softmax score and its PPO-Clip proof
(:func:`pgbook.piecewise.prove_clip_derivative`); the Gaussian rows its log-density, score and
Gaussian expectation.
"""

from __future__ import annotations

from functools import cache

import sympy as sp

from .. import _validate as V
from ..mdp import TabularMDP
from ..piecewise import (
    decide_branches,
    not_clip,
    ppo_clip_regions,
    prove_clip_derivative,
)
from ..symbolic import (
    assert_identical,
    gaussian_expectation,
    gaussian_log_density,
    gaussian_score,
    simplify_difference,
    softmax,
    softmax_score,
)

__all__ = [
    "clip_identity",
    "dpg_chain_rule_identity",
    "dpg_gaussian_identity",
    "grpo_identity",
    "kl_identity",
    "pg_theorem_identity",
    "ratio_identity",
    "reparameterisation_identity",
    "reward_to_go_identity",
    "soft_value_identity",
    "value_identity",
]


def _flag(value, name: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be a bool, got {value!r}")
    return value


def _nonzero_at(diff: sp.Matrix, point: dict) -> bool:
    """True if some entry of ``diff`` is provably non-zero at an exact ``point`` (30 digits)."""
    return any(abs(sp.N(e.subs(point), 30)) > 1e-20 for e in diff)


# ---- the tabular MDP in polynomial coordinates --------------------------------------------------

@cache
def _sym_mdp():
    """The tabular MDP in the coordinates u_s = pi(0|s) (chapter 6): trajectory probabilities
    are polynomials; grad J in the logits via d u_s / d theta_{s,a} = +-u_s (1 - u_s)."""
    mdp = TabularMDP.default()
    S, A = mdp.n_states, mdp.n_actions
    u = sp.symbols("u_0 u_1", positive=True)
    pi = sp.Matrix([[u[s], 1 - u[s]] for s in range(S)])
    J = sp.expand(sum(p * R for p, R in zip(mdp.trajectory_probs_of(pi), mdp.returns_exact(),
                                            strict=True)))
    grad_J = sp.Matrix(S, A, lambda s, a: sp.expand((1 - 2 * a) * J.diff(u[s]) * u[s]
                                                     * (1 - u[s])))
    return mdp, u, pi, grad_J


def _verdict(diff: sp.Matrix, what: str) -> bool:
    """True if every entry of ``diff`` expands to 0. Otherwise evaluate it at an exact point
    (u = (1/3, 2/3), alpha = 1/2, each L_{s,a} = log pi(a|s) there, every other symbol a distinct
    rational) and return False if an entry is non-zero to 30 digits."""
    diff = diff.applyfunc(sp.expand)
    if all(e == 0 for e in diff):
        return True
    mdp, u, pi, _ = _sym_mdp()
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


def _state_form(values, discount: bool) -> sp.Matrix:
    """E[sum_t score_t Psi_t(s_t, a_t)] for Psi_t = [gamma^t] values[t, s, a], grouped by
    (t, s, a): sum_t [gamma^t] sum_s d_t(s) sum_a pi(a|s) values (e_a - pi(.|s)) in row s, with
    the occupancies d_t of :meth:`~pgbook.mdp.TabularMDP.state_occupancy_sym` (chapter 6)."""
    mdp, u, pi, _ = _sym_mdp()
    T, S, A, g = mdp.horizon, mdp.n_states, mdp.n_actions, mdp.gamma_exact
    d = mdp.state_occupancy_sym(pi)
    return sp.Matrix(S, A, lambda s, b: sum(
        (g**t if discount else 1) * d[t, s] * pi[s, a] * values[t, s, a]
        * ((1 if a == b else 0) - pi[s, b]) for t in range(T) for a in range(A)))


@cache
def pg_theorem_identity() -> bool:
    """(0.6): grad J = E[sum_t score_t R(tau)], exactly over all 128 trajectories (chapter 3)."""
    mdp, u, pi, grad_J = _sym_mdp()
    return _verdict(grad_J - mdp.expected_score_weighted_sym(pi, mdp.returns_exact()), "(0.6)")


def reward_to_go_identity(discount_from_start: bool) -> bool:
    """grad J = E[sum_t score_t Psi_t] with Psi_t = gamma^t G_t (``discount_from_start``) or
    G_t, G_t = sum_{k >= t} gamma^{k-t} r_{k+1}, over all 128 trajectories (chapters 3 and 5);
    True only with gamma^t."""
    _flag(discount_from_start, "discount_from_start")
    mdp, u, pi, grad_J = _sym_mdp()
    T, g = mdp.horizon, mdp.gamma_exact
    psi = []
    for r in mdp.trajectories.rewards_exact:
        G = [sum(g ** (k - t) * r[k] for k in range(t, T)) for t in range(T)]
        psi.append([g**t * G[t] if discount_from_start else G[t] for t in range(T)])
    return _verdict(grad_J - mdp.expected_score_weighted_sym(pi, psi), "returns")


def value_identity(kind: str, discount: bool, error: str | None = None) -> bool:
    """grad J = E[sum_t score_t Psi_t] for Psi_t = [gamma^t] Q_t (``kind="Q"``, (0.10)) or A_t
    (``"A"``, (0.12)), Q_t + eps_t(s, a) (``error="eps"``: a learned critic with symbolic
    errors) or Q_t - V_t - eta_t(s) (``error="eta"``: a learned baseline) (chapter 6)."""
    V.choice(kind, "kind", ("Q", "A"))
    _flag(discount, "discount")
    V.choice(error, "error", (None, "eps", "eta"))
    mdp, u, pi, grad_J = _sym_mdp()
    T, S, A = mdp.horizon, mdp.n_states, mdp.n_actions
    Q, V_ = mdp.q_values_sym(pi), mdp.state_values_sym(pi)

    def value(t, s, a):
        if error == "eps":
            return Q[t, s, a] + sp.Symbol(f"epsilon_{t}{s}{a}", real=True)
        if error == "eta":
            return Q[t, s, a] - V_[t, s] - sp.Symbol(f"eta_{t}{s}", real=True)
        return Q[t, s, a] - (V_[t, s] if kind == "A" else 0)

    values = sp.Array([[[value(t, s, a) for a in range(A)] for s in range(S)] for t in range(T)])
    return _verdict(grad_J - _state_form(values, discount), f"{kind} {error}")


@cache
def _sym_soft():
    """SAC's soft objective on the tabular MDP, as a polynomial (chapter 11).

    In the u coordinates, with a symbol L_{s,a} standing for log pi(a|s): J_soft is a polynomial
    in (u, L, alpha), and its logit gradient follows from the chain rule with
    d u_s / d theta_{s,b} = +-u_s (1 - u_s) and d L_{s,a} / d theta_{s,b} = 1[a = b] - pi(b|s)
    (the softmax score). An identity that holds for independent symbols L holds in particular
    at L = log pi. Returns (alpha, L, grad J_soft, Q^soft (T, S, A), V^soft (T+1, S)).
    """
    mdp, u, pi, _ = _sym_mdp()
    S, A, T, g = mdp.n_states, mdp.n_actions, mdp.horizon, mdp.gamma_exact
    alpha = sp.Symbol("alpha", positive=True)
    L = sp.Matrix(S, A, lambda s, a: sp.Symbol(f"L_{s}{a}", real=True))
    table = mdp.trajectories
    J = 0
    for i, pp in enumerate(mdp.trajectory_probs_of(pi)):
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


def soft_value_identity(entropy: bool, discount: bool) -> bool:
    """(eq-12-soft-pg): grad J_soft = E[sum_t score_t Psi_t] for Psi_t = [gamma^t] (Q^soft_t
    - [alpha log pi] - V^soft_t); True only with both the entropy term and gamma^t (chapter 11).
    """
    _flag(entropy, "entropy")
    _flag(discount, "discount")
    mdp, *_ = _sym_mdp()
    alpha, L, grad_J, Q, V_ = _sym_soft()
    T, S, A = mdp.horizon, mdp.n_states, mdp.n_actions
    values = sp.Array([[[Q[t, s, a] - (alpha * L[s, a] if entropy else 0) - V_[t, s]
                         for a in range(A)] for s in range(S)] for t in range(T)])
    return _verdict(grad_J - _state_form(values, discount), "soft policy gradient")


# ---- Gaussian policies ------------------------------------------------------------------------

def reparameterisation_identity(entropy: bool) -> bool:
    """The pathwise gradient of E[Q(a) - alpha log N(a; m, sigma^2)], a = m + sigma z, quartic Q,
    equals the score-function form E[grad log pi * Psi] with Psi = Q - alpha log pi
    (``entropy``), not with Psi = Q alone (the source's, ``entropy=False``) (chapter 11)."""
    _flag(entropy, "entropy")
    z = sp.Symbol("z", real=True)
    m, ls, x = sp.symbols("m log_sigma x", real=True)
    alpha = sp.Symbol("alpha", positive=True)
    q = sp.symbols("q_0:5", real=True)
    Q = sum(q[j] * x**j for j in range(5))
    f = Q - alpha * gaussian_log_density(x, m, ls)
    on_path = f.subs(x, m + sp.exp(ls) * z)
    pathwise = sp.Matrix([gaussian_expectation(sp.expand(on_path.diff(v)), z) for v in (m, ls)])
    psi = f if entropy else Q
    sf = (psi * gaussian_score(x, m, ls)).subs(x, m + sp.exp(ls) * z)
    sf = sp.Matrix([gaussian_expectation(sp.expand(e), z) for e in sf])
    return all(simplify_difference(a, b) == 0 for a, b in zip(pathwise, sf, strict=True))


@cache
def dpg_chain_rule_identity() -> bool:
    """grad_theta Q(s, mu_theta(s)) = grad_theta mu * grad_a Q|_{a = mu} for an undefined Q
    (the DPG, chapter 10)."""
    s, a1, a2 = sp.symbols("s a_1 a_2", real=True)
    theta = sp.symbols("theta_0:3", real=True)
    mu = sp.Matrix([theta[0] + theta[1] * s, sp.tanh(theta[2] * s)])
    Q = sp.Function("Q")
    lhs = sp.Matrix([Q(s, *mu).diff(th) for th in theta])
    grad_a = sp.Matrix([Q(s, a1, a2).diff(a) for a in (a1, a2)]).subs({a1: mu[0], a2: mu[1]})
    assert_identical(lhs, mu.jacobian(theta).T * grad_a, what="DPG chain rule")
    return True


@cache
def dpg_gaussian_identity() -> bool:
    """E_{a~N(mu, sigma^2)}[grad log pi * Q(a)] = grad mu * Q'(mu) for a quadratic Q, every sigma
    (chapter 10, the sigma -> 0 limit that is exact here)."""
    z, a, s = sp.symbols("z a s", real=True)
    sigma = sp.Symbol("sigma", positive=True)
    th0, th1 = sp.symbols("theta_0 theta_1", real=True)
    mu = th0 + sp.tanh(th1 * s)
    q = [sp.Function(f"q_{j}")(s) for j in range(3)]
    Q = q[0] + q[1] * a + q[2] * a**2
    log_pi = gaussian_log_density(a, mu, sp.log(sigma))
    sf = sp.Matrix([gaussian_expectation((log_pi.diff(th) * Q).subs(a, mu + sigma * z), z)
                    for th in (th0, th1)])
    dpg_ = sp.Matrix([mu.diff(th) for th in (th0, th1)]) * Q.diff(a).subs(a, mu)
    assert_identical(sf, dpg_, what="Gaussian PG = DPG for quadratic Q")
    return True


# ---- the ratio family -------------------------------------------------------------------------

@cache
def ratio_identity() -> bool:
    """grad_z r = r grad_z log pi for r = softmax(z)_a / p_old, so TRPO's surrogate r A has
    Psi = r A (chapter 7); K = 3, every a."""
    z = sp.symbols("z_0:3", real=True)
    p_old = sp.Symbol("p_old", positive=True)
    for a in range(3):
        r = softmax(z)[a] / p_old
        assert_identical(sp.Matrix([r.diff(zj) for zj in z]), r * softmax_score(z, a),
                         what="grad r = r grad log pi")
    return True


@cache
def _clip_proof():
    """The PPO-Clip proof of :func:`pgbook.piecewise.prove_clip_derivative` and its regions."""
    r = sp.Symbol("r", positive=True)
    A = sp.Symbol("A", real=True)
    eps = sp.Symbol("epsilon", positive=True)
    return r, A, eps, prove_clip_derivative(r, A, eps), ppo_clip_regions(r, A, eps)


def clip_identity(indicator: str) -> bool:
    """True iff d/dr min(r A, clip(r, 1-eps, 1+eps) A) = indicator * A on every region of
    :func:`pgbook.piecewise.ppo_clip_regions`, so Psi = indicator * r A: the source's
    1_not-clip (``"not_clip"``, chapter 8) or 'r inside the clip range' (``"inside"``, the
    reading its words suggest). The derivatives are those of
    :func:`pgbook.piecewise.prove_clip_derivative`."""
    V.choice(indicator, "indicator", ("not_clip", "inside"))
    r, A, eps, proof, regions = _clip_proof()
    if indicator == "not_clip":
        ind = not_clip(r, A, eps)
    else:
        ind = sp.Piecewise((1, (r >= 1 - eps) & (r <= 1 + eps)), (0, True))
    for reg in regions:
        d = proof.derivatives[reg.name].subs(reg.substitution)
        value = decide_branches((ind * A).subs(reg.substitution))
        if value.has(sp.Piecewise) or simplify_difference(d, value) != 0:
            return False
    return True


@cache
def grpo_identity() -> bool:
    """GRPO's clipped part is PPO-Clip's (:func:`clip_identity`), and its k3 penalty
    k3 = exp(l_ref - l) - (l_ref - l) - 1 has d k3 / d l = 1 - rho, rho = exp(l_ref - l),
    l = log pi (chapter 9)."""
    lp, lr = sp.symbols("l l_ref", real=True)
    k3 = sp.exp(lr - lp) - (lr - lp) - 1
    assert_identical(k3.diff(lp), 1 - sp.exp(lr - lp), what="d k3 / d log pi")
    return clip_identity("not_clip")


def kl_identity(weight: str, direction: str) -> bool:
    """E_{o~pi}[Psi(o) grad_z log pi(o)] = grad_z KL, K = 3 outcomes (chapter 9), for
    Psi = 1 - rho (``weight="k3"``) or log(pi / pi_ref) (``"log-ratio"``, (eq-12-kl-grad)) and
    KL(pi || pi_ref) (``direction="theta||ref"``) or KL(pi_ref || pi) (``"ref||theta"``).

    pi = (p_0, p_1, 1 - p_0 - p_1) and pi_ref = (q_0, q_1, 1 - q_0 - q_1), with symbols L_o, M_o
    for log pi(o), log pi_ref(o); the logit gradient by the chain rule through the softmax
    (d pi_o / d z_j = pi_o (1[o = j] - pi_j), d L_o / d z_j = 1[o = j] - pi_j). True if the
    difference cancels to 0; False if it is non-zero at pi = (1/2, 1/3, 1/6), pi_ref uniform.
    """
    V.choice(weight, "weight", ("k3", "log-ratio"))
    V.choice(direction, "direction", ("theta||ref", "ref||theta"))
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

    psi = ([1 - ref[o] / pi[o] for o in range(3)] if weight == "k3"
           else [L[o] - M[o] for o in range(3)])
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
