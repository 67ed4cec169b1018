"""lpg_tf/learning/learner.py: one learner, trajectories from a rollout or an iterator."""

from absl.testing import parameterized
import numpy as np
import pytest
import tensorflow as tf

from lpg_tf import agents
from lpg_tf import envs
from lpg_tf import rules
from lpg_tf import types
from lpg_tf.learning import learner as learner_lib
from lpg_tf.learning import optimizers
from lpg_tf.learning import random_policy
from lpg_tf.learning import update_step

# Recorded with the previous in-graph trainer (rollout then update in one
# compiled step) on the same set-up: per update, per lifetime,
# (loss, policy_entropy, episode_return_sum, episode_count).
REFERENCE = {
  "tabular/sparse": [
    ([-0.0247314, 0.0705512], [2.1971784, 2.1971786],
     [0.0, 1.0], [0.0, 1.0]),
    ([-0.0224722, -0.1615988], [2.1971824, 2.1971836],
     [0.0, -1.0], [0.0, 1.0]),
    ([0.1114394, -0.0204404], [2.1971819, 2.1971612],
     [1.0, 0.0], [1.0, 0.0]),
    ([-0.3913682, -0.0173735], [2.1971803, 2.1970401],
     [-2.0, 0.0], [2.0, 0.0]),
    ([0.0025761, -0.0898541], [2.1969459, 2.1970577],
     [0.0, 0.0], [6.0, 7.0]),
    ([-0.2160695, -0.0150956], [2.1971755, 2.1970725],
     [-1.0, 0.0], [1.0, 0.0]),
  ],
  "random/small": [
    ([-0.1994638, 0.1125487], [2.1903975, 2.1919115],
     [-3.0, -1.0], [3.0, 2.0]),
    ([0.1100404, 0.4599371], [2.1899886, 2.192682],
     [0.0, 0.0], [0.0, 0.0]),
    ([0.1936327, -0.0110708], [2.1907802, 2.1925931],
     [0.0, 0.0], [0.0, 0.0]),
    ([0.273109, -0.1856037], [2.1907578, 2.1935759],
     [0.0, -2.0], [1.0, 1.0]),
    ([-0.3033083, 0.0845413], [2.1910541, 2.193723],
     [-2.0, -1.0], [3.0, 2.0]),
    ([-0.3374315, 0.1433011], [2.1908853, 2.1937797],
     [-2.0, 0.0], [2.0, 0.0]),
  ],
}


def rollout_learner(env_name, optimiser, learning_rate, num_lifetimes=2,
                    num_envs=8, unroll_length=10, agent_seed=1, seed=3,
                    kl_cost=(0.5, 0.1), gamma=(0.99, 0.9), jit_compile=True):
  env = envs.make(env_name)
  agent = agents.build_agent(env.spec, num_lifetimes=num_lifetimes,
                             seed=agent_seed)
  source = learner_lib.RolloutSource(env, num_lifetimes, num_envs,
                                     unroll_length, seed)
  return learner_lib.Learner(
      agent, rules.make("a2c"), optimiser,
      learning_rate=np.asarray(learning_rate, np.float32),
      kl_cost=np.asarray(kl_cost, np.float32),
      gamma=np.asarray(gamma, np.float32), source=source,
      jit_compile=jit_compile)


