"""pgbook.kl_table and pgbook.kl_sequences: every cell of the KL-estimator table proved in
SymPy, in agreement with the numeric table of tests/test_kl_estimators.py (exact enumeration in
float64, and torch for the cells that table does not hold); the wrong readings fail the same
check; the HTML renderer; the sequence KL against per-token penalties on TinyLM."""

import importlib.util
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import sympy as sp
import torch

from pgbook import kl_table as K
from pgbook.kl_estimators import ESTIMATORS, PLACEMENTS, kl_k2, kl_k3
from pgbook.kl_sequences import all_answers, sequence_kl_demo
from pgbook.kl_table import (
    GRADIENT_TARGETS,
    KL_TABLE,
    SAMPLINGS,
    kl_table,
    kl_table_html,
    prove_kl_cell,
)
from pgbook.tasks import ReverseTask


def _numeric_module():
    path = Path(__file__).with_name("test_kl_estimators.py")
    spec = importlib.util.spec_from_file_location("_kl_numeric", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


NUMERIC = _numeric_module()
ALL_CELLS = [(e, p, s) for e in ESTIMATORS for p in PLACEMENTS for s in SAMPLINGS]


@pytest.fixture(scope="module")
def cells():
    return {c.key: c for c in kl_table()}


# ---- the SymPy proof, cell by cell ---------------------------------------------------------

def test_the_claimed_table_has_every_cell():
    assert sorted(KL_TABLE) == sorted(ALL_CELLS) and len(KL_TABLE) == 18


@pytest.mark.parametrize("cell", ALL_CELLS)
def test_every_cell_proves(cells, cell):
    c = cells[cell]
    assert (c.target, c.value) == KL_TABLE[cell]
    assert len(c.gaps) == len(GRADIENT_TARGETS) - 1 and min(c.gaps.values()) > 1e-3
    assert c.unbiased == (c.value == "KL(pi||ref)")
    assert (c.value_gap is None) == c.unbiased
    assert (c.at_old is None) == (cell[2] == "on")


def test_unbiased_values_are_k1_k3_on_policy_and_weighted(cells):
    unbiased = {k[::2] for k, c in cells.items() if c.unbiased}
    assert unbiased == {("k1", "on"), ("k3", "on"), ("k1", "IS"), ("k3", "IS")}


def test_at_theta_old(cells):
    """Unweighted samples from pi_old give the on-policy cell at theta = theta_old; the weight
    keeps its gradient there (r = 1, grad r = grad log pi), so the weighted loss cells do not."""
    for (_, place, s), c in cells.items():
        if s == "old" or (s == "IS" and place == "reward"):
            assert c.at_old is True and c.at_old_gap == 0.0
        elif s == "IS":
            assert c.at_old is False and c.at_old_gap > 0.05


def test_sympy_verdicts_agree_with_the_numeric_table():
    """The 13 cells of tests/test_kl_estimators.TABLE name the same targets."""
    for cell, target in NUMERIC.TABLE.items():
        assert KL_TABLE[cell][0] == target, cell


def test_every_cell_against_exact_enumeration_in_float64():
    """All 18 cells, the 5 that TABLE lacks included: kl_penalty's expected gradient by
    enumeration equals the claimed target computed by torch, to 1e-12 (40 random categoricals
    of 6 outcomes, float64; the sums have 6 terms of size < 10, so rounding is ~1e-14)."""
    out, truth = NUMERIC._expected_gradients(torch.Generator().manual_seed(13))
    gen = torch.Generator().manual_seed(13)  # the same draws as _expected_gradients
    z = (torch.randn(40, 6, dtype=torch.float64, generator=gen) * 1.5).requires_grad_(True)
    z_ref = torch.randn(40, 6, dtype=torch.float64, generator=gen) * 1.5
    z_old = z.detach() + torch.randn(40, 6, dtype=torch.float64, generator=gen) * 0.7
    lp, lr, lo = (torch.log_softmax(x, -1) for x in (z, z_ref, z_old))
    old = lo.exp()
    score = torch.eye(6, dtype=torch.float64) - lp.exp()[:, None, :]  # [b, o, :] = e_o - pi
    for name, k in (("k2", kl_k2), ("k3", kl_k3)):
        (truth[f"E_old[{name}]"],) = torch.autograd.grad((old * k(lp, lr)).sum(), z,
                                                         retain_graph=True)
        truth[f"E_old[{name} score]"] = torch.einsum("bo,bon->bn",
                                                     old * k(lp, lr).detach(), score.detach())
    assert set(truth) == set(GRADIENT_TARGETS)
    for cell in ALL_CELLS:
        assert torch.allclose(out[cell], truth[KL_TABLE[cell][0]], atol=1e-12), cell


def test_candidates_differ_pairwise_at_the_point_and_the_detector_sees_equal_ones():
    targets, point = K._gradient_targets(), K._setup()["point"]
    values = {n: K._at(e, point) for n, e in targets.items()}
    names = sorted(values)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert K._gap(values[a], values[b]) > 1e-3, (a, b)
    # E_old[k1 score] (closed-form score) is grad E_old[k2]: the point test must see 0
    S = K._setup()
    k1_score = sum((S["old"][a] * (S["lp"][a] - S["lr"][a]) * K.softmax_score(S["z"], a)
                    for a in range(3)), sp.zeros(3, 1))
    assert K._gap(K._at(k1_score, point), values["E_old[k2]"]) < 1e-25


# ---- the wrong readings fail the same check ------------------------------------------------

@pytest.mark.parametrize("cell, wrong", [
    (("k3", "loss", "on"), "KL(pi||ref)"),  # the popular reading of GRPO's k3
    (("k1", "loss", "on"), "KL(pi||ref)"),
    (("k2", "loss", "IS"), "KL(pi||ref)"),  # the weight changes k2's gradient
    (("k3", "loss", "old"), "KL(ref||pi)"),  # off-policy is not on-policy away from theta_old
    (("k1", "loss", "old"), "0"),
    (("k3", "reward", "on"), "KL(pi||ref)"),
])
def test_wrong_gradient_claims_fail(cell, wrong):
    with pytest.raises(AssertionError, match="does not hold"):
        prove_kl_cell(*cell, target=wrong, value=KL_TABLE[cell][1])


@pytest.mark.parametrize("cell", [("k2", "loss", "on"), ("k3", "loss", "old"),
                                  ("k1", "loss", "old")])
def test_biased_values_claimed_unbiased_fail(cell):
    with pytest.raises(AssertionError, match="E\\[k\\] = KL"):
        prove_kl_cell(*cell, target=KL_TABLE[cell][0], value="KL(pi||ref)")


@pytest.mark.parametrize("est, place, s", [("k1", "reward", "on"), ("k3", "reward", "on"),
                                           ("k2", "reward", "IS")])
def test_reward_placement_without_the_detach_fails(est, place, s):
    with pytest.raises(AssertionError, match="does not hold"):
        prove_kl_cell(est, place, s, target=KL_TABLE[est, place, s][0],
                      value=KL_TABLE[est, place, s][1], detach=False)


def test_k1_weighted_reward_without_the_detach_is_the_weighted_loss_cell():
    """k1 r without sg is the loss term r k1: its gradient is still grad KL(pi||ref)."""
    c = prove_kl_cell("k1", "reward", "IS", target="KL(pi||ref)", value="KL(pi||ref)",
                      detach=False)
    assert not c.detach


@pytest.mark.parametrize("est", ESTIMATORS)
def test_the_weight_without_its_gradient_fails_and_is_the_on_policy_loss_cell(est):
    cell = (est, "loss", "IS")
    with pytest.raises(AssertionError, match="does not hold"):
        prove_kl_cell(*cell, target=KL_TABLE[cell][0], value=KL_TABLE[cell][1],
                      weight_grad=False)
    # what it is instead: sg(r) grad k averages to E_pi[grad k], the on-policy loss cell
    c = prove_kl_cell(*cell, target=KL_TABLE[est, "loss", "on"][0], value=KL_TABLE[cell][1],
                      weight_grad=False)
    assert c.at_old is True and not c.weight_grad


# ---- the HTML table --------------------------------------------------------------------------

class _Structure(HTMLParser):
    VOID = {"br"}

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.tds = [], [], []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)
        if tag == "td":
            self.tds.append(dict(attrs))

    def handle_endtag(self, tag):
        if not self.stack or self.stack.pop() != tag:
            self.errors.append(tag)


