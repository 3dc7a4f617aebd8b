"""Exact arithmetic for :class:`pgbook.mdp.TabularMDP`: its numbers as SymPy rationals, and the
SymPy twins of its torch computations.

:class:`TabularMDP` reads every probability, reward and discount as an exact rational
(``read_exact``, ``read_exact_array``), so each quantity of chapters 2-6 has an exact
counterpart: p(tau) of (0.2) in any coordinates of the policy, the values Q_t, V_t and
A_t = Q_t - V_t of (0.10)-(0.12) by backward induction, the occupancy d_t(s), and the exact
expectation E[sum_t grad log pi(a_t|s_t) Psi_t] for a given Psi. :class:`ExactMethods` holds those
twins; ``TabularMDP`` inherits them, so a reader calls ``mdp.q_values_sym(pi)`` beside
``mdp.q_values(theta)``. They use only the MDP's exact tables (``P_exact``, ``R_exact``,
``initial_exact``, ``gamma_exact``), its enumerated ``trajectories`` and ``policy_sym``.
"""

from __future__ import annotations

import math
from fractions import Fraction

import sympy as sp
import torch

__all__ = ["ExactMethods", "check_value_table", "exact_to_torch", "nested_depth", "read_exact",
           "read_exact_array"]


def read_exact(x, name: str) -> sp.Rational:
    """Turn a number into an exact SymPy rational (0.1 becomes 1/10, not a binary float).

    Accepted: ints, Fractions, finite floats (read as the decimal they print as), strings
    such as "1/3" or "0.9", and SymPy rationals. Raises ``ValueError`` naming ``name`` for
    anything else: bools, NaN and inf, strings that are not numbers, irrational SymPy numbers.
    """
    if isinstance(x, bool):
        raise ValueError(f"{name} must contain numbers, got the bool {x}")
    if isinstance(x, float) and not math.isfinite(x):
        raise ValueError(f"{name} must contain finite numbers, got {x}")
    if isinstance(x, sp.Basic):
        value = x
    elif isinstance(x, int | float | Fraction | str):
        try:
            value = sp.Rational(repr(x) if isinstance(x, float) else x)
        except (TypeError, ValueError, sp.SympifyError):
            raise ValueError(f"{name} must contain numbers, got {x!r}") from None
    else:
        raise ValueError(f"{name} must contain numbers, got {type(x).__name__}")
    if not value.is_Rational:
        raise ValueError(f"{name} must contain rational numbers, got {value}")
    return value


def read_exact_array(values, shape: tuple[int, ...],
                     name: str) -> dict[tuple[int, ...], sp.Rational]:
    """Read a nested list of numbers of the given shape into {index: exact rational}."""
    out: dict[tuple[int, ...], sp.Rational] = {}

    def walk(node, index: tuple[int, ...]):
        depth = len(index)
        if depth == len(shape):
            out[index] = read_exact(node, name)
            return
        if isinstance(node, str) or not hasattr(node, "__len__") or len(node) != shape[depth]:
            got = len(node) if hasattr(node, "__len__") and not isinstance(node, str) else "none"
            raise ValueError(f"{name} must have shape {shape}: at index {index} expected "
                             f"{shape[depth]} entries, got {got}")
        for i, child in enumerate(node):
            walk(child, index + (i,))

    walk(values, ())
    return out


def nested_depth(values) -> int:
    """How many levels of nested lists ``values`` has; ``ValueError`` if its entries have
    different depths (a ragged table such as [[1, 2], 3])."""
    if not hasattr(values, "__len__") or isinstance(values, str) or len(values) == 0:
        return 0
    depths = {nested_depth(v) for v in values}
    if len(depths) > 1:
        raise ValueError(f"values must be a regular nested list, got entries of depths "
                         f"{sorted(depths)}")
    return 1 + depths.pop()


def exact_to_torch(array: dict[tuple[int, ...], sp.Rational],
                   shape: tuple[int, ...]) -> torch.Tensor:
    """{index: rational} as a float64 tensor of the given shape."""
    if not isinstance(array, dict):
        raise ValueError(f"array must be a dict index -> rational, got {type(array).__name__}")
    if not isinstance(shape, tuple) or not all(isinstance(n, int) and n >= 0 for n in shape):
        raise ValueError(f"shape must be a tuple of sizes, got {shape!r}")
    out = torch.empty(shape, dtype=torch.float64)
    for index, value in array.items():
        if not (isinstance(index, tuple) and len(index) == len(shape)
                and all(0 <= i < n for i, n in zip(index, shape, strict=True))):
            raise ValueError(f"array index {index} lies outside shape {shape}")
        out[index] = float(value)
    return out


