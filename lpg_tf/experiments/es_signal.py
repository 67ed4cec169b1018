"""How much signal an ES estimate carries for each population size, sigma and
window: the measurement behind the ES defaults (the library side of
`launchers/es_signal.py`).

For each setting, an ES trainer of the config's population (its seed, the
lifetimes as a run starts them; one trainer per P and window, whose compiled
window serves every sigma), at eta_0 or at an exported rule's eta, draws R
estimates of the ES loss gradient with the noise of R different ES steps,
changing nothing between them (`ESTrainer.estimate`). Two independent
estimates g1, g2 of one gradient g with noise of variance v per estimate have
E[g1 . g2] = |g|^2, so their mean pairwise cosine says how much of an
estimate is signal: about |g|^2 / (|g|^2 + v), 0 for pure noise (the
quantity Adam's steps move eta along). Next to it: the share of groups whose
members all tied (no ranking, no signal) and the wall-clock seconds per
estimate (the trainer's first, which compiles, is not counted), so that
settings can be compared by signal per second.

Settings vary one at a time around the config's (P, sigma, window), so the
table reads as three sweeps through the config's point.
"""

import itertools
import json
import math
import os
import time
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from absl import logging
import ml_collections
import numpy as np

from lpg_tf import errors
from lpg_tf import export
from lpg_tf.experiments import cli
from lpg_tf.experiments import meta_train
from lpg_tf.experiments import run_directory
from lpg_tf.meta import es_trainer

MIN_ESTIMATES = 3  # Three estimates give three pairs.
ETA_0 = "eta_0"  # A row's rule when measured at the config's initial eta.


class Setting(NamedTuple):
  population_size: int
  sigma: float
  window: int


def settings_around(config: ml_collections.ConfigDict,
                    population_sizes: Sequence[int], sigmas: Sequence[float],
                    windows: Sequence[int]) -> List[Setting]:
  """The config's setting, then each list's other values with the rest of
  the config's: three one-at-a-time sweeps through one point."""
  es = config.meta.es
  centre = Setting(es.population_size, es.sigma, es.window)
  settings = [centre]
  settings += [centre._replace(sigma=s) for s in sigmas]
  settings += [centre._replace(population_size=p) for p in population_sizes]
  settings += [centre._replace(window=w) for w in windows]
  return list(dict.fromkeys(settings))  # In order, once each.


def es_config(config: ml_collections.ConfigDict,
              setting: Setting) -> ml_collections.ConfigDict:
  """`config` as an ES run with `setting`."""
  return cli.with_values(config, {
      "meta.optimiser": "es", "meta.es.population_size": setting.population_size,
      "meta.es.sigma": setting.sigma, "meta.es.window": setting.window})


def pairwise_cosines(vectors: Sequence[np.ndarray]) -> np.ndarray:
  """The cosine of every pair of `vectors` (0 where one is all zeros)."""
  cosines = []
  for a, b in itertools.combinations(vectors, 2):
    norms = np.linalg.norm(a) * np.linalg.norm(b)
    cosines.append(float(a @ b / norms) if norms > 0 else 0.0)
  return np.array(cosines)


def _figures(trainer: es_trainer.ESTrainer, setting: Setting, estimates: int) -> Dict[str, Any]:
  """One setting's figures at the rule's current eta (module docstring)."""
  grads, seconds, tied = [], [], []
  for noise_step in range(1, estimates + 1):
    start = time.perf_counter()
    estimate = trainer.estimate(noise_step, sigma=setting.sigma)
    grads.append(np.concatenate([g.numpy().ravel() for g in estimate.grads]))
    seconds.append(time.perf_counter() - start)
    fitness = estimate.fitness.numpy()
    tied.append(np.mean([np.ptp(column) == 0 for column in fitness.T]))
  cosines = pairwise_cosines(grads)
  return {
      **setting._asdict(), "estimates": estimates,
      "cosine_mean": float(cosines.mean()),
      # The pairs share estimates, so this understates the error a little.
      "cosine_stderr": float(cosines.std(ddof=1) / math.sqrt(cosines.size)),
      "tied_fraction": float(np.mean(tied)),
      "estimate_norm": float(np.mean([np.linalg.norm(g) for g in grads])),
      "seconds_per_estimate": float(np.median(seconds)),
      "agent_env_steps_per_estimate": trainer.inner_env_steps_per_step,
  }


