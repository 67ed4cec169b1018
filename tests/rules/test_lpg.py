"""The LPG rule (Section 3.1, Appendix B.1): numpy reference and contract."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import rl_math
from lpg_tf import types
from lpg_tf.rules import base as rule_base
from lpg_tf.rules import lpg

T, N, M, H = 6, 3, 5, 8  # small sizes: time, batch, prediction size, LSTM units
OBS, A = 4, 3  # toy linear agent: observation features, actions


def make_inputs(seed=0, discount=None, t=T, n=N, m=M):
  """Random RuleInputs `[t, n, ...]`; terminal only where `discount` is 0."""
  rng = np.random.default_rng(seed)
  def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return (e / e.sum(-1, keepdims=True)).astype(np.float32)
  return types.RuleInputs(
      reward=tf.constant(rng.normal(size=(t, n)), tf.float32),
      discount=tf.ones([t, n]) if discount is None else tf.constant(discount),
      gamma=tf.fill([t, n], 0.99),
      pi_a=tf.constant(rng.uniform(0.05, 1.0, size=(t, n)), tf.float32),
      y=tf.constant(softmax(rng.normal(size=(t, n, m)))),
      y_next=tf.constant(softmax(rng.normal(size=(t, n, m)))),
      baseline=None)


def perturb_steps(inputs, steps, seed=1):
  """`inputs` with all fields but `discount` redrawn at time indices `steps`."""
  other = make_inputs(seed, discount=inputs.discount.numpy())
  mask = np.zeros([T], np.float32)
  mask[steps] = 1.0
  def mix(a, b):
    m = tf.reshape(mask, [T] + [1] * (a.shape.rank - 1))
    return a * (1.0 - m) + b * m
  return inputs._replace(
      reward=mix(inputs.reward, other.reward), gamma=mix(inputs.gamma, 0.5),
      pi_a=mix(inputs.pi_a, other.pi_a), y=mix(inputs.y, other.y),
      y_next=mix(inputs.y_next, other.y_next))


def reference_forward(rule, inputs):
  """A loop over t = T-1..0 with numpy math and the rule's variables."""
  prefix = rule.name_scope.name
  p = {v.name[len(prefix):-2]: v.numpy() for v in rule.variables}
  relu = lambda x: np.maximum(x, 0.0)
  sigmoid = lambda x: 1.0 / (1.0 + np.exp(-x))
  def phi(y):
    hidden = relu(y @ p["embedding/linear_0/w"] + p["embedding/linear_0/b"])
    return hidden @ p["embedding/linear_1/w"] + p["embedding/linear_1/b"]
  r, d, g, pi = (x.numpy() for x in inputs[:4])
  phi_y, phi_y_next = phi(inputs.y.numpy()), phi(inputs.y_next.numpy())
  h = np.zeros([N, H])
  c = np.zeros([N, H])
  pi_hat = np.zeros([T, N])
  y_hat = np.zeros([T, N, M])
  for t in reversed(range(T)):
    x = np.concatenate([np.stack([r[t], d[t], g[t], pi[t]], -1), phi_y[t],
                        phi_y_next[t]], -1)
    h, c = h * d[t][:, None], c * d[t][:, None]
    gates = x @ p["lstm/w_i"] + h @ p["lstm/w_h"] + p["lstm/b"]
    i, f, u, o = np.split(gates, 4, axis=-1)
    c = sigmoid(f) * c + sigmoid(i) * np.tanh(u)
    h = sigmoid(o) * np.tanh(c)
    pi_hat[t] = (h @ p["pi_head/w"] + p["pi_head/b"])[:, 0]
    logits = h @ p["y_head/w"] + p["y_head/b"]
    e = np.exp(logits - logits.max(-1, keepdims=True))
    y_hat[t] = e / e.sum(-1, keepdims=True)
  return pi_hat, y_hat


