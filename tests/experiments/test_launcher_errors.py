"""The launchers on bad input: one line on stderr, nothing written, no traceback;
`--help` prints only help."""

import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
META_TRAIN = os.path.join(REPO, "launchers", "tpu_meta_train.py")
TRAIN_AGENT = os.path.join(REPO, "launchers", "train_agent.py")
PBT = os.path.join(REPO, "launchers", "pbt_meta_train.py")
BENCHMARK = os.path.join(REPO, "launchers", "benchmark.py")


def run(launcher, *args):
  env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
  env["PYTHONPATH"] = REPO
  return subprocess.run([sys.executable, launcher, *args], capture_output=True,
                        text=True, timeout=300, cwd=REPO, env=env, check=False)


class LauncherErrorsTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("unknown_key", ["--config.foo=1"],
       "unknown config key in --config.foo: the config has no field 'foo'"),
      ("unknown_nested_key", ["--config.rule.bar=2"],
       "unknown config key in --config.rule.bar"),
      ("missing_config_file", ["--config=/nonexistent/lpg.py"],
       "cannot load /nonexistent/lpg.py"),
      ("negative_learning_rate", ["--config.meta.learning_rate=-0.001"],
       "config.meta.learning_rate must be a finite number > 0, got -0.001"),
      ("advantage_lambda", ["--config.meta.advantage_lambda=1.5"],
       "config.meta.advantage_lambda must be a number in \\[0, 1\\]"))
  def test_bad_config_is_one_line_and_writes_nothing(self, flags, message):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    result = run(META_TRAIN, f"--workdir={workdir}", *flags)
    self.assertEqual(result.returncode, 1, result.stderr)
    self.assertLen(result.stderr.strip().splitlines(), 1, result.stderr)
    self.assertRegex(result.stderr, message)
    self.assertFalse(os.path.exists(workdir))

  def test_a_workdir_that_is_a_file(self):
    path = self.create_tempfile("run").full_path
    result = run(META_TRAIN, f"--workdir={path}")
    self.assertEqual(result.returncode, 1, result.stderr)
    self.assertEqual(result.stderr.strip(),
                     f"Error: --workdir {path} exists and is not a directory")

  def test_help_prints_only_help(self):
    result = run(META_TRAIN, "--help")
    self.assertIn("--workdir", result.stdout)
    self.assertEqual(result.stderr, "")

  def test_pbt_refuses_one_member_before_ray_starts(self):
    # The other refusals: tests/experiments/test_pbt_meta_train.py, in process.
    workdir = os.path.join(self.create_tempdir().full_path, "pbt")
    result = run(PBT, f"--workdir={workdir}", "--members=1")
    self.assertEqual(result.returncode, 1, result.stderr)
    self.assertEqual(result.stderr.strip(), "Error: Population-based training "
                     "needs at least 2 members (--members), got 1")
    self.assertFalse(os.path.exists(workdir))

  def test_train_agent_gamma_out_of_range(self):
    workdir = os.path.join(self.create_tempdir().full_path, "run")
    result = run(TRAIN_AGENT, "--env=chain/short", f"--workdir={workdir}", "--gamma=1.5")
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("--gamma must be in (0, 1], got 1.5", result.stderr)
    self.assertNotIn("Traceback", result.stderr)
    self.assertFalse(os.path.exists(workdir))

  def test_benchmark_sweep_refuses_values_that_are_not_positive_integers(self):
    result = run(BENCHMARK, "--config=configs/bench_tabular.py",
                 "--sweep_lifetimes_per_env=8,x")
    self.assertNotEqual(result.returncode, 0)
    self.assertIn("--sweep_lifetimes_per_env takes positive integers separated "
                  "by commas, got '8,x'", result.stderr)
    self.assertNotIn("Traceback", result.stderr)


if __name__ == "__main__":
  absltest.main()
