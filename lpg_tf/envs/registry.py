"""Name -> environment registry for the 15 training environments of Appendix A."""

from typing import Optional

from lpg_tf import errors
from lpg_tf.envs import base
from lpg_tf.envs import chain
from lpg_tf.envs import grid_world

TABULAR_PREFIX = "tabular/"
RANDOM_PREFIX = "random/"
CHAIN_PREFIX = "chain/"

NAMES = tuple(
    [TABULAR_PREFIX + n for n in grid_world.TABULAR_GRIDS]
    + [RANDOM_PREFIX + n for n in grid_world.RANDOM_GRIDS]
    + [CHAIN_PREFIX + n for n in chain.CHAINS])


def is_grid(name: str) -> bool:
  """Whether `name` is a grid world (and so takes an action space)."""
  return name.startswith(TABULAR_PREFIX) or name.startswith(RANDOM_PREFIX)


def make(name: str, action_space: Optional[str] = None) -> base.Environment:
  """Builds the in-graph batched environment called `name`.

  Args:
    name: one of NAMES, e.g. "tabular/dense" or "chain/long_noisy".
    action_space: for grid worlds, base.MOVE (9 actions, the default),
      base.MOVE_AND_COLLECT (18 actions) or base.SAMPLED (one of the two per
      lifetime); must be None for chains.

  Raises:
    ValueError: for an unknown name or an action space the environment lacks.
  """
  if name not in NAMES:
    raise errors.ConfigError(
        f"Unknown environment {name!r}; valid names: {', '.join(NAMES)}")
  if is_grid(name):
    action_space = base.MOVE if action_space is None else action_space
    if action_space not in base.GRID_ACTION_SPACES:
      raise errors.ConfigError(f"Unknown action space {action_space!r} for {name}; "
                       f"valid: {', '.join(base.GRID_ACTION_SPACES)}")
    kind, short = name.split("/")
    if kind == "tabular":
      return grid_world.TabularGridWorld(
          name, grid_world.TABULAR_GRIDS[short], action_space)
    return grid_world.RandomGridWorld(
        name, grid_world.RANDOM_GRIDS[short], action_space)
  if action_space is not None:
    raise errors.ConfigError(f"{name} has a fixed action space of 2 actions; "
                     f"action_space must be None, got {action_space!r}")
  return chain.DelayedChain(name, chain.CHAINS[name[len(CHAIN_PREFIX):]])
