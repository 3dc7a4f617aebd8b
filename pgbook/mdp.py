"""A tiny finite-horizon MDP on which every policy-gradient identity can be checked *exactly*.

Equations (0.1)-(0.2) of the source article, computed by brute force:

* (0.2)  p(tau; theta) = rho_0(s_0) * prod_{t=0}^{T-1} pi_theta(a_t | s_t) P(s_{t+1} | s_t, a_t)
* (0.1)  J(theta) = sum_tau p(tau; theta) R(tau),  R(tau) = sum_{t=0}^{T-1} gamma^t r_{t+1}

The MDP is small enough (a few hundred trajectories) that the sum over *all* trajectories is
taken literally, both in SymPy (exact rationals, symbolic logits) and in torch (float64,
differentiable). The policy is a tabular softmax with logits theta[s, a], the same at every
step. Chapters 2-6 use :meth:`TabularMDP.default`; chapter 1 uses :meth:`TabularMDP.bandit`.

For the actor-critic forms (0.10)-(0.12) (chapter 6) the exact action values Q_t(s, a), state
values V_t(s) and advantages A_t = Q_t - V_t (finite horizon, so they depend on t) come from
backward induction, again in torch and in SymPy, and :meth:`TabularMDP.along_trajectories`
reads them along the enumerated trajectories as weights Psi for
:meth:`TabularMDP.expected_score_weighted`.

Every torch computation here has an exact SymPy twin (``q_values_sym``, ``trajectory_probs_of``,
``expected_score_weighted_sym``, ...), inherited from :class:`pgbook.mdp_exact.ExactMethods`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from functools import cached_property

import sympy as sp
import torch

from . import _validate as V
from .mdp_exact import (
    ExactMethods,
    check_value_table,
    exact_to_torch,
    nested_depth,
    read_exact,
    read_exact_array,
)
from .symbolic import logit_symbols, softmax

__all__ = ["SampledTrajectories", "TabularMDP", "TrajectoryTable"]


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


class TabularMDP(ExactMethods):
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
        except (TypeError, IndexError, KeyError):
            raise ValueError("transitions must be a nested list P[s][a][s']") from None
        if n_states < 1 or n_actions < 1:
            raise ValueError("transitions must have at least one state and one action")
        self.n_states, self.n_actions = n_states, n_actions
        self.horizon = V.positive_int(horizon, "horizon")
        self.gamma_exact = read_exact(gamma, "gamma")
        if not 0 <= self.gamma_exact <= 1:
            raise ValueError(f"gamma must be in [0, 1], got {self.gamma_exact}")
        self.gamma = float(self.gamma_exact)

        S, A = n_states, n_actions
        self.P_exact = read_exact_array(transitions, (S, A, S), "transitions")
        for s, a in itertools.product(range(S), range(A)):
            row = [self.P_exact[(s, a, s2)] for s2 in range(S)]
            if any(p < 0 for p in row) or sum(row) != 1:
                raise ValueError(f"transitions[{s}][{a}] must be a probability vector "
                                 f"(non-negative, summing to 1), got {row}")
        if nested_depth(rewards) == 2:  # r(s, a): the same reward whatever s' is
            r_sa = read_exact_array(rewards, (S, A), "rewards")
            self.R_exact = {(s, a, s2): r_sa[(s, a)]
                            for s, a, s2 in itertools.product(range(S), range(A), range(S))}
        else:
            self.R_exact = read_exact_array(rewards, (S, A, S), "rewards")
        self.initial_exact = read_exact_array(initial, (S,), "initial")
        init = [self.initial_exact[(s,)] for s in range(S)]
        if any(p < 0 for p in init) or sum(init) != 1:
            raise ValueError(f"initial must be a probability vector summing to 1, got {init}")

        self.P = exact_to_torch(self.P_exact, (S, A, S))
        self.R = exact_to_torch(self.R_exact, (S, A, S))
        self.initial = exact_to_torch(self.initial_exact, (S,))

    # ------------------------------------------------------------------ factories
    @classmethod
    def default(cls) -> TabularMDP:
        """The book's running example: 2 states, 2 actions, T = 3, gamma = 9/10.

        In state 0, action 1 pays more now (3/2 against 1) but tends to move to the poor state 1
        (probability 7/10 against 1/5); in state 1 action 0 costs -1. The tabular softmax policy
        is *stationary* (the same at every t), and because the horizon is short the best
        stationary policy is *stochastic* in state 0: about 77% action 0 (and always action 1 in
        state 1). Its sup J = 1.249063 (chapter 2 derives it exactly) lies above every
        stationary deterministic policy's J (best 1.24115); it is approached as
        theta[1, 1] - theta[1, 0] grows, never attained at finite logits. Outside the
        stationary class a deterministic time-dependent policy does better: action 1 in state 0
        only at the last step gives J = 56369/40000 = 1.409225 (backward induction, chapter 2).
        """
        return cls(transitions=[[["4/5", "1/5"], ["3/10", "7/10"]],
                                [["1/2", "1/2"], ["1/10", "9/10"]]],
                   rewards=[[1, "3/2"], [-1, 0]], initial=["1/2", "1/2"], horizon=3,
                   gamma="9/10")

    @classmethod
    def bandit(cls, arm_rewards) -> TabularMDP:
        """A multi-armed bandit as a one-state, one-step MDP: r(a) = ``arm_rewards[a]``."""
        if not isinstance(arm_rewards, list | tuple) or len(arm_rewards) < 2:
            raise ValueError("arm_rewards must be a list of at least 2 numbers")
        A = len(arm_rewards)
        _ = [read_exact(r, "arm_rewards") for r in arm_rewards]
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

    def _check_sampled(self, batch, name: str) -> SampledTrajectories:
        """A SampledTrajectories of this MDP: int64 states (N, T+1), actions (N, T), in range."""
        if not isinstance(batch, SampledTrajectories):
            raise ValueError(f"{name} must be a SampledTrajectories, got {type(batch).__name__}")
        states, actions, T = batch.states, batch.actions, self.horizon
        ok = all(isinstance(x, torch.Tensor) and x.dtype == torch.long for x in (states, actions))
        n = actions.shape[0] if ok and actions.dim() else -1
        if not ok or tuple(states.shape) != (n, T + 1) or tuple(actions.shape) != (n, T):
            raise ValueError(f"{name} must hold int64 states (N, {T + 1}), actions (N, {T})")
        if n and (states.min() < 0 or states.max() >= self.n_states or actions.min() < 0
                  or actions.max() >= self.n_actions):
            raise ValueError(f"{name} must hold states in 0..{self.n_states - 1} and actions "
                             f"in 0..{self.n_actions - 1}")
        return batch

    def theta_symbols(self, name: str = "theta") -> sp.Matrix:
        """Real symbols theta[s, a] for the logits of the tabular softmax policy."""
        return logit_symbols(self.n_states, self.n_actions, name)

    def random_theta(self, generator: torch.Generator | None = None,
                     scale: float = 1.0) -> torch.Tensor:
        """Logits with i.i.d. N(0, scale^2) entries, float64."""
        scale = V.number(scale, "scale", low=0.0)
        V.generator(generator)
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
        rewards = self.trajectories.rewards
        discount = self.gamma ** torch.arange(self.horizon, dtype=rewards.dtype)
        return (rewards * discount).sum(-1)

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
        return self.trajectory_probs_of(self.policy_sym(theta))

    # ------------------------------------------------------------------ J and its gradient
    def J(self, theta: torch.Tensor, *, alpha: float = 0.0) -> torch.Tensor:
        r"""J(theta) = sum_tau p(tau; theta) R(tau)   (0.1), exact, differentiable.

        With ``alpha > 0``, SAC's maximum-entropy objective (chapter 11) over the same sum:

            J_soft(theta) = sum_tau p(tau; theta) sum_{t=0}^{T-1} gamma^t
                            [ r_{t+1} - alpha log pi_theta(a_t | s_t) ],

        so J_soft = J + alpha E[sum_t gamma^t H(pi(.|s_t))] = sum_s rho_0(s) V^soft_0(s).
        """
        alpha = V.number(alpha, "alpha", low=0.0)
        if alpha == 0:
            return (self.trajectory_probs(theta) * self.returns()).sum()
        discount = self.gamma ** torch.arange(self.horizon, dtype=torch.float64)
        soft_rewards = self.trajectories.rewards - alpha * self.action_log_probs(theta)
        return (self.trajectory_probs(theta) * (soft_rewards * discount).sum(-1)).sum()

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
        if tuple(psi.shape) not in ((n, T), (n,)):
            raise ValueError(f"psi must have shape ({n}, {T}) or ({n},), got {tuple(psi.shape)}")
        psi = psi[:, None].expand(n, T) if psi.dim() == 1 else psi
        weights = self.trajectory_probs(theta).detach()
        surrogate = (weights[:, None] * self.action_log_probs(theta) * psi.detach()).sum()
        (grad,) = torch.autograd.grad(surrogate, theta)
        return grad

    def per_trajectory_gradients(self, theta: torch.Tensor, psi: torch.Tensor,
                                 trajectories: SampledTrajectories | None = None
                                 ) -> torch.Tensor:
        r"""The one-trajectory estimates g(tau) of the policy gradient, one per trajectory,
        shape (N, S, A):

            g(tau) = sum_{t=0}^{T-1} Psi_t grad_theta log pi_theta(a_t | s_t),

        in the closed form of the tabular softmax score (chapter 1): grad_theta log
        pi_theta(a|s) is e_a - pi_theta(.|s) in row s and zero in the other rows, so g(tau) adds
        Psi_t (e_{a_t} - pi_theta(.|s_t)) into row s_t for every step t. No autograd.

        ``trajectories``: None for every enumerated trajectory (:attr:`trajectories`, in its
        order: then sum_i p(tau_i; theta) g(tau_i) is :meth:`expected_score_weighted`), or a
        :class:`SampledTrajectories` batch (from :meth:`sample`; the mean of its g is the
        estimate (0.7)). ``psi``: one weight per trajectory and step, shape (N, T), or (N,) for
        the same weight at every step (e.g. R(tau)), used as given. Chapter 4 (the estimates
        (0.7)-(0.8) and the exact covariance of g), chapter 5 (the exact variance left by each
        baseline) and chapter 6 (bias and variance of GAE) use it.
        """
        theta = self._check_theta(theta)
        if trajectories is None:
            trajectories = self.trajectories
        else:
            self._check_sampled(trajectories, "trajectories")
        states, actions = trajectories.states, trajectories.actions
        n, S, A, T = actions.shape[0], self.n_states, self.n_actions, self.horizon
        V.tensor(psi, "psi", ndim=(1, 2))
        if tuple(psi.shape) not in ((n,), (n, T)):
            raise ValueError(f"psi must have shape ({n}, {T}) or ({n},), got "
                             f"{tuple(psi.shape)}")
        weights = psi[:, None].expand(n, T) if psi.dim() == 1 else psi
        pi = self.policy(theta)
        s_t = states[:, :-1]
        score = torch.nn.functional.one_hot(actions, A).to(pi.dtype) - pi[s_t]  # (N, T, A)
        terms = score * weights[..., None]
        rows = s_t[..., None].expand(n, T, A)
        return torch.zeros(n, S, A, dtype=terms.dtype).scatter_add_(1, rows, terms)

    # ------------------------------------------------------------------ Q, V, A (chapter 6)
    def _q_and_v(self, theta: torch.Tensor, alpha) -> tuple[torch.Tensor, torch.Tensor]:
        """Backward induction from V_T = 0: (Q of shape (T, S, A), V of shape (T+1, S)), soft
        (entropy-regularised) for alpha > 0; the one recursion behind every Q and V here."""
        theta = self._check_theta(theta)
        alpha = V.number(alpha, "alpha", low=0.0)
        pi = self.policy(theta)
        log_pi = torch.log_softmax(theta, -1)
        V_next = torch.zeros(self.n_states, dtype=pi.dtype)
        qs, vs = [], [V_next]
        for _ in range(self.horizon):
            Q = torch.einsum("sap,sap->sa", self.P, self.R + self.gamma * V_next)
            V_next = (pi * (Q - alpha * log_pi if alpha else Q)).sum(-1)
            qs.append(Q)
            vs.append(V_next)
        return torch.stack(qs[::-1]), torch.stack(vs[::-1])

    def q_values(self, theta: torch.Tensor, *, alpha: float = 0.0) -> torch.Tensor:
        r"""Q_t(s, a) = E[G_t | s_t = s, a_t = a] for t = 0..T-1, shape (T, S, A); differentiable.

        G_t = sum_{k=t}^{T-1} gamma^{k-t} r_{k+1} is the reward-to-go. The horizon is finite,
        so the values depend on t (the time left), even though the policy does not. Backward
        induction from V_T = 0:

            Q_t(s, a) = sum_{s'} P(s'|s, a) [ r(s, a, s') + gamma V_{t+1}(s') ],
            V_t(s)    = sum_a pi_theta(a|s) [ Q_t(s, a) - alpha log pi_theta(a|s) ].

        The critic of (0.10) (chapter 6). J(theta) = sum_s rho_0(s) V_0(s). With ``alpha > 0``
        these are SAC's soft values (chapter 11): Q^soft_t(s, a) is the expected soft
        reward-to-go *after* a_t is chosen (the entropy bonus of step t is not in it, those of
        later steps are), and J(theta, alpha=alpha) = sum_s rho_0(s) V^soft_0(s).
        """
        return self._q_and_v(theta, alpha)[0]

    def state_values(self, theta: torch.Tensor, *, alpha: float = 0.0) -> torch.Tensor:
        r"""V_t(s) = E[G_t | s_t = s] for t = 0..T, shape (T+1, S); the last row V_T = 0.

        V_t(s) = sum_a pi_theta(a|s) Q_t(s, a) (see :meth:`q_values`, also for ``alpha``): the
        baseline of (0.11) and the critic of A2C and GAE (chapter 6). Differentiable in theta.
        """
        return self._q_and_v(theta, alpha)[1]

    def advantages(self, theta: torch.Tensor) -> torch.Tensor:
        r"""A_t(s, a) = Q_t(s, a) - V_t(s)   (0.11), shape (T, S, A).

        sum_a pi_theta(a|s) A_t(s, a) = 0 in every state and at every t (chapter 6).
        """
        Q, V_ = self._q_and_v(theta, 0.0)
        return Q - V_[:-1, :, None]

    def soft_policy_gradient_weight(self, theta: torch.Tensor, alpha: float) -> torch.Tensor:
        r"""The score weight of the soft policy gradient (chapter 11), along every enumerated
        trajectory, shape (N, T), detached:

            Psi_t = gamma^t [ Q^soft_t(s_t, a_t) - alpha log pi(a_t|s_t) - V^soft_t(s_t) ],

        so that E[sum_t grad log pi(a_t|s_t) Psi_t] = grad J(theta, alpha=alpha) exactly. Why:
        J_soft = sum_tau p R_soft with R_soft depending on theta too; the log-derivative trick
        gives E[sum_t score_t R_soft] - alpha E[sum_t gamma^t score_t], the second term is 0,
        causality and the tower rule turn R_soft into gamma^t (Q^soft_t - alpha log pi_t), and
        V^soft_t is a baseline. The source's SAC row, Q_w - V, drops the -alpha log pi term
        (and gamma^t).
        """
        theta = self._check_theta(theta).detach()
        Q, V_ = self._q_and_v(theta, alpha)
        alpha = float(alpha)
        q = self.along_trajectories(Q)
        v = self.along_trajectories(V_)[:, :-1]
        discount = self.gamma ** torch.arange(self.horizon, dtype=q.dtype)
        return (discount * (q - alpha * self.action_log_probs(theta) - v)).detach()

    def state_occupancy(self, theta: torch.Tensor) -> torch.Tensor:
        r"""d_t(s) = Pr(s_t = s) under pi_theta, t = 0..T-1, shape (T, S); each row sums to 1.

        Forward recursion: d_0 = rho_0, d_{t+1}(s') = sum_{s,a} d_t(s) pi(a|s) P(s'|s, a).
        With it the policy gradient reads sum_t gamma^t sum_s d_t(s) sum_a grad pi(a|s) Q_t(s, a)
        (chapter 6), and the bias of an approximate critic has a closed form.
        """
        pi = self.policy(theta)
        d = [self.initial]
        for _ in range(self.horizon - 1):
            d.append(torch.einsum("s,sa,sap->p", d[-1], pi, self.P))
        return torch.stack(d)

    def along_trajectories(self, values: torch.Tensor, *,
                           discount_from_start: bool = False) -> torch.Tensor:
        r"""A table of values read along every enumerated trajectory: a Psi for
        :meth:`expected_score_weighted`.

        * ``values`` of shape (T, S, A), e.g. Q_t or A_t: out[i, t] = values[t, s_t, a_t] of
          trajectory i, shape (N, T);
        * shape (T, S): out[i, t] = values[t, s_t], shape (N, T);
        * shape (T+1, S), e.g. V_t with V_T = 0: out[i, t] = values[t, s_t] for t = 0..T,
          shape (N, T+1) (column t + 1 holds V_{t+1}(s_{t+1}), as a TD error needs).

        ``discount_from_start=True`` multiplies column t by gamma^t: the exact weight of step t
        in the gradient of (0.1) is gamma^t Q_t(s_t, a_t), not Q_t(s_t, a_t) (chapter 3).
        """
        V.tensor(values, "values"), V.flag(discount_from_start, "discount_from_start")
        shape = check_value_table(tuple(values.shape), self.horizon, self.n_states, self.n_actions)
        table = self.trajectories
        if len(shape) == 3:
            t = torch.arange(self.horizon)
            out = values[t, table.states[:, :-1], table.actions]
        else:
            t = torch.arange(shape[0])
            out = values[t, table.states[:, : shape[0]]]
        if discount_from_start:
            out = out * self.gamma ** torch.arange(out.shape[1], dtype=out.dtype)
        return out

    # ------------------------------------------------------------------ sampling
    def sample(self, theta: torch.Tensor, n: int,
               generator: torch.Generator | None = None) -> SampledTrajectories:
        """Run the policy in the MDP n times, step by step (no use of the enumeration)."""
        n, _ = V.positive_int(n, "n"), V.generator(generator)
        pi = self.policy(self._check_theta(theta).detach())
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
        self._check_sampled(batch, "batch")
        return log_pi[batch.states[:, :-1], batch.actions]
