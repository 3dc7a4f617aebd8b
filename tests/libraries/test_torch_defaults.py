"""The library comparisons run under torch's float32 default whatever the caller set (the
chapters set float64), and restore the caller's default, also when the call fails."""

import pytest
import torch

from pgbook.libraries import sb3, sb3_ppo, torch_defaults, trl_grpo


@pytest.fixture
def float64_default():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)


def test_the_sb3_comparisons_pass_under_a_float64_default(float64_default):
    # without the decorator SB3's float64 networks meet its float32 observations and fail
    assert sb3.compare_collect_rollouts().passed
    assert sb3_ppo.compare_ppo_gradient().passed
    assert torch.get_default_dtype() == torch.float64


def test_trl_sees_the_float32_default(float64_default):
    # TRL's nanstd divides its counts in the default dtype: the float32 Bessel factor is
    # what a TRL user gets, and what the tolerance of compare_group_advantages accounts for
    assert trl_grpo.compare_group_advantages().passed
    assert torch.get_default_dtype() == torch.float64


def test_the_default_is_restored_when_the_call_fails(float64_default):
    @torch_defaults
    def fails():
        assert torch.get_default_dtype() == torch.float32
        raise RuntimeError("inside")

    with pytest.raises(RuntimeError, match="inside"):
        fails()
    assert torch.get_default_dtype() == torch.float64
