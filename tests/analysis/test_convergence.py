"""lpg_tf/analysis/convergence.py (Figure 6): the divergence, and two y's that
a rule with one fixed target must bring together."""

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf import types
from lpg_tf.analysis import convergence
from lpg_tf.analysis import probe_grid
from lpg_tf.rules import base as rule_base
from lpg_tf.rules import lpg

M = 5


class UniformTargetRule(rule_base.UpdateRule):
  """A test double whose y_hat is uniform everywhere: under it every y
  converges to the uniform vector, so any two y's converge to each other."""

  @property
  def loss_config(self):
    return rule_base.LossConfig()

  @property
  def prediction_size(self):
    return M

  def __call__(self, inputs):
    logits = tf.zeros_like(inputs.y)
    return types.RuleOutput(pi_hat=tf.zeros_like(inputs.reward),
                            y_hat=tf.nn.softmax(logits), baseline_target=None,
                            y_hat_logits=logits)


class KLTest(absltest.TestCase):

  def test_matches_the_definition(self):
    p = np.array([[0.5, 0.25, 0.25], [1.0, 0.0, 0.0]])
    q = np.array([[0.25, 0.5, 0.25], [0.5, 0.25, 0.25]])
    expected = [0.5 * np.log(2) + 0.25 * np.log(0.5), np.log(2)]
    np.testing.assert_allclose(convergence.kl_divergence(p, q), expected)
    np.testing.assert_allclose(convergence.kl_divergence(q, q), 0.0, atol=1e-12)


class ConvergenceTest(absltest.TestCase):

  def test_a_fixed_target_brings_two_random_y_together(self):
    env = probe_grid.make()
    untrained = lpg.LPG(hidden_size=8, prediction_size=M)
    untrained.build()
    result, example = convergence.convergence(
        UniformTargetRule(), untrained, env,
        probe_grid.instances(env, 3, seed=0), num_updates=6, record_every=3,
        learning_rate=40.0, kl_cost=1.0, num_envs=4, unroll_length=5,
        min_visits=1, jit_compile=False)
    self.assertEqual(result.recorded_updates, (0, 3, 6))
    self.assertEqual(result.instances, 3)
    kl = np.asarray(result.rule.mean)
    self.assertGreater(kl[0], 0.3)  # Independent N(0, 1) logits start apart.
    self.assertLess(kl[-1], 0.5 * kl[0])
    self.assertTrue(np.all(np.diff(kl) < 0))
    # Both rules start from the same y's.
    self.assertEqual(result.untrained_rule.mean[0], kl[0])
    self.assertTrue(np.all(np.isfinite(result.untrained_rule.mean)))
    self.assertEqual(example.y0.shape, (2, env.spec.num_states, M))
    self.assertGreater(example.visited.sum(), 0)


if __name__ == "__main__":
  absltest.main()
