"""Learning curves of agent training: TensorBoard, curve.csv and curve.png.

One row per (seed, logging point): the mean return of the episodes that ended since
the previous point. `curve.png` draws one line per seed (or, with several seeds,
their mean with a shaded standard-error band as well), and a dashed reference line
for the uniformly random policy.
"""

import csv
import math
import os
from typing import Dict, List, Optional, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf

CSV_NAME = "curve.csv"
PNG_NAME = "curve.png"
TB_DIR = "tb"
CSV_FIELDS = ("seed", "env_steps", "episode_return", "episodes")


class CurveWriter:
  """Appends learning-curve points to TensorBoard and curve.csv, then plots."""

  def __init__(self, workdir: str, title: str, x_label: str = "environment steps",
               x_scale: float = 1.0):
    """Opens the writers.

    Args:
      workdir: output directory (must exist).
      title: plot title.
      x_label: what the x axis counts (e.g. "frames" for Atari).
      x_scale: multiplies env_steps on the plot's x axis (4 for frames at skip 4).
    """
    self._workdir = workdir
    self._title = title
    self._x_label = x_label
    self._x_scale = x_scale
    self._rows: List[Dict[str, float]] = []
    self._csv_file = open(os.path.join(workdir, CSV_NAME), "w", newline="")
    self._csv = csv.DictWriter(self._csv_file, fieldnames=CSV_FIELDS)
    self._csv.writeheader()
    self._summary = tf.summary.create_file_writer(os.path.join(workdir, TB_DIR))

  def write(self, env_steps: int, returns: Sequence[float],
            episodes: Sequence[float]) -> None:
    """Records one logging point; `returns[i]` is NaN where seed i ended no episode."""
    with self._summary.as_default(step=env_steps):
      for seed, (ret, count) in enumerate(zip(returns, episodes)):
        row = {"seed": seed, "env_steps": env_steps,
               "episode_return": float(ret), "episodes": int(count)}
        self._rows.append(row)
        self._csv.writerow(row)
        if not math.isnan(ret):
          tf.summary.scalar(f"episode_return/seed_{seed}", ret)
      finite = [r for r in returns if not math.isnan(r)]
      if finite:
        tf.summary.scalar("episode_return/mean", float(np.mean(finite)))
    self._csv_file.flush()

  def scalars(self, env_steps: int, values: Dict[str, float]) -> None:
    """Extra TensorBoard scalars (loss, entropy, throughput)."""
    with self._summary.as_default(step=env_steps):
      for name, value in values.items():
        tf.summary.scalar(name, value)

  def close(self, random_return: Optional[float]) -> str:
    """Flushes the writers and draws curve.png; returns the PNG path."""
    self._csv_file.close()
    self._summary.flush()
    return plot_curves(self._rows, os.path.join(self._workdir, PNG_NAME),
                       self._title, random_return, self._x_label, self._x_scale)


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
  if random_return is not None:
    ax.axhline(random_return, color="grey", ls="--", lw=1.2,
               label="uniformly random policy")
  ax.set_xlabel(x_label)
  ax.set_ylabel("episode return")
  ax.set_title(title)
  ax.legend(fontsize=7, loc="best")
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path
