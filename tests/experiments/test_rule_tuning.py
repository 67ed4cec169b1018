"""lpg_tf/experiments/rule_tuning.py: grids, held-out keys, the argmax, one
batched tuning run."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from lpg_tf import agents
from lpg_tf import envs
from lpg_tf.envs import minatar
from lpg_tf.experiments import rule_tuning
from lpg_tf.learning import evaluation
from lpg_tf.meta import lifetime_settings
from lpg_tf.meta import population
from lpg_tf.meta import validation


def meta_training_keys(run_seeds, groups=30, resets=10_000):
  """Every key meta-training with these seeds draws from, its validation's
  and train_agent's (`[s, 0]`), per validation.py's key scheme."""
  keys = set()
  for t in run_seeds:
    for group in range(groups):
      keys |= {(1000 * t + group, word) for word in (1, 2, 3)}
      keys.add((t, validation.VALIDATION_KEY_WORD + group))
    keys |= {(t + population.RESET_SEED_OFFSET, n) for n in range(resets)}
    keys.add((t, 0))
  return keys


class KeysTest(absltest.TestCase):

  def test_test_and_tuning_keys_are_held_out(self):
    comparison_seeds = range(rule_tuning.MAX_SEED)
    test_keys = {rule_tuning.test_key(c) for c in comparison_seeds}
    tuning_keys = {rule_tuning.tuning_key(c) for c in comparison_seeds}
    self.assertEmpty(test_keys & tuning_keys)
    used = meta_training_keys(run_seeds=range(8))
    self.assertEmpty(test_keys & used)
    self.assertEmpty(tuning_keys & used)


class GridTest(parameterized.TestCase):

  @parameterized.parameters("tabular/dense", "random/small", "chain/distractor")
  def test_lpg_gets_table_3s_arms_and_a2c_at_least_its_rates(self, env_name):
    row = lifetime_settings.for_env(env_name)
    lpg = rule_tuning.settings_grid(env_name, "runs/some/rule")
    self.assertCountEqual(lpg, [(lr, kl) for lr in row.learning_rates
                                for kl in row.kl_costs])
    a2c = rule_tuning.settings_grid(env_name, rule_tuning.A2C_NAME)
    optimiser = agents.preset_for(env_name).optimiser
    self.assertContainsSubset(
        set(row.learning_rates) | {evaluation.A2C_LEARNING_RATES[optimiser]},
        {s.learning_rate for s in a2c})
    self.assertEqual({s.kl_cost for s in a2c}, {0.0})

  def test_minatar_grids(self):
    rates = set(agents.MINATAR.searched_learning_rates)
    a2c = rule_tuning.settings_grid("minatar/breakout", "a2c")
    lpg = rule_tuning.settings_grid("minatar/breakout", "pretrained")
    self.assertEqual({s.learning_rate for s in a2c}, rates)
    self.assertLen(lpg, len(rates) * len(agents.ATARI.searched_kl_costs))

  def test_every_environment_has_grids(self):
    for env_name in tuple(envs.NAMES) + minatar.NAMES:
      self.assertNotEmpty(rule_tuning.settings_grid(env_name, "a2c"))


class ChooseTest(absltest.TestCase):

  def test_highest_mean_over_seeds(self):
    self.assertEqual(rule_tuning.choose([[1.0, 2.0], [3.0, 2.5], [4.0, 0.0]]), 1)

  def test_nan_seeds_are_left_out_and_ties_go_first(self):
    self.assertEqual(rule_tuning.choose([[1.0, 1.0], [np.nan, 1.5]]), 1)
    self.assertEqual(rule_tuning.choose([[2.0, 2.0], [2.0, 2.0]]), 0)
    self.assertEqual(rule_tuning.choose([[np.nan, np.nan], [-5.0, -5.0]]), 1)
    self.assertEqual(rule_tuning.choose(np.full((3, 2), np.nan)), 0)


class FakeEvaluator:
  """Final return = -(log10(alpha_lr) + 3)^2 - (alpha_y - 0.5)^2 + 0.01 seed
  index: best at alpha_lr 1e-3, alpha_y 0.5. Records its runs."""

  def __init__(self, num_lifetimes, num_seeds):
    self.num_lifetimes, self.num_seeds = num_lifetimes, num_seeds
    self.runs = []

  def run(self, learning_rate, kl_cost, gamma, seed):
    self.runs.append((np.asarray(learning_rate), np.asarray(kl_cost), gamma,
                      seed))
    seed_index = np.arange(self.num_lifetimes) % self.num_seeds
    finals = (-(np.log10(learning_rate) + 3) ** 2 - (kl_cost - 0.5) ** 2
              + 0.01 * seed_index)
    return evaluation.Evaluation(finals, finals[None], 1, np.array([1]))


class TuneTest(absltest.TestCase):

  def test_one_batched_run_on_the_tuning_key_picks_the_argmax(self):
    grid = rule_tuning.settings_grid("random/small", "some/rule")
    fake = FakeEvaluator(len(grid) * 3, 3)
    tuning = rule_tuning.tune(fake, grid, 0.99, seed=4)
    self.assertLen(fake.runs, 1)
    learning_rate, kl_cost, gamma, key = fake.runs[0]
    self.assertEqual(key, rule_tuning.tuning_key(4))
    self.assertEqual(gamma, 0.99)
    # Lifetime g * S + j is setting g.
    np.testing.assert_allclose(learning_rate[3:6], grid[1].learning_rate)
    np.testing.assert_allclose(kl_cost[3:6], grid[1].kl_cost)
    self.assertEqual(tuning.returns.shape, (len(grid), 3))
    self.assertEqual(tuning.chosen, (0.001, 0.5))

  def test_the_chosen_setting_runs_on_the_test_key(self):
    fake = FakeEvaluator(2, 2)
    rule_tuning.evaluate_chosen(fake, rule_tuning.Setting(40.0, 0.5), 0.99, 7)
    learning_rate, kl_cost, _, key = fake.runs[0]
    self.assertEqual((float(learning_rate), float(kl_cost)), (40.0, 0.5))
    self.assertEqual(key, rule_tuning.test_key(7))

  def test_refuses_an_evaluator_of_another_size(self):
    with self.assertRaisesRegex(ValueError, "settings"):
      rule_tuning.tune(FakeEvaluator(5, 2), rule_tuning.settings_grid(
          "chain/short", "a2c"), 0.99, 0)


if __name__ == "__main__":
  absltest.main()
