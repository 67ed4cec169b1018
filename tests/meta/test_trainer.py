"""MetaTrainer and meta_train: resume equality, resets, bandit, bad input, exports."""

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from unittest import mock

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow as tf

from configs import cpu
from lpg_tf import errors
from lpg_tf import export
from lpg_tf.experiments import meta_train
from lpg_tf.meta import validation
from lpg_tf.rules import saved_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def tiny_config(**overrides):
  """A fast config: one chain and one tabular grid, small everything, no XLA."""
  config = cpu.get_config()
  config.population.envs = ("chain/short", "tabular/sparse")
  config.population.lifetimes_per_env = 2
  config.population.num_envs = 4
  config.population.unroll_length = 5
  config.population.num_inner_updates = 2
  config.population.prediction_size = 6
  config.population.lifetime_scale = 0.0005  # chain lifetimes of 500 steps
  config.rule.hidden_size = 8
  config.jit_compile = False
  config.num_meta_steps = 4
  config.checkpoint_every = 2
  config.log_every = 1
  config.validation.every = 0
  config.validation.env_steps = 400  # 20 updates of T x B = 20 steps
  config.validation.lifetimes = 2
  for key, value in overrides.items():
    target = config
    *path, name = key.split(".")
    for part in path:
      target = target[part]
    target[name] = value
  return config


# One environment, one group of two lifetimes (tiny_config's grid world adds two
# groups): a third of the meta-step to trace, for tests about the trainer's
# handling of lifetimes rather than the population's layout.
ONE_GROUP = {"population.envs": ("chain/short",)}
# Validation every 2 meta-steps, of one lifetime per environment.
VALIDATED = {"validation.every": 2, "validation.lifetimes": 1}


def meta_train_with_snapshot(config, workdir, snapshot, step):
  """meta_train(config, workdir), copying the run's directory to `snapshot`
  just after the checkpoint of meta-step `step` is saved and the rule exported:
  what a run stopped after that checkpoint leaves behind."""
  real_save = meta_train.save

  def save_and_snapshot(manager, meta_trainer, run_dir, saved_step):
    real_save(manager, meta_trainer, run_dir, saved_step)
    if saved_step == step:
      shutil.copytree(run_dir, snapshot)

  with mock.patch.object(meta_train, "save", save_and_snapshot):
    meta_train.meta_train(config, workdir)
  if not os.path.isdir(snapshot):
    raise AssertionError(f"the run saved no checkpoint at meta-step {step}")


@functools.lru_cache(maxsize=None)
def straight_run():
  """A finished validated run of 4 meta-steps, and a snapshot of it at ckpt-2.

  Made once per test process and shared by the tests that read it (a run takes
  tens of seconds, mostly tracing the meta-step). The snapshot is what the run
  would have left had it stopped after ckpt-2 (`meta_train_with_snapshot`).
  Tests must not write into either: one that continues a run works on a copy
  (`copy_of`).

  Returns:
    (the run's directory, the snapshot's directory).
  """
  root = tempfile.mkdtemp(prefix="straight_run_")
  atexit.register(shutil.rmtree, root, ignore_errors=True)
  workdir = os.path.join(root, "run")
  snapshot = os.path.join(root, "at_ckpt_2")
  meta_train_with_snapshot(tiny_config(**VALIDATED), workdir, snapshot, 2)
  return workdir, snapshot


def copy_of(test, workdir):
  """A copy of run directory `workdir` in one of `test`'s temporary
  directories, for the test to continue."""
  copy = os.path.join(test.create_tempdir().full_path, "run")
  shutil.copytree(workdir, copy)
  return copy


def rule_weights(workdir):
  """eta from the run's latest checkpoint, as sorted (name, value) pairs."""
  reader = tf.train.load_checkpoint(
      tf.train.latest_checkpoint(os.path.join(workdir, meta_train.CHECKPOINT_DIR)))
  names = [n for n in reader.get_variable_to_shape_map()
           if n.startswith("rule/") and "OPTIMIZER_SLOT" not in n]
  assert names
  return sorted((n, reader.get_tensor(n)) for n in names)


