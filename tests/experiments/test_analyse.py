"""lpg_tf/experiments/analyse.py and launchers/analyse.py: each figure end to
end on a tiny budget, and bad input refused before any work."""

import json
import os
import subprocess
import sys

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import pytest

from lpg_tf import errors
from lpg_tf.experiments import ablations
from lpg_tf.experiments import cli
from lpg_tf.experiments import analyse
from tests.meta import test_trainer

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAUNCHER = os.path.join(REPO, "launchers", "analyse.py")
TINY_PROBE = dict(num_updates=2, num_envs=4, jit_compile=False)


def written(workdir, figure):
  png, json_path = analyse.output_paths(workdir, figure)
  assert os.path.getsize(png) > 10_000, png
  with open(json_path) as f:
    return json.load(f)


class AnalyseTest(parameterized.TestCase):

  @pytest.mark.slow
  def test_figure_4_end_to_end(self):
    """The shipped rule's y on the probe task: the numbers behind the maps."""
    workdir = self.create_tempdir().full_path
    analyse.analyse(4, workdir, **dict(TINY_PROBE, num_updates=20))
    content = written(workdir, 4)
    self.assertEqual(content["figure"], 4)
    numbers = content["numbers"]
    self.assertEqual(numbers["env"], "probe/unseen")
    self.assertEqual(numbers["prediction_size"], 30)
    self.assertEqual(numbers["env_steps"], 20 * 4 * 20)
    self.assertEqual(content["settings"]["learning_rate"], 80.0)

  @pytest.mark.slow
  def test_figures_5_and_6_end_to_end(self):
    workdir = self.create_tempdir().full_path
    probe = dict(TINY_PROBE, num_updates=20)
    analyse.analyse(5, workdir, instances=2, held_out_instances=1,
                    record_every=10, **probe)
    numbers = written(workdir, 5)["numbers"]
    self.assertEqual(numbers["recorded_updates"], [0, 10, 20])
    self.assertEqual(numbers["held_out_instances"], 1)
    analyse.analyse(6, workdir, instances=2, record_every=10, **probe)
    numbers = written(workdir, 6)["numbers"]
    self.assertLen(numbers["rule"]["mean"], 3)

  @pytest.mark.slow
  def test_figure_3_end_to_end(self):
    """Two rules on one chain through a comparison kept in the work
    directory; a second call continues it instead of starting again."""
    workdir = self.create_tempdir().full_path
    arguments = dict(lpg_v_rule="", envs=["chain/short"], seeds=2,
                     tuning_seeds=1, lifetime_scale=0.01, num_envs=4,
                     jit_compile=False)
    analyse.analyse(3, workdir, **arguments)
    numbers = written(workdir, 3)["numbers"]["chain/short"]
    self.assertEqual(sorted(numbers["rules"]), ["A2C", "LPG (pretrained)"])
    self.assertLen(numbers["rules"]["A2C"]["final_returns"], 2)
    comparison = os.path.join(workdir, analyse.COMPARISON_DIR, "results.json")
    before = os.path.getmtime(comparison)
    analyse.analyse(3, workdir, overwrite=True, **arguments)
    with open(comparison) as f:
      self.assertIn("chain/short", json.load(f)["envs"])
    self.assertGreaterEqual(os.path.getmtime(comparison), before)

  @pytest.mark.slow
  def test_figure_7_end_to_end(self):
    """LPG and LPG-V for two meta-steps each; run again, the finished runs
    are skipped and the figure is drawn from them."""
    workdir = self.create_tempdir().full_path
    config = test_trainer.tiny_config(**test_trainer.ONE_GROUP,
                                      num_meta_steps=2)
    analyse.analyse(7, workdir, config=config, variants=["lpg", "lpg_v"],
                    seeds=1)
    numbers = written(workdir, 7)["numbers"]
    self.assertEqual(sorted(numbers), ["LPG", "LPG-V"])
    for name in ("lpg", "lpg_v"):
      self.assertTrue(os.path.isdir(os.path.join(
          ablations.run_directory(workdir, name, 0), "rule")))
    analyse.analyse(7, workdir, config=config, variants=["lpg", "lpg_v"],
                    seeds=1, overwrite=True)

  @parameterized.named_parameters(
      ("unknown_figure", dict(figure=8), "--figure must be one of 3, 4, 5"),
      ("foreign_flag", dict(figure=4, instances=3),
       "--instances do.* not apply to figure 4"),
      ("zero_updates", dict(figure=5, num_updates=0),
       "--num_updates must be a positive integer"),
      ("bad_scale", dict(figure=3, lifetime_scale=0.0),
       "--lifetime_scale must be > 0"),
      ("no_config", dict(figure=7), "Figure 7 needs a meta-training --config"),
      ("probe_flag", dict(figure=3, learning_rate=1.0),
       "figure 3 does not use them"),
      ("unknown_variant", dict(figure=7, variants=["lpg", "no_bandit"],
                               config=test_trainer.tiny_config()),
       "Unknown variant 'no_bandit'"),
      ("unknown_env", dict(figure=3, envs=["chain/nowhere"]),
       "Unknown environment 'chain/nowhere'"),
      ("not_lpg", dict(figure=6, rule="a2c"), "--rule 'a2c' is not a directory"))
  def test_bad_input_is_refused_before_any_work(self, arguments, message):
    workdir = os.path.join(self.create_tempdir().full_path, "analysis")
    figure = arguments.pop("figure")
    with self.assertRaisesRegex(errors.ConfigError, message):
      analyse.analyse(figure, workdir, **arguments)
    self.assertFalse(os.path.exists(workdir))

  def test_an_existing_figure_is_kept(self):
    workdir = self.create_tempdir()
    workdir.create_file("figure_5.json", "{}")
    with self.assertRaisesRegex(errors.ConfigError, "--overwrite"):
      analyse.analyse(5, workdir.full_path)
    with open(os.path.join(workdir.full_path, "figure_5.json")) as f:
      self.assertEqual(f.read(), "{}")

  def test_variant_configs_change_only_their_keys(self):
    base = test_trainer.tiny_config()
    for name, variant in ablations.VARIANTS.items():
      config = ablations.variant_config(base, name, seed_index=1)
      self.assertEqual(config.seed, base.seed + 1)
      for key, value in variant.overrides.items():
        self.assertEqual(cli.config_value(config, key), value)
      flat, flat_base = config.to_dict(), base.to_dict()
      changed = {f"{section}.{key}" for section in flat_base
                 if isinstance(flat_base[section], dict)
                 for key in flat_base[section]
                 if flat[section][key] != flat_base[section][key]}
      self.assertEqual(changed, {k for k, v in variant.overrides.items()
                                 if cli.config_value(base, k) != v})
    np.testing.assert_equal(base.seed, test_trainer.tiny_config().seed)

  def test_launcher_error_is_one_line(self):
    workdir = os.path.join(self.create_tempdir().full_path, "analysis")
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = REPO
    result = subprocess.run(
        [sys.executable, LAUNCHER, "--figure=9", f"--workdir={workdir}"],
        capture_output=True, text=True, timeout=300, cwd=REPO, env=env,
        check=False)
    self.assertEqual(result.returncode, 1, result.stderr)
    self.assertLen(result.stderr.strip().splitlines(), 1, result.stderr)
    self.assertStartsWith(result.stderr, "Error: --figure must be one of")
    self.assertFalse(os.path.exists(workdir))


if __name__ == "__main__":
  absltest.main()
