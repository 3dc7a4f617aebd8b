"""The mutants the book must kill: each one a plausible, *semantic* mistake in pgbook.

A mutant is a list of edits, each an exact snippet of one file (it must occur there exactly
once, else the mutant is "stale") and its replacement, plus a one-line description and the
chapters whose code uses the mutated lines. Snippets are anchored on the meaningful line of a
formula, not on comments or layout, so that unrelated edits of the package leave them valid.

``control`` mutants change the code without changing what it computes (bit for bit): the
runner requires the checks to *pass* on them, so a broken copy (every check failing for a
reason unrelated to the mutant) cannot pass for a suite that kills everything.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Edit:
    file: str  #: path inside the repository, e.g. "pgbook/objectives.py"
    snippet: str  #: exact text that must occur exactly once in ``file``
    replacement: str


@dataclass(frozen=True)
class Mutant:
    name: str
    description: str
    edits: tuple[Edit, ...]
    chapters: tuple[str, ...] = ()  #: notebooks under book/ whose code uses the mutated lines
    control: bool = False  #: an equivalent rewrite: every check must still pass
    tags: tuple[str, ...] = field(default=())

    @property
    def files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(e.file for e in self.edits))

    @property
    def key(self) -> str:
        """A short hash of what the mutant does: a stored result is reused only while it holds."""
        text = repr((self.edits, self.chapters, self.control))
        return hashlib.sha256(text.encode()).hexdigest()[:12]


class StaleMutant(Exception):
    """An edit's snippet does not occur exactly once in its file."""


def mutated_sources(mutant: Mutant, read: Callable[[str], str]) -> dict[str, str]:
    """The mutated text of every file ``mutant`` edits; ``read(path)`` gives a file's text.

    Edits apply in order (two edits of one file see each other's result). Raises
    :class:`StaleMutant` unless every snippet occurs exactly once when its edit applies, or if
    an edit changes nothing."""
    texts: dict[str, str] = {}
    for edit in mutant.edits:
        if edit.file not in texts:
            try:
                texts[edit.file] = read(edit.file)
            except FileNotFoundError:
                raise StaleMutant(f"{mutant.name}: {edit.file} does not exist") from None
        count = texts[edit.file].count(edit.snippet)
        if count != 1:
            raise StaleMutant(f"{mutant.name}: the snippet {edit.snippet!r} occurs {count} times "
                              f"in {edit.file} (it must occur exactly once)")
        if edit.replacement == edit.snippet:
            raise StaleMutant(f"{mutant.name}: an edit of {edit.file} changes nothing")
        texts[edit.file] = texts[edit.file].replace(edit.snippet, edit.replacement)
    return texts


def _m(name, file, snippet, replacement, description, chapters=(), *, also=(), control=False):
    edits = (Edit(file, snippet, replacement),
             *(Edit(f, s, r) for f, s, r in also))
    return Mutant(name, description, edits, tuple(f"book/{c}.ipynb" for c in chapters),
                  control)


OBJ = "pgbook/objectives.py"
KL = "pgbook/kl_estimators.py"
RET = "pgbook/returns.py"
GRPO = "pgbook/grpo_objectives.py"
CHK = "pgbook/checks.py"
SYM = "pgbook/symbolic.py"
PIECEWISE = "pgbook/piecewise.py"
MDP = "pgbook/mdp.py"
TR = "pgbook/trust_region.py"
NETS = "pgbook/nets.py"
SAC = "pgbook/algos/sac.py"

