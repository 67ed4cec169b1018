"""configs/cpu.py on every Appendix A training environment: the 15 of
configs/paper.py, 2 lifetimes each (25 groups: a grid world's two lifetimes
take one action space each), 16 environments per lifetime.

One compiled program over all 25 groups took 19 minutes to compile on a
2-core CPU and peaked at 11.4 GB; `population.groups_per_program` runs the
meta-step as programs of a few groups each instead (lpg_tf/meta/trainer.py),
the same meta-gradient up to float rounding. Measured on a 2-core CPU shared
with other jobs (README "A large population"): one group per program gave
the first meta-step 13.5 minutes after launch at a 9.7 GB peak; four per
program had not finished its first meta-step after 11 minutes (XLA's LLVM
passes grow faster than the program), so this preset takes one. On an idle
2-core CPU, with the 25 programs run concurrently (the default,
`population.concurrent_programs`): first meta-step 7.8 minutes after launch,
0.100 meta-steps/s, 13.1 GB peak; one after another: 9.4 minutes, 0.088
meta-steps/s, 9.7 GB.

  python launchers/benchmark.py --config=configs/appendix_a.py --mode=xla
"""

import ml_collections

from configs import cpu
from configs import paper


def get_config() -> ml_collections.ConfigDict:
  config = cpu.get_config()
  config.name = "appendix_a"
  config.population.envs = paper.get_config().population.envs
  config.population.lifetimes_per_env = 2
  config.population.num_envs = 16
  config.population.groups_per_program = 1
  config.population.sampled_action_spaces = True  # 15 groups, not 25.
  return config