def checkpoint_eta(workdir, step):
  """eta in checkpoint ckpt-`step`, as sorted bytes of its weights."""
  reader = tf.train.load_checkpoint(
      os.path.join(workdir, meta_train.CHECKPOINT_DIR, f"ckpt-{step}"))
  return sorted(reader.get_tensor(n).tobytes()
                for n in reader.get_variable_to_shape_map()
                if n.startswith("rule/") and "OPTIMIZER_SLOT" not in n
                and reader.get_tensor(n).ndim > 0)


def exported_rule_weights(path):
  """An exported rule's weights, as sorted bytes."""
  rule = meta_train.build_rule(tiny_config())
  export.load_rule_into(rule, path)
  return sorted(v.numpy().tobytes() for v in rule.variables)


def validation_record(workdir):
  """(best score, best step) of the run's latest checkpoint."""
  reader = tf.train.load_checkpoint(
      tf.train.latest_checkpoint(os.path.join(workdir, meta_train.CHECKPOINT_DIR)))
  record = validation.ValidationRecord()
  record.deserialize(reader.get_tensor(next(
      n for n in reader.get_variable_to_shape_map() if n.startswith("validation/"))))
  return record.best_score, record.best_step


class ResumeTest(absltest.TestCase):

  def test_resume_gives_the_same_eta_and_best_rule_as_a_straight_run(self):
    straight, at_ckpt_2 = straight_run()
    resumed = copy_of(self, at_ckpt_2)  # Stopped after ckpt-2, resumed.
    meta_train.meta_train(tiny_config(**VALIDATED), resumed, resume=True)
    a, b = rule_weights(straight), rule_weights(resumed)
    self.assertEqual([n for n, _ in a], [n for n, _ in b])
    for (_, x), (_, y) in zip(a, b):
      np.testing.assert_array_equal(x, y)
    # The best eta: the same record, the same export, and that export is the
    # eta of the best step's checkpoint.
    self.assertEqual(validation_record(straight), validation_record(resumed))
    best = exported_rule_weights(os.path.join(straight, "best_rule"))
    self.assertEqual(best, exported_rule_weights(os.path.join(resumed, "best_rule")))
    _, best_step = validation_record(straight)
    self.assertIn(best_step, (2, 4))
    self.assertEqual(best, checkpoint_eta(straight, best_step))
    # And the run really changed eta.
    self.assertNotEqual(checkpoint_eta(straight, 2), checkpoint_eta(straight, 4))

  @pytest.mark.slow
  def test_validation_leaves_training_alone(self):
    validated, _ = straight_run()
    unvalidated = self.create_tempdir().full_path
    meta_train.meta_train(tiny_config(), unvalidated)
    a, b = rule_weights(validated), rule_weights(unvalidated)
    self.assertEqual([n for n, _ in a], [n for n, _ in b])
    for (_, x), (_, y) in zip(a, b):
      np.testing.assert_array_equal(x, y)

  @pytest.mark.slow
  def test_a_half_written_checkpoint_does_not_break_resume(self):
    workdir = copy_of(self, straight_run()[1])
    ckpt_dir = os.path.join(workdir, meta_train.CHECKPOINT_DIR)
    # A save killed before CheckpointManager records it leaves stray files only.
    with open(os.path.join(ckpt_dir, "ckpt-3.index"), "wb") as f:
      f.write(b"\x00garbage")
    meta_train.meta_train(tiny_config(num_meta_steps=3, **VALIDATED), workdir,
                          resume=True)
    self.assertTrue(tf.train.latest_checkpoint(ckpt_dir).endswith("ckpt-3"))


