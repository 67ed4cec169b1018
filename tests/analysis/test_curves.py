"""lpg_tf/analysis/curves.py: the final return of a run, and its plot."""

import os

from absl.testing import absltest
import numpy as np

from lpg_tf.analysis import curves


class FinalReturnsTest(absltest.TestCase):

  def test_ignores_points_without_episodes(self):
    points = np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, np.nan],
                       [np.nan, np.nan]])
    np.testing.assert_array_equal(curves.final_returns(points), [3.0, 2.0])

  def test_a_seed_without_episodes_has_none(self):
    self.assertTrue(np.isnan(curves.final_returns(np.full((2, 1), np.nan))[0]))

  def test_last_tenth_of_the_points_with_episodes(self):
    # 25 points with episodes (and NaN between them): the last 2 count.
    column = np.full(50, np.nan)
    column[::2] = np.arange(25.0)
    np.testing.assert_array_equal(curves.final_returns(column[:, None]), [23.5])

  def test_rejects_a_flat_list(self):
    with self.assertRaisesRegex(ValueError, "seeds"):
      curves.final_returns(np.ones(5))


class PlotCurvesTest(absltest.TestCase):

  def test_writes_a_png(self):
    rows = [{"seed": s, "env_steps": x, "episode_return": float(x * (s + 1))}
            for s in range(2) for x in (10, 20, 30)]
    path = os.path.join(self.create_tempdir().full_path, "curve.png")
    self.assertEqual(curves.plot_curves(rows, path, "title", 0.5), path)
    with open(path, "rb") as f:
      self.assertEqual(f.read(8), b"\x89PNG\r\n\x1a\n")


class ComparisonPlotTest(absltest.TestCase):

  def test_mean_and_stderr_leave_nan_seeds_out(self):
    mean, stderr = curves.mean_and_stderr(
        [[1.0, 3.0], [2.0, np.nan], [np.nan, np.nan]])
    np.testing.assert_allclose(mean[:2], [2.0, 2.0])
    np.testing.assert_allclose(stderr[:2], [1.0, 0.0])
    self.assertTrue(np.isnan(mean[2]) and np.isnan(stderr[2]))

  def test_plot_comparison_writes_a_png(self):
    path = os.path.join(self.create_tempdir().full_path, "c.png")
    steps = np.array([10, 20, 30])
    points = np.array([[0.0, 1.0], [1.0, np.nan], [2.0, 2.5]])
    curves.plot_comparison({"a2c": (steps, points), "lpg": (steps, -points)},
                           path, "title", random_return=0.5)
    self.assertGreater(os.path.getsize(path), 0)


if __name__ == "__main__":
  absltest.main()
