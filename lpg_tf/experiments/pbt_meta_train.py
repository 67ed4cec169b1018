"""Population-based training of meta-learners on Ray Tune: the library side of
`launchers/pbt_meta_train.py`.

P members, each an ordinary meta-training run (`meta_train.meta_train`) with its
own eta and its own meta-hyperparameters (`SEARCH_SPACE`: the meta learning
rate, Eq. 4's beta1-beta3, K, the ES sigma; and the optimiser mode), run as
trials of Ray Tune's `PopulationBasedTraining` scheduler. Every `interval`
meta-steps a member validates its eta on held-out environment instances
(`lpg_tf.meta.validation`: that score is its fitness), checkpoints, and reports
the checkpoint to Tune. A member in the bottom quantile then continues from a
copy of a top member's checkpoint (`restore_member`: eta, every lifetime, the
meta-optimiser, the bandits and every RNG, exactly) with that member's
hyperparameters perturbed by `pbt.explore` (within the space's bounds; the
optimiser mode is copied, never perturbed, because the meta-optimiser's state
in the copied checkpoint is that mode's). A member's last report (at
`config.num_meta_steps`) ends it instead: nothing would be left to train.
Beta0 is per environment (Table 3's entropy costs), not one
meta-hyperparameter, so it is not searched.

Members share config.seed, so they start from one eta_0 and are ranked on the
same validation instances; they differ by their hyperparameters from the start
(member 0 has the config's, the others draw theirs from the space).

Work directory layout:
  DIR/pbt.json          the settings (config, members, interval, modes); a
                        rerun must match them
  DIR/members/<id>/     each member's run directory (meta_train's layout)
  DIR/lineage.jsonl     one JSON line per start, exploit (who copied whom, at
                        which meta-step, with which hyperparameters) and resume
  DIR/ray/pbt/          Ray Tune's experiment: each member's reported
                        checkpoints, and Tune's own PBT logs
  DIR/result.json       every member's final fitness and hyperparameters, and
                        the best member
  DIR/rule/             the best member's rule (SavedModel and rule.onnx)
  DIR/.lock             held while the population trains

Running the same command again continues an interrupted population from its
members' last reported checkpoints (Ray Tune's experiment restore). On a Ray
cluster, give `ray_address` and a DIR every node can read and write (README).
"""

import dataclasses
import json
import os
import random
import shutil
import tempfile
from typing import Any, Dict, Mapping, Optional, Sequence

from absl import logging
import ml_collections
import numpy as np
import ray
from ray import tune

from lpg_tf import errors
from lpg_tf.experiments import cli
from lpg_tf.experiments import meta_train
from lpg_tf.experiments import run_directory
from lpg_tf.meta import pbt

# What PBT searches: dotted config keys and their bounds (around configs/cpu.py's
# values and Table 2's).
SEARCH_SPACE: Mapping[str, pbt.Bounds] = {
    "meta.learning_rate": pbt.Bounds(1e-4, 1e-2, log=True),
    "meta.prediction_entropy_cost": pbt.Bounds(1e-4, 1e-2, log=True),  # beta1
    "meta.pi_hat_l2_cost": pbt.Bounds(1e-4, 1e-2, log=True),  # beta2
    "meta.y_hat_l2_cost": pbt.Bounds(1e-4, 1e-2, log=True),  # beta3
    "population.num_inner_updates": pbt.Bounds(1, 10, integer=True),  # K
    "meta.es.sigma": pbt.Bounds(1e-3, 1e-1, log=True),
}
MODE_KEY = "meta.optimiser"
MODES = ("gradient", "es", "hybrid")
FITNESS = "fitness"  # Tune's metric: the member's validation score.
TIME_ATTR = "meta_step"  # Tune's time: the member's meta-step.
QUANTILE_FRACTION = 0.25  # Ray Tune's default, as in the PBT paper.

SETTINGS_NAME = "pbt.json"
MEMBERS_DIR = "members"
LINEAGE_NAME = "lineage.jsonl"
RAY_DIR = "ray"
EXPERIMENT_NAME = "pbt"
RESULT_NAME = "result.json"
RULE_DIR = meta_train.RULE_DIR
MEMBER_RECORD = "member.json"  # In a reported checkpoint: who wrote it.
CHECKPOINTS_KEPT = 4  # Per member, in Ray's storage.
WORKER_NICENESS_VARIABLE = "RAY_worker_niceness"  # Read by a local Ray's raylet.


@dataclasses.dataclass(frozen=True)
class Settings:
  """One population's settings (what `pbt.json` holds).

  Attributes:
    config: the meta-training config every member starts from.
    members: P.
    interval: M, meta-steps between a member's reports (validation,
      checkpoint, exploit/explore decision).
    modes: the members' optimiser modes, round-robin; empty: the config's.
  """
  config: ml_collections.ConfigDict
  members: int
  interval: int
  modes: Sequence[str] = ()

  def to_json(self) -> Dict[str, Any]:
    return {"config": json.loads(self.config.to_json()), "members": self.members,
            "interval": self.interval, "modes": list(self.modes)}


