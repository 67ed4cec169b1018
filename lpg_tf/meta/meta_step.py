"""One meta-step window of Algorithm 1, as pure functions of tensors.

For every lifetime of every group: K inner updates theta_0 -> theta_K with the rule
(Eq. 2), each on a fresh T-step rollout of the current theta; then a rollout of
theta_K scored by the meta-objective (Eq. 4). `window_loss` runs under the outer
GradientTape whose gradient w.r.t. eta is the meta-gradient (DESIGN.md idioms 1-2);
the inner updates of all groups share one rule call each (`update_groups`), so the
LSTM runs once per inner update over the whole population. theta_K carries over as
the next window's theta_0 (truncated, sliding-window meta-gradient, Section 3.3).
Each group's part of the loop's carry is one `GroupCarry`; whether a lifetime
ends after the window is the population's decision (`population.LifetimeGroup`),
not this module's.

A lifetime whose Eq. 4 loss or theta_K is not finite is left out of the
meta-loss (`GroupWindow.finite`), which averages over the lifetimes kept: one
diverged lifetime no longer makes the whole meta-gradient non-finite. Its loss
enters through `tf.where`, and `update_step` keeps its non-finite values out of
the rule's shared gradient; the population ends it as diverged.

Rollouts only produce data: they act with stopped parameters and their outputs are
constants, so the meta-gradient flows only through the agent's outputs on the
trajectories and the rule's targets, never through the environment.
"""

import threading
from typing import Any, List, NamedTuple, Sequence, Tuple

import sonnet as snt
import tensorflow as tf
from tensorflow.core.protobuf import config_pb2
from tensorflow.core.protobuf import rewriter_config_pb2
from tensorflow.python.eager import context

from lpg_tf import types
from lpg_tf.learning import rollout
from lpg_tf.learning import update_step
from lpg_tf.meta import meta_objective
from lpg_tf.meta import population as population_lib
from lpg_tf.meta import recompute
from lpg_tf.rules import base as rule_base

# Iterations of the inner-update loop (and of its gradient, which inherits the
# setting) that may run at once without XLA; XLA ignores it. Each update
# depends on the last, so one at a time costs little, and several are unsafe:
# Grappler's memory optimiser turns a sum of 3 or more gradient terms (AddN)
# into a TemporaryVariable named after the node whenever its static estimate
# of a graph's peak memory exceeds 80% of the device's (256 MiB for the CPU
# device), as a large population's meta-step can; nothing else here creates a
# TemporaryVariable. The loop carries every group, so with several
# iterations in flight a fast group's iteration k + 1 can create that
# variable while a slow group's iteration k still holds it:
# AlreadyExistsError (TemporaryVariableOp) in the gradient of a while loop.
INNER_LOOP_PARALLEL_ITERATIONS = 1


# Sonnet's custom variable getter patches the module classes for as long as it
# is entered, for every thread: concurrently traced programs
# (`MetaTrainer._threaded_chunks`) take turns at substituting eta's values
# (`_updated`), so that none reads another's graph's tensors or leaves the
# patch behind. Held while tracing only, never while a program runs.
_SUBSTITUTING = threading.RLock()


def disable_grappler_memory_optimiser() -> None:
  """Turns Grappler's memory optimiser off for every function this process
  runs from now on (the meta-step without XLA; XLA never sees Grappler).

  One iteration at a time is not enough on every population: a
  random/very_dense group (configs/appendix_a.py) still failed at its second
  meta-step without XLA, with AlreadyExistsError for such a TemporaryVariable
  in the outer loop's gradient at iteration K (`iter:5`, K = 5), one past the
  last: seemingly created there but never destroyed, so the next meta-step,
  in the same step container (`__per_step_0`), finds it. Without the memory
  optimiser no TemporaryVariable exists, and that group runs 3 meta-steps.
  TensorFlow 2.15 has no public switch for it (`tf.config.optimizer` lacks
  `memory_optimization`), so this sets the eager context's ConfigProto, the
  one every later function call hands to Grappler.
  """
  # pylint: disable=protected-access
  eager = context.context()
  config = config_pb2.ConfigProto()
  if eager._config is not None:
    config.CopyFrom(eager._config)
  config.graph_options.rewrite_options.memory_optimization = (
      rewriter_config_pb2.RewriterConfig.NO_MEM_OPT)
  eager._config = config
  eager.function_call_options = None  # Rebuilt from the new ConfigProto.


