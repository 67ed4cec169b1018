"""One evolution-strategies window: every member's lifetimes, batched, in-graph.

Evolution strategies (lpg_tf.meta.es) score M copies of eta. Member 0 is eta
itself (the centre); members 1..P are its antithetic perturbations. Every member
starts the window from the population's lifetimes (theta, optimiser state,
acting state, alpha, gamma) and runs `window` inner updates on its own copy of
them with its own eta_i (Eq. 2): K = `window` rollouts of T steps, each followed
by an agent update. The centre's lifetimes carry on after the window, as theta_K
does in the meta-gradient step (truncated windows, Section 3.3); the perturbed
copies are scored and dropped.

Batching. A group's L lifetimes are tiled to M x L lifetimes, member-major
(lifetime m L + l is member m's copy of lifetime l, environment rows likewise),
so acting and the agent update are the population's own functions
(`rollout.unroll`, `update_step.update_groups`) on a larger L. The rule runs once
per inner update over every member and group: `MemberRule` regroups the
concatenated rule inputs into M column blocks and calls
`lpg.LPG.member_targets`, a forward pass with a leading member axis on eta's
parameters. There is no Python loop over members.

Memory. Nothing is differentiated through the window (ES needs no gradient of
the rule) and the inner updates run in a `tf.while_loop` whose carry is the
lifetimes' state and a few `[M L]` running sums, so memory does not grow with
the window length, and neither does compilation time.

Fitness. A member's fitness on a group is the reward per step its agents
collect in the rollouts of the window's last ceil(K / 2) updates, i.e. after at
least K // 2 >= 1 updates with its own eta: the rate of return its agents reach
at the end of the window, averaged over its lifetimes and environments. Not the
returns of completed episodes: a window is usually shorter than an episode
(tabular/dense's last 500 steps, a window of 10 x T=20 steps), so most windows
complete none, and the episodes they do complete were mostly lived before the
window, under the centre's eta (on tests/meta/test_es_trainer.py's config no
member completed an episode in its window's second half, and every estimate
was 0). A member whose parameters are not finite at the end scores NaN
(ranked lowest, `es.centred_ranks`).
"""

from typing import Any, List, NamedTuple, Sequence

import tensorflow as tf

from lpg_tf import types
from lpg_tf.agents import networks
from lpg_tf.learning import rollout
from lpg_tf.learning import update_step
from lpg_tf.meta import population as population_lib
from lpg_tf.rules import base as rule_base
from lpg_tf.rules import lpg

MIN_WINDOW = 2  # The fitness needs rollouts after at least one update.


class MemberRule(rule_base.UpdateRule):
  """An update rule whose inputs' columns belong to M members, each read by
  its own eta_i.

  `update_step.update_groups` concatenates the groups' rule inputs along N;
  group g contributes M x n_g columns, member-major. This rule regroups them
  into M blocks of sum_g n_g columns, calls `LPG.member_targets` once, and
  restores the layout of its input.
  """

  def __init__(self, rule: lpg.LPG, params: Sequence[tf.Tensor],
               num_members: int, group_columns: Sequence[int]):
    """Args:
      rule: the LPG rule (its variables' structure; their values are unused).
      params: one `[M, ...]` tensor per variable of `rule.trainable_variables`.
      num_members: M.
      group_columns: n_g, each group's columns per member (L_g x B).
    """
    self._rule = rule
    self._params = list(params)
    self._num_members = num_members
    self._group_columns = list(group_columns)

  @property
  def loss_config(self) -> rule_base.LossConfig:
    return self._rule.loss_config

  @property
  def prediction_size(self) -> int:
    return self._rule.prediction_size

  def _by_member(self, x: tf.Tensor) -> tf.Tensor:
    """`[T, sum_g M n_g, ...]` group-major -> `[T, M sum_g n_g, ...]` member-major."""
    parts = tf.split(x, [self._num_members * n for n in self._group_columns], 1)
    blocks = [tf.reshape(p, [p.shape[0], self._num_members, -1]
                         + p.shape[2:].as_list()) for p in parts]
    joined = tf.concat(blocks, axis=2)
    return tf.reshape(joined, [x.shape[0], -1] + x.shape[2:].as_list())

  def _by_group(self, x: tf.Tensor) -> tf.Tensor:
    """The inverse of `_by_member`."""
    blocks = tf.reshape(x, [x.shape[0], self._num_members, -1]
                        + x.shape[2:].as_list())
    parts = tf.split(blocks, self._group_columns, axis=2)
    return tf.concat([tf.reshape(p, [x.shape[0], -1] + x.shape[2:].as_list())
                      for p in parts], axis=1)

  def __call__(self, inputs: types.RuleInputs) -> types.RuleOutput:
    regrouped = types.RuleInputs(*[
        None if x is None else self._by_member(x) for x in inputs])
    targets = self._rule.member_targets(self._params, regrouped,
                                        self._num_members)
    return types.RuleOutput(*[
        None if x is None else self._by_group(x) for x in targets])