def member_config(config: ml_collections.ConfigDict,
                  hyperparameters: Mapping[str, Any],
                  interval: int) -> ml_collections.ConfigDict:
  """A member's meta-training config: `config` with its hyperparameters, and
  validation and checkpoints every `interval` meta-steps (its reports)."""
  config = cli.with_values(config, hyperparameters)
  config.validation.every = interval
  config.checkpoint_every = interval
  config.log_every = min(config.log_every, interval)
  return config


def check(settings: Settings) -> Sequence[Dict[str, Any]]:
  """Checks everything before Ray starts; returns the members' first
  hyperparameters.

  Raises:
    errors.ConfigError: fewer than 2 members, a budget shorter than one
      interval or not a whole number of them, an unknown mode, a config value
      outside the search space, or a member config meta_train refuses.
  """
  config = settings.config
  meta_train.validate(config)
  config = meta_train.with_run_length(config)
  pbt.check_settings(settings.members, settings.interval, config.num_meta_steps)
  if config.num_meta_steps % settings.interval:
    raise errors.ConfigError(
        f"config.num_meta_steps ({config.num_meta_steps}) must be a multiple of "
        f"--interval ({settings.interval}), so that every member ends on a "
        "validated, compared meta-step")
  unknown = sorted(set(settings.modes) - set(MODES))
  if unknown:
    raise errors.ConfigError(f"Unknown optimiser modes {unknown}; valid: {MODES}")
  base = {key: cli.config_value(config, key) for key in SEARCH_SPACE}
  members = pbt.initial_hyperparameters(
      base, SEARCH_SPACE, settings.members, np.random.default_rng(config.seed),
      modes=settings.modes, mode_key=MODE_KEY)
  for hyperparameters in members:
    meta_train.validate(member_config(config, hyperparameters, settings.interval))
  return members


def _write_json(path: str, data: Any) -> None:
  """Writes `data` as JSON, atomically."""
  run_directory.write_atomically(path, json.dumps(data, indent=2, sort_keys=True))


def package_member(member_dir: str, destination: str,
                   record: Mapping[str, Any]) -> None:
  """Writes what a member reports to Tune into `destination`: its
  checkpoints, config and exported rule, and `record` (who, when, with what)."""
  for name in (run_directory.CHECKPOINT_DIR, RULE_DIR):
    shutil.copytree(os.path.join(member_dir, name),
                    os.path.join(destination, name))
  shutil.copy2(os.path.join(member_dir, meta_train.CONFIG_NAME), destination)
  _write_json(os.path.join(destination, MEMBER_RECORD), dict(record))


def restore_member(source: str, member_dir: str) -> Dict[str, Any]:
  """Makes `member_dir` continue from the member state packaged in `source`.

  The checkpoints and the config are replaced by the packaged ones (the run
  directory's lock is held meanwhile, so no trainer is using it); meta_train
  then resumes from the newest checkpoint, exactly where that member was.

  Returns:
    The packaged member's record (`package_member`).
  """
  os.makedirs(member_dir, exist_ok=True)
  with open(os.path.join(source, MEMBER_RECORD)) as f:
    record = json.load(f)
  with run_directory.RunLock(member_dir):
    checkpoints = os.path.join(member_dir, run_directory.CHECKPOINT_DIR)
    if os.path.exists(checkpoints):
      shutil.rmtree(checkpoints)
    shutil.copytree(os.path.join(source, run_directory.CHECKPOINT_DIR),
                    checkpoints)
    shutil.copy2(os.path.join(source, meta_train.CONFIG_NAME), member_dir)
  return record


def enter_member(member: str, member_dir: str, lineage: str,
                 hyperparameters: Mapping[str, Any],
                 source: Optional[str]) -> Dict[str, Any]:
  """Readies a member's run directory as its trial (re)starts and writes the
  lineage line that says why; returns that line.

  Args:
    member: the member's id.
    member_dir: its run directory.
    lineage: DIR/lineage.jsonl.
    hyperparameters: what it trains with from now on.
    source: the report Tune restarts it from (`package_member`'s layout), or
      None for a trial without one.

  A report of its own is a "resume" (Tune paused it, or a rerun continues the
  population), another member's an "exploit" (`restore_member` copies that
  state in). Without a report the member "start"s, unless its directory
  already holds a checkpoint (it crashed before its first report): then
  meta_train resumes from that checkpoint, and the line says "resume".
  """
  if source is None:
    saved = run_directory.checkpoint_numbers(
        os.path.join(member_dir, run_directory.CHECKPOINT_DIR))
    if saved:
      return pbt.append_lineage(lineage, "resume", member, saved[-1],
                                hyperparameters)
    return pbt.append_lineage(lineage, "start", member, 0, hyperparameters)
  donor = restore_member(source, member_dir)
  if donor["member"] == member:
    return pbt.append_lineage(lineage, "resume", member, donor["meta_step"],
                              hyperparameters)
  return pbt.append_lineage(lineage, "exploit", member, donor["meta_step"],
                            hyperparameters, donor=donor["member"],
                            donor_hyperparameters=donor["hyperparameters"],
                            donor_fitness=donor["fitness"])


