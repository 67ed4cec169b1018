"""The population of lifetimes: the one owner of everything a lifetime is.

A lifetime (Algorithm 1) has its own environment instance, agent parameters theta
with their optimiser state, agent hyperparameters alpha = (alpha_lr, alpha_y)
drawn by the bandit (Eq. 6), a discount gamma and a policy-entropy cost beta0
drawn from Table 2's sets, a critic used only by the meta-objective (Appendix
B.1), and a count of the environment steps it has lived. This module owns all of
it: the state (`LifetimeState`), its start (`LifetimeGroup.fresh_state`), its end
(`LifetimeGroup.advance`: steps reached, policy-entropy collapse, non-finite
parameters), its reset, and the exchange with the bandit (`Population.finish`).
The meta-gradient step (`meta_step`, `trainer`) only moves theta through a
window; it never decides about a lifetime.

Layout. Lifetimes of one environment (and one action space) form a
`LifetimeGroup`: one set of shapes, every tensor on a leading lifetime axis L
(DESIGN.md), stored in variables so a checkpoint holds the whole population. A
`Population` is a list of independent groups plus the bandits: a shard of a
population (a replica's share) or a batch of evolution-strategy members is again
a list of groups, and `LifetimeGroup.final_return` scores any of them.

Shards. `PopulationSpec.shards` cuts the population into that many equal
shards, each a full set of groups with `lifetimes_per_env / shards` lifetimes
per environment and its own seeds, hence its own random streams (an
environment batch shares one stream, DESIGN.md). Shards are what replicas
share out (`meta.sharding`): a run's random numbers, hence its eta, depend on
the number of shards, never on the number of replicas that run them. One shard
(the default) is the population as it always was. `groups` lists every shard's
groups, shard-major; everything about lifetimes (ends, resets, the bandits,
checkpoints) sees all of them.

Grid worlds sample their action space per lifetime (Appendix A.1). By
default a population splits a grid world's lifetimes between a 9-action and an
18-action group, which gives every lifetime slot a fixed variant instead of a
fresh draw at each reset. With `PopulationSpec.sampled_action_spaces` a grid
world's lifetimes form one group of the environment with a sampled space
(envs.SAMPLED): each lifetime draws its space at every start, as the paper
does, and its agent sees only that space's actions
(agents.MaskedActionsAgent). That is one group (one compiled program with
`groups_per_program`) per grid world instead of two: configs/appendix_a.py has
15 groups instead of 25.

Choices the paper leaves open, made here:
  * A lifetime's "final return" reported to the bandit is a moving average of
    its completed episodes' returns (weight `RETURN_AVERAGING` for the newest
    window).
  * Every lifetime that ends counts in N(alpha, E) of Eq. 6, also one that
    diverged or never completed an episode (an early entropy collapse, a grid
    whose episodes outlast the lifetime): otherwise its arm keeps N = 0 and,
    being "untried", is drawn with probability 1 for ever. Such a lifetime
    reports a pessimistic return (`bandit_returns`): the lowest of its own
    return (its completed-episode average, or else the mean return so far of its
    unfinished episodes) and the lowest final return in the environment's bandit
    windows. So a diverged lifetime never raises its arm's R.
  * Staggered lifetimes. If every lifetime started at step 0, all lifetimes of
    a group would be at one stage of life in every meta-gradient batch and would
    end together, feeding the bandit in bursts. So at construction each
    lifetime's step count starts at a uniform random fraction of its length
    (numpy, seeded by the run's seed): the first generation lives between 0 and
    1 lifetime, every later one a full lifetime, and ends spread evenly over
    the first lifetime's meta-steps and stay spread.
  * "The entropy of the policy becomes 0" (Appendix B.1) is read as a mean
    policy entropy under `entropy_reset_threshold` nats over a window.
  * Without the bandit (`PopulationSpec.bandit` False, Section 4.4's "LPG
    fixed hyper": "trained with fixed hyperparameters for each training
    environment instead of balancing them"), every lifetime of an environment
    gets its fixed alpha, the middle of its Table 3 grid (the bandit's own
    starting point, `LifetimeSettings.default_*`), and nothing is sampled or
    recorded.
"""

import dataclasses
import functools
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from lpg_tf import agents
from lpg_tf import envs
from lpg_tf import errors
from lpg_tf import rng as lpg_rng
from lpg_tf.envs import base as env_base
from lpg_tf.learning import optimizers
from lpg_tf.learning import rollout
from lpg_tf.meta import bandit as bandit_lib
from lpg_tf.meta import lifetime_settings

