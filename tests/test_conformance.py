"""pgbook.conformance: correct implementations written the way readers write them (SB3-, TRL-,
CleanRL-style, under stated non-default conventions) conform, and each deliberate mistake is
reported in exactly the regions where it is wrong."""

from __future__ import annotations

import functools
import math

import pytest
import torch

from pgbook import conformance as C
from pgbook.conformance import batteries
from pgbook.grpo_objectives import grpo
from pgbook.kl_estimators import kl_penalty
from pgbook.objectives import ppo_clip
from pgbook.returns import gae, group_advantages

EPS, EPS_HIGH = 0.2, 0.28


def regions(report) -> set:
    return set(report.failing_regions)


ALL_PPO = {c.region for c in batteries.ppo_cases(EPS, EPS_HIGH)}
ALL_GRPO = {c.region for c in batteries.grpo_cases(EPS)}
ALL_GAE = {c.region for c in batteries.gae_cases()}
ALL_KL = {c.region for c in batteries.kl_cases()}


# ---- PPO-Clip --------------------------------------------------------------------------------

def sb3_ppo_loss(logp, logp_old, adv, *, eps=EPS, eps_high=None, reduce=torch.mean):
    """Stable-Baselines3's policy loss, written out: -min(r A, clip(r) A), then the mean."""
    ratio = torch.exp(logp - logp_old)
    high = eps if eps_high is None else eps_high
    surrogate = torch.min(adv * ratio, adv * torch.clamp(ratio, 1 - eps, 1 + high))
    return -reduce(surrogate)


def inside_only_loss(logp, logp_old, adv, *, eps=EPS):
    """The misreading of 1_not-clip: gradient only where r is inside [1-eps, 1+eps]."""
    ratio = torch.exp(logp - logp_old)
    inside = (ratio >= 1 - eps) & (ratio <= 1 + eps)
    surrogate = torch.min(ratio * adv, torch.clamp(ratio, 1 - eps, 1 + eps) * adv)
    return -torch.where(inside, ratio * adv, surrogate.detach()).mean()


def test_pgbook_ppo_clip_conforms_to_itself():
    C.assert_conforms(C.check_ppo_clip(lambda *x: -ppo_clip(*x, EPS)))
    C.assert_conforms(C.check_ppo_clip(lambda *x: ppo_clip(*x, EPS, EPS_HIGH), eps_high=EPS_HIGH,
                                       sign="objective"))


@pytest.mark.parametrize("sign,reduction", [("loss", "mean"), ("loss", "sum"),
                                            ("objective", "mean"), ("objective", "sum")])
def test_stated_conventions_with_matching_implementations_conform(sign, reduction):
    reduce = torch.mean if reduction == "mean" else torch.sum
    flip = 1.0 if sign == "loss" else -1.0

    def loss(*x):
        return flip * sb3_ppo_loss(*x, eps_high=EPS_HIGH, reduce=reduce)

    report = C.check_ppo_clip(loss, eps_high=EPS_HIGH, sign=sign, reduction=reduction)
    C.assert_conforms(report)
    assert len(report.rows) == 13


def test_a_rearranged_ratio_conforms_within_the_rounding_tolerance():
    def loss(logp, logp_old, adv):  # exp(logp) / exp(logp_old): rounds differently
        ratio = torch.exp(logp) / torch.exp(logp_old)
        return -torch.min(adv * ratio, adv * ratio.clamp(1 - EPS, 1 + EPS)).mean()

    report = C.check_ppo_clip(loss)
    C.assert_conforms(report)
    worst = max(max(r.value_err / r.value_tol, r.grad_err / r.grad_tol) for r in report.rows)
    assert 0 < worst < 1e-3  # differs in the last bits only, far inside the tolerance


def test_inside_only_indicator_fails_exactly_on_the_pessimistic_outside_regions():
    report = C.check_ppo_clip(inside_only_loss)
    assert regions(report) == {"A>0, r<1-eps", "A<0, r>1+eps_high"}
    failing = {row.label for row in report.rows if not row.passed}
    assert failing == {"A>0, r<1-eps", "A<0, r>1+eps_high", "extreme ratio r=1000, A<0",
                       "extreme ratio r=0.001, A>0"}
    assert all(row.value_err <= row.value_tol for row in report.rows)  # the value is right
    with pytest.raises(AssertionError, match=r"A>0, r<1-eps, A<0, r>1\+eps_high"):
        C.assert_conforms(report)


