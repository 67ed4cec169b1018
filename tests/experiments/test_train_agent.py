"""launchers/train_agent.py: bad input fails early and clearly; a run writes curves."""

import csv
import os
import subprocess
import sys

from absl.testing import parameterized
import numpy as np
import pytest

from lpg_tf import errors
from lpg_tf.experiments import agent_runs
from lpg_tf.experiments import train_agent
from lpg_tf.rules import pretrained

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCHER = os.path.join(REPO, "launchers", "train_agent.py")


def run_launcher(*args):
  return subprocess.run([sys.executable, LAUNCHER, *args], capture_output=True,
                        text=True, timeout=300, cwd=REPO,
                        env=dict(os.environ, PYTHONPATH=REPO))


class ValidationTest(parameterized.TestCase):

  def test_unknown_env_lists_valid_choices(self):
    with self.assertRaisesRegex(errors.ConfigError, "tabular/dense.*chain/distractor"):
      train_agent.train_agents("tabular/huge", "a2c", self.create_tempdir().full_path,
                               steps=10, seeds=1)

  def test_unknown_rule_lists_valid_choices(self):
    with self.assertRaisesRegex(errors.ConfigError, "valid: a2c"):
      train_agent.train_agents("chain/short", "ppo", self.create_tempdir().full_path,
                               steps=10, seeds=1)

  @parameterized.parameters("steps", "seeds", "num_envs")
  def test_non_positive_counts_name_the_flag(self, flag):
    kwargs = {"steps": 10, "seeds": 1, "num_envs": 4, flag: 0}
    with self.assertRaisesRegex(errors.ConfigError, f"--{flag} must be a positive"):
      train_agent.train_agents("chain/short", "a2c", self.create_tempdir().full_path,
                               **kwargs)

  def test_action_space_only_for_grids(self):
    with self.assertRaisesRegex(errors.ConfigError, "grid worlds only"):
      train_agent.train_agents("chain/short", "a2c", self.create_tempdir().full_path,
                               steps=10, seeds=1, action_space="move")

  def test_existing_run_is_not_overwritten(self):
    workdir = self.create_tempdir()
    workdir.create_file("curve.csv", content="seed,env_steps\n0,1\n")
    with self.assertRaisesRegex(errors.ConfigError, "--overwrite"):
      train_agent.train_agents("chain/short", "a2c", workdir.full_path, steps=10, seeds=1)
    with open(os.path.join(workdir.full_path, "curve.csv")) as f:
      self.assertEqual(f.read(), "seed,env_steps\n0,1\n")

  @parameterized.parameters(("gamma", 1.5), ("gamma", 0.0), ("learning_rate", -0.1),
                            ("learning_rate", 0.0), ("kl_cost", -1.0),
                            ("gamma", float("nan")))
  def test_out_of_range_hyperparameters_name_the_flag(self, flag, value):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    with self.assertRaisesRegex(errors.ConfigError, f"--{flag} must be"):
      train_agent.train_agents("chain/short", "a2c", workdir, steps=10, seeds=1,
                               **{flag: value})
    self.assertFalse(os.path.exists(workdir))

  def test_overwrite_refuses_another_kind_of_run(self):
    workdir = self.create_tempdir()
    workdir.create_file("config.json", content="{}")
    events = workdir.create_file("tb/events.out", content="meta-training history")
    with self.assertRaisesRegex(errors.ConfigError, "config.json.*another kind of run"):
      agent_runs.check_workdir(workdir.full_path, overwrite=True)
    self.assertEqual(events.read_text(), "meta-training history")

  def test_overwrite_removes_only_its_own_outputs(self):
    workdir = self.create_tempdir()
    workdir.create_file("curve.csv", content="seed\n")
    workdir.create_file("tb/events.out", content="old run")
    agent_runs.check_workdir(workdir.full_path, overwrite=True)
    self.assertEqual(os.listdir(workdir.full_path), [])

  def test_launcher_reports_bad_flag_before_work(self):
    result = run_launcher("--env=nowhere", "--workdir=/tmp/unused_lpg_tf_dir")
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("Unknown --env 'nowhere'", result.stderr)
    self.assertFalse(os.path.exists("/tmp/unused_lpg_tf_dir"))


