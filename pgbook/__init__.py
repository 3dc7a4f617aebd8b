"""pgbook: the code behind the executable book on policy gradients.

Every chapter imports this package. Its modules are small, have one job each, and import only
down this stack (``tests/test_layers.py`` keeps it so):

* :mod:`pgbook.symbolic`     SymPy: policies, score functions, ``assert_identical`` (chapter 1).
* :mod:`pgbook.piecewise`    the PPO clip as a Piecewise, one or two bounds, and region-by-region
  proofs (chapters 8, 13).
* :mod:`pgbook.mdp`          ``TabularMDP``: exact J(theta), its gradient, Q/V/A (soft too), every
  trajectory (chapters 2-6, 11).
* :mod:`pgbook.checks`       numeric checks: autograd vs closed form, confidence intervals.
* :mod:`pgbook.returns`      discounted return, reward-to-go, GAE, group-relative, leave-one-out
  and batch-normalised advantages.
* :mod:`pgbook.objectives`   every algorithm's surrogate objective J and its score weight Psi;
  :mod:`pgbook.grpo_objectives` GRPO's and its descendants' (Dr. GRPO, DAPO, GSPO, CISPO),
  built on PPO-Clip, with the aggregation, the clip bounds and the KL as parameters.
* :mod:`pgbook.kl_estimators` k1, k2, k3 and where the penalty goes: loss or reward, on-policy
  or importance-weighted (chapters 9, 13); :mod:`pgbook.kl_table` proves the table of what
  each estimator x placement x sampling differentiates to (SymPy) and renders it (ch. 13).
* :mod:`pgbook.answer_model` exact expectations of those objectives' steps over every group of
  a K-answer model: the length bias, RLOO's unbiasedness, group filtering (chapter 13).
* :mod:`pgbook.nets`         MLPs; categorical, Gaussian, tanh-squashed, deterministic and uniform
  policies; V and Q networks.
* :mod:`pgbook.rollout`      Gymnasium vector-env rollouts into a time-major batch.
* :mod:`pgbook.replay`       the replay buffer of the off-policy trainers (chapters 10-11).
* :mod:`pgbook.tasks`        the toy language-model task of the GRPO chapter.
* :mod:`pgbook.kl_sequences` the KL of whole answers against per-token KL penalties, exactly on
  the toy task (chapter 13).
* :mod:`pgbook.trust_region` conjugate gradient, Fisher-vector products, the TRPO step (ch. 7).
* :mod:`pgbook.history`      the record every trainer returns: episodes, logs, trailing means.
* :mod:`pgbook.conformance`  checks a reader's own PPO-Clip, GAE, GRPO loss, KL penalty and group
  advantages against the book's, region by region (value and gradient), for their tests.
* :mod:`pgbook.stored_runs`  multi-seed benchmark runs stored with the package (seed bands).
* :mod:`pgbook.algos`        one flat file per algorithm: ``Config`` + ``train() -> History``.
* :mod:`pgbook.table`        the source's gradient table in code, one row per algorithm (ch. 12).
* :mod:`pgbook.libraries`    SB3, sb3-contrib and TRL called on the book's inputs (the appendix;
  imported only when called: ``pip install pgbook[libraries]``).
* :mod:`pgbook.plot`         one figure style for every chapter.
* :mod:`pgbook.chapter`      ``setup()``, the first call of every chapter.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

__version__ = "0.1.0"

__all__ = ["__version__", "seed_everything"]


def seed_everything(seed: int, *, deterministic: bool = True) -> torch.Generator:
    """Seed Python's ``random``, NumPy and PyTorch, and return a seeded ``torch.Generator``.

    Parameters
    ----------
    seed:
        A non-negative integer below 2**32.
    deterministic:
        If true, ask PyTorch for deterministic algorithms, in warn-only mode: an operation
        without a deterministic implementation then warns instead of raising (the CPU kernels
        the book uses are deterministic for a fixed thread count).

    Returns
    -------
    torch.Generator
        A generator seeded with ``seed``, for code that prefers an explicit generator
        over the global one.
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an integer, got {type(seed).__name__}")
    if not 0 <= int(seed) < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    seed = int(seed)
    os.environ["PYTHONHASHSEED"] = str(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(deterministic, warn_only=True)
    return torch.Generator().manual_seed(seed)
