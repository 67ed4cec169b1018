"""Population-based training of LPG meta-learners on Ray Tune.

  python launchers/pbt_meta_train.py --config=configs/cpu.py --members=4 --workdir=runs/pbt
  python launchers/pbt_meta_train.py --members=6 --optimisers=gradient,hybrid --interval=100
  python launchers/pbt_meta_train.py --members=16 --ray_address=auto --workdir=/shared/pbt

Each member is a meta-training run (the same config, its own meta learning rate,
beta1-beta3, K, ES sigma and optimiser mode); every --interval meta-steps the
worst members continue from a copy of a better member's checkpoint with its
hyperparameters perturbed. The best member's rule is exported to
<workdir>/rule; <workdir>/lineage.jsonl records who copied whom. Without
--ray_address a Ray instance starts on this machine; with it, the members run
on that cluster (README: "Population-based training"). Running the same
command again continues an interrupted population.
"""

import os
import sys

# pylint: disable=g-bad-import-order
from lpg_tf.experiments import cli  # Before TensorFlow loads: quiets it.
from absl import app
from absl import flags

from lpg_tf import errors
from lpg_tf.experiments import pbt_meta_train
from lpg_tf.experiments import run_directory
# pylint: enable=g-bad-import-order

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_CONFIG = cli.define_config_file(
    "config", os.path.join(_REPO, "configs", "cpu.py"),
    "ml_collections config file every member starts from; override values "
    "with --config.name=value (config.num_meta_steps is each member's budget).")
_MEMBERS = flags.DEFINE_integer("members", 4, "P, the number of meta-learners (>= 2).")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "The population's directory. Default: runs/pbt_<config name>.")
_INTERVAL = flags.DEFINE_integer(
    "interval", 100, "M: meta-steps between a member's validations, reports and "
    "exploit/explore decisions; config.num_meta_steps must be a multiple.")
_OPTIMISERS = flags.DEFINE_list(
    "optimisers", [], "The members' optimiser modes (gradient, es, hybrid), "
    "assigned round-robin; default: config.meta.optimiser for all.")
_CPUS_PER_MEMBER = flags.DEFINE_float(
    "cpus_per_member", None, "CPUs Ray reserves per member; default: the "
    "cluster's CPUs shared among all members, so that all run at once.")
_TIME_BUDGET = flags.DEFINE_float(
    "time_budget_s", None, "Stop every member after this many seconds of wall "
    "clock (a new population); default: each runs config.num_meta_steps.")
_RAY_ADDRESS = flags.DEFINE_string(
    "ray_address", None, "A running Ray cluster to use (auto, or host:port); "
    "default: start Ray on this machine.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  config = _CONFIG.value
  workdir = _WORKDIR.value or os.path.join("runs", f"pbt_{config.name}")
  settings = pbt_meta_train.Settings(
      config=config, members=_MEMBERS.value, interval=_INTERVAL.value,
      modes=tuple(_OPTIMISERS.value))
  try:
    pbt_meta_train.pbt_meta_train(settings, workdir,
                                  ray_address=_RAY_ADDRESS.value,
                                  cpus_per_member=_CPUS_PER_MEMBER.value,
                                  time_budget_s=_TIME_BUDGET.value)
  except (errors.ConfigError, run_directory.RunError) as error:
    sys.exit(f"Error: {error}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
