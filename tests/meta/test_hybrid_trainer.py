"""HybridTrainer: its steps are the two trainers' steps, exact resume, the
bandit, refused settings."""

import os

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow as tf

from lpg_tf import errors
from lpg_tf.experiments import meta_train
from lpg_tf.meta import es_trainer
from lpg_tf.meta import hybrid_trainer
from lpg_tf.meta import trainer as trainer_lib
from tests.meta import test_es_trainer
from tests.meta import test_trainer

# ES's test settings (one grid, P = 2, a window of 2); a meta-gradient step
# then an ES step.
HYBRID = {**test_es_trainer.ES, "meta.optimiser": "hybrid",
          "meta.hybrid.es_every": 2}


def hybrid_config(**overrides):
  return test_trainer.tiny_config(**{**HYBRID, **overrides})


def without_adam(trainer):
  """A trainer's checkpoint items less its Adam(s): eta and the lifetimes."""
  return {k: v for k, v in trainer.checkpoint_items().items()
          if "meta_optimiser" not in k}


def build(config):
  tf.random.set_seed(0)
  return meta_train.build_trainer(config, meta_train.build_rule(config))


class AlternationTest(absltest.TestCase):

  @pytest.mark.slow  # three trainers to trace: about a minute on 2 cores.
  def test_steps_are_the_meta_gradient_trainers_then_the_es_trainers(self):
    hybrid = build(hybrid_config())
    self.assertIsInstance(hybrid, hybrid_trainer.HybridTrainer)
    gradient = build(hybrid_config(**{"meta.optimiser": "gradient"}))
    self.assertIsInstance(gradient, trainer_lib.MetaTrainer)
    self.assertEqual(hybrid.step()["hybrid/es_step"], 0.0)
    gradient.step()
    test_es_trainer.assert_same_state(
        self, test_es_trainer.trainer_state(gradient),
        test_es_trainer.trainer_state(hybrid._gradient))
    # The ES trainer, given the lifetimes and eta after that step (its Adam
    # fresh, as the hybrid's ES Adam is), steps as the hybrid.
    es = build(hybrid_config(**{"meta.optimiser": "es"}))
    self.assertIsInstance(es, es_trainer.ESTrainer)
    path = tf.train.Checkpoint(**without_adam(hybrid)).write(
        os.path.join(self.create_tempdir().full_path, "after_one"))
    tf.train.Checkpoint(**without_adam(es)).read(
        path).assert_existing_objects_matched()
    before = test_es_trainer.trainer_state(hybrid._gradient)
    numbers = hybrid.step()
    es.step()
    self.assertEqual(numbers["hybrid/es_step"], 1.0)
    self.assertIn("es/meta_loss", numbers)
    test_es_trainer.assert_same_state(
        self, test_es_trainer.trainer_state(es),
        test_es_trainer.trainer_state(hybrid._es))
    # The meta-gradient's Adam did not move; eta did.
    after = test_es_trainer.trainer_state(hybrid._gradient)
    for name, value in before.items():
      if "meta_optimiser" in name:
        np.testing.assert_array_equal(value, after[name], err_msg=name)
    self.assertFalse(all(np.array_equal(before[n], after[n]) for n in before
                         if n.startswith("rule/")))

  @pytest.mark.slow
  def test_es_every_one_is_es_alone(self):
    hybrid = build(hybrid_config(**{"meta.hybrid.es_every": 1}))
    es = build(hybrid_config(**{"meta.optimiser": "es"}))
    for _ in range(2):
      self.assertEqual(hybrid.step()["hybrid/es_step"], 1.0)
      es.step()
    test_es_trainer.assert_same_state(
        self, test_es_trainer.trainer_state(es),
        test_es_trainer.trainer_state(hybrid._es))


