"""lpg_tf/experiments/compare.py: a tiny comparison end to end, its resumption,
and bad input refused before any work."""

import json
import os
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np

from lpg_tf import errors
from lpg_tf import rules
from lpg_tf.experiments import compare
from lpg_tf.experiments import rule_tuning

TINY = dict(seeds=2, tuning_seeds=1, max_steps=2000, num_envs=4,
            unroll_length=10, jit_compile=False)


class CompareTest(absltest.TestCase):

  def test_tiny_comparison_then_a_rerun_skips_it(self):
    workdir = os.path.join(self.create_tempdir().full_path, "cmp")
    results = compare.compare(["a2c"], ["chain/short"], workdir, **TINY)
    with open(os.path.join(workdir, compare.RESULTS_JSON)) as f:
      self.assertEqual(json.load(f), results)
    record = results["envs"]["chain/short"]
    self.assertEqual(record["steps"], 2000)
    self.assertIsNone(record["action_space"])
    self.assertTrue(np.isfinite(record["random_return"]))
    a2c = record["rules"]["a2c"]
    grid = rule_tuning.settings_grid("chain/short", "a2c")
    self.assertEqual(a2c["grid"], [list(s) for s in grid])
    self.assertEqual(np.shape(a2c["tuning_returns"]), (len(grid), 1))
    self.assertEqual(a2c["chosen"],
                     list(grid[rule_tuning.choose(a2c["tuning_returns"])]))
    self.assertLen(a2c["final_returns"], 2)
    self.assertAlmostEqual(a2c["mean"], np.mean(a2c["final_returns"]))
    self.assertEqual(a2c["curve"]["env_steps"][-1], 2000)
    self.assertEqual(np.shape(a2c["curve"]["returns"]),
                     (len(a2c["curve"]["env_steps"]), 2))
    with open(os.path.join(workdir, compare.RESULTS_MD)) as f:
      self.assertIn("| chain/short | 2,000 |", f.read())
    self.assertTrue(os.path.exists(
        os.path.join(workdir, "curves", "chain", "short.png")))

    with mock.patch.object(compare.evaluation, "Evaluator",
                           side_effect=AssertionError("retrained")):
      self.assertEqual(
          compare.compare(["a2c"], ["chain/short"], workdir, **TINY), results)
    with self.assertRaisesRegex(errors.ConfigError,
                                "other settings.*seeds: 2 there, 3 now"):
      compare.compare(["a2c"], ["chain/short"], workdir, **dict(TINY, seeds=3))


class FingerprintTest(absltest.TestCase):

  def test_stable_and_tells_rules_apart(self):
    shipped = compare.rule_fingerprint(rules.make("pretrained"))
    self.assertEqual(shipped, compare.rule_fingerprint(rules.make("pretrained")))
    self.assertNotEqual(shipped, compare.rule_fingerprint(rules.make("a2c")))


class BadInputTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("unknown_env", dict(env_names=["chain/shorter"]),
       "Unknown environment 'chain/shorter'.*valid: all, tabular/dense"),
      ("unknown_minatar_game", dict(env_names=["minatar/pong"]),
       "Unknown environment 'minatar/pong'"),
      ("repeated_env", dict(env_names=["chain/short", "chain/short"]),
       "twice"),
      ("unknown_rule", dict(rule_names=["a2c", "no/such/rule"]),
       "Unknown --rule 'no/such/rule'"),
      ("repeated_rule", dict(rule_names=["a2c", "a2c"]), "once each"),
      ("seeds", dict(seeds=0), "--seeds must be positive"),
      ("tuning_seeds", dict(tuning_seeds=-1), "--tuning_seeds must be positive"),
      ("lifetime_scale", dict(lifetime_scale=0.0), "--lifetime_scale"),
      ("max_steps", dict(max_steps=0), "--max_steps must be positive"),
      ("minatar_steps", dict(minatar_steps=-5), "--minatar_steps"),
      ("seed", dict(seed=7919), r"--seed must be in \[0, 7919\)"),
      ("too_short", dict(max_steps=100), "too short for chain/short"))
  def test_refused_before_any_work(self, overrides, message):
    workdir = os.path.join(self.create_tempdir().full_path, "cmp")
    arguments = dict(dict(rule_names=["a2c"], env_names=["chain/short"],
                          workdir=workdir), **overrides)
    with self.assertRaisesRegex(errors.ConfigError, message):
      compare.compare(**arguments)
    self.assertFalse(os.path.exists(workdir))

  def test_a_directory_of_another_run_is_refused(self):
    workdir = self.create_tempdir()
    workdir.create_file("config.json", "{}")
    with self.assertRaisesRegex(errors.ConfigError, r"\['config.json'\].*does "
                                "not write"):
      compare.compare(["a2c"], ["chain/short"], workdir.full_path)

  def test_unreadable_results_are_refused(self):
    workdir = self.create_tempdir()
    workdir.create_file(compare.RESULTS_JSON, "{not json")
    with self.assertRaisesRegex(errors.ConfigError, "not a comparison"):
      compare.compare(["a2c"], ["chain/short"], workdir.full_path)

  def test_a_rule_whose_targets_changed_is_refused(self):
    workdir = self.create_tempdir()
    settings = {"rules": ["a2c"], "rule_fingerprints": {"a2c": "0" * 16}}
    workdir.create_file(compare.RESULTS_JSON,
                        json.dumps({"settings": settings, "envs": {}}))
    with self.assertRaisesRegex(errors.ConfigError, "rule_fingerprints"):
      compare.compare(["a2c"], ["chain/short"], workdir.full_path)

  def test_all_is_every_environment(self):
    self.assertLen(compare.resolve_envs(["all"]), 20)
    self.assertEqual(compare.resolve_envs([" chain/short", "minatar/freeway"]),
                     ["chain/short", "minatar/freeway"])


if __name__ == "__main__":
  absltest.main()
