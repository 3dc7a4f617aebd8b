"""Every public function of pgbook's core modules refuses bad input with a ValueError whose
message names the argument at fault (issue 12, item 3).

``CASES`` holds one row per (function, bad input): wrong types, wrong shapes, wrong dtypes,
NaN and inf, empty tensors, out-of-range numbers, bools and strings where a number belongs.
Most rows are generated: :func:`_tensor_cases` and :func:`_number_cases` take one *good* call
and spoil one argument at a time. A meta-test requires every name in each module's
``__all__`` (and every public method of its classes) to have at least one row, or a reason in
``EXEMPT``, so a new public function without a bad-input case fails here. A generated row whose
input is in fact valid is dropped with a reason in ``EXEMPT_CASES``.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import math

import gymnasium as gym
import matplotlib
import numpy as np
import pytest
import sympy as sp
import torch

matplotlib.use("Agg")

from pgbook import (  # noqa: E402
    answer_model,
    checks,
    conformance,
    grpo_objectives,
    history,
    kl_estimators,
    kl_sequences,
    kl_table,
    libraries,
    mdp,
    mdp_exact,
    nets,
    objectives,
    piecewise,
    plot,
    replay,
    returns,
    rollout,
    stored_runs,
    symbolic,
    tasks,
    trust_region,
)
from pgbook.conformance import batteries  # noqa: E402
from pgbook.libraries import sb3, sb3_ppo, sb3_trpo, trl_grpo, trl_logps  # noqa: E402
from pgbook.table import descendant_identities, descendants  # noqa: E402

MODULES = ["symbolic", "piecewise", "kl_estimators", "kl_table", "kl_sequences", "mdp",
           "mdp_exact", "checks", "returns", "objectives", "grpo_objectives", "answer_model",
           "nets", "rollout", "replay", "tasks", "trust_region", "history", "stored_runs", "plot",
           "table.descendant_identities", "table.descendants", "conformance",
           "conformance.batteries", "libraries", "libraries.sb3", "libraries.sb3_ppo",
           "libraries.sb3_trpo", "libraries.trl_grpo", "libraries.trl_logps"]

D = torch.float64
NAN, INF = float("nan"), float("inf")


def f64(*values):
    return torch.tensor(values, dtype=D)


def _spoil_tensor(x: torch.Tensor, kind: str):
    """(label, bad value) pairs for a tensor argument of the given kind."""
    yield "list", x.tolist()
    yield "extra-dim", x[None, None]
    if kind == "float":
        yield "int-dtype", x.long()
        if x.numel():
            yield "nan", x.clone().fill_(NAN)
            yield "inf", x.clone().fill_(INF)
    elif kind == "long":
        yield "float-dtype", x.double()


def _tensor_cases(qualname, fn, good: dict, kinds: dict, *, empty: bool = True):
    """Spoil each tensor argument in ``kinds`` (name -> 'float' | 'long' | 'mask') in turn;
    with ``empty``, also call with every tensor argument emptied along its first dim."""
    out = []
    for name, kind in kinds.items():
        for label, bad in _spoil_tensor(good[name], kind):
            out.append((qualname, name, label,
                        lambda bad=bad, name=name: fn(**{**good, name: bad})))
    if empty:
        first = next(iter(kinds))
        emptied = {n: good[n][:0] for n in kinds}
        out.append((qualname, first, "empty", lambda: fn(**{**good, **emptied})))
    return out


def _number_cases(qualname, fn, good: dict, ranges: dict):
    """Spoil each number argument: NaN, inf, a bool, a string, and the out-of-range values
    listed for it in ``ranges`` (name -> list)."""
    out = []
    for name, outside in ranges.items():
        for label, bad in [("nan", NAN), ("inf", INF), ("bool", True), ("str", "0.2"),
                           *((f"out-of-range {v}", v) for v in outside)]:
            out.append((qualname, name, label,
                        lambda bad=bad, name=name: fn(**{**good, name: bad})))
    return out


def _one(qualname, arg, label, call):
    return [(qualname, arg, label, call)]


CASES: list = []

# ---- symbolic --------------------------------------------------------------------------------
_x = sp.Symbol("x", real=True)
_u = sp.Symbol("u", positive=True)
_z3 = sp.symbols("z0:3", real=True)
_r, _A, _eps = sp.Symbol("r", positive=True), sp.Symbol("A", real=True), sp.Symbol("e",
                                                                                   positive=True)
_region = piecewise.Region("x > 0", _x > 0, {_x: _u}, along=_u)
CASES += [
    *_one("symbolic.is_zero", "residual", "not sympifiable",
          lambda: symbolic.is_zero(object())),
    *_one("symbolic.assert_identical", "rhs", "matrix vs scalar",
          lambda: symbolic.assert_identical(sp.Matrix([_x]), _x)),
    *_one("symbolic.assert_identical", "lhs", "not sympifiable",
          lambda: symbolic.assert_identical(object(), 1)),
    *_one("symbolic.simplify_difference", "lhs", "not sympifiable",
          lambda: symbolic.simplify_difference(object(), 1)),
    *_one("symbolic.simplify_difference", "rhs", "shape mismatch",
          lambda: symbolic.simplify_difference(sp.Matrix([_x]), sp.Matrix([_x, 1]))),
    *_one("piecewise.assert_piecewise_identical", "regions", "not a sequence",
          lambda: piecewise.assert_piecewise_identical(_x, _x, _region)),
    *_one("piecewise.assert_piecewise_identical", "regions", "empty",
          lambda: piecewise.assert_piecewise_identical(_x, _x, [])),
    *_one("piecewise.clip", "low", "str", lambda: piecewise.clip(_x, "low", 1)),
    *_one("piecewise.clip", "high", "below low", lambda: piecewise.clip(_x, 1, 0)),
    *_one("piecewise.decide_branches", "max_rounds", "zero",
          lambda: piecewise.decide_branches(_x, max_rounds=0)),
    *_one("piecewise.decide_branches", "expr", "not sympifiable",
          lambda: piecewise.decide_branches(object())),
    *_one("piecewise.derivative_on_region", "region", "not a Region",
          lambda: piecewise.derivative_on_region(_x, _x, "x > 0")),
    *_one("piecewise.derivative_on_region", "x", "not a Symbol",
          lambda: piecewise.derivative_on_region(_x, 2 * _x, _region)),
    *_one("symbolic.gaussian_expectation", "z", "str",
          lambda: symbolic.gaussian_expectation(_x, "z")),
    *_one("symbolic.gaussian_expectation", "expr", "not a polynomial",
          lambda: symbolic.gaussian_expectation(sp.exp(_x), _x)),
    *_one("symbolic.gaussian_log_density", "log_sigma", "str",
          lambda: symbolic.gaussian_log_density(_x, 0, "s")),
    *_one("symbolic.gaussian_score", "x", "matrix",
          lambda: symbolic.gaussian_score(sp.Matrix([_x, _x]), 0, 0)),
    *_one("symbolic.logit_symbols", "n_states", "zero", lambda: symbolic.logit_symbols(0, 2)),
    *_one("symbolic.logit_symbols", "n_actions", "bool", lambda: symbolic.logit_symbols(2, True)),
    *_one("symbolic.logit_symbols", "name", "not a str", lambda: symbolic.logit_symbols(2, 2, 3)),
    *_one("piecewise.not_clip", "eps", "str", lambda: piecewise.not_clip(_r, _A, "0.2")),
    *_one("piecewise.one_sided_derivatives", "x", "not a Symbol",
          lambda: piecewise.one_sided_derivatives(_x, 2, 0, width=1)),
    *_one("piecewise.one_sided_derivatives", "width", "negative",
          lambda: piecewise.one_sided_derivatives(sp.Abs(_x), _x, 0, width=-1)),
    *_one("piecewise.ppo_clip_objective", "eps", "str",
          lambda: piecewise.ppo_clip_objective(_r, _A, "0.2")),
    *_one("piecewise.ppo_clip_regions", "eps", "not a Symbol",
          lambda: piecewise.ppo_clip_regions(_r, _A, 0.2)),
    *_one("piecewise.prove_clip_derivative", "eps", "number",
          lambda: piecewise.prove_clip_derivative(_r, _A, 0.2)),
    *_one("piecewise.ppo_clip_regions", "eps_high", "number",
          lambda: piecewise.ppo_clip_regions(_r, _A, sp.Symbol("e", positive=True), 0.28)),
    *_one("piecewise.ppo_clip_regions", "eps_high", "real, not positive",
          lambda: piecewise.ppo_clip_regions(_r, _A, sp.Symbol("e", positive=True),
                                             sp.Symbol("h", real=True))),
    *_one("piecewise.not_clip", "eps_high", "str",
          lambda: piecewise.not_clip(_r, _A, 0.2, "0.28")),
    *_one("symbolic.softmax", "logits", "one logit", lambda: symbolic.softmax([_x])),
    *_one("symbolic.softmax", "logits", "matrix",
          lambda: symbolic.softmax(sp.Matrix(2, 2, [*_z3, _x]))),
    *_one("symbolic.softmax_log_prob", "action", "out of range",
          lambda: symbolic.softmax_log_prob(_z3, 3)),
    *_one("symbolic.softmax_score", "action", "bool", lambda: symbolic.softmax_score(_z3, True)),
    *_one("piecewise.Region", "condition", "not sympifiable",
          lambda: piecewise.Region("r", object(), {})),
    *_one("piecewise.Region", "along", "not a Symbol",
          lambda: piecewise.Region("r", _x > 0, {_x: _u}, along=2)),
]

# ---- mdp, mdp_exact --------------------------------------------------------------------------
_P = [[["4/5", "1/5"], ["3/10", "7/10"]], [["1/2", "1/2"], ["1/10", "9/10"]]]
_good_mdp = dict(transitions=_P, rewards=[[1, "3/2"], [-1, 0]], initial=["1/2", "1/2"],
                 horizon=3, gamma="9/10")
M = mdp.TabularMDP.default()
TH = torch.zeros(2, 2, dtype=D)
_N = 32  # trajectories of the default MDP (computed below on first use)


def _n_traj():
    return len(M.trajectories)


def _mdp(**kw):
    return mdp.TabularMDP(**{**_good_mdp, **kw})


CASES += [
    *_one("mdp.TabularMDP", "gamma", "nan", lambda: _mdp(gamma=NAN)),
    *_one("mdp.TabularMDP", "gamma", "inf", lambda: _mdp(gamma=INF)),
    *_one("mdp.TabularMDP", "gamma", "bool", lambda: _mdp(gamma=True)),
    *_one("mdp.TabularMDP", "gamma", "str", lambda: _mdp(gamma="abc")),
    *_one("mdp.TabularMDP", "gamma", "above 1", lambda: _mdp(gamma=1.5)),
    *_one("mdp.TabularMDP", "gamma", "irrational", lambda: _mdp(gamma=sp.sqrt(2) / 2)),
    *_one("mdp.TabularMDP", "rewards", "nan", lambda: _mdp(rewards=[[1, NAN], [0, 0]])),
    *_one("mdp.TabularMDP", "rewards", "shape", lambda: _mdp(rewards=[[1, 2, 3], [0, 0, 0]])),
    *_one("mdp.TabularMDP", "transitions", "not a probability",
          lambda: _mdp(transitions=[[[1, 1], [0, 1]], [[1, 0], [0, 1]]])),
    *_one("mdp.TabularMDP", "transitions", "not nested", lambda: _mdp(transitions=3)),
    *_one("mdp.TabularMDP", "transitions", "empty", lambda: _mdp(transitions=[])),
    *_one("mdp.TabularMDP", "initial", "sums to 2", lambda: _mdp(initial=[1, 1])),
    *_one("mdp.TabularMDP", "horizon", "zero", lambda: _mdp(horizon=0)),
    *_one("mdp.TabularMDP", "horizon", "float", lambda: _mdp(horizon=2.0)),
    *_one("mdp.TabularMDP.bandit", "arm_rewards", "one arm", lambda: mdp.TabularMDP.bandit([1])),
    *_one("mdp.TabularMDP.bandit", "arm_rewards", "nan",
          lambda: mdp.TabularMDP.bandit([1, NAN])),
    *_one("mdp.TabularMDP.default", "args", "takes none", lambda: _raises_value_error_on_args(
        mdp.TabularMDP.default, 1)),
    *_one("mdp.TabularMDP.theta_symbols", "name", "not a str", lambda: M.theta_symbols(3)),
    *_one("mdp.TabularMDP.random_theta", "scale", "negative", lambda: M.random_theta(scale=-1)),
    *_one("mdp.TabularMDP.random_theta", "generator", "not a Generator",
          lambda: M.random_theta(generator=3)),
    *_one("mdp.TabularMDP.policy_sym", "theta", "tensor", lambda: M.policy_sym(TH)),
    *_one("mdp.TabularMDP.trajectory_probs_sym", "theta", "wrong shape",
          lambda: M.trajectory_probs_sym(sp.Matrix([[1, 2]]))),
    *_one("mdp.TabularMDP.J_sym", "theta", "tensor", lambda: M.J_sym(TH)),
    *_one("mdp.TabularMDP.returns", "args", "takes none",
          lambda: _raises_value_error_on_args(M.returns, 1)),
    *_one("mdp.TabularMDP.returns_exact", "args", "takes none",
          lambda: _raises_value_error_on_args(M.returns_exact, 1)),
    *_one("mdp.TabularMDP.sample", "theta", "list", lambda: M.sample([[0, 0], [0, 0]], 3)),
    *_one("mdp.TabularMDP.sample", "n", "zero", lambda: M.sample(TH, 0)),
    *_one("mdp.TabularMDP.sample", "n", "bool", lambda: M.sample(TH, True)),
    *_one("mdp.TabularMDP.sample", "generator", "not a Generator",
          lambda: M.sample(TH, 3, generator="seed")),
    *_one("mdp.TabularMDP.sampled_log_probs", "batch", "None",
          lambda: M.sampled_log_probs(TH, None)),
    *_one("mdp.TabularMDP.sampled_log_probs", "batch", "float actions",
          lambda: M.sampled_log_probs(TH, mdp.SampledTrajectories(
              torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 3), torch.zeros(2, 3)))),
    *_one("mdp.TabularMDP.sampled_log_probs", "batch", "state out of range",
          lambda: M.sampled_log_probs(TH, mdp.SampledTrajectories(
              torch.full((2, 4), 5), torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)))),
    *_one("mdp.TabularMDP.per_trajectory_gradients", "trajectories", "a dict",
          lambda: M.per_trajectory_gradients(TH, f64(1.0), {})),
    *_one("mdp.TabularMDP.per_trajectory_gradients", "psi", "wrong length",
          lambda: M.per_trajectory_gradients(TH, f64(1.0, 2.0))),
    *_one("mdp.TabularMDP.expected_score_weighted", "psi", "wrong length",
          lambda: M.expected_score_weighted(TH, f64(1.0, 2.0))),
    *_one("mdp.TabularMDP.expected_score_weighted", "psi", "nan",
          lambda: M.expected_score_weighted(TH, torch.full((_n_traj(),), NAN, dtype=D))),
    *_one("mdp.TabularMDP.along_trajectories", "values", "wrong shape",
          lambda: M.along_trajectories(torch.zeros(2, 2, 2, 2, dtype=D))),
    *_one("mdp.TabularMDP.along_trajectories", "values", "list",
          lambda: M.along_trajectories([[0.0]])),
    *_one("mdp.TabularMDP.along_trajectories", "discount_from_start", "str",
          lambda: M.along_trajectories(torch.zeros(3, 2, dtype=D), discount_from_start="no")),
    *_one("mdp.TabularMDP.soft_policy_gradient_weight", "alpha", "negative",
          lambda: M.soft_policy_gradient_weight(TH, -1.0)),
    *_one("mdp.TabularMDP.soft_policy_gradient_weight", "alpha", "str",
          lambda: M.soft_policy_gradient_weight(TH, "1")),
    *_one("mdp.TabularMDP.J", "alpha", "negative", lambda: M.J(TH, alpha=-0.1)),
    *_one("mdp.TabularMDP.q_values", "alpha", "nan", lambda: M.q_values(TH, alpha=NAN)),
    *_one("mdp.TabularMDP.state_values", "alpha", "bool", lambda: M.state_values(TH, alpha=True)),
]
for _meth in ["policy", "action_log_probs", "trajectory_probs", "J", "grad_J", "q_values",
              "state_values", "advantages", "state_occupancy"]:
    CASES += _tensor_cases(f"mdp.TabularMDP.{_meth}", getattr(M, _meth), {"theta": TH},
                           {"theta": "float"}, empty=False)
    CASES += _one(f"mdp.TabularMDP.{_meth}", "theta", "wrong shape",
                  lambda m=_meth: getattr(M, m)(torch.zeros(3, 2, dtype=D)))
for _meth in ["soft_policy_gradient_weight", "per_trajectory_gradients",
              "expected_score_weighted"]:
    CASES += _one(f"mdp.TabularMDP.{_meth}", "theta", "wrong shape",
                  lambda m=_meth: getattr(M, m)(torch.zeros(3, 2, dtype=D), f64(1.0)))

_pi = sp.Matrix([[sp.Rational(1, 2)] * 2] * 2)
for _meth in ["trajectory_probs_of", "q_values_sym", "state_values_sym", "advantages_sym",
              "state_occupancy_sym"]:
    CASES += _one(f"mdp_exact.ExactMethods.{_meth}", "pi", "wrong shape",
                  lambda m=_meth: getattr(M, m)(sp.Matrix([[1, 0, 0]])))
    CASES += _one(f"mdp_exact.ExactMethods.{_meth}", "pi", "not a probability",
                  lambda m=_meth: getattr(M, m)(sp.Matrix([[2, -1], [1, 0]])))
CASES += [
    *_one("mdp_exact.ExactMethods.along_trajectories_sym", "values", "wrong shape",
          lambda: M.along_trajectories_sym(sp.zeros(5, 5))),
    *_one("mdp_exact.ExactMethods.along_trajectories_sym", "values", "tensor",
          lambda: M.along_trajectories_sym(torch.zeros(3, 2))),
    *_one("mdp_exact.ExactMethods.expected_score_weighted_sym", "psi", "wrong length",
          lambda: M.expected_score_weighted_sym(_pi, [1, 2])),
    *_one("mdp_exact.ExactMethods.expected_score_weighted_sym", "pi", "tensor",
          lambda: M.expected_score_weighted_sym(TH, [1] * 4)),
    *_one("mdp_exact.check_value_table", "values", "wrong shape",
          lambda: mdp_exact.check_value_table((2, 2, 2, 2), 3, 2, 2)),
    *_one("mdp_exact.check_value_table", "T", "zero",
          lambda: mdp_exact.check_value_table((1, 2), 0, 2, 2)),
    *_one("mdp_exact.exact_to_torch", "array", "not a dict",
          lambda: mdp_exact.exact_to_torch([1, 2], (2,))),
    *_one("mdp_exact.exact_to_torch", "shape", "index outside",
          lambda: mdp_exact.exact_to_torch({(3,): sp.Integer(1)}, (2,))),
    *_one("mdp_exact.nested_depth", "values", "ragged",
          lambda: mdp_exact.nested_depth([[1, 2], 3])),
    *_one("mdp_exact.read_exact", "gamma", "nan", lambda: mdp_exact.read_exact(NAN, "gamma")),
    *_one("mdp_exact.read_exact", "gamma", "bool", lambda: mdp_exact.read_exact(True, "gamma")),
    *_one("mdp_exact.read_exact", "gamma", "bad str", lambda: mdp_exact.read_exact("x", "gamma")),
    *_one("mdp_exact.read_exact", "gamma", "list", lambda: mdp_exact.read_exact([1], "gamma")),
    *_one("mdp_exact.read_exact", "gamma", "pi", lambda: mdp_exact.read_exact(sp.pi, "gamma")),
    *_one("mdp_exact.read_exact_array", "initial", "short",
          lambda: mdp_exact.read_exact_array([1], (2,), "initial")),
    *_one("mdp_exact.read_exact_array", "initial", "inf",
          lambda: mdp_exact.read_exact_array([1, INF], (2,), "initial")),
]

# ---- checks ----------------------------------------------------------------------------------
_samples = torch.randn(50, 2, dtype=D, generator=torch.Generator().manual_seed(0))


def _obj(x):
    return (x**2).sum()


CASES += [
    *_tensor_cases("checks.confidence_interval", checks.confidence_interval,
                   {"samples": _samples}, {"samples": "float"}),
    *_number_cases("checks.confidence_interval", checks.confidence_interval,
                   {"samples": _samples}, {"level": [0.0, 1.0, 1.5]}),
    *_one("checks.confidence_interval", "samples", "one row",
          lambda: checks.confidence_interval(_samples[:1])),
    *_one("checks.covers", "samples", "list", lambda: checks.covers([[1.0], [2.0]], f64(0.0))),
    *_one("checks.covers", "samples", "wrong shape",
          lambda: checks.covers(_samples, f64(0.0, 0.0, 0.0))),
    *_one("checks.covers", "exact", "nan", lambda: checks.covers(_samples, f64(NAN, 0.0))),
    *_one("checks.covers", "level", "str", lambda: checks.covers(_samples, f64(0, 0), level="x")),
    *_one("checks.covers", "verbose", "str",
          lambda: checks.covers(_samples, f64(0, 0), verbose="yes")),
    *_tensor_cases("checks.exact_log", checks.exact_log, {"values": f64(1.0, 2.0)},
                   {"values": "float"}),
    *_one("checks.exact_log", "values", "negative", lambda: checks.exact_log(f64(-1.0))),
    *_one("checks.compare_values", "actual", "list",
          lambda: checks.compare_values([1.0], f64(1.0))),
    *_one("checks.compare_values", "expected", "wrong shape",
          lambda: checks.compare_values(f64(1.0), f64(1.0, 2.0))),
    *_one("checks.compare_values", "expected", "count",
          lambda: checks.compare_values([f64(1.0)], [f64(1.0), f64(1.0)])),
    *_one("checks.compare_values", "atol", "negative",
          lambda: checks.compare_values(f64(1.0), f64(1.0), atol=-1.0)),
    *_one("checks.compare_values", "rtol", "str",
          lambda: checks.compare_values(f64(1.0), f64(1.0), rtol="0")),
    *_one("checks.compare_values", "actual", "nan",
          lambda: checks.compare_values(f64(NAN), f64(1.0))),
    *_one("checks.compare_gradients", "objective", "not callable",
          lambda: checks.compare_gradients(3, _obj, [[f64(1.0)]])),
    *_one("checks.compare_gradients", "cases", "empty",
          lambda: checks.compare_gradients(_obj, _obj, [])),
    *_one("checks.compare_gradients", "wrt", "out of range",
          lambda: checks.compare_gradients(_obj, lambda x: 2 * x, [[f64(1.0)]], wrt=3)),
    *_one("checks.compare_gradients", "cases", "not tensors",
          lambda: checks.compare_gradients(_obj, lambda x: 2 * x, [[1.0]])),
    *_one("checks.finite_difference_check", "fn", "not callable",
          lambda: checks.finite_difference_check(3, [f64(1.0)])),
    *_one("checks.finite_difference_check", "inputs", "float32",
          lambda: checks.finite_difference_check(_obj, [torch.ones(2)])),
    *_one("checks.finite_difference_check", "eps", "negative",
          lambda: checks.finite_difference_check(_obj, [f64(1.0)], eps=-1e-6)),
    *_one("checks.finite_difference_check", "inputs", "empty",
          lambda: checks.finite_difference_check(_obj, [])),
    *_one("checks.ErrorReport", "n_cases", "negative",
          lambda: checks.ErrorReport("x", -1, 0.0, 0.0, 0.0, 0.0, 0)),
    *_one("checks.ErrorReport", "max_abs_err", "str",
          lambda: checks.ErrorReport("x", 1, "0", 0.0, 0.0, 0.0, 0)),
    *_one("checks.IntervalReport", "level", "above 1",
          lambda: checks.IntervalReport(f64(0.0), f64(1.0), f64(0.0), 2.0, 10)),
    *_one("checks.IntervalReport", "half_width", "wrong shape",
          lambda: checks.IntervalReport(f64(0.0), f64(1.0, 1.0), f64(0.0), 0.9, 10)),
]

# ---- returns ---------------------------------------------------------------------------------
_rew = f64(1.0, 2.0, 3.0)
_rew2 = torch.ones(3, 2, dtype=D)  # time-major (T, N)
_false = torch.zeros(3, 2, dtype=torch.bool)
_gamma_bad = [-0.1, 1.5]
CASES += [
    *_tensor_cases("returns.discounted_return", returns.discounted_return,
                   {"rewards": _rew, "gamma": 0.9}, {"rewards": "float"}),
    *_number_cases("returns.discounted_return", returns.discounted_return,
                   {"rewards": _rew, "gamma": 0.9}, {"gamma": _gamma_bad}),
    *_tensor_cases("returns.reward_to_go", returns.reward_to_go,
                   {"rewards": _rew, "gamma": 0.9}, {"rewards": "float"}),
    *_number_cases("returns.reward_to_go", returns.reward_to_go,
                   {"rewards": _rew, "gamma": 0.9}, {"gamma": _gamma_bad}),
    *_one("returns.reward_to_go", "rewards", "empty", lambda: returns.reward_to_go(
        torch.zeros(0), 0.9)),
    *_one("returns.reward_to_go", "discount_from_start", "str",
          lambda: returns.reward_to_go(_rew, 0.9, discount_from_start="yes")),
    *_tensor_cases("returns.discount_by_step", returns.discount_by_step,
                   {"values": _rew, "gamma": 0.9, "episode_step": torch.arange(3)},
                   {"values": "float", "episode_step": "long"}),
    *_number_cases("returns.discount_by_step", returns.discount_by_step,
                   {"values": _rew, "gamma": 0.9, "episode_step": torch.arange(3)},
                   {"gamma": _gamma_bad}),
    *_one("returns.discount_by_step", "episode_step", "negative",
          lambda: returns.discount_by_step(_rew, 0.9, torch.tensor([0, -1, 2]))),
]
for _fn in [returns.reward_to_go_batched, returns.episode_return_batched]:
    _q = f"returns.{_fn.__name__}"
    _good = {"rewards": _rew2, "terminated": _false, "truncated": _false, "gamma": 0.9}
    CASES += _tensor_cases(_q, _fn, _good, {"rewards": "float", "terminated": "mask",
                                            "truncated": "mask"})
    CASES += _number_cases(_q, _fn, _good, {"gamma": _gamma_bad})
    CASES += _one(_q, "bootstrap", "wrong shape",
                  lambda fn=_fn, g=_good: fn(**g, bootstrap=f64(1.0, 2.0, 3.0)))
    CASES += _one(_q, "bootstrap", "nan",
                  lambda fn=_fn, g=_good: fn(**g, bootstrap=f64(NAN, NAN)))
    CASES += _one(_q, "terminated", "not 0/1",
                  lambda fn=_fn, g=_good: fn(**{**g, "terminated": torch.full((3, 2), 2)}))
_good_gae = {"rewards": _rew2, "values": _rew2, "terminated": _false, "truncated": _false,
             "gamma": 0.9, "lam": 0.95, "next_values": _rew2}
CASES += [
    *_tensor_cases("returns.gae", returns.gae, _good_gae,
                   {"rewards": "float", "values": "float", "terminated": "mask",
                    "truncated": "mask", "next_values": "float"}),
    *_number_cases("returns.gae", returns.gae, _good_gae, {"gamma": _gamma_bad,
                                                            "lam": [-0.5, 2.0]}),
    *_tensor_cases("returns.group_advantages", returns.group_advantages,
                   {"rewards": torch.ones(2, 3, dtype=D)}, {"rewards": "float"}),
    *_number_cases("returns.group_advantages", returns.group_advantages,
                   {"rewards": torch.ones(2, 3, dtype=D)}, {"eps": [-1.0]}),
    *_one("returns.group_advantages", "rewards", "one answer per group",
          lambda: returns.group_advantages(torch.ones(2, 1, dtype=D))),
    *_one("returns.group_advantages", "scale_by_std", "str",
          lambda: returns.group_advantages(torch.ones(2, 3, dtype=D), scale_by_std="no")),
]
for _fn in [returns.rloo_advantages, returns.batch_normalized_advantages,
            returns.informative_groups]:
    _q = f"returns.{_fn.__name__}"
    CASES += _tensor_cases(_q, _fn, {"rewards": torch.ones(2, 3, dtype=D)}, {"rewards": "float"})
    CASES += _one(_q, "rewards", "one answer per group", lambda fn=_fn: fn(torch.ones(2, 1)))
CASES += _number_cases("returns.batch_normalized_advantages",
                       returns.batch_normalized_advantages,
                       {"rewards": torch.ones(2, 3, dtype=D)}, {"eps": [-1.0]})

# ---- objectives ------------------------------------------------------------------------------
_lp = f64(-1.0, -0.5, -2.0, -0.1)
_lp2 = torch.full((2, 3), -1.0, dtype=D)
_same = {"logp": _lp, "logp_old": _lp, "adv": f64(1.0, -1.0, 0.5, 2.0)}
_kinds3 = {"logp": "float", "logp_old": "float", "adv": "float"}
for _fn in [objectives.trpo, objectives.trpo_weight]:
    CASES += _tensor_cases(f"objectives.{_fn.__name__}", _fn, _same, _kinds3)
for _fn in [objectives.ppo_clip, objectives.ppo_clip_weight]:
    CASES += _tensor_cases(f"objectives.{_fn.__name__}", _fn, {**_same, "eps": 0.2}, _kinds3)
    CASES += _number_cases(f"objectives.{_fn.__name__}", _fn, {**_same, "eps": 0.2},
                           {"eps": [0.0, -0.1, 1.0]})
    CASES += _number_cases(f"objectives.{_fn.__name__}", _fn,
                           {**_same, "eps": 0.2, "eps_high": 0.28}, {"eps_high": [0.0, -0.1]})
_pen = {**_same, "kl": f64(0.0, 0.1, 0.2, 0.0), "beta": 1.0}
CASES += [
    *_tensor_cases("objectives.ppo_penalty", objectives.ppo_penalty, _pen,
                   {**_kinds3, "kl": "float"}),
    *_number_cases("objectives.ppo_penalty", objectives.ppo_penalty, _pen, {"beta": [-1.0]}),
    *_one("objectives.ppo_penalty", "kl", "negative",
          lambda: objectives.ppo_penalty(**{**_pen, "kl": f64(0.0, -0.1, 0.2, 0.0)})),
    *_tensor_cases("objectives.ratio", objectives.ratio, {"logp": _lp, "logp_old": _lp},
                   {"logp": "float", "logp_old": "float"}),
    *_tensor_cases("objectives.not_clip", objectives.not_clip,
                   {"ratio": f64(1.0, 1.1), "adv": f64(1.0, -1.0), "eps": 0.2},
                   {"ratio": "float", "adv": "float"}),
    *_number_cases("objectives.not_clip", objectives.not_clip,
                   {"ratio": f64(1.0, 1.1), "adv": f64(1.0, -1.0), "eps": 0.2},
                   {"eps": [0.0, 1.0]}),
    *_number_cases("objectives.not_clip", objectives.not_clip,
                   {"ratio": f64(1.0, 1.1), "adv": f64(1.0, -1.0), "eps": 0.2, "eps_high": 0.28},
                   {"eps_high": [0.0, -0.5]}),
    *_one("objectives.not_clip", "ratio", "negative",
          lambda: objectives.not_clip(f64(-1.0), f64(1.0), 0.2)),
    *_tensor_cases("objectives.policy_gradient_surrogate", objectives.policy_gradient_surrogate,
                   {"logp": _lp2, "weights": _lp2}, {"logp": "float", "weights": "float"}),
    *_one("objectives.policy_gradient_surrogate", "mask", "wrong shape",
          lambda: objectives.policy_gradient_surrogate(_lp2, _lp2, torch.ones(2, 2))),
    *_one("objectives.policy_gradient_surrogate", "mask", "not 0/1",
          lambda: objectives.policy_gradient_surrogate(_lp2, _lp2, torch.full((2, 3), 3))),
    *_one("objectives.policy_gradient_surrogate", "weights", "wrong length",
          lambda: objectives.policy_gradient_surrogate(_lp2, f64(1.0, 2.0, 3.0))),
]
for _fn, _w in [(objectives.a2c, "adv"), (objectives.actor_critic, "q")]:
    _good = {"logp": _lp2, _w: _lp2}
    CASES += _tensor_cases(f"objectives.{_fn.__name__}", _fn, _good,
                           {"logp": "float", _w: "float"})
    CASES += _number_cases(f"objectives.{_fn.__name__}", _fn, _good, {"gamma": _gamma_bad})
    CASES += _one(f"objectives.{_fn.__name__}", "mask", "wrong shape",
                  lambda fn=_fn, g=_good: fn(**g, mask=torch.ones(3, 3)))
for _fn, _w in [(objectives.a2c_weight, "adv"), (objectives.actor_critic_weight, "q")]:
    CASES += _tensor_cases(f"objectives.{_fn.__name__}", _fn, {_w: _lp2}, {_w: "float"})
    CASES += _number_cases(f"objectives.{_fn.__name__}", _fn, {_w: _lp2},
                           {"gamma": _gamma_bad})
for _fn in [kl_estimators.kl_k1, kl_estimators.kl_k2, kl_estimators.kl_k3,
            kl_estimators.kl_k3_weight, kl_estimators.kl_weight]:
    CASES += _tensor_cases(f"kl_estimators.{_fn.__name__}", _fn, {"logp": _lp, "logp_ref": _lp},
                           {"logp": "float", "logp_ref": "float"})
_klp = {"logp": _lp, "logp_ref": _lp, "estimator": "k3", "placement": "loss"}
CASES += [
    *_tensor_cases("kl_estimators.kl_penalty", kl_estimators.kl_penalty,
                   {**_klp, "logp_old": _lp},
                   {"logp": "float", "logp_ref": "float", "logp_old": "float"}),
    *_one("kl_estimators.kl_penalty", "estimator", "unknown",
          lambda: kl_estimators.kl_penalty(**{**_klp, "estimator": "k4"})),
    *_one("kl_estimators.kl_penalty", "placement", "unknown",
          lambda: kl_estimators.kl_penalty(**{**_klp, "placement": "advantage"})),
]
_cell = {"estimator": "k3", "placement": "loss", "sampling": "on", "target": "KL(ref||pi)",
         "value": "KL(pi||ref)"}
CASES += [
    *[case for arg in ("estimator", "placement", "sampling", "target", "value")
      for case in _one("kl_table.prove_kl_cell", arg, "unknown",
                       lambda arg=arg: kl_table.prove_kl_cell(**{**_cell, arg: "k4"}))],
    *_one("kl_table.prove_kl_cell", "sampling", "not a str",
          lambda: kl_table.prove_kl_cell(**{**_cell, "sampling": 1})),
    *_one("kl_table.prove_kl_cell", "detach", "not a bool",
          lambda: kl_table.prove_kl_cell(**_cell, detach="no")),
    *_one("kl_table.prove_kl_cell", "weight_grad", "not a bool",
          lambda: kl_table.prove_kl_cell(**_cell, weight_grad=0)),
    *_one("kl_table.kl_table", "claims", "empty", lambda: kl_table.kl_table({})),
    *_one("kl_table.kl_table", "claims", "not a dict", lambda: kl_table.kl_table([1])),
    *_one("kl_table.kl_table", "claims", "bad entry",
          lambda: kl_table.kl_table({("k1", "loss"): ("0", "KL(pi||ref)")})),
    *_one("kl_table.kl_table_html", "cells", "empty", lambda: kl_table.kl_table_html([])),
    *_one("kl_table.kl_table_html", "cells", "not cells",
          lambda: kl_table.kl_table_html(["k1"])),
    *_one("kl_sequences.all_answers", "task", "not a ReverseTask",
          lambda: kl_sequences.all_answers("reverse")),
    *_one("kl_sequences.all_answers", "task", "too long to enumerate",
          lambda: kl_sequences.all_answers(tasks.ReverseTask(2, 5))),
    *_one("kl_sequences.sequence_kl", "policy", "not a TinyLM",
          lambda: kl_sequences.sequence_kl(None, tasks.TinyLM(), tasks.ReverseTask(1, 2),
                                           torch.tensor([[tasks.PAD, 3]]))),
    *_one("kl_sequences.sequence_kl", "reference", "not a TinyLM",
          lambda: kl_sequences.sequence_kl(tasks.TinyLM(), "ref", tasks.ReverseTask(1, 2),
                                           torch.tensor([[tasks.PAD, 3]]))),
    *_one("kl_sequences.sequence_kl", "prompts", "wrong width",
          lambda: kl_sequences.sequence_kl(tasks.TinyLM(), tasks.TinyLM(),
                                           tasks.ReverseTask(1, 2), torch.tensor([[3]]))),
    *_number_cases("kl_sequences.sequence_kl_demo", kl_sequences.sequence_kl_demo,
                   {"seed": 0, "scale": 0.5}, {"scale": [0.0, -1.0]}),
    *_one("kl_sequences.sequence_kl_demo", "seed", "negative",
          lambda: kl_sequences.sequence_kl_demo(seed=-1)),
    *_one("kl_sequences.SequenceKL.compare", "a", "unknown gradient",
          lambda: kl_sequences.SequenceKL({}, {"g": f64(1.0)}, 1).compare("h", "g")),
    *_one("kl_sequences.SequenceKL.compare", "b", "unknown gradient",
          lambda: kl_sequences.SequenceKL({}, {"g": f64(1.0)}, 1).compare("g", "h")),
]
_sac = {"q": _lp, "logp": _lp, "alpha": 0.2}
CASES += [
    *_tensor_cases("objectives.sac_policy", objectives.sac_policy, _sac,
                   {"q": "float", "logp": "float"}),
    *_number_cases("objectives.sac_policy", objectives.sac_policy, _sac, {"alpha": [-0.1]}),
    *_one("objectives.sac_policy", "weights", "wrong shape",
          lambda: objectives.sac_policy(**_sac, weights=f64(1.0))),
    *_tensor_cases("objectives.sac_policy_weight", objectives.sac_policy_weight, _sac,
                   {"q": "float", "logp": "float"}),
    *_number_cases("objectives.sac_policy_weight", objectives.sac_policy_weight, _sac,
                   {"alpha": [-0.1]}),
    *_one("objectives.sac_policy_weight", "baseline", "nan",
          lambda: objectives.sac_policy_weight(**_sac, baseline=torch.full((4,), NAN, dtype=D))),
    *_number_cases("objectives.adapt_kl_beta", objectives.adapt_kl_beta,
                   {"beta": 1.0, "kl": 0.01, "kl_target": 0.01},
                   {"beta": [-1.0], "kl": [-0.1], "kl_target": [0.0]}),
    *_number_cases("objectives.adapt_kl_beta", objectives.adapt_kl_beta,
                   {"beta": 1.0, "kl": 0.01, "kl_target": 0.01},
                   {"tolerance": [0.5, 1.0], "factor": [0.5, 1.0]}),
    *_tensor_cases("objectives.dpg_gradient", objectives.dpg_gradient,
                   {"policy_jacobians": torch.ones(4, 2, 3, dtype=D),
                    "action_gradients": torch.ones(4, 2, dtype=D)},
                   {"policy_jacobians": "float", "action_gradients": "float"}),
    *_one("objectives.dpg", "critic", "not callable",
          lambda: objectives.dpg(3, torch.ones(4, 2, dtype=D), torch.ones(4, 1, dtype=D))),
    *_tensor_cases("objectives.dpg", objectives.dpg,
                   {"critic": lambda s, a: (s * a).sum(-1), "states": torch.ones(4, 2, dtype=D),
                    "actions": torch.ones(4, 2, dtype=D)},
                   {"states": "float", "actions": "float"}),
    *_one("objectives.dpg", "critic", "wrong output shape",
          lambda: objectives.dpg(lambda s, a: s, torch.ones(4, 2, dtype=D),
                                 torch.ones(4, 2, dtype=D))),
]

# ---- grpo_objectives -------------------------------------------------------------------------
_g = {"logp": _lp2, "logp_old": _lp2, "logp_ref": _lp2, "adv": f64(1.0, -1.0),
      "mask": torch.ones(2, 3, dtype=torch.bool), "eps": 0.2, "beta": 0.04}
_gk = {"logp": "float", "logp_old": "float", "logp_ref": "float", "adv": "float",
       "mask": "mask"}
for _fn in [grpo_objectives.grpo, grpo_objectives.grpo_weight, grpo_objectives.grpo_sequence,
            grpo_objectives.grpo_sequence_weight, grpo_objectives.dr_grpo,
            grpo_objectives.dr_grpo_weight]:
    _q = f"grpo_objectives.{_fn.__name__}"
    CASES += _tensor_cases(_q, _fn, _g, _gk)
    CASES += _number_cases(_q, _fn, _g, {"eps": [0.0, 1.0], "beta": [-0.1]})
    CASES += _one(_q, "mask", "an empty row",
                  lambda fn=_fn: fn(**{**_g, "mask": torch.tensor([[1, 1, 1], [0, 0, 0]])}))
    CASES += _one(_q, "mask", "not 0/1",
                  lambda fn=_fn: fn(**{**_g, "mask": torch.full((2, 3), 2)}))
for _fn in [grpo_objectives.dr_grpo, grpo_objectives.dr_grpo_weight]:
    CASES += _number_cases(f"grpo_objectives.{_fn.__name__}", _fn, _g,
                           {"normalizer": [0.0, -3.0, 2.0]})
for _fn in [grpo_objectives.grpo_sequence, grpo_objectives.grpo_sequence_weight]:
    CASES += _number_cases(f"grpo_objectives.{_fn.__name__}", _fn, _g, {"eps_high": [0.0, -0.1]})
for _fn in [grpo_objectives.grpo, grpo_objectives.grpo_weight]:
    _q = f"grpo_objectives.{_fn.__name__}"
    CASES += _number_cases(_q, _fn, _g, {"eps_high": [0.0, -0.1]})
    for _arg, _bad in [("aggregation", "bnpo"), ("importance_level", "answer"),
                       ("kl_estimator", "k4"), ("kl_placement", "advantage")]:
        CASES += _one(_q, _arg, "unknown", lambda fn=_fn, a=_arg, b=_bad: fn(**{**_g, a: b}))
    CASES += _one(_q, "normalizer", "with token_mean",
                  lambda fn=_fn: fn(**_g, aggregation="token_mean", normalizer=8))
    CASES += _one(_q, "kl_ratio_weight", "not a bool",
                  lambda fn=_fn: fn(**_g, kl_ratio_weight="yes"))
    CASES += _one(_q, "kl_ratio_weight", "with the KL in the reward",
                  lambda fn=_fn: fn(**_g, kl_ratio_weight=True, kl_placement="reward"))
_v = {k: _g[k] for k in ("logp", "logp_old", "adv", "mask")}
_vk = {k: _gk[k] for k in _v}
for _fn in [grpo_objectives.dapo, grpo_objectives.dapo_weight, grpo_objectives.gspo,
            grpo_objectives.gspo_weight]:
    _q = f"grpo_objectives.{_fn.__name__}"
    CASES += _tensor_cases(_q, _fn, _v, _vk)
    CASES += _number_cases(_q, _fn, _v, {"eps": [0.0, 1.0], "eps_high": [0.0]})
_c = {**_v, "eps_high": 0.28}
for _fn in [grpo_objectives.cispo, grpo_objectives.cispo_weight]:
    _q = f"grpo_objectives.{_fn.__name__}"
    CASES += _tensor_cases(_q, _fn, _c, _vk)
    CASES += _number_cases(_q, _fn, _c, {"eps_high": [0.0, -1.0], "eps": [0.0, 1.0]})
    CASES += _one(_q, "aggregation", "unknown", lambda fn=_fn: fn(**_c, aggregation="seq"))
CASES += _tensor_cases("grpo_objectives.token_weights", grpo_objectives.token_weights,
                       {"mask": torch.ones(2, 3, dtype=torch.bool), "aggregation": "sum"},
                       {"mask": "mask"})
CASES += _one("grpo_objectives.token_weights", "aggregation", "unknown",
              lambda: grpo_objectives.token_weights(torch.ones(2, 3), "mean"))
CASES += _one("grpo_objectives.token_weights", "normalizer", "below the longest answer",
              lambda: grpo_objectives.token_weights(torch.ones(2, 3), "constant", normalizer=2))
CASES += _one("grpo_objectives.token_weights", "dtype", "an int dtype",
              lambda: grpo_objectives.token_weights(torch.ones(2, 3), "sum", dtype=torch.long))

# ---- answer_model ----------------------------------------------------------------------------
_am = answer_model.AnswerModel((0.5, 0.5), (1, 2), (1.0, 0.0))
CASES += [
    *_one("answer_model.AnswerModel", "probs", "not summing to 1",
          lambda: answer_model.AnswerModel((0.5, 0.6), (1, 2), (1.0, 0.0))),
    *_one("answer_model.AnswerModel", "lengths", "zero",
          lambda: answer_model.AnswerModel((0.5, 0.5), (1, 0), (1.0, 0.0))),
    *_one("answer_model.AnswerModel", "rewards", "nan",
          lambda: answer_model.AnswerModel((0.5, 0.5), (1, 2), (1.0, NAN))),
    *_one("answer_model.expected_step", "model", "a tuple",
          lambda: answer_model.expected_step((0.5, 0.5), 2)),
    *_one("answer_model.expected_step", "group_size", "one",
          lambda: answer_model.expected_step(_am, 1)),
    *_one("answer_model.expected_step", "advantage", "unknown",
          lambda: answer_model.expected_step(_am, 2, advantage="std")),
    *_one("answer_model.expected_step", "filter", "unknown",
          lambda: answer_model.expected_step(_am, 2, filter="skip")),
    *_one("answer_model.expected_step", "num_groups", "zero",
          lambda: answer_model.expected_step(_am, 2, num_groups=0)),
]

# ---- nets ------------------------------------------------------------------------------------
_obs = torch.zeros(5, 3)
CASES += [
    *_one("nets.MLP", "in_dim", "zero", lambda: nets.MLP(0, 2)),
    *_one("nets.MLP", "out_dim", "float", lambda: nets.MLP(2, 2.0)),
    *_one("nets.MLP", "hidden", "negative width", lambda: nets.MLP(2, 2, (4, -1))),
    *_one("nets.MLP", "hidden", "an int", lambda: nets.MLP(2, 2, 4)),
    *_one("nets.MLP", "activation", "not a Module class", lambda: nets.MLP(2, 2, (4,), torch.tanh)),
    *_one("nets.MLP", "out_gain", "nan", lambda: nets.MLP(2, 2, out_gain=NAN)),
    *_one("nets.MLP", "hidden_gain", "str", lambda: nets.MLP(2, 2, hidden_gain="1")),
    *_one("nets.MLP.forward", "x", "wrong width", lambda: nets.MLP(3, 2)(torch.zeros(5, 2))),
    *_one("nets.MLP.forward", "x", "list", lambda: nets.MLP(3, 2)([0.0, 0.0, 0.0])),
    *_one("nets.MLP.forward", "x", "nan", lambda: nets.MLP(3, 2)(torch.full((5, 3), NAN))),
    *_one("nets.MLP.forward", "x", "int dtype",
          lambda: nets.MLP(3, 2)(torch.zeros(5, 3, dtype=torch.long))),
    *_one("nets.CategoricalPolicy", "n_actions", "one", lambda: nets.CategoricalPolicy(3, 1)),
    *_one("nets.CategoricalPolicy", "obs_dim", "bool", lambda: nets.CategoricalPolicy(True, 2)),
    *_one("nets.GaussianPolicy", "act_dim", "zero", lambda: nets.GaussianPolicy(3, 0)),
    *_one("nets.GaussianPolicy", "log_std_init", "inf",
          lambda: nets.GaussianPolicy(3, 1, log_std_init=INF)),
    *_one("nets.ValueNet", "obs_dim", "zero", lambda: nets.ValueNet(0)),
    *_one("nets.DeterministicPolicy", "high", "below low",
          lambda: nets.DeterministicPolicy(3, 1, low=1.0, high=-1.0)),
    *_one("nets.DeterministicPolicy", "low", "nan",
          lambda: nets.DeterministicPolicy(3, 1, low=NAN)),
    *_one("nets.SquashedGaussianPolicy", "log_std_max", "below log_std_min",
          lambda: nets.SquashedGaussianPolicy(3, 1, log_std_min=2.0, log_std_max=-5.0)),
    *_one("nets.SquashedGaussianPolicy", "high", "wrong length",
          lambda: nets.SquashedGaussianPolicy(3, 2, low=[-1, -1], high=[1, 1, 1])),
    *_one("nets.UniformPolicy", "high", "below low", lambda: nets.UniformPolicy(1.0, -1.0)),
    *_one("nets.UniformPolicy", "low", "nan", lambda: nets.UniformPolicy(NAN, 1.0)),
    *_one("nets.UniformPolicy.dist", "obs", "list",
          lambda: nets.UniformPolicy(-1.0, 1.0).dist([0.0])),
    *_one("nets.QEnsemble", "n", "zero", lambda: nets.QEnsemble(3, 1, n=0)),
    *_one("nets.QEnsemble.forward", "act", "wrong width",
          lambda: nets.QEnsemble(3, 1)(_obs, torch.zeros(5, 2))),
    *_one("nets.QEnsemble.forward", "obs", "wrong rows",
          lambda: nets.QEnsemble(3, 1)(_obs, torch.zeros(4, 1))),
    *_one("nets.QEnsemble.member", "i", "out of range", lambda: nets.QEnsemble(3, 1).member(2)),
    *_one("nets.policy_for", "action_space", "not a Space",
          lambda: nets.policy_for(gym.spaces.Box(-1, 1, (3,)), "discrete")),
    *_one("nets.policy_for", "observation_space", "discrete",
          lambda: nets.policy_for(gym.spaces.Discrete(3), gym.spaces.Discrete(2))),
    *_one("nets.clip_to_box", "action", "nan",
          lambda: nets.clip_to_box(torch.full((2,), NAN), torch.zeros(2) - 1, torch.ones(2))),
    *_one("nets.clip_to_box", "high", "below low",
          lambda: nets.clip_to_box(torch.zeros(2), torch.ones(2), -torch.ones(2))),
    *_one("nets.clip_to_box", "low", "list",
          lambda: nets.clip_to_box(torch.zeros(2), [-1.0, -1.0], torch.ones(2))),
    *_one("nets.default_dtype", "dtype", "int", lambda: nets.default_dtype(torch.long).__enter__()),
    *_one("nets.polyak_update", "tau", "above 1",
          lambda: nets.polyak_update(nets.ValueNet(2), nets.ValueNet(2), 1.5)),
    *_one("nets.polyak_update", "tau", "str",
          lambda: nets.polyak_update(nets.ValueNet(2), nets.ValueNet(2), "0.5")),
    *_one("nets.polyak_update", "source", "other shapes",
          lambda: nets.polyak_update(nets.ValueNet(2), nets.ValueNet(3), 0.5)),
    *_one("nets.polyak_update", "target", "not a Module",
          lambda: nets.polyak_update(3, nets.ValueNet(2), 0.5)),
]
for _cls, _args in [(nets.CategoricalPolicy, (3, 2)), (nets.GaussianPolicy, (3, 1)),
                    (nets.ValueNet, (3,)), (nets.DeterministicPolicy, (3, 1)),
                    (nets.SquashedGaussianPolicy, (3, 1))]:
    _meths = [m for m in ("dist", "forward", "base", "sample", "mode") if hasattr(_cls, m)]
    for _m in _meths:
        _q = f"nets.{_cls.__name__}.{_m}"
        CASES += _one(_q, "obs", "wrong width",
                      lambda c=_cls, a=_args, m=_m: getattr(c(*a), m)(torch.zeros(5, 2)))
        CASES += _one(_q, "obs", "nan",
                      lambda c=_cls, a=_args, m=_m: getattr(c(*a), m)(torch.full((5, 3), NAN)))
        CASES += _one(_q, "obs", "list",
                      lambda c=_cls, a=_args, m=_m: getattr(c(*a), m)([[0.0] * 3]))

# ---- rollout, replay -------------------------------------------------------------------------
CASES += [
    *_one("rollout.make_envs", "env_id", "not a str", lambda: rollout.make_envs(3)),
    *_one("rollout.make_envs", "num_envs", "zero", lambda: rollout.make_envs("CartPole-v1", 0)),
    *_one("rollout.make_envs", "num_envs", "bool",
          lambda: rollout.make_envs("CartPole-v1", True)),
    *_one("rollout.Collector", "envs", "not a VectorEnv",
          lambda: rollout.Collector(gym.make("CartPole-v1"))),
    *_one("rollout.Collector", "seed", "float",
          lambda: rollout.Collector(rollout.make_envs("CartPole-v1"), 0.5)),
    *_one("rollout.Collector.collect_steps", "num_steps", "zero",
          lambda: rollout.Collector(rollout.make_envs("CartPole-v1")).collect_steps(
              nets.CategoricalPolicy(4, 2), 0)),
    *_one("rollout.Collector.collect_steps", "policy", "not callable",
          lambda: rollout.Collector(rollout.make_envs("CartPole-v1")).collect_steps(3, 5)),
    *_one("rollout.Collector.collect_episodes", "episodes", "negative",
          lambda: rollout.Collector(rollout.make_envs("CartPole-v1")).collect_episodes(
              nets.CategoricalPolicy(4, 2), -1)),
    *_one("rollout.Collector.collect_episodes", "value", "not callable",
          lambda: rollout.Collector(rollout.make_envs("CartPole-v1")).collect_episodes(
              nets.CategoricalPolicy(4, 2), 1, value=3)),
    *_one("replay.ReplayBuffer", "capacity", "zero", lambda: replay.ReplayBuffer(3, 1, 0)),
    *_one("replay.ReplayBuffer", "dtype", "int",
          lambda: replay.ReplayBuffer(3, 1, 10, torch.long)),
    *_one("replay.ReplayBuffer", "obs_dim", "float", lambda: replay.ReplayBuffer(3.0, 1)),
    *_one("replay.ReplayBuffer.sample", "batch_size", "zero",
          lambda: replay.ReplayBuffer(3, 1, 10).sample(0)),
    *_one("replay.ReplayBuffer.sample", "ReplayBuffer", "empty",
          lambda: replay.ReplayBuffer(3, 1, 10).sample(4)),
    *_one("replay.ReplayBuffer.add_batch", "batch", "a dict",
          lambda: replay.ReplayBuffer(3, 1, 10).add_batch({})),
]
_add = {"obs": torch.zeros(4, 3), "actions": torch.zeros(4, 1), "rewards": torch.zeros(4),
        "next_obs": torch.zeros(4, 3), "terminated": torch.zeros(4, dtype=torch.bool)}
CASES += _tensor_cases("replay.ReplayBuffer.add", lambda **kw: replay.ReplayBuffer(3, 1, 10).add(
    **kw), _add, {"obs": "float", "actions": "float", "rewards": "float", "next_obs": "float",
                  "terminated": "mask"})
CASES += _one("replay.ReplayBuffer.add", "terminated", "float dtype",
              lambda: replay.ReplayBuffer(3, 1, 10).add(**{**_add, "terminated": torch.zeros(4)}))

# ---- tasks -----------------------------------------------------------------------------------
_task = tasks.ReverseTask()
_prompts = _task.sample_prompts(4, torch.Generator().manual_seed(0))
_lm = tasks.TinyLM()
_answers = _task.solutions(_prompts)
CASES += [
    *_one("tasks.ReverseTask", "min_len", "zero", lambda: tasks.ReverseTask(min_len=0)),
    *_one("tasks.ReverseTask", "max_len", "below min_len",
          lambda: tasks.ReverseTask(min_len=4, max_len=3)),
    *_one("tasks.ReverseTask", "held_out_fraction", "above 1",
          lambda: tasks.ReverseTask(held_out_fraction=1.5)),
    *_one("tasks.ReverseTask", "held_out_fraction", "str",
          lambda: tasks.ReverseTask(held_out_fraction="0.2")),
    *_one("tasks.ReverseTask", "answer_budget", "below max_len + 1",
          lambda: tasks.ReverseTask(max_len=5, answer_budget=5)),
    *_one("tasks.ReverseTask", "answer_budget", "bool",
          lambda: tasks.ReverseTask(answer_budget=True)),
    *_one("tasks.ReverseTask.answer_len", "args", "takes none",
          lambda: _raises_value_error_on_args(_task.answer_len, 1)),
    *_one("tasks.ReverseTask.sample_prompts", "n", "zero", lambda: _task.sample_prompts(0)),
    *_one("tasks.ReverseTask.sample_prompts", "generator", "not a Generator",
          lambda: _task.sample_prompts(3, 7)),
    *_one("tasks.TinyLM", "d_model", "not divisible by n_heads", lambda: tasks.TinyLM(30, 4)),
    *_one("tasks.TinyLM", "n_layers", "zero", lambda: tasks.TinyLM(n_layers=0)),
    *_one("tasks.TinyLM", "max_tokens", "bool", lambda: tasks.TinyLM(max_tokens=True)),
    *_one("tasks.TinyLM.sample", "length", "zero", lambda: _lm.sample(_prompts, 0)),
    *_one("tasks.TinyLM.sample", "length", "too long", lambda: _lm.sample(_prompts, 100)),
    *_one("tasks.accuracy", "policy", "not a TinyLM",
          lambda: tasks.accuracy(nets.ValueNet(2), _task, _prompts)),
    *_one("tasks.accuracy", "task", "not a ReverseTask",
          lambda: tasks.accuracy(_lm, "reverse", _prompts)),
    *_one("tasks.supervised_warm_up", "steps", "negative",
          lambda: tasks.supervised_warm_up(_lm, _task, -1)),
    *_one("tasks.supervised_warm_up", "lr", "negative",
          lambda: tasks.supervised_warm_up(_lm, _task, 1, lr=-0.1)),
    *_one("tasks.supervised_warm_up", "batch_size", "zero",
          lambda: tasks.supervised_warm_up(_lm, _task, 1, batch_size=0)),
    *_one("tasks.ReverseTask.to_text", "tokens", "list",
          lambda: tasks.ReverseTask.to_text([[1, 2]])),
    *_one("tasks.ReverseTask.to_text", "tokens", "float",
          lambda: tasks.ReverseTask.to_text(torch.zeros(2, 3))),
    *_one("tasks.ReverseTask.answer_mask", "answers", "float",
          lambda: _task.answer_mask(_answers.double())),
    *_one("tasks.ReverseTask.answer_mask", "answers", "1-D",
          lambda: _task.answer_mask(_answers[0])),
    *_one("tasks.ReverseTask.reward", "answers", "wrong rows",
          lambda: _task.reward(_prompts, _answers[:2])),
]
for _m in ["check_prompts", "is_held_out", "solutions"]:
    CASES += _one(f"tasks.ReverseTask.{_m}", "prompts", "float",
                  lambda m=_m: getattr(_task, m)(_prompts.double()))
    CASES += _one(f"tasks.ReverseTask.{_m}", "prompts", "list",
                  lambda m=_m: getattr(_task, m)(_prompts.tolist()))
    CASES += _one(f"tasks.ReverseTask.{_m}", "prompts", "token out of range",
                  lambda m=_m: getattr(_task, m)(_prompts + 100))
for _m in ["dist", "log_probs"]:
    CASES += _one(f"tasks.TinyLM.{_m}", "answers", "float",
                  lambda m=_m: getattr(_lm, m)(_prompts, _answers.double()))
    CASES += _one(f"tasks.TinyLM.{_m}", "prompts", "list",
                  lambda m=_m: getattr(_lm, m)(_prompts.tolist(), _answers))
    CASES += _one(f"tasks.TinyLM.{_m}", "answers", "wrong rows",
                  lambda m=_m: getattr(_lm, m)(_prompts, _answers[:1]))

# ---- trust_region ----------------------------------------------------------------------------
_w = torch.ones(3, dtype=D, requires_grad=True)
_b = f64(1.0, 2.0, 3.0)


def _eye(v):
    return v


CASES += [
    *_one("trust_region.conjugate_gradient", "matvec", "wrong shape",
          lambda: trust_region.conjugate_gradient(lambda v: v[:2], _b)),
    *_one("trust_region.conjugate_gradient", "matvec", "nan",
          lambda: trust_region.conjugate_gradient(lambda v: v * NAN, _b)),
    *_one("trust_region.conjugate_gradient", "matvec", "not positive definite",
          lambda: trust_region.conjugate_gradient(lambda v: -v, _b)),
    *_one("trust_region.conjugate_gradient", "matvec", "not callable",
          lambda: trust_region.conjugate_gradient(3, _b)),
    *_tensor_cases("trust_region.conjugate_gradient", trust_region.conjugate_gradient,
                   {"matvec": _eye, "b": _b}, {"b": "float"}),
    *_one("trust_region.conjugate_gradient", "iters", "zero",
          lambda: trust_region.conjugate_gradient(_eye, _b, iters=0)),
    *_number_cases("trust_region.conjugate_gradient", trust_region.conjugate_gradient,
                   {"matvec": _eye, "b": _b}, {"tol": [-1.0]}),
    *_one("trust_region.fisher_vector_product", "kl", "no graph",
          lambda: trust_region.fisher_vector_product((_w**2).sum().detach(), [_w])),
    *_one("trust_region.fisher_vector_product", "kl", "not a scalar",
          lambda: trust_region.fisher_vector_product(_w**2, [_w])),
    *_one("trust_region.fisher_vector_product", "kl", "linear in params",
          lambda: trust_region.fisher_vector_product(_w.sum(), [_w])),
    *_one("trust_region.fisher_vector_product", "params", "empty",
          lambda: trust_region.fisher_vector_product((_w**2).sum(), [])),
    *_number_cases("trust_region.fisher_vector_product", trust_region.fisher_vector_product,
                   {"kl": (_w**2).sum(), "params": [_w]}, {"damping": [-0.1]}),
    *_one("trust_region.fisher_vector_product", "v", "wrong length",
          lambda: trust_region.fisher_vector_product((_w**2).sum(), [_w])(f64(1.0))),
    *_one("trust_region.flat_grad", "output", "not a scalar",
          lambda: trust_region.flat_grad(_w * 2, [_w])),
    *_one("trust_region.flat_grad", "output", "no graph",
          lambda: trust_region.flat_grad((_w**2).sum().detach(), [_w])),
    *_one("trust_region.flat_grad", "params", "no grad",
          lambda: trust_region.flat_grad((_w**2).sum(), [torch.ones(2)])),
    *_tensor_cases("trust_region.trust_region_step", trust_region.trust_region_step,
                   {"g": _b, "fvp": _eye, "max_kl": 0.01}, {"g": "float"}),
    *_number_cases("trust_region.trust_region_step", trust_region.trust_region_step,
                   {"g": _b, "fvp": _eye, "max_kl": 0.01}, {"max_kl": [0.0, -1.0]}),
    *_one("trust_region.trust_region_step", "g", "zero",
          lambda: trust_region.trust_region_step(torch.zeros(3, dtype=D), _eye, 0.01)),
    *_one("trust_region.trust_region_step", "cg_iters", "zero",
          lambda: trust_region.trust_region_step(_b, _eye, 0.01, cg_iters=0)),
    *_one("trust_region.conjugate_gradient", "x0", "wrong length",
          lambda: trust_region.conjugate_gradient(_eye, _b, x0=_b[:2])),
    *_one("trust_region.line_search", "full_step", "wrong length",
          lambda: trust_region.line_search([_w], f64(1.0, 2.0, 3.0, 4.0), lambda: (0.0, 1.0),
                                           0.01)),
    *_one("trust_region.line_search", "trial", "not callable",
          lambda: trust_region.line_search([_w], torch.zeros_like(_w), 3, 0.01)),
    *_number_cases("trust_region.line_search", trust_region.line_search,
                   {"params": [_w], "full_step": torch.zeros(3, dtype=D),
                    "trial": lambda: (0.0, 1.0), "max_kl": 0.01},
                   {"max_kl": [0.0], "shrink": [0.0, 1.0], "steps": [0]}),
    *_one("trust_region.unflatten", "flat", "wrong size",
          lambda: trust_region.unflatten(_b, {"w": torch.Size([2])})),
    *_one("trust_region.unflatten", "shapes", "a list",
          lambda: trust_region.unflatten(_b, [(3,)])),
    *_one("trust_region.unflatten", "flat", "2-D",
          lambda: trust_region.unflatten(_b[None], {"w": torch.Size([3])})),
]

# ---- history, plot ---------------------------------------------------------------------------
_h = history.History()


def _sac_config():
    from pgbook.algos import sac

    return sac.Config(total_steps=10_000, target=-200.0, target_window=10)


CASES += [
    *_one("history.trailing_means", "window", "zero", lambda: history.trailing_means([1, 2], 0)),
    *_one("history.trailing_means", "values", "2-D",
          lambda: history.trailing_means([[1, 2]], 1)),
    *_one("history.trailing_means", "values", "strings",
          lambda: history.trailing_means(["a", "b"], 1)),
    *_one("history.trailing_means", "values", "nan",
          lambda: history.trailing_means([1.0, NAN], 1)),
    *_one("history.History.add_episodes", "returns", "lengths differ",
          lambda: history.History().add_episodes([1.0], [1, 2], [1])),
    *_one("history.History.add_episodes", "returns", "nan",
          lambda: history.History().add_episodes([NAN], [1], [1])),
    *_one("history.History.add_episodes", "lengths", "negative",
          lambda: history.History().add_episodes([1.0], [-1], [1])),
    *_one("history.History.add_episodes", "end_steps", "float",
          lambda: history.History().add_episodes([1.0], [1], [1.5])),
    *_one("history.History.add_batch_episodes", "batch", "a dict",
          lambda: history.History().add_batch_episodes({}, 0)),
    *_one("history.History.add_batch_episodes", "steps_before", "negative",
          lambda: history.History().add_batch_episodes(None, -1)),
    *_one("history.History.log", "loss", "str", lambda: history.History().log(loss="x")),
    *_one("history.History.log", "loss", "tensor of 2",
          lambda: history.History().log(loss=torch.ones(2))),
    *_one("history.History.finish", "env_steps", "negative",
          lambda: history.History().finish(-1)),
    *_one("history.History.finish", "env_steps", "float", lambda: history.History().finish(2.5)),
    *_one("history.History.last_mean", "window", "zero", lambda: _h.last_mean(0)),
    *_one("history.History.reached", "target", "nan", lambda: _h.reached(NAN)),
    *_one("history.History.reached", "window", "float", lambda: _h.reached(1.0, 2.5)),
    *_one("history.History.best_mean", "window", "zero", lambda: _h.best_mean(0)),
    *_one("history.History.seconds", "args", "takes none",
          lambda: _raises_value_error_on_args(_h.seconds, 1)),
    *_one("history.History.target_reached", "args", "takes none",
          lambda: _raises_value_error_on_args(_h.target_reached, 1)),
    *_one("history.History", "env_id", "not a str", lambda: history.History(env_id=3)),
    *_one("stored_runs.load", "name", "path-like", lambda: stored_runs.load("../x")),
    *_one("stored_runs.load", "name", "unknown", lambda: stored_runs.load("no_such_run")),
    *_one("stored_runs.save", "histories", "empty",
          lambda: stored_runs.save("x", [], env_id="e", target=1.0, window=1, note="",
                                   provenance={})),
    *_one("stored_runs.save", "name", "int",
          lambda: stored_runs.save(3, [_h], env_id="e", target=1.0, window=1, note="",
                                   provenance={})),
    *_one("stored_runs.StoredRuns.check_config", "config", "a dict",
          lambda: stored_runs.load("sac_ch11").check_config({})),
    *_one("stored_runs.StoredRuns.check_config", "config", "another total_steps",
          lambda: stored_runs.load("sac_ch11").check_config(
              dataclasses.replace(_sac_config(), total_steps=9))),
    *_one("plot.learning_curve", "histories", "empty", lambda: plot.learning_curve([])),
    *_one("plot.learning_curve", "band", "unknown",
          lambda: plot.learning_curve([_h], band="quartiles")),
    *_one("plot.learning_curve", "window", "zero", lambda: plot.learning_curve([_h], window=0)),
    *_one("plot.learning_curve", "target", "nan", lambda: plot.learning_curve([_h], target=NAN)),
    *_one("plot.learning_curve", "x", "unknown", lambda: plot.learning_curve([_h], x="hours")),
    *_one("plot.learning_curve", "center", "unknown",
          lambda: plot.learning_curve([_h], center="mode")),
    *_one("plot.objective_curves", "curves", "empty", lambda: plot.objective_curves({})),
    *_one("plot.objective_curves", "curves", "nan",
          lambda: plot.objective_curves({"J": [1.0, NAN]})),
    *_one("plot.objective_curves", "target", "str",
          lambda: plot.objective_curves({"J": [1.0]}, target="1")),
    *_one("plot.diagram", "width", "negative", lambda: plot.diagram(-1.0)),
    *_one("plot.diagram", "height", "nan", lambda: plot.diagram(3.0, NAN)),
    *_one("plot.box", "ax", "not an Axes", lambda: plot.box(None, 0, 0, "x")),
    *_one("plot.box", "width", "negative",
          lambda: plot.box(plot.diagram()[1], 0, 0, "x", width=-1)),
    *_one("plot.box", "x", "nan", lambda: plot.box(plot.diagram()[1], NAN, 0, "x")),
    *_one("plot.arrow", "start", "not a point",
          lambda: plot.arrow(plot.diagram()[1], (0,), (1, 1))),
    *_one("plot.arrow", "ax", "not an Axes", lambda: plot.arrow(None, (0, 0), (1, 1))),
    *_one("plot.styled", "args", "takes none",
          lambda: _raises_value_error_on_args(plot.styled, 1)),
    *_one("plot.use_style", "args", "takes none",
          lambda: _raises_value_error_on_args(plot.use_style, 1)),
]


def _raises_value_error_on_args(fn, *args):
    """A function that takes no arguments: calling it with one is a TypeError from Python
    itself, which names the function; there is nothing to validate. Re-raised as ValueError
    naming 'args' so the table can list the function."""
    try:
        fn(*args)
    except TypeError as err:
        raise ValueError(f"args: {err}") from None


_DI = descendant_identities
CASES += [
    *_one("table.descendant_identities.aggregation_identity", "aggregation", "unknown",
          lambda: _DI.aggregation_identity("mean", "constant")),
    *_one("table.descendant_identities.aggregation_identity", "claimed", "unknown",
          lambda: _DI.aggregation_identity("constant", "sum")),
    *_one("table.descendant_identities.dr_grpo_identity", "claimed", "token_mean",
          lambda: _DI.dr_grpo_identity("token_mean")),
    *_one("table.descendant_identities.dapo_identity", "indicator", "unknown",
          lambda: _DI.dapo_identity("higher")),
    *_one("table.descendant_identities.gspo_identity", "ratio", "unknown",
          lambda: _DI.gspo_identity("answer")),
    *_one("table.descendant_identities.cispo_identity", "stop_gradient", "not a bool",
          lambda: _DI.cispo_identity(1)),
    *_one("table.descendant_identities.rloo_identity", "baseline", "unknown",
          lambda: _DI.rloo_identity("mean")),
    *_one("table.descendants.descendant_rows", "args", "takes none",
          lambda: _raises_value_error_on_args(descendants.descendant_rows, 1)),
]

# ---- conformance -----------------------------------------------------------------------------
def _loss(*x):
    return x[0].sum()


_rtol_bad = {"rtol": [0.0, -1.0]}
CASES += [
    *_one("conformance.assert_conforms", "report", "not a report",
          lambda: conformance.assert_conforms(True)),
    *_one("conformance.check_ppo_clip", "loss_fn", "not callable",
          lambda: conformance.check_ppo_clip("loss")),
    *_one("conformance.check_ppo_clip", "sign", "unknown",
          lambda: conformance.check_ppo_clip(_loss, sign="minimise")),
    *_one("conformance.check_ppo_clip", "reduction", "unknown",
          lambda: conformance.check_ppo_clip(_loss, reduction="max")),
    *_number_cases("conformance.check_ppo_clip", conformance.check_ppo_clip,
                   {"loss_fn": _loss}, {"eps": [0.0, 1.0], "eps_high": [0.0], **_rtol_bad}),
    *_one("conformance.check_gae", "fn", "not callable", lambda: conformance.check_gae(None)),
    *_one("conformance.check_gae", "layout", "unknown",
          lambda: conformance.check_gae(_loss, layout="row_major")),
    *_one("conformance.check_gae", "check_grad", "not a bool",
          lambda: conformance.check_gae(_loss, check_grad="yes")),
    *_number_cases("conformance.check_gae", conformance.check_gae, {"fn": _loss},
                   {"gamma": [-0.1, 1.5], "lam": [-0.1, 1.5]}),
    *_one("conformance.check_grpo_loss", "loss_fn", "not callable",
          lambda: conformance.check_grpo_loss(1)),
    *_one("conformance.check_grpo_loss", "loss_type", "unknown",
          lambda: conformance.check_grpo_loss(_loss, loss_type="ppo")),
    *_one("conformance.check_grpo_loss", "kl_ratio_weight", "not a bool",
          lambda: conformance.check_grpo_loss(_loss, kl_ratio_weight=1)),
    *_one("conformance.check_grpo_loss", "max_completion_length", "missing for dr_grpo",
          lambda: conformance.check_grpo_loss(_loss, loss_type="dr_grpo")),
    *_one("conformance.check_grpo_loss", "max_completion_length", "shorter than the answers",
          lambda: conformance.check_grpo_loss(_loss, loss_type="dr_grpo",
                                              max_completion_length=2)),
    *_one("conformance.check_grpo_loss", "max_completion_length", "without dr_grpo",
          lambda: conformance.check_grpo_loss(_loss, max_completion_length=8)),
    *_one("conformance.check_grpo_loss", "kl_estimator", "unknown",
          lambda: conformance.check_grpo_loss(_loss, kl_estimator="k4")),
    *_one("conformance.check_grpo_loss", "mask_dtype", "long",
          lambda: conformance.check_grpo_loss(_loss, mask_dtype=torch.long)),
    *_number_cases("conformance.check_grpo_loss", conformance.check_grpo_loss,
                   {"loss_fn": _loss}, {"beta": [-0.1], "eps": [1.0]}),
    *_one("conformance.check_kl_penalty", "fn", "not callable",
          lambda: conformance.check_kl_penalty([])),
    *_one("conformance.check_kl_penalty", "estimator", "unknown",
          lambda: conformance.check_kl_penalty(_loss, estimator="k4")),
    *_one("conformance.check_kl_penalty", "placement", "unknown",
          lambda: conformance.check_kl_penalty(_loss, placement="advantage")),
    *_one("conformance.check_kl_penalty", "reduction", "unknown",
          lambda: conformance.check_kl_penalty(_loss, reduction="max")),
    *_one("conformance.check_kl_penalty", "importance_weighted", "not a bool",
          lambda: conformance.check_kl_penalty(_loss, importance_weighted=1)),
    *_one("conformance.check_group_advantages", "fn", "not callable",
          lambda: conformance.check_group_advantages(0)),
    *_one("conformance.check_group_advantages", "unbiased", "not a bool",
          lambda: conformance.check_group_advantages(_loss, unbiased="no")),
    *_number_cases("conformance.check_group_advantages", conformance.check_group_advantages,
                   {"fn": _loss}, {"eps": [-1.0], **_rtol_bad}),
    *_one("conformance.check_group_advantages", "baseline", "unknown",
          lambda: conformance.check_group_advantages(_loss, baseline="median")),
    *_one("conformance.check_group_advantages", "scale_by_std", "with leave_one_out",
          lambda: conformance.check_group_advantages(_loss, baseline="leave_one_out")),
    *_one("conformance.check_group_advantages", "seed", "negative",
          lambda: conformance.check_group_advantages(_loss, seed=-1)),
    *_number_cases("conformance.batteries.ppo_cases", batteries.ppo_cases, {},
                   {"eps": [0.0, 1.0], "eps_high": [-0.1]}),
    *_one("conformance.batteries.ppo_cases", "n", "too few",
          lambda: batteries.ppo_cases(n=2)),
    *_one("conformance.batteries.gae_cases", "T", "too short", lambda: batteries.gae_cases(T=2)),
    *_one("conformance.batteries.gae_cases", "seed", "float",
          lambda: batteries.gae_cases(seed=0.5)),
    *_number_cases("conformance.batteries.grpo_cases", batteries.grpo_cases, {},
                   {"eps": [0.0, 1.0]}),
    *_one("conformance.batteries.kl_cases", "importance_weighted", "not a bool",
          lambda: batteries.kl_cases(importance_weighted="yes")),
    *_one("conformance.batteries.group_cases", "seed", "negative",
          lambda: batteries.group_cases(-1)),
    *_number_cases("conformance.batteries.exact_log_ratio", batteries.exact_log_ratio, {},
                   {"r": [0.0, -1.0]}),
]

# ---- libraries.trl_grpo (validation runs before TRL or transformers is imported) -----------
CASES += [
    *_number_cases("libraries.trl_grpo.compare_loss", trl_grpo.compare_loss,
                   {"loss_type": "grpo"}, {"beta": [-0.1], "temperature": [0.0]}),
    *_one("libraries.trl_grpo.compare_loss", "loss_type", "unknown",
          lambda: trl_grpo.compare_loss("ppo")),
    *_one("libraries.trl_grpo.compare_loss", "variant", "unknown",
          lambda: trl_grpo.compare_loss("grpo", variant="wrong")),
    *_one("libraries.trl_grpo.compare_loss", "importance_level", "unknown",
          lambda: trl_grpo.compare_loss("grpo", importance_level="answer")),
    *_one("libraries.trl_grpo.compare_loss", "max_completion_length", "shorter than batch",
          lambda: trl_grpo.compare_loss("dr_grpo", max_completion_length=3)),
    *_one("libraries.trl_grpo.compare_group_advantages", "scale_rewards", "batch",
          lambda: trl_grpo.compare_group_advantages("batch")),
    *_one("libraries.trl_grpo.compare_group_advantages", "unbiased", "not a bool",
          lambda: trl_grpo.compare_group_advantages(unbiased="yes")),
    *_one("libraries.trl_logps.k3_gradient_exact", "vocab", "one token",
          lambda: trl_logps.k3_gradient_exact(1)),
    *_one("libraries.trl_grpo.tiny_lm", "seed", "negative", lambda: trl_grpo.tiny_lm(-1)),
    *_number_cases("libraries.trl_logps.trl_grpo_loss_fn", trl_logps.trl_grpo_loss_fn,
                   {"loss_type": "grpo"}, {"eps": [0.0, 1.0], "beta": [-1.0]}),
    *_one("libraries.trl_logps.trl_grpo_loss_fn", "loss_type", "cispo",
          lambda: trl_logps.trl_grpo_loss_fn("cispo")),
    *_one("libraries.trl_logps.conformance_report", "stated", "unknown",
          lambda: trl_logps.conformance_report("grpo", stated="gspo")),
    *_one("libraries.trl_logps.conformance_report", "bias_correction_kl", "not a bool",
          lambda: trl_logps.conformance_report("grpo", bias_correction_kl="yes")),
    *_one("libraries.trl_logps.k3_gradient_exact", "bias_correction_kl", "not a bool",
          lambda: trl_logps.k3_gradient_exact(4, bias_correction_kl=1)),
    *_one("libraries.trl_grpo.compare_loss", "bias_correction_kl", "not a bool",
          lambda: trl_grpo.compare_loss("grpo", bias_correction_kl="no")),
]

# ---- libraries (the float32-default decorator) --------------------------------------------
CASES += _one("libraries.torch_defaults", "fn", "not callable",
              lambda: libraries.torch_defaults(3))

# ---- libraries.sb3_trpo (number arguments are checked before sb3-contrib is called) ---------
CASES += [
    *_number_cases("libraries.sb3_trpo.compare_conjugate_gradient",
                   sb3_trpo.compare_conjugate_gradient, {}, {"condition": [0.5], "dim": [1]}),
    *_one("libraries.sb3_trpo.compare_conjugate_gradient", "variant", "unknown",
          lambda: sb3_trpo.compare_conjugate_gradient(variant="wrong")),
    *_number_cases("libraries.sb3_trpo.compare_hessian_vector_product",
                   sb3_trpo.compare_hessian_vector_product, {}, {"moved": [-1.0],
                                                                 "n_states": [0]}),
    *_one("libraries.sb3_trpo.compare_hessian_vector_product", "variant", "unknown",
          lambda: sb3_trpo.compare_hessian_vector_product(variant="wrong")),
    *_number_cases("libraries.sb3_trpo.compare_trpo_step", sb3_trpo.compare_trpo_step, {},
                   {"target_kl": [0.0], "n_steps": [1]}),
    *_one("libraries.sb3_trpo.compare_trpo_step", "variant", "unknown",
          lambda: sb3_trpo.compare_trpo_step(variant="wrong")),
]

# Public names with no bad-input row, and why. Anything else without a row fails the meta-test.
# ---- libraries.sb3, libraries.sb3_ppo (SB3 2.9.2; nothing runs SB3 before the bad argument) --
_T2 = torch.tensor([[0.5, -0.25], [1.0, 0.125], [0.0, 2.0]], dtype=D)
_F2 = torch.tensor([[False, False], [True, False], [False, True]])
CASES += [
    *_tensor_cases("libraries.sb3.gae_tolerance", sb3.gae_tolerance,
                   {"rewards": _T2, "values": _T2, "next_values": _T2},
                   {"rewards": "float", "values": "float", "next_values": "float"}),
    *_tensor_cases("libraries.sb3.sb3_gae", sb3.sb3_gae,
                   {"rewards": _T2, "values": _T2, "episode_starts": _F2,
                    "last_values": f64(0.5, 1.0), "dones": torch.tensor([True, False]),
                    "gamma": 0.9, "lam": 0.8},
                   {"rewards": "float", "values": "float", "episode_starts": "mask"}),
    *_number_cases("libraries.sb3.sb3_gae", sb3.sb3_gae,
                   {"rewards": _T2, "values": _T2, "episode_starts": _F2,
                    "last_values": f64(0.5, 1.0), "dones": torch.tensor([True, False]),
                    "gamma": 0.9, "lam": 0.8},
                   {"gamma": [-0.1, 1.5], "lam": [-0.1, 1.5]}),
    *_one("libraries.sb3.sb3_gae", "last_values", "wrong shape",
          lambda: sb3.sb3_gae(_T2, _T2, _F2, f64(0.5), torch.tensor([True, False]),
                                  0.9, 0.8)),
    *_tensor_cases("libraries.sb3.sb3_gae_fn", sb3.sb3_gae_fn,
                   {"rewards": _T2, "values": _T2, "terminated": _F2, "truncated": _F2,
                    "next_values": _T2, "gamma": 0.9, "lam": 0.8},
                   {"rewards": "float", "next_values": "float", "terminated": "mask",
                    "truncated": "mask"}),
    *_number_cases("libraries.sb3.sb3_gae_fn", sb3.sb3_gae_fn,
                   {"rewards": _T2, "values": _T2, "terminated": _F2, "truncated": _F2,
                    "next_values": _T2, "gamma": 0.9, "lam": 0.8},
                   {"gamma": [-0.1, 1.5]}),
    *_number_cases("libraries.sb3.compare_gae", sb3.compare_gae, {},
                   {"gamma": [-0.1, 1.5], "lam": [1.5]}),
    *_one("libraries.sb3.compare_gae", "n_rollouts", "zero",
          lambda: sb3.compare_gae(n_rollouts=0)),
    *_one("libraries.sb3.compare_gae", "variant", "unknown",
          lambda: sb3.compare_gae(variant="cross")),
    *_one("libraries.sb3.compare_gae", "truncation", "str",
          lambda: sb3.compare_gae(truncation="yes")),
    *_number_cases("libraries.sb3.compare_collect_rollouts", sb3.compare_collect_rollouts,
                   {}, {"gamma": [1.5], "lam": [-0.1], "value_bias": []}),
    *_one("libraries.sb3.compare_collect_rollouts", "variant", "unknown",
          lambda: sb3.compare_collect_rollouts(variant="x")),
    *_one("libraries.sb3.compare_collect_rollouts", "n_steps", "one",
          lambda: sb3.compare_collect_rollouts(n_steps=1)),
    *_number_cases("libraries.sb3_ppo.compare_ppo_gradient", sb3_ppo.compare_ppo_gradient,
                   {}, {"eps": [0.0, 0.7]}),
    *_one("libraries.sb3_ppo.compare_ppo_gradient", "variant", "unknown",
          lambda: sb3_ppo.compare_ppo_gradient(variant="clip")),
    *_one("libraries.sb3_ppo.compare_ppo_gradient", "normalize_advantage", "str",
          lambda: sb3_ppo.compare_ppo_gradient(normalize_advantage="yes")),
    *_one("libraries.sb3_ppo.compare_ppo_gradient", "n_steps", "too few",
          lambda: sb3_ppo.compare_ppo_gradient(n_steps=2)),
]

EXEMPT = {
    "piecewise.ClipDerivativeProof": "a result record built only by prove_clip_derivative",
    "mdp.SampledTrajectories": "a result record built by TabularMDP.sample (checked where used)",
    "mdp.TrajectoryTable": "a result record built by TabularMDP.trajectories",
    "mdp.TabularMDP.trajectories": "a cached property, no arguments",
    "mdp_exact.ExactMethods": "a mix-in; its methods are listed",
    "checks.ErrorReport.passed": "a property", "checks.ErrorReport.rounded": "no arguments",
    "checks.IntervalReport.covered": "a property",
    "checks.IntervalReport.all_covered": "a property",
    "rollout.Batch": "a result record built by Collector",
    "rollout.Batch.num_steps": "a property", "rollout.Batch.num_envs": "a property",
    "rollout.Batch.env_steps": "a property", "rollout.Batch.dones": "a property",
    "replay.Transitions": "a NamedTuple result of ReplayBuffer.sample",
    "tasks.EOS": "a constant", "tasks.PAD": "a constant", "tasks.SEP": "a constant",
    "history.Reached": "a NamedTuple result of History.reached",
    "kl_estimators.ESTIMATORS": "a constant",
    "grpo_objectives.AGGREGATIONS": "a constant",
    "grpo_objectives.IMPORTANCE_LEVELS": "a constant",
    "answer_model.ADVANTAGES": "a constant", "answer_model.FILTERS": "a constant",
    "answer_model.ExpectedStep": "a result record built by expected_step",
    "answer_model.AnswerModel.true_gradient_coefficients": "no arguments",
    "answer_model.AnswerModel.score_matrix": "no arguments",
    "answer_model.AnswerModel.J": "a property",
    "kl_estimators.PLACEMENTS": "a constant",
    "kl_table.GRADIENT_TARGETS": "a constant", "kl_table.VALUE_TARGETS": "a constant",
    "kl_table.KL_TABLE": "a constant", "kl_table.SAMPLINGS": "a constant",
    "kl_table.KLCell": "a result record built by kl_table.prove_kl_cell",
    "kl_table.KLCell.key": "a property",
    "kl_sequences.SequenceKL": "a result record built by kl_sequences.sequence_kl",
    "stored_runs.CURVES_DIR": "a constant",
    "stored_runs.StoredRuns": "a record built by stored_runs.load",
    "plot.STYLE": "a constant", "plot.PALETTE": "a constant",
    "plot.LINESTYLES": "a constant", "plot.Box": "a result record built by plot.box",
    "table.descendant_identities.AGGREGATION_CLAIMS": "a constant",
    "table.descendants.ANSWERS": "a constant (the rows' Setting)",
    "table.descendants.EPS_HIGH": "a constant", "table.descendants.GROUP": "a constant",
    "table.descendants.GROUP_SIZE": "a constant", "table.descendants.GSPO_EPS": "a constant",
    "table.descendants.GSPO_EPS_HIGH": "a constant",
    "conformance.LOSS_TYPES": "a constant",
    "conformance.CaseResult": "a result record built by the conformance checks",
    "conformance.ConformanceReport": "a result record built by the conformance checks",
    "conformance.ConformanceReport.passed": "a property",
    "conformance.ConformanceReport.failures": "a property",
    "conformance.ConformanceReport.failing_regions": "a property",
    "conformance.batteries.GRPO_WIDTH": "a constant",
    "conformance.batteries.Case": "a record built by the batteries",
    "libraries.trl_grpo.LOSS_TYPES": "a constant", "libraries.trl_grpo.VARIANTS": "a constant",
    "libraries.trl_grpo.LossComparison": "a result record built by compare_loss",
    "libraries.trl_grpo.LossComparison.passed": "a property",
    "libraries.trl_grpo.LossComparison.ratio": "a property",
    "libraries.trl_grpo.AdvantageComparison": "a result record built by "
                                              "compare_group_advantages",
    "libraries.trl_grpo.AdvantageComparison.passed": "a property",
    "libraries.trl_grpo.AdvantageComparison.ratio": "a property",
    "libraries.trl_logps.KLGradient": "a result record built by k3_gradient_exact",
    "libraries.trl_logps.KLGradient.passed": "a property",
    "libraries.trl_logps.KLGradient.ratio": "a property",
    "libraries.trl_logps.KLGradient.wrong_ratio": "a property",
    "libraries.trl_logps.KLGradient.direction": "a property",
    "libraries.trl_logps.CONFORMANCE_LOSS_TYPES": "a constant",
    "libraries.trl_grpo.ADVANTAGE_LINES": "a constant",
    "libraries.trl_grpo.stand_in": "builds the stand-in trainer for the module's comparisons "
                                   "and trl_logps; its callers validate every argument",
    "libraries.Agreement": "a result record built by Agreement.of",
    "libraries.Agreement.of": "builds the record from two tensors the comparison computed",
    "libraries.Agreement.passed": "a property", "libraries.Agreement.ratio": "a property",
    "libraries.sb3.SCRIPTS": "a constant", "libraries.sb3.TIME_LIMIT": "a constant",
    "libraries.sb3.U32": "a constant",
    "libraries.sb3.GaeComparison": "a result record built by the comparisons",
    "libraries.sb3.GaeComparison.passed": "a property",
    "libraries.sb3.GaeComparison.ratio": "a property",
    "libraries.sb3.RolloutComparison": "a result record built by compare_collect_rollouts",
    "libraries.sb3_ppo.PPO_VARIANTS": "a constant", "libraries.sb3_ppo.RATIOS": "a constant",
}


def _public_names():
    """module.name for every name in each module's __all__, and module.Class.method for the
    public methods (and properties) defined on each of its classes."""
    names = []
    for mod_name in MODULES:
        mod = importlib.import_module(f"pgbook.{mod_name}")
        for name in mod.__all__:
            names.append(f"{mod_name}.{name}")
            obj = getattr(mod, name)
            if inspect.isclass(obj) and obj.__module__ == mod.__name__:
                for meth, value in vars(obj).items():
                    if not meth.startswith("_") and (
                            callable(value) or isinstance(value, property | classmethod
                                                          | staticmethod)
                            or type(value).__name__ == "cached_property"):
                        if not (inspect.isclass(obj) and _is_field(obj, meth)):
                            names.append(f"{mod_name}.{name}.{meth}")
    return names


def _is_field(cls, name):
    fields = getattr(cls, "__dataclass_fields__", {}) or {}
    return name in fields or name in getattr(cls, "_fields", ())


def _id(case):
    qualname, arg, label, _ = case
    return f"{qualname}[{arg}:{label}]"


#: Generated rows whose "bad" input is in fact valid, and why. They are dropped from CASES; an
#: entry that matches no generated row fails the meta-test.
EXEMPT_CASES = {
    "checks.exact_log[values:extra-dim]": "exact_log is elementwise: a (1, 1, 2) tensor is as "
                                          "valid as a (2,) one (and it has no other argument "
                                          "for the shape to disagree with)",
}
_GENERATED = {_id(c) for c in CASES}
CASES = [c for c in CASES if _id(c) not in EXEMPT_CASES]


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_bad_input_raises_value_error_naming_the_argument(case):
    qualname, arg, label, call = case
    with pytest.raises(ValueError) as err:
        call()
    assert arg in str(err.value), f"{qualname} ({label}): message does not name {arg!r}: " \
                                  f"{err.value}"


def test_every_public_function_has_a_bad_input_case():
    covered = {c[0] for c in CASES}
    missing = [n for n in _public_names() if n not in covered and n not in EXEMPT]
    assert not missing, f"public names with no bad-input case in CASES (or reason in EXEMPT): " \
                        f"{missing}"
    stale = [n for n in EXEMPT if n in covered]
    assert not stale, f"EXEMPT names that do have cases: {stale}"
    stale_cases = [c for c in EXEMPT_CASES if c not in _GENERATED]
    assert not stale_cases, f"EXEMPT_CASES entries that match no generated row: {stale_cases}"


def test_the_table_is_large_and_generated_cases_spoil_one_argument():
    assert len({c[0] for c in CASES}) >= 150
    assert len(CASES) >= 600
    assert math.isnan(NAN) and np.isinf(INF)
