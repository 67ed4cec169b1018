"""A fair, tuned, held-out comparison of update rules: `launchers/compare.py`.

For every environment (the 15 of Appendix A and the five MinAtar games) and
every rule (A2C, LPG rules: exported directories, the shipped one), on the same
budget of environment steps per seed:

  1. tuning: the rule's alpha is chosen from its grid by the mean final return
     over the tuning seeds, every grid point x tuning seed trained as one
     batched `Evaluator` run (`rule_tuning`: grids, seeds);
  2. test: the chosen alpha trains fresh agents on the test seeds; the
     uniformly random policy is measured on the same instances.

Tuning and test seeds are held out from meta-training and from each other, and
the same for every rule (`rule_tuning`'s docstring has the key scheme). Grid
worlds use the MOVE action space (9 actions); gamma is GAMMA everywhere.
Budget: an Appendix A environment gets `lifetime_scale` x its Table 3
lifetime (`lifetime_settings`), capped at `max_steps`; a MinAtar game
`minatar_steps`; rounded up to whole updates of T x B.

Work directory:
  DIR/results.json     the settings, and per environment: steps, the random
                       policy's return, per rule the grid, the tuning returns,
                       the chosen alpha, the test seeds' final returns, their
                       mean and standard error, the learning curves, seconds
  DIR/results.md       the table (`analysis.comparison_table`)
  DIR/curves/<env>.png the rules' mean curves with standard-error bands and
                       the random policy's return (e.g. curves/chain/short.png)

Resumable per environment: results.json is rewritten (atomically) after each
environment, and the same command again skips the environments it holds. A
rerun may ask for other environments, not for other settings: those, a rule
whose targets changed (`rule_fingerprint`), or a directory holding anything a
comparison does not write, are refused with a `ConfigError` before any work,
as is every bad argument.
"""

import hashlib
import json
import os
import time
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from lpg_tf import envs
from lpg_tf import errors
from lpg_tf import rules as rules_lib
from lpg_tf import types
from lpg_tf.analysis import comparison_table
from lpg_tf.analysis import curves as curves_lib
from lpg_tf.envs import minatar
from lpg_tf.experiments import cli
from lpg_tf.experiments import rule_tuning
from lpg_tf.experiments import train_agent
from lpg_tf.learning import evaluation
from lpg_tf.learning import random_policy
from lpg_tf.meta import lifetime_settings
from lpg_tf.rules import base as rule_base

ALL = cli.ALL
ALL_ENVS = tuple(envs.NAMES) + minatar.NAMES
GAMMA = train_agent.DEFAULT_GAMMA
DEFAULT_NUM_ENVS = train_agent.DEFAULT_NUM_ENVS
DEFAULT_MINATAR_STEPS = 200_000  # The budget agents.MINATAR's alpha_lr was chosen on.
RESULTS_JSON = "results.json"
RESULTS_MD = "results.md"
CURVES_DIR = "curves"
OUTPUTS = (RESULTS_JSON, RESULTS_MD, CURVES_DIR)


def resolve_envs(names: Sequence[str]) -> List[str]:
  """The environments of `--envs`: "all" (ALL_ENVS) or names, each once
  (`cli.resolve_names`)."""
  return cli.resolve_names(names, ALL_ENVS, "envs", "environment")


def env_steps(env_name: str, lifetime_scale: float, max_steps: Optional[int],
              minatar_steps: int) -> int:
  """The budget per seed asked for (module docstring), before rounding up to
  whole updates."""
  if env_name.startswith(minatar.PREFIX):
    return minatar_steps
  steps = max(1, int(lifetime_settings.for_env(env_name).lifetime_steps
                     * lifetime_scale))
  return steps if max_steps is None else min(steps, max_steps)


