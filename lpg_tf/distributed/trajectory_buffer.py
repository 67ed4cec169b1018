"""Cuts a vector environment's step stream into aligned `[T, E]` unrolls.

A vector environment in gymnasium's "next step" auto-reset mode spends one step
per episode on the reset: the step after a `done` ignores its action, returns
reward 0 and the new episode's first observation (`AtariStep.reset_step`). Such a
row is not a transition. This buffer drops it, and uses its observation as the
observation that follows the terminal transition, which is the repository's
convention (`types.TimeStep`: where an episode ends, the next observation is
already the first of the next episode; the discount 0 makes the terminal
observation itself irrelevant).

Environments then have different numbers of real transitions after the same
number of vector steps (one fewer per episode ended), so each environment keeps
its own queue, and `pop` returns T transitions of every environment once each
has T whose following observation is known. An environment that ended fewer
episodes is a few steps ahead of the others; its extra transitions wait in the
buffer for the next unroll (the lag is the difference in episode counts,
typically a handful of steps for games with episodes of thousands of steps).
"""

from typing import List, NamedTuple, Optional

import numpy as np


class Unroll(NamedTuple):
  """T aligned transitions of E environments, time-major, numpy.

  Attributes:
    observation: `[T + 1, E, ...]`, s_0..s_T.
    action: `[T, E]` int32.
    reward: `[T, E]` float32.
    discount: `[T, E]` float32, 0 where the transition ended the episode.
    episode_return: `[T, E]` float32, the ended episode's return where
      discount is 0, else 0.
  """
  observation: np.ndarray
  action: np.ndarray
  reward: np.ndarray
  discount: np.ndarray
  episode_return: np.ndarray


class TrajectoryBuffer:
  """Per-environment queues of transitions; `pop` aligns T of each.

  Usage:
    buffer = TrajectoryBuffer(num_envs, unroll_length, env.reset())
    step = env.step(action)
    buffer.add(action, step.reward, step.done, step.episode_return,
               step.observation, step.reset_step)
    unroll = buffer.pop()          # None until every environment has T steps
  """

  def __init__(self, num_envs: int, unroll_length: int,
               observation: np.ndarray):
    """Starts the queues at the environments' first observations `[E, ...]`."""
    self._num_envs = num_envs
    self._unroll_length = unroll_length
    self._observations: List[List[np.ndarray]] = [[o] for o in observation]
    # One row per transition: action, reward, discount, episode return.
    self._transitions: List[List[tuple]] = [[] for _ in range(num_envs)]
    self._awaiting_reset = np.zeros(num_envs, bool)

  def add(self, action: np.ndarray, reward: np.ndarray, done: np.ndarray,
          episode_return: np.ndarray, next_observation: np.ndarray,
          reset_step: np.ndarray) -> None:
    """Records one vector step, every argument `[E, ...]`.

    Rows with `reset_step` are not transitions: their observation replaces the
    terminal observation stored by the previous step.
    """
    for e in range(self._num_envs):
      if reset_step[e]:
        self._observations[e][-1] = next_observation[e]
        self._awaiting_reset[e] = False
        continue
      self._transitions[e].append(
          (action[e], reward[e], 0.0 if done[e] else 1.0, episode_return[e]))
      self._observations[e].append(next_observation[e])
      self._awaiting_reset[e] = bool(done[e])

  def ready(self) -> bool:
    """Whether every environment has T transitions and the observation after."""
    t = self._unroll_length
    return all(
        len(transitions) > t or (len(transitions) == t and not waiting)
        for transitions, waiting in zip(self._transitions, self._awaiting_reset))

  def pop(self) -> Optional[Unroll]:
    """The next T transitions of every environment, or None if not `ready`."""
    if not self.ready():
      return None
    t = self._unroll_length
    observation = np.stack(
        [np.stack(obs[:t + 1]) for obs in self._observations], axis=1)
    columns = np.array([rows[:t] for rows in self._transitions],
                       dtype=np.float64)  # [E, T, 4]
    columns = np.transpose(columns, (2, 1, 0))  # [4, T, E]
    for e in range(self._num_envs):
      del self._observations[e][:t]
      del self._transitions[e][:t]
    return Unroll(
        observation=observation,
        action=columns[0].astype(np.int32),
        reward=columns[1].astype(np.float32),
        discount=columns[2].astype(np.float32),
        episode_return=columns[3].astype(np.float32))

  @property
  def lag(self) -> int:
    """Most transitions any environment holds beyond the least-filled one."""
    sizes = [len(rows) for rows in self._transitions]
    return max(sizes) - min(sizes)
