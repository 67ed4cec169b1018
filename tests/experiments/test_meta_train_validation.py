"""meta_train with validation: the period, best_rule/, the checkpointed best,
resume, restarts, and a run without validation. The meta-step is replaced by
one that sets every weight of eta to the step number, and a validation's
returns are looked up by eta, so each test chooses which step scores best."""

import contextlib
import os
from unittest import mock

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf import export
from lpg_tf import errors
from lpg_tf.experiments import meta_train
from lpg_tf.meta import trainer as trainer_lib
from lpg_tf.meta import validation
from lpg_tf.rules import lpg
from tests.experiments.test_meta_train_faults import logged
from tests.meta.test_trainer import meta_train_with_snapshot
from tests.meta.test_trainer import tiny_config

ENVS = ("chain/short",)  # One group: the runs build faster.


def config(**overrides):
  return tiny_config(**{"population.envs": ENVS, "validation.every": 1,
                        **overrides})


@contextlib.contextmanager
def scripted_run(returns_by_step, before_step=None):
  """Meta-steps set eta to the step number; validation returns are scripted.

  Args:
    returns_by_step: meta-step -> the return (= normalised return = score) of
      every environment when eta is that step's.
    before_step: called with (trainer, step about to be taken).
  Yields:
    The list of meta-steps validated.
  """
  validated = []

  def step(trainer):
    number = int(trainer.step_counter.numpy()) + 1
    if before_step is not None:
      before_step(trainer, number)
    for variable in trainer.rule.variables:
      variable.assign(tf.fill(variable.shape, float(number)))
    trainer.step_counter.assign_add(1)
    return {"meta_loss": 0.0, "meta_gradient_finite": 1.0}

  def evaluate(validator):
    validator.record.references = {
        name: {"random": 0.0, "a2c": 1.0} for name in ENVS}
    number = int(validator._rule.variables[0].numpy().flat[0])  # pylint: disable=protected-access
    validated.append(number)
    return {name: returns_by_step[number] for name in ENVS}

  with mock.patch.object(trainer_lib.MetaTrainer, "step", step), \
      mock.patch.object(validation.Validator, "_evaluate", evaluate):
    yield validated


def best_rule_value(workdir):
  """The one value every weight of the exported best rule has."""
  rule = lpg.LPG(hidden_size=8, prediction_size=6)
  export.load_rule_into(rule, os.path.join(workdir, "best_rule"))
  values = {float(x) for v in rule.variables for x in v.numpy().flat}
  assert len(values) == 1, values
  return values.pop()


def checkpoint_record(workdir):
  """The best score and step in the run's latest checkpoint."""
  reader = tf.train.load_checkpoint(
      tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))
  names = [n for n in reader.get_variable_to_shape_map()
           if n.startswith("validation/")]
  assert len(names) == 1, names
  record = validation.ValidationRecord()
  record.deserialize(reader.get_tensor(names[0]))
  return record.best_score, record.best_step


class ValidationRunTest(absltest.TestCase):

  def test_validates_at_the_period_and_exports_the_best(self):
    workdir = self.create_tempdir().full_path
    scores = {2: 0.5, 4: 0.9, 6: 0.2}
    with scripted_run(scores) as validated:
      # One checkpoint, at the end (each also exports the rule): the best is
      # exported when it is found, not when a checkpoint is saved.
      numbers = meta_train.meta_train(
          config(num_meta_steps=6, checkpoint_every=6, **{"validation.every": 2}),
          workdir)
    self.assertEqual(validated, [2, 4, 6])
    self.assertEqual(best_rule_value(workdir), 4.0)
    self.assertEqual(checkpoint_record(workdir), (0.9, 4))
    self.assertEqual(numbers["validation/score"], 0.2)  # logged at step 6
    self.assertEqual(numbers["validation/best_score"], 0.9)
    self.assertEqual(numbers["validation/chain/short/return"], 0.2)

  def test_resume_keeps_the_best_so_far(self):
    scores = {1: 0.5, 2: 0.9, 3: 0.1, 4: 0.2}
    straight = self.create_tempdir().full_path
    resumed = os.path.join(self.create_tempdir().full_path, "run")
    with scripted_run(scores):  # resumed/: the run as if stopped after ckpt-2.
      meta_train_with_snapshot(config(num_meta_steps=4), straight, resumed, 2)
    with scripted_run(scores) as validated:
      meta_train.meta_train(config(num_meta_steps=4), resumed, resume=True)
    self.assertEqual(validated, [3, 4])
    for workdir in (straight, resumed):
      self.assertEqual(best_rule_value(workdir), 2.0)
      self.assertEqual(checkpoint_record(workdir), (0.9, 2))

  def test_a_restart_brings_best_rule_back_to_the_checkpoint(self):
    workdir = self.create_tempdir().full_path

    def killed_at(kill_step):
      def before_step(trainer, step):
        del trainer
        if step == kill_step:
          raise KeyboardInterrupt  # As a kill would.
      return before_step

    # Killed before the first checkpoint, after best_rule/ was exported: the
    # restart starts from step 0 and removes it.
    with scripted_run({1: 0.5}, killed_at(2)), \
        self.assertRaises(KeyboardInterrupt):
      meta_train.meta_train(config(num_meta_steps=4), workdir)
    self.assertEqual(best_rule_value(workdir), 1.0)
    # Then killed after a step better than the checkpointed best (step 2)
    # was exported.
    with scripted_run({1: 0.1, 2: 0.2, 3: 0.9}, killed_at(4)), \
        self.assertRaises(KeyboardInterrupt), \
        mock.patch.object(meta_train.logging, "info") as info:
      meta_train.meta_train(config(num_meta_steps=4), workdir)
    self.assertIn(f"Removing {workdir}/best_rule, ahead of the run's state",
                  logged(info))
    self.assertEqual(best_rule_value(workdir), 3.0)
    with scripted_run({}):  # Complete at the checkpoint's step: only re-exports.
      meta_train.meta_train(config(num_meta_steps=2), workdir)
    self.assertEqual(best_rule_value(workdir), 2.0)
    self.assertEqual(checkpoint_record(workdir), (0.2, 2))

  def test_without_validation_there_is_no_best_rule(self):
    workdir = self.create_tempdir().full_path
    with scripted_run({}) as validated:
      meta_train.meta_train(config(num_meta_steps=2, **{"validation.every": 0}),
                            workdir)
    self.assertEqual(validated, [])
    self.assertFalse(os.path.exists(os.path.join(workdir, "best_rule")))
    reader = tf.train.load_checkpoint(
        tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))
    self.assertFalse([n for n in reader.get_variable_to_shape_map()
                      if n.startswith(("validation/", "best_rule/"))])


class ValidationConfigTest(absltest.TestCase):

  def test_bad_values_are_refused(self):
    for key, value in (("validation.every", -1), ("validation.env_steps", 0),
                       ("validation.env_steps", -5), ("validation.lifetimes", 0)):
      with self.subTest(key=key, value=value), \
          self.assertRaisesRegex(errors.ConfigError, f"config.{key}"):
        meta_train.validate(config(**{key: value}))
    with self.assertRaisesRegex(errors.ConfigError, "env_steps.*too short"):
      meta_train.validate(config(**{"validation.env_steps": 100}))
    meta_train.validate(config(**{"validation.every": 0,
                                  "validation.env_steps": 100}))


if __name__ == "__main__":
  absltest.main()
