"""The agent's loss given an update rule's targets: Eq. 2, Eq. 7 and A2C in one form.

For a trajectory of a lifetime, with targets (pi_hat, y_hat, f_hat) from a rule that
are constants for theta (DESIGN.md idiom 2), the per-lifetime loss is

  mean_{t,b} [ -log pi(a_t|s_t) * (pi_hat_t - [f(s_t)])        policy term
               + alpha_y * D(y(s_t), y_hat_t)                 prediction term (Eq. 2)
               + c_f * 1/2 (f(s_t) - f_hat_t)^2              scalar-head regression
               - beta_H * H(pi(.|s_t)) ]                      entropy bonus

with D(y, y_hat) = KL(y || y_hat) for a softmax y (Eq. 2), or the squared error
||y - y_hat||^2 for a raw y in R^m (`LossConfig.y_softmax` False: Section 4.4's
"LPG w/o Softmax(y)", and LPG-V). Descending its gradient is the ascent
direction of Eq. 2:
  Eq. 2 (LPG):  alpha_y > 0, no baseline, c_f = 0, beta_H = 0.
  Eq. 7 (LPG with the action-independent baseline of Appendix B.2): the bracketed
    f(s_t) is subtracted (as a constant inside the policy term), f_hat = pi_hat, c_f = 1.
  A2C: pi_hat = advantage, f_hat = lambda-return, alpha_y = 0, c_f = value cost,
    beta_H = entropy cost.
  LPG-V (Section 4.1): as Eq. 2, with y = v(s) in R^1 and y_hat its TD(lambda)
    return, so the prediction term is alpha_y (v(s_t) - G^lambda_t)^2.

The KL reads log y_hat by log-softmax of the rule's `y_hat_logits` when the rule
gives them (LPG does), so the meta-gradient through y_hat survives where y_hat's
softmax underflows to 0; a rule with probabilities only (an exported rule) gets a
floored log instead.
"""

import tensorflow as tf

from lpg_tf import rl_math
from lpg_tf import types
from lpg_tf.rules import base as rule_base


def agent_loss(outputs: types.AgentOutput, action: tf.Tensor,
               targets: types.RuleOutput, kl_cost: tf.Tensor,
               config: rule_base.LossConfig) -> tf.Tensor:
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
  _check_leading_axes(action, outputs, targets)
  baseline = outputs.baseline
  advantage = targets.pi_hat
  if config.subtract_baseline:
    advantage -= tf.stop_gradient(baseline)
  per_step = -rl_math.log_prob(outputs.policy_logits, action) * advantage
  if targets.y_hat is not None:
    per_step += kl_cost[:, None, None] * prediction_loss(
        outputs.prediction_logits, targets, config.y_softmax)
  if targets.baseline_target is not None and config.baseline_cost:
    error = baseline - targets.baseline_target
    per_step += config.baseline_cost * 0.5 * tf.square(error)
  if config.entropy_cost:
    per_step -= config.entropy_cost * rl_math.entropy(outputs.policy_logits)
  return tf.reduce_mean(per_step, axis=[1, 2])


def prediction_loss(prediction: tf.Tensor, targets: types.RuleOutput,
                    y_softmax: bool) -> tf.Tensor:
  """D(y, y_hat) of the prediction term, `[L, T, B]`.

  Args:
    prediction: `[L, T, B, m]` the agent's prediction head: the logits of y
      when `y_softmax`, else y itself.
    targets: the rule's targets; `y_hat` must be set.
    y_softmax: KL(y || y_hat) (Eq. 2) if True, else ||y - y_hat||^2.
  """
  if not y_softmax:
    return tf.reduce_sum(tf.square(prediction - targets.y_hat), axis=-1)
  if targets.y_hat_logits is not None:
    return rl_math.kl_divergence_logits(prediction, targets.y_hat_logits)
  return rl_math.kl_divergence(prediction, targets.y_hat)


def _check_leading_axes(action: tf.Tensor, outputs: types.AgentOutput,
                        targets: types.RuleOutput) -> None:
  """Raises ValueError unless outputs and targets lead with action's `[L, T, B]`.

  A target laid out `[T, L * B]` instead of `[L, T, B]` would otherwise
  broadcast silently into a wrong loss.
  """
  expected = action.shape
  for name, tensor in (("policy_logits", outputs.policy_logits),
                       ("prediction_logits", outputs.prediction_logits),
                       ("pi_hat", targets.pi_hat), ("y_hat", targets.y_hat),
                       ("baseline_target", targets.baseline_target),
                       ("y_hat_logits", targets.y_hat_logits)):
    if tensor is None:
      continue
    leading = tensor.shape[:3]
    if not leading.is_compatible_with(expected):
      raise ValueError(f"agent_loss: {name} leads with {leading}, the actions "
                       f"with [L, T, B] = {expected}")
