"""Learning curves of agent training: the final return and curve.png.

A curve is one row per (seed, logging point): the mean return of the episodes
that ended since the previous point (the rows of curve.csv, written through
`lpg_tf.loggers` as training goes). `final_returns` summarises a run's end;
`plot_curves` draws one line per seed (or, with several seeds, their mean with a
shaded standard-error band as well), and a dashed reference line for the
uniformly random policy.
"""

import math
from typing import Dict, Optional, Sequence

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
