"""The grid world task that the analyses of Figures 4-6 probe y on, and its
instances.

Section 4.3 probes y "for a given tabular grid world instance and for a fixed
policy" and, "to avoid overfitting", on "an unseen grid world task with an
unseen action space" (footnote 3). UNSEEN_GRID is a tabular grid world that is
none of Appendix A's: a 9 x 9 grid (no Appendix A grid has that size) with
two rewarding and two punishing objects, each ending the episode when
collected (like tabular/sparse, whose grid is 13 x 13 with one of each).
Episodes are short and start on random cells, so a near-optimal policy's
trajectories still cover the whole grid, and the true values fall off with the
distance to the goals at every discount. Appendix A has only the two action
spaces, and lpg_tf's populations train every grid in both (each grid is a
MOVE and a MOVE_AND_COLLECT group), so the task is unseen but the action space
is not: the paper's unseen action space has no counterpart here.

Instances (object cells) are drawn from `[seed, INSTANCE_KEY_WORD]`, a stream
no meta-training, validation or comparison draws from (rule_tuning's
docstring lists theirs), and every instance of one draw is distinct.
"""

from typing import Optional

import numpy as np
import tensorflow as tf

from lpg_tf import envs
from lpg_tf.envs import grid_world

NAME = "probe/unseen"
UNSEEN_GRID = grid_world.GridSpec(
    9, 9, (grid_world.ObjectType(2, 1.0, 1.0, 0.0),
           grid_world.ObjectType(2, -1.0, 1.0, 0.0)), 100)
# The training grid the task is closest to (objects that end the episode,
# tabular agents with SGD): the agent's alpha default to a rule's own for it
# (a shipped rule's hyperparameters.json) or to its Table 3 row.
REFERENCE_ENV = "tabular/sparse"
# Second word of the instance key: none of the words meta-training (0..3,
# 1000 + group), comparisons (5000, 6000) or train_agent (0) use.
INSTANCE_KEY_WORD = 8000


def make(action_space: Optional[str] = None) -> grid_world.TabularGridWorld:
  """The unseen task in `action_space` (default envs.MOVE)."""
  return grid_world.TabularGridWorld(
      NAME, UNSEEN_GRID, envs.MOVE if action_space is None else action_space)


def instances(env: grid_world.TabularGridWorld, num: int,
              seed: int) -> np.ndarray:
  """`[num, M]` distinct instances (object cells) of `env`, drawn from
  `[seed, INSTANCE_KEY_WORD]` (in the order drawn, repeats left out)."""
  if num <= 0:
    raise ValueError(f"num must be positive, got {num}")
  candidates = num
  while True:
    rows = env.sample_instances(
        tf.constant([seed, INSTANCE_KEY_WORD], tf.int32), candidates).numpy()
    _, first = np.unique(rows, axis=0, return_index=True)
    drawn = rows[np.sort(first)]
    if len(drawn) >= num:
      return drawn[:num]
    candidates *= 2
