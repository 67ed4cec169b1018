"""Meta-train an LPG rule: the library side of `launchers/tpu_meta_train.py`.

Work directory layout:
  DIR/config.json     the run's config (a continued run must match it)
  DIR/checkpoints/    tf.train.Checkpoint of the whole training state
  DIR/rule/           the exported rule (SavedModel, `serving_default`), always
                      the newest checkpoint's eta once a run starts or stops
  DIR/tb/             TensorBoard summaries
  DIR/.lock           held by the running trainer (its pid inside)

A run directory is always either startable or resumable (run_directory.py):
running the same command again continues the run from its newest intact
checkpoint (or from step 0 if it was stopped before its first checkpoint);
`--resume` says the same and refuses a directory without a run. A directory
holding another config is refused; only RESUMABLE_FIELDS may change. A run that
is already complete says so and how to extend it.

Every bad input (unknown environment, unknown config key, out-of-range values,
a resume of a run with another config, a wrong SavedModel for `init_rule`)
raises `errors.ConfigError` before anything is written. While it runs:

  * SIGTERM or Ctrl-C stops the run after the current meta-step: it checkpoints,
    exports the rule and raises `stop_signals.Stopped`;
  * eta is never saved while non-finite, and `config.max_nonfinite_steps`
    consecutive non-finite meta-gradients stop the run; both raise
    `run_directory.RunError` naming the last good checkpoint;
  * a full disk raises `run_directory.RunError` (which path, how much space);
    the previous checkpoint stays intact.
"""

import glob
import json
import os
import time
from typing import Any, Dict, Iterable, Optional

from absl import logging
import ml_collections
import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import export
from lpg_tf.distributed import strategy as strategy_lib
from lpg_tf.experiments import config_validation
from lpg_tf.experiments import run_directory
from lpg_tf.experiments import stop_signals
from lpg_tf.meta import meta_objective
from lpg_tf.meta import trainer as trainer_lib
from lpg_tf.rules import lpg

CONFIG_NAME = run_directory.CONFIG_NAME
CHECKPOINT_DIR = run_directory.CHECKPOINT_DIR
RULE_DIR = run_directory.RULE_DIR
TB_DIR = "tb"
# Config fields a resumed run may change: they set only run length, checkpoint
# period, logging or when to give up on non-finite meta-gradients.
RESUMABLE_FIELDS = ("num_meta_steps", "checkpoint_every", "log_every",
                    "max_nonfinite_steps")
CHECKPOINTS_TO_KEEP = 3


def population_spec(config: ml_collections.ConfigDict) -> trainer_lib.PopulationSpec:
  p = config.population
  spec = trainer_lib.PopulationSpec(
      env_names=tuple(p.envs), lifetimes_per_env=p.lifetimes_per_env,
      num_envs=p.num_envs, unroll_length=p.unroll_length,
      num_inner_updates=p.num_inner_updates, prediction_size=p.prediction_size,
      lifetime_scale=p.lifetime_scale)
  trainer_lib.validate_population(spec)
  return spec


def meta_spec(config: ml_collections.ConfigDict) -> trainer_lib.MetaSpec:
  m = config.meta
  if not m.learning_rate > 0:
    raise errors.ConfigError(f"config.meta.learning_rate must be positive, got {m.learning_rate}")
  return trainer_lib.MetaSpec(
      learning_rate=m.learning_rate,
      costs=meta_objective.MetaObjectiveCosts(
          prediction_entropy=m.prediction_entropy_cost,
          pi_hat_l2=m.pi_hat_l2_cost, y_hat_l2=m.y_hat_l2_cost,
          advantage_lambda=m.advantage_lambda),
      bandit_temperature=m.bandit_temperature,
      bandit_exploration_bonus=m.bandit_exploration_bonus,
      bandit_window=m.bandit_window,
      entropy_reset_threshold=m.entropy_reset_threshold,
      critic_learning_rate=m.critic_learning_rate)


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
  config_validation.check(config)
  if config.strategy not in strategy_lib.KINDS:
    raise errors.ConfigError(
        f"config.strategy {config.strategy!r} unknown; valid: {strategy_lib.KINDS}")
  population_spec(config)
  meta_spec(config)
  build_rule(config)


def _config_json(config: ml_collections.ConfigDict) -> Dict[str, Any]:
  return json.loads(config.to_json())


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
      for name, bandit in self._trainer.bandits.bandits.items():
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
    for name, bandit in self._trainer.bandits.bandits.items():
      lr, kl = bandit.arm_values(bandit.most_probable_arm())
      logging.info("  bandit %s: most probable alpha_lr=%g alpha_y=%g (counts %s)",
                   name, lr, kl, bandit.counts.tolist())
    return numbers

  def flush(self) -> None:
    self._writer.flush()


