"""The hyperparameter bandit of Eq. 6 against hand-computed probabilities."""

import json
import math
import os
import tempfile

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf.meta import bandit as bandit_lib

# Table 3's grids.
TABULAR_LRS = (20.0, 40.0, 80.0)
NETWORK_LRS = (0.0005, 0.001, 0.002, 0.005)
DISTRACTOR_LRS = (0.002, 0.005, 0.01)
KL_COSTS = (0.1, 0.5, 1.0)
GRIDS = {
    "tabular/dense": (TABULAR_LRS, KL_COSTS),
    "random/dense": (NETWORK_LRS, KL_COSTS),
    "chain/distractor": (DISTRACTOR_LRS, KL_COSTS),
}


def small_bandit(temperature=0.1, exploration_bonus=0.2):
  """Four arms: (20, .1), (20, 1), (40, .1), (40, 1), every one tried.

  R = [0.75, 0.2, 0.45, 0.4], N = [2, 1, 4, 1].
  """
  b = bandit_lib.Bandit((20.0, 40.0), (0.1, 1.0), temperature,
                        exploration_bonus)
  for arm, results in enumerate([[1.0, 0.5], [0.2], [0.0, 0.3, 0.6, 0.9],
                                 [0.4]]):
    for r in results:
      b.update(arm, r)
  return b


def fake_final_return(env_name, arm, step):
  """A deterministic final return: arm 4 is best in every environment."""
  return (1.0 if arm == 4 else 0.0) + 0.01 * math.sin(step + len(env_name))


def run(bandit_set, env_names, first_step, num_steps):
  """Samples and updates `num_steps` lifetimes; returns the samples."""
  samples = []
  for step in range(first_step, first_step + num_steps):
    name = env_names[step % len(env_names)]
    arm, lr, kl = bandit_set.sample(name)
    bandit_set.update(name, arm, fake_final_return(name, arm, step))
    samples.append((name, arm, lr, kl))
  return samples


