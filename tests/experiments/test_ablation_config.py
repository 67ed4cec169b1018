"""Config values for LPG-V (Section 4.1) and Figure 7's ablations: what each
builds, which combinations are refused, and that runs started before the keys
existed still continue."""

import json
import os

from absl.testing import absltest

from lpg_tf import errors
from lpg_tf.experiments import meta_train
from lpg_tf.experiments import probe_y
from lpg_tf.experiments import run_directory
from lpg_tf.rules import lpg_v
from lpg_tf.rules import saved_model
from tests.meta.test_trainer import tiny_config


class AblationConfigTest(absltest.TestCase):

  def test_lpg_v_builds_lpg_v_with_a_value_and_no_y_terms(self):
    config = tiny_config(**{"rule.kind": "lpg_v", "rule.td_lambda": 0.5})
    meta_train.validate(config)
    rule = meta_train.build_rule(config)
    self.assertIsInstance(rule, lpg_v.LPGV)
    self.assertEqual(rule.td_lambda, 0.5)
    self.assertEqual(meta_train.population_spec(config).prediction_size, 1)
    costs = meta_train.meta_spec(config).costs
    self.assertEqual((costs.prediction_entropy, costs.y_hat_l2), (0.0, 0.0))
    self.assertEqual(costs.pi_hat_l2, config.meta.pi_hat_l2_cost)

  def test_lpg_v_logs_no_prediction_entropy(self):
    """H(y) of LPG-V's one-number y is 0 whatever it learns: a meta-step does
    not log it, where LPG's does, per environment."""
    for kind, logged in (("lpg_v", False), ("lpg", True)):
      config = tiny_config(**{"rule.kind": kind})
      trainer = meta_train.build_trainer(config, meta_train.build_rule(config))
      numbers = trainer.step()
      groups = sorted(k.rsplit("/", 1)[0] for k in numbers
                      if k.endswith("/policy_entropy"))
      self.assertLen(groups, 3)  # chain/short and two tabular/sparse variants.
      self.assertEqual(
          sorted(k.rsplit("/", 1)[0] for k in numbers
                 if k.endswith("/prediction_entropy")),
          groups if logged else [], kind)

  def test_figure_7_switches(self):
    config = tiny_config(**{"rule.y_softmax": False, "meta.bandit": False,
                            "meta.prediction_entropy_cost": 0.0})
    meta_train.validate(config)
    rule = meta_train.build_rule(config)
    self.assertFalse(rule.loss_config.y_softmax)
    self.assertEqual(rule.prediction_size, config.population.prediction_size)
    self.assertFalse(meta_train.population_spec(config).bandit)
    self.assertTrue(meta_train.population_spec(tiny_config()).bandit)

  def test_refused_values_and_combinations(self):
    for overrides, message in (
        ({"rule.kind": "lpg_x"}, "config.rule.kind must be one of 'lpg', 'lpg_v'"),
        ({"rule.y_softmax": False}, "prediction_entropy_cost=0"),
        ({"rule.kind": "lpg_v", "rule.y_head_init_stddev": 3.0},
         "LPG-V .* has none"),
        ({"rule.td_lambda": 1.5}, "config.rule.td_lambda")):
      with self.subTest(overrides=overrides), \
          self.assertRaisesRegex(errors.ConfigError, message):
        meta_train.validate(tiny_config(**overrides))

  def test_a_run_from_before_the_switches_continues(self):
    workdir = self.create_tempdir().full_path
    current = json.loads(tiny_config().to_json())
    older = json.loads(tiny_config().to_json())
    for key in meta_train.ADDED_FIELDS:
      *path, name = key.split(".")
      section = older
      for part in path:
        section = section[part]
      del section[name]
    with open(os.path.join(workdir, meta_train.CONFIG_NAME), "w") as f:
      json.dump(older, f)
    lock, start_from = run_directory.open_run(
        workdir, current, meta_train.RESUMABLE_FIELDS, False, None,
        meta_train.ADDED_FIELDS)
    lock.release()
    self.assertIsNone(start_from)
    lpg_v_config = json.loads(tiny_config(**{"rule.kind": "lpg_v"}).to_json())
    with self.assertRaisesRegex(errors.ConfigError, "another config.*kind"):
      run_directory.open_run(workdir, lpg_v_config, meta_train.RESUMABLE_FIELDS,
                             False, None, meta_train.ADDED_FIELDS)


  def test_probe_y_refuses_rules_without_a_softmax_y(self):
    for kind, y_softmax in (("lpg_v", False), ("lpg", False)):
      path = self.create_tempdir().full_path
      metadata_file = os.path.join(path, saved_model.METADATA_PATH)
      os.makedirs(os.path.dirname(metadata_file))
      with open(metadata_file, "w") as f:
        json.dump({"format": saved_model.FORMAT, "format_version": 2,
                   "hidden_size": 8, "prediction_size": 1,
                   "embedding_sizes": [16, 1], "use_baseline": False,
                   "kind": kind, "y_softmax": y_softmax, "td_lambda": None}, f)
      with self.assertRaisesRegex(errors.ConfigError, "only LPG with y_softmax"):
        probe_y.load_rules(path, seed=0)


if __name__ == "__main__":
  absltest.main()
