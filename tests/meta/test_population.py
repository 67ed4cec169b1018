"""Population: what ended lifetimes report to the bandit (Eq. 6), staggered starts."""

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf.meta import population as population_lib


def small_population(lifetimes=4, seed=0, scale=0.01):
  spec = population_lib.PopulationSpec(
      env_names=("chain/short",), lifetimes_per_env=lifetimes, num_envs=2,
      unroll_length=5, num_inner_updates=1, prediction_size=4,
      lifetime_scale=scale)
  return population_lib.Population(spec, seed=seed)


def end_all(population, diverged=False):
  """Ends every lifetime through `finish`, as the trainer does."""
  states = population.read()
  ends = [population_lib.LifetimeEnd(
      tf.ones([g.num_lifetimes], tf.bool),
      tf.fill([g.num_lifetimes], diverged)) for g in population.groups]
  return population.finish(states, ends)


class BanditReturnsTest(absltest.TestCase):

  def test_each_case(self):
    got = population_lib.bandit_returns(
        final_return=np.array([5.0, 5.0, 0.0, 0.0, 5.0]),
        has_return=np.array([True, True, False, False, True]),
        running_return=np.array([0.0, 0.0, 2.0, 9.0, 0.0]),
        diverged=np.array([False, True, False, True, True]),
        lowest_return=3.0)
    # normal end; diverged: min(own, lowest); no episode: min(running, lowest).
    np.testing.assert_array_equal(got, [5.0, 3.0, 2.0, 3.0, 3.0])

  def test_finite_without_any_bandit_result(self):
    got = population_lib.bandit_returns(
        np.array([0.0, 4.0]), np.array([False, True]), np.array([np.nan, 0.0]),
        np.array([True, True]), np.nan)
    np.testing.assert_array_equal(got, [0.0, 4.0])


class BanditExchangeTest(absltest.TestCase):

  def test_lifetimes_without_episodes_count_and_do_not_lock_the_bandit(self):
    population = small_population()
    bandit = population.bandits.bandits["chain/short"]
    for round_ in range(1, 5):
      for group in population.groups:  # no completed episode, ever.
        group.write(group.read()._replace(
            has_return=tf.zeros([group.num_lifetimes])))
      end_all(population)
      self.assertEqual(bandit.counts.sum(), 4 * round_)
    self.assertLess(bandit.probabilities().max(), 1.0)

  def test_a_diverged_lifetime_lowers_its_arms_return(self):
    population = small_population(lifetimes=1)
    bandit = population.bandits.bandits["chain/short"]
    group = population.groups[0]
    arm = int(group.read().arm[0])
    for value in (1.0, 2.0, 3.0):
      bandit.update(arm, value)
    before = bandit.mean_returns[arm]
    group.write(group.read()._replace(recent_return=tf.constant([100.0]),
                                      has_return=tf.constant([1.0])))
    end_all(population, diverged=True)
    self.assertLess(bandit.mean_returns[arm], before)


class StaggerTest(absltest.TestCase):

  def test_initial_steps_spread_over_a_lifetime_and_ends_over_meta_steps(self):
    population = small_population(lifetimes=16)
    group = population.groups[0]
    steps = group.read().steps.numpy()
    self.assertTrue(np.all((steps >= 0) & (steps < group.lifetime_steps)))
    self.assertGreater(steps.std(), 0.2 * group.lifetime_steps)
    window = population.spec.env_steps_per_window
    end_step = np.ceil((group.lifetime_steps - steps) / window)
    self.assertGreater(len(np.unique(end_step)), 4)

  def test_same_seed_same_stagger(self):
    a = small_population(seed=3).groups[0].read().steps.numpy()
    b = small_population(seed=3).groups[0].read().steps.numpy()
    np.testing.assert_array_equal(a, b)


if __name__ == "__main__":
  absltest.main()
