"""Acting: unroll T steps of L lifetimes x B environments in-graph.

The environment batch is flat, `L * B` rows ordered lifetime-major (row l * B + b
belongs to lifetime l); the agent sees observations reshaped to `[L, B, ...]`.
Rollouts produce data only: actions are sampled, so no gradient flows through them;
losses recompute the agent's outputs on `Trajectory.observation`.

Besides s_0..s_T (acting continues from the auto-reset observation), a rollout
keeps each transition's true next observation (`Trajectory.next_observation`,
from `Environment.step_with_next_observation`). This stores T more observations
per rollout: negligible for the tabular and chain environments (an int32 index),
and at most an 11 x 11 x 4 float32 grid (1.9 KB) per step for the random grids,
as much again as `observation`.
"""

from typing import Any, Callable, NamedTuple, Tuple

import tensorflow as tf

from lpg_tf import rng as lpg_rng
from lpg_tf import types
from lpg_tf.envs import base as env_base
from lpg_tf.learning import layout

ApplyFn = Callable[[Any, tf.Tensor], types.AgentOutput]


class ActorState(NamedTuple):
  """Everything acting carries from one rollout to the next.

  Attributes:
    env_state: the environment's state, batch `L * B`.
    timestep: the latest TimeStep, batch `L * B`.
    episode_return: `[L * B]` undiscounted return of the running episodes.
    rng: `[2]` int32 stateless seed for action sampling.
  """
  env_state: Any
  timestep: types.TimeStep
  episode_return: tf.Tensor
  rng: tf.Tensor


def split_seed(seed: tf.Tensor, num: int = 2) -> tf.Tensor:
  """`[num, 2]` fresh stateless seeds derived from a `[2]` seed."""
  return lpg_rng.split(seed, num)


def sample_actions(logits: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
  """Samples a ~ softmax(logits) `[N, A]` -> `[N]` int32 by the Gumbel-max trick.

  Built on `lpg_tf.rng`, whose streams are the same with and without XLA
  (`stateless_categorical`'s are not), so compiled and eager runs act identically.
  """
  uniform = lpg_rng.uniform(tf.shape(logits), seed)
  gumbel = -tf.math.log(-tf.math.log(tf.cast(uniform, logits.dtype)))
  return tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32)


def initial_actor_state(env: env_base.Environment, instance: Any,
                        seed: tf.Tensor) -> ActorState:
  """Resets every environment of `instance` (`[L * B, ...]` rows)."""
  env_seed, action_seed = tf.unstack(split_seed(seed))
  env_state, timestep = env.reset(instance, env_seed)
  return ActorState(env_state=env_state, timestep=timestep,
                    episode_return=tf.zeros_like(timestep.reward),
                    rng=action_seed)


def _to_lifetimes(x: tf.Tensor, num_lifetimes: int) -> tf.Tensor:
  """`[L * B, ...]` -> `[L, B, ...]`."""
  return tf.reshape(x, [num_lifetimes, -1] + x.shape[1:].as_list())


def unroll(apply_fn: ApplyFn, params: Any, env: env_base.Environment,
           actor_state: ActorState, num_steps: int,
           num_lifetimes: int) -> Tuple[types.Trajectory, ActorState]:
  """Acts for `num_steps` steps with pi_theta in every environment.

  Args:
    apply_fn: the agent network's `apply(params, observation [L, ...])`.
    params: theta for L lifetimes.
    env: the environment of the group.
    actor_state: where acting left off.
    num_steps: T.
    num_lifetimes: L.

  Returns:
    (trajectory `[L, T, B, ...]` with T + 1 observations, next actor state).
  """
  obs_ta = tf.TensorArray(actor_state.timestep.observation.dtype, num_steps + 1)
  action_ta = tf.TensorArray(tf.int32, num_steps)
  reward_ta = tf.TensorArray(tf.float32, num_steps)
  discount_ta = tf.TensorArray(tf.float32, num_steps)
  return_ta = tf.TensorArray(tf.float32, num_steps)
  next_obs_ta = tf.TensorArray(actor_state.timestep.observation.dtype, num_steps)
  obs_ta = obs_ta.write(0, actor_state.timestep.observation)

  def body(t, state: ActorState, obs_ta, action_ta, reward_ta, discount_ta,
           return_ta, next_obs_ta):
    rng, sample_seed = tf.unstack(split_seed(state.rng))
    observation = _to_lifetimes(state.timestep.observation, num_lifetimes)
    logits = apply_fn(params, observation).policy_logits
    action = sample_actions(tf.reshape(logits, [-1, logits.shape[-1]]),
                            sample_seed)
    env_state, timestep, next_observation = env.step_with_next_observation(
        state.env_state, action)
    episode_return = state.episode_return + timestep.reward
    finished_return = episode_return
    episode_return = episode_return * timestep.discount
    new_state = ActorState(env_state, timestep, episode_return, rng)
    return (t + 1, new_state, obs_ta.write(t + 1, timestep.observation),
            action_ta.write(t, action), reward_ta.write(t, timestep.reward),
            discount_ta.write(t, timestep.discount),
            return_ta.write(t, finished_return),
            next_obs_ta.write(t, next_observation))

  (_, actor_state, obs_ta, action_ta, reward_ta, discount_ta, return_ta,
   next_obs_ta) = tf.while_loop(
       lambda t, *_: t < num_steps, body,
       (tf.constant(0), actor_state, obs_ta, action_ta, reward_ta, discount_ta,
        return_ta, next_obs_ta),
       maximum_iterations=num_steps)

  def stacked(ta: tf.TensorArray) -> tf.Tensor:  # [L, T(+1), B, ...]
    return layout.to_lifetime_major(ta.stack(), num_lifetimes)

  trajectory = types.Trajectory(
      observation=stacked(obs_ta), action=stacked(action_ta),
      reward=stacked(reward_ta), discount=stacked(discount_ta),
      episode_return=stacked(return_ta),
      next_observation=stacked(next_obs_ta))
  return trajectory, actor_state


def completed_episode_stats(trajectory: types.Trajectory) -> Tuple[tf.Tensor, tf.Tensor]:
  """Sum of returns and count of episodes that ended in the trajectory, each `[L]`."""
  ended = tf.cast(tf.equal(trajectory.discount, 0.0), tf.float32)
  return (tf.reduce_sum(ended * trajectory.episode_return, axis=[1, 2]),
          tf.reduce_sum(ended, axis=[1, 2]))
