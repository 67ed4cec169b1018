"""Tests for lpg_tf.agents.networks: shapes, purity, independence, gradients."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf.agents import networks
from lpg_tf.agents import torsos

NUM_LIFETIMES = 3
NUM_ACTIONS = 4
PREDICTION_SIZE = 5
NUM_STATES = 7

# Small agents of every torso kind:
# (torso, observation_shape, dtype, num_states).
SMALL_AGENTS = {
    "tabular": (torsos.tabular(), (), tf.int32, NUM_STATES),
    "mlp": (torsos.mlp([6, 5]), (3, 2), tf.float32, None),
    "conv": (torsos.grid_conv([3, 2], [4]), (4, 4, 2), tf.float32, None),
}
# Every architecture of Table 3 and Table 4, on observations of its size.
PAPER_AGENTS = {
    "tabular": (torsos.tabular(), (), tf.int32, 50),
    "d16_chain_distractor": (torsos.mlp([16]), (22,), tf.float32, None),
    "d32_random_small": (torsos.mlp([32]), (5, 5, 2), tf.float32, None),
    "c16_d32_random_dense": (torsos.grid_conv([16], [32]), (11, 11, 4),
                             tf.float32, None),
    "c32_16_16_d256_random_very_dense": (torsos.grid_conv([32, 16, 16], [256]),
                                         (11, 11, 4), tf.float32, None),
    "atari": (torsos.atari(), (84, 84, 4), tf.uint8, None),
}


def _make_agent(config, seed=0, num_lifetimes=NUM_LIFETIMES,
                per_lifetime_convs=False):
  torso, observation_shape, dtype, num_states = config
  return networks.AgentNetwork(
      num_lifetimes=num_lifetimes,
      observation_shape=observation_shape,
      observation_dtype=dtype,
      num_actions=NUM_ACTIONS,
      torso=torso,
      prediction_size=PREDICTION_SIZE,
      num_states=num_states,
      seed=seed,
      per_lifetime_convs=per_lifetime_convs)


def _observation(config, batch_shape, seed=(0, 0),
                 num_lifetimes=NUM_LIFETIMES):
  """Random observations `[L, *batch_shape, *observation_shape]`."""
  _, observation_shape, dtype, num_states = config
  shape = [num_lifetimes, *batch_shape, *observation_shape]
  if num_states is not None:
    return tf.random.stateless_uniform(shape, seed, maxval=num_states,
                                       dtype=tf.int32)
  if dtype == tf.uint8:
    return tf.cast(
        tf.random.stateless_uniform(shape, seed, maxval=256, dtype=tf.int32),
        tf.uint8)
  return tf.cast(
      tf.random.stateless_uniform(shape, seed, maxval=2, dtype=tf.int32), dtype)


def _scalar_loss(output, action=0):
  """A nonlinear scalar of all three heads, like Eq. 2's terms."""
  log_pi = tf.nn.log_softmax(output.policy_logits)[..., action]
  log_y = tf.nn.log_softmax(output.prediction_logits)
  return (-tf.reduce_sum(log_pi) - tf.reduce_sum(tf.reduce_mean(log_y, -1)) +
          tf.reduce_sum(tf.square(output.baseline)))


def _named(configs):
  return [(name, config) for name, config in configs.items()]


class AgentNetworkTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.named_parameters(
      *[(f"{name}_{'x'.join(map(str, batch)) or 'none'}", config, batch)
        for name, config in PAPER_AGENTS.items()
        for batch in [(), (2,), (3, 2)]])
  def test_output_shapes(self, config, batch_shape):
    agent = _make_agent(config)
    output = agent(_observation(config, batch_shape))
    self.assertEqual(output.policy_logits.shape,
                     [NUM_LIFETIMES, *batch_shape, NUM_ACTIONS])
    self.assertEqual(output.prediction_logits.shape,
                     [NUM_LIFETIMES, *batch_shape, PREDICTION_SIZE])
    self.assertEqual(output.baseline.shape, [NUM_LIFETIMES, *batch_shape])

  @parameterized.named_parameters(*_named(SMALL_AGENTS))
  def test_lifetimes_are_independent(self, config):
    agent = _make_agent(config)
    params = agent.init_params(tf.constant([1, 2]))
    observation = _observation(config, [6, 2])
    changed_lifetime = 1
    perturbed = {
        key: tf.tensor_scatter_nd_add(
            value, [[changed_lifetime]],
            tf.ones_like(value[changed_lifetime:changed_lifetime + 1]))
        for key, value in params.items()
    }
    before = agent.apply(params, observation)
    after = agent.apply(perturbed, observation)
    for old, new in zip(before, after):
      self.assertNotAllClose(old[changed_lifetime], new[changed_lifetime])
      for lifetime in [0, 2]:
        self.assertAllEqual(old[lifetime], new[lifetime])

  @parameterized.named_parameters(
      ("c32_16_16_d256", PAPER_AGENTS["c32_16_16_d256_random_very_dense"]),
      ("atari", PAPER_AGENTS["atari"]))
  def test_per_lifetime_convs_give_the_same_agent(self, config):
    """One convolution per lifetime (for meta-steps without XLA) and im2col
    give the same outputs and gradients from the same seed."""
    observation = _observation(config, [2])
    results = []
    for per_lifetime_convs in (False, True):
      agent = _make_agent(config, seed=3, per_lifetime_convs=per_lifetime_convs)
      with tf.GradientTape() as tape:
        loss = _scalar_loss(agent(observation))
      results.append((loss, tape.gradient(loss, agent.trainable_variables)))
    (loss_im2col, grads_im2col), (loss_per_lifetime, grads_per_lifetime) = results
    self.assertAllClose(loss_im2col, loss_per_lifetime, rtol=1e-5)
    self.assertAllClose(grads_im2col, grads_per_lifetime, rtol=1e-4, atol=1e-5)

  @parameterized.named_parameters(*_named(SMALL_AGENTS))
  def test_call_equals_apply_after_assign(self, config):
    agent = _make_agent(config, seed=0)
    params = agent.init_params(tf.constant([5, 6]))
    observation = _observation(config, [4])
    agent.assign(params)
    for from_call, from_apply in zip(agent(observation),
                                     agent.apply(params, observation)):
      self.assertAllEqual(from_call, from_apply)

  @parameterized.named_parameters(*_named(SMALL_AGENTS))
  def test_call_gradients_reach_variables(self, config):
    agent = _make_agent(config)
    with tf.GradientTape() as tape:
      loss = _scalar_loss(agent(_observation(config, [4])))
    grads = tape.gradient(loss, agent.params)
    self.assertEqual(set(grads), set(agent.params))
    for grad in grads.values():
      self.assertIsNotNone(grad)

  @parameterized.named_parameters(*_named(SMALL_AGENTS))
  def test_init_is_deterministic_per_seed(self, config):
    agent = _make_agent(config)
    first = agent.init_params(tf.constant([3, 4]))
    again = agent.init_params(tf.constant([3, 4]))
    other = agent.init_params(tf.constant([3, 5]))
    for key in first:
      self.assertAllEqual(first[key], again[key])
      if not key.endswith("/b"):
        self.assertNotAllClose(first[key], other[key])

  @parameterized.named_parameters(*_named(SMALL_AGENTS))
  def test_lifetimes_get_different_initial_params(self, config):
    params = _make_agent(config).init_params(tf.constant([3, 4]))
    for key, value in params.items():
      if key.endswith("/b"):
        self.assertAllEqual(value, tf.zeros_like(value))
      else:
        self.assertNotAllClose(value[0], value[1])

  def test_variables_hold_init_params_of_constructor_seed(self):
    config = SMALL_AGENTS["conv"]
    agent = _make_agent(config, seed=[7, 8])
    expected = agent.init_params(tf.constant([7, 8]))
    for key, variable in agent.params.items():
      self.assertAllEqual(variable, expected[key])

  def test_variables_are_tracked_for_checkpoints(self):
    agent = _make_agent(SMALL_AGENTS["conv"], seed=0)
    self.assertLen(agent.trainable_variables, len(agent.params))
    saved = {key: tf.identity(value) for key, value in agent.params.items()}
    path = tf.train.Checkpoint(agent=agent).write(
        self.create_tempdir().full_path + "/agent")
    agent.assign(agent.init_params(tf.constant([1, 1])))
    tf.train.Checkpoint(agent=agent).read(path).assert_consumed()
    for key, variable in agent.params.items():
      self.assertAllEqual(variable, saved[key])

  @parameterized.named_parameters(("mlp", "mlp", "dense_1/w", 6),
                                  ("conv", "conv", "conv_1/w", 3 * 3 * 3))
  def test_weight_init_is_fan_in_scaled(self, agent_name, key, fan_in):
    agent = _make_agent(SMALL_AGENTS[agent_name], num_lifetimes=400)
    weights = agent.init_params(tf.constant([0, 1]))[key].numpy()
    # A normal cut at two standard deviations keeps 0.774 of its variance.
    self.assertAllClose(weights.std(), 0.88 / np.sqrt(fan_in), rtol=0.05)
    self.assertLessEqual(np.abs(weights).max(), 2.0 / np.sqrt(fan_in))

  def test_tabular_init_is_small_normal(self):
    agent = _make_agent(SMALL_AGENTS["tabular"], num_lifetimes=400)
    table = agent.init_params(tf.constant([0, 1]))["table"].numpy()
    self.assertEqual(table.shape,
                     (400, NUM_STATES, NUM_ACTIONS + PREDICTION_SIZE + 1))
    self.assertAllClose(table.std(), networks.TABLE_INIT_STDDEV, rtol=0.05)

  def test_tabular_outputs_are_table_rows(self):
    config = SMALL_AGENTS["tabular"]
    agent = _make_agent(config)
    params = agent.init_params(tf.constant([0, 1]))
    observation = tf.constant([[0, 6], [3, 3], [5, 1]])
    output = agent.apply(params, observation)
    for lifetime in range(NUM_LIFETIMES):
      for n in range(2):
        row = params["table"][lifetime, observation[lifetime, n]]
        self.assertAllEqual(output.policy_logits[lifetime, n],
                            row[:NUM_ACTIONS])
        self.assertAllEqual(output.prediction_logits[lifetime, n],
                            row[NUM_ACTIONS:-1])
        self.assertAllEqual(output.baseline[lifetime, n], row[-1])

  @parameterized.named_parameters(*_named(SMALL_AGENTS))
  def test_gradient_matches_finite_differences(self, config):
    agent = _make_agent(config)
    params = {
        key: tf.cast(value, tf.float64) + tf.random.stateless_normal(
            value.shape, [i, 0], stddev=0.1, dtype=tf.float64)
        for i, (key, value) in enumerate(
            agent.init_params(tf.constant([0, 1])).items())
    }
    observation = _observation(config, [5])

    def loss_fn(p):
      return _scalar_loss(agent.apply(p, observation))

    with tf.GradientTape() as tape:
      tape.watch(params)
      loss = loss_fn(params)
    grads = tape.gradient(loss, params)
    rng = np.random.default_rng(0)
    eps = 1e-6
    for key, value in params.items():
      dense_grad = tf.convert_to_tensor(grads[key]).numpy().ravel()
      size = value.shape.num_elements()
      for flat_index in rng.choice(size, min(size, 4), replace=False):
        delta = np.zeros(size)
        delta[flat_index] = eps
        delta = tf.reshape(tf.constant(delta), value.shape)
        plus = loss_fn({**params, key: value + delta})
        minus = loss_fn({**params, key: value - delta})
        self.assertAllClose(
            dense_grad[flat_index], (plus - minus) / (2 * eps),
            rtol=1e-5, atol=1e-7, msg=f"{key}[{flat_index}]")

  @parameterized.named_parameters(*_named(SMALL_AGENTS))
  def test_second_order_gradient_compiles_with_xla(self, config):
    """Meta-gradient through one functional update theta' = theta - lr g."""
    agent = _make_agent(config)
    params = agent.init_params(tf.constant([0, 1]))
    observation = _observation(config, [3, 4])
    next_observation = _observation(config, [3, 4], seed=(1, 1))

    def meta_gradient(params, lr):
      with tf.GradientTape() as outer_tape:
        outer_tape.watch([params, lr])
        with tf.GradientTape() as inner_tape:
          inner_tape.watch(params)
          inner_loss = _scalar_loss(agent.apply(params, observation))
        grads = inner_tape.gradient(inner_loss, params)
        updated = {
            key: value - lr * tf.convert_to_tensor(grads[key])
            for key, value in params.items()
        }
        outer_loss = _scalar_loss(
            agent.apply(updated, next_observation), action=1)
      return outer_tape.gradient(outer_loss, [lr, params])

    lr = tf.constant(0.1)
    expected = meta_gradient(params, lr)
    compiled = tf.function(meta_gradient, jit_compile=True)(params, lr)
    self.assertNotEqual(float(expected[0]), 0.0)
    tf.nest.map_structure(
        lambda e, c: self.assertAllClose(e, c, rtol=1e-3, atol=1e-4),
        expected, compiled)

  def test_uint8_observations_are_scaled(self):
    torso = torsos.atari()
    uint8_agent = networks.AgentNetwork(2, (84, 84, 4), tf.uint8, NUM_ACTIONS,
                                        torso, seed=0)
    float_agent = networks.AgentNetwork(2, (84, 84, 4), tf.float32,
                                        NUM_ACTIONS, torso, seed=0)
    frames = _observation(PAPER_AGENTS["atari"], [1], num_lifetimes=2)
    from_uint8 = uint8_agent(frames)
    from_float = float_agent(tf.cast(frames, tf.float32) / 255.0)
    for a, b in zip(from_uint8, from_float):
      self.assertAllClose(a, b, atol=1e-5)

  def test_select_lifetimes_mixes_per_lifetime(self):
    agent = _make_agent(SMALL_AGENTS["mlp"])
    old = agent.params
    new = agent.init_params(tf.constant([4, 4]))
    mixed = networks.select_lifetimes(tf.constant([True, False, True]), new,
                                      old)
    for key in old:
      self.assertAllEqual(mixed[key][0], new[key][0])
      self.assertAllEqual(mixed[key][1], old[key][1])
      self.assertAllEqual(mixed[key][2], new[key][2])

  @parameterized.named_parameters(
      ("wrong_lifetimes", tf.zeros([2, 5, 3, 2])),
      ("wrong_observation_shape", tf.zeros([3, 5, 2, 3])),
      ("wrong_dtype", tf.zeros([3, 5, 3, 2], tf.float64)),
  )
  def test_rejects_mismatched_observations(self, observation):
    agent = _make_agent(SMALL_AGENTS["mlp"])
    with self.assertRaises(ValueError):
      agent(observation)

  @parameterized.named_parameters(
      ("tabular_without_num_states", torsos.tabular(), (), None),
      ("tabular_on_tensors", torsos.tabular(), (3,), 5),
      ("mlp_on_state_indices", torsos.mlp([4]), (), 5),
      ("conv_on_vectors", torsos.grid_conv([2], [4]), (3,), None),
  )
  def test_rejects_torso_that_does_not_fit(self, torso, observation_shape,
                                           num_states):
    with self.assertRaises(ValueError):
      networks.AgentNetwork(2, observation_shape, tf.float32, NUM_ACTIONS,
                            torso, num_states=num_states)


if __name__ == "__main__":
  absltest.main()
