"""The interface every in-graph batched environment implements (DESIGN.md, Conventions).

An environment is a set of pure TensorFlow functions over an explicit state, batched
over B copies, auto-resetting and compilable with `tf.function(jit_compile=True)`.
All randomness comes from `tf.random.stateless_*` ops keyed by seeds carried in the
state (XLA ignores op seeds of stateful random ops), so a run is a deterministic
function of its seeds.

Two levels of randomness, as Appendix A needs:
  * an *instance* is what stays fixed for a whole lifetime (tabular object layout,
    chain length, ...); `sample_instances` draws one per lifetime;
  * an *episode* is drawn by `reset` (and by the automatic reset inside `step`) from
    the instance and the state's RNG (agent start, random-grid object layout, ...).
"""

import abc
from typing import Any, NamedTuple, Optional, Tuple

import tensorflow as tf

from lpg_tf import rng as lpg_rng
from lpg_tf import types

# Grid-world action spaces (Appendix A.1, "Action Space"); chosen per lifetime.
MOVE = "move"  # 9 moves (8 neighbours + stay); objects are collected on arrival.
MOVE_AND_COLLECT = "move_and_collect"  # 9 moves + 9 collect actions, no auto-collect.
ACTION_SPACES = (MOVE, MOVE_AND_COLLECT)
# A grid world whose every lifetime draws MOVE or MOVE_AND_COLLECT at its start,
# with probability 1/2 each, as Appendix A.1 samples them: 18 actions, and the
# observation tells which space a lifetime has (grid_world.SampledInstance).
SAMPLED = "sampled"
GRID_ACTION_SPACES = ACTION_SPACES + (SAMPLED,)  # What a grid world accepts.


class EnvSpec(NamedTuple):
  """Static description of one environment (one environment group).

  Attributes:
    name: registry name, e.g. "tabular/dense".
    observation_shape: per-environment observation shape, () for a state index.
    observation_dtype: tf.int32 for state indices, tf.float32 for {0,1} tensors.
    num_actions: size of the discrete action space.
    num_states: number of distinct state indices for tabular observations (the size
      of a tabular agent's table); None for tensor observations.
    max_episode_steps: the episode step limit (for chains: the longest chain).
    action_space: MOVE, MOVE_AND_COLLECT or SAMPLED for grid worlds, None
      otherwise.
  """
  name: str
  observation_shape: Tuple[int, ...]
  observation_dtype: tf.DType
  num_actions: int
  num_states: Optional[int]
  max_episode_steps: int
  action_space: Optional[str]


