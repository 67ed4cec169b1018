"""Meta-train an LPG rule: the library side of `launchers/tpu_meta_train.py`.

Work directory layout:
  DIR/config.json     the run's config (a resume must match it)
  DIR/checkpoints/    tf.train.Checkpoint of the whole training state
  DIR/rule/           the exported rule (SavedModel, `serving_default`)
  DIR/tb/             TensorBoard summaries

Every bad input (unknown environment, malformed values, a resume of a run with
another config, a wrong SavedModel for `init_rule`) raises `errors.ConfigError`
before any training work.
"""

import fnmatch
import json
import os
import time
from typing import Any, Dict, Mapping, Optional, Tuple

from absl import logging
import ml_collections
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import export
from lpg_tf import loggers
from lpg_tf.distributed import strategy as strategy_lib
from lpg_tf.meta import meta_objective
from lpg_tf.meta import population as population_lib
from lpg_tf.meta import run_length
from lpg_tf.meta import trainer as trainer_lib
from lpg_tf.rules import lpg
from lpg_tf.rules import saved_model

CONFIG_NAME = "config.json"
CHECKPOINT_DIR = "checkpoints"
RULE_DIR = "rule"
TB_DIR = "tb"
# Config fields a resumed run may change: they set only run length, checkpoint
# period or logging.
RESUMABLE_FIELDS = ("num_meta_steps", "total_env_steps", "checkpoint_every",
                    "log_every")
CHECKPOINTS_TO_KEEP = 3


def _positive_int(config: ml_collections.ConfigDict, name: str) -> None:
  value = config[name]
  if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
    raise errors.ConfigError(f"config.{name} must be a positive integer, got {value!r}")


def population_spec(config: ml_collections.ConfigDict) -> population_lib.PopulationSpec:
  p, m = config.population, config.meta
  spec = population_lib.PopulationSpec(
      env_names=tuple(p.envs), lifetimes_per_env=p.lifetimes_per_env,
      num_envs=p.num_envs, unroll_length=p.unroll_length,
      num_inner_updates=p.num_inner_updates, prediction_size=p.prediction_size,
      lifetime_scale=p.lifetime_scale,
      entropy_reset_threshold=m.entropy_reset_threshold,
      bandit_temperature=m.bandit_temperature,
      bandit_exploration_bonus=m.bandit_exploration_bonus,
      bandit_window=m.bandit_window)
  population_lib.validate_population(spec)
  return spec


def meta_spec(config: ml_collections.ConfigDict) -> trainer_lib.MetaSpec:
  m = config.meta
  if not m.learning_rate > 0:
    raise errors.ConfigError(f"config.meta.learning_rate must be positive, got {m.learning_rate}")
  if not (m.get("max_grad_norm") or 0.0) >= 0:
    raise errors.ConfigError(
        f"config.meta.max_grad_norm must be >= 0 (0 = off), got {m.max_grad_norm}")
  return trainer_lib.MetaSpec(
      learning_rate=m.learning_rate,
      costs=meta_objective.MetaObjectiveCosts(
          prediction_entropy=m.prediction_entropy_cost,
          pi_hat_l2=m.pi_hat_l2_cost, y_hat_l2=m.y_hat_l2_cost,
          advantage_lambda=m.advantage_lambda),
      critic_learning_rate=m.critic_learning_rate,
      max_grad_norm=m.get("max_grad_norm"))


def build_rule(config: ml_collections.ConfigDict) -> lpg.LPG:
  r = config.rule
  if r.hidden_size <= 0 or not r.embedding_sizes or min(r.embedding_sizes) <= 0:
    raise errors.ConfigError(f"config.rule has invalid sizes: {r}")
  return lpg.LPG(hidden_size=r.hidden_size,
                 prediction_size=config.population.prediction_size,
                 embedding_sizes=tuple(r.embedding_sizes),
                 use_baseline=r.use_baseline)


