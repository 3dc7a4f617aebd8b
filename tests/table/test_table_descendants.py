"""pgbook.table.descendants: the rows of GRPO's descendants hold or fail as claimed, the
setting reaches the regions they differ in, and each wrong row fails for its stated reason."""

import dataclasses

import pytest
import sympy as sp
import torch

from pgbook import table
from pgbook.grpo_objectives import cispo_weight, dapo
from pgbook.piecewise import decide_branches, not_clip, ppo_clip_regions, prove_clip_derivative
from pgbook.table import descendant_identities as sym
from pgbook.table import descendants as dsc
from pgbook.table.framework import Setting
from pgbook.table.settings import EPS, sample_log_probs
from pgbook.table.verdicts import verdict_tables_html

D = torch.float64
GROUP = "GRPO's descendants"
CLAIMS = {"dr-grpo": True, "dr-grpo-len": False, "dapo": True, "dapo-sym": False,
          "gspo": True, "gspo-tok": False, "cispo": True, "cispo-no-sg": False, "rloo": True}


def cases(n=20, seed=1):
    return dsc.ANSWERS.cases(torch.Generator().manual_seed(seed), n)


def ratios(case):
    theta, states, actions, logp_old, _, adv, mask, _ = case
    return torch.exp(sample_log_probs(theta, states, actions) - logp_old), adv, mask


def with_cases(row, make):
    """``row`` checked on the cases ``make(generator, n)`` instead of its setting's."""
    return dataclasses.replace(row, setting=Setting("custom", "test", make,
                                                    row.setting.score_weighted))


def test_the_group_is_exposed_in_order():
    assert table.groups()[GROUP] == tuple(CLAIMS)
    assert list(table.groups())[-1] == GROUP == dsc.GROUP
    reps = table.check_all(n=2, sympy=False, group=GROUP)
    assert [rep.row.key for rep in reps] == list(CLAIMS)
    assert all(rep.row.chapter == "13" and rep.row.setting is dsc.ANSWERS for rep in reps)
    with pytest.raises(ValueError, match="group must be one of"):
        table.check_all(n=1, group="GRPO's children")


@pytest.mark.parametrize("key", list(CLAIMS))
def test_row_holds_or_fails_as_claimed(key):
    rep = table.check(table.row(key), n=20, seed=2)
    assert rep.row.holds is CLAIMS[key] and rep.as_claimed, rep
    assert rep.sympy is CLAIMS[key]
    if CLAIMS[key]:
        assert rep.error.max_abs_err < 1e-13  # float64 rounding, far below the 1e-11 tolerance
        assert rep.row.reference is not None  # checked against Psi by hand too
    else:  # on every random case, by far more than rounding
        assert rep.error.n_failed >= 20 and rep.error.max_abs_err > 1e-2


def test_answers_reach_every_region_the_rows_differ_in():
    for case in cases()[:20]:
        r, adv, mask = ratios(case)
        A = adv[:, None].expand_as(r)
        band = mask & (r > 1 + EPS) & (r <= 1 + dsc.EPS_HIGH)
        assert bool((band & (A > 0)).any()) and bool((band & (A < 0)).any())
        for bound in (1 - EPS, 1 + EPS, 1 + dsc.EPS_HIGH):  # within 1e-7, never on
            assert ((r[mask] - bound).abs() / bound).min() > 0
        s = torch.exp((torch.where(mask, r.log(), 0.0)).sum(1) / mask.sum(1))
        assert ((s - 1).abs() < 1e-3).sum() >= 3  # answers 5-7 sit around GSPO's range
    near = [min(((ratios(c)[0][ratios(c)[2]] - b).abs() / b).min().item() for c in cases(60))
            for b in (1 - EPS, 1 + EPS, 1 + dsc.EPS_HIGH)]
    assert all(g < 2e-7 for g in near)
    s_all = []
    for c in cases(60):
        r, _, mask = ratios(c)
        s_all.append(torch.exp(torch.where(mask, r.log(), 0.0).sum(1) / mask.sum(1)))
    s_all = torch.cat(s_all)
    for bound in (1 - dsc.GSPO_EPS, 1 + dsc.GSPO_EPS_HIGH):
        gaps = (s_all - bound).abs() / bound
        assert 0 < gaps.min() < 2e-7
        assert ((s_all < bound) & (gaps < 2e-7)).any() and ((s_all > bound) & (gaps < 2e-7)).any()