def meta_train(config: ml_collections.ConfigDict, workdir: str,
               resume: bool = False,
               init_rule: Optional[str] = None) -> Dict[str, float]:
  """Runs (or continues) meta-training up to `config.num_meta_steps` meta-steps.

  Args:
    config: a config like configs/cpu.py.
    workdir: the run's directory (see module docstring).
    resume: continue the run in `workdir`; an error if it holds none. Without
      it, a run with the same config in `workdir` is continued all the same.
    init_rule: an exported rule (SavedModel directory) to start eta from.

  Returns:
    The last logged numbers (empty if the run was already complete).

  Raises:
    errors.ConfigError: bad input, before anything is written.
    run_directory.RunError: the directory is in use or unusable, the disk is
      full, or eta diverged.
    stop_signals.Stopped: SIGTERM or SIGINT stopped the run (after saving).
  """
  validate(config)
  if resume and init_rule:
    raise errors.ConfigError("--init_rule starts a new run; it cannot be combined "
                             "with --resume")
  if init_rule:
    export.read_metadata(init_rule)
  with stop_signals.StopRequests() as stop:
    lock, start_from = run_directory.open_run(
        workdir, _config_json(config), RESUMABLE_FIELDS, resume, init_rule)
    with lock:
      return _run(config, workdir, start_from, init_rule, stop)


def _run(config: ml_collections.ConfigDict, workdir: str,
         start_from: Optional[str], init_rule: Optional[str],
         stop: stop_signals.StopRequests) -> Dict[str, float]:
  """meta_train's loop, in a locked run directory."""
  strategy = strategy_lib.resolve(config.strategy)
  # eta_0 comes from Sonnet's initialisers (stateful ops): the global seed makes
  # it a function of config.seed. Everything else draws from stateless seeds.
  tf.random.set_seed(config.seed)
  rule = build_rule(config)
  with strategy.scope():
    meta_trainer = trainer_lib.MetaTrainer(
        rule, population_spec(config), meta_spec(config), seed=config.seed,
        strategy=strategy, jit_compile=config.jit_compile)
  checkpoint = tf.train.Checkpoint(**meta_trainer.checkpoint_items())
  manager = tf.train.CheckpointManager(
      checkpoint, os.path.join(workdir, CHECKPOINT_DIR),
      max_to_keep=CHECKPOINTS_TO_KEEP,
      checkpoint_name=run_directory.CHECKPOINT_PREFIX)
  if start_from is None:
    if init_rule:
      export.load_rule_into(rule, init_rule)
      logging.info("Initialised eta from %s", init_rule)
  else:
    status = checkpoint.restore(start_from)
    status.assert_existing_objects_matched()
    step = int(meta_trainer.step_counter.numpy())
    logging.info("Resumed from %s at meta-step %d", start_from, step)
    # A kill during the last export may have left rule/ behind the checkpoint.
    _export(meta_trainer, workdir)
    if step >= config.num_meta_steps:
      status.expect_partial()  # The optimiser's slots are never built: no step.
      logging.info(
          "The run in %s is complete at meta-step %d (config.num_meta_steps="
          "%d); its rule is in %s. To extend it, run the same command with "
          "--config.num_meta_steps=<more than %d>", workdir, step,
          config.num_meta_steps, os.path.join(workdir, RULE_DIR), step)
      return {}
  progress = _Progress(workdir, meta_trainer, config.num_meta_steps)
  numbers: Dict[str, float] = {}
  step = saved_step = int(meta_trainer.step_counter.numpy())
  nonfinite_steps = 0
  while step < config.num_meta_steps and stop.requested is None:
    numbers = meta_trainer.step()
    step = int(meta_trainer.step_counter.numpy())
    nonfinite_steps = 0 if numbers["meta_gradient_finite"] else nonfinite_steps + 1
    if nonfinite_steps >= config.max_nonfinite_steps:
      raise run_directory.RunError(
          f"{nonfinite_steps} consecutive meta-steps (up to {step}) had a "
          f"non-finite meta-gradient (config.max_nonfinite_steps="
          f"{config.max_nonfinite_steps}); stopping. "
          f"{_last_good(manager, workdir)}")
    if step % config.log_every == 0 or step == config.num_meta_steps or step == 1:
      numbers = progress.log(step, numbers)
    if step % config.checkpoint_every == 0 or step == config.num_meta_steps:
      save(manager, meta_trainer, workdir, step)
      saved_step = step
  progress.flush()
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


def _export(meta_trainer: trainer_lib.MetaTrainer, workdir: str) -> None:
  """Exports the rule to DIR/rule; a full disk raises RunError."""
  rule_dir = os.path.join(workdir, RULE_DIR)
  with run_directory.out_of_space_errors(
      rule_dir, _needed_bytes([rule_dir], meta_trainer.rule.variables)):
    export.export_rule(meta_trainer.rule, rule_dir)


def save(manager: tf.train.CheckpointManager, meta_trainer: trainer_lib.MetaTrainer,
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
