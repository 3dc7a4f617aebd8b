"""TRL 1.16.0's GRPOTrainer against pgbook (pgbook.libraries.trl_grpo, trl_logps): each
agreement holds and each wrong variant, run through the same comparison, fails."""

import pytest

pytest.importorskip("trl")

from pgbook.libraries import trl_grpo, trl_logps  # noqa: E402

MATRIX = [(lt, lvl, beta, bias) for lt in ("grpo", "bnpo", "dapo", "dr_grpo", "luspo")
          for lvl in ("token", "sequence")
          for beta, bias in ((0.0, True), (0.04, True), (0.04, False))]
MATRIX += [("cispo", "token", 0.0, True)]


@pytest.fixture(scope="module")
def model():
    return trl_grpo.tiny_lm(0)


@pytest.mark.parametrize(("loss_type", "level", "beta", "bias"), MATRIX)
def test_trl_loss_agrees_and_wrong_variants_fail(model, loss_type, level, beta, bias):
    ok = trl_grpo.compare_loss(loss_type, importance_level=level, beta=beta, eps_high=0.28,
                               bias_correction_kl=bias, model=model)
    assert ok.passed, ok
    assert ok.value_err < ok.value_tol and ok.grad_err < ok.grad_tol
    wrong = ["wrong_aggregation", "no_temperature"] + (["k3_swapped"] if beta else [])
    wrong += ["kl_ratio_dropped"] if beta and bias else []
    for variant in wrong:
        bad = trl_grpo.compare_loss(loss_type, importance_level=level, beta=beta,
                                    eps_high=0.28, bias_correction_kl=bias, variant=variant,
                                    model=model)
        assert not bad.passed, bad


def test_group_advantages_unbiased_std_and_float32_bessel_factor():
    for scale in ("group", "none"):
        assert trl_grpo.compare_group_advantages(scale, unbiased=True).passed
    assert not trl_grpo.compare_group_advantages("group", unbiased=False).passed
    # "none" does not divide: the std convention cannot matter there
    assert trl_grpo.compare_group_advantages("none", unbiased=False).passed
    # the float32 Bessel factor is real: without its tolerance term the check would fail
    c = trl_grpo.compare_group_advantages("group")
    assert c.max_err > 64 * trl_grpo.U64 * 10


def test_group_advantages_fail_when_trl_no_longer_holds_the_transcribed_lines(monkeypatch):
    from trl.trainer.grpo_trainer import GRPOTrainer

    def changed(self, inputs):
        advantages = rewards - mean_grouped_rewards  # noqa: F821 (only its source is read)
        return advantages / (std_rewards + 1e-6)  # noqa: F821

    assert trl_grpo.compare_group_advantages().source_matches
    monkeypatch.setattr(GRPOTrainer, "_generate_and_score_completions", changed)
    assert not trl_grpo.compare_group_advantages().passed


def test_k3_expected_gradient_follows_the_bias_correction_setting():
    for vocab in (2, 8, 32):
        plain = trl_logps.k3_gradient_exact(vocab, seed=vocab, bias_correction_kl=False)
        assert plain.passed, plain
        assert plain.err_ref_pi <= plain.tol < plain.err_pi_ref  # grad KL(ref || pi)
        default = trl_logps.k3_gradient_exact(vocab, seed=vocab)  # TRL's default: k3 x r
        assert default.passed, default
        assert default.err_pi_ref <= default.tol < default.err_ref_pi  # grad KL(pi || ref)


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dapo", "dr_grpo"])
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_trl_loss_code_conforms(loss_type, beta):
    for bias in (True, False):
        report = trl_logps.conformance_report(loss_type, beta=beta, eps_high=0.28,
                                              bias_correction_kl=bias)
        assert report.passed, str(report)


def test_the_kl_weight_stated_wrongly_fails_where_the_ratio_is_not_1():
    report = trl_logps.conformance_report("grpo", beta=0.04, stated_ratio_weight=False)
    assert not report.passed
    assert "A=0" not in report.failing_regions or len(report.failing_regions) > 1


@pytest.mark.parametrize(("actual", "stated", "regions"), [
    ("grpo", "bnpo", ("ragged lengths",)),
    ("bnpo", "grpo", ("ragged lengths",)),
])
def test_wrongly_stated_aggregation_fails_only_where_lengths_differ(actual, stated, regions):
    report = trl_logps.conformance_report(actual, stated=stated)
    assert report.failing_regions == regions


@pytest.mark.parametrize(("actual", "stated"), [("dr_grpo", "grpo"), ("dapo", "dr_grpo")])
def test_wrongly_stated_normaliser_fails_everywhere(actual, stated):
    report = trl_logps.conformance_report(actual, stated=stated)
    assert len(report.failing_regions) == len(report.rows)


def test_bnpo_and_dapo_coincide_on_one_process():
    assert trl_logps.conformance_report("bnpo", stated="dapo").passed
    assert trl_logps.conformance_report("dapo", stated="bnpo").passed


def test_bad_inputs_raise_naming_the_argument():
    with pytest.raises(ValueError, match="loss_type"):
        trl_grpo.compare_loss("sapo")
    with pytest.raises(ValueError, match="beta"):
        trl_grpo.compare_loss("cispo", beta=0.04)
    with pytest.raises(ValueError, match="scale_rewards"):
        trl_grpo.compare_group_advantages("batch")
    with pytest.raises(ValueError, match="stated"):
        trl_logps.conformance_report(stated="x")
