"""Tests for the gymnasium adapter (lpg_tf/envs/gym_adapter.py)."""

from absl.testing import absltest
from absl.testing import parameterized
import gymnasium
from gymnasium import spaces
from gymnasium.utils import env_checker
import numpy as np

import lpg_tf.envs
from lpg_tf.envs import gym_adapter

_ALL_NAMES = tuple((name.replace("/", "_"), name) for name in lpg_tf.envs.NAMES)
# Environments whose lifetime instance is not empty (random grids keep nothing
# fixed for a lifetime).
_LIFETIME_NAMES = tuple((key, name) for key, name in _ALL_NAMES
                        if not name.startswith("random/"))
_CHAIN_NAMES = tuple(
    (key, name) for key, name in _ALL_NAMES if name.startswith("chain/"))


def _make(name, **kwargs):
  lpg_tf.envs.register_gymnasium()
  return gymnasium.make(gym_adapter.gym_id(name), **kwargs)


def _play(env, actions):
  """Steps through `actions` (stopping early at an episode end)."""
  steps = []
  for action in actions:
    observation, reward, terminated, truncated, _ = env.step(action)
    steps.append((observation, reward, terminated, truncated))
    if terminated or truncated:
      break
  return steps


def _same_steps(first, second):
  """Whether two lists of (observation, reward, terminated, truncated) match."""
  return len(first) == len(second) and all(
      np.array_equal(a[0], b[0]) and a[1:] == b[1:]
      for a, b in zip(first, second))


class RegistrationTest(absltest.TestCase):

  def test_registers_every_environment_idempotently(self):
    lpg_tf.envs.register_gymnasium()
    lpg_tf.envs.register_gymnasium()
    ids = {gym_adapter.gym_id(name) for name in lpg_tf.envs.NAMES}
    self.assertLen(ids, 15)
    self.assertContainsSubset(
        {"lpg_tf/tabular-dense-v0", "lpg_tf/random-small_sparse-v0",
         "lpg_tf/chain-long_noisy-v0"}, ids)
    self.assertContainsSubset(ids, set(gymnasium.registry))


class GymEnvironmentTest(parameterized.TestCase):

  @parameterized.named_parameters(*_ALL_NAMES)
  def test_passes_env_checker(self, name):
    env = _make(name)
    env_checker.check_env(env.unwrapped)

  @parameterized.named_parameters(*_ALL_NAMES)
  def test_spaces_match_spec(self, name):
    env = _make(name)
    spec = lpg_tf.envs.make(name).spec
    self.assertEqual(env.action_space, spaces.Discrete(spec.num_actions))
    if spec.num_states is not None:
      self.assertEqual(env.observation_space, spaces.Discrete(spec.num_states))
    else:
      self.assertEqual(env.observation_space,
                       spaces.MultiBinary(list(spec.observation_shape)))
    observation, _ = env.reset(seed=0)
    self.assertIn(observation, env.observation_space)
    if spec.num_states is None:
      self.assertEqual(observation.dtype, np.int8)

  @parameterized.named_parameters(*_ALL_NAMES)
  def test_reset_seed_is_deterministic(self, name):
    env = _make(name)
    actions = [i % env.action_space.n for i in range(30)]
    runs = []
    for seed in (3, 3, 4):
      observation, _ = env.reset(seed=seed)
      runs.append([(observation, 0.0, False, False)] + _play(env, actions))
    self.assertTrue(_same_steps(runs[0], runs[1]))
    self.assertFalse(_same_steps(runs[0], runs[2]))

  @parameterized.named_parameters(*_LIFETIME_NAMES)
  def test_reset_without_seed_keeps_the_lifetime(self, name):
    env = _make(name)
    env.reset(seed=1)
    instance = env.unwrapped.instance
    episode_starts = set()
    for _ in range(8):
      observation, _ = env.reset()
      episode_starts.add(np.asarray(observation).tobytes())
      np.testing.assert_array_equal(env.unwrapped.instance, instance)
    # The episodes themselves differ.
    self.assertGreater(len(episode_starts), 1)
    other_instances = []
    for seed in (2, 3, 4):
      env.reset(seed=seed)
      other_instances.append(env.unwrapped.instance)
    self.assertFalse(
        all(np.array_equal(other, instance) for other in other_instances))

  def test_unseeded_environment_draws_a_lifetime(self):
    env = _make("tabular/sparse")
    observation, _ = env.reset()
    self.assertIn(observation, env.observation_space)
    self.assertEqual(env.unwrapped.instance.shape, (1, 2))

  @parameterized.named_parameters(*_CHAIN_NAMES)
  def test_chain_terminates_after_exactly_its_length(self, name):
    env = _make(name)
    for seed in (5, 6):
      env.reset(seed=seed)
      length = int(env.unwrapped.instance.length[0])
      for _ in range(2):
        env.reset()
        steps = _play(env, [0] * 60)
        self.assertLen(steps, length)
        *middle, (observation, reward, terminated, truncated) = steps
        self.assertTrue(terminated)
        self.assertFalse(truncated)
        self.assertIn(reward, (-1.0, 1.0))
        self.assertFalse(any(step[2] or step[3] for step in middle))
        if name != "chain/distractor":
          # The true terminal observation: position L (module chain).
          self.assertEqual(observation // 4, length)

  def test_grid_truncates_at_step_limit(self):
    env = _make("tabular/long_dense")  # eps_term = 0: never terminates.
    env.reset(seed=0)
    steps = _play(env, [i % 9 for i in range(2500)])
    self.assertLen(steps, 2000)
    self.assertEqual(steps[-1][2:], (False, True))
    self.assertFalse(any(step[2] or step[3] for step in steps[:-1]))
    with self.assertRaises(RuntimeError):
      env.step(0)

  def test_rejects_invalid_actions(self):
    env = _make("tabular/dense")
    env.reset(seed=0)
    with self.assertRaises(ValueError):
      env.step(9)

  @parameterized.parameters("tabular/dense", "random/small")
  def test_action_space_keyword(self, name):
    self.assertEqual(_make(name).action_space, spaces.Discrete(9))
    self.assertEqual(_make(name, action_space="move").action_space,
                     spaces.Discrete(9))
    env = _make(name, action_space="move_and_collect")
    self.assertEqual(env.action_space, spaces.Discrete(18))
    env.reset(seed=0)
    self.assertLen(_play(env, [17, 9, 3]), 3)

  def test_chain_rejects_action_space(self):
    with self.assertRaises(ValueError):
      _make("chain/short", action_space="move")


if __name__ == "__main__":
  absltest.main()
