"""Eq. 4's objective against a numpy reference, and its regulariser terms."""

import numpy as np
import tensorflow as tf
from absl.testing import absltest

from lpg_tf import types
from lpg_tf.meta import meta_objective
from tests.test_rl_math import reference_lambda_returns

L, T, B, A, M = 2, 5, 3, 4, 6


def softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


class MetaObjectiveTest(absltest.TestCase):

  def test_matches_reference(self):
    rng = np.random.default_rng(0)
    pl = rng.normal(size=(L, T + 1, B, A))
    yl = rng.normal(size=(L, T + 1, B, M))
    a = rng.integers(0, A, size=(L, T, B))
    r = rng.normal(size=(L, T, B))
    d = (rng.random((L, T, B)) > 0.3).astype(np.float64)
    v = rng.normal(size=(L, T + 1, B))
    gamma = np.array([0.99, 0.9])
    beta0 = np.array([0.01, 0.02])
    pi_l2 = np.array([0.3, 0.4])
    y_l2 = np.array([0.5, 0.6])
    costs = meta_objective.MetaObjectiveCosts(0.001, 0.01, 0.02, 0.9)
    traj = types.Trajectory(tf.zeros([L, T + 1, B]), tf.constant(a), tf.constant(r),
                            tf.constant(d), tf.zeros([L, T, B], tf.float64),
                            tf.zeros([L, T, B]))
    outputs = types.AgentOutput(tf.constant(pl), tf.constant(yl), tf.zeros([L, T + 1, B], tf.float64))
    terms = meta_objective.meta_objective(outputs, traj, tf.constant(v), tf.constant(gamma),
                                          tf.constant(beta0), tf.constant(pi_l2),
                                          tf.constant(y_l2), costs)
    for l in range(L):
      g = reference_lambda_returns(r[l], d[l] * gamma[l], v[l], 0.9)
      adv = g - v[l, :-1]
      pi = softmax(pl[l, :-1])
      logp = np.log(np.take_along_axis(pi, a[l][..., None], -1)[..., 0])
      h_pi = -(pi * np.log(pi)).sum(-1).mean()
      y = softmax(yl[l, :-1])
      h_y = -(y * np.log(y)).sum(-1).mean()
      objective = ((logp * adv).mean() + beta0[l] * h_pi + 0.001 * h_y
                   - 0.01 * pi_l2[l] - 0.02 * y_l2[l])
      self.assertAlmostEqual(float(terms.loss[l]), -objective, places=9)
      self.assertAlmostEqual(float(terms.policy_entropy[l]), h_pi, places=9)

  def test_target_l2(self):
    pi_hat = tf.constant(np.full((L, T, B), 2.0))
    y_hat = tf.constant(np.full((L, T, B, M), 0.5))
    pi_l2, y_l2 = meta_objective.target_l2(types.RuleOutput(pi_hat, y_hat, None))
    np.testing.assert_allclose(pi_l2.numpy(), [4.0, 4.0])
    np.testing.assert_allclose(y_l2.numpy(), [0.25 * M, 0.25 * M])

  def test_target_spread(self):
    uniform = np.full((L, T, B, M), 1.0 / M)
    spread = meta_objective.target_spread(
        types.RuleOutput(tf.zeros([L, T, B], tf.float64), tf.constant(uniform),
                         None))
    np.testing.assert_allclose(spread.numpy(), [0.0, 0.0], atol=1e-15)
    rng = np.random.default_rng(1)
    y_hat = softmax(rng.normal(size=(L, T, B, M)) * 3)
    spread = meta_objective.target_spread(
        types.RuleOutput(tf.zeros([L, T, B], tf.float64), tf.constant(y_hat),
                         None)).numpy()
    for l in range(L):
      steps = y_hat[l].reshape(T * B, M)
      distance = 0.5 * np.abs(steps - steps.mean(0)).sum(-1).mean()
      self.assertAlmostEqual(spread[l], distance, places=12)

  def test_advantage_is_a_constant(self):
    v = tf.constant(np.ones((L, T + 1, B)))
    with tf.GradientTape() as tape:
      tape.watch(v)
      traj = types.Trajectory(tf.zeros([L, T + 1, B]), tf.zeros([L, T, B], tf.int32),
                              tf.ones([L, T, B], tf.float64),
                              tf.ones([L, T, B], tf.float64), tf.zeros([L, T, B], tf.float64),
                              tf.zeros([L, T, B]))
      outputs = types.AgentOutput(tf.zeros([L, T + 1, B, A], tf.float64),
                                  tf.zeros([L, T + 1, B, M], tf.float64), v)
      terms = meta_objective.meta_objective(
          outputs, traj, v, tf.constant([0.9, 0.9], tf.float64),
          tf.constant([0.01, 0.01], tf.float64), tf.zeros([L], tf.float64),
          tf.zeros([L], tf.float64), meta_objective.MetaObjectiveCosts())
      loss = tf.reduce_sum(terms.loss)
    self.assertIsNone(tape.gradient(loss, v))


if __name__ == "__main__":
  absltest.main()
