"""A tiny finite-horizon MDP on which every policy-gradient identity can be checked *exactly*.

Equations (0.1)-(0.2) of the source article, computed by brute force:

* (0.2)  p(tau; theta) = rho_0(s_0) * prod_{t=0}^{T-1} pi_theta(a_t | s_t) P(s_{t+1} | s_t, a_t)
* (0.1)  J(theta) = sum_tau p(tau; theta) R(tau),  R(tau) = sum_{t=0}^{T-1} gamma^t r_{t+1}

The MDP is small enough (a few hundred trajectories) that the sum over *all* trajectories is
taken literally, both in SymPy (exact rationals, symbolic logits) and in torch (float64,
differentiable). The policy is a tabular softmax with logits theta[s, a], the same at every
step. Chapters 2-6 use :meth:`TabularMDP.default`; chapter 1 uses :meth:`TabularMDP.bandit`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property

import sympy as sp
import torch

from . import _validate as V
from .returns import discounted_return
from .symbolic import softmax

__all__ = ["SampledTrajectories", "TabularMDP", "TrajectoryTable"]


def _exact(x, name: str) -> sp.Rational:
    """Turn a number into an exact SymPy rational (0.1 becomes 1/10, not a binary float)."""
    if isinstance(x, sp.Basic):
        value = x
    elif isinstance(x, float):
        value = sp.Rational(repr(x))
    elif isinstance(x, int | Fraction | str):
        value = sp.Rational(x)
    else:
        raise ValueError(f"{name} must contain numbers, got {type(x).__name__}")
    if not value.is_Rational:
        raise ValueError(f"{name} must contain rational numbers, got {value}")
    return value


def _exact_array(values, shape: tuple[int, ...], name: str) -> dict[tuple[int, ...], sp.Rational]:
    """Read a nested list of numbers of the given shape into {index: exact rational}."""
    out: dict[tuple[int, ...], sp.Rational] = {}

    def walk(node, index: tuple[int, ...]):
        depth = len(index)
        if depth == len(shape):
            out[index] = _exact(node, name)
            return
        if isinstance(node, str) or not hasattr(node, "__len__") or len(node) != shape[depth]:
            got = len(node) if hasattr(node, "__len__") and not isinstance(node, str) else "none"
            raise ValueError(f"{name} must have shape {shape}: at index {index} expected "
                             f"{shape[depth]} entries, got {got}")
        for i, child in enumerate(node):
            walk(child, index + (i,))

    walk(values, ())
    return out


def _nested_depth(values) -> int:
    depth = 0
    while hasattr(values, "__len__") and not isinstance(values, str) and len(values) > 0:
        values, depth = values[0], depth + 1
    return depth


def _to_torch(array: dict[tuple[int, ...], sp.Rational], shape: tuple[int, ...]) -> torch.Tensor:
    out = torch.empty(shape, dtype=torch.float64)
    for index, value in array.items():
        out[index] = float(value)
    return out


@dataclass(frozen=True)
class TrajectoryTable:
    """Every trajectory of positive probability under the dynamics, one row each.

    ``states[i]`` is (s_0, ..., s_T), ``actions[i]`` is (a_0, ..., a_{T-1}) and
    ``rewards[i]`` is (r_1, ..., r_T). ``dynamics_prob[i]`` is the part of (0.2) that does not
    depend on theta: rho_0(s_0) prod_t P(s_{t+1}|s_t, a_t); ``dynamics_prob_exact`` and
    ``rewards_exact`` hold the same numbers as SymPy rationals.
    """

    states: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    dynamics_prob: torch.Tensor
    dynamics_prob_exact: tuple[sp.Rational, ...]
    rewards_exact: tuple[tuple[sp.Rational, ...], ...]

    def __len__(self) -> int:
        return int(self.actions.shape[0])


@dataclass(frozen=True)
class SampledTrajectories:
    """N trajectories sampled by running the policy in the MDP, step by step."""

    states: torch.Tensor  # (N, T+1), int64
    actions: torch.Tensor  # (N, T), int64
    rewards: torch.Tensor  # (N, T), float64: r_1, ..., r_T


class TabularMDP:
    r"""A finite-horizon MDP with a tabular softmax policy pi_theta(a|s) = softmax(theta[s])_a.

    Parameters
    ----------
    transitions:
        P[s][a][s'] = P(s' | s, a), nested lists of exact numbers (ints, Fractions, strings
        like "1/3", or floats, read as the decimal they print as). Each P[s][a] sums to 1.
    rewards:
        r(s, a) as an S x A nested list, or r(s, a, s') as S x A x S: the reward r_{t+1}
        received after taking a_t in s_t and landing in s_{t+1}.
    initial:
        rho_0(s), length S, sums to 1.
    horizon:
        T >= 1, the number of actions in a trajectory.
    gamma:
        discount in [0, 1].
    """

    def __init__(self, transitions, rewards, initial, horizon: int, gamma):
        try:
            n_states = len(transitions)
            n_actions = len(transitions[0])
        except TypeError:
            raise ValueError("transitions must be a nested list P[s][a][s']") from None
        if n_states < 1 or n_actions < 1:
            raise ValueError("transitions must have at least one state and one action")
        self.n_states, self.n_actions = n_states, n_actions
        self.horizon = V.positive_int(horizon, "horizon")
        self.gamma_exact = _exact(gamma, "gamma")
        if not 0 <= self.gamma_exact <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma_exact}")
        self.gamma = float(self.gamma_exact)

        S, A = n_states, n_actions
        self.P_exact = _exact_array(transitions, (S, A, S), "transitions")
        for s, a in itertools.product(range(S), range(A)):
            row = [self.P_exact[(s, a, s2)] for s2 in range(S)]
            if any(p < 0 for p in row) or sum(row) != 1:
                raise ValueError(f"transitions[{s}][{a}] must be a probability vector "
                                 f"(non-negative, summing to 1), got {row}")
        if _nested_depth(rewards) == 2:  # r(s, a): the same reward whatever s' is
            r_sa = _exact_array(rewards, (S, A), "rewards")
            self.R_exact = {(s, a, s2): r_sa[(s, a)]
                            for s, a, s2 in itertools.product(range(S), range(A), range(S))}
        else:
            self.R_exact = _exact_array(rewards, (S, A, S), "rewards")
        self.initial_exact = _exact_array(initial, (S,), "initial")
        init = [self.initial_exact[(s,)] for s in range(S)]
        if any(p < 0 for p in init) or sum(init) != 1:
            raise ValueError(f"initial must be a probability vector summing to 1, got {init}")

        self.P = _to_torch(self.P_exact, (S, A, S))
        self.R = _to_torch(self.R_exact, (S, A, S))
        self.initial = _to_torch(self.initial_exact, (S,))

    # ------------------------------------------------------------------ factories
    @classmethod
    def default(cls) -> TabularMDP:
        """The book's running example: 2 states, 2 actions, T = 3, gamma = 9/10.

        In state 0, action 1 pays more now (3/2 against 1) but tends to move to the poor state 1
        (probability 7/10 against 1/5); in state 1 action 0 costs -1. Because the horizon is
        short and the policy is stationary, the best policy is *stochastic* in state 0: about
        77% action 0 (and always action 1 in state 1). sup J = 1.249063 (chapter 2 derives it
        exactly) lies above every deterministic policy's J (best 1.24115); it is approached as
        theta[1, 1] - theta[1, 0] grows, never attained at finite logits.
        """
        return cls(
            transitions=[
                [["4/5", "1/5"], ["3/10", "7/10"]],
                [["1/2", "1/2"], ["1/10", "9/10"]],
            ],
            rewards=[[1, "3/2"], [-1, 0]],
            initial=["1/2", "1/2"],
            horizon=3,
            gamma="9/10",
        )

    @classmethod
    def bandit(cls, arm_rewards) -> TabularMDP:
        """A multi-armed bandit as a one-state, one-step MDP: r(a) = ``arm_rewards[a]``."""
        if not isinstance(arm_rewards, list | tuple) or len(arm_rewards) < 2:
            raise ValueError("arm_rewards must be a list of at least 2 numbers")
        A = len(arm_rewards)
        return cls(transitions=[[[1] for _ in range(A)]], rewards=[list(arm_rewards)],
                   initial=[1], horizon=1, gamma=1)

    def __repr__(self) -> str:
        return (f"TabularMDP(n_states={self.n_states}, n_actions={self.n_actions}, "
                f"horizon={self.horizon}, gamma={self.gamma_exact})")

    # ------------------------------------------------------------------ the policy
    def _check_theta(self, theta: torch.Tensor) -> torch.Tensor:
        V.tensor(theta, "theta", ndim=2)
        if tuple(theta.shape) != (self.n_states, self.n_actions):
            raise ValueError(f"theta must have shape ({self.n_states}, {self.n_actions}), "
                             f"got {tuple(theta.shape)}")
        return theta

    def theta_symbols(self, name: str = "theta") -> sp.Matrix:
        """Real symbols theta[s, a] for the logits of the tabular softmax policy."""
        from .symbolic import logit_symbols

        return logit_symbols(self.n_states, self.n_actions, name)

    def random_theta(self, generator: torch.Generator | None = None,
                     scale: float = 1.0) -> torch.Tensor:
        """Logits with i.i.d. N(0, scale^2) entries, float64."""
        scale = V.number(scale, "scale", low=0.0)
        return scale * torch.randn(self.n_states, self.n_actions, dtype=torch.float64,
                                   generator=generator)

    def policy(self, theta: torch.Tensor) -> torch.Tensor:
        """pi_theta(a|s) as an (S, A) tensor."""
        return torch.softmax(self._check_theta(theta), dim=-1)

    def policy_sym(self, theta: sp.Matrix) -> sp.Matrix:
        """pi_theta(a|s) as an (S, A) SymPy matrix of softmax expressions."""
        if not isinstance(theta, sp.MatrixBase) or theta.shape != (self.n_states,
                                                                    self.n_actions):
            raise ValueError(f"theta must be a SymPy Matrix of shape "
                             f"({self.n_states}, {self.n_actions})")
        rows = [list(softmax(theta.row(s))) for s in range(self.n_states)]
        return sp.Matrix(rows)

    # ------------------------------------------------------------------ trajectories
    @cached_property
    def trajectories(self) -> TrajectoryTable:
        """Enumerate every trajectory with positive dynamics probability (cached)."""
        S, A, T = self.n_states, self.n_actions, self.horizon
        rows_s, rows_a, rows_r, probs_exact, rewards_exact = [], [], [], [], []
        for s0 in range(S):
            if self.initial_exact[(s0,)] == 0:
                continue
            for steps in itertools.product(itertools.product(range(A), range(S)), repeat=T):
                states, actions, rewards = [s0], [], []
                prob = self.initial_exact[(s0,)]
                for a, s_next in steps:
                    prob *= self.P_exact[(states[-1], a, s_next)]
                    rewards.append(self.R_exact[(states[-1], a, s_next)])
                    actions.append(a)
                    states.append(s_next)
                if prob == 0:
                    continue
                rows_s.append(states)
                rows_a.append(actions)
                rows_r.append([float(r) for r in rewards])
                probs_exact.append(prob)
                rewards_exact.append(tuple(rewards))
        return TrajectoryTable(
            states=torch.tensor(rows_s, dtype=torch.long),
            actions=torch.tensor(rows_a, dtype=torch.long),
            rewards=torch.tensor(rows_r, dtype=torch.float64),
            dynamics_prob=torch.tensor([float(p) for p in probs_exact], dtype=torch.float64),
            dynamics_prob_exact=tuple(probs_exact),
            rewards_exact=tuple(rewards_exact),
        )

    def returns(self) -> torch.Tensor:
        """R(tau) = sum_t gamma^t r_{t+1} for every enumerated trajectory, shape (N,)."""
        return discounted_return(self.trajectories.rewards, self.gamma)

    def returns_exact(self) -> list[sp.Rational]:
        """R(tau) for every enumerated trajectory, as exact rationals."""
        g = self.gamma_exact
        return [sum(g**t * r for t, r in enumerate(rs)) for rs in
                self.trajectories.rewards_exact]

    def action_log_probs(self, theta: torch.Tensor) -> torch.Tensor:
        """log pi_theta(a_t | s_t) for every trajectory and step, shape (N, T)."""
        log_pi = torch.log_softmax(self._check_theta(theta), dim=-1)
        table = self.trajectories
        return log_pi[table.states[:, :-1], table.actions]

    def trajectory_probs(self, theta: torch.Tensor) -> torch.Tensor:
        """p(tau; theta) of (0.2) for every enumerated trajectory, shape (N,); sums to 1."""
        table = self.trajectories
        return table.dynamics_prob * self.action_log_probs(theta).sum(-1).exp()

    def trajectory_probs_sym(self, theta: sp.Matrix) -> list[sp.Expr]:
        """p(tau; theta) of (0.2) for every enumerated trajectory, as SymPy expressions."""
        pi = self.policy_sym(theta)
        table = self.trajectories
        out = []
        for i, p_dyn in enumerate(table.dynamics_prob_exact):
            s, a = table.states[i].tolist(), table.actions[i].tolist()
            out.append(p_dyn * sp.Mul(*(pi[s[t], a[t]] for t in range(self.horizon))))
        return out

    # ------------------------------------------------------------------ J and its gradient
    def J(self, theta: torch.Tensor) -> torch.Tensor:
        """J(theta) = sum_tau p(tau; theta) R(tau)   (0.1), exact, differentiable."""
        return (self.trajectory_probs(theta) * self.returns()).sum()

    def J_sym(self, theta: sp.Matrix | None = None) -> sp.Expr:
        """J(theta) of (0.1) as a SymPy expression in the logits (symbols by default)."""
        theta = self.theta_symbols() if theta is None else theta
        return sp.Add(*(p * R for p, R in zip(self.trajectory_probs_sym(theta),
                                              self.returns_exact(), strict=True)))

    def grad_J(self, theta: torch.Tensor) -> torch.Tensor:
        """The exact gradient of J at theta (autograd through the full sum), shape (S, A)."""
        theta = self._check_theta(theta).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.J(theta), theta)
        return grad

    def expected_score_weighted(self, theta: torch.Tensor, psi: torch.Tensor) -> torch.Tensor:
        r"""E_tau[ sum_t grad log pi_theta(a_t|s_t) * Psi_t ], exactly, shape (S, A).

        ``psi`` holds one weight per enumerated trajectory and step, shape (N, T) (or (N,) to
        use the same weight at every step, e.g. R(tau) as in (0.6)). The expectation is the
        full sum over trajectories weighted by p(tau; theta); ``psi`` is treated as a constant.
        Chapters 3-6 put R(tau), the reward-to-go, Q or A here and compare with ``grad_J``.
        """
        theta = self._check_theta(theta).detach().requires_grad_(True)
        n, T = len(self.trajectories), self.horizon
        V.tensor(psi, "psi", ndim=(1, 2))
        if psi.dim() == 1:
            psi = psi[:, None].expand(n, T)
        if tuple(psi.shape) != (n, T):
            raise ValueError(f"psi must have shape ({n}, {T}) or ({n},), got {tuple(psi.shape)}")
        weights = self.trajectory_probs(theta).detach()
        surrogate = (weights[:, None] * self.action_log_probs(theta) * psi.detach()).sum()
        (grad,) = torch.autograd.grad(surrogate, theta)
        return grad

    # ------------------------------------------------------------------ sampling
    def sample(self, theta: torch.Tensor, n: int,
               generator: torch.Generator | None = None) -> SampledTrajectories:
        """Run the policy in the MDP n times, step by step (no use of the enumeration)."""
        n = V.positive_int(n, "n")
        pi = self.policy(theta.detach())
        T = self.horizon
        states = torch.empty(n, T + 1, dtype=torch.long)
        actions = torch.empty(n, T, dtype=torch.long)
        rewards = torch.empty(n, T, dtype=torch.float64)
        initial = self.initial.expand(n, -1)
        states[:, 0] = torch.multinomial(initial, 1, True, generator=generator)[:, 0]
        for t in range(T):
            s = states[:, t]
            a = torch.multinomial(pi[s], 1, True, generator=generator)[:, 0]
            s_next = torch.multinomial(self.P[s, a], 1, True, generator=generator)[:, 0]
            actions[:, t], states[:, t + 1] = a, s_next
            rewards[:, t] = self.R[s, a, s_next]
        return SampledTrajectories(states=states, actions=actions, rewards=rewards)

    def sampled_log_probs(self, theta: torch.Tensor, batch: SampledTrajectories) -> torch.Tensor:
        """log pi_theta(a_t|s_t) along sampled trajectories, shape (N, T), differentiable."""
        log_pi = torch.log_softmax(self._check_theta(theta), dim=-1)
        return log_pi[batch.states[:, :-1], batch.actions]
