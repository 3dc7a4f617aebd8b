r"""sb3-contrib 2.9.2's TRPO, called on the book's inputs and checked against
:mod:`pgbook.trust_region` (the libraries appendix; chapter 7 for the math).

Three pieces of ``sb3_contrib`` are compared, each with a wrong variant run through the same
comparison that must fail:

* ``sb3_contrib/common/utils.py, conjugate_gradient_solver``: CG for M x = b. It starts from
  x_0 = 1e-4 * randn (the global torch generator), where
  :func:`pgbook.trust_region.conjugate_gradient` starts from 0 unless given ``x0``; pgbook's
  side is run from the same x_0. Both do ``max_iter`` products M p after the start and stop
  early once |r|^2 < 1e-10.
* ``sb3_contrib/trpo/trpo.py, TRPO.hessian_vector_product``: v -> H v + cg_damping v, with H
  the Hessian of mean KL(pi_theta || pi_old) (``kl_divergence(distribution,
  old_distribution)`` in ``TRPO.train``, sb3's argument order is (true, pred)), while pgbook
  differentiates KL(pi_old || pi_theta). At theta = theta_old both Hessians are the Fisher
  matrix F = E[grad log pi grad log pi^T] (the first-order terms vanish, the second-order
  terms agree); away from theta_old they differ.
* ``TRPO.train``: one actor update, recomputed with pgbook's pieces from the same snapshot and
  the same rollout batch.

Float64 throughout: the policy is cast with ``.double()``, its features extractor casts the
(float32) observations exactly to float64, and the rollout buffer's arrays are widened to
float64 after collection, so ``TRPO.train`` itself runs in float64. Tolerances are rounding
bounds in u = 2^-53 (stated per function), not tuned.
"""

from __future__ import annotations

import copy
import math

import torch
from torch.distributions import kl_divergence

from .. import _validate as V
from ..objectives import trpo as surrogate_objective
from ..trust_region import (
    conjugate_gradient,
    fisher_vector_product,
    flat_grad,
    line_search,
    trust_region_step,
)
from . import Agreement, torch_defaults

__all__ = [
    "compare_conjugate_gradient",
    "compare_hessian_vector_product",
    "compare_trpo_step",
]

U64 = 2.0**-53  #: unit roundoff of float64
CG_VARIANTS = ("correct", "zero_init", "no_residual_update")
HVP_VARIANTS = ("correct", "undamped")
STEP_VARIANTS = ("correct", "zero_init", "unscaled", "no_normalize")


# ---- (a) conjugate gradient ------------------------------------------------------------------
def _cg_no_residual_update(matvec, b, iters):
    """The plausible mistake: CG that never updates r (so beta = 1 and x moves along a
    growing sum of directions)."""
    x, r, d = torch.zeros_like(b), b.clone(), b.clone()
    rr = r @ r
    for _ in range(iters):
        Md = matvec(d)
        alpha = rr / (d @ Md)
        x = x + alpha * d
        d = r + d  # r was never updated: beta = rr / rr = 1
    return x


