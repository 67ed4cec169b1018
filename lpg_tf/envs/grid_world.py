"""Tabular (A.1) and random (A.2) grid worlds of Appendix A, in-graph, batched.

An agent moves on an H x W grid holding M objects of N types. Collecting an
object pays its reward r, ends the episode with probability eps_term, and
removes the object, which then reappears with probability eps_respawn at every
time step. Appendix A fixes the sizes, objects, action spaces and step limits
(TABULAR_GRIDS, RANDOM_GRIDS); the remaining details are ours:

  * Cells are flat indices `row * W + col`. Objects are not obstacles, and no
    two objects share a cell: layouts and respawn cells are distinct draws.
  * Moves: 9 directions, the 3 x 3 neighbourhood in row-major order, so
    direction k moves by `(k // 3 - 1, k % 3 - 1)` rows and columns and
    STAY = 4. A move whose target lies off the grid leaves the agent in place
    (also diagonally along a wall: the whole move is cancelled).
  * MOVE action space (9 actions): action k moves in direction k and collects
    any present object on the cell the agent ends on, including the cell it
    stays on.
  * MOVE_AND_COLLECT action space (18 actions): actions 0-8 only move (moving
    onto an object does not collect it); action 9 + k collects the object on
    the cell in direction k without moving (k = STAY: the agent's own cell).
    Collecting towards a cell off the grid does nothing.
  * Within one transition: move, then collect (reward r, termination with
    probability eps_term of the collected object, the object becomes absent),
    then every object that was already absent before this transition reappears
    independently with probability eps_respawn; an object collected in this
    transition therefore stays absent for at least one observation, even when
    eps_respawn = 1.
  * Tabular grids: object cells are drawn once per lifetime by
    `sample_instances` (distinct, uniform) and objects always reappear on their
    own cell, even under the agent (it is then collected on the next transition
    that arrives at or stays on that cell in the MOVE space).
  * Random grids: object cells are drawn at every episode start (distinct,
    uniform), and an object reappears on a uniformly random cell free of the
    agent and of every other present object (objects reappearing in the same
    transition get distinct cells). A random grid has no lifetime-specific
    instance; `sample_instances` returns a dummy `[num]` int32 tensor of zeros
    so that all environments share one interface.
  * Episode start: all objects present, the agent on a uniformly random cell
    holding no object.
  * Episode end: a termination drawn from eps_term gives discount 0 and
    truncated False; otherwise the `max_episode_steps`-th transition gives
    discount 0 and truncated True.
  * Tabular observation: the int32 state index
    `cell * 2**M + sum_i present_i * 2**i` (objects numbered in the order of the
    grid's object list), so `num_states = H * W * 2**M`, the p x 2^m states of
    A.1.
  * Random observation: float32 {0,1} of shape `[H, W, N + 1]`, channels last:
    channel n marks the present objects of type n and the last channel marks the
    agent. A.2 writes {0,1}^{N x H x W}, which leaves out the agent; without its
    own position the agent could not tell where it is, so we add that channel.
  * Sampled action space (base.SAMPLED, Appendix A.1's "sampled per
    lifetime"): every lifetime's instance (`SampledInstance`) draws MOVE or
    MOVE_AND_COLLECT with probability 1/2 each, so lifetimes of both spaces
    share one environment (and one set of shapes). It has 18 actions; a
    MOVE_AND_COLLECT lifetime's transitions are those of that space, a MOVE
    lifetime's those of MOVE, where an action 9 + k (which its agent never
    takes: `split_sampled_observation`) moves in direction k. The observation
    tells the agent its space: a tabular one adds `num_states` of the fixed
    space to the state index of a MOVE_AND_COLLECT lifetime, a random one
    appends a channel of ones (MOVE_AND_COLLECT) or zeros (MOVE).
  * Randomness: every draw is a `tf.random.stateless_*` op keyed by non-negative
    seeds split from `GridState.rng`, as integer bits, so eager, graph and
    `jit_compile=True` runs give the same numbers (see `_nonnegative`,
    `_uniform`).
"""

