"""Which `tf.distribute` strategy a run builds its variables under (DESIGN.md idiom 5).

TPU -> `snt.distribute.TpuReplicator`; several GPUs -> `snt.distribute.Replicator`
(Sonnet's optimisers refuse plain MirroredStrategy); otherwise the default
strategy. Every variable of a run is created inside `strategy.scope()` from the
start, so moving to more devices is a change of strategy, not a rewrite.

MULTI_WORKER -> `tf.distribute.MultiWorkerMirroredStrategy` over the cluster
that TF_CONFIG describes (one process per host, each with its own run
directory). Sonnet's optimisers refuse it inside its scope, so the trainer
applies Adam outside any scope to the all-reduced meta-gradient; the
variables, mirrored on every worker, take the same update everywhere
(`lpg_tf.meta.trainer`).

`cpu_devices` > 1 splits the host's CPU into that many logical devices and
replicates over them with `snt.distribute.Replicator`, the multi-GPU path on
any laptop. Logical devices exist only if they are set before TensorFlow
initialises its devices (its first op), so `configure_cpu_devices` runs first.
"""

import os
from typing import List


from absl import logging
import sonnet as snt
import tensorflow as tf

from lpg_tf import errors

AUTO = "auto"
DEFAULT = "default"
GPU = "gpu"
TPU = "tpu"
MULTI_WORKER = "multi_worker"
KINDS = (AUTO, DEFAULT, GPU, TPU, MULTI_WORKER)


def configure_cpu_devices(num: int) -> None:
  """Splits the host CPU into `num` logical devices.

  With `num` = 1 TensorFlow is left untouched (not even started: a
  multi-worker strategy must be made before TensorFlow starts). A process
  whose TensorFlow has already initialised its devices keeps them; that is
  fine if it has `num` or more.

  Raises:
    ConfigError: TensorFlow already runs with fewer than `num` CPU devices.
  """
  if num <= 1:
    return
  cpu = tf.config.list_physical_devices("CPU")[0]
  try:
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * num)
  except RuntimeError:  # Devices initialised: keep what there is.
    pass
  have = len(tf.config.list_logical_devices("CPU"))
  if have < num:
    raise errors.ConfigError(
        f"config.cpu_devices={num}, but TensorFlow already started with "
        f"{have} CPU device(s): logical devices must be set before "
        "TensorFlow runs its first op (set cpu_devices in a fresh process)")


def cpu_device_names(num: int) -> List[str]:
  """The first `num` logical CPU devices, made if need be."""
  configure_cpu_devices(num)
  return [d.name for d in tf.config.list_logical_devices("CPU")][:num]


def resolve(kind: str = AUTO, tpu_address: str = "",
            cpu_devices: int = 1) -> tf.distribute.Strategy:
  """The strategy for `kind`; AUTO picks TPU, then several GPUs, then default.

  With `cpu_devices` > 1 (only with AUTO), `snt.distribute.Replicator` over
  that many logical CPU devices instead.

  Raises:
    ConfigError: for an unknown kind, or a kind whose devices are absent.
  """
  if kind not in KINDS:
    raise errors.ConfigError(f"Unknown strategy {kind!r}; valid: {', '.join(KINDS)}")
  if cpu_devices > 1:
    if kind != AUTO:
      raise errors.ConfigError(
          f"config.cpu_devices={cpu_devices} replicates over logical CPU "
          f"devices, which needs config.strategy='auto' (got {kind!r})")
    devices = cpu_device_names(cpu_devices)
    logging.info("Using %d logical CPU devices with snt.distribute.Replicator",
                 len(devices))
    return snt.distribute.Replicator(devices)
  if kind == MULTI_WORKER:
    if not os.environ.get("TF_CONFIG"):
      raise errors.ConfigError(
          "config.strategy='multi_worker' needs TF_CONFIG in the environment: "
          '{"cluster": {"worker": ["host0:port", "host1:port"]}, '
          '"task": {"type": "worker", "index": <this host\'s index>}}')
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    logging.info("Using MultiWorkerMirroredStrategy: %d replicas in the cluster",
                 strategy.num_replicas_in_sync)
    return strategy
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
