"""lpg_tf/experiments/probe_y.py and launchers/probe_y.py: the probe of an
exported rule's y, and its one-line errors on bad input."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import pytest

from lpg_tf import errors
from lpg_tf import export
from lpg_tf.experiments import probe_y
from lpg_tf.rules import lpg

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCHER = os.path.join(REPO, "launchers", "probe_y.py")


def run_launcher(*args):
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  env["PYTHONPATH"] = REPO
  return subprocess.run([sys.executable, LAUNCHER, *args], capture_output=True,
                        text=True, timeout=300, cwd=REPO, env=env, check=False)


class ProbeYTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    # The argument checks come before the rule is loaded: any path will do
    # where they fail first.
    self.rule_dir = self.create_tempdir().full_path

  @pytest.mark.slow
  def test_writes_probe_json_and_png(self):
    """An exported rule through the whole command (about 15 s of CPU: the
    export, three traced learners, value iteration; tests/analysis/
    test_y_probe.py covers the probe itself)."""
    rule_dir = os.path.join(self.create_tempdir().full_path, "rule")
    export.export_rule(lpg.LPG(hidden_size=8, prediction_size=6), rule_dir)
    workdir = os.path.join(self.create_tempdir().full_path, "probe")
    result = probe_y.probe_y(rule_dir, "tabular/sparse", workdir,
                             num_updates=2, num_envs=4, unroll_length=5,
                             min_visits=1, jit_compile=False)
    self.assertEqual(sorted(os.listdir(workdir)), sorted(probe_y.OUTPUTS))
    with open(os.path.join(workdir, probe_y.JSON_NAME)) as f:
      written = json.load(f)
    self.assertEqual(written["env"], "tabular/sparse")
    self.assertEqual(written["prediction_size"], 6)
    self.assertEqual(written["env_steps"], 2 * 4 * 5)
    self.assertLen(written["instance"], 2)  # A.1.2: two objects
    for policy, probed in zip(written["policies"], result.policies):
      self.assertEqual(policy["rule"]["entropy"], probed.rule.entropy)
      self.assertTrue(np.isfinite(policy["untrained_rule"]["entropy"]))
    self.assertGreater(os.path.getsize(os.path.join(workdir, "probe.png")),
                       10_000)

  @parameterized.named_parameters(
      ("unknown_env", dict(env_name="tabular/nowhere"),
       "Unknown --env 'tabular/nowhere'"),
      ("random_grid", dict(env_name="random/small"),
       "--env random/small is not a tabular grid world"),
      ("chain", dict(env_name="chain/short"),
       "--env chain/short is not a tabular grid world"),
      ("missing_rule", dict(rule_path="/nonexistent/rule"),
       "--rule '/nonexistent/rule' is not a directory"),
      ("gamma_one", dict(gamma=1.0), r"--gamma must be in \(0, 1\)"),
      ("no_updates", dict(num_updates=0), "--num_updates must be a positive"),
      ("zero_kl_cost", dict(kl_cost=0.0), "--kl_cost must be > 0"))
  def test_bad_input_is_refused_before_any_work(self, overrides, message):
    workdir = os.path.join(self.create_tempdir().full_path, "probe")
    arguments = dict(rule_path=self.rule_dir, env_name="tabular/dense",
                     workdir=workdir)
    arguments.update(overrides)
    with self.assertRaisesRegex(errors.ConfigError, message):
      probe_y.probe_y(**arguments)
    self.assertFalse(os.path.exists(workdir))

  def test_a_directory_that_is_no_rule_is_refused(self):
    with self.assertRaisesRegex(errors.ConfigError, "not an lpg_tf rule"):
      probe_y.probe_y(self.create_tempdir().full_path, "tabular/dense",
                      self.create_tempdir().full_path)

  def test_loads_the_pretrained_rule(self):
    rule, untrained = probe_y.load_rules("pretrained", seed=0)
    self.assertEqual(rule.prediction_size, 30)
    self.assertEqual(untrained.hidden_size, 32)

  def test_an_existing_probe_is_kept(self):
    workdir = self.create_tempdir()
    workdir.create_file(probe_y.JSON_NAME, "{}")
    with self.assertRaisesRegex(errors.ConfigError, "--overwrite"):
      probe_y.probe_y(self.rule_dir, "tabular/dense", workdir.full_path)
    with open(os.path.join(workdir.full_path, probe_y.JSON_NAME)) as f:
      self.assertEqual(f.read(), "{}")

  def test_launcher_error_is_one_line(self):
    workdir = os.path.join(self.create_tempdir().full_path, "probe")
    result = run_launcher("--env=random/small", f"--rule={self.rule_dir}",
                          f"--workdir={workdir}")
    self.assertEqual(result.returncode, 1, result.stderr)
    self.assertLen(result.stderr.strip().splitlines(), 1, result.stderr)
    self.assertStartsWith(result.stderr,
                          "Error: --env random/small is not a tabular grid")
    self.assertFalse(os.path.exists(workdir))


if __name__ == "__main__":
  absltest.main()
