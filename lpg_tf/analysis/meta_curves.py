"""Meta-training curves: each environment's return over meta-steps, and the
validation score, read from a meta-training run's TensorBoard summaries.

`experiments/meta_train.py` logs to `DIR/tb` at every logging point (step =
meta-step): `<group>/episode_return`, the mean return of the episodes the
group's lifetimes ended in the window (a group is an environment, grid worlds
once per action space: `tabular/dense[move]`), and with validation on,
`validation/score`, `validation/best_score` and `validation/<env>/return` (the
held-out return of fresh agents trained by the current eta).

`read_scalars` reads every event file (a resumed run writes a new one and
logs again the steps after its checkpoint: the later value of a step wins;
`read_timed_scalars` keeps when each point was written, for curves over wall
clock),
`meta_curves` picks the curves out and smooths the returns, `plot` draws one
panel per environment (raw return faint, smoothed solid, validation returns
as markers) and one for the validation score, and `to_json` gives the numbers.
"""

import glob
import math
import os
from typing import Dict, List, Mapping, NamedTuple, Optional, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf

RETURN_SUFFIX = "/episode_return"
VALIDATION_PREFIX = "validation/"
SCORE_TAGS = ("validation/score", "validation/best_score")
# Weight of the exponential moving average (TensorBoard's slider, debiased).
DEFAULT_SMOOTHING = 0.8

Curve = Tuple[np.ndarray, np.ndarray]  # (meta-steps, values), sorted by step.


class TimedCurve(NamedTuple):
  """One tag's points with the wall-clock time each was written at."""
  steps: np.ndarray  # int64, sorted.
  values: np.ndarray  # float64.
  wall_times: np.ndarray  # float64, seconds since the epoch.


class TimedScalars(NamedTuple):
  """A run's scalars and when its first summary was written.

  Attributes:
    curves: tag -> its points.
    start: the earliest wall time of any event (each event file begins with
      one written when its writer opened: for a run, just after it started);
      None when there are no events.
  """
  curves: Dict[str, TimedCurve]
  start: Optional[float]


def read_timed_scalars(tb_dir: str) -> TimedScalars:
  """Every scalar of the event files under `tb_dir`, with wall times.

  Events are taken in the order they were written (wall time); a step logged
  twice (by a run and by its resumption) keeps the later value and time. A
  file whose last record is cut short (a run writing it now) is read up to
  that record.
  """
  events, start = [], None
  for path in glob.glob(os.path.join(tb_dir, "events.out.tfevents.*")):
    try:
      for record in tf.data.TFRecordDataset(path):
        event = tf.compat.v1.Event.FromString(record.numpy())
        start = event.wall_time if start is None else min(start, event.wall_time)
        for value in event.summary.value:
          events.append((event.wall_time, value.tag, event.step,
                         float(tf.make_ndarray(value.tensor))))
    except tf.errors.DataLossError:
      continue
  by_tag: Dict[str, Dict[int, Tuple[float, float]]] = {}
  for wall_time, tag, step, number in sorted(events, key=lambda e: e[0]):
    by_tag.setdefault(tag, {})[step] = (number, wall_time)
  curves = {}
  for tag, points in by_tag.items():
    steps = sorted(points)
    curves[tag] = TimedCurve(
        np.array(steps, np.int64),
        np.array([points[s][0] for s in steps], np.float64),
        np.array([points[s][1] for s in steps], np.float64))
  return TimedScalars(curves, start)


def read_scalars(tb_dir: str) -> Dict[str, Curve]:
  """Every scalar of the event files under `tb_dir`: tag -> (steps, values)
  (`read_timed_scalars` without the times)."""
  return {tag: (curve.steps, curve.values)
          for tag, curve in read_timed_scalars(tb_dir).curves.items()}


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
  """Debiased exponential moving average (TensorBoard's smoothing);
  `weight` 0 leaves the values as they are."""
  if not 0 <= weight < 1:
    raise ValueError(f"weight must be in [0, 1), got {weight}")
  smoothed, average, total = [], 0.0, 0.0
  for value in np.asarray(values, np.float64):
    average = weight * average + (1 - weight) * value
    total = weight * total + (1 - weight)
    smoothed.append(average / total)
  return np.array(smoothed)


