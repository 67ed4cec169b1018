"""The meta-optimiser comparison's plot and table from its runs: the library
side of `launchers/optimiser_comparison.py`.

A comparison directory holds runs named `<optimiser>_s<seed>` (meta_train work
directories, or pbt_meta_train population directories for `pbt`) and one or
more compare.py work directories whose `results.json` compare those runs'
rules with A2C (`analysis.optimiser_comparison`). From it this writes:
  OUT.png   validation score over wall clock per optimiser, mean over seeds
  OUT.json  the plotted points and the held-out table's numbers
  OUT.md    how far each run got, and the held-out table (when a results.json
            names the runs)
Bad input raises `errors.ConfigError` before anything is written.
"""

import glob
import json
import os
from typing import Any, Dict, List, Mapping, Sequence

from absl import logging

from lpg_tf import errors
from lpg_tf.analysis import meta_curves
from lpg_tf.analysis import optimiser_comparison as comparison
from lpg_tf.experiments import meta_train
from lpg_tf.experiments import pbt_meta_train

RESULTS_NAME = "results.json"  # compare.py's record in its work directory.


def find_runs(runs_dir: str, seeds: Sequence[int] = ()
             ) -> Dict[str, Dict[int, str]]:
  """optimiser -> seed -> run directory, for every `<optimiser>_s<seed>`
  directory directly under `runs_dir` (of `seeds` only, if given)."""
  runs: Dict[str, Dict[int, str]] = {}
  for name in sorted(os.listdir(runs_dir)):
    run = comparison.parse_run_name(name)
    if (run is not None and os.path.isdir(os.path.join(runs_dir, name))
        and (not seeds or run.seed in seeds)):
      runs.setdefault(run.optimiser, {})[run.seed] = os.path.join(runs_dir, name)
  return runs


def _tb_dirs(optimiser: str, run_dir: str) -> List[str]:
  """The TensorBoard directories of a run: its own, or every member's."""
  if optimiser == "pbt":
    return sorted(glob.glob(os.path.join(
        run_dir, pbt_meta_train.MEMBERS_DIR, "*", meta_train.TB_DIR)))
  return [os.path.join(run_dir, meta_train.TB_DIR)]


def read_results(runs_dir: str, seeds: Sequence[int] = ()
                ) -> List[Mapping[str, Any]]:
  """The compare.py records under `runs_dir` that compare a comparison run's
  rule (of `seeds` only, if given)."""
  records = []
  for path in sorted(glob.glob(os.path.join(runs_dir, "*", RESULTS_NAME))):
    with open(path) as f:
      record = json.load(f)
    runs = [comparison.run_of_rule(rule)
            for rule in record.get("settings", {}).get("rules", [])]
    if any(run is not None and (not seeds or run.seed in seeds) for run in runs):
      records.append(comparison.only_seeds(record, seeds) if seeds else record)
  return records


def write_comparison(runs_dir: str, out: str, minutes: float = 0.0,
                     seeds: Sequence[int] = ()) -> str:
  """Writes OUT.png, OUT.json and OUT.md; returns the JSON's path.

  Args:
    runs_dir: the comparison directory (module docstring).
    out: the PNG's path; the JSON and markdown go next to it.
    minutes: the plot's time axis ends here (the budget); 0: at the last
      validation.
    seeds: only these seeds' runs and rules; empty: every seed.

  Raises:
    ConfigError: `runs_dir` holds no comparison run or no validation score,
      `out` is not a .png path in an existing directory, or its results
      cannot be pooled (different protocols).
  """
  if not os.path.isdir(runs_dir or ""):
    raise errors.ConfigError(f"--runs {runs_dir!r} is not a directory")
  if not out or not out.endswith(".png"):
    raise errors.ConfigError(f"--out must be a .png path, got {out!r}")
  if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
    raise errors.ConfigError(f"--out {out!r}: its directory does not exist")
  runs = find_runs(runs_dir, seeds)
  if not runs:
    raise errors.ConfigError(
        f"{runs_dir} holds no run named <optimiser>_s<seed> (optimiser one of "
        f"{', '.join(comparison.OPTIMISERS)})")
  processes = {optimiser: {seed: [meta_curves.read_timed_scalars(d)
                                   for d in _tb_dirs(optimiser, run)]
                            for seed, run in seeds.items()}
               for optimiser, seeds in runs.items()}
  curves = {o: {seed: comparison.scores_over_time(p) for seed, p in seeds.items()}
            for o, seeds in processes.items()}
  summaries = {o: {seed: comparison.run_summary(p) for seed, p in seeds.items()}
               for o, seeds in processes.items()}
  results = read_results(runs_dir, seeds)
  try:
    table = comparison.held_out(results) if results else None
    comparison.plot(curves, out, minutes or None)
  except ValueError as error:
    raise errors.ConfigError(f"{runs_dir}: {error}") from error
  stem = out[:-len(".png")]
  with open(stem + ".json", "w") as f:
    json.dump(comparison.to_json(curves, table, summaries), f, indent=1)
  with open(stem + ".md", "w") as f:
    f.write(comparison.runs_markdown(summaries))
    if table is not None:
      f.write("\n" + comparison.markdown(table))
  logging.info("Comparison of %s over seeds %s in %s.{png,json,md}",
               ", ".join(runs), sorted({s for r in runs.values() for s in r}),
               stem)
  return stem + ".json"
