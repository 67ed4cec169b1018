"""lpg_tf/learning/host_rollout.py: acting in Python-stepped environments."""

from absl.testing import absltest
import numpy as np
import tensorflow as tf

from lpg_tf import agents
from lpg_tf import rules
from lpg_tf import types
from lpg_tf.envs import base as env_base
from lpg_tf.learning import host_rollout
from lpg_tf.learning import learner as learner_lib
from lpg_tf.learning import optimizers


class CountingEnv(env_base.HostEnvironment):
  """Row r observes [r, steps into its episode]; every step pays 1; episodes
  last `length` steps. Records the actions it is given."""

  def __init__(self, num_envs, length, num_actions=3):
    self._num_envs = num_envs
    self._length = length
    self._steps = np.zeros([num_envs], np.float32)
    self.actions = []
    self._spec = env_base.EnvSpec("counting", (2,), tf.float32, num_actions,
                                  None, length, None)

  @property
  def spec(self):
    return self._spec

  @property
  def num_envs(self):
    return self._num_envs

  def _observation(self):
    return np.stack([np.arange(self._num_envs, dtype=np.float32),
                     self._steps], axis=1)

  def reset(self):
    self._steps[:] = 0
    return types.TimeStep(self._observation(), np.zeros(self._num_envs),
                          np.ones(self._num_envs), np.zeros(self._num_envs, bool))

  def step(self, action):
    self.actions.append(np.array(action))
    self._steps += 1
    next_observation = self._observation()
    ended = self._steps == self._length
    self._steps[ended] = 0
    return types.TimeStep(
        self._observation(), np.ones(self._num_envs, np.float32),
        (~ended).astype(np.float32), np.zeros(self._num_envs, bool)
    ), next_observation


def fixed_policy(params, observation):
  """Logits `params` `[L, A]` for every observation `[L, B, 2]`."""
  logits = tf.broadcast_to(params[:, None, :], tf.concat(
      [tf.shape(observation)[:2], tf.shape(params)[1:]], 0))
  return types.AgentOutput(logits, logits, logits[..., 0])


class RecordingSource(host_rollout.HostRolloutSource):
  """Remembers the theta it was last asked to act with."""

  def pull(self, params):
    self.pulled_with = params
    return super().pull(params)


# Lifetime 0 always takes action 2, lifetime 1 action 0.
CERTAIN = tf.constant([[-50.0, -50.0, 50.0], [50.0, -50.0, -50.0]])


class HostRolloutSourceTest(absltest.TestCase):

  def test_trajectory_is_lifetime_major_and_follows_theta(self):
    env = CountingEnv(num_envs=2 * 3, length=3)
    source = host_rollout.HostRolloutSource(env, fixed_policy, num_lifetimes=2,
                                            unroll_length=4, seed=0)
    self.assertEqual(source.env_steps_per_update, 12)
    trajectory = source.pull(CERTAIN)
    self.assertEqual(trajectory.observation.shape, (2, 5, 3, 2))
    self.assertEqual(trajectory.next_observation.shape, (2, 4, 3, 2))
    for name in ("action", "reward", "discount", "episode_return"):
      self.assertEqual(getattr(trajectory, name).shape, (2, 4, 3), name)
    self.assertEqual(trajectory.action.dtype, np.int32)
    rows = np.arange(6).reshape(2, 1, 3)
    np.testing.assert_array_equal(trajectory.observation[..., 0],
                                  np.broadcast_to(rows, (2, 5, 3)))
    np.testing.assert_array_equal(trajectory.action[0], np.full([4, 3], 2))
    np.testing.assert_array_equal(trajectory.action[1], np.zeros([4, 3]))
    np.testing.assert_array_equal(env.actions[0], [2, 2, 2, 0, 0, 0])

  def test_terminal_observations_and_returns_across_pulls(self):
    env = CountingEnv(num_envs=2, length=3)
    source = host_rollout.HostRolloutSource(env, fixed_policy, num_lifetimes=1,
                                            unroll_length=4, seed=0)
    logits = tf.zeros([1, 3])
    first, second = source.pull(logits), source.pull(logits)
    np.testing.assert_array_equal(second.observation[:, 0],
                                  first.observation[:, -1])
    for trajectory, ends in ((first, [2]), (second, [1])):
      steps = trajectory.observation[..., 1]
      np.testing.assert_array_equal(
          trajectory.discount[0, :, 0], [0.0 if t in ends else 1.0
                                         for t in range(4)])
      for t in range(4):
        if t in ends:
          # The true last observation; the next episode starts at 0.
          np.testing.assert_array_equal(
              trajectory.next_observation[0, t, :, 1], [3, 3])
          np.testing.assert_array_equal(steps[0, t + 1], [0, 0])
          np.testing.assert_array_equal(trajectory.episode_return[0, t],
                                        [3, 3])
        else:
          np.testing.assert_array_equal(trajectory.next_observation[0, t],
                                        trajectory.observation[0, t + 1])

  def test_a_seed_fixes_the_actions(self):

    def actions(seed):
      source = host_rollout.HostRolloutSource(
          CountingEnv(num_envs=8, length=5), fixed_policy, num_lifetimes=1,
          unroll_length=10, seed=seed, jit_compile=False)
      return source.pull(tf.zeros([1, 3])).action

    np.testing.assert_array_equal(actions(1), actions(1))
    self.assertFalse((actions(1) == actions(2)).all())

  def test_learner_acts_with_its_current_theta(self):
    env = CountingEnv(num_envs=2 * 4, length=5)
    agent = agents.build_agent(env.spec, num_lifetimes=2, seed=0,
                               prediction_size=4, torso=agents.mlp([8]))
    source = RecordingSource(env, agent.apply, num_lifetimes=2,
                             unroll_length=10, seed=0, jit_compile=False)
    learner = learner_lib.Learner(
        agent, rules.make("a2c"), optimizers.ADAM,
        learning_rate=np.full([2], 0.01, np.float32),
        kl_cost=np.zeros([2], np.float32), gamma=np.full([2], 0.9, np.float32),
        source=source, jit_compile=False)
    for _ in range(2):
      params = learner.params
      metrics = learner.step()
      self.assertIs(source.pulled_with, params)
      self.assertIsNot(learner.params, params)
      np.testing.assert_array_equal(metrics["episode_count"], [8, 8])
      np.testing.assert_array_equal(metrics["episode_return_sum"], [40, 40])
      np.testing.assert_array_equal(metrics["env_steps"], [40, 40])
      self.assertTrue(np.isfinite(metrics["loss"]).all())


if __name__ == "__main__":
  absltest.main()
