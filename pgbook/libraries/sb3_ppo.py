r"""The gradient Stable-Baselines3 2.9.2's ``PPO.train()`` computes, against pgbook's PPO-Clip.

SB3's clipped surrogate is inline in ``stable_baselines3/ppo/ppo.py, PPO.train`` (no reusable
function, so no adapter for :func:`pgbook.conformance.check_ppo_clip`; the check runs on the
real ``train()`` by intercepting its optimiser step):

    A <- (A - mean A) / (std A + 1e-8)        if normalize_advantage (torch.std: unbiased),
    ratio = exp(logp - old_logp),
    policy_loss = -mean(min(A ratio, A clamp(ratio, 1 - eps, 1 + eps))),
    loss = policy_loss + ent_coef * entropy_loss + vf_coef * value_loss,

then ``loss.backward()``, ``clip_grad_norm_(max_grad_norm)`` and ``optimizer.step()``. With
ent_coef = vf_coef = 0 and max_grad_norm = inf (the clip coefficient clamps to 1: grads
multiplied by 1.0, exact), the recorded gradient is that of -L^CLIP, i.e. minus autograd of
:func:`pgbook.objectives.ppo_clip` (the objective to maximise) on the same policy's
``evaluate_actions`` log-probs. pgbook's trainer (:mod:`pgbook.algos.ppo`, ``PPOConfig.
normalize_advantage = True``) normalises the same way: per minibatch, (a - a.mean()) /
(a.std() + 1e-8), unbiased std.

Tolerance (two float32 computations of the same math; u = 2^-24). The gradient is
(1/n) sum_i w_i g_i with w_i = 1_not-clip r_i A_i and g_i = grad logp_i. SB3's float32 w_i is
off by <= (n + 8) u W_i, W_i = r_i (|A_i| + max_j |A_j|) (mean and std of n numbers:
<= n u; exp, the subtraction, the division, the product: a few u each); the backward
through the MLP sums n samples and H hidden units, <= (n + 2H + 8) u per element relative to
the sum of absolute terms, which we take as (1/n) sum_i W_i |g_i| (per-sample gradients; this
assumes no cancellation inside one sample's backward, where |g_i| stands for the sum of
absolute products). Both sides round, so

    tol = 2 (2n + 2H + 16) u max_elements (1/n) sum_i W_i |g_i|.

pgbook's side computes ratio and advantages in float64 and backpropagates into float32.
"""

from __future__ import annotations

import math

import torch

from .. import _validate as V
from ..objectives import ppo_clip
from . import Agreement, torch_defaults
from .sb3 import SCRIPTS, U32, _scripted_env

__all__ = ["PPO_VARIANTS", "RATIOS", "compare_ppo_gradient"]

PPO_VARIANTS = ("correct", "inside_only", "unnormalized")
#: the ratios the old log-probs are moved to: below, inside and above the band [0.8, 1.2]
#: (and r = 1), each at least 0.1 from a bound so float32 and float64 agree on the region
RATIOS = (0.5, 0.7, 0.9, 1.0, 1.1, 1.3, 1.6)


def _build(n_steps, normalize, eps, seed):
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    logs = [[] for _ in SCRIPTS]
    venv = DummyVecEnv([lambda s=s, log=log: _scripted_env(s, log)
                        for s, log in zip(SCRIPTS, logs, strict=True)])
    model = PPO("MlpPolicy", venv, n_steps=n_steps, batch_size=n_steps * len(SCRIPTS),
                n_epochs=1, ent_coef=0.0, vf_coef=0.0, clip_range=eps,
                normalize_advantage=normalize, seed=seed, device="cpu",
                policy_kwargs={"net_arch": [16, 16]})
    model.max_grad_norm = math.inf
    _, callback = model._setup_learn(n_steps * len(SCRIPTS))
    model.collect_rollouts(model.env, callback, model.rollout_buffer, n_steps)
    return model


def _intercepted_grads(model):
    """Run the real PPO.train() with optimizer.step replaced by a recorder (no update)."""
    params = list(model.policy.parameters())
    seen = []

    def record(*args, **kwargs):
        seen.append([torch.zeros_like(p) if p.grad is None else p.grad.detach().clone()
                     for p in params])

    model.policy.optimizer.step = record
    model.train()
    if len(seen) != 1:
        raise RuntimeError(f"expected one optimiser step, saw {len(seen)}")
    return torch.cat([g.flatten() for g in seen[0]]).double()


def _weights(variant, logp, old, adv, normalize, eps):
    """pgbook's objective J (float64) on the SB3 policy's log-probs, correct or mistaken."""
    a = adv
    if normalize and variant != "unnormalized":
        a = (a - a.mean()) / (a.std() + 1e-8)
    if variant == "inside_only":   # gradient only where r is inside the band, whatever A
        r = torch.exp(logp - old)
        inside = ((r >= 1 - eps) & (r <= 1 + eps)).to(r.dtype)
        return (inside * r * a).mean(), a
    return ppo_clip(logp, old, a, eps), a


