"""Tests for lpg_tf.agents.layers against per-lifetime reference loops."""

import functools

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf.agents import layers


class DenseTest(tf.test.TestCase):

  def test_matches_per_lifetime_matmul(self):
    x = tf.random.stateless_normal([3, 5, 4], seed=[0, 1])
    w = tf.random.stateless_normal([3, 4, 2], seed=[0, 2])
    b = tf.random.stateless_normal([3, 2], seed=[0, 3])
    expected = [tf.matmul(x[l], w[l]) + b[l] for l in range(3)]
    self.assertAllClose(layers.dense(x, w, b), tf.stack(expected), atol=1e-5)


class Conv2dTest(tf.test.TestCase, parameterized.TestCase):

  @parameterized.product(
      case=[
          ("grid_3x3_same", [7, 7, 3], 3, 1, "SAME"),
          ("strided_same", [9, 8, 2], 3, 2, "SAME"),
          ("atari_first_layer_valid", [20, 20, 4], 8, 4, "VALID"),
          ("even_kernel_valid", [9, 9, 3], 4, 2, "VALID"),
      ],
      per_lifetime=[False, True])
  def test_matches_tf_nn_conv2d_per_lifetime(self, case, per_lifetime):
    _, image_shape, kernel, stride, padding = case
    num_lifetimes, batch, out = 3, 2, 5
    x = tf.random.stateless_normal([num_lifetimes, batch, *image_shape],
                                   seed=[1, 1])
    w = tf.random.stateless_normal(
        [num_lifetimes, kernel, kernel, image_shape[-1], out], seed=[1, 2])
    b = tf.random.stateless_normal([num_lifetimes, out], seed=[1, 3])
    expected = [
        tf.nn.conv2d(x[l], w[l], stride, padding) + b[l]
        for l in range(num_lifetimes)
    ]
    self.assertAllClose(
        layers.conv2d(x, w, b, stride, padding, per_lifetime),
        tf.stack(expected), atol=1e-4)

  @parameterized.parameters(1, layers.MAX_LIFETIMES_PER_CONV,
                            layers.MAX_LIFETIMES_PER_CONV + 1)
  def test_any_number_of_lifetimes_gives_im2col_values(self, num_lifetimes):
    x = tf.random.stateless_normal([num_lifetimes, 2, 6, 6, 2], seed=[2, 1])
    w = tf.random.stateless_normal([num_lifetimes, 3, 3, 2, 4], seed=[2, 2])
    b = tf.random.stateless_normal([num_lifetimes, 4], seed=[2, 3])
    self.assertAllClose(layers.conv2d(x, w, b, 1, "SAME", per_lifetime=True),
                        layers.conv2d_im2col(x, w, b, 1, "SAME"), atol=1e-4)

  @parameterized.parameters(False, True)
  def test_second_order_gradient_matches_im2col(self, jit_compile):
    """The meta-gradient's pattern, d/dw of a loss after one gradient step on
    w, is the same through per-lifetime convolutions as through im2col, with
    XLA and without (the trainers take per-lifetime convolutions without XLA
    only, for speed)."""
    x = tf.random.stateless_normal([2, 3, 7, 7, 3], seed=[4, 1])
    w = tf.random.stateless_normal([2, 3, 3, 3, 4], seed=[4, 2]) * 0.3
    b = tf.random.stateless_normal([2, 4], seed=[4, 3])

    def meta_gradient(conv):
      def loss(w):
        return tf.reduce_sum(tf.square(tf.tanh(conv(x, w, b, 1, "SAME"))))

      @tf.function(jit_compile=jit_compile, autograph=False)
      def run(w):
        with tf.GradientTape() as outer:
          outer.watch(w)
          with tf.GradientTape() as inner:
            inner.watch(w)
            inner_loss = loss(w)
          updated = w - 0.1 * inner.gradient(inner_loss, w)
          outer_loss = loss(updated)
        return outer.gradient(outer_loss, w)

      return run(w)

    per_lifetime = functools.partial(layers.conv2d, per_lifetime=True)
    self.assertAllClose(meta_gradient(per_lifetime),
                        meta_gradient(layers.conv2d_im2col),
                        rtol=1e-4, atol=1e-4)

  @parameterized.named_parameters(
      ("same", [7, 7, 3], 3, 1, "SAME"),
      ("strided_same_even_size", [8, 9, 2], 4, 3, "SAME"),
      ("strided_valid", [20, 20, 4], 8, 4, "VALID"),
  )
  def test_im2col_matches_extract_patches(self, image_shape, kernel, stride,
                                          padding):
    images = tf.random.stateless_normal([2, *image_shape], seed=[3, 1])
    expected = tf.image.extract_patches(
        images, [1, kernel, kernel, 1], [1, stride, stride, 1], [1, 1, 1, 1],
        padding)
    self.assertAllEqual(
        layers.im2col(images, kernel, kernel, stride, padding), expected)

  @parameterized.parameters(("SAME", 11, 3, 1, 11), ("SAME", 9, 3, 2, 5),
                            ("VALID", 84, 8, 4, 20), ("VALID", 20, 4, 2, 9),
                            ("VALID", 9, 3, 1, 7))
  def test_output_size_matches_conv(self, padding, size, kernel, stride,
                                    expected):
    self.assertEqual(
        layers.conv_output_size(size, kernel, stride, padding), expected)


class GatherRowsTest(tf.test.TestCase):

  def test_matches_per_lifetime_gather(self):
    table = tf.random.stateless_normal([4, 6, 3], seed=[2, 1])
    index = tf.random.stateless_uniform([4, 7], seed=[2, 2], maxval=6,
                                        dtype=tf.int32)
    expected = np.stack([tf.gather(table[l], index[l]) for l in range(4)])
    self.assertAllEqual(layers.gather_rows(table, index), expected)


if __name__ == "__main__":
  absltest.main()
