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


def test_verdict_prints_one_line_and_fails_loudly(capsys):
    from pgbook.checks import compare_values, covers
    ok = compare_values([torch.zeros(2)], [torch.zeros(2)], name="zeros agree", verbose=False)
    chapter.verdict(ok)
    chapter.verdict("the wrong sign is rejected", True, "3 seeds")
    g = torch.Generator().manual_seed(0)
    interval = covers(torch.randn(1000, generator=g, dtype=torch.float64),
                      torch.tensor(0.0, dtype=torch.float64), verbose=False)
    chapter.verdict("the mean is 0", interval)
    assert capsys.readouterr().out.splitlines() == [
        "✓ zeros agree (1 cases)", "✓ the wrong sign is rejected (3 seeds)",
        "✓ the mean is 0 (99% intervals, 1,000 samples)"]
    bad = compare_values([torch.ones(2)], [torch.zeros(2)], name="ones vs zeros",
                         verbose=False, raise_on_fail=False)
    with pytest.raises(AssertionError, match="✗ ones vs zeros"):
        chapter.verdict(bad)
    with pytest.raises(AssertionError, match="✗ claim"):
        chapter.verdict("claim", False)


@pytest.mark.parametrize("args, match", [
    (("", True), "claim"), ((3, True), "claim"), (("c", 1), "holds"), (("c", None), "holds"),
    (("c", True, 5), "detail")])
def test_verdict_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        chapter.verdict(*args)


def test_show_wraps_each_report_to_the_column(capsys):
    from pgbook.chapter import show
    long = "x" * 40 + " " + "y" * 40 + " " + "z" * 40
    show(long, "short", width=50)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "x" * 40 and lines[1].startswith("    y") and lines[-1] == "short"
    assert max(map(len, lines)) <= 50
    with pytest.raises(ValueError, match="width"):
        show("a", width=0)
