"""lpg_tf/meta/pbt.py: the explore step stays within bounds and perturbs as
PBT does, members start where they should, settings are checked, and the
lineage file round-trips."""

import os

from absl.testing import absltest
import numpy as np

from lpg_tf import errors
from lpg_tf.meta import pbt

SPACE = {"lr": pbt.Bounds(1e-4, 1e-2, log=True),
         "cost": pbt.Bounds(0.0, 1.0),
         "k": pbt.Bounds(1, 10, integer=True)}
BASE = {"lr": 1e-3, "cost": 0.5, "k": 5, "mode": "gradient"}


class ExploreTest(absltest.TestCase):

  def test_perturbations_stay_within_bounds_and_keep_types(self):
    rng = np.random.default_rng(0)
    values = dict(BASE)
    for _ in range(2000):  # A long random walk presses against every bound.
      values = pbt.explore(values, SPACE, rng)
      for key, bounds in SPACE.items():
        self.assertBetween(values[key], bounds.low, bounds.high)
      self.assertIsInstance(values["k"], int)
      self.assertEqual(values["mode"], "gradient")  # Never perturbed.

  def test_without_resampling_each_value_moves_by_a_factor(self):
    rng = np.random.default_rng(1)
    for _ in range(200):
      new = pbt.explore(BASE, SPACE, rng, resample_probability=0.0)
      self.assertIn(new["lr"] / BASE["lr"], pbt.PERTURBATION_FACTORS)
      ratio = new["cost"] / BASE["cost"]
      self.assertTrue(np.isclose(ratio, 0.8) or np.isclose(ratio, 1.2), ratio)
      self.assertIn(new["k"], (4, 6))  # 5 x 0.8 = 4, 5 x 1.2 = 6.

  def test_an_integer_moves_even_where_the_factor_would_round_back(self):
    rng = np.random.default_rng(2)
    moved = {pbt.explore({**BASE, "k": 2}, SPACE, rng,
                         resample_probability=0.0)["k"] for _ in range(50)}
    self.assertEqual(moved, {1, 3})  # 2 x 0.8 and 2 x 1.2 both round to 2.

  def test_resampling_draws_across_the_whole_range(self):
    rng = np.random.default_rng(3)
    draws = [pbt.explore(BASE, SPACE, rng, resample_probability=1.0)["lr"]
             for _ in range(400)]
    logs = np.log10(draws)
    self.assertLess(logs.min(), -3.7)
    self.assertGreater(logs.max(), -2.3)
    # Log-uniform: about half the draws below the geometric middle, 1e-3.
    self.assertBetween(np.mean(logs < -3), 0.4, 0.6)

  def test_explore_is_a_function_of_the_generator(self):
    first = pbt.explore(BASE, SPACE, np.random.default_rng(7))
    again = pbt.explore(BASE, SPACE, np.random.default_rng(7))
    self.assertEqual(first, again)


class InitialHyperparametersTest(absltest.TestCase):

  def test_member_zero_keeps_the_base_and_modes_go_round_robin(self):
    members = pbt.initial_hyperparameters(
        BASE, SPACE, 5, np.random.default_rng(0), modes=("gradient", "es"),
        mode_key="mode")
    self.assertEqual(members[0], BASE)
    self.assertEqual([m["mode"] for m in members],
                     ["gradient", "es", "gradient", "es", "gradient"])
    for member in members[1:]:
      for key, bounds in SPACE.items():
        self.assertBetween(member[key], bounds.low, bounds.high)
    self.assertLen({m["lr"] for m in members}, 5)

  def test_a_base_outside_the_space_is_refused(self):
    with self.assertRaisesRegex(errors.ConfigError, "lr=0.5 lies outside"):
      pbt.initial_hyperparameters({**BASE, "lr": 0.5}, SPACE, 2,
                                  np.random.default_rng(0))


class CheckSettingsTest(absltest.TestCase):

  def test_bad_settings_are_refused(self):
    for members, interval, steps, message in (
        (1, 10, 100, "at least 2 members"),
        (True, 10, 100, "at least 2 members"),
        (4, 0, 100, "positive number"),
        (4, 200, 100, "shorter than one exploit interval")):
      with self.assertRaisesRegex(errors.ConfigError, message):
        pbt.check_settings(members, interval, steps)
    pbt.check_settings(2, 100, 100)

  def test_bounds_are_checked(self):
    with self.assertRaises(errors.ConfigError):
      pbt.Bounds(1.0, 0.5)
    with self.assertRaises(errors.ConfigError):
      pbt.Bounds(0.0, 1.0, log=True)


class LineageTest(absltest.TestCase):

  def test_records_append_and_read_back_in_order(self):
    path = os.path.join(self.create_tempdir().full_path, "lineage.jsonl")
    self.assertEqual(pbt.read_lineage(path), [])
    pbt.append_lineage(path, "start", "a", 0, {"lr": 1e-3})
    pbt.append_lineage(path, "exploit", "b", 100, {"lr": 2e-3}, donor="a",
                       donor_hyperparameters={"lr": 1e-3}, donor_fitness=0.5)
    records = pbt.read_lineage(path)
    self.assertEqual([r["event"] for r in records], ["start", "exploit"])
    self.assertEqual(records[1]["donor"], "a")
    self.assertEqual(records[1]["donor_fitness"], 0.5)
    self.assertEqual(records[1]["hyperparameters"], {"lr": 2e-3})
    self.assertNotIn("donor", records[0])


if __name__ == "__main__":
  absltest.main()