def _tolerance(policy, obs, actions, logp_old, a, eps, hidden):
    """The bound of the module docstring from per-sample gradients."""
    params = list(policy.parameters())
    n = len(a)
    total = None
    amax = a.abs().max()
    with torch.no_grad():
        r = torch.exp(policy.evaluate_actions(obs, actions)[1].double() - logp_old)
    for i in range(n):
        policy.zero_grad()
        policy.evaluate_actions(obs[i:i + 1], actions[i:i + 1])[1].sum().backward()
        g = torch.cat([torch.zeros(p.numel()) if p.grad is None else p.grad.flatten()
                       for p in params]).double().abs()
        term = r[i] * (a[i].abs() + amax) * g
        total = term if total is None else total + term
    policy.zero_grad()
    return 2 * (2 * n + 2 * hidden + 16) * U32 * (total / n).max().item()


def _regions(r, a, eps):
    out = {}
    for sign, name in ((1, "A>0"), (-1, "A<0")):
        s = (a * sign) > 0
        out[(name, "below")] = int((s & (r < 1 - eps)).sum())
        out[(name, "inside")] = int((s & (r >= 1 - eps) & (r <= 1 + eps)).sum())
        out[(name, "above")] = int((s & (r > 1 + eps)).sum())
    return out


@torch_defaults
def compare_ppo_gradient(*, normalize_advantage: bool = True, variant: str = "correct",
                         n_steps: int = 32, eps: float = 0.2,
                         seed: int = 0) -> Agreement:
    r"""Collect one SB3 rollout (PPO, ``MlpPolicy`` [16, 16], the scripted two-env
    ``DummyVecEnv`` of :mod:`pgbook.libraries.sb3`), move the buffer's old log-probs to
    logp - log(r) with r cycling through :data:`RATIOS` and set the advantages to a fixed
    pattern of both signs, run the real ``PPO.train()`` (one epoch, one minibatch of all
    n = 2 n_steps samples, ent_coef = vf_coef = 0, max_grad_norm = inf) with the optimiser
    step intercepted, and compare its gradient with autograd of -ppo_clip (pgbook) on
    ``policy.evaluate_actions``. ``variant``: "correct", "inside_only" (the indicator of
    r in the band, whatever the sign of A) or "unnormalized" (pgbook skips the advantage
    normalisation SB3 does; with ``normalize_advantage=False`` it equals "correct").
    Tolerance: the module docstring's bound. Returns an :class:`~pgbook.libraries.Agreement`
    whose ``extra["regions"]`` counts the samples per (sign of A, below / inside / above)."""
    normalize = V.flag(normalize_advantage, "normalize_advantage")
    variant = V.choice(variant, "variant", PPO_VARIANTS)
    n_steps = V.positive_int(n_steps, "n_steps", minimum=4)
    eps = V.number(eps, "eps", low=0.0, high=0.5, low_open=True)
    seed = V.positive_int(seed, "seed", minimum=0)
    model = _build(n_steps, normalize, eps, seed)
    buf, policy = model.rollout_buffer, model.policy
    T, N = buf.log_probs.shape
    n = T * N
    # SB3's get() flattens with swap_and_flatten: sample index = env * T + t.
    obs = torch.as_tensor(buf.observations.swapaxes(0, 1).reshape(n, -1))
    actions = torch.as_tensor(buf.actions.swapaxes(0, 1).reshape(n)).long()
    ratios = torch.tensor([RATIOS[i % len(RATIOS)] for i in range(n)], dtype=torch.float64)
    adv = torch.tensor([(1.0 + (i % 5)) * (1 if (i // len(RATIOS)) % 2 else -1) + 0.25
                        for i in range(n)], dtype=torch.float64)
    with torch.no_grad():
        logp_now = policy.evaluate_actions(obs, actions)[1].double()
    old = (logp_now - torch.log(ratios)).float().double()
    buf.log_probs[:] = old.reshape(N, T).T.numpy()
    buf.advantages[:] = adv.reshape(N, T).T.numpy()
    lib = _intercepted_grads(model)
    policy.set_training_mode(True)
    policy.zero_grad()
    logp = policy.evaluate_actions(obs, actions)[1]
    J, a = _weights(variant, logp.double(), old, adv, normalize, eps)
    (-J).backward()
    ref = torch.cat([torch.zeros(p.numel()) if p.grad is None else p.grad.flatten()
                     for p in policy.parameters()]).double()
    a_sb3 = (adv - adv.mean()) / (adv.std() + 1e-8) if normalize else adv
    tol = _tolerance(policy, obs, actions, old, a_sb3, eps, 16)
    with torch.no_grad():
        r = torch.exp(policy.evaluate_actions(obs, actions)[1].double() - old)
    return Agreement.of(f"SB3 PPO.train() gradient vs pgbook ppo_clip [{variant}, "
                        f"normalize={normalize}]", lib, ref, tol,
                        regions=_regions(r, a_sb3, eps))
