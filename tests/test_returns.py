"""pgbook.returns: discounted returns and rewards-to-go (per trajectory and time-major with
episode boundaries), GAE (chapter 6) and GRPO's group-relative advantages (chapter 9)."""

import math

import pytest
import torch

from pgbook.returns import (
    discount_by_step,
    discounted_return,
    episode_return_batched,
    gae,
    group_advantages,
    reward_to_go,
    reward_to_go_batched,
)

D = torch.float64


def flags(T, N=None, terminated=(), truncated=()):
    """(T, N) (or (T,)) bool flags set at the given (t, n) (or t) positions."""
    shape = (T,) if N is None else (T, N)
    term, trunc = torch.zeros(shape, dtype=torch.bool), torch.zeros(shape, dtype=torch.bool)
    for i in terminated:
        term[i] = True
    for i in truncated:
        trunc[i] = True
    return term, trunc


# --- per-trajectory layout (N, T): the existing API keeps working ---------------------------

def test_discounted_return_by_hand():
    r = torch.tensor([1.0, 2.0, 3.0])
    assert discounted_return(r, 0.5).item() == pytest.approx(1 + 0.5 * 2 + 0.25 * 3)
    batch = torch.stack([r, torch.zeros(3)])
    assert torch.allclose(discounted_return(batch, 0.5), torch.tensor([2.75, 0.0]))


def test_reward_to_go_and_its_gamma_t_variant_by_hand():
    r = torch.tensor([[1.0, 2.0, 3.0]])
    assert torch.allclose(reward_to_go(r, 0.5), torch.tensor([[2.75, 3.5, 3.0]]))
    assert torch.allclose(reward_to_go(r, 0.5, discount_from_start=True),
                          torch.tensor([[2.75, 1.75, 0.75]]))
    # G_0 is the return R(tau)
    assert reward_to_go(r, 0.9)[0, 0].item() == pytest.approx(discounted_return(r, 0.9).item())


# --- time-major rollouts (T, N) with episode boundaries --------------------------------------

def test_batched_one_stream_with_a_termination_by_hand():
    r = torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0])
    term, trunc = flags(5, terminated=[1])  # episode A = rows 0-1, episode B = rows 2-4 (cut)
    G = reward_to_go_batched(r, term, trunc, 0.5)
    assert torch.allclose(G, torch.tensor([1.5, 1.0, 1.75, 1.5, 1.0]))


def test_returns_do_not_leak_across_episode_boundaries():
    # A huge reward right after a boundary must not reach the episode before it.
    r = torch.tensor([1.0, 1.0, 100.0, 1.0])
    for kind in ("terminated", "truncated"):
        term, trunc = flags(4, **{kind: [1]})
        G = reward_to_go_batched(r, term, trunc, 1.0)
        assert G[:2].tolist() == [2.0, 1.0], kind
        R = episode_return_batched(r, term, trunc, 1.0)
        assert R.tolist() == [2.0, 2.0, 101.0, 101.0], kind


def test_truncation_bootstraps_and_termination_does_not():
    r = torch.ones(3, 2)
    term, trunc = flags(3, 2, terminated=[(1, 0)], truncated=[(1, 1)])
    boot = torch.full((3, 2), 10.0)
    G = reward_to_go_batched(r, term, trunc, 0.5, bootstrap=boot)
    # column 0 terminated at row 1: G_1 = 1, G_0 = 1.5; column 1 truncated: G_1 = 1 + 0.5 * 10
    assert G[:2, 0].tolist() == [1.5, 1.0]
    assert G[:2, 1].tolist() == [4.0, 6.0]
    # the last row cuts the running episodes: both bootstrap from V(s_T) = 10
    assert G[2].tolist() == [6.0, 6.0]
    # without bootstrap values the cut episodes use 0: the return actually observed
    G0 = reward_to_go_batched(r, term, trunc, 0.5)
    assert G0[:2, 1].tolist() == [1.5, 1.0] and G0[2].tolist() == [1.0, 1.0]


def test_terminated_wins_over_truncated_and_bootstrap_is_read_only_at_cuts():
    r = torch.ones(4)
    term, trunc = flags(4, terminated=[1, 3], truncated=[1])
    boot = torch.tensor([1e6, 1e6, 1e6, 1e6])  # would show up anywhere it was read
    G = reward_to_go_batched(r, term, trunc, 0.9, bootstrap=boot)
    assert torch.allclose(G, torch.tensor([1.9, 1.0, 1.9, 1.0]))