class Critic(NamedTuple):
  """A group's critics: parameters `[L, ...]` and their Adam state."""
  params: Any
  opt_state: Any


class GroupCarry(NamedTuple):
  """One group's part of the inner-update loop's carry (`tf.while_loop`).

  Attributes:
    params: theta_k, `[L, ...]`.
    opt_state: theta_k's optimiser state.
    actor: where acting left off, environment batch `L * B`.
    critic: the meta-objective's critics, updated on every rollout.
    return_sum: `[L]` summed returns of episodes completed so far in the window.
    episodes: `[L]` episodes completed so far in the window.
    pi_hat_l2: `[L]` running mean over the K updates of ||pi_hat||^2 (Eq. 4).
    y_hat_l2: `[L]` running mean over the K updates of ||y_hat||^2 (Eq. 4).
    y_hat_spread: `[L]` running mean over the K updates of
      `meta_objective.target_spread` (a diagnostic: does y_hat vary by state?).
  """
  params: Any
  opt_state: Any
  actor: rollout.ActorState
  critic: Critic
  return_sum: tf.Tensor
  episodes: tf.Tensor
  pi_hat_l2: tf.Tensor
  y_hat_l2: tf.Tensor
  y_hat_spread: tf.Tensor


class GroupWindow(NamedTuple):
  """What a window produced for one group.

  Attributes:
    state: the group's state after the window (theta_K, acting state, critic);
      the lifetime counters are not yet updated (`LifetimeGroup.advance`).
    scoring_trajectory: theta_K's rollout scored by Eq. 4, `[L, T, B, ...]`.
    terms: Eq. 4's per-lifetime terms.
    return_sum: `[L]` sum of returns of the episodes completed in the window.
    episodes: `[L]` number of episodes completed in the window.
    y_hat_spread: `[L]` y_hat's spread across states, averaged over the K
      inner updates (`meta_objective.target_spread`).
    finite: `[L]` bool, the lifetime's loss and theta_K are finite; the others
      are left out of the meta-loss.
  """
  state: population_lib.LifetimeState
  scoring_trajectory: types.Trajectory
  terms: meta_objective.MetaObjectiveTerms
  return_sum: tf.Tensor
  episodes: tf.Tensor
  y_hat_spread: tf.Tensor
  finite: tf.Tensor


class WindowResult(NamedTuple):
  """A window of every group: the meta-loss and each group's products.

  Attributes:
    loss: scalar meta-loss to minimise, the mean of Eq. 4's negation over the
      lifetimes of every group whose loss and theta_K are finite (0 if none).
    groups: one GroupWindow per group, in the population's order.
    num_kept: scalar float, the number of lifetimes `loss` averages over: the
      weight of this window's loss and meta-gradient when several windows
      (replicas) are averaged (`meta.sharding`).
    kept_loss_sum: scalar, the sum that `loss` divides by num_kept (at least
      1): what windows of disjoint groups add up before one division, so that
      their meta-gradients compose into the population's (`trainer`'s
      programs of a few groups each).
  """
  loss: tf.Tensor
  groups: List[GroupWindow]
  num_kept: tf.Tensor
  kept_loss_sum: tf.Tensor


def _stop(nest: Any) -> Any:
  return tf.nest.map_structure(tf.stop_gradient, nest)


def _act(group: population_lib.LifetimeGroup, params: Any,
         actor: rollout.ActorState,
         unroll_length: int) -> Tuple[types.Trajectory, rollout.ActorState]:
  trajectory, actor = rollout.unroll(group.agent.apply, _stop(params), group.env,
                                     actor, unroll_length, group.num_lifetimes)
  return _stop(trajectory), _stop(actor)


class Updated(NamedTuple):
  """One group's inner update as the loop needs it: theta', its optimiser
  state, and `[L]` Eq. 4 regulariser terms and the y_hat spread diagnostic of
  the update's targets."""
  params: Any
  opt_state: Any
  pi_hat_l2: tf.Tensor
  y_hat_l2: tf.Tensor
  y_hat_spread: tf.Tensor


