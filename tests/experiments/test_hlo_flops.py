"""Matmul FLOPs counted from a program's HLO, against counts by hand."""

import pytest
import tensorflow as tf

from lpg_tf.experiments import hlo_flops

N, I, H = 8, 16, 12  # Batch, input and hidden sizes of the toy programs.


def _hlo(function, *args) -> str:
  return tf.function(function, jit_compile=True).experimental_get_compiler_ir(
      *args)(stage="hlo")


def _matmul(m: int, k: int, n: int) -> float:
  return 2.0 * m * k * n


def test_a_matmul_and_an_einsum_count_twice_their_multiply_adds():
  x, w = tf.ones([N, I]), tf.ones([I, H])
  assert hlo_flops.matmul_flops(_hlo(lambda a, b: a @ b, x, w)) == _matmul(N, I, H)
  # Contracting two axes at once: 3 * I multiply-adds per output element.
  assert hlo_flops.matmul_flops(_hlo(
      lambda a, b: tf.einsum("nbi,bih->nh", a, b), tf.ones([N, 3, I]),
      tf.ones([3, I, H]))) == _matmul(N, 3 * I, H)


def test_a_loop_counts_its_body_once_per_iteration():
  def loop(x, w):
    _, h = tf.while_loop(lambda i, h: i < 7,
                         lambda i, h: (i + 1, tf.tanh(tf.matmul(h, w))),
                         (0, x), maximum_iterations=7)
    return h
  assert hlo_flops.matmul_flops(_hlo(loop, tf.ones([N, H]), tf.ones([H, H]))) == (
      7 * _matmul(N, H, H))


def test_gradient_loops_run_as_often_as_their_forward_loops():
  """A scan of 4 steps inside a loop of 3, differentiated: the gradient
  loops read their counts from stacks at run time; each step's matmul
  h @ w costs two more in the backward pass (d_h and d_w)."""
  def forward_and_gradient(x, w):
    with tf.GradientTape() as tape:
      tape.watch(w)

      def outer(i, h):
        hs = tf.scan(lambda carry, _: tf.tanh(tf.matmul(carry, w)),
                     tf.zeros([4]), initializer=h)
        return i + 1, hs[-1]

      _, h = tf.while_loop(lambda i, h: i < 3, outer, (0, x),
                           maximum_iterations=3)
      loss = tf.reduce_sum(h)
    return loss, tape.gradient(loss, w)

  found = hlo_flops.matmul_flops(_hlo(forward_and_gradient, tf.ones([N, H]),
                                   tf.ones([H, H])))
  assert found == 3 * 4 * 3 * _matmul(N, H, H)


def test_a_loop_whose_count_is_an_input_is_refused():
  def loop(x, w, steps):
    _, h = tf.while_loop(lambda i, h: i < steps,
                         lambda i, h: (i + 1, tf.matmul(h, w)), (0, x))
    return h
  with pytest.raises(ValueError, match="trip count"):
    hlo_flops.matmul_flops(_hlo(loop, tf.ones([N, H]), tf.ones([H, H]),
                             tf.constant(5)))


def test_a_convolution_and_its_gradients_count_their_multiply_adds():
  """A 3 x 3 convolution over 2 input channels: 18 multiply-adds per output
  element (padding included). With SAME padding its input and filter
  gradients are convolutions of the same count, the filter's contracting
  the batch and the image (3 x 5 x 5 per filter element)."""
  image, kernel = tf.ones([3, 5, 5, 2]), tf.ones([3, 3, 2, 4])
  forward = 2.0 * (3 * 5 * 5 * 4) * (3 * 3 * 2)
  assert hlo_flops.matmul_flops(_hlo(
      lambda a, b: tf.nn.conv2d(a, b, 1, "SAME"), image, kernel)) == forward

  def with_gradients(a, b):
    with tf.GradientTape() as tape:
      tape.watch([a, b])
      loss = tf.reduce_sum(tf.square(tf.nn.conv2d(a, b, 1, "SAME")))
    return tape.gradient(loss, [a, b])

  assert hlo_flops.matmul_flops(_hlo(with_gradients, image, kernel)) == (
      3 * forward)


def test_text_without_a_module_is_refused():
  with pytest.raises(ValueError, match="no HLO computation"):
    hlo_flops.matmul_flops("not HLO")
