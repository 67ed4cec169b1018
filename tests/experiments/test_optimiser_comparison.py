"""lpg_tf/experiments/optimiser_comparison.py: the comparison's plot, numbers
and table from run directories laid out as meta_train, pbt_meta_train and
compare.py leave them."""

import json
import os

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf.experiments import optimiser_comparison


def write_scores(tb_dir, scores):
  writer = tf.summary.create_file_writer(tb_dir)
  with writer.as_default():
    for step, score in scores:
      tf.summary.scalar("validation/score", score, step=step)
  writer.close()


class WriteComparisonTest(absltest.TestCase):

  def test_writes_plot_numbers_and_table(self):
    runs = self.create_tempdir().full_path
    write_scores(os.path.join(runs, "gradient_s0", "tb"), [(250, 0.3), (500, 0.6)])
    write_scores(os.path.join(runs, "gradient_s1", "tb"), [(250, 0.4)])
    for member, score in (("a", 0.1), ("b", 0.2)):
      write_scores(os.path.join(runs, "pbt_s0", "members", member, "tb"),
                   [(100, score)])
    os.makedirs(os.path.join(runs, "notes_s0"))  # Not an optimiser: ignored.
    for name, rule, mean in (("compare_s0", "gradient_s0/best_rule", 0.9),
                             ("compare_s1", "gradient_s1/best_rule", 0.5)):
      os.makedirs(os.path.join(runs, name))
      with open(os.path.join(runs, name, "results.json"), "w") as f:
        json.dump({"settings": {"rules": [os.path.join(runs, rule), "a2c"],
                                "seeds": 5, "tuning_seeds": 2},
                   "envs": {"chain/short": {
                       "steps": 10, "random_return": 0.0, "rules": {
                           os.path.join(runs, rule): {"mean": mean, "stderr": 0.1},
                           "a2c": {"mean": 0.7, "stderr": 0.05}}}}}, f)
    out = os.path.join(self.create_tempdir().full_path, "cmp.png")
    json_path = optimiser_comparison.write_comparison(runs, out, minutes=30)
    self.assertTrue(os.path.getsize(out) > 0)
    with open(json_path) as f:
      numbers = json.load(f)
    curves = numbers["validation_score_over_time"]
    self.assertEqual(sorted(curves), ["gradient", "pbt"])
    np.testing.assert_allclose(curves["gradient"]["0"]["scores"], [0.3, 0.6],
                               rtol=1e-6)  # float32 summaries.
    self.assertEqual(curves["gradient"]["0"]["meta_steps"], [250, 500])
    np.testing.assert_allclose(sorted(curves["pbt"]["0"]["scores"]), [0.1, 0.2],
                               rtol=1e-6)
    row = numbers["held_out"]["chain/short"]
    self.assertAlmostEqual(row["gradient"]["mean"], 0.7)
    self.assertEqual(row["gradient"]["at_least_a2c"], 1)
    self.assertEqual(numbers["runs"]["pbt"]["0"]["meta_steps"], [100, 100])
    with open(out[:-len(".png")] + ".md") as f:
      text = f.read()
    self.assertIn("| gradient | 1 | 250 | 1 | 0.400 (250) |", text)
    self.assertIn("| **0.7 ± 0.2** (1/2) | **0.7 ± 0.05** |", text)  # A tie.
    with open(optimiser_comparison.write_comparison(runs, out, seeds=[1])) as f:
      numbers = json.load(f)
    self.assertEqual(list(numbers["validation_score_over_time"]), ["gradient"])
    row = numbers["held_out"]["chain/short"]
    self.assertEqual(row["gradient"]["seeds"], {"1": 0.5})
    self.assertEqual(row["a2c"]["mean"], 0.7)

  def test_refuses_bad_input_before_writing(self):
    empty = self.create_tempdir().full_path
    out = os.path.join(self.create_tempdir().full_path, "cmp.png")
    with self.assertRaisesRegex(errors.ConfigError, "no run named"):
      optimiser_comparison.write_comparison(empty, out)
    with self.assertRaisesRegex(errors.ConfigError, "not a directory"):
      optimiser_comparison.write_comparison(os.path.join(empty, "x"), out)
    with self.assertRaisesRegex(errors.ConfigError, ".png"):
      optimiser_comparison.write_comparison(empty, out[:-4] + ".svg")
    os.makedirs(os.path.join(empty, "es_s0", "tb"))
    with self.assertRaisesRegex(errors.ConfigError, "no validation scores"):
      optimiser_comparison.write_comparison(empty, out)
    self.assertEmpty(os.listdir(os.path.dirname(out)))


if __name__ == "__main__":
  absltest.main()
