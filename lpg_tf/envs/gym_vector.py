"""The in-graph batched environments as `gymnasium.vector.VectorEnv`s.

  lpg_tf.envs.register_gymnasium()
  envs = gymnasium.make_vec("lpg_tf/chain-long-v0", num_envs=64)

`gymnasium.make_vec` uses this class for every `lpg_tf/...` id by default (it is
registered as the ids' `vector_entry_point`): one compiled TensorFlow step for
all `num_envs` environments, instead of one Python `GymEnvironment` per
environment. Each sub-environment is its own lifetime (as with
`SyncVectorEnv` over `GymEnvironment`s): `reset(seed=s)` draws `num_envs`
lifetime instances from s; `reset()` starts new episodes in the current ones.

Episodes end as in `GymEnvironment`; an ended sub-environment is reset in the
same step (`AutoresetMode.SAME_STEP`): the returned observation is the next
episode's first, and `info["final_obs"]` (masked by `info["_final_obs"]`) holds
the true last observation.
"""

from typing import Any, Dict, Optional, Tuple

import gymnasium
from gymnasium import spaces
from gymnasium.vector import utils as vector_utils
import numpy as np
import tensorflow as tf

from lpg_tf.envs import registry


class VectorGymEnvironment(gymnasium.vector.VectorEnv):
  """`num_envs` copies of one in-graph environment behind the VectorEnv API.

  Observations are `[num_envs]` int64 state indices (tabular environments) or
  `[num_envs, ...]` int8 arrays ({0,1} tensor observations); actions are
  `[num_envs]` ints.
  """

  metadata = {"render_modes": [],
              "autoreset_mode": gymnasium.vector.AutoresetMode.SAME_STEP}

  def __init__(self, num_envs: int, name: str, action_space: Optional[str] = None):
    """Builds `registry.make(name, action_space)` batched over `num_envs`.

    Args:
      num_envs: number of sub-environments (B).
      name: one of `registry.NAMES`.
      action_space: for grid worlds, "move" (default) or "move_and_collect".
    """
    self._env = registry.make(name, action_space)
    spec = self._env.spec
    self.num_envs = num_envs
    if spec.num_states is not None:
      self.single_observation_space = spaces.Discrete(spec.num_states)
    else:
      self.single_observation_space = spaces.MultiBinary(list(spec.observation_shape))
    self.single_action_space = spaces.Discrete(spec.num_actions)
    self.observation_space = vector_utils.batch_space(self.single_observation_space,
                                                      num_envs)
    self.action_space = vector_utils.batch_space(self.single_action_space, num_envs)
    self._sample_instances = tf.function(
        lambda seed: self._env.sample_instances(seed, num_envs))
    self._reset_episodes = tf.function(self._env.reset)
    self._step = tf.function(self._step_with_final_observation)
    self._instances = None
    self._state = None

  def _step_with_final_observation(self, state: Any, action: tf.Tensor):
    """`Environment.step`, also returning the transition's own observation.

    The transition is computed twice (it is a pure function of the state), so
    the auto-reset is exactly the in-graph environment's.
    """
    _, timestep = self._env.transition(state, action)
    next_state, reset_timestep = self._env.step(state, action)
    return next_state, reset_timestep, timestep.observation

  def reset(
      self,
      *,
      seed: Optional[int] = None,
      options: Optional[Dict[str, Any]] = None,
  ) -> Tuple[Any, Dict[str, Any]]:
    """New episodes everywhere, in new lifetimes if `seed` is given or none exist."""
    super().reset(seed=seed, options=options)
    if seed is not None or self._instances is None:
      self._instances = self._sample_instances(self._draw_seed())
    self._state, timestep = self._reset_episodes(self._instances, self._draw_seed())
    return self._observation(timestep.observation), {}

  def step(self, actions: Any) -> Tuple[Any, np.ndarray, np.ndarray, np.ndarray,
                                        Dict[str, Any]]:
    """One step of every sub-environment; ended ones start their next episode."""
    actions = np.asarray(actions)
    if not self.action_space.contains(actions.astype(np.int64)):
      raise ValueError(f"Invalid actions {actions!r} for {self.action_space}")
    if self._state is None:
      raise RuntimeError("Call reset() before step().")
    self._state, timestep, final = self._step(
        self._state, tf.constant(actions, tf.int32))
    truncated = timestep.truncated.numpy().astype(bool)
    ended = timestep.discount.numpy() == 0.0
    info: Dict[str, Any] = {}
    if ended.any():
      info = {"final_obs": self._observation(final), "_final_obs": ended,
              "final_info": {}, "_final_info": ended}
    return (self._observation(timestep.observation),
            timestep.reward.numpy().astype(np.float64), ended & ~truncated,
            truncated, info)

  def _draw_seed(self) -> tf.Tensor:
    return tf.constant(self.np_random.integers(0, np.iinfo(np.int32).max, size=2),
                       tf.int32)

  def _observation(self, observation: tf.Tensor) -> np.ndarray:
    if isinstance(self.single_observation_space, spaces.Discrete):
      return observation.numpy().astype(np.int64)
    return observation.numpy().astype(np.int8)

