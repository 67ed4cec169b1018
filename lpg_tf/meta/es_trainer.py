"""The evolution-strategies meta-trainer: eta moved by an ES gradient estimate.

`ESTrainer` has `trainer.MetaTrainer`'s interface (step, counters, checkpoint
items), so the launcher, logging, validation and checkpoints serve both; the
config's `meta.optimiser` picks one. One step:

  1. noise for P = `ESSpec.population_size` members, antithetic, from the
     stateless seed [run seed + NOISE_SEED_OFFSET, step] (`es.antithetic_noise`),
     drawn eagerly so runs with and without XLA agree and a resumed run draws
     what a straight one did;
  2. one compiled program runs eta (the centre) and the P perturbations
     eta +- sigma eps on their own copies of the population's lifetimes for
     `ESSpec.window` inner updates (`es_step.evaluate_members`);
  3. centred ranks of the members' fitness per environment group, averaged
     (`es.shaped_utilities`), give the loss-gradient estimate, applied by Adam
     on eta if finite, as the meta-gradient is;
  4. the centre's lifetimes advance, end and restart through the population
     (`Population.advance`, `Population.finish`), so the bandit of Eq. 6 keeps
     drawing alpha from their final returns.

On a strategy with several replicas the population's shards are shared out as
for the meta-gradient (`meta.sharding`): every replica runs every member on its
own shards in the compiled window, and the members' fitness, the centre's
states and the metrics of every shard are gathered back in the population's
order, so the estimate is the one a single replica computes. The noise and
Adam stay outside, on the gathered fitness: eta is the same on every replica.

Defaults (`ESSpec`), measured on configs/bench_tabular.py's shape (one
tabular grid, 8 lifetimes x 64 environments, T = 20, LSTM 256, XLA, a 2-core
machine shared with other jobs, so throughput per CPU-second): the cost of a
member is its share of the backward LSTM (`LPG.member_targets` alone took as
long as a whole inner update), so throughput per CPU-second was the same for
P = 2 (window 20: ~63,000 agent environment steps per CPU-second) and P = 8
(window 10: 60,000-66,000 over three runs); a short window pays the step's
fixed costs (noise, Adam, resets) more often: P = 2 with a window of 2 gave
~41,000. Peak memory did not change with the window (P = 2: 1,068 MiB for a
window of 2, 1,067 MiB for 20). P = 8 is the population whose step still
takes under half a minute on this machine. The signal of one estimate
(`launchers/es_signal.py` on configs/cpu.py, 6,528 weights of eta; the mean
pairwise cosine of 6 independent estimates at one state) was indistinguishable
from 0 for every setting tried, at eta_0 and at a meta-trained eta: within
+-0.004 (standard error 0.003) for P in {4, 8, 16}, sigma in {0.003, 0.01,
0.03, 0.1} and windows of 5, 10 and 20. Antithetic ES with P members on d
weights reaches at best a cosine of about sqrt(P / d) (0.035 here) with the
true gradient, so about P / d (0.001) between two estimates: below what the
measurement resolves, and no setting within this machine's reach stands out.
So the defaults stay those chosen for throughput, and sigma at 1% of eta's
initial weights (docs/meta_optimisers.md).
"""

import dataclasses
from typing import Any, Dict, List, NamedTuple, Optional

from absl import logging
import numpy as np
import sonnet as snt
import tensorflow as tf

from lpg_tf import agents
from lpg_tf import errors
from lpg_tf.meta import es
from lpg_tf.meta import es_step
from lpg_tf.meta import population as population_lib
from lpg_tf.meta import sharding
from lpg_tf.meta import trainer as trainer_lib
from lpg_tf.rules import lpg

NOISE_SEED_OFFSET = 52711  # separates the noise stream from other streams.
POPULATION_SIZE = 8  # P, perturbed members (4 antithetic pairs); see above.
SIGMA = 0.01  # ~1-10% of eta's initial weights (stddev 1/sqrt(fan-in)); see above.
WINDOW = 10  # inner updates per evaluation window: 200 of T = 20 steps.


