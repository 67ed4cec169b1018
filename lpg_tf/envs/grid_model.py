"""The exact model of a tabular grid world (Appendix A.1), in numpy.

For one lifetime's instance (the object cells `sample_instances` drew), this is
the MDP that `grid_world.TabularGridWorld.transition` samples from, written out:
the next state's distribution P(s'|s, a), the reward R(s, a) and the probability
that the transition terminates the episode. Analyses (true values, the
policy-evaluation probe of y, Figures 4-5) read it; it lives with the
environment because it restates the environment's dynamics (grid_world's module
docstring, point by point) and is tested against them.

A state index is `cell * 2**M + sum_i present_i * 2**i`. Within one transition
the agent moves deterministically, so s' = (next cell, next presence bits) and
only the presence bits are random: every object present and not collected stays,
the collected one (at most one: no two objects share a cell) stays absent, and
every object that was absent reappears independently with its eps_respawn. The
reward and the termination depend only on which object is collected: r and
eps_term of that object.

What the model leaves out: the `max_episode_steps` truncation (the step count is
not part of the state index, so a time limit cannot be a property of the state)
and the episode start (a uniformly random free cell, all objects present). Values
computed from the model are the values of the untruncated, discounted MDP; with
gamma^max_episode_steps small (0.99^500 < 0.007) the truncated and untruncated
values differ little away from the episode's last steps.
"""

from typing import NamedTuple, Sequence

import numpy as np

from lpg_tf import errors
from lpg_tf.envs import base
from lpg_tf.envs import grid_world

NO_OBJECT = -1  # `GridModel.collected` where a transition collects nothing.


class GridModel(NamedTuple):
  """The MDP of one tabular grid world instance (module docstring).

  S = C * 2**M states, A actions, C cells, M objects.

  Attributes:
    height, width: the grid's H and W.
    object_cells: `[M]` int, each object's cell (the instance).
    object_rewards: `[M]` float64, each object's reward r.
    next_cell: `[S, A]` int, the agent's cell after action a in state s.
    collected: `[S, A]` int, the object the transition collects, or NO_OBJECT.
    reward: `[S, A]` float64, R(s, a).
    p_terminate: `[S, A]` float64, the probability that (s, a) ends the episode.
    next_bits: `[S, A, 2**M]` float64, the distribution of the next presence
      bits (s' = (next_cell, b')); S A 2**M numbers, 74 MB for the largest
      tabular grid (longer_horizon).
  """
  height: int
  width: int
  object_cells: np.ndarray
  object_rewards: np.ndarray
  next_cell: np.ndarray
  collected: np.ndarray
  reward: np.ndarray
  p_terminate: np.ndarray
  next_bits: np.ndarray

  @property
  def num_objects(self) -> int:
    return len(self.object_cells)

  @property
  def num_cells(self) -> int:
    return self.height * self.width

  @property
  def num_states(self) -> int:
    return self.next_cell.shape[0]

  @property
  def num_actions(self) -> int:
    return self.next_cell.shape[1]

  def state_index(self, cell, bits):
    """`cell * 2**M + bits`, for ints or int arrays."""
    return cell * 2**self.num_objects + bits

  def cell_and_bits(self, state):
    """(cell, presence bits) of state indices."""
    return divmod(state, 2**self.num_objects)

  def expected_next(self, values: np.ndarray) -> np.ndarray:
    """`[S, A]` E[V(s') | s, a] for `values` `[S]` (termination not applied)."""
    per_cell = np.asarray(values, np.float64).reshape(self.num_cells, -1)
    return np.einsum("sab,sab->sa", per_cell[self.next_cell], self.next_bits)

  def policy_transitions(self, policy: np.ndarray) -> np.ndarray:
    """`[S, S]` sum_a pi(a|s) (1 - p_terminate(s, a)) P(s'|s, a).

    The transition matrix of the episode continuing under `policy` `[S, A]`
    (rows sum to 1 minus the probability of terminating): V^pi solves
    V = R_pi + gamma * policy_transitions(pi) @ V.
    """
    state = np.arange(self.num_states)
    weight = policy * (1.0 - self.p_terminate)  # [S, A]
    column = self.state_index(self.next_cell[..., None],
                              np.arange(2**self.num_objects))  # [S, A, 2^M]
    row = np.broadcast_to(state[:, None, None], column.shape)
    matrix = np.zeros([self.num_states, self.num_states])
    np.add.at(matrix, (row.ravel(), column.ravel()),
              (weight[..., None] * self.next_bits).ravel())
    return matrix

  def transitions(self) -> np.ndarray:
    """`[S, A, S]` P(s'|s, a), termination not applied; for small grids."""
    result = np.zeros([self.num_states, self.num_actions, self.num_states])
    per_cell = result.reshape(self.num_states, self.num_actions,
                              self.num_cells, -1)
    s, a = np.meshgrid(np.arange(self.num_states), np.arange(self.num_actions),
                       indexing="ij")
    per_cell[s, a, self.next_cell] = self.next_bits
    return result


