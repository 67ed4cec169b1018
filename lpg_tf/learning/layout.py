"""Moving between the two layouts of lpg_tf's batches (DESIGN.md, Conventions).

Agents hold lifetimes on a leading axis, `[L, T, B, ...]`; rules and returns work
time-major over every environment of every lifetime, `[T, L * B, ...]`. The flat
environment axis is lifetime-major: column l * B + b belongs to lifetime l.
"""

import tensorflow as tf


def to_time_major(x: tf.Tensor) -> tf.Tensor:
  """`[L, T, B, ...]` -> `[T, L * B, ...]`."""
  perm = [1, 0] + list(range(2, len(x.shape)))
  x = tf.transpose(x, perm)
  return tf.reshape(x, [x.shape[0], -1] + x.shape[3:].as_list())


def to_lifetime_major(x: tf.Tensor, num_lifetimes: int) -> tf.Tensor:
  """`[T, L * B, ...]` -> `[L, T, B, ...]`."""
  x = tf.reshape(x, [x.shape[0], num_lifetimes, -1] + x.shape[2:].as_list())
  perm = [1, 0] + list(range(2, len(x.shape)))
  return tf.transpose(x, perm)
