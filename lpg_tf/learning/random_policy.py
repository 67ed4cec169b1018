"""The uniformly random policy's return: the reference line of learning curves.

Measured by acting with constant (zero) logits in the same in-graph environment,
on instances drawn from a different seed stream than the trained lifetimes'.
"""

from typing import Optional, Sequence, Union

import tensorflow as tf

from lpg_tf import types
from lpg_tf.envs import base as env_base
from lpg_tf.learning import rollout


def random_policy_return(env: env_base.Environment, num_envs: int,
                         num_steps: int, seed: Union[int, Sequence[int]],
                         num_lifetimes: int = 1,
                         jit_compile: bool = True) -> Optional[float]:
  """Average return of completed episodes under the uniformly random policy.

  The reference line of the learning curves. Returns None if no episode ended.

  Args:
    env: the environment.
    num_envs: B, environments per lifetime instance.
    num_steps: steps per environment (whole chunks of 100).
    seed: an int `s` (the stateless key `[s, 1]`, a stream apart from the
      `[s, 0]` of trained lifetimes), or a `[2]` key: given the key of
      `learner.RolloutSource.fresh_state`, the same instances.
    num_lifetimes: instances drawn.
    jit_compile: compile the rollout with XLA.
  """
  num_actions = env.spec.num_actions

  def uniform(params, observation):
    del params
    batch = tf.shape(observation)[:2]
    zeros = tf.zeros(tf.concat([batch, [num_actions]], 0))
    return types.AgentOutput(zeros, zeros[..., :1], zeros[..., 0])

  key = tf.convert_to_tensor(seed, tf.int32)
  if key.shape.rank == 0:
    key = tf.stack([key, 1])
  instance_seed, actor_seed = tf.unstack(rollout.split_seed(key))
  instances = tf.nest.map_structure(
      lambda x: tf.repeat(x, num_envs, axis=0),
      env.sample_instances(instance_seed, num_lifetimes))
  actor_state = rollout.initial_actor_state(env, instances, actor_seed)
  chunk = 100

  @tf.function(jit_compile=jit_compile)
  def run(state):
    trajectory, state = rollout.unroll(uniform, (), env, state, chunk,
                                       num_lifetimes)
    return state, rollout.completed_episode_stats(trajectory)

  total, count = 0.0, 0.0
  for _ in range(max(1, num_steps // chunk)):
    actor_state, (return_sum, episodes) = run(actor_state)
    total += float(tf.reduce_sum(return_sum))
    count += float(tf.reduce_sum(episodes))
  return total / count if count else None
