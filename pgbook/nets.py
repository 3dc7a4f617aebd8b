"""Small networks for policies and values: an MLP, categorical and Gaussian policies, V(s);
for the off-policy actor-critics (chapters 10-11) a deterministic policy, the tanh-squashed
Gaussian policy of SAC, the uniform warm-up policy, an ensemble of Q(s, a) critics, Polyak
averaging of target networks and clipping actions to a box.

A policy here is a module with a method ``dist(obs)`` that returns a ``torch.distributions``
object for pi_theta(. | s); sampling, log pi(a|s) and the entropy all come from that object,
never from hand-written densities. Its score function grad_theta log pi(a|s) is what every
policy-gradient estimator multiplies by a weight Psi (chapter 1; (0.6)-(0.8)).

Initialisation follows common practice for policy gradients (CleanRL, SB3): orthogonal weights,
gain sqrt(2) in hidden layers, a small output gain (0.01) for policy heads so the initial
policy is close to uniform (categorical) or to N(0, I) (Gaussian), gain 1 for value heads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import gymnasium as gym
import torch
from torch import nn
from torch.distributions import (
    AffineTransform,
    Categorical,
    Independent,
    Normal,
    TanhTransform,
    TransformedDistribution,
    Uniform,
)

from . import _validate as V

__all__ = ["MLP", "CategoricalPolicy", "GaussianPolicy", "ValueNet", "policy_for",
           "DeterministicPolicy", "SquashedGaussianPolicy", "UniformPolicy", "QEnsemble",
           "clip_to_box", "default_dtype", "polyak_update"]


@contextmanager
def default_dtype(dtype: torch.dtype) -> Iterator[None]:
    """Make ``dtype`` torch's default inside the block, and restore the previous default after.

    The trainers build their networks in float32 (:func:`pgbook.algos.run.training_run`); a
    chapter that works in float64 draws a network's initial weights the same way with
    ``with default_dtype(torch.float32): net = ...`` and then casts it with ``net.double()``
    (chapters 5 and 9).
    """
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating torch.dtype, got {dtype!r}")
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        yield
    finally:
        torch.set_default_dtype(previous)


def _check_hidden(hidden) -> tuple[int, ...]:
    if isinstance(hidden, int) or not isinstance(hidden, Sequence):
        raise ValueError(f"hidden must be a sequence of layer widths such as (64, 64), "
                         f"got {hidden!r}")
    return tuple(V.positive_int(h, "hidden width") for h in hidden)


def _check_input(x, name: str, width: int) -> torch.Tensor:
    """Check a network input: a finite floating tensor of shape (..., width), e.g. (width,),
    (B, width) or (T, N, width). Cheap (:func:`pgbook._validate.all_finite`): the trainers
    call the networks at every step."""
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0 or x.shape[-1] != width:
        raise ValueError(f"{name} must have shape (..., {width}), e.g. ({width},) or "
                         f"(B, {width}), got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must have a floating dtype, got {x.dtype}")
    if not V.all_finite(x):
        raise ValueError(f"{name} contains non-finite values (nan or inf)")
    return x


def _check_obs(obs, obs_dim: int, weight: torch.Tensor) -> torch.Tensor:
    """Check an observation tensor of shape (..., obs_dim) and cast it to the weights'
    dtype."""
    return _check_input(obs, "obs", obs_dim).to(weight.dtype)


class MLP(nn.Module):
    r"""A multilayer perceptron x -> W_L phi(... phi(W_1 x + b_1) ...) + b_L.

    ``in_dim`` inputs, ``out_dim`` outputs, hidden layers of the widths in ``hidden`` with the
    activation phi (a module class, e.g. ``nn.Tanh``). Weights are orthogonal with gain
    ``hidden_gain`` (default sqrt(2)) in hidden layers and ``out_gain`` in the last; biases 0.
    ``forward`` maps finite floating inputs (..., in_dim) to (..., out_dim).
    """

    def __init__(self, in_dim: int, out_dim: int, hidden: Sequence[int] = (64, 64),
                 activation: type[nn.Module] = nn.Tanh, *, out_gain: float = 1.0,
                 hidden_gain: float = math.sqrt(2)) -> None:
        super().__init__()
        self.in_dim = V.positive_int(in_dim, "in_dim")
        self.out_dim = V.positive_int(out_dim, "out_dim")
        widths = (self.in_dim, *_check_hidden(hidden), self.out_dim)
        if not (isinstance(activation, type) and issubclass(activation, nn.Module)):
            raise ValueError(f"activation must be an nn.Module class such as nn.Tanh, "
                             f"got {activation!r}")
        out_gain = V.number(out_gain, "out_gain", low=0.0)
        hidden_gain = V.number(hidden_gain, "hidden_gain", low=0.0)
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            linear = nn.Linear(a, b)
            last = i == len(widths) - 2
            nn.init.orthogonal_(linear.weight, gain=out_gain if last else hidden_gain)
            nn.init.zeros_(linear.bias)
            layers.append(linear)
            if not last:
                layers.append(activation())
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(_check_input(x, "x", self.in_dim))


class CategoricalPolicy(nn.Module):
    r"""Softmax policy pi_theta(a|s) = exp(f_theta(s)_a) / sum_b exp(f_theta(s)_b) over n actions.

    f_theta is an :class:`MLP` producing logits; ``dist(obs)`` returns
    ``Categorical(logits=f_theta(obs))``, the softmax policy of chapter 1 with a network in place
    of the table.
    """

    def __init__(self, obs_dim: int, n_actions: int, hidden: Sequence[int] = (64, 64),
                 activation: type[nn.Module] = nn.Tanh) -> None:
        super().__init__()
        self.obs_dim = V.positive_int(obs_dim, "obs_dim")
        self.n_actions = V.positive_int(n_actions, "n_actions", minimum=2)
        self.logits = MLP(obs_dim, n_actions, hidden, activation, out_gain=0.01)

    def dist(self, obs: torch.Tensor) -> Categorical:
        """pi_theta(. | obs) for obs of shape (..., obs_dim); the batch shape is obs's leading
        shape: () for one observation, (B,) for B of them."""
        obs = _check_obs(obs, self.obs_dim, self.logits.layers[0].weight)
        return Categorical(logits=self.logits(obs), validate_args=False)

    def forward(self, obs: torch.Tensor) -> Categorical:
        return self.dist(obs)


class GaussianPolicy(nn.Module):
    r"""Diagonal Gaussian policy pi_theta(a|s) = N(a; mu_theta(s), diag(sigma^2)).

    mu_theta is an :class:`MLP`; log sigma is a state-independent parameter (one per action
    dimension, initialised to ``log_std_init``). ``dist(obs)`` returns
    ``Independent(Normal(mu, sigma), 1)``, so ``log_prob(a)`` sums over action dimensions and
    has the batch shape of ``obs``. Actions are unbounded; clip them to the action space in the
    environment, not in the log-probability.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (64, 64),
                 activation: type[nn.Module] = nn.Tanh, *, log_std_init: float = 0.0) -> None:
        super().__init__()
        self.obs_dim = V.positive_int(obs_dim, "obs_dim")
        self.act_dim = V.positive_int(act_dim, "act_dim")
        log_std_init = V.number(log_std_init, "log_std_init")
        self.mean = MLP(obs_dim, act_dim, hidden, activation, out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), log_std_init))

    def dist(self, obs: torch.Tensor) -> Independent:
        """pi_theta(. | obs) for obs of shape (..., obs_dim); batch shape obs.shape[:-1], event
        shape (act_dim,)."""
        obs = _check_obs(obs, self.obs_dim, self.log_std)
        mu = self.mean(obs)
        return Independent(Normal(mu, self.log_std.exp().expand_as(mu), validate_args=False), 1)

    def forward(self, obs: torch.Tensor) -> Independent:
        return self.dist(obs)


