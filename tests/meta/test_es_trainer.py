"""ESTrainer through meta_train: exact resume, refused settings, the bandit."""

import os
import tempfile

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow as tf

from lpg_tf import errors
from lpg_tf.experiments import meta_train
from lpg_tf.meta import es_trainer
from tests.meta import test_trainer

# A grid with a reward every few steps, so that members' fitness differs within
# a short window (a short chain's +-1 at the end of an episode mostly ties).
ES = {"meta.optimiser": "es", "meta.es.population_size": 2,
      "meta.es.window": 2, "population.envs": ("tabular/dense",)}


def es_config(**overrides):
  return test_trainer.tiny_config(**{**ES, **overrides})


def checkpoint_tensors(workdir, step):
  """Every tensor of checkpoint ckpt-`step`: eta, Adam, lifetimes, bandit."""
  reader = tf.train.load_checkpoint(
      os.path.join(workdir, meta_train.CHECKPOINT_DIR, f"ckpt-{step}"))
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def trainer_state(trainer):
  """Every tensor a checkpoint of `trainer` holds, by checkpoint key."""
  checkpoint = tf.train.Checkpoint(**trainer.checkpoint_items())
  path = checkpoint.write(os.path.join(tempfile.mkdtemp(), "state"))
  reader = tf.train.load_checkpoint(path)
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


def assert_same_state(test, a, b):
  test.assertEqual(sorted(a), sorted(b))
  for name in a:
    if isinstance(a[name], bytes):
      test.assertEqual(a[name], b[name], name)
    else:
      np.testing.assert_array_equal(a[name], b[name], err_msg=name)


class ResumeTest(absltest.TestCase):

  def test_restoring_step_two_and_stepping_twice_gives_step_four(self):
    # In one process (one trace): the checkpoint holds everything later ES
    # steps read. Restoring ckpt-2 over the state of step 4 and stepping
    # twice must give step 4's state again.
    config = es_config()
    tf.random.set_seed(0)
    trainer = meta_train.build_trainer(config, meta_train.build_rule(config))
    checkpoint = tf.train.Checkpoint(**trainer.checkpoint_items())
    trainer.step()
    trainer.step()
    at_two = checkpoint.save(os.path.join(self.create_tempdir().full_path,
                                           "ckpt-2"))
    eta_two = [v.numpy() for v in trainer.rule.trainable_variables]
    trainer.step()
    trainer.step()
    straight = trainer_state(trainer)
    checkpoint.restore(at_two).assert_existing_objects_matched()
    trainer.step()
    trainer.step()
    assert_same_state(self, straight, trainer_state(trainer))
    self.assertFalse(all(np.array_equal(a, v.numpy()) for a, v in zip(
        eta_two, trainer.rule.trainable_variables)))

  @pytest.mark.slow
  def test_two_plus_two_steps_equal_four(self):
    root = self.create_tempdir().full_path
    straight = os.path.join(root, "straight")
    snapshot = os.path.join(root, "at_ckpt_2")
    test_trainer.meta_train_with_snapshot(es_config(), straight, snapshot, 2)
    meta_train.meta_train(es_config(), snapshot, resume=True)
    # A restarted process: every checkpointed tensor (eta, Adam, lifetimes,
    # bandit) as the straight run's.
    assert_same_state(self, checkpoint_tensors(straight, 4),
                      checkpoint_tensors(snapshot, 4))
    # ES moved eta.
    self.assertNotEqual(test_trainer.checkpoint_eta(straight, 2),
                        test_trainer.checkpoint_eta(straight, 4))


class TrainerTest(absltest.TestCase):

  def test_lifetimes_end_and_the_bandit_hears_of_them(self):
    config = es_config(**{"population.lifetime_scale": 0.0001,  # 100 steps
                          **test_trainer.ONE_GROUP})
    tf.random.set_seed(0)
    trainer = meta_train.build_trainer(config, meta_train.build_rule(config))
    self.assertIsInstance(trainer, es_trainer.ESTrainer)
    bandit = trainer.population.bandits.bandits["chain/short"]
    before = int(np.sum(bandit.counts))
    ended = sum(trainer.step()["ended_lifetimes"] for _ in range(3))
    # A window lives 2 x T=5 x B=4 = 40 steps: both lifetimes end within 3.
    self.assertGreaterEqual(ended, 2)
    self.assertEqual(int(np.sum(bandit.counts)) - before, ended)
    # Agent environment steps: (P + 1) members x 2 lifetimes x 40.
    self.assertEqual(trainer.inner_env_steps_per_step, 3 * 2 * 40)

  def test_noise_differs_between_steps_and_pairs_mirror(self):
    config = es_config()
    trainer = meta_train.build_trainer(config, meta_train.build_rule(config))
    first, second = trainer.noise(0), trainer.noise(1)
    for a, b in zip(first, second):
      np.testing.assert_array_equal(a[0].numpy(), -a[1].numpy())
      self.assertFalse(np.any(a.numpy() == b.numpy()))


  def test_an_estimate_changes_nothing(self):
    """estimate() twice gives one estimate and leaves the state as it was,
    so a step afterwards is the step a fresh trainer takes."""
    config = es_config()
    tf.random.set_seed(0)  # eta_0: the same for both trainers.
    trainer = meta_train.build_trainer(config, meta_train.build_rule(config))
    before = trainer_state(trainer)
    first, second = trainer.estimate(0), trainer.estimate(0)
    for a, b in zip(first.grads, second.grads):
      np.testing.assert_array_equal(a.numpy(), b.numpy())
    self.assertEqual(first.fitness.shape[0], 2)  # [P, groups]
    assert_same_state(self, before, trainer_state(trainer))
    trainer.step()
    tf.random.set_seed(0)
    fresh = meta_train.build_trainer(config, meta_train.build_rule(config))
    fresh.step()
    assert_same_state(self, trainer_state(fresh), trainer_state(trainer))


class InputErrorsTest(absltest.TestCase):

  def test_bad_values_are_refused_before_any_work(self):
    for overrides, message in (
        ({"meta.optimiser": "sgd"}, "config.meta.optimiser"),
        ({"meta.es.population_size": 3}, "even number"),
        ({"meta.es.population_size": 0}, "config.meta.es.population_size"),
        ({"meta.es.sigma": 0.0}, "config.meta.es.sigma"),
        ({"meta.es.sigma": float("nan")}, "config.meta.es.sigma"),
        ({"meta.es.window": 1}, "window must be an integer >= 2"),
        ({"meta.es.window": 30, **test_trainer.ONE_GROUP},
         "longer than a chain/short lifetime"),
        ({"num_meta_steps": None, "total_env_steps": 1e6},
         "total_env_steps.*num_meta_steps"),
        ({"cpu_devices": 2}, "shards cannot be split evenly")):
      with self.subTest(overrides=overrides), \
          self.assertRaisesRegex(errors.ConfigError, message):
        meta_train.validate(es_config(**overrides))
    # Shards over replicas: tests/meta/test_sharding.py.
    meta_train.validate(es_config(**{"cpu_devices": 2, "population.shards": 2}))

  def test_the_default_is_the_meta_gradient(self):
    config = test_trainer.tiny_config()
    self.assertEqual(config.meta.optimiser, "gradient")
    meta_train.validate(config)
    # ES settings are not checked when ES does not run.
    meta_train.validate(test_trainer.tiny_config(**{"meta.es.window": 1}))


if __name__ == "__main__":
  absltest.main()
