"""lpg_tf/loggers.py: each destination receives what was written, as written."""

import csv
import glob
import math
import os

from absl import logging as absl_logging
from absl.testing import absltest
import tensorflow as tf

from lpg_tf import loggers


def read_scalars(logdir):
  """{tag: [(step, value), ...]} from the event files under `logdir`."""
  scalars = {}
  for path in sorted(glob.glob(os.path.join(logdir, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        number = float(tf.make_ndarray(value.tensor))
        scalars.setdefault(value.tag, []).append((event.step, number))
  return scalars


class FakeClock:

  def __init__(self):
    self.now = 100.0

  def __call__(self):
    return self.now


class TensorBoardLoggerTest(absltest.TestCase):

  def test_scalars_read_back_and_non_finite_skipped(self):
    logdir = self.create_tempdir().full_path
    logger = loggers.TensorBoardLogger(logdir)
    logger.write(3, {"loss": 0.5, "a/b": 2, "nan": math.nan, "inf": math.inf})
    logger.write(7, {"loss": 0.25})
    logger.close()
    scalars = read_scalars(logdir)
    self.assertEqual(scalars, {"loss": [(3, 0.5), (7, 0.25)], "a/b": [(3, 2.0)]})


class CSVLoggerTest(absltest.TestCase):

  def test_columns_are_fixed_and_missing_values_empty(self):
    path = os.path.join(self.create_tempdir().full_path, "curve.csv")
    logger = loggers.CSVLogger(path, ["seed", "env_steps", "episode_return"])
    logger.write(10, {"env_steps": 10, "seed": 0, "episode_return": 1.5})
    logger.write(20, {"seed": 1, "env_steps": 20})
    with self.assertRaisesRegex(ValueError, "loss"):
      logger.write(20, {"seed": 1, "loss": 0.1})
    logger.close()
    with open(path) as f:
      self.assertEqual(f.read().splitlines(),
                       ["seed,env_steps,episode_return", "0,10,1.5", "1,20,"])

  def test_rows_are_on_disk_before_close(self):
    path = os.path.join(self.create_tempdir().full_path, "curve.csv")
    logger = loggers.CSVLogger(path, ["x"])
    logger.write(1, {"x": 4})
    with open(path) as f:
      self.assertEqual(list(csv.DictReader(f)), [{"x": "4"}])
    logger.close()


class ConsoleLoggerTest(absltest.TestCase):

  def test_line_has_progress_rate_eta_and_chosen_metrics(self):
    clock = FakeClock()
    logger = loggers.ConsoleLogger("meta-step", total=100, keys=[
        "meta_loss", "*/episode_return"], clock=clock)
    with self.assertLogs(absl_logging.get_absl_logger(), level="INFO") as logs:
      logger.write(10, {"meta_loss": 0.25, "b/episode_return": 2.0,
                        "a/episode_return": 1.0, "hidden": 3.0})
      clock.now += 4.0
      logger.write(30, {"meta_loss": 0.125, "count": 7})
    first, second = [record.getMessage() for record in logs.records]
    self.assertEqual(first, "meta-step 10/100 | warming up | meta_loss 0.25 | "
                     "a/episode_return 1 | b/episode_return 2")
    # 20 steps in 4 s: 5 steps/s, 70 steps left: 14 s.
    self.assertEqual(second, "meta-step 30/100 | 5 steps/s | ~14s left | "
                     "meta_loss 0.125")

  def test_all_metrics_sorted_without_keys(self):
    logger = loggers.ConsoleLogger("update", clock=FakeClock())
    with self.assertLogs(absl_logging.get_absl_logger(), level="INFO") as logs:
      logger.write(1, {"z": 1, "a": 0.5})
    self.assertEqual(logs.records[0].getMessage(),
                     "update 1 | warming up | a 0.5 | z 1")


class RecordingLogger(loggers.Logger):
  """Keeps every write, for tests of whatever is handed a logger."""

  def __init__(self):
    self.writes = []
    self.closed = False

  def write(self, step, metrics):
    self.writes.append((step, dict(metrics)))

  def close(self):
    self.closed = True


class DispatcherTest(absltest.TestCase):

  def test_fans_out_writes_and_close(self):
    first, second = RecordingLogger(), RecordingLogger()
    dispatcher = loggers.Dispatcher([first, second])
    dispatcher.write(5, {"x": 1.0})
    dispatcher.close()
    for logger in (first, second):
      self.assertEqual(logger.writes, [(5, {"x": 1.0})])
      self.assertTrue(logger.closed)


if __name__ == "__main__":
  absltest.main()
