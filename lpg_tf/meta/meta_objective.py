"""The meta-objective of Eq. 4, scored on a rollout of theta_K.

  grad_eta [ log pi_K(a|s) A + beta0 H(pi_K) + beta1 H(y_K)
             - beta2 ||pi_hat||^2 - beta3 ||y_hat||^2 ]                     (Eq. 4)

Appendix B.1 replaces the REINFORCE return G of Eq. 3 by an advantage actor-critic
estimate: A = G^lambda - v(s) with a per-lifetime critic v that exists only to
reduce the variance of the meta-gradient (the rule never sees it). The targets'
L2 penalties apply to every (pi_hat, y_hat) the rule produced during the K inner
updates of the window; ||y_hat||^2 is the squared norm of the m-vector.
"""

from typing import NamedTuple, Sequence, Tuple

import tensorflow as tf

from lpg_tf import rl_math
from lpg_tf import shapes
from lpg_tf import slicing
from lpg_tf import types
from lpg_tf.learning import layout

# Table 2.
PREDICTION_ENTROPY_COST = 0.001  # beta1
PI_HAT_L2_COST = 0.001  # beta2
Y_HAT_L2_COST = 0.001  # beta3
# TD(lambda) mixing of the A2C advantage of the outer algorithm (Appendix B.1).
ADVANTAGE_LAMBDA = 0.95


class MetaObjectiveCosts(NamedTuple):
  """The fixed coefficients of Eq. 4 (beta0 is sampled per lifetime, Table 2)."""
  prediction_entropy: float = PREDICTION_ENTROPY_COST
  pi_hat_l2: float = PI_HAT_L2_COST
  y_hat_l2: float = Y_HAT_L2_COST
  advantage_lambda: float = ADVANTAGE_LAMBDA


class MetaObjectiveTerms(NamedTuple):
  """Per-lifetime terms of Eq. 4, each `[L]`; `loss` is what is minimised."""
  loss: tf.Tensor
  policy_gradient: tf.Tensor
  policy_entropy: tf.Tensor
  prediction_entropy: tf.Tensor
  pi_hat_l2: tf.Tensor
  y_hat_l2: tf.Tensor


def lifetime_lambda_returns(trajectory: types.Trajectory, values: tf.Tensor,
                            gamma: tf.Tensor, lambda_: float) -> tf.Tensor:
  """TD(lambda) returns `[L, T, B]` of a trajectory with values `[L, T + 1, B]`."""
  discounts = trajectory.discount * gamma[:, None, None]
  g = rl_math.lambda_returns(layout.to_time_major(trajectory.reward),
                             layout.to_time_major(discounts),
                             layout.to_time_major(values), lambda_)
  return layout.to_lifetime_major(g, trajectory.reward.shape[0])


def prediction_entropy(prediction_logits: tf.Tensor) -> tf.Tensor:
  """H(y) of the softmax prediction vector over its last axis."""
  return rl_math.entropy(prediction_logits)


def target_l2(targets: types.RuleOutput) -> Tuple[tf.Tensor, tf.Tensor]:
  """`[L]` means of ||pi_hat||^2 and ||y_hat||^2 (squared norm of the m-vector)."""
  pi_hat_l2 = tf.reduce_mean(tf.square(targets.pi_hat), axis=[1, 2])
  y_hat_l2 = tf.reduce_mean(tf.reduce_sum(tf.square(targets.y_hat), -1), axis=[1, 2])
  return pi_hat_l2, y_hat_l2


def target_spread(targets: types.RuleOutput) -> tf.Tensor:
  """`[L]` how much y_hat varies across the states of a rollout (a diagnostic).

  The mean over the `[T, B]` steps of the total-variation distance
  1/2 ||y_hat_t - mean y_hat||_1 from the rollout's mean target: 0 when y_hat is
  the same vector everywhere (e.g. uniform, which carries no information about
  the state), up to 1 - 1/(T B) when each step gets its own one-hot target.
  Not part of Eq. 4: it only shows whether the rule uses y (Sections 4.2-4.3).
  For a y_hat in R^m (no softmax; LPG-V's TD(lambda) return) it is half the
  mean L1 distance from the mean target.
  """
  y_hat = tf.stop_gradient(targets.y_hat)
  mean = tf.reduce_mean(y_hat, axis=[1, 2], keepdims=True)
  distance = 0.5 * tf.reduce_sum(tf.abs(y_hat - mean), axis=-1)
  return tf.reduce_mean(distance, axis=[1, 2])


