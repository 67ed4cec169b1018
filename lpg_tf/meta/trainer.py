"""The LPG meta-trainer: the meta-gradient of eta over a population of lifetimes.

`MetaTrainer.step()` is one iteration of Algorithm 1's loop for the whole
population: a compiled meta-step (K inner updates per lifetime under one outer
GradientTape, the Eq. 4 objective and the critic update, then the population's
in-graph end-of-window bookkeeping), then, outside the compiled function
(DESIGN.md idiom 5), Adam on eta if the meta-gradient is finite (a non-finite one
is logged and skipped), and `Population.finish`, which ends lifetimes, feeds the
bandit of Eq. 6 and starts their successors. A lifetime whose meta-loss or
theta_K is not finite is left out of the meta-gradient and ended (meta_step), so
the step goes on with the others.

Optionally the meta-gradient is clipped by its global norm before Adam
(`MetaSpec.max_grad_norm`). Off by default, as measured on configs/cpu.py (300
meta-steps, seed 0): no meta-gradient was non-finite, the global norm had median
0.0046 and maximum 0.048 (10x); clipping at 0.01 (24% of the steps clipped) gave
no better returns over the last 100 meta-steps (tabular/dense 6.6 and 11.6 for
the two action spaces against 9.3 and 15.2 unclipped, chains about equal).
Adam already divides by the gradient's running scale, so clipping only matters
for rare spikes, and a fixed threshold depends on the population's size (the
meta-gradient is a mean over lifetimes). The trainer owns eta and its
optimiser; everything about lifetimes belongs to `population.Population`.

On a strategy with several replicas (`meta.sharding`), each replica runs its
shards of the population in the compiled meta-step; one `tf.function` around
them averages the meta-gradients weighted by kept lifetimes and gathers every
shard's state, so that Adam (applied outside any strategy scope, to the
reduced gradient: Sonnet's optimisers accept any strategy's variables there)
leaves eta identical on every replica, and `Population.finish` sees every
lifetime. With one replica the compiled meta-step is called directly.

Programs of a few groups. By default the meta-step is one compiled program
over every group (of a replica's shards). XLA's compile time grows faster than
the program, and the program's peak memory is that of all groups at once: 15
Appendix A environments at 2 lifetimes each (25 groups) took 19 minutes to
compile and peaked at 11.4 GB. With `groups_per_program` = n > 0 each shard's
groups are cut into consecutive chunks of at most n, each its own compiled
program returning the gradient of its *sum* of kept lifetimes' losses and its
kept count; outside the programs the sums are added over chunks (and
replicas) and divided once by the total count. The meta-loss is a mean over
kept lifetimes and groups are independent given eta, so this is the
single program's meta-gradient up to float rounding (the LSTM then runs once
per chunk instead of once for all groups). A chunk runs on the first shard's
groups at its positions, as a replica does (`meta.sharding`), so with several
shards the chunks at one position share one compiled program.

The chunk programs of a meta-step run concurrently, each called from its own
Python thread (`_threaded_chunks`), as many at once as the process has cores.
An XLA program on a CPU threads its matmuls only, so one program alone leaves
cores idle: on configs/bench_tabular.py (2 groups) on 2 cores, one group per
program run concurrently reached 0.560 meta-steps/s on 1.84 cores against
0.487 on 1.44 cores for the one program. Threads rather than one TensorFlow
graph around the calls, because a program's first call traces it (Python,
under the GIL) and then compiles it (C++, without the GIL): from threads, one
program compiles while the next is traced, whereas a graph must trace every
program before any compiles. On 6 of configs/appendix_a.py's programs on 2
cores the first call took 48 s from 2 threads against 74 s from one graph,
with equal losses. Peak memory is that of the programs in flight at once.
`concurrent_programs=False` calls them one after another from Python.

The compiled programs are traced without AutoGraph (`autograph=False`): the
meta-step's control flow is explicit (`tf.while_loop`, `tf.where`), and
converting its Python took most of a program's first trace (13 of 15 s for
the first program of configs/appendix_a.py; 4 s without).
"""

import concurrent.futures
import dataclasses
import os
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

from absl import logging
import sonnet as snt
import tensorflow as tf

from lpg_tf import errors
from lpg_tf.meta import meta_objective
from lpg_tf.meta import meta_step
from lpg_tf.meta import population as population_lib
from lpg_tf.meta import sharding
from lpg_tf.rules import lpg

