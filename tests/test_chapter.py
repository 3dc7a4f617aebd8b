"""pgbook.chapter.setup, the first call of every chapter: one seed, one thread count, float64,
the book's figure style."""

import random

import matplotlib
import numpy as np
import pytest
import torch

import pgbook
from pgbook import chapter, plot


@pytest.fixture
def global_state(monkeypatch):
    """Put back what setup() changes: dtype, rcParams, deterministic mode, PYTHONHASHSEED (the
    thread count is put back by the autouse fixture of conftest.py)."""
    monkeypatch.setenv("PYTHONHASHSEED", "0")
    dtype, rc = torch.get_default_dtype(), matplotlib.rcParams.copy()
    deterministic = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    yield
    torch.set_default_dtype(dtype)
    matplotlib.rcParams.update(rc)
    torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)


def test_setup_seeds_uses_one_thread_float64_and_the_style(global_state):
    torch.set_num_threads(2)
    matplotlib.rcParams["axes.grid"] = False
    generator = chapter.setup()
    assert torch.get_num_threads() == 1
    assert torch.get_default_dtype() == torch.float64 and torch.zeros(1).dtype == torch.float64
    style = {k: list(v) if isinstance(v, tuple) else v for k, v in plot.STYLE.items()}
    assert {k: matplotlib.rcParams[k] for k in style} == style
    assert torch.are_deterministic_algorithms_enabled()
    # seeded as seed_everything(0): the same draws from every generator and the one returned
    draws = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=generator))
    reference = pgbook.seed_everything(0)
    again = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=reference))
    assert draws[:2] == again[:2]
    assert torch.equal(draws[2], again[2]) and torch.equal(draws[3], again[3])


def test_setup_takes_a_seed_and_a_thread_count(global_state):
    chapter.setup(5, threads=2)
    assert torch.get_num_threads() == 2
    a = torch.rand(4)
    chapter.setup(5)
    assert torch.equal(a, torch.rand(4)) and torch.get_num_threads() == 1
    chapter.setup(6)
    assert not torch.equal(a, torch.rand(4))


@pytest.mark.parametrize("kwargs, match", [
    ({"seed": -1}, "seed"), ({"seed": 1.5}, "seed"),
    ({"threads": 0}, "threads must be >= 1"), ({"threads": 1.0}, "threads must be an integer"),
])
def test_setup_rejects_bad_arguments(global_state, kwargs, match):
    with pytest.raises(ValueError, match=match):
        chapter.setup(**kwargs)
