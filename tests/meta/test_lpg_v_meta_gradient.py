"""LPG-V's meta-gradient through K = 2 inner updates (Sections 3.3 and 4.1).

test_meta_gradient's tiny float64 set-up (fixed trajectories, K = 2 SGD
updates) with LPG-V: the agents predict a value v (m = 1) regressed on its
TD(lambda) return, the rule reads v and learns pi_hat only, and Eq. 4 has no
beta1 or beta3. The agents are MLPs on one-hot states, so v and pi share a
torso and the second update's TD(lambda) targets depend on eta through
theta_1 (a table would keep v apart from eta). The tape's gradient with
respect to eta, through the hand-written backward-LSTM gradient and through
those targets, must match central finite differences.
"""

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf.agents import networks
from lpg_tf.agents import torsos
from lpg_tf.learning import optimizers
from lpg_tf.learning import update_step
from lpg_tf.meta import meta_objective
from lpg_tf.rules import lpg_v
from tests.meta import finite_differences
from tests.meta import test_meta_gradient

L, T, B, S, A, K = (test_meta_gradient.L, test_meta_gradient.T,
                    test_meta_gradient.B, test_meta_gradient.S,
                    test_meta_gradient.A, test_meta_gradient.K)
# Eq. 4 as LPG-V's meta-training uses it (experiments.meta_train.meta_spec).
COSTS = meta_objective.MetaObjectiveCosts(prediction_entropy=0.0, y_hat_l2=0.0)


def one_hot_states(trajectory):
  """`trajectory` with its state indices as one-hot float32 vectors."""
  return trajectory._replace(
      observation=tf.one_hot(trajectory.observation, S),
      next_observation=tf.one_hot(trajectory.next_observation, S))


class LPGVMetaGradientTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.agent = networks.AgentNetwork(L, (S,), tf.float32, A,
                                       torsos.mlp([6]),
                                       prediction_size=lpg_v.VALUE_SIZE, seed=0)
    self.theta0 = {k: tf.constant(rng.normal(size=v.shape) * 0.5)
                   for k, v in self.agent.params.items()}
    self.rule = lpg_v.LPGV(hidden_size=5, embedding_sizes=(3, 1),
                           td_lambda=0.8, dtype=tf.float64)
    self.rule.build()
    for v in self.rule.trainable_variables:  # larger weights: non-trivial targets
      v.assign(tf.constant(rng.normal(size=v.shape) * 0.5))
    self.inner = [one_hot_states(test_meta_gradient.random_trajectory(rng))
                  for _ in range(K)]
    self.scoring = one_hot_states(test_meta_gradient.random_trajectory(rng))
    self.critic = tf.constant(rng.normal(size=(L, T + 1, B)))
    self.gamma = tf.constant([0.99, 0.9], tf.float64)
    self.lr = tf.constant([0.5, 1.0], tf.float64)
    self.value_cost = tf.constant([0.5, 1.0], tf.float64)  # alpha_y

  def meta_loss(self):
    opt = optimizers.Optimiser(optimizers.SGD)
    theta, state = self.theta0, opt.init(self.theta0)
    pi_l2 = tf.zeros([L], tf.float64)
    for trajectory in self.inner:
      theta, state, info = update_step.update(
          self.agent.apply, self.rule, opt, theta, state, trajectory,
          self.gamma, self.lr, self.value_cost)
      pi_l2 += meta_objective.target_l2(info.targets)[0] / K
    outputs = self.agent.apply(theta, self.scoring.observation)
    terms = meta_objective.meta_objective(
        outputs, self.scoring, self.critic, self.gamma,
        tf.constant([0.01, 0.02], tf.float64), pi_l2, tf.zeros([L], tf.float64),
        COSTS)
    return tf.reduce_mean(terms.loss)

  def test_matches_finite_differences(self):
    variables = self.rule.trainable_variables
    with tf.GradientTape() as tape:
      loss = self.meta_loss()
    grads = tape.gradient(loss, variables)
    self.assertTrue(all(g is not None for g in grads))
    finite_differences.assert_matches_finite_differences(
        variables, grads, self.meta_loss, np.random.default_rng(1), directions=2)


if __name__ == "__main__":
  absltest.main()
