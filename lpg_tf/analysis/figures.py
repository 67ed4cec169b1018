"""Drawings of the paper's Figures 3-7 from the numbers the analyses compute.

Each function draws one figure to a PNG and returns its path; the numbers come
from the analysis modules (`value_horizons`, `convergence`, `y_probe`,
`meta_curves`) and from a rule comparison (`experiments/compare.py`), and are
written next to the picture by `experiments/analyse.py`.
"""

import math
from typing import Mapping, Optional, Sequence, Tuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from lpg_tf.analysis import convergence as convergence_lib
from lpg_tf.analysis import curves
from lpg_tf.analysis import meta_curves
from lpg_tf.analysis import value_horizons
from lpg_tf.analysis import y_pictures
from lpg_tf.analysis import y_probe
from lpg_tf.envs import grid_model

# Arrow of each of the 9 move directions (row-major 3 x 3 neighbourhood).
_DIRECTIONS = [(k % 3 - 1, k // 3 - 1) for k in range(9)]


def _grid(num_panels: int, columns: int, size: Tuple[float, float]):
  rows = math.ceil(num_panels / columns)
  fig, axes = plt.subplots(rows, columns, figsize=(size[0] * columns,
                                                   size[1] * rows),
                           squeeze=False)
  for ax in axes.flat[num_panels:]:
    ax.axis("off")
  return fig, axes.flat


def _save(fig, path: str, title: str) -> str:
  fig.suptitle(title, fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def training_curves(
    per_env: Mapping[str, Mapping[str, Tuple[np.ndarray, np.ndarray]]],
    random_returns: Mapping[str, Optional[float]], path: str,
    title: str) -> str:
  """Figure 3: one panel per environment, each rule's mean return with a
  shaded standard error over seeds, and the uniformly random policy dashed.

  Args:
    per_env: environment -> rule label -> (`[points]` environment steps,
      `[points, seeds]` returns, NaN where a seed ended no episode).
    random_returns: environment -> the random policy's return (or None).
    path: the PNG.
    title: the figure's title.
  """
  fig, axes = _grid(len(per_env), min(5, len(per_env)), (3.4, 2.8))
  for ax, (env_name, rules) in zip(axes, per_env.items()):
    for label, (steps, points) in rules.items():
      mean, stderr = curves.mean_and_stderr(points)
      keep = np.isfinite(mean)
      x = np.asarray(steps, np.float64)[keep]
      line, = ax.plot(x, mean[keep], lw=1.3, label=label)
      ax.fill_between(x, (mean - stderr)[keep], (mean + stderr)[keep],
                      color=line.get_color(), alpha=0.2)
    if random_returns.get(env_name) is not None:
      ax.axhline(random_returns[env_name], color="grey", ls="--", lw=1,
                 label="random policy")
    ax.set_title(env_name, fontsize=9)
    ax.set_xlabel("environment steps", fontsize=8)
    ax.tick_params(labelsize=7)
  axes[0].set_ylabel("episode return", fontsize=8)
  axes[0].legend(fontsize=7)
  return _save(fig, path, title)


def _map(ax, model: grid_model.GridModel, per_state: np.ndarray,
         visited: np.ndarray, title: str) -> None:
  shown = y_pictures.all_present_map(model, np.where(visited, per_state,
                                                     np.nan))
  image = ax.imshow(np.ma.masked_invalid(shown), cmap="viridis")
  plt.colorbar(image, ax=ax, fraction=0.046, pad=0.04).ax.tick_params(
      labelsize=6)
  _mark_objects(ax, model)
  ax.set_title(title, fontsize=8)
  ax.set_xticks([])
  ax.set_yticks([])


def _mark_objects(ax, model: grid_model.GridModel) -> None:
  for cell, reward in zip(model.object_cells, model.object_rewards):
    ax.text(cell % model.width, cell // model.width,
            "+" if reward > 0 else "-", ha="center", va="center", color="red",
            fontsize=11, fontweight="bold")


def prediction_maps(probe: y_probe.Probe, path: str) -> str:
  """Figure 4: for the near-optimal policy, (b) the policy's most likely move
  in each cell over its true values, and (c) every component of y, each over
  the grid with every object present (cells visited too rarely blank)."""
  index = y_probe.POLICIES.index(y_probe.NEAR_OPTIMAL)
  model, result = probe.model, probe.result
  statistics = result.policies[index]
  visited = probe.rule.visits[index] >= result.min_visits
  y = probe.rule.y[index]
  m = y.shape[-1]
  fig, axes = _grid(m + 2, 6, (2.3, 2.2))
  _map(axes[0], model, probe.true_values[index], visited,
       "(b) near-optimal policy, V^pi")
  states = model.state_index(np.arange(model.num_cells),
                             2**model.num_objects - 1)
  moves = probe.policies[index][states][:, :len(_DIRECTIONS)].argmax(-1)
  for cell, move in zip(range(model.num_cells), moves):
    dx, dy = _DIRECTIONS[move]
    if (dx, dy) != (0, 0):
      axes[0].arrow(cell % model.width, cell // model.width, 0.3 * dx,
                    0.3 * dy, head_width=0.15, color="white", lw=0.6)
  _map(axes[1], model, probe.td.value_estimate[index], visited,
       "TD(lambda) value estimate")
  for k in range(m):
    best = " (best |r|)" if k == statistics.rule.best_component else ""
    _map(axes[k + 2], model, y[:, k], visited, f"(c) y[{k}]{best}")
  return _save(fig, path, (
      f"{result.env} ({result.action_space}), instance "
      f"{list(result.instance)}, gamma={result.gamma}: y after "
      f"{result.env_steps} steps of policy evaluation; H(y) "
      f"{statistics.rule.entropy:.2f} of ln m = {result.max_entropy:.2f}, "
      f"held-out R^2 of V from y {statistics.rule.held_out_r2:.2f}"))


def value_regression(result: value_horizons.ValueHorizons, path: str) -> str:
  """Figure 5: one panel per discount, held-out MSE of the regressions from
  y and from the TD value over the updates, with the two references."""
  fig, axes = _grid(len(result.discounts), len(result.discounts), (3.2, 3.0))
  steps = np.asarray(result.recorded_updates) * result.env_steps_per_update
  for d, (ax, discount) in enumerate(zip(axes, result.discounts)):
    ax.plot(steps, result.mse_y[d], "-o", ms=3, label="g: y -> V (rule)")
    ax.plot(steps, result.mse_td[d], "-s", ms=3, label="h: TD(lambda) v -> V")
    ax.axhline(result.mse_exact_value[d], color="green", ls=":",
               label=f"h: exact V_{result.gamma} -> V")
    ax.axhline(result.mse_mean[d], color="grey", ls="--",
               label="predict the mean")
    ax.set_yscale("log")
    ax.set_title(f"true values at discount {discount}", fontsize=9)
    ax.set_xlabel("environment steps per instance", fontsize=8)
    ax.tick_params(labelsize=7)
  axes[0].set_ylabel("held-out mean squared error", fontsize=8)
  axes[0].legend(fontsize=7)
  return _save(fig, path, (
      f"Value regression on {result.held_out_instances} held-out instances of "
      f"{result.env} ({result.action_space}); y and v updated with gamma = "
      f"{result.gamma}, regressions fitted on {result.train_instances} "
      "instances"))


def _rgb(y: np.ndarray, model: grid_model.GridModel, visited: np.ndarray,
         components: Sequence[int], scale: np.ndarray) -> np.ndarray:
  """`[H, W, 3]` three components of y as colour channels, white where not
  visited."""
  channels = [y_pictures.all_present_map(model, y[:, k] / scale[i])
              for i, k in enumerate(components)]
  mask = y_pictures.all_present_map(model, visited.astype(np.float64)) > 0
  image = np.clip(np.stack(channels, -1), 0.0, 1.0)
  image[~mask] = 1.0
  return image


def prediction_convergence(result: convergence_lib.Convergence,
                           example: convergence_lib.Example, path: str) -> str:
  """Figure 6: (a-b) three components of y0 (top) and y1 (bottom) of the
  first instance as colours, before and after the updates; (c) D_KL(y0||y1)
  over the updates, averaged over instances, for the rule and the untrained
  reference."""
  fig = plt.figure(figsize=(12, 4.4))
  grid = fig.add_gridspec(2, 4, width_ratios=(1, 1, 0.15, 2.4))
  final = example.y0[-1][example.visited]
  components = list(np.argsort(-final.std(0))[:3])  # Most varied across states.
  for column, (moment, name) in enumerate(((0, "(a) before"),
                                           (1, "(b) after"))):
    both = np.concatenate([example.y0[moment][example.visited][:, components],
                           example.y1[moment][example.visited][:, components]])
    scale = np.maximum(both.max(0), 1e-12)
    for row, (y, label) in enumerate(((example.y0, "y0"), (example.y1, "y1"))):
      ax = fig.add_subplot(grid[row, column])
      ax.imshow(_rgb(y[moment], example.model, example.visited, components,
                     scale))
      _mark_objects(ax, example.model)
      ax.set_xticks([])
      ax.set_yticks([])
      ax.set_title(f"{name}: {label}", fontsize=8)
  ax = fig.add_subplot(grid[:, 3])
  steps = np.asarray(result.recorded_updates) * result.env_steps_per_update
  for curve, label in ((result.rule, "rule"),
                       (result.untrained_rule, "untrained rule")):
    mean, stderr = np.asarray(curve.mean), np.asarray(curve.stderr)
    line, = ax.plot(steps, mean, lw=1.5, label=label)
    ax.fill_between(steps, mean - stderr, mean + stderr, alpha=0.2,
                    color=line.get_color())
  ax.set_yscale("log")
  ax.set_xlabel("environment steps per agent")
  ax.set_ylabel("D_KL(y0 || y1)")
  ax.set_title(f"(c) averaged over {result.instances} instances "
               f"(components {components} shown left)", fontsize=9)
  ax.legend(fontsize=8)
  return _save(fig, path, (
      f"Convergence of y on {result.env} ({result.action_space}), gamma = "
      f"{result.gamma}; initial y logits ~ N(0, {result.init_stddev}^2)"))


def _mean_and_stderr(per_seed: Sequence[Tuple[np.ndarray, np.ndarray]]
                     ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """(steps, mean, standard error) over seeds' curves, on the steps all
  seeds logged."""
  steps = per_seed[0][0]
  for other, _ in per_seed[1:]:
    steps = np.intersect1d(steps, other)
  values = np.stack([v[np.isin(s, steps)] for s, v in per_seed], axis=1)
  mean, stderr = curves.mean_and_stderr(values)
  return steps, mean, stderr


def ablations(runs: Mapping[str, Sequence[meta_curves.MetaCurves]], path: str,
              title: str) -> str:
  """Figure 7: each variant's validation score over meta-steps, then each
  training group's smoothed return, mean over seeds (standard error shaded).

  Args:
    runs: variant label -> its seeds' curves.
    path: the PNG.
    title: the figure's title.
  """
  groups = sorted({g for seeds in runs.values() for c in seeds
                   for g in c.returns})
  fig, axes = _grid(len(groups) + 1, min(4, len(groups) + 1), (3.6, 2.9))
  panels = [(axes[0], lambda c: c.scores.get("validation/score"))] + [
      (ax, lambda c, g=group: (c.returns[g][0], c.smoothed(g))
       if g in c.returns else None) for ax, group in zip(axes[1:], groups)]
  for label, seeds in runs.items():
    for ax, pick in panels:
      picked = [p for p in (pick(c) for c in seeds) if p is not None]
      if not picked:
        continue
      steps, mean, stderr = _mean_and_stderr(picked)
      line, = ax.plot(steps, mean, lw=1.2, label=label)
      ax.fill_between(steps, mean - stderr, mean + stderr, alpha=0.15,
                      color=line.get_color())
  axes[0].set_title("validation score (0 random, 1 A2C)", fontsize=9)
  axes[0].legend(fontsize=7)
  for ax, group in zip(axes[1:], groups):
    ax.set_title(f"{group}: training return", fontsize=8)
  for ax in axes[:len(groups) + 1]:
    ax.set_xlabel("meta-step", fontsize=8)
    ax.tick_params(labelsize=7)
  return _save(fig, path, title)
