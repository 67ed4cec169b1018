"""The Reverb server between Atari actors and the learner (DESIGN.md idiom 8).

Two tables:

  * TRAJECTORIES, a `reverb.Table.queue`: on-policy streaming. One item is one
    actor's unroll, `[T + 1, E_actor, 84, 84, 4]` observations and
    `[T, E_actor]` actions, rewards, discounts and episode returns. The queue's
    rate limiter blocks actors when it is full and the learner when it is empty,
    so neither side runs away from the other; an item is sampled once and
    removed.
  * VARIABLES: the agent's parameters, `max_size` 1 with a LIFO sampler. The
    learner inserts theta after every update (the new item evicts the old one);
    actors sample the latest. Its `MinSize(1)` limiter makes an actor that
    starts before the first insert wait for it.

Both tables carry signatures, so actors (also ones on another machine) and the
learner's dataset read T, E_actor, the number of actions and m from the server.

Writers and readers: `UnrollWriter` (an actor's adder, one item per unroll),
`VariablePublisher` (the learner's parameter writes), `fetch_variables` (an
actor's parameter reads); the learner reads TRAJECTORIES through
`learner_dataset`.
"""

from typing import Callable, Dict, Mapping, NamedTuple, Optional, Tuple

import numpy as np
import portpicker
import reverb
import tensorflow as tf

from lpg_tf.distributed import trajectory_buffer

TRAJECTORIES = "trajectories"
VARIABLES = "variables"
LEARNER_STEP = "learner_step"
PARAMS = "params"


class UnrollShape(NamedTuple):
  """The shape of one trajectory item.

  Attributes:
    unroll_length: T.
    num_envs: E_actor, the environments of one actor.
    observation_shape: one environment's observation shape, (84, 84, 4).
  """
  unroll_length: int
  num_envs: int
  observation_shape: Tuple[int, ...]


def trajectory_signature(shape: UnrollShape) -> Dict[str, tf.TensorSpec]:
  """The TRAJECTORIES item: the fields of `trajectory_buffer.Unroll`."""
  t, e = shape.unroll_length, shape.num_envs
  return {
      "observation": tf.TensorSpec([t + 1, e, *shape.observation_shape],
                                   tf.uint8),
      "action": tf.TensorSpec([t, e], tf.int32),
      "reward": tf.TensorSpec([t, e], tf.float32),
      "discount": tf.TensorSpec([t, e], tf.float32),
      "episode_return": tf.TensorSpec([t, e], tf.float32),
  }


def variables_signature(params: Mapping[str, np.ndarray]) -> Dict[str, object]:
  """The VARIABLES item: the learner's update count and theta `{name: [1, ...]}`."""
  return {
      LEARNER_STEP: tf.TensorSpec([], tf.int64),
      PARAMS: {name: tf.TensorSpec(np.shape(value), tf.float32)
               for name, value in params.items()},
  }


def unroll_shape_from_signature(
    signature: Mapping[str, tf.TensorSpec]) -> UnrollShape:
  """Reads T, E_actor and the observation shape back from a TRAJECTORIES
  signature (what a remote actor learns from the server)."""
  shape = signature["observation"].shape.as_list()
  return UnrollShape(unroll_length=shape[0] - 1, num_envs=shape[1],
                     observation_shape=tuple(shape[2:]))


