"""How much signal an ES estimate carries for each population size, sigma and
window: the measurement behind the ES defaults (the library side of
`launchers/es_signal.py`).

For each setting, a fresh ES trainer of the config's population (seed, eta_0
or an exported rule's eta, the lifetimes as a run starts them) draws R
estimates of the ES loss gradient with the noise of R different ES steps,
changing nothing between them (`ESTrainer.estimate`). Two independent
estimates g1, g2 of one gradient g with noise of variance v per estimate have
E[g1 . g2] = |g|^2, so their mean pairwise cosine says how much of an
estimate is signal: about |g|^2 / (|g|^2 + v), 0 for pure noise (the
quantity Adam's steps move eta along). Next to it: the share of groups whose
members all tied (no ranking, no signal) and the wall-clock seconds per
estimate (the first, which compiles, is not counted), so that settings can be
compared by signal per second.

Settings vary one at a time around the config's (P, sigma, window), so the
table reads as three sweeps through the config's point.
"""

import itertools
import json
import math
import os
import time
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence

from absl import logging
import ml_collections
import numpy as np

from lpg_tf import errors
from lpg_tf import export
from lpg_tf.experiments import cli
from lpg_tf.experiments import meta_train
from lpg_tf.experiments import run_directory

MIN_ESTIMATES = 3  # Three estimates give three pairs.


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


def measure(config: ml_collections.ConfigDict, setting: Setting,
            estimates: int, rule_path: Optional[str] = None) -> Dict[str, Any]:
  """One setting's figures (module docstring).

  Raises:
    errors.ConfigError: the setting cannot run with this population, or
      `rule_path` is not a rule of this config's shape.
  """
  config = es_config(config, setting)
  meta_train.validate(config)
  rule = meta_train.build_rule(config)
  trainer = meta_train.build_trainer(config, rule)
  if rule_path:
    export.load_rule_into(rule, rule_path)
  grads, seconds, tied = [], [], []
  for noise_step in range(estimates + 1):  # The first compiles.
    start = time.perf_counter()
    estimate = trainer.estimate(noise_step)
    flat = np.concatenate([g.numpy().ravel() for g in estimate.grads])
    seconds.append(time.perf_counter() - start)
    if noise_step == 0:
      continue
    grads.append(flat)
    fitness = estimate.fitness.numpy()
    tied.append(np.mean([np.ptp(column) == 0 for column in fitness.T]))
  cosines = pairwise_cosines(grads)
  figures = {
      **setting._asdict(), "estimates": estimates,
      "cosine_mean": float(cosines.mean()),
      # The pairs share estimates, so this understates the error a little.
      "cosine_stderr": float(cosines.std(ddof=1) / math.sqrt(cosines.size)),
      "tied_fraction": float(np.mean(tied)),
      "estimate_norm": float(np.mean([np.linalg.norm(g) for g in grads])),
      "seconds_per_estimate": float(np.median(seconds[1:])),
      "compile_s": seconds[0] - float(np.median(seconds[1:])),
      "agent_env_steps_per_estimate": trainer.inner_env_steps_per_step,
  }
  logging.info("P=%d sigma=%g window=%d: cosine %.3f +- %.3f, tied %.2f, "
               "%.1f s per estimate", setting.population_size, setting.sigma,
               setting.window, figures["cosine_mean"], figures["cosine_stderr"],
               figures["tied_fraction"], figures["seconds_per_estimate"])
  return figures


def markdown(rows: Sequence[Mapping[str, Any]]) -> str:
  """The figures as a table, a row per setting."""
  lines = ["| P | sigma | window | pairwise cosine | groups tied | "
           "s per estimate | cosine per s |",
           "| --- | --- | --- | --- | --- | --- | --- |"]
  for row in rows:
    lines.append(
        f"| {row['population_size']} | {row['sigma']:g} | {row['window']} | "
        f"{row['cosine_mean']:.3f} ± {row['cosine_stderr']:.3f} | "
        f"{row['tied_fraction']:.2f} | {row['seconds_per_estimate']:.1f} | "
        f"{row['cosine_mean'] / row['seconds_per_estimate']:.4f} |")
  return "\n".join(lines) + "\n"


def run(config: ml_collections.ConfigDict, settings: Sequence[Setting],
        estimates: int, out: str, rule_path: Optional[str] = None
       ) -> List[Dict[str, Any]]:
  """Measures every setting; writes OUT (JSON) and its markdown twin (.md).

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
  if rule_path and not os.path.isdir(rule_path):
    raise errors.ConfigError(f"--rule {rule_path!r} is not a directory")
  for setting in settings:
    meta_train.validate(es_config(config, setting))
  rows = [measure(config, setting, estimates, rule_path) for setting in settings]
  run_directory.write_atomically(out, json.dumps(
      {"rule": rule_path or "eta_0", "seed": config.seed, "rows": rows},
      indent=1))
  run_directory.write_atomically(out[:-len(".json")] + ".md", markdown(rows))
  return rows
