"""One meta-step window of Algorithm 1, as pure functions of tensors.

For every lifetime of every group: K inner updates theta_0 -> theta_K with the rule
(Eq. 2), each on a fresh T-step rollout of the current theta; then a rollout of
theta_K scored by the meta-objective (Eq. 4). `window_loss` runs under the outer
GradientTape whose gradient w.r.t. eta is the meta-gradient (DESIGN.md idioms 1-2);
the inner updates of all groups share one rule call each (`update_groups`), so the
LSTM runs once per inner update over the whole population. theta_K carries over as
the next window's theta_0 (truncated, sliding-window meta-gradient, Section 3.3).

Rollouts only produce data: they act with stopped parameters and their outputs are
constants, so the meta-gradient flows only through the agent's outputs on the
trajectories and the rule's targets, never through the environment.
"""

from typing import Any, List, NamedTuple, Sequence, Tuple

import tensorflow as tf

from lpg_tf import types
from lpg_tf.learning import rollout
from lpg_tf.learning import update_step
from lpg_tf.meta import lifetimes
from lpg_tf.meta import meta_objective
from lpg_tf.rules import base as rule_base


class GroupWindow(NamedTuple):
  """What a window produced for one group.

  Attributes:
    state: the group's state after the window (theta_K, acting state, critic);
      the lifetime counters are not yet updated.
    scoring_trajectory: theta_K's rollout scored by Eq. 4, `[L, T, B, ...]`.
    terms: Eq. 4's per-lifetime terms.
    return_sum: `[L]` sum of returns of the episodes completed in the window.
    episodes: `[L]` number of episodes completed in the window.
  """
  state: lifetimes.LifetimeState
  scoring_trajectory: types.Trajectory
  terms: meta_objective.MetaObjectiveTerms
  return_sum: tf.Tensor
  episodes: tf.Tensor


def _stop(nest: Any) -> Any:
  return tf.nest.map_structure(tf.stop_gradient, nest)


def _act(group: lifetimes.LifetimeGroup, params: Any,
         actor: rollout.ActorState,
         unroll_length: int) -> Tuple[types.Trajectory, rollout.ActorState]:
  trajectory, actor = rollout.unroll(group.agent.apply, _stop(params), group.env,
                                     actor, unroll_length, group.num_lifetimes)
  return _stop(trajectory), _stop(actor)


def window_loss(rule: rule_base.UpdateRule,
                groups: Sequence[lifetimes.LifetimeGroup],
                states: Sequence[lifetimes.LifetimeState],
                num_inner_updates: int, unroll_length: int,
                costs: meta_objective.MetaObjectiveCosts,
                critic_learning_rate: float
               ) -> Tuple[tf.Tensor, List[GroupWindow]]:
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

  Returns:
    (scalar loss to minimise, one GroupWindow per group).
  """
  num_groups = len(groups)

  def inner_update(k, params, opt_states, actors, critics, return_sums,
                   episodes, pi_hat_l2, y_hat_l2):
    """Inner update k of the window (Eq. 2) for every group at once."""
    updates, actors, critics = [], list(actors), list(critics)
    return_sums, episodes = list(return_sums), list(episodes)
    for index, (group, state) in enumerate(zip(groups, states)):
      trajectory, actors[index] = _act(group, params[index], actors[index],
                                       unroll_length)
      total, count = rollout.completed_episode_stats(trajectory)
      return_sums[index] += total
      episodes[index] += count
      critics[index] = critic_update(group, critics[index], trajectory,
                                     state.gamma, critic_learning_rate,
                                     costs.advantage_lambda)
      updates.append(update_step.GroupUpdate(
          group.agent.apply, group.optimiser, params[index], opt_states[index],
          trajectory, state.gamma, state.learning_rate, state.kl_cost))
    results = update_step.update_groups(rule, updates)
    pi_hat_l2, y_hat_l2 = list(pi_hat_l2), list(y_hat_l2)
    for index, (_, _, info) in enumerate(results):
      pi_l2, y_l2 = meta_objective.target_l2(info.targets)
      pi_hat_l2[index] += pi_l2 / num_inner_updates
      y_hat_l2[index] += y_l2 / num_inner_updates
    return (k + 1, [r[0] for r in results], [r[1] for r in results], actors,
            critics, return_sums, episodes, pi_hat_l2, y_hat_l2)

  zeros = [tf.zeros([g.num_lifetimes]) for g in groups]
  # A while loop keeps one copy of the update in the graph, so XLA compiles a
  # window in time independent of K; differentiating it needs a static bound.
  (_, params, opt_states, actors, critics, return_sums, episodes, pi_hat_l2,
   y_hat_l2) = tf.while_loop(
       lambda k, *_: k < num_inner_updates, inner_update,
       (tf.constant(0), [s.params for s in states],
        [s.opt_state for s in states], [s.actor for s in states],
        [Critic(s.critic_params, s.critic_opt_state) for s in states], zeros,
        zeros, zeros, zeros),
       maximum_iterations=num_inner_updates)
  params, opt_states, actors = list(params), list(opt_states), list(actors)

  windows, losses = [], []
  for index, (group, state) in enumerate(zip(groups, states)):
    trajectory, actors[index] = _act(group, params[index], actors[index],
                                     unroll_length)
    total, count = rollout.completed_episode_stats(trajectory)
    outputs = group.agent.apply(params[index], trajectory.observation)
    critic_values = group.critic.apply(critics[index].params,
                                       trajectory.observation).baseline
    terms = meta_objective.meta_objective(
        outputs, trajectory, critic_values, state.gamma, state.entropy_cost,
        pi_hat_l2[index], y_hat_l2[index], costs)
    losses.append(terms.loss)
    critic = critic_update(group, critics[index], trajectory, state.gamma,
                           critic_learning_rate, costs.advantage_lambda)
    new_state = state._replace(
        params=params[index], opt_state=opt_states[index], actor=actors[index],
        critic_params=critic.params, critic_opt_state=critic.opt_state)
    windows.append(GroupWindow(new_state, trajectory, terms,
                               return_sums[index] + total, episodes[index] + count))
  total_lifetimes = sum(g.num_lifetimes for g in groups)
  loss = tf.add_n([tf.reduce_sum(l) for l in losses]) / total_lifetimes
  return loss, windows


class Critic(NamedTuple):
  """A group's critics: parameters `[L, ...]` and their Adam state."""
  params: Any
  opt_state: Any


