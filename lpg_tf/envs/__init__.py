"""In-graph batched toy environments of Appendix A, by name.

  env = lpg_tf.envs.make("tabular/dense")         # 9-action grid world
  lpg_tf.envs.NAMES                                # all 15 names
  lpg_tf.envs.register_gymnasium()                 # gymnasium.make("lpg_tf/tabular-dense-v0")
"""

from lpg_tf.envs.base import ACTION_SPACES, MOVE, MOVE_AND_COLLECT, SAMPLED, EnvSpec, Environment
from lpg_tf.envs.gym_adapter import register_gymnasium
from lpg_tf.envs.registry import NAMES, is_grid, make