def rule_fingerprint(rule: rule_base.UpdateRule) -> str:
  """A digest of the rule's targets on a fixed probe trajectory.

  A resumed comparison must compare the rules it started with; an exported
  directory rewritten in between (or a new shipped rule) has other targets.
  """
  num_steps, batch = 6, 3
  size = rule.prediction_size or evaluation.DEFAULT_PREDICTION_SIZE
  rng = np.random.default_rng(0)
  y = rng.dirichlet(np.ones(size), size=(num_steps + 1, batch))
  inputs = types.RuleInputs(
      reward=rng.normal(size=(num_steps, batch)),
      discount=(rng.uniform(size=(num_steps, batch)) > 0.2).astype(float),
      gamma=np.full((num_steps, batch), GAMMA),
      pi_a=rng.uniform(0.1, 1.0, size=(num_steps, batch)), y=y[:-1],
      y_next=y[1:], baseline=rng.normal(size=(num_steps + 1, batch)))
  outputs = rule(types.RuleInputs(*(tf.constant(x, tf.float32)
                                    for x in inputs)))
  digest = hashlib.sha256(repr(rule.loss_config).encode())
  for target in outputs:
    if target is not None:
      digest.update(np.round(np.asarray(target, np.float64), 4).tobytes())
  return digest.hexdigest()[:16]


def _check_positive(name: str, value: Optional[float],
                    optional: bool = False) -> None:
  if value is None and optional:
    return
  if value is None or not np.isfinite(value) or value <= 0:
    raise errors.ConfigError(f"--{name} must be positive, got {value!r}")


def _check_workdir(workdir: str) -> Optional[Dict[str, Any]]:
  """The results of an earlier comparison in `workdir`, None if new."""
  if not workdir:
    raise errors.ConfigError("--workdir is required")
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise errors.ConfigError(f"--workdir {workdir!r} is not a directory")
  if not os.path.isdir(workdir):
    return None
  foreign = sorted(set(os.listdir(workdir)) - set(OUTPUTS))
  if foreign:
    raise errors.ConfigError(
        f"--workdir {workdir!r} holds {foreign}, which a comparison does not "
        "write (another kind of run): choose another directory")
  path = os.path.join(workdir, RESULTS_JSON)
  if not os.path.exists(path):
    return None
  try:
    with open(path) as f:
      results = json.load(f)
  except (OSError, ValueError) as error:
    results = error
  if not isinstance(results, dict) or not {"settings", "envs"} <= set(results):
    raise errors.ConfigError(
        f"{path} is not a comparison's results: choose another --workdir")
  return results


def _check_same_settings(previous: Mapping[str, Any],
                         settings: Mapping[str, Any], workdir: str) -> None:
  differing = [f"{key}: {previous.get(key)!r} there, {value!r} now"
               for key, value in settings.items() if previous.get(key) != value]
  if differing:
    raise errors.ConfigError(
        f"--workdir {workdir!r} holds a comparison with other settings "
        f"({'; '.join(differing)}); rerun it with its own flags to continue "
        "it, or choose another directory")


def _finite_or_none(value: float) -> Optional[float]:
  return float(value) if np.isfinite(value) else None


def _listed(array: np.ndarray) -> Any:
  """A JSON-ready nested list; NaN becomes null."""
  return np.vectorize(_finite_or_none, otypes=[object])(
      np.asarray(array, np.float64)).tolist()


def _random_return(env_name: str, action_space: Optional[str], num_envs: int,
                   num_seeds: int, seed: int,
                   jit_compile: bool) -> Optional[float]:
  """The uniformly random policy's return on the test instances."""
  key = rule_tuning.test_key(seed)
  if env_name.startswith(minatar.PREFIX):
    return minatar.random_policy_return(
        env_name, train_agent.MINATAR_UNIFORM_POLICY_ENVS,
        train_agent.MINATAR_UNIFORM_POLICY_STEPS, key)
  env = envs.make(env_name, action_space)
  return random_policy.random_policy_return(
      env, num_envs, max(train_agent.UNIFORM_POLICY_STEPS,
                         2 * env.spec.max_episode_steps),
      key, num_lifetimes=num_seeds, jit_compile=jit_compile)


