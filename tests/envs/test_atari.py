"""Tests for the ALE vector environment adapter (lpg_tf/envs/atari.py)."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf.envs import atari

# A frame limit that ends an episode after 100 / 4 = 25 agent steps.
SHORT_EPISODE_FRAMES = 100


class NamesTest(parameterized.TestCase):

  @parameterized.parameters(
      ("atari/Breakout", "breakout"), ("atari/MsPacman", "ms_pacman"),
      ("atari/ms_pacman", "ms_pacman"), ("atari/SpaceInvaders", "space_invaders"),
      ("atari/pong", "pong"))
  def test_rom_id(self, name, rom):
    self.assertEqual(atari.rom_id(name), rom)

  @parameterized.parameters("atari/Nope", "Breakout", "atari/", "tabular/dense")
  def test_unknown_games_are_refused_with_valid_names(self, name):
    with self.assertRaisesRegex(errors.ConfigError,
                                "atari/Breakout.*atari/Zaxxon"):
      atari.rom_id(name)

  def test_every_shipped_rom_has_a_name(self):
    self.assertLen(atari.game_names(), len(atari.rom_ids()))
    self.assertIn("atari/MontezumaRevenge", atari.game_names())

  @parameterized.parameters(("atari/Breakout", 4), ("atari/Pong", 6),
                            ("atari/Boxing", 18))
  def test_spec_has_the_minimal_action_set(self, name, num_actions):
    spec = atari.spec(name)
    self.assertEqual(spec.num_actions, num_actions)
    self.assertEqual(spec.observation_shape, (84, 84, 4))
    self.assertEqual(spec.observation_dtype, tf.uint8)
    self.assertEqual(spec.max_episode_steps, 27_000)
    self.assertIsNone(spec.num_states)


class HumanNormalisedTest(parameterized.TestCase):

  @parameterized.parameters(("atari/Breakout", 1.7, 30.5),
                            ("atari/Pong", -20.7, 14.6),
                            ("atari/Boxing", 0.1, 12.1),
                            ("atari/MsPacman", 307.3, 6951.6))
  def test_random_is_zero_and_human_is_one(self, name, random_score, human):
    self.assertAlmostEqual(atari.human_normalised(name, random_score), 0.0)
    self.assertAlmostEqual(atari.human_normalised(name, human), 1.0)
    self.assertAlmostEqual(
        atari.human_normalised(name, (random_score + human) / 2), 0.5)
    self.assertEqual(atari.random_score(name), random_score)

  @parameterized.parameters("atari/Adventure", "atari/VideoPinball",
                            "atari/NotAGame")
  def test_unknown_reference_gives_none(self, name):
    self.assertIsNone(atari.human_normalised(name, 10.0))

  def test_table_games_are_all_shipped(self):
    self.assertEmpty(set(atari.HUMAN_AND_RANDOM_SCORES) - set(atari.rom_ids()))
    self.assertLen(atari.HUMAN_AND_RANDOM_SCORES, 56)


class AtariEnvTest(absltest.TestCase):

  def test_observations_are_channels_last_frame_stacks(self):
    with atari.AtariEnv("atari/Breakout", 2, seed=0) as env:
      observation = env.reset()
      self.assertEqual(observation.shape, (2, 84, 84, 4))
      self.assertEqual(observation.dtype, np.uint8)
      # A fresh stack holds one frame, in the newest (last) channel.
      self.assertEqual(observation[..., :3].max(), 0)
      self.assertGreater(observation[..., 3].max(), 0)
      step = env.step(np.zeros(2, np.int32))
      np.testing.assert_array_equal(step.observation[..., :3],
                                    observation[..., 1:])

  def test_the_step_after_an_episode_end_is_a_flagged_reset(self):
    with atari.AtariEnv("atari/Pong", 3, seed=1,
                        max_episode_frames=SHORT_EPISODE_FRAMES) as env:
      env.reset()
      steps = [env.step(np.full(3, 2, np.int32)) for _ in range(60)]
    done = np.array([s.done for s in steps])
    reset = np.array([s.reset_step for s in steps])
    # Cut at 25 agent steps, then one reset step, then 25 steps again.
    np.testing.assert_array_equal(np.nonzero(done[:, 0])[0], [24, 50])
    np.testing.assert_array_equal(reset[1:], done[:-1])
    self.assertFalse(reset[0].any())
    self.assertTrue(all(s.truncated[s.done].all() for s in steps))
    for s in steps:
      np.testing.assert_array_equal(s.reward[s.reset_step], 0.0)
      self.assertTrue((s.observation[s.reset_step][..., :3] == 0).all())

  def test_episode_return_sums_raw_rewards_of_the_episode(self):
    with atari.AtariEnv("atari/Pong", 4, seed=2,
                        max_episode_frames=2000) as env:
      env.reset()
      rng = np.random.default_rng(0)
      running = np.zeros(4)
      checked = 0
      lowest_reward = 0.0
      for _ in range(600):
        step = env.step(rng.integers(0, 6, 4, dtype=np.int32))
        running += step.reward
        lowest_reward = min(lowest_reward, step.reward.min())
        for e in np.nonzero(step.done)[0]:
          self.assertEqual(step.episode_return[e], running[e])
          running[e] = 0.0
          checked += 1
        np.testing.assert_array_equal(step.episode_return[~step.done], 0.0)
    self.assertGreater(checked, 0)
    self.assertEqual(lowest_reward, -1.0)  # Pong: -1 per point lost.

  def test_bad_counts_are_refused(self):
    with self.assertRaises(errors.ConfigError):
      atari.AtariEnv("atari/Pong", 0)
    with self.assertRaises(errors.ConfigError):
      atari.raw_throughput("atari/Pong", 2, 0)

  def test_raw_throughput_is_positive(self):
    self.assertGreater(atari.raw_throughput("atari/Breakout", 2, 20), 0.0)


if __name__ == "__main__":
  absltest.main()