class ResumeTest(absltest.TestCase):

  def test_lifetimes_end_to_the_bandit_and_restoring_step_two_gives_step_four(
      self):
    # One trace of each step kind serves both checks. Lifetimes of 100 steps;
    # a meta-gradient step lives (K + 1) x T x B = 3 x 5 x 4 = 60 of them, an
    # ES step 2 x 5 x 4 = 40, so lifetimes end and feed the bandit within
    # the steps that the restored run repeats.
    trainer = build(hybrid_config(**{"population.lifetime_scale": 0.0001,
                                     **test_trainer.ONE_GROUP}))
    bandit = trainer.population.bandits.bandits["chain/short"]
    before = int(np.sum(bandit.counts))
    checkpoint = tf.train.Checkpoint(**trainer.checkpoint_items())
    steps = [trainer.step(), trainer.step()]
    at_two = checkpoint.save(os.path.join(self.create_tempdir().full_path,
                                           "ckpt-2"))
    steps += [trainer.step(), trainer.step()]
    self.assertEqual([n["hybrid/es_step"] for n in steps], [0, 1, 0, 1])
    ended = sum(n["ended_lifetimes"] for n in steps)
    self.assertGreaterEqual(ended, 2)
    self.assertGreater(sum(n["ended_lifetimes"] for n in steps[2:]), 0)
    self.assertEqual(int(np.sum(bandit.counts)) - before, ended)
    straight = test_es_trainer.trainer_state(trainer)
    checkpoint.restore(at_two).assert_existing_objects_matched()
    trainer.step()
    trainer.step()
    test_es_trainer.assert_same_state(
        self, straight, test_es_trainer.trainer_state(trainer))
    # Inner steps of 2 lifetimes, averaged over a cycle: a meta-gradient
    # step's K x T x B x 2 = 80, an ES step's (P + 1) x 2 x 40 = 240.
    self.assertEqual(trainer.inner_env_steps_per_step, (80 + 240) / 2)

  @pytest.mark.slow
  def test_two_plus_two_steps_equal_four(self):
    root = self.create_tempdir().full_path
    straight = os.path.join(root, "straight")
    snapshot = os.path.join(root, "at_ckpt_2")
    test_trainer.meta_train_with_snapshot(hybrid_config(), straight, snapshot,
                                          2)
    meta_train.meta_train(hybrid_config(), snapshot, resume=True)
    test_es_trainer.assert_same_state(
        self, test_es_trainer.checkpoint_tensors(straight, 4),
        test_es_trainer.checkpoint_tensors(snapshot, 4))
    self.assertNotEqual(test_trainer.checkpoint_eta(straight, 2),
                        test_trainer.checkpoint_eta(straight, 4))


class InputErrorsTest(absltest.TestCase):

  def test_bad_values_are_refused_before_any_work(self):
    for overrides, message in (
        ({"meta.hybrid.es_every": 0}, "config.meta.hybrid.es_every"),
        ({"meta.hybrid.es_every": True}, "config.meta.hybrid.es_every"),
        ({"meta.es.population_size": 3}, "even number"),
        ({"meta.es.window": 1}, "window must be an integer >= 2"),
        ({"num_meta_steps": None, "total_env_steps": 1e6},
         "total_env_steps.*num_meta_steps"),
        ({"cpu_devices": 2}, "shards cannot be split evenly")):
      with self.subTest(overrides=overrides), \
          self.assertRaisesRegex(errors.ConfigError, message):
        meta_train.validate(hybrid_config(**overrides))
    meta_train.validate(hybrid_config(**{"cpu_devices": 2,
                                         "population.shards": 2}))

  def test_the_trainer_refuses_bad_settings_too(self):
    config = hybrid_config()
    with self.assertRaisesRegex(errors.ConfigError, "es_every"):
      hybrid_trainer.HybridTrainer(
          meta_train.build_rule(config), meta_train.population_spec(config),
          meta_train.meta_spec(config), meta_train.es_spec(config),
          es_every=0, seed=0, jit_compile=False)


if __name__ == "__main__":
  absltest.main()