def _compare_rule(env_name: str, action_space: Optional[str], rule_name: str,
                  rule: rule_base.UpdateRule, settings: Mapping[str, Any],
                  steps: int, jit_compile: bool) -> Tuple[Dict[str, Any], int]:
  """Tunes one rule on one environment, then tests its chosen alpha; returns
  its record and the environment steps each seed took."""
  start = time.monotonic()
  grid = rule_tuning.settings_grid(env_name, rule_name)
  common = dict(steps=steps, num_envs=settings["num_envs"],
                unroll_length=settings["unroll_length"],
                action_space=action_space, jit_compile=jit_compile)
  tuning = rule_tuning.tune(
      evaluation.Evaluator(env_name, rule,
                           len(grid) * settings["tuning_seeds"],
                           num_seeds=settings["tuning_seeds"], **common),
      grid, GAMMA, settings["seed"])
  tuned = time.monotonic()
  test = rule_tuning.evaluate_chosen(
      evaluation.Evaluator(env_name, rule, settings["seeds"], **common),
      tuning.chosen, GAMMA, settings["seed"])
  finals = test.final_returns[np.isfinite(test.final_returns)]
  mean = float(finals.mean()) if finals.size else float("nan")
  stderr = (float(finals.std(ddof=1) / np.sqrt(finals.size))
            if finals.size > 1 else 0.0 if finals.size else float("nan"))
  if finals.size < test.final_returns.size:
    logging.warning("%s on %s: %d of %d test seeds ended no episode in %d "
                    "steps; a larger budget makes their return known",
                    rule_name, env_name, test.final_returns.size - finals.size,
                    test.final_returns.size, test.env_steps)
  logging.info("%s on %s: alpha (%g, %g) chosen of %d settings; test %.4g +- "
               "%.2g (%.0f s tuning, %.0f s test)", rule_name, env_name,
               *tuning.chosen, len(grid), mean, stderr, tuned - start,
               time.monotonic() - tuned)
  return {
      "grid": [list(s) for s in grid],
      "tuning_returns": _listed(tuning.returns),
      "chosen": list(tuning.chosen),
      "final_returns": _listed(test.final_returns),
      "mean": _finite_or_none(mean),
      "stderr": _finite_or_none(stderr),
      "curve": {"env_steps": test.point_steps.tolist(),
                "returns": _listed(test.points)},
      "tuning_seconds": tuned - start,
      "test_seconds": time.monotonic() - tuned,
  }, test.env_steps


def _curve_path(workdir: str, env_name: str) -> str:
  return os.path.join(workdir, CURVES_DIR, env_name + ".png")


def _plot(workdir: str, env_name: str, record: Mapping[str, Any]) -> str:
  """curves/<env>.png from the environment's record."""
  path = _curve_path(workdir, env_name)
  os.makedirs(os.path.dirname(path), exist_ok=True)
  curves = {
      rule: (np.array(r["curve"]["env_steps"], np.float64),
             np.array(r["curve"]["returns"], np.float64))
      for rule, r in record["rules"].items()}
  return curves_lib.plot_comparison(
      curves, path, f"{env_name}: mean ± standard error over test seeds",
      record["random_return"])


def _write(workdir: str, results: Mapping[str, Any]) -> None:
  """results.json (atomically) and results.md."""
  path = os.path.join(workdir, RESULTS_JSON)
  with open(path + ".tmp", "w") as f:
    json.dump(results, f, indent=1)
  os.replace(path + ".tmp", path)
  with open(os.path.join(workdir, RESULTS_MD), "w") as f:
    f.write(comparison_table.markdown(results))


