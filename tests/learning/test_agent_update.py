"""The agent loss of Eq. 2 / Eq. 7 / A2C against a numpy reference."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf import rl_math
from lpg_tf import types
from lpg_tf.learning import agent_update
from lpg_tf.rules import base as rule_base

L, T, B, A, M = 2, 3, 4, 5, 6


def softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def reference_loss(pl, yl, f, a, pi_hat, y_hat, f_hat, kl_cost, cfg):
  out = np.zeros(L)
  for l in range(L):
    total = 0.0
    for t in range(T):
      for b in range(B):
        pi = softmax(pl[l, t, b])
        adv = pi_hat[l, t, b] - (f[l, t, b] if cfg.subtract_baseline else 0.0)
        term = -np.log(pi[a[l, t, b]]) * adv
        if y_hat is not None:
          y = softmax(yl[l, t, b])
          term += kl_cost[l] * np.sum(y * (np.log(y) - np.log(y_hat[l, t, b])))
        if f_hat is not None:
          term += cfg.baseline_cost * 0.5 * (f[l, t, b] - f_hat[l, t, b]) ** 2
        term -= cfg.entropy_cost * -np.sum(pi * np.log(pi))
        total += term
    out[l] = total / (T * B)
  return out


class AgentLossTest(parameterized.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.pl = rng.normal(size=(L, T, B, A))
    self.yl = rng.normal(size=(L, T, B, M))
    self.f = rng.normal(size=(L, T, B))
    self.a = rng.integers(0, A, size=(L, T, B))
    self.pi_hat = rng.normal(size=(L, T, B))
    self.y_hat = softmax(rng.normal(size=(L, T, B, M)))
    self.f_hat = rng.normal(size=(L, T, B))
    self.kl = np.array([0.5, 1.0])

  @parameterized.named_parameters(
      ("eq2", rule_base.LossConfig(), True, False),
      ("eq7", rule_base.LossConfig(True, 1.0, 0.0), True, True),
      ("a2c", rule_base.LossConfig(False, 0.5, 0.01), False, True))
  def test_matches_reference(self, cfg, with_y, with_f):
    y_hat = self.y_hat if with_y else None
    f_hat = self.f_hat if with_f else None
    outputs = types.AgentOutput(tf.constant(self.pl), tf.constant(self.yl),
                                tf.constant(self.f))
    targets = types.RuleOutput(
        tf.constant(self.pi_hat), None if y_hat is None else tf.constant(y_hat),
        None if f_hat is None else tf.constant(f_hat))
    got = agent_update.agent_loss(outputs, tf.constant(self.a), targets,
                                  tf.constant(self.kl), cfg)
    want = reference_loss(self.pl, self.yl, self.f, self.a, self.pi_hat, y_hat,
                          f_hat, self.kl, cfg)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)

  def test_policy_gradient_direction_of_eq2(self):
    """d/dlogits of -log pi(a) pi_hat is -(onehot(a) - pi) pi_hat (Eq. 2)."""
    logits = tf.constant(self.pl)
    with tf.GradientTape() as tape:
      tape.watch(logits)
      outputs = types.AgentOutput(logits, tf.constant(self.yl), tf.constant(self.f))
      targets = types.RuleOutput(tf.constant(self.pi_hat), None, None)
      loss = tf.reduce_sum(agent_update.agent_loss(
          outputs, tf.constant(self.a), targets, tf.constant(self.kl),
          rule_base.LossConfig()))
    grad = tape.gradient(loss, logits).numpy()
    want = -(np.eye(A)[self.a] - softmax(self.pl)) * self.pi_hat[..., None] / (T * B)
    np.testing.assert_allclose(grad, want, rtol=1e-6, atol=1e-12)

  def test_targets_keep_their_meta_gradient_path(self):
    """The loss must not stop gradients into targets: an outer tape needs eta -> pi_hat."""
    pi_hat, y_hat = tf.constant(self.pi_hat), tf.constant(self.y_hat)
    with tf.GradientTape(persistent=True) as tape:
      tape.watch([pi_hat, y_hat])
      outputs = types.AgentOutput(tf.constant(self.pl), tf.constant(self.yl),
                                  tf.constant(self.f))
      loss = tf.reduce_sum(agent_update.agent_loss(
          outputs, tf.constant(self.a), types.RuleOutput(pi_hat, y_hat, pi_hat),
          tf.constant(self.kl), rule_base.LossConfig(True, 1.0, 0.0)))
    self.assertIsNotNone(tape.gradient(loss, pi_hat))
    self.assertIsNotNone(tape.gradient(loss, y_hat))

  def test_baseline_is_a_constant_in_the_policy_term_of_eq7(self):
    f = tf.constant(self.f)
    with tf.GradientTape() as tape:
      tape.watch(f)
      outputs = types.AgentOutput(tf.constant(self.pl), tf.constant(self.yl), f)
      loss = tf.reduce_sum(agent_update.agent_loss(
          outputs, tf.constant(self.a), types.RuleOutput(tf.constant(self.pi_hat),
                                                         None, None),
          tf.constant(self.kl), rule_base.LossConfig(True, 0.0, 0.0)))
    self.assertIsNone(tape.gradient(loss, f))

  def test_kl_is_zero_at_target_and_finite_for_zero_targets(self):
    q = softmax(self.yl)
    kl = rl_math.kl_divergence(tf.constant(self.yl), tf.constant(q))
    np.testing.assert_allclose(kl.numpy(), 0.0, atol=1e-10)
    zero_q = np.zeros_like(q)
    zero_q[..., 0] = 1.0
    self.assertTrue(np.all(np.isfinite(rl_math.kl_divergence(
        tf.constant(self.yl, tf.float32), tf.constant(zero_q, tf.float32)).numpy())))
