"""Pure RL maths shared by every layer: returns, log-probabilities, entropies, KL.

The leaf of the package (RLax keeps its losses the same way): small pure
functions of tensors, no state, no lpg_tf imports, each with its equation and
shapes. Rules (A2C's advantage), the agent loss (Eq. 2 / Eq. 7), the
meta-objective (Eq. 4) and the analyses all call these, so one definition serves
them all.

Categorical distributions are written out with `log_softmax` rather than taken
from tensorflow-probability: measured on this stack (2-core CPU, a 2000 x 18
batch differentiated twice as in the meta-gradient), TFP's `Categorical` is
1.1-1.9x slower under XLA and 1.8-2.2x slower without it for the same numbers,
and its import adds about 0.6 s to every process.
"""

import tensorflow as tf

# Smallest target probability inside log(q) when only q's probabilities are
# known: a softmax can underflow to 0 in float32, and KL(y || y_hat) would then
# be infinite. Where q's logits are known, `kl_divergence_logits` needs no floor.
MIN_TARGET_PROBABILITY = 1e-12


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
  tf.debugging.assert_rank(discount, 2)
  tf.debugging.assert_rank(values, 2)
  if values.shape[0] is not None and reward.shape[0] is not None:
    if values.shape[0] != reward.shape[0] + 1:
      raise ValueError(f"values must hold T + 1 = {reward.shape[0] + 1} steps, "
                       f"got {values.shape[0]}")
  next_values = values[1:]

  def backward(g_next, xs):
    r, d, v_next = xs
    return r + d * ((1.0 - lambda_) * v_next + lambda_ * g_next)

  return tf.scan(backward, (reward, discount, next_values),
                 initializer=values[-1], reverse=True)


def log_prob(logits: tf.Tensor, action: tf.Tensor) -> tf.Tensor:
  """log pi(a|s) for `action` `[...]` under `logits` `[..., A]`.

  A one-hot sum rather than a batched gather: XLA rejects the second derivative
  of `tf.gather(..., batch_dims=...)` inside the meta-gradient (DESIGN.md
  idiom 4).
  """
  if logits.shape.rank is not None and action.shape.rank is not None:
    if logits.shape.rank != action.shape.rank + 1:
      raise ValueError(f"logits {logits.shape} must have one axis more than "
                       f"action {action.shape}")
  num_actions = logits.shape[-1]
  one_hot = tf.one_hot(action, num_actions, dtype=logits.dtype)
  return tf.reduce_sum(one_hot * tf.nn.log_softmax(logits), axis=-1)


def entropy(logits: tf.Tensor) -> tf.Tensor:
  """H(softmax(logits)) = -sum_x p(x) log p(x) over the last axis.

  H(pi) for the policy (Eq. 4's beta0 term, A2C's bonus) and H(y) for the
  prediction vector (Eq. 4's beta1 term).
  """
  log_p = tf.nn.log_softmax(logits)
  return -tf.reduce_sum(tf.exp(log_p) * log_p, axis=-1)


def kl_divergence(p_logits: tf.Tensor, q: tf.Tensor) -> tf.Tensor:
  """KL(p || q) = sum_x p(x) log(p(x) / q(x)) over the last axis (Eq. 2).

  Args:
    p_logits: `[..., m]` logits of p (the agent's y(s)).
    q: `[..., m]` probabilities of q (the rule's y_hat).
  """
  log_p = tf.nn.log_softmax(p_logits)
  log_q = tf.math.log(tf.maximum(q, MIN_TARGET_PROBABILITY))
  return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)


def kl_divergence_logits(p_logits: tf.Tensor, q_logits: tf.Tensor) -> tf.Tensor:
  """KL(p || q) over the last axis (Eq. 2), both given by their logits.

  log q is log_softmax(q_logits): finite, with a non-zero gradient, also where
  softmax(q_logits) underflows to 0, where `kl_divergence`'s floored log would
  be constant and cut the meta-gradient through y_hat.

  Args:
    p_logits: `[..., m]` logits of p (the agent's y(s)).
    q_logits: `[..., m]` logits of q (the rule's y_hat).
  """
  log_p = tf.nn.log_softmax(p_logits)
  log_q = tf.nn.log_softmax(q_logits)
  return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)