CRITIC_LEARNING_RATE = 0.01  # Adam; the paper leaves the outer A2C's critic open.


@dataclasses.dataclass(frozen=True)
class MetaSpec:
  """Meta-learner settings (Table 2).

  Attributes:
    learning_rate: Adam's learning rate on eta.
    costs: Eq. 4's beta1-beta3 and the advantage's lambda.
    critic_learning_rate: Adam's learning rate for the meta-objective's critics.
    max_grad_norm: clip the meta-gradient to this global norm before Adam;
      None or 0 leaves it unclipped.
    rematerialise_inner_updates: the meta-gradient recomputes each inner
      update instead of keeping its intermediates (`meta_step.window_loss`):
      the same meta-gradient in less memory, for one more forward pass of
      each update.
  """
  learning_rate: float = 1e-4
  costs: meta_objective.MetaObjectiveCosts = meta_objective.MetaObjectiveCosts()
  critic_learning_rate: float = CRITIC_LEARNING_RATE
  max_grad_norm: Optional[float] = None
  rematerialise_inner_updates: bool = False


class MetaStepOutput(NamedTuple):
  """What the compiled meta-step returns.

  Attributes:
    grads: the meta-gradient, one tensor per trainable variable of eta; in a
      program of a few groups (`MetaTrainer._chunk_step`), the gradient of
      the sum of its kept lifetimes' losses.
    loss: the scalar meta-loss; in a program of a few groups, the sum of its
      kept lifetimes' losses.
    num_kept: scalar float, the lifetimes `loss` and `grads` average over.
    states: each group's state after the window, lifetime counters updated.
    ends: each group's `LifetimeEnd`.
    metrics: per group, in the groups' order, scalar tensors worth logging.
  """
  grads: List[tf.Tensor]
  loss: tf.Tensor
  num_kept: tf.Tensor
  states: List[population_lib.LifetimeState]
  ends: List[population_lib.LifetimeEnd]
  metrics: List[Dict[str, tf.Tensor]]


# Per-group metrics summed over a group's shards; the others are averaged
# (shards are equal in size, so the mean of their means is the mean).
_SUMMED_OVER_SHARDS = ("return_sum", "episodes", "excluded_lifetimes")


def group_numbers(groups: Sequence[population_lib.LifetimeGroup],
                  metrics: Sequence[Dict[str, tf.Tensor]]) -> Dict[str, float]:
  """Per-group metrics (one dict per group, in the population's order) as
  numbers to log under "<group name>/<key>", merged over the shards of each
  group name: "return_sum" and "episodes" become "episode_return", counts
  (`_SUMMED_OVER_SHARDS`) are summed, the rest averaged."""
  merged: Dict[str, Dict[str, List[float]]] = {}
  for group, group_metrics in zip(groups, metrics):
    for key, value in group_metrics.items():
      merged.setdefault(group.name_for_logs, {}).setdefault(key, []).append(
          float(value))
  numbers = {}
  for name, by_key in merged.items():
    values = {key: (sum(v) if key in _SUMMED_OVER_SHARDS else sum(v) / len(v))
              for key, v in by_key.items()}
    episodes = values.pop("episodes")
    return_sum = values.pop("return_sum")
    if episodes:
      numbers[f"{name}/episode_return"] = return_sum / episodes
    for key, value in values.items():
      numbers[f"{name}/{key}"] = value
  return numbers


def check_groups_per_program(groups_per_program: int) -> None:
  """Raises ConfigError unless `groups_per_program` is an integer >= 0."""
  if (not isinstance(groups_per_program, int)
      or isinstance(groups_per_program, bool) or groups_per_program < 0):
    raise errors.ConfigError(
        "population.groups_per_program must be an integer >= 0 (0: the whole "
        f"meta-step in one compiled program), got {groups_per_program!r}")


def chunk_bounds(num_groups: int, groups_per_shard: int,
                 groups_per_program: int) -> List[Tuple[int, int]]:
  """(start, stop) of each program's groups among `num_groups` groups that are
  whole shards of `groups_per_shard` groups: consecutive runs of at most
  `groups_per_program` groups, none across a shard's end."""
  return [(shard + start, shard + min(start + groups_per_program,
                                      groups_per_shard))
          for shard in range(0, num_groups, groups_per_shard)
          for start in range(0, groups_per_shard, groups_per_program)]


