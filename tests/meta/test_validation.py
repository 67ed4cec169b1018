"""lpg_tf/meta/validation.py: the score, the best eta, held-out keys, alpha."""

from unittest import mock

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow as tf

from lpg_tf import errors
from lpg_tf.experiments import meta_train
from lpg_tf.meta import population as population_lib
from lpg_tf.meta import validation
from tests.meta.test_trainer import tiny_config

CHAIN = "chain/short"


def make_validator(envs=(CHAIN,), every=1, **overrides):
  config = tiny_config(**{"population.envs": envs, "validation.every": every,
                          **overrides})
  rule = meta_train.build_rule(config)
  population = population_lib.Population(meta_train.population_spec(config),
                                         seed=0)
  return validation.Validator(rule, meta_train.build_rule(config), population,
                              meta_train.validation_spec(config), seed=0)


def set_eta(validator, value):
  for variable in validator._rule.variables:  # pylint: disable=protected-access
    variable.assign(tf.fill(variable.shape, value))


def scripted(returns_by_eta):
  """Replaces Validator._evaluate: R_E is looked up by eta's (constant) value;
  the references make the normalised return equal R_E."""

  def evaluate(self):
    self.record.references = {CHAIN: {"random": 0.0, "a2c": 1.0}}
    eta = float(self._rule.variables[0].numpy().flat[0])  # pylint: disable=protected-access
    return {CHAIN: returns_by_eta[eta]}

  return mock.patch.object(validation.Validator, "_evaluate", evaluate)


class BestEtaTest(absltest.TestCase):

  def test_the_best_score_keeps_its_eta_and_step(self):
    validator = make_validator()
    with scripted({1.0: 0.5, 2.0: 0.9, 3.0: 0.1, 4.0: 0.9}):
      improved = []
      for step in (1, 2, 3, 4):
        set_eta(validator, float(step))
        result = validator.validate(step)
        improved.append(result.improved)
    self.assertEqual(improved, [True, True, False, False])  # a tie is no better
    self.assertEqual((result.best_step, result.best_score), (2, 0.9))
    self.assertEqual(result.score, 0.9)
    for variable in validator.best_rule.variables:
      np.testing.assert_array_equal(variable.numpy(), 2.0)
    self.assertEqual(result.scalars()["validation/chain/short/return"], 0.9)

  def test_a_non_finite_eta_is_never_validated_nor_best(self):
    validator = make_validator()
    set_eta(validator, np.nan)
    with mock.patch.object(validation.Validator, "_evaluate") as evaluate:
      result = validator.validate(1)
    evaluate.assert_not_called()
    self.assertTrue(np.isnan(result.score))
    self.assertFalse(result.improved)
    self.assertIsNone(validator.best_step)

  def test_the_record_round_trips_through_a_checkpoint(self):
    validator = make_validator()
    with scripted({3.0: 0.25}):
      set_eta(validator, 3.0)
      validator.validate(7)
    path = tf.train.Checkpoint(**validator.checkpoint_items()).save(
        self.create_tempdir().full_path + "/ckpt")
    restored = make_validator()
    tf.train.Checkpoint(**restored.checkpoint_items()).restore(
        path).assert_existing_objects_matched()
    self.assertEqual((restored.best_step, restored.record.best_score), (7, 0.25))
    self.assertEqual(restored.record.references, validator.record.references)
    for variable in restored.best_rule.variables:
      np.testing.assert_array_equal(variable.numpy(), 3.0)


class ScoreTest(absltest.TestCase):

  def test_normalised_by_the_random_policy_and_a2c(self):
    validator = make_validator(envs=(CHAIN, "chain/long"))
    validator.record.references = {
        CHAIN: {"random": -1.0, "a2c": 3.0},
        "chain/long": {"random": 0.0, "a2c": -0.5}}  # A2C no better: MIN_SCALE
    normalised = validator.normalise({CHAIN: 1.0, "chain/long": 0.05})
    self.assertAlmostEqual(normalised[CHAIN], 0.5)
    self.assertAlmostEqual(normalised["chain/long"], 0.05 / validation.MIN_SCALE)

  def check_real_validations(self, envs, num_groups):
    validator = make_validator(envs=envs)
    first = validator.validate(1)
    self.assertEqual(sorted(first.returns), sorted(envs))
    self.assertTrue(np.isfinite(first.score))
    references = dict(validator.record.references)
    for variable in validator._rule.trainable_variables:  # pylint: disable=protected-access
      variable.assign(variable * 2.0 + 0.5)
    second = validator.validate(2)
    self.assertTrue(np.isfinite(second.score))
    self.assertEqual(validator.record.references, references)  # measured once
    self.assertEqual(validator.traces, num_groups)  # built once, never retraced

  def test_a_real_validation_is_traced_once(self):
    self.check_real_validations((CHAIN,), 1)

  @pytest.mark.slow
  def test_a_real_validation_is_traced_once_per_group(self):
    self.check_real_validations((CHAIN, "tabular/sparse"), 3)  # grid: 2 spaces


class SettingsTest(absltest.TestCase):

  def test_keys_are_held_out(self):
    validator = make_validator(envs=(CHAIN, "tabular/sparse"))
    keys = [tuple(g.key) for g in validator._groups]  # pylint: disable=protected-access
    self.assertLen(set(keys), 3)
    for seed, word in keys:
      self.assertEqual(seed, 0)
      # Training keys use words 1-3 (and reset counts under another first
      # word); agent training and meta-testing use [s, 0].
      self.assertGreaterEqual(word, validation.VALIDATION_KEY_WORD)

  def test_alpha_is_the_middle_until_the_bandit_has_results(self):
    validator = make_validator()
    self.assertEqual(validator._alpha(CHAIN), (40.0, 0.5))  # pylint: disable=protected-access
    bandits = validator._population.bandits  # pylint: disable=protected-access
    bandit = bandits.bandits[CHAIN]
    for arm in range(bandit.num_arms):
      bandits.update(CHAIN, arm, 1.0 if arm == 7 else 0.0)
    self.assertEqual(validator._alpha(CHAIN), bandit.arm_values(7))  # pylint: disable=protected-access
    self.assertEqual(bandit.arm_values(7), (80.0, 0.5))

  def test_a_budget_without_whole_episodes_is_refused(self):
    spec = meta_train.population_spec(tiny_config())  # 4 envs, sparse: 50 steps
    validation.check_spec(validation.ValidationSpec(0, 1, 1), spec)  # off
    validation.check_spec(validation.ValidationSpec(5, 200, 1), spec)
    with self.assertRaisesRegex(errors.ConfigError,
                                "tabular/sparse.*at least 200 steps"):
      validation.check_spec(validation.ValidationSpec(5, 199, 1), spec)


if __name__ == "__main__":
  absltest.main()