MUTANTS: list[Mutant] = [
    # ---- controls (must survive) ------------------------------------------------------------
    _m("control-commuted-sum", RET,
       "running = rewards[..., t] + gamma * running",
       "running = gamma * running + rewards[..., t]",
       "control: r + g*G written g*G + r (IEEE addition commutes: bit-identical)",
       ("03_pg_theorem",), control=True),
    _m("control-commuted-product", CHK,
       "z * samples.std(0, unbiased=True) / math.sqrt(n)",
       "samples.std(0, unbiased=True) * z / math.sqrt(n)",
       "control: z*s/sqrt(n) written s*z/sqrt(n) (IEEE multiplication commutes: bit-identical)",
       ("02_objective", "04_estimating", "05_baselines", "09_grpo", "11_sac"), control=True),
    # ---- the checkers themselves ------------------------------------------------------------
    _m("checker-compare-noop", CHK,
       "if err > atol + rtol * scale:",
       "if False:",
       "compare_values / compare_gradients never fail",
       ("01_policies", "02_objective", "04_estimating", "06_actor_critic", "08_ppo")),
    _m("checker-tolerance-loosened", CHK,
       "if err > atol + rtol * scale:",
       "if err > 1e3 * (atol + rtol * scale):",
       "compare_* tolerance loosened a thousandfold",
       ("01_policies", "02_objective", "04_estimating", "06_actor_critic", "08_ppo")),
    _m("checker-ci-widened", CHK,
       "z * samples.std(0, unbiased=True) / math.sqrt(n)",
       "10 * z * samples.std(0, unbiased=True) / math.sqrt(n)",
       "confidence intervals ten times too wide (covers passes biased estimators)",
       ("02_objective", "04_estimating", "05_baselines", "09_grpo", "11_sac")),
    _m("checker-assert-identical-noop", SYM,
       "raise AssertionError(f\"{what} does not hold: lhs - rhs simplifies to\\n{residual}\")",
       "pass",
       "assert_identical never fails",
       ("01_policies", "03_pg_theorem", "04_estimating", "07_trpo", "09_grpo", "11_sac")),
    _m("checker-force-log", SYM,
       "sp.cancel(sp.together(_exp_atoms_to_symbols(sp.expand_log(diff))))",
       "sp.cancel(sp.together(_exp_atoms_to_symbols(sp.expand_log(diff, force=True))))",
       "simplify_difference expands logs with force=True (unsound: log(x**2) = 2 log x)",
       ("01_policies", "03_pg_theorem")),
    # ---- returns and advantages -------------------------------------------------------------
    _m("return-no-gamma", RET,
       "return (rewards * _discounts(gamma, rewards.shape[-1], rewards)).sum(-1)",
       "return rewards.sum(-1)",
       "discounted_return drops gamma^t (R = sum r)",
       ("02_objective", "04_estimating")),
    _m("rtg-no-gamma", RET,
       "running = rewards[..., t] + gamma * running",
       "running = rewards[..., t] + running",
       "reward_to_go drops gamma (G_t = sum_{k>=t} r)",
       ("03_pg_theorem", "04_estimating", "05_baselines", "06_actor_critic", "12_unified")),
    _m("rtg-gamma-t-dropped", RET,
       "out = out * _discounts(gamma, T, rewards)",
       "out = out",
       "reward_to_go(discount_from_start=True) drops the step weight gamma^t",
       ("02_objective", "03_pg_theorem")),
    _m("rtg-batched-crosses-episodes", RET,
       "following = torch.where(done[t], cut_value[t], out[t + 1])",
       "following = out[t + 1]",
       "reward_to_go_batched carries returns across episode boundaries",
       ("05_baselines", "06_actor_critic")),
    _m("gae-crosses-episodes", RET,
       "running = delta[t] + gamma * lam * continues[t] * running",
       "running = delta[t] + gamma * lam * running",
       "GAE sums TD errors across episode boundaries",
       ("06_actor_critic", "14_libraries")),
    _m("gae-bootstraps-terminal", RET,
       "delta = rewards + gamma * next_values * not_terminal - values",
       "delta = rewards + gamma * next_values - values",
       "GAE bootstraps V(s') after a terminal state",
       ("06_actor_critic", "14_libraries")),
    _m("discount-by-step-off-by-one", RET,
       "torch.pow(torch.as_tensor(gamma, dtype=values.dtype), episode_step)",
       "torch.pow(torch.as_tensor(gamma, dtype=values.dtype), episode_step + 1)",
       "discount_by_step weights step t by gamma^(t+1)",
       ("06_actor_critic", "12_unified")),
    _m("group-std-wrong-ddof", RET,
       "correction=1 if unbiased else 0",
       "correction=0 if unbiased else 1",
       "group_advantages: std with the wrong ddof (G-1 for the population std)",
       ("09_grpo", "14_libraries")),
    _m("group-not-centred", RET,
       "centred = rewards - rewards.mean(dim=1, keepdim=True)",
       "centred = rewards - rewards.mean()",
       "group_advantages centres on the batch mean, not each group's",
       ("09_grpo",)),
    # ---- objectives -------------------------------------------------------------------------
    _m("pg-surrogate-sign", OBJ,
       "return (mask * logp * weights.detach()).sum(-1).mean()",
       "return -(mask * logp * weights.detach()).sum(-1).mean()",
       "policy_gradient_surrogate has the wrong sign (descends J)",
       ("04_estimating", "09_grpo")),
    _m("pg-surrogate-mask-ignored", OBJ,
       "mask = mask.to(logp.dtype)",
       "mask = torch.ones_like(logp)",
       "policy_gradient_surrogate ignores the padding mask",
       ()),  # no chapter pads episodes: the tabular MDP has a fixed horizon, GRPO masks Psi
    _m("ratio-inverted", OBJ,
       "return torch.exp(logp - logp_old.detach())",
       "return torch.exp(logp_old.detach() - logp)",
       "the probability ratio is pi_old / pi_theta",
       ("07_trpo", "08_ppo", "09_grpo")),
    _m("not-clip-inside-only", OBJ,
       "return ((adv >= 0) & (ratio <= 1 + eps_high)) | ((adv < 0) & (ratio >= 1 - eps))",
       "return (ratio >= 1 - eps) & (ratio <= 1 + eps_high)",
       "1_not-clip is 1 only inside [1-eps, 1+eps] (the common misreading)",
       ("08_ppo", "09_grpo", "12_unified")),
    _m("not-clip-wrong-side", OBJ,
       "return ((adv >= 0) & (ratio <= 1 + eps_high)) | ((adv < 0) & (ratio >= 1 - eps))",
       "return ((adv >= 0) & (ratio >= 1 - eps)) | ((adv < 0) & (ratio <= 1 + eps_high))",
       "1_not-clip keeps the optimistic side instead of the pessimistic one",
       ("08_ppo", "09_grpo", "12_unified")),
    _m("ppo-clip-boundary", OBJ,
       "torch.clamp(r, 1 - eps, 1 + eps_high) * adv).mean()",
       "torch.clamp(r, 1 - eps, 1 + 2 * eps_high) * adv).mean()",
       "PPO-Clip clips at 1 + 2 eps instead of 1 + eps",
       ("08_ppo", "09_grpo")),
    _m("ppo-clip-max", OBJ,
       "return torch.min(r * adv, torch.clamp(r, 1 - eps, 1 + eps_high) * adv).mean()",
       "return torch.max(r * adv, torch.clamp(r, 1 - eps, 1 + eps_high) * adv).mean()",
       "PPO-Clip takes the optimistic max instead of the pessimistic min",
       ("08_ppo", "09_grpo")),
    _m("ppo-penalty-sign", OBJ,
       "return (ratio(logp, logp_old) * adv.detach() - beta * kl).mean()",
       "return (ratio(logp, logp_old) * adv.detach() + beta * kl).mean()",
       "PPO-Penalty rewards the KL instead of penalising it",
       ("08_ppo",)),
    _m("adapt-beta-reversed", OBJ,
       "return beta / factor",
       "return beta * factor",
       "adapt_kl_beta raises beta after a too-timid step",
       ("08_ppo",)),
    _m("k3-wrong-direction", KL,
       "d = logp_ref.detach() - logp",
       "d = logp - logp_ref.detach()",
       "kl_k3 uses rho = pi_theta / pi_ref (estimates the other KL direction)",
       ("09_grpo",)),
    _m("k3-weight-sign", KL,
       "return (1 - torch.exp(logp_ref - logp)).detach()",
       "return (torch.exp(logp_ref - logp) - 1).detach()",
       "kl_k3_weight, the k3 gradient's weight, has the wrong sign",
       ("09_grpo", "12_unified")),
    _m("kl-weight-direction", KL,
       "return (logp - logp_ref).detach()",
       "return (logp_ref - logp).detach()",
       "kl_weight is log(pi_ref / pi_theta): the gradient of the wrong KL",
       ("09_grpo", "12_unified")),
    _m("actor-critic-gamma-t-dropped", OBJ,
       "return _step_weight(q, \"q\", gamma)",
       "return _step_weight(q, \"q\", None)",
       "actor_critic_weight(gamma=...) drops gamma^t",
       ("06_actor_critic", "12_unified")),
    _m("sac-weight-no-entropy", OBJ,
       "psi = q - alpha * logp",
       "psi = q",
       "sac_policy_weight drops the -alpha log pi term (the source's Q - V row)",
       ("11_sac", "12_unified")),
    _m("sac-policy-entropy-sign", OBJ,
       "return (weights.detach() * (q - alpha * logp)).sum()",
       "return (weights.detach() * (q + alpha * logp)).sum()",
       "sac_policy rewards log pi (penalises entropy)",
       ("12_unified",)),
    _m("dpg-gradient-no-mean", OBJ,
       "policy_jacobians, action_gradients) / policy_jacobians.shape[0]",
       "policy_jacobians, action_gradients)",
       "dpg_gradient sums over the batch instead of averaging",
       ("12_unified",)),
    # ---- GRPO -------------------------------------------------------------------------------
    _m("grpo-kl-sign", GRPO,
       "return clipped - beta * ((k * mask).sum(dim=1) / norms).mean()",
       "return clipped + beta * ((k * mask).sum(dim=1) / norms).mean()",
       "GRPO's objective rewards the KL to the reference",
       ("09_grpo", "12_unified")),
    _m("grpo-kl-sign-both", GRPO,
       "return clipped - beta * ((k * mask).sum(dim=1) / norms).mean()",
       "return clipped + beta * ((k * mask).sum(dim=1) / norms).mean()",
       "GRPO's KL sign flipped in grpo AND grpo_weight (consistent, so they still agree)",
       ("09_grpo", "12_unified"),
       also=[(GRPO, "return (psi - beta * kl_psi).detach()",
              "return (psi + beta * kl_psi).detach()")]),
    _m("grpo-no-length-norm", GRPO,
       "token_adv = adv[:, None] * mask / norms[:, None]",
       "token_adv = adv[:, None] * mask",
       "GRPO's clipped term is not divided by |o_i|",
       ("09_grpo", "12_unified")),
    # ---- GRPO's descendants (the rows of pgbook.table.descendants) ---------------------------
    _m("clip-weight-eps-high-ignored", OBJ,
       "return (not_clip(r, adv, eps, eps_high).to(r.dtype) * r * adv).detach()",
       "return (not_clip(r, adv, eps).to(r.dtype) * r * adv).detach()",
       "ppo_clip_weight ignores eps_high: the symmetric 1_not-clip under DAPO's clip-higher",
       ("12_unified", "13_grpo_variants")),
    _m("clip-objective-eps-high-ignored", OBJ,
       "torch.clamp(r, 1 - eps, 1 + eps_high) * adv).mean()",
       "torch.clamp(r, 1 - eps, 1 + eps) * adv).mean()",
       "ppo_clip clips at 1 + eps whatever eps_high (DAPO's objective loses clip-higher)",
       ("12_unified", "13_grpo_variants")),
    _m("token-mean-over-answers", GRPO,
       "return torch.full((B,), lengths.sum().item() / B, dtype=dtype)",
       "return torch.full((B,), 1.0, dtype=dtype)",
       "token_mean divides the batch's token sum by B answers, not by sum_j |o_j| tokens "
       "(objective and weight alike)",
       ("12_unified", "13_grpo_variants")),
    _m("dr-grpo-length-normalised", GRPO,
       "return torch.full((B,), float(C), dtype=dtype)",
       "return lengths",
       "Dr. GRPO's constant C is |o_i| again (objective and weight alike)",
       ("12_unified", "13_grpo_variants")),
    _m("gspo-ratio-not-length-normalised", GRPO,
       "mean, mean_old = logp.sum(1) / lengths, logp_old.sum(1) / lengths",
       "mean, mean_old = logp.sum(1), logp_old.sum(1)",
       "GSPO's s_i is the whole answer's ratio, not its |o_i|-th root (objective and weight "
       "alike)",
       ("12_unified", "13_grpo_variants")),
    _m("cispo-no-detach", GRPO,
       "clipped = torch.exp(logp - logp_old).clamp(low, 1 + eps_high).detach()",
       "clipped = torch.exp(logp - logp_old).clamp(low, 1 + eps_high)",
       "CISPO without the stop-gradient: autograd also differentiates clip(r)",
       ("12_unified", "13_grpo_variants"),
       also=[(GRPO, "psi = (clipped * adv.detach()[:, None] * mask / norms[:, None]).detach()",
              "psi = clipped * adv.detach()[:, None] * mask / norms[:, None]")]),
    _m("rloo-baseline-includes-self", RET,
       "others = (rewards.sum(dim=1, keepdim=True) - rewards) / (G - 1)",
       "others = rewards.sum(dim=1, keepdim=True) / G",
       "rloo_advantages subtracts the group mean (r_i included), not the others' mean",
       ("12_unified", "13_grpo_variants")),
    _m("not-clip-sym-eps-high-ignored", PIECEWISE,
       "condition = (sp.And(A >= 0, r <= 1 + top)) | (sp.And(A < 0, r >= 1 - eps))",
       "condition = (sp.And(A >= 0, r <= 1 + eps)) | (sp.And(A < 0, r >= 1 - eps))",
       "the symbolic 1_not-clip ignores eps_high (the clip-higher proof cannot hold)",
       ("12_unified", "13_grpo_variants")),
    # ---- the libraries' conventions (the appendix) ------------------------------------------
    _m("kl-ratio-weight-detached", GRPO,
       "        q = torch.exp(log_q)\n",
       "        q = torch.exp(log_q).detach()\n",
       "the ratio-weighted KL (TRL's use_bias_correction_kl) drops the ratio's gradient: r k3 "
       "then differentiates like k3 (objective only)",
       ("14_libraries",)),
    _m("kl-ratio-weight-token-term-dropped", GRPO,
       "kl_psi = q * kl_psi + (q * k * w if level == \"token\" else",
       "kl_psi = q * kl_psi + (0 * k * w if level == \"token\" else",
       "grpo_weight's ratio-weighted KL forgets the k grad r term of each token",
       ()),
    _m("cg-ignores-x0", TR,
       "        x = x0.clone()\n        residual = b - matvec(x0)\n",
       "        x = torch.zeros_like(b)\n        residual = b.clone()\n",
       "conjugate_gradient starts from 0 whatever x0 (sb3-contrib's start is lost)",
       ("14_libraries",)),
    _m("line-search-no-gain-test", TR,
       "            if kl <= max_kl and gain > 0:",
       "            if kl <= max_kl:",
       "TRPO's line search accepts a step that lowers the surrogate",
       ()),
    # ---- symbolic ---------------------------------------------------------------------------
    _m("softmax-score-sign", SYM,
       "return one_hot - softmax(z)",
       "return softmax(z) - one_hot",
       "softmax_score is pi - e_a",
       ("04_estimating", "05_baselines", "07_trpo")),
    _m("gaussian-score-log-sigma", SYM,
       "(x - mu) ** 2 / sigma2 - 1])",
       "(x - mu) ** 2 / sigma2])",
       "gaussian_score's log-sigma component misses the -1",
       ("01_policies", "03_pg_theorem")),
    _m("not-clip-sym-inside-only", PIECEWISE,
       "condition = (sp.And(A >= 0, r <= 1 + top)) | (sp.And(A < 0, r >= 1 - eps))",
       "condition = sp.And(r >= 1 - eps, r <= 1 + eps)",
       "the symbolic 1_not-clip is 1 only inside the clip range",
       ("08_ppo", "09_grpo")),
    # ---- exact MDP --------------------------------------------------------------------------
    _m("mdp-returns-no-gamma", MDP,
       "discount = self.gamma ** torch.arange(self.horizon, dtype=rewards.dtype)",
       "discount = torch.ones(self.horizon, dtype=rewards.dtype)",
       "TabularMDP.returns drops gamma^t, so J is the undiscounted return",
       ("01_policies", "02_objective", "03_pg_theorem", "04_estimating")),
    _m("mdp-q-no-gamma", MDP,
       "self.R + self.gamma * V_next)",
       "self.R + V_next)",
       "TabularMDP Q/V backups drop gamma",
       ("06_actor_critic", "12_unified")),
    _m("mdp-soft-weight-no-entropy", MDP,
       "return (discount * (q - alpha * self.action_log_probs(theta) - v)).detach()",
       "return (discount * (q - v)).detach()",
       "soft_policy_gradient_weight drops -alpha log pi",
       ("11_sac", "12_unified")),
    # ---- trust region -----------------------------------------------------------------------
    _m("trpo-step-halved", TR,
       "return torch.sqrt(2 * max_kl / xFx) * x, x",
       "return 0.5 * torch.sqrt(2 * max_kl / xFx) * x, x",
       "trust_region_step is half the step to the KL ellipsoid",
       ("07_trpo", "14_libraries")),
    _m("cg-steepest-descent", TR,
       "direction = residual + (rr_new / rr) * direction",
       "direction = residual",
       "conjugate_gradient forgets the conjugate direction (steepest descent)",
       ("07_trpo",)),
    _m("fvp-damping-sign", TR,
       "return flat_grad(grad_kl @ v, params, retain_graph=True) + damping * v",
       "return flat_grad(grad_kl @ v, params, retain_graph=True) - damping * v",
       "fisher_vector_product subtracts the damping",
       ("07_trpo",)),
    # ---- networks and trainers --------------------------------------------------------------
    _m("tanh-jacobian-sign", NETS,
       "return self.centre + self.scale * tanh_u, base.log_prob(u) - log_det",
       "return self.centre + self.scale * tanh_u, base.log_prob(u) + log_det",
       "SquashedGaussianPolicy.sample adds the tanh log-Jacobian instead of subtracting it",
       ("11_sac",)),
    _m("tanh-jacobian-dropped", NETS,
       "log_det = _TANH.log_abs_det_jacobian(u, tanh_u).sum(-1) + self.scale.log().sum()",
       "log_det = self.scale.log().sum()",
       "SquashedGaussianPolicy.sample drops SAC's tanh correction",
       ("11_sac",)),
    _m("sac-actor-no-entropy", SAC,
       "return (alpha * logp - q).mean()",
       "return (-q).mean()",
       "SAC's actor loss without alpha log pi (the source's Q - V weight)",
       ("11_sac",)),
    _m("sac-temperature-sign", SAC,
       "return -(log_alpha.exp() * (logp.detach() + target_entropy)).mean()",
       "return (log_alpha.exp() * (logp.detach() + target_entropy)).mean()",
       "SAC's temperature loss has the wrong sign (alpha runs away from the target)",
       ("11_sac",)),
    _m("sac-soft-target-no-entropy", SAC,
       "soft_v = next_q - alpha * next_logp",
       "soft_v = next_q",
       "SAC's critic target drops the entropy term",
       ("11_sac",)),
    _m("reinforce-baseline-sign", "pgbook/algos/reinforce.py",
       "psi = psi - value(obs)",
       "psi = psi + value(obs)",
       "REINFORCE adds the value baseline instead of subtracting it",
       ("05_baselines",)),
    _m("tabular-pg-descent", "pgbook/algos/tabular_pg.py",
       "theta = theta + config.lr * grad",
       "theta = theta - config.lr * grad",
       "tabular policy gradient descends J",
       ("01_policies", "02_objective", "03_pg_theorem")),
    _m("a2c-entropy-sign", "pgbook/algos/a2c.py",
       "- config.ent_coef * entropy",
       "+ config.ent_coef * entropy",
       "A2C's entropy bonus is a penalty",
       ("06_actor_critic",)),
    _m("td3-target-max", "pgbook/algos/td3.py",
       "next_q = critic_target(data.next_obs, next_action).min(0).values",
       "next_q = critic_target(data.next_obs, next_action).max(0).values",
       "TD3's target takes the larger of the twin critics",
       ("10_dpg",)),
]

BY_NAME = {m.name: m for m in MUTANTS}
if len(BY_NAME) != len(MUTANTS):  # pragma: no cover - a typo in the list above
    raise RuntimeError("two mutants share a name")

#: The fixed subset .ci/run executes (tests only): one control, two real mutants. The control is
#: in checks.py because no slow (training) test imports it: surviving the fast tests, it runs no
#: slow ones, which keeps the stage near a minute.
CI_SUBSET = ("control-commuted-product", "not-clip-inside-only", "gae-crosses-episodes")