class BanditTest(parameterized.TestCase):

  def test_table_2_defaults(self):
    self.assertEqual(bandit_lib.TEMPERATURE, 0.1)
    self.assertEqual(bandit_lib.EXPLORATION_BONUS, 0.2)
    self.assertEqual(bandit_lib.WINDOW, 10)
    b = bandit_lib.Bandit(TABULAR_LRS, KL_COSTS)
    self.assertEqual(b.temperature, 0.1)
    self.assertEqual(b.exploration_bonus, 0.2)
    self.assertEqual(b.window, 10)
    s = bandit_lib.BanditSet(GRIDS, seed=0)
    for b in s.bandits.values():
      self.assertEqual((b.temperature, b.exploration_bonus, b.window),
                       (0.1, 0.2, 10))

  @parameterized.parameters(*GRIDS.values())
  def test_arms_are_the_table_3_grid(self, lrs, kls):
    b = bandit_lib.Bandit(lrs, kls)
    self.assertEqual(b.arms, [(lr, kl) for lr in lrs for kl in kls])
    self.assertEqual(b.num_arms, len(lrs) * len(kls))
    for arm, values in enumerate(b.arms):
      self.assertEqual(b.arm_values(arm), values)
    self.assertEqual(b.arm_values(len(kls) + 2), (lrs[1], kls[2]))

  # Table 2's default and its searched values of tau and rho.
  @parameterized.parameters((0.1, 0.2), (1.0, 0.2), (0.1, 1.0), (1.0, 1.0))
  def test_probabilities_match_eq_6_by_hand(self, tau, rho):
    b = small_bandit(tau, rho)
    np.testing.assert_allclose(b.mean_returns, [0.75, 0.2, 0.45, 0.4])
    np.testing.assert_array_equal(b.counts, [2, 1, 4, 1])
    weights = [math.exp((0.75 + rho / math.sqrt(2)) / tau),
               math.exp((0.2 + rho / math.sqrt(1)) / tau),
               math.exp((0.45 + rho / math.sqrt(4)) / tau),
               math.exp((0.4 + rho / math.sqrt(1)) / tau)]
    expected = np.array(weights) / sum(weights)
    np.testing.assert_allclose(b.probabilities(), expected, rtol=1e-12)
    self.assertEqual(b.most_probable_arm(), 0)

  def test_bonus_favours_rarely_tried_arms(self):
    b = bandit_lib.Bandit((1.0,), (0.1, 1.0))
    for _ in range(4):
      b.update(0, 0.5)
    b.update(1, 0.5)
    p = b.probabilities()
    # Equal R; logits differ by rho (1 - 1/2) / tau = 1.
    self.assertAlmostEqual(p[1] / p[0], math.e, places=12)

  def test_large_returns_are_stable(self):
    b = bandit_lib.Bandit((1.0,), (0.1, 1.0))
    b.update(0, 1000.0)
    b.update(1, 1001.0)
    p = b.probabilities()
    self.assertTrue(np.all(np.isfinite(p)))
    np.testing.assert_allclose(p[1] / p[0], math.exp(10.0), rtol=1e-9)

  def test_window_keeps_the_last_10_lifetimes(self):
    b = bandit_lib.Bandit(TABULAR_LRS, KL_COSTS)
    for r in range(15):
      b.update(3, float(r))
    self.assertEqual(b.counts[3], 15)
    self.assertEqual(b.mean_returns[3], np.mean(np.arange(5, 15)))
    self.assertEqual(b.get_state()["returns"][3],
                     [float(r) for r in range(5, 15)])

  def test_fewer_than_window_results_average_what_there_is(self):
    b = bandit_lib.Bandit(TABULAR_LRS, KL_COSTS)
    b.update(2, 1.0)
    b.update(2, 4.0)
    self.assertEqual(b.mean_returns[2], 2.5)
    self.assertTrue(np.isnan(b.mean_returns[0]))

  def test_lowest_return_is_the_lowest_result_in_any_window(self):
    bandit = bandit_lib.Bandit([0.1, 0.2], [0.5])
    self.assertTrue(np.isnan(bandit.lowest_return))
    bandit.update(0, 3.0)
    bandit.update(1, -2.0)
    bandit.update(0, 1.0)
    self.assertEqual(bandit.lowest_return, -2.0)

  def test_untried_arms_come_first(self):
    b = bandit_lib.Bandit(TABULAR_LRS, KL_COSTS)
    np.testing.assert_allclose(b.probabilities(), np.full(9, 1 / 9))
    b.update(0, 100.0)
    b.update(5, -100.0)
    p = b.probabilities()
    self.assertEqual(p[0], 0.0)
    self.assertEqual(p[5], 0.0)
    np.testing.assert_allclose(p[[1, 2, 3, 4, 6, 7, 8]], np.full(7, 1 / 7))

  def test_every_arm_is_tried_once_before_eq_6(self):
    b = bandit_lib.Bandit(NETWORK_LRS, KL_COSTS)
    rng = np.random.default_rng(3)
    first = []
    for _ in range(b.num_arms):
      arm = b.sample(rng)
      first.append(arm)
      b.update(arm, 0.0)
    self.assertCountEqual(first, range(b.num_arms))
    self.assertTrue(np.all(b.probabilities() > 0))

  def test_sampling_concentrates_on_the_best_arm(self):
    b = bandit_lib.Bandit(TABULAR_LRS, KL_COSTS)
    rng = np.random.default_rng(0)
    noise = np.random.default_rng(1)
    best = 7
    arms = []
    for _ in range(300):
      arm = b.sample(rng)
      arms.append(arm)
      b.update(arm, (1.0 if arm == best else 0.0) + 0.05 * noise.normal())
    self.assertEqual(b.most_probable_arm(), best)
    self.assertGreater(b.probabilities()[best], 0.9)
    self.assertGreater(np.mean(np.array(arms[-100:]) == best), 0.9)
    self.assertCountEqual(arms[:9], range(9))  # Each arm once, then Eq. 6.

  @parameterized.parameters(float("nan"), float("inf"), float("-inf"))
  def test_non_finite_return_is_rejected(self, value):
    b = small_bandit()
    before = b.get_state()
    with self.assertRaisesRegex(ValueError, "finite"):
      b.update(1, value)
    self.assertEqual(b.get_state(), before)
    s = bandit_lib.BanditSet(GRIDS, seed=0)
    with self.assertRaisesRegex(ValueError, "finite"):
      s.update("tabular/dense", 0, np.float32(value))

  def test_bad_arm_and_environment(self):
    b = bandit_lib.Bandit(TABULAR_LRS, KL_COSTS)
    with self.assertRaisesRegex(ValueError, "out of range"):
      b.update(9, 0.0)
    with self.assertRaisesRegex(ValueError, "out of range"):
      b.arm_values(-1)
    s = bandit_lib.BanditSet(GRIDS, seed=0)
    with self.assertRaisesRegex(ValueError, "No bandit"):
      s.sample("tabular/unknown")

  @parameterized.parameters(
      dict(temperature=0.0), dict(exploration_bonus=-0.1), dict(window=0),
      dict(learning_rates=()), dict(kl_costs=(0.1, float("nan"))))
  def test_invalid_configuration(self, **kwargs):
    args = dict(learning_rates=TABULAR_LRS, kl_costs=KL_COSTS)
    args.update(kwargs)
    with self.assertRaises(errors.ConfigError):
      bandit_lib.Bandit(**args)

  def test_state_round_trips_exactly_through_json(self):
    b = small_bandit()
    for r in range(12):
      b.update(2, 0.1 * r + 1e-17)
    state = json.loads(json.dumps(b.get_state()))
    restored = bandit_lib.Bandit((20.0, 40.0), (0.1, 1.0))
    restored.set_state(state)
    self.assertEqual(restored.get_state(), b.get_state())
    np.testing.assert_array_equal(restored.probabilities(), b.probabilities())
    restored.update(2, 5.0)
    b.update(2, 5.0)
    self.assertEqual(restored.get_state(), b.get_state())

  def test_set_state_rejects_another_grid(self):
    state = small_bandit().get_state()
    other = bandit_lib.Bandit((20.0, 80.0), (0.1, 1.0))
    with self.assertRaisesRegex(ValueError, "configuration"):
      other.set_state(state)
    state["counts"][0] = 0
    b = bandit_lib.Bandit((20.0, 40.0), (0.1, 1.0))
    with self.assertRaisesRegex(ValueError, "Inconsistent"):
      b.set_state(state)
    np.testing.assert_array_equal(b.counts, [0, 0, 0, 0])


