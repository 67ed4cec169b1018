"""Meta-train an LPG update rule (Algorithm 1) on a population of lifetimes.

  python launchers/tpu_meta_train.py                       # configs/cpu.py, runs/cpu
  python launchers/tpu_meta_train.py --config=configs/paper.py --workdir=/data/lpg
  python launchers/tpu_meta_train.py --workdir=runs/cpu --resume --config.num_meta_steps=800
  python launchers/tpu_meta_train.py --init_rule=runs/cpu/rule --workdir=runs/cpu2

Runs on the default strategy on one CPU or GPU, snt.distribute.Replicator on
several GPUs and TpuReplicator on TPU (config.strategy=auto picks).
"""

import os

from absl import app
from absl import flags
from ml_collections import config_flags

from lpg_tf import errors
from lpg_tf.experiments import meta_train

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(_REPO, "configs", "cpu.py"),
    "ml_collections config file; override values with --config.name=value.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory: checkpoints/, rule/ (SavedModel), tb/. "
    "Default: runs/<config name>.")
_RESUME = flags.DEFINE_bool("resume", False,
                            "Continue the run in --workdir from its latest checkpoint.")
_INIT_RULE = flags.DEFINE_string(
    "init_rule", None, "Start eta from this exported rule (SavedModel directory).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  workdir = _WORKDIR.value or os.path.join("runs", config.name)
  try:
    meta_train.validate(config)
    meta_train.meta_train(config, workdir, resume=_RESUME.value,
                          init_rule=_INIT_RULE.value)
  except errors.ConfigError as error:
    raise app.UsageError(str(error)) from error


if __name__ == "__main__":
  app.run(main)