import abc
from typing import Any, Dict, NamedTuple, Tuple

import numpy as np
import tensorflow as tf

from lpg_tf import errors
from lpg_tf import rng as lpg_rng
from lpg_tf import types
from lpg_tf.envs import base

NUM_MOVES = 9  # Appendix A.1: 8 neighbours and staying put.
STAY = 4  # Direction (0, 0) in the row-major 3 x 3 neighbourhood.


class ObjectType(NamedTuple):
  """One object type of Appendix A.1, there N x [r, eps_term, eps_respawn].

  Attributes:
    count: N, how many objects of this type the grid holds.
    reward: r, the reward for collecting one.
    p_terminate: eps_term, the probability that collecting one ends the episode.
    p_respawn: eps_respawn, the per-step probability that an absent one
      reappears.
  """
  count: int
  reward: float
  p_terminate: float
  p_respawn: float


class GridSpec(NamedTuple):
  """One grid world variant of Appendix A.1 / A.2.

  Attributes:
    height: H, the number of rows.
    width: W, the number of columns.
    objects: the object types, in the order the appendix lists them.
    max_episode_steps: the episode step limit.
  """
  height: int
  width: int
  objects: Tuple[ObjectType, ...]
  max_episode_steps: int


TABULAR_GRIDS: Dict[str, GridSpec] = {
    "dense": GridSpec(  # A.1.1
        11, 11, (ObjectType(2, 1.0, 0.0, 0.05), ObjectType(1, -1.0, 0.5, 0.1),
                 ObjectType(1, -1.0, 0.0, 0.5)), 500),
    "sparse": GridSpec(  # A.1.2
        13, 13, (ObjectType(1, 1.0, 1.0, 0.0), ObjectType(1, -1.0, 1.0, 0.0)),
        50),
    "long_horizon": GridSpec(  # A.1.3
        11, 11, (ObjectType(2, 1.0, 0.0, 0.01), ObjectType(2, -1.0, 0.5, 1.0)),
        1000),
    "longer_horizon": GridSpec(  # A.1.4
        7, 9, (ObjectType(2, 1.0, 0.1, 0.01), ObjectType(5, -1.0, 0.8, 1.0)),
        2000),
    "long_dense": GridSpec(  # A.1.5
        11, 11, (ObjectType(4, 1.0, 0.0, 0.005),), 2000),
}

RANDOM_GRIDS: Dict[str, GridSpec] = {
    "dense": GridSpec(  # A.2.1
        11, 11, (ObjectType(2, 1.0, 0.0, 0.05), ObjectType(1, -1.0, 0.5, 0.1),
                 ObjectType(1, -1.0, 0.0, 0.5)), 500),
    "long_horizon": GridSpec(  # A.2.2
        11, 11, (ObjectType(2, 1.0, 0.0, 0.01), ObjectType(2, -1.0, 0.5, 1.0)),
        1000),
    "small": GridSpec(  # A.2.3
        5, 7, (ObjectType(2, 1.0, 0.0, 0.05), ObjectType(2, -1.0, 0.5, 0.1)),
        500),
    "small_sparse": GridSpec(  # A.2.4
        5, 7, (ObjectType(1, 1.0, 1.0, 1.0), ObjectType(2, -1.0, 1.0, 1.0)),
        50),
    "very_dense": GridSpec(  # A.2.5
        11, 11, (ObjectType(1, 1.0, 0.0, 1.0),), 2000),
}


class SampledInstance(NamedTuple):
  """A lifetime instance of a grid world whose action space is sampled
  (base.SAMPLED).

  Attributes:
    layout: the instance of the grid world with a fixed space (tabular: `[num,
      M]` object cells; random: `[num]` zeros).
    move_and_collect: `[num]` bool, the lifetime's space is MOVE_AND_COLLECT
      (else MOVE).
  """
  layout: tf.Tensor
  move_and_collect: tf.Tensor