def test_html_has_every_cell_and_mark_and_valid_structure(cells):
    out = kl_table_html(tuple(cells.values()))
    parser = _Structure()
    parser.feed(out)
    assert not parser.errors and not parser.stack
    assert out.count('<table class="verdicts mathjax_process">') == 1
    assert out.count("<tr>") == 1 + 6 and out.count("✓ exact") == 18
    assert all("data-label" in td for td in parser.tds) and len(parser.tds) == 6 * 4
    for c in cells.values():
        assert f"\\({GRADIENT_TARGETS[c.target]}\\)" in out
    assert out.count("biased") == sum(not c.unbiased for c in cells.values())
    assert "not proved" not in out and "$" not in out
    assert len(re.findall(r"\\\(", out)) == len(re.findall(r"\\\)", out))


def test_html_marks_a_missing_cell_and_refuses_repeats(cells):
    some = [c for k, c in cells.items() if k != ("k2", "loss", "old")]
    assert kl_table_html(some).count("not proved") == 1
    with pytest.raises(ValueError, match="cells"):
        kl_table_html([some[0], some[0]])


# ---- sequences on TinyLM (item e) -------------------------------------------------------------

@pytest.fixture(scope="module")
def seq():
    # module fixtures run before conftest's one-thread fixture: two threads on a shared machine
    # take 20 times longer here
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return sequence_kl_demo()
    finally:
        torch.set_num_threads(previous)


