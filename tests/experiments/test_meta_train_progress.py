"""meta_train.Progress: the logging window of a meta-training run."""

import types
from unittest import mock

from absl import logging as absl_logging
from absl.testing import absltest
import numpy as np

from lpg_tf import loggers
from lpg_tf.experiments import meta_train
from lpg_tf.meta import bandit
from tests.test_loggers import RecordingLogger


def fake_trainer():
  bandits = bandit.BanditSet({"chain/short": ([10.0, 40.0], [0.5]),
                              "tabular/dense": ([20.0], [0.1, 1.0])}, seed=0)
  bandits.update("chain/short", 1, 0.5)
  return types.SimpleNamespace(population=types.SimpleNamespace(bandits=bandits),
                               inner_env_steps_per_step=100,
                               scoring_env_steps_per_step=10)


def step_numbers(loss, chain_return, ended, entropy=(1.0, 2.0),
                 spread=(0.1, 0.3)):
  numbers = {"meta_loss": loss, "ended_lifetimes": ended,
             "chain/short/prediction_entropy": entropy[0],
             "tabular/dense/prediction_entropy": entropy[1],
             "chain/short/y_hat_spread": spread[0],
             "tabular/dense/y_hat_spread": spread[1]}
  if chain_return is not None:
    numbers["chain/short/episode_return"] = chain_return
  return numbers


class ProgressTest(absltest.TestCase):

  def test_window_averages_returns_and_sums_ended_lifetimes(self):
    logger = RecordingLogger()
    progress = meta_train.Progress(logger, fake_trainer())
    progress.add(step_numbers(1.0, 0.2, 1.0))
    self.assertEqual(progress.log(1)["ended_lifetimes"], 1.0)
    progress.add(step_numbers(2.0, 0.4, 2.0))
    progress.add(step_numbers(4.0, None, 0.0))  # no chain episode ended
    progress.add(step_numbers(6.0, 0.9, 3.0, entropy=(3.0, 4.0),
                              spread=(0.5, 0.7)))
    numbers = progress.log(4)
    self.assertEqual(numbers["ended_lifetimes"], 5.0)
    self.assertEqual(numbers["meta_loss"], 4.0)
    self.assertAlmostEqual(numbers["chain/short/episode_return"], (0.4 + 0.9) / 2)
    # H(y): per environment over the window (5/3 and 8/3), then over environments.
    self.assertAlmostEqual(numbers["prediction_entropy"], 13 / 6)
    # y_hat's spread likewise: (0.7/3 + 1.3/3) / 2.
    self.assertAlmostEqual(numbers["y_hat_spread"], 1 / 3)
    self.assertGreater(numbers["meta_steps_per_s"], 0)
    self.assertAlmostEqual(numbers["inner_env_steps_per_s"],
                           100 * numbers["meta_steps_per_s"])
    self.assertNotIn("meta_steps_per_s", logger.writes[0][1])
    self.assertEqual([step for step, _ in logger.writes], [1, 4])

  def test_rates_leave_out_the_time_the_clock_excludes(self):
    clock = meta_train.TrainingClock()
    logger = RecordingLogger()
    with mock.patch.object(meta_train.time, "monotonic", side_effect=[
        100.0, 110.0, 150.0]):
      progress = meta_train.Progress(logger, fake_trainer(), clock)
      progress.add(step_numbers(1.0, 0.2, 0.0))
      progress.log(1)  # at 100 s
      clock.exclude(30.0)  # a validation took 30 s
      self.assertEqual(clock(), 80.0)  # at 110 s
      progress.add(step_numbers(1.0, 0.2, 0.0))
      numbers = progress.log(5)  # at 150 s: 4 meta-steps in 50 - 30 s
    self.assertAlmostEqual(numbers["meta_steps_per_s"], 0.2)

  def test_bandit_arms_have_readable_scalars(self):
    logger = RecordingLogger()
    trainer = fake_trainer()
    progress = meta_train.Progress(logger, trainer)
    progress.add(step_numbers(1.0, 0.2, 0.0))
    progress.log(1)
    written = logger.writes[0][1]
    bandit_keys = sorted(k for k in written if k.startswith("bandit/"))
    self.assertEqual(bandit_keys, [
        "bandit/chain/short/n[lr=10,y=0.5]", "bandit/chain/short/n[lr=40,y=0.5]",
        "bandit/chain/short/p[lr=10,y=0.5]", "bandit/chain/short/p[lr=40,y=0.5]",
        "bandit/tabular/dense/n[lr=20,y=0.1]", "bandit/tabular/dense/n[lr=20,y=1]",
        "bandit/tabular/dense/p[lr=20,y=0.1]", "bandit/tabular/dense/p[lr=20,y=1]"])
    self.assertEqual(written["bandit/chain/short/n[lr=40,y=0.5]"], 1.0)
    np.testing.assert_allclose(
        [written["bandit/chain/short/p[lr=10,y=0.5]"],
         written["bandit/chain/short/p[lr=40,y=0.5]"]],
        trainer.population.bandits.bandits["chain/short"].probabilities())

  def test_console_line_and_summary(self):
    console = loggers.ConsoleLogger("meta-step", total=10, unit="meta-steps",
                                    keys=meta_train.CONSOLE_KEYS)
    progress = meta_train.Progress(console, fake_trainer())
    with self.assertLogs(absl_logging.get_absl_logger(), level="INFO") as logs:
      progress.add(step_numbers(0.5, 0.25, 2.0))
      progress.log(1)
      progress.add(step_numbers(0.5, 0.75, 1.0))
      progress.log(2)
      progress.close(2)
    lines = [record.getMessage() for record in logs.records]
    self.assertLen(lines, 3)
    self.assertEqual(lines[0], "meta-step 1/10 | warming up | meta_loss 0.5 | "
                     "chain/short/episode_return 0.25 | prediction_entropy 1.5 "
                     "| y_hat_spread 0.2 | ended_lifetimes 2")
    self.assertRegex(lines[1], r"^meta-step 2/10 \| [0-9.e+]+ meta-steps/s \| "
                     r"~[0-9]+s left \| meta_loss 0.5 \| "
                     r"chain/short/episode_return 0.75 \| .*ended_lifetimes 1$")
    self.assertNotIn("bandit", lines[1])
    self.assertRegex(lines[2], r"Meta-training done at meta-step 2.*3 lifetimes "
                     r"ended.*chain/short 0.75.*H\(y\) 1.5, y_hat spread 0.2")


if __name__ == "__main__":
  absltest.main()