def _mean_over_kept(summed: MetaStepOutput) -> MetaStepOutput:
  """`summed` with its loss and gradients, sums over its kept lifetimes,
  divided by their number (at least 1): the population's meta-loss and
  meta-gradient."""
  count = tf.maximum(summed.num_kept, 1.0)
  return summed._replace(grads=[g / count for g in summed.grads],
                         loss=summed.loss / count)


def usable_cores() -> int:
  """The cores this process may run on: its CPU affinity where the platform
  has one (Linux), else the machine's count (macOS)."""
  if hasattr(os, "sched_getaffinity"):
    return len(os.sched_getaffinity(0))
  return os.cpu_count() or 1


def _added_up(outs: Sequence[MetaStepOutput]) -> MetaStepOutput:
  """The programs' outputs `outs` as one: losses, gradients and kept counts
  added up (sums, not yet means), every group's state, end and metrics in the
  programs' order."""
  return MetaStepOutput(
      grads=[tf.add_n(list(g)) for g in zip(*(o.grads for o in outs))],
      loss=tf.add_n([o.loss for o in outs]),
      num_kept=tf.add_n([o.num_kept for o in outs]),
      states=[s for o in outs for s in o.states],
      ends=[e for o in outs for e in o.ends],
      metrics=[m for o in outs for m in o.metrics])


