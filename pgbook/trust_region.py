"""The trust region of TRPO (chapter 7): conjugate gradient, Fisher-vector products, the step
scaled to the KL bound, and the flat parameter vectors they work on.

TRPO maximises the surrogate L(theta) = E_t[r_t(theta) A_t] subject to
KL(pi_old || pi_theta) <= delta (section 1.8 of the source; Schulman et al. 2015). Expanding
L to first order and the KL to second order around theta_old gives

    maximise g^T s  subject to  (1/2) s^T F s <= delta,

where g = grad L(theta_old) (the policy gradient) and F is the Hessian of the mean KL at
theta_old, which equals the Fisher information matrix E[grad log pi grad log pi^T]. The
solution is the natural gradient direction x = F^{-1} g scaled to the boundary,

    s = sqrt(2 delta / (x^T F x)) x.

F has as many rows as the policy has parameters, so it is never formed: conjugate gradient
solves F x = g with products F v only, and each product is a second backward pass through
grad KL (a Hessian-vector product, :func:`fisher_vector_product`).

A network's F is singular (chapter 7), so the code uses the damped F + lambda I throughout:
``fisher_vector_product(..., damping=lambda)`` multiplies by F + lambda I, CG solves
(F + lambda I) x = g, and :func:`trust_region_step` scales s so that
(1/2) s^T (F + lambda I) s = delta (eq-07-damped-step); the undamped quadratic KL is smaller
by lambda |s|^2 / 2.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from . import _validate as V

__all__ = [
    "conjugate_gradient",
    "fisher_vector_product",
    "flat_grad",
    "line_search",
    "trust_region_step",
    "unflatten",
]


def _check_params(params) -> list[torch.Tensor]:
    params = list(params)
    if not params or not all(isinstance(p, torch.Tensor) for p in params):
        raise ValueError("params must be a non-empty sequence of tensors")
    if not all(p.requires_grad for p in params):
        raise ValueError("every tensor in params must require grad")
    return params


def flat_grad(output: torch.Tensor, params: Sequence[torch.Tensor], *,
              create_graph: bool = False, retain_graph: bool | None = None) -> torch.Tensor:
    """grad of a scalar ``output`` w.r.t. ``params``, concatenated into one flat vector
    (parameters that do not influence ``output`` contribute zeros)."""
    params = _check_params(params)
    if not isinstance(output, torch.Tensor) or output.numel() != 1:
        raise ValueError("output must be a scalar tensor")
    if not output.requires_grad:
        raise ValueError("output has no autograd graph: compute it from params without "
                         "torch.no_grad() or .detach()")
    grads = torch.autograd.grad(output, params, create_graph=create_graph,
                                retain_graph=retain_graph, allow_unused=True)
    return torch.cat([(torch.zeros_like(p) if g is None else g).reshape(-1)
                      for g, p in zip(grads, params, strict=True)])


def unflatten(flat: torch.Tensor, shapes: Mapping[str, torch.Size]) -> dict[str, torch.Tensor]:
    """Cut a flat parameter vector back into named tensors of the given shapes, in order: the
    inverse of concatenating ``p.reshape(-1)`` over ``module.named_parameters()``, for
    ``torch.func.functional_call`` (chapters 7 and 10)."""
    V.tensor(flat, "flat", ndim=1, finite=False)
    if not isinstance(shapes, Mapping):
        raise ValueError(f"shapes must be a mapping name -> shape, got {type(shapes).__name__}")
    sizes = [torch.Size(shape).numel() for shape in shapes.values()]
    if sum(sizes) != flat.numel():
        raise ValueError(f"flat has {flat.numel()} entries, but shapes need {sum(sizes)}")
    pieces = flat.split(sizes)
    return {name: piece.reshape(shape)
            for (name, shape), piece in zip(shapes.items(), pieces, strict=True)}


def fisher_vector_product(kl: torch.Tensor, params: Sequence[torch.Tensor], *,
                          damping: float = 0.0) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""v -> (F + damping I) v, where F = Hessian of the scalar ``kl`` w.r.t. ``params``.

    ``kl`` must be the mean KL(pi_old || pi_theta) over the batch's states, with pi_old's
    distribution detached, evaluated at theta = theta_old: there its gradient is 0 and its
    Hessian is the Fisher information matrix (chapter 7). The first derivative is built once
    (``create_graph=True``); each product is one more backward pass, grad_theta (grad KL . v),
    so F is never formed. ``damping`` (>= 0) adds a multiple of the identity, as TRPO
    implementations do to keep CG stable when F is nearly singular.
    """
    params = _check_params(params)
    damping = V.number(damping, "damping", low=0.0)
    if not isinstance(kl, torch.Tensor) or kl.numel() != 1 or not kl.is_floating_point():
        raise ValueError("kl must be a scalar floating tensor (the mean KL)")
    if not kl.requires_grad:
        raise ValueError("kl has no autograd graph: compute it from params without "
                         "torch.no_grad() or .detach()")
    grad_kl = flat_grad(kl, params, create_graph=True)
    if not grad_kl.requires_grad:
        raise ValueError("kl must depend on params at least quadratically (its Hessian is 0)")
    n = grad_kl.numel()

    def product(v: torch.Tensor) -> torch.Tensor:
        V.tensor(v, "v", ndim=1)
        if v.numel() != n:
            raise ValueError(f"v must have {n} entries (one per parameter), got {v.numel()}")
        v = v.to(grad_kl.dtype).detach()
        return flat_grad(grad_kl @ v, params, retain_graph=True) + damping * v

    return product


