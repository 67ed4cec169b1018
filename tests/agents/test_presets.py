"""Tests for lpg_tf.agents.presets against Table 3 and Table 4 of the paper."""

from absl.testing import absltest
from absl.testing import parameterized
import tensorflow as tf

from lpg_tf.agents import presets
from lpg_tf.agents import torsos
from lpg_tf.envs import base
from lpg_tf.envs import registry

# Table 3's agent columns, row by row: (architecture, optimiser). The bandit
# grid and lifetime columns are tested in tests/meta/test_lifetime_settings.py.
TABLE_3 = {
    "tabular/dense": ("Tabular", "sgd"),
    "tabular/sparse": ("Tabular", "sgd"),
    "tabular/long_horizon": ("Tabular", "sgd"),
    "tabular/longer_horizon": ("Tabular", "sgd"),
    "tabular/long_dense": ("Tabular", "sgd"),
    "random/dense": ("C(16)-D(32)", "adam"),
    "random/long_horizon": ("C(16)-D(32)", "adam"),
    "random/small": ("D(32)", "adam"),
    "random/small_sparse": ("D(32)", "adam"),
    "random/very_dense": ("C(32-16-16)-D(256)", "adam"),
    "chain/short": ("Tabular", "sgd"),
    "chain/short_noisy": ("Tabular", "sgd"),
    "chain/long": ("Tabular", "sgd"),
    "chain/long_noisy": ("Tabular", "sgd"),
    "chain/distractor": ("D(16)", "adam"),
}


class PresetsTest(tf.test.TestCase, parameterized.TestCase):

  def test_covers_every_training_environment(self):
    self.assertCountEqual(presets.TABLE_3, registry.NAMES)

  @parameterized.named_parameters(
      *[(name.replace("/", "_"), name, row) for name, row in TABLE_3.items()])
  def test_matches_table_3(self, name, row):
    architecture, optimiser = row
    preset = presets.preset_for(name)
    self.assertEqual(preset.torso.notation, architecture)
    self.assertEqual(preset.optimiser, optimiser)

  def test_atari_matches_table_4(self):
    atari = presets.ATARI
    self.assertEqual(atari.torso.notation, "C(32)-C(64)-C(64)-D(512)")
    self.assertEqual(atari.torso.conv_kernels, (8, 4, 3))
    self.assertEqual(atari.torso.conv_strides, (4, 2, 1))
    self.assertEqual(atari.torso.padding, "VALID")
    self.assertEqual(atari.optimiser, "adam")
    self.assertEqual(atari.learning_rate, 0.0005)
    self.assertEqual(atari.kl_cost, 0.5)
    self.assertEqual(atari.discount, 0.995)
    self.assertEqual(atari.trajectory_length, 20)
    self.assertEqual(atari.num_envs, 30)
    self.assertEqual(atari.searched_learning_rates, (0.001, 0.0005, 0.0003))
    self.assertEqual(atari.searched_kl_costs, (1, 0.5, 0.1))

  def test_preset_for_rejects_unknown_name(self):
    with self.assertRaises(ValueError):
      presets.preset_for("random/unknown")

  @parameterized.named_parameters(
      *[(name.replace("/", "_"), name) for name in TABLE_3])
  def test_build_agent_uses_table_3_architecture(self, name):
    spec = registry.make(name).spec
    agent = presets.build_agent(spec, num_lifetimes=2, seed=0,
                                prediction_size=6)
    self.assertEqual(agent.torso.notation, TABLE_3[name][0])
    observation = tf.zeros([2, 3, *spec.observation_shape],
                           spec.observation_dtype)
    output = agent(observation)
    self.assertEqual(output.policy_logits.shape, [2, 3, spec.num_actions])
    self.assertEqual(output.prediction_logits.shape, [2, 3, 6])

  def test_build_agent_takes_an_explicit_torso(self):
    spec = base.EnvSpec("ALE/Pong-v5", (84, 84, 4), tf.uint8, 6, None, 27000,
                        None)
    agent = presets.build_agent(spec, num_lifetimes=1, seed=0,
                                torso=presets.ATARI.torso)
    self.assertEqual(agent.torso, torsos.atari())
    self.assertEqual(agent.params["dense_0/w"].shape, [1, 7 * 7 * 64, 512])

  def test_minatar_agent_is_minatars_network(self):
    """Young & Tian (2019): conv 16 x 3 x 3 stride 1 (no padding), dense 128."""
    minatar = presets.MINATAR
    self.assertEqual(minatar.torso.notation, "C(16)-D(128)")
    self.assertEqual(minatar.torso.padding, "VALID")
    self.assertEqual((minatar.optimiser, minatar.discount,
                      minatar.trajectory_length), ("adam", 0.99, 20))
    spec = base.EnvSpec("minatar/breakout", (10, 10, 4), tf.float32, 3, None,
                        10_000, None)
    agent = presets.build_agent(spec, num_lifetimes=2, seed=0,
                                prediction_size=6, torso=minatar.torso)
    self.assertEqual(agent.params["conv_0/w"].shape, [2, 3, 3, 4, 16])
    self.assertEqual(agent.params["dense_0/w"].shape, [2, 8 * 8 * 16, 128])
    output = agent(tf.zeros([2, 5, 10, 10, 4]))
    self.assertEqual(output.policy_logits.shape, [2, 5, 3])
    self.assertEqual(output.prediction_logits.shape, [2, 5, 6])


if __name__ == "__main__":
  absltest.main()