def test_symmetric_clip_under_a_stated_eps_high_fails_above_one_plus_eps():
    report = C.check_ppo_clip(functools.partial(sb3_ppo_loss, eps_high=None), eps_high=EPS_HIGH)
    assert regions(report) == {"A>0, inside", "A>0, r>1+eps_high", "r=1+eps_high exactly"}


def test_wrong_stated_convention_is_reported_everywhere_but_a_zero():
    summed = functools.partial(sb3_ppo_loss, reduce=torch.sum)
    assert regions(C.check_ppo_clip(summed)) == ALL_PPO - {"A=0"}
    assert regions(C.check_ppo_clip(sb3_ppo_loss, sign="objective")) == ALL_PPO - {"A=0"}
    C.assert_conforms(C.check_ppo_clip(summed, reduction="sum"))


def test_a_raising_or_misshaped_reader_fails_every_case_with_a_note():
    def raises(*x):
        raise RuntimeError("boom")

    report = C.check_ppo_clip(raises)
    assert not any(row.passed for row in report.rows)
    assert all("raised RuntimeError: boom" in row.note for row in report.rows)
    report = C.check_ppo_clip(lambda logp, *x: logp * 0)
    assert all("expected a tensor of shape ()" in row.note for row in report.rows)


def test_the_report_prints_a_table_and_groups_failures_by_region():
    report = C.check_ppo_clip(inside_only_loss)
    text = str(report)
    assert "9/13 cases conform" in text
    assert "FAIL" in text and "failing regions: A>0, r<1-eps; A<0, r>1+eps_high" in text
    assert [len(rows) for rows in report.failures.values()] == [2, 2]
    assert "13/13 cases conform" in str(C.check_ppo_clip(sb3_ppo_loss))


# ---- GAE -------------------------------------------------------------------------------------

def loop_gae(rewards, values, terminated, truncated, next_values, gamma, lam, *,
             cross=False, truncation_terminal=False):
    """A textbook backward loop in the time-major layout; the flags plant the two bugs."""
    done = (terminated | truncated).to(rewards.dtype)
    stop = done if truncation_terminal else terminated.to(rewards.dtype)
    delta = rewards + gamma * next_values * (1 - stop) - values
    out, running = [], torch.zeros_like(rewards[0])
    for t in reversed(range(rewards.shape[0])):
        running = delta[t] + gamma * lam * (1 if cross else 1 - done[t]) * running
        out.append(running)
    return torch.stack(out[::-1])


def test_gae_reference_and_a_loop_conform_in_both_layouts():
    def ref(r, v, te, tr, nv, g, lam):
        return gae(r, v, te, tr, g, lam, next_values=nv)

    C.assert_conforms(C.check_gae(ref, check_grad=True))
    C.assert_conforms(C.check_gae(loop_gae, gamma=0.9, lam=0.8, check_grad=True))

    def batch_major(*x):  # the reader's own (N, T) code
        *tensors, g, lam = x
        return loop_gae(*(t.T for t in tensors), g, lam).T

    report = C.check_gae(batch_major, layout="batch_major")
    C.assert_conforms(report)
    assert "n/a" in str(report) and all(math.isnan(row.grad_err) for row in report.rows)
    assert regions(C.check_gae(batch_major)) == ALL_GAE  # layout mis-stated: caught


def test_gae_crossing_episode_boundaries_fails_only_on_the_episode_end_cases():
    report = C.check_gae(functools.partial(loop_gae, cross=True))
    assert regions(report) == {"episode ends inside the batch", "truncation with bootstrap",
                               "terminated and truncated both set"}


def test_gae_ignoring_the_truncation_bootstrap_fails_only_there():
    report = C.check_gae(functools.partial(loop_gae, truncation_terminal=True))
    assert regions(report) == {"truncation with bootstrap"}


