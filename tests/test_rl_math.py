"""lambda-returns against a Python-loop reference (STYLE.md: RLax-style tests)."""

from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf import rl_math


def reference_lambda_returns(r, d, v, lam):
  """G_t = r_t + d_t((1-lam) v_{t+1} + lam G_{t+1}), G_T = v_T, by loops."""
  t_max, n = r.shape
  g = np.zeros_like(r)
  for b in range(n):
    nxt = v[t_max, b]
    for t in reversed(range(t_max)):
      nxt = r[t, b] + d[t, b] * ((1 - lam) * v[t + 1, b] + lam * nxt)
      g[t, b] = nxt
  return g


class LambdaReturnsTest(parameterized.TestCase):

  @parameterized.parameters(0.0, 0.5, 0.95, 1.0)
  def test_matches_loop(self, lam):
    rng = np.random.default_rng(0)
    r = rng.normal(size=(7, 5)).astype(np.float32)
    d = (0.9 * (rng.random((7, 5)) > 0.2)).astype(np.float32)
    v = rng.normal(size=(8, 5)).astype(np.float32)
    got = rl_math.lambda_returns(tf.constant(r), tf.constant(d), tf.constant(v), lam)
    np.testing.assert_allclose(got.numpy(), reference_lambda_returns(r, d, v, lam),
                               rtol=1e-5, atol=1e-5)

  def test_one_step_and_monte_carlo(self):
    r = np.array([[1.0], [2.0], [3.0]], np.float32)
    d = np.array([[0.5], [0.5], [0.0]], np.float32)
    v = np.array([[10.0], [20.0], [30.0], [40.0]], np.float32)
    td0 = rl_math.lambda_returns(r, d, v, 0.0).numpy()[:, 0]
    np.testing.assert_allclose(td0, [1 + 0.5 * 20, 2 + 0.5 * 30, 3.0])
    mc = rl_math.lambda_returns(r, d, v, 1.0).numpy()[:, 0]
    np.testing.assert_allclose(mc, [1 + 0.5 * (2 + 0.5 * 3), 2 + 0.5 * 3, 3.0])


class KlDivergenceLogitsTest(parameterized.TestCase):

  def test_matches_the_probability_form_and_stays_finite_under_underflow(self):
    rng = np.random.default_rng(0)
    p, q = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    q_prob = np.exp(q) / np.exp(q).sum(-1, keepdims=True)
    np.testing.assert_allclose(
        rl_math.kl_divergence_logits(tf.constant(p), tf.constant(q)).numpy(),
        rl_math.kl_divergence(tf.constant(p), tf.constant(q_prob)).numpy(),
        rtol=1e-10)
    q[:, 0] = -500.0  # softmax underflows to 0 in float32
    kl = rl_math.kl_divergence_logits(tf.constant(p, tf.float32),
                                      tf.constant(q, tf.float32)).numpy()
    self.assertTrue(np.all(np.isfinite(kl)))
    self.assertTrue(np.all(kl > 10.0))
