"""Meta-train an LPG update rule (Algorithm 1) on a population of lifetimes.

  python launchers/tpu_meta_train.py                       # configs/cpu.py, runs/cpu
  python launchers/tpu_meta_train.py --config=configs/paper.py --workdir=/data/lpg
  python launchers/tpu_meta_train.py --workdir=runs/cpu --resume --config.num_meta_steps=800
  python launchers/tpu_meta_train.py --init_rule=runs/cpu/rule --workdir=runs/cpu2
  python launchers/tpu_meta_train.py --init_rule=pretrained --workdir=runs/cpu3
  python launchers/tpu_meta_train.py --config.meta.optimiser=es --workdir=runs/cpu_es
  python launchers/tpu_meta_train.py --config.meta.optimiser=hybrid --workdir=runs/cpu_hybrid

Runs on the default strategy on one CPU or GPU, snt.distribute.Replicator on
several GPUs and TpuReplicator on TPU (config.strategy=auto picks),
MultiWorkerMirroredStrategy over the hosts in TF_CONFIG
(--config.strategy=multi_worker, each host with its own --workdir), or
snt.distribute.Replicator over N logical CPU devices (--config.cpu_devices=N).
The replicas share out the population's shards (--config.population.shards, a
multiple of the number of replicas); README: "Several devices".

Running the same command again continues the run in --workdir. SIGTERM or
Ctrl-C saves a checkpoint and the rule, then exits with status 128 + signal
(143, 130). `-v 1` shows TensorFlow's own logs.
"""

import os
import sys

# pylint: disable=g-bad-import-order
from lpg_tf.experiments import cli  # Before TensorFlow loads: quiets it.
from absl import app
from absl import flags

from lpg_tf import errors
from lpg_tf.experiments import meta_train
from lpg_tf.experiments import run_directory
from lpg_tf.experiments import stop_signals
# pylint: enable=g-bad-import-order

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = cli.define_config_file(
    "config", os.path.join(_REPO, "configs", "cpu.py"),
    "ml_collections config file; override values with --config.name=value.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory: checkpoints/, rule/ (SavedModel), tb/. "
    "Default: runs/<config name>.")
_RESUME = flags.DEFINE_bool(
    "resume", False, "Continue the run in --workdir from its newest intact "
    "checkpoint; an error if it holds no run. (Without it, a run with the same "
    "config in --workdir is continued all the same.)")
_INIT_RULE = flags.DEFINE_string(
    "init_rule", None, "Start eta from this exported rule (SavedModel "
    "directory), or from the rule shipped with lpg_tf: pretrained (or "
    "pretrained:NAME); its sizes must be the config's.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  workdir = _WORKDIR.value or os.path.join("runs", config.name)
  try:
    meta_train.validate(config)
    meta_train.meta_train(config, workdir, resume=_RESUME.value,
                          init_rule=_INIT_RULE.value)
  except (errors.ConfigError, run_directory.RunError) as error:
    sys.exit(f"Error: {error}")
  except stop_signals.Stopped as stopped:
    sys.exit(stopped.exit_status)


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
