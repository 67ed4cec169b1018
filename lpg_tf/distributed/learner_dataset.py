"""The learner's input: actors' unrolls from Reverb as a tf.data pipeline.

`make_dataset` reads the TRAJECTORIES queue with
`reverb.TrajectoryDataset.from_table_signature`, batches `items_per_batch`
actors' unrolls and concatenates their environments, giving
`types.Trajectory` with one lifetime: `[L = 1, T, B, ...]`, B = items x E_actor
(the 30 environments of Table 4 when every actor contributes one item).

Known limitation: the unrolls do not keep terminal observations (the trajectory
buffer replaces them by the next episode's first), so `next_observation` is
`observation[:, 1:]` and at a terminal step the rule reads y of the next
episode's first state, unlike in-graph rollouts.

Sampling waits at most `timeout_s` for an item; after that the dataset ends and
`TrajectoryIterator` raises `NoTrajectoriesError`, whose message names the likely
causes, instead of letting the learner wait forever on an empty queue.
"""

from typing import Callable, Dict, Optional

import reverb
import tensorflow as tf

from lpg_tf import types
from lpg_tf.distributed import reverb_tables

SIGNATURE_TIMEOUT_S = 60


class NoTrajectoriesError(RuntimeError):
  """No unroll arrived within the sampling timeout."""


def _to_trajectory(items: Dict[str, tf.Tensor]) -> types.Trajectory:
  """`{field: [n, T(+1), E_actor, ...]}` -> `[1, T(+1), n * E_actor, ...]`."""

  def merge(x: tf.Tensor) -> tf.Tensor:
    x = tf.transpose(x, [1, 0] + list(range(2, x.shape.rank)))  # [T, n, E, ...]
    shape = x.shape.as_list()
    return tf.reshape(x, [1, shape[0], shape[1] * shape[2]] + shape[3:])

  observation = merge(items["observation"])
  return types.Trajectory(
      observation=observation,
      action=merge(items["action"]),
      reward=merge(items["reward"]),
      discount=merge(items["discount"]),
      episode_return=merge(items["episode_return"]),
      next_observation=observation[:, 1:])


def make_dataset(server_address: str, items_per_batch: int,
                 timeout_s: float) -> tf.data.Dataset:
  """Batches of `items_per_batch` unrolls as `types.Trajectory` `[1, T, B, ...]`.

  Args:
    server_address: the Reverb server, "host:port".
    items_per_batch: unrolls per learner batch (the number of actors).
    timeout_s: longest wait for one item before the dataset ends.
  """
  dataset = reverb.TrajectoryDataset.from_table_signature(
      server_address=server_address,
      table=reverb_tables.TRAJECTORIES,
      max_in_flight_samples_per_worker=items_per_batch,
      # A queue must be read by a single worker to keep its order.
      num_workers_per_iterator=1,
      rate_limiter_timeout_ms=int(timeout_s * 1000),
      get_signature_timeout_secs=SIGNATURE_TIMEOUT_S)
  dataset = (dataset.map(lambda sample: sample.data)
             .batch(items_per_batch, drop_remainder=True)
             .map(_to_trajectory))
  # tf.data's automatic prefetching would pull several more batches out of the
  # queue ahead of the learner (measured: 4-5), all acted by ever older
  # parameters; without it, the data in flight is the queue plus one batch.
  options = tf.data.Options()
  options.autotune.enabled = False
  options.experimental_optimization.inject_prefetch = False
  return dataset.with_options(options)


class TrajectoryIterator:
  """Iterates a `make_dataset` dataset; a timeout becomes NoTrajectoriesError."""

  def __init__(self, dataset: tf.data.Dataset, server_address: str,
               timeout_s: float,
               describe_actors: Optional[Callable[[], str]] = None):
    """Starts sampling.

    Args:
      dataset: from `make_dataset`.
      server_address: for the error message.
      timeout_s: the dataset's sampling timeout, for the error message.
      describe_actors: returns the local actors' state, for the error message.
    """
    self._iterator = iter(dataset)
    self._server_address = server_address
    self._timeout_s = timeout_s
    self._describe_actors = describe_actors

  def __iter__(self) -> "TrajectoryIterator":
    return self

  def __next__(self) -> types.Trajectory:
    try:
      return next(self._iterator)
    except (StopIteration, tf.errors.OutOfRangeError) as error:
      actors = (f" Local actors: {self._describe_actors()}."
                if self._describe_actors else "")
      raise NoTrajectoriesError(
          f"No trajectory arrived in the Reverb table "
          f"{reverb_tables.TRAJECTORIES!r} at {self._server_address} for "
          f"{self._timeout_s:g} s. The actors are not writing: they died or "
          "crashed at start-up (see their logs), are stuck, or, for remote "
          "actors, are not connected to this address." + actors) from error
