"""pgbook.trust_region (chapter 7): conjugate gradient, Fisher-vector products (the Hessian of
the KL is the Fisher matrix), the step scaled to the KL bound, flat gradients and unflatten."""

import pytest
import torch
from torch.distributions import kl_divergence

from pgbook.nets import CategoricalPolicy, ValueNet
from pgbook.trust_region import (
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    trust_region_step,
    unflatten,
)

D = torch.float64


def _spd(n, gen, cond=100.0):
    q, _ = torch.linalg.qr(torch.randn(n, n, dtype=D, generator=gen))
    eig = torch.logspace(0, torch.log10(torch.tensor(cond)).item(), n, dtype=D)
    return q @ torch.diag(eig) @ q.T


def test_cg_matches_direct_solve(gen):
    M = _spd(30, gen)
    b = torch.randn(30, dtype=D, generator=gen)
    x = conjugate_gradient(lambda v: M @ v, b, iters=200, tol=1e-28)
    assert torch.allclose(x, torch.linalg.solve(M, b), atol=1e-10, rtol=1e-10)


def test_cg_finishes_in_n_steps_for_few_distinct_eigenvalues(gen):
    q, _ = torch.linalg.qr(torch.randn(20, 20, dtype=D, generator=gen))
    M = q @ torch.diag(torch.tensor([1.0, 5.0, 10.0] * 6 + [1.0, 5.0], dtype=D)) @ q.T
    b = torch.randn(20, dtype=D, generator=gen)
    x = conjugate_gradient(lambda v: M @ v, b, iters=3, tol=0.0)  # 3 distinct eigenvalues
    assert torch.allclose(x, torch.linalg.solve(M, b), atol=1e-10)


def test_cg_validates():
    with pytest.raises(ValueError, match="not positive definite"):
        conjugate_gradient(lambda v: -v, torch.ones(3, dtype=D))
    with pytest.raises(ValueError, match="b must have 1"):
        conjugate_gradient(lambda v: v, torch.ones(2, 2))
    with pytest.raises(ValueError, match="matvec must be a callable"):
        conjugate_gradient(None, torch.ones(2))
    with pytest.raises(ValueError, match="iters must be >= 1"):
        conjugate_gradient(lambda v: v, torch.ones(2), iters=0)


def _policy_and_kl(seed=0):
    torch.manual_seed(seed)
    policy = CategoricalPolicy(3, 4, hidden=(5,)).double()
    obs = torch.randn(40, 3, dtype=D, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        old = policy.dist(obs)
    params = list(policy.parameters())
    return policy, obs, old, params


def _flat_hessian(fn, params):
    grads = flat_grad(fn(), params, create_graph=True)
    rows = [flat_grad(g, params, retain_graph=True) for g in grads]
    return torch.stack(rows)


def test_fisher_vector_product_is_hessian_of_kl_and_fisher(gen):
    policy, obs, old, params = _policy_and_kl()

    def kl():
        return kl_divergence(old, policy.dist(obs)).mean()

    H = _flat_hessian(kl, params)
    # Fisher: E_s sum_a pi(a|s) score score^T, scores by autograd per (s, a)
    n = sum(p.numel() for p in params)
    F = torch.zeros(n, n, dtype=D)
    probs = old.probs
    for i in range(len(obs)):
        for a in range(4):
            score = flat_grad(policy.dist(obs[i]).log_prob(torch.tensor(a)), params)
            F += probs[i, a] * torch.outer(score, score) / len(obs)
    assert torch.allclose(H, F, atol=1e-12)
    fvp = fisher_vector_product(kl(), params, damping=0.1)
    for _ in range(5):
        v = torch.randn(n, dtype=D, generator=gen)
        assert torch.allclose(fvp(v), (H + 0.1 * torch.eye(n, dtype=D)) @ v, atol=1e-12)
    with pytest.raises(ValueError, match="v must have"):
        fvp(torch.ones(n + 1, dtype=D))


def test_trust_region_step_is_scaled_natural_gradient(gen):
    policy, obs, old, params = _policy_and_kl(1)
    kl = kl_divergence(old, policy.dist(obs)).mean()
    fvp = fisher_vector_product(kl, params, damping=0.1)
    n = sum(p.numel() for p in params)
    F = torch.stack([fvp(e) for e in torch.eye(n, dtype=D)])
    g = torch.randn(n, dtype=D, generator=gen)
    step, x = trust_region_step(g, fvp, 0.01, cg_iters=n * 4)
    natural = torch.linalg.solve(F, g)
    assert (x - natural).norm() < 1e-4 * natural.norm()  # CG stops at |residual|^2 < 1e-10
    assert 0.5 * step @ F @ step == pytest.approx(0.01, rel=1e-10)
    assert torch.nn.functional.cosine_similarity(step, natural, dim=0) > 1 - 1e-12


def test_flat_grad_validates():
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="scalar"):
        flat_grad(p * 2, [p])
    with pytest.raises(ValueError, match="require grad"):
        flat_grad(p.sum(), [torch.zeros(2)])
    unused = torch.zeros(3, requires_grad=True)
    assert torch.equal(flat_grad(p.sum(), [p, unused]), torch.tensor([1.0, 1.0, 0, 0, 0]))


