"""The agent of a grid world with a sampled action space
(networks.MaskedActionsAgent): the fixed-space network on the split
observation, with a MOVE lifetime's 9 collect actions given no probability
and no gradient."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf.agents import networks
from lpg_tf.agents import presets
from lpg_tf.envs import base
from lpg_tf.envs import grid_world
from lpg_tf.envs import registry

LIFETIMES = 2
BATCH = 5


def _observations(env):
  """`[L, B, ...]` observations; lifetime 0 MOVE, lifetime 1 MOVE_AND_COLLECT."""
  instance = env.sample_instances(tf.constant([1, 2]), LIFETIMES)
  instance = instance._replace(move_and_collect=tf.constant([False, True]))
  rows = tf.nest.map_structure(lambda x: tf.repeat(x, BATCH, axis=0), instance)
  _, timestep = env.reset(rows, tf.constant([3, 4]))
  observation = timestep.observation
  return tf.reshape(observation, [LIFETIMES, BATCH, *observation.shape[1:]])


class MaskedActionsAgentTest(parameterized.TestCase):

  @parameterized.parameters("tabular/dense", "random/dense", "random/small")
  def test_a_move_lifetime_has_the_nine_moves_only(self, name):
    env = registry.make(name, base.SAMPLED)
    agent = presets.build_agent(env.spec, LIFETIMES, seed=7)
    self.assertIsInstance(agent, networks.MaskedActionsAgent)
    # The same network as the fixed space's, on the split observation.
    fixed = presets.build_agent(
        registry.make(name, base.MOVE_AND_COLLECT).spec, LIFETIMES, seed=7)
    self.assertEqual({k: v.shape for k, v in agent.params.items()},
                     {k: v.shape for k, v in fixed.params.items()})
    observation = _observations(env)
    inner, _ = grid_world.split_sampled_observation(env.spec, observation)
    params = {k: tf.convert_to_tensor(v) for k, v in agent.params.items()}
    expected = networks.AgentNetwork.apply(agent, params, inner).policy_logits
    logits = agent.apply(params, observation).policy_logits
    self.assertEqual(logits.shape, [LIFETIMES, BATCH, 18])
    np.testing.assert_array_equal(logits[1], expected[1])
    np.testing.assert_array_equal(logits[0, :, :9], expected[0, :, :9])
    np.testing.assert_array_equal(logits[0, :, 9:], networks.MASKED_LOGIT)
    probs = tf.nn.softmax(logits).numpy()
    np.testing.assert_array_equal(probs[0, :, 9:], 0.0)
    np.testing.assert_allclose(probs[0, :, :9],
                               tf.nn.softmax(expected[0, :, :9]), rtol=1e-6)
    entropy = -tf.reduce_sum(probs * tf.nn.log_softmax(logits), -1)
    self.assertTrue(np.isfinite(entropy.numpy()).all())

  def test_the_masked_actions_get_no_gradient(self):
    env = registry.make("tabular/dense", base.SAMPLED)
    agent = presets.build_agent(env.spec, LIFETIMES, seed=7)
    observation = _observations(env)
    params = {k: tf.convert_to_tensor(v) for k, v in agent.params.items()}
    with tf.GradientTape() as tape:
      tape.watch(params)
      logits = agent.apply(params, observation).policy_logits
      log_probs = tf.nn.log_softmax(logits)
      loss = tf.reduce_sum(log_probs[..., 0]) + tf.reduce_sum(
          tf.nn.softmax(logits) * log_probs)
    table = tape.gradient(loss, params)["table"].numpy()  # [L, S, 18 + m + 1]
    np.testing.assert_array_equal(table[0, :, 9:18], 0.0)
    self.assertGreater(np.abs(table[0, :, :9]).max(), 0.0)
    self.assertGreater(np.abs(table[1, :, 9:18]).max(), 0.0)


if __name__ == "__main__":
  absltest.main()
