"""A random GRPO batch for the tests of pgbook.grpo_objectives (not a test module)."""

import torch


def random_grpo_batch(gen, B=6, T=5, spread=0.3):
    """(logp, logp_old, logp_ref, adv, mask) in float64: B answers of at most T tokens, the old
    and reference log-probabilities ``spread`` away, about 70% of tokens valid (the first of
    every answer always)."""
    D = torch.float64
    logp = -torch.rand(B, T, dtype=D, generator=gen) * 2
    logp_old = logp + spread * torch.randn(B, T, dtype=D, generator=gen)
    logp_ref = logp + spread * torch.randn(B, T, dtype=D, generator=gen)
    adv = torch.randn(B, dtype=D, generator=gen)
    mask = torch.rand(B, T, generator=gen) < 0.7
    mask[:, 0] = True
    return logp, logp_old, logp_ref, adv, mask