def test_batched_matches_per_trajectory_on_whole_episodes():
    gen = torch.Generator().manual_seed(0)
    lengths, gamma = [3, 5, 2], 0.9
    episodes = [torch.rand(L, generator=gen, dtype=torch.float64) for L in lengths]
    stream = torch.cat(episodes)
    ends = torch.tensor(lengths).cumsum(0) - 1
    term, trunc = flags(len(stream), terminated=ends[:2].tolist(), truncated=[ends[2].item()])
    G = reward_to_go_batched(stream, term, trunc, gamma)
    R = episode_return_batched(stream, term, trunc, gamma)
    expected_G = torch.cat([reward_to_go(e, gamma) for e in episodes])
    expected_R = torch.cat([discounted_return(e, gamma).expand(len(e)) for e in episodes])
    assert torch.allclose(G, expected_G) and torch.allclose(R, expected_R)
    # columns of a (T, N) batch are independent streams
    both = reward_to_go_batched(torch.stack([stream, stream.flip(0)], 1),
                                torch.stack([term, term], 1), torch.stack([trunc, trunc], 1),
                                gamma)
    assert torch.allclose(both[:, 0], G)


def test_discount_by_step_is_the_gamma_t_variant():
    r = torch.tensor([1.0, 2.0, 3.0])
    term, trunc = flags(3, terminated=[2])
    G = reward_to_go_batched(r, term, trunc, 0.5)
    weighted = discount_by_step(G, 0.5, torch.arange(3))
    assert torch.allclose(weighted, reward_to_go(r, 0.5, discount_from_start=True))
    assert discount_by_step(torch.ones(2), 0.0, torch.tensor([0, 1])).tolist() == [1.0, 0.0]


def test_gamma_zero_and_one():
    r = torch.tensor([1.0, 2.0, 3.0])
    term, trunc = flags(3, terminated=[2])
    assert reward_to_go_batched(r, term, trunc, 0.0).tolist() == [1.0, 2.0, 3.0]
    assert reward_to_go_batched(r, term, trunc, 1).tolist() == [6.0, 5.0, 3.0]


@pytest.mark.parametrize("make, match", [
    (lambda r, t, u, b: reward_to_go_batched(r, t, u, 1.5), "gamma"),
    (lambda r, t, u, b: reward_to_go_batched(r, t, u, -0.1), "gamma"),
    (lambda r, t, u, b: reward_to_go_batched(r, t.float(), u, 0.9), "terminated.*bool"),
    (lambda r, t, u, b: reward_to_go_batched(r, t, u.int(), 0.9), "truncated.*bool"),
    (lambda r, t, u, b: reward_to_go_batched(r, t[:2], u, 0.9), "shape mismatch"),
    (lambda r, t, u, b: reward_to_go_batched(r.long(), t, u, 0.9), "rewards.*floating"),
    (lambda r, t, u, b: reward_to_go_batched(r * float("nan"), t, u, 0.9), "rewards.*non-finite"),
    (lambda r, t, u, b: reward_to_go_batched(r[None], t[None], u[None], 0.9), "dimension"),
    (lambda r, t, u, b: reward_to_go_batched(r[:0], t[:0], u[:0], 0.9), "at least one"),
    (lambda r, t, u, b: reward_to_go_batched(r, t, u, 0.9, bootstrap=b[:1]), "shape mismatch"),
    (lambda r, t, u, b: reward_to_go_batched(r, t, u, 0.9, bootstrap=b.double()), "dtype"),
    (lambda r, t, u, b: reward_to_go_batched(r, t, u, 0.9, bootstrap=b / 0), "non-finite"),
    (lambda r, t, u, b: episode_return_batched(r, t, u, 2.0), "gamma"),
    (lambda r, t, u, b: reward_to_go_batched(r.tolist(), t, u, 0.9), "torch.Tensor"),
    (lambda r, t, u, b: discount_by_step(r, 0.9, torch.full((3, 2), 0.5)), "integer"),
    (lambda r, t, u, b: discount_by_step(r, 0.9, -torch.ones(3, 2, dtype=torch.long)), ">= 0"),
    (lambda r, t, u, b: discount_by_step(r, 0.9, torch.zeros(2, dtype=torch.long)), "shape"),
])
def test_bad_input_raises_value_error_naming_the_problem(make, match):
    r, b = torch.ones(3, 2), torch.ones(3, 2)
    t, u = flags(3, 2)
    with pytest.raises(ValueError, match=match):
        make(r, t, u, b)


# --- GAE (chapter 6) -----------------------------------------------------------------------

def bool_rows(*rows):
    return torch.tensor(rows, dtype=torch.bool)