@torch_defaults
def compare_conjugate_gradient(*, dim: int = 20, iters: int = 10, n_systems: int = 50,
                               condition: float = 10.0, seed: int = 0,
                               variant: str = "correct") -> Agreement:
    r"""sb3-contrib's ``conjugate_gradient_solver`` (``sb3_contrib/common/utils.py``, 2.9.2)
    against :func:`pgbook.trust_region.conjugate_gradient` on ``n_systems`` random SPD systems
    M x = b in float64, M = Q diag(lambda) Q^T with lambda uniform in [1, ``condition``].

    Both run ``iters`` products M p. sb3 starts at x_0 = 1e-4 randn (torch generator seeded
    with ``seed`` + system index); pgbook's side is its CG from the same ``x0``. Tolerance: a
    perturbation of relative size ``dim`` u per product, amplified by at most kappa =
    ``condition`` per iteration, bounds the difference by iters * dim * kappa * u * max|x|
    (u = 2^-53).

    Variants: ``"zero_init"`` is pgbook's CG from 0 unshifted (the convention difference: it
    fails the rounding tolerance by about the effect of x_0); ``"no_residual_update"`` forgets
    r <- r - alpha M p (a real bug: fails by O(|x|)). ``extra`` holds the max errors of both
    sides against ``torch.linalg.solve`` after the same iterations.
    """
    from sb3_contrib.common.utils import conjugate_gradient_solver

    dim = V.positive_int(dim, "dim", minimum=2)
    iters = V.positive_int(iters, "iters")
    n_systems = V.positive_int(n_systems, "n_systems")
    condition = V.number(condition, "condition", low=1.0)
    seed = V.positive_int(seed, "seed", minimum=0)
    variant = V.choice(variant, "variant", CG_VARIANTS)
    gen = torch.Generator().manual_seed(seed)
    libs, refs, exacts = [], [], []
    for k in range(n_systems):
        q, _ = torch.linalg.qr(torch.randn(dim, dim, generator=gen, dtype=torch.float64))
        lam = 1 + (condition - 1) * torch.rand(dim, generator=gen, dtype=torch.float64)
        m = (q * lam) @ q.T
        b = torch.randn(dim, generator=gen, dtype=torch.float64)

        def matvec(v, m=m):
            return m @ v

        torch.manual_seed(seed + k)
        libs.append(conjugate_gradient_solver(matvec, b, max_iter=iters))
        torch.manual_seed(seed + k)
        x0 = 1e-4 * torch.randn_like(b)  # the same draw as inside the solver
        if variant == "correct":
            refs.append(conjugate_gradient(matvec, b, iters=iters, x0=x0))
        elif variant == "zero_init":
            refs.append(conjugate_gradient(matvec, b, iters=iters))
        else:
            refs.append(_cg_no_residual_update(matvec, b, iters))
        exacts.append(torch.linalg.solve(m, b))
    lib, ref, exact = torch.stack(libs), torch.stack(refs), torch.stack(exacts)
    tol = iters * dim * condition * U64 * exact.abs().max().item()
    return Agreement.of(f"conjugate_gradient_solver vs pgbook CG ({variant})", lib, ref, tol,
                      library_vs_exact=(lib - exact).abs().max().item(),
                      pgbook_vs_exact=(ref - exact).abs().max().item(),
                      max_abs_solution=exact.abs().max().item())


# ---- the TRPO model, in float64 --------------------------------------------------------------
def _float64_extractor_class():
    from stable_baselines3.common.torch_layers import BaseFeaturesExtractor

    class Float64Flatten(BaseFeaturesExtractor):
        """sb3's FlattenExtractor, then an exact cast of the float32 observations to
        float64 (``preprocess_obs`` always returns float32 for a Box space)."""

        def __init__(self, observation_space):
            super().__init__(observation_space, int(math.prod(observation_space.shape)))
            self.flatten = torch.nn.Flatten()

        def forward(self, obs):
            return self.flatten(obs).double()

    return Float64Flatten


def _trpo_model(hidden: int, n_steps: int, seed: int, **kwargs):
    """sb3-contrib TRPO on CartPole-v1 with one hidden layer of ``hidden`` units for actor and
    critic, cast to float64 (nothing downloaded)."""
    from sb3_contrib import TRPO

    kwargs = dict(policy_kwargs=dict(net_arch=[hidden],
                                     features_extractor_class=_float64_extractor_class()),
                  n_steps=n_steps, batch_size=n_steps, seed=seed, device="cpu", **kwargs)
    model = TRPO("MlpPolicy", "CartPole-v1", **kwargs)
    model.policy.double()  # in place: the optimizer keeps the same Parameter objects
    return model


def _actor_params(policy) -> list[torch.nn.Parameter]:
    """The parameters ``TRPO._compute_actor_grad`` steps: names without "value"."""
    return [p for name, p in policy.named_parameters() if "value" not in name]


