"""Periodic validation of eta during meta-training, and the best eta so far.

Appendix B.2 selects the update rule (eta) by its validation performance
rather than taking the last one: meta-training can climb and then collapse.
Every `ValidationSpec.every` meta-steps, `Validator.validate` trains fresh
agents with the current eta on held-out instances of every training
environment and scores them; the best-scoring eta is kept (`best_rule`, a copy
of the rule's variables) with its score and meta-step, all in the training
checkpoint, so a resumed run keeps its best exactly.

What a validation does, per training environment E of the population:
  * `ValidationSpec.lifetimes` fresh lifetimes (grid worlds split between the
    two action spaces as the population does, `population.group_layout`), of
    `ValidationSpec.env_steps` environment steps each, trained by eta through
    `learning.evaluation.Evaluator` with the population's B and T;
  * alpha = (alpha_lr, alpha_y) is E's bandit's most probable arm now (what a
    meta-tester would pick from p(alpha|E)); before any lifetime of E has
    ended (every arm untried), and always in a population without a bandit
    (fixed hyperparameters), it is the grid's middle, the population's own
    starting alpha; ties go to the lowest arm;
  * gamma cycles through Table 2's values (`lifetime_settings.GAMMAS`) over the
    lifetimes, the discounts eta is meta-trained with;
  * a lifetime's return is `evaluation.final_returns` (the mean return of the
    last tenth of its training), and E's return R_E the mean over its
    lifetimes.

Held-out instances (seed scheme). Every draw in lpg_tf is a stateless function
of a `[2]` int32 key. A validation lifetime group g (in `group_layout` order)
uses the key `[run seed, VALIDATION_KEY_WORD + g]` for theta_0, its instances,
episodes and acting noise; the key is the same at every validation, so
successive validations differ only in eta and alpha (common random numbers: a
better score means a better eta, not luckier instances). The training
population's keys are `[1000 * seed + group, 1..3]` and `[seed + 7919, reset
count]`, and agent training and meta-testing (`launchers/train_agent.py
--seed=s`, `evaluation.Evaluator.run(seed=s)`) use `[s, 0]`: no key is
shared, so validation instances are drawn apart from both the training
population's and any test seed's. (Environments have finite instance sets --
a chain's length, a tabular grid's object cells -- so "apart" means drawn from
an independent stream, not guaranteed different.)

Score. Returns of the environments differ in scale (a tabular/dense episode
collects tens of rewards, a chain episode pays +-1), so the score is the mean
over environments of a normalised return,

  normalised_E = (R_E - random_E) / max(a2c_E - random_E, MIN_SCALE),
  score = mean_E normalised_E,

where random_E is the uniformly random policy's return on the same instances
and a2c_E the return of A2C (`rules.a2c`, `evaluation.A2C_LEARNING_RATES`)
trained on the same lifetimes with the same budget: 0 is the random policy, 1
is A2C, whatever the environment's return scale, and every environment weighs
the same. Both references are measured once, at the first validation (they do
not depend on eta), and kept in the checkpoint. MIN_SCALE guards an
environment where A2C does not beat the random policy within the budget (a
warning says so; a larger budget makes its score telling).
"""

import dataclasses
import json
import time
from typing import Any, Dict, List, NamedTuple, Optional

from absl import logging
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import envs
from lpg_tf.learning import evaluation
from lpg_tf.learning import random_policy
from lpg_tf.meta import lifetime_settings
from lpg_tf.meta import population as population_lib
from lpg_tf.rules import a2c
from lpg_tf.rules import lpg

VALIDATION_KEY_WORD = 1000  # Second word of validation keys (module docstring).
# Smallest divisor of a normalised return: a tenth of the reward unit every
# Appendix A environment pays (+-1 per object or per chain).
MIN_SCALE = 0.1


@dataclasses.dataclass(frozen=True)
class ValidationSpec:
  """How and how often eta is validated (config values, passed as plain args).

  Attributes:
    every: meta-steps between validations (at every multiple); 0 = never.
    env_steps: environment steps of each validation lifetime.
    lifetimes: validation lifetimes per training environment.
    jit_compile: compile eta's validation programs with XLA (built once, run
      at every validation). The references of the score, run once, never
      are: on configs/cpu.py compiling them took 18 s more than running them
      without XLA.
  """
  every: int
  env_steps: int
  lifetimes: int
  jit_compile: bool = True