def _run_member(tune_config: Dict[str, Any], settings: Settings,
                workdir: str) -> None:
  """One trial: a member's meta-training, reporting every interval."""
  member = tune.get_context().get_trial_id()
  hyperparameters = tune_config["hyperparameters"]
  member_dir = os.path.join(workdir, MEMBERS_DIR, member)
  lineage = os.path.join(workdir, LINEAGE_NAME)
  checkpoint = tune.get_checkpoint()
  if checkpoint is None:
    enter_member(member, member_dir, lineage, hyperparameters, None)
  else:
    with checkpoint.as_directory() as source:
      enter_member(member, member_dir, lineage, hyperparameters, source)

  def report(step: int, numbers: Mapping[str, float]) -> None:
    fitness = float(numbers["validation/score"])
    metrics = {TIME_ATTR: step, FITNESS: fitness,
               **{k: float(v) for k, v in numbers.items()
                  if k.startswith("validation/")}}
    with tempfile.TemporaryDirectory() as destination:
      package_member(member_dir, destination, {
          "member": member, "meta_step": step, "fitness": fitness,
          "hyperparameters": hyperparameters})
      tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(destination))

  config = member_config(settings.config, hyperparameters, settings.interval)
  meta_train.meta_train(config, member_dir, on_checkpoint=report,
                        resumable_fields=tuple(SEARCH_SPACE))


def scheduler(space: Mapping[str, pbt.Bounds], interval: int,
              seed: int) -> tune.schedulers.PopulationBasedTraining:
  """Ray Tune's PBT with the project's explore step (`pbt.explore`)."""
  rng = np.random.default_rng(seed)
  random.seed(seed)  # Tune picks the member to copy with `random`.

  def explore(config: Dict[str, Any]) -> Dict[str, Any]:
    return {**config, "hyperparameters": pbt.explore(
        config["hyperparameters"], space, rng)}

  return tune.schedulers.PopulationBasedTraining(
      time_attr=TIME_ATTR, perturbation_interval=interval,
      quantile_fraction=QUANTILE_FRACTION, custom_explore_fn=explore)


def _open(workdir: str, settings: Settings) -> None:
  """Creates DIR or checks that its population has these settings."""
  os.makedirs(os.path.join(workdir, MEMBERS_DIR), exist_ok=True)
  path = os.path.join(workdir, SETTINGS_NAME)
  saved = None
  if os.path.exists(path):
    with open(path) as f:
      saved = json.load(f)
  current = json.loads(json.dumps(settings.to_json()))
  if saved is not None and saved != current:
    raise errors.ConfigError(
        f"{workdir} holds a population trained with other settings (see "
        f"{path}); choose a new --workdir, or rerun with the same flags to "
        "continue it")
  _write_json(path, current)


def pbt_meta_train(settings: Settings, workdir: str,
                   ray_address: Optional[str] = None,
                   cpus_per_member: Optional[float] = None,
                   time_budget_s: Optional[float] = None) -> Dict[str, Any]:
  """Trains a population of meta-learners; returns DIR/result.json's data.

  Args:
    settings: the population (checked before Ray starts).
    workdir: DIR (module docstring).
    ray_address: a Ray cluster to join ("auto", or host:port); None starts a
      Ray instance on this machine.
    cpus_per_member: CPUs Tune reserves per member; None shares the cluster's
      CPUs among all members, so that every member runs at once (a paused
      member would have to compile its meta-step again).
    time_budget_s: stop every member after this many seconds of the
      population's wall-clock time (a new population only; each keeps its last
      report), e.g. to compare with single runs of the same budget. None:
      every member runs its config.num_meta_steps.

  Raises:
    errors.ConfigError: bad settings, before Ray starts or anything is written.
    run_directory.RunError: DIR is in use or unusable.
    RuntimeError: a member failed (its error is in Ray's trial logs).
  """
  members = check(settings)
  run_directory.check_location(workdir, must_exist=False)
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  with run_directory.RunLock(workdir):
    _open(workdir, settings)
    if ray_address is None:
      # Ray lowers its workers' priority (niceness 15) below the driver's; the
      # members are the work here, so they run at the launcher's own priority.
      os.environ.setdefault(WORKER_NICENESS_VARIABLE, "0")
    ray.init(address=ray_address, include_dashboard=False,
             ignore_reinit_error=True, configure_logging=False)
    try:
      if cpus_per_member is None:
        cpus_per_member = ray.cluster_resources()["CPU"] / settings.members
      results = _fit(settings, workdir, members, cpus_per_member,
                     time_budget_s)
    finally:
      ray.shutdown()
    return _finish(workdir, results)