def validate(config: ml_collections.ConfigDict) -> None:
  """Checks every config value before any work."""
  for name in ("checkpoint_every", "log_every", "seed"):
    if name == "seed":
      if not isinstance(config.seed, int) or config.seed < 0:
        raise errors.ConfigError(f"config.seed must be a non-negative integer, got {config.seed!r}")
    else:
      _positive_int(config, name)
  if config.strategy not in strategy_lib.KINDS:
    raise errors.ConfigError(
        f"config.strategy {config.strategy!r} unknown; valid: {strategy_lib.KINDS}")
  run_length.num_meta_steps(population_spec(config), config.num_meta_steps,
                            config.get("total_env_steps"))
  meta_spec(config)
  build_rule(config)


def with_run_length(config: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A copy of `config` whose num_meta_steps is set: as given, or derived from
  total_env_steps (lpg_tf.meta.run_length); logs the run's length."""
  spec = population_spec(config)
  steps = run_length.num_meta_steps(spec, config.num_meta_steps,
                                    config.get("total_env_steps"))
  resolved = config.copy_and_resolve_references()
  resolved.num_meta_steps = steps
  per_step = run_length.env_steps_per_meta_step(spec)
  logging.info("Run length: %d meta-steps x %d environment steps = %.3g "
               "environment steps (budget: %s)", steps, per_step,
               steps * per_step, config.get("total_env_steps"))
  unfinished = run_length.unfinished_lifetimes(spec, steps)
  if unfinished:
    logging.warning("Lifetimes of %s are longer than the run: only their "
                    "staggered first lifetimes end", ", ".join(unfinished))
  return resolved


def _comparable(config_dict: Dict[str, Any]) -> Dict[str, Any]:
  return {k: v for k, v in config_dict.items() if k not in RESUMABLE_FIELDS}


def _config_json(config: ml_collections.ConfigDict) -> Dict[str, Any]:
  return json.loads(config.to_json())


def prepare_workdir(workdir: str, config: ml_collections.ConfigDict,
                    resume: bool) -> None:
  """Creates or checks the work directory; refuses to mix runs."""
  if not workdir:
    raise errors.ConfigError("--workdir is required")
  config_path = os.path.join(workdir, CONFIG_NAME)
  checkpoints = os.path.join(workdir, CHECKPOINT_DIR)
  has_run = os.path.exists(config_path) or (
      os.path.isdir(checkpoints) and os.listdir(checkpoints))
  if resume:
    if not tf.train.latest_checkpoint(checkpoints):
      raise errors.ConfigError(
          f"--resume: no checkpoint under {checkpoints}; start without --resume")
    with open(config_path) as f:
      saved = json.load(f)
    current = _config_json(config)
    differing = sorted(k for k in set(_comparable(saved)) | set(_comparable(current))
                       if saved.get(k) != current.get(k))
    if differing:
      details = "; ".join(f"{k}: saved {saved.get(k)!r}, now {current.get(k)!r}"
                          for k in differing)
      raise errors.ConfigError(
          f"--resume: {workdir} was written by another config ({details}). Only "
          f"{', '.join(RESUMABLE_FIELDS)} may change on resume")
    return
  if has_run:
    raise errors.ConfigError(
        f"--workdir {workdir} already holds a run; pass --resume to continue it "
        "or choose a new directory")
  os.makedirs(workdir, exist_ok=True)
  with open(config_path, "w") as f:
    json.dump(_config_json(config), f, indent=2, sort_keys=True)


# Numbers that count events: a logging point reports their sum over its window;
# every other number is averaged over the window's meta-steps.
_SUMMED = ("ended_lifetimes", "*/diverged_lifetimes", "*/excluded_lifetimes")
# What the console shows; everything goes to TensorBoard.
CONSOLE_KEYS = ("meta_loss", "*/episode_return", "prediction_entropy",
                "ended_lifetimes")


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
  CONSOLE_KEYS). `close` logs an end-of-run summary.
  """

  def __init__(self, logger: loggers.Logger, trainer: trainer_lib.MetaTrainer):
    self._logger = logger
    self._trainer = trainer
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
    entropies = [v for k, v in window.items()
                 if k.endswith("/prediction_entropy")]
    if entropies:
      window["prediction_entropy"] = float(np.mean(entropies))
    return window

  def _bandit_scalars(self) -> Dict[str, float]:
    scalars = {}
    for name, bandit in self._trainer.population.bandits.bandits.items():
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
    now = time.monotonic()
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
      rate = (f" ({(step - self._run_start[0]) / (time.monotonic() - self._run_start[1]):.3g}"
              " meta-steps/s after the first logging point)")
    logging.info(
        "Meta-training done at meta-step %d%s: %d lifetimes ended in this "
        "process; last window: meta-loss %.4g, returns %s, H(y) %.3g", step,
        rate, self._ended_total, self._last.get("meta_loss", float("nan")),
        returns or "none", self._last.get("prediction_entropy", float("nan")))
    self._logger.close()


def meta_train(config: ml_collections.ConfigDict, workdir: str,
               resume: bool = False,
               init_rule: Optional[str] = None) -> Dict[str, float]:
  """Runs (or resumes) meta-training up to `config.num_meta_steps` meta-steps.

  Args:
    config: a config like configs/cpu.py.
    workdir: the run's directory (see module docstring).
    resume: continue the run in `workdir` from its latest checkpoint.
    init_rule: an exported rule (SavedModel directory) to start eta from.

  Returns:
    The last logged numbers (see `Progress`).
  """
  validate(config)
  config = with_run_length(config)
  if resume and init_rule:
    raise errors.ConfigError("--init_rule starts a new run; it cannot be combined "
                             "with --resume")
  if init_rule:
    saved_model.read_metadata(init_rule)
  prepare_workdir(workdir, config, resume)
  strategy = strategy_lib.resolve(config.strategy)
  # eta_0 comes from Sonnet's initialisers (stateful ops): the global seed makes
  # it a function of config.seed. Everything else draws from stateless seeds.
  tf.random.set_seed(config.seed)
  rule = build_rule(config)
  with strategy.scope():
    meta_trainer = trainer_lib.MetaTrainer(
        rule, population_spec(config), meta_spec(config), seed=config.seed,
        strategy=strategy, jit_compile=config.jit_compile)
  if init_rule:
    export.load_rule_into(rule, init_rule)
    logging.info("Initialised eta from %s", init_rule)
  checkpoint = tf.train.Checkpoint(**meta_trainer.checkpoint_items())
  manager = tf.train.CheckpointManager(
      checkpoint, os.path.join(workdir, CHECKPOINT_DIR),
      max_to_keep=CHECKPOINTS_TO_KEEP)
  if resume:
    checkpoint.restore(manager.latest_checkpoint).assert_existing_objects_matched()
    logging.info("Resumed from %s at meta-step %d", manager.latest_checkpoint,
                 int(meta_trainer.step_counter.numpy()))
  progress = Progress(loggers.Dispatcher([
      loggers.TensorBoardLogger(os.path.join(workdir, TB_DIR)),
      loggers.ConsoleLogger("meta-step", total=config.num_meta_steps,
                            unit="meta-steps", keys=CONSOLE_KEYS)]),
      meta_trainer)
  numbers: Dict[str, float] = {}
  step = int(meta_trainer.step_counter.numpy())
  while step < config.num_meta_steps:
    progress.add(meta_trainer.step())
    step = int(meta_trainer.step_counter.numpy())
    if step % config.log_every == 0 or step == config.num_meta_steps or step == 1:
      numbers = progress.log(step)
    if step % config.checkpoint_every == 0 or step == config.num_meta_steps:
      save(manager, meta_trainer, workdir, step)
  progress.close(step)
  return numbers


def save(manager: tf.train.CheckpointManager, meta_trainer: trainer_lib.MetaTrainer,
         workdir: str, step: int) -> None:
  """Checkpoints the whole state, then exports the rule (both atomically)."""
  path = manager.save(checkpoint_number=step)
  export.export_rule(meta_trainer.rule, os.path.join(workdir, RULE_DIR))
  logging.info("Saved %s and exported the rule to %s", path,
               os.path.join(workdir, RULE_DIR))