def test_gae_dropping_the_last_rows_bootstrap_and_detaching_values_are_caught():
    def no_last(r, v, te, tr, nv, g, lam):
        nv = nv.clone()
        nv[-1] = 0.0
        return loop_gae(r, v, te, tr, nv, g, lam)

    assert regions(C.check_gae(no_last)) == {"last row cut off"}
    detached = C.check_gae(lambda r, v, *x: loop_gae(r, v.detach(), *x), check_grad=True)
    assert regions(detached) == ALL_GAE
    assert all(row.value_err == 0 for row in detached.rows)


# ---- GRPO ------------------------------------------------------------------------------------

def trl_grpo_loss(logp, logp_old, logp_ref, adv, mask, *, loss_type="grpo", beta=0.0, eps=EPS,
                  eps_high=None, max_completion_length=None):
    """TRL's GRPOTrainer._compute_loss, written out (float completion_mask)."""
    ratio = torch.exp(logp - logp_old)
    high = eps if eps_high is None else eps_high
    clipped = torch.clamp(ratio, 1 - eps, 1 + high)
    per_token = -torch.min(ratio * adv[:, None], clipped * adv[:, None])
    if beta:
        per_token = per_token + beta * (torch.exp(logp_ref - logp) - (logp_ref - logp) - 1)
    if loss_type == "grpo":
        return ((per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)).mean()
    if loss_type in ("bnpo", "dapo"):
        return (per_token * mask).sum() / mask.sum().clamp(min=1)
    return (per_token * mask).sum() / (logp.shape[0] * max_completion_length)


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dapo", "dr_grpo"])
def test_trl_style_losses_conform_under_their_loss_type(loss_type):
    length = 8 if loss_type == "dr_grpo" else None
    loss = functools.partial(trl_grpo_loss, loss_type=loss_type, beta=0.04, eps_high=EPS_HIGH,
                             max_completion_length=length)
    report = C.check_grpo_loss(loss, loss_type=loss_type, beta=0.04, eps_high=EPS_HIGH,
                               max_completion_length=length, mask_dtype=torch.float64)
    C.assert_conforms(report)


def test_pgbook_grpo_conforms_with_every_kl_estimator():
    for k in ("k1", "k2", "k3"):
        def objective(*x, k=k):
            return grpo(*x, EPS, 0.1, kl_estimator=k)

        C.assert_conforms(C.check_grpo_loss(objective, beta=0.1, kl_estimator=k,
                                            sign="objective"))


def test_token_mean_where_sequence_mean_was_stated_fails_only_on_ragged_lengths():
    report = C.check_grpo_loss(functools.partial(trl_grpo_loss, loss_type="bnpo"),
                               mask_dtype=torch.float64)
    assert regions(report) == {"ragged lengths"}


def test_a_missing_kl_term_and_a_forgotten_mask_are_caught_where_they_act():
    report = C.check_grpo_loss(trl_grpo_loss, beta=0.04, mask_dtype=torch.float64)
    assert regions(report) == {"KL term, logp_ref != logp"}

    def unmasked(logp, logp_old, logp_ref, adv, mask):
        return trl_grpo_loss(logp, logp_old, logp_ref, adv, torch.ones_like(mask))

    assert regions(C.check_grpo_loss(unmasked, mask_dtype=torch.float64)) == {"ragged lengths"}


# ---- KL penalties ----------------------------------------------------------------------------

def k3(logp, logp_ref):
    d = logp_ref - logp
    return torch.exp(d) - d - 1


@pytest.mark.parametrize("estimator", ["k1", "k2", "k3"])
@pytest.mark.parametrize("placement", ["loss", "reward"])
def test_kl_penalty_conforms_to_itself_in_every_cell(estimator, placement):
    def fn(logp, logp_ref, logp_old):
        return kl_penalty(logp, logp_ref, estimator=estimator, placement=placement,
                          logp_old=logp_old).mean()

    C.assert_conforms(C.check_kl_penalty(fn, estimator=estimator, placement=placement,
                                         importance_weighted=True, reduction="mean"))


def test_hand_written_k3_conforms_in_loss_and_reward_placements():
    C.assert_conforms(C.check_kl_penalty(k3))
    C.assert_conforms(C.check_kl_penalty(lambda lp, lr: k3(lp, lr).detach() * lp,
                                         placement="reward"))
    C.assert_conforms(C.check_kl_penalty(lambda lp, lr: k3(lp, lr).sum(), reduction="sum"))


