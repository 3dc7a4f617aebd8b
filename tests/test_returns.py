import pytest
import torch

from pgbook.returns import (
    discount_by_step,
    discounted_return,
    episode_return_batched,
    reward_to_go,
    reward_to_go_batched,
)


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
