"""Meta-train an LPG rule: the library side of `launchers/tpu_meta_train.py`.

`config.rule.kind` chooses the rule: LPG (`rules.lpg`), or LPG-V
(`rules.lpg_v`, Section 4.1), whose agents predict a value v (m = 1) trained by
TD(lambda) instead of y; Eq. 4's beta1 H(y) and beta3 ||y_hat||^2 and
`config.population.prediction_size` do not apply to it and are left out.
Figure 7's ablations are config values: `rule.y_softmax`,
`meta.prediction_entropy_cost`, `meta.pi_hat_l2_cost` and `meta.y_hat_l2_cost`,
and `meta.bandit` (README). `config.meta.optimiser` chooses how eta learns:
the meta-gradient (`meta.trainer`, the default), evolution strategies
(`meta.es_trainer`, settings under `config.meta.es`) or both alternating
(`meta.hybrid_trainer`, `config.meta.hybrid.es_every`); the trainers have one
interface, so everything below serves any of them.

Work directory layout:
  DIR/config.json     the run's config (a continued run must match it)
  DIR/checkpoints/    tf.train.Checkpoint of the whole training state
  DIR/rule/           the exported rule (SavedModel, `serving_default`, and
                      rule.onnx), always the newest checkpoint's eta once a
                      run starts or stops
  DIR/best_rule/      with config.validation.every > 0: the eta that scored
                      best in validation so far (lpg_tf.meta.validation),
                      exported when a validation improves the best score;
                      always the newest checkpoint's best once a run starts
  DIR/tb/             TensorBoard summaries
  DIR/.lock           held by the running trainer (its pid inside)

A run directory is always either startable or resumable (run_directory.py):
running the same command again continues the run from its newest intact
checkpoint (or from step 0 if it was stopped before its first checkpoint);
`--resume` says the same and refuses a directory without a run. A directory
holding another config is refused; only RESUMABLE_FIELDS may change. A run that
is already complete says so and how to extend it.

Replicas. The population's `config.population.shards` are shared out over the
replicas of the run's strategy (`lpg_tf.meta.sharding`; `config.cpu_devices`
> 1 makes logical CPU devices). A checkpoint holds every shard whatever the
number of replicas, so a run continues on any number of replicas that divides
the number of shards (`config.strategy` and `config.cpu_devices` may change on
resume): on the same number it continues exactly; on another, each replica
takes its new share of the shards and eta differs only by the summation order
of the meta-gradient (about 1e-8). A number of replicas that does not divide
the shards is refused before any work.

Every bad input (unknown environment, unknown config key, out-of-range values,
a resume of a run with another config, a wrong SavedModel for `init_rule` or
one of other sizes than the config's) raises `errors.ConfigError` before
anything is written. While it runs:

  * SIGTERM or Ctrl-C stops the run after the current meta-step: it checkpoints,
    exports the rule and raises `stop_signals.Stopped`;
  * eta is never saved while non-finite, and `config.max_nonfinite_steps`
    consecutive non-finite meta-gradients stop the run; both raise
    `run_directory.RunError` naming the last good checkpoint;
  * a full disk raises `run_directory.RunError` (which path, how much space);
    the previous checkpoint stays intact;
  * an export whose ONNX conversion fails (`export.ExportError`) raises
    `run_directory.RunError`; the checkpoints and the previous rule/ are intact.
"""

import fnmatch
import glob
import json
import os
import shutil
import tempfile
import time
from typing import (Any, Callable, Dict, Iterable, Mapping, Optional, Sequence,
                    Tuple, Union)

from absl import logging
import ml_collections
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import export
from lpg_tf import loggers
from lpg_tf.distributed import strategy as strategy_lib
from lpg_tf.experiments import config_validation
from lpg_tf.experiments import run_directory
from lpg_tf.experiments import stop_signals
from lpg_tf.meta import es_trainer
from lpg_tf.meta import hybrid_trainer
from lpg_tf.meta import meta_objective
from lpg_tf.meta import population as population_lib
from lpg_tf.meta import run_length
from lpg_tf.meta import sharding
from lpg_tf.meta import trainer as trainer_lib
from lpg_tf.meta import validation as validation_lib
from lpg_tf.rules import lpg
from lpg_tf.rules import lpg_v
from lpg_tf.rules import pretrained

