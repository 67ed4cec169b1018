"""configs/cpu.py on every Appendix A training environment: the 15 of
configs/paper.py, 2 lifetimes each, 16 environments per lifetime; a grid
world's lifetimes draw their action space (`population.sampled_action_spaces`),
so 15 groups, each its own compiled program (`population.groups_per_program`
= 1), run concurrently.

One compiled program over all groups (25 then, a grid world's two lifetimes
taking one action space each) took 19 minutes to compile on a 2-core CPU and
peaked at 11.4 GB; four groups per program had not finished its first
meta-step after 11 minutes (XLA's LLVM passes grow faster than the program),
so this preset takes one. On an idle 2-core CPU (README "A large
population"): 25 programs from one graph, first meta-step 7.8 minutes after
launch, 13.1 GB peak, 0.100 meta-steps/s; now (15 programs from threads,
traced without AutoGraph; 3 runs) 160-219 s (median 218 s), 7.4 GB peak,
5.3 GB steady, 0.083-0.112 meta-steps/s; with `population.concurrent_programs=False`, 344 s, 7.4 GB peak,
0.071 meta-steps/s.

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
  # Without XLA: no compile (each program's takes 9-25 s and keeps 100-550 MB),
  # and per-lifetime convolutions, which XLA compiles to slow code.
  config.jit_compile = False
  return config
