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

import json
import os
import time
from typing import Any, Dict, Optional

from absl import logging
import ml_collections
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import export
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


class _Progress:
  """Console and TensorBoard logging of a run."""

  def __init__(self, workdir: str, trainer: trainer_lib.MetaTrainer,
               total_steps: int):
    self._writer = tf.summary.create_file_writer(os.path.join(workdir, TB_DIR))
    self._trainer = trainer
    self._total = total_steps
    self._last_time = None
    self._last_step = None

  def log(self, step: int, numbers: Dict[str, float]) -> Dict[str, float]:
    now = time.time()
    if self._last_time is not None and step > self._last_step:
      rate = (step - self._last_step) / (now - self._last_time)
      numbers["meta_steps_per_s"] = rate
      numbers["inner_env_steps_per_s"] = rate * self._trainer.inner_env_steps_per_step
      numbers["scoring_env_steps_per_s"] = (
          rate * self._trainer.scoring_env_steps_per_step)
    self._last_time, self._last_step = now, step
    with self._writer.as_default(step=step):
      for key, value in numbers.items():
        if np.isfinite(value):
          tf.summary.scalar(key, value)
      for name, bandit in self._trainer.population.bandits.bandits.items():
        tf.summary.histogram(f"bandit/{name}/probabilities", bandit.probabilities())
    returns = {k.split("/episode_return")[0]: v for k, v in numbers.items()
               if k.endswith("/episode_return")}
    rate = numbers.get("meta_steps_per_s")
    eta = f"{(self._total - step) / rate:.0f}s" if rate else "?"
    logging.info(
        "meta-step %d/%d | %s | meta-loss %.4f | %s env steps/s | left ~%s | returns %s",
        step, self._total, f"{rate:.2f} steps/s" if rate else "warming up",
        numbers["meta_loss"],
        f"{numbers['inner_env_steps_per_s']:.0f}" if rate else "?", eta,
        ", ".join(f"{k} {v:.2f}" for k, v in sorted(returns.items())))
    for name, bandit in self._trainer.population.bandits.bandits.items():
      lr, kl = bandit.arm_values(bandit.most_probable_arm())
      logging.info("  bandit %s: most probable alpha_lr=%g alpha_y=%g (counts %s)",
                   name, lr, kl, bandit.counts.tolist())
    return numbers

  def flush(self) -> None:
    self._writer.flush()


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
    The last logged numbers.
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
  progress = _Progress(workdir, meta_trainer, config.num_meta_steps)
  numbers: Dict[str, float] = {}
  step = int(meta_trainer.step_counter.numpy())
  while step < config.num_meta_steps:
    numbers = meta_trainer.step()
    step = int(meta_trainer.step_counter.numpy())
    if step % config.log_every == 0 or step == config.num_meta_steps or step == 1:
      numbers = progress.log(step, numbers)
    if step % config.checkpoint_every == 0 or step == config.num_meta_steps:
      save(manager, meta_trainer, workdir, step)
  progress.flush()
  return numbers


def save(manager: tf.train.CheckpointManager, meta_trainer: trainer_lib.MetaTrainer,
         workdir: str, step: int) -> None:
  """Checkpoints the whole state, then exports the rule (both atomically)."""
  path = manager.save(checkpoint_number=step)
  export.export_rule(meta_trainer.rule, os.path.join(workdir, RULE_DIR))
  logging.info("Saved %s and exported the rule to %s", path,
               os.path.join(workdir, RULE_DIR))
