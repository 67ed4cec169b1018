"""lpg_tf/experiments/run_directory.py: lock, start-or-continue policy, stale
temporaries, fallback past unreadable checkpoints."""

import os
import subprocess
import sys
import time

from absl.testing import absltest
import tensorflow as tf

from lpg_tf import errors
from lpg_tf.experiments import run_directory

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = {"name": "tiny", "rule": {"hidden_size": 8}, "num_meta_steps": 4}
RESUMABLE = ("num_meta_steps",)

HOLD_LOCK = """
import sys, time
from lpg_tf.experiments import run_directory
lock = run_directory.RunLock(sys.argv[1])
print("locked", flush=True)
time.sleep(120)
"""


def write_checkpoints(checkpoint_dir, numbers):
  """Small checkpoints ckpt-N holding one variable equal to N."""
  variable = tf.Variable(0.0)
  checkpoint = tf.train.Checkpoint(v=variable)
  manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=None)
  for n in numbers:
    variable.assign(float(n))
    manager.save(checkpoint_number=n)


def open_and_release(workdir, config=None, resume=False, init_rule=None):
  lock, start_from = run_directory.open_run(
      workdir, config or CONFIG, RESUMABLE, resume, init_rule)
  lock.release()
  return start_from


class PolicyTest(absltest.TestCase):

  def test_new_directory_starts_and_the_same_config_continues(self):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    self.assertIsNone(open_and_release(workdir))
    self.assertTrue(os.path.exists(os.path.join(workdir, "config.json")))
    # Killed before the first checkpoint: startable again, with or without --resume.
    self.assertIsNone(open_and_release(workdir))
    self.assertIsNone(open_and_release(workdir, resume=True))
    ckpt_dir = os.path.join(workdir, "checkpoints")
    write_checkpoints(ckpt_dir, [2, 4])
    longer = dict(CONFIG, num_meta_steps=8)
    self.assertEqual(open_and_release(workdir, longer), os.path.join(ckpt_dir, "ckpt-4"))

  def test_another_config_is_refused(self):
    workdir = self.create_tempdir().full_path
    open_and_release(workdir)
    for resume in (False, True):
      with self.assertRaisesRegex(errors.ConfigError, "another config.*hidden_size"):
        open_and_release(workdir, dict(CONFIG, rule={"hidden_size": 9}), resume)

  def test_dotted_resumable_fields_cover_only_their_keys(self):
    workdir = self.create_tempdir().full_path
    config = dict(CONFIG, meta={"learning_rate": 0.001, "es": {"sigma": 0.01}})
    open_and_release(workdir, config)
    retuned = dict(CONFIG, meta={"learning_rate": 0.002, "es": {"sigma": 0.05}})
    lock, _ = run_directory.open_run(
        workdir, retuned, RESUMABLE + ("meta.learning_rate", "meta.es"), False,
        None)
    lock.release()
    with self.assertRaisesRegex(errors.ConfigError,
                                "meta.es.sigma: saved 0.05, now 0.01"):
      open_and_release(workdir, dict(config, meta={"learning_rate": 0.002,
                                                   "es": {"sigma": 0.01}}))

  def test_resume_needs_a_run_and_init_rule_a_new_one(self):
    with self.assertRaisesRegex(run_directory.RunError, "does not exist"):
      open_and_release(os.path.join(self.create_tempdir().full_path, "none"),
                       resume=True)
    with self.assertRaisesRegex(run_directory.RunError, "no checkpoint"):
      open_and_release(self.create_tempdir().full_path, resume=True)
    workdir = self.create_tempdir().full_path
    open_and_release(workdir)
    write_checkpoints(os.path.join(workdir, "checkpoints"), [2])
    with self.assertRaisesRegex(errors.ConfigError, "drop it to continue"):
      open_and_release(workdir, init_rule="/some/rule")

  def test_a_file_or_an_unwritable_path_is_refused(self):
    path = self.create_tempfile("run").full_path
    with self.assertRaisesRegex(run_directory.RunError, "not a directory"):
      open_and_release(path)
    with self.assertRaisesRegex(run_directory.RunError, "Cannot create"):
      open_and_release("/proc/lpg_tf_run")