class BanditSetTest(absltest.TestCase):

  def test_sample_returns_the_arms_values(self):
    s = bandit_lib.BanditSet(GRIDS, seed=0)
    for name, (lrs, kls) in GRIDS.items():
      arm, lr, kl = s.sample(name)
      self.assertEqual((lr, kl), s.bandits[name].arm_values(arm))
      self.assertIn(lr, lrs)
      self.assertIn(kl, kls)
    s.update("random/dense", arm=3, final_return=2.0)
    self.assertEqual(s.bandits["random/dense"].counts[3], 1)
    self.assertEqual(s.bandits["tabular/dense"].counts.sum(), 0)

  def test_same_seed_same_samples(self):
    names = list(GRIDS)
    a = run(bandit_lib.BanditSet(GRIDS, seed=5), names, 0, 60)
    b = run(bandit_lib.BanditSet(GRIDS, seed=5), names, 0, 60)
    c = run(bandit_lib.BanditSet(GRIDS, seed=6), names, 0, 60)
    self.assertEqual(a, b)
    self.assertNotEqual(a, c)

  def test_checkpoint_restore_gives_the_uninterrupted_samples(self):
    names = list(GRIDS)
    straight = run(bandit_lib.BanditSet(GRIDS, seed=7), names, 0, 120)

    first = bandit_lib.BanditSet(GRIDS, seed=7)
    head = run(first, names, 0, 60)
    held = first.bandits["random/dense"]
    with tempfile.TemporaryDirectory() as workdir:
      checkpoint = tf.train.Checkpoint(bandits=first)
      path = checkpoint.save(os.path.join(workdir, "ckpt"))
      saved_state = first.serialize()
      run(first, names, 60, 10)  # Moves on, then goes back to the checkpoint.
      checkpoint.restore(path).assert_consumed()
      resumed = bandit_lib.BanditSet(GRIDS, seed=123)
      tf.train.Checkpoint(bandits=resumed).restore(path).assert_consumed()
    self.assertEqual(first.serialize(), saved_state)
    self.assertIs(first.bandits["random/dense"], held)  # Restored in place.
    self.assertEqual(resumed.serialize(), saved_state)
    self.assertEqual(head + run(first, names, 60, 60), straight)
    self.assertEqual(head + run(resumed, names, 60, 60), straight)

  def test_deserialize_rejects_other_environments(self):
    saved = bandit_lib.BanditSet(GRIDS, seed=0)
    run(saved, list(GRIDS), 0, 5)
    other = bandit_lib.BanditSet({"tabular/dense": GRIDS["tabular/dense"]},
                                 seed=1)
    before = other.serialize()
    with self.assertRaisesRegex(ValueError, "Saved bandits"):
      other.deserialize(saved.serialize().encode())
    self.assertEqual(other.serialize(), before)

  def test_deserialize_changes_nothing_on_a_bad_state(self):
    s = bandit_lib.BanditSet(GRIDS, seed=0)
    run(s, list(GRIDS), 0, 30)
    before = s.serialize()
    state = json.loads(before)
    state["bandits"]["random/dense"]["counts"] = [0] * 12
    with self.assertRaisesRegex(ValueError, "Inconsistent"):
      s.deserialize(json.dumps(state))
    state = json.loads(before)
    state["bandits"]["tabular/dense"]["temperature"] = 1.0
    with self.assertRaisesRegex(ValueError, "configuration"):
      s.deserialize(json.dumps(state))
    self.assertEqual(s.serialize(), before)


if __name__ == "__main__":
  absltest.main()
