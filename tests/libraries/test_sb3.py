"""SB3 2.9.2 against pgbook: RolloutBuffer GAE, collect_rollouts' time-limit bootstrap and
the gradient of PPO.train(); every agreement has a wrong variant that must fail."""

import pytest
import torch

pytest.importorskip("stable_baselines3")

from pgbook.conformance import check_gae  # noqa: E402
from pgbook.libraries import sb3, sb3_ppo  # noqa: E402


@pytest.mark.parametrize("truncation", [False, True])
def test_rollout_buffer_gae_agrees_with_pgbook(truncation):
    c = sb3.compare_gae(truncation=truncation)
    assert c.passed, str(c)
    assert c.n_rollouts == 50 and c.max_error < 1e-5


@pytest.mark.parametrize("truncation", [False, True])
def test_gae_crossing_the_episode_boundary_fails(truncation):
    c = sb3.compare_gae(truncation=truncation, variant="crosses_boundary")
    assert not c.passed and c.ratio > 1e3


def test_truncation_as_termination_fails_only_where_there_are_truncations():
    assert not sb3.compare_gae(truncation=True, variant="truncation_as_termination").passed
    assert sb3.compare_gae(truncation=False, variant="truncation_as_termination").passed


def test_episode_starts_convention_is_the_row_after_the_done():
    # one column, episode ends after row 0: SB3 must see episode_starts[1] = 1
    r = torch.tensor([[1.0], [2.0], [0.5]], dtype=torch.float64)
    v = torch.tensor([[0.5], [0.25], [1.0]], dtype=torch.float64)
    starts = torch.tensor([[False], [True], [False]])
    adv, ret = sb3.sb3_gae(r, v, starts, torch.tensor([2.0], dtype=torch.float64),
                           torch.tensor([False]), 0.5, 1.0)
    assert adv[0, 0].item() == 1.0 - 0.5            # r - V, no bootstrap across the end
    assert adv[2, 0].item() == 0.5 + 0.5 * 2.0 - 1.0
    assert torch.equal(ret, adv + v)


def test_real_collect_rollouts_agrees_and_the_rollout_has_every_kind_of_end():
    c = sb3.compare_collect_rollouts()
    assert c.passed, str(c)
    assert c.values_error == 0.0
    assert c.n_terminated > 0 and c.n_truncated > 0 and c.n_both > 0
    for wrong in ("truncation_as_termination", "crosses_boundary"):
        assert not sb3.compare_collect_rollouts(variant=wrong).passed


def test_check_gae_passes_on_sb3_buffer_and_reports_a_boundary_crossing_gae():
    rtol = (3 * 8 + 5) * sb3.U32      # the battery's T = 8
    assert check_gae(sb3.sb3_gae_fn, rtol=rtol).passed

    def crossing(rewards, values, terminated, truncated, next_values, gamma, lam):
        # forgets every episode end but the last row's
        none = torch.zeros_like(terminated[:-1])
        return sb3.sb3_gae_fn(rewards, values, torch.cat([none, terminated[-1:]]),
                              torch.cat([none, truncated[-1:]]), next_values, gamma, lam)

    report = check_gae(crossing, rtol=rtol)
    failed = {row.label for row in report.rows if not row.passed}
    assert failed == {"episode ends inside the batch", "truncation with bootstrap",
                      "terminated and truncated both set"}, str(report)


@pytest.mark.parametrize("normalize", [True, False])
def test_ppo_train_gradient_agrees_with_pgbook_ppo_clip(normalize):
    c = sb3_ppo.compare_ppo_gradient(normalize_advantage=normalize)
    assert c.passed, str(c)
    assert all(k > 0 for k in c.extra["regions"].values()), c.extra["regions"]
    assert c.library.abs().max().item() > 1e3 * c.tolerance


@pytest.mark.parametrize("normalize", [True, False])
def test_ppo_inside_only_indicator_fails(normalize):
    assert not sb3_ppo.compare_ppo_gradient(normalize_advantage=normalize,
                                            variant="inside_only").passed


def test_ppo_unnormalized_advantages_fail_when_sb3_normalises():
    assert not sb3_ppo.compare_ppo_gradient(variant="unnormalized").passed


@pytest.mark.parametrize("call, arg", [
    (lambda: sb3.compare_gae(n_rollouts=0), "n_rollouts"),
    (lambda: sb3.compare_gae(variant="wrong"), "variant"),
    (lambda: sb3.compare_gae(gamma=1.5), "gamma"),
    (lambda: sb3.compare_collect_rollouts(lam=-1), "lam"),
    (lambda: sb3_ppo.compare_ppo_gradient(eps=0.0), "eps"),
    (lambda: sb3_ppo.compare_ppo_gradient(variant="x"), "variant"),
])
def test_bad_inputs_raise_naming_the_argument(call, arg):
    with pytest.raises(ValueError, match=arg):
        call()