CONFIG_NAME = run_directory.CONFIG_NAME
CHECKPOINT_DIR = run_directory.CHECKPOINT_DIR
RULE_DIR = run_directory.RULE_DIR
BEST_RULE_DIR = run_directory.BEST_RULE_DIR
TB_DIR = "tb"
# Config fields a resumed run may change: they set only run length, checkpoint
# period, logging, when to give up on non-finite meta-gradients, the devices
# that run the population's shards (a checkpoint holds every shard, whatever
# the number of replicas: lpg_tf.meta.sharding), or how many groups one
# compiled program holds (the same meta-gradient up to summation order),
# whether programs run concurrently (the same values) or whether inner updates
# are recomputed in the backward pass (the same meta-gradient, no state).
RESUMABLE_FIELDS = ("num_meta_steps", "total_env_steps", "checkpoint_every",
                    "log_every", "max_nonfinite_steps", "strategy", "cpu_devices",
                    "population.groups_per_program",
                    "population.concurrent_programs",
                    "meta.rematerialise_inner_updates")
CHECKPOINTS_TO_KEEP = 3
# Config keys added after runs existed, with the values that keep the older
# runs' behaviour: a run directory whose config.json lacks them continues.
ADDED_FIELDS = {"rule.kind": lpg.KIND, "rule.y_softmax": True,
                "rule.td_lambda": lpg_v.TD_LAMBDA, "meta.bandit": True,
                "cpu_devices": 1, "population.shards": 1,
                "population.groups_per_program": 0,
                "population.concurrent_programs": True,
                "population.sampled_action_spaces": False,
                "meta.optimiser": "gradient",
                "meta.es.population_size": es_trainer.POPULATION_SIZE,
                "meta.es.sigma": es_trainer.SIGMA,
                "meta.es.window": es_trainer.WINDOW,
                "meta.hybrid.es_every": hybrid_trainer.ES_EVERY,
                "meta.rematerialise_inner_updates": False}
# The meta-trainers `config.meta.optimiser` chooses between (one interface).
Trainer = Union[trainer_lib.MetaTrainer, es_trainer.ESTrainer,
                hybrid_trainer.HybridTrainer]


def prediction_size(config: ml_collections.ConfigDict) -> int:
  """m of the agents' prediction: the config's, or 1 (the value v) for LPG-V."""
  if config.rule.kind == lpg_v.KIND:
    return lpg_v.VALUE_SIZE
  return config.population.prediction_size


def population_spec(config: ml_collections.ConfigDict) -> population_lib.PopulationSpec:
  p, m = config.population, config.meta
  spec = population_lib.PopulationSpec(
      env_names=tuple(p.envs), lifetimes_per_env=p.lifetimes_per_env,
      num_envs=p.num_envs, unroll_length=p.unroll_length,
      num_inner_updates=p.num_inner_updates,
      prediction_size=prediction_size(config),
      lifetime_scale=p.lifetime_scale,
      entropy_reset_threshold=m.entropy_reset_threshold,
      bandit_temperature=m.bandit_temperature,
      bandit_exploration_bonus=m.bandit_exploration_bonus,
      bandit_window=m.bandit_window, bandit=m.bandit, shards=p.shards,
      sampled_action_spaces=p.sampled_action_spaces)
  population_lib.validate_population(spec)
  return spec


