"""MinAtar games as a batched numpy environment (lpg_tf/envs/minatar.py)."""

from absl.testing import absltest
from absl.testing import parameterized
import minatar as minatar_package
import numpy as np

from lpg_tf import errors
from lpg_tf.envs import minatar

# MinAtar's games: channels of the [10, 10, C] state, size of the minimal
# action set (the package's minimal_action_set()).
GAMES = {"asterix": (4, 5), "breakout": (4, 3), "freeway": (7, 3),
         "seaquest": (10, 6), "space_invaders": (6, 4)}
BALL = 1  # Breakout's ball channel.


def random_actions(env, seed):
  rng = np.random.default_rng(seed)
  while True:
    yield rng.integers(env.spec.num_actions, size=env.num_envs)


class NameTest(absltest.TestCase):

  def test_games(self):
    self.assertEqual(minatar.GAMES, tuple(GAMES))
    self.assertEqual(minatar.game_name("minatar/space_invaders"),
                     "space_invaders")

  def test_unknown_game_lists_the_valid_ones(self):
    for name in ("minatar/pong", "minatar/", "minatar/Breakout", "breakout"):
      with self.assertRaisesRegex(
          errors.ConfigError,
          "valid: minatar/asterix, minatar/breakout, minatar/freeway, "
          "minatar/seaquest, minatar/space_invaders$"):
        minatar.game_name(name)
    with self.assertRaises(errors.ConfigError):
      minatar.MinAtarVectorEnv("minatar/pong", 2, 0)


class VectorEnvTest(parameterized.TestCase):

  @parameterized.named_parameters(*[(game, game) for game in GAMES])
  def test_shapes_and_dtypes(self, game):
    channels, num_actions = GAMES[game]
    env = minatar.MinAtarVectorEnv(f"minatar/{game}", num_envs=3, seed=0)
    self.assertEqual(env.spec.observation_shape, (10, 10, channels))
    self.assertEqual(env.spec.num_actions, num_actions)
    self.assertEqual(env.spec.name, f"minatar/{game}")
    timestep = env.reset()
    np.testing.assert_array_equal(timestep.reward, np.zeros(3))
    np.testing.assert_array_equal(timestep.discount, np.ones(3))
    actions = random_actions(env, 0)
    for _ in range(3):
      timestep, next_observation = env.step(next(actions))
      for array in (timestep.observation, next_observation):
        self.assertEqual(array.shape, (3, 10, 10, channels))
        self.assertEqual(array.dtype, np.float32)
        self.assertTrue(np.isin(array, [0.0, 1.0]).all())
      self.assertEqual(timestep.reward.shape, (3,))
      self.assertEqual(timestep.reward.dtype, np.float32)
      self.assertEqual(timestep.discount.dtype, np.float32)
      self.assertEqual(timestep.truncated.dtype, bool)

  def test_steps_the_packages_game_with_sticky_actions(self):
    """One game equals minatar.Environment with MinAtar's defaults, its seed,
    and the auto-reset of lpg_tf's convention; actions index the minimal set."""
    env = minatar.MinAtarVectorEnv("minatar/breakout", num_envs=1, seed=3)
    reference = minatar_package.Environment("breakout")
    self.assertEqual(reference.sticky_action_prob, minatar.STICKY_ACTION_PROB)
    reference.seed(minatar.game_seeds(3, 1)[0])
    reference.reset()
    np.testing.assert_array_equal(env.reset().observation[0], reference.state())
    actions = random_actions(env, 1)
    ended_episodes = 0
    for _ in range(200):
      action = next(actions)
      reward, terminal = reference.act(env.action_set[action[0]])
      timestep, next_observation = env.step(action)
      np.testing.assert_array_equal(next_observation[0], reference.state())
      self.assertEqual(timestep.reward[0], reward)
      self.assertEqual(timestep.discount[0], 0.0 if terminal else 1.0)
      if terminal:
        ended_episodes += 1
        reference.reset()
      np.testing.assert_array_equal(timestep.observation[0], reference.state())
    self.assertGreater(ended_episodes, 2)

  def test_auto_reset_keeps_the_terminal_observation(self):
    env = minatar.MinAtarVectorEnv("minatar/breakout", num_envs=8, seed=0)
    env.reset()
    actions = random_actions(env, 0)
    ended_any = False
    for _ in range(100):
      timestep, next_observation = env.step(next(actions))
      ended = timestep.discount == 0.0
      np.testing.assert_array_equal(timestep.observation[~ended],
                                    next_observation[~ended])
      for i in np.flatnonzero(ended):
        ended_any = True
        # The ball left through the bottom row; the new episode's ball starts
        # in row 3.
        self.assertEqual(next_observation[i, 9, :, BALL].sum(), 1.0)
        self.assertEqual(timestep.observation[i, 3, :, BALL].sum(), 1.0)
        self.assertFalse(timestep.truncated[i])
    self.assertTrue(ended_any)

  def test_episodes_are_cut_at_the_step_limit(self):
    env = minatar.MinAtarVectorEnv("minatar/freeway", num_envs=2, seed=0,
                                   max_episode_steps=5)
    first = env.reset().observation
    actions = random_actions(env, 0)
    for step in range(1, 6):
      timestep, next_observation = env.step(next(actions))
      np.testing.assert_array_equal(timestep.truncated, [step == 5] * 2)
      np.testing.assert_array_equal(timestep.discount, [step != 5] * 2)
    self.assertFalse((next_observation == timestep.observation).all())
    # Freeway starts with the chicken at the bottom and every car at the left
    # edge (channels 0 and 1): the cut episodes started again.
    np.testing.assert_array_equal(timestep.observation[..., :2],
                                  first[..., :2])

  def test_a_seed_fixes_everything(self):

    def run(seed):
      env = minatar.MinAtarVectorEnv("minatar/asterix", num_envs=4, seed=seed)
      observations = [env.reset().observation]
      actions = random_actions(env, 0)
      for _ in range(50):
        observations.append(env.step(next(actions))[0].observation)
      return np.stack(observations)

    np.testing.assert_array_equal(run(7), run(7))
    self.assertFalse((run(7) == run(8)).all())

  def test_invalid_actions_are_refused(self):
    env = minatar.MinAtarVectorEnv("minatar/breakout", num_envs=2, seed=0)
    env.reset()
    for action in ([0, 3], [0, -1], [0]):
      with self.assertRaisesRegex(ValueError, "actions"):
        env.step(np.array(action))


class RandomPolicyTest(absltest.TestCase):

  def test_random_policy_return_is_finite(self):
    value = minatar.random_policy_return("minatar/breakout", num_envs=4,
                                         steps_per_env=300, seed=0)
    self.assertTrue(np.isfinite(value))
    self.assertGreaterEqual(value, 0.0)
    self.assertLess(value, 5.0)

  def test_none_when_no_episode_ends(self):
    self.assertIsNone(minatar.random_policy_return(
        "minatar/freeway", num_envs=1, steps_per_env=10, seed=0))


if __name__ == "__main__":
  absltest.main()