def _updated(rule: rule_base.UpdateRule,
             updates: Sequence[update_step.GroupUpdate],
             rematerialise: bool) -> List[Updated]:
  """Every group's inner update (Eq. 2), its intermediates kept for the
  meta-gradient or, with `rematerialise`, recomputed by it."""

  def update(groups: Sequence[update_step.GroupUpdate]) -> List[Updated]:
    updated = []
    for params, opt_state, info in update_step.update_groups(rule, groups):
      pi_l2, y_l2 = meta_objective.target_l2(info.targets)
      updated.append(Updated(params, opt_state, pi_l2, y_l2,
                             meta_objective.target_spread(info.targets)))
    return updated

  if not rematerialise:
    return update(updates)
  # Only theta and its optimiser state carry the meta-gradient into an update
  # (the trajectory is a constant, the lifetime's settings have none), and
  # eta, whose values go in as tensors that stand for its variables: a
  # recomputed computation inside the loop must not read variables.
  carried = [(u.params, u.opt_state) for u in updates]
  flat = tf.nest.flatten(carried)
  floats = [i for i, x in enumerate(flat) if x.dtype.is_floating]
  variables = rule.trainable_variables

  def flat_update(*inputs: tf.Tensor) -> List[tf.Tensor]:
    float_inputs, eta = inputs[:len(floats)], inputs[len(floats):]
    carried_inputs = list(flat)
    for i, x in zip(floats, float_inputs):
      carried_inputs[i] = x
    groups = [u._replace(params=params, opt_state=opt_state)
              for u, (params, opt_state)
              in zip(updates, tf.nest.pack_sequence_as(carried, carried_inputs))]
    values = {v.ref(): x for v, x in zip(variables, eta)}
    with _SUBSTITUTING, snt.custom_variable_getter(
        lambda v: values.get(v.ref(), v)):
      return tf.nest.flatten(update(groups))

  outputs = recompute.recomputed(
      flat_update, [flat[i] for i in floats] + [v.read_value() for v in variables])
  # theta' and its optimiser state have theta's structure (the loop's carry).
  return tf.nest.pack_sequence_as(
      [Updated(u.params, u.opt_state, 0.0, 0.0, 0.0) for u in updates], outputs)


def _initial_carry(state: population_lib.LifetimeState) -> GroupCarry:
  zeros = tf.zeros_like(state.learning_rate)
  return GroupCarry(state.params, state.opt_state, state.actor,
                    Critic(state.critic_params, state.critic_opt_state),
                    return_sum=zeros, episodes=zeros, pi_hat_l2=zeros,
                    y_hat_l2=zeros, y_hat_spread=zeros)