def test_dapo_sym_fails_exactly_on_the_band_with_positive_advantage():
    """autograd of DAPO = E[score (Psi_sym + the band's missing term)], and the symmetric
    weight is right for the objective with eps_high = eps."""
    row = table.row("dapo-sym")
    for case in cases(6):
        theta, states, actions, logp_old, _, adv, mask, _ = case
        r, _, _ = ratios(case)
        A = adv[:, None]
        missing = (len(adv) * mask * (A > 0) * (r > 1 + EPS) * (r <= 1 + dsc.EPS_HIGH) * r * A
                   / mask.sum())
        th = theta.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(row.objective(th, *case[1:]), th)
        want = row.setting.score_weighted(row.weight(*case) + missing, *case)
        assert torch.allclose(grad, want, atol=1e-13, rtol=0)
    symmetric = dataclasses.replace(row, objective=lambda theta, s, a, lo, lr, ad, m, b: dapo(
        sample_log_probs(theta, s, a), lo, ad, m, eps=EPS, eps_high=EPS))
    assert table.check(symmetric, n=10, sympy=False).holds


def test_gspo_tok_is_right_only_when_an_answers_tokens_share_one_ratio():
    row = table.row("gspo-tok")

    def shared(gen, n):  # every token of answer i with the ratio s_i of the case
        out = []
        for c in dsc.ANSWERS.cases(gen, n):
            logp = sample_log_probs(*c[:3])
            m = c[6].to(D)
            mean = ((logp - c[3]) * m).sum(1, keepdim=True) / m.sum(1, keepdim=True)
            out.append((*c[:3], logp - mean, *c[4:]))
        return out

    assert table.check(with_cases(row, shared), n=10, sympy=False).holds
    assert not table.check(row, n=10, sympy=False).holds


def test_cispo_without_sg_gains_the_slope_of_the_clip():
    """autograd of the surrogate without sg = E[score (clip(r) A + r A log pi inside the clip)],
    times B / sum |o_j|; with every ratio above 1 + eps_high (clip flat) it holds."""
    row = table.row("cispo-no-sg")
    for case in cases(6):
        theta, states, actions, logp_old, _, adv, mask, _ = case
        logp = sample_log_probs(theta, states, actions)
        r, _, _ = ratios(case)
        slope = len(adv) * mask * (r < 1 + dsc.EPS_HIGH) * r * adv[:, None] * logp / mask.sum()
        th = theta.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(row.objective(th, *case[1:]), th)
        want = row.setting.score_weighted(cispo_weight(logp, logp_old, adv, mask,
                                                       eps_high=dsc.EPS_HIGH) + slope, *case)
        assert torch.allclose(grad, want, atol=1e-13, rtol=0)

    def clipped(gen, n):  # every ratio 1.5 > 1 + eps_high
        return [(*c[:3], sample_log_probs(*c[:3]) - torch.log(torch.tensor(1.5, dtype=D)), *c[4:])
                for c in dsc.ANSWERS.cases(gen, n)]

    assert table.check(with_cases(row, clipped), n=10, sympy=False).holds


def test_dr_grpo_len_is_right_only_when_every_answer_has_length_c():
    row = table.row("dr-grpo-len")
    full = cases(3)[3 + 1]  # the edge case with every answer of length L = C
    assert bool(full[6].all())
    assert table.check(with_cases(row, lambda gen, n: [full]), n=1, sympy=False).holds
    others = [c for c in cases(3) if not bool(c[6].all())]
    assert not table.check(with_cases(row, lambda gen, n: others), n=1, sympy=False).holds