def test_k3_in_the_other_direction_fails_everywhere_but_at_d_zero():
    report = C.check_kl_penalty(lambda logp, logp_ref: k3(logp_ref, logp))
    assert regions(report) == ALL_KL - {"logp = logp_ref (d = 0)"}


def test_reward_placement_without_detach_fails_in_the_gradient_only():
    report = C.check_kl_penalty(lambda lp, lr: k3(lp, lr) * lp, placement="reward")
    assert regions(report) == ALL_KL - {"logp = logp_ref (d = 0)"}
    assert all(row.value_err <= row.value_tol for row in report.rows)


# ---- group advantages ------------------------------------------------------------------------

def trl_advantages(rewards, *, unbiased=True, scale=True):
    centred = rewards - rewards.mean(1, keepdim=True)
    if not scale:
        return centred
    return centred / (rewards.std(1, keepdim=True, unbiased=unbiased) + 1e-4)


def test_group_advantages_conform_under_the_stated_std():
    C.assert_conforms(C.check_group_advantages(group_advantages))
    C.assert_conforms(C.check_group_advantages(trl_advantages, unbiased=True))
    C.assert_conforms(C.check_group_advantages(functools.partial(trl_advantages, scale=False),
                                               scale_by_std=False))
    report = C.check_group_advantages(trl_advantages)  # unbiased std, population stated
    assert regions(report) == {"distinct rewards", "binary rewards", "two answers per group",
                               "equal-reward group"}


def test_leave_one_out_baseline_conforms_and_the_group_mean_stated_as_it_does_not():
    def loo(rewards):
        G = rewards.shape[1]
        return rewards - (rewards.sum(1, keepdim=True) - rewards) / (G - 1)

    C.assert_conforms(C.check_group_advantages(loo, baseline="leave_one_out",
                                               scale_by_std=False))
    centred = functools.partial(trl_advantages, scale=False)  # off by the factor G/(G-1)
    report = C.check_group_advantages(centred, baseline="leave_one_out", scale_by_std=False)
    assert regions(report) == {"distinct rewards", "binary rewards", "two answers per group",
                               "equal-reward group"}


# ---- arguments -------------------------------------------------------------------------------

@pytest.mark.parametrize("call,arg", [
    (lambda: C.check_ppo_clip(3), "loss_fn"),
    (lambda: C.check_ppo_clip(sb3_ppo_loss, sign="minimise"), "sign"),
    (lambda: C.check_ppo_clip(sb3_ppo_loss, reduction="max"), "reduction"),
    (lambda: C.check_grpo_loss(trl_grpo_loss, loss_type="ppo"), "loss_type"),
    (lambda: C.check_grpo_loss(trl_grpo_loss, loss_type="dr_grpo"), "max_completion_length"),
    (lambda: C.check_grpo_loss(trl_grpo_loss, loss_type="dr_grpo", max_completion_length=3),
     "max_completion_length"),
    (lambda: C.check_gae(loop_gae, layout="row_major"), "layout"),
    (lambda: C.check_kl_penalty(k3, estimator="k4"), "estimator"),
    (lambda: C.check_ppo_clip(sb3_ppo_loss, rtol=0), "rtol"),
    (lambda: C.assert_conforms("ok"), "report"),
    (lambda: C.check_group_advantages(trl_advantages, baseline="median"), "baseline"),
    (lambda: C.check_group_advantages(trl_advantages, baseline="leave_one_out"), "scale_by_std"),
])
def test_bad_arguments_raise_value_error_naming_them(call, arg):
    with pytest.raises(ValueError, match=arg):
        call()


def test_batteries_are_deterministic_and_hit_the_bounds_exactly():
    a, b = batteries.ppo_cases(EPS, EPS_HIGH), batteries.ppo_cases(EPS, EPS_HIGH)
    assert all(torch.equal(x.inputs["logp"], y.inputs["logp"]) for x, y in zip(a, b, strict=True))
    for case in a:
        if case.region.endswith("exactly"):
            r = torch.exp(case.inputs["logp"] - case.inputs["logp_old"])
            bound = 1 - EPS if "1-eps" in case.region else 1 + EPS_HIGH
            assert bool((r == bound).all())