def toy_meta_loss(rule, theta, obs, action, reward, num_updates=2, lr=0.5):
  """A linear agent's REINFORCE loss after `num_updates` Eq. 2 SGD steps.

  The targets are computed inside the inner tape's stop_recording(): constants
  for theta, but the outer tape sees eta -> targets -> theta_K (idiom 2).
  Policy logits are obs @ theta[0] `[T, N, A]`, y logits obs @ theta[1].
  """
  one_hot = tf.one_hot(action, A)
  def log_pi_a(theta):
    logits = tf.einsum("tno,oa->tna", obs[:-1], theta[0])
    return tf.reduce_sum(one_hot * tf.nn.log_softmax(logits), -1)
  for _ in range(num_updates):
    with tf.GradientTape() as inner:
      inner.watch(theta)
      log_pi = log_pi_a(theta)
      y_logits = tf.einsum("tno,om->tnm", obs, theta[1])
      y = tf.nn.softmax(y_logits)
      with inner.stop_recording():
        targets = rule(types.RuleInputs(
            reward=reward, discount=tf.ones([T, N]),
            gamma=tf.fill([T, N], 0.9), pi_a=tf.exp(log_pi), y=y[:-1],
            y_next=y[1:], baseline=None))
      loss = tf.reduce_mean(
          -log_pi * targets.pi_hat +
          rl_math.kl_divergence(y_logits[:-1], targets.y_hat))
    grads = inner.gradient(loss, theta)
    theta = tuple(p - lr * g for p, g in zip(theta, grads))
  return -tf.reduce_mean(log_pi_a(theta) * reward)


class LPGTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    tf.random.set_seed(0)
    self.rule = lpg.LPG(hidden_size=H, prediction_size=M)

  def test_matches_reference(self):
    discount = np.ones([T, N], np.float32)
    discount[2, 0] = discount[4, 1] = 0.0
    inputs = make_inputs(discount=discount)
    out = self.rule(inputs)
    pi_hat, y_hat = reference_forward(self.rule, inputs)
    np.testing.assert_allclose(out.pi_hat.numpy(), pi_hat, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.y_hat.numpy(), y_hat, rtol=1e-4, atol=1e-6)

  def test_portable_matches_reference(self):
    discount = np.ones([T, N], np.float32)
    discount[1, 2] = discount[3, 0] = 0.0
    inputs = make_inputs(seed=2, discount=discount)
    out = self.rule(inputs, portable=True)
    pi_hat, y_hat = reference_forward(self.rule, inputs)
    np.testing.assert_allclose(out.pi_hat.numpy(), pi_hat, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out.y_hat.numpy(), y_hat, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.y_hat_logits.numpy(),
                               self.rule(inputs).y_hat_logits.numpy(),
                               rtol=1e-5, atol=1e-6)

  def test_shapes_and_simplex(self):
    out = self.rule(make_inputs())
    self.assertEqual(out.pi_hat.shape, (T, N))
    self.assertEqual(out.y_hat.shape, (T, N, M))
    self.assertTrue(np.all(out.y_hat.numpy() >= 0.0))
    np.testing.assert_allclose(tf.reduce_sum(out.y_hat, -1), np.ones([T, N]),
                               rtol=1e-5)
    self.assertIsNone(out.baseline_target)

  def test_paper_sizes(self):
    rule = lpg.LPG()
    rule(make_inputs(m=30))
    shapes = {v.name[len(rule.name_scope.name):-2]: v.shape.as_list()
              for v in rule.variables}
    self.assertEqual(shapes["embedding/linear_0/w"], [30, 16])
    self.assertEqual(shapes["embedding/linear_1/w"], [16, 1])
    self.assertEqual(shapes["lstm/w_i"], [6, 4 * 256])
    self.assertEqual(shapes["y_head/w"], [256, 30])

  @parameterized.named_parameters(
      ("eq2", False, rule_base.LossConfig()),
      ("eq7", True, rule_base.LossConfig(subtract_baseline=True,
                                            baseline_cost=1.0)))
  def test_loss_config_and_baseline_target(self, use_baseline, config):
    rule = lpg.LPG(hidden_size=H, prediction_size=M, use_baseline=use_baseline)
    self.assertEqual(rule.loss_config, config)
    out = rule(make_inputs())
    if use_baseline:
      np.testing.assert_array_equal(out.baseline_target, out.pi_hat)
    else:
      self.assertIsNone(out.baseline_target)

  def test_rejects_wrong_prediction_size(self):
    with self.assertRaisesRegex(errors.ConfigError, "m = 5"):
      self.rule(make_inputs(m=M + 1))

  def test_backward_direction(self):
    """Without terminals, outputs at t depend on steps >= t only."""
    inputs = make_inputs()
    base = self.rule(inputs)
    changed = self.rule(perturb_steps(inputs, [3]))
    for field in ("pi_hat", "y_hat"):
      before = getattr(base, field).numpy()
      after = getattr(changed, field).numpy()
      np.testing.assert_array_equal(before[4:], after[4:])
      for t in range(4):
        self.assertGreater(np.abs(before[t] - after[t]).max(), 1e-6, (field, t))

  def test_reset_blocks_information_across_episodes(self):
    """With d_2 = 0, steps 0..2 and 3..5 are different episodes."""
    discount = np.ones([T, N], np.float32)
    discount[2] = 0.0
    inputs = make_inputs(discount=discount)
    base = self.rule(inputs)
    later_changed = self.rule(perturb_steps(inputs, [3, 4, 5]))
    earlier_changed = self.rule(perturb_steps(inputs, [0, 1]))
    np.testing.assert_array_equal(base.pi_hat[:3], later_changed.pi_hat[:3])
    np.testing.assert_array_equal(base.y_hat[:3], later_changed.y_hat[:3])
    np.testing.assert_array_equal(base.pi_hat[2:], earlier_changed.pi_hat[2:])
    # Without the terminal step the later steps do reach the earlier outputs.
    continuing = make_inputs()
    reached = (self.rule(continuing).pi_hat -
               self.rule(perturb_steps(continuing, [3, 4, 5])).pi_hat)
    self.assertGreater(np.abs(reached[:3].numpy()).min(), 1e-6)

  def test_episode_is_processed_from_a_zero_state(self):
    """An episode's outputs are those of a trajectory holding it alone."""
    discount = np.ones([T, N], np.float32)
    discount[2] = 0.0
    inputs = make_inputs(discount=discount)
    full = self.rule(inputs)
    first = self.rule(types.RuleInputs(
        *[None if x is None else x[:3] for x in inputs]))
    last = self.rule(types.RuleInputs(
        *[None if x is None else x[3:] for x in inputs]))
    np.testing.assert_allclose(full.pi_hat, tf.concat([first.pi_hat,
                                                       last.pi_hat], 0),
                               rtol=1e-6, atol=1e-6)

  def test_jit_with_unknown_shapes_equals_eager(self):
    scalar = tf.TensorSpec([None, None], tf.float32)
    vector = tf.TensorSpec([None, None, M], tf.float32)

    @tf.function(input_signature=[scalar] * 4 + [vector] * 2, jit_compile=True)
    def jitted(reward, discount, gamma, pi_a, y, y_next):
      return self.rule(types.RuleInputs(reward, discount, gamma, pi_a, y,
                                        y_next, baseline=None))

    discount = np.ones([T + 2, 2], np.float32)
    discount[3, 1] = 0.0
    for inputs in (make_inputs(), make_inputs(seed=4, discount=discount,
                                              t=T + 2, n=2)):
      eager = self.rule(inputs)
      got = jitted(*inputs[:6])
      np.testing.assert_allclose(got.pi_hat, eager.pi_hat, rtol=1e-5, atol=1e-6)
      np.testing.assert_allclose(got.y_hat, eager.y_hat, rtol=1e-5, atol=1e-6)

  def test_meta_gradient_through_agent_updates_under_jit(self):
    """Nested tapes through K = 2 SGD steps (DESIGN.md idioms 1, 2)."""
    rng = np.random.default_rng(3)
    obs = tf.constant(rng.normal(size=(T + 1, N, OBS)), tf.float32)
    action = tf.constant(rng.integers(0, A, size=(T, N)))
    reward = tf.constant(rng.normal(size=(T, N)), tf.float32)
    theta = (tf.constant(rng.normal(size=(OBS, A)) * 0.1, tf.float32),
             tf.constant(rng.normal(size=(OBS, M)) * 0.1, tf.float32))
    rule = self.rule
    rule(make_inputs())  # creates the variables outside the tf.function
    meta_loss = lambda: toy_meta_loss(rule, theta, obs, action, reward)

    def meta_gradient():
      with tf.GradientTape() as outer:
        loss = meta_loss()
      return outer.gradient(loss, rule.trainable_variables)

    jitted = tf.function(meta_gradient, jit_compile=True)()
    eager = meta_gradient()
    for v, got, want in zip(rule.trainable_variables, jitted, eager):
      self.assertIsNotNone(got, v.name)
      np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-6,
                                 err_msg=v.name)
    # The meta-gradient is meta_loss's derivative along a direction.
    direction = [tf.sign(g) for g in eager]
    eps = 1e-2
    def shift(scale):
      for v, d in zip(rule.trainable_variables, direction):
        v.assign_add(scale * eps * d)
      return float(meta_loss())
    plus, minus = shift(1.0), shift(-2.0)
    shift(1.0)
    numeric = (plus - minus) / (2 * eps)
    analytic = sum(float(tf.reduce_sum(g * d))
                   for g, d in zip(eager, direction))
    self.assertGreater(analytic, 0.0)
    np.testing.assert_allclose(numeric, analytic, rtol=0.05)

  def test_second_derivative_through_the_lstm_under_jit(self):
    """A Hessian-vector product of the targets' norm (Eq. 4's regulariser)."""
    inputs = make_inputs()

    @tf.function(jit_compile=True)
    def hessian_vector_product(reward):
      with tf.GradientTape() as outer:
        outer.watch(reward)
        with tf.GradientTape() as inner:
          inner.watch(reward)
          out = self.rule(inputs._replace(reward=reward))
          norm = tf.reduce_sum(tf.square(out.pi_hat))
        grad = inner.gradient(norm, reward)
        projected = tf.reduce_sum(grad * tf.ones_like(grad))
      return outer.gradient(projected, reward)

    hvp = hessian_vector_product(inputs.reward)
    self.assertEqual(hvp.shape, (T, N))
    self.assertTrue(np.all(np.isfinite(hvp.numpy())))
    self.assertGreater(np.abs(hvp.numpy()).max(), 0.0)