def measure(config: ml_collections.ConfigDict, settings: Sequence[Setting],
            estimates: int, rules: Sequence[Optional[str]]
           ) -> List[Dict[str, Any]]:
  """The figures of settings that share P and the window (one trainer, one
  compiled window: sigma is applied outside it), at each rule's eta (None:
  the config's eta_0), in the order rules x settings.

  Raises:
    errors.ConfigError: a rule is not of this config's shape.
  """
  config = es_config(config, settings[0])
  rule = meta_train.build_rule(config)
  trainer = meta_train.build_trainer(config, rule)
  eta_0 = [v.numpy() for v in rule.variables]
  start = time.perf_counter()
  trainer.estimate(0)  # Traces and compiles the window.
  compile_s = time.perf_counter() - start
  rows = []
  for rule_path in rules:
    if rule_path:
      export.load_rule_into(rule, rule_path)
    else:
      for variable, value in zip(rule.variables, eta_0):
        variable.assign(value)
    for setting in settings:
      row = {"rule": rule_path or ETA_0, **_figures(trainer, setting, estimates),
             "first_estimate_s": compile_s}
      logging.info(
          "%s, P=%d sigma=%g window=%d: cosine %.3f +- %.3f, tied %.2f, "
          "%.1f s per estimate", row["rule"], setting.population_size,
          setting.sigma, setting.window, row["cosine_mean"],
          row["cosine_stderr"], row["tied_fraction"],
          row["seconds_per_estimate"])
      rows.append(row)
  return rows


def markdown(rows: Sequence[Mapping[str, Any]]) -> str:
  """The figures as a table, a row per setting."""
  lines = ["| eta | P | sigma | window | pairwise cosine | groups tied | "
           "s per estimate | cosine per s |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
  for row in rows:
    lines.append(
        f"| {row['rule']} | {row['population_size']} | {row['sigma']:g} | "
        f"{row['window']} | "
        f"{row['cosine_mean']:.3f} ± {row['cosine_stderr']:.3f} | "
        f"{row['tied_fraction']:.2f} | {row['seconds_per_estimate']:.1f} | "
        f"{row['cosine_mean'] / row['seconds_per_estimate']:.4f} |")
  return "\n".join(lines) + "\n"


def run(config: ml_collections.ConfigDict, settings: Sequence[Setting],
        estimates: int, out: str, rules: Sequence[Optional[str]] = (None,)
       ) -> List[Dict[str, Any]]:
  """Measures every setting at every rule's eta (None: eta_0); writes OUT
  (JSON) and its markdown twin (.md). Rows: by rule, then settings in order.

  Raises:
    errors.ConfigError: fewer than MIN_ESTIMATES estimates, an `out` that is
      not a .json path in an existing directory, a missing rule, or a setting
      this population cannot run (each is checked before any is measured).
  """
  if estimates < MIN_ESTIMATES:
    raise errors.ConfigError(
        f"--estimates must be at least {MIN_ESTIMATES}, got {estimates}")
  if not out or not out.endswith(".json"):
    raise errors.ConfigError(f"--out must be a .json path, got {out!r}")
  if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
    raise errors.ConfigError(f"--out {out!r}: its directory does not exist")
  for rule_path in rules:
    if rule_path and not os.path.isdir(rule_path):
      raise errors.ConfigError(f"rule {rule_path!r} is not a directory")
  for setting in settings:
    meta_train.validate(es_config(config, setting))
  shapes: Dict[Tuple[int, int], List[Setting]] = {}
  for setting in settings:
    shapes.setdefault((setting.population_size, setting.window), []).append(setting)
  measured = [row for same_shape in shapes.values()
              for row in measure(config, same_shape, estimates, rules)]
  order = {(rule or ETA_0, setting): i for i, (rule, setting) in enumerate(
      itertools.product(rules, settings))}
  rows = sorted(measured, key=lambda row: order[(row["rule"], Setting(
      row["population_size"], row["sigma"], row["window"]))])
  run_directory.write_atomically(out, json.dumps(
      {"seed": config.seed, "rows": rows}, indent=1))
  run_directory.write_atomically(out[:-len(".json")] + ".md", markdown(rows))
  return rows