@dataclasses.dataclass(frozen=True)
class ESSpec:
  """Evolution-strategies settings.

  Attributes:
    learning_rate: Adam's learning rate on eta.
    population_size: P, perturbed members, even (antithetic pairs); the
      centre (eta itself) runs besides them.
    sigma: standard deviation of the perturbations.
    window: inner updates per evaluation window (>= 2); its environment steps
      per lifetime are window x T x B, up to a whole lifetime.
  """
  learning_rate: float = 1e-3
  population_size: int = POPULATION_SIZE
  sigma: float = SIGMA
  window: int = WINDOW


def check_spec(spec: ESSpec, population: population_lib.PopulationSpec) -> None:
  """Raises ConfigError for settings that cannot run."""
  es.check_population_size(spec.population_size)
  if not spec.sigma > 0 or not np.isfinite(spec.sigma):
    raise errors.ConfigError(f"ES sigma must be a finite number > 0, got {spec.sigma!r}")
  if not spec.learning_rate > 0:
    raise errors.ConfigError(
        f"ES learning_rate must be > 0, got {spec.learning_rate!r}")
  if not isinstance(spec.window, int) or spec.window < es_step.MIN_WINDOW:
    raise errors.ConfigError(
        f"The ES window must be an integer >= {es_step.MIN_WINDOW} inner "
        f"updates (the fitness needs rollouts after an update), got "
        f"{spec.window!r}")
  window_steps = spec.window * population.unroll_length * population.num_envs
  for layout in population_lib.group_layout(population):
    group_steps = population_lib.lifetime_steps(layout.env_name, population)
    if window_steps > group_steps:
      raise errors.ConfigError(
          f"The ES window ({spec.window} updates x T={population.unroll_length}"
          f" x B={population.num_envs} = {window_steps} environment steps) is "
          f"longer than a {layout.env_name} lifetime ({group_steps} steps): "
          "at most a whole lifetime")


def env_steps_per_lifetime(spec: ESSpec,
                           population: population_lib.PopulationSpec) -> int:
  """Environment steps each lifetime (of every member) lives per ES step."""
  return spec.window * population.unroll_length * population.num_envs


def env_steps_per_step(spec: ESSpec,
                       population: population_lib.PopulationSpec) -> int:
  """Agent environment steps of one ES step: every member's lifetimes,
  the centre's included."""
  num_lifetimes = sum(layout.num_lifetimes
                      for layout in population_lib.group_layout(population))
  return (env_steps_per_lifetime(spec, population)
          * (spec.population_size + 1) * num_lifetimes)


class _WindowOutput(NamedTuple):
  """What the compiled window returns, one entry per group.

  Attributes:
    fitness: `[M]` per group, the members' fitness (member 0 the centre).
    states: the centre's states after the window.
    ends: the centre's `LifetimeEnd`s.
    metrics: scalar tensors worth logging (`trainer.group_numbers`).
  """
  fitness: List[tf.Tensor]
  states: List[population_lib.LifetimeState]
  ends: List[population_lib.LifetimeEnd]
  metrics: List[Dict[str, tf.Tensor]]


class Estimate(NamedTuple):
  """One ES estimate (`ESTrainer.estimate`)."""
  grads: List[tf.Tensor]  # The loss gradient, one tensor per variable of eta.
  fitness: tf.Tensor  # [P, groups]: what each perturbed member scored.
  window: _WindowOutput  # The window's outputs (new states, ends, metrics).


