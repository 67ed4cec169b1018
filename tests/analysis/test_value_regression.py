"""lpg_tf/analysis/value_regression.py against numpy references and known cases."""

from absl.testing import absltest
import numpy as np

from lpg_tf.analysis import value_regression


class ValueRegressionTest(absltest.TestCase):

  def test_correlations_match_numpy(self):
    rng = np.random.default_rng(0)
    features = rng.normal(size=[50, 4])
    target = features[:, 1] - 0.5 * rng.normal(size=50)
    features[:, 3] = 2.0  # a constant column carries nothing
    expected = [np.corrcoef(features[:, k], target)[0, 1] for k in range(3)]
    r = value_regression.correlations(features, target)
    np.testing.assert_allclose(r[:3], expected, rtol=1e-12)
    self.assertEqual(r[3], 0.0)

  def test_held_out_r2(self):
    rng = np.random.default_rng(1)
    features = rng.normal(size=[200, 3])
    fit = value_regression.held_out_split(200, seed=0)
    self.assertEqual(int((~fit).sum()), 100)
    linear = features @ [1.0, -2.0, 0.5] + 3.0
    self.assertAlmostEqual(
        value_regression.held_out_r2(features, linear, fit), 1.0, places=10)
    # Least squares ignores the features' scale.
    self.assertAlmostEqual(
        value_regression.held_out_r2(1e-5 * features, linear, fit), 1.0,
        places=6)
    noise = rng.normal(size=200)
    self.assertLess(value_regression.held_out_r2(features, noise, fit), 0.1)

  def test_prediction_statistics_of_uniform_and_value_coding_y(self):
    values = np.linspace(-1.0, 1.0, 40)
    fit = value_regression.held_out_split(40, seed=0)
    uniform = value_regression.prediction_statistics(
        np.full([40, 5], 0.2), values, fit)
    self.assertAlmostEqual(uniform.entropy, np.log(5))
    self.assertAlmostEqual(uniform.spread, 0.0)
    self.assertEqual(uniform.best_abs_correlation, 0.0)
    self.assertEqual(uniform.num_correlated_components, 0)
    # y's component 2 rises with the value, the others share what is left at
    # random.
    share = 0.1 + 0.8 * (values + 1.0) / 2.0
    rest = np.random.default_rng(3).dirichlet(np.ones(4), size=40)
    y = np.insert(rest * (1 - share)[:, None], 2, share, axis=1)
    coding = value_regression.prediction_statistics(y, values, fit)
    self.assertEqual(coding.best_component, 2)
    self.assertAlmostEqual(coding.best_abs_correlation, 1.0)
    self.assertGreaterEqual(coding.num_correlated_components, 1)
    self.assertAlmostEqual(coding.held_out_r2, 1.0)
    self.assertGreater(coding.spread, 0.2)
    self.assertLess(coding.entropy, np.log(5))

  def test_scalar_statistics(self):
    values = np.linspace(0.0, 1.0, 30)
    fit = value_regression.held_out_split(30, seed=2)
    stats = value_regression.scalar_statistics(2.0 * values - 1.0, values, fit)
    self.assertAlmostEqual(stats.correlation, 1.0)
    self.assertAlmostEqual(stats.held_out_r2, 1.0)

  def test_regression_on_the_simplex_and_diverged_estimates(self):
    """y sums to 1, so its components are collinear: the fit is still
    defined. A non-finite estimate or too few states give NaN, not an
    error."""
    rng = np.random.default_rng(4)
    y = rng.dirichlet(np.ones(3), size=60)
    values = 2.0 * y[:, 0] - y[:, 2]
    fit = value_regression.held_out_split(60, seed=0)
    self.assertAlmostEqual(value_regression.held_out_r2(y, values, fit), 1.0)
    y[5, 1] = np.nan
    self.assertTrue(np.isnan(value_regression.held_out_r2(y, values, fit)))
    self.assertTrue(np.isnan(value_regression.held_out_r2(
        y[:6], values[:6], np.array([True] * 4 + [False] * 2))))


if __name__ == "__main__":
  absltest.main()