class ValueNet(nn.Module):
    r"""A state-value network V_phi(s): obs of shape (B, obs_dim) -> values of shape (B,).

    Used as a learned baseline b(s) = V_phi(s) (chapter 5) and as the critic (chapter 6).
    In general (..., obs_dim) -> (...): a single observation (obs_dim,) gives a scalar.
    """

    def __init__(self, obs_dim: int, hidden: Sequence[int] = (64, 64),
                 activation: type[nn.Module] = nn.Tanh) -> None:
        super().__init__()
        self.obs_dim = V.positive_int(obs_dim, "obs_dim")
        self.net = MLP(obs_dim, 1, hidden, activation, out_gain=1.0)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = _check_obs(obs, self.obs_dim, self.net.layers[0].weight)
        return self.net(obs).squeeze(-1)


def policy_for(observation_space: gym.Space, action_space: gym.Space,
               hidden: Sequence[int] = (64, 64),
               activation: type[nn.Module] = nn.Tanh) -> CategoricalPolicy | GaussianPolicy:
    """A :class:`CategoricalPolicy` for a ``Discrete`` action space, a :class:`GaussianPolicy`
    for a 1-D ``Box``; observations must be a 1-D ``Box``. Pass single-env spaces
    (``envs.single_observation_space``, ``envs.single_action_space``)."""
    if not isinstance(observation_space, gym.spaces.Box) or len(observation_space.shape) != 1:
        raise ValueError(f"observation_space must be a 1-D Box, got {observation_space}")
    obs_dim = observation_space.shape[0]
    if isinstance(action_space, gym.spaces.Discrete):
        return CategoricalPolicy(obs_dim, int(action_space.n), hidden, activation)
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return GaussianPolicy(obs_dim, action_space.shape[0], hidden, activation)
    raise ValueError(f"action_space must be Discrete or a 1-D Box, got {action_space}")


