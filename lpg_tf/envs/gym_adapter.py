"""Gymnasium adapter for the 15 training environments of Appendix A.

  lpg_tf.envs.register_gymnasium()
  env = gymnasium.make("lpg_tf/tabular-dense-v0")
  env = gymnasium.make("lpg_tf/random-small-v0",
                       action_space="move_and_collect")
  env = gymnasium.make("lpg_tf/chain-long_noisy-v0")

Each gymnasium environment wraps one in-graph environment with a batch of one
and has the same dynamics. The lifetime/episode split of Appendix A maps onto
gymnasium's seeding:

  * `reset(seed=s)` starts a new lifetime drawn from s (a new lifetime
    instance: tabular object layout, chain length, ...) and its first episode;
  * `reset()` starts the next episode of the current lifetime (the first call
    on an environment that was never seeded draws a lifetime from `np_random`).

Episodes end as in the in-graph environment: `terminated` where the transition
ended the episode by itself, `truncated` where it hit the step limit. The last
observation of an episode is its true terminal one; there is no automatic
reset, so call `reset()` to go on.
"""

import os
from typing import Any, Dict, Optional, Tuple

import gymnasium
from gymnasium import spaces
import numpy as np
import tensorflow as tf

from lpg_tf import types
from lpg_tf.envs import registry

ID_PREFIX = "lpg_tf/"
ID_SUFFIX = "-v0"
_ENTRY_POINT = "lpg_tf.envs.gym_adapter:GymEnvironment"
_VECTOR_ENTRY_POINT = "lpg_tf.envs.gym_vector:VectorGymEnvironment"
# TensorFlow cannot run in a process forked from one where it has run (its
# thread pools do not survive a fork): gymnasium's "async" vector mode forks.
_IMPORTED_BY_PID = os.getpid()


def gym_id(name: str) -> str:
  """The gymnasium id of a registry name, e.g. "lpg_tf/chain-long-v0"."""
  return ID_PREFIX + name.replace("/", "-") + ID_SUFFIX


def register_gymnasium() -> None:
  """Registers one gymnasium id per `registry.NAMES` entry; idempotent.

  `gymnasium.make` builds a `GymEnvironment`; `gymnasium.make_vec` builds a
  `gym_vector.VectorGymEnvironment` (all environments in one TensorFlow step).
  """
  for name in registry.NAMES:
    env_id = gym_id(name)
    if env_id not in gymnasium.registry:
      gymnasium.register(
          id=env_id, entry_point=_ENTRY_POINT,
          vector_entry_point=_VECTOR_ENTRY_POINT, kwargs={"name": name})


class GymEnvironment(gymnasium.Env):
  """One in-graph environment (batch of one) behind the `gymnasium.Env` API.

  Observations are `np.int64` state indices in `Discrete(num_states)` for
  tabular environments, and `int8` arrays in
  `MultiBinary(observation_shape)` for {0,1} tensor observations. Actions are
  ints in `Discrete(num_actions)`.
  """

  metadata = {"render_modes": []}

  def __init__(self, name: str, action_space: Optional[str] = None):
    """Builds `registry.make(name, action_space)` behind the gymnasium API.

    Args:
      name: one of `registry.NAMES`.
      action_space: for grid worlds, "move" (default) or "move_and_collect".

    Raises:
      RuntimeError: in a process forked after lpg_tf was imported (as by
        `gymnasium.make_vec(..., vectorization_mode="async")`), where
        TensorFlow would hang.
    """
    if os.getpid() != _IMPORTED_BY_PID:
      raise RuntimeError(
          "lpg_tf environments cannot run in a process forked after TensorFlow "
          "started (gymnasium's async vector mode forks, and TensorFlow would "
          "hang). Use gymnasium.make_vec(id, num_envs) (one batched in-graph "
          "environment, the fastest), vectorization_mode=\"sync\", or "
          "vector_kwargs={\"context\": \"spawn\"}.")
    self._env = registry.make(name, action_space)
    spec = self._env.spec
    if spec.num_states is not None:
      self.observation_space = spaces.Discrete(spec.num_states)
    else:
      self.observation_space = spaces.MultiBinary(list(spec.observation_shape))
    self.action_space = spaces.Discrete(spec.num_actions)
    self._sample_instance = tf.function(
        lambda seed: self._env.sample_instances(seed, 1))
    self._reset_episode = tf.function(self._env.reset)
    self._transition = tf.function(self._env.transition)
    self._instance = None
    self._state = None
    self._episode_over = True

  @property
  def instance(self) -> Any:
    """The current lifetime's instance, a nest of `[1, ...]` numpy arrays.

    None before the first `reset`.
    """
    if self._instance is None:
      return None
    return tf.nest.map_structure(lambda x: x.numpy(), self._instance)

  def reset(
      self,
      *,
      seed: Optional[int] = None,
      options: Optional[Dict[str, Any]] = None,
  ) -> Tuple[Any, Dict[str, Any]]:
    """Starts an episode, in a new lifetime if `seed` is given or none exists.

    Args:
      seed: seeds `np_random`, from which the lifetime and the episodes are
        drawn.
      options: unused.

    Returns:
      The episode's first observation and an empty info dict.
    """
    super().reset(seed=seed, options=options)
    if seed is not None or self._instance is None:
      self._instance = self._sample_instance(self._draw_seed())
    self._state, timestep = self._reset_episode(self._instance,
                                                self._draw_seed())
    self._episode_over = False
    return self._observation(timestep), {}

  def step(
      self, action: Any) -> Tuple[Any, float, bool, bool, Dict[str, Any]]:
    """One transition of the current episode.

    Args:
      action: an int in `action_space`.

    Returns:
      (observation, reward, terminated, truncated, info): `terminated` where the
      episode ended by itself (discount 0), `truncated` where it hit the step
      limit; info is empty.

    Raises:
      ValueError: for an action outside `action_space`.
      RuntimeError: when the episode is over (or never started).
    """
    if not self.action_space.contains(action):
      raise ValueError(f"Invalid action {action!r} for {self.action_space}")
    if self._episode_over:
      raise RuntimeError("The episode is over; call reset() to start another.")
    self._state, timestep = self._transition(
        self._state, tf.constant([action], tf.int32))
    truncated = bool(timestep.truncated.numpy()[0])
    terminated = bool(timestep.discount.numpy()[0] == 0.0) and not truncated
    self._episode_over = terminated or truncated
    return (self._observation(timestep), float(timestep.reward.numpy()[0]),
            terminated, truncated, {})

  def _draw_seed(self) -> tf.Tensor:
    """A `[2]` int32 stateless seed from the environment's `np_random`."""
    return tf.constant(
        self.np_random.integers(0, np.iinfo(np.int32).max, size=2),
        tf.int32)

  def _observation(self, timestep: types.TimeStep) -> Any:
    """The single environment's observation in `observation_space`."""
    observation = timestep.observation.numpy()[0]
    if isinstance(self.observation_space, spaces.Discrete):
      return np.int64(observation)
    return observation.astype(np.int8)
