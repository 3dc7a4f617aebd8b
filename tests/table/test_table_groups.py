"""pgbook.table.groups: every row is what the book claims, and a wrong weight is caught."""

import dataclasses

import pytest

from pgbook import table
from pgbook.kl_estimators import kl_k3_weight
from pgbook.objectives import a2c_weight, actor_critic_weight
from pgbook.table.settings import book_mdp

KEYS = [r.key for r in table.rows()]


@pytest.mark.parametrize("key", KEYS)
def test_row_autograd_as_claimed(key):
    rep = table.check(table.row(key), n=6, seed=3, sympy=False)
    assert rep.holds == rep.row.holds, rep
    assert rep.as_claimed
    if rep.row.holds:
        assert rep.error.max_abs_err < rep.row.atol
    else:  # a source form fails by a visible margin, not by rounding
        assert rep.error.max_abs_err > 1e-3


def test_keys_unique_and_source_rows_paired():
    assert len(set(KEYS)) == len(KEYS) == 32
    for r in table.rows():
        if r.form == "source":
            assert any(o.algorithm == r.algorithm and o.holds for o in table.rows()), r.key


def test_rows_are_built_once():
    assert table.rows() is table.rows()


def test_dropping_the_entropy_or_gamma_from_sac_fails():
    mdp, row = book_mdp(), table.row("sac")

    def no_gamma(th, alpha, *_):
        a = float(alpha)
        return a2c_weight(mdp.along_trajectories(mdp.q_values(th, alpha=a))
                          - a * mdp.action_log_probs(th)
                          - mdp.along_trajectories(mdp.state_values(th, alpha=a))[:, :-1])

    def no_entropy(th, alpha, *_):
        a = float(alpha)
        return a2c_weight(mdp.along_trajectories(mdp.q_values(th, alpha=a))
                          - mdp.along_trajectories(mdp.state_values(th, alpha=a))[:, :-1],
                          gamma=mdp.gamma)

    for weight in (no_gamma, no_entropy):
        assert not table.check(dataclasses.replace(row, weight=weight), n=4, sympy=False).holds


def test_dropping_gamma_from_actor_critic_fails():
    mdp, row = book_mdp(), table.row("ac")
    no_gamma = dataclasses.replace(row, weight=lambda th, *_: actor_critic_weight(
        mdp.along_trajectories(mdp.q_values(th))))
    assert not table.check(no_gamma, n=4, sympy=False).holds


def test_flipping_the_k3_direction_fails():
    row = table.row("kl-k3")  # the k3 weight belongs to KL(pi_ref || pi), not KL(pi || pi_ref)
    flipped = dataclasses.replace(row, objective=table.row("kl-k3-src").objective)
    assert not table.check(flipped, n=4, sympy=False).holds
    swapped = dataclasses.replace(row, weight=lambda z, z_ref, beta: -beta * kl_k3_weight(
        z_ref.log_softmax(-1), z.log_softmax(-1)))
    assert not table.check(swapped, n=4, sympy=False).holds


def test_check_all_checks_every_row_in_order():
    reps = table.check_all(n=1, sympy=False)
    assert [rep.row.key for rep in reps] == KEYS
    assert all(rep.as_claimed for rep in reps)


@pytest.mark.parametrize("key", ["grpo-seq", "grpo-tok"])
def test_a_kl_sign_flipped_in_objective_and_weight_alike_fails(key):
    """The same mistake in the objective and its weight agrees with itself; the row's
    hand-written reference Psi does not (issue 12: library code against library code)."""
    row = table.row(key)

    def flip(fn):  # J(beta = 0) + beta k3 instead of J(beta = 0) - beta k3, and its weight
        return lambda *case: 2 * fn(*case[:-1], 0.0) - fn(*case)

    both = dataclasses.replace(row, objective=flip(row.objective), weight=flip(row.weight))
    assert table.check(dataclasses.replace(both, reference=None), n=4, sympy=False).holds
    assert not table.check(both, n=4, sympy=False).holds
    assert table.check(row, n=4, sympy=False).holds


@pytest.mark.parametrize("key", ["trpo", "ppo"])
def test_a_ratio_inverted_in_objective_and_weight_alike_fails(key):
    row = table.row(key)

    def invert(fn):  # the log-ratio's sign flipped: pi_old / pi_theta, in both functions
        return lambda theta, states, actions, logp_old, adv: fn(
            theta, states, actions, 2 * table.settings.sample_log_probs(theta, states, actions)
            .detach() - logp_old, adv)

    both = dataclasses.replace(row, objective=invert(row.objective), weight=invert(row.weight))
    assert not table.check(both, n=4, sympy=False).holds


def test_grpo_rows_say_what_they_check():
    """The k3 rows check the estimator GRPO implements; the source's formula is row "kl", which
    holds (issue 13: a failing row must not be labelled as the source's when k3 is what fails)."""
    k3_src, k3, kl = (table.row(k) for k in ("kl-k3-src", "kl-k3", "kl"))
    assert (k3_src.form, k3.form, kl.form) == ("k3 vs source", "k3, other KL", "source = book")
    assert k3_src.psi == k3.psi and "source" in k3_src.against and "source" in kl.against
    assert not k3_src.holds and k3.holds and kl.holds
    assert [table.row(k).form for k in ("grpo-seq", "grpo-tok")] == ["per answer", "per token"]
    grpo_rows = [r for r in table.rows() if r.algorithm.startswith("GRPO")]
    assert len(grpo_rows) == 5 and all(r.form != "source" for r in grpo_rows)
