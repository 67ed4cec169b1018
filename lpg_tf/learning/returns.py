"""Multi-step returns used by hand-designed rules and by the meta-objective."""

import tensorflow as tf


def lambda_returns(reward: tf.Tensor, discount: tf.Tensor, values: tf.Tensor,
                   lambda_: float) -> tf.Tensor:
  """TD(lambda) returns, computed backwards (Sutton & Barto 2018, Eq. 12.18).

    G_t = r_t + discount_t * ((1 - lambda) * v_{t+1} + lambda * G_{t+1}),
    G_{T-1} bootstraps from v_T.

  With lambda = 1 this is the n-step return bootstrapped at the end of the
  trajectory (A2C); with lambda = 0 it is the one-step TD target.

  Args:
    reward: `[T, N]` rewards r_t.
    discount: `[T, N]` per-step discounts, gamma * d_t (0 where the episode ended).
    values: `[T + 1, N]` value estimates v(s_0)..v(s_T).
    lambda_: mixing coefficient in [0, 1].

  Returns:
    `[T, N]` lambda-returns G_0..G_{T-1}.
  """
  tf.debugging.assert_rank(reward, 2)
  next_values = values[1:]

  def backward(g_next, xs):
    r, d, v_next = xs
    return r + d * ((1.0 - lambda_) * v_next + lambda_ * g_next)

  return tf.scan(backward, (reward, discount, next_values),
                 initializer=values[-1], reverse=True)