def _fit(settings: Settings, workdir: str,
         members: Sequence[Mapping[str, Any]],
         cpus_per_member: float,
         time_budget_s: Optional[float]) -> tune.ResultGrid:
  """Runs (or continues) the Tune experiment to the end."""
  trainable = tune.with_resources(
      tune.with_parameters(_run_member, settings=settings, workdir=workdir),
      {"cpu": cpus_per_member})
  path = os.path.join(workdir, RAY_DIR, EXPERIMENT_NAME)
  if tune.Tuner.can_restore(path):
    logging.info("Continuing the population in %s", path)
    tuner = tune.Tuner.restore(path, trainable, resume_unfinished=True,
                               resume_errored=True)
  else:
    tuner = tune.Tuner(
        trainable,
        param_space={"hyperparameters": tune.grid_search(list(members))},
        tune_config=tune.TuneConfig(
            metric=FITNESS, mode="max",
            scheduler=scheduler(SEARCH_SPACE, settings.interval,
                                settings.config.seed),
            reuse_actors=False, time_budget_s=time_budget_s,
            trial_dirname_creator=lambda trial: trial.trial_id),
        run_config=tune.RunConfig(
            name=EXPERIMENT_NAME, storage_path=os.path.join(workdir, RAY_DIR),
            # A member's last report ends its trial before the scheduler sees
            # it: an exploit there would restart the member from a donor's
            # final checkpoint with no meta-step left to take.
            stop={TIME_ATTR: settings.config.num_meta_steps},
            checkpoint_config=tune.CheckpointConfig(
                num_to_keep=CHECKPOINTS_KEPT),
            verbose=1))
  results = tuner.fit()
  if results.errors:
    raise RuntimeError(
        f"{len(results.errors)} member(s) failed: {results.errors[0]!r} (the "
        f"trial logs are under {path}); rerun the same command to continue")
  return results


def _finish(workdir: str, results: tune.ResultGrid) -> Dict[str, Any]:
  """Writes result.json and exports the best member's rule to DIR/rule.

  A member's entry is its last report: fitness, meta-step and checkpoint. A
  member that copied another and was stopped (by the time budget) before
  reporting again still holds that copy: Tune gives it the donor's last
  report, so the entry names the donor (`holds_report_of`) and the member's
  own hyperparameters come from the lineage. A member stopped before any
  report has no fitness and no checkpoint: it is listed, but cannot be the
  best.
  """
  latest = {record["member"]: record["hyperparameters"] for record in
            pbt.read_lineage(os.path.join(workdir, LINEAGE_NAME))}
  members = []
  for result in results:
    member = os.path.basename(result.path)  # trial_dirname_creator: the id.
    reported = result.checkpoint is not None and FITNESS in result.metrics
    entry = {
        "member": member,
        "meta_step": result.metrics.get(TIME_ATTR) if reported else None,
        "fitness": result.metrics[FITNESS] if reported else None,
        "hyperparameters": latest.get(member,
                                      result.config["hyperparameters"]),
        "checkpoint": result.checkpoint.path if reported else None}
    reporter = result.metrics.get("trial_id", member)
    if reported and reporter != member:
      entry["holds_report_of"] = reporter
    members.append(entry)
  reported = [m for m in members if m["fitness"] is not None]
  if not reported:
    raise RuntimeError(
        "No member reached its first report (--interval meta-steps): there is "
        "no rule to export; give the population a longer budget")
  best = max(reported, key=lambda m: m["fitness"])
  summary = {"best": best["member"], "members": members}
  rule_dir = os.path.join(workdir, RULE_DIR)
  staging = tempfile.mkdtemp(prefix=f".{RULE_DIR}.new-", dir=workdir)
  shutil.copytree(os.path.join(best["checkpoint"], RULE_DIR),
                  os.path.join(staging, RULE_DIR))
  if os.path.exists(rule_dir):
    shutil.rmtree(rule_dir)
  os.rename(os.path.join(staging, RULE_DIR), rule_dir)
  os.rmdir(staging)
  _write_json(os.path.join(workdir, RESULT_NAME), summary)
  logging.info("Best member %s (fitness %.4g at meta-step %d); its rule is in %s",
               best["member"], best["fitness"], best["meta_step"], rule_dir)
  return summary