class MetaCurves(NamedTuple):
  """What a meta-training run's summaries say about its progress.

  Attributes:
    returns: group -> (meta-steps, training return), groups in name order.
    validation_returns: environment -> (meta-steps, validation return).
    scores: "validation/score" and "validation/best_score" -> curve (absent
      when the run did not validate).
    smoothing: the moving average's weight `smoothed` uses.
  """
  returns: Dict[str, Curve]
  validation_returns: Dict[str, Curve]
  scores: Dict[str, Curve]
  smoothing: float

  def smoothed(self, group: str) -> np.ndarray:
    return smooth(self.returns[group][1], self.smoothing)

  def environments(self) -> List[str]:
    """Environment names, in order: a group without its action space."""
    names = [g.split("[")[0] for g in self.returns] + list(
        self.validation_returns)
    return sorted(set(names))


def meta_curves(scalars: Mapping[str, Curve],
                smoothing: float = DEFAULT_SMOOTHING) -> MetaCurves:
  """Picks the training returns, validation returns and scores out of a run's
  scalars (`read_scalars`)."""
  smooth([], smoothing)  # Checks the weight.
  returns = {tag[:-len(RETURN_SUFFIX)]: curve
             for tag, curve in sorted(scalars.items())
             if tag.endswith(RETURN_SUFFIX)
             and not tag.startswith(VALIDATION_PREFIX)}
  validation = {tag[len(VALIDATION_PREFIX):-len("/return")]: curve
                for tag, curve in sorted(scalars.items())
                if tag.startswith(VALIDATION_PREFIX)
                and tag.endswith("/return")}
  scores = {tag: scalars[tag] for tag in SCORE_TAGS if tag in scalars}
  return MetaCurves(returns, validation, scores, smoothing)


def _plot_environment(ax: plt.Axes, curves: MetaCurves, env: str) -> None:
  for group, (steps, values) in curves.returns.items():
    if group.split("[")[0] != env:
      continue
    space = group[len(env):].strip("[]")
    line, = ax.plot(steps, curves.smoothed(group), lw=1.4,
                    label=f"training {space}".strip())
    ax.plot(steps, values, lw=0.6, alpha=0.3, color=line.get_color())
  if env in curves.validation_returns:
    steps, values = curves.validation_returns[env]
    ax.plot(steps, values, "o", ms=3.5, color="black", label="validation")
  ax.set_title(env, fontsize=9)
  ax.tick_params(labelsize=7)
  ax.legend(fontsize=6, loc="best")


def plot(curves: MetaCurves, path: str, title: str) -> str:
  """One panel per environment and one for the validation score; `path`."""
  environments = curves.environments()
  panels = len(environments) + (1 if curves.scores else 0)
  if not panels:
    raise ValueError("no training returns or validation scores to plot")
  columns = min(4, panels)
  rows = math.ceil(panels / columns)
  fig, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 2.6 * rows),
                           squeeze=False)
  flat = axes.ravel()
  for ax, env in zip(flat, environments):
    _plot_environment(ax, curves, env)
  if curves.scores:
    ax = flat[len(environments)]
    for tag, (steps, values) in curves.scores.items():
      ax.plot(steps, values, marker="o", ms=3, lw=1.2,
              label=tag[len(VALIDATION_PREFIX):])
    ax.axhline(0.0, color="grey", ls="--", lw=0.8)
    ax.axhline(1.0, color="grey", ls=":", lw=0.8)
    ax.set_title("validation score (0 random, 1 A2C)", fontsize=9)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6, loc="best")
  for ax in flat[panels:]:
    ax.axis("off")
  for ax in axes[-1]:
    ax.set_xlabel("meta-step", fontsize=8)
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


def _listed(curve: Curve, smoothed: Optional[np.ndarray] = None
           ) -> Dict[str, list]:
  steps, values = curve
  numbers = {"meta_steps": steps.tolist(), "values": values.tolist()}
  if smoothed is not None:
    numbers["smoothed"] = smoothed.tolist()
  return numbers


def to_json(curves: MetaCurves) -> Dict[str, object]:
  """The plotted numbers, JSON-ready."""
  return {
      "smoothing": curves.smoothing,
      "episode_return": {g: _listed(c, curves.smoothed(g))
                         for g, c in curves.returns.items()},
      "validation_return": {e: _listed(c)
                            for e, c in curves.validation_returns.items()},
      "validation_score": {t[len(VALIDATION_PREFIX):]: _listed(c)
                           for t, c in curves.scores.items()},
  }
