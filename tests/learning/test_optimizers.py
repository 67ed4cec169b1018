"""Functional per-lifetime SGD and Adam against reference implementations."""

import numpy as np
import sonnet as snt
import tensorflow as tf
from absl.testing import absltest

from lpg_tf.learning import optimizers


class OptimiserTest(absltest.TestCase):

  def test_sgd_uses_each_lifetimes_learning_rate(self):
    opt = optimizers.Optimiser(optimizers.SGD)
    params = {"w": tf.ones([2, 3])}
    grads = {"w": tf.constant([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]])}
    new, state = opt.update(params, grads, opt.init(params), tf.constant([0.1, 2.0]))
    np.testing.assert_allclose(new["w"].numpy(),
                               [[0.9, 0.8, 0.7], [-1.0, -1.0, -1.0]], rtol=1e-6)
    np.testing.assert_allclose(state.count.numpy(), [1, 1])

  def test_adam_matches_sonnet_adam_per_lifetime(self):
    rng = np.random.default_rng(1)
    init = rng.normal(size=(2, 4)).astype(np.float32)
    lrs = np.array([0.01, 0.1], np.float32)
    opt = optimizers.Optimiser(optimizers.ADAM)
    params = {"w": tf.constant(init)}
    state = opt.init(params)
    refs = [tf.Variable(init[l]) for l in range(2)]
    ref_opts = [snt.optimizers.Adam(learning_rate=float(lrs[l])) for l in range(2)]
    for _ in range(5):
      g = rng.normal(size=(2, 4)).astype(np.float32)
      params, state = opt.update(params, {"w": tf.constant(g)}, state, lrs)
      for l in range(2):
        ref_opts[l].apply([tf.constant(g[l])], [refs[l]])
    for l in range(2):
      np.testing.assert_allclose(params["w"][l].numpy(), refs[l].numpy(),
                                 rtol=1e-5, atol=1e-6)

  def test_adam_is_differentiable_through_zero_gradients(self):
    opt = optimizers.Optimiser(optimizers.ADAM)
    lr = tf.constant([0.1])
    x = tf.Variable([[0.0, 1.0]])
    with tf.GradientTape() as tape:
      params = {"w": tf.zeros([1, 2])}
      grads = {"w": x * tf.constant([[0.0, 1.0]])}  # first gradient is exactly 0
      new, _ = opt.update(params, grads, opt.init(params), lr)
      loss = tf.reduce_sum(new["w"])
    self.assertTrue(np.all(np.isfinite(tape.gradient(loss, x).numpy())))

  def test_missing_and_sparse_gradients(self):
    for kind in optimizers.OPTIMISERS:
      opt = optimizers.Optimiser(kind)
      params = {"used": tf.ones([2, 3]), "unused": tf.ones([2, 2])}
      sparse = tf.IndexedSlices(tf.ones([1, 3]), tf.constant([1]), tf.constant([2, 3]))
      new, _ = opt.update(params, {"used": sparse, "unused": None},
                          opt.init(params), tf.constant([0.5, 0.5]))
      np.testing.assert_array_equal(new["unused"].numpy(), params["unused"].numpy())
      np.testing.assert_array_equal(new["used"][0].numpy(), [1.0, 1.0, 1.0])
      self.assertTrue(np.all(new["used"][1].numpy() < 1.0))

  def test_unknown_optimiser(self):
    with self.assertRaisesRegex(ValueError, "Unknown optimiser"):
      optimizers.Optimiser("rmsprop")


if __name__ == "__main__":
  absltest.main()
