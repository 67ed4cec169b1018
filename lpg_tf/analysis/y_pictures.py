"""Pictures of y over a tabular grid (Figure 4): V^pi next to y's best component.

One row per fixed policy of the probe (`y_probe`), one panel per map over the
H x W cells with every object present (the states of Figure 4): the true
values V^pi, the component of the rule's y that correlates best with them,
the same for the freshly initialised rule, and the TD value estimate. Cells
visited fewer than `min_visits` times are blank; objects are marked + and -
by the sign of their reward.
"""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from lpg_tf.analysis import y_probe
from lpg_tf.envs import grid_model

PNG_NAME = "probe.png"


def all_present_map(model: grid_model.GridModel,
                    per_state: np.ndarray) -> np.ndarray:
  """`[H, W]` a per-state quantity `[S]` at the states where every object is
  present (the agent on each cell in turn)."""
  cells = np.arange(model.num_cells)
  states = model.state_index(cells, 2**model.num_objects - 1)
  return per_state[states].reshape(model.height, model.width)


def plot_probe(probe: y_probe.Probe, path: str) -> str:
  """Draws the probe's maps (module docstring) to `path`; returns `path`."""
  model, result = probe.model, probe.result
  columns = ("true value V^pi", "rule: y component {k}",
             "untrained rule: y component {k}", "TD value estimate")
  fig, axes = plt.subplots(len(result.policies), len(columns),
                           figsize=(3.2 * len(columns),
                                    3.0 * len(result.policies)),
                           squeeze=False)
  for row, policy in enumerate(result.policies):
    visited = probe.rule.visits[row] >= result.min_visits
    maps = (probe.true_values[row],
            probe.rule.y[row, :, policy.rule.best_component],
            probe.untrained_rule.y[row, :, policy.untrained_rule.best_component],
            probe.td.value_estimate[row])
    components = (None, policy.rule.best_component,
                  policy.untrained_rule.best_component, None)
    for column, (title, values, k) in enumerate(zip(columns, maps, components)):
      ax = axes[row, column]
      shown = all_present_map(model, np.where(visited, values, np.nan))
      image = ax.imshow(np.ma.masked_invalid(shown), cmap="viridis")
      fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
      for cell, reward in zip(model.object_cells, model.object_rewards):
        ax.text(cell % model.width, cell // model.width,
                "+" if reward > 0 else "-", ha="center", va="center",
                color="red", fontsize=12, fontweight="bold")
      ax.set_title(title.format(k=k), fontsize=9)
      ax.set_xticks([])
      ax.set_yticks([])
    axes[row, 0].set_ylabel(f"{policy.policy} policy")
  fig.suptitle(f"{result.env} ({result.action_space}), gamma={result.gamma}, "
               f"{result.env_steps} steps per policy; all objects present",
               fontsize=10)
  fig.tight_layout()
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path