def make_server(shape: UnrollShape, params: Mapping[str, np.ndarray],
                queue_size: int, checkpoint_dir: str,
                port: Optional[int] = None) -> reverb.Server:
  """Starts a Reverb server with the two tables on `port` (default: a free one).

  Args:
    shape: the trajectory items' shape.
    params: theta, for the VARIABLES signature.
    queue_size: items the TRAJECTORIES queue holds before actors block.
    checkpoint_dir: where Reverb's checkpointer may write (it never does here:
      on-policy items are not worth saving; without it Reverb makes a /tmp
      directory per server that nobody removes).
    port: the port to serve on; None picks a free one with portpicker.
  """
  trajectories = reverb.Table.queue(
      name=TRAJECTORIES, max_size=queue_size,
      signature=trajectory_signature(shape))
  variables = reverb.Table(
      name=VARIABLES,
      sampler=reverb.selectors.Lifo(),
      remover=reverb.selectors.Fifo(),
      max_size=1,
      rate_limiter=reverb.rate_limiters.MinSize(1),
      signature=variables_signature(params))
  return reverb.Server(
      tables=[trajectories, variables],
      port=port if port is not None else portpicker.pick_unused_port(),
      checkpointer=reverb.checkpointers.DefaultCheckpointer(checkpoint_dir))


class VariablePublisher:
  """The learner's side of VARIABLES: inserts theta after each update."""

  def __init__(self, client: reverb.Client):
    self._writer = client.trajectory_writer(num_keep_alive_refs=1)

  def publish(self, learner_step: int, params: Mapping[str, np.ndarray]) -> None:
    """Makes `params` the item actors sample next; blocks until inserted."""
    self._writer.append({
        LEARNER_STEP: np.int64(learner_step),
        PARAMS: {name: np.asarray(value, np.float32)
                 for name, value in params.items()},
    })
    self._writer.create_item(
        VARIABLES, priority=1.0,
        trajectory=tf.nest.map_structure(lambda column: column[-1],
                                         self._writer.history))
    self._writer.flush()

  def close(self) -> None:
    self._writer.close()


def fetch_variables(client: reverb.Client) -> Tuple[int, Dict[str, np.ndarray]]:
  """The latest (learner step, theta) from VARIABLES; an actor's read.

  Blocks until the learner has published once.
  """
  sample = next(client.sample(VARIABLES, num_samples=1, emit_timesteps=False,
                              unpack_as_table_signature=True))
  data = sample.data
  return int(data[LEARNER_STEP]), dict(data[PARAMS])


class UnrollWriter:
  """An actor's side of TRAJECTORIES: one item per unroll (an Acme-style adder).

  Steps are appended one at a time with `partial_step`: the observation first,
  then what the step produced. The last observation s_T of an unroll stays an
  open step that the next unroll's first step completes, so consecutive items
  share it instead of storing it twice.
  """

  def __init__(self, client: reverb.Client, unroll_length: int):
    self._unroll_length = unroll_length
    self._writer = client.trajectory_writer(
        num_keep_alive_refs=unroll_length + 1)
    self._open_step = False

  def write(self, unroll: trajectory_buffer.Unroll,
            should_wait: Callable[[], bool], poll_s: float = 1.0) -> bool:
    """Appends `unroll` (`[T + 1, E_actor, ...]` observations) as one item.

    Blocks while the queue is full (the learner is behind), asking
    `should_wait()` every `poll_s` seconds; returns False, with the item still
    pending, as soon as it answers False (the actor is to stop), else True.
    """
    t = self._unroll_length
    for step in range(t):
      if not self._open_step:
        self._writer.append({"observation": unroll.observation[step]},
                            partial_step=True)
      self._writer.append({
          "action": unroll.action[step],
          "reward": unroll.reward[step],
          "discount": unroll.discount[step],
          "episode_return": unroll.episode_return[step],
      })
      self._open_step = False
    self._writer.append({"observation": unroll.observation[t]},
                        partial_step=True)
    self._open_step = True
    history = self._writer.history
    self._writer.create_item(TRAJECTORIES, priority=1.0, trajectory={
        "observation": history["observation"][-(t + 1):],
        **{name: history[name][-(t + 1):-1]
           for name in ("action", "reward", "discount", "episode_return")},
    })
    while True:
      try:
        self._writer.flush(timeout_ms=int(poll_s * 1000))
        return True
      except reverb.DeadlineExceededError:
        if not should_wait():
          return False

  def close(self) -> None:
    self._writer.close()