def test_unflatten_inverts_the_flat_vector_for_functional_call(gen):
    net = ValueNet(3, hidden=(4, 5)).double()
    shapes = {name: p.shape for name, p in net.named_parameters()}
    flat = torch.cat([p.detach().reshape(-1) for p in net.parameters()])
    pieces = unflatten(flat, shapes)
    assert list(pieces) == list(shapes)  # same names, same order
    for name, p in net.named_parameters():
        assert torch.equal(pieces[name], p.detach())
    # a perturbed flat vector evaluates the network at those parameters
    obs = torch.randn(7, 3, dtype=D, generator=gen)
    shifted = flat + 0.1 * torch.randn(flat.shape, dtype=D, generator=gen)
    out = torch.func.functional_call(net, unflatten(shifted, shapes), (obs,))
    torch.nn.utils.vector_to_parameters(shifted, net.parameters())
    assert torch.equal(out, net(obs))


def test_unflatten_by_hand_and_bad_input():
    pieces = unflatten(torch.arange(7.0), {"a": (2, 2), "b": torch.Size([3])})
    assert pieces["a"].tolist() == [[0.0, 1.0], [2.0, 3.0]] and pieces["b"].tolist() == [4, 5, 6]
    assert unflatten(torch.zeros(1), {"scalar": ()})["scalar"].shape == ()
    with pytest.raises(ValueError, match="flat has 7 entries, but shapes need 8"):
        unflatten(torch.arange(7.0), {"a": (2, 2), "b": (4,)})
    with pytest.raises(ValueError, match="shapes must be a mapping"):
        unflatten(torch.arange(4.0), [(2, 2)])
    with pytest.raises(ValueError, match="flat must have 1"):
        unflatten(torch.zeros(2, 2), {"a": (2, 2)})


def test_cg_from_x0_solves_the_same_system_and_differs_after_few_iterations(gen):
    M = _spd(20, gen, cond=10.0)
    b = torch.randn(20, dtype=D, generator=gen)
    x0 = 1e-2 * torch.randn(20, dtype=D, generator=gen)
    exact = torch.linalg.solve(M, b)
    full = conjugate_gradient(lambda v: M @ v, b, iters=200, tol=1e-28, x0=x0)
    assert torch.allclose(full, exact, atol=1e-10, rtol=0)
    # after 3 iterations the start matters: CG from x0 is x0 + CG from 0 on b - M x0
    short = conjugate_gradient(lambda v: M @ v, b, iters=3, x0=x0)
    shifted = x0 + conjugate_gradient(lambda v: M @ v, b - M @ x0, iters=3)
    assert torch.allclose(short, shifted, atol=1e-13, rtol=0)
    assert (short - conjugate_gradient(lambda v: M @ v, b, iters=3)).abs().max() > 1e-6


def test_line_search_accepts_the_first_admissible_fraction_and_restores_otherwise():
    from pgbook.trust_region import line_search

    w = torch.zeros(2, dtype=D, requires_grad=True)
    step = torch.tensor([1.0, -2.0], dtype=D)

    def trial():  # a quadratic KL and a gain that is positive for any step taken
        return float(0.5 * (w.detach() ** 2).sum()), float(w.detach().abs().sum())

    fraction, kl, gain = line_search([w], step, trial, 0.1, shrink=0.5, steps=10)
    assert fraction == 0.125  # KL of f s is 2.5 f^2: 0.039 at f = 1/8, 0.16 at f = 1/4
    assert torch.equal(w.detach(), 0.125 * step) and kl <= 0.1 and gain > 0
    # the gain must be positive too: here it is only for |w|_1 < 1 (f = 1/4 of |s|_1 = 3)
    w.data.zero_()
    fraction, _, gain = line_search([w], step, lambda: (0.0, 1 - float(w.detach().abs().sum())),
                                    0.1, shrink=0.5)
    assert fraction == 0.25 and gain == 0.25
    w.data.copy_(0.125 * step)
    fraction, kl, gain = line_search([w], step, lambda: (1.0, 1.0), 0.1, steps=3)
    assert (fraction, kl, gain) == (0.0, 0.0, 0.0)
    assert torch.equal(w.detach(), 0.125 * step)  # back at the parameters it started from
