"""Stateless random numbers that are identical with and without XLA.

Everything random in lpg_tf is a pure function of `[2]` int32 seeds carried in
state (XLA ignores op seeds of stateful ops, DESIGN.md). On this stack two
stateless ops disagree between `jit_compile=True` and TensorFlow's own kernels:
anything with the default "auto_select" algorithm (which picks another generator
under XLA), and float draws even with Philox. Splits and integer bits drawn with
Philox agree, so every draw here goes through them.
"""

import math

import tensorflow as tf

ALG = "philox"


def split(seed: tf.Tensor, num: int = 2) -> tf.Tensor:
  """`[num, 2]` independent int32 seeds derived from a `[2]` int32 seed."""
  return tf.random.experimental.stateless_split(seed, num, alg=ALG)


def uniform(shape, seed: tf.Tensor, minval: float = 0.0,
            maxval: float = 1.0) -> tf.Tensor:
  """float32 uniform in (minval, maxval), from the top 24 bits of Philox integers.

  The half-step offset keeps draws strictly inside the interval, so log(u) and
  log(-log(u)) are always finite.
  """
  bits = tf.random.stateless_uniform(shape, seed, minval=None, maxval=None,
                                     dtype=tf.uint32, alg=ALG)
  unit = (tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) + 0.5) * 2.0**-24
  return minval + (maxval - minval) * unit


def integers(shape, seed: tf.Tensor, maxval: int) -> tf.Tensor:
  """int32 uniform in [0, maxval)."""
  return tf.random.stateless_uniform(shape, seed, minval=0, maxval=maxval,
                                     dtype=tf.int32, alg=ALG)


def normal(shape, seed: tf.Tensor) -> tf.Tensor:
  """float32 standard normal draws by Box-Muller from two `uniform` streams.

  The uniforms are identical with and without XLA, but XLA's log and cos are
  not TensorFlow's: compiled draws differ from eager ones in the last bits
  (up to ~5e-7 here). Callers that need bit-identical numbers draw outside
  compiled functions (evolution strategies' noise does).
  """
  first, second = tf.unstack(split(seed))
  radius = tf.sqrt(-2.0 * tf.math.log(uniform(shape, first)))
  return radius * tf.cos(2.0 * math.pi * uniform(shape, second))
