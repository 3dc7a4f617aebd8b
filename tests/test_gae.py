import pytest
import torch

from pgbook.returns import gae, reward_to_go_batched

F = torch.float64


def _flags(*rows):
    return torch.tensor(rows, dtype=torch.bool)


def test_gae_hand_computed_single_episode():
    r = torch.tensor([1.0, 2.0, 3.0], dtype=F)
    v = torch.tensor([0.5, 1.0, 1.5], dtype=F)
    term, trunc = _flags(False, False, True), _flags(False, False, False)
    g, lam = 0.9, 0.5
    d2 = 3.0 - 1.5
    d1 = 2.0 + g * 1.5 - 1.0
    d0 = 1.0 + g * 1.0 - 0.5
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    out = gae(r, v, term, trunc, g, lam, last_value=torch.tensor(7.0, dtype=F))
    assert torch.allclose(out, torch.tensor([a0, a1, a2], dtype=F), atol=1e-14)


def test_lambda_zero_is_td_error_and_one_is_monte_carlo(gen):
    T, N, g = 12, 3, 0.95
    r = torch.randn(T, N, dtype=F, generator=gen)
    v = torch.randn(T, N, dtype=F, generator=gen)
    nv = torch.randn(T, N, dtype=F, generator=gen)
    term = torch.rand(T, N, generator=gen) < 0.15
    trunc = (torch.rand(T, N, generator=gen) < 0.15) & ~term
    a0 = gae(r, v, term, trunc, g, 0.0, next_values=nv)
    assert torch.allclose(a0, r + g * nv * (~term) - v, atol=1e-14)
    # inside an episode, V(s_{t+1}) of row t is V(s_t) of row t + 1, as in a real rollout
    cont = ~(term | trunc)
    nv[:-1] = torch.where(cont[:-1], v[1:], nv[:-1])
    a1 = gae(r, v, term, trunc, g, 1.0, next_values=nv)
    G = reward_to_go_batched(r, term, trunc, g, bootstrap=nv)
    assert torch.allclose(a1, G - v, atol=1e-12)


def test_truncation_bootstraps_and_termination_does_not():
    r = torch.tensor([[1.0], [1.0]], dtype=F)
    v = torch.zeros(2, 1, dtype=F)
    nv = torch.tensor([[10.0], [20.0]], dtype=F)
    trunc = _flags([True], [False])
    term = _flags([False], [True])
    a = gae(r, v, term, trunc, 0.5, 1.0, next_values=nv)
    assert a[:, 0].tolist() == [1.0 + 0.5 * 10.0, 1.0]  # no leak across the boundary


def test_last_value_bootstraps_the_running_episode():
    r = torch.ones(2, dtype=F)
    v = torch.zeros(2, dtype=F)
    a = gae(r, v, _flags(False, False), _flags(False, False), 0.5, 1.0,
            last_value=torch.tensor(4.0, dtype=F))
    assert a.tolist() == [1.0 + 0.5 * (1.0 + 0.5 * 4.0), 1.0 + 0.5 * 4.0]


@pytest.mark.parametrize("kwargs, match", [
    (dict(lam=1.5), "lam"),
    (dict(gamma=-0.1), "gamma"),
    (dict(last_value=None), "last_value"),
    (dict(last_value=torch.zeros(2, dtype=F)), "last_value must have shape"),
    (dict(values=torch.zeros(2, dtype=F)), "shape mismatch"),
    (dict(truncated=_flags(True, False, False)), "truncated inside the batch"),
    (dict(terminated=torch.zeros(3)), "torch.bool"),
    (dict(rewards=torch.tensor([1.0, float("nan"), 0.0], dtype=F)), "non-finite"),
])
def test_gae_bad_input(kwargs, match):
    args = dict(rewards=torch.zeros(3, dtype=F), values=torch.zeros(3, dtype=F),
                terminated=_flags(False, False, False), truncated=_flags(False, False, False),
                last_value=torch.tensor(0.0, dtype=F), gamma=0.9, lam=0.9)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gae(**args)


def test_gae_is_the_closed_sum_within_each_episode(gen):
    """A_t = sum_l (gamma lambda)^l delta_{t+l}, the sum stopping at the episode's end, for
    every lambda, with several episodes in each column (chapter 6, eq-06-gae)."""
    T, N, g = 15, 4, 0.97
    for lam in (0.0, 0.3, 0.95, 1.0):
        r = torch.randn(T, N, dtype=F, generator=gen)
        v = torch.randn(T, N, dtype=F, generator=gen)
        nv = torch.randn(T, N, dtype=F, generator=gen)
        term = torch.rand(T, N, generator=gen) < 0.2
        trunc = (torch.rand(T, N, generator=gen) < 0.1) & ~term
        delta = r + g * nv * (~term) - v
        expected = torch.zeros(T, N, dtype=F)
        for n in range(N):
            for t in range(T):
                for k in range(t, T):
                    expected[t, n] += (g * lam) ** (k - t) * delta[k, n]
                    if term[k, n] or trunc[k, n]:
                        break
        out = gae(r, v, term, trunc, g, lam, next_values=nv)
        assert torch.allclose(out, expected, atol=1e-12), lam


def test_gae_ends_are_exact_on_dyadic_numbers(gen):
    """With gamma = 1/2 and small integers every intermediate value is exact in float64, so
    lambda = 0 and lambda = 1 must reproduce the TD error and the bootstrapped reward-to-go
    minus V bit for bit."""
    T, N = 12, 5
    for _ in range(20):
        r = torch.randint(-3, 4, (T, N), generator=gen).to(F)
        v = torch.randint(-8, 9, (T, N), generator=gen).to(F)
        nv = torch.randint(-8, 9, (T, N), generator=gen).to(F)
        term = torch.rand(T, N, generator=gen) < 0.15
        trunc = (torch.rand(T, N, generator=gen) < 0.1) & ~term
        cont = ~(term | trunc)
        nv[:-1] = torch.where(cont[:-1], v[1:], nv[:-1])
        td = r + 0.5 * nv * (~term) - v
        assert torch.equal(gae(r, v, term, trunc, 0.5, 0.0, next_values=nv), td)
        mc = reward_to_go_batched(r, term, trunc, 0.5, bootstrap=nv) - v
        assert torch.equal(gae(r, v, term, trunc, 0.5, 1.0, next_values=nv), mc)
