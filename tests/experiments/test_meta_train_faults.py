"""meta_train under faults: kills before the first checkpoint or during the last
export, unreadable checkpoints, non-finite eta, signals, a full disk, a failed
ONNX conversion, a second trainer. The fast tests replace the meta-step by a
counter (`fake_steps`); the slow ones run the launcher in real subprocesses."""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from unittest import mock

from absl.testing import absltest
import numpy as np
import pytest
import tensorflow as tf

from lpg_tf import export
from lpg_tf.experiments import meta_train
from lpg_tf.experiments import run_directory
from lpg_tf.experiments import stop_signals
from lpg_tf.meta import trainer as trainer_lib
from lpg_tf.rules import lpg
from tests.experiments import kill_loop
from tests.meta.test_trainer import ONE_GROUP
from tests.meta.test_trainer import rule_weights
from tests.meta.test_trainer import tiny_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCHER = os.path.join(REPO, "launchers", "tpu_meta_train.py")
TINY_CONFIG = os.path.join(REPO, "tests", "experiments", "tiny_meta_config.py")


@contextlib.contextmanager
def fake_steps(before_step=None, finite=lambda step: True):
  """Replaces MetaTrainer.step by a counter: no compilation, no learning.

  Args:
    before_step: called with (trainer, step about to be taken), to inject faults.
    finite: whether the meta-gradient of a step counts as finite.
  """

  def step(trainer):
    if before_step is not None:
      before_step(trainer, int(trainer.step_counter.numpy()) + 1)
    trainer.step_counter.assign_add(1)
    return {"meta_loss": 0.0,
            "meta_gradient_finite": float(finite(int(trainer.step_counter.numpy())))}

  with mock.patch.object(trainer_lib.MetaTrainer, "step", step):
    yield


def one_group_config(**overrides):
  """tiny_config with one group of lifetimes: with the meta-step faked, a run's
  cost is building the population (a traced reset per group) and exporting."""
  return tiny_config(**ONE_GROUP, **overrides)


def exported_weights(workdir):
  rule = lpg.LPG(hidden_size=8, prediction_size=6)
  export.load_rule_into(rule, os.path.join(workdir, "rule"))
  return sorted(v.numpy().tobytes() for v in rule.trainable_variables)


def checkpoint_eta(workdir):
  return sorted(x.tobytes() for n, x in rule_weights(workdir)
                if "meta_optimiser" not in n and x.ndim > 0)


def logged(mock_log):
  """What the calls of a mocked absl logging function would have logged."""
  return "\n".join(call.args[0] % call.args[1:] for call in mock_log.call_args_list)


def latest(workdir):
  return tf.train.latest_checkpoint(os.path.join(workdir, "checkpoints"))


