"""pgbook.piecewise: the clip, PPO-Clip's objective and the source's 1_not-clip in SymPy,
proved region by region, symmetric (chapter 8) and with eps_high != eps (DAPO's clip-higher,
chapter 13), with what torch's autograd returns at the clip bounds."""

import pytest
import sympy as sp
import torch

from pgbook import objectives
from pgbook.piecewise import (
    Region,
    assert_piecewise_identical,
    clip,
    decide_branches,
    derivative_on_region,
    not_clip,
    one_sided_derivatives,
    ppo_clip_objective,
    ppo_clip_regions,
    prove_clip_derivative,
)

# ---- the clip, PPO-Clip and 1_not-clip (chapter 8) -------------------------------------------

r = sp.Symbol("r", positive=True)
A = sp.Symbol("A", real=True)
eps = sp.Symbol("epsilon", positive=True)


@pytest.fixture(scope="module")
def proof():
    return prove_clip_derivative(r, A, eps)


def test_clip_values():
    assert [clip(x, 1, 3) for x in (0, 1, 2, 3, 4)] == [1, 1, 2, 3, 3]


def test_not_clip_piecewise_agrees_with_torch(gen):
    rs = torch.cat([torch.rand(300, dtype=torch.float64, generator=gen) * 2,
                    torch.tensor([0.8, 1.2, 0.8, 1.2, 1.0, 0.3], dtype=torch.float64)])
    advs = torch.cat([torch.randn(300, dtype=torch.float64, generator=gen),
                      torch.tensor([1.0, 1.0, -1.0, -1.0, 0.0, 0.0], dtype=torch.float64)])
    expected = objectives.not_clip(rs, advs, 0.2)
    eps_q = sp.Rational(0.2)  # the float 0.2 exactly, as torch sees it
    sym = not_clip(r, A, eps)
    for rv, av, e in zip(rs.tolist(), advs.tolist(), expected.tolist(), strict=True):
        value = sym.subs({r: sp.Rational(rv), A: sp.Rational(av), eps: eps_q})
        assert value == int(e), (rv, av)


def test_clip_derivative_is_indicator_times_A_in_every_region(proof):
    assert set(proof.regions) == {region.name for region in ppo_clip_regions(r, A, eps)}
    assert len(proof.regions) == 7  # six open regions and A = 0
    assert all(res == 0 for res in proof.regions.values())
    zero_regions = {name for name, d in proof.derivatives.items() if d == 0}
    assert zero_regions == {"A > 0, r > 1+eps", "A < 0, r < 1-eps", "A = 0"}
    assert all(d == A for name, d in proof.derivatives.items() if name not in zero_regions)


def test_clip_one_sided_derivatives_at_the_boundaries(proof):
    assert proof.boundaries == {
        ("A > 0", "1-eps"): (A, A),   # smooth: r A on both sides
        ("A > 0", "1+eps"): (A, 0),   # kink: the clip caps the gain
        ("A < 0", "1-eps"): (0, A),   # kink: the clip caps the gain (A < 0 wants r down)
        ("A < 0", "1+eps"): (A, A),   # smooth
    }
    # The source's closed inequalities pick the derivative from inside the clip range.
    assert all(v == A for v in proof.indicator_at_boundaries.values())
    assert "residual 0" in str(proof)


def test_wrong_indicator_fails_in_the_region_that_breaks_it():
    """The naive reading 1[1-eps <= r <= 1+eps] is wrong on the pessimistic side."""
    naive = sp.Piecewise((1, (r >= 1 - eps) & (r <= 1 + eps)), (0, True)) * A
    regions = ppo_clip_regions(r, A, eps)
    derivative = {reg.name: derivative_on_region(ppo_clip_objective(r, A, eps), r, reg)
                  for reg in regions}
    failures = []
    for reg in regions:
        try:
            assert_piecewise_identical(derivative[reg.name], naive, [reg], what="naive")
        except AssertionError as err:
            assert f"region '{reg.name}'" in str(err) and "lhs - rhs" in str(err)
            failures.append(reg.name)
    assert failures == ["A > 0, r < 1-eps", "A < 0, r > 1+eps"]