class RolloutSourceTest(parameterized.TestCase):

  @parameterized.parameters(("tabular/sparse", optimizers.SGD, [40.0, 20.0]),
                            ("random/small", optimizers.ADAM, [0.002, 0.001]))
  def test_matches_the_recorded_trainer(self, env_name, optimiser, lr):
    learner = rollout_learner(env_name, optimiser, lr)
    for loss, entropy, return_sum, count in REFERENCE[env_name]:
      metrics = learner.step()
      np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(metrics["policy_entropy"], entropy, atol=1e-6)
      np.testing.assert_array_equal(metrics["episode_return_sum"], return_sum)
      np.testing.assert_array_equal(metrics["episode_count"], count)
      np.testing.assert_array_equal(metrics["env_steps"], [80, 80])
    self.assertEqual(learner.num_updates, len(REFERENCE[env_name]))

  def test_a2c_learns_short_chain(self):
    """A2C beats the random policy's return (about 0) on chain/short quickly."""
    learner = rollout_learner("chain/short", optimizers.SGD, [40.0, 40.0],
                              num_envs=32, unroll_length=20, agent_seed=0,
                              seed=0, kl_cost=[0.0, 0.0], gamma=[0.99, 0.99])
    late = []
    for i in range(150):
      m = learner.step()
      if i >= 120:
        late.append(m["episode_return_sum"].sum() / max(m["episode_count"].sum(), 1))
    self.assertGreater(np.mean(late), 0.5)
    random_return = random_policy.random_policy_return(
        envs.make("chain/short"), 32, 400, seed=0)
    self.assertLess(abs(random_return), 0.25)

  @pytest.mark.slow
  def test_jit_equals_eager(self):
    results = []
    for jit in (True, False):
      learner = rollout_learner("tabular/sparse", optimizers.SGD, [40.0, 40.0],
                                num_envs=4, unroll_length=5,
                                kl_cost=[0.0, 0.0], gamma=[0.99, 0.99],
                                jit_compile=jit)
      for _ in range(3):
        learner.step()
      results.append({k: v.numpy() for k, v in learner.params.items()})
    for k in results[0]:
      np.testing.assert_allclose(results[0][k], results[1][k], rtol=1e-4, atol=1e-5)

  def test_sync_agent_writes_theta_into_the_agent(self):
    # Without XLA: copying theta does not depend on how the step was compiled
    # (the recorded-trainer tests run the XLA step).
    learner = rollout_learner("tabular/sparse", optimizers.SGD, [40.0, 40.0],
                              jit_compile=False)
    learner.step()
    learner.sync_agent()
    agent_params = learner._agent.params  # pylint: disable=protected-access
    for name, value in learner.params.items():
      np.testing.assert_array_equal(agent_params[name].numpy(), value.numpy())

  def test_given_instances_replace_the_drawn_ones(self):
    env = envs.make("tabular/sparse")
    instances = tf.constant([[0, 1], [5, 7]], tf.int32)
    source = learner_lib.RolloutSource(env, 2, 3, 4, seed=0,
                                       instances=instances)
    np.testing.assert_array_equal(source.initial_state().env_state.instance,
                                  [[0, 1]] * 3 + [[5, 7]] * 3)
    drawn = learner_lib.RolloutSource(env, 2, 3, 4, seed=0)
    self.assertFalse(np.array_equal(drawn.initial_state().env_state.instance,
                                    source.initial_state().env_state.instance))

  def test_settings_repeat_the_seeds_instances(self):
    """fresh_state(key, num_seeds=S): lifetime g * S + j gets the instance
    lifetime j of an S-lifetime source draws from the key."""
    env = envs.make("tabular/sparse")
    key = [3, 6000]
    tiled = learner_lib.RolloutSource(env, 4, 2, 4, seed=0).fresh_state(
        key, num_seeds=2).env_state.instance.numpy().reshape(4, 2, -1)
    seeds = learner_lib.RolloutSource(env, 2, 2, 4, seed=0).fresh_state(
        key).env_state.instance.numpy().reshape(2, 2, -1)
    np.testing.assert_array_equal(tiled[:2], seeds)
    np.testing.assert_array_equal(tiled[2:], seeds)
    self.assertFalse(np.array_equal(seeds[0], seeds[1]))


def synthetic_trajectories(spec, num_batches, num_steps, batch, seed=0):
  """`[num_batches, 1, T, B]` tabular trajectories with random episode ends."""
  rng = np.random.default_rng(seed)
  shape = [num_batches, 1, num_steps, batch]
  observation = rng.integers(0, spec.num_states,
                             shape[:2] + [num_steps + 1, batch], dtype=np.int32)
  return types.Trajectory(
      observation=observation,
      action=rng.integers(0, spec.num_actions, shape, dtype=np.int32),
      reward=rng.normal(size=shape).astype(np.float32),
      discount=(rng.uniform(size=shape) > 0.3).astype(np.float32),
      episode_return=rng.normal(size=shape).astype(np.float32),
      next_observation=observation[:, :, 1:])


class IteratorSourceTest(parameterized.TestCase):

  @parameterized.parameters(True, False)
  def test_updates_from_a_dataset_like_update_step(self, jit_compile):
    env = envs.make("tabular/sparse")
    data = synthetic_trajectories(env.spec, num_batches=3, num_steps=5, batch=4)
    dataset = tf.data.Dataset.from_tensor_slices(data)
    rule = rules.make("a2c")
    learner = learner_lib.Learner(
        agents.build_agent(env.spec, num_lifetimes=1, seed=2), rule,
        optimizers.ADAM, learning_rate=[0.01], kl_cost=[0.5], gamma=[0.9],
        source=learner_lib.IteratorSource(iter(dataset)),
        jit_compile=jit_compile)
    reference_agent = agents.build_agent(env.spec, num_lifetimes=1, seed=2)
    optimiser = optimizers.Optimiser(optimizers.ADAM)
    params = {k: tf.identity(v) for k, v in reference_agent.params.items()}
    opt_state = optimiser.init(params)
    for index in range(3):
      trajectory = tf.nest.map_structure(lambda x: tf.constant(x[index]), data)  # pylint: disable=cell-var-from-loop
      params, opt_state, info = update_step.update(
          reference_agent.apply, rule, optimiser, params, opt_state, trajectory,
          tf.constant([0.9]), tf.constant([0.01]), tf.constant([0.5]))
      metrics = learner.step()
      np.testing.assert_allclose(metrics["loss"], info.loss.numpy(), rtol=1e-5)
      ended = data.discount[index] == 0.0
      np.testing.assert_allclose(metrics["episode_return_sum"],
                                 [data.episode_return[index][ended].sum()],
                                 rtol=1e-6)
      np.testing.assert_array_equal(metrics["episode_count"], [ended.sum()])
      np.testing.assert_array_equal(metrics["env_steps"], [20])
    for name, value in params.items():
      np.testing.assert_allclose(learner.params[name].numpy(), value.numpy(),
                                 rtol=1e-5, atol=1e-6)
    with self.assertRaises(StopIteration):
      learner.step()