class InputErrorsTest(absltest.TestCase):

  def test_unknown_environment(self):
    with self.assertRaisesRegex(errors.ConfigError, "Unknown environment.*tabular/dense"):
      meta_train.validate(tiny_config(**{"population.envs": ("grid/nowhere",)}))

  def test_malformed_values(self):
    for key, value in (("num_meta_steps", 0), ("population.num_envs", -1),
                       ("strategy", "cluster"), ("meta.learning_rate", 0.0),
                       ("meta.learning_rate", -1e-3), ("meta.learning_rate", float("nan")),
                       ("meta.critic_learning_rate", 0.0), ("meta.pi_hat_l2_cost", -1.0),
                       ("meta.y_hat_l2_cost", -0.1), ("meta.prediction_entropy_cost", -1.0),
                       ("meta.advantage_lambda", 1.5), ("meta.bandit_temperature", 0.0),
                       ("meta.bandit_exploration_bonus", -0.2), ("meta.bandit_window", 0),
                       ("meta.entropy_reset_threshold", -1.0),
                       ("population.lifetime_scale", float("inf")),
                       ("rule.embedding_sizes", (16, 0)), ("max_nonfinite_steps", 0),
                       ("seed", -1), ("checkpoint_every", 0), ("log_every", -5)):
      with self.subTest(key=key, value=value), \
          self.assertRaisesRegex(errors.ConfigError, f"config.{key}"):
        meta_train.validate(tiny_config(**{key: value}))

  def test_unknown_key(self):
    config = tiny_config()
    config.meta.foo = 1.0
    with self.assertRaisesRegex(errors.ConfigError, "Unknown config key.*config.meta.foo"):
      meta_train.validate(config)

  def test_existing_run_continues_only_with_a_matching_config(self):
    workdir = copy_of(self, straight_run()[0])  # Complete at ckpt-4.
    for resume in (False, True):
      with self.assertRaisesRegex(errors.ConfigError, "another config.*hidden_size"):
        meta_train.meta_train(
            tiny_config(num_meta_steps=5, **VALIDATED, **{"rule.hidden_size": 9}),
            workdir, resume=resume)
    # The matching config, longer, continues from ckpt-4 without --resume. Its
    # meta-step is a counter: what a continued run computes is ResumeTest's
    # concern.
    taken = []

    def counting_step(trainer):
      trainer.step_counter.assign_add(1)
      taken.append(int(trainer.step_counter.numpy()))
      return {"meta_loss": 0.0, "meta_gradient_finite": 1.0}

    with mock.patch.object(meta_train.trainer_lib.MetaTrainer, "step", counting_step):
      meta_train.meta_train(tiny_config(num_meta_steps=5, **VALIDATED), workdir)
    self.assertEqual(taken, [5])
    self.assertTrue(tf.train.latest_checkpoint(
        os.path.join(workdir, meta_train.CHECKPOINT_DIR)).endswith("ckpt-5"))

  def test_resume_without_checkpoint(self):
    with self.assertRaisesRegex(meta_train.run_directory.RunError, "no checkpoint"):
      meta_train.meta_train(tiny_config(), self.create_tempdir().full_path, resume=True)

  def test_init_rule_must_be_an_exported_rule(self):
    bogus = self.create_tempdir().full_path
    module = tf.Module()
    module.f = tf.function(lambda x: {"out": x},
                           input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, bogus, signatures=module.f)
    with self.assertRaises(errors.ConfigError):
      meta_train.meta_train(tiny_config(), self.create_tempdir().full_path,
                            init_rule=bogus)

  def test_init_rule_pretrained_is_checked_before_work(self):
    for rule, message in (
        ("pretrained", r"hidden_size 32 \(export\) != 8 \(rule\)"),
        ("pretrained:nope", "Unknown pretrained rule 'nope'; valid: lpg_cpu")):
      workdir = os.path.join(self.create_tempdir().full_path, "run")
      with self.assertRaisesRegex(errors.ConfigError, message):
        meta_train.meta_train(tiny_config(), workdir, init_rule=rule)
      self.assertFalse(os.path.exists(workdir))

  @pytest.mark.slow
  def test_launcher_rejects_bad_override_before_work(self):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "launchers", "tpu_meta_train.py"),
         f"--workdir={workdir}", "--config.population.envs=('chain/nowhere',)"],
        capture_output=True, text=True, timeout=300, cwd=REPO,
        env=dict(os.environ, PYTHONPATH=REPO))
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("Unknown environment", result.stderr)
    self.assertFalse(os.path.exists(workdir))