def check_value_table(shape: tuple[int, ...], T: int, S: int, A: int) -> tuple[int, ...]:
    """The shape of a table of values over (t, s[, a]), checked: (T, S, A), (T, S) or (T+1, S)."""
    for n, name in ((T, "T"), (S, "S"), (A, "A")):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"{name} must be a positive integer, got {n!r}")
    allowed = [(T, S, A), (T, S), (T + 1, S)]
    if shape not in allowed:
        raise ValueError(f"values must have shape (T, S, A) = {allowed[0]}, (T, S) = "
                         f"{allowed[1]} or (T+1, S) = {allowed[2]}, got {shape}")
    return shape


class ExactMethods:
    """The SymPy twins of :class:`pgbook.mdp.TabularMDP`'s values, mixed into it.

    ``pi`` is always the S x A matrix of action probabilities pi(a|s): ``mdp.policy_sym(theta)``
    for symbolic or rational logits (the default, None, uses :meth:`TabularMDP.theta_symbols`),
    or any other coordinates, e.g. ``[[u0, 1 - u0], [u1, 1 - u1]]``, in which every quantity
    here is a polynomial (fast to compare exactly).
    """

    def _check_pi_sym(self, pi) -> sp.Matrix:
        """The S x A matrix of action probabilities of the SymPy methods (softmax of symbolic
        logits if None)."""
        if pi is None:
            return self.policy_sym(self.theta_symbols())
        if not isinstance(pi, sp.MatrixBase) or pi.shape != (self.n_states, self.n_actions):
            raise ValueError(f"pi must be a SymPy Matrix of shape ({self.n_states}, "
                             f"{self.n_actions}) holding pi(a|s), e.g. mdp.policy_sym(theta)")
        for s in range(self.n_states):  # refuse what is provably not a distribution
            row = list(pi.row(s))
            excess = sp.expand(sp.Add(*row) - 1)
            if (excess.is_number and excess != 0) or any(p.is_negative for p in row):
                raise ValueError(f"pi row {s} must be a probability vector, got {row}")
        return pi

    def trajectory_probs_of(self, pi: sp.Matrix) -> list[sp.Expr]:
        """p(tau) of (0.2) for every enumerated trajectory, as SymPy expressions in a matrix
        ``pi`` of action probabilities pi(a|s) (any coordinates, see :meth:`q_values_sym`)."""
        pi = self._check_pi_sym(pi)
        table, T = self.trajectories, self.horizon
        out = []
        for i, p_dyn in enumerate(table.dynamics_prob_exact):
            s, a = table.states[i].tolist(), table.actions[i].tolist()
            out.append(p_dyn * sp.Mul(*(pi[s[t], a[t]] for t in range(T))))
        return out

    def _q_and_v_sym(self, pi) -> tuple[sp.Array, sp.Array]:
        pi = self._check_pi_sym(pi)
        S, A, T, g = self.n_states, self.n_actions, self.horizon, self.gamma_exact
        V_next = [sp.Integer(0)] * S
        qs, vs = [], [V_next]
        for _ in range(T):
            Q = [[sp.expand(sp.Add(*(self.P_exact[(s, a, s2)]
                                     * (self.R_exact[(s, a, s2)] + g * V_next[s2])
                                     for s2 in range(S))))
                  for a in range(A)] for s in range(S)]
            V_next = [sp.expand(sp.Add(*(pi[s, a] * Q[s][a] for a in range(A))))
                      for s in range(S)]
            qs.append(Q)
            vs.append(V_next)
        return sp.Array(qs[::-1]), sp.Array(vs[::-1])

    def q_values_sym(self, pi: sp.Matrix | None = None) -> sp.Array:
        """Q_t(s, a) of :meth:`q_values` exactly, as a SymPy Array of shape (T, S, A).

        ``pi`` is the S x A matrix of action probabilities pi(a|s): ``mdp.policy_sym(theta)``
        for symbolic or rational logits (the default, with :meth:`theta_symbols`), or any other
        coordinates, e.g. ``[[u0, 1 - u0], [u1, 1 - u1]]``, in which every quantity here is a
        polynomial (fast to compare exactly). Expressions are expanded.
        """
        return self._q_and_v_sym(pi)[0]

    def state_values_sym(self, pi: sp.Matrix | None = None) -> sp.Array:
        """V_t(s) of :meth:`state_values` as a SymPy Array of shape (T+1, S), V_T = 0; ``pi``
        as in :meth:`q_values_sym`."""
        return self._q_and_v_sym(pi)[1]

    def advantages_sym(self, pi: sp.Matrix | None = None) -> sp.Array:
        """A_t(s, a) = Q_t(s, a) - V_t(s)   (0.11), a SymPy Array of shape (T, S, A); ``pi`` as
        in :meth:`q_values_sym`."""
        Q, V_ = self._q_and_v_sym(pi)
        T, S, A = self.horizon, self.n_states, self.n_actions
        return sp.Array([[[sp.expand(Q[t, s, a] - V_[t, s]) for a in range(A)]
                          for s in range(S)] for t in range(T)])

    def state_occupancy_sym(self, pi: sp.Matrix | None = None) -> sp.Array:
        """d_t(s) of :meth:`state_occupancy` as a SymPy Array of shape (T, S); ``pi`` as in
        :meth:`q_values_sym`."""
        pi = self._check_pi_sym(pi)
        S, A = self.n_states, self.n_actions
        d = [[self.initial_exact[(s,)] for s in range(S)]]
        for _ in range(self.horizon - 1):
            d.append([sp.expand(sp.Add(*(d[-1][s] * pi[s, a] * self.P_exact[(s, a, s2)]
                                         for s in range(S) for a in range(A))))
                      for s2 in range(S)])
        return sp.Array(d)

    def along_trajectories_sym(self, values: sp.NDimArray, *,
                               discount_from_start: bool = False) -> list[list[sp.Expr]]:
        """:meth:`along_trajectories` for a SymPy Array: a list of N lists (one per enumerated
        trajectory) of T (or T+1) expressions, with exact gamma^t if ``discount_from_start``."""
        if not isinstance(values, sp.NDimArray):
            raise ValueError(f"values must be a SymPy Array, got {type(values).__name__}")
        shape = check_value_table(tuple(values.shape), self.horizon, self.n_states, self.n_actions)
        table, g = self.trajectories, self.gamma_exact
        out = []
        for i in range(len(table)):
            s, a = table.states[i].tolist(), table.actions[i].tolist()
            if len(shape) == 3:
                row = [values[t, s[t], a[t]] for t in range(self.horizon)]
            else:
                row = [values[t, s[t]] for t in range(shape[0])]
            if discount_from_start:
                row = [g**t * x for t, x in enumerate(row)]
            out.append(row)
        return out

    def expected_score_weighted_sym(self, pi: sp.Matrix | None, psi) -> sp.Matrix:
        r"""E_tau[ sum_t grad_theta log pi_theta(a_t|s_t) Psi_t ] exactly, an S x A SymPy Matrix.

        The SymPy twin of :meth:`expected_score_weighted` for the tabular softmax policy: the
        sum over every enumerated trajectory of p(tau) sum_t Psi_t (e_{a_t} - pi(.|s_t)) with
        the closed-form softmax score (chapter 1) in row s_t. ``pi`` as in
        :meth:`q_values_sym`; ``psi``: N rows of T expressions (or N expressions, one weight
        for every step), e.g. from :meth:`along_trajectories_sym`. Entries are expanded, so in
        polynomial coordinates an identity holds iff the difference expands to 0.
        """
        pi = self._check_pi_sym(pi)
        table, T, S, A = self.trajectories, self.horizon, self.n_states, self.n_actions
        if not isinstance(psi, list | tuple) or len(psi) != len(table):
            raise ValueError(f"psi must be a list of {len(table)} rows (one per trajectory)")
        terms: dict[tuple[int, int], list] = {(s, b): [] for s in range(S) for b in range(A)}
        for i, p_tau in enumerate(self.trajectory_probs_of(pi)):
            row = psi[i]
            if isinstance(row, list | tuple):
                if len(row) != T:
                    raise ValueError(f"psi[{i}] must have {T} entries, got {len(row)}")
            else:
                row = [row] * T
            s, a = table.states[i].tolist(), table.actions[i].tolist()
            for t in range(T):
                for b in range(A):
                    score = (1 if b == a[t] else 0) - pi[s[t], b]
                    terms[(s[t], b)].append(p_tau * row[t] * score)
        return sp.Matrix(S, A, lambda s, b: sp.expand(sp.Add(*terms[(s, b)])))