def meta_spec(config: ml_collections.ConfigDict) -> trainer_lib.MetaSpec:
  """The meta-learner's settings; LPG-V learns no y_hat, so Eq. 4's beta1
  and beta3 are 0 for it whatever the config says."""
  m = config.meta
  if not m.learning_rate > 0:
    raise errors.ConfigError(f"config.meta.learning_rate must be positive, got {m.learning_rate}")
  if not (m.get("max_grad_norm") or 0.0) >= 0:
    raise errors.ConfigError(
        f"config.meta.max_grad_norm must be >= 0 (0 = off), got {m.max_grad_norm}")
  learns_y = config.rule.kind == lpg.KIND
  return trainer_lib.MetaSpec(
      learning_rate=m.learning_rate,
      costs=meta_objective.MetaObjectiveCosts(
          prediction_entropy=m.prediction_entropy_cost if learns_y else 0.0,
          pi_hat_l2=m.pi_hat_l2_cost,
          y_hat_l2=m.y_hat_l2_cost if learns_y else 0.0,
          advantage_lambda=m.advantage_lambda),
      critic_learning_rate=m.critic_learning_rate,
      max_grad_norm=m.get("max_grad_norm"),
      rematerialise_inner_updates=m.get("rematerialise_inner_updates", False))


def es_spec(config: ml_collections.ConfigDict) -> es_trainer.ESSpec:
  """Evolution strategies' settings; Adam on eta at meta.learning_rate."""
  e = config.meta.es
  return es_trainer.ESSpec(
      learning_rate=config.meta.learning_rate,
      population_size=e.population_size, sigma=e.sigma, window=e.window)


def build_trainer(config: ml_collections.ConfigDict, rule: lpg.LPG,
                  strategy: Optional[tf.distribute.Strategy] = None,
                  jit_compile: Optional[bool] = None) -> Trainer:
  """The meta-trainer `config.meta.optimiser` names, on a new population.

  `jit_compile`: None takes the config's.
  """
  if jit_compile is None:
    jit_compile = config.jit_compile
  if config.meta.optimiser == "es":
    return es_trainer.ESTrainer(
        rule, population_spec(config), es_spec(config), seed=config.seed,
        strategy=strategy, jit_compile=jit_compile)
  if config.meta.optimiser == "hybrid":
    return hybrid_trainer.HybridTrainer(
        rule, population_spec(config), meta_spec(config), es_spec(config),
        es_every=config.meta.hybrid.es_every, seed=config.seed,
        strategy=strategy, jit_compile=jit_compile,
        groups_per_program=config.population.groups_per_program,
        concurrent_programs=config.population.concurrent_programs)
  return trainer_lib.MetaTrainer(
      rule, population_spec(config), meta_spec(config), seed=config.seed,
      strategy=strategy, jit_compile=jit_compile,
      groups_per_program=config.population.groups_per_program,
      concurrent_programs=config.population.concurrent_programs)


def validation_spec(config: ml_collections.ConfigDict
                   ) -> validation_lib.ValidationSpec:
  v = config.validation
  return validation_lib.ValidationSpec(
      every=v.every, env_steps=v.env_steps, lifetimes=v.lifetimes,
      jit_compile=config.jit_compile)


def build_rule(config: ml_collections.ConfigDict) -> lpg.LPG:
  """The rule `config.rule.kind` names: LPG, or LPG-V (an `lpg.LPG` too)."""
  r = config.rule
  if r.hidden_size <= 0 or not r.embedding_sizes or min(r.embedding_sizes) <= 0:
    raise errors.ConfigError(f"config.rule has invalid sizes: {r}")
  if r.kind == lpg_v.KIND:
    return lpg_v.LPGV(hidden_size=r.hidden_size,
                      embedding_sizes=tuple(r.embedding_sizes),
                      use_baseline=r.use_baseline, td_lambda=r.td_lambda)
  return lpg.LPG(hidden_size=r.hidden_size,
                 prediction_size=config.population.prediction_size,
                 embedding_sizes=tuple(r.embedding_sizes),
                 use_baseline=r.use_baseline,
                 y_head_init_stddev=r.y_head_init_stddev,
                 y_softmax=r.y_softmax)


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks every config value before any work."""
  config_validation.check(config)
  if config.strategy not in strategy_lib.KINDS:
    raise errors.ConfigError(
        f"config.strategy {config.strategy!r} unknown; valid: {strategy_lib.KINDS}")
  run_length.num_meta_steps(population_spec(config), config.num_meta_steps,
                            config.get("total_env_steps"))
  meta_spec(config)
  if config.meta.optimiser in ("es", "hybrid"):
    es_trainer.check_spec(es_spec(config), population_spec(config))
  if config.meta.optimiser == "hybrid":
    hybrid_trainer.check_es_every(config.meta.hybrid.es_every)
  build_rule(config)
  validation_lib.check_spec(validation_spec(config), population_spec(config))


def with_run_length(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `config` whose num_meta_steps is set: as given, or derived from
  total_env_steps (lpg_tf.meta.run_length)."""
  steps = run_length.num_meta_steps(population_spec(config),
                                    config.num_meta_steps,
                                    config.get("total_env_steps"))
  resolved = config.copy_and_resolve_references()
  resolved.num_meta_steps = steps
  return resolved