RETURN_AVERAGING = 0.1  # weight of the newest window in `recent_return`.
ENTROPY_RESET_THRESHOLD = 1e-3  # nats: "the entropy of the policy becomes 0" (B.1).
RESET_SEED_OFFSET = 7919  # separates the reset stream from the groups' seeds.
_STAGGER_SEED_OFFSET = 104729  # separates the stagger draw from other streams.
FIXED_ARM = -1  # LifetimeState.arm of a lifetime whose alpha no bandit drew.


@dataclasses.dataclass(frozen=True)
class PopulationSpec:
  """The population's shape and how its lifetimes live (config values, passed
  as plain arguments).

  Attributes:
    env_names: training environments (lpg_tf.envs.NAMES).
    lifetimes_per_env: lifetimes per environment (split between the two action
      spaces for grid worlds).
    num_envs: B, parallel environments per lifetime (Table 2: 64).
    unroll_length: T (Table 2: 20).
    num_inner_updates: K (Table 2: 5).
    prediction_size: m (Section 4.1: 30).
    lifetime_scale: multiplies Table 3's lifetimes (1.0 = the paper's).
    entropy_reset_threshold: mean policy entropy under which a lifetime ends.
    bandit_temperature: tau of Eq. 6.
    bandit_exploration_bonus: rho of Eq. 6.
    bandit_window: lifetimes averaged in R(alpha, E).
    bandit: draw alpha from the bandit p(alpha|E) (Section 3.4); False: every
      lifetime gets its environment's fixed alpha (module docstring).
    shards: equal parts the population is cut into (module docstring); must
      divide lifetimes_per_env.
    sampled_action_spaces: a grid world's lifetimes are one group that draws
      each lifetime's action space (module docstring), not a group per space.
  """
  env_names: Sequence[str]
  lifetimes_per_env: int
  num_envs: int
  unroll_length: int = 20
  num_inner_updates: int = 5
  prediction_size: int = 30
  lifetime_scale: float = 1.0
  entropy_reset_threshold: float = ENTROPY_RESET_THRESHOLD
  bandit_temperature: float = bandit_lib.TEMPERATURE
  bandit_exploration_bonus: float = bandit_lib.EXPLORATION_BONUS
  bandit_window: int = bandit_lib.WINDOW
  bandit: bool = True
  shards: int = 1
  sampled_action_spaces: bool = False

  @property
  def env_steps_per_window(self) -> int:
    """Environment steps one lifetime lives per meta-step: (K + 1) x T x B."""
    return (self.num_inner_updates + 1) * self.unroll_length * self.num_envs


def validate_population(spec: PopulationSpec) -> None:
  """Raises ConfigError for a population that cannot be built."""
  if not spec.env_names:
    raise errors.ConfigError("the population needs at least one environment")
  unknown = [n for n in spec.env_names if n not in envs.NAMES]
  if unknown:
    raise errors.ConfigError(
        f"Unknown environment(s) {unknown}; valid: {', '.join(envs.NAMES)}")
  if len(set(spec.env_names)) != len(spec.env_names):
    raise errors.ConfigError(f"Repeated environment in {list(spec.env_names)}")
  for name in ("lifetimes_per_env", "num_envs", "unroll_length",
               "num_inner_updates", "prediction_size"):
    if getattr(spec, name) <= 0:
      raise errors.ConfigError(f"{name} must be positive, got {getattr(spec, name)}")
  if spec.shards <= 0:
    raise errors.ConfigError(f"shards must be positive, got {spec.shards}")
  if spec.lifetimes_per_env % spec.shards:
    raise errors.ConfigError(
        f"population.lifetimes_per_env={spec.lifetimes_per_env} cannot be cut "
        f"into population.shards={spec.shards} equal shards: make "
        "lifetimes_per_env a multiple of shards")
  if spec.lifetime_scale <= 0:
    raise errors.ConfigError(f"lifetime_scale must be positive, got {spec.lifetime_scale}")
  if not spec.entropy_reset_threshold >= 0:
    raise errors.ConfigError("entropy_reset_threshold must be >= 0, got "
                             f"{spec.entropy_reset_threshold}")


