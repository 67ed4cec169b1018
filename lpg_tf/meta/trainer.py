"""The LPG meta-trainer: population, meta-gradient, bandit and checkpoints together.

`MetaTrainer.step()` is one iteration of Algorithm 1's loop for the whole
population: a compiled meta-step (K inner updates per lifetime under one outer
GradientTape, the Eq. 4 objective, the critic update and lifetime bookkeeping),
then, outside the compiled function (DESIGN.md idiom 5), Adam on eta if the
meta-gradient is finite (a non-finite one is logged and skipped), and the reset of
lifetimes that ended, with the bandit of Eq. 6 updated by their final returns and
sampling their successors' alpha.
"""

import dataclasses
from typing import Dict, List, Optional, Sequence

from absl import logging
import numpy as np
import sonnet as snt
import tensorflow as tf

from lpg_tf import agents
from lpg_tf import envs
from lpg_tf import errors
from lpg_tf.meta import bandit as bandit_lib
from lpg_tf.meta import lifetimes
from lpg_tf.meta import meta_objective
from lpg_tf.meta import meta_step
from lpg_tf.rules import lpg

ENTROPY_RESET_THRESHOLD = 1e-3  # nats: "the entropy of the policy becomes 0" (B.1).
CRITIC_LEARNING_RATE = 0.01  # Adam; the paper leaves the outer A2C's critic open.


@dataclasses.dataclass(frozen=True)
class PopulationSpec:
  """The shape of a population (config values, passed as plain arguments).

  Attributes:
    env_names: training environments (lpg_tf.envs.NAMES).
    lifetimes_per_env: lifetimes per environment (split between the two action
      spaces for grid worlds).
    num_envs: B, parallel environments per lifetime (Table 2: 64).
    unroll_length: T (Table 2: 20).
    num_inner_updates: K (Table 2: 5).
    prediction_size: m (Section 4.1: 30).
    lifetime_scale: multiplies Table 3's lifetimes (1.0 = the paper's).
  """
  env_names: Sequence[str]
  lifetimes_per_env: int
  num_envs: int
  unroll_length: int = 20
  num_inner_updates: int = 5
  prediction_size: int = 30
  lifetime_scale: float = 1.0


@dataclasses.dataclass(frozen=True)
class MetaSpec:
  """Meta-learner settings (Table 2).

  Attributes:
    learning_rate: Adam's learning rate on eta.
    costs: Eq. 4's beta1-beta3 and the advantage's lambda.
    bandit_temperature: tau of Eq. 6.
    bandit_exploration_bonus: rho of Eq. 6.
    bandit_window: lifetimes averaged in R(alpha, E).
    entropy_reset_threshold: policy entropy under which a lifetime is reset.
    critic_learning_rate: Adam's learning rate for the meta-objective's critics.
  """
  learning_rate: float = 1e-4
  costs: meta_objective.MetaObjectiveCosts = meta_objective.MetaObjectiveCosts()
  bandit_temperature: float = bandit_lib.TEMPERATURE
  bandit_exploration_bonus: float = bandit_lib.EXPLORATION_BONUS
  bandit_window: int = bandit_lib.WINDOW
  entropy_reset_threshold: float = ENTROPY_RESET_THRESHOLD
  critic_learning_rate: float = CRITIC_LEARNING_RATE


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
  if spec.lifetime_scale <= 0:
    raise errors.ConfigError(f"lifetime_scale must be positive, got {spec.lifetime_scale}")


def _group_layout(spec: PopulationSpec):
  """(env name, action space, lifetimes) per group: grids split their lifetimes."""
  layout = []
  for name in spec.env_names:
    if envs.is_grid(name):
      move = (spec.lifetimes_per_env + 1) // 2
      layout.append((name, envs.MOVE, move))
      if spec.lifetimes_per_env - move:
        layout.append((name, envs.MOVE_AND_COLLECT, spec.lifetimes_per_env - move))
    else:
      layout.append((name, None, spec.lifetimes_per_env))
  return layout


