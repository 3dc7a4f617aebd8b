"""Fixtures of the trainer tests: a one-step continuous bandit for TD3 and SAC, and an idle task
(zero reward, never terminal) on which their critics must bootstrap."""

import gymnasium as gym
import numpy as np
import pytest

BANDIT = "pgbook-test/ContinuousBandit-v0"
IDLE = "pgbook-test/Idle-v0"


class ContinuousBandit(gym.Env):
    """One-step task: observe s ~ U[-1, 1]^2, act a in [-1, 1], reward -(a - a*(s))^2 with
    a*(s) = 0.5 + 0.25 s_0, then the episode terminates (no bootstrap: Q(s, a) = r(s, a))."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (2,), dtype=np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self._s = self.np_random.uniform(-1, 1, 2).astype(np.float32)
        return self._s.copy(), {}

    def step(self, action):
        best = 0.5 + 0.25 * self._s[0]
        reward = -float((action[0] - best) ** 2)
        return self._s.copy(), reward, True, False, {}


@pytest.fixture
def bandit() -> str:
    """The registered id of :class:`ContinuousBandit`."""
    if BANDIT not in gym.registry:
        gym.register(BANDIT, entry_point=ContinuousBandit)
    return BANDIT


class Idle(ContinuousBandit):
    """Observe s ~ U[-1, 1]^2 (the bandit's spaces and reset), which never changes; every
    action earns 0; never terminal, truncated after 5 steps. So every critic target
    bootstraps, and the true Q is 0."""

    def step(self, action):
        return self._s.copy(), 0.0, False, False, {}


@pytest.fixture
def idle() -> str:
    """The registered id of :class:`Idle` (episodes of 5 steps)."""
    if IDLE not in gym.registry:
        gym.register(IDLE, entry_point=Idle, max_episode_steps=5)
    return IDLE
