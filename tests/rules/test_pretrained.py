"""The rules shipped in the package: names, loading, model card, hyperparameters
and the package data that installs them."""

import ast
import glob
import json
import os
import re
from unittest import mock

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf import envs
from lpg_tf import errors
from lpg_tf import rules
from lpg_tf import types
from lpg_tf.envs import minatar
from lpg_tf.rules import lpg_v
from lpg_tf.rules import pretrained
from lpg_tf.rules import saved_model

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PACKAGE = os.path.dirname(os.path.abspath(pretrained.__file__))
# Every kind of environment lpg_tf trains agents on, as train_agent names them.
TRAINABLE_ENVS = (envs.NAMES + tuple(minatar.PREFIX + g for g in minatar.GAMES)
                  + ("atari/Breakout",))


def package_data() -> dict:
  """setup.py's PACKAGE_DATA, read without running setup.py."""
  with open(os.path.join(REPO, "setup.py"), encoding="utf-8") as f:
    tree = ast.parse(f.read())
  for node in tree.body:
    if (isinstance(node, ast.Assign) and
        any(getattr(t, "id", None) == "PACKAGE_DATA" for t in node.targets)):
      return ast.literal_eval(node.value)
  raise AssertionError("setup.py has no PACKAGE_DATA")


def hyperparameters_file(name: str) -> dict:
  with open(os.path.join(pretrained.path(name), pretrained.HYPERPARAMETERS_FILE),
            encoding="utf-8") as f:
    return json.load(f)


def trajectory(t: int, b: int, m: int) -> types.RuleInputs:
  """A random trajectory with an episode ending in it."""
  rng = np.random.default_rng(0)
  discount = np.ones([t, b], np.float32)
  discount[2, 0] = 0.0
  y = rng.dirichlet(np.ones(m), size=(t + 1, b)).astype(np.float32)
  return types.RuleInputs(
      reward=tf.constant(rng.normal(size=(t, b)), tf.float32),
      discount=tf.constant(discount), gamma=tf.fill([t, b], 0.99),
      pi_a=tf.constant(rng.uniform(0.1, 1.0, size=(t, b)), tf.float32),
      y=tf.constant(y[:-1]), y_next=tf.constant(y[1:]), baseline=None)


class NamesTest(parameterized.TestCase):

  @parameterized.parameters("pretrained", "pretrained:lpg_cpu")
  def test_make_loads_the_shipped_rule(self, rule_name):
    rule = rules.make(rule_name)
    self.assertIsInstance(rule, saved_model.SavedModelRule)
    self.assertEqual(rule.prediction_size, 30)

  def test_default_is_one_of_the_names(self):
    self.assertIn(pretrained.DEFAULT, pretrained.NAMES)
    self.assertEqual(pretrained.parse("pretrained"), pretrained.DEFAULT)
    self.assertEqual(pretrained.path(), pretrained.path(pretrained.DEFAULT))

  @parameterized.parameters("pretrained:nope", "pretrained:")
  def test_an_unknown_name_lists_the_valid_ones(self, rule_name):
    with self.assertRaisesRegex(errors.ConfigError,
                                "Unknown pretrained rule .*valid: lpg_cpu"):
      rules.make(rule_name)

  def test_other_rules_are_not_shipped_ones(self):
    for rule_name in ("a2c", "runs/cpu/rule", "pretrained_rule", "./pretrained"):
      self.assertIsNone(pretrained.parse(rule_name))
      self.assertEqual(pretrained.export_directory(rule_name), rule_name)
    self.assertEqual(pretrained.export_directory("pretrained:lpg_cpu"),
                     os.path.join(PACKAGE, "lpg_cpu"))

  def test_an_unknown_rule_names_the_shipped_ones(self):
    with self.assertRaisesRegex(errors.ConfigError, "valid: a2c, pretrained"):
      rules.make("ppo")