def meta_objective(outputs: types.AgentOutput, trajectory: types.Trajectory,
                   critic_values: tf.Tensor, gamma: tf.Tensor,
                   policy_entropy_cost: tf.Tensor, pi_hat_l2: tf.Tensor,
                   y_hat_l2: tf.Tensor,
                   costs: MetaObjectiveCosts) -> MetaObjectiveTerms:
  """Eq. 4 for L lifetimes, as a loss to minimise (its negation), `[L]`.

  Args:
    outputs: theta_K's outputs on the scoring rollout, `[L, T + 1, B, ...]`.
    trajectory: the scoring rollout of theta_K, `[L, T, B, ...]`.
    critic_values: `[L, T + 1, B]` the critic's v(s_0..s_T), held constant.
    gamma: `[L]` discount factors.
    policy_entropy_cost: `[L]` beta0 per lifetime (Table 2: {0.01, 0.02}).
    pi_hat_l2, y_hat_l2: `[L]` `target_l2` of the K inner updates' targets,
      averaged over the window.
    costs: beta1, beta2, beta3 and the advantage's lambda.
  """
  check_scoring_shapes("meta_objective", outputs, trajectory, critic_values,
                       [("gamma", gamma), ("policy_entropy_cost",
                                           policy_entropy_cost),
                        ("pi_hat_l2", pi_hat_l2), ("y_hat_l2", y_hat_l2)])
  values = tf.stop_gradient(critic_values)
  g = lifetime_lambda_returns(trajectory, values, gamma, costs.advantage_lambda)
  advantage = tf.stop_gradient(g - values[:, :-1])
  # s_0..s_{T-1}: the outputs at the bootstrap state s_T are not scored.
  policy_logits = slicing.take(outputs.policy_logits, 0, -1, axis=1)
  log_pi = rl_math.log_prob(policy_logits, trajectory.action)
  policy_gradient = tf.reduce_mean(log_pi * advantage, axis=[1, 2])
  policy_entropy = tf.reduce_mean(rl_math.entropy(policy_logits), axis=[1, 2])
  y_entropy = tf.reduce_mean(prediction_entropy(
      slicing.take(outputs.prediction_logits, 0, -1, axis=1)), axis=[1, 2])
  objective = (policy_gradient + policy_entropy_cost * policy_entropy
               + costs.prediction_entropy * y_entropy
               - costs.pi_hat_l2 * pi_hat_l2 - costs.y_hat_l2 * y_hat_l2)
  return MetaObjectiveTerms(-objective, policy_gradient, policy_entropy,
                            y_entropy, pi_hat_l2, y_hat_l2)


def critic_loss(critic_values: tf.Tensor, trajectory: types.Trajectory,
                gamma: tf.Tensor, lambda_: float) -> tf.Tensor:
  """The critic's TD(lambda) regression 1/2 (v(s_t) - G^lambda_t)^2, `[L]`.

  The target uses the critic's own (stopped) values for bootstrapping.
  """
  shapes.assert_shapes("critic_loss", [
      ("trajectory.reward", trajectory.reward, ["L", "T", "B"]),
      ("critic_values", critic_values, ["L", None, "B"]),
      ("gamma", gamma, ["L"])])
  g = lifetime_lambda_returns(trajectory, tf.stop_gradient(critic_values), gamma,
                              lambda_)
  return tf.reduce_mean(
      0.5 * tf.square(slicing.take(critic_values, 0, -1, axis=1) - g),
      axis=[1, 2])


def check_scoring_shapes(where: str, outputs: types.AgentOutput,
                         trajectory: types.Trajectory, critic_values: tf.Tensor,
                         per_lifetime: Sequence[Tuple[str, tf.Tensor]]) -> None:
  """Raises ValueError unless the scoring data agree on `[L, T(+1), B]`.

  Outputs and critic values cover s_0..s_T (T + 1 steps), the trajectory's
  actions and rewards T steps, and per-lifetime coefficients are `[L]`; a
  mismatch would otherwise broadcast into a wrong meta-gradient.
  """
  shapes.assert_shapes(where, shapes.trajectory_and_outputs(
      trajectory, outputs) + [
          ("critic_values", critic_values, ["L", "T+1", "B"])] + [
              (name, tensor, ["L"]) for name, tensor in per_lifetime])
  steps, steps_plus_one = trajectory.reward.shape[1], critic_values.shape[1]
  if steps is not None and steps_plus_one is not None:
    if steps_plus_one != steps + 1:
      raise ValueError(f"{where}: values and outputs must cover T + 1 = "
                       f"{steps + 1} steps, got {steps_plus_one}")