def split_sampled_observation(spec: base.EnvSpec, observation: tf.Tensor
                             ) -> Tuple[tf.Tensor, tf.Tensor]:
  """A sampled-space grid world's observations `[..., *obs]` as those of its
  fixed-space grid world and `[...]` bool, the lifetime's space is
  MOVE_AND_COLLECT (module docstring)."""
  if spec.num_states is not None:  # Tabular: index + fixed num_states * flag.
    fixed_states = spec.num_states // 2
    return observation % fixed_states, observation >= fixed_states
  return observation[..., :-1], observation[..., 0, 0, -1] > 0.5


def fixed_space_spec(spec: base.EnvSpec) -> base.EnvSpec:
  """The spec of a sampled-space grid world's observations after
  `split_sampled_observation`, with all 18 actions."""
  if spec.num_states is not None:
    return spec._replace(num_states=spec.num_states // 2)
  *cells, channels = spec.observation_shape
  return spec._replace(observation_shape=(*cells, channels - 1))


class GridState(NamedTuple):
  """State of B grid worlds.

  Attributes:
    instance: the lifetime instance rows, `[B, M]` int32 object cells for
      tabular grids, `[B]` int32 zeros for random grids; a `SampledInstance`
      of those where the action space is sampled.
    rng: `[2]` int32 stateless seed shared by the batch.
    agent: `[B]` int32, the agent's cell.
    object_cell: `[B, M]` int32, each object's cell (also while it is absent).
    present: `[B, M]` bool, whether each object is on the grid.
    step_count: `[B]` int32, transitions taken in the current episode.
  """
  instance: Any
  rng: tf.Tensor
  agent: tf.Tensor
  object_cell: tf.Tensor
  present: tf.Tensor
  step_count: tf.Tensor


def _free_cells(noise: tf.Tensor, occupied: tf.Tensor, num: int) -> tf.Tensor:
  """`num` distinct cells per row, uniform among the free ones.

  The `tf.math.top_k` result must be used whole: XLA lowers a top_k whose
  output is sliced to a full sort, about ten times slower on CPU.

  Args:
    noise: `[B, C]` i.i.d. uniform [0, 1) noise over the C cells.
    occupied: `[B, C]` bool, cells not to draw while free ones remain.
    num: how many cells to draw.

  Returns:
    `[B, num]` int32 cell indices, in random order.
  """
  return tf.math.top_k(tf.where(occupied, -1.0, noise), k=num).indices


def _free_cell(noise: tf.Tensor, occupied: tf.Tensor) -> tf.Tensor:
  """`[B]` int32, one cell per row, uniform among the free ones."""
  return tf.argmax(tf.where(occupied, -1.0, noise), axis=1,
                   output_type=tf.int32)


class _GridWorld(base.Environment):
  """Dynamics shared by the tabular and random grid worlds (see module doc)."""

  def __init__(self, name: str, grid: GridSpec, action_space: str):
    """Builds a grid world.

    Args:
      name: the registry name, e.g. "tabular/dense".
      grid: the variant's GridSpec.
      action_space: base.MOVE (9 actions), base.MOVE_AND_COLLECT (18 actions)
        or base.SAMPLED (one of the two per lifetime, 18 actions).

    Raises:
      errors.ConfigError: for an unknown action space or a grid with fewer
        cells than objects plus the agent.
    """
    if action_space not in base.GRID_ACTION_SPACES:
      raise errors.ConfigError(
          f"Unknown action space {action_space!r}; valid: "
          f"{', '.join(base.GRID_ACTION_SPACES)}")
    self._name = name
    self._grid = grid
    self._action_space = action_space
    self._num_cells = grid.height * grid.width
    kinds = [(i, t) for i, t in enumerate(grid.objects) for _ in range(t.count)]
    self._num_objects = len(kinds)
    if self._num_cells <= self._num_objects:
      raise errors.ConfigError(f"{name}: {self._num_cells} cells cannot hold "
                       f"{self._num_objects} objects and the agent")
    # numpy, not tf.constant, so that the environment can be built in one graph
    # and stepped in another.
    self._reward = np.array([t.reward for _, t in kinds], np.float32)
    self._p_terminate = np.array([t.p_terminate for _, t in kinds], np.float32)
    self._p_respawn = np.array([t.p_respawn for _, t in kinds], np.float32)
    self._object_type = np.array([i for i, _ in kinds], np.int32)

  @property
  def grid(self) -> GridSpec:
    """The variant's GridSpec."""
    return self._grid

  @property
  def num_actions(self) -> int:
    """9 for base.MOVE, 18 for base.MOVE_AND_COLLECT and base.SAMPLED."""
    return NUM_MOVES * (1 if self._action_space == base.MOVE else 2)

  @property
  def _sampled(self) -> bool:
    return self._action_space == base.SAMPLED

  def sample_instances(self, seed: tf.Tensor, num: int) -> Any:
    """`_sample_layouts`, with each lifetime's action space where it is
    sampled (`SampledInstance`)."""
    if not self._sampled:
      return self._sample_layouts(seed, num)
    layout_seed, space_seed = tf.unstack(lpg_rng.split(seed, 2))
    return SampledInstance(self._sample_layouts(layout_seed, num),
                           lpg_rng.uniform([num], space_seed) < 0.5)

  @abc.abstractmethod
  def _sample_layouts(self, seed: tf.Tensor, num: int) -> tf.Tensor:
    """The fixed-space grid world's `num` lifetime instances."""

  @abc.abstractmethod
  def _with_space(self, observation: tf.Tensor,
                  move_and_collect: tf.Tensor) -> tf.Tensor:
    """`[B, ...]` observations that also tell each row's action space
    (inverse of `split_sampled_observation`)."""

  def _observation(self, instance: Any, agent: tf.Tensor,
                   object_cell: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
    observation = self._observe(agent, object_cell, present)
    if self._sampled:
      observation = self._with_space(observation, instance.move_and_collect)
    return observation

  def _occupied(self, object_cell: tf.Tensor, present: tf.Tensor) -> tf.Tensor:
    """`[B, C]` bool, the cells holding a present object."""
    one_hot = tf.one_hot(object_cell, self._num_cells, on_value=True,
                         off_value=False, dtype=tf.bool)
    return tf.reduce_any(one_hot & present[..., None], axis=1)

  @abc.abstractmethod
  def _layout(self, instance: Any,
              seed: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """Draws an episode's `[B, M]` object cells and `[B]` agent cell."""

  @abc.abstractmethod
  def _respawn_cells(self, agent: tf.Tensor, object_cell: tf.Tensor,
                     present: tf.Tensor, respawn: tf.Tensor,
                     seed: tf.Tensor) -> tf.Tensor:
    """`[B, M]` object cells after the objects marked in `respawn` reappear."""

  @abc.abstractmethod
  def _observe(self, agent: tf.Tensor, object_cell: tf.Tensor,
               present: tf.Tensor) -> tf.Tensor:
    """`[B, ...]` observations of the given agent and object configuration."""

  def reset(self, instance: Any,
            seed: tf.Tensor) -> Tuple[GridState, types.TimeStep]:
    """Starts an episode in each of B grids (see `base.Environment.reset`)."""
    rng, layout_seed = tf.unstack(lpg_rng.split(seed, 2))
    object_cell, agent = self._layout(
        instance.layout if self._sampled else instance, layout_seed)
    batch = tf.shape(agent)[0]
    present = tf.ones([batch, self._num_objects], tf.bool)
    state = GridState(instance=instance, rng=rng, agent=agent,
                      object_cell=object_cell, present=present,
                      step_count=tf.zeros([batch], tf.int32))
    timestep = types.TimeStep(
        observation=self._observation(instance, agent, object_cell, present),
        reward=tf.zeros([batch], tf.float32),
        discount=tf.ones([batch], tf.float32),
        truncated=tf.zeros([batch], tf.bool))
    return state, timestep

  def transition(self, state: GridState,
                 action: tf.Tensor) -> Tuple[GridState, types.TimeStep]:
    """One step for `[B]` int32 actions (see `base.Environment.transition`)."""
    rng, event_seed, cell_seed = tf.unstack(lpg_rng.split(state.rng, 3))
    width = self._grid.width
    action = tf.cast(action, tf.int32)
    direction = action % NUM_MOVES
    row = state.agent // width + direction // 3 - 1
    col = state.agent % width + direction % 3 - 1
    inside = ((row >= 0) & (row < self._grid.height) & (col >= 0) &
              (col < width))
    target = tf.where(inside, row * width + col, state.agent)
    if self._action_space == base.MOVE:
      agent = target
      collect_cell = target
    else:
      is_collect = action >= NUM_MOVES
      agent = tf.where(is_collect, state.agent, target)
      collect_cell = tf.where(is_collect & inside, target, -1)
      if self._sampled:  # MOVE lifetimes: every action moves and collects.
        move = ~state.instance.move_and_collect
        agent = tf.where(move, target, agent)
        collect_cell = tf.where(move, target, collect_cell)

    collected = state.present & tf.equal(state.object_cell,
                                         collect_cell[:, None])
    reward = tf.reduce_sum(
        tf.where(collected, self._reward, np.float32(0.0)), axis=1)
    terminate_noise, respawn_noise = tf.unstack(
        lpg_rng.uniform([2, tf.shape(agent)[0], self._num_objects], event_seed))
    terminated = tf.reduce_any(
        collected & (terminate_noise < self._p_terminate), axis=1)
    respawn = ~state.present & (respawn_noise < self._p_respawn)
    present = state.present & ~collected
    object_cell = self._respawn_cells(agent, state.object_cell, present,
                                      respawn, cell_seed)
    present |= respawn

    step_count = state.step_count + 1
    at_limit = step_count >= self._grid.max_episode_steps
    next_state = GridState(instance=state.instance, rng=rng, agent=agent,
                           object_cell=object_cell, present=present,
                           step_count=step_count)
    timestep = types.TimeStep(
        observation=self._observation(state.instance, agent, object_cell,
                                      present),
        reward=reward,
        discount=tf.where(terminated | at_limit, 0.0, 1.0),
        truncated=at_limit & ~terminated)
    return next_state, timestep


class TabularGridWorld(_GridWorld):
  """A tabular grid world (Appendix A.1): fixed layout, state indices.

  The instance is the lifetime's `[M]` int32 object cells; observations are `[]`
  int32 state indices below `spec.num_states` (module docstring), twice as
  many with a sampled action space.
  """

  @property
  def spec(self) -> base.EnvSpec:
    return base.EnvSpec(
        name=self._name, observation_shape=(), observation_dtype=tf.int32,
        num_actions=self.num_actions,
        num_states=(self._num_states_per_space
                    * (2 if self._sampled else 1)),
        max_episode_steps=self._grid.max_episode_steps,
        action_space=self._action_space)

  @property
  def _num_states_per_space(self) -> int:
    return self._num_cells * 2**self._num_objects

  def _sample_layouts(self, seed: tf.Tensor, num: int) -> tf.Tensor:
    """`[num, M]` int32 distinct object cells per row, one row per lifetime."""
    noise = lpg_rng.uniform([num, self._num_cells], seed)
    return tf.math.top_k(noise, k=self._num_objects).indices

  def _with_space(self, observation: tf.Tensor,
                  move_and_collect: tf.Tensor) -> tf.Tensor:
    return observation + self._num_states_per_space * tf.cast(
        move_and_collect, tf.int32)

  def _layout(self, instance: tf.Tensor,
              seed: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    noise = lpg_rng.uniform([tf.shape(instance)[0], self._num_cells], seed)
    occupied = self._occupied(instance, tf.ones_like(instance, tf.bool))
    return instance, _free_cell(noise, occupied)

  def _respawn_cells(self, agent: tf.Tensor, object_cell: tf.Tensor,
                     present: tf.Tensor, respawn: tf.Tensor,
                     seed: tf.Tensor) -> tf.Tensor:
    del agent, present, respawn, seed  # Objects reappear on their own cell.
    return object_cell

  def _observe(self, agent: tf.Tensor, object_cell: tf.Tensor,
               present: tf.Tensor) -> tf.Tensor:
    bits = np.array([2**i for i in range(self._num_objects)], np.int32)
    presence = tf.reduce_sum(tf.where(present, bits, 0), axis=1)
    return agent * 2**self._num_objects + presence


class RandomGridWorld(_GridWorld):
  """A random grid world (Appendix A.2): layout redrawn every episode.

  The instance is a dummy `[]` int32 zero; observations are `[H, W, N + 1]`
  float32 {0,1} tensors (module docstring), `[H, W, N + 2]` with a sampled
  action space.
  """

  def __init__(self, name: str, grid: GridSpec, action_space: str):
    super().__init__(name, grid, action_space)
    num_types = len(grid.objects)
    self._type_one_hot = np.eye(num_types, dtype=np.float32)[
        self._object_type]  # [M, N]

  @property
  def spec(self) -> base.EnvSpec:
    return base.EnvSpec(
        name=self._name,
        observation_shape=(self._grid.height, self._grid.width,
                           len(self._grid.objects) + (2 if self._sampled
                                                      else 1)),
        observation_dtype=tf.float32, num_actions=self.num_actions,
        num_states=None, max_episode_steps=self._grid.max_episode_steps,
        action_space=self._action_space)

  def _sample_layouts(self, seed: tf.Tensor, num: int) -> tf.Tensor:
    """`[num]` int32 zeros: random grids keep no layout for a lifetime."""
    del seed
    return tf.zeros([num], tf.int32)

  def _with_space(self, observation: tf.Tensor,
                  move_and_collect: tf.Tensor) -> tf.Tensor:
    plane = tf.ones_like(observation[..., :1]) * tf.cast(
        move_and_collect, tf.float32)[:, None, None, None]
    return tf.concat([observation, plane], axis=-1)

  def _layout(self, instance: tf.Tensor,
              seed: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    noise = lpg_rng.uniform([tf.shape(instance)[0], self._num_cells], seed)
    object_cell = tf.math.top_k(noise, k=self._num_objects).indices
    occupied = self._occupied(object_cell, tf.ones_like(object_cell, tf.bool))
    return object_cell, _free_cell(noise, occupied)

  def _respawn_cells(self, agent: tf.Tensor, object_cell: tf.Tensor,
                     present: tf.Tensor, respawn: tf.Tensor,
                     seed: tf.Tensor) -> tf.Tensor:
    occupied = self._occupied(object_cell, present) | tf.one_hot(
        agent, self._num_cells, on_value=True, off_value=False, dtype=tf.bool)
    noise = lpg_rng.uniform(tf.shape(occupied), seed)
    free_cells = _free_cells(noise, occupied, self._num_objects)
    rank = tf.cumsum(tf.cast(respawn, tf.int32), axis=1, exclusive=True)
    return tf.where(respawn, tf.gather(free_cells, rank, batch_dims=1),
                    object_cell)

  def _observe(self, agent: tf.Tensor, object_cell: tf.Tensor,
               present: tf.Tensor) -> tf.Tensor:
    objects = tf.one_hot(object_cell, self._num_cells) * tf.cast(
        present, tf.float32)[..., None]  # [B, M, C]
    channels = tf.concat([
        tf.einsum("bmc,mn->bcn", objects, self._type_one_hot),
        tf.one_hot(agent, self._num_cells)[..., None]
    ], axis=2)  # [B, C, N + 1]
    return tf.reshape(channels, [-1, self._grid.height, self._grid.width,
                                 len(self._grid.objects) + 1])
