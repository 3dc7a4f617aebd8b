"""pgbook.table.settings: the six settings' inputs and models."""

import pytest
import torch

from pgbook.table import settings as st

D = torch.float64
SETTINGS = [st.TABULAR, st.SAMPLES, st.TOKENS, st.CATEGORICAL, st.SQUASHED_GAUSSIAN,
            st.DETERMINISTIC]


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.name)
def test_cases_are_seeded_float64_with_edge_cases(setting):
    a = setting.cases(torch.Generator().manual_seed(0), 3)
    b = setting.cases(torch.Generator().manual_seed(0), 3)
    assert len(a) > 3  # n random cases, then the edge cases
    assert all(x[0].dtype == D for x in a)
    assert all(torch.equal(x[0], y[0]) for x, y in zip(a, b, strict=True))


def test_sample_ratios_sit_near_but_not_on_the_clip_boundaries():
    cases = st.SAMPLES.cases(torch.Generator().manual_seed(0), 4)
    theta, states, actions, logp_old, _ = cases[0]
    r = torch.exp(st.sample_log_probs(theta, states, actions) - logp_old)
    for edge in (1 - st.EPS, 1 + st.EPS):
        gap = ((r - edge).abs() / edge).min().item()
        assert 0 < gap < 2e-7
    assert torch.allclose(torch.exp(st.sample_log_probs(*cases[4][:3]) - cases[4][3]),
                          torch.ones(16, dtype=D))  # the on-policy edge case


def test_squashed_actor_is_a_probability_model():
    theta, coef, _ = st.SQUASHED_GAUSSIAN.cases(torch.Generator().manual_seed(0), 1)[0]
    q, logp, w = st.squashed_actor(theta, coef)
    assert q.shape == logp.shape == w.shape == (4, 100)
    assert w.sum().item() == pytest.approx(1.0, abs=1e-12)


def test_gaussian_actions_integrate_the_second_moment_exactly():
    theta = torch.zeros(8, dtype=D)
    states = torch.zeros(1, 3, dtype=D)
    mu, a, w = st.gaussian_actions(theta, states, 0.5)
    assert torch.allclose(torch.einsum("k,bkd->bd", w, (a - mu[:, None]) ** 2),
                          torch.full((1, 2), 0.25, dtype=D), atol=1e-14)


def test_policy_jacobians_match_autograd(gen):
    theta = torch.randn(8, dtype=D, generator=gen)
    states = torch.randn(5, 3, dtype=D, generator=gen)
    jac = torch.stack([torch.autograd.functional.jacobian(
        lambda th, s=s: st.deterministic_policy(th, s[None])[0], theta) for s in states])
    assert torch.allclose(st.policy_jacobians(theta, states), jac, atol=1e-14)


@pytest.mark.parametrize("call, match", [
    (lambda: st.sample_log_probs(torch.zeros(3, dtype=D), torch.zeros(2, dtype=torch.long),
                                 torch.zeros(2, dtype=torch.long)), "theta must have 2"),
    (lambda: st.sample_log_probs(torch.zeros(3, 4, dtype=D), torch.full((2,), 3),
                                 torch.zeros(2, dtype=torch.long)), "states must be"),
    (lambda: st.sample_log_probs(torch.zeros(3, 4, dtype=D), torch.zeros(2, dtype=torch.long),
                                 torch.zeros(3, dtype=torch.long)), "shape mismatch"),
    (lambda: st.squashed_actor(torch.zeros(4, 3, dtype=D), torch.zeros(4, 4, dtype=D)),
     "theta must have shape \\(S, 2\\)"),
    (lambda: st.squashed_actor(torch.zeros(4, 2, dtype=D), torch.zeros(3, 4, dtype=D)),
     "coef must have shape"),
    (lambda: st.deterministic_policy(torch.zeros(7, dtype=D), torch.zeros(2, 3, dtype=D)),
     "theta must have shape"),
    (lambda: st.policy_jacobians(torch.zeros(8, dtype=D), torch.zeros(2, 2, dtype=D)),
     "states must have shape"),
    (lambda: st.gaussian_actions(torch.zeros(8, dtype=D), torch.zeros(2, 3, dtype=D), 0.0),
     "sigma must be > 0"),
    (lambda: st.dpg_critic(torch.zeros(2, 3, dtype=D), torch.zeros(3, 3, dtype=D),
                           torch.zeros(2, 3, dtype=D), quadratic=True), "M must have shape"),
    (lambda: st.dpg_critic(torch.zeros(2, 3, dtype=D), torch.eye(2, dtype=D),
                           torch.zeros(2, 3, dtype=D), quadratic=1), "quadratic must be a bool"),
])
def test_models_validate(call, match):
    with pytest.raises(ValueError, match=match):
        call()
