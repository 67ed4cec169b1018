"""A grid world whose lifetimes draw their action space (envs.SAMPLED,
Appendix A.1 "sampled per lifetime"): each lifetime's rows behave exactly as
the grid world of its drawn space, and the observation tells which."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf.envs import base
from lpg_tf.envs import grid_world
from lpg_tf.envs import registry

BATCH = 64
STEPS = 60
NAMES = ("tabular/dense", "tabular/longer_horizon", "random/small_sparse",
         "random/dense")


def _rollout(env, instance, actions, seed):
  """States, timesteps and true next observations of `actions` `[T, B]`."""
  state, timestep = env.reset(instance, seed)
  states, timesteps = [state], [timestep]
  for action in actions:
    state, timestep, _ = env.step_with_next_observation(state, action)
    states.append(state)
    timesteps.append(timestep)
  return states, timesteps


class SampledActionSpaceTest(parameterized.TestCase):

  @parameterized.parameters(*NAMES)
  def test_spec_and_observation_split(self, name):
    fixed = registry.make(name, base.MOVE_AND_COLLECT).spec
    sampled = registry.make(name, base.SAMPLED).spec
    self.assertEqual(sampled.num_actions, 18)
    self.assertEqual(sampled.action_space, base.SAMPLED)
    self.assertEqual(grid_world.fixed_space_spec(sampled),
                     fixed._replace(action_space=base.SAMPLED))
    if fixed.num_states is not None:
      self.assertEqual(sampled.num_states, 2 * fixed.num_states)
    else:
      self.assertEqual(sampled.observation_shape[-1],
                       fixed.observation_shape[-1] + 1)

  def test_lifetimes_draw_either_space_with_equal_chance(self):
    env = registry.make("tabular/dense", base.SAMPLED)
    instance = env.sample_instances(tf.constant([3, 4]), 2000)
    share = float(tf.reduce_mean(tf.cast(instance.move_and_collect,
                                         tf.float32)))
    self.assertBetween(share, 0.45, 0.55)
    # The layouts are the fixed-space grid world's draws.
    self.assertEqual(instance.layout.shape, [2000, 4])
    again = env.sample_instances(tf.constant([3, 4]), 2000)
    np.testing.assert_array_equal(again.move_and_collect,
                                  instance.move_and_collect)

  @parameterized.parameters(*NAMES)
  def test_each_lifetime_steps_as_the_grid_world_of_its_space(self, name):
    """Same seeds and actions: a MOVE_AND_COLLECT row of the sampled grid
    world equals that row of the MOVE_AND_COLLECT grid world, a MOVE row that
    of the MOVE grid world (whose actions are the 9 moves)."""
    sampled = registry.make(name, base.SAMPLED)
    instance = sampled.sample_instances(tf.constant([5, 6]), BATCH)
    collects = instance.move_and_collect.numpy()
    self.assertTrue(collects.any() and not collects.all())
    draws = tf.random.stateless_uniform([STEPS, BATCH], [7, 8], 0, 18, tf.int32)
    actions = tf.where(instance.move_and_collect, draws, draws % 9)
    seed = tf.constant([9, 10])
    states, steps = _rollout(sampled, instance, actions, seed)
    for space, rows in ((base.MOVE_AND_COLLECT, collects),
                        (base.MOVE, ~collects)):
      fixed = registry.make(name, space)
      fixed_states, fixed_steps = _rollout(fixed, instance.layout, actions, seed)
      for t, (state, fixed_state) in enumerate(zip(states, fixed_states)):
        for field in ("agent", "object_cell", "present", "step_count"):
          np.testing.assert_array_equal(
              getattr(state, field).numpy()[rows],
              getattr(fixed_state, field).numpy()[rows],
              err_msg=f"{space} {field} at step {t}")
      rewards = 0.0
      for t, (step, fixed_step) in enumerate(zip(steps, fixed_steps)):
        observation, flag = grid_world.split_sampled_observation(
            sampled.spec, step.observation)
        np.testing.assert_array_equal(flag.numpy(), collects)
        np.testing.assert_array_equal(observation.numpy()[rows],
                                      fixed_step.observation.numpy()[rows])
        for field in ("reward", "discount", "truncated"):
          np.testing.assert_array_equal(
              getattr(step, field).numpy()[rows],
              getattr(fixed_step, field).numpy()[rows],
              err_msg=f"{space} {field} at step {t}")
        rewards += np.abs(step.reward.numpy()[rows]).sum()
      if name != "tabular/longer_horizon":  # Objects there are far apart.
        self.assertGreater(rewards, 0.0, f"{space}: no object collected")


if __name__ == "__main__":
  absltest.main()