def _log_run_length(config: ml_collections.ConfigDict) -> None:
  """Says at start how long the run is, and which lifetimes outlast it."""
  spec = population_spec(config)
  steps = config.num_meta_steps
  per_step = run_length.env_steps_per_meta_step(spec)
  per_window = None  # the meta-gradient's window
  if config.meta.optimiser == "es":
    per_step = es_trainer.env_steps_per_step(es_spec(config), spec)
    per_window = es_trainer.env_steps_per_lifetime(es_spec(config), spec)
  if config.meta.optimiser == "hybrid":  # averaged over the alternation
    es_every = config.meta.hybrid.es_every
    per_step = ((es_every - 1) * per_step + es_trainer.env_steps_per_step(
        es_spec(config), spec)) // es_every
    per_window = ((es_every - 1) * spec.env_steps_per_window
                  + es_trainer.env_steps_per_lifetime(es_spec(config), spec)
                  ) // es_every
  logging.info("Run length: %d meta-steps x %d environment steps = %.3g "
               "environment steps (budget: %s)", steps, per_step,
               steps * per_step, config.get("total_env_steps"))
  unfinished = run_length.unfinished_lifetimes(spec, steps, per_window)
  if unfinished:
    logging.warning("Lifetimes of %s are longer than the run: only their "
                    "staggered first lifetimes end", ", ".join(unfinished))


def _log_rule(config: ml_collections.ConfigDict) -> None:
  """Says at start which rule and which of Figure 7's switches the run has."""
  r, m = config.rule, config.meta
  if r.kind == lpg_v.KIND:
    logging.info(
        "Rule: LPG-V (Section 4.1): the agents' value v is trained by "
        "TD(lambda=%g) and eta learns pi_hat only; population.prediction_size, "
        "rule.y_softmax, meta.prediction_entropy_cost and meta.y_hat_l2_cost "
        "do not apply", r.td_lambda)
  else:
    logging.info("Rule: LPG with %s y (m = %d)",
                 "softmax" if r.y_softmax else "raw (no softmax)",
                 config.population.prediction_size)
  if not m.bandit:
    logging.info("Fixed hyperparameters: every lifetime uses its environment's "
                 "middle (alpha_lr, alpha_y) of Table 3; no bandit")


def _config_json(config: ml_collections.ConfigDict) -> Dict[str, Any]:
  return json.loads(config.to_json())


# Numbers that count events: a logging point reports their sum over its window;
# every other number is averaged over the window's meta-steps.
_SUMMED = ("ended_lifetimes", "*/diverged_lifetimes", "*/excluded_lifetimes")
# What the console shows; everything goes to TensorBoard.
CONSOLE_KEYS = ("meta_loss", "*/episode_return", "prediction_entropy",
                "y_hat_spread", "ended_lifetimes", "validation/score",
                "validation/best_score", "validation/*/return")
# Per-environment diagnostics of y that `log` also averages over environments.
_AVERAGED_OVER_ENVS = ("prediction_entropy", "y_hat_spread")