class ESTrainer(tf.Module):
  """Meta-trains an LPG rule by evolution strategies on a population."""

  def __init__(self, rule: lpg.LPG, population: population_lib.PopulationSpec,
               spec: ESSpec, seed: int,
               strategy: Optional[tf.distribute.Strategy] = None,
               jit_compile: bool = True,
               shared_with: Optional[trainer_lib.MetaTrainer] = None):
    """Builds the population, the meta-optimiser and the members' agents.

    Args:
      rule: the LPG rule to meta-train (its variables are created here if new).
      population: the population's shape (the centre's lifetimes).
      spec: ES settings.
      seed: seed of everything random in the run.
      strategy: variables are created under its scope (default strategy if None).
      jit_compile: compile the window with XLA.
      shared_with: a meta-gradient trainer of the same rule and population
        whose population and step counter this trainer steps instead of
        making its own, so that the two alternate on one eta
        (`hybrid_trainer`); None: its own. The Adam on eta is always this
        trainer's own.

    Raises:
      errors.ConfigError: the shards do not split evenly over the replicas,
        or bad settings.
      ValueError: `shared_with` trains another rule or population.
    """
    super().__init__(name="es_trainer")
    population_lib.validate_population(population)
    check_spec(spec, population)
    self._spec = spec
    self._seed = seed
    self._strategy = strategy or tf.distribute.get_strategy()
    sharding.check_replicas(population.shards,
                            self._strategy.num_replicas_in_sync)
    self._num_members = spec.population_size + 1
    if shared_with is not None and (shared_with.rule is not rule
                                    or shared_with.population.spec != population):
      raise ValueError("shared_with must train the same rule and population")
    with self._strategy.scope():
      self.rule = rule
      rule.build()
      self.meta_optimiser = snt.optimizers.Adam(spec.learning_rate)
      if shared_with is not None:
        self.population = shared_with.population
        self.step_counter = shared_with.step_counter
      else:
        self.population = population_lib.Population(
            population, seed, per_lifetime_convs=not jit_compile)
        self.step_counter = tf.Variable(0, dtype=tf.int64, trainable=False,
                                        name="meta_step")
    # Agents for M x L lifetimes: only `apply` is used (theta comes from the
    # population), so their variables are no part of the training state.
    self._member_groups = [
        es_step.MemberGroup(group, agents.build_agent(
            group.env.spec, self._num_members * group.num_lifetimes,
            seed=[seed, 0], prediction_size=population.prediction_size,
            per_lifetime_convs=not jit_compile))
        for group in self.population.groups]
    self._compiled_window = tf.function(self._window, jit_compile=jit_compile)
    self._replicated_window = tf.function(self._sharded_window)

  def _window(self, states: List[population_lib.LifetimeState],
              member_params: List[tf.Tensor]) -> _WindowOutput:
    """Every member through one window on the groups whose states are
    `states`: the whole population, or a replica's shards (run on the first
    shards' groups, which every shard's groups resemble in all but state)."""
    spec = self.population.spec
    results = es_step.evaluate_members(
        self.rule, self._member_groups[:len(states)], states, member_params,
        self._spec.window, spec.unroll_length)
    new_states, ends = self.population.advance(
        [r.state for r in results], [r.return_sum for r in results],
        [r.episodes for r in results], [r.policy_entropy for r in results],
        [r.finite for r in results], steps_taken=self.env_steps_per_lifetime)
    metrics = [{"return_sum": tf.reduce_sum(r.return_sum),
                "episodes": tf.reduce_sum(r.episodes),
                "policy_entropy": tf.reduce_mean(r.policy_entropy)}
               for r in results]
    return _WindowOutput([r.fitness for r in results], new_states, ends,
                         metrics)

  def _sharded_window(self, states: Any,
                      member_params: List[tf.Tensor]) -> _WindowOutput:
    """The window of the whole population on several replicas: each runs
    every member on its shards (`sharding.distribute`); the fitness, states,
    ends and metrics of every shard come back in the population's order, so
    the estimate is the one a single replica makes."""
    # A lambda, not the compiled function: see MetaTrainer._sharded_step.
    out = self._strategy.run(lambda s, p: self._compiled_window(s, p),
                             args=(states, member_params))
    return _WindowOutput(*(sharding.gather(self._strategy, per_replica)
                           for per_replica in out))

  def _window_all(self, member_params: List[tf.Tensor]) -> _WindowOutput:
    """The compiled window of the whole population, on every replica."""
    states = self.population.read()
    if self._strategy.num_replicas_in_sync == 1:
      return self._compiled_window(states, member_params)
    return self._replicated_window(
        sharding.distribute(self._strategy, states,
                            self.population.spec.shards), member_params)

  def noise(self, step: int) -> List[tf.Tensor]:
    """The members' noise `[P, ...]` per variable of eta at ES step `step`."""
    seed = tf.constant([self._seed + NOISE_SEED_OFFSET, step], tf.int32)
    return es.antithetic_noise(
        seed, [v.shape for v in self.rule.trainable_variables],
        self._spec.population_size)

  def estimate(self, noise_step: int,
               sigma: Optional[float] = None) -> "Estimate":
    """The ES loss-gradient estimate at eta and the population's current
    lifetimes with the noise of ES step `noise_step`; changes nothing (the
    window's new states are returned, not kept). `sigma`: another
    perturbation scale than the spec's (the compiled window serves any)."""
    sigma = self._spec.sigma if sigma is None else sigma
    variables = self.rule.trainable_variables
    noise = self.noise(noise_step)
    perturbed = es.perturb([tf.convert_to_tensor(v) for v in variables], noise,
                           sigma)
    member_params = [tf.concat([v[tf.newaxis], p], axis=0)
                     for v, p in zip(variables, perturbed)]
    out = self._window_all(member_params)
    fitness = tf.stack(out.fitness, axis=1)  # [P, groups]: the perturbed.
    grads = es.gradient_estimate(noise, es.shaped_utilities(fitness), sigma)
    return Estimate(grads, fitness, out)

  def step(self) -> Dict[str, float]:
    """One ES step; returns the numbers worth logging."""
    step = int(self.step_counter.numpy())
    variables = self.rule.trainable_variables
    grads, fitness, out = self.estimate(step)
    finite = all(bool(tf.reduce_all(tf.math.is_finite(g))) for g in grads)
    norm = tf.linalg.global_norm(grads)
    if finite:
      self.meta_optimiser.apply(grads, variables)
    else:
      logging.warning("ES step %d: non-finite gradient estimate; update "
                      "skipped", step)
    self.step_counter.assign_add(1)
    fitness = fitness.numpy()
    scored = fitness[np.isfinite(fitness)]
    numbers = {
        # The members' mean fitness, negated: a loss, like the meta-loss.
        "meta_loss": -float(scored.mean()) if scored.size else float("nan"),
        "meta_gradient_finite": float(finite),
        "meta_gradient_norm": float(norm) if finite else float("nan"),
        "es/fitness_spread": float(scored.std()) if scored.size else float("nan"),
    }
    numbers.update(self.population.finish(out.states, out.ends))
    numbers.update(trainer_lib.group_numbers(self.population.groups,
                                             out.metrics))
    return numbers

  @property
  def env_steps_per_lifetime(self) -> int:
    """Environment steps each lifetime (of every member) lives per step."""
    return env_steps_per_lifetime(self._spec, self.population.spec)

  @property
  def inner_env_steps_per_step(self) -> int:
    """Agent environment steps of every member's lifetimes per ES step."""
    return env_steps_per_step(self._spec, self.population.spec)

  @property
  def scoring_env_steps_per_step(self) -> int:
    """ES scores members on their training rollouts: no extra rollouts."""
    return 0

  def checkpoint_items(self) -> Dict[str, object]:
    """Everything a checkpoint holds (DESIGN.md idiom 6)."""
    return {"rule": self.rule, "meta_optimiser": self.meta_optimiser,
            "step": self.step_counter, **self.population.checkpoint_items()}
