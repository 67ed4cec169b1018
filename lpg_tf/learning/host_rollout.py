"""Acting in a host-side (numpy) environment: the learner's third source.

Games that exist only as Python code (MinAtar, `lpg_tf.envs.minatar`) cannot be
stepped inside the learner's compiled step, so `HostRolloutSource` acts before
it, in `pull(params)`: T times, a compiled policy step (the agent's logits on
`[L, B, ...]` observations and a Gumbel-max sample, `rollout.sample_actions`)
chooses `[L * B]` actions and the environment steps on them in Python. The
trajectory `[L, T, B, ...]` then goes into the compiled update as data. Acting
uses the current theta, so learning stays on-policy exactly as with the
in-graph `RolloutSource`.

One environment holds all L x B games, lifetime-major: row l * B + b belongs to
lifetime l (as `rollout`'s flat batch), so every lifetime plays its own games.
"""

from typing import Any, Tuple

import numpy as np
import tensorflow as tf

from lpg_tf import types
from lpg_tf.envs import base as env_base
from lpg_tf.learning import learner
from lpg_tf.learning import rollout


class HostRolloutSource(learner.TrajectorySource):
  """T steps of pi_theta in a `HostEnvironment` of L x B games per update."""

  def __init__(self, env: env_base.HostEnvironment, apply_fn: rollout.ApplyFn,
               num_lifetimes: int, unroll_length: int, seed: int,
               jit_compile: bool = True):
    """Resets the environment; acting continues from there across updates.

    Args:
      env: L x B games, lifetime-major rows.
      apply_fn: the agent network's `apply(params, observation [L, B, ...])`.
      num_lifetimes: L; must divide `env.num_envs`.
      unroll_length: T, steps per update.
      seed: integer seed of the action samples.
      jit_compile: compile the policy step with XLA.
    """
    if env.num_envs % num_lifetimes:
      raise ValueError(f"{env.num_envs} environments do not split into "
                       f"{num_lifetimes} lifetimes")
    self._env = env
    self._apply_fn = apply_fn
    self._num_lifetimes = num_lifetimes
    self._num_envs = env.num_envs // num_lifetimes
    self._unroll_length = unroll_length
    self._act = tf.function(self._policy_step, jit_compile=jit_compile)
    self.restart(tf.constant([seed, 2], tf.int32))

  def restart(self, action_seed: tf.Tensor) -> None:
    """Starts a new episode in every game and the action samples from
    `action_seed` (`[2]` int32): acting for new lifetimes, with the same
    compiled policy step. Reseed the games first for new games too."""
    self._rng = tf.convert_to_tensor(action_seed, tf.int32)
    self._observation = self._env.reset().observation
    self._episode_return = np.zeros([self._env.num_envs], np.float32)

  @property
  def env_steps_per_update(self) -> int:
    """Environment steps each lifetime takes per update: T x B."""
    return self._num_envs * self._unroll_length

  def _policy_step(self, params: Any, observation: tf.Tensor,
                   rng: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Actions `[L * B]` sampled from pi_theta at `[L * B, ...]` observations."""
    rng, sample_seed = tf.unstack(rollout.split_seed(rng))
    observation = tf.reshape(
        observation, [self._num_lifetimes, self._num_envs]
        + observation.shape[1:].as_list())
    logits = self._apply_fn(params, observation).policy_logits
    return rollout.sample_actions(
        tf.reshape(logits, [-1, logits.shape[-1]]), sample_seed), rng

  def pull(self, params: Any) -> types.Trajectory:
    """Acts T steps with theta = `params`; the trajectory `[L, T, B, ...]`."""
    num_steps = self._unroll_length
    rows = self._env.num_envs
    observations = np.empty((num_steps + 1,) + self._observation.shape,
                            self._observation.dtype)
    next_observations = np.empty((num_steps,) + self._observation.shape,
                                 self._observation.dtype)
    action = np.empty([num_steps, rows], np.int32)
    reward = np.empty([num_steps, rows], np.float32)
    discount = np.empty([num_steps, rows], np.float32)
    episode_return = np.empty([num_steps, rows], np.float32)
    observations[0] = self._observation
    for t in range(num_steps):
      actions, self._rng = self._act(params, observations[t], self._rng)
      action[t] = actions.numpy()
      timestep, next_observations[t] = self._env.step(action[t])
      observations[t + 1] = timestep.observation
      reward[t] = timestep.reward
      discount[t] = timestep.discount
      self._episode_return += timestep.reward
      episode_return[t] = self._episode_return
      self._episode_return *= timestep.discount
    self._observation = observations[-1].copy()
    return types.Trajectory(
        observation=self._lifetime_major(observations),
        action=self._lifetime_major(action),
        reward=self._lifetime_major(reward),
        discount=self._lifetime_major(discount),
        episode_return=self._lifetime_major(episode_return),
        next_observation=self._lifetime_major(next_observations))

  def _lifetime_major(self, x: np.ndarray) -> np.ndarray:
    """`[T, L * B, ...]` -> `[L, T, B, ...]`, as `layout.to_lifetime_major`."""
    x = x.reshape((x.shape[0], self._num_lifetimes, self._num_envs)
                  + x.shape[2:])
    return np.ascontiguousarray(np.swapaxes(x, 0, 1))

  def trajectory(self, apply_fn, params, state, pulled):
    del apply_fn, params
    return pulled, state