class TrainingClock:
  """time.monotonic() less the time spent validating, so meta-steps/s and the
  console's time left measure meta-training alone (validation has its own
  `validation/seconds`)."""

  def __init__(self):
    self._excluded = 0.0

  def __call__(self) -> float:
    return time.monotonic() - self._excluded

  def exclude(self, seconds: float) -> None:
    self._excluded += seconds


class Progress:
  """Summarises every meta-step between logging points and hands it to a logger.

  One meta-step's numbers are noisy (a few episodes end per step) and event
  counts such as ended lifetimes happen at any step, so `add` takes every
  step's `MetaTrainer.step()` dict and `log` reports the window since the
  previous logging point: sums for event counts (`_SUMMED`), for everything
  else the mean over the steps where the number was finite (a step where no
  episode of an environment ended has no return for it). `log` adds
  "prediction_entropy" (H(y) averaged over environments), throughput, and the
  bandits' per-arm probabilities and counts under readable names such as
  `bandit/tabular/dense/p[lr=40,y=0.5]` (TensorBoard only: the console shows
  CONSOLE_KEYS). `close` logs an end-of-run summary. Rates are measured on
  `clock` (meta_train's `TrainingClock` leaves validation time out).
  """

  def __init__(self, logger: loggers.Logger, trainer: Trainer,
               clock: Callable[[], float] = time.monotonic):
    self._logger = logger
    self._trainer = trainer
    self._clock = clock
    self._sums: Dict[str, float] = {}
    self._counts: Dict[str, int] = {}
    self._window_start: Optional[Tuple[int, float]] = None
    self._run_start: Optional[Tuple[int, float]] = None
    self._ended_total = 0.0
    self._last: Dict[str, float] = {}

  def add(self, numbers: Mapping[str, float]) -> None:
    """Accumulates one meta-step's numbers into the current window."""
    for key, value in numbers.items():
      if np.isfinite(value):
        self._sums[key] = self._sums.get(key, 0.0) + value
        self._counts[key] = self._counts.get(key, 0) + 1
    self._ended_total += numbers.get("ended_lifetimes", 0.0)

  def _window(self) -> Dict[str, float]:
    window = {}
    for key, total in self._sums.items():
      summed = any(fnmatch.fnmatch(key, pattern) for pattern in _SUMMED)
      window[key] = total if summed else total / self._counts[key]
    for name in _AVERAGED_OVER_ENVS:
      per_env = [v for k, v in window.items() if k.endswith(f"/{name}")]
      if per_env:
        window[name] = float(np.mean(per_env))
    return window

  def _bandit_scalars(self) -> Dict[str, float]:
    scalars = {}
    bandits = self._trainer.population.bandits
    for name, bandit in (bandits.bandits.items() if bandits else ()):
      probabilities = bandit.probabilities()
      for arm in range(bandit.num_arms):
        learning_rate, kl_cost = bandit.arm_values(arm)
        label = f"[lr={learning_rate:g},y={kl_cost:g}]"
        scalars[f"bandit/{name}/p{label}"] = float(probabilities[arm])
        scalars[f"bandit/{name}/n{label}"] = float(bandit.counts[arm])
    return scalars

  def log(self, step: int) -> Dict[str, float]:
    """Writes the window ending at meta-step `step`; returns its numbers.

    Throughput is measured from the previous logging point, so the first
    window (which holds the compilation) reports none.
    """
    now = self._clock()
    numbers = self._window()
    if self._window_start is not None and step > self._window_start[0]:
      rate = (step - self._window_start[0]) / (now - self._window_start[1])
      numbers["meta_steps_per_s"] = rate
      numbers["inner_env_steps_per_s"] = (
          rate * self._trainer.inner_env_steps_per_step)
      numbers["scoring_env_steps_per_s"] = (
          rate * self._trainer.scoring_env_steps_per_step)
    self._logger.write(step, {**numbers, **self._bandit_scalars()})
    self._sums, self._counts = {}, {}
    self._window_start = (step, now)
    if self._run_start is None:
      self._run_start = (step, now)
    self._last = numbers
    return numbers

  def close(self, step: int) -> None:
    """Logs the end-of-run summary and closes the logger."""
    returns = ", ".join(f"{k[:-len('/episode_return')]} {v:.3g}"
                        for k, v in sorted(self._last.items())
                        if k.endswith("/episode_return"))
    rate = ""
    if self._run_start is not None and step > self._run_start[0]:
      rate = (f" ({(step - self._run_start[0]) / (self._clock() - self._run_start[1]):.3g}"
              " meta-steps/s after the first logging point)")
    logging.info(
        "Meta-training done at meta-step %d%s: %d lifetimes ended in this "
        "process; last window: meta-loss %.4g, returns %s, H(y) %.3g, "
        "y_hat spread %.3g", step, rate, self._ended_total,
        self._last.get("meta_loss", float("nan")), returns or "none",
        self._last.get("prediction_entropy", float("nan")),
        self._last.get("y_hat_spread", float("nan")))
    self._logger.close()


