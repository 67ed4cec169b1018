"""lpg_tf/analysis/meta_curves.py and its run function: curves read back from
a tiny TensorBoard directory written as meta-training writes it."""

import json
import os

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf.analysis import meta_curves
from lpg_tf.experiments import meta_curves as meta_curves_run


def write_run(run_dir):
  """Two groups' returns every 10 meta-steps, validation at 20 and 40; a
  resumed second writer logs steps 30 and 40 again with other values."""
  tb_dir = os.path.join(run_dir, "tb")
  first = tf.summary.create_file_writer(tb_dir)
  with first.as_default():
    for step in range(0, 50, 10):
      tf.summary.scalar("chain/short/episode_return", step / 10, step=step)
      tf.summary.scalar("tabular/dense[move]/episode_return", 2.0, step=step)
      tf.summary.scalar("meta_loss", 1.0, step=step)
    for step, score in ((20, 0.2), (40, 0.5)):
      tf.summary.scalar("validation/score", score, step=step)
      tf.summary.scalar("validation/chain/short/return", score, step=step)
      tf.summary.scalar("validation/chain/short/normalised_return", 9.0,
                        step=step)
  first.close()
  second = tf.summary.create_file_writer(tb_dir, filename_suffix=".resumed")
  with second.as_default():
    for step in (30, 40):
      tf.summary.scalar("chain/short/episode_return", -1.0, step=step)
  second.close()
  return tb_dir


class MetaCurvesTest(absltest.TestCase):

  def test_reads_picks_and_smooths(self):
    tb_dir = write_run(self.create_tempdir().full_path)
    curves = meta_curves.meta_curves(meta_curves.read_scalars(tb_dir), 0.5)
    steps, values = curves.returns["chain/short"]
    np.testing.assert_array_equal(steps, [0, 10, 20, 30, 40])
    np.testing.assert_array_equal(values, [0.0, 1.0, 2.0, -1.0, -1.0])
    self.assertCountEqual(curves.returns, ["chain/short", "tabular/dense[move]"])
    self.assertEqual(list(curves.validation_returns), ["chain/short"])
    np.testing.assert_allclose(curves.scores["validation/score"][1],
                               [0.2, 0.5])
    self.assertEqual(curves.environments(), ["chain/short", "tabular/dense"])
    # Debiased EMA: the first value as it is, then (0.5 * 0 + 1) / 1.5 ...
    np.testing.assert_allclose(curves.smoothed("chain/short")[:2],
                               [0.0, 1.0 / 1.5])

  def test_writes_the_png_and_its_numbers(self):
    run_dir = self.create_tempdir().full_path
    write_run(run_dir)
    out = os.path.join(self.create_tempdir().full_path, "meta.png")
    json_path = meta_curves_run.plot_meta_training(run_dir, out, 0.0)
    self.assertTrue(os.path.getsize(out))
    with open(json_path) as f:
      numbers = json.load(f)
    self.assertEqual(numbers["episode_return"]["tabular/dense[move]"]["values"],
                     [2.0] * 5)
    self.assertEqual(numbers["validation_score"]["score"]["meta_steps"],
                     [20, 40])

  def test_bad_input(self):
    run_dir = self.create_tempdir().full_path
    with self.assertRaisesRegex(errors.ConfigError, "no TensorBoard summaries"):
      meta_curves_run.plot_meta_training(run_dir, "/tmp/x.png")
    write_run(run_dir)
    with self.assertRaisesRegex(errors.ConfigError, ".png"):
      meta_curves_run.plot_meta_training(run_dir, "/tmp/x.jpg")
    with self.assertRaisesRegex(errors.ConfigError, "smoothing"):
      meta_curves_run.plot_meta_training(run_dir, "/tmp/x.png", 1.0)


if __name__ == "__main__":
  absltest.main()
