"""The paper's analyses (Section 4.2-4.4, Figures 3-7) as one command: the
library side of `launchers/analyse.py`.

`analyse(figure, workdir, ...)` writes `figure_<N>.png` and `figure_<N>.json`
(the numbers behind the picture, and the settings that made them) into
`workdir`:

  3  learning curves on training environments: the rule, an LPG-V rule and
     A2C, each with its alpha tuned per environment on tuning seeds, then
     trained on test seeds (`compare.compare`, whose work directory
     `figure_3_comparison/` is kept and continued);
  4  y of a fixed near-optimal policy on a grid world task no rule was
     meta-trained on (`probe_grid`), updated by the rule alone, over the grid
     next to the true values (`y_probe`);
  5  value regression from y at discounts 0.995 ... 0.9 on held-out instances
     of that task, against the TD(lambda) value (`value_horizons`);
  6  convergence: D_KL between two randomly initialised y's updated by the
     rule, averaged over instances (`convergence`);
  7  meta-training curves of LPG and each ablation on one budget and seeds
     (`ablations`, run directories under `runs/`, continued when unfinished).

Every argument is checked before any work (errors.ConfigError).
"""

import json
import os
from typing import Any, Dict, Optional, Sequence

from absl import logging
import ml_collections
import numpy as np

from lpg_tf import errors
from lpg_tf.analysis import convergence
from lpg_tf.analysis import figures
from lpg_tf.analysis import meta_curves
from lpg_tf.analysis import probe_grid
from lpg_tf.analysis import value_horizons
from lpg_tf.analysis import y_probe
from lpg_tf.experiments import ablations
from lpg_tf.experiments import agent_runs
from lpg_tf.experiments import compare
from lpg_tf.experiments import probe_y
from lpg_tf.experiments import rule_tuning
from lpg_tf.experiments import run_directory
from lpg_tf.meta import lifetime_settings

FIGURES = (3, 4, 5, 6, 7)
DEFAULT_RULE = "pretrained"
DEFAULT_LPG_V_RULE = "pretrained:lpg_v_cpu"
# Figure 3's environments: the shipped rules' training population.
TRAINING_ENVS = ("tabular/dense", "tabular/sparse", "tabular/long_horizon",
                 "tabular/longer_horizon", "tabular/long_dense", "chain/short",
                 "chain/short_noisy", "chain/long", "chain/long_noisy",
                 "chain/distractor")
COMPARISON_DIR = "figure_3_comparison"


# Per-figure budget flags and their defaults (a flag left None takes these).
DEFAULTS: Dict[int, Dict[str, Any]] = {
    3: {"seeds": 5, "tuning_seeds": 2, "lifetime_scale": 0.1,
        "num_envs": compare.DEFAULT_NUM_ENVS},
    4: {"num_updates": 500, "num_envs": 16},
    5: {"instances": 40, "held_out_instances": 10, "num_updates": 400,
        "record_every": 40, "num_envs": 16},
    6: {"instances": 32, "num_updates": 400, "record_every": 20,
        "num_envs": 16},
    7: {"seeds": 2},
}


def output_paths(workdir: str, figure: int) -> tuple:
  """(figure_N.png, figure_N.json) in `workdir`."""
  stem = os.path.join(workdir, f"figure_{figure}")
  return stem + ".png", stem + ".json"


def _check(workdir: str, overwrite: bool, figure: int,
           budget: Dict[str, Any]) -> None:
  if not workdir:
    raise errors.ConfigError("--workdir is required")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise errors.ConfigError(
        f"--workdir {workdir!r} exists and is not a directory")
  existing = [p for p in output_paths(workdir, figure) if os.path.exists(p)]
  if existing and not overwrite:
    raise errors.ConfigError(
        f"{existing} already exist; pass --overwrite to replace them (the "
        "runs behind figures 3 and 7 are kept and continued either way)")
  for name, value in budget.items():
    if name == "lifetime_scale":
      if not value > 0:
        raise errors.ConfigError(f"--{name} must be > 0, got {value!r}")
    elif isinstance(value, (int, np.integer)) and value <= 0:
      raise errors.ConfigError(
          f"--{name} must be a positive integer, got {value!r}")


