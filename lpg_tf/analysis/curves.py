"""Learning curves of agent training: the final return and curve.png.

A curve is one row per (seed, logging point): the mean return of the episodes
that ended since the previous point (the rows of curve.csv, written through
`lpg_tf.loggers` as training goes). `final_returns` summarises a run's end;
`plot_curves` draws one line per seed (or, with several seeds, their mean with a
shaded standard-error band as well), and a dashed reference line for the
uniformly random policy. `plot_comparison` draws several rules' mean curves
(standard-error bands) on one environment against the same reference.
"""

import math
from typing import Dict, Mapping, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from lpg_tf.learning import evaluation

# The one summary of a run's end, defined with the evaluation of fresh lifetimes.
final_returns = evaluation.final_returns

CSV_NAME = "curve.csv"
PNG_NAME = "curve.png"
TB_DIR = "tb"
CSV_FIELDS = ("seed", "env_steps", "episode_return", "episodes")


def plot_curves(rows: Sequence[Dict[str, float]], path: str, title: str,
                random_return: Optional[float], x_label: str = "environment steps",
                x_scale: float = 1.0) -> str:
  """Return vs steps, one line per seed, mean +- standard error, random reference."""
  seeds = sorted({int(r["seed"]) for r in rows})
  fig, ax = plt.subplots(figsize=(7, 4.5))
  per_seed = {}
  for seed in seeds:
    points = [(r["env_steps"], r["episode_return"]) for r in rows
              if int(r["seed"]) == seed and not math.isnan(r["episode_return"])]
    if not points:
      continue
    x, y = np.array(points).T
    per_seed[seed] = (x, y)
    ax.plot(x * x_scale, y, lw=0.8, alpha=0.6, label=f"seed {seed}")
  if len(per_seed) > 1:
    grid = np.unique(np.concatenate([x for x, _ in per_seed.values()]))
    stacked = np.stack([np.interp(grid, x, y) for x, y in per_seed.values()])
    mean = stacked.mean(0)
    stderr = stacked.std(0, ddof=1) / np.sqrt(len(per_seed))
    ax.plot(grid * x_scale, mean, color="black", lw=1.8, label="mean")
    ax.fill_between(grid * x_scale, mean - stderr, mean + stderr, color="black",
                    alpha=0.15, label="± standard error")
  return _finish(fig, ax, path, title, x_label, random_return, legend_size=7)


def mean_and_stderr(points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
  """Per logging point, the mean over seeds and its standard error.

  Args:
    points: `[logging points, seeds]` returns, NaN where a seed ended no
      episode (left out of that point).

  Returns:
    (mean, standard error), `[logging points]` each: NaN where no seed has a
    return, standard error 0 where only one has.
  """
  points = np.asarray(points, np.float64)
  finite = np.isfinite(points)
  counts = finite.sum(axis=1)
  values = np.where(finite, points, 0.0)
  with np.errstate(invalid="ignore", divide="ignore"):
    mean = np.where(counts > 0, values.sum(axis=1) / counts, np.nan)
    squares = np.where(finite, (points - mean[:, None]) ** 2, 0.0).sum(axis=1)
    stderr = np.where(counts > 1,
                      np.sqrt(squares / np.maximum(counts - 1, 1) / counts),
                      np.where(counts == 1, 0.0, np.nan))
  return mean, stderr


def plot_comparison(curves: Mapping[str, Tuple[np.ndarray, np.ndarray]],
                    path: str, title: str, random_return: Optional[float],
                    x_label: str = "environment steps") -> str:
  """Rules' learning curves on one environment: mean +- standard error.

  Args:
    curves: label -> (`[logging points]` environment steps, `[logging points,
      seeds]` returns with NaN where a seed ended no episode).
    path: the PNG to write.
    title: the plot's title.
    random_return: the uniformly random policy's return, a dashed line (None:
      no line).
    x_label: the x axis's label.

  Returns:
    `path`.
  """
  fig, ax = plt.subplots(figsize=(7, 4.5))
  for label, (steps, points) in curves.items():
    mean, stderr = mean_and_stderr(points)
    keep = np.isfinite(mean)
    x = np.asarray(steps, np.float64)[keep]
    line, = ax.plot(x, mean[keep], lw=1.6, label=label)
    ax.fill_between(x, (mean - stderr)[keep], (mean + stderr)[keep],
                    color=line.get_color(), alpha=0.2)
  return _finish(fig, ax, path, title, x_label, random_return, legend_size=8)


def _finish(fig, ax, path: str, title: str, x_label: str,
            random_return: Optional[float], legend_size: int) -> str:
  """The random policy's dashed line, labels and legend; writes and closes."""
  if random_return is not None:
    ax.axhline(random_return, color="grey", ls="--", lw=1.2,
               label="uniformly random policy")
  ax.set_xlabel(x_label)
  ax.set_ylabel("episode return")
  ax.set_title(title)
  ax.legend(fontsize=legend_size, loc="best")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