def _moves(height: int, width: int, action_space: str):
  """`[C, A]` next cell and collect cell (-1: none) of every cell and action."""
  cell = np.arange(height * width)[:, None]
  action = np.arange(grid_world.NUM_MOVES * (
      2 if action_space == base.MOVE_AND_COLLECT else 1))[None, :]
  direction = action % grid_world.NUM_MOVES
  row = cell // width + direction // 3 - 1
  col = cell % width + direction % 3 - 1
  inside = (row >= 0) & (row < height) & (col >= 0) & (col < width)
  target = np.where(inside, row * width + col, cell)
  if action_space == base.MOVE:
    return target, target
  is_collect = action >= grid_world.NUM_MOVES
  return (np.where(is_collect, cell, target),
          np.where(is_collect & inside, target, -1))


def _presence(p_respawn: np.ndarray) -> np.ndarray:
  """`[M + 1, 2**M, 2**M]`: `[c + 1, b, b']` is the probability of the next
  presence bits b' from bits b when object c is collected (c = NO_OBJECT:
  none)."""
  num_objects = len(p_respawn)
  bits = np.arange(2**num_objects)
  present = (bits[:, None] >> np.arange(num_objects)) & 1  # [2^M, M]
  result = np.zeros([num_objects + 1, 2**num_objects, 2**num_objects])
  for index in range(num_objects + 1):
    collected = np.arange(num_objects) == index - 1
    before = present[:, None, :].astype(bool)  # [b, 1, M]
    after = present[None, :, :].astype(bool)  # [1, b', M]
    stays = before & ~collected
    # Per object: present and not collected -> present; collected -> absent;
    # absent before -> present with eps_respawn.
    probability = np.where(
        stays, after.astype(float),
        np.where(collected, (~after).astype(float),
                 np.where(after, p_respawn, 1.0 - p_respawn)))
    result[index] = np.prod(probability, axis=-1)
  return result


def tabular_model(env: grid_world.TabularGridWorld,
                  object_cells: Sequence[int]) -> GridModel:
  """The exact model of `env` for the instance `object_cells` `[M]`.

  Args:
    env: a tabular grid world (either action space).
    object_cells: one row of `env.sample_instances`: distinct cells, one per
      object, objects in the order of the grid's object list.

  Raises:
    errors.ConfigError: `env` is not a tabular grid world, or `object_cells`
      is not M distinct cells of its grid.
  """
  if not isinstance(env, grid_world.TabularGridWorld):
    raise errors.ConfigError(
        f"{env.spec.name} is not a tabular grid world: its states are not "
        "indices, so it has no tabular model")
  grid = env.grid
  objects = [t for t in grid.objects for _ in range(t.count)]
  num_cells = grid.height * grid.width
  cells = np.asarray(object_cells, np.int64).reshape(-1)
  if (len(cells) != len(objects) or len(set(cells.tolist())) != len(cells)
      or cells.min() < 0 or cells.max() >= num_cells):
    raise errors.ConfigError(
        f"{env.spec.name}: an instance is {len(objects)} distinct cells in "
        f"[0, {num_cells}), got {cells.tolist()}")
  reward = np.array([t.reward for t in objects], np.float64)
  p_terminate = np.array([t.p_terminate for t in objects], np.float64)
  p_respawn = np.array([t.p_respawn for t in objects], np.float64)

  next_cell, collect_cell = _moves(grid.height, grid.width,
                                   env.spec.action_space)  # [C, A]
  object_at = np.full(num_cells + 1, NO_OBJECT)  # index -1: no cell
  object_at[cells] = np.arange(len(cells))
  num_objects = len(cells)
  state = np.arange(num_cells * 2**num_objects)
  cell, bits = divmod(state, 2**num_objects)
  target_object = object_at[collect_cell[cell]]  # [S, A]
  present = (bits[:, None] >> np.maximum(target_object, 0)) & 1
  collected = np.where((target_object >= 0) & (present == 1), target_object,
                       NO_OBJECT)
  hit = collected >= 0
  return GridModel(
      height=grid.height, width=grid.width, object_cells=cells,
      object_rewards=reward,
      next_cell=next_cell[cell],
      collected=collected,
      reward=np.where(hit, reward[collected], 0.0),
      p_terminate=np.where(hit, p_terminate[collected], 0.0),
      next_bits=_presence(p_respawn)[collected + 1, bits[:, None]])
