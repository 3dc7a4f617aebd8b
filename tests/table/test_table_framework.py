"""pgbook.table.framework: check, render and the package's entry points."""

import dataclasses

import pytest

from pgbook import table

KEYS = [r.key for r in table.rows()]
WEIGHTED_HOLDING = [r.key for r in table.rows() if r.holds and r.weight is not None]


@pytest.mark.parametrize("key", WEIGHTED_HOLDING)
def test_wrong_weight_fails(key):
    row = table.row(key)
    wrong = dataclasses.replace(row, weight=lambda *case: 1.001 * row.weight(*case) + 1e-3)
    rep = table.check(wrong, n=6, sympy=False)
    assert not rep.holds and not rep.as_claimed


def test_wrong_dpg_closed_form_fails():
    row = table.row("dpg")
    wrong = dataclasses.replace(row, closed_form=lambda *case: 1.01 * row.closed_form(*case))
    assert not table.check(wrong, n=4, sympy=False).holds


def test_a_wrong_sympy_verdict_is_not_as_claimed():
    row = table.row("trpo")
    wrong = dataclasses.replace(row, sympy=lambda: False)
    rep = table.check(wrong, n=2)
    assert rep.holds and rep.sympy is False and not rep.as_claimed


def test_render_is_deterministic_and_complete():
    reps = [table.check(table.row(k), n=4, sympy=False) for k in ("pg", "a2c-src")]
    text = table.render(reps)
    assert text == table.render([table.check(table.row(k), n=4, sympy=False)
                                 for k in ("pg", "a2c-src")])
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["row", "form", "n"]
    assert lines[2] == "PG theorem (0.6)" and lines[5] == "A2C (0.12)"
    assert lines[3].split()[0] == "pg" and "< 1e-11" in lines[3] and "holds" in lines[3]
    assert "fails" in lines[6] and lines[6].split()[-2:] == ["-", "yes"]
    assert lines[4].strip() == "Ψ = R(τ);  grad of J exact"
    assert max(len(line) for line in lines) <= 90
    assert str(reps[0]) == table.render(reps[:1])


def test_check_and_lookup_validate():
    with pytest.raises(ValueError, match="n must be >= 1"):
        table.check(table.row("pg"), n=0)
    with pytest.raises(ValueError, match="seed"):
        table.check(table.row("pg"), seed=-1)
    with pytest.raises(ValueError, match="sympy must be a bool"):
        table.check(table.row("pg"), sympy="yes")
    with pytest.raises(ValueError, match="table.Row"):
        table.check("pg")
    with pytest.raises(ValueError, match="no row with key"):
        table.row("reinforce++")
    with pytest.raises(ValueError, match="key must be a string"):
        table.row(3)
    with pytest.raises(ValueError, match="non-empty list"):
        table.render([])
    with pytest.raises(ValueError, match="non-empty list"):
        table.render(["pg"])


def test_the_package_does_not_reexport_objectives():
    assert set(table.__all__) == {"Row", "RowReport", "Setting", "check", "check_all", "groups",
                                  "render", "row", "rows"}
    for name in ("ppo_clip", "a2c_weight", "soft_values", "soft_J", "kl_k3_weight", "dpg"):
        assert not hasattr(table, name), name