# Called after each checkpoint with the meta-step and the numbers logged last.
CheckpointCallback = Callable[[int, Mapping[str, float]], None]


def meta_train(config: ml_collections.ConfigDict, workdir: str,
               resume: bool = False,
               init_rule: Optional[str] = None,
               on_checkpoint: Optional[CheckpointCallback] = None,
               resumable_fields: Sequence[str] = ()) -> Dict[str, float]:
  """Runs (or continues) meta-training up to `config.num_meta_steps` meta-steps.

  Args:
    config: a config like configs/cpu.py.
    workdir: the run's directory (see module docstring).
    resume: continue the run in `workdir`; an error if it holds none. Without
      it, a run with the same config in `workdir` is continued all the same.
    init_rule: an exported rule (SavedModel directory), or a rule shipped
      with the package (`pretrained` or `pretrained:NAME`), to start eta from.
    on_checkpoint: called after every checkpoint (and rule export) with the
      meta-step and the numbers logged last; population-based training
      reports members' checkpoints to its scheduler through it.
    resumable_fields: dotted config keys that may change when the run
      continues, besides RESUMABLE_FIELDS (population-based training changes
      a member's hyperparameters between its segments).

  Returns:
    The last logged numbers (empty if the run was already complete).

  Raises:
    errors.ConfigError: bad input, before anything is written.
    run_directory.RunError: the directory is in use or unusable, the disk is
      full, or eta diverged.
    stop_signals.Stopped: SIGTERM or SIGINT stopped the run (after saving).
  """
  config_validation.check(config)
  # Before anything runs a TensorFlow op (logical devices exist only then).
  strategy_lib.configure_cpu_devices(config.cpu_devices)
  validate(config)
  config = with_run_length(config)
  if resume and init_rule:
    raise errors.ConfigError("--init_rule starts a new run; it cannot be combined "
                             "with --resume")
  run_directory.check_location(workdir, must_exist=resume)
  # The devices come before any other TensorFlow work (a multi-worker strategy
  # must be made first), and the split of the shards is checked before the run
  # directory is touched.
  strategy = strategy_lib.resolve(config.strategy,
                                  cpu_devices=config.cpu_devices)
  sharding.check_replicas(config.population.shards,
                          strategy.num_replicas_in_sync)
  if init_rule:
    init_rule = pretrained.export_directory(init_rule)
    export.check_sizes(build_rule(config), init_rule)
  with stop_signals.StopRequests() as stop:
    lock, start_from = run_directory.open_run(
        workdir, _config_json(config),
        RESUMABLE_FIELDS + tuple(resumable_fields), resume, init_rule,
        ADDED_FIELDS)
    with lock:
      return _run(config, workdir, strategy, start_from, init_rule, stop,
                  on_checkpoint)