class MemberGroup(NamedTuple):
  """A population group seen by M members: the group and an agent network
  for M x L lifetimes (only its `apply` is used)."""
  group: population_lib.LifetimeGroup
  agent: networks.AgentNetwork


class GroupResult(NamedTuple):
  """What a window produced for one group.

  Attributes:
    state: the centre's lifetimes after the window (counters not yet updated,
      `Population.advance`).
    return_sum: `[L]` the centre's summed returns of episodes completed in the
      window.
    episodes: `[L]` the centre's completed episodes in the window.
    policy_entropy: `[L]` the centre's policy entropy at its last update.
    finite: `[L]` the centre's last agent loss is finite.
    fitness: `[M - 1]` each perturbed member's fitness on the group (module
      docstring), NaN where its parameters are not finite.
  """
  state: population_lib.LifetimeState
  return_sum: tf.Tensor
  episodes: tf.Tensor
  policy_entropy: tf.Tensor
  finite: tf.Tensor
  fitness: tf.Tensor


class _Carry(NamedTuple):
  params: Any
  opt_state: Any
  actor: rollout.ActorState
  return_sum: tf.Tensor
  episodes: tf.Tensor
  late_reward: tf.Tensor
  policy_entropy: tf.Tensor
  finite: tf.Tensor


def _tile(nest: Any, num_members: int) -> Any:
  """Every `[R, ...]` leaf repeated M times along R, member-major."""
  return tf.nest.map_structure(
      lambda x: tf.tile(x, [num_members] + [1] * (x.shape.rank - 1)), nest)


def tile_actor(actor: rollout.ActorState, num_members: int) -> rollout.ActorState:
  """The acting state of M copies of the lifetimes; the environments' shared
  random stream (`rng`) and the action-sampling seed are not per row."""
  env_state = type(actor.env_state)(**{
      name: value if name == "rng" else _tile(value, num_members)
      for name, value in zip(actor.env_state._fields, actor.env_state)})
  return rollout.ActorState(
      env_state=env_state, timestep=_tile(actor.timestep, num_members),
      episode_return=_tile(actor.episode_return, num_members), rng=actor.rng)


def _centre(nest: Any, num_lifetimes: int) -> Any:
  """Member 0's rows of every leaf."""
  return tf.nest.map_structure(lambda x: x[:num_lifetimes], nest)


def _centre_actor(actor: rollout.ActorState, num_lifetimes: int,
                  num_envs: int) -> rollout.ActorState:
  rows = num_lifetimes * num_envs
  env_state = type(actor.env_state)(**{
      name: value if name == "rng" else _centre(value, rows)
      for name, value in zip(actor.env_state._fields, actor.env_state)})
  return rollout.ActorState(env_state, _centre(actor.timestep, rows),
                            actor.episode_return[:rows], actor.rng)


def member_fitness(late_reward: tf.Tensor, finite: tf.Tensor,
                   num_members: int, late_steps: int) -> tf.Tensor:
  """`[M - 1]` each perturbed member's reward per step from per-lifetime
  reward sums `[M L]` over `late_steps` steps each; NaN where any of its
  lifetimes' parameters `finite` `[M L]` are not."""
  reward = tf.reduce_mean(tf.reshape(late_reward, [num_members, -1]), 1)
  ok = tf.reduce_all(tf.reshape(finite, [num_members, -1]), 1)
  fitness = tf.where(ok, reward / late_steps,
                     tf.fill(tf.shape(reward), float("nan")))
  return fitness[1:]