class TrainerBehaviourTest(absltest.TestCase):

  def test_init_rule_starts_from_the_exported_weights(self):
    source, _ = straight_run()
    config = tiny_config()
    rule = meta_train.build_rule(config)
    trainer = meta_train.trainer_lib.MetaTrainer(
        rule, meta_train.population_spec(config), meta_train.meta_spec(config), seed=5,
        jit_compile=False)
    del trainer
    export.load_rule_into(rule, os.path.join(source, meta_train.RULE_DIR))
    exported = dict(rule_weights(source))
    for v in rule.trainable_variables:
      matches = [n for n, x in exported.items() if x.shape == v.shape
                 and np.array_equal(x, v.numpy())]
      self.assertTrue(matches, v.name)

  def test_meta_gradient_clipping_config(self):
    self.assertIsNone(meta_train.meta_spec(tiny_config()).max_grad_norm or None)
    self.assertEqual(meta_train.meta_spec(
        tiny_config(**{"meta.max_grad_norm": 0.5})).max_grad_norm, 0.5)
    with self.assertRaises(errors.ConfigError):
      meta_train.validate(tiny_config(**{"meta.max_grad_norm": -1.0}))

  def test_run_writes_config_checkpoints_rule_and_summaries(self):
    workdir, _ = straight_run()
    with open(os.path.join(workdir, meta_train.CONFIG_NAME)) as f:
      self.assertEqual(json.load(f)["rule"]["hidden_size"], 8)
    self.assertTrue(tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints")))
    self.assertEqual(saved_model.read_metadata(os.path.join(workdir, "rule")).hidden_size, 8)
    self.assertTrue(os.listdir(os.path.join(workdir, "tb")))


class TrainerStepTest(absltest.TestCase):
  """The tests take meta-steps of one trainer, built and traced once for the
  class; each sets up the state it needs and leaves the trainer finite, so
  they pass in any order."""

  @classmethod
  def setUpClass(cls):
    super().setUpClass()
    config = tiny_config(**ONE_GROUP)
    cls.trainer = meta_train.trainer_lib.MetaTrainer(
        meta_train.build_rule(config), meta_train.population_spec(config),
        meta_train.meta_spec(config), seed=0, jit_compile=False)

  def test_lifetimes_end_reset_and_feed_the_bandit(self):
    trainer = self.trainer
    (group,) = trainer.population.groups
    bandit = trainer.population.bandits.bandits["chain/short"]
    fed_before = bandit.counts.sum()
    for _ in range(3):
      # Both lifetimes have lived their whole length: the step ends them.
      state = group.read()
      group.write(state._replace(steps=tf.fill(
          state.steps.shape, tf.constant(group.lifetime_steps, tf.int64))))
      numbers = trainer.step()
      self.assertEqual(numbers["ended_lifetimes"], 2.0)
      self.assertTrue(np.all(group.read().steps.numpy() == 0))
    self.assertEqual(bandit.counts.sum() - fed_before, 6)

  def test_non_finite_meta_gradient_is_skipped(self):
    trainer = self.trainer
    trainer.step()
    before = [v.numpy() for v in trainer.rule.trainable_variables]
    real_step = trainer._compiled_step

    def nan_step(states):
      out = real_step(states)
      return out._replace(grads=[g * np.nan for g in out.grads])

    with mock.patch.object(trainer, "_compiled_step", nan_step), \
        self.assertLogs(level="WARNING") as logs:
      numbers = trainer.step()
    self.assertEqual(numbers["meta_gradient_finite"], 0.0)
    self.assertIn("non-finite meta-gradient", "".join(logs.output))
    for b, v in zip(before, trainer.rule.trainable_variables):
      np.testing.assert_array_equal(b, v.numpy())

  def test_a_non_finite_lifetime_is_excluded_and_ended(self):
    trainer = self.trainer
    group = trainer.population.groups[0]
    state = group.read()
    steps_before = state.steps.numpy()
    poisoned = {k: tf.tensor_scatter_nd_update(
        v, [[0]], v[:1] * np.nan) for k, v in state.params.items()}
    group.write(state._replace(params=poisoned))
    before = [v.numpy() for v in trainer.rule.trainable_variables]
    numbers = trainer.step()
    self.assertEqual(numbers["meta_gradient_finite"], 1.0)
    self.assertTrue(np.isfinite(numbers["meta_loss"]))
    self.assertEqual(numbers[f"{group.name_for_logs}/excluded_lifetimes"], 1.0)
    self.assertEqual(numbers[f"{group.name_for_logs}/diverged_lifetimes"], 1.0)
    self.assertFalse(all(np.array_equal(b, v.numpy()) for b, v in zip(
        before, trainer.rule.trainable_variables)))
    after = group.read()
    self.assertEqual(int(after.steps[0]), 0)  # a fresh lifetime took the slot
    self.assertGreater(int(after.steps[1]), int(steps_before[1]))
    for v in after.params.values():
      self.assertTrue(np.all(np.isfinite(v.numpy())))


if __name__ == "__main__":
  absltest.main()
