"""pgbook.algos.run: the seeded, float32, self-cleaning run every trainer is inside, and the
config check every train() starts with."""

import pytest
import torch

from pgbook.algos import ppo, sac
from pgbook.algos.run import checked_config, training_run


def test_the_callers_random_stream_is_left_as_it_was():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    with training_run(7):
        torch.rand(100)  # consumed inside, on the forked stream
    assert torch.equal(torch.rand(3), expected)


def test_inside_the_global_rng_is_seeded_with_the_seed():
    with training_run(7):
        a = torch.rand(4)
    torch.manual_seed(7)
    assert torch.equal(a, torch.rand(4))
    with training_run(8):
        b = torch.rand(4)
    assert not torch.equal(a, b)


def test_same_seed_same_draws_whatever_the_callers_state():
    torch.manual_seed(1)
    with training_run(5):
        a = torch.randn(6)
    torch.manual_seed(2)
    torch.rand(10)
    with training_run(5):
        b = torch.randn(6)
    assert torch.equal(a, b)


@pytest.mark.parametrize("caller", [torch.float64, torch.float32])
def test_float32_inside_and_the_callers_dtype_restored(caller):
    previous = torch.get_default_dtype()
    torch.set_default_dtype(caller)
    try:
        with training_run(0):
            assert torch.get_default_dtype() == torch.float32
            assert torch.zeros(1).dtype == torch.float32
            assert next(torch.nn.Linear(2, 2).parameters()).dtype == torch.float32
        assert torch.get_default_dtype() == caller
        with pytest.raises(RuntimeError, match="boom"), training_run(0):
            raise RuntimeError("boom")
        assert torch.get_default_dtype() == caller  # also when the body raises
    finally:
        torch.set_default_dtype(previous)


def test_yields_the_envs_and_closes_them():
    with training_run(0, "CartPole-v1", 3) as envs:
        assert envs.num_envs == 3 and not envs.unwrapped.closed
        envs.reset(seed=0)
    assert envs.unwrapped.closed
    with pytest.raises(RuntimeError, match="boom"), training_run(0, "CartPole-v1", 2) as envs:
        raise RuntimeError("boom")
    assert envs.unwrapped.closed  # also when the body raises
    with training_run(0) as nothing:
        assert nothing is None  # no env_id: no envs (the language-model task)


def test_bad_arguments():
    with pytest.raises(ValueError, match="seed must be >= 0"), training_run(-1):
        pass
    with pytest.raises(ValueError, match="seed must be an integer"), training_run(1.0):
        pass
    with pytest.raises(ValueError, match="env_id"), training_run(0, ""):
        pass
    with pytest.raises(ValueError, match="num_envs"), training_run(0, "CartPole-v1", 0):
        pass


def test_checked_config():
    assert checked_config(None, ppo.Config) == ppo.Config()
    config = ppo.Config(seed=3)
    assert checked_config(config, ppo.Config) is config
    with pytest.raises(ValueError, match="config must be a ppo.Config, got Config"):
        checked_config(sac.Config(), ppo.Config)
    with pytest.raises(ValueError, match="config must be a sac.Config, got dict"):
        checked_config({"seed": 3}, sac.Config)
