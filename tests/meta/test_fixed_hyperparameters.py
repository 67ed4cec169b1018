"""Figure 7's "LPG fixed hyper": a population without the bandit of Section 3.4
gives every lifetime its environment's fixed alpha, keeps it through resets
and resumes, and is validated with it."""

import os

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow as tf

from lpg_tf.experiments import meta_train
from lpg_tf.meta import lifetime_settings
from lpg_tf.meta import population as population_lib
from tests.meta import test_population
from tests.meta import test_trainer
from tests.meta import test_validation


def fixed_population(seed=0):
  spec = population_lib.PopulationSpec(
      env_names=("chain/short",), lifetimes_per_env=3, num_envs=2,
      unroll_length=5,
      num_inner_updates=1, prediction_size=4, lifetime_scale=0.01,
      bandit=False)
  return population_lib.Population(spec, seed=seed)


class FixedHyperparametersTest(absltest.TestCase):

  def assert_fixed_alpha(self, population):
    for group in population.groups:
      settings = lifetime_settings.for_env(group.env_name)
      state = group.read()
      np.testing.assert_array_equal(state.learning_rate,
                                    settings.default_learning_rate)
      np.testing.assert_array_equal(state.kl_cost, settings.default_kl_cost)
      np.testing.assert_array_equal(state.arm, population_lib.FIXED_ARM)

  def test_every_lifetime_keeps_its_fixed_alpha_also_after_a_restore(self):
    straight = fixed_population()
    self.assertIsNone(straight.bandits)
    self.assertNotIn("bandits", straight.checkpoint_items())
    self.assert_fixed_alpha(straight)
    self.assertEqual(test_population.end_all(straight)["ended_lifetimes"], 3.0)
    self.assert_fixed_alpha(straight)  # the new lifetimes' alpha
    path = tf.train.Checkpoint(**straight.checkpoint_items()).write(
        os.path.join(self.create_tempdir().full_path, "ckpt"))
    resumed = fixed_population()
    tf.train.Checkpoint(**resumed.checkpoint_items()).read(
        path).assert_existing_objects_matched()
    for population in (straight, resumed):
      test_population.end_all(population)
    self.assert_fixed_alpha(resumed)
    self.assertEqual(int(straight.reset_counter), int(resumed.reset_counter))
    for a, b in zip(straight.groups, resumed.groups):
      for x, y in zip(tf.nest.flatten(a.read()), tf.nest.flatten(b.read())):
        np.testing.assert_array_equal(x, y)

  def test_validation_uses_the_fixed_alpha(self):
    validator = test_validation.make_validator(**{"meta.bandit": False})
    settings = lifetime_settings.for_env(test_validation.CHAIN)
    self.assertEqual(
        validator._alpha(test_validation.CHAIN),  # pylint: disable=protected-access
        (settings.default_learning_rate, settings.default_kl_cost))


@pytest.mark.slow
class FixedHyperparametersResumeTest(absltest.TestCase):

  def test_resume_gives_the_same_eta_as_a_straight_run(self):
    fixed = {"meta.bandit": False, "population.lifetime_scale": 1e-5}
    straight = self.create_tempdir().full_path
    meta_train.meta_train(test_trainer.tiny_config(**fixed), straight)
    resumed = self.create_tempdir().full_path
    meta_train.meta_train(
        test_trainer.tiny_config(num_meta_steps=2, **fixed), resumed)
    meta_train.meta_train(
        test_trainer.tiny_config(num_meta_steps=4, **fixed), resumed,
        resume=True)
    a = test_trainer.rule_weights(straight)
    b = test_trainer.rule_weights(resumed)
    self.assertEqual([n for n, _ in a], [n for n, _ in b])
    for (_, x), (_, y) in zip(a, b):
      np.testing.assert_array_equal(x, y)


if __name__ == "__main__":
  absltest.main()