class MetaTrainer(tf.Module):
  """Meta-trains an LPG rule on a population of lifetimes."""

  def __init__(self, rule: lpg.LPG, population: PopulationSpec, meta: MetaSpec,
               seed: int, strategy: Optional[tf.distribute.Strategy] = None,
               jit_compile: bool = True):
    """Builds the population, the meta-optimiser and the bandits.

    Args:
      rule: the LPG rule to meta-train (its variables are created here if new).
      population: the population's shape.
      meta: meta-learner settings.
      seed: seed of everything random in the run.
      strategy: variables are created under its scope (default strategy if None).
      jit_compile: compile the meta-step with XLA.
    """
    super().__init__(name="meta_trainer")
    validate_population(population)
    self._population = population
    self._meta = meta
    self._seed = seed
    self._strategy = strategy or tf.distribute.get_strategy()
    if self._strategy.num_replicas_in_sync > 1:
      raise errors.ConfigError(
          "Sharding lifetimes over several replicas is not implemented yet; "
          "run with the default strategy (one device)")
    with self._strategy.scope():
      self.rule = rule
      rule.build()
      self.meta_optimiser = snt.optimizers.Adam(meta.learning_rate)
      self.groups: List[lifetimes.LifetimeGroup] = []
      for index, (name, space, count) in enumerate(_group_layout(population)):
        preset = agents.preset_for(name)
        self.groups.append(lifetimes.LifetimeGroup(
            name, space, count, population.num_envs, population.prediction_size,
            max(1, int(preset.lifetime_steps * population.lifetime_scale)),
            seed=seed * 1000 + index))
      self.step_counter = tf.Variable(0, dtype=tf.int64, trainable=False,
                                      name="meta_step")
      self.reset_counter = tf.Variable(0, dtype=tf.int64, trainable=False,
                                       name="lifetime_resets")
    grids = {name: (agents.preset_for(name).learning_rates,
                    agents.preset_for(name).kl_costs)
             for name in population.env_names}
    self.bandits = bandit_lib.BanditSet(
        grids, seed=seed, temperature=meta.bandit_temperature,
        exploration_bonus=meta.bandit_exploration_bonus,
        window=meta.bandit_window)
    self._steps_per_window = ((population.num_inner_updates + 1)
                              * population.unroll_length * population.num_envs)
    self._compiled_step = tf.function(self._meta_step, jit_compile=jit_compile)
    self._compiled_reset = tf.function(self._reset, jit_compile=False)
    self._sample_initial_hyperparameters()

  # ----------------------------------------------------------------- in-graph
  def _meta_step(self, states: List[lifetimes.LifetimeState]):
    variables = self.rule.trainable_variables
    with tf.GradientTape() as tape:
      tape.watch(variables)
      loss, windows = meta_step.window_loss(
          self.rule, self.groups, states, self._population.num_inner_updates,
          self._population.unroll_length, self._meta.costs,
          self._meta.critic_learning_rate)
    grads = tape.gradient(loss, variables)
    new_states, ended, diverged, metrics = [], [], [], {}
    for group, window in zip(self.groups, windows):
      state, group_ended, group_diverged = meta_step.advance_lifetimes(
          group, window.state, window, self._steps_per_window,
          self._meta.entropy_reset_threshold)
      new_states.append(state)
      ended.append(group_ended)
      diverged.append(group_diverged)
      metrics[group.name_for_logs] = {
          "return_sum": tf.reduce_sum(window.return_sum),
          "episodes": tf.reduce_sum(window.episodes),
          "policy_entropy": tf.reduce_mean(window.terms.policy_entropy),
          "prediction_entropy": tf.reduce_mean(window.terms.prediction_entropy),
          "pi_hat_l2": tf.reduce_mean(window.terms.pi_hat_l2),
          "y_hat_l2": tf.reduce_mean(window.terms.y_hat_l2),
      }
    return grads, loss, new_states, ended, diverged, metrics

  def _reset(self, group_index: int, state, mask, learning_rate, kl_cost, arm):
    seed = tf.stack([tf.constant(self._seed + 7919, tf.int32),
                     tf.cast(self.reset_counter, tf.int32)])
    return self.groups[group_index].reset_lifetimes(
        state, mask, seed, learning_rate, kl_cost, arm)

  # --------------------------------------------------------------- python side
  def _sample_initial_hyperparameters(self) -> None:
    """Draws every initial lifetime's alpha from its environment's bandit."""
    for index, group in enumerate(self.groups):
      mask = np.ones([group.num_lifetimes], bool)
      group.write(self._reset_group(index, group.read(), mask))

  def _reset_group(self, index: int, state: lifetimes.LifetimeState,
                   mask: np.ndarray) -> lifetimes.LifetimeState:
    """`state` with the lifetimes in `mask` replaced; alpha drawn from the bandit."""
    group = self.groups[index]
    lr = state.learning_rate.numpy().copy()
    kl = state.kl_cost.numpy().copy()
    arm = state.arm.numpy().copy()
    for l in np.flatnonzero(mask):
      arm[l], lr[l], kl[l] = self.bandits.sample(group.env_name)
    self.reset_counter.assign_add(1)
    return self._compiled_reset(index, state, tf.constant(mask), tf.constant(lr),
                                tf.constant(kl), tf.constant(arm))

  def step(self) -> Dict[str, float]:
    """One meta-step; returns the numbers worth logging."""
    states = [group.read() for group in self.groups]
    grads, loss, new_states, ended, diverged, metrics = self._compiled_step(states)
    finite = all(bool(tf.reduce_all(tf.math.is_finite(g))) for g in grads)
    if finite:
      self.meta_optimiser.apply(grads, self.rule.trainable_variables)
    else:
      logging.warning("Meta-step %d: non-finite meta-gradient; update skipped",
                      int(self.step_counter.numpy()))
    self.step_counter.assign_add(1)
    out = {"meta_loss": float(loss), "meta_gradient_finite": float(finite),
           "meta_gradient_norm": float(tf.linalg.global_norm(grads)) if finite
           else float("nan")}
    total_ended = 0
    for index, (group, state, group_ended, group_diverged) in enumerate(
        zip(self.groups, new_states, ended, diverged)):
      mask = group_ended.numpy()
      if mask.any():
        final = state.recent_return.numpy()
        has = state.has_return.numpy() > 0
        for l in np.flatnonzero(mask):
          if has[l] and np.isfinite(final[l]):
            self.bandits.update(group.env_name, int(state.arm[l]), float(final[l]))
        state = self._reset_group(index, state, mask)
        total_ended += int(mask.sum())
        out[f"{group.name_for_logs}/diverged_lifetimes"] = float(
            group_diverged.numpy().sum())
      group.write(state)
      numbers = {k: float(v) for k, v in metrics[group.name_for_logs].items()}
      episodes = numbers.pop("episodes")
      return_sum = numbers.pop("return_sum")
      if episodes:
        out[f"{group.name_for_logs}/episode_return"] = return_sum / episodes
      for key, value in numbers.items():
        out[f"{group.name_for_logs}/{key}"] = value
    out["ended_lifetimes"] = float(total_ended)
    return out

  @property
  def inner_env_steps_per_step(self) -> int:
    """Environment steps of the K inner rollouts, all lifetimes, per meta-step."""
    p = self._population
    return (p.num_inner_updates * p.unroll_length * p.num_envs
            * sum(g.num_lifetimes for g in self.groups))

  @property
  def scoring_env_steps_per_step(self) -> int:
    """Environment steps of the rollouts that score theta_K (Eq. 4), per meta-step."""
    p = self._population
    return p.unroll_length * p.num_envs * sum(g.num_lifetimes for g in self.groups)

  def checkpoint_items(self) -> Dict[str, object]:
    """Everything a checkpoint holds (DESIGN.md idiom 6)."""
    return {"rule": self.rule, "meta_optimiser": self.meta_optimiser,
            "groups": self.groups, "step": self.step_counter,
            "resets": self.reset_counter, "bandits": self.bandits}