def lifetime_steps(env_name: str, spec: PopulationSpec) -> int:
  """Environment steps after which a lifetime of `env_name` ends: Table 3's
  lifetime x `spec.lifetime_scale`, at least 1."""
  settings = lifetime_settings.for_env(env_name)
  return max(1, int(settings.lifetime_steps * spec.lifetime_scale))


class GroupLayout(NamedTuple):
  """One group of a population: its environment, action space and size."""
  env_name: str
  action_space: Optional[str]
  num_lifetimes: int


def group_layout(spec: PopulationSpec) -> List[GroupLayout]:
  """The groups of a population; grid worlds split their lifetimes between
  the two action spaces, or sample them (`spec.sampled_action_spaces`)."""
  layout = []
  for name in spec.env_names:
    if envs.is_grid(name) and spec.sampled_action_spaces:
      layout.append(GroupLayout(name, envs.SAMPLED, spec.lifetimes_per_env))
    elif envs.is_grid(name):
      move = (spec.lifetimes_per_env + 1) // 2
      layout.append(GroupLayout(name, envs.MOVE, move))
      if spec.lifetimes_per_env - move:
        layout.append(GroupLayout(name, envs.MOVE_AND_COLLECT,
                                  spec.lifetimes_per_env - move))
    else:
      layout.append(GroupLayout(name, None, spec.lifetimes_per_env))
  return layout