def _run(config: ml_collections.ConfigDict, workdir: str,
         strategy: tf.distribute.Strategy, start_from: Optional[str],
         init_rule: Optional[str],
         stop: stop_signals.StopRequests,
         on_checkpoint: Optional[CheckpointCallback]) -> Dict[str, float]:
  """meta_train's loop, in a locked run directory."""
  _log_run_length(config)
  _log_rule(config)
  # eta_0 comes from Sonnet's initialisers (stateful ops): the global seed makes
  # it a function of config.seed. Everything else draws from stateless seeds.
  tf.random.set_seed(config.seed)
  rule = build_rule(config)
  with strategy.scope():
    meta_trainer = build_trainer(config, rule, strategy)
    validator = None
    if config.validation.every:
      validator = validation_lib.Validator(
          rule, build_rule(config), meta_trainer.population,
          validation_spec(config), seed=config.seed)
  checkpoint = tf.train.Checkpoint(
      **meta_trainer.checkpoint_items(),
      **(validator.checkpoint_items() if validator else {}))
  manager = tf.train.CheckpointManager(
      checkpoint, os.path.join(workdir, CHECKPOINT_DIR),
      max_to_keep=CHECKPOINTS_TO_KEEP,
      checkpoint_name=run_directory.CHECKPOINT_PREFIX)
  if start_from is None:
    if init_rule:
      export.load_rule_into(rule, init_rule)
      logging.info("Initialised eta from %s", init_rule)
    # A run killed before its first checkpoint may have left a best_rule/.
    _export_best(validator, workdir)
  else:
    status = checkpoint.restore(start_from)
    status.assert_existing_objects_matched()
    step = int(meta_trainer.step_counter.numpy())
    logging.info("Resumed from %s at meta-step %d", start_from, step)
    # A kill during the last export may have left rule/ and best_rule/ behind
    # the checkpoint, or best_rule/ ahead of it.
    _export(meta_trainer, workdir)
    _export_best(validator, workdir)
    if step >= config.num_meta_steps:
      status.expect_partial()  # The optimiser's slots are never built: no step.
      logging.info(
          "The run in %s is complete at meta-step %d (config.num_meta_steps="
          "%d); its rule is in %s. To extend it, run the same command with "
          "--config.num_meta_steps=<more than %d>", workdir, step,
          config.num_meta_steps, os.path.join(workdir, RULE_DIR), step)
      return {}
  clock = TrainingClock()
  progress = Progress(loggers.Dispatcher([
      loggers.TensorBoardLogger(os.path.join(workdir, TB_DIR)),
      loggers.ConsoleLogger("meta-step", total=config.num_meta_steps,
                            unit="meta-steps", keys=CONSOLE_KEYS, clock=clock)]),
      meta_trainer, clock)
  numbers: Dict[str, float] = {}
  step = saved_step = int(meta_trainer.step_counter.numpy())
  nonfinite_steps = 0
  while step < config.num_meta_steps and stop.requested is None:
    step_numbers = meta_trainer.step()
    progress.add(step_numbers)
    step = int(meta_trainer.step_counter.numpy())
    nonfinite_steps = (0 if step_numbers["meta_gradient_finite"]
                       else nonfinite_steps + 1)
    if nonfinite_steps >= config.max_nonfinite_steps:
      raise run_directory.RunError(
          f"{nonfinite_steps} consecutive meta-steps (up to {step}) had a "
          f"non-finite meta-gradient (config.max_nonfinite_steps="
          f"{config.max_nonfinite_steps}); stopping. "
          f"{_last_good(manager, workdir)}")
    validated = validator is not None and validator.due(step)
    if validated:
      result = validator.validate(step)
      clock.exclude(result.seconds)
      progress.add(result.scalars())
      if result.improved:
        _export_best(validator, workdir)
    if (step % config.log_every == 0 or step == config.num_meta_steps
        or step == 1 or validated):
      numbers = progress.log(step)
    if step % config.checkpoint_every == 0 or step == config.num_meta_steps:
      save(manager, meta_trainer, workdir, step)
      saved_step = step
      if on_checkpoint is not None:
        on_checkpoint(step, numbers)
  progress.close(step)
  if validator is not None and validator.best_step is not None:
    logging.info("Best validation score %.4g at meta-step %d; its rule is in %s",
                 validator.record.best_score, validator.best_step,
                 os.path.join(workdir, BEST_RULE_DIR))
  if stop.requested is not None:
    if step != saved_step:
      save(manager, meta_trainer, workdir, step)
    raise stop_signals.Stopped(stop.requested, step)
  return numbers


