"""Train agents from scratch with an update rule; write learning curves.

  python launchers/train_agent.py --env=tabular/dense --rule=a2c --workdir=/tmp/a2c_dense \
      --steps=1000000 --seeds=3
  python launchers/train_agent.py --env=minatar/breakout --rule=a2c \
      --workdir=/tmp/a2c_minatar_breakout --steps=500000 --seeds=2
  python launchers/train_agent.py --env=atari/Breakout --rule=runs/cpu/rule \
      --workdir=/tmp/lpg_breakout --steps=10000000 --num_actors=2
  python launchers/train_agent.py --env=chain/long --rule=pretrained \
      --workdir=/tmp/pretrained_chain
"""

# pylint: disable=g-bad-import-order
from lpg_tf.experiments import cli  # Before TensorFlow loads: quiets it.
from absl import app
from absl import flags

from lpg_tf import errors
from lpg_tf.experiments import train_agent
# pylint: enable=g-bad-import-order

_ENV = flags.DEFINE_string(
    "env", None, "Environment name (lpg_tf.envs.NAMES), minatar/<game> "
    "(asterix, breakout, freeway, seaquest, space_invaders) to meta-test on "
    "MinAtar, or atari/<Game> (e.g. atari/Breakout) to meta-test on Atari.")
_RULE = flags.DEFINE_string(
    "rule", "a2c", "Update rule: a2c, pretrained (the LPG rule shipped with "
    "lpg_tf; pretrained:NAME for another shipped one), or the directory of an "
    "exported LPG rule (SavedModel, e.g. <meta-train workdir>/rule).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Output directory (new or empty).")
_STEPS = flags.DEFINE_integer(
    "steps", 1_000_000, "Environment steps per seed (Atari: agent steps; "
    "frames = 4 x steps).")
_SEEDS = flags.DEFINE_integer(
    "seeds", 3, "Independent agents, trained side by side (Atari: one after "
    "another).")
_NUM_ENVS = flags.DEFINE_integer(
    "num_envs", None, "Parallel environments per seed; default 64 (MinAtar "
    "too), Atari 30 (Table 4).")
_UNROLL = flags.DEFINE_integer("unroll_length", 20, "Steps per update (T).")
_ACTION_SPACE = flags.DEFINE_enum("action_space", None, ["move", "move_and_collect"],
                                  "Grid worlds: 9 moves, or 9 moves + 9 collects.")
_LR = flags.DEFINE_float(
    "learning_rate", None, "Agent learning rate (alpha_lr); default: a "
    "pretrained rule's own for the environment, else the suite's.")
_KL = flags.DEFINE_float(
    "kl_cost", None, "Prediction KL cost (alpha_y); default: a pretrained "
    "rule's own for the environment, else the suite's.")
_GAMMA = flags.DEFINE_float(
    "gamma", None, f"Discount factor; default {train_agent.DEFAULT_GAMMA} "
    "(MinAtar too), Atari 0.995 (Table 4).")
_SEED = flags.DEFINE_integer("seed", 0, "Random seed.")
_LOG_EVERY = flags.DEFINE_integer(
    "log_every", None, "Updates between log points; default: about 100 points "
    "per seed.")
_OVERWRITE = flags.DEFINE_bool("overwrite", False, "Replace a run in --workdir.")
_JIT = flags.DEFINE_bool("jit_compile", True, "Compile the step with XLA.")
_NUM_ACTORS = flags.DEFINE_integer(
    "num_actors", None, "Atari only: actor processes sharing --num_envs "
    "(default 2); each streams trajectories to the learner through Reverb.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  if _ENV.value is None:
    raise app.UsageError("--env is required")
  try:
    train_agent.train_agents(
        env_name=_ENV.value, rule_name=_RULE.value, workdir=_WORKDIR.value,
        steps=_STEPS.value, seeds=_SEEDS.value, num_envs=_NUM_ENVS.value,
        unroll_length=_UNROLL.value, action_space=_ACTION_SPACE.value,
        learning_rate=_LR.value, kl_cost=_KL.value, gamma=_GAMMA.value,
        seed=_SEED.value, log_every=_LOG_EVERY.value, overwrite=_OVERWRITE.value,
        jit_compile=_JIT.value, num_actors=_NUM_ACTORS.value)
  except errors.ConfigError as error:
    raise app.UsageError(str(error)) from error


if __name__ == "__main__":
  app.run(main, flags_parser=cli.parse_flags)
