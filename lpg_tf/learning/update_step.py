"""One agent update theta -> theta' with an update rule (Eq. 2 / Eq. 7 / A2C).

This is a pure function of tensors, so the meta-gradient can differentiate through
K of them (DESIGN.md idiom 1). The rule's targets are computed inside
`inner_tape.stop_recording()`: the inner tape (the agent's gradient) treats them as
constants, as Eq. 2 requires, while an enclosing outer tape still sees
eta -> (pi_hat, y_hat) -> theta' (idiom 2).

One rule call serves every lifetime, so one lifetime whose theta has turned
non-finite must not poison the others' meta-gradient through the rule's shared
weights: the rule reads non-finite inputs as 0, and the meta-gradient reaching
its targets has its non-finite entries set to 0 (`_finite_gradient`). Both are
the identity while everything is finite; a lifetime that went non-finite is
excluded from the meta-loss, so its entries carry no gradient anyway (0, or
0 x inf = NaN), and the meta-step ends it (meta_step, population).
"""

from typing import Any, List, NamedTuple, Sequence, Tuple

import tensorflow as tf

from lpg_tf import rl_math
from lpg_tf import shapes
from lpg_tf import slicing
from lpg_tf import types
from lpg_tf.learning import agent_update
from lpg_tf.learning import layout
from lpg_tf.learning import optimizers
from lpg_tf.learning import rollout
from lpg_tf.rules import base as rule_base


class UpdateInfo(NamedTuple):
  """What an update reports, per lifetime unless noted.

  Attributes:
    loss: `[L]` agent loss before the update.
    policy_entropy: `[L]` mean H(pi) over the trajectory.
    targets: the rule's targets `[L, T, B, ...]` (for Eq. 4's regularisers).
    outputs: the agent's outputs on the trajectory, `[L, T + 1, B, ...]`.
  """
  loss: tf.Tensor
  policy_entropy: tf.Tensor
  targets: types.RuleOutput
  outputs: types.AgentOutput


def rule_inputs(trajectory: types.Trajectory, outputs: types.AgentOutput,
                next_prediction_logits: tf.Tensor, gamma: tf.Tensor,
                y_softmax: bool = True) -> types.RuleInputs:
  """The rule's view of a trajectory (x_t of Section 3.1), `[T, L * B, ...]`.

  y(s_{t+1}) is read on the true next observation, the terminal one at a
  terminal step, so the backward LSTM, whose state is reset there, gets nothing
  of the next episode through its input either (Appendix B.1).

  Args:
    trajectory: `[L, T, B, ...]`.
    outputs: the agent's outputs at s_0..s_T, `[L, T + 1, B, ...]`.
    next_prediction_logits: `[L, T, B, m]` the agent's prediction head on
      `trajectory.next_observation`.
    gamma: `[L]` discount factor of each lifetime.
    y_softmax: y is the softmax of the prediction head (Section 3.1); False:
      the head's raw output (`rules.base.LossConfig.y_softmax`).
  """
  shapes.assert_shapes("rule_inputs", shapes.trajectory_and_outputs(
      trajectory, outputs) + [
      ("outputs.baseline", outputs.baseline, ["L", "T+1", "B"]),
      ("next_prediction_logits", next_prediction_logits, ["L", "T", "B", None]),
      ("gamma", gamma, ["L"])])
  pi_a = tf.exp(rl_math.log_prob(
      slicing.take(outputs.policy_logits, 0, -1, axis=1), trajectory.action))
  to_y = tf.nn.softmax if y_softmax else tf.identity
  y = to_y(outputs.prediction_logits)
  gamma_t = tf.broadcast_to(gamma[:, None, None], trajectory.reward.shape)
  return types.RuleInputs(
      reward=layout.to_time_major(trajectory.reward),
      discount=layout.to_time_major(trajectory.discount),
      gamma=layout.to_time_major(gamma_t),
      pi_a=layout.to_time_major(pi_a),
      y=layout.to_time_major(slicing.take(y, 0, -1, axis=1)),
      y_next=layout.to_time_major(to_y(next_prediction_logits)),
      baseline=layout.to_time_major(outputs.baseline))


def _finite_or_zero(x: tf.Tensor) -> tf.Tensor:
  """x with non-finite entries replaced by 0 (their gradient is 0)."""
  return tf.where(tf.math.is_finite(x), x, tf.zeros_like(x))


@tf.custom_gradient
def _finite_gradient(x: tf.Tensor):
  """Identity whose gradient has its non-finite entries set to 0."""
  return tf.identity(x), _finite_or_zero


def _slice_outputs(outputs: types.AgentOutput, end: int) -> types.AgentOutput:
  return types.AgentOutput(*[slicing.take(x, 0, end, axis=1)
                             for x in outputs])