def critic_update(group: lifetimes.LifetimeGroup, critic: Critic,
                  trajectory: types.Trajectory, gamma: tf.Tensor,
                  learning_rate: float, lambda_: float) -> Critic:
  """One Adam step of the critics' TD(lambda) regression on a rollout.

  The critic only serves the meta-objective (Appendix B.1); nothing here
  depends on eta.
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
  return Critic(params, opt_state)


def _all_finite(nest: Any) -> tf.Tensor:
  """`[L]` True where every leaf of a `[L, ...]` nest is finite for that lifetime."""
  checks = [tf.reduce_all(tf.reshape(tf.math.is_finite(x), [x.shape[0], -1]), 1)
            for x in tf.nest.flatten(nest) if x.dtype.is_floating]
  return tf.reduce_all(tf.stack(checks), axis=0)


def advance_lifetimes(group: lifetimes.LifetimeGroup,
                      state: lifetimes.LifetimeState, window: GroupWindow,
                      steps_taken: int, entropy_threshold: float
                     ) -> Tuple[lifetimes.LifetimeState, tf.Tensor, tf.Tensor]:
  """Counts the window's steps and return; says which lifetimes end now.

  A lifetime ends when it has lived its configured number of steps, when its
  policy entropy collapses to 0 (Appendix B.1, "Preventing Early Divergence":
  below `entropy_threshold` nats), or when its parameters stop being finite.

  Returns:
    (state, ended `[L]` bool, diverged `[L]` bool: the entropy or finiteness cases).
  """
  mean_return = window.return_sum / tf.maximum(window.episodes, 1.0)
  seen = window.episodes > 0
  blended = tf.where(state.has_return > 0,
                     (1 - lifetimes.RETURN_AVERAGING) * state.recent_return
                     + lifetimes.RETURN_AVERAGING * mean_return, mean_return)
  recent_return = tf.where(seen, blended, state.recent_return)
  has_return = tf.maximum(state.has_return, tf.cast(seen, tf.float32))
  steps = state.steps + steps_taken
  diverged = tf.logical_or(
      window.terms.policy_entropy < entropy_threshold,
      tf.logical_not(tf.logical_and(_all_finite(state.params),
                                    _all_finite(state.critic_params))))
  ended = tf.logical_or(steps >= group.lifetime_steps, diverged)
  state = state._replace(steps=steps, recent_return=recent_return,
                         has_return=has_return)
  return state, ended, diverged