class Environment(abc.ABC):
  """A batched, auto-resetting environment with explicit state.

  `state` is a NamedTuple of tensors with leading batch dimension B, which must
  have two fields: `instance` (the nest of `[B, ...]` lifetime instances the
  episodes are drawn from) and `rng` (a `[2]` int32 stateless seed shared by the
  batch, split at every reset and transition).

  Subclasses implement `sample_instances`, `reset` and `transition` (the dynamics
  of one step, without auto-reset); `step` adds the automatic reset, and
  `step_with_next_observation` also keeps the observation the reset replaced.
  """

  @property
  @abc.abstractmethod
  def spec(self) -> EnvSpec:
    """The static spec of this environment."""

  @abc.abstractmethod
  def sample_instances(self, seed: tf.Tensor, num: int) -> Any:
    """Draws `num` lifetime instances from a `[2]` int32 seed.

    Returns a nest of tensors with leading dimension `num`. Rows can be repeated
    (tf.repeat) so that several environments share one lifetime's instance.
    """

  @abc.abstractmethod
  def reset(self, instance: Any, seed: tf.Tensor) -> Tuple[Any, types.TimeStep]:
    """Starts a new episode in each of B environments.

    Args:
      instance: nest of `[B, ...]` tensors from `sample_instances` (rows repeated as
        needed), one row per environment.
      seed: `[2]` int32 stateless seed.

    Returns:
      (state, timestep) with reward 0, discount 1, truncated False.
    """

  @abc.abstractmethod
  def transition(self, state: Any,
                 action: tf.Tensor) -> Tuple[Any, types.TimeStep]:
    """One step of the dynamics for `action` `[B]` int32, without auto-reset.

    The returned observation is the true next observation, also where the episode
    ended (discount 0); the returned state is then not stepped further by `step`.
    """

  def step(self, state: Any, action: tf.Tensor) -> Tuple[Any, types.TimeStep]:
    """`transition`, then a fresh episode wherever the episode ended.

    Where `discount == 0`, the returned observation is the first observation of
    the next episode, and reward/discount/truncated still describe the transition.
    """
    state, timestep, _ = self.step_with_next_observation(state, action)
    return state, timestep

  def step_with_next_observation(
      self, state: Any, action: tf.Tensor
  ) -> Tuple[Any, types.TimeStep, tf.Tensor]:
    """`step`, plus the true next observation `[B, ...]` of the transition.

    The third result is `transition`'s observation: where the episode ended it
    is the terminal observation, which `step` replaces by the next episode's
    first; elsewhere the two are equal. An update rule reads y(s_{t+1}) on it, so
    nothing of the next episode enters a terminal step's input (Appendix B.1).
    """
    next_state, timestep = self.transition(state, action)
    rng, reset_seed = tf.unstack(lpg_rng.split(next_state.rng))
    next_state = next_state._replace(rng=rng)
    ended = tf.equal(timestep.discount, 0.0)

    def with_resets():
      reset_state, reset_timestep = self.reset(next_state.instance, reset_seed)
      return (select_envs(ended, reset_state, next_state),
              select_envs_tensor(ended, reset_timestep.observation,
                                 timestep.observation))

    # Most steps end no episode in the whole batch; skip drawing new ones then.
    state_out, observation = tf.cond(
        tf.reduce_any(ended), with_resets,
        lambda: (next_state, timestep.observation))
    return (state_out, timestep._replace(observation=observation),
            timestep.observation)


class HostEnvironment(abc.ABC):
  """A batched, auto-resetting environment stepped in Python on numpy arrays.

  For games that exist only as Python code (MinAtar), which cannot run inside
  a compiled TensorFlow step. Same conventions as `Environment`: B copies,
  `types.TimeStep` (holding numpy arrays), discount 0 where an episode ended,
  automatic reset with the true last observation kept.
  """

  @property
  @abc.abstractmethod
  def spec(self) -> EnvSpec:
    """The static spec of this environment."""

  @property
  @abc.abstractmethod
  def num_envs(self) -> int:
    """B, the number of environments stepped together."""

  @abc.abstractmethod
  def reset(self) -> types.TimeStep:
    """Starts a new episode everywhere: reward 0, discount 1, `[B, ...]`."""

  @abc.abstractmethod
  def step(self, action: Any) -> Tuple[types.TimeStep, Any]:
    """One step for `action` `[B]`: (timestep, true next observation `[B, ...]`).

    Where the step ended an episode, the timestep's observation is the next
    episode's first and the second result the episode's last.
    """


def select_envs_tensor(mask: tf.Tensor, new: tf.Tensor,
                       old: tf.Tensor) -> tf.Tensor:
  """`new` where `mask` `[B]` is True, else `old`, for one `[B, ...]` tensor."""
  return tf.where(tf.reshape(mask, [-1] + [1] * (len(old.shape) - 1)), new, old)


def select_envs(mask: tf.Tensor, new_state: Any, old_state: Any) -> Any:
  """Per-environment choice between two states: `new` where `mask` `[B]` is True.

  The shared `rng` field is kept from `old_state`, so the batch's random stream
  continues uninterrupted.
  """
  fields = {}
  for name, new, old in zip(old_state._fields, new_state, old_state):
    if name == "rng":
      fields[name] = old
    else:
      fields[name] = tf.nest.map_structure(
          lambda n, o: select_envs_tensor(mask, n, o), new, old)
  return type(old_state)(**fields)
