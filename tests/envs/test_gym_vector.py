"""gymnasium.make_vec on lpg_tf ids (lpg_tf/envs/gym_vector.py) and the async
vector mode's refusal (lpg_tf/envs/gym_adapter.py)."""

import os
import subprocess
import sys
import textwrap

from absl.testing import absltest
import gymnasium
import numpy as np

import lpg_tf.envs
from lpg_tf.envs import gym_adapter
from lpg_tf.envs import gym_vector

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ASYNC_AFTER_TENSORFLOW = textwrap.dedent("""
    import gymnasium, lpg_tf.envs
    lpg_tf.envs.register_gymnasium()
    gymnasium.make("lpg_tf/chain-short-v0").reset(seed=0)  # TensorFlow has run.
    try:
      gymnasium.make_vec("lpg_tf/chain-short-v0", num_envs=2,
                         vectorization_mode="async")
    except Exception as e:
      print("refused", type(e).__name__)
""")


def make_vec(name, num_envs, **kwargs):
  lpg_tf.envs.register_gymnasium()
  return gymnasium.make_vec(gym_adapter.gym_id(name), num_envs=num_envs, **kwargs)


class VectorEnvTest(absltest.TestCase):

  def test_make_vec_gives_the_batched_in_graph_environment(self):
    envs = make_vec("chain/short", 3)
    self.assertIsInstance(envs.unwrapped, gym_vector.VectorGymEnvironment)
    self.assertIsInstance(envs.unwrapped, gymnasium.vector.VectorEnv)
    self.assertEqual(envs.action_space, gymnasium.spaces.MultiDiscrete([2] * 3))
    observations, _ = envs.reset(seed=0)
    self.assertEqual(observations.shape, (3,))
    self.assertTrue(envs.observation_space.contains(observations))

  def test_episodes_end_and_reset_in_the_same_step(self):
    envs = make_vec("chain/short", 4)
    envs.reset(seed=1)
    for _ in range(50):
      observations, rewards, terminated, truncated, info = envs.step(np.zeros(4, np.int64))
      self.assertEqual(rewards.shape, (4,))
      if terminated.any() or truncated.any():
        break
    ended = terminated | truncated
    self.assertTrue(ended.any())
    np.testing.assert_array_equal(info["_final_obs"], ended)
    self.assertTrue(envs.observation_space.contains(observations))
    self.assertTrue(envs.observation_space.contains(info["final_obs"]))

  def test_one_environment_matches_gymnasium_make(self):
    vector = make_vec("tabular/dense", 1)
    single = gymnasium.make(gym_adapter.gym_id("tabular/dense"))
    vector_obs, _ = vector.reset(seed=3)
    single_obs, _ = single.reset(seed=3)
    self.assertEqual(vector_obs[0], single_obs)
    for action in (1, 2, 3, 4, 5):
      vector_obs, vector_reward, *_ = vector.step(np.array([action]))
      single_obs, single_reward, *_ = single.step(action)
      self.assertEqual(vector_obs[0], single_obs)
      self.assertEqual(vector_reward[0], single_reward)

  def test_tensor_observations(self):
    envs = make_vec("random/small", 2)
    observations, _ = envs.reset(seed=0)
    self.assertEqual(observations.dtype, np.int8)
    self.assertEqual(observations.shape[0], 2)

  def test_async_mode_after_tensorflow_is_refused_not_hung(self):
    result = subprocess.run(
        [sys.executable, "-c", ASYNC_AFTER_TENSORFLOW], capture_output=True, text=True,
        timeout=240, cwd=REPO, env=dict(os.environ, PYTHONPATH=REPO), check=False)
    self.assertIn("refused", result.stdout, result.stderr[-3000:])
    self.assertIn("cannot run in a process forked after TensorFlow started",
                  result.stderr)


if __name__ == "__main__":
  absltest.main()