def check_spec(spec: ValidationSpec,
               population: population_lib.PopulationSpec) -> None:
  """Raises ConfigError for a validation that cannot score every environment.

  Each of a lifetime's B environments must be able to end an episode: every
  episode ends within the environment's step limit, so `env_steps` >= B x the
  longest step limit of the population's environments.
  """
  if spec.every < 0 or spec.env_steps <= 0 or spec.lifetimes <= 0:
    raise errors.ConfigError(f"Invalid validation settings {spec}")
  if not spec.every:
    return
  for name in population.env_names:
    needed = population.num_envs * envs.make(name).spec.max_episode_steps
    if spec.env_steps < needed:
      raise errors.ConfigError(
          f"config.validation.env_steps={spec.env_steps} is too short for "
          f"{name}: each of its {population.num_envs} environments per lifetime "
          f"needs a whole episode, so at least {needed} steps")


class ValidationResult(NamedTuple):
  """One validation.

  Attributes:
    step: the meta-step whose eta was validated.
    score: mean normalised return over environments (NaN: eta not finite).
    returns: environment -> R_E, the mean final return of its lifetimes.
    normalised: environment -> its normalised return.
    improved: the score beat every earlier one; eta is the new best.
    best_score: the best score so far (this one if improved).
    best_step: its meta-step.
    seconds: wall time of the validation.
  """
  step: int
  score: float
  returns: Dict[str, float]
  normalised: Dict[str, float]
  improved: bool
  best_score: float
  best_step: Optional[int]
  seconds: float

  def scalars(self) -> Dict[str, float]:
    """Numbers for the logger: `validation/score`, `validation/<env>/return`, ..."""
    numbers = {"validation/score": self.score,
               "validation/best_score": self.best_score,
               "validation/seconds": self.seconds}
    for name, value in self.returns.items():
      numbers[f"validation/{name}/return"] = value
      numbers[f"validation/{name}/normalised_return"] = self.normalised[name]
    return numbers


class ValidationRecord(tf.train.experimental.PythonState):
  """The checkpointed part of validation that is not a variable: the best
  score, its meta-step and the references of the score (JSON)."""

  def __init__(self):
    self.best_score: Optional[float] = None
    self.best_step: Optional[int] = None
    # environment -> {"random": random_E, "a2c": a2c_E}
    self.references: Dict[str, Dict[str, float]] = {}

  def serialize(self) -> str:
    return json.dumps({"best_score": self.best_score,
                       "best_step": self.best_step,
                       "references": self.references})

  def deserialize(self, string_value: bytes) -> None:
    state = json.loads(string_value)
    self.best_score = state["best_score"]
    self.best_step = state["best_step"]
    self.references = state["references"]


class _Group(NamedTuple):
  """One validation group: an environment in one action space."""
  layout: population_lib.GroupLayout
  key: List[int]
  gamma: np.ndarray


