"""The population's shards spread over the replicas of a `tf.distribute` strategy.

A population is cut into `PopulationSpec.shards` equal shards
(`population.Population`); a strategy with R replicas gives each replica
shards / R consecutive shards, which it runs in one compiled program (or,
with `trainer.MetaTrainer`'s groups_per_program, in several). Shards
share their static structure (environments, agents, shapes), so every replica
runs the same program on the first shards' groups with its own shards' states
as inputs (SPMD, as a TPU needs). Around that program, in the caller's
`tf.function` (DESIGN.md idiom 5: collectives outside the XLA program):

  * `weighted_mean` averages the replicas' meta-losses and meta-gradients
    weighted by the lifetimes each kept (`meta_step.WindowResult.num_kept`):
    sum_r n_r grad_r / sum_r n_r is the gradient of the mean over every kept
    lifetime of the whole population, whatever the split (`summed` adds
    up sums over kept lifetimes instead, when a replica runs its shards as
    several programs);
  * `gather` brings every replica's lifetime states back, in shard order, so
    the population's own bookkeeping (ends, resets, the bandits of Eq. 6,
    checkpoints) sees all of them on every worker.

Which shards a replica runs depends only on its replica id, so a checkpoint
(which holds every shard) resumes on any number of replicas that divides the
number of shards.
"""

from typing import Any, List, Sequence

import tensorflow as tf

from lpg_tf import errors


def check_replicas(shards: int, num_replicas: int) -> None:
  """Raises ConfigError unless `shards` split evenly over `num_replicas`."""
  if shards % num_replicas:
    raise errors.ConfigError(
        f"population.shards={shards} cannot be split evenly over "
        f"{num_replicas} replicas: set --config.population.shards to a "
        f"multiple of {num_replicas} (and population.lifetimes_per_env to a "
        "multiple of shards)")


def distribute(strategy: tf.distribute.Strategy, items: Sequence[Any],
               shards: int) -> Any:
  """Each replica's share of `items` (one entry per group, shard-major).

  Args:
    strategy: the run's strategy, R replicas; R divides `shards`.
    items: `shards` x groups-per-shard entries, shard-major.
    shards: the number of shards.

  Returns:
    A per-replica value: replica r holds the list of entries of shards
    r * shards / R to (r + 1) * shards / R - 1.
  """
  check_replicas(shards, strategy.num_replicas_in_sync)
  per_replica = len(items) // strategy.num_replicas_in_sync

  def share(context: tf.distribute.experimental.ValueContext) -> List[Any]:
    start = context.replica_id_in_sync_group * per_replica
    return list(items[start:start + per_replica])

  return strategy.experimental_distribute_values_from_function(share)


def weighted_mean(strategy: tf.distribute.Strategy, values: Any,
                  weight: Any) -> Any:
  """sum_r weight_r values_r / max(sum_r weight_r, 1), for a nest of
  per-replica tensors and a per-replica scalar weight (cross-replica context).
  """
  total = strategy.reduce(tf.distribute.ReduceOp.SUM, weight, axis=None)
  weighted = strategy.run(
      lambda v, w: tf.nest.map_structure(lambda x: x * w, v),
      args=(values, weight))
  # Leaf by leaf: MultiWorkerMirroredStrategy packs a nest's tensors into one
  # stack, which fails for tensors of different shapes.
  return tf.nest.map_structure(
      lambda x: strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None)
      / tf.maximum(total, 1.0), weighted)


def summed(strategy: tf.distribute.Strategy, values: Any) -> Any:
  """sum_r values_r for a nest of per-replica tensors (cross-replica context):
  the replicas' sums over kept lifetimes when each runs its shards as several
  programs (`trainer.MetaTrainer`'s groups_per_program), divided afterwards.
  """
  # Leaf by leaf, as in weighted_mean.
  return tf.nest.map_structure(
      lambda x: strategy.reduce(tf.distribute.ReduceOp.SUM, x, axis=None),
      values)


def gather(strategy: tf.distribute.Strategy, per_replica: Any) -> List[Any]:
  """Every replica's list of entries, concatenated in replica order.

  Each leaf travels with a leading replica axis through the replica context's
  `all_gather` (booleans as int32, which collectives carry), so every replica,
  on every worker, ends up with all of them; the first local replica's copy is
  returned. (`Strategy.gather` returned only the first replica's value for
  `snt.distribute.Replicator` over logical CPU devices on TF 2.15.)
  """
  def to_wire(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(x, tf.int32)[None] if x.dtype == tf.bool else x[None]

  def all_gather(value: Any) -> Any:
    return tf.distribute.get_replica_context().all_gather(
        tf.nest.map_structure(to_wire, value), axis=0)

  template = strategy.experimental_local_results(per_replica)[0]
  stacked = strategy.experimental_local_results(
      strategy.run(all_gather, args=(per_replica,)))[0]
  entries = []
  for replica in range(strategy.num_replicas_in_sync):
    entries.extend(tf.nest.map_structure(
        lambda x, like: (tf.cast(x[replica], tf.bool) if like.dtype == tf.bool
                         else x[replica]), stacked, template))
  return entries