def conjugate_gradient(matvec: Callable[[torch.Tensor], torch.Tensor], b: torch.Tensor, *,
                       iters: int = 10, tol: float = 1e-10,
                       x0: torch.Tensor | None = None) -> torch.Tensor:
    r"""Approximately solve M x = b for a symmetric positive-definite M given only v -> M v.

    Standard conjugate gradient (Nocedal and Wright, alg. 5.2) from x = ``x0`` (default 0;
    sb3-contrib starts from 1e-4 times a normal draw, which costs one more product): at most
    ``iters`` products after the start, stopping early once the squared residual
    |b - M x|^2 < ``tol``. In exact arithmetic it finishes in at most dim(b) iterations;
    TRPO uses about 10.
    """
    if not callable(matvec):
        raise ValueError("matvec must be a callable v -> M v")
    V.tensor(b, "b", ndim=1, nonempty=True)
    iters = V.positive_int(iters, "iters")
    tol = V.number(tol, "tol", low=0.0)
    if x0 is None:
        x = torch.zeros_like(b)
        residual = b.clone()  # b - M x with x = 0
    else:
        V.tensor(x0, "x0", ndim=1)
        V.same_shape(b=b, x0=x0)
        x = x0.clone()
        residual = b - matvec(x0)
    direction = residual.clone()
    rr = residual @ residual
    for _ in range(iters):
        if rr < tol:
            break
        Md = matvec(direction)
        if not isinstance(Md, torch.Tensor) or Md.shape != b.shape:
            got = tuple(Md.shape) if isinstance(Md, torch.Tensor) else type(Md).__name__
            raise ValueError(f"matvec must return a tensor shaped like b {tuple(b.shape)}, "
                             f"got {got}")
        if not V.all_finite(Md):
            raise ValueError("matvec returned non-finite values (nan or inf)")
        curvature = direction @ Md
        if not curvature > 0:
            raise ValueError(f"matvec is not positive definite along a CG direction "
                             f"(d^T M d = {curvature.item():.3g})")
        alpha = rr / curvature
        x = x + alpha * direction
        residual = residual - alpha * Md
        rr_new = residual @ residual
        direction = residual + (rr_new / rr) * direction
        rr = rr_new
    return x


def trust_region_step(g: torch.Tensor, fvp: Callable[[torch.Tensor], torch.Tensor],
                      max_kl: float, *, cg_iters: int = 10,
                      x0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""TRPO's full step: s = sqrt(2 delta / x^T M x) x with x ~ M^{-1} g from CG (chapter 7),
    where M is the matrix ``fvp`` multiplies by (F + lambda I for a damped Fisher product).

    Returns (s, x). s maximises the linear model g^T s on the ellipsoid (1/2) s^T M s = delta
    (``max_kl``), the quadratic model of KL(pi_old || pi_theta) <= delta. A line search
    (:func:`line_search`) then shrinks s until the true KL and surrogate are acceptable.
    ``x0`` starts CG (:func:`conjugate_gradient`).
    """
    V.tensor(g, "g", ndim=1)
    max_kl = V.number(max_kl, "max_kl", low=0.0, low_open=True)
    cg_iters = V.positive_int(cg_iters, "cg_iters")
    x = conjugate_gradient(fvp, g, iters=cg_iters, x0=x0)
    xFx = x @ fvp(x)
    if not xFx > 0:
        raise ValueError("the natural gradient has zero curvature; is g zero?")
    return torch.sqrt(2 * max_kl / xFx) * x, x


def line_search(params: Sequence[torch.Tensor], full_step: torch.Tensor,
                trial: Callable[[], tuple[float, float]], max_kl: float, *,
                shrink: float = 0.8, steps: int = 10) -> tuple[float, float, float]:
    r"""TRPO's backtracking line search (chapter 7): set the parameters to theta_old + f s for
    f = 1, shrink, shrink^2, ... (at most ``steps`` tries) and accept the first f at which
    ``trial()`` -> (KL(pi_old || pi_theta), surrogate gain) has KL <= ``max_kl`` and gain > 0.

    ``params`` hold theta_old on entry; on return they hold the accepted step, or theta_old
    again if no try was accepted. Returns (f, KL, gain) of the accepted try, or (0, 0, 0).
    """
    params = _check_params(params)
    theta_old = parameters_to_vector(params).detach()
    V.tensor(full_step, "full_step", ndim=1)
    V.same_shape(full_step=full_step, theta=theta_old)
    if not callable(trial):
        raise ValueError("trial must be a callable () -> (kl, gain)")
    max_kl = V.number(max_kl, "max_kl", low=0.0, low_open=True)
    shrink = V.number(shrink, "shrink", low=0.0, high=1.0, low_open=True, high_open=True)
    steps = V.positive_int(steps, "steps")
    with torch.no_grad():
        fraction = 1.0
        for _ in range(steps):
            vector_to_parameters(theta_old + fraction * full_step, params)
            kl, gain = trial()
            if kl <= max_kl and gain > 0:
                return fraction, kl, gain
            fraction *= shrink
        vector_to_parameters(theta_old, params)  # no acceptable step: stay
    return 0.0, 0.0, 0.0