class Validator:
  """Validates eta every `spec.every` meta-steps and keeps the best one."""

  def __init__(self, rule: lpg.LPG, best_rule: lpg.LPG,
               population: population_lib.Population, spec: ValidationSpec,
               seed: int):
    """Builds the best-eta copy; the evaluators are built at the first
    validation.

    Args:
      rule: the rule being meta-trained (validated as it is at each call).
      best_rule: an LPG of the same configuration, the best eta's copy.
      population: the training population (its environments, B, T and bandits).
      spec: the validation's settings.
      seed: the run's seed.
    """
    check_spec(spec, population.spec)
    self._rule = rule
    self.best_rule = best_rule
    rule.build()
    best_rule.build()
    shapes = [v.shape for v in best_rule.variables]
    if shapes != [v.shape for v in rule.variables]:
      raise ValueError("best_rule is not configured like rule")
    self._population = population
    self.spec = spec
    self.record = ValidationRecord()
    layout = population_lib.group_layout(
        dataclasses.replace(population.spec, lifetimes_per_env=spec.lifetimes))
    gammas = lifetime_settings.GAMMAS
    self._groups = [
        _Group(group, [seed, VALIDATION_KEY_WORD + index], np.array(
            [gammas[i % len(gammas)] for i in range(group.num_lifetimes)],
            np.float32))
        for index, group in enumerate(layout)]
    self._evaluators: List[evaluation.Evaluator] = []

  def checkpoint_items(self) -> Dict[str, Any]:
    """Validation's part of the training checkpoint (DESIGN.md idiom 6)."""
    return {"validation": self.record, "best_rule": self.best_rule}

  @property
  def best_step(self) -> Optional[int]:
    """The meta-step of the best eta so far; None before any validation."""
    return self.record.best_step

  def due(self, step: int) -> bool:
    """Whether meta-step `step` is validated."""
    return bool(self.spec.every) and step % self.spec.every == 0

  def _evaluator(self, group: _Group, rule: Any,
                 jit_compile: bool) -> evaluation.Evaluator:
    population = self._population.spec
    return evaluation.Evaluator(
        group.layout.env_name, rule, group.layout.num_lifetimes,
        self.spec.env_steps, population.num_envs, population.unroll_length,
        group.layout.action_space, population.prediction_size, jit_compile)

  def _alpha(self, env_name: str) -> tuple[float, float]:
    """alpha for E: the bandit's most probable arm (module docstring)."""
    bandits = self._population.bandits
    bandit = None if bandits is None else bandits.bandits[env_name]
    if bandit is None or not bandit.counts.any():
      settings = lifetime_settings.for_env(env_name)
      return settings.default_learning_rate, settings.default_kl_cost
    return bandit.arm_values(bandit.most_probable_arm())

  def _by_env(self, per_group: List[np.ndarray]) -> Dict[str, float]:
    """Environment -> mean over its lifetimes (all its groups)."""
    values: Dict[str, List[np.ndarray]] = {}
    for group, value in zip(self._groups, per_group):
      values.setdefault(group.layout.env_name, []).append(value)
    return {name: float(np.nanmean(np.concatenate(v)))
            for name, v in values.items()}

  def _measure_references(self) -> None:
    """random_E and a2c_E on the validation lifetimes (module docstring)."""
    random_returns, a2c_returns = [], []
    steps_per_env = self.spec.env_steps // self._population.spec.num_envs
    for group in self._groups:
      # Run once each: compiling them with XLA would cost more than it saves.
      evaluator = self._evaluator(group, a2c.A2C(), jit_compile=False)
      env = evaluator.env
      random_return = random_policy.random_policy_return(
          env, self._population.spec.num_envs,
          max(steps_per_env, 2 * env.spec.max_episode_steps), group.key,
          group.layout.num_lifetimes, jit_compile=False)
      random_returns.append(np.full([group.layout.num_lifetimes],
                                    np.nan if random_return is None
                                    else random_return))
      a2c_returns.append(evaluator.run(
          evaluation.A2C_LEARNING_RATES[evaluator.optimiser], 0.0, group.gamma,
          group.key).final_returns)
    random_by_env = self._by_env(random_returns)
    a2c_by_env = self._by_env(a2c_returns)
    for name, random_return in random_by_env.items():
      self.record.references[name] = {"random": random_return,
                                      "a2c": a2c_by_env[name]}
      if not a2c_by_env[name] - random_return >= MIN_SCALE:
        logging.warning(
            "Validation: A2C reaches %.3g on %s, the random policy %.3g: less "
            "than %g apart, so its normalised return divides by %g; a larger "
            "config.validation.env_steps makes its score telling",
            a2c_by_env[name], name, random_return, MIN_SCALE, MIN_SCALE)
    logging.info("Validation references (random policy, A2C): %s", ", ".join(
        f"{n} ({r['random']:.3g}, {r['a2c']:.3g})"
        for n, r in self.record.references.items()))

  def normalise(self, returns: Dict[str, float]) -> Dict[str, float]:
    """Environment -> (R_E - random_E) / max(a2c_E - random_E, MIN_SCALE)."""
    normalised = {}
    for name, value in returns.items():
      reference = self.record.references[name]
      scale = max(reference["a2c"] - reference["random"], MIN_SCALE)
      normalised[name] = (value - reference["random"]) / scale
    return normalised

  def _evaluate(self) -> Dict[str, float]:
    """Environment -> R_E for the rule's current eta; measures the score's
    references first if they are not known yet."""
    if not self.record.references:
      self._measure_references()
    if not self._evaluators:
      self._evaluators = [self._evaluator(g, self._rule, self.spec.jit_compile)
                          for g in self._groups]
    finals = []
    for group, evaluator in zip(self._groups, self._evaluators):
      learning_rate, kl_cost = self._alpha(group.layout.env_name)
      finals.append(evaluator.run(learning_rate, kl_cost, group.gamma,
                                  group.key).final_returns)
    return self._by_env(finals)

  @property
  def traces(self) -> int:
    """Traces of the validation programs so far (one per group once built)."""
    return sum(evaluator.traces for evaluator in self._evaluators)

  def validate(self, step: int) -> ValidationResult:
    """Validates the rule's current eta as meta-step `step`'s; keeps it if best.

    A non-finite eta is not validated (score NaN) and never becomes the best.
    """
    start = time.monotonic()
    returns, normalised, score = {}, {}, float("nan")
    if all(np.all(np.isfinite(v.numpy())) for v in self._rule.variables):
      returns = self._evaluate()
      normalised = self.normalise(returns)
      score = float(np.mean(list(normalised.values())))
    best = self.record.best_score
    improved = bool(np.isfinite(score)) and (best is None or score > best)
    if improved:
      for copy, variable in zip(self.best_rule.variables, self._rule.variables):
        copy.assign(variable)
      self.record.best_score, self.record.best_step = score, step
    return ValidationResult(
        step, score, returns, normalised, improved,
        best_score=(float("nan") if self.record.best_score is None
                    else self.record.best_score),
        best_step=self.record.best_step, seconds=time.monotonic() - start)
