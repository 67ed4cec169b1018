"""configs/cpu.py on every Appendix A training environment: the 15 of
configs/paper.py, 2 lifetimes each, 16 environments per lifetime; a grid
world's lifetimes draw their action space (`population.sampled_action_spaces`),
so 15 groups, each its own program (`population.groups_per_program`
= 1), run concurrently.

It runs without XLA (`jit_compile = False`), so its conv agents take one
convolution per lifetime. On an idle 2-core Intel Xeon (README "A large
population"; 3 runs, medians): first meta-step 74 s after launch, 3.2 GiB
peak, 0.256 meta-steps/s; with `meta.rematerialise_inner_updates` 2.8-2.9
GiB for 14% fewer meta-steps/s. On the slower 2-core AMD machine of the
earlier figures, before the critics' fix: 112 s, 3.9 GiB, 0.145 without XLA;
with XLA (im2col convolutions, every compiled program kept in memory) 218 s,
7.4 GiB, 0.092 meta-steps/s. One compiled program over all groups (25 then) took 19
minutes to compile and peaked at 11.4 GB, hence one group per program.

  python launchers/benchmark.py --config=configs/appendix_a.py --mode=no_xla
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