class GroupUpdate(NamedTuple):
  """One environment group's part of a batched update (see `update_groups`).

  Attributes:
    apply_fn: the group's agent network `apply(params, observation)`.
    optimiser: SGD (tabular) or Adam (networks), per Table 3.
    params: theta, a nest of `[L, ...]` tensors.
    opt_state: the optimiser's state for `params`.
    trajectory: `[L, T, B, ...]` rollout of pi_theta.
    gamma, learning_rate, kl_cost: `[L]` per-lifetime gamma, alpha_lr, alpha_y.
  """
  apply_fn: rollout.ApplyFn
  optimiser: optimizers.Optimiser
  params: Any
  opt_state: Any
  trajectory: types.Trajectory
  gamma: tf.Tensor
  learning_rate: tf.Tensor
  kl_cost: tf.Tensor


def _concat_inputs(inputs: Sequence[types.RuleInputs]) -> types.RuleInputs:
  if len(inputs) == 1:
    return inputs[0]
  return types.RuleInputs(*[tf.concat(xs, axis=1) for xs in zip(*inputs)])


def _check_group(group: GroupUpdate) -> None:
  """Raises ValueError unless theta, the trajectory and alpha agree on L."""
  shapes.assert_shapes("update_groups", [
      ("trajectory.action", group.trajectory.action, ["L", "T", "B"]),
      ("gamma", group.gamma, ["L"]),
      ("learning_rate", group.learning_rate, ["L"]),
      ("kl_cost", group.kl_cost, ["L"]),
  ] + [(f"params[{i}]", p, ["L"]) for i, p in enumerate(tf.nest.flatten(
      group.params))], prefix_only=True)


def update_groups(rule: rule_base.UpdateRule, groups: Sequence[GroupUpdate]
                 ) -> List[Tuple[Any, Any, UpdateInfo]]:
  """theta' for every group: one rule call over all groups' trajectories.

  The groups' rule inputs are concatenated along N, so the rule (LPG's LSTM) runs
  once per update for the whole population rather than once per group; its
  targets are split back. One inner tape serves all groups: their losses are
  independent, so the gradient of the sum is each group's own gradient.

  Returns:
    For each group: (theta', optimiser state, UpdateInfo).
  """
  with tf.GradientTape() as inner_tape:
    all_outputs, all_inputs = [], []
    for group in groups:
      _check_group(group)
      inner_tape.watch(group.params)
      outputs = group.apply_fn(group.params, group.trajectory.observation)
      next_outputs = group.apply_fn(group.params,
                                    group.trajectory.next_observation)
      all_outputs.append(outputs)
      all_inputs.append(rule_inputs(group.trajectory, outputs,
                                    next_outputs.prediction_logits, group.gamma,
                                    rule.loss_config.y_softmax))
    with inner_tape.stop_recording():
      flat_inputs = types.RuleInputs(*[
          None if x is None else _finite_or_zero(x)
          for x in _concat_inputs(all_inputs)])
      flat_targets = types.RuleOutput(*[
          None if x is None else _finite_gradient(x)
          for x in rule(flat_inputs)])
    sizes = [inputs.reward.shape[1] for inputs in all_inputs]
    split = [tf.split(x, sizes, axis=1) if x is not None else [None] * len(sizes)
             for x in flat_targets]
    losses, all_targets = [], []
    for index, (group, outputs) in enumerate(zip(groups, all_outputs)):
      num_lifetimes, num_steps = group.trajectory.reward.shape[:2]
      targets = types.RuleOutput(*[
          None if parts[index] is None
          else layout.to_lifetime_major(parts[index], num_lifetimes)
          for parts in split])
      all_targets.append(targets)
      losses.append(agent_update.agent_loss(
          _slice_outputs(outputs, num_steps), group.trajectory.action, targets,
          group.kl_cost, rule.loss_config))
    total_loss = tf.add_n([tf.reduce_sum(loss) for loss in losses])
  grads = inner_tape.gradient(total_loss, [group.params for group in groups])
  results = []
  for group, group_grads, loss, targets, outputs in zip(
      groups, grads, losses, all_targets, all_outputs):
    new_params, new_opt_state = group.optimiser.update(
        group.params, group_grads, group.opt_state, group.learning_rate)
    num_steps = group.trajectory.reward.shape[1]
    entropy = tf.reduce_mean(rl_math.entropy(
        outputs.policy_logits[:, :num_steps]), axis=[1, 2])
    results.append((new_params, new_opt_state,
                    UpdateInfo(loss, entropy, targets, outputs)))
  return results


def update(apply_fn: rollout.ApplyFn, rule: rule_base.UpdateRule,
           optimiser: optimizers.Optimiser, params: Any, opt_state: Any,
           trajectory: types.Trajectory, gamma: tf.Tensor,
           learning_rate: tf.Tensor,
           kl_cost: tf.Tensor) -> Tuple[Any, Any, UpdateInfo]:
  """theta' = optimiser step along the gradient of the rule's agent loss.

  The single-group case of `update_groups`; arguments as in `GroupUpdate`.

  Returns:
    (theta', optimiser state, UpdateInfo).
  """
  return update_groups(rule, [GroupUpdate(apply_fn, optimiser, params, opt_state,
                                          trajectory, gamma, learning_rate,
                                          kl_cost)])[0]
