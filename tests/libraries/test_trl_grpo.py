"""TRL 1.16.0's GRPOTrainer against pgbook (pgbook.libraries.trl_grpo): each agreement holds
and each wrong variant, run through the same comparison, fails."""

import pytest
import torch

pytest.importorskip("trl")

from pgbook.libraries import trl_grpo as T  # noqa: E402

MATRIX = [(lt, lvl, beta) for lt in ("grpo", "bnpo", "dapo", "dr_grpo", "luspo")
          for lvl in ("token", "sequence") for beta in (0.0, 0.04)] + [("cispo", "token", 0.0)]


@pytest.fixture(scope="module")
def model():
    torch.set_num_threads(1)
    return T.tiny_lm(0)


@pytest.mark.parametrize(("loss_type", "level", "beta"), MATRIX)
def test_trl_loss_agrees_and_wrong_variants_fail(model, loss_type, level, beta):
    ok = T.compare_loss(loss_type, importance_level=level, beta=beta, eps_high=0.28,
                        model=model)
    assert ok.passed, ok
    assert ok.value_err < ok.value_tol and ok.grad_err < ok.grad_tol
    wrong = ["wrong_aggregation", "no_temperature"] + (["k3_swapped"] if beta else [])
    for variant in wrong:
        bad = T.compare_loss(loss_type, importance_level=level, beta=beta, eps_high=0.28,
                             variant=variant, model=model)
        assert not bad.passed, bad


def test_group_advantages_unbiased_std_and_float32_bessel_factor():
    for scale in ("group", "none"):
        assert T.compare_group_advantages(scale, unbiased=True).passed
    assert not T.compare_group_advantages("group", unbiased=False).passed
    # "none" does not divide: the std convention cannot matter there
    assert T.compare_group_advantages("none", unbiased=False).passed
    # the float32 Bessel factor is real: without its tolerance term the check would fail
    c = T.compare_group_advantages("group")
    assert c.max_err > 64 * T.U64 * 10


def test_k3_expected_gradient_is_grad_kl_ref_pi():
    for vocab in (2, 8, 32):
        c = T.k3_gradient_exact(vocab, seed=vocab)
        assert c.passed, c
        assert c.err_ref_pi <= c.tol < c.err_pi_ref


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dapo", "dr_grpo"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_trl_loss_code_conforms(loss_type, beta):
    report = T.conformance_report(loss_type, beta=beta, eps_high=0.28)
    assert report.passed, str(report)


@pytest.mark.parametrize(("actual", "stated", "regions"), [
    ("grpo", "bnpo", ("ragged lengths",)),
    ("bnpo", "grpo", ("ragged lengths",)),
])
def test_wrongly_stated_aggregation_fails_only_where_lengths_differ(actual, stated, regions):
    report = T.conformance_report(actual, stated=stated)
    assert report.failing_regions == regions


@pytest.mark.parametrize(("actual", "stated"), [("dr_grpo", "grpo"), ("dapo", "dr_grpo")])
def test_wrongly_stated_normaliser_fails_everywhere(actual, stated):
    report = T.conformance_report(actual, stated=stated)
    assert len(report.failing_regions) == len(report.rows)


def test_bnpo_and_dapo_coincide_on_one_process():
    assert T.conformance_report("bnpo", stated="dapo").passed
    assert T.conformance_report("dapo", stated="bnpo").passed


def test_bad_inputs_raise_naming_the_argument():
    with pytest.raises(ValueError, match="loss_type"):
        T.compare_loss("sapo")
    with pytest.raises(ValueError, match="beta"):
        T.compare_loss("cispo", beta=0.04)
    with pytest.raises(ValueError, match="scale_rewards"):
        T.compare_group_advantages("batch")
    with pytest.raises(ValueError, match="stated"):
        T.conformance_report(stated="x")