class KilledRunsContinueTest(absltest.TestCase):

  def test_killed_before_the_first_checkpoint(self):
    workdir = self.create_tempdir().full_path

    def killed(trainer, step):
      del trainer, step
      raise KeyboardInterrupt  # As a kill would, after config.json, before any checkpoint.

    with fake_steps(killed), self.assertRaises(KeyboardInterrupt):
      meta_train.meta_train(one_group_config(num_meta_steps=2), workdir)
    self.assertIsNone(latest(workdir))
    with fake_steps():  # Without --resume: the same config continues (here from step 0).
      meta_train.meta_train(one_group_config(num_meta_steps=2), workdir)
    self.assertTrue(latest(workdir).endswith("ckpt-2"))

  def test_a_lost_final_export_is_redone_and_a_complete_run_says_so(self):
    workdir = self.create_tempdir().full_path
    with fake_steps():
      meta_train.meta_train(one_group_config(num_meta_steps=2), workdir)
    shutil.rmtree(os.path.join(workdir, "rule"))  # Killed during the last export.
    with mock.patch.object(meta_train.logging, "info") as info:
      self.assertEqual(meta_train.meta_train(one_group_config(num_meta_steps=2), workdir,
                                             resume=True), {})
    self.assertRegex(logged(info),
                     "complete at meta-step 2.*--config.num_meta_steps=<more than 2>")
    self.assertEqual(exported_weights(workdir), checkpoint_eta(workdir))

  def test_an_unreadable_newest_checkpoint_falls_back_to_the_previous_one(self):
    workdir = self.create_tempdir().full_path
    with fake_steps():
      meta_train.meta_train(one_group_config(num_meta_steps=4), workdir)
    data = latest(workdir) + ".data-00000-of-00001"
    with open(data, "r+b") as f:
      f.truncate(os.path.getsize(data) // 2)
    with fake_steps(), mock.patch.object(meta_train.logging, "info") as info, \
        mock.patch.object(meta_train.logging, "warning") as warning:
      meta_train.meta_train(one_group_config(num_meta_steps=4), workdir, resume=True)
    output = logged(info) + logged(warning)
    self.assertRegex(output, "Skipped the unreadable checkpoint .*ckpt-4")
    self.assertRegex(output, "Resumed from .*ckpt-2 at meta-step 2")
    self.assertTrue(latest(workdir).endswith("ckpt-4"))
    self.assertIsNone(run_directory.read_problem(latest(workdir)))


class NonFiniteEtaTest(absltest.TestCase):

  def test_a_non_finite_eta_is_never_saved(self):
    workdir = self.create_tempdir().full_path

    def poison(trainer, step):
      if step == 3:
        variable = trainer.rule.trainable_variables[0]
        variable.assign(tf.fill(variable.shape, np.nan))

    with fake_steps(poison), self.assertRaisesRegex(
        run_directory.RunError,
        "eta is not finite at meta-step 4.*last good checkpoint is .*ckpt-2"):
      meta_train.meta_train(one_group_config(num_meta_steps=6), workdir)
    self.assertTrue(latest(workdir).endswith("ckpt-2"))
    for weights in exported_weights(workdir):
      self.assertTrue(np.all(np.isfinite(np.frombuffer(weights, np.float32))))

  def test_consecutive_non_finite_meta_gradients_stop_the_run(self):
    workdir = self.create_tempdir().full_path
    config = one_group_config(num_meta_steps=20, max_nonfinite_steps=3,
                              checkpoint_every=3)  # ckpt-3, then ckpt-6.
    with fake_steps(finite=lambda step: step <= 4), self.assertRaisesRegex(
        run_directory.RunError,
        "3 consecutive meta-steps \\(up to 7\\).*last good checkpoint is .*ckpt-6"):
      meta_train.meta_train(config, workdir)


class SignalTest(absltest.TestCase):

  def test_ctrl_c_saves_exports_and_stops(self):
    workdir = self.create_tempdir().full_path
    # What the run must restore: Python's default, or SIG_IGN when pytest was
    # started in the background by a non-interactive shell.
    handler_before = signal.getsignal(signal.SIGINT)

    def interrupt(trainer, step):
      del trainer
      if step == 3:
        os.kill(os.getpid(), signal.SIGINT)

    with fake_steps(interrupt), self.assertRaises(stop_signals.Stopped) as stopped:
      # No periodic checkpoint: ckpt-3 can only come from the stop.
      meta_train.meta_train(one_group_config(num_meta_steps=10, checkpoint_every=10),
                            workdir)
    self.assertEqual(stopped.exception.exit_status, 130)
    self.assertTrue(latest(workdir).endswith("ckpt-3"))
    self.assertEqual(exported_weights(workdir), checkpoint_eta(workdir))
    self.assertIs(signal.getsignal(signal.SIGINT), handler_before)


def mount_tmpfs(path, size):
  os.makedirs(path)
  result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path],
                          capture_output=True, check=False)
  return result.returncode == 0


@pytest.mark.slow
class FullDiskTest(absltest.TestCase):

  def test_full_disk_is_one_line_and_keeps_the_previous_checkpoint(self):
    root = os.path.join(self.create_tempdir().full_path, "small")
    if not mount_tmpfs(root, "4m"):
      self.skipTest("needs a small tmpfs (mount, as root)")
    self.addCleanup(subprocess.run, ["umount", root], check=False)
    workdir = os.path.join(root, "run")
    with fake_steps():
      meta_train.meta_train(tiny_config(num_meta_steps=2), workdir)
    good = rule_weights(workdir)
    filler = os.path.join(root, "filler")
    with open(filler, "wb") as f:
      f.write(b"\0" * (shutil.disk_usage(root).free - 300 * 1024))
    with fake_steps(), self.assertRaisesRegex(
        run_directory.RunError,
        f"No space left on the device writing {workdir}/checkpoints: it needs "
        "about [0-9.]+ MiB, [0-9.]+ MiB are free"):
      meta_train.meta_train(tiny_config(num_meta_steps=4), workdir)
    self.assertTrue(latest(workdir).endswith("ckpt-2"))
    self.assertIsNone(run_directory.read_problem(latest(workdir)))
    for (n, a), (m, b) in zip(good, rule_weights(workdir)):
      self.assertEqual(n, m)
      np.testing.assert_array_equal(a, b)
    os.remove(filler)
    with fake_steps():  # Space freed: the same command continues.
      meta_train.meta_train(tiny_config(num_meta_steps=4), workdir)
    self.assertTrue(latest(workdir).endswith("ckpt-4"))
    self.assertEqual(os.listdir(os.path.join(workdir, "checkpoints")).count("ckpt-4.index"), 1)