def _agent_alpha(rule: str, learning_rate: Optional[float],
                 kl_cost: Optional[float]) -> tuple:
  """The agent's (alpha_lr, alpha_y) on the probe task: given values, else
  the rule's own for probe_grid.REFERENCE_ENV, else Table 3's middle."""
  learning_rate, kl_cost = agent_runs.rule_hyperparameters(
      rule, probe_grid.REFERENCE_ENV, learning_rate, kl_cost)
  settings = lifetime_settings.for_env(probe_grid.REFERENCE_ENV)
  return (settings.default_learning_rate if learning_rate is None
          else learning_rate,
          settings.default_kl_cost if kl_cost is None else kl_cost)


def _write_json(path: str, figure: int, settings: Dict[str, Any],
                numbers: Any) -> str:
  """Writes figure_N.json atomically: never half a file beside a figure."""
  run_directory.write_atomically(path, json.dumps(
      {"figure": figure, "settings": settings,
       "numbers": y_probe.plain(numbers)}, indent=1, allow_nan=True) + "\n")
  return path


def _figure_3(workdir: str, rule: str, lpg_v_rule: str,
              env_names: Sequence[str], budget: Dict[str, Any], seed: int,
              jit_compile: bool) -> tuple:
  """Figure 3 through a rule comparison (module docstring)."""
  rules = [rule] + ([lpg_v_rule] if lpg_v_rule else []) + [
      rule_tuning.A2C_NAME]
  results = compare.compare(
      rules, env_names, os.path.join(workdir, COMPARISON_DIR),
      seeds=budget["seeds"], tuning_seeds=budget["tuning_seeds"],
      lifetime_scale=budget["lifetime_scale"], num_envs=budget["num_envs"],
      seed=seed, jit_compile=jit_compile)
  labels = {rule: f"LPG ({rule})", rule_tuning.A2C_NAME: "A2C"}
  if lpg_v_rule:
    labels[lpg_v_rule] = f"LPG-V ({lpg_v_rule})"
  per_env, random_returns, numbers = {}, {}, {}
  for env_name in env_names:
    record = results["envs"][env_name]
    random_returns[env_name] = record["random_return"]
    per_env[env_name] = {
        labels[name]: (np.asarray(r["curve"]["env_steps"]),
                       np.asarray(r["curve"]["returns"], np.float64))
        for name, r in record["rules"].items()}
    numbers[env_name] = {
        "random_return": record["random_return"],
        "rules": {labels[name]: {k: r[k] for k in (
            "chosen", "mean", "stderr", "final_returns", "curve")}
                  for name, r in record["rules"].items()}}
  return per_env, random_returns, numbers


