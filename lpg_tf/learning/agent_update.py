"""The agent's loss given an update rule's targets: Eq. 2, Eq. 7 and A2C in one form.

For a trajectory of a lifetime, with targets (pi_hat, y_hat, f_hat) from a rule that
are constants for theta (DESIGN.md idiom 2), the per-lifetime loss is

  mean_{t,b} [ -log pi(a_t|s_t) * (pi_hat_t - [f(s_t)])        policy term
               + alpha_y * KL(y(s_t) || y_hat_t)              prediction term (Eq. 2)
               + c_f * 1/2 (f(s_t) - f_hat_t)^2              scalar-head regression
               - beta_H * H(pi(.|s_t)) ]                      entropy bonus

and descending its gradient is the ascent direction of Eq. 2:
  Eq. 2 (LPG):  alpha_y > 0, no baseline, c_f = 0, beta_H = 0.
  Eq. 7 (LPG with the action-independent baseline of Appendix B.2): the bracketed
    f(s_t) is subtracted (as a constant inside the policy term), f_hat = pi_hat, c_f = 1.
  A2C: pi_hat = advantage, f_hat = lambda-return, alpha_y = 0, c_f = value cost,
    beta_H = entropy cost.
"""

from typing import NamedTuple

import tensorflow as tf

from lpg_tf import types

# Smallest target probability inside log(y_hat): a softmax can underflow to 0 in
# float32, and KL(y || y_hat) would then be infinite.
MIN_TARGET_PROBABILITY = 1e-12


class LossConfig(NamedTuple):
  """The static shape of a rule's agent loss.

  Attributes:
    subtract_baseline: subtract f(s) from pi_hat in the policy term (Eq. 7).
    baseline_cost: c_f, weight of 1/2 (f(s) - f_hat)^2.
    entropy_cost: beta_H, weight of the policy-entropy bonus (A2C only; LPG's
      entropy regulariser belongs to the meta-objective, Eq. 4).
  """
  subtract_baseline: bool = False
  baseline_cost: float = 0.0
  entropy_cost: float = 0.0


def kl_divergence(p_logits: tf.Tensor, q: tf.Tensor) -> tf.Tensor:
  """KL(p || q) = sum_x p(x) log(p(x) / q(x)) over the last axis (Eq. 2).

  Args:
    p_logits: `[..., m]` logits of p (the agent's y(s)).
    q: `[..., m]` probabilities of q (the rule's y_hat).
  """
  log_p = tf.nn.log_softmax(p_logits)
  log_q = tf.math.log(tf.maximum(q, MIN_TARGET_PROBABILITY))
  return tf.reduce_sum(tf.exp(log_p) * (log_p - log_q), axis=-1)


def policy_entropy(logits: tf.Tensor) -> tf.Tensor:
  """H(pi) = -sum_a pi(a) log pi(a) over the last axis."""
  log_pi = tf.nn.log_softmax(logits)
  return -tf.reduce_sum(tf.exp(log_pi) * log_pi, axis=-1)


def log_prob(logits: tf.Tensor, action: tf.Tensor) -> tf.Tensor:
  """log pi(a|s) for `action` `[...]` under `logits` `[..., A]`.

  A one-hot sum rather than a batched gather: XLA rejects the second derivative of
  `tf.gather(..., batch_dims=...)` inside the meta-gradient (DESIGN.md idiom 4).
  """
  num_actions = logits.shape[-1]
  one_hot = tf.one_hot(action, num_actions, dtype=logits.dtype)
  return tf.reduce_sum(one_hot * tf.nn.log_softmax(logits), axis=-1)


def agent_loss(outputs: types.AgentOutput, action: tf.Tensor,
               targets: types.RuleOutput, kl_cost: tf.Tensor,
               config: LossConfig) -> tf.Tensor:
  """Per-lifetime agent loss (see module docstring), `[L]`.

  Args:
    outputs: the agent's outputs at s_0..s_{T-1}, each `[L, T, B, ...]`.
    action: `[L, T, B]` actions taken.
    targets: the rule's targets, `[L, T, B, ...]`. They must be constants for the
      tape that differentiates this loss w.r.t. theta: compute them inside that
      tape's `stop_recording()` (update_step does), not with `tf.stop_gradient`,
      which would also cut an enclosing meta-gradient tape's path eta -> targets.
    kl_cost: `[L]` alpha_y per lifetime (ignored when targets.y_hat is None).
    config: which terms the rule's loss has.

  Returns:
    `[L]` losses; sum them before differentiating so lifetimes stay independent.
  """
  tf.debugging.assert_rank(action, 3)
  baseline = outputs.baseline
  advantage = targets.pi_hat
  if config.subtract_baseline:
    advantage -= tf.stop_gradient(baseline)
  per_step = -log_prob(outputs.policy_logits, action) * advantage
  if targets.y_hat is not None:
    kl = kl_divergence(outputs.prediction_logits, targets.y_hat)
    per_step += kl_cost[:, None, None] * kl
  if targets.baseline_target is not None and config.baseline_cost:
    error = baseline - targets.baseline_target
    per_step += config.baseline_cost * 0.5 * tf.square(error)
  if config.entropy_cost:
    per_step -= config.entropy_cost * policy_entropy(outputs.policy_logits)
  return tf.reduce_mean(per_step, axis=[1, 2])
