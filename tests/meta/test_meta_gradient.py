"""The meta-gradient through K inner updates (Sections 3.2-3.3, DESIGN.md idioms 1-2).

A tiny float64 configuration: a tabular agent, a small LPG, K = 2 SGD updates on fixed
trajectories, then Eq. 4 on a scoring trajectory. The tape's gradient w.r.t. eta must
match central finite differences, and the targets must move theta' through eta.
"""

import numpy as np
import tensorflow as tf
from absl.testing import absltest

from lpg_tf import types
from lpg_tf.agents import networks
from lpg_tf.agents import torsos
from lpg_tf.learning import optimizers
from lpg_tf.learning import update_step
from lpg_tf.meta import meta_objective
from lpg_tf.rules import lpg
from tests.meta import finite_differences

L, T, B, S, A, M, K = 2, 4, 3, 6, 3, 4, 2


def random_trajectory(rng):
  observation = tf.constant(rng.integers(0, S, size=(L, T + 1, B)), tf.int32)
  discount = tf.constant((rng.random((L, T, B)) > 0.25).astype(np.float64))
  return types.Trajectory(
      observation=observation,
      action=tf.constant(rng.integers(0, A, size=(L, T, B)), tf.int32),
      reward=tf.constant(rng.normal(size=(L, T, B))),
      discount=discount,
      episode_return=tf.zeros([L, T, B], tf.float64),
      # A different true next observation wherever an episode ended.
      next_observation=tf.where(discount == 0.0, (observation[:, 1:] + 1) % S,
                                observation[:, 1:]))


class MetaGradientTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.agent = networks.AgentNetwork(L, (), tf.int32, A, torsos.tabular(),
                                       prediction_size=M, num_states=S, seed=0)
    self.theta0 = {k: tf.constant(rng.normal(size=v.shape) * 0.5)
                   for k, v in self.agent.params.items()}
    self.rule = lpg.LPG(hidden_size=5, prediction_size=M, embedding_sizes=(3, 1),
                        dtype=tf.float64)
    scalar = tf.zeros([1, 1], tf.float64)
    y = tf.fill([1, 1, M], tf.constant(1.0 / M, tf.float64))
    self.rule(types.RuleInputs(scalar, scalar + 1, scalar, scalar, y, y, None))
    for v in self.rule.trainable_variables:  # larger weights: non-trivial targets
      v.assign(tf.constant(rng.normal(size=v.shape) * 0.5))
    self.inner = [random_trajectory(rng) for _ in range(K)]
    self.scoring = random_trajectory(rng)
    self.critic = tf.constant(rng.normal(size=(L, T + 1, B)))
    self.gamma = tf.constant([0.99, 0.9], tf.float64)
    self.lr = tf.constant([0.5, 1.0], tf.float64)
    self.kl = tf.constant([0.5, 1.0], tf.float64)

  def meta_loss(self):
    opt = optimizers.Optimiser(optimizers.SGD)
    theta, state = self.theta0, opt.init(self.theta0)
    pi_l2 = y_l2 = tf.zeros([L], tf.float64)
    for trajectory in self.inner:
      theta, state, info = update_step.update(
          self.agent.apply, self.rule, opt, theta, state, trajectory, self.gamma,
          self.lr, self.kl)
      p, y = meta_objective.target_l2(info.targets)
      pi_l2 += p / K
      y_l2 += y / K
    outputs = self.agent.apply(theta, self.scoring.observation)
    terms = meta_objective.meta_objective(
        outputs, self.scoring, self.critic, self.gamma,
        tf.constant([0.01, 0.02], tf.float64), pi_l2, y_l2,
        meta_objective.MetaObjectiveCosts())
    return tf.reduce_mean(terms.loss), theta

  def test_matches_finite_differences(self):
    variables = self.rule.trainable_variables
    with tf.GradientTape() as tape:
      loss, _ = self.meta_loss()
    grads = tape.gradient(loss, variables)
    finite_differences.assert_matches_finite_differences(
        variables, grads, lambda: self.meta_loss()[0], np.random.default_rng(1), directions=3)

  def test_updated_parameters_depend_on_eta(self):
    """pi_hat, y_hat are constants for theta's gradient but theta' depends on eta."""
    with tf.GradientTape() as tape:
      _, theta = self.meta_loss()
      probe = tf.reduce_sum(theta["table"] ** 2)
    grads = tape.gradient(probe, self.rule.trainable_variables)
    self.assertTrue(all(g is not None for g in grads))
    self.assertGreater(max(float(tf.norm(g)) for g in grads), 0.0)

  def test_meta_gradient_compiles_under_xla(self):
    def grads():
      with tf.GradientTape() as tape:
        loss, _ = self.meta_loss()
      return tape.gradient(loss, self.rule.trainable_variables)
    eager = grads()
    compiled = tf.function(grads, jit_compile=True)()
    for a, b in zip(eager, compiled):
      np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-12)


class UnderflowingTargetTest(absltest.TestCase):
  """Eq. 2's KL must carry the meta-gradient where y_hat's softmax underflows."""

  def test_meta_gradient_through_an_underflowing_y_hat(self):
    rng = np.random.default_rng(2)
    agent = networks.AgentNetwork(L, (), tf.int32, A, torsos.tabular(),
                                  prediction_size=M, num_states=S, seed=0)
    theta = {k: tf.constant(rng.normal(size=v.shape), tf.float32)
             for k, v in agent.params.items()}
    rule = lpg.LPG(hidden_size=5, prediction_size=M, embedding_sizes=(3, 1))
    rule.build()
    y_bias = [v for v in rule.trainable_variables if "y_head" in v.name
              and v.shape.rank == 1][0]
    # softmax gives exp(-200) = 0 in float32 for the first component.
    y_bias.assign(tf.constant([-200.0] + [0.0] * (M - 1)))
    trajectory = tf.nest.map_structure(
        lambda x: tf.cast(x, tf.float32) if x.dtype == tf.float64 else x,
        random_trajectory(rng))
    opt = optimizers.Optimiser(optimizers.SGD)
    probe_weights = tf.constant(rng.normal(size=theta["table"].shape), tf.float32)
    with tf.GradientTape() as tape:
      new_theta, _, info = update_step.update(
          agent.apply, rule, opt, theta, opt.init(theta), trajectory,
          tf.constant([0.99, 0.9]), tf.constant([0.5, 1.0]),
          tf.constant([0.5, 1.0]))
      probe = tf.reduce_sum(new_theta["table"] * probe_weights)
    self.assertEqual(float(tf.reduce_max(info.targets.y_hat[..., 0])), 0.0)
    grad = tape.gradient(probe, y_bias).numpy()
    self.assertTrue(np.all(np.isfinite(grad)))
    self.assertNotEqual(grad[0], 0.0)


if __name__ == "__main__":
  absltest.main()