def test_piecewise_identity_generic_and_failures():
    x = sp.Symbol("x", real=True)
    u = sp.Symbol("u", positive=True)
    pos = Region("x > 0", x > 0, {x: u}, along=u)
    neg = Region("x < 0", x < 0, {x: -u}, along=u)
    assert assert_piecewise_identical(sp.Abs(x), sp.Max(x, -x), [pos, neg]) == {
        "x > 0": 0, "x < 0": 0}
    with pytest.raises(AssertionError, match="region 'x < 0'"):
        assert_piecewise_identical(sp.Abs(x), x, [pos, neg], what="|x| = x")
    wrong = Region("x < 0 (wrongly parametrised)", x < 0, {x: u})
    with pytest.raises(AssertionError, match="does not provably satisfy"):
        assert_piecewise_identical(sp.Abs(x), -x, [wrong])
    vague = Region("any x", sp.true, {x: sp.Symbol("y", real=True)})
    with pytest.raises(AssertionError, match="cannot decide which branch"):
        assert_piecewise_identical(sp.Piecewise((1, x > 0), (0, True)), 1, [vague])
    with pytest.raises(ValueError, match="non-empty sequence of Region"):
        assert_piecewise_identical(x, x, pos)


def test_derivative_on_region_and_one_sided_derivatives():
    x = sp.Symbol("x", real=True)
    u = sp.Symbol("u", positive=True)
    assert derivative_on_region(sp.Abs(x) ** 3, x, Region("x<0", x < 0, {x: -u}, u)) == -3 * u**2
    assert one_sided_derivatives(sp.Abs(x), x, 0, width=1) == (-1, 1)
    assert one_sided_derivatives(clip(x, 0, 1), x, 1, width=sp.Rational(1, 2)) == (1, 0)
    with pytest.raises(ValueError, match="no 'along'"):
        derivative_on_region(x, x, Region("x<0", x < 0, {x: -u}))


def test_decide_branches_resolves_min_under_assumptions():
    a, d = sp.symbols("a d", positive=True)
    assert decide_branches(sp.Min(a * (1 - d), a)) == a * (1 - d)
    y = sp.Symbol("y", real=True)
    assert decide_branches(sp.Min(y, 0)).has(sp.Piecewise)  # undecidable stays


# ---- what torch's autograd does at the clip boundaries (torch 2.x) ---------------------------

def _dr(fn, r0, a0):
    rt = torch.tensor(r0, dtype=torch.float64, requires_grad=True)
    fn(rt, torch.tensor(a0, dtype=torch.float64)).backward()
    return rt.grad.item()


def test_torch_min_splits_a_tie_and_clamp_passes_gradient_at_its_bounds():
    x = torch.tensor(1.0, requires_grad=True)
    y = torch.tensor(1.0, requires_grad=True)
    torch.min(x, y).backward()
    assert (x.grad.item(), y.grad.item()) == (0.5, 0.5)
    for r0 in (0.8, 1.2):
        assert _dr(lambda rt, _: torch.clamp(rt, 0.8, 1.2), r0, 0.0) == 1.0


@pytest.mark.parametrize("r0, a0", [(0.8, 2.0), (1.2, 2.0), (0.8, -3.0), (1.2, -3.0)])
def test_torch_autograd_at_boundaries_returns_A(r0, a0):
    def clip_objective(rt, at):
        return torch.min(rt * at, torch.clamp(rt, 0.8, 1.2) * at)
    assert _dr(clip_objective, r0, a0) == a0  # 0.5 A from each side of the tie


def test_spinning_up_form_halves_the_gradient_at_the_kink():
    """min(r A, g(eps, A)) with g = (1+eps)A for A >= 0, (1-eps)A else, equals the clip
    objective everywhere, but its clipped branch is a constant: at the kink autograd gives
    A / 2 (and at the other boundary A, no tie there)."""
    def spinning_up(rt, at):
        g = torch.where(at >= 0, 1.2 * at, 0.8 * at)
        return torch.min(rt * at, g)
    assert _dr(spinning_up, 1.2, 2.0) == 1.0     # A = 2: half of A
    assert _dr(spinning_up, 0.8, -3.0) == -1.5   # A = -3: half of A
    assert _dr(spinning_up, 0.8, 2.0) == 2.0