def analyse(figure: int, workdir: str, *, rule: str = DEFAULT_RULE,
            lpg_v_rule: str = DEFAULT_LPG_V_RULE,
            envs: Sequence[str] = TRAINING_ENVS,
            config: Optional[ml_collections.ConfigDict] = None,
            variants: Sequence[str] = ("all",),
            action_space: Optional[str] = None,
            learning_rate: Optional[float] = None,
            kl_cost: Optional[float] = None, seed: int = 0,
            overwrite: bool = False, jit_compile: bool = True,
            **budget_flags: Optional[float]) -> str:
  """Draws Figure `figure` into `workdir`; returns the JSON's path.

  Args:
    figure: 3, 4, 5, 6 or 7 (module docstring).
    workdir: output directory (created if missing).
    rule: the rule analysed (figures 3-6): an exported rule's directory or a
      shipped one (`pretrained[:NAME]`); figures 4-6 need an LPG rule with a
      softmax y.
    lpg_v_rule: figure 3's LPG-V rule ("" leaves it out).
    envs: figure 3's environments.
    config: figure 7's base meta-training config (e.g. configs/cpu.py).
    variants: figure 7's variants ("all" or names of ablations.VARIANTS).
    action_space: the probe task's action space (figures 4-6).
    learning_rate, kl_cost: the agent's alpha on the probe task (figures
      4-6); default the rule's own for probe_grid.REFERENCE_ENV.
    seed: seed of instances, initial y, episodes and actions (figures 3-6;
      figure 3's comparison seed).
    overwrite: replace figure_N.png/json already in `workdir`.
    jit_compile: compile the updates with XLA.
    **budget_flags: seeds, tuning_seeds, lifetime_scale, num_envs, instances,
      held_out_instances, num_updates, record_every: None for the figure's
      default (DEFAULTS).

  Raises:
    errors.ConfigError: any bad argument, before any work.
  """
  if figure not in FIGURES:
    raise errors.ConfigError(
        f"--figure must be one of {', '.join(map(str, FIGURES))}, got "
        f"{figure!r}")
  budget = dict(DEFAULTS[figure])
  given = {k: v for k, v in budget_flags.items() if v is not None}
  foreign = sorted(set(given) - set(budget))
  if foreign:
    raise errors.ConfigError(
        f"--{', --'.join(foreign)} do(es) not apply to figure {figure}; its "
        f"settings are {', '.join('--' + k for k in budget)}")
  budget.update(given)
  if figure in (3, 7) and any(v is not None for v in (
      action_space, learning_rate, kl_cost)):
    raise errors.ConfigError(
        "--action_space, --learning_rate and --kl_cost set the probe task of "
        f"figures 4-6; figure {figure} does not use them")
  _check(workdir, overwrite, figure, budget)
  png, json_path = output_paths(workdir, figure)
  settings = {"rule": rule, "seed": seed, **budget}
  if figure == 3:
    env_names = compare.resolve_envs(envs)
    settings.update(lpg_v_rule=lpg_v_rule, envs=env_names)
    per_env, random_returns, numbers = _figure_3(
        workdir, rule, lpg_v_rule, env_names, budget, seed, jit_compile)
    os.makedirs(workdir, exist_ok=True)
    figures.training_curves(per_env, random_returns, png, (
        f"Figure 3: training environments, {budget['seeds']} test seeds, "
        f"alpha tuned per rule on {budget['tuning_seeds']} tuning seed(s); "
        "mean +- standard error"))
  elif figure == 7:
    if config is None:
      raise errors.ConfigError("Figure 7 needs a meta-training --config")
    names = ablations.resolve_variants(variants)
    settings = {"config": config.to_dict(), "variants": names, **budget}
    directories = ablations.run_variants(config, workdir, names,
                                         budget["seeds"])
    runs = {ablations.VARIANTS[n].label: [
        meta_curves.meta_curves(meta_curves.read_scalars(
            os.path.join(d, "tb"))) for d in dirs]
            for n, dirs in directories.items()}
    os.makedirs(workdir, exist_ok=True)
    figures.ablations(runs, png, (
        f"Figure 7: {config.num_meta_steps} meta-steps of config "
        f"{config.name!r} per variant, {budget['seeds']} seed(s)"))
    numbers = {label: [meta_curves.to_json(c) for c in seeds]
               for label, seeds in runs.items()}
  else:
    numbers = _probe_figure(figure, png, rule, budget, action_space,
                            learning_rate, kl_cost, seed, jit_compile,
                            settings, workdir)
  _write_json(json_path, figure, settings, numbers)
  logging.info("Figure %d: %s and %s", figure, png, json_path)
  return json_path


def _probe_figure(figure: int, png: str, rule_name: str,
                  budget: Dict[str, Any], action_space: Optional[str],
                  learning_rate: Optional[float], kl_cost: Optional[float],
                  seed: int, jit_compile: bool, settings: Dict[str, Any],
                  workdir: str) -> Any:
  """Figures 4-6: the rule's y on the probe task."""
  env = probe_grid.make(action_space)
  rule, untrained = probe_y.load_rules(rule_name, seed)
  learning_rate, kl_cost = _agent_alpha(rule_name, learning_rate, kl_cost)
  settings.update(env=env.spec.name, action_space=env.spec.action_space,
                  learning_rate=learning_rate, kl_cost=kl_cost)
  common = dict(learning_rate=learning_rate, kl_cost=kl_cost,
                num_envs=budget["num_envs"], seed=seed,
                jit_compile=jit_compile)
  if figure == 4:
    instance = probe_grid.instances(env, 1, seed)[0]
    probe = y_probe.probe(
        rule, untrained, env, instance, value_horizons.GAMMA,
        budget["num_updates"],
        value_learning_rate=value_horizons.TD_LEARNING_RATE, **common)
    os.makedirs(workdir, exist_ok=True)
    figures.prediction_maps(probe, png)
    return probe.result
  num_instances = budget["instances"]
  if figure == 5:
    drawn = probe_grid.instances(
        env, num_instances + budget["held_out_instances"], seed)
    result = value_horizons.value_horizons(
        rule, env, drawn[:num_instances], drawn[num_instances:],
        budget["num_updates"], budget["record_every"], **common)
    os.makedirs(workdir, exist_ok=True)
    figures.value_regression(result, png)
    return result
  result, example = convergence.convergence(
      rule, untrained, env, probe_grid.instances(env, num_instances, seed),
      budget["num_updates"], budget["record_every"], **common)
  os.makedirs(workdir, exist_ok=True)
  figures.prediction_convergence(result, example, png)
  return result
