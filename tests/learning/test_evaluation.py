"""lpg_tf/learning/evaluation.py: fresh lifetimes trained by a rule, scored."""

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf import agents
from lpg_tf import rules
from lpg_tf.experiments import train_agent
from lpg_tf.learning import evaluation
from lpg_tf.rules import lpg


def chain_evaluator(rule=None, num_lifetimes=2, steps=800, num_envs=4):
  return evaluation.Evaluator("chain/short", rule or rules.make("a2c"),
                              num_lifetimes, steps, num_envs, unroll_length=10,
                              jit_compile=False)


class EvaluatorTest(absltest.TestCase):

  def test_finite_deterministic_and_one_trace(self):
    evaluator = chain_evaluator()
    first = evaluator.run([40.0, 20.0], 0.5, 0.99, seed=3)
    self.assertEqual(first.final_returns.shape, (2,))
    self.assertTrue(np.all(np.isfinite(first.final_returns)))
    self.assertEqual(first.env_steps, 800)
    self.assertEqual(first.points.shape, (20, 2))  # 20 updates, one per point
    other = evaluator.run(80.0, 0.5, [0.9, 0.99], seed=[4, 1000])
    again = evaluator.run([40.0, 20.0], 0.5, 0.99, seed=3)
    np.testing.assert_array_equal(first.points, again.points)
    self.assertFalse(np.array_equal(first.points, other.points, equal_nan=True))
    self.assertEqual(evaluator.traces, 1)

  def test_a_learning_rate_beats_none(self):
    """A2C on chain/short: alpha_lr 40 reaches about +1, alpha_lr 0 stays at
    theta_0's nearly uniform policy (about 0), in one batched run."""
    result = chain_evaluator(num_lifetimes=4, steps=9600, num_envs=16).run(
        [0.0, 0.0, 40.0, 40.0], 0.0, 0.99, seed=0)
    self.assertLess(np.abs(result.final_returns[:2]).max(), 0.5)
    self.assertGreater(result.final_returns[2:].min(), 0.5)

  def test_runs_an_lpg_rule_and_reads_its_current_weights(self):
    rule = lpg.LPG(hidden_size=4, prediction_size=6)
    rule.build()
    evaluator = chain_evaluator(rule)
    before = evaluator.run(40.0, 0.5, 0.99, seed=0)
    for variable in rule.trainable_variables:
      variable.assign(variable * 3.0 + 0.1)
    after = evaluator.run(40.0, 0.5, 0.99, seed=0)
    self.assertTrue(np.all(np.isfinite(after.final_returns)))
    self.assertFalse(np.array_equal(before.points, after.points, equal_nan=True))
    self.assertEqual(evaluator.traces, 1)

  def test_equals_train_agent(self):
    """Same seed, same settings: the final returns train_agent reports."""
    workdir = self.create_tempdir().full_path
    reported = train_agent.train_agents(
        "chain/short", "a2c", workdir, steps=800, seeds=2, num_envs=4,
        unroll_length=10, learning_rate=40.0, kl_cost=0.5, gamma=0.99, seed=7,
        jit_compile=False).final_returns
    evaluated = evaluation.evaluate(
        "chain/short", rules.make("a2c"), [40.0, 40.0], 0.5, 0.99, steps=800,
        num_envs=4, seed=7, unroll_length=10, jit_compile=False).final_returns
    np.testing.assert_array_equal(evaluated, reported)

  def test_settings_share_their_seeds(self):
    """Settings x seeds: lifetime g * S + j starts from seed j's theta_0, the
    one an S-lifetime Evaluator draws from the same key (alpha_lr 0 keeps
    theta_0)."""
    grid = evaluation.Evaluator("chain/long", rules.make("a2c"), 4, 40, 4,
                                unroll_length=10, jit_compile=False,
                                num_seeds=2)
    grid.run(0.0, 0.0, 0.99, seed=[5, 6000])
    # theta_0 of an Evaluator of two lifetimes: its agent's draw from the key.
    seeds = agents.build_agent(grid.env.spec, 2, seed=0).init_params(
        tf.constant([5, 6000]))
    for name, table in grid.params.items():
      np.testing.assert_array_equal(table[:2], table[2:], err_msg=name)
      np.testing.assert_array_equal(table[:2], seeds[name], err_msg=name)
    self.assertFalse(np.array_equal(seeds["table"][0], seeds["table"][1]))
    with self.assertRaisesRegex(ValueError, "does not divide"):
      evaluation.Evaluator("chain/short", rules.make("a2c"), 4, 40, 4,
                           num_seeds=3)

  def test_minatar_game(self):
    """A MinAtar game through the same run: finite, same key same curve."""
    evaluator = evaluation.Evaluator("minatar/breakout", rules.make("a2c"), 2,
                                     steps=160, num_envs=4, jit_compile=False)
    first = evaluator.run(0.002, 0.0, 0.99, seed=[1, 5000])
    again = evaluator.run(0.002, 0.0, 0.99, seed=[1, 5000])
    self.assertEqual(first.points.shape, (2, 2))
    np.testing.assert_array_equal(first.point_steps, [80, 160])
    np.testing.assert_array_equal(first.points, again.points)
    self.assertTrue(np.all(np.isfinite(first.final_returns)))
    self.assertEqual(evaluator.traces, 1)

  def test_rejects_bad_hyperparameters(self):
    evaluator = chain_evaluator()
    with self.assertRaisesRegex(ValueError, "learning_rate must be finite"):
      evaluator.run([np.nan, 1.0], 0.5, 0.99, seed=0)
    with self.assertRaises(ValueError):
      evaluator.run([1.0, 1.0, 1.0], 0.5, 0.99, seed=0)
    with self.assertRaisesRegex(ValueError, "steps must be positive"):
      evaluation.Evaluator("chain/short", rules.make("a2c"), 1, 0, 4)


if __name__ == "__main__":
  absltest.main()
