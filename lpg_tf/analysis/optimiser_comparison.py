"""A comparison of meta-optimisers over seeds: validation over wall clock, and
held-out returns against tuned A2C.

Issue 9 compares rules meta-trained by the meta-gradient, evolution strategies,
the hybrid and population-based training, each on the same wall-clock budget
and several seeds. Its runs are named `<optimiser>_s<seed>` (`RUN_NAME`): a
meta-training work directory, or for `pbt` a population's directory. Their
rules (`<run>/best_rule`, or a population's `<run>/rule`) are then compared
with A2C by `compare.py` (tuned alpha, held-out test seeds).

This module turns those records into numbers:
  `scores_over_time`: a run's validation scores (`validation/score`, the
    held-out score meta_train logs: random 0, A2C 1) against minutes since its
    first summary; for a population, every member's, since the first member's.
  `best_so_far`: the best score reached by each time of a grid, the quantity
    averaged over seeds (a rule exported at that time would be that good).
  `held_out`: per environment and optimiser, each seed's mean final return
    (itself a mean over compare.py's test seeds), their mean and standard
    error over seeds, and on how many seeds the rule reaches tuned A2C
    (`only_seeds` first drops other seeds' rules from a record).
  `run_summary`: how far each run got (meta-steps, validations, best score).
  `markdown`, `runs_markdown`, `plot` and `to_json` write them for people.
"""

import math
import os
import re
from typing import Any, Dict, List, Mapping, NamedTuple, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from lpg_tf.analysis import meta_curves

OPTIMISERS = ("gradient", "es", "hybrid", "pbt")
RUN_NAME = re.compile(r"^(?P<optimiser>gradient|es|hybrid|pbt)_s(?P<seed>\d+)$")
SCORE_TAG = "validation/score"
A2C = "a2c"
# What must match for results files to be pooled: the same protocol.
PROTOCOL_KEYS = ("seeds", "tuning_seeds")


class RunName(NamedTuple):
  optimiser: str
  seed: int


def parse_run_name(name: str) -> Optional[RunName]:
  """`es_s2` -> RunName("es", 2); None for a name outside the comparison."""
  match = RUN_NAME.match(name)
  if match is None:
    return None
  return RunName(match["optimiser"], int(match["seed"]))


def run_of_rule(rule: str) -> Optional[RunName]:
  """The comparison run a rule directory was exported by: its parent's name
  (`runs/cmp/es_s2/best_rule` -> es, seed 2); None for other rules."""
  return parse_run_name(os.path.basename(os.path.dirname(
      os.path.normpath(rule))))


class ScoresOverTime(NamedTuple):
  """Validation scores in the order they were written."""
  minutes: np.ndarray  # Since the run's first summary.
  meta_steps: np.ndarray
  scores: np.ndarray


def scores_over_time(processes: Sequence[meta_curves.TimedScalars]
                    ) -> ScoresOverTime:
  """The validation scores of one run, or of every member of a population
  (one `TimedScalars` each), against minutes since the earliest start."""
  starts = [p.start for p in processes if p.start is not None]
  points = []
  for process in processes:
    curve = process.curves.get(SCORE_TAG)
    if curve is not None:
      points += zip(curve.wall_times, curve.steps, curve.values)
  if not points:
    return ScoresOverTime(np.zeros(0), np.zeros(0, np.int64), np.zeros(0))
  points.sort()
  start = min(starts)
  return ScoresOverTime(
      np.array([(p[0] - start) / 60.0 for p in points]),
      np.array([p[1] for p in points], np.int64),
      np.array([p[2] for p in points], np.float64))


def run_summary(processes: Sequence[meta_curves.TimedScalars]
               ) -> Dict[str, Any]:
  """What one run (or each member of a population) reached: the last
  meta-step each process logged, its validations, and the best score."""
  curve = scores_over_time(processes)
  last_steps = sorted(int(max(c.steps.max() for c in p.curves.values()))
                      for p in processes if p.curves)
  best = int(np.argmax(curve.scores)) if curve.scores.size else None
  return {"meta_steps": last_steps, "validations": int(curve.scores.size),
          "best_score": None if best is None else float(curve.scores[best]),
          "best_meta_step": None if best is None else int(curve.meta_steps[best])}


