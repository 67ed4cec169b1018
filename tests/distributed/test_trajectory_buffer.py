"""Tests for lpg_tf/distributed/trajectory_buffer.py: reset steps never enter
an unroll, and unrolls of environments with different reset times align."""

from absl.testing import absltest
import numpy as np

from lpg_tf.distributed import trajectory_buffer
from lpg_tf.envs import atari

T = 3


def _feed(buffer, num_envs, events, start=1):
  """Adds one vector step per entry of `events`: {env: "done" | "reset"}.

  Observations are `[E]` integers counting vector steps from `start`
  (negated on reset steps, so they are recognisable); actions are the step
  number, rewards the step number / 100.
  """
  for offset, event in enumerate(events):
    n = start + offset
    done = np.array([event.get(e) == "done" for e in range(num_envs)])
    reset = np.array([event.get(e) == "reset" for e in range(num_envs)])
    observation = np.where(reset, -n, n)
    buffer.add(np.full(num_envs, n), np.full(num_envs, n / 100), done,
               np.where(done, 10.0 * n, 0.0), observation, reset)


class TrajectoryBufferTest(absltest.TestCase):

  def test_without_resets_unrolls_are_consecutive_and_share_an_observation(self):
    buffer = trajectory_buffer.TrajectoryBuffer(2, T, np.zeros(2))
    _feed(buffer, 2, [{}] * (2 * T))
    first, second = buffer.pop(), buffer.pop()
    self.assertIsNone(buffer.pop())
    np.testing.assert_array_equal(first.observation[:, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(second.observation[:, 1], [3, 4, 5, 6])
    np.testing.assert_array_equal(first.action[:, 0], [1, 2, 3])
    np.testing.assert_allclose(second.reward[:, 1], [0.04, 0.05, 0.06])
    np.testing.assert_array_equal(first.discount, np.ones([T, 2]))
    self.assertEqual(first.action.dtype, np.int32)
    self.assertEqual(first.reward.dtype, np.float32)

  def test_reset_step_is_dropped_and_its_observation_follows_the_terminal(self):
    buffer = trajectory_buffer.TrajectoryBuffer(2, T, np.zeros(2))
    # Env 0 ends its episode at step 2; step 3 is its reset step.
    _feed(buffer, 2, [{}, {0: "done"}, {0: "reset"}, {}, {}])
    unroll = buffer.pop()
    # Env 0: transitions 1, 2 (terminal), 4; the reset observation -3 follows
    # the terminal transition, the terminal observation 2 is gone.
    np.testing.assert_array_equal(unroll.observation[:, 0], [0, 1, -3, 4])
    np.testing.assert_array_equal(unroll.action[:, 0], [1, 2, 4])
    np.testing.assert_array_equal(unroll.discount[:, 0], [1, 0, 1])
    np.testing.assert_array_equal(unroll.episode_return[:, 0], [0, 20, 0])
    # Env 1 had no reset: its first three steps; step 4, 5 wait for later.
    np.testing.assert_array_equal(unroll.observation[:, 1], [0, 1, 2, 3])
    np.testing.assert_array_equal(unroll.action[:, 1], [1, 2, 3])
    self.assertEqual(buffer.lag, 1)
    self.assertIsNone(buffer.pop())
    _feed(buffer, 2, [{}, {}], start=6)
    unroll = buffer.pop()
    np.testing.assert_array_equal(unroll.observation[:, 0], [4, 5, 6, 7])
    np.testing.assert_array_equal(unroll.observation[:, 1], [3, 4, 5, 6])

  def test_waits_for_the_observation_after_a_terminal_last_step(self):
    buffer = trajectory_buffer.TrajectoryBuffer(1, T, np.zeros(1))
    _feed(buffer, 1, [{}, {}, {0: "done"}])
    self.assertFalse(buffer.ready())
    _feed(buffer, 1, [{0: "reset"}], start=4)
    unroll = buffer.pop()
    np.testing.assert_array_equal(unroll.observation[:, 0], [0, 1, 2, -4])
    np.testing.assert_array_equal(unroll.discount[:, 0], [1, 1, 0])

  def test_real_atari_unrolls_hold_only_real_transitions(self):
    """Frame stacks shift by one frame along every real transition, and a new
    episode's stack (three empty frames) follows every terminal one."""
    num_envs = 3
    with atari.AtariEnv("atari/Breakout", num_envs, seed=5,
                        max_episode_frames=40) as env:
      buffer = trajectory_buffer.TrajectoryBuffer(num_envs, T, env.reset())
      rng = np.random.default_rng(0)
      unrolls = []
      while len(unrolls) < 12:
        action = rng.integers(0, 4, num_envs, dtype=np.int32)
        step = env.step(action)
        buffer.add(action, step.reward, step.done, step.episode_return,
                   step.observation, step.reset_step)
        unroll = buffer.pop()
        if unroll is not None:
          unrolls.append(unroll)
    terminals = 0
    for unroll in unrolls:
      for t in range(T):
        for e in range(num_envs):
          following = unroll.observation[t + 1, e]
          if unroll.discount[t, e]:
            np.testing.assert_array_equal(following[..., :3],
                                          unroll.observation[t, e, ..., 1:])
          else:
            terminals += 1
            self.assertEqual(following[..., :3].max(), 0)
    self.assertGreater(terminals, num_envs)


if __name__ == "__main__":
  absltest.main()