class ExportedRuleTest(parameterized.TestCase):

  def test_trains_with_an_exported_lpg_rule(self):
    from lpg_tf import export  # pylint: disable=g-import-not-at-top
    from lpg_tf.rules import lpg  # pylint: disable=g-import-not-at-top
    rule_dir = os.path.join(self.create_tempdir().full_path, "rule")
    export.export_rule(lpg.LPG(hidden_size=8, prediction_size=6), rule_dir)
    result = train_agent.train_agents(
        "tabular/sparse", rule_dir, os.path.join(self.create_tempdir().full_path, "run"),
        steps=2000, seeds=2, num_envs=8, log_every=4)
    self.assertEqual(result.final_returns.shape, (2,))
    self.assertEqual(result.env_steps, 2080)

  def test_a_directory_that_is_no_rule_is_refused(self):
    with self.assertRaises(errors.ConfigError):
      train_agent.train_agents("chain/short", self.create_tempdir().full_path,
                               self.create_tempdir().full_path, steps=10, seeds=1)


class PretrainedRuleTest(parameterized.TestCase):
  """--rule=pretrained: the shipped rule, at the alpha of its
  hyperparameters.json unless --learning_rate or --kl_cost is given."""

  @parameterized.parameters("chain/distractor", "minatar/breakout",
                            "atari/Breakout")
  def test_every_suite_takes_the_rule_and_its_alpha(self, env_name):
    workdir = self.create_tempdir()
    workdir.create_file("curve.csv", content="seed\n")  # Stops before training.
    expected = pretrained.hyperparameters(None, env_name)
    with self.assertLogs("absl", "INFO") as logs:
      with self.assertRaisesRegex(errors.ConfigError, "--overwrite"):
        train_agent.train_agents(env_name, "pretrained", workdir.full_path,
                                 steps=10, seeds=1)
    self.assertIn(
        f"Pretrained rule {pretrained.DEFAULT} on {env_name}: "
        f"alpha_lr={expected.learning_rate:g} (the rule's hyperparameters.json), "
        f"alpha_y={expected.kl_cost:g} (the rule's hyperparameters.json)",
        "\n".join(logs.output))

  def test_given_values_win(self):
    kl_cost = pretrained.hyperparameters(None, "tabular/dense").kl_cost
    self.assertEqual(agent_runs.rule_hyperparameters(
        "pretrained:lpg_cpu", "tabular/dense", 1.5, None), (1.5, kl_cost))
    self.assertEqual(agent_runs.rule_hyperparameters(
        "pretrained", "tabular/dense", 1.5, 0.25), (1.5, 0.25))

  def test_other_rules_keep_the_suites_defaults(self):
    for rule_name in ("a2c", "runs/cpu/rule"):
      self.assertEqual(agent_runs.rule_hyperparameters(
          rule_name, "tabular/dense", None, None), (None, None))

  def test_an_unknown_name_is_refused(self):
    with self.assertRaisesRegex(errors.ConfigError, "valid: lpg_cpu"):
      train_agent.train_agents("chain/short", "pretrained:nope",
                               self.create_tempdir().full_path, steps=10, seeds=1)


