"""The backward LSTM's outputs and hand-written gradient against autodiff of a
tf.scan + snt.LSTM reference (the obvious implementation)."""

import numpy as np
import sonnet as snt
import tensorflow as tf
from absl.testing import absltest

from lpg_tf.rules import lstm_backward

T, N, I, H = 6, 3, 4, 5


def reference(x, discount, core):
  def step(next_state, elems):
    x_t, d_t = elems
    carried = tf.nest.map_structure(lambda s: s * d_t[:, None], next_state)
    return core(x_t, carried)[1]
  states = tf.scan(step, (x, discount), initializer=core.initial_state(N),
                   reverse=True)
  return states.hidden


class BackwardLstmTest(absltest.TestCase):

  def setUp(self):
    super().setUp()
    rng = np.random.default_rng(0)
    self.x = tf.constant(rng.normal(size=(T, N, I)))
    self.discount = tf.constant(np.array(
        [[1, 1, 0], [0, 1, 1], [1, 1, 1], [1, 0, 1], [1, 1, 1], [1, 1, 0]],
        np.float64))
    self.module = lstm_backward.BackwardLSTM(H, dtype=tf.float64)
    self.module.create_variables(I)
    self.core = snt.LSTM(H, dtype=tf.float64)
    self.core(self.x[0], self.core.initial_state(N))
    for variable in self.core.variables:  # same weights in the reference
      variable.assign(getattr(self.module, variable.name.split("/")[-1][:-2]))
    self.weights = (self.module.w_i, self.module.w_h, self.module.b)
    self.probe = tf.constant(rng.normal(size=(T, N, H)))

  def ours(self, x, discount):
    identity = tf.eye(H, dtype=tf.float64)
    return lstm_backward.backward_lstm(x, discount, *self.weights, identity,
                                       tf.zeros([H], tf.float64))

  def test_outputs_match(self):
    np.testing.assert_allclose(self.ours(self.x, self.discount).numpy(),
                               reference(self.x, self.discount, self.core).numpy(),
                               rtol=1e-12, atol=1e-12)

  def test_gradients_match(self):
    grads = []
    for fn in (self.ours, lambda x, d: reference(x, d, self.core)):
      with tf.GradientTape() as tape:
        tape.watch([self.x, self.discount])
        loss = tf.reduce_sum(fn(self.x, self.discount) * self.probe)
      weights = self.weights if fn == self.ours else (
          self.core.variables[1], self.core.variables[0], self.core.variables[2])
      grads.append(tape.gradient(loss, [self.x, self.discount, *weights]))
    for ours, ref in zip(*grads):
      np.testing.assert_allclose(tf.convert_to_tensor(ours).numpy(),
                                 tf.convert_to_tensor(ref).numpy(),
                                 rtol=1e-10, atol=1e-12)

  def test_second_order_matches(self):
    results = []
    for fn in (self.ours, lambda x, d: reference(x, d, self.core)):
      with tf.GradientTape() as outer:
        outer.watch(self.x)
        with tf.GradientTape() as inner:
          inner.watch(self.x)
          loss = tf.reduce_sum(tf.square(fn(self.x, self.discount)))
        g = inner.gradient(loss, self.x)
        probe = tf.reduce_sum(g * self.x)
      results.append(outer.gradient(probe, self.x))
    np.testing.assert_allclose(results[0].numpy(), results[1].numpy(),
                               rtol=1e-9, atol=1e-11)

  def test_read_out_and_its_gradient(self):
    rng = np.random.default_rng(3)
    w_out = tf.constant(rng.normal(size=(H, 2)))
    b_out = tf.constant(rng.normal(size=(2,)))
    probe = tf.constant(rng.normal(size=(T, N, 2)))
    results = []
    for fused in (True, False):
      with tf.GradientTape() as tape:
        tape.watch([self.x, w_out, b_out])
        if fused:
          out = lstm_backward.backward_lstm(self.x, self.discount, *self.weights,
                                            w_out, b_out)
        else:
          out = tf.einsum("tnh,hk->tnk", self.ours(self.x, self.discount),
                          w_out) + b_out
        loss = tf.reduce_sum(out * probe)
      results.append([out] + tape.gradient(loss, [self.x, w_out, b_out,
                                                  *self.weights]))
    for a, b in zip(*results):
      np.testing.assert_allclose(tf.convert_to_tensor(a).numpy(),
                                 tf.convert_to_tensor(b).numpy(),
                                 rtol=1e-10, atol=1e-12)

  def test_portable_matches_reference_with_its_gradients(self):
    rng = np.random.default_rng(4)
    w_out = tf.constant(rng.normal(size=(H, 2)))
    b_out = tf.constant(rng.normal(size=(2,)))
    probe = tf.constant(rng.normal(size=(T, N, 2)))
    results = []
    for portable in (False, True):
      with tf.GradientTape() as tape:
        tape.watch([self.x, self.discount, w_out, b_out])
        out = lstm_backward.backward_lstm(self.x, self.discount, *self.weights,
                                          w_out, b_out, portable=portable)
        loss = tf.reduce_sum(out * probe)
      results.append([out] + tape.gradient(
          loss, [self.x, self.discount, w_out, b_out, *self.weights]))
    for a, b in zip(*results):
      np.testing.assert_allclose(tf.convert_to_tensor(b).numpy(),
                                 tf.convert_to_tensor(a).numpy(),
                                 rtol=1e-10, atol=1e-12)

  def test_weights_are_named_and_initialised_as_sonnets(self):
    self.assertEqual(sorted(v.name for v in self.module.variables),
                     ["lstm/b:0", "lstm/w_h:0", "lstm/w_i:0"])
    b = self.module.b.numpy()
    np.testing.assert_array_equal(b[H:2 * H], 1.0)
    np.testing.assert_array_equal(np.delete(b, np.s_[H:2 * H]), 0.0)

  def test_jit_matches_eager(self):
    def grads(x):
      with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(self.ours(x, self.discount) * self.probe)
      return tape.gradient(loss, [x, *self.weights])
    eager = grads(self.x)
    compiled = tf.function(grads, jit_compile=True)(self.x)
    for a, b in zip(eager, compiled):
      np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-10, atol=1e-12)


if __name__ == "__main__":
  absltest.main()