# ---- two bounds: clip(r, 1 - eps, 1 + eps_high) (DAPO's clip-higher, chapter 13) -----------

eps_high = sp.Symbol("epsilon_high", positive=True)


@pytest.fixture(scope="module")
def proof_high():
    return prove_clip_derivative(r, A, eps, eps_high)


def test_asymmetric_clip_derivative_is_indicator_times_A_in_every_region(proof_high):
    names = {region.name for region in ppo_clip_regions(r, A, eps, eps_high)}
    assert set(proof_high.regions) == names and len(names) == 7
    assert all(res == 0 for res in proof_high.regions.values())
    zero = {name for name, d in proof_high.derivatives.items() if d == 0}
    assert zero == {"A > 0, r > 1+eps_high", "A < 0, r < 1-eps", "A = 0"}
    assert proof_high.boundaries == {
        ("A > 0", "1-eps"): (A, A), ("A > 0", "1+eps_high"): (A, 0),
        ("A < 0", "1-eps"): (0, A), ("A < 0", "1+eps_high"): (A, A),
    }


def test_the_symmetric_indicator_fails_the_asymmetric_clip_where_the_bounds_differ():
    """1_not-clip with eps for both bounds, against the objective clipped at 1 + eps_high:
    it is wrong only between the two upper bounds, which a region split at 1 + eps_high does
    not see, so the check is run with eps_high > eps on the band (1 + eps, 1 + eps_high)."""
    objective = ppo_clip_objective(r, A, eps, eps_high)
    wrong = not_clip(r, A, eps) * A
    u, a = sp.Symbol("u", positive=True), sp.Symbol("a", positive=True)
    e, extra = sp.Symbol("e", positive=True), sp.Symbol("x", positive=True)
    band = Region("A > 0, 1+eps < r < 1+eps_high",
                  (A > 0) & (r > 1 + eps) & (r < 1 + eps_high) & (eps > 0) & (eps < 1),
                  {eps: e / (1 + e), eps_high: e / (1 + e) + extra,
                   r: 1 + e / (1 + e) + extra * u / (1 + u), A: a}, along=u)
    derivative = derivative_on_region(objective, r, band)
    assert derivative == a
    assert_piecewise_identical(derivative, not_clip(r, A, eps, eps_high) * A, [band])
    with pytest.raises(AssertionError, match="region 'A > 0, 1\\+eps < r < 1\\+eps_high'"):
        assert_piecewise_identical(derivative, wrong, [band], what="symmetric indicator")


def test_asymmetric_not_clip_agrees_with_torch(gen):
    rs = torch.cat([torch.rand(400, dtype=torch.float64, generator=gen) * 2,
                    torch.tensor([1.25, 1.3, 0.79, 1.25], dtype=torch.float64)])
    advs = torch.cat([torch.randn(400, dtype=torch.float64, generator=gen),
                      torch.tensor([1.0, 1.0, -1.0, -1.0], dtype=torch.float64)])
    expected = objectives.not_clip(rs, advs, 0.2, 0.28)
    # the band 1.2 < r < 1.28 with A > 0 is where the two bounds differ
    assert expected.tolist()[-4:] == [True, False, False, True]
    assert objectives.not_clip(rs, advs, 0.2).tolist()[-4:] == [False, False, False, True]
    sym = not_clip(r, A, eps, eps_high)
    for rv, av, e in zip(rs.tolist(), advs.tolist(), expected.tolist(), strict=True):
        value = sym.subs({r: sp.Rational(rv), A: sp.Rational(av), eps: sp.Rational(0.2),
                          eps_high: sp.Rational(0.28)})
        assert value == int(e), (rv, av)


def test_eps_high_defaults_to_the_symmetric_clip(gen):
    logp, logp_old = (torch.randn(50, dtype=torch.float64, generator=gen) * 0.3 for _ in "ab")
    adv = torch.randn(50, dtype=torch.float64, generator=gen)
    assert objectives.ppo_clip(logp, logp_old, adv, 0.2) == objectives.ppo_clip(
        logp, logp_old, adv, 0.2, 0.2)
    assert objectives.ppo_clip(logp, logp_old, adv, 0.2) != objectives.ppo_clip(
        logp, logp_old, adv, 0.2, 0.5)
