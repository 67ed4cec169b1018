"""Compare update rules fairly: alpha tuned on held-out seeds, then tested.

  python launchers/compare.py --rules=pretrained,a2c --envs=all --workdir=runs/compare
  python launchers/compare.py --rules=runs/cpu/best_rule,a2c \
      --envs=tabular/dense,chain/short,minatar/breakout --workdir=/tmp/cmp \
      --seeds=5 --tuning_seeds=2 --lifetime_scale=0.1 --minatar_steps=200000

Writes results.json, results.md and curves/<env>.png to --workdir; the same
command again continues an interrupted comparison.
"""

# pylint: disable=g-bad-import-order
from lpg_tf.experiments import cli  # Before TensorFlow loads: quiets it.
from absl import app
from absl import flags

from lpg_tf import errors
from lpg_tf.experiments import compare
# pylint: enable=g-bad-import-order

_RULES = flags.DEFINE_list(
    "rules", None, "Update rules, comma-separated: a2c, pretrained, or the "
    "directory of an exported rule (SavedModel). Every rule other than a2c is "
    "tuned over (alpha_lr, alpha_y) and compared with A2C and the random "
    "policy.")
_ENVS = flags.DEFINE_list(
    "envs", [compare.ALL], "Environments, comma-separated: all (the 15 of "
    "Appendix A and the 5 MinAtar games) or names such as tabular/dense, "
    "chain/short, minatar/breakout. Grid worlds use the MOVE action space.")
_WORKDIR = flags.DEFINE_string(
    "workdir", None, "Output directory: new, empty, or a comparison with the "
    "same flags to continue.")
_SEEDS = flags.DEFINE_integer("seeds", 5, "Test seeds per rule and environment.")
_TUNING_SEEDS = flags.DEFINE_integer(
    "tuning_seeds", 2, "Tuning seeds per grid point of alpha.")
_LIFETIME_SCALE = flags.DEFINE_float(
    "lifetime_scale", 0.1, "Steps per seed on Appendix A environments as a "
    "fraction of Table 3's lifetime.")
_MAX_STEPS = flags.DEFINE_integer(
    "max_steps", None, "Cap on the steps per seed of Appendix A environments.")
_MINATAR_STEPS = flags.DEFINE_integer(
    "minatar_steps", compare.DEFAULT_MINATAR_STEPS,
    "Steps per seed on MinAtar games.")
_NUM_ENVS = flags.DEFINE_integer(
    "num_envs", compare.DEFAULT_NUM_ENVS, "Parallel environments per seed (B).")
_UNROLL = flags.DEFINE_integer("unroll_length", 20, "Steps per update (T).")
_SEED = flags.DEFINE_integer(
    "seed", 0, "Comparison seed c: tuning keys [c, 6000], test keys [c, 5000].")
_JIT = flags.DEFINE_bool("jit_compile", True, "Compile the steps with XLA.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if not _RULES.value:
    raise app.UsageError("--rules is required, e.g. --rules=pretrained,a2c")
  try:
    compare.compare(
        rule_names=_RULES.value, env_names=_ENVS.value,
        workdir=_WORKDIR.value, seeds=_SEEDS.value,
        tuning_seeds=_TUNING_SEEDS.value, lifetime_scale=_LIFETIME_SCALE.value,
        max_steps=_MAX_STEPS.value, minatar_steps=_MINATAR_STEPS.value,
        num_envs=_NUM_ENVS.value, unroll_length=_UNROLL.value,
        seed=_SEED.value, jit_compile=_JIT.value)
  except errors.ConfigError as error:
    raise app.UsageError(str(error)) from error


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
