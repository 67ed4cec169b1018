"""The meta-gradient tests' check: analytic directional derivatives of a loss
against central finite differences along random directions."""

from typing import Callable, Sequence

import numpy as np
import tensorflow as tf


def assert_matches_finite_differences(
    variables: Sequence[tf.Variable], grads: Sequence[tf.Tensor],
    loss: Callable[[], tf.Tensor], rng: np.random.Generator, directions: int,
    eps: float = 1e-5) -> None:
  """For `directions` random d: sum(g * d) equals (L(v + eps d) - L(v - eps d)) / 2 eps.

  The variables are restored after each direction. A derivative of almost 0 fails
  (a test that cannot fail is no test).
  """
  originals = [v.numpy() for v in variables]
  for _ in range(directions):
    direction = [rng.normal(size=v.shape) for v in variables]
    values = []
    for sign in (1.0, -1.0):
      for v, o, d in zip(variables, originals, direction):
        v.assign(o + sign * eps * d)
      values.append(float(loss()))
    for v, o in zip(variables, originals):
      v.assign(o)
    numeric = (values[0] - values[1]) / (2 * eps)
    analytic = sum(float(tf.reduce_sum(g * d)) for g, d in zip(grads, direction))
    assert abs(analytic) > 1e-6, analytic
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-9)