def compare(rule_names: Sequence[str], env_names: Sequence[str], workdir: str,
            seeds: int = 5, tuning_seeds: int = 2, lifetime_scale: float = 0.1,
            max_steps: Optional[int] = None,
            minatar_steps: int = DEFAULT_MINATAR_STEPS,
            num_envs: int = DEFAULT_NUM_ENVS, unroll_length: int = 20,
            seed: int = 0, jit_compile: bool = True) -> Dict[str, Any]:
  """Compares the rules on the environments; writes and returns the results.

  Args:
    rule_names: names `rules.make` accepts ("a2c", an exported rule's
      directory, ...), each once.
    env_names: "all" or names of ALL_ENVS.
    workdir: new, empty, or an earlier comparison with the same settings
      (continued: its environments are skipped).
    seeds: test seeds per rule and environment.
    tuning_seeds: tuning seeds per grid point.
    lifetime_scale: Appendix A budgets as a fraction of Table 3's lifetime.
    max_steps: cap of Appendix A budgets (None: none).
    minatar_steps: a MinAtar game's budget.
    num_envs: B, environments per lifetime.
    unroll_length: T, steps per update.
    seed: the comparison seed c, in [0, rule_tuning.MAX_SEED): tuning and
      test keys `[c, word]` (rule_tuning's docstring).
    jit_compile: compile the training steps with XLA.

  Returns:
    The results (as in results.json).

  Raises:
    ConfigError: any bad argument, before any work.
  """
  for name, value in (("seeds", seeds), ("tuning_seeds", tuning_seeds),
                      ("lifetime_scale", lifetime_scale),
                      ("minatar_steps", minatar_steps), ("num_envs", num_envs),
                      ("unroll_length", unroll_length)):
    _check_positive(name, value)
  _check_positive("max_steps", max_steps, optional=True)
  if not 0 <= seed < rule_tuning.MAX_SEED:
    raise errors.ConfigError(
        f"--seed must be in [0, {rule_tuning.MAX_SEED}) (kept apart from "
        f"meta-training's keys), got {seed}")
  env_names = resolve_envs(env_names)
  rule_names = [n.strip() for n in rule_names]
  if not rule_names or len(set(rule_names)) != len(rule_names):
    raise errors.ConfigError(f"--rules must name rules once each, got "
                             f"{rule_names}")
  rules = {name: rules_lib.make(name) for name in rule_names}
  budgets = {name: env_steps(name, lifetime_scale, max_steps, minatar_steps)
             for name in env_names}
  for name, steps in budgets.items():
    if name in envs.NAMES:
      needed = num_envs * envs.make(name).spec.max_episode_steps
      if steps < needed:
        raise errors.ConfigError(
            f"{steps} steps are too short for {name}: each of its {num_envs} "
            f"environments per seed needs a whole episode, so at least "
            f"{needed} (raise --lifetime_scale or --max_steps)")
  settings = {
      "rules": rule_names,
      "rule_fingerprints": {n: rule_fingerprint(r) for n, r in rules.items()},
      "seeds": seeds, "tuning_seeds": tuning_seeds,
      "lifetime_scale": lifetime_scale, "max_steps": max_steps,
      "minatar_steps": minatar_steps, "num_envs": num_envs,
      "unroll_length": unroll_length, "seed": seed, "gamma": GAMMA,
      "test_key": list(rule_tuning.test_key(seed)),
      "tuning_key": list(rule_tuning.tuning_key(seed)),
  }
  results = _check_workdir(workdir)
  if results is None:
    results = {"settings": settings, "envs": {}}
  else:
    _check_same_settings(results["settings"], settings, workdir)
  os.makedirs(workdir, exist_ok=True)
  for name, record in results["envs"].items():
    if not os.path.exists(_curve_path(workdir, name)):
      _plot(workdir, name, record)
  _write(workdir, results)
  todo = [n for n in env_names if n not in results["envs"]]
  if len(todo) < len(env_names):
    logging.info("Skipping %d environments already in %s: %s",
                 len(env_names) - len(todo), RESULTS_JSON,
                 ", ".join(n for n in env_names if n not in todo))
  for name in todo:
    start = time.monotonic()
    action_space = envs.MOVE if name in envs.NAMES and envs.is_grid(
        name) else None
    record = {"action_space": action_space, "rules": {}}
    for rule_name, rule in rules.items():
      record["rules"][rule_name], record["steps"] = _compare_rule(
          name, action_space, rule_name, rule, settings, budgets[name],
          jit_compile)
    random_return = _random_return(name, action_space, num_envs, seeds, seed,
                                   jit_compile)
    record["random_return"] = (None if random_return is None
                               else _finite_or_none(random_return))
    record["seconds"] = time.monotonic() - start
    results["envs"][name] = record
    _plot(workdir, name, record)
    _write(workdir, results)
    logging.info("%s done in %.0f s (%d of %d); results in %s", name,
                 record["seconds"], todo.index(name) + 1, len(todo),
                 os.path.join(workdir, RESULTS_MD))
  return results