def test_rloo_reference_is_the_leave_one_out_advantage():
    rewards = torch.tensor([1.0, 2.0, 4.0, 7.0, 3.0, 3.0, 3.0, 3.0], dtype=D)
    case = (*cases(1)[0][:5], rewards, *cases(1)[0][6:])
    psi = table.row("rloo").weight(*case)
    mask = case[6].to(D)
    want = torch.tensor([1 - 13 / 3, 2 - 12 / 3, 4 - 10 / 3, 7 - 7 / 3, 0, 0, 0, 0], dtype=D)
    assert torch.allclose(psi, mask * want[:, None], atol=1e-15)


# ---- SymPy: the wrong forms are provably wrong, for the stated reason ------------------------

def test_the_wrong_identities_are_provably_wrong():
    assert sym.dapo_identity("symmetric") is False
    assert sym.gspo_identity("token") is False
    assert sym.cispo_identity(False) is False
    assert sym.dr_grpo_identity("sequence_mean") is False
    assert sym.rloo_identity("group-mean") is False
    assert sym.aggregation_identity("token_mean", "sequence_mean") is False
    for kind in sym.AGGREGATION_CLAIMS:
        assert sym.aggregation_identity(kind, kind) is True


def test_the_symmetric_indicator_fails_only_on_the_band():
    """Region by region: the symmetric 1_nc A agrees with the proved derivative everywhere
    except A > 0, 1-eps < r < 1+eps_high, where it is 0 for r > 1+eps and the derivative is A."""
    r, A = sp.Symbol("r", positive=True), sp.Symbol("A", real=True)
    eps, eh = sp.Symbol("epsilon", positive=True), sp.Symbol("epsilon_high", positive=True)
    proof = prove_clip_derivative(r, A, eps, eh)
    point = {sp.Symbol("e", positive=True): sp.Rational(1, 4), eh: sp.Rational(7, 25),
             sp.Symbol("a", positive=True): 1}
    wrong = []
    for reg in ppo_clip_regions(r, A, eps, eh):
        res = (proof.derivatives[reg.name].subs(reg.substitution)
               - decide_branches((not_clip(r, A, eps) * A).subs(reg.substitution)))
        values = [decide_branches(res.subs(point).subs(sp.Symbol("u", positive=True), u))
                  for u in (sp.Rational(1, 9), 1, 9)]
        if any(v != 0 for v in values):
            wrong.append((reg.name, values))
    # u = 1/9, 1 put r at 0.848, 1.04 (inside both ranges); u = 9 at 1.232, in the band
    assert wrong == [("A > 0, 1-eps < r < 1+eps_high", [0, 0, 1])]


@pytest.mark.parametrize("call, match", [
    (lambda: sym.aggregation_identity("mean", "constant"), "aggregation must be one of"),
    (lambda: sym.aggregation_identity("constant", "sum"), "claimed must be one of"),
    (lambda: sym.dr_grpo_identity("token_mean"), "claimed must be one of"),
    (lambda: sym.dapo_identity("higher"), "indicator must be one of"),
    (lambda: sym.gspo_identity("answer"), "ratio must be one of"),
    (lambda: sym.cispo_identity(1), "stop_gradient must be a bool"),
    (lambda: sym.rloo_identity("mean"), "baseline must be one of"),
])
def test_identities_validate(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_the_group_renders_one_table_per_variant():
    reps = table.check_all(n=2, sympy=False, group=GROUP)
    text = verdict_tables_html(reps)
    assert text.count("<table") == 5
    assert "$" not in text and "NOT as claimed" not in text
    assert text.count("✗ fails, as the book claims") == 4 and text.count("✓ exact") == 5
