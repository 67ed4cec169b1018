"""lpg_tf.slicing.take: Python's slice semantics, and the gradient of the
indexing it replaces."""

from absl.testing import absltest
from absl.testing import parameterized
import numpy as np
import tensorflow as tf

from lpg_tf import slicing

X = np.arange(4 * 6 * 3, dtype=np.float32).reshape([4, 6, 3])


class TakeTest(parameterized.TestCase):

  @parameterized.parameters(
      (0, -1, 1), (1, 6, 1), (-2, -1, 1), (0, 3, 0), (1, 2, -1), (2, 99, 1),
      (-99, 2, 0))
  def test_values_are_numpy_slicing(self, start, stop, axis):
    index = [slice(None)] * X.ndim
    index[axis] = slice(start, stop)
    np.testing.assert_array_equal(
        slicing.take(tf.constant(X), start, stop, axis=axis), X[tuple(index)])

  def test_gradient_is_that_of_indexing(self):
    x = tf.constant(X)
    weights = tf.random.stateless_normal([4, 5, 3], seed=[1, 2])
    with tf.GradientTape(persistent=True) as tape:
      tape.watch(x)
      taken = tf.reduce_sum(slicing.take(x, 0, -1, axis=1) * weights)
      indexed = tf.reduce_sum(x[:, :-1] * weights)
    np.testing.assert_array_equal(tape.gradient(taken, x),
                                  tape.gradient(indexed, x))

  def test_empty_range_is_refused(self):
    with self.assertRaisesRegex(ValueError, "selects nothing"):
      slicing.take(tf.constant(X), 3, 3, axis=1)

  def test_axis_out_of_range_is_refused(self):
    with self.assertRaisesRegex(ValueError, "out of range"):
      slicing.take(tf.constant(X), 0, 1, axis=3)

  def test_unknown_size_is_refused(self):
    take = tf.function(lambda x: slicing.take(x, 0, 1, axis=0))
    with self.assertRaisesRegex(ValueError, "no static size"):
      take.get_concrete_function(tf.TensorSpec([None, 3]))


if __name__ == "__main__":
  absltest.main()