@pytest.mark.slow
class FailedExportTest(absltest.TestCase):
  """A meta_train run (10-30 s here); export.ExportError itself is tested fast
  in tests/test_export.py."""

  def test_a_failed_onnx_export_is_one_line_and_keeps_the_checkpoint(self):
    workdir = self.create_tempdir().full_path
    with fake_steps(), mock.patch.dict(export._ONNX_GRAPHS, clear=True), \
        mock.patch.object(export.tf2onnx.convert, "from_function",
                          side_effect=ValueError("unsupported op")), \
        self.assertRaisesRegex(
            run_directory.RunError,
            "Cannot export the rule to .*/rule: tf2onnx .* cannot convert the "
            "rule to ONNX opset 15: ValueError: unsupported op The checkpoints "
            "are intact"):
      meta_train.meta_train(tiny_config(num_meta_steps=2), workdir)
    self.assertTrue(latest(workdir).endswith("ckpt-2"))
    # No rule/ yet; a resumed run exports it (test_a_lost_final_export_...).
    self.assertEqual(sorted(os.listdir(workdir)),
                     [".lock", "checkpoints", "config.json", "tb"])


def launch(workdir, *flags):
  env = dict(os.environ, PYTHONPATH=REPO)
  return subprocess.Popen(
      [sys.executable, LAUNCHER, f"--config={TINY_CONFIG}", f"--workdir={workdir}",
       *flags], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
      env=env, cwd=REPO)


def wait_for(process, text, timeout=300):
  """Reads the process's output until a line contains `text`; returns the lines."""
  lines = []
  deadline = time.time() + timeout
  while time.time() < deadline:
    line = process.stdout.readline()
    if not line:
      break
    lines.append(line)
    if text in line:
      return lines
  raise AssertionError(f"{text!r} not seen in:\n{''.join(lines[-30:])}")


@pytest.mark.slow
class SubprocessTest(absltest.TestCase):

  def test_sigterm_saves_exports_and_exits_143(self):
    workdir = self.create_tempdir().full_path
    process = launch(workdir, "--config.num_meta_steps=100000",
                     "--config.checkpoint_every=1000")
    try:
      wait_for(process, "meta-step 1/")
      process.send_signal(signal.SIGTERM)
      output = process.communicate(timeout=300)[0]
    finally:
      process.kill()
    self.assertEqual(process.returncode, 143, output[-3000:])
    self.assertIn("SIGTERM received", output)
    self.assertNotIn("Traceback", output)
    self.assertIsNotNone(latest(workdir))
    self.assertEqual(exported_weights(workdir), checkpoint_eta(workdir))

  def test_a_second_trainer_on_the_same_directory_is_refused(self):
    workdir = self.create_tempdir().full_path
    first = launch(workdir, "--config.num_meta_steps=100000")
    try:
      wait_for(first, "meta-step 1/")
      second = launch(workdir, "--config.num_meta_steps=100000")
      output = second.communicate(timeout=300)[0]
      self.assertEqual(second.returncode, 1, output[-3000:])
      self.assertIn(f"in use by another trainer (pid {first.pid})", output)
      self.assertNotIn("Traceback", output)
    finally:
      first.kill()
      first.communicate()

  def test_kill_minus_9_loop(self):
    summary = kill_loop.run_kill_loop(kills=20, seed=0,
                                      root=self.create_tempdir().full_path)
    self.assertEqual(summary["failures"], 0, summary["failure_outputs"])
    self.assertEqual(summary["kills"], 20)
    self.assertTrue(summary["final_rule_equal"])
    self.assertTrue(summary["best_rule_equal"])
    self.assertTrue(summary["final_checkpoint_eta_equal"])


if __name__ == "__main__":
  absltest.main()