def shard_layout(spec: PopulationSpec) -> List[GroupLayout]:
  """The groups of one shard: `group_layout` of lifetimes_per_env / shards."""
  return group_layout(dataclasses.replace(
      spec, lifetimes_per_env=spec.lifetimes_per_env // spec.shards))


class LifetimeState(NamedTuple):
  """Everything a group's lifetimes carry between meta-steps.

  Attributes:
    params: theta, `{name: [L, ...]}`.
    opt_state: theta's optimiser state.
    critic_params: the meta-objective's critic, `{name: [L, ...]}` (its value is
      the network's scalar head).
    critic_opt_state: the critic's optimiser state.
    actor: acting state, environment batch `L * B`.
    learning_rate: `[L]` alpha_lr.
    kl_cost: `[L]` alpha_y.
    gamma: `[L]` discount factor.
    entropy_cost: `[L]` beta0 of Eq. 4.
    arm: `[L]` int32 the bandit arm alpha came from (FIXED_ARM without one).
    steps: `[L]` int64 environment steps lived.
    recent_return: `[L]` moving average of the returns of completed episodes,
      the lifetime's "final return" reported to the bandit when it ends.
    has_return: `[L]` 1.0 once `recent_return` has seen an episode.
  """
  params: Any
  opt_state: Any
  critic_params: Any
  critic_opt_state: Any
  actor: rollout.ActorState
  learning_rate: tf.Tensor
  kl_cost: tf.Tensor
  gamma: tf.Tensor
  entropy_cost: tf.Tensor
  arm: tf.Tensor
  steps: tf.Tensor
  recent_return: tf.Tensor
  has_return: tf.Tensor


class LifetimeEnd(NamedTuple):
  """Which lifetimes of a group end after a window, each `[L]` bool.

  Attributes:
    ended: the lifetime ends now (any reason).
    diverged: it ends early: policy entropy collapsed or non-finite parameters.
  """
  ended: tf.Tensor
  diverged: tf.Tensor


def _choice(seed: tf.Tensor, values: Sequence[float], num: int) -> tf.Tensor:
  """`num` uniform draws from `values`, as float32 `[num]`."""
  index = lpg_rng.integers([num], seed, len(values))
  return tf.gather(tf.constant(values, tf.float32), index)


def _select(mask: tf.Tensor, new: Any, old: Any) -> Any:
  """Per-lifetime choice over a nest whose leaves all lead with L."""
  def pick(n, o):
    return tf.where(tf.reshape(mask, [-1] + [1] * (len(o.shape) - 1)), n, o)
  return tf.nest.map_structure(pick, new, old)


def all_finite(nest: Any) -> tf.Tensor:
  """`[L]` True where every leaf of a `[L, ...]` nest is finite for that lifetime."""
  checks = [tf.reduce_all(tf.reshape(tf.math.is_finite(x), [x.shape[0], -1]), 1)
            for x in tf.nest.flatten(nest) if x.dtype.is_floating]
  return tf.reduce_all(tf.stack(checks), axis=0)


def bandit_returns(final_return: np.ndarray, has_return: np.ndarray,
                   running_return: np.ndarray, diverged: np.ndarray,
                   lowest_return: float) -> np.ndarray:
  """`[L]` the final return each ended lifetime reports to the bandit (Eq. 6).

  A lifetime that ended at its configured length with a completed episode
  reports its recent completed-episode return. One that diverged or completed
  no episode reports min(its own return, `lowest_return`), its own return
  being the completed-episode one if any, else `running_return`. The result is
  always finite (0 where nothing finite is known), as the bandit requires.

  Args:
    final_return: `[L]` recent completed-episode returns.
    has_return: `[L]` bool, the lifetime completed an episode.
    running_return: `[L]` mean return so far of the unfinished episodes.
    diverged: `[L]` bool, the lifetime ended early (`LifetimeEnd.diverged`).
    lowest_return: lowest final return in the bandit's windows, NaN if none.
  """
  own = np.where(has_return, final_return, running_return)
  pessimistic = np.fmin(own, lowest_return)  # fmin ignores a NaN side.
  reported = np.where(has_return & ~diverged, final_return, pessimistic)
  fallback = lowest_return if np.isfinite(lowest_return) else 0.0
  return np.where(np.isfinite(reported), reported, fallback)


class LifetimeGroup(tf.Module):
  """L lifetimes of one environment: static structure plus state variables."""

  def __init__(self, env_name: str, action_space: Optional[str],
               num_lifetimes: int, num_envs: int, prediction_size: int,
               lifetime_steps: int, seed: int, per_lifetime_convs: bool = False,
               name: Optional[str] = None):
    """Builds the group and its state variables (inside a strategy scope).

    Args:
      env_name: one of lpg_tf.envs.NAMES.
      action_space: grid worlds: envs.MOVE, envs.MOVE_AND_COLLECT or
        envs.SAMPLED; else None.
      num_lifetimes: L.
      num_envs: B, environments per lifetime (64 in the paper).
      prediction_size: m.
      lifetime_steps: environment steps after which a lifetime ends (Table 3).
      seed: seed of the group's initial lifetimes.
      per_lifetime_convs: conv agents run one convolution per lifetime, for
        graphs run without XLA (`agents.build_agent`).
      name: module name.
    """
    super().__init__(name=name or env_name.replace("/", "_"))
    self.env_name = env_name
    self.env = envs.make(env_name, action_space)
    self.preset = agents.preset_for(env_name)
    self.settings = lifetime_settings.for_env(env_name)
    self.num_lifetimes = num_lifetimes
    self.num_envs = num_envs
    self.lifetime_steps = lifetime_steps
    self.optimiser = optimizers.Optimiser(self.preset.optimiser)
    # The critic exists only for the meta-gradient's variance (Appendix B.1). Adam
    # keeps it stable where Table 3's tabular SGD rates (20-80) would diverge on
    # states visited many times in one batch.
    self.critic_optimiser = optimizers.Optimiser(optimizers.ADAM)
    self.agent = agents.build_agent(self.env.spec, num_lifetimes, seed=[seed, 1],
                                    prediction_size=prediction_size,
                                    per_lifetime_convs=per_lifetime_convs)
    self.critic = agents.build_agent(self.env.spec, num_lifetimes,
                                     seed=[seed, 2], prediction_size=1,
                                     per_lifetime_convs=per_lifetime_convs)
    initial = self.fresh_state(
        tf.constant([seed, 3], tf.int32),
        tf.fill([num_lifetimes], self.settings.default_learning_rate),
        tf.fill([num_lifetimes], self.settings.default_kl_cost),
        tf.zeros([num_lifetimes], tf.int32))
    # A partial, not the nest itself: tf.Module would wrap the nest's dicts for
    # tracking, and tf.function cannot trace the wrappers.
    self._pack = functools.partial(tf.nest.pack_sequence_as, initial)
    self._variables = [tf.Variable(x, trainable=False, name="state")
                       for x in tf.nest.flatten(initial)]

  @property
  def name_for_logs(self) -> str:
    space = self.env.spec.action_space
    return self.env_name if space is None else f"{self.env_name}[{space}]"

  def read(self) -> LifetimeState:
    """The current state as tensors."""
    return self._pack([tf.convert_to_tensor(v) for v in self._variables])

  def write(self, state: LifetimeState) -> None:
    """Stores `state` in the variables."""
    for variable, value in zip(self._variables, tf.nest.flatten(state)):
      variable.assign(value)

  def fresh_state(self, seed: tf.Tensor, learning_rate: tf.Tensor,
                  kl_cost: tf.Tensor, arm: tf.Tensor) -> LifetimeState:
    """New lifetimes for every slot: theta_0 ~ p(theta_0), E ~ p(E), gamma, beta0."""
    seeds = tf.unstack(lpg_rng.split(seed, 6))
    num = self.num_lifetimes
    params = self.agent.init_params(seeds[0])
    critic_params = self.critic.init_params(seeds[1])
    instances = tf.nest.map_structure(
        lambda x: tf.repeat(x, self.num_envs, axis=0),
        self.env.sample_instances(seeds[2], num))
    actor = rollout.initial_actor_state(self.env, instances, seeds[3])
    return LifetimeState(
        params=params, opt_state=self.optimiser.init(params),
        critic_params=critic_params,
        critic_opt_state=self.critic_optimiser.init(critic_params), actor=actor,
        learning_rate=tf.cast(learning_rate, tf.float32),
        kl_cost=tf.cast(kl_cost, tf.float32),
        gamma=_choice(seeds[4], lifetime_settings.GAMMAS, num),
        entropy_cost=_choice(seeds[5], lifetime_settings.POLICY_ENTROPY_COSTS,
                             num),
        arm=tf.cast(arm, tf.int32), steps=tf.zeros([num], tf.int64),
        recent_return=tf.zeros([num]), has_return=tf.zeros([num]))

  def advance(self, state: LifetimeState, return_sum: tf.Tensor,
              episodes: tf.Tensor, policy_entropy: tf.Tensor,
              finite_loss: tf.Tensor, steps_taken: int,
              entropy_threshold: float
             ) -> tuple[LifetimeState, LifetimeEnd]:
    """Counts a window's steps and returns; says which lifetimes end now.

    A lifetime ends when it has lived its configured number of steps, when its
    policy entropy collapses to 0 (Appendix B.1, "Preventing Early Divergence":
    below `entropy_threshold` nats), or when its parameters or its meta-loss
    stop being finite (the meta-step left it out).

    Args:
      state: the state after the window (theta_K).
      return_sum: `[L]` summed returns of the episodes completed in the window.
      episodes: `[L]` number of episodes completed in the window.
      policy_entropy: `[L]` theta_K's mean policy entropy.
      finite_loss: `[L]` bool, the lifetime's Eq. 4 loss was finite.
      steps_taken: environment steps each lifetime lived in the window.
      entropy_threshold: entropy (nats) under which a lifetime has collapsed.
    """
    for name, tensor in (("return_sum", return_sum), ("episodes", episodes),
                         ("policy_entropy", policy_entropy)):
      tf.debugging.assert_shapes([(tensor, [self.num_lifetimes])],
                                 message=f"advance: {name} must be [L]")
    mean_return = return_sum / tf.maximum(episodes, 1.0)
    seen = episodes > 0
    blended = tf.where(state.has_return > 0,
                       (1 - RETURN_AVERAGING) * state.recent_return
                       + RETURN_AVERAGING * mean_return, mean_return)
    recent_return = tf.where(seen, blended, state.recent_return)
    has_return = tf.maximum(state.has_return, tf.cast(seen, tf.float32))
    steps = state.steps + steps_taken
    diverged = tf.logical_or(
        policy_entropy < entropy_threshold,
        tf.logical_not(tf.logical_and(
            tf.logical_and(all_finite(state.params),
                           all_finite(state.critic_params)), finite_loss)))
    ended = tf.logical_or(steps >= self.lifetime_steps, diverged)
    state = state._replace(steps=steps, recent_return=recent_return,
                           has_return=has_return)
    return state, LifetimeEnd(ended, diverged)

  @staticmethod
  def final_return(state: LifetimeState) -> tf.Tensor:
    """`[L]` each lifetime's score so far: its recent completed-episode return
    (NaN until it has completed an episode)."""
    return tf.where(state.has_return > 0, state.recent_return,
                    tf.fill(tf.shape(state.recent_return), np.nan))

  def reset_lifetimes(self, state: LifetimeState, mask: tf.Tensor,
                      seed: tf.Tensor, learning_rate: tf.Tensor,
                      kl_cost: tf.Tensor, arm: tf.Tensor) -> LifetimeState:
    """Replaces the lifetimes where `mask` `[L]` is True by fresh ones."""
    fresh = self.fresh_state(seed, learning_rate, kl_cost, arm)
    env_mask = tf.repeat(mask, self.num_envs)
    actor = rollout.ActorState(
        env_state=env_base.select_envs(env_mask, fresh.actor.env_state,
                                       state.actor.env_state),
        timestep=tf.nest.map_structure(
            lambda n, o: env_base.select_envs_tensor(env_mask, n, o),
            fresh.actor.timestep, state.actor.timestep),
        episode_return=tf.where(env_mask, fresh.actor.episode_return,
                                state.actor.episode_return),
        rng=state.actor.rng)
    per_lifetime = [name for name in LifetimeState._fields if name != "actor"]
    chosen = {name: _select(mask, getattr(fresh, name), getattr(state, name))
              for name in per_lifetime}
    return LifetimeState(actor=actor, **chosen)


class Population(tf.Module):
  """Every lifetime of a meta-training run, in groups, and their bandits."""

  def __init__(self, spec: PopulationSpec, seed: int,
               per_lifetime_convs: bool = False):
    """Builds the groups (inside the caller's strategy scope) and draws every
    initial lifetime's alpha from its environment's bandit.

    Args:
      spec: the population's shape.
      seed: seed of the groups' initial lifetimes, the resets and the bandits.
      per_lifetime_convs: conv agents run one convolution per lifetime, for
        meta-steps run without XLA (`agents.build_agent`).
    """
    super().__init__(name="population")
    validate_population(spec)
    self.spec = spec
    self._seed = seed
    self.groups: List[LifetimeGroup] = []
    layouts = shard_layout(spec) * spec.shards
    for index, layout in enumerate(layouts):
      self.groups.append(LifetimeGroup(
          layout.env_name, layout.action_space, layout.num_lifetimes,
          spec.num_envs, spec.prediction_size,
          lifetime_steps(layout.env_name, spec), seed=seed * 1000 + index,
          per_lifetime_convs=per_lifetime_convs))
    self.reset_counter = tf.Variable(0, dtype=tf.int64, trainable=False,
                                     name="lifetime_resets")
    grids = {name: (lifetime_settings.for_env(name).learning_rates,
                    lifetime_settings.for_env(name).kl_costs)
             for name in spec.env_names}
    # None with fixed hyperparameters (spec.bandit False).
    self.bandits: Optional[bandit_lib.BanditSet] = None
    if spec.bandit:
      self.bandits = bandit_lib.BanditSet(
          grids, seed=seed, temperature=spec.bandit_temperature,
          exploration_bonus=spec.bandit_exploration_bonus,
          window=spec.bandit_window)
    # No AutoGraph: the reset's control flow is explicit, and converting its
    # Python cost more than tracing it (one trace per group).
    self._compiled_reset = tf.function(self._reset, jit_compile=False,
                                       autograph=False)
    stagger = np.random.default_rng(seed + _STAGGER_SEED_OFFSET)
    for index, group in enumerate(self.groups):
      state = self._reset_group(index, group.read(),
                                np.ones([group.num_lifetimes], bool))
      start = np.floor(stagger.random(group.num_lifetimes)
                       * group.lifetime_steps).astype(np.int64)
      group.write(state._replace(steps=tf.constant(start)))

  @property
  def num_lifetimes(self) -> int:
    return sum(group.num_lifetimes for group in self.groups)

  def read(self) -> List[LifetimeState]:
    """Every group's state, as tensors."""
    return [group.read() for group in self.groups]

  def advance(self, states: Sequence[LifetimeState],
              return_sums: Sequence[tf.Tensor], episodes: Sequence[tf.Tensor],
              policy_entropies: Sequence[tf.Tensor],
              finite_losses: Sequence[tf.Tensor],
              steps_taken: Optional[int] = None, first_group: int = 0
             ) -> tuple[List[LifetimeState], List[LifetimeEnd]]:
    """`LifetimeGroup.advance` for every group after one window (in-graph).

    `states` are those of the `len(states)` groups from index `first_group`:
    the whole population, a replica's shards run on the first shards' groups
    (shards differ only in their state, `meta.sharding`), or a few groups of
    one shard run on the first shard's (the meta-gradient in several
    programs, `trainer`). `steps_taken`: environment steps each lifetime
    lived in the window; None: the meta-gradient's window,
    `PopulationSpec.env_steps_per_window`.
    """
    if steps_taken is None:
      steps_taken = self.spec.env_steps_per_window
    groups = self.groups[first_group:first_group + len(states)]
    results = [group.advance(state, ret, count, entropy, finite, steps_taken,
                             self.spec.entropy_reset_threshold)
               for group, state, ret, count, entropy, finite in zip(
                   groups, states, return_sums, episodes,
                   policy_entropies, finite_losses)]
    return [r[0] for r in results], [r[1] for r in results]

  def finish(self, states: Sequence[LifetimeState],
             ends: Sequence[LifetimeEnd]) -> Dict[str, float]:
    """Ends the lifetimes that `ends` marks and stores every group's state.

    For each ended lifetime, the bandit of its environment receives its final
    return (Eq. 6; `bandit_returns` for a diverged one or one without a
    completed episode), and a fresh lifetime takes its slot with alpha drawn
    from the bandit (without a bandit: the fixed alpha). Runs eagerly, between
    compiled meta-steps.

    Returns:
      `ended_lifetimes` and, per group with ended lifetimes,
      `<group>/diverged_lifetimes`.
    """
    metrics: Dict[str, float] = {}
    total_ended = 0
    for index, (group, state, end) in enumerate(zip(self.groups, states, ends)):
      mask = end.ended.numpy()
      if mask.any():
        if self.bandits is not None:
          self._report(group, state, end)
        state = self._reset_group(index, state, mask)
        total_ended += int(mask.sum())
        key = f"{group.name_for_logs}/diverged_lifetimes"
        metrics[key] = metrics.get(key, 0.0) + float(end.diverged.numpy().sum())
      group.write(state)
    metrics["ended_lifetimes"] = float(total_ended)
    return metrics

  def _report(self, group: LifetimeGroup, state: LifetimeState,
              end: LifetimeEnd) -> None:
    """Feeds the final returns of the group's ended lifetimes to the bandit."""
    running = tf.reduce_mean(tf.reshape(state.actor.episode_return,
                                        [group.num_lifetimes, -1]), axis=1)
    reported = bandit_returns(
        state.recent_return.numpy(), state.has_return.numpy() > 0,
        running.numpy(), end.diverged.numpy(),
        self.bandits.lowest_return(group.env_name))
    for l in np.flatnonzero(end.ended.numpy()):
      self.bandits.update(group.env_name, int(state.arm[l]),
                          float(reported[l]))

  def checkpoint_items(self) -> Dict[str, object]:
    """The population's part of a checkpoint (DESIGN.md idiom 6)."""
    items = {"groups": self.groups, "resets": self.reset_counter}
    if self.bandits is not None:
      items["bandits"] = self.bandits
    return items

  def draw_alpha(self, env_name: str) -> Tuple[int, float, float]:
    """(arm, alpha_lr, alpha_y) for a new lifetime of `env_name`: a draw from
    its bandit (Eq. 6), or without one its fixed alpha with FIXED_ARM."""
    if self.bandits is None:
      settings = lifetime_settings.for_env(env_name)
      return (FIXED_ARM, settings.default_learning_rate,
              settings.default_kl_cost)
    return self.bandits.sample(env_name)

  def _reset(self, group_index: int, state, mask, learning_rate, kl_cost, arm):
    seed = tf.stack([tf.constant(self._seed + RESET_SEED_OFFSET, tf.int32),
                     tf.cast(self.reset_counter, tf.int32)])
    return self.groups[group_index].reset_lifetimes(
        state, mask, seed, learning_rate, kl_cost, arm)

  def _reset_group(self, index: int, state: LifetimeState,
                   mask: np.ndarray) -> LifetimeState:
    """`state` with the lifetimes in `mask` replaced; alpha from `draw_alpha`."""
    group = self.groups[index]
    lr = state.learning_rate.numpy().copy()
    kl = state.kl_cost.numpy().copy()
    arm = state.arm.numpy().copy()
    for l in np.flatnonzero(mask):
      arm[l], lr[l], kl[l] = self.draw_alpha(group.env_name)
    self.reset_counter.assign_add(1)
    return self._compiled_reset(index, state, tf.constant(mask), tf.constant(lr),
                                tf.constant(kl), tf.constant(arm))
