"""Which `tf.distribute` strategy a run builds its variables under (DESIGN.md idiom 5).

TPU -> `snt.distribute.TpuReplicator`; several GPUs -> `snt.distribute.Replicator`
(Sonnet's optimisers refuse plain MirroredStrategy); otherwise the default
strategy. Every variable of a run is created inside `strategy.scope()` from the
start, so moving to more devices is a change of strategy, not a rewrite.
"""

from absl import logging
import sonnet as snt
import tensorflow as tf

from lpg_tf import errors

AUTO = "auto"
DEFAULT = "default"
GPU = "gpu"
TPU = "tpu"
KINDS = (AUTO, DEFAULT, GPU, TPU)


def resolve(kind: str = AUTO, tpu_address: str = "") -> tf.distribute.Strategy:
  """The strategy for `kind`; AUTO picks TPU, then several GPUs, then default.

  Raises:
    ConfigError: for an unknown kind, or a kind whose devices are absent.
  """
  if kind not in KINDS:
    raise errors.ConfigError(f"Unknown strategy {kind!r}; valid: {', '.join(KINDS)}")
  if kind in (AUTO, TPU):
    try:
      resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu_address)
      tf.config.experimental_connect_to_cluster(resolver)
      tf.tpu.experimental.initialize_tpu_system(resolver)
      logging.info("Using TPUs: %s", resolver.cluster_spec())
      return snt.distribute.TpuReplicator(resolver)
    except (ValueError, tf.errors.NotFoundError) as error:
      if kind == TPU:
        raise errors.ConfigError(f"No TPU found ({error})") from error
  gpus = tf.config.list_logical_devices("GPU")
  if kind == GPU or (kind == AUTO and len(gpus) > 1):
    if not gpus:
      raise errors.ConfigError("strategy 'gpu' asked for, but no GPU is visible")
    logging.info("Using %d GPUs with snt.distribute.Replicator", len(gpus))
    return snt.distribute.Replicator([d.name for d in gpus])
  logging.info("Using the default strategy on %s",
               "GPU:0" if gpus else "CPU")
  return tf.distribute.get_strategy()