class MinAtarTest(parameterized.TestCase):
  """--env=minatar/<game>: checked names, curves for A2C and an exported rule."""

  @parameterized.parameters("minatar/pong", "minatar/Breakout", "minatar/")
  def test_unknown_game_lists_the_valid_ones(self, name):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    with self.assertRaisesRegex(
        errors.ConfigError, "valid: minatar/asterix, minatar/breakout, "
        "minatar/freeway, minatar/seaquest, minatar/space_invaders"):
      train_agent.train_agents(name, "a2c", workdir, steps=10, seeds=1)
    self.assertFalse(os.path.exists(workdir))

  @parameterized.parameters(("action_space", "move"), ("num_actors", 2))
  def test_flags_of_other_suites_are_refused(self, flag, value):
    with self.assertRaisesRegex(errors.ConfigError, f"--{flag} does not apply"):
      train_agent.train_agents("minatar/breakout", "a2c",
                               self.create_tempdir().full_path, steps=10,
                               seeds=1, **{flag: value})

  def test_toy_env_error_names_the_minatar_games(self):
    with self.assertRaisesRegex(errors.ConfigError,
                                r"minatar/<game> \(asterix, breakout"):
      train_agent.train_agents("tabular/huge", "a2c",
                               self.create_tempdir().full_path, steps=10, seeds=1)

  def test_a2c_writes_curves(self):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    result = train_agent.train_agents(
        "minatar/breakout", "a2c", workdir, steps=160, seeds=2, num_envs=4,
        unroll_length=20, log_every=1, jit_compile=False)
    with open(os.path.join(workdir, "curve.csv")) as f:
      rows = list(csv.DictReader(f))
    self.assertEqual([(r["seed"], r["env_steps"]) for r in rows],
                     [("0", "80"), ("1", "80"), ("0", "160"), ("1", "160")])
    self.assertTrue(os.path.exists(os.path.join(workdir, "curve.png")))
    self.assertTrue(os.listdir(os.path.join(workdir, "tb")))
    self.assertEqual(result.final_returns.shape, (2,))
    self.assertEqual(result.env_steps, 160)
    self.assertTrue(np.isfinite(result.random_return))
    self.assertGreater(result.env_steps_per_s, 0)

  def test_trains_with_an_exported_lpg_rule(self):
    from lpg_tf import export  # pylint: disable=g-import-not-at-top
    from lpg_tf.rules import lpg  # pylint: disable=g-import-not-at-top
    rule_dir = os.path.join(self.create_tempdir().full_path, "rule")
    export.export_rule(lpg.LPG(hidden_size=8, prediction_size=6), rule_dir)
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    result = train_agent.train_agents(
        "minatar/breakout", rule_dir, workdir, steps=160, seeds=2, num_envs=4,
        log_every=1, jit_compile=False)
    with open(os.path.join(workdir, "curve.csv")) as f:
      self.assertLen(list(csv.DictReader(f)), 4)
    self.assertEqual(result.final_returns.shape, (2,))
    self.assertTrue(np.isfinite(result.random_return))


class LauncherRunTest(parameterized.TestCase):

  @pytest.mark.slow
  def test_run_writes_curves(self):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    result = run_launcher("--env=chain/short", "--rule=a2c", f"--workdir={workdir}",
                          "--steps=20480", "--seeds=2", "--num_envs=32",
                          "--log_every=8")
    self.assertEqual(result.returncode, 0, result.stderr[-3000:])
    with open(os.path.join(workdir, "curve.csv")) as f:
      rows = list(csv.DictReader(f))
    self.assertEqual({r["seed"] for r in rows}, {"0", "1"})
    self.assertEqual(max(int(r["env_steps"]) for r in rows), 20480)
    self.assertTrue(all(np.isfinite(float(r["episode_return"])) for r in rows))
    self.assertGreater(os.path.getsize(os.path.join(workdir, "curve.png")), 10_000)
    self.assertTrue(os.listdir(os.path.join(workdir, "tb")))

  def test_default_logging_gives_a_readable_curve(self):
    """Without --log_every, a run logs about 100 points per seed."""
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    train_agent.train_agents("chain/short", "a2c", workdir, steps=8000, seeds=2,
                             num_envs=4)  # 100 updates of 80 steps.
    with open(os.path.join(workdir, "curve.csv")) as f:
      rows = list(csv.DictReader(f))
    self.assertEqual([int(r["env_steps"]) for r in rows if r["seed"] == "0"],
                     list(range(80, 8001, 80)))