def evaluate_members(rule: lpg.LPG, groups: Sequence[MemberGroup],
                     states: Sequence[population_lib.LifetimeState],
                     member_params: Sequence[tf.Tensor], window: int,
                     unroll_length: int) -> List[GroupResult]:
  """Runs every member's copy of the lifetimes through one window.

  Args:
    rule: the LPG rule (structure only, `MemberRule`).
    groups: the population's groups with their M x L agents.
    states: the groups' states at the start of the window (`[L]` each).
    member_params: `[M, ...]` per variable of `rule.trainable_variables`;
      member 0 is the centre.
    window: K, the inner updates of the window (>= MIN_WINDOW).
    unroll_length: T.
  """
  if window < MIN_WINDOW:
    raise ValueError(f"window must be >= {MIN_WINDOW}, got {window}")
  if len(groups) != len(states):
    raise ValueError(f"{len(groups)} groups but {len(states)} states")
  num_members = int(member_params[0].shape[0])
  member_rule = MemberRule(
      rule, member_params, num_members,
      [g.group.num_lifetimes * g.group.num_envs for g in groups])
  tiled = [s._replace(learning_rate=_tile(s.learning_rate, num_members),
                      kl_cost=_tile(s.kl_cost, num_members),
                      gamma=_tile(s.gamma, num_members)) for s in states]
  first_late_update = window // 2

  def inner_update(k: tf.Tensor, carries: List[_Carry]):
    late = tf.cast(k >= first_late_update, tf.float32)
    updates, acted = [], []
    for member_group, state, carry in zip(groups, tiled, carries):
      trajectory, actor = rollout.unroll(
          member_group.agent.apply, carry.params, member_group.group.env,
          carry.actor, unroll_length, num_members * member_group.group.num_lifetimes)
      total, count = rollout.completed_episode_stats(trajectory)
      acted.append(carry._replace(
          actor=actor, return_sum=carry.return_sum + total,
          episodes=carry.episodes + count,
          late_reward=carry.late_reward + late * tf.reduce_sum(
              trajectory.reward, axis=[1, 2])))
      updates.append(update_step.GroupUpdate(
          member_group.agent.apply, member_group.group.optimiser, carry.params,
          carry.opt_state, trajectory, state.gamma, state.learning_rate,
          state.kl_cost))
    new_carries = [
        carry._replace(params=params, opt_state=opt_state,
                       policy_entropy=info.policy_entropy,
                       finite=tf.math.is_finite(info.loss))
        for carry, (params, opt_state, info) in zip(
            acted, update_step.update_groups(member_rule, updates))]
    return k + 1, new_carries

  initial = []
  for state in states:
    zeros = _tile(tf.zeros_like(state.learning_rate), num_members)
    initial.append(_Carry(
        _tile(state.params, num_members), _tile(state.opt_state, num_members),
        tile_actor(state.actor, num_members), zeros, zeros, zeros, zeros,
        tf.ones_like(zeros, tf.bool)))
  _, carries = tf.while_loop(lambda k, _: k < window, inner_update,
                             (tf.constant(0), initial),
                             maximum_iterations=window)
  late_steps = (window - first_late_update) * unroll_length
  results = []
  for member_group, state, carry in zip(groups, states, carries):
    num_lifetimes = member_group.group.num_lifetimes
    new_state = state._replace(
        params=_centre(carry.params, num_lifetimes),
        opt_state=_centre(carry.opt_state, num_lifetimes),
        actor=_centre_actor(carry.actor, num_lifetimes,
                            member_group.group.num_envs))
    results.append(GroupResult(
        new_state, carry.return_sum[:num_lifetimes],
        carry.episodes[:num_lifetimes], carry.policy_entropy[:num_lifetimes],
        carry.finite[:num_lifetimes],
        member_fitness(
            carry.late_reward,
            population_lib.all_finite(carry.params),
            num_members, late_steps * member_group.group.num_envs)))
  return results
