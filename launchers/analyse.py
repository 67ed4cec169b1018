"""The paper's analyses (Figures 3-7): writes figure_N.png and figure_N.json.

  python launchers/analyse.py --figure=4 --workdir=runs/analysis
  python launchers/analyse.py --figure=5 --rule=runs/cpu/rule --workdir=runs/analysis
  python launchers/analyse.py --figure=3 --workdir=runs/analysis      # ~1 h on 2 cores
  python launchers/analyse.py --figure=7 --config=configs/cpu.py \
      --config.num_meta_steps=1000 --config.validation.every=100 --workdir=runs/analysis

3: learning curves on training environments, the rule vs LPG-V vs A2C;
4: y of a near-optimal policy on an unseen grid world task, over the grid;
5: value regression from y at discounts 0.995 ... 0.9 vs TD(lambda);
6: convergence of two randomly initialised y's;
7: meta-training curves of LPG and each ablation (runs under DIR/runs/).
docs/analysis.md shows each figure, what it means and the command behind it.
"""

# pylint: disable=g-bad-import-order
from lpg_tf.experiments import cli  # Before TensorFlow loads: quiets it.
import os
import sys

from absl import app
from absl import flags

from lpg_tf import errors
from lpg_tf.experiments import ablations
from lpg_tf.experiments import analyse
# pylint: enable=g-bad-import-order

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FIGURE = flags.DEFINE_integer("figure", None, "3, 4, 5, 6 or 7.")
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory.")
_RULE = flags.DEFINE_string(
    "rule", analyse.DEFAULT_RULE, "The rule analysed (figures 3-6): an "
    "exported rule's directory, or pretrained[:NAME] (shipped with lpg_tf).")
_LPG_V_RULE = flags.DEFINE_string(
    "lpg_v_rule", analyse.DEFAULT_LPG_V_RULE,
    "Figure 3's LPG-V rule; empty to leave it out.")
_ENVS = flags.DEFINE_list("envs", list(analyse.TRAINING_ENVS),
                          "Figure 3's environments.")
_CONFIG = cli.define_config_file(
    "config", os.path.join(_REPO, "configs", "cpu.py"),
    "Figure 7's meta-training config; override values with "
    "--config.name=value.")
_VARIANTS = flags.DEFINE_list(
    "variants", ["all"],
    f"Figure 7's variants: all, or some of {', '.join(ablations.VARIANTS)}.")
_ACTION_SPACE = flags.DEFINE_enum(
    "action_space", None, ["move", "move_and_collect"],
    "Figures 4-6: the probe task's action space (default move).")
_LR = flags.DEFINE_float(
    "learning_rate", None, "Figures 4-6: the agent's alpha_lr; default the "
    "rule's own for tabular/dense, else Table 3's middle.")
_KL = flags.DEFINE_float("kl_cost", None, "Figures 4-6: the agent's alpha_y.")
_SEEDS = flags.DEFINE_integer(
    "seeds", None, "Figure 3: test seeds (default 5); figure 7: meta-training "
    "seeds per variant (default 2).")
_TUNING_SEEDS = flags.DEFINE_integer(
    "tuning_seeds", None, "Figure 3: tuning seeds per alpha (default 2).")
_LIFETIME_SCALE = flags.DEFINE_float(
    "lifetime_scale", None,
    "Figure 3: lifetimes as a fraction of Table 3's (default 0.1).")
_NUM_ENVS = flags.DEFINE_integer(
    "num_envs", None, "Parallel environments per agent (figure 3: 64, "
    "figures 4-6: 16).")
_INSTANCES = flags.DEFINE_integer(
    "instances", None, "Figure 5: training instances (default 40); figure 6: "
    "instances averaged over (default 32).")
_HELD_OUT = flags.DEFINE_integer(
    "held_out_instances", None, "Figure 5: held-out instances (default 10).")
_NUM_UPDATES = flags.DEFINE_integer(
    "num_updates", None, "Figures 4-6: updates of 20 x num_envs steps "
    "(default 500 for figure 4, 400 for 5 and 6).")
_RECORD_EVERY = flags.DEFINE_integer(
    "record_every", None, "Figures 5-6: read y every this many updates "
    "(default 40 and 20).")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed (figures 3-6).")
_OVERWRITE = flags.DEFINE_bool("overwrite", False,
                               "Replace figure_N.png/json in --workdir.")
_JIT = flags.DEFINE_bool("jit_compile", True, "Compile updates with XLA.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  try:
    analyse.analyse(
        _FIGURE.value, _WORKDIR.value, rule=_RULE.value,
        lpg_v_rule=_LPG_V_RULE.value, envs=_ENVS.value, config=_CONFIG.value,
        variants=_VARIANTS.value, action_space=_ACTION_SPACE.value,
        learning_rate=_LR.value, kl_cost=_KL.value, seed=_SEED.value,
        overwrite=_OVERWRITE.value, jit_compile=_JIT.value,
        seeds=_SEEDS.value, tuning_seeds=_TUNING_SEEDS.value,
        lifetime_scale=_LIFETIME_SCALE.value, num_envs=_NUM_ENVS.value,
        instances=_INSTANCES.value, held_out_instances=_HELD_OUT.value,
        num_updates=_NUM_UPDATES.value, record_every=_RECORD_EVERY.value)
  except errors.ConfigError as error:
    sys.exit(f"Error: {error}")


if __name__ == "__main__":
  flags.mark_flag_as_required("figure")
  flags.mark_flag_as_required("workdir")
  app.run(main, flags_parser=cli.parse_flags)