def runs_markdown(summaries: Mapping[str, Mapping[int, Mapping[str, Any]]]) -> str:
  """A row per run: meta-steps reached (a population's members: lowest to
  highest), validations, and the best validation score (its meta-step)."""
  lines = ["| optimiser | seed | meta-steps | validations | best validation score (step) |",
           "| --- | --- | --- | --- | --- |"]
  for optimiser in OPTIMISERS:
    for seed, summary in sorted(summaries.get(optimiser, {}).items()):
      steps = summary["meta_steps"]
      reached = ("–" if not steps else f"{steps[0]:,}" if len(steps) == 1
                 else f"{steps[0]:,}–{steps[-1]:,} ({len(steps)} members)")
      best = ("–" if summary["best_score"] is None else
              f"{summary['best_score']:.3f} ({summary['best_meta_step']:,})")
      lines.append(f"| {optimiser} | {seed} | {reached} | "
                   f"{summary['validations']} | {best} |")
  return "\n".join(lines) + "\n"


def best_so_far(curve: ScoresOverTime, grid: np.ndarray) -> np.ndarray:
  """The best score reached by each time of `grid` (NaN before the first)."""
  result = np.full(np.shape(grid), np.nan)
  if not curve.scores.size:
    return result
  best = np.maximum.accumulate(curve.scores)
  index = np.searchsorted(curve.minutes, grid, side="right") - 1
  reached = index >= 0
  result[reached] = best[index[reached]]
  return result


def only_seeds(record: Mapping[str, Any], seeds: Sequence[int]
              ) -> Dict[str, Any]:
  """A compare.py record without the comparison runs' rules of other seeds
  (A2C and rules from elsewhere stay)."""
  def kept(rule: str) -> bool:
    run = run_of_rule(rule)
    return run is None or run.seed in seeds
  return {**record,
          "settings": {**record["settings"], "rules": [
              r for r in record["settings"]["rules"] if kept(r)]},
          "envs": {env: {**env_record, "rules": {
              r: v for r, v in env_record["rules"].items() if kept(r)}}
                   for env, env_record in record["envs"].items()}}


def _mean_and_stderr(values: Sequence[float]) -> Dict[str, Optional[float]]:
  values = np.asarray(values, np.float64)
  stderr = (float(values.std(ddof=1) / math.sqrt(values.size))
            if values.size > 1 else None)
  return {"mean": float(values.mean()), "stderr": stderr}


def _check_same_protocol(results: Sequence[Mapping[str, Any]]) -> None:
  first = results[0]
  for other in results[1:]:
    for key in PROTOCOL_KEYS:
      if other["settings"].get(key) != first["settings"].get(key):
        raise ValueError(
            f"results with {key}={other['settings'].get(key)} and "
            f"{first['settings'].get(key)} cannot be pooled: compare every "
            "rule with the same protocol")
    for env, record in other["envs"].items():
      if env in first["envs"] and record["steps"] != first["envs"][env]["steps"]:
        raise ValueError(f"{env}: results with {record['steps']} and "
                         f"{first['envs'][env]['steps']} steps cannot be pooled")


def held_out(results: Sequence[Mapping[str, Any]]) -> Dict[str, Dict[str, Any]]:
  """Pools compare.py results of the comparison's rules over seeds.

  Args:
    results: compare.py's results.json records, all with one protocol (test
      and tuning seeds, steps per environment). Rules that are not a
      comparison run's (`run_of_rule`) are left out, except A2C.

  Returns:
    environment -> {"random": the random policy's return,
      "a2c": tuned A2C's mean final return and its standard error over test
        seeds (averaged over the files that ran it: the same seeds give the
        same numbers),
      optimiser -> {"seeds": {seed: mean final return},
                    "mean", "stderr": over seeds (stderr None for one seed),
                    "at_least_a2c": seeds whose mean reaches A2C's}}.

  Raises:
    ValueError: no results, results of different protocols, or one run's
      rule in two files.
  """
  if not results:
    raise ValueError("no compare.py results to pool")
  _check_same_protocol(results)
  table: Dict[str, Dict[str, Any]] = {}
  for record in results:
    for env, env_record in record["envs"].items():
      row = table.setdefault(env, {"random": env_record.get("random_return"),
                                   "_a2c": [], "_seeds": {}})
      for rule, rule_record in env_record["rules"].items():
        if rule_record.get("mean") is None:
          continue
        if rule == A2C:
          row["_a2c"].append((rule_record["mean"], rule_record["stderr"]))
          continue
        run = run_of_rule(rule)
        if run is None:
          continue
        seeds = row["_seeds"].setdefault(run.optimiser, {})
        if run.seed in seeds:
          raise ValueError(f"{env}: {run.optimiser} seed {run.seed} appears in "
                           "two results files")
        seeds[run.seed] = rule_record["mean"]
  for env, row in table.items():
    a2c, per_optimiser = row.pop("_a2c"), row.pop("_seeds")
    row[A2C] = ({"mean": float(np.mean([m for m, _ in a2c])),
                 "stderr": float(np.mean([s for _, s in a2c]))} if a2c else None)
    for optimiser in OPTIMISERS:
      seeds = per_optimiser.get(optimiser)
      if not seeds:
        continue
      means = [seeds[s] for s in sorted(seeds)]
      entry = {"seeds": {s: seeds[s] for s in sorted(seeds)},
               **_mean_and_stderr(means)}
      if row[A2C] is not None:
        entry["at_least_a2c"] = sum(m >= row[A2C]["mean"] for m in means)
      row[optimiser] = entry
  return table