def test_all_answers_enumerated():
    answers = all_answers(ReverseTask(1, 2))
    assert answers.shape == (1111, 3) and len({tuple(a) for a in answers.tolist()}) == 1111


def test_chain_rule_in_value(seq):
    """Sums of 1111 float64 terms of size < 20: rounding below 1111 * 20 * 1.1e-16 ~ 3e-12."""
    v = seq.values
    assert abs(v["total probability"] - 1) < 1e-12
    for name in ("E[sum_t KL_t]", "E[sum_t k1]", "E[sum_t k3]"):
        assert abs(v[name] - v["KL_seq(pi||ref)"]) < 3e-12, name
    assert abs(v["E[sum_t k2]"] - v["KL_seq(pi||ref)"]) > 0.1  # k2 stays biased


# (gradient, the one it equals) and (gradient, one it differs from by > 10%, relative)
EQUAL = [("k1 summed, in the reward", "KL_seq(pi||ref)"),
         ("k2 in the loss", "sum_t KL_t, prefixes fixed"),
         ("k3 in the loss", "sum_t KL_t(ref||pi), prefixes fixed")]
DIFFER = [("sum_t KL_t, prefixes fixed", "KL_seq(pi||ref)"),
          ("k2 in the loss", "KL_seq(pi||ref)"), ("k3 in the loss", "KL_seq(pi||ref)"),
          ("k3 in the loss", "KL_seq(ref||pi)"), ("k1 in the loss", "KL_seq(pi||ref)"),
          ("sum_t KL_t(ref||pi), prefixes fixed", "KL_seq(ref||pi)")]


def test_sequence_gradients(seq):
    """Equal to rounding (relative 1e-12: the same sums in another order), k1 in the loss 0
    (absolute 1e-13), the rest apart by more than 10% of the larger vector."""
    assert seq.gradients["k1 in the loss"].abs().max() < 1e-13
    for a, b in EQUAL:
        assert seq.compare(a, b)[1] < 1e-12, (a, b)
    for a, b in DIFFER:
        assert seq.compare(a, b)[1] > 0.1, (a, b)


def test_the_check_fails_on_the_popular_reading(seq):
    """Per-token exact KLs summed at the visited prefixes is not the gradient of the sequence
    KL: the same comparison that passes for k1 in the reward fails here."""
    gap, rel = seq.compare("sum_t KL_t, prefixes fixed", "KL_seq(pi||ref)")
    assert not rel < 1e-12 and gap > 0.1
