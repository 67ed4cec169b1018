"""The policy-evaluation probe of an exported rule's y (Section 4.3, Figure 4).

  python launchers/probe_y.py --rule=runs/cpu/rule --env=tabular/dense \
      --workdir=/tmp/probe_dense

Trains only y of a tabular agent with fixed policies (uniform, near-optimal)
by the rule, and writes probe.json (H(y), y's spread, correlations and
held-out R^2 of y against the true values, with a freshly initialised rule and
a TD value learner as references) and probe.png (the maps) to --workdir.
"""

# pylint: disable=g-bad-import-order
from lpg_tf.experiments import cli  # Before TensorFlow loads: quiets it.
import sys

from absl import app
from absl import flags

from lpg_tf import errors
from lpg_tf.experiments import probe_y
# pylint: enable=g-bad-import-order

_RULE = flags.DEFINE_string(
    "rule", None, "Directory of an exported LPG rule (SavedModel, e.g. "
    "<meta-train workdir>/rule), or pretrained (the rule shipped with lpg_tf; "
    "pretrained:NAME for another shipped one).")
_ENV = flags.DEFINE_string("env", "tabular/dense",
                           "A tabular grid world, e.g. tabular/dense.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory.")
_ACTION_SPACE = flags.DEFINE_enum(
    "action_space", None, ["move", "move_and_collect"],
    "9 moves (default), or 9 moves + 9 collects.")
_GAMMA = flags.DEFINE_float("gamma", probe_y.DEFAULT_GAMMA,
                            "Discount factor of the updates and true values.")
_NUM_UPDATES = flags.DEFINE_integer(
    "num_updates", probe_y.DEFAULT_NUM_UPDATES,
    "Updates of unroll_length x num_envs steps per policy and rule.")
_NUM_ENVS = flags.DEFINE_integer("num_envs", 64, "Parallel environments (B).")
_UNROLL = flags.DEFINE_integer("unroll_length", 20, "Steps per update (T).")
_LR = flags.DEFINE_float(
    "learning_rate", None, "Agent learning rate; default: a pretrained "
    "rule's own, else Table 3's middle.")
_KL = flags.DEFINE_float(
    "kl_cost", None, "Prediction KL cost alpha_y; default: a pretrained "
    "rule's own, else Table 3's middle.")
_TEMPERATURE = flags.DEFINE_float(
    "temperature", probe_y.DEFAULT_TEMPERATURE,
    "Temperature of the near-optimal policy softmax(Q*/temperature).")
_MIN_VISITS = flags.DEFINE_integer(
    "min_visits", probe_y.DEFAULT_MIN_VISITS,
    "States visited fewer times are left out of the statistics.")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a probe in --workdir.")
_JIT = flags.DEFINE_bool("jit_compile", True, "Compile the updates with XLA.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    probe_y.probe_y(
        rule_path=_RULE.value, env_name=_ENV.value, workdir=_WORKDIR.value,
        action_space=_ACTION_SPACE.value, gamma=_GAMMA.value,
        num_updates=_NUM_UPDATES.value, num_envs=_NUM_ENVS.value,
        unroll_length=_UNROLL.value, learning_rate=_LR.value,
        kl_cost=_KL.value, temperature=_TEMPERATURE.value,
        min_visits=_MIN_VISITS.value, seed=_SEED.value,
        overwrite=_OVERWRITE.value, jit_compile=_JIT.value)
  except errors.ConfigError as error:
    sys.exit(f"Error: {error}")


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