def _cell(entry: Optional[Mapping[str, Any]], bold: bool) -> str:
  if entry is None:
    return "–"
  text = f"{entry['mean']:.3g}"
  if entry.get("stderr") is not None:
    text += f" ± {entry['stderr']:.2g}"
  if bold:
    text = f"**{text}**"
  if "seeds" in entry:
    text += f" ({entry.get('at_least_a2c', '?')}/{len(entry['seeds'])})"
  return text


def markdown(table: Mapping[str, Mapping[str, Any]]) -> str:
  """The held-out table: a row per environment, a column per optimiser and
  tuned A2C; the best mean in bold; (k/n): k of n seeds reach A2C's mean."""
  optimisers = [o for o in OPTIMISERS if any(o in row for row in table.values())]
  lines = ["| environment | random | " + " | ".join(optimisers) + " | tuned A2C |",
           "| --- " * (len(optimisers) + 3) + "|"]
  for env in sorted(table):
    row = table[env]
    entries = {name: row.get(name) for name in optimisers + [A2C]}
    means = [e["mean"] for e in entries.values() if e is not None]
    best = max(means) if means else None
    random_return = row["random"]
    cells = [env, "–" if random_return is None else f"{random_return:.3g}"]
    cells += [_cell(entries[name], entries[name] is not None
                    and entries[name]["mean"] == best)
              for name in optimisers + [A2C]]
    lines.append("| " + " | ".join(cells) + " |")
  return "\n".join(lines) + "\n"


def plot(curves: Mapping[str, Mapping[int, ScoresOverTime]], path: str,
         minutes: Optional[float] = None) -> str:
  """Validation score over wall clock: each seed's scores as faint markers,
  the mean over seeds of the best score so far as a line (drawn where every
  seed has validated). Writes `path` and returns it."""
  if not any(len(c.scores) for seeds in curves.values() for c in seeds.values()):
    raise ValueError("no validation scores to plot")
  end = minutes or max(float(c.minutes.max()) for seeds in curves.values()
                       for c in seeds.values() if c.minutes.size)
  grid = np.linspace(0.0, end, 400)
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for optimiser in OPTIMISERS:
    seeds = curves.get(optimiser)
    if not seeds:
      continue
    best = np.array([best_so_far(c, grid) for c in seeds.values()])
    line, = ax.plot(grid, best.mean(axis=0), lw=1.8,
                    label=f"{optimiser} ({len(seeds)} seeds)")
    for curve in seeds.values():
      ax.plot(curve.minutes, curve.scores, ".", ms=3, alpha=0.35,
              color=line.get_color())
  ax.axhline(1.0, ls="--", color="grey", lw=1,
             label="A2C at its default rate (score 1)")
  ax.axhline(0.0, ls=":", color="grey", lw=0.8)
  ax.set_xlabel("wall-clock minutes since the run's first summary")
  ax.set_ylabel("validation score (random 0, A2C 1)")
  ax.set_title("best validation score so far, mean over seeds (dots: each "
               "validation)", fontsize=9)
  ax.legend(fontsize=8)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def to_json(curves: Mapping[str, Mapping[int, ScoresOverTime]],
            table: Optional[Mapping[str, Any]],
            summaries: Optional[Mapping[str, Mapping[int, Any]]] = None
           ) -> Dict[str, Any]:
  """The plotted points, the held-out table and the runs' summaries,
  JSON-ready."""
  listed: Dict[str, Dict[str, List[Any]]] = {}
  for optimiser, seeds in curves.items():
    listed[optimiser] = {
        str(seed): {"minutes": c.minutes.tolist(),
                    "meta_steps": c.meta_steps.tolist(),
                    "scores": c.scores.tolist()}
        for seed, c in sorted(seeds.items())}
  return {"validation_score_over_time": listed, "held_out": table,
          "runs": {o: {str(seed): summary for seed, summary in seeds.items()}
                   for o, seeds in (summaries or {}).items()}}