def test_gae_hand_computed_single_episode():
    r = torch.tensor([1.0, 2.0, 3.0], dtype=D)
    v = torch.tensor([0.5, 1.0, 1.5], dtype=D)
    term, trunc = bool_rows(False, False, True), bool_rows(False, False, False)
    g, lam = 0.9, 0.5
    d2 = 3.0 - 1.5
    d1 = 2.0 + g * 1.5 - 1.0
    d0 = 1.0 + g * 1.0 - 0.5
    a2 = d2
    a1 = d1 + g * lam * a2
    a0 = d0 + g * lam * a1
    out = gae(r, v, term, trunc, g, lam, last_value=torch.tensor(7.0, dtype=D))
    assert torch.allclose(out, torch.tensor([a0, a1, a2], dtype=D), atol=1e-14)


def test_gae_lambda_zero_is_td_error_and_one_is_monte_carlo(gen):
    T, N, g = 12, 3, 0.95
    r = torch.randn(T, N, dtype=D, generator=gen)
    v = torch.randn(T, N, dtype=D, generator=gen)
    nv = torch.randn(T, N, dtype=D, generator=gen)
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


def test_gae_truncation_bootstraps_and_termination_does_not():
    r = torch.tensor([[1.0], [1.0]], dtype=D)
    v = torch.zeros(2, 1, dtype=D)
    nv = torch.tensor([[10.0], [20.0]], dtype=D)
    trunc = bool_rows([True], [False])
    term = bool_rows([False], [True])
    a = gae(r, v, term, trunc, 0.5, 1.0, next_values=nv)
    assert a[:, 0].tolist() == [1.0 + 0.5 * 10.0, 1.0]  # no leak across the boundary


def test_gae_last_value_bootstraps_the_running_episode():
    r = torch.ones(2, dtype=D)
    v = torch.zeros(2, dtype=D)
    a = gae(r, v, bool_rows(False, False), bool_rows(False, False), 0.5, 1.0,
            last_value=torch.tensor(4.0, dtype=D))
    assert a.tolist() == [1.0 + 0.5 * (1.0 + 0.5 * 4.0), 1.0 + 0.5 * 4.0]


@pytest.mark.parametrize("kwargs, match", [
    (dict(lam=1.5), "lam"),
    (dict(gamma=-0.1), "gamma"),
    (dict(last_value=None), "last_value"),
    (dict(last_value=torch.zeros(2, dtype=D)), "last_value must have shape"),
    (dict(values=torch.zeros(2, dtype=D)), "shape mismatch"),
    (dict(truncated=bool_rows(True, False, False)), "truncated inside the batch"),
    (dict(terminated=torch.zeros(3)), "torch.bool"),
    (dict(rewards=torch.tensor([1.0, float("nan"), 0.0], dtype=D)), "non-finite"),
])
def test_gae_bad_input(kwargs, match):
    args = dict(rewards=torch.zeros(3, dtype=D), values=torch.zeros(3, dtype=D),
                terminated=bool_rows(False, False, False), truncated=bool_rows(False, False, False),
                last_value=torch.tensor(0.0, dtype=D), gamma=0.9, lam=0.9)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        gae(**args)


def test_gae_is_the_closed_sum_within_each_episode(gen):
    """A_t = sum_l (gamma lambda)^l delta_{t+l}, the sum stopping at the episode's end, for
    every lambda, with several episodes in each column (chapter 6, eq-06-gae)."""
    T, N, g = 15, 4, 0.97
    for lam in (0.0, 0.3, 0.95, 1.0):
        r = torch.randn(T, N, dtype=D, generator=gen)
        v = torch.randn(T, N, dtype=D, generator=gen)
        nv = torch.randn(T, N, dtype=D, generator=gen)
        term = torch.rand(T, N, generator=gen) < 0.2
        trunc = (torch.rand(T, N, generator=gen) < 0.1) & ~term
        delta = r + g * nv * (~term) - v
        expected = torch.zeros(T, N, dtype=D)
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
        r = torch.randint(-3, 4, (T, N), generator=gen).to(D)
        v = torch.randint(-8, 9, (T, N), generator=gen).to(D)
        nv = torch.randint(-8, 9, (T, N), generator=gen).to(D)
        term = torch.rand(T, N, generator=gen) < 0.15
        trunc = (torch.rand(T, N, generator=gen) < 0.1) & ~term
        cont = ~(term | trunc)
        nv[:-1] = torch.where(cont[:-1], v[1:], nv[:-1])
        td = r + 0.5 * nv * (~term) - v
        assert torch.equal(gae(r, v, term, trunc, 0.5, 0.0, next_values=nv), td)
        mc = reward_to_go_batched(r, term, trunc, 0.5, bootstrap=nv) - v
        assert torch.equal(gae(r, v, term, trunc, 0.5, 1.0, next_values=nv), mc)