class ShippedRuleTest(parameterized.TestCase):

  def test_load_gives_finite_targets_of_the_right_shapes(self):
    rule = pretrained.load()
    outputs = rule(trajectory(t=6, b=3, m=rule.prediction_size))
    self.assertEqual(outputs.pi_hat.shape, (6, 3))
    self.assertEqual(outputs.y_hat.shape, (6, 3, 30))
    self.assertTrue(np.all(np.isfinite(outputs.pi_hat.numpy())))
    np.testing.assert_allclose(outputs.y_hat.numpy().sum(-1), 1.0, rtol=1e-5)
    self.assertIsNotNone(pretrained.load(use_baseline=True).loss_config)

  @parameterized.parameters(*[(n,) for n in pretrained.NAMES])
  def test_each_rule_is_a_full_export_with_card_and_hyperparameters(self, name):
    directory = pretrained.path(name)
    for filename in ("saved_model.pb", saved_model.ONNX_PATH,
                     saved_model.METADATA_PATH, pretrained.CARD_FILE,
                     pretrained.HYPERPARAMETERS_FILE):
      self.assertTrue(os.path.isfile(os.path.join(directory, filename)),
                      filename)
    metadata = saved_model.read_metadata(directory)
    # LPG's y has m = 30 (Section 4.1); LPG-V's prediction is one value.
    self.assertEqual(metadata.prediction_size,
                     1 if metadata.kind == lpg_v.KIND else 30)

  @parameterized.parameters(*[(n,) for n in pretrained.NAMES])
  def test_card_table_is_the_hyperparameters_file(self, name):
    text = pretrained.card(name)
    self.assertIn(f"# Model card: `{name}`", text)
    rows = re.findall(r"^\| `([^`]+)` \| ([0-9.e+-]+) \| ([0-9.e+-]+) \|", text,
                      re.M)
    table = {key: {"learning_rate": float(lr), "kl_cost": float(kl)}
             for key, lr, kl in rows}
    self.assertEqual(table, hyperparameters_file(name))

  @parameterized.parameters(*[(n,) for n in pretrained.NAMES])
  def test_hyperparameters_cover_every_environment(self, name):
    keys = hyperparameters_file(name)
    for key in keys:
      self.assertTrue(key in TRAINABLE_ENVS or key.endswith("/"), key)
    for env_name in TRAINABLE_ENVS:
      learning_rate, kl_cost = pretrained.hyperparameters(name, env_name)
      self.assertGreater(learning_rate, 0, env_name)
      self.assertGreaterEqual(kl_cost, 0, env_name)


class HyperparametersTest(parameterized.TestCase):
  """Resolution of hyperparameters.json, on a file of known content."""

  def setUp(self):
    super().setUp()
    directory = self.create_tempdir()
    directory.create_file(
        os.path.join(pretrained.DEFAULT, pretrained.HYPERPARAMETERS_FILE),
        content=json.dumps({
            "tabular/dense": {"learning_rate": 1.0, "kl_cost": 0.1},
            "tabular/": {"learning_rate": 2.0, "kl_cost": 0.2},
            "minatar/": {"learning_rate": 3.0, "kl_cost": 0.3}}))
    self.enter_context(
        mock.patch.object(pretrained, "_DIRECTORY", directory.full_path))

  @parameterized.parameters(("tabular/dense", (1.0, 0.1)),
                            ("tabular/sparse", (2.0, 0.2)),
                            ("minatar/breakout", (3.0, 0.3)),
                            ("tabular/", (2.0, 0.2)))
  def test_own_entry_else_its_kinds(self, env_name, expected):
    self.assertEqual(pretrained.hyperparameters(None, env_name), expected)

  @parameterized.parameters("chain/short", "tabular", "atari/Pong",
                            "minatarx/breakout")
  def test_an_uncovered_environment_lists_the_keys(self, env_name):
    with self.assertRaisesRegex(errors.ConfigError,
                                "no hyperparameters for .*tabular/dense, tabular/"):
      pretrained.hyperparameters(None, env_name)

  def test_an_unknown_name_is_refused(self):
    with self.assertRaisesRegex(errors.ConfigError, "valid: lpg_cpu"):
      pretrained.hyperparameters("nope", "tabular/dense")

  def test_a_malformed_file_names_itself(self):
    with open(os.path.join(pretrained.path(), pretrained.HYPERPARAMETERS_FILE),
              "w", encoding="utf-8") as f:
      json.dump({"tabular/": {"learning_rate": -1.0, "kl_cost": 0.5}}, f)
    with self.assertRaisesRegex(errors.ConfigError,
                                "hyperparameters.json: 'tabular/' needs"):
      pretrained.hyperparameters(None, "tabular/dense")


class PackageDataTest(absltest.TestCase):

  def test_setup_installs_every_file_of_the_shipped_rules(self):
    patterns = package_data()["lpg_tf.rules.pretrained"]
    declared = {os.path.relpath(p, PACKAGE)
                for pattern in patterns
                for p in glob.glob(os.path.join(PACKAGE, pattern))
                if os.path.isfile(p)}
    present = {os.path.relpath(os.path.join(root, f), PACKAGE)
               for root, _, files in os.walk(PACKAGE)
               if "__pycache__" not in root
               for f in files if f != "__init__.py"}
    self.assertEqual(present - declared, set())
    for name in pretrained.NAMES:
      self.assertIn(os.path.join(name, "variables", "variables.index"), declared)


if __name__ == "__main__":
  absltest.main()