class MetaTrainer(tf.Module):
  """Meta-trains an LPG rule on a population of lifetimes."""

  def __init__(self, rule: lpg.LPG, population: population_lib.PopulationSpec,
               meta: MetaSpec, seed: int,
               strategy: Optional[tf.distribute.Strategy] = None,
               jit_compile: bool = True, groups_per_program: int = 0,
               concurrent_programs: bool = True):
    """Builds the population, the meta-optimiser and the bandits.

    Args:
      rule: the LPG rule to meta-train (its variables are created here if new).
      population: the population's shape.
      meta: meta-learner settings.
      seed: seed of everything random in the run.
      strategy: variables are created under its scope (default strategy if
        None); its replicas share out the population's shards.
      jit_compile: compile the meta-step with XLA (each replica's part);
        without it, Grappler's memory optimiser is turned off for the whole
        process (`meta_step.disable_grappler_memory_optimiser`).
      groups_per_program: compile the meta-step as programs of at most this
        many groups of one shard each (module docstring); 0: one program.
      concurrent_programs: with groups_per_program > 0 on one replica, run
        the programs concurrently (faster, more memory; module docstring)
        rather than one after another.

    Raises:
      errors.ConfigError: the shards do not split evenly over the replicas,
        or groups_per_program is not an integer >= 0.
    """
    super().__init__(name="meta_trainer")
    population_lib.validate_population(population)
    check_groups_per_program(groups_per_program)
    if not jit_compile:
      meta_step.disable_grappler_memory_optimiser()
    self._groups_per_program = groups_per_program
    self._jit_compile = jit_compile
    self._concurrent_programs = concurrent_programs
    self._meta = meta
    self._strategy = strategy or tf.distribute.get_strategy()
    sharding.check_replicas(population.shards,
                            self._strategy.num_replicas_in_sync)
    with self._strategy.scope():
      self.rule = rule
      rule.build()
      self.meta_optimiser = snt.optimizers.Adam(meta.learning_rate)
      self.population = population_lib.Population(
          population, seed, per_lifetime_convs=not jit_compile)
      self.step_counter = tf.Variable(0, dtype=tf.int64, trainable=False,
                                      name="meta_step")
    self._compiled_step = tf.function(self._meta_step, jit_compile=jit_compile,
                                      autograph=False)
    self._compiled_chunk = tf.function(self._chunk_step,
                                       jit_compile=jit_compile, autograph=False)
    self._replicated_step = tf.function(self._sharded_step)

  def _meta_step(self, states: List[population_lib.LifetimeState]
                ) -> MetaStepOutput:
    """The meta-step of the groups whose states are `states`: the whole
    population, or a replica's shards (run on the first shards' groups, which
    every shard's groups resemble in all but their state)."""
    return self._window_step(states, first_group=0, summed=False)

  def _chunk_step(self, states: List[population_lib.LifetimeState],
                  first_group: int) -> MetaStepOutput:
    """One program of a meta-step in several: the window of the groups from
    index `first_group` of the first shard, whose groups at those positions
    every shard's resemble in all but their state, with `grads` and `loss`
    summed over the kept lifetimes for `_summed_over_chunks` to add up."""
    return self._window_step(states, first_group, summed=True)

  def _window_step(self, states: List[population_lib.LifetimeState],
                   first_group: int, summed: bool) -> MetaStepOutput:
    """The window and end-of-window bookkeeping of the groups from index
    `first_group` on states `states`; the loss and its gradient are the mean
    over kept lifetimes, or with `summed` their sum."""
    spec = self.population.spec
    groups = self.population.groups[first_group:first_group + len(states)]
    variables = self.rule.trainable_variables
    with tf.GradientTape() as tape:
      tape.watch(variables)
      window = meta_step.window_loss(
          self.rule, groups, states, spec.num_inner_updates,
          spec.unroll_length, self._meta.costs, self._meta.critic_learning_rate,
          rematerialise=self._meta.rematerialise_inner_updates)
    loss = window.kept_loss_sum if summed else window.loss
    grads = tape.gradient(loss, variables)
    new_states, ends = self.population.advance(
        [w.state for w in window.groups], [w.return_sum for w in window.groups],
        [w.episodes for w in window.groups],
        [w.terms.policy_entropy for w in window.groups],
        [w.finite for w in window.groups], first_group=first_group)
    metrics = [{
        "return_sum": tf.reduce_sum(w.return_sum),
        "episodes": tf.reduce_sum(w.episodes),
        "policy_entropy": tf.reduce_mean(w.terms.policy_entropy),
        "prediction_entropy": tf.reduce_mean(w.terms.prediction_entropy),
        "pi_hat_l2": tf.reduce_mean(w.terms.pi_hat_l2),
        "y_hat_l2": tf.reduce_mean(w.terms.y_hat_l2),
        "y_hat_spread": tf.reduce_mean(w.y_hat_spread),
        "excluded_lifetimes": tf.reduce_sum(
            tf.cast(tf.logical_not(w.finite), tf.float32)),
    } for w in window.groups]
    if self.rule.prediction_size == 1:
      # LPG-V's y is one number, v: H(y) would be a constant 0, not a measure.
      for group_metrics in metrics:
        del group_metrics["prediction_entropy"]
    return MetaStepOutput(grads, loss, window.num_kept, new_states, ends,
                          metrics)

  def _summed_over_chunks(self, states: List[population_lib.LifetimeState]
                         ) -> MetaStepOutput:
    """The meta-step of whole shards' `states` as one compiled program per
    chunk, called one after another (or traced into a replica's graph):
    `_added_up` over the chunks."""
    return _added_up([self._compiled_chunk(*chunk)
                      for chunk in self._chunks(states)])

  def _threaded_chunks(self, states: List[population_lib.LifetimeState]
                      ) -> MetaStepOutput:
    """`_summed_over_chunks` with each program called from a thread of a pool
    of one per core, so that programs run (and first compile) concurrently
    (module docstring)."""
    chunks = self._chunks(states)
    workers = min(len(chunks), usable_cores())
    with concurrent.futures.ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix="meta_step_program") as pool:
      calls = [pool.submit(self._compiled_chunk, *chunk) for chunk in chunks]
      return _added_up([call.result() for call in calls])

  def _chunks(self, states: List[population_lib.LifetimeState]
              ) -> List[Tuple[List[population_lib.LifetimeState], int]]:
    """Each program's arguments for whole shards' `states`: its groups'
    states and the position of its first group within a shard."""
    per_shard = len(self.population.groups) // self.population.spec.shards
    return [(states[start:stop], start % per_shard)
            for start, stop in chunk_bounds(len(states), per_shard,
                                            self._groups_per_program)]

  def _sharded_step(self, states: Any) -> MetaStepOutput:
    """The meta-step of the whole population on several replicas.

    Args:
      states: per replica, the states of its shards (`sharding.distribute`).

    Returns:
      The lifetime-weighted mean meta-loss and meta-gradient over all
      replicas, and every group's state, end and metrics in the population's
      order.
    """
    if self._groups_per_program:
      out = self._strategy.run(self._summed_over_chunks, args=(states,))
      grads, loss, num_kept = sharding.summed(
          self._strategy, (out.grads, out.loss, out.num_kept))
    else:
      # A lambda, not the compiled function itself: given a tf.function,
      # MirroredStrategy would compile all replicas into one XLA program.
      out = self._strategy.run(lambda s: self._compiled_step(s), args=(states,))
      grads, loss = sharding.weighted_mean(
          self._strategy, (out.grads, out.loss), out.num_kept)
      num_kept = self._strategy.reduce(tf.distribute.ReduceOp.SUM,
                                       out.num_kept, axis=None)
    states, ends, metrics = (sharding.gather(self._strategy, per_replica)
                             for per_replica in (out.states, out.ends,
                                                 out.metrics))
    step = MetaStepOutput(grads, loss, num_kept, states, ends, metrics)
    return _mean_over_kept(step) if self._groups_per_program else step

  def _step_all(self) -> MetaStepOutput:
    """The compiled meta-step of the whole population, on every replica."""
    states = self.population.read()
    if self._strategy.num_replicas_in_sync == 1:
      if self._groups_per_program:
        run = (self._threaded_chunks if self._concurrent_programs
               else self._summed_over_chunks)
        return _mean_over_kept(run(states))
      return self._compiled_step(states)
    return self._replicated_step(sharding.distribute(
        self._strategy, states, self.population.spec.shards))

  def program_hlo(self) -> List[str]:
    """The HLO text that TensorFlow hands XLA for each compiled program of a
    meta-step on the population's current states (one, or one per chunk of
    `groups_per_program`), for counting the step's work
    (`experiments.hlo_flops`). Lowering only: nothing is compiled or run.
    Without XLA, the same step functions are traced again for XLA to lower:
    the same operations, so the same work, whichever runtime runs them.

    Raises:
      ValueError: the meta-step runs on several replicas (their programs are
        each replica's; count one replica's).
    """
    if self._strategy.num_replicas_in_sync != 1:
      raise ValueError("program_hlo reads one replica's programs; this run "
                       f"has {self._strategy.num_replicas_in_sync}")
    step, chunk = self._compiled_step, self._compiled_chunk
    if not self._jit_compile:
      step, chunk = (tf.function(fn, jit_compile=True, autograph=False)
                     for fn in (self._meta_step, self._chunk_step))
    states = self.population.read()
    if not self._groups_per_program:
      return [step.experimental_get_compiler_ir(states)(stage="hlo")]
    return [chunk.experimental_get_compiler_ir(*c)(stage="hlo")
            for c in self._chunks(states)]

  def step(self) -> Dict[str, float]:
    """One meta-step; returns the numbers worth logging."""
    out = self._step_all()
    finite = all(bool(tf.reduce_all(tf.math.is_finite(g))) for g in out.grads)
    norm = tf.linalg.global_norm(out.grads)
    if finite:
      grads = out.grads
      if self._meta.max_grad_norm:
        grads, _ = tf.clip_by_global_norm(grads, self._meta.max_grad_norm,
                                          use_norm=norm)
      self.meta_optimiser.apply(grads, self.rule.trainable_variables)
    else:
      logging.warning("Meta-step %d: non-finite meta-gradient; update skipped",
                      int(self.step_counter.numpy()))
    self.step_counter.assign_add(1)
    numbers = {"meta_loss": float(out.loss),
               "meta_gradient_finite": float(finite),
               "meta_gradient_norm": float(norm) if finite else float("nan")}
    numbers.update(self.population.finish(out.states, out.ends))
    numbers.update(group_numbers(self.population.groups, out.metrics))
    return numbers

  @property
  def inner_env_steps_per_step(self) -> int:
    """Environment steps of the K inner rollouts, all lifetimes, per meta-step."""
    spec = self.population.spec
    return (spec.num_inner_updates * spec.unroll_length * spec.num_envs
            * self.population.num_lifetimes)

  @property
  def scoring_env_steps_per_step(self) -> int:
    """Environment steps of the rollouts that score theta_K (Eq. 4), per meta-step."""
    spec = self.population.spec
    return spec.unroll_length * spec.num_envs * self.population.num_lifetimes

  def checkpoint_items(self) -> Dict[str, object]:
    """Everything a checkpoint holds (DESIGN.md idiom 6)."""
    return {"rule": self.rule, "meta_optimiser": self.meta_optimiser,
            "step": self.step_counter, **self.population.checkpoint_items()}
