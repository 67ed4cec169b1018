"""Trains a group of L independent lifetimes of one agent with one update rule.

This is the meta-test loop of Section 4.5 on toy environments and the A2C baseline
of Section 4.1: each lifetime has its own environment instance, theta, optimiser
state, alpha_lr, alpha_y and gamma, and all of them advance together in one
jit-compiled step (rollout of T steps x B environments, then one update).
"""

from typing import Any, Dict, NamedTuple, Optional

import numpy as np
import tensorflow as tf

from lpg_tf import types
from lpg_tf.envs import base as env_base
from lpg_tf.learning import optimizers
from lpg_tf.learning import rollout
from lpg_tf.learning import update_step
from lpg_tf.rules import base as rule_base


class StepMetrics(NamedTuple):
  """Per-lifetime numbers from one training step, numpy `[L]` each."""
  episode_return_sum: np.ndarray
  episode_count: np.ndarray
  loss: np.ndarray
  policy_entropy: np.ndarray


class AgentTrainer:
  """Owns the agents' state and steps them: rollout then rule update, in-graph.

  Acme-style: `step()` only calls the compiled `_step` and converts metrics.
  """

  def __init__(self, env: env_base.Environment, agent: Any,
               rule: rule_base.UpdateRule, optimiser: str,
               learning_rate: np.ndarray, kl_cost: np.ndarray,
               gamma: np.ndarray, num_envs: int, unroll_length: int,
               seed: int, jit_compile: bool = True):
    """Builds the trainer.

    Args:
      env: the environment (one group); lifetime l gets its own instance.
      agent: an `AgentNetwork` for L lifetimes (lpg_tf.agents).
      rule: the update rule.
      optimiser: optimizers.SGD or optimizers.ADAM.
      learning_rate, kl_cost, gamma: `[L]` per-lifetime alpha_lr, alpha_y, gamma.
      num_envs: B, environments per lifetime (64 in the paper).
      unroll_length: T, steps per update (20 in the paper).
      seed: integer seed of everything random (instances, episodes, actions).
      jit_compile: compile the step with XLA.
    """
    self._env = env
    self._agent = agent
    self._rule = rule
    self._optimiser = optimizers.Optimiser(optimiser)
    self._num_lifetimes = int(np.shape(learning_rate)[0])
    self._num_envs = num_envs
    self._unroll_length = unroll_length
    self._learning_rate = tf.constant(learning_rate, tf.float32)
    self._kl_cost = tf.constant(kl_cost, tf.float32)
    self._gamma = tf.constant(gamma, tf.float32)
    instance_seed, actor_seed = tf.unstack(rollout.split_seed(
        tf.constant([seed, 0], tf.int32)))
    instances = env.sample_instances(instance_seed, self._num_lifetimes)
    instances = tf.nest.map_structure(
        lambda x: tf.repeat(x, num_envs, axis=0), instances)
    self._actor_state = rollout.initial_actor_state(env, instances, actor_seed)
    self._params = tf.nest.map_structure(tf.identity, agent.params)
    self._opt_state = self._optimiser.init(self._params)
    self._compiled_step = tf.function(self._step, jit_compile=jit_compile)

  @property
  def env_steps_per_update(self) -> int:
    """Environment steps each lifetime takes per `step()`: T x B."""
    return self._num_envs * self._unroll_length

  @property
  def params(self) -> Any:
    """Current theta, `[L, ...]` tensors."""
    return self._params

  def _step(self, params, opt_state, actor_state):
    trajectory, actor_state = rollout.unroll(
        self._agent.apply, params, self._env, actor_state,
        self._unroll_length, self._num_lifetimes)
    params, opt_state, info = update_step.update(
        self._agent.apply, self._rule, self._optimiser, params, opt_state,
        trajectory, self._gamma, self._learning_rate, self._kl_cost)
    return_sum, count = rollout.completed_episode_stats(trajectory)
    metrics = (return_sum, count, info.loss, info.policy_entropy)
    return params, opt_state, actor_state, metrics

  def step(self) -> StepMetrics:
    """One rollout + update for every lifetime."""
    self._params, self._opt_state, self._actor_state, metrics = (
        self._compiled_step(self._params, self._opt_state, self._actor_state))
    return StepMetrics(*[m.numpy() for m in metrics])

  def sync_agent(self) -> None:
    """Writes the current theta into the agent module's variables."""
    self._agent.assign(self._params)


def random_policy_return(env: env_base.Environment, num_envs: int,
                         num_steps: int, seed: int,
                         num_lifetimes: int = 1) -> Optional[float]:
  """Average return of completed episodes under the uniformly random policy.

  The reference line of the learning curves. Returns None if no episode ended.
  """
  num_actions = env.spec.num_actions

  def uniform(params, observation):
    del params
    batch = tf.shape(observation)[:2]
    zeros = tf.zeros(tf.concat([batch, [num_actions]], 0))
    return types.AgentOutput(zeros, zeros[..., :1], zeros[..., 0])

  instance_seed, actor_seed = tf.unstack(rollout.split_seed(
      tf.constant([seed, 1], tf.int32)))
  instances = tf.nest.map_structure(
      lambda x: tf.repeat(x, num_envs, axis=0),
      env.sample_instances(instance_seed, num_lifetimes))
  actor_state = rollout.initial_actor_state(env, instances, actor_seed)
  chunk = 100

  @tf.function(jit_compile=True)
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