if __name__ == "__main__":
  tf.test.main()


def check_member_targets(test, rule, make, num_members=3, jit_compile=False):
  """`rule.member_targets` on M blocks of columns equals `rule(block)` with
  the variables set to that member's parameters, for every field."""
  n = 2
  inputs = make(num_members * n)
  rule(inputs)  # builds the variables
  rng = np.random.default_rng(7)
  base = [v.numpy() for v in rule.trainable_variables]
  params = [tf.constant(b[None] + 0.3 * rng.normal(size=(num_members,) + b.shape),
                        tf.float32) for b in base]
  member_targets = tf.function(
      lambda p, x: rule.member_targets(p, x, num_members),
      jit_compile=jit_compile)
  batched = member_targets(params, inputs)
  for member in range(num_members):
    for variable, value in zip(rule.trainable_variables, params):
      variable.assign(value[member])
    block = types.RuleInputs(*[
        None if x is None else x[:, member * n:(member + 1) * n]
        for x in inputs])
    expected = rule(block)
    for field, want in zip(types.RuleOutput._fields, expected):
      got = getattr(batched, field)
      test.assertEqual(got is None, want is None, field)
      if want is not None:
        np.testing.assert_allclose(
            got[:, member * n:(member + 1) * n].numpy(), want.numpy(),
            rtol=1e-5, atol=1e-5, err_msg=f"{field}, member {member}")


class MemberTargetsTest(parameterized.TestCase):

  @parameterized.named_parameters(
      ("softmax_y", {}, False), ("raw_y_baseline",
                                 {"y_softmax": False, "use_baseline": True},
                                 False), ("softmax_y_xla", {}, True))
  def test_each_member_reads_its_own_columns_with_its_own_eta(
      self, kwargs, jit_compile):
    tf.random.set_seed(1)
    discount = np.ones([T, 6], np.float32)
    discount[2, 0] = discount[4, 3] = discount[0, 5] = 0.0
    rule = lpg.LPG(hidden_size=H, prediction_size=M,
                   embedding_sizes=(16, 4, 1), **kwargs)
    check_member_targets(
        self, rule, lambda n: make_inputs(seed=3, discount=discount, n=n),
        jit_compile=jit_compile)

  def test_wrong_number_of_parameter_tensors_is_refused(self):
    self.rule = lpg.LPG(hidden_size=H, prediction_size=M)
    inputs = make_inputs(n=4)
    self.rule(inputs)
    params = [v[None] for v in self.rule.trainable_variables][:-1]
    with self.assertRaises(ValueError):
      self.rule.member_targets(params, inputs, 1)
