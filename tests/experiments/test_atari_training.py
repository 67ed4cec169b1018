"""Atari meta-testing runs (lpg_tf/experiments/atari_training.py): bad input fails
before any work; tiny runs through the Reverb pipeline write the curves."""

import csv
import multiprocessing
import os
import subprocess
import sys

from absl.testing import parameterized
import numpy as np
import pytest

from lpg_tf import errors
from lpg_tf import export
from lpg_tf.experiments import atari_training
from lpg_tf.experiments import train_agent
from lpg_tf.rules import lpg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Episodes of 25 agent steps, so a run of a few hundred frames sees some end.
SHORT_EPISODE_FRAMES = 100


class ValidationTest(parameterized.TestCase):

  def _unused_workdir(self):
    return os.path.join(self.create_tempdir().full_path, "run")

  def test_unknown_game_lists_valid_names(self):
    workdir = self._unused_workdir()
    with self.assertRaisesRegex(errors.ConfigError,
                                "Unknown Atari game 'atari/Pongg'.*atari/Pong"):
      atari_training.train_atari("atari/Pongg", "a2c", workdir, steps=10,
                                 seeds=1)
    self.assertFalse(os.path.exists(workdir))

  @parameterized.parameters(("steps", 0), ("seeds", 0), ("num_actors", 0),
                            ("num_envs", -2), ("unroll_length", 0))
  def test_bad_counts_name_the_flag(self, flag, value):
    kwargs = {"steps": 10, "seeds": 1, "num_actors": 1, "num_envs": 2,
              flag: value}
    workdir = self._unused_workdir()
    with self.assertRaisesRegex(errors.ConfigError, f"--{flag} must be"):
      atari_training.train_atari("atari/Pong", "a2c", workdir, **kwargs)
    self.assertFalse(os.path.exists(workdir))

  def test_envs_must_split_over_actors(self):
    with self.assertRaisesRegex(errors.ConfigError, "multiple of num_actors"):
      atari_training.train_atari("atari/Pong", "a2c", self._unused_workdir(),
                                 steps=10, seeds=1, num_actors=4, num_envs=30)

  def test_unknown_rule_is_refused(self):
    with self.assertRaisesRegex(errors.ConfigError, "valid: a2c"):
      atari_training.train_atari("atari/Pong", "ppo", self._unused_workdir(),
                                 steps=10, seeds=1)

  def test_existing_run_is_not_overwritten(self):
    workdir = self.create_tempdir()
    workdir.create_file("curve.csv", content="seed\n0\n")
    with self.assertRaisesRegex(errors.ConfigError, "--overwrite"):
      atari_training.train_atari("atari/Pong", "a2c", workdir.full_path,
                                 steps=10, seeds=1)

  def test_exported_rules_get_the_eq7_baseline(self):
    rule_dir = os.path.join(self.create_tempdir().full_path, "rule")
    export.export_rule(lpg.LPG(hidden_size=8, prediction_size=6,
                               use_baseline=False), rule_dir)
    rule = atari_training.atari_rule(rule_dir)
    self.assertTrue(rule.loss_config.subtract_baseline)
    self.assertEqual(rule.prediction_size, 6)

  def test_the_pretrained_rule_gets_the_eq7_baseline(self):
    rule = atari_training.atari_rule("pretrained")
    self.assertTrue(rule.loss_config.subtract_baseline)
    self.assertEqual(rule.prediction_size, 30)

  def test_train_agents_dispatches_atari_names(self):
    with self.assertRaisesRegex(errors.ConfigError, "Unknown Atari game"):
      train_agent.train_agents("atari/NoSuchGame", "a2c",
                               self._unused_workdir(), steps=10, seeds=1)

  def test_launcher_reports_an_unknown_game(self):
    result = subprocess.run(
        [sys.executable, os.path.join(REPO, "launchers", "train_agent.py"),
         "--env=atari/NoSuchGame", "--workdir=/tmp/unused_lpg_tf_atari_dir"],
        capture_output=True, text=True, timeout=300, cwd=REPO, check=False,
        env=dict(os.environ, PYTHONPATH=REPO))
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("Unknown Atari game", result.stderr)
    self.assertFalse(os.path.exists("/tmp/unused_lpg_tf_atari_dir"))


class RunTest(parameterized.TestCase):

  @pytest.mark.slow
  def test_a2c_run_writes_curves_for_every_seed(self):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    result = atari_training.train_atari(
        "atari/Pong", "a2c", workdir, steps=160, seeds=2, num_actors=2,
        num_envs=4, log_every=1, max_episode_frames=SHORT_EPISODE_FRAMES,
        sample_timeout_s=120)
    self.assertEqual(result.env_steps, 160)  # 2 updates of T=20 x 4 envs.
    self.assertEqual(result.frames, 640)
    self.assertEqual(result.final_returns.shape, (2,))
    self.assertEqual(result.final_human_normalised.shape, (2,))
    self.assertGreater(result.frames_per_s, 0)
    with open(os.path.join(workdir, "curve.csv")) as f:
      rows = list(csv.DictReader(f))
    self.assertEqual([(r["seed"], r["env_steps"], r["frames"]) for r in rows],
                     [("0", "80", "320"), ("0", "160", "640"),
                      ("1", "80", "320"), ("1", "160", "640")])
    ended = [r for r in rows if int(r["episodes"]) > 0]
    self.assertNotEmpty(ended)
    for row in ended:
      self.assertAlmostEqual(
          float(row["human_normalised"]),
          (float(row["episode_return"]) + 20.7) / (14.6 + 20.7), places=5)
    self.assertGreater(os.path.getsize(os.path.join(workdir, "curve.png")), 0)
    self.assertNotEmpty(os.listdir(os.path.join(workdir, "tb")))
    self.assertEmpty(multiprocessing.active_children())

  def test_exported_lpg_rule_trains_an_atari_agent(self):
    rule_dir = os.path.join(self.create_tempdir().full_path, "rule")
    export.export_rule(lpg.LPG(hidden_size=8, prediction_size=6), rule_dir)
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    result = atari_training.train_atari(
        "atari/Breakout", rule_dir, workdir, steps=80, seeds=1, num_actors=1,
        num_envs=2, max_episode_frames=SHORT_EPISODE_FRAMES,
        sample_timeout_s=120)
    self.assertEqual(result.env_steps, 80)  # 2 updates: episodes end at 25.
    self.assertTrue(np.isfinite(result.final_returns).all())
    self.assertTrue(os.path.exists(os.path.join(workdir, "curve.png")))


if __name__ == "__main__":
  from absl.testing import absltest  # pylint: disable=g-import-not-at-top
  absltest.main()