# ---- Off-policy actor-critics: DDPG/TD3 (chapter 10) and SAC (chapter 11) ----


def _action_box(low, high, act_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(centre, half-width) of the action box [low, high] as float tensors of shape (act_dim,).
    ``low``/``high`` are scalars or sequences of length act_dim (e.g. a Box's low/high)."""
    try:
        low = torch.as_tensor(low, dtype=torch.get_default_dtype()).expand(act_dim).clone()
        high = torch.as_tensor(high, dtype=torch.get_default_dtype()).expand(act_dim).clone()
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"low and high must be numbers or sequences of length act_dim="
                         f"{act_dim}, got {low!r}, {high!r}") from None
    if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
        raise ValueError("the action bounds low and high must be finite")
    if not bool((high > low).all()):
        raise ValueError(f"the action bounds must satisfy high > low, got low={low.tolist()}, "
                         f"high={high.tolist()}")
    return (high + low) / 2, (high - low) / 2


class DeterministicPolicy(nn.Module):
    r"""A deterministic policy a = mu_theta(s) = c + h * tanh(f_theta(s)) inside a box.

    f_theta is an :class:`MLP`; c and h are the centre and half-width of the action box
    [low, high] (buffers ``centre`` and ``scale``), so mu_theta(s) always lies inside it. The
    actor of DPG/DDPG/TD3 (chapter 10): its gradient is the DPG
    E_s[grad_theta mu_theta(s)^T grad_a Q(s, a) |_{a = mu_theta(s)}].
    ``forward`` maps (..., obs_dim) to (..., act_dim).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256),
                 activation: type[nn.Module] = nn.ReLU, *, low=-1.0, high=1.0) -> None:
        super().__init__()
        self.obs_dim = V.positive_int(obs_dim, "obs_dim")
        self.act_dim = V.positive_int(act_dim, "act_dim")
        self.net = MLP(obs_dim, act_dim, hidden, activation, out_gain=1.0)
        centre, scale = _action_box(low, high, act_dim)
        self.register_buffer("centre", centre)
        self.register_buffer("scale", scale)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        obs = _check_obs(obs, self.obs_dim, self.centre)
        return self.centre + self.scale * torch.tanh(self.net(obs))


_TANH = TanhTransform()  # stateless (no cache): used for its stable log|d tanh(u)/du|


class SquashedGaussianPolicy(nn.Module):
    r"""The tanh-squashed Gaussian policy of SAC (chapter 11).

        u ~ N(m_theta(s), diag sigma_theta(s)^2),    a = c + h * tanh(u),

    with c, h the centre and half-width of the action box (buffers ``centre``, ``scale``). By
    the change of variables, one term per action dimension i,

        log pi(a|s) = log N(u; m, sigma^2) - sum_i log(1 - tanh(u_i)^2) - sum_i log h_i.

    ``dist(obs)`` returns exactly this law as a ``TransformedDistribution`` of
    ``Independent(Normal(m, sigma), 1)`` by ``TanhTransform`` then ``AffineTransform``.
    ``TanhTransform`` computes log(1 - tanh(u)^2) in the stable form
    2 (log 2 - u - softplus(-2u)), finite for every u. Take a and log pi(a|s) together: from
    :meth:`sample`, or from the *same* ``dist`` object (``rsample`` then ``log_prob``: the
    transforms cache u). Recomputing u = atanh((a - c)/h) from a stored a gives inf once
    tanh(u) rounds to +-1.

    m and log sigma come from one :class:`MLP` with 2 * act_dim outputs; log sigma is squashed
    smoothly into [log_std_min, log_std_max] (as in CleanRL's SAC), so sigma can neither
    vanish nor explode.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256),
                 activation: type[nn.Module] = nn.ReLU, *, low=-1.0, high=1.0,
                 log_std_min: float = -5.0, log_std_max: float = 2.0) -> None:
        super().__init__()
        self.obs_dim = V.positive_int(obs_dim, "obs_dim")
        self.act_dim = V.positive_int(act_dim, "act_dim")
        self.log_std_min = V.number(log_std_min, "log_std_min")
        self.log_std_max = V.number(log_std_max, "log_std_max", low=self.log_std_min,
                                    low_open=True)
        self.net = MLP(obs_dim, 2 * act_dim, hidden, activation, out_gain=1.0)
        centre, scale = _action_box(low, high, act_dim)
        self.register_buffer("centre", centre)
        self.register_buffer("scale", scale)

    def base(self, obs: torch.Tensor) -> Independent:
        """The Gaussian of the pre-squash u: N(m_theta(s), diag sigma_theta(s)^2), event
        shape (act_dim,), batch shape obs.shape[:-1]."""
        obs = _check_obs(obs, self.obs_dim, self.centre)
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        span = self.log_std_max - self.log_std_min
        log_std = self.log_std_min + 0.5 * span * (torch.tanh(log_std) + 1)
        return Independent(Normal(mean, log_std.exp(), validate_args=False), 1)

    def dist(self, obs: torch.Tensor) -> TransformedDistribution:
        """pi_theta(. | obs), the law of a = c + h tanh(u) with u ~ :meth:`base`."""
        transforms = [TanhTransform(cache_size=1),
                      AffineTransform(self.centre, self.scale, event_dim=1, cache_size=1)]
        return TransformedDistribution(self.base(obs), transforms, validate_args=False)

    def forward(self, obs: torch.Tensor) -> TransformedDistribution:
        return self.dist(obs)

    def sample(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action a = c + h tanh(u), u = m + sigma * eps, eps ~ N(0, I), and
        its log pi(a|s); gradients flow through both into theta.

        The same law and log-density as :meth:`dist` (``tests/test_nets.py`` checks it),
        assembled from the same ``torch.distributions`` pieces: ``Normal.log_prob(u)`` minus
        ``TanhTransform.log_abs_det_jacobian`` (the stable form) minus sum_i log h_i. Building
        a ``TransformedDistribution`` costs more than the small networks themselves, and SAC
        calls this twice per update.
        """
        base = self.base(obs)
        u = base.rsample()
        tanh_u = torch.tanh(u)
        log_det = _TANH.log_abs_det_jacobian(u, tanh_u).sum(-1) + self.scale.log().sum()
        return self.centre + self.scale * tanh_u, base.log_prob(u) - log_det

    def mode(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action c + h tanh(m_theta(s)), e.g. to evaluate the policy."""
        return self.centre + self.scale * torch.tanh(self.base(obs).mean)


class UniformPolicy:
    """Uniform random actions on the box [low, high]: the warm-up of the off-policy trainers
    before ``learning_starts`` (chapters 10-11). ``dist(obs)`` has the batch shape of ``obs``
    like the policies above; there is nothing to train."""

    def __init__(self, low, high) -> None:
        self.low = torch.as_tensor(low, dtype=torch.float32)
        self.high = torch.as_tensor(high, dtype=torch.float32)
        if self.low.shape != self.high.shape or not bool((self.low < self.high).all()):
            raise ValueError("low and high must have one shape with low < high everywhere")

    def dist(self, obs: torch.Tensor) -> Independent:
        """Uniform on the box, batch shape obs.shape[:-1] (the values of obs are not read)."""
        if not isinstance(obs, torch.Tensor) or obs.dim() == 0:
            got = tuple(obs.shape) if isinstance(obs, torch.Tensor) else type(obs).__name__
            raise ValueError(f"obs must be a torch.Tensor of shape (..., obs_dim), got {got}")
        shape = (*obs.shape[:-1], *self.low.shape)
        return Independent(Uniform(self.low.expand(shape), self.high.expand(shape)), 1)


def clip_to_box(action: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Clamp each action dimension into [low_i, high_i] (what the environment receives).

    ``action`` (..., act_dim), ``low`` and ``high`` (act_dim,) or broadcastable: finite
    floating tensors with low <= high.
    """
    for value, name in ((action, "action"), (low, "low"), (high, "high")):
        V.tensor(value, name)
    if not bool((low <= high).all()):
        raise ValueError(f"high must be >= low everywhere, got low={low.tolist()}, "
                         f"high={high.tolist()}")
    return torch.maximum(torch.minimum(action, high), low)


class QEnsemble(nn.Module):
    r"""n independent action-value networks Q_{w_j}(s, a), j = 1..n, evaluated in one pass.

    Each member is an MLP on the concatenation [s, a] with the layer widths
    (obs_dim + act_dim, *hidden, 1), ReLU between layers, orthogonal weights (gain sqrt(2),
    output gain 1) and zero biases, like :class:`MLP`. The n members' weights are stacked as
    (n, in, out) tensors, so every layer is one batched matrix product ``torch.baddbmm``
    instead of n small ones: the same function as n separate MLPs, with fewer calls (this is
    what makes twin critics cheap on a CPU). ``forward(obs, act)`` maps (B, obs_dim) and
    (B, act_dim) to (n, B); ``q(obs, act).min(0).values`` is the twin-critic minimum of
    TD3/SAC (chapters 10-11), n = 1 gives DDPG's single critic.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden: Sequence[int] = (256, 256),
                 n: int = 2) -> None:
        super().__init__()
        self.obs_dim = V.positive_int(obs_dim, "obs_dim")
        self.act_dim = V.positive_int(act_dim, "act_dim")
        self.n = V.positive_int(n, "n")
        widths = (self.obs_dim + self.act_dim, *_check_hidden(hidden), 1)
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            gain = 1.0 if i == len(widths) - 2 else math.sqrt(2)
            w = torch.empty(self.n, b, a)
            for j in range(self.n):  # orthogonal like nn.Linear's (out, in) weight in MLP
                nn.init.orthogonal_(w[j], gain=gain)
            self.weights.append(nn.Parameter(w.transpose(1, 2).contiguous()))
            self.biases.append(nn.Parameter(torch.zeros(self.n, 1, b)))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        weight = self.weights[0]
        if not isinstance(obs, torch.Tensor) or obs.dim() != 2 or obs.shape[1] != self.obs_dim:
            shape = tuple(obs.shape) if isinstance(obs, torch.Tensor) else type(obs).__name__
            raise ValueError(f"obs must be a tensor of shape (B, {self.obs_dim}), got {shape}")
        if not isinstance(act, torch.Tensor) or act.shape != (obs.shape[0], self.act_dim):
            shape = tuple(act.shape) if isinstance(act, torch.Tensor) else type(act).__name__
            raise ValueError(f"act must be a tensor of shape ({obs.shape[0]}, {self.act_dim}) "
                             f"(B rows like obs), got {shape}")
        for x, name in ((obs, "obs"), (act, "act")):
            _check_input(x, name, x.shape[-1])  # dtype and values; the shapes are checked
        x = torch.cat([obs, act], -1).to(weight.dtype).expand(self.n, -1, -1)  # (n, B, in)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            x = torch.baddbmm(b, x, w)  # b + x @ w for each member
            if i < last:
                x = torch.relu(x)
        return x.squeeze(-1)

    def member(self, j: int) -> nn.Sequential:
        """A standalone copy of member j as ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU``
        (same function; for inspection and tests)."""
        if isinstance(j, bool) or not isinstance(j, int) or not 0 <= j < self.n:
            raise ValueError(f"j must be an integer in [0, {self.n}), got {j!r}")
        layers: list[nn.Module] = []
        for w, b in zip(self.weights, self.biases, strict=True):
            linear = nn.Linear(w.shape[1], w.shape[2], dtype=w.dtype)
            with torch.no_grad():
                linear.weight.copy_(w[j].T)
                linear.bias.copy_(b[j, 0])
            layers += [linear, nn.ReLU()]
        return nn.Sequential(*layers[:-1])


@torch.no_grad()
def polyak_update(target: nn.Module, source: nn.Module, tau: float) -> None:
    r"""Target-network update w' <- (1 - tau) w' + tau w for every parameter (Polyak averaging).

    ``tau = 1`` copies ``source`` into ``target``; buffers (e.g. action bounds) are copied.
    The target networks of DDPG/TD3/SAC (chapters 10-11) track the learned ones slowly, so the
    critic's regression target does not move with every gradient step.
    """
    tau = V.number(tau, "tau", low=0.0, high=1.0, low_open=True)
    if not (isinstance(target, nn.Module) and isinstance(source, nn.Module)):
        raise ValueError("target and source must be torch.nn.Module instances")
    pairs = list(zip(target.parameters(), source.parameters(), strict=False))
    if (len(pairs) != len(list(source.parameters()))
            or len(pairs) != len(list(target.parameters()))
            or any(t.shape != s.shape for t, s in pairs)):
        raise ValueError("target and source must have parameters of the same shapes "
                         "(copies of one architecture)")
    for t, s in pairs:
        t.lerp_(s, tau)  # t + tau (s - t); tau = 1 copies s exactly
    for t, s in zip(target.buffers(), source.buffers(), strict=False):
        t.copy_(s)
