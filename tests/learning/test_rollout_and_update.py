"""Rollouts and the rule-driven agent update, end to end in-graph."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf import agents
from lpg_tf import envs
from lpg_tf import rules
from lpg_tf import types
from lpg_tf.learning import optimizers
from lpg_tf.learning import rollout
from lpg_tf.learning import update_step

L, B, T = 3, 8, 6


def make_setup(env_name, seed=0):
  env = envs.make(env_name)
  agent = agents.build_agent(env.spec, num_lifetimes=L, seed=seed, prediction_size=5)
  instances = tf.nest.map_structure(
      lambda x: tf.repeat(x, B, axis=0),
      env.sample_instances(tf.constant([seed, 1]), L))
  state = rollout.initial_actor_state(env, instances, tf.constant([seed, 2]))
  return env, agent, state


class RolloutTest(parameterized.TestCase):

  @parameterized.parameters("chain/short", "tabular/sparse", "random/small",
                            "chain/distractor")
  def test_shapes_and_episode_returns(self, env_name):
    env, agent, state = make_setup(env_name)
    traj, next_state = rollout.unroll(agent.apply, agent.params, env, state, T, L)
    obs_shape = tuple(env.spec.observation_shape)
    self.assertEqual(tuple(traj.observation.shape), (L, T + 1, B) + obs_shape)
    for x in (traj.action, traj.reward, traj.discount, traj.episode_return):
      self.assertEqual(tuple(x.shape), (L, T, B))
    # The last observation of the trajectory is where acting continues.
    np.testing.assert_array_equal(
        traj.observation[:, -1].numpy().reshape((L * B,) + obs_shape),
        next_state.timestep.observation.numpy())
    self.assertTrue(np.all(traj.action.numpy() < env.spec.num_actions))

  def test_episode_return_is_sum_of_rewards_of_the_episode(self):
    env, agent, state = make_setup("chain/short_noisy")
    traj, _ = rollout.unroll(agent.apply, agent.params, env, state, 70, L)
    r, d, g = traj.reward.numpy(), traj.discount.numpy(), traj.episode_return.numpy()
    checked = 0
    for l in range(L):
      for b in range(B):
        running, started = 0.0, True  # the first episode starts at reset, t = 0
        for t in range(70):
          running += r[l, t, b]
          if d[l, t, b] == 0.0:
            if started:
              self.assertAlmostEqual(g[l, t, b], running, places=4)
              checked += 1
            running = 0.0
    self.assertGreater(checked, 0)

  def test_deterministic_under_seed(self):
    out = []
    for _ in range(2):
      env, agent, state = make_setup("tabular/dense", seed=4)
      traj, _ = rollout.unroll(agent.apply, agent.params, env, state, T, L)
      out.append(traj.action.numpy())
    np.testing.assert_array_equal(out[0], out[1])


class TerminalObservationTest(parameterized.TestCase):
  """y(s_{t+1}) of a terminal step is read on the terminal observation (B.1)."""

  def test_rollout_keeps_the_terminal_observation(self):
    env, agent, state = make_setup("chain/short")
    traj, _ = rollout.unroll(agent.apply, agent.params, env, state, 40, L)
    terminal = traj.discount.numpy() == 0.0
    self.assertTrue(terminal.any())
    nxt, following = traj.next_observation.numpy(), traj.observation[:, 1:].numpy()
    np.testing.assert_array_equal(nxt[~terminal], following[~terminal])
    # At a terminal step the acting observation is the next episode's first.
    self.assertTrue(np.any(nxt[terminal] != following[terminal]))

  def test_rule_reads_y_of_the_terminal_observation(self):
    env, agent, state = make_setup("chain/short")
    traj, _ = rollout.unroll(agent.apply, agent.params, env, state, 40, L)
    a2c = rules.make("a2c")
    seen = []

    class Recording(type(a2c)):
      def __call__(self, inputs):
        seen.append(inputs)
        return super().__call__(inputs)

    opt = optimizers.Optimiser(optimizers.SGD)
    update_step.update(agent.apply, Recording(), opt, agent.params,
                       opt.init(agent.params), traj, tf.fill([L], 0.9),
                       tf.ones([L]), tf.zeros([L]))
    want = tf.nn.softmax(agent.apply(agent.params, traj.next_observation)
                         .prediction_logits)
    want = tf.reshape(tf.transpose(want, [1, 0, 2, 3]), seen[0].y_next.shape)
    np.testing.assert_allclose(seen[0].y_next.numpy(), want.numpy(), rtol=1e-6)


class UpdateStepTest(parameterized.TestCase):

  def test_targets_are_constants_for_theta(self):
    """The update's gradient equals that of the loss with precomputed targets (Eq. 2)."""
    env, agent, state = make_setup("chain/short")
    traj, _ = rollout.unroll(agent.apply, agent.params, env, state, T, L)
    rule = rules.make("a2c")
    opt = optimizers.Optimiser(optimizers.SGD)
    params = {k: tf.identity(v) for k, v in agent.params.items()}
    lr = tf.ones([L])
    gamma = tf.fill([L], 0.9)
    new_params, _, info = update_step.update(
        agent.apply, rule, opt, params, opt.init(params), traj, gamma, lr,
        tf.zeros([L]))
    # Reference: targets computed once, held fixed, loss differentiated.
    from lpg_tf.learning import agent_update  # pylint: disable=g-import-not-at-top
    with tf.GradientTape() as tape:
      tape.watch(params)
      outputs = agent.apply(params, traj.observation)
      sliced = types.AgentOutput(*[x[:, :T] for x in outputs])
      loss = tf.reduce_sum(agent_update.agent_loss(
          sliced, traj.action, info.targets, tf.zeros([L]), rule.loss_config))
    grads = tape.gradient(loss, params)
    for k in params:
      np.testing.assert_allclose(new_params[k].numpy(),
                                 (params[k] - grads[k]).numpy(), rtol=1e-5, atol=1e-6)

  def test_lifetimes_are_independent(self):
    """A lifetime's update does not depend on another lifetime's learning rate."""
    env, agent, state = make_setup("chain/short")
    traj, _ = rollout.unroll(agent.apply, agent.params, env, state, T, L)
    opt = optimizers.Optimiser(optimizers.SGD)
    params = {k: tf.identity(v) for k, v in agent.params.items()}
    results = []
    for lr in ([1.0, 1.0, 1.0], [1.0, 5.0, 1.0]):
      new, _, _ = update_step.update(agent.apply, rules.make("a2c"), opt, params,
                                     opt.init(params), traj, tf.fill([L], 0.9),
                                     tf.constant(lr), tf.zeros([L]))
      results.append(new)
    for k in params:
      np.testing.assert_allclose(results[0][k][0].numpy(), results[1][k][0].numpy())
      np.testing.assert_allclose(results[0][k][2].numpy(), results[1][k][2].numpy())
      self.assertFalse(np.allclose(results[0][k][1].numpy(), results[1][k][1].numpy()))
