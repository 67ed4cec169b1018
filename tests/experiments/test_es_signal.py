"""lpg_tf/experiments/es_signal.py: the settings swept, the cosine statistic,
and a real measurement on a tiny population."""

import json
import os

from absl.testing import absltest
import numpy as np

from lpg_tf import errors
from lpg_tf.experiments import es_signal
from tests.meta import test_es_trainer


class SettingsTest(absltest.TestCase):

  def test_one_at_a_time_around_the_config(self):
    config = test_es_trainer.es_config(**{"meta.es.sigma": 0.01})
    settings = es_signal.settings_around(config, [2, 4], [0.01, 0.1], [3])
    self.assertEqual(settings, [(2, 0.01, 2), (2, 0.1, 2), (4, 0.01, 2),
                                (2, 0.01, 3)])

  def test_pairwise_cosines(self):
    cosines = es_signal.pairwise_cosines(
        [np.array([1.0, 0.0]), np.array([1.0, 1.0]), np.array([0.0, -2.0]),
         np.zeros(2)])
    np.testing.assert_allclose(
        cosines, [np.sqrt(0.5), 0.0, 0.0, -np.sqrt(0.5), 0.0, 0.0])


class RunTest(absltest.TestCase):

  def test_measures_and_writes_every_setting(self):
    # Members far enough apart, and a window long enough, for the grid's
    # rewards to rank them.
    config = test_es_trainer.es_config(**{
        "meta.es.window": 6, "meta.es.population_size": 4, "meta.es.sigma": 0.1})
    out = os.path.join(self.create_tempdir().full_path, "signal.json")
    rows = es_signal.run(config, [es_signal.Setting(4, 0.1, 6),
                                  es_signal.Setting(4, 0.2, 6)], 3, out)
    with open(out) as f:
      self.assertEqual(json.load(f)["rows"], rows)
    self.assertEqual([(r["rule"], r["population_size"], r["sigma"], r["window"],
                       r["estimates"]) for r in rows],
                     [("eta_0", 4, 0.1, 6, 3), ("eta_0", 4, 0.2, 6, 3)])
    for row in rows:
      self.assertBetween(row["cosine_mean"], -1.0, 1.0)
      self.assertBetween(row["tied_fraction"], 0.0, 1.0)
      self.assertGreater(row["estimate_norm"], 0.0)
      self.assertGreater(row["seconds_per_estimate"], 0.0)
    with open(out[:-len(".json")] + ".md") as f:
      self.assertLen(f.read().splitlines(), 4)

  def test_refuses_bad_input_before_measuring(self):
    config = test_es_trainer.es_config()
    out = os.path.join(self.create_tempdir().full_path, "signal.json")
    for settings, estimates, path, message in (
        ([es_signal.Setting(2, 0.01, 2)], 2, out, "at least 3"),
        ([es_signal.Setting(2, 0.01, 2)], 3, out[:-5] + ".txt", ".json path"),
        ([es_signal.Setting(3, 0.01, 2)], 3, out, "even"),
        ([es_signal.Setting(2, 0.01, 1)], 3, out, "window")):
      with self.assertRaisesRegex(errors.ConfigError, message):
        es_signal.run(config, settings, estimates, path)
    self.assertFalse(os.path.exists(out))


if __name__ == "__main__":
  absltest.main()