def _last_good(manager: tf.train.CheckpointManager, workdir: str) -> str:
  """Where the last finite eta is, for error messages."""
  if manager.latest_checkpoint is None:
    return "No checkpoint was written yet."
  return (f"The last good checkpoint is {manager.latest_checkpoint} and its rule "
          f"is in {os.path.join(workdir, RULE_DIR)}.")


def _needed_bytes(previous: Iterable[str], variables: Iterable[tf.Variable]) -> int:
  """What a new write will take: the previous one's size, or the variables'."""
  return run_directory.used_bytes(list(previous)) or sum(
      v.shape.num_elements() * v.dtype.size for v in variables)


def _export(meta_trainer: Trainer, workdir: str) -> None:
  """Exports the rule to DIR/rule; a full disk or a failed export raises RunError."""
  rule_dir = os.path.join(workdir, RULE_DIR)
  try:
    with run_directory.out_of_space_errors(
        rule_dir, _needed_bytes([rule_dir], meta_trainer.rule.variables)):
      export.export_rule(meta_trainer.rule, rule_dir)
  except export.ExportError as e:
    raise run_directory.RunError(
        f"Cannot export the rule to {rule_dir}: {e} The checkpoints are intact "
        f"and {rule_dir} is as it was; stopping.") from e


def _export_best(validator: Optional[validation_lib.Validator],
                 workdir: str) -> None:
  """Makes DIR/best_rule the validator's best eta, or removes it if there is
  none yet (a run without validation never has one)."""
  best_dir = os.path.join(workdir, BEST_RULE_DIR)
  if validator is None or validator.best_step is None:
    if os.path.exists(best_dir):
      logging.info("Removing %s, ahead of the run's state", best_dir)
      # Renamed aside first: best_rule/ disappears at once, never half-deleted.
      aside = tempfile.mkdtemp(prefix=f".{BEST_RULE_DIR}.old-", dir=workdir)
      os.rename(best_dir, os.path.join(aside, BEST_RULE_DIR))
      shutil.rmtree(aside)
    return
  with run_directory.out_of_space_errors(
      best_dir, _needed_bytes([best_dir], validator.best_rule.variables)):
    export.export_rule(validator.best_rule, best_dir)
  logging.info("Exported the best rule (validation score %.4g, meta-step %d) "
               "to %s", validator.record.best_score, validator.best_step,
               best_dir)


def save(manager: tf.train.CheckpointManager, meta_trainer: Trainer,
         workdir: str, step: int) -> None:
  """Checkpoints the whole state, then exports the rule (both atomically).

  Raises:
    run_directory.RunError: eta is not finite (nothing is written), or the
      disk is full (the previous checkpoint stays intact).
  """
  if not all(np.all(np.isfinite(v.numpy())) for v in meta_trainer.rule.variables):
    raise run_directory.RunError(
        f"eta is not finite at meta-step {step}: it is neither checkpointed nor "
        f"exported; stopping. {_last_good(manager, workdir)}")
  previous = glob.glob(f"{manager.latest_checkpoint}.*") if manager.latest_checkpoint else []
  with run_directory.out_of_space_errors(
      manager.directory, _needed_bytes(previous, meta_trainer.variables)):
    path = manager.save(checkpoint_number=step)
  _export(meta_trainer, workdir)
  logging.info("Saved %s and exported the rule to %s", path,
               os.path.join(workdir, RULE_DIR))