# --- group-relative advantages (chapter 9) -------------------------------------------------

def test_group_advantages_hand_values_population_std():
    r = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 0.0]], dtype=D)
    a = group_advantages(r, eps=0.0)
    s = math.sqrt(3) / 4  # population std of (1, 1, 1, 0)
    expected = torch.tensor([[1.0, -1.0, 1.0, -1.0],
                             [0.25 / s, 0.25 / s, 0.25 / s, -0.75 / s]], dtype=D)
    assert torch.allclose(a, expected, atol=1e-15)
    # eps enters the denominator once: (r - mean) / (std + eps)
    a_eps = group_advantages(r, eps=0.5)
    assert torch.allclose(a_eps[0], torch.tensor([0.5, -0.5, 0.5, -0.5], dtype=D), atol=1e-15)


def test_group_advantages_unbiased_std_and_dr_grpo_centring():
    r = torch.tensor([[1.0, 1.0, 1.0, 0.0]], dtype=D)
    a = group_advantages(r, eps=0.0, unbiased=True)  # std with G - 1 = 0.5
    assert torch.allclose(a, torch.tensor([[0.5, 0.5, 0.5, -1.5]], dtype=D), atol=1e-15)
    centred = group_advantages(r, scale_by_std=False)
    assert torch.equal(centred, torch.tensor([[0.25, 0.25, 0.25, -0.75]], dtype=D))


@pytest.mark.parametrize("eps", [0.0, 1e-4])
@pytest.mark.parametrize("value", [0.0, 1.0, 0.1, -3.7])
def test_group_advantages_equal_rewards_give_exact_zeros(eps, value):
    r = torch.full((2, 5), value, dtype=D)
    for scale in (True, False):
        a = group_advantages(r, eps=eps, scale_by_std=scale)
        assert torch.equal(a, torch.zeros_like(r))
        assert not torch.isnan(a).any()


def test_group_advantages_only_the_constant_group_is_zeroed():
    r = torch.tensor([[0.3, 0.3, 0.3], [0.0, 1.0, 2.0]], dtype=D)
    a = group_advantages(r, eps=0.0)
    assert torch.equal(a[0], torch.zeros(3, dtype=D))
    assert torch.allclose(a[1], torch.tensor([-1.0, 0.0, 1.0], dtype=D) / math.sqrt(2 / 3))


def test_group_advantages_zero_mean_unit_mean_square_shift_and_scale_invariance(gen):
    r = torch.randn(50, 8, dtype=D, generator=gen)
    a = group_advantages(r, eps=0.0)
    assert torch.allclose(a.mean(1), torch.zeros(50, dtype=D), atol=1e-14)
    assert torch.allclose(a.pow(2).mean(1), torch.ones(50, dtype=D), atol=1e-12)
    shifted = group_advantages(r + 3.5, eps=0.0)
    scaled = group_advantages(4.0 * r, eps=0.0)
    assert torch.allclose(shifted, a, atol=1e-12)
    assert torch.allclose(scaled, a, atol=1e-12)
    # scaling is not exactly invariant once eps > 0 (eps does not scale); shifting still is
    assert not torch.allclose(group_advantages(1e-3 * r, eps=1e-4), a, atol=1e-3)
    assert torch.allclose(group_advantages(r - 2.0, eps=1e-4), group_advantages(r, eps=1e-4))


@pytest.mark.parametrize("rewards, kwargs, match", [
    (torch.zeros(4), {}, "rewards must have 2"),
    (torch.zeros(3, 1), {}, "at least 2 answers"),
    (torch.zeros(0, 4), {}, "at least one group"),
    (torch.zeros(2, 4, dtype=torch.long), {}, "floating"),
    (torch.full((2, 4), float("nan")), {}, "non-finite"),
    (torch.zeros(2, 4), {"eps": -1e-3}, "eps must be >= 0"),
    (torch.zeros(2, 4), {"eps": float("inf")}, "eps must be finite"),
    (torch.zeros(2, 4), {"scale_by_std": 1}, "scale_by_std must be a bool"),
    (torch.zeros(2, 4), {"unbiased": "yes"}, "unbiased must be a bool"),
    ([[1.0, 0.0]], {}, "torch.Tensor"),
])
def test_group_advantages_bad_input(rewards, kwargs, match):
    with pytest.raises(ValueError, match=match):
        group_advantages(rewards, **kwargs)