class LockTest(absltest.TestCase):

  def test_a_second_trainer_is_refused_with_the_holders_pid(self):
    workdir = self.create_tempdir().full_path
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, workdir],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
      self.assertEqual(holder.stdout.readline().strip(), "locked")
      with self.assertRaisesRegex(run_directory.RunError,
                                  f"in use by another trainer \\(pid {holder.pid}\\)"):
        open_and_release(workdir)
      self.assertFalse(os.path.exists(os.path.join(workdir, "config.json")))
    finally:
      holder.kill()
      holder.wait()
    # kill -9 released it.
    self.assertIsNone(open_and_release(workdir))


class StaleFilesTest(absltest.TestCase):

  def test_temporaries_of_a_killed_save_are_removed(self):
    workdir = self.create_tempdir().full_path
    open_and_release(workdir)
    ckpt_dir = os.path.join(workdir, "checkpoints")
    write_checkpoints(ckpt_dir, [2])
    stale = [os.path.join(workdir, ".rule.tmp-abc123"),
             os.path.join(workdir, ".rule.old-xyz"),
             os.path.join(ckpt_dir, "ckpt-4_temp")]
    for path in stale:
      os.makedirs(path)
    with open(os.path.join(ckpt_dir, "ckpt-4.index.tempstate123"), "w") as f:
      f.write("x")
    self.assertEqual(open_and_release(workdir), os.path.join(ckpt_dir, "ckpt-2"))
    for path in stale:
      self.assertFalse(os.path.exists(path), path)
    self.assertEqual(sorted(os.listdir(ckpt_dir)),
                     ["checkpoint", "ckpt-2.data-00000-of-00001", "ckpt-2.index"])


class IntactCheckpointTest(absltest.TestCase):

  def test_unreadable_newest_checkpoints_are_skipped_with_a_warning(self):
    ckpt_dir = self.create_tempdir().full_path
    write_checkpoints(ckpt_dir, [2, 4, 6])
    data = os.path.join(ckpt_dir, "ckpt-6.data-00000-of-00001")
    with open(data, "r+b") as f:  # A write cut short.
      f.truncate(os.path.getsize(data) // 2)
    with open(os.path.join(ckpt_dir, "ckpt-4.index"), "r+b") as f:  # Bad bytes.
      f.seek(0)
      f.write(b"\xff" * 16)
    self.assertIsNotNone(run_directory.read_problem(os.path.join(ckpt_dir, "ckpt-6")))
    with self.assertLogs(logger="absl", level="WARNING") as logs:
      newest = run_directory.newest_intact_checkpoint(ckpt_dir)
    self.assertEqual(newest, os.path.join(ckpt_dir, "ckpt-2"))
    self.assertRegex(logs.output[0], "ckpt-6")
    self.assertRegex(logs.output[1], "ckpt-4")
    self.assertEqual(tf.train.latest_checkpoint(ckpt_dir), newest)
    self.assertEqual(tf.train.load_checkpoint(newest).get_tensor(
        "v/.ATTRIBUTES/VARIABLE_VALUE"), 2.0)
    self.assertLen(os.listdir(os.path.join(ckpt_dir, "corrupt")), 4)

  def test_no_intact_checkpoint(self):
    ckpt_dir = self.create_tempdir().full_path
    write_checkpoints(ckpt_dir, [1])
    with open(os.path.join(ckpt_dir, "ckpt-1.index"), "wb") as f:
      f.write(b"\x00garbage")
    with self.assertLogs(logger="absl", level="WARNING"):
      self.assertIsNone(run_directory.newest_intact_checkpoint(ckpt_dir))
    self.assertIsNone(tf.train.latest_checkpoint(ckpt_dir))


class OutOfSpaceTest(absltest.TestCase):

  def test_a_full_disk_is_one_line_naming_path_and_size(self):
    path = self.create_tempdir().full_path
    with self.assertRaisesRegex(
        run_directory.RunError,
        f"^No space left on the device writing {path}: it needs about 3.0 MiB, "
        r"[0-9.]+ MiB are free\. The previous checkpoint is intact"):
      with run_directory.out_of_space_errors(path, 3 * 2**20):
        raise tf.errors.ResourceExhaustedError(
            None, None, f"{path}/x; No space left on device")
    with self.assertRaises(OSError):
      with run_directory.out_of_space_errors(path, 1):
        raise OSError(13, "Permission denied")


if __name__ == "__main__":
  absltest.main()
