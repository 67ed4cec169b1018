"""Tests for the delayed chain MDPs of Appendix A.3 (lpg_tf/envs/chain.py)."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf.envs import chain

_CHAIN_NAMES = tuple((name, name) for name in chain.CHAINS)
_INDEX_CHAIN_NAMES = tuple(
    (name, name) for name, spec in chain.CHAINS.items() if not spec.distractor)


def _make(name):
  return chain.DelayedChain("chain/" + name, chain.CHAINS[name])


def _repeat(instance, repeats):
  return tf.nest.map_structure(lambda x: tf.repeat(x, repeats, axis=0),
                               instance)


def _fixed_length(length, batch_size):
  return chain.ChainInstance(length=tf.fill([batch_size], length))


def _random_actions(step, batch_size):
  return tf.random.stateless_uniform([batch_size], [step, 7], minval=0,
                                     maxval=2, dtype=tf.int32)


def _rollout(env, instance, seed, num_steps, oracle=False, use_step=True):
  """Runs `num_steps` steps from `reset`; returns numpy `[T(+1), B]` arrays.

  Actions are uniformly random, except that with `oracle` the first action of
  every episode is the correct one. With `use_step` episodes auto-reset;
  otherwise `transition` is called and `num_steps` must not pass the end.
  """
  state, timestep = env.reset(instance, tf.constant(seed, tf.int32))
  step_fn = tf.function(env.step if use_step else env.transition)
  batch_size = state.position.shape[0]
  record = {"observation": [timestep.observation], "correct_action": [],
            "chose_correct": [], "position": [state.position], "action": [],
            "reward": [], "discount": [], "truncated": []}
  for t in range(num_steps):
    action = _random_actions(t, batch_size)
    if oracle:
      action = tf.where(state.position == 0, state.correct_action, action)
    record["correct_action"].append(state.correct_action)
    record["action"].append(action)
    state, timestep = step_fn(state, action)
    record["chose_correct"].append(state.chose_correct)
    record["position"].append(state.position)
    for key in ("observation", "reward", "discount", "truncated"):
      record[key].append(getattr(timestep, key))
  return {key: np.stack([np.asarray(v) for v in values])
          for key, values in record.items()}


class ChainSpecTest(parameterized.TestCase):

  def test_chains_match_appendix(self):
    self.assertEqual(
        chain.CHAINS, {
            "short": chain.ChainSpec(5, 30, False, False),
            "short_noisy": chain.ChainSpec(5, 30, True, False),
            "long": chain.ChainSpec(5, 50, False, False),
            "long_noisy": chain.ChainSpec(5, 50, True, False),
            "distractor": chain.ChainSpec(5, 30, False, True),
        })

  @parameterized.named_parameters(*_CHAIN_NAMES)
  def test_env_spec(self, name):
    spec = _make(name).spec
    max_length = chain.CHAINS[name].max_length
    self.assertEqual(spec.name, "chain/" + name)
    self.assertEqual(spec.num_actions, 2)
    self.assertEqual(spec.max_episode_steps, max_length)
    self.assertIsNone(spec.action_space)
    if name == "distractor":
      self.assertEqual(spec.observation_shape, (22,))
      self.assertEqual(spec.observation_dtype, tf.float32)
      self.assertIsNone(spec.num_states)
    else:
      self.assertEqual(spec.observation_shape, ())
      self.assertEqual(spec.observation_dtype, tf.int32)
      self.assertEqual(spec.num_states, 4 * (max_length + 1))


class ChainLengthTest(parameterized.TestCase):

  @parameterized.named_parameters(*_CHAIN_NAMES)
  def test_lengths_uniform_over_inclusive_range(self, name):
    spec = chain.CHAINS[name]
    num_values = spec.max_length - spec.min_length + 1
    lengths = _make(name).sample_instances(
        tf.constant([3, 4]), 200 * num_values).length.numpy()
    counts = np.bincount(lengths - spec.min_length, minlength=num_values)
    self.assertLen(counts, num_values)
    self.assertGreaterEqual(lengths.min(), spec.min_length)
    # Every length appears about 200 times (a 4-sigma band).
    self.assertTrue(np.all(np.abs(counts - 200) < 60), counts)

  @parameterized.named_parameters(*_CHAIN_NAMES)
  def test_episode_length_is_the_lifetime_length(self, name):
    env = _make(name)
    instance = _repeat(env.sample_instances(tf.constant([5, 6]), 4), 8)
    lengths = instance.length.numpy()
    self.assertGreater(len(set(lengths)), 1)
    num_steps = 3 * env.spec.max_episode_steps
    discount = _rollout(env, instance, [1, 2], num_steps)["discount"]
    for env_index in range(lengths.size):
      ends = np.flatnonzero(discount[:, env_index] == 0) + 1
      episode_lengths = np.diff(np.concatenate([[0], ends]))
      self.assertGreaterEqual(episode_lengths.size, 3)
      np.testing.assert_array_equal(episode_lengths, lengths[env_index])

  @parameterized.named_parameters(*_CHAIN_NAMES)
  def test_episodes_terminate_without_truncation(self, name):
    env = _make(name)
    instance = _fixed_length(chain.CHAINS[name].max_length, 4)
    record = _rollout(env, instance, [1, 2], 2 * env.spec.max_episode_steps)
    self.assertFalse(record["truncated"].any())
    self.assertEqual((record["discount"] == 0).sum(), 2 * 4)


class ChainRewardTest(parameterized.TestCase):

  @parameterized.named_parameters(*_CHAIN_NAMES)
  def test_final_reward_depends_only_on_first_action(self, name):
    env = _make(name)
    record = _rollout(env, _fixed_length(7, 256), [8, 9], 7, use_step=False)
    first_correct = record["action"][0] == record["correct_action"][0]
    self.assertTrue(first_correct.any() and not first_correct.all())
    np.testing.assert_array_equal(record["discount"][-1], 0.0)
    np.testing.assert_array_equal(record["reward"][-1],
                                  np.where(first_correct, 1.0, -1.0))
    np.testing.assert_array_equal(record["chose_correct"][-1], first_correct)

  @parameterized.named_parameters(*_CHAIN_NAMES)
  def test_middle_rewards(self, name):
    env = _make(name)
    length = 30
    record = _rollout(env, _fixed_length(length, 512), [1, 3], length,
                      use_step=False)
    middle = record["reward"][:-1]
    if chain.CHAINS[name].noisy:
      self.assertTrue(np.all(np.abs(middle) == 1.0))
      self.assertLess(abs(middle.mean()), 0.02)
      # Independent of the actions taken.
      for action in (0, 1):
        self.assertLess(
            abs(middle[record["action"][:-1] == action].mean()), 0.03)
    else:
      np.testing.assert_array_equal(middle, 0.0)

  @parameterized.named_parameters(*_CHAIN_NAMES)
  def test_optimal_policy_always_wins(self, name):
    env = _make(name)
    instance = _repeat(env.sample_instances(tf.constant([2, 2]), 4), 16)
    record = _rollout(env, instance, [4, 4], 2 * env.spec.max_episode_steps,
                      oracle=True)
    final_rewards = record["reward"][record["discount"] == 0]
    self.assertGreater(final_rewards.size, 64)
    np.testing.assert_array_equal(final_rewards, 1.0)

  @parameterized.named_parameters(*_CHAIN_NAMES)
  def test_random_policy_averages_zero(self, name):
    env = _make(name)
    record = _rollout(env, _fixed_length(5, 256), [6, 6], 20)
    final_rewards = record["reward"][record["discount"] == 0]
    self.assertEqual(final_rewards.size, 4 * 256)
    self.assertLess(abs(final_rewards.mean()), 0.1)


class ChainObservationTest(parameterized.TestCase):

  @parameterized.named_parameters(*_INDEX_CHAIN_NAMES)
  def test_index_observations_are_not_aliased(self, name):
    env = _make(name)
    length = chain.CHAINS[name].max_length
    record = _rollout(env, _fixed_length(length, 64), [3, 1], length,
                      use_step=False)
    correct_action = np.broadcast_to(record["correct_action"][0],
                                     record["observation"].shape)
    chose_correct = np.concatenate(
        [np.zeros_like(record["chose_correct"][:1]), record["chose_correct"]])
    states = set(zip(correct_action.ravel(), chose_correct.ravel(),
                     record["position"].ravel()))
    observations = record["observation"].ravel()
    pairs = set(zip(zip(correct_action.ravel(), chose_correct.ravel(),
                        record["position"].ravel()), observations))
    # Two start states, four states at each later position.
    self.assertLen(states, 2 + 4 * length)
    self.assertLen(set(observations), len(states))
    self.assertLen(pairs, len(states))
    self.assertGreaterEqual(observations.min(), 0)
    self.assertLess(observations.max(), env.spec.num_states)

  def test_distractor_relevant_bits(self):
    env = _make("distractor")
    record = _rollout(env, _fixed_length(10, 128), [5, 5], 10, use_step=False)
    observation = record["observation"]
    self.assertEqual(observation.shape, (11, 128, 22))
    self.assertEqual(observation.dtype, np.float32)
    np.testing.assert_array_equal(
        observation[..., 0], np.broadcast_to(
            record["correct_action"][0] == 0, observation.shape[:2]))
    np.testing.assert_array_equal(observation[0, :, 1], 0.0)
    first_correct = record["action"][0] == record["correct_action"][0]
    np.testing.assert_array_equal(
        observation[1:, :, 1], np.broadcast_to(first_correct, (10, 128)))

  def test_distractor_noise_bits(self):
    env = _make("distractor")
    record = _rollout(env, _fixed_length(30, 128), [5, 6], 30, use_step=False)
    noise = record["observation"][..., 2:]
    self.assertTrue(np.all((noise == 0.0) | (noise == 1.0)))
    # Each bit is Bernoulli(0.5), drawn afresh for every observation.
    np.testing.assert_allclose(noise.mean(axis=(0, 1)), 0.5, atol=0.03)
    self.assertAlmostEqual((noise[1:] == noise[:-1]).mean(), 0.5, delta=0.02)


class ChainDeterminismTest(parameterized.TestCase):

  @parameterized.named_parameters(*_CHAIN_NAMES)
  def test_same_seed_same_rollout(self, name):
    env = _make(name)
    instance = _repeat(env.sample_instances(tf.constant([1, 1]), 2), 4)
    first = _rollout(env, instance, [7, 7], 40)
    second = _rollout(env, instance, [7, 7], 40)
    other = _rollout(env, instance, [7, 8], 40)
    for key in first:
      np.testing.assert_array_equal(first[key], second[key])
    self.assertFalse(
        np.array_equal(first["correct_action"], other["correct_action"]))
    np.testing.assert_array_equal(
        env.sample_instances(tf.constant([1, 1]), 2).length,
        instance.length[::4])

  @parameterized.named_parameters(
      *[(f"{name}_{fn}", name, fn) for name in chain.CHAINS
        for fn in ("transition", "step")])
  def test_jit_matches_eager(self, name, step_fn):
    env = _make(name)
    # A negative seed: XLA and eager derive different keys from negative
    # seeds with the "auto_select" RNG algorithm.
    seed = tf.constant([-3, 11], tf.int32)
    sample = lambda s: _repeat(env.sample_instances(s, 2), 4)
    jit_sample = tf.function(sample, jit_compile=True)
    jit_reset = tf.function(env.reset, jit_compile=True)
    eager_step = getattr(env, step_fn)
    jit_step = tf.function(eager_step, jit_compile=True)
    instance, jit_instance = sample(seed), jit_sample(seed)
    np.testing.assert_array_equal(instance.length, jit_instance.length)
    state, timestep = env.reset(instance, seed)
    jit_state, jit_timestep = jit_reset(jit_instance, seed)
    # `transition` runs to the end of the shortest chain, `step` past it.
    num_steps = (int(instance.length.numpy().min()) if step_fn == "transition"
                 else env.spec.max_episode_steps + 1)
    for t in range(num_steps):
      tf.nest.map_structure(np.testing.assert_array_equal,
                            (state, timestep), (jit_state, jit_timestep))
      action = _random_actions(t, 8)
      state, timestep = eager_step(state, action)
      jit_state, jit_timestep = jit_step(jit_state, action)
    tf.nest.map_structure(np.testing.assert_array_equal,
                          (state, timestep), (jit_state, jit_timestep))

if __name__ == "__main__":
  absltest.main()
