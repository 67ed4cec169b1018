"""lpg_tf/envs/grid_model.py: the exact model against the in-graph environment."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import envs
from lpg_tf.envs import base
from lpg_tf.envs import grid_model
from lpg_tf.envs import grid_world

ObjectType = grid_world.ObjectType
# Two objects with every kind of event: a rewarding one that may end the
# episode and respawns, a punishing one that never ends it and respawns often.
SMALL_GRID = grid_world.GridSpec(
    2, 3, (ObjectType(1, 1.0, 0.5, 0.3), ObjectType(1, -1.0, 0.0, 0.6)), 50)
SMALL_INSTANCE = [4, 0]
SAMPLES = 400  # transitions drawn from every (s, a)


def _small(action_space):
  return grid_world.TabularGridWorld("tabular/small_test", SMALL_GRID,
                                     action_space)


def sample_transitions(env, instance, states, actions, seed):
  """One `env.transition` from each (state, action) pair, `[N]` arrays."""
  num_objects = len(instance)
  cell, bits = np.divmod(states, 2**num_objects)
  present = ((bits[:, None] >> np.arange(num_objects)) & 1).astype(bool)
  size = len(states)
  state = grid_world.GridState(
      instance=tf.constant(np.tile(instance, [size, 1]), tf.int32),
      rng=tf.constant(seed, tf.int32), agent=tf.constant(cell, tf.int32),
      object_cell=tf.constant(np.tile(instance, [size, 1]), tf.int32),
      present=tf.constant(present), step_count=tf.zeros([size], tf.int32))
  _, timestep = env.transition(state, tf.constant(actions, tf.int32))
  return (timestep.observation.numpy(), timestep.reward.numpy(),
          timestep.discount.numpy())


class GridModelTest(parameterized.TestCase):

  @parameterized.parameters(base.MOVE, base.MOVE_AND_COLLECT)
  def test_matches_the_environment_transition_by_transition(self, action_space):
    """Every (s, a): the frequencies of s', of reward and of termination over
    SAMPLES draws of the environment agree with the model within 5 standard
    errors."""
    env = _small(action_space)
    model = grid_model.tabular_model(env, SMALL_INSTANCE)
    num_states, num_actions = model.num_states, model.num_actions
    self.assertEqual(num_states, env.spec.num_states)
    self.assertEqual(num_actions, env.spec.num_actions)
    pairs = np.stack(np.meshgrid(np.arange(num_states), np.arange(num_actions),
                                 indexing="ij"), -1).reshape(-1, 2)
    pairs = np.repeat(pairs, SAMPLES, axis=0)
    next_state, reward, discount = sample_transitions(
        env, SMALL_INSTANCE, pairs[:, 0], pairs[:, 1], seed=[3, 4])
    counts = np.zeros([num_states, num_actions, num_states])
    np.add.at(counts, (pairs[:, 0], pairs[:, 1], next_state), 1.0)
    expected = model.transitions()
    np.testing.assert_allclose(expected.sum(-1), 1.0)
    tolerance = 5 * np.sqrt(expected * (1 - expected) / SAMPLES) + 1e-9
    np.testing.assert_array_less(np.abs(counts / SAMPLES - expected), tolerance)
    # The reward is a function of (s, a); termination is a coin of eps_term.
    np.testing.assert_array_equal(
        reward, model.reward[pairs[:, 0], pairs[:, 1]].astype(np.float32))
    terminated = np.zeros([num_states, num_actions])
    np.add.at(terminated, (pairs[:, 0], pairs[:, 1]), discount == 0.0)
    p = model.p_terminate
    np.testing.assert_array_less(np.abs(terminated / SAMPLES - p),
                                 5 * np.sqrt(p * (1 - p) / SAMPLES) + 1e-9)

  def test_policy_transitions_fold_in_termination(self):
    env = _small(base.MOVE)
    model = grid_model.tabular_model(env, SMALL_INSTANCE)
    policy = np.random.default_rng(0).dirichlet(
        np.ones(model.num_actions), size=model.num_states)
    expected = np.einsum("sa,sat->st", policy * (1 - model.p_terminate),
                         model.transitions())
    np.testing.assert_allclose(model.policy_transitions(policy), expected,
                               atol=1e-12)

  def test_state_index_is_the_observation(self):
    env = _small(base.MOVE)
    model = grid_model.tabular_model(env, SMALL_INSTANCE)
    self.assertEqual(model.state_index(5, 0b10), 5 * 4 + 2)
    self.assertEqual(model.cell_and_bits(22), (5, 2))

  def test_rejects_random_grids_and_bad_instances(self):
    with self.assertRaisesRegex(errors.ConfigError, "not a tabular grid world"):
      grid_model.tabular_model(envs.make("random/small"), [0])
    with self.assertRaisesRegex(errors.ConfigError, "2 distinct cells"):
      grid_model.tabular_model(_small(base.MOVE), [1, 1])
    with self.assertRaisesRegex(errors.ConfigError, "2 distinct cells"):
      grid_model.tabular_model(_small(base.MOVE), [1, 6])


if __name__ == "__main__":
  absltest.main()
