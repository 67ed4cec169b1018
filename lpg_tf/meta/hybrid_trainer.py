"""The hybrid meta-trainer: meta-gradient and evolution-strategies steps
alternating on one eta.

`HybridTrainer` has the other trainers' interface (step, counters, checkpoint
items). It holds a `trainer.MetaTrainer` and an `es_trainer.ESTrainer` built on
the same rule, population and step counter (`ESTrainer`'s `shared_with`):
every `es_every`-th step (steps es_every - 1, 2 es_every - 1, ...) is an ES
step, the others are meta-gradient steps, each exactly its trainer's `step()`.
So `es_every = 1` is ES alone, and until step es_every - 1 the run is the
meta-gradient trainer's, step for step.

Why alternation rather than a weighted sum of both estimates on one step: the
two estimates come from windows of different lengths (K inner updates and a
scoring rollout, against `ESSpec.window` updates of P + 1 members), and both
advance the population's lifetimes, so one step holding both would either run
the lifetimes through two windows or throw one window's progress away.
Alternating keeps each step the unchanged step of its trainer (the same
lifetimes, bandit, checkpoints and resume), and `es_every` sets the share of
steps each estimate gets.

Each estimate has its own Adam on eta, at the same learning rate. Measured on
tests/meta/test_hybrid_trainer.py's config (P = 8, sigma = 0.01, 672 weights,
the first 8 states of a run with es_every = 2): at 7 of them the ES
estimate's norm was 75-220 against the meta-gradient's 0.001-0.045 (median
ratio 5e4; it scales as sqrt(dim eta) / sigma whatever the fitness), and at
the first every member's fitness tied and the estimate was 0. Their cosine
was 0.015 +- 0.026 over the 7, as for random directions (1 / sqrt(672) =
0.039). One Adam would divide the meta-gradient by the ES estimate's running
scale, so meta-gradient steps would all but stop after the first ES step;
two Adams let each estimate move eta by about the learning rate per step, and
`es_every` weighs them.
"""

from typing import Dict, Optional

import tensorflow as tf

from lpg_tf import errors
from lpg_tf.meta import es_trainer
from lpg_tf.meta import population as population_lib
from lpg_tf.meta import trainer as trainer_lib
from lpg_tf.rules import lpg

ES_EVERY = 5  # every 5th meta-step is an ES step; untuned.

# ES step numbers that mean something else than the meta-gradient's numbers
# of the same name, renamed so that a logging window does not average the two.
_ES_RENAMED = {"meta_loss": "es/meta_loss",
               "meta_gradient_norm": "es/gradient_norm"}


def check_es_every(es_every: int) -> None:
  """Raises ConfigError unless `es_every` is a positive integer."""
  if (not isinstance(es_every, int) or isinstance(es_every, bool)
      or es_every < 1):
    raise errors.ConfigError(
        f"The hybrid's es_every must be an integer >= 1 (every es_every-th "
        f"step is an ES step; 1: ES alone), got {es_every!r}")


def is_es_step(step: int, es_every: int) -> bool:
  """Whether meta-step `step` (from 0) is an ES step."""
  return (step + 1) % es_every == 0


class HybridTrainer(tf.Module):
  """Meta-trains an LPG rule by alternating meta-gradient and ES steps."""

  def __init__(self, rule: lpg.LPG, population: population_lib.PopulationSpec,
               meta: trainer_lib.MetaSpec, es: es_trainer.ESSpec,
               es_every: int, seed: int,
               strategy: Optional[tf.distribute.Strategy] = None,
               jit_compile: bool = True, groups_per_program: int = 0,
               concurrent_programs: bool = True):
    """Builds both trainers on one rule and population.

    Args:
      rule: the LPG rule to meta-train (its variables are created here if new).
      population: the population's shape.
      meta: meta-gradient settings (its Adam's learning rate).
      es: ES settings (its Adam's learning rate).
      es_every: every es_every-th step is an ES step (>= 1).
      seed: seed of everything random in the run.
      strategy: variables are created under its scope (default strategy if
        None); its replicas share out the population's shards, for both
        kinds of step.
      jit_compile: compile the meta-step and the ES window with XLA.
      groups_per_program: the meta-gradient steps' programs of at most this
        many groups (`trainer.MetaTrainer`); 0: one program. ES steps always
        evaluate every group in one program.
      concurrent_programs: run those programs concurrently
        (`trainer.MetaTrainer`).

    Raises:
      errors.ConfigError: bad settings, or shards that do not split evenly
        over the replicas.
    """
    super().__init__(name="hybrid_trainer")
    check_es_every(es_every)
    es_trainer.check_spec(es, population)
    self._es_every = es_every
    self._gradient = trainer_lib.MetaTrainer(
        rule, population, meta, seed, strategy=strategy,
        jit_compile=jit_compile, groups_per_program=groups_per_program,
        concurrent_programs=concurrent_programs)
    self._es = es_trainer.ESTrainer(
        rule, population, es, seed, strategy=strategy,
        jit_compile=jit_compile, shared_with=self._gradient)
    self.rule = rule
    self.population = self._gradient.population
    self.step_counter = self._gradient.step_counter

  def step(self) -> Dict[str, float]:
    """One meta-step, ES or meta-gradient; returns the numbers worth logging
    (an ES step's loss and estimate norm under "es/", and "hybrid/es_step",
    1 on ES steps and 0 on the others)."""
    if is_es_step(int(self.step_counter.numpy()), self._es_every):
      numbers = self._es.step()
      for name, renamed in _ES_RENAMED.items():
        numbers[renamed] = numbers.pop(name)
      numbers["hybrid/es_step"] = 1.0
    else:
      numbers = self._gradient.step()
      numbers["hybrid/es_step"] = 0.0
    return numbers

  def _per_step(self, gradient: int, es: int) -> float:
    """The mean over a cycle of es_every steps of a per-step count."""
    return ((self._es_every - 1) * gradient + es) / self._es_every

  @property
  def inner_env_steps_per_step(self) -> float:
    """Agent environment steps per step, averaged over the alternation."""
    return self._per_step(self._gradient.inner_env_steps_per_step,
                          self._es.inner_env_steps_per_step)

  @property
  def scoring_env_steps_per_step(self) -> float:
    """Scoring rollouts' environment steps per step (meta-gradient steps only),
    averaged over the alternation."""
    return self._per_step(self._gradient.scoring_env_steps_per_step, 0)

  def checkpoint_items(self) -> Dict[str, object]:
    """Everything a checkpoint holds (DESIGN.md idiom 6): the meta-gradient
    trainer's items (the shared state and its Adam) and the ES trainer's
    Adam."""
    return {**self._gradient.checkpoint_items(),
            "es_meta_optimiser": self._es.meta_optimiser}
