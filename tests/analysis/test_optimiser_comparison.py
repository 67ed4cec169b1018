"""lpg_tf/analysis/optimiser_comparison.py: run names, scores over wall clock,
the best score so far, and pooling compare.py results over seeds."""

from absl.testing import absltest
import numpy as np

from lpg_tf.analysis import meta_curves
from lpg_tf.analysis import optimiser_comparison as comparison


def timed(start, points):
  """A process's scalars: validation scores at (wall time, step, score)."""
  curves = {}
  if points:
    wall, steps, scores = zip(*points)
    curves[comparison.SCORE_TAG] = meta_curves.TimedCurve(
        np.array(steps, np.int64), np.array(scores, np.float64),
        np.array(wall, np.float64))
  return meta_curves.TimedScalars(curves, start)


def results(rules, seeds=5, steps=100):
  """A compare.py record over one environment: rule -> (mean, stderr)."""
  return {"settings": {"rules": list(rules), "seeds": seeds, "tuning_seeds": 2},
          "envs": {"chain/short": {
              "steps": steps, "random_return": 0.0,
              "rules": {rule: {"mean": mean, "stderr": stderr}
                        for rule, (mean, stderr) in rules.items()}}}}


class RunNamesTest(absltest.TestCase):

  def test_names_and_rules(self):
    self.assertEqual(comparison.parse_run_name("es_s12"), ("es", 12))
    self.assertIsNone(comparison.parse_run_name("es_s"))
    self.assertIsNone(comparison.parse_run_name("compare_s1"))
    self.assertEqual(comparison.run_of_rule("runs/cmp/pbt_s2/rule/"),
                     ("pbt", 2))
    self.assertEqual(comparison.run_of_rule("/x/gradient_s0/best_rule"),
                     ("gradient", 0))
    self.assertIsNone(comparison.run_of_rule("pretrained:lpg"))


class ScoresOverTimeTest(absltest.TestCase):

  def test_members_merge_in_time_order_from_the_first_start(self):
    curve = comparison.scores_over_time([
        timed(1000.0, [(1120.0, 100, 0.3), (1240.0, 200, 0.1)]),
        timed(1030.0, [(1180.0, 100, 0.5)]),
        timed(None, [])])
    np.testing.assert_allclose(curve.minutes, [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(curve.meta_steps, [100, 100, 200])
    np.testing.assert_allclose(curve.scores, [0.3, 0.5, 0.1])
    self.assertEqual(comparison.scores_over_time([timed(5.0, [])]).scores.size, 0)

  def test_best_so_far_holds_the_maximum_and_is_nan_before(self):
    curve = comparison.ScoresOverTime(np.array([1.0, 2.0, 3.0]),
                                      np.array([1, 2, 3]),
                                      np.array([0.2, 0.5, 0.4]))
    best = comparison.best_so_far(curve, np.array([0.5, 1.0, 2.5, 3.0, 9.0]))
    np.testing.assert_allclose(best, [np.nan, 0.2, 0.5, 0.5, 0.5])
    empty = comparison.ScoresOverTime(np.zeros(0), np.zeros(0), np.zeros(0))
    self.assertTrue(np.isnan(comparison.best_so_far(empty, np.ones(2))).all())


class RunSummaryTest(absltest.TestCase):

  def test_how_far_each_member_got(self):
    first = timed(0.0, [(60.0, 100, 0.3), (120.0, 200, 0.2)])
    first.curves["meta_loss"] = meta_curves.TimedCurve(
        np.array([10, 250]), np.zeros(2), np.array([10.0, 130.0]))
    summary = comparison.run_summary([first, timed(0.0, [(90.0, 100, 0.4)])])
    self.assertEqual(summary, {"meta_steps": [100, 250], "validations": 3,
                               "best_score": 0.4, "best_meta_step": 100})
    text = comparison.runs_markdown({"pbt": {1: summary}, "es": {
        0: comparison.run_summary([timed(0.0, [])])}})
    self.assertIn("| es | 0 | – | 0 | – |", text)
    self.assertIn("| pbt | 1 | 100–250 (2 members) | 3 | 0.400 (100) |", text)


class HeldOutTest(absltest.TestCase):

  def test_pools_seeds_against_a2c(self):
    table = comparison.held_out([
        results({"r/gradient_s0/best_rule": (0.9, 0.1), "r/es_s0/best_rule": (0.2, 0.1),
                 "a2c": (0.8, 0.02), "pretrained:lpg": (5.0, 0.0)}),
        results({"r/gradient_s1/best_rule": (0.7, 0.1), "r/gradient_s2/best_rule": (0.5, 0.1),
                 "a2c": (0.8, 0.02)})])
    row = table["chain/short"]
    self.assertEqual(row["a2c"], {"mean": 0.8, "stderr": 0.02})
    gradient = row["gradient"]
    self.assertEqual(gradient["seeds"], {0: 0.9, 1: 0.7, 2: 0.5})
    self.assertAlmostEqual(gradient["mean"], 0.7)
    self.assertAlmostEqual(gradient["stderr"], 0.2 / np.sqrt(3))
    self.assertEqual(gradient["at_least_a2c"], 1)
    self.assertIsNone(row["es"]["stderr"])  # One seed.
    self.assertNotIn("pbt", row)
    text = comparison.markdown(table)
    self.assertIn("| gradient | es | tuned A2C |", text)
    self.assertIn("**0.8 ± 0.02**", text)
    self.assertIn("0.7 ± 0.12 (1/3)", text)

  def test_refuses_what_cannot_be_pooled(self):
    with self.assertRaisesRegex(ValueError, "seeds=3"):
      comparison.held_out([results({"a2c": (1, 0)}),
                           results({"a2c": (1, 0)}, seeds=3)])
    with self.assertRaisesRegex(ValueError, "steps"):
      comparison.held_out([results({"a2c": (1, 0)}),
                           results({"a2c": (1, 0)}, steps=7)])
    with self.assertRaisesRegex(ValueError, "two results files"):
      comparison.held_out([results({"x/es_s0/best_rule": (1, 0)}),
                           results({"y/es_s0/best_rule": (1, 0)})])
    with self.assertRaisesRegex(ValueError, "no compare"):
      comparison.held_out([])


if __name__ == "__main__":
  absltest.main()
