"""lpg_tf.meta.lifetime_settings against Table 2 and Table 3 of the paper."""

from absl.testing import absltest
from absl.testing import parameterized

from lpg_tf.envs import registry
from lpg_tf.meta import lifetime_settings

TABULAR_LRS = (20, 40, 80)
NETWORK_LRS = (0.0005, 0.001, 0.002, 0.005)
KL_COSTS = (0.1, 0.5, 1)

# Table 3's meta-training columns, row by row:
# (learning rates, KL costs, lifetime steps).
TABLE_3 = {
    "tabular/dense": (TABULAR_LRS, KL_COSTS, 3e6),
    "tabular/sparse": (TABULAR_LRS, KL_COSTS, 3e6),
    "tabular/long_horizon": (TABULAR_LRS, KL_COSTS, 3e6),
    "tabular/longer_horizon": (TABULAR_LRS, KL_COSTS, 3e6),
    "tabular/long_dense": (TABULAR_LRS, KL_COSTS, 3e6),
    "random/dense": (NETWORK_LRS, KL_COSTS, 30e6),
    "random/long_horizon": (NETWORK_LRS, KL_COSTS, 30e6),
    "random/small": (NETWORK_LRS, KL_COSTS, 30e6),
    "random/small_sparse": (NETWORK_LRS, KL_COSTS, 30e6),
    "random/very_dense": (NETWORK_LRS, KL_COSTS, 30e6),
    "chain/short": (TABULAR_LRS, KL_COSTS, 1e6),
    "chain/short_noisy": (TABULAR_LRS, KL_COSTS, 1e6),
    "chain/long": (TABULAR_LRS, KL_COSTS, 1e6),
    "chain/long_noisy": (TABULAR_LRS, KL_COSTS, 1e6),
    "chain/distractor": ((0.002, 0.005, 0.01), KL_COSTS, 2e6),
}


class LifetimeSettingsTest(parameterized.TestCase):

  def test_covers_every_training_environment(self):
    self.assertCountEqual(lifetime_settings.TABLE_3, registry.NAMES)

  @parameterized.named_parameters(
      *[(name.replace("/", "_"), name, row) for name, row in TABLE_3.items()])
  def test_matches_table_3(self, name, row):
    lrs, kl_costs, lifetime = row
    settings = lifetime_settings.for_env(name)
    self.assertEqual(settings.learning_rates, lrs)
    self.assertEqual(settings.kl_costs, kl_costs)
    self.assertEqual(settings.lifetime_steps, lifetime)
    self.assertIn(settings.default_learning_rate, lrs)
    self.assertIn(settings.default_kl_cost, kl_costs)

  def test_table_2_draws(self):
    self.assertEqual(lifetime_settings.GAMMAS, (0.995, 0.99))
    self.assertEqual(lifetime_settings.POLICY_ENTROPY_COSTS, (0.01, 0.02))

  def test_rejects_unknown_name(self):
    with self.assertRaisesRegex(ValueError, "tabular/dense"):
      lifetime_settings.for_env("random/unknown")


if __name__ == "__main__":
  absltest.main()
