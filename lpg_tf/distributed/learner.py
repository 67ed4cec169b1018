"""The learner: consumes unrolls, applies the update rule to theta (Acme's role).

The hot path is one `tf.function` `_step(params, opt_state, trajectory)`: the
agent update of `lpg_tf.learning.update_step.update` (Eq. 2, Eq. 7 with an LPG
rule that has the baseline, or A2C) for one agent, L = 1. The Python `step()`
around it only pulls the next batch, counts and converts metrics. The learner
knows nothing of actors: it reads an iterator of `types.Trajectory` and exposes
theta for whoever publishes it.
"""

from typing import Dict, Iterator, NamedTuple

import numpy as np
import tensorflow as tf

from lpg_tf import agents
from lpg_tf import types
from lpg_tf.learning import optimizers
from lpg_tf.learning import update_step
from lpg_tf.rules import base as rule_base


class LearnerMetrics(NamedTuple):
  """What one update reports.

  Attributes:
    loss: the agent loss before the update.
    policy_entropy: mean H(pi) over the batch.
    episode_returns: `[n]` raw returns of the episodes that ended in the batch.
    env_steps: transitions in the batch, T x B.
  """
  loss: float
  policy_entropy: float
  episode_returns: np.ndarray
  env_steps: int


class Learner:
  """Updates one agent's theta from a stream of `[1, T, B, ...]` trajectories."""

  def __init__(self, agent: agents.AgentNetwork, rule: rule_base.UpdateRule,
               optimiser: str, learning_rate: float, kl_cost: float,
               gamma: float, iterator: Iterator[types.Trajectory],
               jit_compile: bool = True):
    """Builds the learner with theta_0 from `agent`'s variables.

    Args:
      agent: an L = 1 agent network.
      rule: the update rule (A2C, or an exported LPG rule).
      optimiser: optimizers.ADAM (Table 4) or optimizers.SGD.
      learning_rate, kl_cost, gamma: alpha_lr, alpha_y and gamma (Table 4).
      iterator: yields `types.Trajectory` `[1, T, B, ...]`.
      jit_compile: compile the step with XLA (3x faster than without for the
        Atari conv agent on CPU).
    """
    if agent.num_lifetimes != 1:
      raise ValueError(f"The learner trains one agent (L = 1), got "
                       f"L = {agent.num_lifetimes}")
    self._agent = agent
    self._rule = rule
    self._optimiser = optimizers.Optimiser(optimiser)
    self._learning_rate = tf.constant([learning_rate], tf.float32)
    self._kl_cost = tf.constant([kl_cost], tf.float32)
    self._gamma = tf.constant([gamma], tf.float32)
    self._iterator = iterator
    self._params = {k: tf.identity(v) for k, v in agent.params.items()}
    self._opt_state = self._optimiser.init(self._params)
    self._compiled_step = tf.function(self._step, jit_compile=jit_compile)
    self._num_updates = 0

  @property
  def num_updates(self) -> int:
    return self._num_updates

  def params(self) -> Dict[str, np.ndarray]:
    """Current theta, `{name: [1, ...]}` numpy arrays."""
    return {name: value.numpy() for name, value in self._params.items()}

  def _step(self, params, opt_state, trajectory: types.Trajectory):
    params, opt_state, info = update_step.update(
        self._agent.apply, self._rule, self._optimiser, params, opt_state,
        trajectory, self._gamma, self._learning_rate, self._kl_cost)
    return (params, opt_state, tf.reduce_mean(info.loss),
            tf.reduce_mean(info.policy_entropy))

  def step(self) -> LearnerMetrics:
    """Pulls one batch and updates theta once."""
    trajectory = next(self._iterator)
    self._params, self._opt_state, loss, entropy = self._compiled_step(
        self._params, self._opt_state, trajectory)
    self._num_updates += 1
    ended = trajectory.discount.numpy() == 0.0
    return LearnerMetrics(
        loss=float(loss), policy_entropy=float(entropy),
        episode_returns=trajectory.episode_return.numpy()[ended],
        env_steps=int(np.prod(trajectory.action.shape)))