def _hvp_tolerance(lib_hvp, n: int, vectors: torch.Tensor, m: int) -> float:
    """gamma_m |M| |v| bound (u = 2^-53) with M built column by column from ``lib_hvp``."""
    eye = torch.eye(n, dtype=torch.float64)
    mat = torch.stack([lib_hvp(eye[j]) for j in range(n)], dim=1)
    return (m * U64 * (mat.abs() @ vectors.abs().T)).max().item()


@torch_defaults
def compare_hessian_vector_product(*, hidden: int = 16, n_states: int = 64,
                                   n_vectors: int = 50, moved: float = 0.0, seed: int = 0,
                                   variant: str = "correct") -> Agreement:
    r"""``TRPO.hessian_vector_product`` (``sb3_contrib/trpo/trpo.py``, 2.9.2) against
    :func:`pgbook.trust_region.fisher_vector_product` on ``n_vectors`` random vectors.

    The policy is a float64 CartPole-v1 ``MlpPolicy`` (``hidden`` units), its actor
    parameters perturbed by N(0, 0.3^2) from sb3's initialisation to get theta_old, on
    ``n_states`` random states. sb3's side: ``grad_kl`` from ``TRPO._compute_actor_grad`` on
    mean KL(pi_theta || pi_old), then H v + cg_damping v (damping 0.1, sb3's default, added
    inside the product). pgbook's side: the Hessian of mean KL(pi_old || pi_theta) with the
    same damping. Both at theta = theta_old + ``moved`` * w, w ~ N(0, I): at ``moved`` = 0
    both Hessians are the Fisher matrix and agree to rounding; at ``moved`` > 0 they differ
    (the claim "the two directions have the same Hessian everywhere" fails).

    Tolerance: gamma_m |M| |v| with m = n_states * n_params (the longest sum autograd forms,
    a loose bound), M the library's matrix built from n_params products.
    Variant ``"undamped"`` drops cg_damping on pgbook's side (fails by 0.1 |v|).
    """
    from stable_baselines3.common.distributions import kl_divergence as sb3_kl

    hidden = V.positive_int(hidden, "hidden")
    n_states = V.positive_int(n_states, "n_states")
    n_vectors = V.positive_int(n_vectors, "n_vectors")
    moved = V.number(moved, "moved", low=0.0)
    seed = V.positive_int(seed, "seed", minimum=0)
    variant = V.choice(variant, "variant", HVP_VARIANTS)
    model = _trpo_model(hidden, 8, seed)
    policy = model.policy
    params = _actor_params(policy)
    gen = torch.Generator().manual_seed(seed)
    obs = torch.randn(n_states, 4, generator=gen, dtype=torch.float64)
    with torch.no_grad():
        for p in params:
            p.add_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        old = copy.copy(policy.get_distribution(obs))
        for p in params:
            p.add_(moved * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    new = policy.get_distribution(obs)
    actions = new.get_actions(deterministic=True)
    objective = (new.log_prob(actions)).mean()  # any objective: only grad_kl is used
    actor, _, grad_kl, _ = model._compute_actor_grad(sb3_kl(new, old).mean(), objective)
    if [id(p) for p in actor] != [id(p) for p in params]:
        raise AssertionError("sb3's actor parameters differ from the name filter")

    def lib(v):
        return model.hessian_vector_product(actor, grad_kl, v)

    kl_pg = kl_divergence(old.distribution, new.distribution).mean()
    damping = model.cg_damping if variant == "correct" else 0.0
    pg = fisher_vector_product(kl_pg, params, damping=damping)
    n = grad_kl.numel()
    vectors = torch.randn(n_vectors, n, generator=gen, dtype=torch.float64)
    lib_out = torch.stack([lib(v) for v in vectors])
    pg_out = torch.stack([pg(v) for v in vectors])
    tol = _hvp_tolerance(lib, n, vectors, n_states * n)
    return Agreement.of(f"TRPO.hessian_vector_product vs pgbook FVP (moved={moved:g}, "
                      f"{variant})", lib_out, pg_out, tol, n_params=n,
                      cg_damping=model.cg_damping, max_abs_product=lib_out.abs().max().item())


# ---- (c) the accepted step of TRPO.train() ---------------------------------------------------
def _collect(model, seed: int):
    """One rollout of ``model.n_steps`` steps through sb3's own ``collect_rollouts``, then the
    buffer widened to float64 (its arrays are float32; the values are kept exactly)."""
    import numpy as np

    _, callback = model._setup_learn(model.n_steps, None)
    callback.on_training_start(locals(), globals())
    model.collect_rollouts(model.env, callback, model.rollout_buffer,
                           n_rollout_steps=model.n_steps)
    buf = model.rollout_buffer
    for name in ("observations", "values", "log_probs", "advantages", "returns"):
        setattr(buf, name, getattr(buf, name).astype(np.float64))
    return buf


def _batch_as_train_sees_it(buf) -> dict[str, torch.Tensor]:
    """The single full batch of ``rollout_buffer.get(batch_size=None)`` in ``TRPO.train``:
    the same ``np.random.permutation`` (drawn here and the generator state restored) of the
    flattened arrays."""
    import numpy as np

    size = buf.buffer_size * buf.n_envs
    state = np.random.get_state()
    perm = np.random.permutation(size)
    np.random.set_state(state)

    def flattened(a):
        return torch.as_tensor(buf.swap_and_flatten(a)[perm])

    return dict(obs=flattened(buf.observations),
                actions=flattened(buf.actions).long().flatten(),
                logp_old=flattened(buf.log_probs).flatten(),
                adv=flattened(buf.advantages).flatten())


def _pgbook_step(policy, batch, model, x0, variant) -> dict:
    """pgbook's trust-region step from the snapshot ``policy`` on ``batch``: g and the damped
    FVP of KL(pi_old || pi_theta), CG (from ``x0`` as sb3 does, unless ``zero_init``), the
    step scaled to (1/2) s^T (F + lambda I) s = delta, then pgbook's backtracking line search
    (accept the first shrink^j with exact KL(pi_old || pi_theta) <= delta and a gain > 0)."""
    params = _actor_params(policy)
    obs, actions, logp_old, adv = batch["obs"], batch["actions"], batch["logp_old"], batch["adv"]
    if variant != "no_normalize":  # TRPO(normalize_advantage=True), sb3's default
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    delta = model.target_kl
    with torch.no_grad():
        old = policy.get_distribution(obs).distribution
    dist = policy.get_distribution(obs).distribution
    objective = surrogate_objective(dist.log_prob(actions), logp_old, adv)
    g = flat_grad(objective, params, retain_graph=True)
    fvp = fisher_vector_product(kl_divergence(old, dist).mean(), params,
                                damping=model.cg_damping)
    start = None if variant == "zero_init" else x0
    step, x = trust_region_step(g, fvp, delta, cg_iters=model.cg_max_steps, x0=start)
    if variant == "unscaled":
        step = x
    eye = torch.eye(g.numel(), dtype=g.dtype)  # kappa(F + lambda I) for the tolerance
    condition = torch.linalg.cond(torch.stack([fvp(e) for e in eye])).item()
    theta_old = torch.nn.utils.parameters_to_vector(params).detach().clone()

    def trial():  # pgbook's acceptance test: exact KL(pi_old || pi_theta) and the gain
        dist = policy.get_distribution(obs).distribution
        return (kl_divergence(old, dist).mean().item(),
                (surrogate_objective(dist.log_prob(actions), logp_old, adv) - objective).item())

    fraction, kl, _ = line_search(params, step, trial, delta,
                                  shrink=model.line_search_shrinking_factor,
                                  steps=model.line_search_max_iter)
    with torch.no_grad():
        new = policy.get_distribution(obs).distribution
        kl_new_old = kl_divergence(new, old).mean().item() if fraction else 0.0
        delta_theta = torch.nn.utils.parameters_to_vector(params) - theta_old
    return dict(fraction=fraction, kl_old_new=kl, kl_new_old=kl_new_old, condition=condition,
                delta=delta_theta)


@torch_defaults
def compare_trpo_step(*, hidden: int = 16, n_steps: int = 64, seed: int = 0,
                      target_kl: float = 0.01, variant: str = "correct") -> Agreement:
    r"""The actor's parameter change in one real ``TRPO.train()`` (``sb3_contrib/trpo/trpo.py``,
    2.9.2) against pgbook's trust-region step recomputed from the same snapshot and batch.

    sb3-contrib TRPO on CartPole-v1, one hidden layer of ``hidden`` units, ``n_steps`` steps of
    one env, ``seed`` fixed, library defaults otherwise (target_kl 0.01, cg_max_steps 15,
    cg_damping 0.1, line search factor 0.8 up to 10 times, normalize_advantage, no
    sub-sampling; ``target_kl`` may be raised to make the line search
    backtrack), in float64. ``train()`` uses the whole buffer as one batch for the actor
    (``rollout_buffer.get(batch_size=None)``), then fits the critic on minibatches of
    ``batch_size`` with its own steps of ``policy.optimizer`` (actor grads set to None): only the
    actor parameters (names without "value") are read. The torch generator is seeded with
    ``seed`` before ``train()`` so that sb3's CG start x_0 = 1e-4 randn can be drawn again.

    Tolerance: cg_iters * m * kappa * u * max|delta theta| with m = n_steps * n_params and
    kappa the condition number of F + lambda I (computed): a first-order bound on how CG
    amplifies rounding, given that both sides accept the same line-search fraction.
    Variants: ``"zero_init"`` (pgbook's ``trust_region_step`` as is, CG from 0; the size of the
    convention difference), ``"unscaled"`` (no sqrt(2 delta / x^T M x) factor) and
    ``"no_normalize"`` (forgets sb3's advantage normalisation) must fail.
    """
    seed = V.positive_int(seed, "seed", minimum=0)
    hidden = V.positive_int(hidden, "hidden")
    n_steps = V.positive_int(n_steps, "n_steps", minimum=2)
    variant = V.choice(variant, "variant", STEP_VARIANTS)
    target_kl = V.number(target_kl, "target_kl", low=0.0, low_open=True)
    model = _trpo_model(hidden, n_steps, seed, target_kl=target_kl)
    buf = _collect(model, seed)
    snapshot = copy.deepcopy(model.policy)
    batch = _batch_as_train_sees_it(buf)
    params = _actor_params(model.policy)
    theta_old = torch.nn.utils.parameters_to_vector(params).detach().clone()
    torch.manual_seed(seed)
    x0 = 1e-4 * torch.randn_like(theta_old)
    torch.manual_seed(seed)
    model.train()
    lib = torch.nn.utils.parameters_to_vector(params).detach() - theta_old
    ref = _pgbook_step(snapshot, batch, model, x0, variant)
    n = theta_old.numel()
    # Scale by the larger of the two steps: when the library rejects every line-search trial its
    # step is 0, and a bound proportional to it alone would be 0 (ZeroDivisionError in ratio).
    scale = max(lib.abs().max().item(), ref["delta"].abs().max().item())
    tol = model.cg_max_steps * n_steps * n * ref["condition"] * U64 * scale
    logged = model.logger.name_to_value
    return Agreement.of(f"TRPO.train() actor step vs pgbook trust-region step ({variant})",
                      lib, ref["delta"], tol, n_params=n, condition=ref["condition"],
                      fraction=ref["fraction"], kl_old_new=ref["kl_old_new"],
                      kl_new_old=ref["kl_new_old"],
                      library_kl=float(logged["train/kl_divergence_loss"]),
                      library_success=float(logged["train/is_line_search_success"]),
                      max_abs_step=lib.abs().max().item())
