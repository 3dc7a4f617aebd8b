"""pgbook.seed_everything (pgbook/__init__.py): one seed for random, NumPy and torch."""

import random

import numpy as np
import pytest
import torch

import pgbook


def test_seed_everything_makes_all_generators_repeat():
    g1 = pgbook.seed_everything(7)
    a = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=g1))
    g2 = pgbook.seed_everything(7)
    b = (random.random(), np.random.rand(), torch.rand(3), torch.rand(2, generator=g2))
    assert a[0] == b[0] and a[1] == b[1]
    assert torch.equal(a[2], b[2]) and torch.equal(a[3], b[3])
    pgbook.seed_everything(8)
    assert random.random() != a[0]


@pytest.mark.parametrize("bad, match", [(-1, r"\[0, 2\*\*32\)"), (2**32, r"\[0, 2\*\*32\)"),
                                        (1.5, "integer"), ("3", "integer"), (True, "integer")])
def test_seed_everything_rejects_bad_seeds(bad, match):
    with pytest.raises(ValueError, match=match):
        pgbook.seed_everything(bad)