def window_loss(rule: rule_base.UpdateRule,
                groups: Sequence[population_lib.LifetimeGroup],
                states: Sequence[population_lib.LifetimeState],
                num_inner_updates: int, unroll_length: int,
                costs: meta_objective.MetaObjectiveCosts,
                critic_learning_rate: float,
                rematerialise: bool = False) -> WindowResult:
  """The meta-loss of one window, averaged over all lifetimes, and its products.

  Args:
    rule: the update rule eta (watched by the caller's outer tape).
    groups: the population's groups (static structure).
    states: their states at the start of the window.
    num_inner_updates: K (Table 2: 5).
    unroll_length: T (Table 2: 20).
    costs: Eq. 4's fixed coefficients.
    critic_learning_rate: Adam's learning rate for the critics, which take one
      TD(lambda) step on each of the window's K + 1 rollouts.
    rematerialise: the meta-gradient recomputes each inner update's agent and
      rule computation instead of keeping its intermediates
      (`recompute.recomputed`): memory that no longer grows with K for one more
      forward pass of each update.
  """
  if len(groups) != len(states):
    raise ValueError(f"{len(groups)} groups but {len(states)} states")

  def inner_update(k: tf.Tensor, carries: List[GroupCarry]):
    """Inner update k of the window (Eq. 2) for every group at once."""
    updates, acted = [], []
    for group, state, carry in zip(groups, states, carries):
      trajectory, actor = _act(group, carry.params, carry.actor, unroll_length)
      total, count = rollout.completed_episode_stats(trajectory)
      critic = critic_update(group, carry.critic, trajectory, state.gamma,
                             critic_learning_rate, costs.advantage_lambda)
      acted.append(carry._replace(actor=actor, critic=critic,
                                  return_sum=carry.return_sum + total,
                                  episodes=carry.episodes + count))
      updates.append(update_step.GroupUpdate(
          group.agent.apply, group.optimiser, carry.params, carry.opt_state,
          trajectory, state.gamma, state.learning_rate, state.kl_cost))
    new_carries = []
    for carry, updated in zip(acted, _updated(rule, updates, rematerialise)):
      new_carries.append(carry._replace(
          params=updated.params, opt_state=updated.opt_state,
          pi_hat_l2=carry.pi_hat_l2 + updated.pi_hat_l2 / num_inner_updates,
          y_hat_l2=carry.y_hat_l2 + updated.y_hat_l2 / num_inner_updates,
          y_hat_spread=(carry.y_hat_spread
                        + updated.y_hat_spread / num_inner_updates)))
    return k + 1, new_carries

  # A while loop keeps one copy of the update in the graph, so XLA compiles a
  # window in time independent of K; differentiating it needs a static bound.
  # One iteration at a time (INNER_LOOP_PARALLEL_ITERATIONS): see there.
  _, carries = tf.while_loop(
      lambda k, _: k < num_inner_updates, inner_update,
      (tf.constant(0), [_initial_carry(s) for s in states]),
      maximum_iterations=num_inner_updates,
      parallel_iterations=INNER_LOOP_PARALLEL_ITERATIONS)

  windows, kept_losses, kept = [], [], []
  for group, state, carry in zip(groups, states, carries):
    trajectory, actor = _act(group, carry.params, carry.actor, unroll_length)
    total, count = rollout.completed_episode_stats(trajectory)
    outputs = group.agent.apply(carry.params, trajectory.observation)
    critic_values = group.critic.apply(carry.critic.params,
                                       trajectory.observation).baseline
    terms = meta_objective.meta_objective(
        outputs, trajectory, critic_values, state.gamma, state.entropy_cost,
        carry.pi_hat_l2, carry.y_hat_l2, costs)
    finite = tf.logical_and(tf.math.is_finite(terms.loss),
                            population_lib.all_finite(carry.params))
    kept_losses.append(tf.where(finite, terms.loss, tf.zeros_like(terms.loss)))
    kept.append(tf.cast(finite, terms.loss.dtype))
    critic = critic_update(group, carry.critic, trajectory, state.gamma,
                           critic_learning_rate, costs.advantage_lambda)
    new_state = state._replace(
        params=carry.params, opt_state=carry.opt_state, actor=actor,
        critic_params=critic.params, critic_opt_state=critic.opt_state)
    windows.append(GroupWindow(new_state, trajectory, terms,
                               carry.return_sum + total, carry.episodes + count,
                               carry.y_hat_spread, finite))
  num_kept = tf.add_n([tf.reduce_sum(k) for k in kept])
  kept_loss_sum = tf.add_n([tf.reduce_sum(l) for l in kept_losses])
  loss = kept_loss_sum / tf.maximum(num_kept, 1.0)
  return WindowResult(loss, windows, num_kept, kept_loss_sum)


def critic_update(group: population_lib.LifetimeGroup, critic: Critic,
                  trajectory: types.Trajectory, gamma: tf.Tensor,
                  learning_rate: float, lambda_: float) -> Critic:
  """One Adam step of the critics' TD(lambda) regression on a rollout.

  The critic only serves the meta-objective (Appendix B.1); nothing here
  depends on eta. Its output is stopped too: the meta-gradient has nothing to
  bring back through it, and a while loop's gradient would otherwise keep the
  update's intermediates and run its second-order backward on zeros.
  """
  critic = _stop(critic)
  with tf.GradientTape() as tape:
    tape.watch(critic.params)
    values = group.critic.apply(critic.params, trajectory.observation).baseline
    loss = tf.reduce_sum(
        meta_objective.critic_loss(values, trajectory, gamma, lambda_))
  grads = tape.gradient(loss, critic.params)
  rate = tf.fill([group.num_lifetimes], tf.constant(learning_rate, tf.float32))
  params, opt_state = group.critic_optimiser.update(
      critic.params, grads, critic.opt_state, rate)
  return _stop(Critic(params, opt_state))
